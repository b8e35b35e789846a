package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.DiskFileDescriptor.FILE_HEADER_BYTES;
import static io.kvcache.tiers.disk.DiskFileDescriptor.PAGE;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_HEADER_BYTES;
import static io.kvcache.tiers.disk.DiskFileDescriptor.slotHeaderOffset;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Objects;
import java.util.zip.CRC32C;

/**
 * The data file's bytes on the device: the reservation and mapping, block bytes by positional
 * I/O, headers through the mapping, checksums of block bytes, and the watchdog that notices the
 * file deleted, replaced or truncated underneath. Every operation goes through {@link DiskIo}.
 *
 * <p>Who may call what:
 * <ul>
 *   <li>{@link #read}, {@link #write}, {@link #crcOfSlot} and {@link #crcOf}: any thread, on
 *       distinct slots, with or without the tier lock (each thread has its own scratch memory);</li>
 *   <li>{@link #storeHeader}, {@link #check}, {@link #checkDue}, {@link #flush} and
 *       {@link #close}: the tier lock held (one header scratch, the watchdog's state);</li>
 *   <li>{@link #reserveAndMap}, {@link #loadSlotHeaders}, {@link #clearSlotHeaders} and
 *       {@link #abandon}: the opening thread, before the tier is published.</li>
 * </ul>
 */
final class DataFile {
    private static final System.Logger LOG = System.getLogger(MappedFileTier.class.getName());
    /** Bytes of block data a checksum reads at a time. */
    private static final int CRC_CHUNK = 4 << 20;
    /** Lookups and publishes between two watchdog checks. */
    private static final int FILE_CHECK_EVERY = 64;

    private final String tier;
    private final DiskIo io;
    private final DiskCounters counters;
    private final Path file;
    private final FileChannel channel;
    private final Arena arena;
    private final MemorySegment map;
    private final Object fileKey;
    private final long slotBytes;
    private final long slotStride;
    private final int slotCount;
    private final long dataOffset;
    private final long fileLength;
    private final long reserved;
    private final MemorySegment headerScratch;
    private final ThreadLocal<MemorySegment> scratch;

    /** Whether the tier stores and serves nothing more: disk full at open, file lost or truncated into its headers. */
    private volatile boolean failed;
    private volatile boolean lost;
    private boolean truncationReported;
    private boolean closed;
    private int opsSinceCheck;

