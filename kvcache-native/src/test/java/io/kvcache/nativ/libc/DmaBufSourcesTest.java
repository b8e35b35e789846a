package io.kvcache.nativ.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DmaBufSourcesTest {

    @TempDir
    Path dir;

    @Test
    void absentDmaHeapIsReportedAsAbsent() {
        Path heap = dir.resolve("dma_heap/system");
        DmaBufUnavailableException e = assertThrows(DmaBufUnavailableException.class,
                () -> DmaHeap.allocate(heap, 1 << 20));
        assertEquals(heap.toString(), e.source());
        assertTrue(e.getMessage().contains("absent"), e.getMessage());
    }

    @Test
    void absentUdmabufIsReportedAsAbsent() {
        Path dev = dir.resolve("udmabuf");
        DmaBufUnavailableException e = assertThrows(DmaBufUnavailableException.class,
                () -> Udmabuf.allocate(dev, 1 << 20));
        assertTrue(e.getMessage().startsWith(dev + ": absent"), e.getMessage());
    }

    @Test
    void aFileThatIsNotADmaHeapFailsAtTheIoctlAndLeaksNoDescriptor() throws IOException {
        Path notAHeap = Files.createFile(dir.resolve("system"));
        long before = openDescriptors();
        DmaBufUnavailableException e = assertThrows(DmaBufUnavailableException.class,
                () -> DmaHeap.allocate(notAHeap, 1 << 20));
        assertTrue(e.getMessage().contains("DMA_HEAP_IOCTL_ALLOC"), e.getMessage());
        assertTrue(e.getMessage().contains("errno 25"), e.getMessage()); // ENOTTY
        assertEquals(before, openDescriptors());
    }

    @Test
    void aFileThatIsNotUdmabufFailsAtTheIoctlAndLeaksNeitherTheMemfdNorTheDevice() throws IOException {
        Path notUdmabuf = Files.createFile(dir.resolve("udmabuf"));
        long before = openDescriptors();
        DmaBufUnavailableException e = assertThrows(DmaBufUnavailableException.class,
                () -> Udmabuf.allocate(notUdmabuf, 3 << 20));
        assertTrue(e.getMessage().contains("UDMABUF_CREATE over a memfd of 3145728 bytes"), e.getMessage());
        assertEquals(before, openDescriptors());
    }

    @Test
    void nonPositiveSizesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> DmaHeap.allocate(DmaHeap.SYSTEM, 0));
        assertThrows(IllegalArgumentException.class, () -> Udmabuf.allocate(Udmabuf.DEVICE, -1));
    }

    @Test
    void sizesRoundUpToWholePages() {
        assertEquals(4096, DmaBuf.pageAligned(1));
        assertEquals(8192, DmaBuf.pageAligned(4097));
        assertEquals(1 << 20, DmaBuf.pageAligned(1 << 20));
    }

    private static long openDescriptors() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }
}
