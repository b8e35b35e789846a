package io.kvcache.tiers.transfer;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.FloatByReference;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierFailedException;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.nativ.cuda.BatchedMemcpy;
import io.kvcache.nativ.cuda.CopyKernels;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaException;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.slots.GuardedSlots;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Moves batches of blocks between the {@link CudaDeviceTier} and {@link PinnedHostTier} of one
 * device (and between device tiers of that device, or of a peer) at the speed of the link.
 *
 * <ul>
 *   <li>Host-to-device and device-to-host batches go on two streams, so prefetch and eviction
 *       overlap; the link carries both directions at once.</li>
 *   <li>A batch is one gather / scatter kernel launch ({@link CopyMethod#KERNEL}) or one
 *       {@code cuMemcpyBatchAsync} ({@link CopyMethod#BATCH_MEMCPY}), whichever measured faster
 *       for the batch's block size on this machine (measured once per size and direction, on
 *       the engine's own scratch memory); one copy per block ({@link CopyMethod#PER_BLOCK}) is
 *       the fallback. The work per block is a few Java stores into a pinned descriptor array: no
 *       allocation and no native call per block.</li>
 *   <li>Completion is a CUDA event ({@link CudaTransferHandle#streamWait}) and a future.</li>
 *   <li>Slots a batch reads or writes are guarded until its copies complete: freeing one defers
 *       its reuse (see {@link GuardedSlots}), and a conflicting batch is refused.</li>
 *   <li>A sticky CUDA error fails the batch with {@link TierFailedException} and marks the
 *       device's tiers failed.</li>
 * </ul>
 *
 * <p>Thread safety: {@link #submit} may be called from any thread.
 */
public final class CudaTransferEngine implements TransferEngine {

    private static final long CHUNK_BYTES = 128L << 20;
    private static final int CHUNK_MIN_BLOCKS = 2048;
    private static final int FIRST_CHUNK_BLOCKS = 256;
    private static final int BATCH_CALL_COPIES = 256;
    /** Fraction of the kernel's rate within which the copy engines are preferred. */
    static final double COPY_ENGINE_MARGIN = 0.03;

    private final CudaContext context;
    private final CopyMethod fixedMethod;
    private final int maxCtas;
    private final long calibrationBytes;
    private final boolean hostOrdered;
    private final boolean batchSourceAnyOrder;
    private final Lane toDevice;
    private final Lane toHost;
    private final Map<Long, CopyMethod> chosen = new ConcurrentHashMap<>();
    private final Map<Long, Map<CopyMethod, Double>> measurements = new ConcurrentHashMap<>();
    private volatile boolean closed;

    private CudaTransferEngine(Builder b) {
        this.context = b.context;
        this.fixedMethod = b.method;
        this.maxCtas = Math.max(1, b.ctasPerSm * context.multiprocessors());
        this.calibrationBytes = b.calibrationBytes;
        this.hostOrdered = b.hostOrdered;
        this.batchSourceAnyOrder = b.batchSourceAnyOrder;
        this.toDevice = new Lane("h2d");
        this.toHost = new Lane("d2h");
    }

    /** An engine for one device's context that chooses copy methods by measurement. */
    public static CudaTransferEngine create(CudaContext context) {
        return builder(context).build();
    }

    /** @return a builder for an engine on {@code context} */
    public static Builder builder(CudaContext context) {
        return new Builder(context);
    }

    /** Options of a {@link CudaTransferEngine}. */
    public static final class Builder {
        private final CudaContext context;
        private CopyMethod method;
        private int ctasPerSm = 2;
        private long calibrationBytes = 256L << 20;
        private boolean hostOrdered;
        private boolean batchSourceAnyOrder;

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

        /** Creates the streams and completion threads. */
        public CudaTransferEngine build() {
            return new CudaTransferEngine(this);
        }
    }

    /** @return the device context the engine copies on */
    public CudaContext context() {
        return context;
    }

    /** @return the {@code CUstream} that carries a direction's copies */
    public long stream(Direction direction) {
        return lane(direction).stream;
    }

    @Override
    public boolean supports(Tier source, Tier destination) {
        return direction(source, destination) != null;
    }

    private Direction direction(Tier source, Tier destination) {
        if (source instanceof PinnedHostTier && destination instanceof CudaDeviceTier d && d.context() == context) {
            return Direction.HOST_TO_DEVICE;
        }
        if (source instanceof CudaDeviceTier s && s.context() == context && destination instanceof PinnedHostTier) {
            return Direction.DEVICE_TO_HOST;
        }
        // the same tier on both sides is a copy-on-write within the device
        if (source instanceof CudaDeviceTier s && destination instanceof CudaDeviceTier d
                && (s.context() == context || d.context() == context)) {
            return Direction.DEVICE_TO_DEVICE;
        }
        return null;
    }

    @Override
    public CudaTransferHandle submit(TransferBatch batch) {
        return submit(batch, null);
    }

    /**
     * Starts copying a batch with a given method (benchmarks and tests compare methods this way).
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
        return submit(batch, method, false);
    }

    /**
     * @param faultySource fault injection for the sticky-error test: the first block's source
     *                     address is replaced by an unmapped one
     */
    CudaTransferHandle submit(TransferBatch batch, CopyMethod method, boolean faultySource) {
        if (closed) {
            throw new IllegalStateException("transfer engine on " + context + " is closed");
        }
        Tier src = batch.source();
        Tier dst = batch.destination();
        Direction dir = direction(src, dst);
        if (dir == null) {
            throw new IllegalArgumentException("CudaTransferEngine on " + context + " cannot copy from '" + src.name()
                    + "' to '" + dst.name() + "'");
        }
        checkUsable(src);
        checkUsable(dst);
        List<BlockMove> moves = batch.moves();
        int n = moves.size();
        long blockBytes = src.slotBytes();
        Lane lane = lane(dir);
        if (n == 0) {
            CudaTransferHandle h = new CudaTransferHandle(batch, lane, null, null, dir, 0);
            h.markFinished();
            h.completion.complete(null);
            return h;
        }
        boolean peer = dir == Direction.DEVICE_TO_DEVICE
                && ((CudaDeviceTier) src).context() != ((CudaDeviceTier) dst).context();
        CopyMethod m = method != null ? checkRunnable(method, peer, src, dst) : choose(dir, blockBytes, peer, src, dst);
        GuardedSlots srcSlots = slots(src);
        GuardedSlots dstSlots = slots(dst);
        srcSlots.beginCopies(moves, true);
        try {
            dstSlots.beginCopies(moves, false);
        } catch (RuntimeException e) {
            srcSlots.endCopies(moves, true);
            throw e;
        }
        lane.lock.lock();
        try {
            Staging st = null;
            long event = 0;
            try {
                context.makeCurrent();
                int chunkBlocks = chunkBlocks(blockBytes);
                st = lane.staging(chunkBlocks, chunkCount(n, chunkBlocks));
                event = lane.event();
                long[] order = hostOrdered && dir != Direction.DEVICE_TO_DEVICE
                        ? lane.sortByHostSlot(moves, dir == Direction.HOST_TO_DEVICE, (dir == Direction.HOST_TO_DEVICE
                        ? src : dst).slotCount()) : null;
                // chunk by chunk, so that the device copies the first chunk while later ones are
                // described; the first chunks are small so that the copy starts within microseconds
                int count;
                for (int first = 0, c = 0, next = FIRST_CHUNK_BLOCKS; first < n; first += count, c++, next <<= 1) {
                    count = Math.min(Math.min(next, chunkBlocks), n - first);
                    fillPairs(st.pairs(c), moves, order, first, count, src, dst, m == CopyMethod.KERNEL);
                    if (faultySource && c == 0) {
                        st.pairs(0).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 16L);
                    }
                    enqueue(lane, dir, m, st, c, count, blockBytes);
                }
                context.check(Cuda.driver().cuEventRecord(event, lane.stream), "cuEventRecord");
            } catch (CudaException e) {
                // copies already queued may still read the slots: let the stream drain first
                Cuda.driver().cuStreamSynchronize(lane.stream);
                lane.recycle(st, event, !context.failed());
                srcSlots.endCopies(moves, true);
                dstSlots.endCopies(moves, false);
                throw translate(e, batch);
            }
            CudaTransferHandle h = new CudaTransferHandle(batch, lane, st, m, dir, event);
            lane.pending.add(h);
            return h;
        } finally {
            lane.lock.unlock();
        }
    }

    private static void checkUsable(Tier t) {
        if (t instanceof CudaDeviceTier d) {
            d.checkUsable();
        } else if (t.failed()) {
            throw new TierFailedException("tier '" + t.name() + "' has failed");
        }
    }

    private static GuardedSlots slots(Tier t) {
        return t instanceof CudaDeviceTier d ? d.slots() : ((PinnedHostTier) t).slots();
    }

    private Lane lane(Direction d) {
        return d == Direction.DEVICE_TO_HOST ? toHost : toDevice;
    }

    /** @return chunks a batch of {@code n} blocks is enqueued in: growing from 256 blocks, then full ones */
    static int chunkCount(int n, int chunkBlocks) {
        int chunks = 0;
        for (int first = 0, next = FIRST_CHUNK_BLOCKS; first < n; chunks++, next <<= 1) {
            first += Math.min(next, chunkBlocks);
        }
        return chunks;
    }

    /** Blocks per enqueued chunk: about 128 MiB, at least 2048 blocks, so chunks take milliseconds. */
    static int chunkBlocks(long blockBytes) {
        return (int) Math.max(CHUNK_MIN_BLOCKS, Math.min(1 << 20, CHUNK_BYTES / blockBytes));
    }

    private CopyMethod checkRunnable(CopyMethod m, boolean peer, Tier src, Tier dst) {
        String why = unavailable(m, peer, src, dst);
        if (why != null) {
            throw new UnsupportedOperationException(m + " cannot copy from '" + src.name() + "' to '" + dst.name()
                    + "': " + why);
        }
        return m;
    }

    /** @return why a method cannot run here, or null if it can */
    private String unavailable(CopyMethod m, boolean peer, Tier src, Tier dst) {
        switch (m) {
            case KERNEL -> {
                if (peer && !context.enablePeerAccess(otherContext(src, dst))) {
                    return "no peer access between the devices";
                }
                try {
                    context.copyKernels();
                } catch (CudaException e) {
                    if (e.sticky()) {
                        throw e;
                    }
                    return e.getMessage();
                }
                return null;
            }
            case BATCH_MEMCPY -> {
                BatchedMemcpy b = context.batchedMemcpy();
                return b.available() ? null : b.unavailableReason();
            }
            default -> {
                return null;
            }
        }
    }

    private CudaContext otherContext(Tier src, Tier dst) {
        CudaContext s = ((CudaDeviceTier) src).context();
        return s == context ? ((CudaDeviceTier) dst).context() : s;
    }

    private CopyMethod choose(Direction dir, long blockBytes, boolean peer, Tier src, Tier dst) {
        if (fixedMethod != null) {
            return checkRunnable(fixedMethod, peer, src, dst);
        }
        if (peer) {
            // peer copies are rare (rebalancing); not worth a calibration
            return unavailable(CopyMethod.KERNEL, true, src, dst) == null ? CopyMethod.KERNEL
                    : unavailable(CopyMethod.BATCH_MEMCPY, true, src, dst) == null ? CopyMethod.BATCH_MEMCPY
                    : CopyMethod.PER_BLOCK;
        }
        return methodFor(dir, blockBytes);
    }

    /**
     * The method used for a direction and block size, measured on first use: each available
     * method moves {@code calibrationBytes} of scattered blocks between the engine's own scratch
     * buffers, and the fastest wins.
     */
    public CopyMethod methodFor(Direction dir, long blockBytes) {
        if (fixedMethod != null) {
            return fixedMethod;
        }
        long key = key(dir, blockBytes);
        CopyMethod m = chosen.get(key);
        if (m != null) {
            return m;
        }
        if (dir == Direction.DEVICE_TO_DEVICE) {
            chosen.putIfAbsent(key, choose(calibrate(dir, blockBytes)));
        } else {
            CopyMethod link = chooseForLink(calibrate(Direction.HOST_TO_DEVICE, blockBytes),
                    calibrate(Direction.DEVICE_TO_HOST, blockBytes));
            chosen.putIfAbsent(key(Direction.HOST_TO_DEVICE, blockBytes), link);
            chosen.putIfAbsent(key(Direction.DEVICE_TO_HOST, blockBytes), link);
        }
        return chosen.get(key);
    }

    /**
     * One method for both directions over the link. Kernels in one direction and copy engines in
     * the other measured far slower together than either alone (64 KiB blocks on the H200 host:
     * 50 GB/s both ways, against 70 for two kernels and 82 for copy engines), so the choice is
     * made on the sum of the two directions' rates, with {@link #choose}'s preference.
     */
    static CopyMethod chooseForLink(Map<CopyMethod, Double> up, Map<CopyMethod, Double> down) {
        Map<CopyMethod, Double> sum = new EnumMap<>(CopyMethod.class);
        for (Map.Entry<CopyMethod, Double> e : up.entrySet()) {
            Double d = down.get(e.getKey());
            if (d != null) {
                sum.put(e.getKey(), e.getValue() + d);
            }
        }
        return sum.isEmpty() ? CopyMethod.PER_BLOCK : choose(sum);
    }

    /**
     * Picks the fastest method, except that the driver's batched copy wins when it is within
     * {@link #COPY_ENGINE_MARGIN} of the kernel: copy engines leave the SMs to the inference
     * engine's kernels and overlap better with the other direction (measured on the H200 host:
     * 93 GB/s both ways at 256 KiB against 74 for two kernels, results/link-speed.md).
     */
    static CopyMethod choose(Map<CopyMethod, Double> rates) {
        CopyMethod best = CopyMethod.PER_BLOCK;
        double bestRate = -1;
        for (Map.Entry<CopyMethod, Double> e : rates.entrySet()) {
            if (e.getValue() > bestRate) {
                best = e.getKey();
                bestRate = e.getValue();
            }
        }
        Double batch = rates.get(CopyMethod.BATCH_MEMCPY);
        if (best == CopyMethod.KERNEL && batch != null && batch >= bestRate * (1 - COPY_ENGINE_MARGIN)) {
            return CopyMethod.BATCH_MEMCPY;
        }
        return best;
    }

    /** @return the rates (GB/s) measured when choosing the method for a direction and block size, if any */
    public Map<CopyMethod, Double> measuredRates(Direction dir, long blockBytes) {
        return measurements.getOrDefault(key(dir, blockBytes), Map.of());
    }

    private static long key(Direction dir, long blockBytes) {
        return ((long) dir.ordinal() << 56) | blockBytes;
    }

    /**
     * Measures the available batch methods for a direction and block size on scratch memory.
     *
     * @return GB/s per method (median of 3 timed runs after a warm-up)
     */
    public Map<CopyMethod, Double> calibrate(Direction dir, long blockBytes) {
        if (blockBytes <= 0 || blockBytes % CopyKernels.ALIGNMENT != 0) {
            throw new IllegalArgumentException("block size must be a positive multiple of 16, was " + blockBytes);
        }
        int blocks = (int) Math.max(8, Math.min(1 << 20, calibrationBytes / blockBytes));
        long bytes = blocks * blockBytes;
        Lane lane = lane(dir);
        Map<CopyMethod, Double> rates = new EnumMap<>(CopyMethod.class);
        lane.lock.lock();
        long srcBase = 0;
        long dstBase = 0;
        boolean srcHost = dir == Direction.HOST_TO_DEVICE;
        boolean dstHost = dir == Direction.DEVICE_TO_HOST;
        long start = 0;
        long end = 0;
        try {
            srcBase = srcHost ? context.hostAllocate(bytes) : context.allocate(bytes);
            dstBase = dstHost ? context.hostAllocate(bytes) : context.allocate(bytes);
            start = context.createEvent(true);
            end = context.createEvent(true);
            int[] perm = permutation(blocks, new SplittableRandom(blockBytes));
            for (CopyMethod m : new CopyMethod[] {CopyMethod.KERNEL, CopyMethod.BATCH_MEMCPY}) {
                if (unavailable(m, false, null, null) != null) {
                    continue;
                }
                Staging st = lane.staging(blocks, 1);
                try {
                    boolean kernel = m == CopyMethod.KERNEL;
                    long srcK = kernel && srcHost && !context.hostPointerIsDevicePointer()
                            ? context.hostDevicePointer(srcBase) : srcBase;
                    long dstK = kernel && dstHost && !context.hostPointerIsDevicePointer()
                            ? context.hostDevicePointer(dstBase) : dstBase;
                    MemorySegment pairs = st.pairs(0);
                    for (int i = 0; i < blocks; i++) {
                        pairs.set(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i, srcK + (long) i * blockBytes);
                        pairs.set(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i + 8, dstK + (long) perm[i] * blockBytes);
                    }
                    double[] ms = new double[3];
                    for (int r = -1; r < ms.length; r++) {
                        context.check(Cuda.driver().cuEventRecord(start, lane.stream), "cuEventRecord");
                        enqueue(lane, dir, m, st, 0, blocks, blockBytes);
                        context.check(Cuda.driver().cuEventRecord(end, lane.stream), "cuEventRecord");
                        context.check(Cuda.driver().cuEventSynchronize(end), "cuEventSynchronize");
                        if (r >= 0) {
                            FloatByReference t = new FloatByReference();
                            context.check(Cuda.driver().cuEventElapsedTime_v2(t, start, end), "cuEventElapsedTime");
                            ms[r] = t.getValue();
                        }
                    }
                    Arrays.sort(ms);
                    rates.put(m, bytes / (ms[1] * 1e6));
                } finally {
                    lane.staging.add(st);
                }
            }
            if (rates.isEmpty()) {
                rates.put(CopyMethod.PER_BLOCK, 0.0);
            }
            measurements.put(key(dir, blockBytes), Map.copyOf(rates));
            return rates;
        } finally {
            try {
                if (start != 0) {
                    Cuda.driver().cuEventDestroy_v2(start);
                }
                if (end != 0) {
                    Cuda.driver().cuEventDestroy_v2(end);
                }
                if (!context.failed()) {
                    freeScratch(srcBase, srcHost);
                    freeScratch(dstBase, dstHost);
                }
            } finally {
                lane.lock.unlock();
            }
        }
    }

    private void freeScratch(long p, boolean host) {
        if (p == 0) {
            return;
        }
        if (host) {
            context.hostFree(p);
        } else {
            context.free(p);
        }
    }

    static int[] permutation(int n, SplittableRandom rnd) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** Writes the (source, destination) address pairs of moves [first, first + count) into {@code pairs}. */
    private static void fillPairs(MemorySegment pairs, List<BlockMove> moves, long[] order, int first, int count,
                                  Tier src, Tier dst, boolean kernel) {
        PinnedHostTier hs = src instanceof PinnedHostTier h ? h : null;
        PinnedHostTier hd = dst instanceof PinnedHostTier h ? h : null;
        for (int i = 0; i < count; i++) {
            BlockMove m = moves.get(order == null ? first + i : (int) order[first + i]);
            long s = hs == null ? src.address(m.srcSlot())
                    : kernel ? hs.deviceAddress(m.srcSlot()) : hs.address(m.srcSlot());
            long d = hd == null ? dst.address(m.dstSlot())
                    : kernel ? hd.deviceAddress(m.dstSlot()) : hd.address(m.dstSlot());
            pairs.set(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i, s);
            pairs.set(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i + 8, d);
        }
    }

    /** Enqueues the copies described by the first {@code n} pairs of chunk {@code c}. Caller holds the lane lock. */
    private void enqueue(Lane lane, Direction dir, CopyMethod m, Staging st, int c, int n, long blockBytes) {
        CuLib cu = Cuda.driver();
        MemorySegment pairs = st.pairs(c);
        switch (m) {
            case KERNEL -> {
                CopyKernels k = context.copyKernels();
                // one copy brings the chunk's zeroed work counter and its pairs
                long devChunk = st.deviceChunk(c);
                context.check(cu.cuMemcpyHtoDAsync_v2(devChunk, st.hostChunk(c), Staging.HEADER + 16L * n,
                        lane.stream), "cuMemcpyHtoDAsync");
                long fn = switch (dir) {
                    case HOST_TO_DEVICE -> k.gather();
                    case DEVICE_TO_HOST -> k.scatter();
                    case DEVICE_TO_DEVICE -> k.deviceToDevice();
                };
                lane.launch.launch(context, fn, devChunk + Staging.HEADER, devChunk, blockBytes, n, maxCtas,
                        lane.stream);
            }
            case BATCH_MEMCPY -> {
                MemorySegment arrays = st.arrays(c);
                long srcsOff = 8L * st.chunkBlocks;
                long sizesOff = 16L * st.chunkBlocks;
                for (int i = 0; i < n; i++) {
                    arrays.set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i,
                            pairs.get(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i + 8));
                    arrays.set(ValueLayout.JAVA_LONG_UNALIGNED, srcsOff + 8L * i,
                            pairs.get(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i));
                    arrays.set(ValueLayout.JAVA_LONG_UNALIGNED, sizesOff + 8L * i, blockBytes);
                }
                long a = arrays.address();
                lane.attributesFor(dir, context.ordinal());
                // calls of a few hundred copies: measured several times faster than one call of
                // thousands for 16-64 KiB blocks on the H200 host
                for (int first = 0; first < n; first += BATCH_CALL_COPIES) {
                    int count = Math.min(BATCH_CALL_COPIES, n - first);
                    long o = 8L * first;
                    context.batchedMemcpy().copy(context, new Pointer(a + o), new Pointer(a + srcsOff + o),
                            new Pointer(a + sizesOff + o), count, lane.attributes, lane.attrIndex, lane.failIndex,
                            lane.stream);
                }
            }
            case PER_BLOCK -> {
                for (int i = 0; i < n; i++) {
                    long s = pairs.get(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i);
                    long d = pairs.get(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i + 8);
                    context.check(cu.cuMemcpyAsync(d, s, blockBytes, lane.stream), "cuMemcpyAsync");
                }
            }
        }
    }

    private RuntimeException translate(CudaException e, TransferBatch batch) {
        if (e.sticky()) {
            Tier device = batch.destination() instanceof CudaDeviceTier ? batch.destination() : batch.source();
            return new TierFailedException("device tier '" + device.name() + "' failed: " + e.getMessage(), e);
        }
        return e;
    }

    /** Runs on a lane's completion thread once the batch's event has been waited for. */
    private void finish(CudaTransferHandle h, int rc) {
        RuntimeException failure = null;
        if (rc != 0) {
            try {
                context.check(rc, "cuEventSynchronize");
            } catch (CudaException e) {
                failure = translate(e, h.batch);
            }
        }
        slots(h.batch.source()).endCopies(h.batch.moves(), true);
        slots(h.batch.destination()).endCopies(h.batch.moves(), false);
        h.markFinished();
        h.lane.recycle(h.staging, h.event, !context.failed());
        if (failure == null) {
            h.completion.complete(null);
        } else {
            h.completion.completeExceptionally(failure);
        }
    }

    /** Waits for every submitted batch, then releases streams, events, staging memory and threads. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Lane lane : new Lane[] {toDevice, toHost}) {
            lane.shutdown();
        }
    }

    /**
     * Pinned descriptor memory for one batch and its device copy, in chunks of
     * {@code chunkBlocks} blocks; reused after the batch completes. Host chunk:
     * [16-byte header, zero][pairs: 16 B each][dsts, srcs, sizes: 8 B each]; device chunk:
     * [work counter, 16 B][pairs]. Copying a chunk's header and pairs together resets its counter.
     */
    static final class Staging {
        static final long HEADER = 16;
        final int chunkBlocks;
        final int chunks;
        final long host;
        final long device;
        private final long hostStride;
        private final long deviceStride;
        private final MemorySegment all;

        // the segment covers the pinned allocation just made, at its size
        @SuppressWarnings("restricted")
        Staging(CudaContext ctx, int chunkBlocks, int chunks) {
            this.chunkBlocks = chunkBlocks;
            this.chunks = chunks;
            this.hostStride = HEADER + 40L * chunkBlocks;
            this.deviceStride = HEADER + 16L * chunkBlocks;
            this.host = ctx.hostAllocate(hostStride * chunks);
            long dev;
            try {
                dev = ctx.allocate(deviceStride * chunks);
            } catch (RuntimeException e) {
                ctx.hostFree(host);
                throw e;
            }
            this.device = dev;
            this.all = MemorySegment.ofAddress(host).reinterpret(hostStride * chunks);
            all.fill((byte) 0);
        }

        long hostChunk(int c) {
            return host + c * hostStride;
        }

        long deviceChunk(int c) {
            return device + c * deviceStride;
        }

        MemorySegment pairs(int c) {
            return all.asSlice(c * hostStride + HEADER, 16L * chunkBlocks);
        }

        MemorySegment arrays(int c) {
            return all.asSlice(c * hostStride + HEADER + 16L * chunkBlocks, 24L * chunkBlocks);
        }

        void free(CudaContext ctx) {
            ctx.hostFree(host);
            ctx.free(device);
        }
    }

    /** One direction's stream, its completion thread and the resources its batches reuse. */
    final class Lane implements Runnable {
        final String label;
        final long stream;
        final ReentrantLock lock = new ReentrantLock();
        final CopyKernels.Launch launch = new CopyKernels.Launch();
        final Memory attributes = new Memory(BatchedMemcpy.ATTRIBUTES_BYTES);
        final Memory attrIndex = new Memory(8);
        final Memory failIndex = new Memory(8);
        final LinkedBlockingQueue<CudaTransferHandle> pending = new LinkedBlockingQueue<>();
        final ConcurrentLinkedQueue<Staging> staging = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Long> events = new ConcurrentLinkedQueue<>();
        final CudaTransferHandle stop = new CudaTransferHandle(null, this, null, null, null, 0);
        final Thread completer;
        private final HostSlotOrder order = new HostSlotOrder();

        Lane(String label) {
            this.label = label;
            this.stream = context.createStream();
            attrIndex.setLong(0, 0);
            this.completer = Thread.ofPlatform().daemon().name("kvcache-cuda" + context.ordinal() + "-" + label
                    + "-completion").start(this);
        }

        CudaContext context() {
            return context;
        }

        long[] sortByHostSlot(List<BlockMove> moves, boolean hostIsSource, int hostSlots) {
            return order.sort(moves, hostIsSource, hostSlots);
        }

        void attributesFor(Direction dir, int ordinal) {
            int srcType = dir == Direction.HOST_TO_DEVICE ? BatchedMemcpy.LOCATION_HOST : BatchedMemcpy.LOCATION_DEVICE;
            int dstType = dir == Direction.DEVICE_TO_HOST ? BatchedMemcpy.LOCATION_HOST : BatchedMemcpy.LOCATION_DEVICE;
            BatchedMemcpy.fillAttributes(attributes, srcType, srcType == BatchedMemcpy.LOCATION_DEVICE ? ordinal : 0,
                    dstType, dstType == BatchedMemcpy.LOCATION_DEVICE ? ordinal : 0);
            if (batchSourceAnyOrder) {
                attributes.setInt(0, BatchedMemcpy.SRC_ACCESS_ORDER_ANY);
            }
        }

        Staging staging(int chunkBlocks, int chunks) {
            for (int tries = staging.size(); tries > 0; tries--) {
                Staging s = staging.poll();
                if (s == null) {
                    break;
                }
                if (s.chunkBlocks == chunkBlocks && s.chunks >= chunks) {
                    return s;
                }
                staging.add(s);
            }
            int cap = 1;
            while (cap < chunks) {
                cap <<= 1;
            }
            return new Staging(context, chunkBlocks, cap);
        }

        long event() {
            Long e = events.poll();
            return e != null ? e : context.createEvent(false);
        }

        void recycle(Staging st, long event, boolean reusable) {
            if (!reusable) {
                return;
            }
            if (st != null) {
                staging.add(st);
            }
            if (event != 0) {
                events.add(event);
            }
        }

        @Override
        public void run() {
            boolean current = false;
            while (true) {
                CudaTransferHandle h;
                try {
                    h = pending.take();
                } catch (InterruptedException e) {
                    continue;
                }
                if (h == stop) {
                    return;
                }
                if (!current) {
                    Cuda.driver().cuCtxSetCurrent(context.handle());
                    current = true;
                }
                int rc = Cuda.driver().cuEventSynchronize(h.event);
                try {
                    finish(h, rc);
                } catch (RuntimeException e) {
                    h.completion.completeExceptionally(e);
                }
            }
        }

        void shutdown() {
            lock.lock();
            try {
                pending.add(stop);
            } finally {
                lock.unlock();
            }
            try {
                completer.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (context.failed()) {
                return;
            }
            context.makeCurrent();
            CuLib cu = Cuda.driver();
            cu.cuStreamSynchronize(stream);
            for (Staging s; (s = staging.poll()) != null; ) {
                s.free(context);
            }
            for (Long e; (e = events.poll()) != null; ) {
                cu.cuEventDestroy_v2(e);
            }
            cu.cuStreamDestroy_v2(stream);
        }
    }
}
