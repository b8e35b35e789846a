package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayoutMismatchException;
import io.kvcache.core.OutOfCacheSpaceException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferFailedException;
import io.kvcache.core.transfer.TransferHandle;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the builder refuses, what errors say, and what the counters mean. */
class ManagerContractTest {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 8, DType.FP16, 4);

    @TempDir
    Path tmp;

    private MappedFileTier disk(Path dir, String model) {
        return MappedFileTier.builder(LAYOUT).directory(dir).modelId(model)
                .capacityBytes(32 * (LAYOUT.blockBytes() + 4096L)).open();
    }

    @Test
    void aDiskTierOfAnotherModelIsRefusedAtBuildAndLeftUnlocked() {
        Path dir = tmp.resolve("d");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(LAYOUT, 4 * LAYOUT.blockBytes()))
                .tier(disk(dir, "llama-3-8b"))
                .build());          // the manager is left at the default modelId
        assertTrue(e.getMessage().contains("llama-3-8b") && e.getMessage().contains("modelId"), e.getMessage());
        // the refused build closed the tier: the directory can be opened again
        disk(dir, "llama-3-8b").close();
    }

    @Test
    void aPersistentTopTierIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KvCacheManager.builder(LAYOUT)
                .modelId("m").tier(disk(tmp.resolve("top"), "m")).build());
        assertTrue(e.getMessage().contains("top tier"), e.getMessage());
        disk(tmp.resolve("top"), "m").close();
    }

    @Test
    void aTierOfAnotherLayoutWithTheSameBlockSizeIsRefused() {
        KvLayout other = new KvLayout(2, 4, 4, DType.FP16, 4);     // same bytes per block, another shape
        assertEquals(LAYOUT.blockBytes(), other.blockBytes());
        LayoutMismatchException e = assertThrows(LayoutMismatchException.class, () -> KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(other, 4 * other.blockBytes())).build());
        assertTrue(e.getMessage().contains("layout"), e.getMessage());
    }

    @Test
    void aRequestLargerThanTheTopTierSaysSoAndPointsToWindows() {
        try (KvCacheManager m = KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(LAYOUT, 4 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 64 * LAYOUT.blockBytes())).build()) {
            Sequence s = m.open(new byte[0], IntStream.range(0, 40).toArray());
            OutOfCacheSpaceException e = assertThrows(OutOfCacheSpaceException.class, () -> m.ensureResident(s));
            assertTrue(e.getMessage().contains("more than tier") && e.getMessage().contains("windows"), e.getMessage());
            assertFalse(e.getMessage().contains("every block there is pinned"), e.getMessage());
            try (ResidencyHandle h = m.ensureResident(s, 0, 4)) {
                h.await();      // the cache is usable as before
            }
        }
    }

    /** An engine whose copies wait for a gate, so that several threads wait at once. */
    static final class GatedEngine implements TransferEngine {
        final CpuTransferEngine inner = new CpuTransferEngine(1, 64);
        volatile CompletableFuture<Void> gate = CompletableFuture.completedFuture(null);

        @Override
        public boolean supports(Tier source, Tier destination) {
            return true;
        }

        @Override
        public TransferHandle submit(TransferBatch batch) {
            CompletableFuture<Void> done = gate.thenCompose(v -> inner.submit(batch).completion());
            return TransferHandle.of(done, batch.bytes());
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    @Test
    void waitTimeIsReportedPerThreadAndInWallTime() throws Exception {
        GatedEngine engine = new GatedEngine();
        int threads = 4;
        try (KvCacheManager m = KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(LAYOUT, 12 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 64 * LAYOUT.blockBytes()))
                .transferEngine(engine).build()) {
            Engine writer = new Engine(m);
            List<Sequence> seqs = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int base = 100 * (t + 1);
                Sequence s = m.open(new byte[] {(byte) t}, IntStream.range(0, 12).map(i -> base + i).toArray());
                writer.prefill(s);
                seqs.add(s);
            }
            // fill the device with other blocks, so that each thread's request copies its blocks back up
            Sequence filler = m.open(new byte[] {99}, IntStream.range(0, 48).toArray());
            writer.prefill(filler);
            assertTrue(m.awaitIdle(java.time.Duration.ofSeconds(30)));
            CacheStats before = m.stats();
            engine.gate = new CompletableFuture<>();
            List<ResidencyHandle> handles = new ArrayList<>();
            for (Sequence s : seqs) {
                handles.add(m.ensureResident(s, 0, 3));
            }
            CountDownLatch started = new CountDownLatch(threads);
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            List<Future<?>> fs = new ArrayList<>();
            for (ResidencyHandle h : handles) {
                fs.add(pool.submit(() -> {
                    started.countDown();
                    h.await();
                }));
            }
            started.await();
            engine.gate.complete(null);
            for (Future<?> f : fs) {
                f.get(30, TimeUnit.SECONDS);
            }
            pool.shutdown();
            for (ResidencyHandle h : handles) {
                h.close();
            }
            CacheStats after = m.stats();
            long total = after.waitNanosTotal() - before.waitNanosTotal();
            long wall = after.waitNanosWall() - before.waitNanosWall();
            long sum = after.waitNanosByThread().values().stream().mapToLong(Long::longValue).sum();
            assertEquals(after.waitNanosTotal(), sum, "per-thread waits add up to the total");
            assertTrue(wall <= total, "wall time " + wall + " cannot exceed the sum over threads " + total);
            assertTrue(after.waitNanosMaxPerThread() <= after.waitNanosTotal());
        }
    }

    @Test
    void aFailedMoveFailsOnlyItselfInTheCpuEngine() {
        try (Arena arena = Arena.ofConfined();
             SimulatedDeviceTier a = new SimulatedDeviceTier(LAYOUT, 4 * LAYOUT.blockBytes());
             MmapHostTier b = new MmapHostTier(LAYOUT, 4 * LAYOUT.blockBytes());
             CpuTransferEngine engine = new CpuTransferEngine(2, 8)) {
            MemorySegment src = arena.allocate(LAYOUT.blockBytes());
            src.fill((byte) 7);
            for (int i = 0; i < 4; i++) {
                a.allocate();
                b.allocate();
                a.write(i, 0, src);
            }
            // the third move names a slot past the tier: it alone fails
            List<BlockMove> moves = List.of(new BlockMove(0, 0), new BlockMove(1, 1), new BlockMove(2, 99),
                    new BlockMove(3, 3));
            CompletionException e = assertThrows(CompletionException.class,
                    () -> engine.submit(new TransferBatch(a, b, moves)).completion().join());
            TransferFailedException tf = assertThrowsCause(e);
            assertTrue(tf.failed(2));
            assertEquals(1, tf.failedMoves().cardinality());
            for (int slot : new int[] {0, 1, 3}) {
                assertEquals(-1, b.view(slot).mismatch(src), "move into slot " + slot + " completed");
            }
        }
    }

    private static TransferFailedException assertThrowsCause(CompletionException e) {
        assertTrue(e.getCause() instanceof TransferFailedException, "cause: " + e.getCause());
        return (TransferFailedException) e.getCause();
    }
}
