package io.kvcache.tiers.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class StagingBuffersTest {

    @Test
    void chunksHoldAbout128MiBButNeverFewerThan2048Blocks() {
        assertEquals(8192, StagingBuffers.chunkBlocks(16 << 10));
        assertEquals(2048, StagingBuffers.chunkBlocks(64 << 10));
        assertEquals(2048, StagingBuffers.chunkBlocks(2 << 20));
        assertEquals(1 << 20, StagingBuffers.chunkBlocks(16));
    }

    @Test
    void chunksGrowFrom256BlocksSoThatCopyingStartsEarly() {
        assertEquals(1, StagingBuffers.chunkCount(1, 8192));
        assertEquals(1, StagingBuffers.chunkCount(256, 8192));
        assertEquals(2, StagingBuffers.chunkCount(257, 8192));
        // 256 + 512 + 1024 + 2048 + 4096 = 7936, then chunks of 8192
        assertEquals(5, StagingBuffers.chunkCount(7936, 8192));
        assertEquals(6, StagingBuffers.chunkCount(7937, 8192));
        assertEquals(13, StagingBuffers.chunkCount(65536, 8192));
        assertEquals(256, StagingBuffers.chunkCapacity(0, 8192));
        assertEquals(4096, StagingBuffers.chunkCapacity(4, 8192));
        assertEquals(8192, StagingBuffers.chunkCapacity(5, 8192));
    }

    /** Past 23 chunks a doubling count of 256 would wrap; every chunk from there is a full one. */
    @Test
    void batchesOfManyFullChunksKeepCounting() {
        // 256 + 512 + 1024 = 1792, then 2048 each: 1792 + 48 * 2048 = 100096 >= 100000
        assertEquals(51, StagingBuffers.chunkCount(100_000, 2048));
        assertEquals(2048, StagingBuffers.chunkCapacity(23, 2048));
        assertEquals(2048, StagingBuffers.chunkCapacity(40, 2048));
        assertEquals(3 + (int) ((Integer.MAX_VALUE - 1792L + 2047) / 2048), StagingBuffers.chunkCount(Integer.MAX_VALUE, 2048));
    }

    /** What kv_copy.cu reads: a 16-byte counter, then (source, destination) pairs of two 64-bit addresses. */
    @Test
    void descriptorLayoutMatchesTheKernelsAndTheBatchedCopy() {
        assertEquals(0, CopyDescriptorLayout.pairSourceOffset(0));
        assertEquals(8, CopyDescriptorLayout.pairDestinationOffset(0));
        assertEquals(16 * 5, CopyDescriptorLayout.pairSourceOffset(5));
        assertEquals(16 * 5 + 8, CopyDescriptorLayout.pairDestinationOffset(5));
        assertEquals(16, CopyDescriptorLayout.pairsOffset());
        assertEquals(16 + 16L * 3, CopyDescriptorLayout.kernelUploadBytes(3));
        // host chunk: counter, pairs, then destinations, sources and sizes of 8 bytes each
        assertEquals(16 + 40L * 2048, CopyDescriptorLayout.hostChunkBytes(2048));
        assertEquals(16 + 16L * 2048, CopyDescriptorLayout.deviceChunkBytes(2048));
        assertEquals(16 + 16L * 2048, CopyDescriptorLayout.arraysOffset(2048));
        assertEquals(0, CopyDescriptorLayout.destinationsOffset());
        assertEquals(8L * 2048, CopyDescriptorLayout.sourcesOffset(2048));
        assertEquals(16L * 2048, CopyDescriptorLayout.sizesOffset(2048));
        assertEquals(24L * 2048, CopyDescriptorLayout.arraysBytes(2048));
    }
}
