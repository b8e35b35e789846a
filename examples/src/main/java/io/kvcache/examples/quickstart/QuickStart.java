package io.kvcache.examples.quickstart;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayerWindows;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.stream.IntStream;

/**
 * The README's quick start, as a program that compiles and runs in seconds: a context three
 * times larger than the device tier, prefilled in windows that fit it and attended over layer by
 * layer with the cache's {@link LayerWindows} (as easy as over a context that fits), a decode
 * loop, and a second request that reuses the first one's prefix.
 *
 * <p>The "engine" here writes a K/V pattern instead of running a model: where a real engine
 * writes the K and V vectors of a token, this one writes bytes derived from the token.
 */
public final class QuickStart {
    private QuickStart() {
    }

    public static void main(String[] args) {
        KvLayout layout = new KvLayout(4, 2, 64, DType.BF16, 16);   // layers, KV heads, head dim, dtype, tokens/block
        int deviceBlocks = 8;
        try (KvCacheManager cache = KvCacheManager.builder(layout)
                .modelId("quickstart-model")
                .tier(new SimulatedDeviceTier(layout, deviceBlocks * layout.blockBytes()))   // or CudaDeviceTier
                .tier(new MmapHostTier(layout, 64 * layout.blockBytes()))                   // or PinnedHostTier
                .evictionPolicy(EvictionPolicy.attentionScore(1, 4, 0.95))
                .build();
             Arena arena = Arena.ofConfined()) {
            byte[] tenantSalt = "tenant-a".getBytes(StandardCharsets.UTF_8);
            int[] prompt = IntStream.range(0, 400).map(i -> 1 + i % 500).toArray();   // 25 blocks

            Sequence seq = cache.open(tenantSalt, prompt);
            int skip = seq.cachedTokens();                       // prefix K/V already cached: no prefill for these
            writeKv(cache, seq, skip, seq.length(), deviceBlocks, arena);
            seq.markWritten(seq.length());                       // full blocks become shareable

            for (int step = 0; step < 16; step++) {              // decode: one token at a time
                double[] mass = attend(cache, seq, arena);       // over a context three times the device tier
                seq.append(nextToken(mass));
                writeKv(cache, seq, seq.length() - 1, seq.length(), deviceBlocks, arena);
                seq.markWritten(seq.length());
                cache.endStep();
            }

            try (Sequence again = cache.open(tenantSalt, prompt)) {
                System.out.printf("a second request with the same %d-token prompt found %d tokens cached%n",
                        prompt.length, again.cachedTokens());
            }
            seq.close();
            print(cache.stats());
        }
    }

    /**
     * Writes the K/V of tokens {@code [from, to)}, at most {@code window} blocks resident at a
     * time, so that a prompt larger than the device tier is prefilled like one that fits.
     */
    static void writeKv(KvCacheManager cache, Sequence seq, int from, int to, int window, Arena arena) {
        KvLayout layout = cache.layout();
        int bt = layout.blockTokens();
        int[] tokens = seq.tokens();
        MemorySegment kv = arena.allocate(layout.tokenLayerBytes());
        for (int first = from / bt; first * bt < to; first += window) {
            int last = Math.min((to + bt - 1) / bt, first + window);
            try (ResidencyHandle h = cache.ensureResident(seq, first, last)) {   // promotes and pins the window
                h.await();
                for (int p = Math.max(from, first * bt); p < Math.min(to, last * bt); p++) {
                    for (int layer = 0; layer < layout.layers(); layer++) {
                        for (int kind = BlockLayoutDescriptor.K; kind <= BlockLayoutDescriptor.V; kind++) {
                            kv.fill((byte) (tokens[p] * 31 + layer * 7 + kind));
                            h.write(p / bt, BlockLayoutDescriptor.tokenOffset(layout, layer, kind, p % bt), kv);
                        }
                    }
                }
            }
        }
    }

    /**
     * One decode step's attention over every block, layer by layer: the cache hands out windows
     * that fit the device tier, with only this layer's slices moved and the next window in flight
     * while one is read; reports each block's attention mass to the policy.
     *
     * @return the mass per block
     */
    static double[] attend(KvCacheManager cache, Sequence seq, Arena arena) {
        KvLayout layout = cache.layout();
        int blocks = seq.blockCount();
        double[] mass = new double[blocks];
        MemorySegment k = arena.allocate(layout.tokenLayerBytes());
        try (LayerWindows windows = cache.layerWindows(seq, 0, blocks)) {   // any number of blocks
            for (int layer = 0; layer < layout.layers(); layer++) {
                for (ResidencyHandle w : windows.layer(layer)) {            // pinned, this layer in place
                    long[] blockTable = w.blockTable(layer);                 // what an attention kernel would take
                    for (int b = w.fromBlock(); b < w.fromBlock() + w.blockCount(); b++) {
                        w.read(b, BlockLayoutDescriptor.tokenOffset(layout, layer, BlockLayoutDescriptor.K, 0), k);
                        mass[b] += (k.get(ValueLayout.JAVA_BYTE, 0) & 0xff) / 255.0
                                + (blockTable[b - w.fromBlock()] != 0 ? 0 : 1);
                    }
                }
            }
        }
        for (int b = 0; b < blocks; b++) {
            cache.reportAttention(seq, b, mass[b]);                          // feeds the attention-score policy
        }
        return mass;
    }

    /** Stands in for sampling the next token from the logits. */
    static int nextToken(double[] mass) {
        return 1 + (int) (Math.abs(Double.doubleToLongBits(mass[0])) % 500);
    }

    private static void print(CacheStats s) {
        for (TierStats t : s.tiers()) {
            System.out.printf("tier %-6s %3d slots, %3d used, %6d hits, %5d promoted out, %5d demoted in%n",
                    t.name(), t.slotCount(), t.usedSlots(), t.hits(), t.promotedOut(), t.demotedIn());
        }
        System.out.printf("moved %d bytes up (%d whole blocks, the rest layer slices) and %d blocks down;"
                        + " waited %.1f ms on residency%n",
                s.bytesPromoted(), s.promotions(), s.demotions(), s.waitNanosWall() / 1e6);
    }
}
