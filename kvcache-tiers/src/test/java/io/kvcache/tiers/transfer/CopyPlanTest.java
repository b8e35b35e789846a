package io.kvcache.tiers.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Map;
import org.junit.jupiter.api.Test;

class CopyPlanTest {

    @Test
    void chunksHoldAbout128MiBButNeverFewerThan2048Blocks() {
        assertEquals(8192, CudaTransferEngine.chunkBlocks(16 << 10));
        assertEquals(2048, CudaTransferEngine.chunkBlocks(64 << 10));
        assertEquals(2048, CudaTransferEngine.chunkBlocks(2 << 20));
        assertEquals(1 << 20, CudaTransferEngine.chunkBlocks(16));
    }

    @Test
    void chunksGrowFrom256BlocksSoThatCopyingStartsEarly() {
        assertEquals(1, CudaTransferEngine.chunkCount(1, 8192));
        assertEquals(1, CudaTransferEngine.chunkCount(256, 8192));
        assertEquals(2, CudaTransferEngine.chunkCount(257, 8192));
        // 256 + 512 + 1024 + 2048 + 4096 = 7936, then chunks of 8192
        assertEquals(5, CudaTransferEngine.chunkCount(7936, 8192));
        assertEquals(6, CudaTransferEngine.chunkCount(7937, 8192));
        assertEquals(13, CudaTransferEngine.chunkCount(65536, 8192));
    }

    @Test
    void copyEnginesArePreferredWhenNearlyAsFastAsTheKernel() {
        assertEquals(CopyMethod.KERNEL, CudaTransferEngine.choose(Map.of(CopyMethod.KERNEL, 50.7,
                CopyMethod.BATCH_MEMCPY, 39.1)));
        assertEquals(CopyMethod.BATCH_MEMCPY, CudaTransferEngine.choose(Map.of(CopyMethod.KERNEL, 50.4,
                CopyMethod.BATCH_MEMCPY, 50.0)));
        assertEquals(CopyMethod.BATCH_MEMCPY, CudaTransferEngine.choose(Map.of(CopyMethod.KERNEL, 50.6,
                CopyMethod.BATCH_MEMCPY, 54.2)));
        assertEquals(CopyMethod.KERNEL, CudaTransferEngine.choose(Map.of(CopyMethod.KERNEL, 49.0)));
        assertEquals(CopyMethod.PER_BLOCK, CudaTransferEngine.choose(Map.of(CopyMethod.PER_BLOCK, 0.0)));
    }

    @Test
    void bothDirectionsOfTheLinkUseOneMethod() {
        // 64 KiB as measured: each direction alone would pick differently
        Map<CopyMethod, Double> up = Map.of(CopyMethod.KERNEL, 50.2, CopyMethod.BATCH_MEMCPY, 49.5);
        Map<CopyMethod, Double> down = Map.of(CopyMethod.KERNEL, 51.8, CopyMethod.BATCH_MEMCPY, 49.7);
        assertEquals(CopyMethod.BATCH_MEMCPY, CudaTransferEngine.choose(up));
        assertEquals(CopyMethod.KERNEL, CudaTransferEngine.choose(down));
        assertEquals(CopyMethod.BATCH_MEMCPY, CudaTransferEngine.chooseForLink(up, down));
        Map<CopyMethod, Double> smallUp = Map.of(CopyMethod.KERNEL, 48.2, CopyMethod.BATCH_MEMCPY, 16.5);
        Map<CopyMethod, Double> smallDown = Map.of(CopyMethod.KERNEL, 50.9, CopyMethod.BATCH_MEMCPY, 22.9);
        assertEquals(CopyMethod.KERNEL, CudaTransferEngine.chooseForLink(smallUp, smallDown));
        assertEquals(CopyMethod.KERNEL, CudaTransferEngine.chooseForLink(Map.of(CopyMethod.KERNEL, 1.0),
                Map.of(CopyMethod.KERNEL, 1.0, CopyMethod.BATCH_MEMCPY, 5.0)));
    }
}
