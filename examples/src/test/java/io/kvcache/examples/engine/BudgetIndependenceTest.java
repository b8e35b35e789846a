package io.kvcache.examples.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.examples.attention.CpuAttentionBackend;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaConfig;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import io.kvcache.examples.llama.SyntheticCheckpoint;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * Whatever the device budget, window size, prefetch or eviction policy, the decode gives the same
 * tokens and logits bit for bit, and the K/V it leaves in the cache's blocks are where the layout
 * says.
 */
class BudgetIndependenceTest {
    /** GQA, 3 layers, small enough that 150 tokens run in well under a second. */
    private static final LlamaConfig SHAPE = new LlamaConfig(48, 64, 3, 6, 3, 64, 256, true);
    private static final Checkpoint MODEL = Checkpoint.parse("small", SyntheticCheckpoint.bytes(SHAPE, 11));
    private static final int BT = 8;
    private static final int TOKENS = 150;
    private static final KvLayout LAYOUT = new KvLayout(SHAPE.layers(), SHAPE.kvHeads(), SHAPE.headSize(), DType.FP32, BT);
    private static final int BLOCKS = (TOKENS + 3 + BT - 1) / BT;

    private static DecodeResult decode(int deviceBlocks, boolean prefetch, EvictionPolicy policy, boolean report,
                                       CacheStats[] stats) {
        try (KvCacheManager cache = KvCacheManager.builder(LAYOUT).modelId("small").evictionPolicy(policy)
                .tier(new SimulatedDeviceTier(LAYOUT, deviceBlocks * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, (BLOCKS + 2) * LAYOUT.blockBytes()))
                .build()) {
            CachedDecoder d = new CachedDecoder(new LlamaModel(MODEL), cache, new CpuAttentionBackend(),
                    CachedDecoder.windowBlocks(deviceBlocks), prefetch, report);
            DecodeResult r = d.run(new byte[0], new int[] {1, 5, 9}, TOKENS, new Sampler(SHAPE.vocabSize(), 0.7f, 3),
                    StepListener.NONE);
            if (stats != null) {
                stats[0] = cache.stats();
            }
            return r;
        }
    }

    @Test
    void everyBudgetGivesTheUnlimitedDecodeBitForBit() {
        DecodeResult unlimited = decode(BLOCKS + 1, false, EvictionPolicy.lru(), false, null);
        CacheStats[] stats = new CacheStats[1];
        for (int device : new int[] {3, 4, 7}) {
            DecodeResult r = decode(device, true, EvictionPolicy.lru(), false, stats);
            assertNull(r.firstDifference(unlimited), "device of " + device + " blocks");
            assertTrue(stats[0].bytesPromoted() > 0, "device of " + device + " blocks moved blocks: " + stats[0]);
        }
        assertNull(decode(3, false, EvictionPolicy.lru(), false, null).firstDifference(unlimited), "without prefetch");
        DecodeResult att = decode(5, true, EvictionPolicy.attentionScore(1, 1, 0.9), true, stats);
        assertNull(att.firstDifference(unlimited), "attention policy");
    }

    @Test
    void firstDifferenceSeesAOneUlpChange() {
        DecodeResult a = decode(BLOCKS + 1, false, EvictionPolicy.lru(), false, null);
        float[][] logits = a.logits().clone();
        logits[40] = logits[40].clone();
        logits[40][7] = Math.nextUp(logits[40][7]);
        DecodeResult b = new DecodeResult(a.prompt(), a.generated(), logits, 0, new int[0], 0, 0, 0);
        assertTrue(a.firstDifference(b).contains("logit 7 of generated token 40"), a.firstDifference(b));
    }

    @Test
    void keysAndValuesSitInTheBlocksWhereTheLayoutSaysAndPrefixReuseSkipsThem() {
        try (KvCacheManager cache = KvCacheManager.builder(LAYOUT).modelId("small")
                .tier(new SimulatedDeviceTier(LAYOUT, 3 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, (BLOCKS + 2) * LAYOUT.blockBytes()))
                .build(); Arena arena = Arena.ofConfined()) {
            LlamaModel model = new LlamaModel(MODEL);
            CachedDecoder d = new CachedDecoder(model, cache, new CpuAttentionBackend(), 1, true, false);
            DecodeResult r = d.run(new byte[0], new int[] {1}, 40, new Sampler(SHAPE.vocabSize(), 0f, 1),
                    StepListener.NONE);
            int[] stream = r.stream();
            // the K of every position, computed by a model whose cache is a plain array
            var reference = new io.kvcache.examples.llama.RecordingKvAttention(SHAPE, stream.length);
            LlamaModel plain = new LlamaModel(MODEL);
            for (int pos = 0; pos < 32; pos++) {
                plain.forward(stream[pos], pos, reference);
            }
            // a new request with the same 33-token prompt finds 4 full blocks cached
            try (Sequence s = cache.open(new byte[0], java.util.Arrays.copyOf(stream, 33))) {
                assertEquals(32, s.cachedTokens());
                MemorySegment block = arena.allocate(LAYOUT.blockBytes());
                for (int b = 0; b < 4; b++) {
                    cache.readBlock(s, b, block);
                    for (int t = 0; t < BT; t++) {
                        for (int layer = 0; layer < SHAPE.layers(); layer++) {
                            for (int kind = 0; kind < 2; kind++) {
                                long off = BlockLayoutDescriptor.tokenOffset(LAYOUT, layer, kind, t);
                                float[] expected = reference.stored(layer, b * BT + t, kind);
                                // layer 0 sees no attention output yet: exact; later layers inherit the
                                // rounding of online against two-pass softmax
                                float tol = layer == 0 ? 0f : 1e-5f;
                                for (int i = 0; i < expected.length; i++) {
                                    assertEquals(expected[i], block.get(ValueLayout.JAVA_FLOAT, off + 4L * i),
                                            tol * Math.max(1f, Math.abs(expected[i])),
                                            "block " + b + " token " + t + " layer " + layer + " kind " + kind);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
