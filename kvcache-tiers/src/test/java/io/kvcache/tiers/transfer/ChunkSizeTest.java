package io.kvcache.tiers.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ChunkSizeTest {

    @Test
    void chunksHoldAbout128MiBButNeverFewerThan2048Blocks() {
        assertEquals(8192, CudaTransferEngine.chunkBlocks(16 << 10));
        assertEquals(2048, CudaTransferEngine.chunkBlocks(64 << 10));
        assertEquals(2048, CudaTransferEngine.chunkBlocks(2 << 20));
        assertEquals(1 << 20, CudaTransferEngine.chunkBlocks(16));
    }
}
