package io.kvcache.tiers.transfer;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import io.kvcache.nativ.cuda.BatchedMemcpy;
import io.kvcache.nativ.cuda.CopyKernels;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Enqueues the copies one chunk of descriptors describes, in one of the three
 * {@link CopyMethod}s. Owns the native scratch those calls reuse (kernel parameters, batched-copy
 * attributes), so nothing is allocated per chunk.
 *
 * <p>Copies go on the lane's stream ({@code streams[0]}, where the batch's event is recorded).
 * Batched copy-engine copies ({@link CopyMethod#BATCH_MEMCPY}) may be spread over further
 * streams of the same direction, call by call, so that the driver can run them on more than one
 * copy engine; {@link #join} makes the lane's stream wait for them before
 * the batch's event is recorded. A batch is bracketed by {@link #begin} and {@link #join}.
 *
 * <p>Thread safety: none. One per lane; the caller holds the lane's lock (or owns the streams,
 * as calibration does), with the context current.
 */
final class ChunkEnqueuer {
    /** Copies per {@code cuMemcpyBatchAsync} call, unless the builder says otherwise. */
    static final int BATCH_CALL_COPIES = 256;
    /** The fewest copies per call when a chunk is shared out over several streams. */
    private static final int MIN_SPREAD_CALL_COPIES = 64;

    private final CudaContext context;
    private final long stream;
    private final long[] streams;
    private final long[] joins;
    private final boolean[] used;
    private int nextStream;
    private final int maxCtas;
    private final boolean batchSourceAnyOrder;
    private final int callCopies;
    private final CopyKernels.Launch launch = new CopyKernels.Launch();
    private final Memory attributes = new Memory(BatchedMemcpy.ATTRIBUTES_BYTES);
    private final Memory attrIndex = new Memory(8);
    private final Memory failIndex = new Memory(8);

    /**
     * @param streams             the lane's stream first, then any further streams copy-engine
     *                            copies may use (owned by the caller, which destroys them)
     * @param maxCtas             upper bound on a kernel's grid
     * @param batchSourceAnyOrder whether {@code cuMemcpyBatchAsync} may read sources in any order
     * @param callCopies          copies per {@code cuMemcpyBatchAsync} call
     */
    ChunkEnqueuer(CudaContext context, long[] streams, int maxCtas, boolean batchSourceAnyOrder, int callCopies) {
        this.context = context;
        this.streams = streams.clone();
        this.stream = streams[0];
        this.maxCtas = maxCtas;
        this.batchSourceAnyOrder = batchSourceAnyOrder;
        this.callCopies = callCopies;
        this.used = new boolean[streams.length];
        this.joins = new long[streams.length];
        for (int i = 1; i < streams.length; i++) {
            joins[i] = context.createEvent(false);
        }
        attrIndex.setLong(0, 0);
    }

    /**
     * Starts a batch. The round robin over the streams goes on from where the last batch left
     * it, so that batches of a few calls each (one per layer, say) still use every stream.
     */
    void begin() {
        Arrays.fill(used, false);
    }

    /**
     * Makes the lane's stream wait for what the batch put on the other streams (a no-op when it
     * used none), so that an event recorded on the lane's stream next covers the whole batch.
     * The join events may be recorded again at once: a wait refers to the record before it.
     */
    void join() {
        CuLib cu = Cuda.driver();
        for (int i = 1; i < streams.length; i++) {
            if (used[i]) {
                context.check(cu.cuEventRecord(joins[i], streams[i]), "cuEventRecord");
                context.check(cu.cuStreamWaitEvent(stream, joins[i], 0), "cuStreamWaitEvent");
                used[i] = false;
            }
        }
    }

    /** Waits on the host for every stream this enqueuer copies on. */
    void synchronize() {
        for (long s : streams) {
            Cuda.driver().cuStreamSynchronize(s);
        }
    }

    /** Releases the join events (not the streams, which the caller owns). */
    void free() {
        for (int i = 1; i < joins.length; i++) {
            Cuda.driver().cuEventDestroy_v2(joins[i]);
        }
    }

    /** @return the stream the next copy-engine call goes on, round robin over the streams */
    private long copyStream() {
        int i = nextStream;
        nextStream = i + 1 == streams.length ? 0 : i + 1;
        used[i] = true;
        return streams[i];
    }

    /**
     * Enqueues the copies described by the first {@code n} pairs of chunk {@code c}, {@code bytes}
     * bytes each.
     */
    void enqueue(CopyMethod m, Direction dir, StagingBuffers st, int c, int n, long bytes) {
        switch (m) {
            case KERNEL -> kernel(dir, st, c, n, bytes);
            case BATCH_MEMCPY -> batchMemcpy(dir, st, c, n, bytes);
            case PER_BLOCK -> perBlock(st, c, n, bytes);
        }
    }

    /** One upload of the chunk's zeroed counter and pairs, then one launch of the direction's kernel. */
    void kernel(Direction dir, StagingBuffers st, int c, int n, long blockBytes) {
        CopyKernels k = context.copyKernels();
        long devChunk = st.deviceChunk(c);
        context.check(Cuda.driver().cuMemcpyHtoDAsync_v2(devChunk, st.hostChunk(c),
                CopyDescriptorLayout.kernelUploadBytes(n), stream), "cuMemcpyHtoDAsync");
        long fn = switch (dir) {
            case HOST_TO_DEVICE -> k.gather();
            case DEVICE_TO_HOST -> k.scatter();
            case DEVICE_TO_DEVICE -> k.deviceToDevice();
        };
        launch.launch(context, fn, devChunk + CopyDescriptorLayout.pairsOffset(), devChunk, blockBytes, n, maxCtas,
                stream);
    }

    /** The pairs transposed into destination, source and size arrays, then a few batched driver calls. */
    void batchMemcpy(Direction dir, StagingBuffers st, int c, int n, long blockBytes) {
        MemorySegment pairs = st.pairs(c);
        MemorySegment arrays = st.arrays(c);
        long dstsOff = CopyDescriptorLayout.destinationsOffset();
        long srcsOff = CopyDescriptorLayout.sourcesOffset(st.chunkBlocks);
        long sizesOff = CopyDescriptorLayout.sizesOffset(st.chunkBlocks);
        for (int i = 0; i < n; i++) {
            long entry = CopyDescriptorLayout.arrayEntryOffset(i);
            arrays.set(ValueLayout.JAVA_LONG_UNALIGNED, dstsOff + entry, StagingBuffers.pairDestination(pairs, i));
            arrays.set(ValueLayout.JAVA_LONG_UNALIGNED, srcsOff + entry, StagingBuffers.pairSource(pairs, i));
            arrays.set(ValueLayout.JAVA_LONG_UNALIGNED, sizesOff + entry, blockBytes);
        }
        long a = arrays.address();
        attributesFor(dir);
        // calls of a few hundred copies: measured several times faster than one call of
        // thousands for 16-64 KiB blocks on the H200 host; a chunk too small to give every
        // stream a full call is shared out in smaller ones
        int per = Math.min(callCopies, Math.max(MIN_SPREAD_CALL_COPIES, (n + streams.length - 1) / streams.length));
        for (int first = 0; first < n; first += per) {
            int count = Math.min(per, n - first);
            long o = CopyDescriptorLayout.arrayEntryOffset(first);
            context.batchedMemcpy().copy(context, new Pointer(a + dstsOff + o), new Pointer(a + srcsOff + o),
                    new Pointer(a + sizesOff + o), count, attributes, attrIndex, failIndex, copyStream());
        }
    }

    /** One {@code cuMemcpyAsync} per block. */
    void perBlock(StagingBuffers st, int c, int n, long blockBytes) {
        CuLib cu = Cuda.driver();
        MemorySegment pairs = st.pairs(c);
        for (int i = 0; i < n; i++) {
            context.check(cu.cuMemcpyAsync(StagingBuffers.pairDestination(pairs, i), StagingBuffers.pairSource(pairs, i),
                    blockBytes, stream), "cuMemcpyAsync");
        }
    }

    private void attributesFor(Direction dir) {
        int ordinal = context.ordinal();
        int srcType = dir == Direction.HOST_TO_DEVICE ? BatchedMemcpy.LOCATION_HOST : BatchedMemcpy.LOCATION_DEVICE;
        int dstType = dir == Direction.DEVICE_TO_HOST ? BatchedMemcpy.LOCATION_HOST : BatchedMemcpy.LOCATION_DEVICE;
        BatchedMemcpy.fillAttributes(attributes, srcType, srcType == BatchedMemcpy.LOCATION_DEVICE ? ordinal : 0,
                dstType, dstType == BatchedMemcpy.LOCATION_DEVICE ? ordinal : 0);
        if (batchSourceAnyOrder) {
            attributes.setInt(0, BatchedMemcpy.SRC_ACCESS_ORDER_ANY);
        }
    }
}
