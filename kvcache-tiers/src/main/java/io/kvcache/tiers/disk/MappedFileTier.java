package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.DiskFileDescriptor.MAX_MODEL_ID_BYTES;

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
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The disk tier: a preallocated file of fixed-size block slots in a cache directory, mapped
 * with {@link java.nio.channels.FileChannel#map(java.nio.channels.FileChannel.MapMode, long, long,
 * java.lang.foreign.Arena) FileChannel.map} (so it may exceed 2 GiB
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
 * slots. So do the checksum reads of {@link #verify} and of {@link #publish} (when the bytes
 * were not written whole): each re-checks under the lock that the slot still holds the block it
 * read, as {@link #read} does.
 *
 * <p>Inside, this class is a façade: each operation takes the lock, checks its arguments and the
 * slot's state, and delegates to package-private parts with one responsibility each:
 * {@link SlotTable} (the slot state machine, {@link SlotState}), {@link BlockLifecycle} (each
 * transition's writes, in crash-safe order, and the fault policies), {@link PrefixChains},
 * {@link DiskAdmission}, {@link IndexFile}, {@link DataFile}, the codecs {@link FileHeader} and
 * {@link SlotHeader}, {@link DiskCounters}, and {@link DiskTierOpener} for the one-shot recovery.
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

    private static final long DEFAULT_PREALLOCATE_CHUNK = 256L << 20;

    private final String name;
    private final KvLayout layout;
    private final String modelId;
    private final long slotBytes;
    private final int slotCount;
    private final String backing;
    private final CacheDirectory directory;
    /** The header written at open; {@link #close()} writes it marked closed. */
    private final FileHeader header;
    private final DataFile data;
    private final IndexFile index;
    private final SlotTable slots;
    private final PrefixChains chains;
    private final DiskAdmission admission;
    private final DiskCounters counters;
    private final BlockLifecycle life;

    /**
     * How long a whole-block check vouches for later partial reads of the same slot, unchanged
     * since (same generation and checksum): a request that copies a block layer by layer reads
     * its slot once per layer, and checking the whole block for each would read it that many
     * times over. A read after this long, or of a slot changed since, checks the whole block again.
     */
    static final long CHECK_REUSE_NANOS = 1_000_000_000L;

    /** Guards every metadata operation and each part of the tier that is not thread-safe. */
    private final ReentrantLock lock = new ReentrantLock();
    /** Per slot, the last whole-block check that passed: when (0 for never), of which generation and checksum. */
    private final long checkReuseNanos;
    private final long[] checkedAt;
    private final long[] checkedGeneration;
    private final int[] checkedCrc;
    private volatile boolean closed;

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
        private long checkReuseNanos = CHECK_REUSE_NANOS;

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

        /** For tests: how long a passed whole-block check vouches for partial reads (0: never). */
        Builder checkReuseNanos(long nanos) {
            this.checkReuseNanos = nanos;
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
         * @throws ChronicleMapMissingException   when Chronicle Map is not on the class path (the
         *                                        dependency to add is named)
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
            ChronicleJvmFlags.requireChronicleMap();
            ChronicleJvmFlags.requirePresent();
            try {
                return new MappedFileTier(this, slots,
                        new DiskTierOpener(name, layout, modelId, io, preallocateChunk, slots).open(directory));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot open disk tier in " + directory + ": " + e.getMessage(), e);
            }
        }
    }

    private MappedFileTier(Builder b, int slotCount, DiskTierOpener.Opened o) {
        this.name = b.name;
        this.slotCount = slotCount;
        this.layout = b.layout;
        this.modelId = b.modelId;
        this.slotBytes = layout.blockBytes();
        this.directory = o.directory();
        this.header = o.header();
        this.data = o.data();
        this.index = o.index();
        this.slots = o.slots();
        this.chains = o.chains();
        this.admission = o.admission();
        this.counters = o.counters();
        this.backing = o.backing();
        this.life = new BlockLifecycle(name, data, index, slots, chains, counters, slotBytes, slotCount);
        this.checkReuseNanos = b.checkReuseNanos;
        this.checkedAt = new long[slotCount];
        this.checkedGeneration = new long[slotCount];
        this.checkedCrc = new int[slotCount];
    }

    /** Records that a slot's whole block just passed its check. Caller holds {@link #lock}. */
    private void markChecked(int slot, long gen, int crc) {
        checkedAt[slot] = Math.max(1, System.nanoTime());
        checkedGeneration[slot] = gen;
        checkedCrc[slot] = crc;
    }

    /** @return whether a passed check of the slot, unchanged since, vouches for a read now. Caller holds {@link #lock}. */
    private boolean checkedRecently(int slot, long gen, int crc) {
        return checkedAt[slot] != 0 && checkedGeneration[slot] == gen && checkedCrc[slot] == crc
                && System.nanoTime() - checkedAt[slot] < checkReuseNanos;
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
            return data.failed() ? 0 : slots.freeCount() + slots.retainedCount();
        } finally {
            lock.unlock();
        }
    }

    /** @return unreferenced published blocks the tier keeps until it needs their slots */
    public int retainedBlocks() {
        lock.lock();
        try {
            return slots.retainedCount();
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
            if (data.failed()) {
                return -1;
            }
            if (key != null) {
                admission.recordAccess(key);
            }
            if (slots.freeCount() == 0) {
                int victim = admission.victimFor(key);
                if (victim < 0) {
                    return -1;
                }
                life.dropRetained(victim);
                counters.eviction();
            }
            return slots.takeFree();
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
            if (!slots.release(slot, chains.isLeaf(slot)).held()) {
                throw notAllocated(slot);
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
        return data.slotDataOffset(slot);
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
        int sum = whole ? data.crcOf(src) : 0;
        lock.lock();
        try {
            checkOpen();
            SlotState s = slots.state(slot);
            if (s == SlotState.OWNED_RETIRED) {
                throw lost(slot, "an earlier I/O error");
            }
            if (s == SlotState.OWNED_PUBLISHED) {
                life.unpublishHeld(slot);
            } else if (s != SlotState.OWNED) {
                throw notAllocated(slot);
            }
            slots.forgetCrc(slot);
            checkedAt[slot] = 0;
        } finally {
            lock.unlock();
        }
        try {
            data.write(slot, offset, src);
        } catch (IOException e) {
            ioFaultLocked(slot, "writing", e, false);
            throw new BlockUnavailableException("tier '" + name + "' could not write slot " + slot + ": "
                    + e.getMessage(), slot, e);
        }
        if (whole) {
            lock.lock();
            try {
                slots.recordCrc(slot, sum);
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Copies bytes out of a slot the caller holds, verifying the block's CRC32C when it is known
     * (published, looked up, or written whole): a whole-block read checks the bytes it delivered,
     * a partial read checks the whole block, unless the block passed a check less than
     * {@link #CHECK_REUSE_NANOS} ago and has not changed since (a block read layer by layer is
     * checked once, not once per layer).
     *
     * @throws BlockUnavailableException when the bytes fail their checksum (the slot is quarantined)
     *                                   or cannot be read; {@code dst} is then zeroed
     */
    @Override
    public void read(int slot, long offset, MemorySegment dst) {
        Tier.checkSlot(this, slot);
        Tier.checkRange(this, offset, dst.byteSize());
        boolean known;
        boolean whole;
        boolean vouched;
        int expected;
        long gen;
        lock.lock();
        try {
            checkOpen();
            SlotState s = slots.state(slot);
            if (s == SlotState.OWNED_RETIRED) {
                throw lost(slot, "an earlier I/O error");
            }
            if (s == SlotState.RETIRED) {
                throw lost(slot, "an I/O error");
            }
            // a copy may still read a slot just freed: the manager settles copies before reuse
            known = slots.crcKnown(slot);
            expected = slots.crc(slot);
            gen = slots.generation(slot);
            whole = offset == 0 && dst.byteSize() == slotBytes;
            vouched = known && !whole && checkedRecently(slot, gen, expected);
        } finally {
            lock.unlock();
        }
        int actual;
        try {
            data.read(slot, offset, dst);
            if (!known || vouched) {
                return;
            }
            counters.wholeBlockCheck();
            actual = whole ? data.crcOf(dst) : data.crcOfSlot(slot);
        } catch (IOException e) {
            dst.fill((byte) 0);
            ioFaultLocked(slot, "reading", e, false);
            throw new BlockUnavailableException("tier '" + name + "' could not read slot " + slot + ": "
                    + e.getMessage(), slot, e);
        }
        if (actual != expected) {
            dst.fill((byte) 0);
            lock.lock();
            try {
                checkedAt[slot] = 0;
                life.quarantineIfUnchanged(slot, gen, expected, actual);
            } finally {
                lock.unlock();
            }
            throw new BlockUnavailableException("block in slot " + slot + " of tier '" + name
                    + "' failed its CRC32C check: quarantined, treat it as a miss", slot);
        }
        lock.lock();
        try {
            markChecked(slot, gen, expected);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public String backing() {
        return backing;
    }

    @Override
    public boolean failed() {
        return data.failed();
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
            counters.lookup();
            admission.recordAccess(key);
            life.maybeCheckFile();
            if (data.failed()) {
                return -1;
            }
            long v = index.get(key);
            if (v < 0) {
                return -1;
            }
            int slot = SlotIndex.slotOf(v);
            if (!slots.holds(slot, key, v) || slots.state(slot) != SlotState.RETAINED) {
                return -1;
            }
            slots.takeRetained(slot);
            counters.hit();
            return slot;
        } finally {
            lock.unlock();
        }
    }

    @Override
    public boolean checksumKnown(int slot) {
        Tier.checkSlot(this, slot);
        lock.lock();
        try {
            return slots.crcKnown(slot);
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
            if (data.failed()) {
                return false;
            }
            long v = index.get(key);
            return v >= 0 && slots.holds(SlotIndex.slotOf(v), key, v);
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
     * stays unpublished (a later lookup misses). When the checksum is not known yet (the bytes
     * were not written whole), the block is read for it outside the tier lock.
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
        long gen;
        lock.lock();
        try {
            if (!publishable(slot, key)) {
                return;
            }
            gen = slots.nextGeneration();
            if (slots.crcKnown(slot)) {
                life.publish(slot, gen, key, parent, slots.crc(slot));
                return;
            }
        } finally {
            lock.unlock();
        }
        OptionalInt sum = checksumUnlocked(slot, "publishing");
        if (sum.isEmpty()) {
            return;
        }
        lock.lock();
        try {
            // checked again: the slot may have been retired, or the tier failed, while its bytes were read
            if (publishable(slot, key)) {
                life.publish(slot, gen, key, parent, slots.crcKnown(slot) ? slots.crc(slot) : sum.getAsInt());
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Verifies a slot's bytes against its recorded CRC32C, reading them outside the tier lock. A
     * published block that fails is quarantined (unpublished, counted, logged) unless it was
     * replaced while it was read.
     *
     * @return false when the checksum fails or the bytes cannot be read; true when they verify
     *         or no checksum is known (never published nor written whole)
     */
    @Override
    public boolean verify(int slot) {
        Tier.checkSlot(this, slot);
        int expected;
        long gen;
        lock.lock();
        try {
            checkOpen();
            SlotState s = slots.state(slot);
            if (s.retired()) {
                return false;
            }
            if (!slots.crcKnown(slot) || s == SlotState.FREE) {
                return true;
            }
            expected = slots.crc(slot);
            gen = slots.generation(slot);
        } finally {
            lock.unlock();
        }
        counters.wholeBlockCheck();
        OptionalInt actual = checksumUnlocked(slot, "verifying");
        if (actual.isEmpty()) {
            return false;
        }
        if (actual.getAsInt() == expected) {
            lock.lock();
            try {
                markChecked(slot, gen, expected);
            } finally {
                lock.unlock();
            }
            return true;
        }
        lock.lock();
        try {
            checkOpen();
            checkedAt[slot] = 0;
            life.quarantineIfUnchanged(slot, gen, expected, actual.getAsInt());
        } finally {
            lock.unlock();
        }
        return false;
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
            switch (slots.state(slot)) {
                case OWNED, OWNED_RETIRED -> {
                    // nothing published
                }
                case OWNED_PUBLISHED -> life.unpublishHeld(slot);
                case RETAINED -> life.dropRetained(slot);
                default -> throw new IllegalStateException("slot " + slot + " of tier '" + name
                        + "' is neither allocated nor published");
            }
        } finally {
            lock.unlock();
        }
    }

    /** @return a snapshot of the counters */
    public DiskTierStats stats() {
        return counters.snapshot(data.lost());
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
            boolean flushed = !data.lost() && data.flush();
            boolean indexClosed = index.close();
            if (flushed && indexClosed && !data.lost()) {
                try {
                    data.storeFileHeader(header.closed(index.checksum(), index.length()));
                    data.force();
                } catch (IOException e) {
                    counters.ioError();
                    LOG.log(Level.WARNING, "disk tier ''{0}'': marking {1} closed failed: {2}; the next open recovers",
                            name, data.path(), e.getMessage());
                }
            }
            data.close();
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

    // ---------------------------------------------------------------- checks (tier lock held)

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("tier '" + name + "' is closed");
        }
    }

    private IllegalStateException notAllocated(int slot) {
        return new IllegalStateException("slot " + slot + " of tier '" + name + "' is not allocated");
    }

    private BlockUnavailableException lost(int slot, String cause) {
        return new BlockUnavailableException("slot " + slot + " of tier '" + name + "' was lost to " + cause, slot);
    }

    /**
     * @return whether a held slot is to be sealed under {@code key} now; false when there is
     *         nothing to do (already published under it, retired, or the tier failed)
     * @throws IllegalStateException when the tier is closed, or the slot not held or published under another key
     */
    private boolean publishable(int slot, BlockKey key) {
        checkOpen();
        SlotState s = slots.state(slot);
        if (s == SlotState.OWNED_PUBLISHED) {
            if (key.equals(slots.key(slot))) {
                return false;
            }
            throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is already published under "
                    + slots.key(slot) + ", not " + key + "; write it to change its content");
        }
        if (s == SlotState.OWNED_RETIRED) {
            return false; // its bytes were lost to an I/O error, already reported
        }
        if (s != SlotState.OWNED) {
            throw notAllocated(slot);
        }
        return !data.failed();
    }

    /**
     * Reads a slot's bytes for their CRC32C without the tier lock (into this thread's scratch
     * memory). An I/O error is a fault of the slot, as it was when the lock covered the read; a
     * tier closed meanwhile throws as {@link #checkOpen} does.
     *
     * @return the checksum, or empty after an I/O error
     */
    private OptionalInt checksumUnlocked(int slot, String what) {
        try {
            return OptionalInt.of(data.crcOfSlot(slot));
        } catch (IOException e) {
            ioFaultLocked(slot, what, e, true);
            return OptionalInt.empty();
        }
    }

    /**
     * {@link BlockLifecycle#ioFault} for I/O done without the tier lock.
     *
     * @param refuseClosed throw as {@link #checkOpen} does when the tier was closed while the
     *                     bytes were read (for checksum reads that the lock once covered)
     */
    private void ioFaultLocked(int slot, String what, IOException e, boolean refuseClosed) {
        lock.lock();
        try {
            if (refuseClosed) {
                checkOpen();
            }
            life.ioFault(slot, what, e);
        } finally {
            lock.unlock();
        }
    }
}
