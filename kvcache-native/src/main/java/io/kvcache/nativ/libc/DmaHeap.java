package io.kvcache.nativ.libc;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Allocates DMA-BUFs from a Linux dma-heap ({@code /dev/dma_heap/<name>}, kernel 5.6+) with the
 * {@code DMA_HEAP_IOCTL_ALLOC} ioctl, and maps them.
 */
public final class DmaHeap {

    /** The system heap: ordinary page-locked pages. */
    public static final Path SYSTEM = Path.of("/dev/dma_heap/system");

    /** {@code _IOWR('H', 0, struct dma_heap_allocation_data)}, a 24-byte struct. */
    static final long DMA_HEAP_IOCTL_ALLOC = 0xC0184800L;

    private DmaHeap() {
    }

    /**
     * Allocates and maps a buffer.
     *
     * @param heap  the heap's device file
     * @param bytes size, rounded up to whole pages
     * @throws DmaBufUnavailableException naming the heap and why (absent, not openable, refused)
     */
    public static DmaBuf allocate(Path heap, long bytes) {
        String source = heap.toString();
        if (bytes <= 0) {
            throw new IllegalArgumentException("dma-buf size must be positive, was " + bytes);
        }
        if (!Files.exists(heap)) {
            throw new DmaBufUnavailableException(source, "absent (no dma-heap on this kernel or device not exposed)");
        }
        long size = DmaBuf.pageAligned(bytes);
        int heapFd;
        try {
            heapFd = LibC.INSTANCE.open(source, LibC.O_RDWR | LibC.O_CLOEXEC);
        } catch (LastErrorException e) {
            throw new DmaBufUnavailableException(source, "open failed, errno " + e.getErrorCode());
        }
        int bufferFd;
        try (Memory data = new Memory(24)) {
            data.clear();
            data.setLong(0, size);                                   // len
            data.setInt(8, 0);                                       // fd (out)
            data.setInt(12, LibC.O_RDWR | LibC.O_CLOEXEC);           // fd_flags
            data.setLong(16, 0);                                     // heap_flags
            LibC.INSTANCE.ioctl(heapFd, DMA_HEAP_IOCTL_ALLOC, data);
            bufferFd = data.getInt(8);
        } catch (LastErrorException e) {
            DmaBuf.closeQuietly(heapFd);
            throw new DmaBufUnavailableException(source, "DMA_HEAP_IOCTL_ALLOC of " + size + " bytes failed, errno "
                    + e.getErrorCode());
        }
        DmaBuf.closeQuietly(heapFd);
        long address = DmaBuf.map(source, bufferFd, size, bufferFd);
        return new DmaBuf(source, address, size, bufferFd, -1);
    }
}
