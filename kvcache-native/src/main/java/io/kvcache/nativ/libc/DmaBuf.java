package io.kvcache.nativ.libc;

import com.sun.jna.LastErrorException;
import com.sun.jna.Pointer;

/**
 * A DMA-BUF mapped into this process: page-locked memory the kernel can hand to a device
 * without copying. Obtained from {@link DmaHeap} or {@link Udmabuf}; {@link #close()} unmaps it
 * and closes its file descriptors.
 */
public final class DmaBuf implements AutoCloseable {
    private final String source;
    private final long address;
    private final long bytes;
    private final int bufferFd;
    private final int backingFd;
    private boolean closed;

    DmaBuf(String source, long address, long bytes, int bufferFd, int backingFd) {
        this.source = source;
        this.address = address;
        this.bytes = bytes;
        this.bufferFd = bufferFd;
        this.backingFd = backingFd;
    }

    /** @return where the buffer came from, e.g. "/dev/dma_heap/system" */
    public String source() {
        return source;
    }

    /** @return address of the mapping in this process */
    public long address() {
        return address;
    }

    /** @return size of the mapping in bytes */
    public long bytes() {
        return bytes;
    }

    /** @return the dma-buf file descriptor */
    public int fd() {
        return bufferFd;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        LibC.INSTANCE.munmap(new Pointer(address), bytes);
        closeQuietly(bufferFd);
        closeQuietly(backingFd);
    }

    static void closeQuietly(int fd) {
        if (fd >= 0) {
            try {
                LibC.INSTANCE.close(fd);
            } catch (LastErrorException ignored) {
                // nothing more can be done for a descriptor that will not close
            }
        }
    }

    /** Maps a dma-buf descriptor; closes {@code fds} and throws if the mapping fails. */
    static long map(String source, int fd, long bytes, int... fds) {
        try {
            Pointer p = LibC.INSTANCE.mmap(null, bytes, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
            long address = Pointer.nativeValue(p);
            if (address == LibC.MAP_FAILED) {
                throw new LastErrorException(12);
            }
            return address;
        } catch (LastErrorException e) {
            for (int f : fds) {
                closeQuietly(f);
            }
            throw new DmaBufUnavailableException(source, "mmap of " + bytes + " bytes failed, errno " + e.getErrorCode());
        }
    }

    /** Rounds up to whole pages, as every dma-buf source needs. */
    static long pageAligned(long bytes) {
        long page = 4096;
        return (bytes + page - 1) / page * page;
    }
}
