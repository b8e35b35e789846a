package io.kvcache.tiers.transfer;

import io.kvcache.core.transfer.BlockMove;
import io.kvcache.nativ.cuda.CudaContext;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Pinned descriptor memory for one batch and its device copy, in {@link #chunks} chunks of
 * {@link #chunkBlocks} blocks laid out as {@link CopyDescriptorLayout} says; reused by later
 * batches of the same chunk size once the batch completes. Also the chunk schedule: a batch is
 * described and enqueued chunk by chunk, so that the device copies the first chunk while later
 * ones are described, and the first chunks are small ({@value #FIRST_CHUNK_BLOCKS} blocks,
 * doubling) so that the copy starts within microseconds.
 *
 * <p>Thread safety: none. A buffer belongs to one batch from {@link CudaLane#staging} until
 * {@link CudaLane#recycle}, and is written under that lane's lock (or by the calibration that
 * made it).
 */
final class StagingBuffers {
    private static final long CHUNK_BYTES = 128L << 20;
    private static final int CHUNK_MIN_BLOCKS = 2048;
    static final int FIRST_CHUNK_BLOCKS = 256;

    final int chunkBlocks;
    final int chunks;
    private final long host;
    private final long device;
    private final long hostStride;
    private final long deviceStride;
    private final MemorySegment all;

    // the segment covers the pinned allocation just made, at its size
    @SuppressWarnings("restricted")
    StagingBuffers(CudaContext ctx, int chunkBlocks, int chunks) {
        this.chunkBlocks = chunkBlocks;
        this.chunks = chunks;
        this.hostStride = CopyDescriptorLayout.hostChunkBytes(chunkBlocks);
        this.deviceStride = CopyDescriptorLayout.deviceChunkBytes(chunkBlocks);
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

    /** Blocks per enqueued chunk: about 128 MiB, at least 2048 blocks, so chunks take milliseconds. */
    static int chunkBlocks(long blockBytes) {
        return (int) Math.max(CHUNK_MIN_BLOCKS, Math.min(1 << 20, CHUNK_BYTES / blockBytes));
    }

    /** @return blocks chunk {@code c} holds at most: growing from {@value #FIRST_CHUNK_BLOCKS}, then full ones */
    static int chunkCapacity(int c, int chunkBlocks) {
        // shifting by 32 or more would wrap: every chunk from there on is a full one anyway
        return c >= Integer.numberOfLeadingZeros(FIRST_CHUNK_BLOCKS) ? chunkBlocks
                : Math.min(FIRST_CHUNK_BLOCKS << c, chunkBlocks);
    }

    /** @return chunks a batch of {@code n} blocks is enqueued in */
    static int chunkCount(int n, int chunkBlocks) {
        int chunks = 0;
        for (long first = 0; first < n; chunks++) {
            first += chunkCapacity(chunks, chunkBlocks);
        }
        return chunks;
    }

    /** @return the pinned host address of chunk {@code c} (its counter) */
    long hostChunk(int c) {
        return host + c * hostStride;
    }

    /** @return the device address of chunk {@code c} (its counter) */
    long deviceChunk(int c) {
        return device + c * deviceStride;
    }

    /** @return chunk {@code c}'s (source, destination) pairs */
    MemorySegment pairs(int c) {
        return all.asSlice(c * hostStride + CopyDescriptorLayout.pairsOffset(),
                CopyDescriptorLayout.pairsBytes(chunkBlocks));
    }

    /** @return chunk {@code c}'s destination, source and size arrays for {@code cuMemcpyBatchAsync} */
    MemorySegment arrays(int c) {
        return all.asSlice(c * hostStride + CopyDescriptorLayout.arraysOffset(chunkBlocks),
                CopyDescriptorLayout.arraysBytes(chunkBlocks));
    }

    /**
     * Describes moves {@code [first, first + count)} of a batch (in {@code order}, if given) as
     * the pairs of chunk {@code c}.
     *
     * @param order  move indices in their low 32 bits, or null for the batch's order
     * @param kernel whether the copy kernel reads the pairs (pinned host slots at their mapped address)
     * @param offset byte of each slot the copies start at, the same on both sides (0 for whole slots)
     * @return the chunk's pairs
     */
    MemorySegment describe(int c, List<BlockMove> moves, long[] order, int first, int count, CudaRoute route,
                           boolean kernel, long offset) {
        MemorySegment pairs = pairs(c);
        for (int i = 0; i < count; i++) {
            BlockMove m = moves.get(order == null ? first + i : (int) order[first + i]);
            putPair(pairs, i, route.sourceAddress(m.srcSlot(), kernel) + offset,
                    route.destinationAddress(m.dstSlot(), kernel) + offset);
        }
        return pairs;
    }

    /** Writes pair {@code i} of a chunk's {@link #pairs}. */
    static void putPair(MemorySegment pairs, int i, long source, long destination) {
        pairs.set(ValueLayout.JAVA_LONG_UNALIGNED, CopyDescriptorLayout.pairSourceOffset(i), source);
        pairs.set(ValueLayout.JAVA_LONG_UNALIGNED, CopyDescriptorLayout.pairDestinationOffset(i), destination);
    }

    /** @return the source address of pair {@code i} */
    static long pairSource(MemorySegment pairs, int i) {
        return pairs.get(ValueLayout.JAVA_LONG_UNALIGNED, CopyDescriptorLayout.pairSourceOffset(i));
    }

    /** @return the destination address of pair {@code i} */
    static long pairDestination(MemorySegment pairs, int i) {
        return pairs.get(ValueLayout.JAVA_LONG_UNALIGNED, CopyDescriptorLayout.pairDestinationOffset(i));
    }

    void free(CudaContext ctx) {
        ctx.hostFree(host);
        ctx.free(device);
    }
}
