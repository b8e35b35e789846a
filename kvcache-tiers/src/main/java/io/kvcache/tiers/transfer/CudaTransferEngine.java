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
 *   <li>A batch copies whole slots or the same byte range of every slot
 *       ({@link TransferBatch#offset()}, {@link TransferBatch#length()}): a layer range of each
 *       block, say, which the engine moves as copies of that many bytes, leaving the rest of
 *       each destination slot as it was. The method is chosen for the bytes per copy; a range
 *       that is not 16-byte aligned goes to the driver's copies, which the kernel cannot make.</li>
 *   <li>Completion is a CUDA event ({@link CudaTransferHandle#streamWait}) and a future, per
 *       batch: batches on one lane (one direction) complete in submission order, so an engine
 *       that submits one batch per layer can start layer {@code l}'s compute on layer
 *       {@code l}'s event.</li>
 *   <li>Slots a batch reads or writes are guarded until its copies complete: freeing one defers
 *       its reuse (see {@link GuardedSlots}), and a conflicting batch is refused. Only the
 *       batch's byte range is guarded, so batches of disjoint ranges of the same slots (one per
 *       layer) may be in flight together.</li>
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
    private final HostOrder hostOrder;
    private final DescriptorHook descriptorHook;
    private final CopyMethodSelector selector;
    private final CudaLane toDevice;
    private final CudaLane toHost;
    private volatile boolean closed;

    private CudaTransferEngine(Builder b) {
        this.context = b.context;
        this.hostOrder = b.hostOrder;
        this.descriptorHook = b.descriptorHook;
        int maxCtas = Math.max(1, b.ctasPerSm * context.multiprocessors());
        this.selector = new CopyMethodSelector(new CopyMethodProbe(context, b.calibrationBytes, maxCtas,
                b.batchSourceAnyOrder, b.copyStreams, b.callCopies, b.hostOrder != HostOrder.NONE,
                b.hostOrder == HostOrder.ALL), b.method,
                "kvcache-cuda" + context.ordinal() + "-calibration");
        BatchCompletion completion = new BatchCompletion(context);
        this.toDevice = new CudaLane(context, "h2d", b.copyStreams, maxCtas, b.batchSourceAnyOrder, b.callCopies,
                completion);
        this.toHost = new CudaLane(context, "d2h", b.copyStreams, maxCtas, b.batchSourceAnyOrder, b.callCopies,
                completion);
    }

    /**
     * Streams per direction that batched copies are spread over unless the builder says
     * otherwise: one. On the H200 host four streams gained nothing for 64 KiB blocks, lost up to
     * 0.1 of the ceiling for 64 KiB layer slices, and made 16 KiB batched copies five times
     * slower (kvcache-bench results/link-speed-layer-slices.md).
     */
    public static final int DEFAULT_COPY_STREAMS = 1;

    /** Which batches are copied in ascending host slot order. */
    private enum HostOrder { NONE, COPY_ENGINE_BATCHES, ALL }

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
        private HostOrder hostOrder = HostOrder.COPY_ENGINE_BATCHES;
        private boolean batchSourceAnyOrder;
        private int copyStreams = DEFAULT_COPY_STREAMS;
        private int callCopies = ChunkEnqueuer.BATCH_CALL_COPIES;
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
         * @param ordered copy every batch's blocks in ascending host slot order (true), or every
         *                batch in the order given (false). By default the driver's batched copies
         *                are ordered and kernel batches are not: ordered 64 KiB copy-engine batches
         *                ran at 0.91-0.97 of the link against 0.86-0.88 in random order, while the
         *                kernel, whose CTAs copy hundreds of blocks at once, gained nothing
         *                (kvcache-bench results/link-speed-layer-slices.md, link-speed.md).
         */
        public Builder orderByHostAddress(boolean ordered) {
            this.hostOrder = ordered ? HostOrder.ALL : HostOrder.NONE;
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

        /**
         * @param streams streams per direction that a batch's {@code cuMemcpyBatchAsync} calls are
         *                spread over, round robin (default {@value #DEFAULT_COPY_STREAMS}), so that
         *                the driver may run one direction's copies on several copy engines. A
         *                batch's event still covers all of them, and batches still complete in
         *                submission order.
         */
        public Builder copyStreams(int streams) {
            if (streams <= 0 || streams > 8) {
                throw new IllegalArgumentException("copy streams per direction must be in [1, 8], was " + streams);
            }
            this.copyStreams = streams;
            return this;
        }

        /** @param copies copies per {@code cuMemcpyBatchAsync} call (default 256) */
        public Builder copiesPerBatchCall(int copies) {
            if (copies <= 0) {
                throw new IllegalArgumentException("copies per batched call must be positive, was " + copies);
            }
            this.callCopies = copies;
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
     * @throws UnsupportedOperationException if {@code method} cannot run here, or is
     *                                       {@link CopyMethod#KERNEL} for a byte range that is not
     *                                       16-byte aligned
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
        List<BlockMove> moves = batch.moves();
        int n = moves.size();
        // a batch copies the same byte range of every slot: whole slots, or a layer range
        long offset = batch.offset();
        long bytes = batch.length();
        CudaLane lane = lane(route.direction());
        if (n == 0) {
            CudaTransferHandle h = new CudaTransferHandle(batch, route, lane, null, null, 0);
            h.markFinished();
            h.completion.complete(null);
            return h;
        }
        CopyMethod m = methodFor(route, offset, bytes, method);
        route.beginCopies(batch);
        lane.lock.lock();
        try {
            StagingBuffers st = null;
            long event = 0;
            try {
                context.makeCurrent();
                int chunkBlocks = StagingBuffers.chunkBlocks(bytes);
                st = lane.staging(chunkBlocks, StagingBuffers.chunkCount(n, chunkBlocks));
                event = lane.event();
                boolean kernel = m == CopyMethod.KERNEL;
                boolean sort = hostOrder == HostOrder.ALL || hostOrder == HostOrder.COPY_ENGINE_BATCHES && !kernel;
                long[] order = sort && route.direction() != Direction.DEVICE_TO_DEVICE
                        ? lane.sortByHostSlot(moves, route.hostIsSource(), route.hostSlotCount()) : null;
                ChunkEnqueuer enqueuer = lane.enqueuer();
                enqueuer.begin();
                // chunk by chunk, so that the device copies the first chunk while later ones are described
                int count;
                for (int first = 0, c = 0; first < n; first += count, c++) {
                    count = Math.min(StagingBuffers.chunkCapacity(c, chunkBlocks), n - first);
                    MemorySegment pairs = st.describe(c, moves, order, first, count, route, kernel, offset);
                    if (descriptorHook != null) {
                        descriptorHook.described(pairs, c);
                    }
                    enqueuer.enqueue(m, route.direction(), st, c, count, bytes);
                }
                enqueuer.join();
                context.check(Cuda.driver().cuEventRecord(event, lane.stream), "cuEventRecord");
            } catch (RuntimeException e) {
                // copies already queued may still read the slots: let the streams drain first
                lane.drain();
                lane.recycle(st, event, !context.failed());
                route.endCopies(batch);
                throw e instanceof CudaException ce ? BatchCompletion.translate(ce, route) : e;
            }
            CudaTransferHandle h = new CudaTransferHandle(batch, route, lane, st, m, event);
            lane.pending(h);
            return h;
        } finally {
            lane.lock.unlock();
        }
    }

    /**
     * The method of a batch copying {@code [offset, offset + bytes)} of every slot: the one asked
     * for, else the measured choice for {@code bytes}-byte copies. The kernel moves 16-byte
     * vectors, so a range that is not 16-byte aligned goes to the driver's copies.
     *
     * @throws UnsupportedOperationException if {@code asked} cannot copy the range or run on the route
     */
    private CopyMethod methodFor(CudaRoute route, long offset, long bytes, CopyMethod asked) {
        boolean aligned = offset % CopyKernels.ALIGNMENT == 0 && bytes % CopyKernels.ALIGNMENT == 0;
        if (asked != null) {
            selector.checkRunnable(asked, route);
            if (asked == CopyMethod.KERNEL && !aligned) {
                throw new UnsupportedOperationException("KERNEL copies 16-byte multiples at 16-byte offsets; a byte "
                        + "range [" + offset + ", +" + bytes + ") of each slot was asked for");
            }
            return asked;
        }
        return aligned ? selector.select(route, bytes) : selector.unaligned(route);
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
