package io.kvcache.tiers.transfer;

import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierFailedException;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.nativ.cuda.CopyKernels;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaException;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.slots.GuardedSlots;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;

/**
 * Moves batches of blocks between the {@link CudaDeviceTier} and {@link PinnedHostTier} of one
 * device (and between device tiers of that device, or of a peer) at the speed of the link.
 *
 * <ul>
 *   <li>Host-to-device and device-to-host batches go on two streams, so prefetch and eviction
 *       overlap; the link carries both directions at once.</li>
 *   <li>A batch is one gather / scatter kernel launch ({@link CopyMethod#KERNEL}) or one
 *       {@code cuMemcpyBatchAsync} ({@link CopyMethod#BATCH_MEMCPY}), whichever measured faster
 *       for the batch's block size on this machine (measured once per size, on the engine's own
 *       scratch memory and its own thread: until a size is measured its batches use the kernel
 *       below 64 KiB and the driver's batched copy from there; {@link Builder#calibrate}
 *       measures sizes known in advance while building). One copy per block
 *       ({@link CopyMethod#PER_BLOCK}) is the fallback. The work per block is a few Java stores
 *       into a pinned descriptor array: no allocation and no native call per block.</li>
 *   <li>Completion is a CUDA event ({@link CudaTransferHandle#streamWait}) and a future.</li>
 *   <li>Slots a batch reads or writes are guarded until its copies complete: freeing one defers
 *       its reuse (see {@link GuardedSlots}), and a conflicting batch is refused.</li>
 *   <li>A sticky CUDA error fails the batch with {@link TierFailedException} and marks the
 *       device's tiers failed.</li>
 * </ul>
 *
 * <p>The engine is a façade: {@link CudaRoute} resolves the tiers, {@link CopyMethodSelector}
 * picks the method, {@link StagingBuffers} holds the descriptors ({@link CopyDescriptorLayout}),
 * {@link ChunkEnqueuer} issues the copies on a {@link CudaLane}'s stream, and
 * {@link BatchCompletion} ends each batch on that lane's completion thread.
 *
 * <p>Thread safety: every public method may be called from any thread.
 */
public final class CudaTransferEngine implements TransferEngine {

    /**
     * Sees each chunk's descriptors after they are written and before they are enqueued: the
     * seam through which the engine's tests inject faults (an unmapped address, say). Production
     * engines have none.
     */
    @FunctionalInterface
    interface DescriptorHook {
        /**
         * @param pairs the chunk's pairs, laid out as {@link CopyDescriptorLayout} says
         * @param chunk the chunk's index within its batch
         */
        void described(MemorySegment pairs, int chunk);
    }

    private final CudaContext context;
    private final boolean hostOrdered;
    private final DescriptorHook descriptorHook;
    private final CopyMethodSelector selector;
    private final CudaLane toDevice;
    private final CudaLane toHost;
    private volatile boolean closed;

    private CudaTransferEngine(Builder b) {
        this.context = b.context;
        this.hostOrdered = b.hostOrdered;
        this.descriptorHook = b.descriptorHook;
        int maxCtas = Math.max(1, b.ctasPerSm * context.multiprocessors());
        this.selector = new CopyMethodSelector(new CopyMethodProbe(context, b.calibrationBytes, maxCtas,
                b.batchSourceAnyOrder), b.method, "kvcache-cuda" + context.ordinal() + "-calibration");
        BatchCompletion completion = new BatchCompletion(context);
        this.toDevice = new CudaLane(context, "h2d", maxCtas, b.batchSourceAnyOrder, completion);
        this.toHost = new CudaLane(context, "d2h", maxCtas, b.batchSourceAnyOrder, completion);
    }

    /** An engine for one device's context that chooses copy methods by measurement. */
    public static CudaTransferEngine create(CudaContext context) {
        return builder(context).build();
    }

    /** @return a builder for an engine on {@code context} */
    public static Builder builder(CudaContext context) {
        return new Builder(context);
    }

    /** Options of a {@link CudaTransferEngine}. Not thread-safe: build on one thread. */
    public static final class Builder {
        private final CudaContext context;
        private CopyMethod method;
        private int ctasPerSm = 2;
        private long calibrationBytes = 256L << 20;
        private boolean hostOrdered;
        private boolean batchSourceAnyOrder;
        private long[] calibrated = new long[0];
        private DescriptorHook descriptorHook;

