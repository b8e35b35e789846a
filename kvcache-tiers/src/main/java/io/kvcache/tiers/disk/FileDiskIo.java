package io.kvcache.tiers.disk;

import com.sun.jna.LastErrorException;
import io.kvcache.nativ.libc.LibC;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** The real file system behind {@link DiskIo}. */
final class FileDiskIo implements DiskIo {
    static final FileDiskIo INSTANCE = new FileDiskIo();
    private static final int ENOSPC = 28;
    private static final int EOPNOTSUPP = 95;

    private FileDiskIo() {
    }

    @Override
    public FileChannel open(Path file) throws IOException {
        return FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    @Override
    public long size(FileChannel channel) throws IOException {
        return channel.size();
    }

    @Override
    public void preallocate(Path file, long offset, long length) throws IOException {
        int fd;
        try {
            fd = LibC.INSTANCE.open(file.toString(), LibC.O_RDWR | LibC.O_CLOEXEC);
        } catch (LastErrorException e) {
            throw new IOException("cannot open " + file + " to preallocate: errno " + e.getErrorCode(), e);
        }
        try {
            // posix_fallocate returns the error number instead of setting errno
            int rc = LibC.INSTANCE.posix_fallocate(fd, offset, length);
            if (rc == ENOSPC) {
                throw new IOException("disk full: no room for " + length + " bytes at offset " + offset + " of " + file);
            }
            if (rc == EOPNOTSUPP) {
                return; // the file system cannot reserve; the map extends the file sparsely
            }
            if (rc != 0) {
                throw new IOException("posix_fallocate of " + file + " failed: errno " + rc);
            }
        } finally {
            LibC.INSTANCE.close(fd);
        }
    }

    @Override
    public MemorySegment map(FileChannel channel, long length, Arena arena) throws IOException {
        return channel.map(FileChannel.MapMode.READ_WRITE, 0, length, arena);
    }

    @Override
    public void load(MemorySegment map, long offset, MemorySegment dst) throws IOException {
        try {
            MemorySegment.copy(map, offset, dst, 0, dst.byteSize());
            deliverPendingFault();
        } catch (InternalError e) {
            throw mappedFault(offset, dst.byteSize(), e);
        }
    }

    @Override
    public void store(MemorySegment src, MemorySegment map, long offset) throws IOException {
        try {
            MemorySegment.copy(src, 0, map, offset, src.byteSize());
            deliverPendingFault();
        } catch (InternalError e) {
            throw mappedFault(offset, src.byteSize(), e);
        }
    }

    @Override
    public void write(FileChannel channel, long position, MemorySegment src) throws IOException {
        ByteBuffer b = src.asByteBuffer();
        long at = position;
        while (b.hasRemaining()) {
            at += channel.write(b, at);
        }
    }

    @Override
    public void read(FileChannel channel, long position, MemorySegment dst) throws IOException {
        ByteBuffer b = dst.asByteBuffer();
        long at = position;
        while (b.hasRemaining()) {
            int n = channel.read(b, at);
            if (n < 0) {
                throw new EOFException("file ends at " + at + ", before the " + dst.byteSize()
                        + " bytes at " + position + ": truncated");
            }
            at += n;
        }
    }

    @Override
    public void force(FileChannel channel) throws IOException {
        channel.force(false);
    }

    /**
     * The JVM reports a SIGBUS in a copy from or to a mapped page (file truncated underneath,
     * device error) as an asynchronous InternalError, thrown at the thread's next safepoint
     * check, which after inlining may lie in a caller, outside any try here. Returning from a
     * native method always passes such a check, so this cheap native call makes the error
     * surface here, where it is turned into an IOException.
     */
    private static void deliverPendingFault() {
        Runtime.getRuntime().freeMemory();
    }

    private static IOException mappedFault(long offset, long length, InternalError e) {
        // the JVM raises InternalError when a mapped page faults with SIGBUS
        return new IOException("fault accessing mapped bytes [" + offset + ", " + (offset + length)
                + "): file truncated underneath or device error", e);
    }
}
