package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.DiskFileDescriptor.STATE_CLOSED;

import io.kvcache.core.layout.KvLayout;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * One-shot recovery: opens the cache directory and its files and rebuilds the tier's tables from
 * the slot headers and the index, after a clean close or a crash at any instant.
 *
 * <ol>
 *   <li>Lock the directory; open the data file and read its header ({@link FileHeader#read}):
 *       another format, layout, model or capacity is refused untouched.</li>
 *   <li>Reserve and map the file ({@link DataFile#reserveAndMap}) and mark it open; a file
 *       shorter than its header gets a zeroed slot header table.</li>
 *   <li>Scan the slot headers: each valid published one becomes a retained block; torn ones are
 *       dropped, unreserved slots retired.</li>
 *   <li>Open, recover or rebuild the index ({@link IndexFile#open}) and reconcile it with the
 *       slot headers, dropping slots that duplicate a key.</li>
 *   <li>Link the recovered blocks into their prefix chains, order them by generation, stack the
 *       free slots, and check that every slot is accounted for.</li>
 * </ol>
 *
 * <p>Runs only on the thread in {@code MappedFileTier.Builder.open()}, before the tier is
 * visible to any other; the façade's final fields then publish what it {@linkplain Opened returns}.
 * On failure everything opened so far is closed and the directory lock released.
 */
final class DiskTierOpener {
    private static final System.Logger LOG = System.getLogger(MappedFileTier.class.getName());
    /** Slot headers read from the file at a time. */
    private static final int SCAN_BATCH = 4096;

    /** What an open hands to the façade. */
    record Opened(CacheDirectory directory, FileHeader header, DataFile data, IndexFile index, SlotTable slots,
            PrefixChains chains, DiskAdmission admission, DiskCounters counters, String backing) {
    }

    private final String name;
    private final KvLayout layout;
    private final DiskIo io;
    private final long preallocateChunk;
    private final int slotCount;
    private final FileHeader header;
    private final DiskCounters counters = new DiskCounters();

    DiskTierOpener(String name, KvLayout layout, String modelId, DiskIo io, long preallocateChunk, int slotCount) {
        this.name = name;
        this.layout = layout;
        this.io = io;
        this.preallocateChunk = preallocateChunk;
        this.slotCount = slotCount;
        this.header = FileHeader.opened(layout, modelId, slotCount);
    }

    /**
     * @throws CacheDirectoryLockedException when another process or tier has the directory open
     * @throws DiskFormatException           when the file is another's or unsafe
     */
    Opened open(Path directory) throws IOException {
        CacheDirectory dir = CacheDirectory.open(directory);
        FileChannel ch = null;
        DataFile data = null;
        IndexFile index = null;
        try {
            Path dataPath = dir.dir.resolve(MappedFileTier.DATA_FILE);
            Path indexPath = dir.dir.resolve(MappedFileTier.INDEX_FILE);
            boolean existed = CacheDirectory.prepareFile(dataPath);
            ch = io.open(dataPath);
            FileHeader.Found found = !existed || io.size(ch) == 0 ? FileHeader.Found.UNUSABLE
                    : FileHeader.read(ch, header, layout, name, dataPath);
            boolean fresh = found.status() == FileHeader.Status.UNUSABLE;
            boolean headerRepaired = found.status() == FileHeader.Status.DAMAGED;
            // a damaged header's open state is not trusted: the open recovers as after a crash
            boolean clean = fresh
                    || (found.status() == FileHeader.Status.VALID && found.header().openState() == STATE_CLOSED);
            boolean unclean = found.status() == FileHeader.Status.VALID && !clean;

            data = DataFile.reserveAndMap(name, io, counters, dataPath, ch, layout.blockBytes(), slotCount,
                    preallocateChunk);
            int indexCrc = fresh ? 0 : found.header().indexCrc();
            long indexLength = fresh ? -1 : found.header().indexLength();
            data.storeFileHeader(header); // also repairs a damaged header: every field is rewritten
            if (data.failed()) {
                LOG.log(Level.ERROR, "disk tier ''{0}'': disk full, only {1} bytes of {2} could be reserved in {3}, "
                        + "not even the slot headers; the tier stores nothing", name, data.reservedBytes(),
                        data.fileLength(), dataPath);
            }
            if (fresh && existed) {
                data.clearSlotHeaders(); // the file was shorter than its header: nothing there was written by us
            }
            SlotTable slots = new SlotTable(slotCount);
            long dropped = scanSlotHeaders(data, slots, fresh);
            index = IndexFile.open(name, indexPath, slotCount, counters, fresh, clean, headerRepaired, indexCrc,
                    indexLength, !fresh && slots.hasRetained());
            DataFile file = data;
            dropped += index.reconcile(slots, slot -> dropDuplicate(file, slots, slot));
            PrefixChains chains = new PrefixChains(slots, index, slotCount);
            chains.linkRecovered();
            slots.completeRecovery(chains::isLeaf);
            long recovered = slots.retainedCount(); // after duplicates were dropped
            if (!slots.accountsForEverySlot()) {
                throw new IllegalStateException("slot accounting broken at open");
            }
            String backing = "mmap of " + dataPath + " (" + slotCount + " slots of " + layout.blockBytes() + " bytes, "
                    + (data.reservedBytes() >= data.fileLength() ? "preallocated" : "partly preallocated: disk full")
                    + "), index Chronicle Map " + indexPath;
            counters.opened(recovered, dropped, unclean, index.rebuilt(), headerRepaired);
            if (recovered > 0 || unclean || dropped > 0 || headerRepaired) {
                LOG.log(Level.INFO, "disk tier ''{0}'' opened {1}: {2} blocks recovered, {3} dropped{4}{5}", name,
                        dir.dir, recovered, dropped, unclean ? ", after an unclean shutdown"
                                : headerRepaired ? ", its damaged file header repaired" : "",
                        index.rebuilt() ? ", index rebuilt from slot headers" : "");
            }
            return new Opened(dir, header, data, index, slots, chains,
                    new DiskAdmission(slotCount, slots, counters), counters, backing);
        } catch (IOException | RuntimeException | Error e) {
            if (index != null) {
                index.closeQuietly();
            }
            if (data != null) {
                data.abandon();
            } else if (ch != null) {
                ch.close();
            }
            dir.close();
            throw e;
        }
    }

    /**
     * Reads every slot header; valid published ones become retained blocks, slots beyond the
     * reserved bytes or whose headers cannot be read are retired.
     *
     * @return torn or corrupt headers found (their blocks are misses)
     */
    private long scanSlotHeaders(DataFile data, SlotTable slots, boolean fresh) {
        if (fresh) {
            for (int slot = 0; slot < slotCount; slot++) {
                if (!data.slotWithin(slot, data.reservedBytes())) {
                    retire(slots, slot);
                }
            }
            return 0;
        }
        long dropped = 0;
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment table = scratch.allocate(SlotHeader.bytes(SCAN_BATCH), 8);
            for (int first = 0; first < slotCount; first += SCAN_BATCH) {
                int n = Math.min(SCAN_BATCH, slotCount - first);
                MemorySegment part = table.asSlice(0, SlotHeader.bytes(n));
                try {
                    data.loadSlotHeaders(first, part);
                } catch (IOException e) {
                    counters.ioError();
                    LOG.log(Level.WARNING, "disk tier ''{0}'': cannot read slot headers {1}..{2}: {3}; those slots are "
                            + "retired", name, first, first + n - 1, e.getMessage());
                    for (int i = 0; i < n; i++) {
                        retire(slots, first + i);
                    }
                    continue;
                }
                for (int i = 0; i < n; i++) {
                    int slot = first + i;
                    if (!data.slotWithin(slot, data.reservedBytes())) {
                        retire(slots, slot);
                        continue;
                    }
                    SlotHeader h = SlotHeader.decode(part.asSlice(SlotHeader.bytes(i), SlotHeader.bytes(1)),
                            layout.blockBytes());
                    switch (h.kind()) {
                        case FREE -> {
                            // nothing published here
                        }
                        case DAMAGED -> dropped++; // torn or corrupt header: the block is a miss
                        case PUBLISHED -> slots.recover(slot, h.generation(), h.dataCrc(), h.key(), h.parent());
                    }
                }
            }
        }
        return dropped;
    }

    private void retire(SlotTable slots, int slot) {
        slots.retire(slot);
        counters.retiredSlot();
    }

    /** A second slot claiming a key at open: its header is cleared (a failure only counted) and the slot freed. */
    private void dropDuplicate(DataFile data, SlotTable slots, int slot) {
        try {
            data.storeHeader(slot, SlotHeader.FREE);
        } catch (IOException e) {
            counters.ioError();
        }
        slots.dropDuplicateAtOpen(slot);
    }
}
