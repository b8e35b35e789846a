package io.kvcache.tiers.transfer;

import static io.kvcache.tiers.GpuTestSupport.device0;
import static io.kvcache.tiers.GpuTestSupport.fillRandom;
import static io.kvcache.tiers.GpuTestSupport.mismatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@Tag("gpu")
class CudaTransferEngineGpuTest {

    static CudaContext ctx;
    static CudaTransferEngine engine;

    @BeforeAll
    static void open() {
        ctx = device0();
        engine = CudaTransferEngine.create(ctx);
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    /** Moves host blocks to random device slots and back to other host slots; every byte must match. */
    @ParameterizedTest(name = "{0} blocks of {1} bytes")
    @CsvSource({
        "KERNEL, 16384", "KERNEL, 16400", "KERNEL, 65536", "KERNEL, 2097152",
        "BATCH_MEMCPY, 16384", "BATCH_MEMCPY, 16400", "BATCH_MEMCPY, 2097152",
        "PER_BLOCK, 16384", "PER_BLOCK, 65536",
        "AUTO, 16384", "AUTO, 262144"})
    void blocksRoundTripByteExactThroughEveryMethod(String methodName, long blockBytes) throws Exception {
        CopyMethod method = methodName.equals("AUTO") ? null : CopyMethod.valueOf(methodName);
        int n = 48;
        SplittableRandom rnd = new SplittableRandom(blockBytes * 31 + methodName.hashCode());
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 2 * n).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, n + 7)) {
            long seed0 = rnd.nextLong();
            for (int i = 0; i < 2 * n; i++) {
                assertEquals(i, host.allocate());
            }
            for (int i = 0; i < n + 7; i++) {
                dev.allocate();
                dev.fill(i, (byte) 0xC3);
            }
            for (int i = 0; i < n; i++) {
                fillRandom(host.view(i), seed0 + i);
                host.view(n + i).fill((byte) 0x3C);
            }
            int[] devSlots = CopyMethodProbe.permutation(n + 7, rnd);
            List<BlockMove> up = new ArrayList<>();
            List<BlockMove> down = new ArrayList<>();
            int[] back = CopyMethodProbe.permutation(n, rnd);
            for (int i = 0; i < n; i++) {
                up.add(new BlockMove(i, devSlots[i]));
                down.add(new BlockMove(devSlots[i], n + back[i]));
            }
            CudaTransferHandle h1 = engine.submit(new TransferBatch(host, dev, up), method);
            h1.completion().get(30, TimeUnit.SECONDS);
            assertEquals(n * blockBytes, h1.bytes());
            assertEquals(Direction.HOST_TO_DEVICE, h1.direction());
            CudaTransferHandle h2 = engine.submit(new TransferBatch(dev, host, down), method);
            h2.completion().get(30, TimeUnit.SECONDS);
            if (method != null) {
                assertEquals(method, h1.method());
                assertEquals(method, h2.method());
            }
            for (int i = 0; i < n; i++) {
                assertEquals(-1, mismatch(host.view(n + back[i]), seed0 + i), "block " + i + " via " + h1.method());
            }
            // a device slot no move touched kept its poison
            MemoryCheck.assertDeviceSlotFilled(dev, devSlots[n], (byte) 0xC3);
            if (method == null) {
                System.out.println("auto method for " + blockBytes + " B: H2D " + h1.method() + " "
                        + engine.measuredRates(Direction.HOST_TO_DEVICE, blockBytes) + ", D2H " + h2.method() + " "
                        + engine.measuredRates(Direction.DEVICE_TO_HOST, blockBytes));
            }
        }
    }

    /**
     * A prefetch thread promotes fresh blocks host-to-device while an eviction thread demotes them
     * device-to-host on the other stream. Both free slots as soon as their batch is submitted, so
     * the slot guard alone keeps the other thread from reusing memory a copy still uses; every
     * evicted block is checked byte for byte.
     */
    @Test
    void concurrentPrefetchAndEvictionKeepEveryBlockIntact() throws Exception {
        long blockBytes = 16 * 1024;
        int batches = 300;
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 1024).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, 192)) {
            BlockingQueue<long[]> resident = new ArrayBlockingQueue<>(4096);
            AtomicLong verified = new AtomicLong();
            AtomicLong deferredFrees = new AtomicLong();
            ExecutorService pool = Executors.newFixedThreadPool(2);
            Future<?> prefetch = pool.submit(() -> {
                SplittableRandom rnd = new SplittableRandom(1);
                long seed = 1_000;
                for (int b = 0; b < batches; b++) {
                    int k = 1 + rnd.nextInt(48);
                    List<BlockMove> moves = new ArrayList<>(k);
                    long[] seeds = new long[k];
                    for (int i = 0; i < k; i++) {
                        int hs = allocateWaiting(host);
                        int ds = allocateWaiting(dev);
                        seeds[i] = seed++;
                        fillRandom(host.view(hs), seeds[i]);
                        moves.add(new BlockMove(hs, ds));
                    }
                    CudaTransferHandle h = engine.submit(new TransferBatch(host, dev, moves));
                    for (BlockMove m : moves) {
                        host.free(m.srcSlot());
                        if (host.slots().inFlight(m.srcSlot())) {
                            deferredFrees.incrementAndGet();
                        }
                    }
                    h.completion().join();
                    for (int i = 0; i < k; i++) {
                        resident.put(new long[] {moves.get(i).dstSlot(), seeds[i]});
                    }
                }
                resident.put(new long[] {-1, 0});
                return null;
            });
            Future<?> evict = pool.submit(() -> {
                SplittableRandom rnd = new SplittableRandom(2);
                boolean done = false;
                while (!done) {
                    List<long[]> take = new ArrayList<>();
                    take.add(resident.take());
                    resident.drainTo(take, rnd.nextInt(64));
                    List<BlockMove> moves = new ArrayList<>();
                    List<Long> seeds = new ArrayList<>();
                    for (long[] e : take) {
                        if (e[0] < 0) {
                            done = true;
                            continue;
                        }
                        moves.add(new BlockMove((int) e[0], allocateWaiting(host)));
                        seeds.add(e[1]);
                    }
                    if (moves.isEmpty()) {
                        continue;
                    }
                    CudaTransferHandle h = engine.submit(new TransferBatch(dev, host, moves));
                    for (BlockMove m : moves) {
                        dev.free(m.srcSlot());
                    }
                    h.completion().join();
                    for (int i = 0; i < moves.size(); i++) {
                        int hs = moves.get(i).dstSlot();
                        long at = mismatch(host.view(hs), seeds.get(i));
                        if (at >= 0) {
                            throw new AssertionError("evicted block " + seeds.get(i) + " differs at byte " + at);
                        }
                        verified.incrementAndGet();
                        host.free(hs);
                    }
                }
                return null;
            });
            prefetch.get(120, TimeUnit.SECONDS);
            evict.get(120, TimeUnit.SECONDS);
            pool.shutdown();
            assertTrue(verified.get() > batches, "verified " + verified.get());
            assertEquals(1024, host.freeSlots());
            assertEquals(192, dev.freeSlots());
            System.out.println("concurrent prefetch/eviction: " + verified.get() + " blocks verified, "
                    + deferredFrees.get() + " frees deferred until their copy completed");
        }
    }

    private static int allocateWaiting(io.kvcache.core.tier.Tier t) throws InterruptedException {
        for (int spins = 0; ; spins++) {
            int s = t.allocate();
            if (s >= 0) {
                return s;
            }
            if (spins > 200_000) {
                throw new AssertionError("tier '" + t.name() + "' stayed full");
            }
            Thread.sleep(0, 50_000);
        }
    }

    @Test
    void aComputeStreamWaitingOnTheHandleSeesTheBlocksWithoutHostSync() throws Exception {
        long blockBytes = 1 << 20;
        int n = 256;
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, n + 1).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, n)) {
            List<BlockMove> moves = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                host.allocate();
                dev.allocate();
                dev.fill(i, (byte) 0);
                fillRandom(host.view(i), 500 + i);
                moves.add(new BlockMove(i, n - 1 - i));
            }
            int probe = host.allocate();
            host.view(probe).fill((byte) 0x77);
            long compute = ctx.createStream();
            try {
                CudaTransferHandle h = engine.submit(new TransferBatch(host, dev, moves), CopyMethod.KERNEL);
                boolean waited = h.streamWait(compute);
                // the last block the batch writes is read on the compute stream
                ctx.check(Cuda.driver().cuMemcpyDtoHAsync_v2(host.address(probe), dev.address(0), blockBytes, compute),
                        "cuMemcpyDtoHAsync");
                ctx.check(Cuda.driver().cuStreamSynchronize(compute), "cuStreamSynchronize");
                assertEquals(-1, mismatch(host.view(probe), 500 + n - 1));
                h.completion().get(10, TimeUnit.SECONDS);
                assertFalse(h.streamWait(compute), "a completed handle has nothing to wait for");
                System.out.println("stream wait enqueued before completion: " + waited);
            } finally {
                Cuda.driver().cuStreamDestroy_v2(compute);
            }
        }
    }

    /**
     * Layer-wise restore of Llama-3-8B-shaped blocks (16 tokens, 32 layers, 8 KV heads, head dim
     * 128, bf16: 2 MiB blocks, 64 KiB per layer): one batch per layer, submitted back to back on
     * one lane. A compute stream that waits on layer {@code l}'s handle alone reads exactly layer
     * {@code l} of every block, with no host synchronisation; the rest of each device slot keeps
     * its poison until its own layer lands; batches complete in submission order.
     */
    @ParameterizedTest(name = "{0} on {1} stream(s)")
    @CsvSource({"KERNEL, 1", "BATCH_MEMCPY, 1", "BATCH_MEMCPY, 2"})
    void eachLayerBatchSignalsItsOwnLayerThroughItsEvent(String methodName, int streams) throws Exception {
        CopyMethod method = CopyMethod.valueOf(methodName);
        int layers = 32;
        long layerBytes = 64 << 10;
        long blockBytes = layers * layerBytes;
        int n = 24;
        try (CudaTransferEngine e = CudaTransferEngine.builder(ctx).copyStreams(streams).build();
             PinnedHostTier host = PinnedHostTier.builder(blockBytes, 2 * n).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, n)) {
            List<BlockMove> moves = new ArrayList<>();
            int[] devSlots = CopyMethodProbe.permutation(n, new SplittableRandom(streams));
            for (int i = 0; i < n; i++) {
                host.allocate();
                host.allocate();
                dev.allocate();
                dev.fill(i, (byte) 0x5A);
                fillRandom(host.view(i), 7_700 + i);
                moves.add(new BlockMove(i, devSlots[i]));
            }
            long compute = ctx.createStream();
            try {
                List<CudaTransferHandle> handles = new ArrayList<>();
                List<Integer> completed = java.util.Collections.synchronizedList(new ArrayList<>());
                for (int l = 0; l < layers; l++) {
                    CudaTransferHandle h = e.submit(new TransferBatch(host, dev, moves, l * layerBytes, layerBytes),
                            method);
                    assertEquals(method, h.method());
                    assertEquals(n * layerBytes, h.bytes());
                    int layer = l;
                    h.completion().thenRun(() -> completed.add(layer));
                    handles.add(h);
                }
                for (int l = 0; l < layers; l++) {
                    handles.get(l).streamWait(compute);
                    // layer l of every block, read on the compute stream into host slots n..2n-1
                    for (int i = 0; i < n; i++) {
                        long at = l * layerBytes;
                        ctx.check(Cuda.driver().cuMemcpyDtoHAsync_v2(host.address(n + i) + at,
                                dev.address(devSlots[i]) + at, layerBytes, compute), "cuMemcpyDtoHAsync");
                    }
                }
                ctx.check(Cuda.driver().cuStreamSynchronize(compute), "cuStreamSynchronize");
                for (int i = 0; i < n; i++) {
                    assertEquals(-1, host.view(n + i).mismatch(host.view(i)), "block " + i + " read layer by layer");
                }
                for (CudaTransferHandle h : handles) {
                    h.completion().get(30, TimeUnit.SECONDS);
                }
                synchronized (completed) {
                    assertEquals(java.util.stream.IntStream.range(0, layers).boxed().toList(), completed);
                }
            } finally {
                Cuda.driver().cuStreamDestroy_v2(compute);
            }
            // a layer batch that has landed leaves the other layers of its slots alone
            try (CudaDeviceTier other = CudaDeviceTier.allocate(ctx, blockBytes, 1)) {
                other.allocate();
                other.fill(0, (byte) 0x5A);
                e.submit(new TransferBatch(host, other, List.of(new BlockMove(3, 0)), 5 * layerBytes, layerBytes),
                        method).completion().get(30, TimeUnit.SECONDS);
                java.lang.foreign.MemorySegment back = host.view(n);
                other.read(0, 0, back);
                for (int l = 0; l < layers; l++) {
                    java.lang.foreign.MemorySegment got = back.asSlice(l * layerBytes, layerBytes);
                    if (l == 5) {
                        assertEquals(-1, got.mismatch(host.view(3).asSlice(l * layerBytes, layerBytes)), "layer 5");
                    } else {
                        final long lay = l;
                        assertTrue(java.util.stream.LongStream.range(0, layerBytes)
                                .allMatch(k -> got.get(java.lang.foreign.ValueLayout.JAVA_BYTE, k) == 0x5A),
                                "layer " + lay + " kept its poison");
                    }
                }
            }
        }
    }

    @Test
    void aKernelBatchOfAnUnalignedRangeIsRefusedByName() {
        long blockBytes = 4096;
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 2).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, 2)) {
            host.allocate();
            dev.allocate();
            TransferBatch b = new TransferBatch(host, dev, List.of(new BlockMove(0, 0)), 8, 64);
            UnsupportedOperationException x = assertThrows(UnsupportedOperationException.class,
                    () -> engine.submit(b, CopyMethod.KERNEL));
            assertTrue(x.getMessage().contains("16-byte"), x.getMessage());
            // nothing guarded: the same slots copy at once, by the driver
            CudaTransferHandle h = engine.submit(b);
            assertEquals(CopyMethod.BATCH_MEMCPY, h.method());
            h.completion().join();
        }
    }

    @Test
    void badBatchesAreRefusedWithNamedErrorsAndChangeNothing() throws Exception {
        long blockBytes = 16 * 1024;
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 8).context(ctx).build();
             PinnedHostTier other = PinnedHostTier.builder(blockBytes, 8).name("other-host").context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, 8)) {
            int h0 = host.allocate();
            int d0 = dev.allocate();
            fillRandom(host.view(h0), 9);
            assertFalse(engine.supports(host, other));
            assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(new TransferBatch(host, other, List.of(new BlockMove(0, 0)))));
            IllegalStateException notAllocated = assertThrows(IllegalStateException.class,
                    () -> engine.submit(new TransferBatch(host, dev, List.of(new BlockMove(h0, d0), new BlockMove(h0, 5)))));
            assertTrue(notAllocated.getMessage().contains("destination slot 5"), notAllocated.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(new TransferBatch(host, dev, List.of(new BlockMove(h0, 99)))));
            assertFalse(host.slots().inFlight(h0), "refused batch left no guard behind");
            CudaTransferHandle empty = engine.submit(new TransferBatch(host, dev, List.of()));
            assertTrue(empty.isDone());
            assertEquals(0, empty.bytes());
            engine.submit(new TransferBatch(host, dev, List.of(new BlockMove(h0, d0)))).completion().get(10, TimeUnit.SECONDS);
            int h1 = host.allocate();
            engine.submit(new TransferBatch(dev, host, List.of(new BlockMove(d0, h1)))).completion().get(10, TimeUnit.SECONDS);
            assertEquals(-1, mismatch(host.view(h1), 9));
        }
    }

    /** Two device tiers on one device (the single-GPU case of peer copies). */
    @ParameterizedTest
    @CsvSource({"KERNEL", "BATCH_MEMCPY", "PER_BLOCK", "AUTO"})
    void deviceToDeviceBatchesBetweenTwoTiersOfOneDevice(String methodName) throws Exception {
        CopyMethod method = methodName.equals("AUTO") ? null : CopyMethod.valueOf(methodName);
        long blockBytes = 64 * 1024;
        int n = 32;
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 2 * n).context(ctx).build();
             CudaDeviceTier a = CudaDeviceTier.allocate("cuda:0/a", ctx, blockBytes, n);
             CudaDeviceTier b = CudaDeviceTier.allocate("cuda:0/b", ctx, blockBytes, n)) {
            assertTrue(engine.supports(a, b));
            List<BlockMove> up = new ArrayList<>();
            List<BlockMove> across = new ArrayList<>();
            List<BlockMove> down = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                assertEquals(i, host.allocate());
                a.allocate();
                b.allocate();
                fillRandom(host.view(i), 7000 + i);
                up.add(new BlockMove(i, i));
                across.add(new BlockMove(i, n - 1 - i));
            }
            for (int i = 0; i < n; i++) {
                down.add(new BlockMove(n - 1 - i, host.allocate()));
            }
            engine.submit(new TransferBatch(host, a, up)).completion().get(10, TimeUnit.SECONDS);
            CudaTransferHandle h = engine.submit(new TransferBatch(a, b, across), method);
            h.completion().get(10, TimeUnit.SECONDS);
            assertEquals(Direction.DEVICE_TO_DEVICE, h.direction());
            engine.submit(new TransferBatch(b, host, down)).completion().get(10, TimeUnit.SECONDS);
            for (int i = 0; i < n; i++) {
                assertEquals(-1, mismatch(host.view(down.get(i).dstSlot()), 7000 + i), "block " + i);
            }
        }
    }

    @Test
    void methodChoiceIsMeasuredOncePerSizeAndDirection() {
        Map<CopyMethod, Double> rates = engine.calibrate(Direction.HOST_TO_DEVICE, 16384);
        assertTrue(rates.containsKey(CopyMethod.KERNEL), rates.toString());
        for (double r : rates.values()) {
            assertTrue(r > 0, rates.toString());
        }
        CopyMethod m = engine.methodFor(Direction.HOST_TO_DEVICE, 16384);
        assertEquals(m, engine.methodFor(Direction.HOST_TO_DEVICE, 16384));
        System.out.println("16 KiB H2D calibration: " + rates + " -> " + m);
    }

    /**
     * The first batch of a size nobody measured is copied at once with the provisional method
     * (the kernel, below 64 KiB) while the measurement runs on the engine's calibration thread;
     * batches after it lands use the measured method.
     */
    @Test
    void aNewBlockSizeIsCopiedAtOnceAndMeasuredOnTheSide() throws Exception {
        long blockBytes = 48 * 1024;
        int n = 64;
        try (CudaTransferEngine fresh = CudaTransferEngine.create(ctx);
             PinnedHostTier host = PinnedHostTier.builder(blockBytes, 2 * n).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, n)) {
            List<BlockMove> up = new ArrayList<>();
            List<BlockMove> down = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                host.allocate();
                dev.allocate();
                fillRandom(host.view(i), 3_000 + i);
                up.add(new BlockMove(i, n - 1 - i));
            }
            for (int i = 0; i < n; i++) {
                down.add(new BlockMove(n - 1 - i, host.allocate()));
            }
            long t0 = System.nanoTime();
            CudaTransferHandle h = fresh.submit(new TransferBatch(host, dev, up));
            long submitUs = (System.nanoTime() - t0) / 1000;
            assertEquals(CopyMethod.KERNEL, h.method(), "provisional method below 64 KiB");
            h.completion().get(10, TimeUnit.SECONDS);
            CopyMethod measured = fresh.methodFor(Direction.DEVICE_TO_HOST, blockBytes);
            assertFalse(fresh.measuredRates(Direction.HOST_TO_DEVICE, blockBytes).isEmpty());
            assertFalse(fresh.measuredRates(Direction.DEVICE_TO_HOST, blockBytes).isEmpty());
            CudaTransferHandle h2 = fresh.submit(new TransferBatch(dev, host, down));
            assertEquals(measured, h2.method());
            h2.completion().get(10, TimeUnit.SECONDS);
            for (int i = 0; i < n; i++) {
                assertEquals(-1, mismatch(host.view(down.get(i).dstSlot()), 3_000 + i), "block " + i);
            }
            System.out.println("first 48 KiB batch submitted in " + submitUs + " us by " + h.method() + "; measured "
                    + measured + " " + fresh.measuredRates(Direction.HOST_TO_DEVICE, blockBytes));
        }
    }

    @Test
    void sizesGivenToTheBuilderAreMeasuredBeforeTheFirstBatch() {
        long blockBytes = 32 * 1024;
        try (CudaTransferEngine e = CudaTransferEngine.builder(ctx).calibrate(blockBytes).build()) {
            for (Direction d : Direction.values()) {
                assertFalse(e.measuredRates(d, blockBytes).isEmpty(), d.toString());
            }
            assertEquals(e.methodFor(Direction.HOST_TO_DEVICE, blockBytes),
                    e.methodFor(Direction.DEVICE_TO_HOST, blockBytes));
        }
        assertThrows(IllegalArgumentException.class, () -> CudaTransferEngine.builder(ctx).calibrate(100));
    }

    /** Batches larger than one descriptor chunk are described and copied chunk by chunk. */
    @ParameterizedTest
    @CsvSource({"KERNEL", "BATCH_MEMCPY", "PER_BLOCK"})
    void batchesSpanningSeveralChunksArriveByteExact(String methodName) throws Exception {
        CopyMethod method = CopyMethod.valueOf(methodName);
        long blockBytes = 16 * 1024;
        int n = 2 * StagingBuffers.chunkBlocks(blockBytes) + 123;
        SplittableRandom rnd = new SplittableRandom(n);
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 2 * n).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, n)) {
            for (int i = 0; i < 2 * n; i++) {
                host.allocate();
            }
            for (int i = 0; i < n; i++) {
                dev.allocate();
                fillRandom(host.view(i), 90_000 + i);
            }
            int[] devSlots = CopyMethodProbe.permutation(n, rnd);
            int[] back = CopyMethodProbe.permutation(n, rnd);
            List<BlockMove> up = new ArrayList<>();
            List<BlockMove> down = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                up.add(new BlockMove(i, devSlots[i]));
                down.add(new BlockMove(devSlots[i], n + back[i]));
            }
            engine.submit(new TransferBatch(host, dev, up), method).completion().get(60, TimeUnit.SECONDS);
            engine.submit(new TransferBatch(dev, host, down), method).completion().get(60, TimeUnit.SECONDS);
            for (int i = 0; i < n; i++) {
                assertEquals(-1, mismatch(host.view(n + back[i]), 90_000 + i), "block " + i);
            }
        }
    }

    /** Copy-on-write within one device tier: the same tier on both sides of a batch. */
    @Test
    void copiesWithinOneDeviceTierLeaveTheSourcesIntact() throws Exception {
        long blockBytes = 64 * 1024;
        int n = 16;
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 3 * n).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, 2 * n)) {
            List<BlockMove> up = new ArrayList<>();
            List<BlockMove> cow = new ArrayList<>();
            List<BlockMove> down = new ArrayList<>();
            for (int i = 0; i < 3 * n; i++) {
                host.allocate();
            }
            for (int i = 0; i < n; i++) {
                dev.allocate();
                dev.allocate();
                fillRandom(host.view(i), 4000 + i);
                up.add(new BlockMove(i, i));
                cow.add(new BlockMove(i, n + i));
                down.add(new BlockMove(n + i, n + i));
                down.add(new BlockMove(i, 2 * n + i));
            }
            assertTrue(engine.supports(dev, dev));
            engine.submit(new TransferBatch(host, dev, up)).completion().get(10, TimeUnit.SECONDS);
            CudaTransferHandle h = engine.submit(new TransferBatch(dev, dev, cow));
            h.completion().get(10, TimeUnit.SECONDS);
            assertEquals(Direction.DEVICE_TO_DEVICE, h.direction());
            engine.submit(new TransferBatch(dev, host, down)).completion().get(10, TimeUnit.SECONDS);
            for (int i = 0; i < n; i++) {
                assertEquals(-1, mismatch(host.view(n + i), 4000 + i), "copy " + i);
                assertEquals(-1, mismatch(host.view(2 * n + i), 4000 + i), "source " + i);
            }
        }
    }
}
