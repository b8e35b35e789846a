package io.kvcache.examples.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.examples.attention.CpuAttentionBackend;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.Llama2Reference;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import io.kvcache.examples.llama.TestModels;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The demo's decode, with its K/V paged through a device tier a tenth of the final KV size,
 * against the plain-array llama2.c transcription that never touches the cache.
 */
class PagedDecodeMatchesReferenceTest {
    private static final int TOKENS = 400;

    @Test
    void logitsAtEveryPositionMatchThePlainArrayReference() throws Exception {
        Path model = TestModels.stories260K();
        Checkpoint cp = Checkpoint.read(model);
        KvLayout layout = new KvLayout(cp.config().layers(), cp.config().kvHeads(), cp.config().headSize(), DType.FP32, 16);
        int blocks = (TOKENS + 15) / 16;
        long device = Math.max(3, blocks / 10) * layout.blockBytes();
        DecodeResult r;
        CacheStats stats;
        try (KvCacheManager cache = KvCacheManager.builder(layout).modelId("stories260K")
                .tier(new SimulatedDeviceTier(layout, device))
                .tier(new MmapHostTier(layout, blocks * layout.blockBytes()))
                .build()) {
            CachedDecoder decoder = new CachedDecoder(new LlamaModel(cp), cache, new CpuAttentionBackend(),
                    CachedDecoder.windowBlocks(cache.tiers().getFirst().slotCount()), true, false);
            r = decoder.run(new byte[0], new int[] {1}, TOKENS, new Sampler(512, 0f, 1), StepListener.NONE);
            stats = cache.stats();
        }
        assertTrue(stats.bytesPromoted() > 0 && stats.demotions() > 0, "the budget forced blocks to move: " + stats);

        Llama2Reference ref = Llama2Reference.load(model, TOKENS);
        int token = 1;
        float worst = 0f;
        for (int pos = 0; pos < TOKENS; pos++) {
            float[] expected = ref.forward(token, pos);
            float[] actual = r.logits()[pos];
            for (int j = 0; j < expected.length; j++) {
                float diff = Math.abs(expected[j] - actual[j]);
                worst = Math.max(worst, diff / Math.max(1f, Math.abs(expected[j])));
            }
            assertEquals(Sampler.argmax(expected), r.generated()[pos], "token after position " + pos);
            token = r.generated()[pos];
        }
        // online softmax (one pass per window) rounds differently from llama2.c's two-pass softmax; a
        // wrong position, block or head moves logits by far more than 1e-3
        assertTrue(worst < 1e-3f, "largest relative logit difference " + worst);
        System.out.println("largest relative logit difference vs reference: " + worst);
    }
}
