package io.kvcache.nativ.libc;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Turns a sealed memfd into a DMA-BUF through {@code /dev/udmabuf} ({@code UDMABUF_CREATE}),
 * and maps it. The memfd's pages back the buffer.
 */
public final class Udmabuf {

    /** The udmabuf device. */
    public static final Path DEVICE = Path.of("/dev/udmabuf");

    /** {@code _IOW('u', 0x42, struct udmabuf_create)}, a 24-byte struct. */
    static final long UDMABUF_CREATE = 0x40187542L;
    static final int UDMABUF_FLAGS_CLOEXEC = 0x01;

    private Udmabuf() {
    }

    /**
     * Creates and maps a buffer.
     *
     * @param device the udmabuf device file
     * @param bytes  size, rounded up to whole pages
     * @throws DmaBufUnavailableException naming the device and why (absent, not openable, refused)
     */
    public static DmaBuf allocate(Path device, long bytes) {
        String source = device.toString();
        if (bytes <= 0) {
            throw new IllegalArgumentException("dma-buf size must be positive, was " + bytes);
        }
        if (!Files.exists(device)) {
            throw new DmaBufUnavailableException(source, "absent (udmabuf module not loaded or device not exposed)");
        }
        long size = DmaBuf.pageAligned(bytes);
        int devFd;
        try {
            devFd = LibC.INSTANCE.open(source, LibC.O_RDWR | LibC.O_CLOEXEC);
        } catch (LastErrorException e) {
            throw new DmaBufUnavailableException(source, "open failed, errno " + e.getErrorCode());
        }
        int memFd = -1;
        int bufferFd;
        try (Memory create = new Memory(24)) {
            memFd = LibC.INSTANCE.memfd_create("kvcache-host-tier", LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
            LibC.INSTANCE.ftruncate(memFd, size);
            // udmabuf accepts only memfds that can no longer shrink under the device's feet
            LibC.INSTANCE.fcntl(memFd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK);
            create.clear();
            create.setInt(0, memFd);
            create.setInt(4, UDMABUF_FLAGS_CLOEXEC);
            create.setLong(8, 0);
            create.setLong(16, size);
            bufferFd = LibC.INSTANCE.ioctl(devFd, UDMABUF_CREATE, create);
        } catch (LastErrorException e) {
            DmaBuf.closeQuietly(devFd);
            DmaBuf.closeQuietly(memFd);
            throw new DmaBufUnavailableException(source, "UDMABUF_CREATE over a memfd of " + size
                    + " bytes failed, errno " + e.getErrorCode());
        }
        DmaBuf.closeQuietly(devFd);
        long address = DmaBuf.map(source, bufferFd, size, bufferFd, memFd);
        return new DmaBuf(source, address, size, bufferFd, memFd);
    }
}
