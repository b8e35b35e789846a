package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.DiskFileDescriptor.*;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.BlockUnavailableException;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierCapacity;
import io.kvcache.core.tier.TierKind;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.CRC32C;

/**
 * The disk tier: a preallocated file of fixed-size block slots in a cache directory, mapped
 * with {@link FileChannel#map(FileChannel.MapMode, long, long, Arena)} (so it may exceed 2 GiB
 * and is unmapped deterministically on {@link #close()}), with a persistent Chronicle Map index
 * from content key to slot. The format is described in {@link DiskFileDescriptor} and
 * {@code docs/disk-format.md}.
 *
 * <p>What it guarantees:
 * <ul>
 *   <li>Blocks published by one process are found by {@link #lookup} in the next one, with
 *       identical bytes, after a clean close or a crash at any instant.</li>
 *   <li>Every read of a block with a known checksum (published, looked up, or written whole) is
 *       verified against its CRC32C, as is every {@link #verify}. A block that fails is
 *       quarantined, counted in {@link #stats()}, logged, and reported as a miss
 *       ({@link BlockUnavailableException} from read, false from verify): its bytes are never
 *       served.</li>
 *   <li>I/O errors, a disk too full to preallocate, and the file truncated or deleted underneath
 *       are reported through {@link #stats()} and a log line; the affected blocks become misses.
 *       The JVM's {@link InternalError} for a fault in a mapped page never leaves this class.</li>
 *   <li>One process per directory: a second one fails fast with {@link CacheDirectoryLockedException}.
 *       Directory 0700, files 0600; files of another user or writable by others are refused.</li>
 *   <li>A bounded number of slots ({@code capacityBytes / blockBytes}). When every slot is taken,
 *       {@link #allocate(BlockKey)} drops an unreferenced published block, leaves of prefix
 *       chains first, and refuses the new block when the one it would drop was asked for more
 *       often (a TinyLFU frequency sketch).</li>
 * </ul>
 *
 * <p>The slot is the unit of ownership: {@link #allocate()} and {@link #lookup} give the caller
 * a slot; {@link #free(int)} gives it back. A published slot that is freed stays published
 * ("retained") and is counted as free: the tier drops it when it needs the room.
 *
 * <p>Block bytes move with positional I/O on the file's channel ({@code pwrite}/{@code pread}:
 * one system call per block instead of a page fault per 4 KiB page, and errors arrive as
 * exceptions rather than as SIGBUS); the file and slot headers are read and written through the
 * mapping. Both see the same page cache. On the development host a cold 2 MiB-block read through
 * the mapping reached about 1.2 GB/s where {@code pread} reached 3.5 GB/s.
 *
 * <p>Not host accessible: {@link #view(int)} is unsupported so that every access goes through
 * {@link #read} and {@link #write}, which verify and contain faults.
 *
 * <p>Thread safety: allocation, publication, lookup and free are serialized by an internal
 * lock; {@link #read} and {@link #write} copy outside it and may run concurrently on distinct
 * slots.
 */
public final class MappedFileTier implements PersistentTier {
    static {
        // before any Chronicle class initializes: they read these properties in static initializers
        ChronicleJvmFlags.quietChronicle();
    }

    private static final System.Logger LOG = System.getLogger(MappedFileTier.class.getName());

    /** Name of the data file in the cache directory. */
    public static final String DATA_FILE = "blocks.kvc";
    /** Name of the Chronicle Map index file in the cache directory. */
    public static final String INDEX_FILE = "index.cm3";

    private static final byte FREE = 0;
    private static final byte OWNED = 1;
    private static final byte OWNED_PUBLISHED = 2;
    private static final byte RETAINED = 3;
    private static final byte RETIRED = 4;
    private static final byte OWNED_RETIRED = 5;

    private static final long DEFAULT_PREALLOCATE_CHUNK = 256L << 20;
    private static final int CRC_CHUNK = 4 << 20;
    private static final int FILE_CHECK_EVERY = 64;

    private final String name;
    private final KvLayout layout;
    private final String modelId;
    private final long slotBytes;
    private final long slotStride;
    private final int slotCount;
    private final long dataOffset;
    private final long fileLength;
    private final DiskIo io;
    private final long preallocateChunk;
    private final CacheDirectory directory;
    private final Path dataFile;
    private final Path indexFile;
    private final FileChannel channel;
    private final Arena arena;
    private final MemorySegment map;
    private final Object dataFileKey;
    private SlotIndex index;
    private final String backing;

    private final ReentrantLock lock = new ReentrantLock();
    private final byte[] state;
    private final long[] generation;
    private final int[] crc;
    private final boolean[] crcKnown;
    private final BlockKey[] keys;
    private final BlockKey[] parents;
    private final int[] parentSlot;
    private final long[] parentGeneration;
    private final int[] childCount;
    private final int[] freeStack;
    private int freeTop;
    private final RetainedBlocks retained;
    private final FrequencySketch sketch;
    /** Blocks published before their parent, by parent key, so the parent can adopt them. */
    private final Map<BlockKey, int[]> orphans = new HashMap<>();
    private long nextGeneration = 1;
    /** The slot published last, or -1: the likely parent of the next publish. */
    private int lastPublished = -1;
    private final MemorySegment headerScratch;
    private final MemorySegment crcScratch;
    private final ThreadLocal<MemorySegment> readScratch;

    private volatile boolean failed;
    private volatile boolean closed;
    private boolean truncationReported;
    private int opsSinceFileCheck;

    private long recoveredBlocks;
    private long droppedAtOpen;
    private final boolean uncleanOpen;
    private final boolean headerRepaired;
    private boolean indexRebuilt;
    private final LongAdder lookups = new LongAdder();
    private final LongAdder hits = new LongAdder();
    private final LongAdder publishes = new LongAdder();
    private final LongAdder evictions = new LongAdder();
    private final LongAdder admissionRejections = new LongAdder();
    private final LongAdder checksumFailures = new LongAdder();
    private final LongAdder ioErrors = new LongAdder();
    private final LongAdder retiredSlots = new LongAdder();
    private volatile boolean fileLost;

    /** @return a builder for a disk tier holding blocks of {@code layout} */
    public static Builder builder(KvLayout layout) {
        return new Builder(layout);
    }

    /** Configures and opens a {@link MappedFileTier}. */
    public static final class Builder {
        private final KvLayout layout;
        private Path directory;
        /** 0 until set: the setter refuses values that are not positive. */
        private long capacityBytes;
        private String modelId;
        private String name = "disk";
        private DiskIo io = FileDiskIo.INSTANCE;
        private long preallocateChunk = DEFAULT_PREALLOCATE_CHUNK;

        private Builder(KvLayout layout) {
            this.layout = Objects.requireNonNull(layout, "layout");
        }

        /** @param directory the cache directory, created 0700 when absent; one process at a time */
        public Builder directory(Path directory) {
            this.directory = Objects.requireNonNull(directory, "directory");
            return this;
        }

