package io.kvcache.tiers.transfer;

import io.kvcache.nativ.cuda.CopyKernels;

/**
 * The layout of one chunk of copy descriptors, in pinned host memory and in its device copy: the
 * only place that knows an offset. Everything else asks these functions (as Agrona's
 * {@code RecordDescriptor} does for ring-buffer records).
 *
 * <pre>
 * host chunk   [counter: COUNTER_BYTES, zero][pairs: PAIR_BYTES each][dsts][srcs][sizes: ADDRESS_BYTES each]
 * device chunk [counter: COUNTER_BYTES      ][pairs: PAIR_BYTES each]
 * pair i       [source address][destination address]          (kv_copy.cu's ulonglong2)
 * </pre>
 *
 * <p>The kernel path copies a chunk's counter and pairs to the device in one copy
 * ({@link #kernelUploadBytes}), which also resets the kernel's work counter; the batched-memcpy
 * path transposes the pairs into the three arrays {@code cuMemcpyBatchAsync} takes.
 *
 * <p>Stateless; any thread.
 */
final class CopyDescriptorLayout {
    /** The kernel's 32-bit work counter, padded so that the pairs stay 16-byte aligned. */
    static final long COUNTER_BYTES = 16;
    /** One (source, destination) pair, as the copy kernels read it. */
    static final long PAIR_BYTES = CopyKernels.PAIR_BYTES;
    /** One address or size in the batched-memcpy arrays. */
    static final long ADDRESS_BYTES = 8;

    private CopyDescriptorLayout() {
    }

    /** @return offset of pair {@code i}'s source address within a chunk's pairs */
    static long pairSourceOffset(int i) {
        return PAIR_BYTES * i;
    }

    /** @return offset of pair {@code i}'s destination address within a chunk's pairs */
    static long pairDestinationOffset(int i) {
        return PAIR_BYTES * i + ADDRESS_BYTES;
    }

    /** @return bytes of the pairs of {@code blocks} blocks */
    static long pairsBytes(int blocks) {
        return PAIR_BYTES * blocks;
    }

    /** @return offset of the pairs within a host or device chunk */
    static long pairsOffset() {
        return COUNTER_BYTES;
    }

    /** @return offset of the three batched-memcpy arrays within a host chunk */
    static long arraysOffset(int chunkBlocks) {
        return COUNTER_BYTES + pairsBytes(chunkBlocks);
    }

    /** @return bytes of the three batched-memcpy arrays of a chunk */
    static long arraysBytes(int chunkBlocks) {
        return 3 * ADDRESS_BYTES * chunkBlocks;
    }

    /** @return offset of entry {@code i} within one of the three arrays */
    static long arrayEntryOffset(int i) {
        return ADDRESS_BYTES * i;
    }

    /** @return offset of the destination addresses within the arrays */
    static long destinationsOffset() {
        return 0;
    }

    /** @return offset of the source addresses within the arrays */
    static long sourcesOffset(int chunkBlocks) {
        return ADDRESS_BYTES * chunkBlocks;
    }

    /** @return offset of the sizes within the arrays */
    static long sizesOffset(int chunkBlocks) {
        return 2 * ADDRESS_BYTES * chunkBlocks;
    }

    /** @return bytes of one host chunk */
    static long hostChunkBytes(int chunkBlocks) {
        return arraysOffset(chunkBlocks) + arraysBytes(chunkBlocks);
    }

    /** @return bytes of one device chunk */
    static long deviceChunkBytes(int chunkBlocks) {
        return COUNTER_BYTES + pairsBytes(chunkBlocks);
    }

    /** @return bytes the kernel path copies to the device for {@code blocks} blocks: counter and pairs */
    static long kernelUploadBytes(int blocks) {
        return COUNTER_BYTES + pairsBytes(blocks);
    }
}
