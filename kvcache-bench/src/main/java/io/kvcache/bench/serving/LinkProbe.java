package io.kvcache.bench.serving;

import io.kvcache.core.cost.CostModel;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Measures the link a reload takes: blocks copied from a lower tier into the device tier by the
 * transfer engine the cache uses, the tiers being the benchmark's own kinds. Bandwidth from
 * batches of many blocks (the best of several), fixed cost per block from one-block batches (the
 * median, less what its bytes take at that bandwidth).
 */
final class LinkProbe {
    private static final int REPEATS = 5;
    private static final int SINGLES = 21;

    private LinkProbe() {
    }

    /**
     * @param lower  the tier reloaded from; its slots are written with noise and freed again
     * @param device the tier reloaded into
     * @param engine the platform's transfer engine, or null for the manager's CPU copies; not closed
     * @param blocks blocks per batch (fewer when a tier has fewer free)
     * @return the measured link, named after {@code lower}
     */
    static CostModel.Link measure(Tier lower, Tier device, TransferEngine engine, int blocks) {
        int n = Math.min(blocks, Math.min(lower.freeSlots(), device.freeSlots()));
        if (n < 1) {
            throw new IllegalArgumentException("no free slots to measure the link from " + lower.name());
        }
        // a pair the platform's engine does not copy is copied by the manager's CPU engine: measure that
        boolean own = engine == null || !engine.supports(lower, device);
        TransferEngine e = own ? CpuTransferEngine.withDefaults() : engine;
        int[] src = new int[n];
        int[] dst = new int[n];
        Arrays.fill(src, -1);
        Arrays.fill(dst, -1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment noise = arena.allocate(lower.slotBytes());
            SplittableRandom rnd = new SplittableRandom(7);
            for (int i = 0; i < n; i++) {
                src[i] = lower.allocate();
                dst[i] = device.allocate();
                for (long off = 0; off + 8 <= noise.byteSize(); off += 8) {
                    noise.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, off, rnd.nextLong());
                }
                lower.write(src[i], 0, noise);
            }
            List<BlockMove> all = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                all.add(new BlockMove(src[i], dst[i]));
            }
            TransferBatch batch = new TransferBatch(lower, device, all);
            copy(e, batch);   // warm-up
            long best = Long.MAX_VALUE;
            for (int r = 0; r < REPEATS; r++) {
                best = Math.min(best, copy(e, batch));
            }
            double bandwidth = batch.bytes() / (best / 1e9);
            long[] single = new long[SINGLES];
            for (int r = 0; r < SINGLES; r++) {
                single[r] = copy(e, new TransferBatch(lower, device, List.of(all.get(r % n))));
            }
            Arrays.sort(single);
            double latency = Math.max(0, single[SINGLES / 2] / 1e9 - lower.slotBytes() / bandwidth);
            return new CostModel.Link(lower.name(), bandwidth, latency);
        } finally {
            for (int i = 0; i < n; i++) {
                if (src[i] >= 0) {
                    lower.free(src[i]);
                }
                if (dst[i] >= 0) {
                    device.free(dst[i]);
                }
            }
            if (own) {
                e.close();
            }
        }
    }

    private static long copy(TransferEngine e, TransferBatch batch) {
        long t0 = System.nanoTime();
        e.submit(batch).completion().join();
        return System.nanoTime() - t0;
    }
}
