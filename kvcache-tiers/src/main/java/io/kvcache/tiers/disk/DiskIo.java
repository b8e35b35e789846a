package io.kvcache.tiers.disk;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * Every operation the disk tier performs on its data file, in one place, so that failures can
 * be injected at exactly this boundary in tests. Block bytes go through {@link #write} and
 * {@link #read}; headers through the mapping with {@link #load} and {@link #store}, which turn the JVM's {@link InternalError} for a fault in a
 * mapped page (file truncated underneath, device error) into an {@link IOException}.
 *
 * <p>Implementations are thread-safe.
 */
interface DiskIo {

    /** Opens (creating if absent) a file for reading and writing. */
    FileChannel open(Path file) throws IOException;

    /** @return the file's current length in bytes */
    long size(FileChannel channel) throws IOException;

    /**
     * Reserves disk blocks for {@code [offset, offset + length)} of the file, extending it.
     *
     * @throws IOException when the file system has no room (disk full) or the call fails
     */
    void preallocate(Path file, long offset, long length) throws IOException;

    /** Maps {@code [0, length)} of the file read-write into {@code arena}. */
    MemorySegment map(FileChannel channel, long length, Arena arena) throws IOException;

    /** Copies {@code dst.byteSize()} bytes from the mapped file at {@code offset} into {@code dst}. */
    void load(MemorySegment map, long offset, MemorySegment dst) throws IOException;

    /** Copies {@code src} into the mapped file at {@code offset}. */
    void store(MemorySegment src, MemorySegment map, long offset) throws IOException;

    /**
     * Writes {@code src} at {@code position} with positional I/O ({@code pwrite}), which the
     * kernel copies into the same page cache the mapping shows, without a page fault per page.
     */
    void write(FileChannel channel, long position, MemorySegment src) throws IOException;

    /** Reads {@code dst.byteSize()} bytes at {@code position} with positional I/O ({@code pread}). */
    void read(FileChannel channel, long position, MemorySegment dst) throws IOException;

    /** Writes the file's dirty pages (from positional writes and the mapping alike) to the device. */
    void force(FileChannel channel) throws IOException;
}