        /**
         * @param bytes the byte bound of block data: the tier holds {@code bytes / blockBytes}
         *              slots. The file is larger by its headers (4096 bytes plus 128 bytes per
         *              slot) and by padding each slot to a multiple of 4096 bytes.
         * @throws IllegalArgumentException when {@code bytes} is not positive; the builder is unchanged
         */
        public Builder capacityBytes(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("capacityBytes of tier '" + name + "' must be positive, was "
                        + bytes + (bytes < 0 ? " (negative)" : ""));
            }
            this.capacityBytes = bytes;
            return this;
        }

        /** @param modelId identifies the model weights; a file made for another model is refused */
        public Builder modelId(String modelId) {
            Objects.requireNonNull(modelId, "modelId");
            if (modelId.getBytes(StandardCharsets.UTF_8).length > MAX_MODEL_ID_BYTES) {
                throw new IllegalArgumentException("modelId is longer than " + MAX_MODEL_ID_BYTES + " UTF-8 bytes");
            }
            this.modelId = modelId;
            return this;
        }

        /** @param name the tier's name in logs and stats; default "disk" */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /** Bytes reserved per preallocation call; a full disk keeps the chunks reserved before it. */
        Builder preallocateChunk(long bytes) {
            this.preallocateChunk = bytes;
            return this;
        }

        /** Replaces the file system boundary; for fault injection in tests. */
        Builder io(DiskIo io) {
            this.io = Objects.requireNonNull(io, "io");
            return this;
        }