    private DataFile(String tier, DiskIo io, DiskCounters counters, Path file, FileChannel channel, Arena arena,
            MemorySegment map, Object fileKey, long slotBytes, int slotCount, long reserved) {
        this.tier = tier;
        this.io = io;
        this.counters = counters;
        this.file = file;
        this.channel = channel;
        this.arena = arena;
        this.map = map;
        this.fileKey = fileKey;
        this.slotBytes = slotBytes;
        this.slotStride = DiskFileDescriptor.slotStride(slotBytes);
        this.slotCount = slotCount;
        this.dataOffset = DiskFileDescriptor.dataOffset(slotCount);
        this.fileLength = DiskFileDescriptor.fileLength(slotCount, slotBytes);
        this.reserved = reserved;
        this.headerScratch = arena.allocate(SLOT_HEADER_BYTES, 8);
        long scratchBytes = Math.min(CRC_CHUNK, slotBytes);
        this.scratch = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(scratchBytes, 64));
        this.failed = reserved < dataOffset;
    }

    /**
     * Reserves the file's blocks on disk and maps the whole file. A disk too full to reserve
     * all of it leaves a file whose slots beyond the reserved bytes are not used; one too full
     * for the slot headers leaves a {@linkplain #failed() failed} file.
     *
     * @param channel the file, opened through {@code io}; closed by the caller when this throws
     */
    static DataFile reserveAndMap(String tier, DiskIo io, DiskCounters counters, Path file, FileChannel channel,
            long slotBytes, int slotCount, long preallocateChunk) throws IOException {
        long length = DiskFileDescriptor.fileLength(slotCount, slotBytes);
        long reserved = preallocate(tier, io, counters, file, length, preallocateChunk);
        Arena arena = Arena.ofShared();
        try {
            MemorySegment map = io.map(channel, length, arena);
            Object key = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
            return new DataFile(tier, io, counters, file, channel, arena, map, key, slotBytes, slotCount, reserved);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** Reserves the file's blocks in chunks; on a full disk keeps what was reserved. @return bytes reserved */
    private static long preallocate(String tier, DiskIo io, DiskCounters counters, Path file, long length, long chunk)
            throws IOException {
        long done = 0;
        while (done < length) {
            long n = Math.min(chunk, length - done);
            try {
                io.preallocate(file, done, n);
            } catch (IOException e) {
                counters.ioError();
                LOG.log(Level.WARNING, "disk tier ''{0}'': cannot reserve {1} bytes for {2}: {3}; {4} bytes reserved, "
                        + "slots beyond them are not used", tier, length, file, e.getMessage(), done);
                return done;
            }
            done += n;
        }
        return done;
    }

    // ---------------------------------------------------------------- geometry

    Path path() {
        return file;
    }

    long fileLength() {
        return fileLength;
    }

    /** @return bytes reserved on disk at open */
    long reservedBytes() {
        return reserved;
    }

    /** @return the byte offset of a slot's data in the file */
    long slotDataOffset(int slot) {
        return dataOffset + slot * slotStride;
    }

    /** @return whether a slot's data lies within the first {@code size} bytes of the file */
    boolean slotWithin(int slot, long size) {
        return slotDataOffset(slot) + slotStride <= size;
    }

    /** @return whether the tier must store and serve nothing more (see {@link #reserveAndMap}, {@link #check}) */
    boolean failed() {
        return failed;
    }

    /** @return whether the file was found deleted or replaced underneath */
    boolean lost() {
        return lost;
    }

    // ---------------------------------------------------------------- block bytes (any thread)

    /** Writes bytes into a slot: positional I/O, or through the mapping for memory it cannot take. */
    void write(int slot, long offset, MemorySegment src) throws IOException {
        long at = slotDataOffset(slot) + offset;
        if (byteBufferable(src)) {
            io.write(channel, at, src);
        } else {
            io.store(src, map, at);
        }
    }

    /** Reads bytes out of a slot: positional I/O, or through the mapping for memory it cannot take. */
    void read(int slot, long offset, MemorySegment dst) throws IOException {
        long at = slotDataOffset(slot) + offset;
        if (byteBufferable(dst)) {
            io.read(channel, at, dst);
        } else {
            io.load(map, at, dst);
        }
    }

    /** @return whether positional I/O can take this segment (native, or a heap byte[]) */
    private static boolean byteBufferable(MemorySegment seg) {
        return seg.isNative() || seg.heapBase().map(b -> b instanceof byte[]).orElse(false);
    }

    /** CRC32C of a slot's bytes on file, read in chunks into this thread's scratch memory. */
    int crcOfSlot(int slot) throws IOException {
        MemorySegment buf = scratch.get();
        CRC32C c = new CRC32C();
        long base = slotDataOffset(slot);
        for (long done = 0; done < slotBytes; ) {
            long n = Math.min(buf.byteSize(), slotBytes - done);
            MemorySegment part = buf.asSlice(0, n);
            io.read(channel, base + done, part);
            c.update(part.asByteBuffer());
            done += n;
        }
        return (int) c.getValue();
    }

    /** CRC32C of caller memory (never the mapped file). */
    int crcOf(MemorySegment seg) {
        CRC32C c = new CRC32C();
        try {
            c.update(seg.asByteBuffer());
        } catch (UnsupportedOperationException e) {
            // a heap segment over a non-byte array: go through scratch memory
            MemorySegment buf = scratch.get();
            for (long done = 0; done < seg.byteSize(); ) {
                long n = Math.min(buf.byteSize(), seg.byteSize() - done);
                MemorySegment.copy(seg, done, buf, 0, n);
                c.update(buf.asSlice(0, n).asByteBuffer());
                done += n;
            }
        }
        return (int) c.getValue();
    }

    // ---------------------------------------------------------------- headers (tier lock)

    /** Writes a slot's header through the mapping. */
    void storeHeader(int slot, SlotHeader header) throws IOException {
        header.encode(headerScratch);
        io.store(headerScratch, map, slotHeaderOffset(slot));
    }

    /** Writes the file header through the mapping. */
    void storeFileHeader(FileHeader header) throws IOException {
        io.store(MemorySegment.ofArray(header.encode()), map, 0);
    }

    /** Reads {@code into.byteSize()} bytes of consecutive slot headers, from slot {@code first}'s on. */
    void loadSlotHeaders(int first, MemorySegment into) throws IOException {
        io.load(map, slotHeaderOffset(first), into);
    }

    /** Zeroes the slot header table: for a file shorter than its header, which holds nothing of ours. */
    void clearSlotHeaders() throws IOException {
        MemorySegment zeros = arena.allocate(PAGE * 16L, 8);
        for (long off = FILE_HEADER_BYTES; off < dataOffset; off += zeros.byteSize()) {
            io.store(zeros.asSlice(0, Math.min(zeros.byteSize(), dataOffset - off)), map, off);
        }
    }

    // ---------------------------------------------------------------- watchdog (tier lock)

    /** @return whether a watchdog {@link #check} is due: every {@value #FILE_CHECK_EVERY} calls, not one per block */
    boolean checkDue() {
        if (++opsSinceCheck >= FILE_CHECK_EVERY) {
            opsSinceCheck = 0;
            return true;
        }
        return false;
    }

    /**
     * Detects the file deleted, replaced or truncated underneath, logs it (a truncation once) and
     * counts it. A lost file, or one truncated into its headers, {@linkplain #failed() fails}. A
     * file lost before, or closed, is not checked again.
     *
     * @return the file's length when it is shorter than it should be, so that the caller retires
     *         the slots beyond it (see {@link #slotIntact}); -1 otherwise
     */
    long check() {
        if (lost || closed) {
            return -1;
        }
        Object key;
        try {
            key = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
        } catch (NoSuchFileException e) {
            key = null;
        } catch (IOException e) {
            counters.ioError();
            LOG.log(Level.WARNING, "disk tier ''{0}'': cannot stat {1}: {2}", tier, file, e.toString());
            return -1;
        }
        if (!Objects.equals(key, fileKey)) {
            lost = true;
            failed = true;
            counters.ioError();
            LOG.log(Level.ERROR, "disk tier ''{0}'': data file {1} was deleted or replaced underneath: the tier stops "
                    + "storing and serving blocks", tier, file);
            return -1;
        }
        long size;
        try {
            size = io.size(channel);
        } catch (IOException e) {
            counters.ioError();
            LOG.log(Level.WARNING, "disk tier ''{0}'': cannot read the size of {1}: {2}", tier, file, e.toString());
            return -1;
        }
        if (size >= fileLength) {
            return -1;
        }
        if (!truncationReported) {
            truncationReported = true;
            counters.ioError();
            LOG.log(Level.ERROR, "disk tier ''{0}'': data file {1} was truncated underneath to {2} of {3} bytes: "
                    + "blocks beyond the end are misses", tier, file, size, fileLength);
        }
        if (size < dataOffset) {
            failed = true;
        }
        return size;
    }

    /** @return whether a slot's data and header both lie within a file of {@code size} bytes */
    boolean slotIntact(int slot, long size) {
        return slotWithin(slot, size) && slotHeaderOffset(slot) + SLOT_HEADER_BYTES <= size;
    }

    // ---------------------------------------------------------------- close

    /** Writes every dirty page of the file to the device. */
    void force() throws IOException {
        io.force(channel); // whether written by pwrite or through the map
    }

    /** {@link #force}, a failure counted and logged. @return whether it succeeded */
    boolean flush() {
        try {
            force();
            return true;
        } catch (IOException e) {
            counters.ioError();
            LOG.log(Level.WARNING, "disk tier ''{0}'': flushing {1} failed: {2}", tier, file, e.getMessage());
            return false;
        }
    }

    /** Unmaps the file and closes the channel; a failure to close is logged. The watchdog stops. */
    void close() {
        closed = true;
        arena.close();
        try {
            channel.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': closing {1}: {2}", tier, file, e.getMessage());
        }
    }

    /** Unmaps and closes after a failed open; the open's failure is what the caller reports. */
    void abandon() throws IOException {
        arena.close();
        channel.close();
    }
}