        private Builder(CudaContext context) {
            this.context = context;
        }

        /** @param method copy every batch this way instead of choosing by measurement */
        public Builder method(CopyMethod method) {
            this.method = method;
            return this;
        }

        /** @param ctasPerSm kernel CTAs per multiprocessor (default 2, so that a host-to-device and a device-to-host kernel fit on the SMs together) */
        public Builder ctasPerSm(int ctasPerSm) {
            if (ctasPerSm <= 0) {
                throw new IllegalArgumentException("CTAs per SM must be positive, was " + ctasPerSm);
            }
            this.ctasPerSm = ctasPerSm;
            return this;
        }

        /** @param bytes bytes moved per trial when choosing a copy method (default 256 MiB) */
        public Builder calibrationBytes(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("calibration size must be positive, was " + bytes);
            }
            this.calibrationBytes = bytes;
            return this;
        }

        /**
         * @param blockBytes block sizes whose copy methods {@link #build} measures (every direction),
         *                   so that the first batches of those sizes already use the measured method
         *                   instead of the provisional one; a cache passes its layout's block size.
         *                   Other sizes are measured on the engine's calibration thread when first
         *                   submitted. Default none.
         * @throws IllegalArgumentException if a size is not a positive multiple of 16
         */
        public Builder calibrate(long... blockBytes) {
            for (long b : blockBytes) {
                if (b <= 0 || b % CopyKernels.ALIGNMENT != 0) {
                    throw new IllegalArgumentException("block size must be a positive multiple of 16, was " + b);
                }
            }
            this.calibrated = blockBytes.clone();
            return this;
        }

        /**
         * @param ordered copy a batch's blocks in ascending host slot order (default false). Meant
         *                for hosts whose IOMMU or device TLB punishes scattered host addresses; on
         *                the H200 host measured here it made no difference (kvcache-bench
         *                results/link-speed.md), so batches keep the order they were given.
         */
        public Builder orderByHostAddress(boolean ordered) {
            this.hostOrdered = ordered;
            return this;
        }

        /**
         * @param any give {@code cuMemcpyBatchAsync} {@code CU_MEMCPY_SRC_ACCESS_ORDER_ANY} instead of
         *            stream order (default false). Safe here because the slot guards keep every
         *            source unchanged until its batch completes.
         */
        public Builder batchSourceAnyOrder(boolean any) {
            this.batchSourceAnyOrder = any;
            return this;
        }

        /** For fault injection in tests (as {@code MappedFileTier.Builder.io} is for the disk tier). */
        Builder descriptorHook(DescriptorHook hook) {
            this.descriptorHook = hook;
            return this;
        }