        /**
         * Opens the directory: creates the file and index, or reopens them, recovering after an
         * unclean shutdown.
         *
         * @throws IllegalStateException          when the JVM lacks the flags Chronicle Map needs (named)
         * @throws CacheDirectoryLockedException  when another process or tier has the directory open
         * @throws DiskFormatException            when the file is for another format, layout, model or
         *                                        capacity, or its ownership or permissions are unsafe
         * @throws UncheckedIOException           when the directory or files cannot be created or read
         */
        public MappedFileTier open() {
            if (directory == null) {
                throw new IllegalArgumentException("directory is required");
            }
            if (capacityBytes == 0) {
                throw new IllegalArgumentException("capacityBytes is required");
            }
            if (modelId == null) {
                throw new IllegalArgumentException("modelId is required");
            }
            int slots = TierCapacity.slots(name, capacityBytes, layout.blockBytes());
            ChronicleJvmFlags.requirePresent();
            try {
                return new MappedFileTier(this, slots);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot open disk tier in " + directory + ": " + e.getMessage(), e);
            }
        }
    }

    private MappedFileTier(Builder b, int slots) throws IOException {
        this.name = b.name;
        this.layout = b.layout;
        this.modelId = b.modelId;
        this.io = b.io;
        this.preallocateChunk = b.preallocateChunk;
        this.slotBytes = layout.blockBytes();
        this.slotStride = slotStride(slotBytes);
        this.slotCount = slots;
        this.dataOffset = DiskFileDescriptor.dataOffset(slots);
        this.fileLength = DiskFileDescriptor.fileLength(slots, slotBytes);

        this.state = new byte[slots];
        this.generation = new long[slots];
        this.crc = new int[slots];
        this.crcKnown = new boolean[slots];
        this.keys = new BlockKey[slots];
        this.parents = new BlockKey[slots];
        this.parentSlot = new int[slots];
        this.parentGeneration = new long[slots];
        this.childCount = new int[slots];
        this.freeStack = new int[slots];
        this.retained = new RetainedBlocks(slots);
        this.sketch = new FrequencySketch(slots);
        Arrays.fill(parentSlot, -1);

        CacheDirectory dir = CacheDirectory.open(b.directory);
        FileChannel ch = null;
        Arena a = null;
        try {
            this.directory = dir;
            this.dataFile = dir.dir.resolve(DATA_FILE);
            this.indexFile = dir.dir.resolve(INDEX_FILE);
            boolean existed = CacheDirectory.prepareFile(dataFile);
            ch = io.open(dataFile);
            this.channel = ch;
            ByteBuffer header = ByteBuffer.allocate(FILE_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            HeaderState hs = !existed || io.size(ch) == 0 ? HeaderState.UNUSABLE : readFileHeader(ch, header);
            boolean fresh = hs == HeaderState.UNUSABLE;
            this.headerRepaired = hs == HeaderState.DAMAGED;
            // a damaged header's open state is not trusted: the open recovers as after a crash
            boolean clean = fresh || (hs == HeaderState.VALID && header.getInt(OPEN_STATE_OFFSET) == STATE_CLOSED);
            this.uncleanOpen = hs == HeaderState.VALID && !clean;

            long reserved = preallocate();
            a = Arena.ofShared();
            this.arena = a;
            this.map = io.map(ch, fileLength, a);
            this.dataFileKey = Files.readAttributes(dataFile, BasicFileAttributes.class).fileKey();
            this.headerScratch = a.allocate(SLOT_HEADER_BYTES, 8);
            this.crcScratch = a.allocate(Math.min(CRC_CHUNK, slotBytes), 64);
            long scratchBytes = Math.min(CRC_CHUNK, slotBytes);
            this.readScratch = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(scratchBytes, 64));

            int indexCrc = fresh ? 0 : header.getInt(INDEX_CRC_OFFSET);
            long indexLength = fresh ? -1 : header.getLong(INDEX_LENGTH_OFFSET);
            writeFileHeader(STATE_OPEN, 0, 0); // also repairs a damaged header: every field is rewritten
            if (reserved < dataOffset) {
                failed = true;
                LOG.log(Level.ERROR, "disk tier ''{0}'': disk full, only {1} bytes of {2} could be reserved in {3}, "
                        + "not even the slot headers; the tier stores nothing", name, reserved, fileLength, dataFile);
            }
            if (fresh && existed) {
                clearSlotHeaders(); // the file was shorter than its header: nothing there was written by us
            }
            scanSlotHeaders(reserved, fresh);
            openIndex(fresh, clean, headerRepaired, indexCrc, indexLength);
            reconcileIndex();
            linkAndOrder();
            this.recoveredBlocks = retained.size(); // after duplicates were dropped
            if (freeTop + retained.size() + countRetired() != slotCount) {
                throw new IllegalStateException("slot accounting broken at open");
            }
            this.backing = "mmap of " + dataFile + " (" + slotCount + " slots of " + slotBytes + " bytes, "
                    + (reserved >= fileLength ? "preallocated" : "partly preallocated: disk full")
                    + "), index Chronicle Map " + indexFile;
            if (recoveredBlocks > 0 || uncleanOpen || droppedAtOpen > 0 || headerRepaired) {
                LOG.log(Level.INFO, "disk tier ''{0}'' opened {1}: {2} blocks recovered, {3} dropped{4}{5}", name,
                        dir.dir, recoveredBlocks, droppedAtOpen, uncleanOpen ? ", after an unclean shutdown"
                                : headerRepaired ? ", its damaged file header repaired" : "",
                        indexRebuilt ? ", index rebuilt from slot headers" : "");
            }
        } catch (IOException | RuntimeException | Error e) {
            try {
                if (index != null) {
                    index.close();
                }
            } catch (RuntimeException ignored) {
                // the open failure is what the caller needs to see
            }
            if (a != null) {
                a.close();
            }
            if (ch != null) {
                ch.close();
            }
            dir.close();
            throw e;
        }
    }

    // ---------------------------------------------------------------- open

    /** What the file header found at open says. */
    private enum HeaderState {
        /** The header verifies and names this tier's format, layout, model and capacity. */
        VALID,
        /**
         * The header fails its checksum but names this tier's format, layout, model and capacity:
         * a damaged byte lies in a field that does not say whose file it is (open state, index
         * checksum or length, reserved bytes, the checksum itself). The slot headers, which
         * carry their own checksums, still prove their blocks; the header is rewritten and the
         * index, which it vouched for, rebuilt.
         */
        DAMAGED,
        /**
         * Shorter than a header, or a header never written (all zero): the file is initialized (it
         * holds no slot header).
         */
        UNUSABLE
    }

    /**
     * Reads and checks the file header. The identity fields (magic, version, layout, model,
     * capacity) decide whether the file is this tier's, whether or not the header's checksum
     * verifies: a file that is not is refused untouched.
     *
     * @return whether the header is valid, damaged in a field that does not identify the file
     *         (repaired at open), or too short to hold a header (reinitialized)
     * @throws DiskFormatException when the file is another format, version, layout, model or capacity
     */
    private HeaderState readFileHeader(FileChannel ch, ByteBuffer header) throws IOException {
        int n = 0;
        while (n < FILE_HEADER_BYTES) {
            int r = ch.read(header, n);
            if (r < 0) {
                break;
            }
            n += r;
        }
        if (n < 8) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': {1} is shorter than its header ({2} bytes): reinitialized, "
                    + "its blocks are lost", name, dataFile, n);
            return HeaderState.UNUSABLE;
        }
        if (allZero(header.array(), n)) {
            // the first open reserves the file (zeros) before it writes the header: killed in between, it
            // left a file that nothing was ever written to
            LOG.log(Level.WARNING, "disk tier ''{0}'': {1} has an all-zero header, never written (its creator was "
                    + "killed while creating it): initialized", name, dataFile);
            return HeaderState.UNUSABLE;
        }
        long magic = header.getLong(MAGIC_OFFSET);
        if (magic != MAGIC) {
            throw new DiskFormatException(dataFile + " is not a kvcache disk file (magic 0x"
                    + Long.toHexString(magic) + "); refused, nothing changed");
        }
        if (n < FILE_HEADER_BYTES) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': header of {1} is truncated: reinitialized, its blocks are lost",
                    name, dataFile);
            return HeaderState.UNUSABLE;
        }
        int version = header.getInt(VERSION_OFFSET);
        if (version != FORMAT_VERSION) {
            throw new DiskFormatException(dataFile + " has disk format version " + version + ", this build reads version "
                    + FORMAT_VERSION + "; refused, nothing changed (use another directory or delete it)");
        }
        CRC32C c = new CRC32C();
        c.update(header.array(), 0, FILE_HEADER_CRC_OFFSET);
        boolean verifies = (int) c.getValue() == header.getInt(FILE_HEADER_CRC_OFFSET);
        String damage = verifies ? "" : " (the header also fails its checksum, so this field may be damaged: "
                + "if the file is this tier's, delete the directory)";
        long fp = header.getLong(FINGERPRINT_OFFSET);
        long sb = header.getLong(SLOT_BYTES_OFFSET);
        if (fp != layout.fingerprint() || sb != slotBytes) {
            throw new DiskFormatException(dataFile + " was made for another KV layout (fingerprint 0x" + Long.toHexString(fp)
                    + ", " + sb + "-byte blocks); this tier's layout " + layout + " has fingerprint 0x"
                    + Long.toHexString(layout.fingerprint()) + " and " + slotBytes
                    + "-byte blocks; refused, nothing changed (use another directory)" + damage);
        }
        int idLength = header.getInt(MODEL_ID_LENGTH_OFFSET);
        String fileModel = idLength < 0 || idLength > MAX_MODEL_ID_BYTES ? "?"
                : new String(header.array(), MODEL_ID_OFFSET, idLength, StandardCharsets.UTF_8);
        if (!fileModel.equals(modelId)) {
            throw new DiskFormatException(dataFile + " was made for model '" + fileModel + "', this tier is for model '"
                    + modelId + "'; refused, nothing changed (use another directory)" + damage);
        }
        long fileSlots = header.getLong(SLOT_COUNT_OFFSET);
        if (fileSlots != slotCount || header.getLong(SLOT_STRIDE_OFFSET) != slotStride
                || header.getLong(DATA_OFFSET_OFFSET) != dataOffset
                || header.getInt(SLOT_HEADER_SIZE_OFFSET) != SLOT_HEADER_BYTES
                || header.getInt(HEADER_BYTES_OFFSET) != FILE_HEADER_BYTES) {
            throw new DiskFormatException(dataFile + " holds " + fileSlots + " slots, this tier is configured for "
                    + slotCount + " (capacity " + slotCount * slotStride + " bytes); refused, nothing changed "
                    + "(open it with the same capacity, or use another directory)" + damage);
        }
        if (!verifies) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': header of {1} fails its checksum but names this tier''s format, "
                    + "layout, model and capacity: repaired; its blocks are recovered from their slot headers and the "
                    + "index is rebuilt", name, dataFile);
            return HeaderState.DAMAGED;
        }
        return HeaderState.VALID;
    }

    private static boolean allZero(byte[] b, int n) {
        for (int i = 0; i < n; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }

    /** Reserves the file's blocks in chunks; on a full disk keeps what was reserved. @return bytes reserved */
    private long preallocate() throws IOException {
        long done = 0;
        while (done < fileLength) {
            long n = Math.min(preallocateChunk, fileLength - done);
            try {
                io.preallocate(dataFile, done, n);
            } catch (IOException e) {
                ioErrors.increment();
                LOG.log(Level.WARNING, "disk tier ''{0}'': cannot reserve {1} bytes for {2}: {3}; {4} bytes reserved, "
                        + "slots beyond them are not used", name, fileLength, dataFile, e.getMessage(), done);
                return done;
            }
            done += n;
        }
        return done;
    }

    /** Reads every slot header; valid published ones become retained blocks. @return blocks found */
    private long scanSlotHeaders(long reserved, boolean fresh) throws IOException {
        long found = 0;
        if (fresh) {
            for (int slot = 0; slot < slotCount; slot++) {
                if (slotDataOffset(slot) + slotStride > reserved) {
                    state[slot] = RETIRED;
                    retiredSlots.increment();
                }
            }
            return 0;
        }
        int batch = 4096;
        MemorySegment table = arena.allocate((long) batch * SLOT_HEADER_BYTES, 8);
        for (int first = 0; first < slotCount; first += batch) {
            int n = Math.min(batch, slotCount - first);
            MemorySegment part = table.asSlice(0, (long) n * SLOT_HEADER_BYTES);
            try {
                io.load(map, slotHeaderOffset(first), part);
            } catch (IOException e) {
                ioErrors.increment();
                LOG.log(Level.WARNING, "disk tier ''{0}'': cannot read slot headers {1}..{2}: {3}; those slots are retired",
                        name, first, first + n - 1, e.getMessage());
                for (int i = 0; i < n; i++) {
                    state[first + i] = RETIRED;
                    retiredSlots.increment();
                }
                continue;
            }
            for (int i = 0; i < n; i++) {
                int slot = first + i;
                if (slotDataOffset(slot) + slotStride > reserved) {
                    state[slot] = RETIRED;
                    retiredSlots.increment();
                    continue;
                }
                MemorySegment h = part.asSlice((long) i * SLOT_HEADER_BYTES, SLOT_HEADER_BYTES);
                int st = h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_STATE_OFFSET);
                if (st == SLOT_FREE && isZero(h)) {
                    continue;
                }
                if (st != SLOT_PUBLISHED || headerCrc(h) != h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_HEADER_CRC_OFFSET)
                        || h.get(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_LENGTH_OFFSET) != slotBytes) {
                    if (st != SLOT_FREE) {
                        droppedAtOpen++; // torn or corrupt header: the block is a miss
                    }
                    continue;
                }
                state[slot] = RETAINED;
                long gen = h.get(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_GENERATION_OFFSET);
                generation[slot] = gen;
                nextGeneration = Math.max(nextGeneration, gen + 1);
                crc[slot] = h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_DATA_CRC_OFFSET);
                crcKnown[slot] = true;
                keys[slot] = BlockKey.of(h.asSlice(SLOT_KEY_OFFSET, BlockKey.BYTES).toArray(ValueLayout.JAVA_BYTE));
                if ((h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_FLAGS_OFFSET) & FLAG_HAS_PARENT) != 0) {
                    parents[slot] = BlockKey.of(h.asSlice(SLOT_PARENT_OFFSET, BlockKey.BYTES).toArray(ValueLayout.JAVA_BYTE));
                }
                found++;
            }
        }
        return found;
    }

    private void clearSlotHeaders() throws IOException {
        MemorySegment zeros = arena.allocate(PAGE * 16L, 8);
        long end = dataOffset;
        for (long off = FILE_HEADER_BYTES; off < end; off += zeros.byteSize()) {
            io.store(zeros.asSlice(0, Math.min(zeros.byteSize(), end - off)), map, off);
        }
    }

    private static boolean isZero(MemorySegment h) {
        for (long i = 0; i < SLOT_HEADER_BYTES; i += 8) {
            if (h.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != 0) {
                return false;
            }
        }
        return true;
    }

    private void openIndex(boolean fresh, boolean clean, boolean headerDamaged, int indexCrc, long indexLength)
            throws IOException {
        boolean exists = Files.exists(indexFile) && Files.size(indexFile) > 0;
        if (exists) {
            CacheDirectory.checkExisting(indexFile);
        }
        if (fresh && exists) {
            Files.delete(indexFile);
            exists = false;
        }
        if (exists && headerDamaged) {
            // the checksum and length that vouch for the index were in the damaged header
            Files.delete(indexFile);
            exists = false;
            indexRebuilt = true;
        }
        if (exists && clean && (indexLength != Files.size(indexFile) || indexCrc != fileCrc(indexFile))) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': index {1} does not match the checksum recorded at the last "
                    + "close: rebuilding it from the slot headers", name, indexFile);
            Files.delete(indexFile);
            exists = false;
            indexRebuilt = true;
        }
        // Chronicle marks its header "not ready" while it creates or recovers a file, and an open
        // that finds it so waits a minute for the writer: here there is none (we hold the
        // directory lock), so an open interrupted by a crash is recognised by this marker instead
        Path opening = indexFile.resolveSibling(INDEX_FILE + ".opening");
        if (exists && Files.exists(opening)) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': an earlier open of index {1} was interrupted: rebuilding it "
                    + "from the slot headers", name, indexFile);
            Files.delete(indexFile);
            exists = false;
            indexRebuilt = true;
        }
        long entries = slotCount;
        if (exists) {
            Files.deleteIfExists(opening);
            Files.createFile(opening);
            try {
                if (clean) {
                    index = SlotIndex.open(indexFile.toFile(), entries);
                } else {
                    LOG.log(Level.INFO, "disk tier ''{0}'': recovering index {1} after an unclean shutdown", name, indexFile);
                    index = SlotIndex.recover(indexFile.toFile(), entries);
                    if (index.recoveryCorruptions > 0) {
                        LOG.log(Level.WARNING, "disk tier ''{0}'': index recovery repaired {1} corruptions", name,
                                index.recoveryCorruptions);
                    }
                }
            } catch (IOException | RuntimeException | InternalError | AssertionError e) {
                LOG.log(Level.WARNING, "disk tier ''{0}'': index {1} cannot be opened ({2}): rebuilding it from the "
                        + "slot headers", name, indexFile, e.toString());
                index = null;
                Files.deleteIfExists(indexFile);
                indexRebuilt = true;
            }
        } else if (!fresh && hasRetained()) {
            indexRebuilt = true;
        }
        if (index == null) {
            index = createIndex();
        }
        Files.deleteIfExists(opening);
    }

    /**
     * Creates an empty index under a temporary name and renames it into place once Chronicle
     * has marked it ready: a process killed while creating it leaves only the temporary file,
     * never an index that the next open would wait a minute for ("not ready") before failing.
     */
    private SlotIndex createIndex() throws IOException {
        Path fresh = indexFile.resolveSibling(INDEX_FILE + ".new");
        Files.deleteIfExists(fresh);
        Files.deleteIfExists(indexFile);
        SlotIndex.open(fresh.toFile(), slotCount).close();
        Files.setPosixFilePermissions(fresh, CacheDirectory.FILE_PERMISSIONS);
        Files.move(fresh, indexFile, StandardCopyOption.ATOMIC_MOVE);
        return SlotIndex.open(indexFile.toFile(), slotCount);
    }

    /** Makes the index agree with the slot headers, which are the truth. */
    private void reconcileIndex() {
        List<SlotIndex.Entry> entries;
        try {
            entries = index.entries();
        } catch (RuntimeException | InternalError e) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': index unreadable ({1}): rebuilding", name, e.toString());
            entries = List.of();
            rebuildIndex();
        }
        for (SlotIndex.Entry e : entries) {
            int slot = SlotIndex.slotOf(e.packed());
            if (!validEntry(slot, e.key(), e.packed())) {
                index.remove(e.key(), e.packed());
                droppedAtOpen++;
            }
        }
        for (int slot = 0; slot < slotCount; slot++) {
            if (state[slot] != RETAINED) {
                continue;
            }
            long v = index.get(keys[slot]);
            if (v < 0) {
                index.put(keys[slot], slot, generation[slot]);
            } else if (SlotIndex.slotOf(v) != slot) {
                // two slots claim one key (a crash between publishing a copy and dropping the old one): keep one
                droppedAtOpen++;
                dropRetainedAtOpen(slot);
            }
        }
    }

    private void rebuildIndex() {
        try {
            index.close();
        } catch (RuntimeException ignored) {
            // replaced below
        }
        try {
            index = createIndex();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rebuild index " + indexFile, e);
        }
        indexRebuilt = true;
    }

    private void dropRetainedAtOpen(int slot) {
        try {
            writeSlotHeader(slot, SLOT_FREE, 0, 0, null, null);
        } catch (IOException e) {
            ioErrors.increment();
        }
        state[slot] = FREE;
        keys[slot] = null;
        parents[slot] = null;
        crcKnown[slot] = false;
    }

    /** Links retained blocks to their parents, orders them by publication, fills the free stack. */
    private void linkAndOrder() {
        List<Integer> held = new ArrayList<>();
        for (int slot = 0; slot < slotCount; slot++) {
            if (state[slot] == RETAINED) {
                held.add(slot);
                if (parents[slot] != null) {
                    linkToParent(slot);
                }
            }
        }
        held.sort((x, y) -> Long.compare(generation[x], generation[y]));
        for (int slot : held) {
            if (childCount[slot] == 0) {
                retained.addLeaf(slot);
            } else {
                retained.addInner(slot);
            }
        }
        for (int slot = slotCount - 1; slot >= 0; slot--) {
            if (state[slot] == FREE) {
                freeStack[freeTop++] = slot;
            }
        }
    }

    private boolean hasRetained() {
        for (byte st : state) {
            if (st == RETAINED) {
                return true;
            }
        }
        return false;
    }

    private int countRetired() {
        int n = 0;
        for (byte s : state) {
            if (s == RETIRED) {
                n++;
            }
        }
        return n;
    }

    // ---------------------------------------------------------------- Tier

    @Override
    public String modelId() {
        return modelId;
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public TierKind kind() {
        return TierKind.DISK;
    }

    @Override
    public long slotBytes() {
        return slotBytes;
    }

    @Override
    public int slotCount() {
        return slotCount;
    }

    /** @return slots that {@link #allocate()} can give: free ones and those of unreferenced published blocks */
    @Override
    public int freeSlots() {
        lock.lock();
        try {
            return failed ? 0 : freeTop + retained.size();
        } finally {
            lock.unlock();
        }
    }

    /** @return unreferenced published blocks the tier keeps until it needs their slots */
    public int retainedBlocks() {
        lock.lock();
        try {
            return retained.size();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public int allocate() {
        return allocate(null);
    }

    @Override
    public int allocate(BlockKey key) {
        lock.lock();
        try {
            checkOpen();
            if (failed) {
                return -1;
            }
            if (key != null) {
                sketch.increment(key);
            }
            int slot;
            if (freeTop > 0) {
                slot = freeStack[--freeTop];
            } else {
                int victim = retained.victim(s -> sketch.frequency(keys[s]));
                if (victim < 0) {
                    return -1;
                }
                if (key != null && sketch.frequency(key) < sketch.frequency(keys[victim])) {
                    admissionRejections.increment();
                    return -1;
                }
                retained.remove(victim);
                forgetBlock(victim);
                evictions.increment();
                slot = victim;
            }
            state[slot] = OWNED;
            crcKnown[slot] = false;
            return slot;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Releases the caller's hold on a slot. An unpublished slot returns to the free pool; a
     * published one stays published (findable by {@link #lookup}) until its room is needed.
     */
    @Override
    public void free(int slot) {
        Tier.checkSlot(this, slot);
        lock.lock();
        try {
            checkOpen();
            switch (state[slot]) {
                case OWNED -> {
                    state[slot] = FREE;
                    crcKnown[slot] = false;
                    freeStack[freeTop++] = slot;
                }
                case OWNED_PUBLISHED -> {
                    state[slot] = RETAINED;
                    if (childCount[slot] == 0) {
                        retained.addLeaf(slot);
                    } else {
                        retained.addInner(slot);
                    }
                }
                case OWNED_RETIRED -> state[slot] = RETIRED;
                default -> throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is not allocated");
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public boolean hostAccessible() {
        return false;
    }

    /** @throws UnsupportedOperationException always: reads go through {@link #read}, which verifies */
    @Override
    public MemorySegment view(int slot) {
        throw new UnsupportedOperationException("tier '" + name + "' is not host accessible: use read/write, "
                + "which verify checksums and contain faults of the mapped file");
    }

    /** @return the byte offset of the slot's data in the data file (not a memory address) */
    @Override
    public long address(int slot) {
        Tier.checkSlot(this, slot);
        return slotDataOffset(slot);
    }

    /**
     * Copies bytes into a slot the caller holds. Writing a published slot unpublishes it first:
     * its bytes are about to change.
     *
     * @throws BlockUnavailableException when the file cannot take the bytes (I/O error, truncated
     *                                   underneath); the slot is retired and the block is a miss
     */
    @Override
    public void write(int slot, long offset, MemorySegment src) {
        Tier.checkSlot(this, slot);
        Tier.checkRange(this, offset, src.byteSize());
        boolean whole = offset == 0 && src.byteSize() == slotBytes;
        int sum = whole ? crcOf(src) : 0;
        lock.lock();
        try {
            checkOpen();
            byte s = state[slot];
            if (s == OWNED_RETIRED) {
                throw new BlockUnavailableException("slot " + slot + " of tier '" + name
                        + "' was lost to an earlier I/O error", slot);
            }
            if (s == OWNED_PUBLISHED) {
                forgetBlock(slot);
                state[slot] = OWNED;
            } else if (s != OWNED) {
                throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is not allocated");
            }
            crcKnown[slot] = false;
        } finally {
            lock.unlock();
        }
        try {
            if (byteBufferable(src)) {
                io.write(channel, slotDataOffset(slot) + offset, src);
            } else {
                io.store(src, map, slotDataOffset(slot) + offset);
            }
        } catch (IOException e) {
            lock.lock();
            try {
                ioFault(slot, "writing", e);
            } finally {
                lock.unlock();
            }
            throw new BlockUnavailableException("tier '" + name + "' could not write slot " + slot + ": "
                    + e.getMessage(), slot, e);
        }
        if (whole) {
            lock.lock();
            try {
                if (state[slot] == OWNED) {
                    crc[slot] = sum;
                    crcKnown[slot] = true;
                }
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Copies bytes out of a slot the caller holds, verifying the block's CRC32C when it is known
     * (published, looked up, or written whole): a whole-block read checks the bytes it delivered,
     * a partial read checks the whole block.
     *
     * @throws BlockUnavailableException when the bytes fail their checksum (the slot is quarantined)
     *                                   or cannot be read; {@code dst} is then zeroed
     */
    @Override
    public void read(int slot, long offset, MemorySegment dst) {
        Tier.checkSlot(this, slot);
        Tier.checkRange(this, offset, dst.byteSize());
        boolean known;
        int expected;
        long gen;
        lock.lock();
        try {
            checkOpen();
            byte s = state[slot];
            if (s == OWNED_RETIRED) {
                throw new BlockUnavailableException("slot " + slot + " of tier '" + name
                        + "' was lost to an earlier I/O error", slot);
            }
            if (s == RETIRED) {
                throw new BlockUnavailableException("slot " + slot + " of tier '" + name
                        + "' was lost to an I/O error", slot);
            }
            // a copy may still read a slot just freed: the manager settles copies before reuse
            known = crcKnown[slot];
            expected = crc[slot];
            gen = generation[slot];
        } finally {
            lock.unlock();
        }
        int actual;
        try {
            if (byteBufferable(dst)) {
                io.read(channel, slotDataOffset(slot) + offset, dst);
            } else {
                io.load(map, slotDataOffset(slot) + offset, dst);
            }
            if (!known) {
                return;
            }
            actual = offset == 0 && dst.byteSize() == slotBytes ? crcOf(dst) : crcOfSlot(slot, readScratch.get());
        } catch (IOException e) {
            dst.fill((byte) 0);
            lock.lock();
            try {
                ioFault(slot, "reading", e);
            } finally {
                lock.unlock();
            }
            throw new BlockUnavailableException("tier '" + name + "' could not read slot " + slot + ": "
                    + e.getMessage(), slot, e);
        }
        if (actual != expected) {
            dst.fill((byte) 0);
            lock.lock();
            try {
                if (generation[slot] == gen && crcKnown[slot] && crc[slot] == expected) {
                    quarantine(slot, expected, actual);
                }
            } finally {
                lock.unlock();
            }
            throw new BlockUnavailableException("block in slot " + slot + " of tier '" + name
                    + "' failed its CRC32C check: quarantined, treat it as a miss", slot);
        }
    }

    @Override
    public String backing() {
        return backing;
    }

    @Override
    public boolean failed() {
        return failed;
    }

    // ---------------------------------------------------------------- PersistentTier

    /**
     * Finds a published, unreferenced block and hands its slot to the caller. It checks the
     * slot's header (whose own CRC32C was checked when it was read), key and generation, without
     * reading the block: the bytes are verified by {@link #verify} and by every {@link #read},
     * which the caller does anyway before using them, so a block is read from the device once.
     * A block already held (by its publisher or an earlier lookup) is not handed out twice.
     *
     * @return the slot, or -1 when absent or held
     */
    @Override
    public int lookup(BlockKey key) {
        Objects.requireNonNull(key, "key");
        lock.lock();
        try {
            checkOpen();
            lookups.increment();
            sketch.increment(key);
            maybeCheckFile();
            if (failed) {
                return -1;
            }
            long v = indexGet(key);
            if (v < 0) {
                return -1;
            }
            int slot = SlotIndex.slotOf(v);
            if (!validEntry(slot, key, v) || state[slot] != RETAINED) {
                return -1;
            }
            retained.remove(slot);
            state[slot] = OWNED_PUBLISHED;
            hits.increment();
            return slot;
        } finally {
            lock.unlock();
        }
    }

    @Override
    public boolean contains(BlockKey key) {
        Objects.requireNonNull(key, "key");
        lock.lock();
        try {
            checkOpen();
            if (failed) {
                return false;
            }
            long v = indexGet(key);
            return v >= 0 && validEntry(SlotIndex.slotOf(v), key, v);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void publish(int slot, BlockKey key) {
        publish(slot, key, null);
    }

    /**
     * Seals a held slot's bytes under {@code key}: writes the slot header (key, parent, length,
     * CRC32C, generation), then the index entry. Publishing is idempotent for the same key. When
     * the file cannot take the header, the failure is counted and logged and the block simply
     * stays unpublished (a later lookup misses).
     *
     * @throws IllegalStateException when the slot is not held, or is published under another key
     */
    @Override
    public void publish(int slot, BlockKey key, BlockKey parent) {
        Objects.requireNonNull(key, "key");
        Tier.checkSlot(this, slot);
        if (key.equals(parent)) {
            throw new IllegalArgumentException("block " + key + " cannot be its own parent");
        }
        lock.lock();
        try {
            checkOpen();
            byte s = state[slot];
            if (s == OWNED_PUBLISHED) {
                if (key.equals(keys[slot])) {
                    return;
                }
                throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is already published under "
                        + keys[slot] + ", not " + key + "; write it to change its content");
            }
            if (s == OWNED_RETIRED) {
                return; // its bytes were lost to an I/O error, already reported
            }
            if (s != OWNED) {
                throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is not allocated");
            }
            if (failed) {
                return;
            }
            long gen = nextGeneration++;
            try {
                int sum = crcKnown[slot] ? crc[slot] : crcOfSlot(slot, crcScratch);
                writeSlotHeader(slot, SLOT_PUBLISHED, gen, sum, key, parent);
                crc[slot] = sum;
                crcKnown[slot] = true;
            } catch (IOException e) {
                ioFault(slot, "publishing", e);
                return;
            }
            state[slot] = OWNED_PUBLISHED;
            generation[slot] = gen;
            keys[slot] = key;
            parents[slot] = parent;
            childCount[slot] = 0;
            parentSlot[slot] = -1;
            // one index operation: the put also tells whether another slot held this key
            long previous = indexPut(key, slot, gen);
            if (previous >= 0) {
                int other = SlotIndex.slotOf(previous);
                if (other != slot && validEntry(other, key, previous) && state[other] == RETAINED) {
                    // the same block published twice: the older, unreferenced copy goes
                    retained.remove(other);
                    forgetBlock(other);
                    state[other] = FREE;
                    crcKnown[other] = false;
                    freeStack[freeTop++] = other;
                }
                // a copy still held elsewhere stays until freed; the index now names this one
            }
            if (parent != null) {
                linkToParent(slot);
            }
            adoptOrphans(slot);
            lastPublished = slot;
            publishes.increment();
            maybeCheckFile();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Verifies a slot's bytes against its recorded CRC32C. A published block that fails is
     * quarantined (unpublished, counted, logged).
     *
     * @return false when the checksum fails or the bytes cannot be read; true when they verify
     *         or no checksum is known (never published nor written whole)
     */
    @Override
    public boolean verify(int slot) {
        Tier.checkSlot(this, slot);
        lock.lock();
        try {
            checkOpen();
            byte s = state[slot];
            if (s == RETIRED || s == OWNED_RETIRED) {
                return false;
            }
            if (!crcKnown[slot] || s == FREE) {
                return true;
            }
            int actual;
            try {
                actual = crcOfSlot(slot, crcScratch);
            } catch (IOException e) {
                ioFault(slot, "verifying", e);
                return false;
            }
            if (actual != crc[slot]) {
                quarantine(slot, crc[slot], actual);
                return false;
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Forgets a slot's published block (header and index entry) so that neither a lookup nor a
     * restart finds it; the caller keeps the slot. An unreferenced published block is dropped.
     *
     * @throws IllegalStateException when the slot is neither held nor published
     */
    @Override
    public void unpublish(int slot) {
        Tier.checkSlot(this, slot);
        lock.lock();
        try {
            checkOpen();
            switch (state[slot]) {
                case OWNED, OWNED_RETIRED -> {
                    // nothing published
                }
                case OWNED_PUBLISHED -> {
                    forgetBlock(slot);
                    state[slot] = OWNED;
                }
                case RETAINED -> {
                    retained.remove(slot);
                    forgetBlock(slot);
                    state[slot] = FREE;
                    freeStack[freeTop++] = slot;
                }
                default -> throw new IllegalStateException("slot " + slot + " of tier '" + name
                        + "' is neither allocated nor published");
            }
        } finally {
            lock.unlock();
        }
    }

    /** @return a snapshot of the counters */
    public DiskTierStats stats() {
        return new DiskTierStats(recoveredBlocks, droppedAtOpen, uncleanOpen, indexRebuilt, lookups.sum(), hits.sum(),
                publishes.sum(), evictions.sum(), admissionRejections.sum(), checksumFailures.sum(), ioErrors.sum(),
                retiredSlots.sum(), fileLost, headerRepaired);
    }

    /**
     * Writes mapped pages to the device, then the index is closed, the file header marked
     * closed with the index checksum, and the file unmapped. Blocks published and not dropped
     * are found by the next process that opens the directory.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            boolean flushed = !fileLost;
            if (flushed) {
                try {
                    io.force(channel); // every dirty page of the file, whether written by pwrite or through the map
                } catch (IOException e) {
                    flushed = false;
                    ioErrors.increment();
                    LOG.log(Level.WARNING, "disk tier ''{0}'': flushing {1} failed: {2}", name, dataFile, e.getMessage());
                }
            }
            boolean indexClosed = true;
            try {
                index.close();
            } catch (RuntimeException | InternalError e) {
                indexClosed = false;
                LOG.log(Level.WARNING, "disk tier ''{0}'': closing index failed: {1}", name, e.toString());
            }
            if (flushed && indexClosed && !fileLost) {
                try {
                    int sum = fileCrc(indexFile);
                    writeFileHeader(STATE_CLOSED, sum, Files.size(indexFile));
                    io.force(channel);
                } catch (IOException e) {
                    ioErrors.increment();
                    LOG.log(Level.WARNING, "disk tier ''{0}'': marking {1} closed failed: {2}; the next open recovers",
                            name, dataFile, e.getMessage());
                }
            }
            arena.close();
            try {
                channel.close();
            } catch (IOException e) {
                LOG.log(Level.WARNING, "disk tier ''{0}'': closing {1}: {2}", name, dataFile, e.getMessage());
            }
            try {
                directory.close();
            } catch (IOException e) {
                LOG.log(Level.WARNING, "disk tier ''{0}'': releasing lock: {1}", name, e.getMessage());
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public String toString() {
        return "MappedFileTier[" + name + ", " + backing + "]";
    }

    // ---------------------------------------------------------------- internals (under lock)

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("tier '" + name + "' is closed");
        }
    }

    private long slotDataOffset(int slot) {
        return dataOffset + slot * slotStride;
    }

    private boolean validEntry(int slot, BlockKey key, long packed) {
        return slot >= 0 && slot < slotCount && (state[slot] == RETAINED || state[slot] == OWNED_PUBLISHED)
                && key.equals(keys[slot]) && (int) generation[slot] == SlotIndex.generationOf(packed);
    }

    private long indexGet(BlockKey key) {
        try {
            return index.get(key);
        } catch (RuntimeException | InternalError e) {
            indexFault("reading", e);
            return -1;
        }
    }

    /** @return the packed entry replaced, or -1 */
    private long indexPut(BlockKey key, int slot, long gen) {
        try {
            return index.put(key, slot, gen);
        } catch (RuntimeException | InternalError e) {
            indexFault("writing", e);
            return -1;
        }
    }

    private void indexFault(String what, Throwable e) {
        ioErrors.increment();
        LOG.log(Level.WARNING, "disk tier ''{0}'': {1} the index failed: {2}; the block is a miss, the next open "
                + "rebuilds the entry from its slot header", name, what, e.toString());
    }

    /** Removes a slot's block from the file header and index; the caller sets the new state. */
    private void forgetBlock(int slot) {
        BlockKey key = keys[slot];
        long packed = SlotIndex.pack(slot, generation[slot]);
        try {
            writeSlotHeader(slot, SLOT_FREE, 0, 0, null, null);
        } catch (IOException e) {
            // a stale published header is harmless: its CRC will not match whatever is written next
            ioErrors.increment();
            LOG.log(Level.WARNING, "disk tier ''{0}'': clearing header of slot {1} failed: {2}", name, slot, e.getMessage());
        }
        if (key != null) {
            try {
                index.remove(key, packed);
            } catch (RuntimeException | InternalError e) {
                indexFault("removing from", e);
            }
        }
        int p = parentSlot[slot];
        if (p >= 0 && generation[p] == parentGeneration[slot] && (state[p] == RETAINED || state[p] == OWNED_PUBLISHED)) {
            if (--childCount[p] == 0 && state[p] == RETAINED) {
                retained.setLeaf(p, true);
            }
        }
        parentSlot[slot] = -1;
        keys[slot] = null;
        parents[slot] = null;
        childCount[slot] = 0;
    }

    private void linkToParent(int slot) {
        int p;
        long v;
        int last = lastPublished;
        if (last >= 0 && last != slot && parents[slot].equals(keys[last])) {
            // chains are mostly published in order: the parent is the block published just before
            p = last;
            v = SlotIndex.pack(last, generation[last]);
        } else {
            v = indexGet(parents[slot]);
            p = v < 0 ? -1 : SlotIndex.slotOf(v);
        }
        if (p >= 0 && p != slot && validEntry(p, parents[slot], v)) {
            parentSlot[slot] = p;
            parentGeneration[slot] = generation[p];
            if (childCount[p]++ == 0 && state[p] == RETAINED) {
                retained.setLeaf(p, false);
            }
            return;
        }
        if (orphans.size() > slotCount) {
            orphans.clear(); // bounded memory: costs only the chain order of blocks published child-first
        }
        int[] waiting = orphans.get(parents[slot]);
        if (waiting == null) {
            orphans.put(parents[slot], new int[] {slot});
        } else {
            int[] more = Arrays.copyOf(waiting, waiting.length + 1);
            more[waiting.length] = slot;
            orphans.put(parents[slot], more);
        }
    }

    private void adoptOrphans(int slot) {
        int[] children = orphans.remove(keys[slot]);
        if (children == null) {
            return;
        }
        for (int c : children) {
            if (c != slot && (state[c] == RETAINED || state[c] == OWNED_PUBLISHED) && keys[slot].equals(parents[c])
                    && parentSlot[c] < 0) {
                parentSlot[c] = slot;
                parentGeneration[c] = generation[slot];
                childCount[slot]++;
            }
        }
    }

    private void quarantine(int slot, int expected, int actual) {
        checksumFailures.increment();
        LOG.log(Level.WARNING, "disk tier ''{0}'': block {1} in slot {2} failed its CRC32C check (recorded {3}, found {4}): "
                + "quarantined, served as a miss", name, keys[slot], slot, Integer.toHexString(expected),
                Integer.toHexString(actual));
        crcKnown[slot] = false;
        byte s = state[slot];
        if (s == RETAINED) {
            retained.remove(slot);
            forgetBlock(slot);
            state[slot] = FREE;
            freeStack[freeTop++] = slot;
        } else if (s == OWNED_PUBLISHED) {
            forgetBlock(slot);
            state[slot] = OWNED;
        }
    }

    /** An I/O error on a slot: counts, logs, checks for truncation, takes the slot out of use. */
    private void ioFault(int slot, String what, IOException e) {
        ioErrors.increment();
        LOG.log(Level.WARNING, "disk tier ''{0}'': I/O error {1} slot {2} of {3}: {4}; the block is a miss", name, what,
                slot, dataFile, e.getMessage());
        retire(slot);
        checkFile();
    }

    private void retire(int slot) {
        byte s = state[slot];
        if (s == RETIRED || s == OWNED_RETIRED) {
            return;
        }
        if (s == RETAINED) {
            retained.remove(slot);
        }
        if (s == RETAINED || s == OWNED_PUBLISHED) {
            forgetBlock(slot);
        }
        if (s == FREE) {
            for (int i = 0; i < freeTop; i++) {
                if (freeStack[i] == slot) {
                    freeStack[i] = freeStack[--freeTop];
                    break;
                }
            }
        }
        state[slot] = s == OWNED || s == OWNED_PUBLISHED ? OWNED_RETIRED : RETIRED;
        crcKnown[slot] = false;
        retiredSlots.increment();
    }

    /** A stat call every {@value #FILE_CHECK_EVERY} lookups and publishes, not one per block. */
    private void maybeCheckFile() {
        if (++opsSinceFileCheck >= FILE_CHECK_EVERY) {
            opsSinceFileCheck = 0;
            checkFile();
        }
    }

    /** Detects the data file deleted, replaced or truncated underneath. */
    private void checkFile() {
        if (fileLost || closed) {
            return;
        }
        Object fileKey;
        try {
            fileKey = Files.readAttributes(dataFile, BasicFileAttributes.class).fileKey();
        } catch (NoSuchFileException e) {
            fileKey = null;
        } catch (IOException e) {
            ioErrors.increment();
            LOG.log(Level.WARNING, "disk tier ''{0}'': cannot stat {1}: {2}", name, dataFile, e.toString());
            return;
        }
        if (!Objects.equals(fileKey, dataFileKey)) {
            fileLost = true;
            failed = true;
            ioErrors.increment();
            LOG.log(Level.ERROR, "disk tier ''{0}'': data file {1} was deleted or replaced underneath: the tier stops "
                    + "storing and serving blocks", name, dataFile);
            return;
        }
        long size;
        try {
            size = io.size(channel);
        } catch (IOException e) {
            ioErrors.increment();
            LOG.log(Level.WARNING, "disk tier ''{0}'': cannot read the size of {1}: {2}", name, dataFile, e.toString());
            return;
        }
        if (size >= fileLength) {
            return;
        }
        if (!truncationReported) {
            truncationReported = true;
            ioErrors.increment();
            LOG.log(Level.ERROR, "disk tier ''{0}'': data file {1} was truncated underneath to {2} of {3} bytes: "
                    + "blocks beyond the end are misses", name, dataFile, size, fileLength);
        }
        if (size < dataOffset) {
            failed = true;
        }
        for (int slot = 0; slot < slotCount; slot++) {
            if (slotDataOffset(slot) + slotStride > size || slotHeaderOffset(slot) + SLOT_HEADER_BYTES > size) {
                retire(slot);
            }
        }
    }

    private void writeSlotHeader(int slot, int st, long gen, int sum, BlockKey key, BlockKey parent) throws IOException {
        MemorySegment h = headerScratch;
        h.fill((byte) 0);
        if (st == SLOT_PUBLISHED) {
            h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_STATE_OFFSET, st);
            h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_FLAGS_OFFSET, parent == null ? 0 : FLAG_HAS_PARENT);
            h.set(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_GENERATION_OFFSET, gen);
            h.set(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_LENGTH_OFFSET, slotBytes);
            h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_DATA_CRC_OFFSET, sum);
            MemorySegment.copy(MemorySegment.ofArray(key.toBytes()), 0, h, SLOT_KEY_OFFSET, BlockKey.BYTES);
            if (parent != null) {
                MemorySegment.copy(MemorySegment.ofArray(parent.toBytes()), 0, h, SLOT_PARENT_OFFSET, BlockKey.BYTES);
            }
            h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_HEADER_CRC_OFFSET, headerCrc(h));
        }
        io.store(h, map, slotHeaderOffset(slot));
    }

    private static int headerCrc(MemorySegment h) {
        CRC32C c = new CRC32C();
        c.update(h.asSlice(0, SLOT_HEADER_CRC_OFFSET).asByteBuffer());
        return (int) c.getValue();
    }

    private void writeFileHeader(int openState, int indexCrc, long indexLength) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(FILE_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        byte[] model = modelId.getBytes(StandardCharsets.UTF_8);
        b.putLong(MAGIC_OFFSET, MAGIC)
                .putInt(VERSION_OFFSET, FORMAT_VERSION)
                .putInt(HEADER_BYTES_OFFSET, FILE_HEADER_BYTES)
                .putLong(FINGERPRINT_OFFSET, layout.fingerprint())
                .putLong(SLOT_BYTES_OFFSET, slotBytes)
                .putLong(SLOT_STRIDE_OFFSET, slotStride)
                .putLong(SLOT_COUNT_OFFSET, slotCount)
                .putLong(DATA_OFFSET_OFFSET, dataOffset)
                .putInt(SLOT_HEADER_SIZE_OFFSET, SLOT_HEADER_BYTES)
                .putInt(OPEN_STATE_OFFSET, openState)
                .putInt(INDEX_CRC_OFFSET, indexCrc)
                .putLong(INDEX_LENGTH_OFFSET, indexLength)
                .putInt(MODEL_ID_LENGTH_OFFSET, model.length)
                .put(MODEL_ID_OFFSET, model);
        CRC32C c = new CRC32C();
        c.update(b.array(), 0, FILE_HEADER_CRC_OFFSET);
        b.putInt(FILE_HEADER_CRC_OFFSET, (int) c.getValue());
        io.store(MemorySegment.ofArray(b.array()), map, 0);
    }

    /** CRC32C of a slot's bytes on file, read in chunks into scratch memory. */
    private int crcOfSlot(int slot, MemorySegment scratch) throws IOException {
        CRC32C c = new CRC32C();
        long base = slotDataOffset(slot);
        for (long done = 0; done < slotBytes; ) {
            long n = Math.min(scratch.byteSize(), slotBytes - done);
            MemorySegment part = scratch.asSlice(0, n);
            io.read(channel, base + done, part);
            c.update(part.asByteBuffer());
            done += n;
        }
        return (int) c.getValue();
    }

    /** @return whether positional I/O can take this segment (native, or a heap byte[]) */
    private static boolean byteBufferable(MemorySegment seg) {
        return seg.isNative() || seg.heapBase().map(b -> b instanceof byte[]).orElse(false);
    }

    /** CRC32C of caller memory (never the mapped file). */
    private int crcOf(MemorySegment seg) {
        CRC32C c = new CRC32C();
        try {
            c.update(seg.asByteBuffer());
        } catch (UnsupportedOperationException e) {
            // a heap segment over a non-byte array: go through scratch memory
            MemorySegment scratch = readScratch.get();
            for (long done = 0; done < seg.byteSize(); ) {
                long n = Math.min(scratch.byteSize(), seg.byteSize() - done);
                MemorySegment.copy(seg, done, scratch, 0, n);
                c.update(scratch.asSlice(0, n).asByteBuffer());
                done += n;
            }
        }
        return (int) c.getValue();
    }

    private static int fileCrc(Path file) throws IOException {
        CRC32C c = new CRC32C();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
            while (ch.read(buf) > 0) {
                buf.flip();
                c.update(buf);
                buf.clear();
            }
        }
        return (int) c.getValue();
    }
}
