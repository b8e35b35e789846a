package io.kvcache.tiers.transfer;

import com.sun.jna.ptr.FloatByReference;
import io.kvcache.nativ.cuda.BatchedMemcpy;
import io.kvcache.nativ.cuda.CopyKernels;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The device side of {@link CopyMethodSelector}: whether a copy method can run on one context,
 * and how fast each one moves {@code calibrationBytes} of blocks in scattered order between
 * scratch buffers of the engine's own, timed with CUDA events (median of 3 runs after a warm-up).
 * Measurements use a stream of their own, never a lane's, so submissions do not wait for them.
 *
 * <p>Thread safety: {@link #unavailable} from any thread; {@link #measure} from one thread at a
 * time (the selector serialises it).
 */
final class CopyMethodProbe implements CopyMethodSelector.Probe {
    private final CudaContext context;
    private final long calibrationBytes;
    private final int maxCtas;
    private final boolean batchSourceAnyOrder;
    private final int copyStreams;
    private final int callCopies;
    private final boolean batchHostOrdered;
    private final boolean kernelHostOrdered;

    /**
     * @param calibrationBytes    bytes moved per trial
     * @param maxCtas             upper bound on a copy kernel's grid, as the lanes use
     * @param batchSourceAnyOrder source access order of batched copies, as the lanes use
     * @param copyStreams         streams batched copies are spread over, as the lanes use
     * @param callCopies          copies per {@code cuMemcpyBatchAsync} call, as the lanes use
     * @param batchHostOrdered    whether the lanes order batched copies by host address
     * @param kernelHostOrdered   whether the lanes order kernel batches by host address
     */
    CopyMethodProbe(CudaContext context, long calibrationBytes, int maxCtas, boolean batchSourceAnyOrder,
                    int copyStreams, int callCopies, boolean batchHostOrdered, boolean kernelHostOrdered) {
        this.batchHostOrdered = batchHostOrdered;
        this.kernelHostOrdered = kernelHostOrdered;
        this.context = context;
        this.calibrationBytes = calibrationBytes;
        this.maxCtas = maxCtas;
        this.batchSourceAnyOrder = batchSourceAnyOrder;
        this.copyStreams = copyStreams;
        this.callCopies = callCopies;
    }

    @Override
    public String unavailable(CopyMethod m, CudaContext peer) {
        switch (m) {
            case KERNEL -> {
                if (peer != null && !context.enablePeerAccess(peer)) {
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

    /**
     * @return GB/s per available batch method; {@code PER_BLOCK} at 0 if neither can run
     * @throws IllegalArgumentException if the block size is not a positive multiple of 16
     */
    @Override
    public Map<CopyMethod, Double> measure(Direction dir, long blockBytes) {
        if (blockBytes <= 0 || blockBytes % CopyKernels.ALIGNMENT != 0) {
            throw new IllegalArgumentException("block size must be a positive multiple of 16, was " + blockBytes);
        }
        int blocks = (int) Math.max(8, Math.min(1 << 20, calibrationBytes / blockBytes));
        long bytes = blocks * blockBytes;
        Map<CopyMethod, Double> rates = new EnumMap<>(CopyMethod.class);
        boolean srcHost = dir == Direction.HOST_TO_DEVICE;
        boolean dstHost = dir == Direction.DEVICE_TO_HOST;
        long srcBase = 0;
        long dstBase = 0;
        long[] streams = new long[copyStreams];
        ChunkEnqueuer enqueuer = null;
        long start = 0;
        long end = 0;
        StagingBuffers st = null;
        try {
            context.makeCurrent();
            srcBase = srcHost ? context.hostAllocate(bytes) : context.allocate(bytes);
            dstBase = dstHost ? context.hostAllocate(bytes) : context.allocate(bytes);
            for (int i = 0; i < streams.length; i++) {
                streams[i] = context.createStream();
            }
            long stream = streams[0];
            start = context.createEvent(true);
            end = context.createEvent(true);
            st = new StagingBuffers(context, blocks, 1);
            enqueuer = new ChunkEnqueuer(context, streams, maxCtas, batchSourceAnyOrder, callCopies);
            int[] perm = permutation(blocks, new SplittableRandom(blockBytes));
            for (CopyMethod m : new CopyMethod[] {CopyMethod.KERNEL, CopyMethod.BATCH_MEMCPY}) {
                if (unavailable(m, null) != null) {
                    continue;
                }
                boolean kernel = m == CopyMethod.KERNEL;
                long srcK = kernel && srcHost && !context.hostPointerIsDevicePointer()
                        ? context.hostDevicePointer(srcBase) : srcBase;
                long dstK = kernel && dstHost && !context.hostPointerIsDevicePointer()
                        ? context.hostDevicePointer(dstBase) : dstBase;
                MemorySegment pairs = st.pairs(0);
                // scattered on one side; the host side ascending where the lanes would order the batch so
                boolean hostDestinationAscending = dstHost && (kernel ? kernelHostOrdered : batchHostOrdered);
                for (int i = 0; i < blocks; i++) {
                    long from = (long) (hostDestinationAscending ? perm[i] : i) * blockBytes;
                    long to = (long) (hostDestinationAscending ? i : perm[i]) * blockBytes;
                    StagingBuffers.putPair(pairs, i, srcK + from, dstK + to);
                }
                double[] ms = new double[3];
                for (int r = -1; r < ms.length; r++) {
                    context.check(Cuda.driver().cuEventRecord(start, stream), "cuEventRecord");
                    enqueuer.begin();
                    enqueuer.enqueue(m, dir, st, 0, blocks, blockBytes);
                    enqueuer.join();
                    context.check(Cuda.driver().cuEventRecord(end, stream), "cuEventRecord");
                    context.check(Cuda.driver().cuEventSynchronize(end), "cuEventSynchronize");
                    if (r >= 0) {
                        FloatByReference t = new FloatByReference();
                        context.check(Cuda.driver().cuEventElapsedTime_v2(t, start, end), "cuEventElapsedTime");
                        ms[r] = t.getValue();
                    }
                }
                Arrays.sort(ms);
                rates.put(m, bytes / (ms[1] * 1e6));
            }
            if (rates.isEmpty()) {
                rates.put(CopyMethod.PER_BLOCK, 0.0);
            }
            return rates;
        } finally {
            if (start != 0) {
                Cuda.driver().cuEventDestroy_v2(start);
            }
            if (end != 0) {
                Cuda.driver().cuEventDestroy_v2(end);
            }
            if (!context.failed()) {
                if (enqueuer != null) {
                    enqueuer.synchronize();
                    enqueuer.free();
                }
                for (long s : streams) {
                    if (s != 0) {
                        Cuda.driver().cuStreamSynchronize(s);
                        Cuda.driver().cuStreamDestroy_v2(s);
                    }
                }
                if (st != null) {
                    st.free(context);
                }
                freeScratch(srcBase, srcHost);
                freeScratch(dstBase, dstHost);
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

    /** @return a uniformly random permutation of [0, n) (Fisher-Yates, so a seed always gives the same one) */
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
}