        /**
         * Creates the streams and completion threads, and measures the sizes given to
         * {@link #calibrate}.
         */
        public CudaTransferEngine build() {
            CudaTransferEngine engine = new CudaTransferEngine(this);
            try {
                for (long b : calibrated) {
                    engine.selector.methodFor(Direction.HOST_TO_DEVICE, b);
                    engine.selector.methodFor(Direction.DEVICE_TO_DEVICE, b);
                }
            } catch (RuntimeException e) {
                engine.close();
                throw e;
            }
            return engine;
        }
    }

    /** @return the device context the engine copies on */
    public CudaContext context() {
        return context;
    }

    /** @return the {@code CUstream} that carries a direction's copies */
    long stream(Direction direction) {
        return lane(direction).stream;
    }

    @Override
    public boolean supports(Tier source, Tier destination) {
        return CudaRoute.resolve(context, source, destination) != null;
    }

    @Override
    public CudaTransferHandle submit(TransferBatch batch) {
        return submit(batch, null);
    }

    /**
     * Starts copying a batch with a given method (benchmarks compare methods this way).
     *
     * @param method the method, or null to choose by measurement
     * @throws IllegalArgumentException      if the tiers are not supported or a slot is out of range
     *                                       or written twice
     * @throws IllegalStateException         if a slot is not allocated or used by a pending copy,
     *                                       or the engine is closed
     * @throws TierFailedException           if the device's context has failed
     * @throws UnsupportedOperationException if {@code method} cannot run here
     */
    public CudaTransferHandle submit(TransferBatch batch, CopyMethod method) {
        if (closed) {
            throw new IllegalStateException("transfer engine on " + context + " is closed");
        }
        Tier src = batch.source();
        Tier dst = batch.destination();
        CudaRoute route = CudaRoute.resolve(context, src, dst);
        if (route == null) {
            throw new IllegalArgumentException("CudaTransferEngine on " + context + " cannot copy from '" + src.name()
                    + "' to '" + dst.name() + "'");
        }
        route.checkUsable();
        if (!batch.wholeSlots()) {
            throw new UnsupportedOperationException("CudaTransferEngine on " + context
                    + " copies whole slots; a byte range [" + batch.offset() + ", +" + batch.length()
                    + ") of each slot was asked for");
        }
        List<BlockMove> moves = batch.moves();
        int n = moves.size();
        long blockBytes = src.slotBytes();
        CudaLane lane = lane(route.direction());
        if (n == 0) {
            CudaTransferHandle h = new CudaTransferHandle(batch, route, lane, null, null, 0);
            h.markFinished();
            h.completion.complete(null);
            return h;
        }
        CopyMethod m = method != null ? selector.checkRunnable(method, route) : selector.select(route, blockBytes);
        route.beginCopies(moves);
        lane.lock.lock();
        try {
            StagingBuffers st = null;
            long event = 0;
            try {
                context.makeCurrent();
                int chunkBlocks = StagingBuffers.chunkBlocks(blockBytes);
                st = lane.staging(chunkBlocks, StagingBuffers.chunkCount(n, chunkBlocks));
                event = lane.event();
                long[] order = hostOrdered && route.direction() != Direction.DEVICE_TO_DEVICE
                        ? lane.sortByHostSlot(moves, route.hostIsSource(), route.hostSlotCount()) : null;
                boolean kernel = m == CopyMethod.KERNEL;
                // chunk by chunk, so that the device copies the first chunk while later ones are described
                int count;
                for (int first = 0, c = 0; first < n; first += count, c++) {
                    count = Math.min(StagingBuffers.chunkCapacity(c, chunkBlocks), n - first);
                    MemorySegment pairs = st.describe(c, moves, order, first, count, route, kernel);
                    if (descriptorHook != null) {
                        descriptorHook.described(pairs, c);
                    }
                    lane.enqueuer().enqueue(m, route.direction(), st, c, count, blockBytes);
                }
                context.check(Cuda.driver().cuEventRecord(event, lane.stream), "cuEventRecord");
            } catch (RuntimeException e) {
                // copies already queued may still read the slots: let the stream drain first
                Cuda.driver().cuStreamSynchronize(lane.stream);
                lane.recycle(st, event, !context.failed());
                route.endCopies(moves);
                throw e instanceof CudaException ce ? BatchCompletion.translate(ce, route) : e;
            }
            CudaTransferHandle h = new CudaTransferHandle(batch, route, lane, st, m, event);
            lane.pending(h);
            return h;
        } finally {
            lane.lock.unlock();
        }
    }

    private CudaLane lane(Direction d) {
        return d == Direction.DEVICE_TO_HOST ? toHost : toDevice;
    }

    /**
     * The method used for a direction and block size. Measured now, on the caller's thread, if it
     * has not been: each available method moves {@code calibrationBytes} of scattered blocks
     * between the engine's own scratch buffers, and the fastest wins; both directions over the
     * link get one method. (Submitting never waits for a measurement.)
     */
    public CopyMethod methodFor(Direction dir, long blockBytes) {
        return selector.methodFor(dir, blockBytes);
    }

    /** @return the rates (GB/s) measured when choosing the method for a direction and block size, if any */
    public Map<CopyMethod, Double> measuredRates(Direction dir, long blockBytes) {
        return selector.measuredRates(dir, blockBytes);
    }

    /**
     * Measures the available batch methods for a direction and block size on scratch memory.
     *
     * @return GB/s per method (median of 3 timed runs after a warm-up)
     */
    Map<CopyMethod, Double> calibrate(Direction dir, long blockBytes) {
        return selector.calibrate(dir, blockBytes);
    }

    /**
     * Waits for a measurement in progress and for every submitted batch, then releases streams,
     * events, staging memory and threads.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        selector.close();
        for (CudaLane lane : new CudaLane[] {toDevice, toHost}) {
            lane.shutdown();
        }
    }
}
