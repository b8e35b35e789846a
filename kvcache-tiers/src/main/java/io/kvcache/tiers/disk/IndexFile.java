package io.kvcache.tiers.disk;

import io.kvcache.core.block.BlockKey;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.function.IntConsumer;
import java.util.zip.CRC32C;

/**
 * The Chronicle Map index file's lifecycle and the containment of its faults. At open it
 * decides whether the index on disk can be trusted (the checksum recorded at the last clean
 * close, the marker of an interrupted open), opens, recovers or rebuilds it, and reconciles it
 * with the slot headers, which are the truth. While the tier runs, a fault of the index (a
 * Chronicle exception, an {@link InternalError} from its mapping) is counted and logged and
 * makes the block a miss; the next open rebuilds the entry from its slot header. At close it
 * closes the index and checksums the file for the file header.
 *
 * <p>Not thread-safe as a whole: {@link #open} and {@link #reconcile} run on the opening thread
 * before the tier is published; every other method with the tier lock held.
 */
final class IndexFile {
    private static final System.Logger LOG = System.getLogger(MappedFileTier.class.getName());

    private final String tier;
    private final Path file;
    private final int slotCount;
    private final DiskCounters counters;
    private SlotIndex index;
    private boolean rebuilt;

    private IndexFile(String tier, Path file, int slotCount, DiskCounters counters) {
        this.tier = tier;
        this.file = file;
        this.slotCount = slotCount;
        this.counters = counters;
    }

    /**
     * Opens the index beside the data file, or creates it empty. It is deleted (and rebuilt by
     * {@link #reconcile}) when the data file is new, when the file header that vouched for it
     * was damaged, when it does not match the checksum recorded at the last clean close, when an
     * earlier open of it was interrupted, or when Chronicle cannot open it. After an unclean
     * shutdown it is opened with Chronicle's recovery.
     *
     * @param fresh          whether the data file was initialized by this open
     * @param clean          whether the last process closed the data file cleanly
     * @param headerDamaged  whether the file header failed its checksum (and was repaired)
     * @param indexCrc       the index checksum the file header recorded
     * @param indexLength    the index length the file header recorded
     * @param blocksToIndex  whether the slot headers hold published blocks (an absent index is then rebuilt)
     */
    static IndexFile open(String tier, Path file, int slotCount, DiskCounters counters, boolean fresh, boolean clean,
            boolean headerDamaged, int indexCrc, long indexLength, boolean blocksToIndex) throws IOException {
        IndexFile f = new IndexFile(tier, file, slotCount, counters);
        try {
            f.open(fresh, clean, headerDamaged, indexCrc, indexLength, blocksToIndex);
        } catch (IOException | RuntimeException | Error e) {
            f.closeQuietly();
            throw e;
        }
        return f;
    }

