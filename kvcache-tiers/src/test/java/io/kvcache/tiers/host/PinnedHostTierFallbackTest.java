package io.kvcache.tiers.host;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.libc.DmaBufUnavailableException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PinnedHostTierFallbackTest {

    @TempDir
    Path dir;

    @Test
    void absentDmaBufDevicesAreEachReportedInOrder() {
        PinnedMemoryUnavailableException e = assertThrows(PinnedMemoryUnavailableException.class,
                () -> PinnedHostTier.builder(65536, 8)
                        .dmaHeap(dir.resolve("dma_heap/system"))
                        .udmabuf(dir.resolve("udmabuf"))
                        .sources(HostBacking.DMA_HEAP, HostBacking.UDMABUF)
                        .build());
        String m = e.getMessage();
        int heap = m.indexOf("dma-heap: " + dir.resolve("dma_heap/system") + ": absent");
        int udma = m.indexOf("udmabuf: " + dir.resolve("udmabuf") + ": absent");
        assertTrue(heap > 0 && udma > heap, m);
        assertTrue(m.contains("8 slots of 65536 bytes"), m);
        assertTrue(e.getCause() instanceof DmaBufUnavailableException, String.valueOf(e.getCause()));
    }

    @Test
    void aDeviceFileThatRefusesTheAllocationIsReportedWithItsErrno() throws IOException {
        Path fake = Files.createFile(dir.resolve("system"));
        PinnedMemoryUnavailableException e = assertThrows(PinnedMemoryUnavailableException.class,
                () -> PinnedHostTier.builder(65536, 8).dmaHeap(fake).sources(HostBacking.DMA_HEAP).build());
        assertTrue(e.getMessage().contains("DMA_HEAP_IOCTL_ALLOC"), e.getMessage());
    }

    @Test
    void withoutADriverTheWholeChainFailsNamingEverySource() {
        assumeFalse(Cuda.available(), "a CUDA driver is present on this host");
        PinnedMemoryUnavailableException e = assertThrows(PinnedMemoryUnavailableException.class,
                () -> PinnedHostTier.builder(65536, 8)
                        .dmaHeap(dir.resolve("dma_heap/system"))
                        .udmabuf(dir.resolve("udmabuf"))
                        .build());
        String m = e.getMessage();
        for (HostBacking b : HostBacking.values()) {
            assertTrue(m.contains(b.label() + ": "), b + " missing from " + m);
        }
        assertTrue(m.contains("CUDA is not available"), m);
    }

    @Test
    void badShapesAreRejectedBeforeAnythingIsAllocated() {
        assertThrows(IllegalArgumentException.class, () -> PinnedHostTier.builder(0, 8));
        assertThrows(IllegalArgumentException.class, () -> PinnedHostTier.builder(100, 8));
        assertThrows(IllegalArgumentException.class, () -> PinnedHostTier.builder(4096, 0));
        assertThrows(IllegalArgumentException.class, () -> PinnedHostTier.builder(4096, 1).chunkBytes(0));
        assertThrows(IllegalArgumentException.class, () -> PinnedHostTier.builder(4096, 1).sources());
    }
}