    private void open(boolean fresh, boolean clean, boolean headerDamaged, int indexCrc, long indexLength,
            boolean blocksToIndex) throws IOException {
        boolean exists = Files.exists(file) && Files.size(file) > 0;
        if (exists) {
            CacheDirectory.checkExisting(file);
        }
        if (fresh && exists) {
            Files.delete(file);
            exists = false;
        }
        if (exists && headerDamaged) {
            // the checksum and length that vouch for the index were in the damaged header
            Files.delete(file);
            exists = false;
            rebuilt = true;
        }
        if (exists && clean && (indexLength != Files.size(file) || indexCrc != fileCrc(file))) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': index {1} does not match the checksum recorded at the last "
                    + "close: rebuilding it from the slot headers", tier, file);
            Files.delete(file);
            exists = false;
            rebuilt = true;
        }
        // Chronicle marks its header "not ready" while it creates or recovers a file, and an open
        // that finds it so waits a minute for the writer: here there is none (we hold the
        // directory lock), so an open interrupted by a crash is recognised by this marker instead
        Path opening = file.resolveSibling(MappedFileTier.INDEX_FILE + ".opening");
        if (exists && Files.exists(opening)) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': an earlier open of index {1} was interrupted: rebuilding it "
                    + "from the slot headers", tier, file);
            Files.delete(file);
            exists = false;
            rebuilt = true;
        }
        long entries = slotCount;
        if (exists) {
            Files.deleteIfExists(opening);
            Files.createFile(opening);
            try {
                if (clean) {
                    index = SlotIndex.open(file.toFile(), entries);
                } else {
                    LOG.log(Level.INFO, "disk tier ''{0}'': recovering index {1} after an unclean shutdown", tier, file);
                    index = SlotIndex.recover(file.toFile(), entries);
                    if (index.recoveryCorruptions > 0) {
                        LOG.log(Level.WARNING, "disk tier ''{0}'': index recovery repaired {1} corruptions", tier,
                                index.recoveryCorruptions);
                    }
                }
            } catch (IOException | RuntimeException | InternalError | AssertionError e) {
                LOG.log(Level.WARNING, "disk tier ''{0}'': index {1} cannot be opened ({2}): rebuilding it from the "
                        + "slot headers", tier, file, e.toString());
                index = null;
                Files.deleteIfExists(file);
                rebuilt = true;
            }
        } else if (!fresh && blocksToIndex) {
            rebuilt = true;
        }
        if (index == null) {
            index = create();
        }
        Files.deleteIfExists(opening);
    }

    /**
     * Creates an empty index under a temporary name and renames it into place once Chronicle
     * has marked it ready: a process killed while creating it leaves only the temporary file,
     * never an index that the next open would wait a minute for ("not ready") before failing.
     */
    private SlotIndex create() throws IOException {
        Path fresh = file.resolveSibling(MappedFileTier.INDEX_FILE + ".new");
        Files.deleteIfExists(fresh);
        Files.deleteIfExists(file);
        SlotIndex.open(fresh.toFile(), slotCount).close();
        Files.setPosixFilePermissions(fresh, CacheDirectory.FILE_PERMISSIONS);
        Files.move(fresh, file, StandardCopyOption.ATOMIC_MOVE);
        return SlotIndex.open(file.toFile(), slotCount);
    }

    /**
     * Makes the index agree with the slot headers, which are the truth: drops every entry that
     * does not name a recovered block, adds every recovered block it lacks, and where two slots
     * claim one key (a crash between publishing a copy and dropping the old one) keeps the one
     * the index names and has the other dropped.
     *
     * @param dropDuplicate clears a duplicate slot's header and frees it in the table
     * @return index entries and slots dropped
     */
    long reconcile(SlotTable slots, IntConsumer dropDuplicate) {
        long dropped = 0;
        List<SlotIndex.Entry> entries;
        try {
            entries = index.entries();
        } catch (RuntimeException | InternalError e) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': index unreadable ({1}): rebuilding", tier, e.toString());
            entries = List.of();
            rebuild();
        }
        for (SlotIndex.Entry e : entries) {
            if (!slots.holds(SlotIndex.slotOf(e.packed()), e.key(), e.packed())) {
                index.remove(e.key(), e.packed());
                dropped++;
            }
        }
        for (int slot = 0; slot < slotCount; slot++) {
            if (slots.state(slot) != SlotState.RETAINED) {
                continue;
            }
            long v = index.get(slots.key(slot));
            if (v < 0) {
                index.put(slots.key(slot), slot, slots.generation(slot));
            } else if (SlotIndex.slotOf(v) != slot) {
                dropped++;
                dropDuplicate.accept(slot);
            }
        }
        return dropped;
    }

    private void rebuild() {
        try {
            index.close();
        } catch (RuntimeException ignored) {
            // replaced below
        }
        try {
            index = create();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rebuild index " + file, e);
        }
        rebuilt = true;
    }

    /** @return whether the index was rebuilt from the slot headers at open */
    boolean rebuilt() {
        return rebuilt;
    }

    // ---------------------------------------------------------------- while running (tier lock)

    /** @return the packed slot and generation, or -1 when absent or the index failed */
    long get(BlockKey key) {
        try {
            return index.get(key);
        } catch (RuntimeException | InternalError e) {
            fault("reading", e);
            return -1;
        }
    }

    /** @return the packed entry replaced, or -1 */
    long put(BlockKey key, int slot, long gen) {
        try {
            return index.put(key, slot, gen);
        } catch (RuntimeException | InternalError e) {
            fault("writing", e);
            return -1;
        }
    }

    /** Removes {@code key}'s entry if it still maps to {@code packed}; nothing for a null key. */
    void remove(BlockKey key, long packed) {
        if (key == null) {
            return;
        }
        try {
            index.remove(key, packed);
        } catch (RuntimeException | InternalError e) {
            fault("removing from", e);
        }
    }

    private void fault(String what, Throwable e) {
        counters.ioError();
        LOG.log(Level.WARNING, "disk tier ''{0}'': {1} the index failed: {2}; the block is a miss, the next open "
                + "rebuilds the entry from its slot header", tier, what, e.toString());
    }

    // ---------------------------------------------------------------- close (tier lock)

    /** Closes the index; a failure is logged. @return whether it closed cleanly */
    boolean close() {
        try {
            index.close();
            return true;
        } catch (RuntimeException | InternalError e) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': closing index failed: {1}", tier, e.toString());
            return false;
        }
    }

    /** Closes the index after a failed open; the open's failure is what the caller reports. */
    void closeQuietly() {
        try {
            if (index != null) {
                index.close();
            }
        } catch (RuntimeException ignored) {
            // the open failure is what the caller needs to see
        }
    }

    /** @return CRC32C of the closed index file, for the file header */
    int checksum() throws IOException {
        return fileCrc(file);
    }

    /** @return the closed index file's length, for the file header */
    long length() throws IOException {
        return Files.size(file);
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
