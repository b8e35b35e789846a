package io.kvcache.tiers.disk;

import io.kvcache.core.block.BlockKey;
import java.io.IOException;
import java.lang.System.Logger.Level;

/**
 * Each change of a block's life that the file must record: publishing, forgetting, dropping,
 * quarantining and retiring. It writes what the change needs on disk (slot header, index entry)
 * and in the prefix chains, in the order {@code docs/disk-format.md} requires so that a crash at
 * any instant leaves a consistent file, and then makes the {@link SlotTable} transition:
 * <ul>
 *   <li>publishing writes the slot header before the index entry;</li>
 *   <li>forgetting clears the slot header before it removes the index entry, and both before
 *       the slot's bytes may change (the caller rewrites the slot only afterwards).</li>
 * </ul>
 * Its fault policies live here too: an I/O error retires the slot and runs the file watchdog; a
 * checksum failure quarantines the block.
 *
 * <p>Not thread-safe: the tier lock must be held.
 */
final class BlockLifecycle {
    private static final System.Logger LOG = System.getLogger(MappedFileTier.class.getName());

    private final String tier;
    private final long slotBytes;
    private final int slotCount;
    private final DataFile data;
    private final IndexFile index;
    private final SlotTable slots;
    private final PrefixChains chains;
    private final DiskCounters counters;

    BlockLifecycle(String tier, DataFile data, IndexFile index, SlotTable slots, PrefixChains chains,
            DiskCounters counters, long slotBytes, int slotCount) {
        this.tier = tier;
        this.data = data;
        this.index = index;
        this.slots = slots;
        this.chains = chains;
        this.counters = counters;
        this.slotBytes = slotBytes;
        this.slotCount = slotCount;
    }

    /**
     * Publishes an OWNED slot whose bytes have checksum {@code sum}: slot header, then index
     * entry, then chain links. An older unreferenced copy of the same key is dropped. When the
     * header cannot be written the slot is retired and the block stays unpublished.
     */
    void publish(int slot, long gen, BlockKey key, BlockKey parent, int sum) {
        try {
            data.storeHeader(slot, SlotHeader.published(gen, slotBytes, sum, key, parent));
        } catch (IOException e) {
            ioFault(slot, "publishing", e);
            return;
        }
        slots.publish(slot, gen, sum, key, parent);
        chains.reset(slot);
        // one index operation: the put also tells whether another slot held this key
        long previous = index.put(key, slot, gen);
        if (previous >= 0) {
            int other = SlotIndex.slotOf(previous);
            if (other != slot && slots.holds(other, key, previous) && slots.state(other) == SlotState.RETAINED) {
                // the same block published twice: the older, unreferenced copy goes
                slots.forgetCrc(other);
                dropRetained(other);
            }
            // a copy still held elsewhere stays until freed; the index now names this one
        }
        chains.linkPublished(slot);
        counters.publish();
        maybeCheckFile();
    }

    /** A retained block goes: forgotten on disk, then RETAINED → FREE. */
    void dropRetained(int slot) {
        forget(slot);
        slots.dropRetainedToFree(slot);
    }

    /** A held slot's block is unpublished: forgotten on disk, then OWNED_PUBLISHED → OWNED; the holder keeps the slot. */
    void unpublishHeld(int slot) {
        forget(slot);
        slots.unpublishHeld(slot);
    }

    /** Removes a published slot's block from its slot header, the index and its chain; the caller then moves its state. */
    private void forget(int slot) {
        BlockKey key = slots.key(slot);
        long packed = SlotIndex.pack(slot, slots.generation(slot));
        try {
            data.storeHeader(slot, SlotHeader.FREE);
        } catch (IOException e) {
            // a stale published header is harmless: its CRC will not match whatever is written next
            counters.ioError();
            LOG.log(Level.WARNING, "disk tier ''{0}'': clearing header of slot {1} failed: {2}", tier, slot, e.getMessage());
        }
        index.remove(key, packed);
        chains.unlink(slot);
    }

    /**
     * A reader found {@code actual} where the block it read had checksum {@code expected}:
     * quarantines the block, unless the slot was republished or rewritten since the reader saw
     * generation {@code gen}.
     */
    void quarantineIfUnchanged(int slot, long gen, int expected, int actual) {
        if (!slots.sameBlock(slot, gen, expected)) {
            return;
        }
        counters.checksumFailure();
        LOG.log(Level.WARNING, "disk tier ''{0}'': block {1} in slot {2} failed its CRC32C check (recorded {3}, found {4}): "
                + "quarantined, served as a miss", tier, slots.key(slot), slot, Integer.toHexString(expected),
                Integer.toHexString(actual));
        slots.forgetCrc(slot);
        SlotState s = slots.state(slot);
        if (s == SlotState.RETAINED) {
            dropRetained(slot);
        } else if (s == SlotState.OWNED_PUBLISHED) {
            unpublishHeld(slot);
        }
    }

    /** An I/O error on a slot: counts, logs, takes the slot out of use, checks for truncation. */
    void ioFault(int slot, String what, IOException e) {
        counters.ioError();
        LOG.log(Level.WARNING, "disk tier ''{0}'': I/O error {1} slot {2} of {3}: {4}; the block is a miss", tier, what,
                slot, data.path(), e.getMessage());
        retire(slot);
        checkFile();
    }

    private void retire(int slot) {
        SlotState s = slots.state(slot);
        if (s.retired()) {
            return;
        }
        if (s.published()) {
            forget(slot);
        }
        slots.retire(slot);
        counters.retiredSlot();
    }

    /** Runs the file watchdog when it is due (see {@link DataFile#checkDue}). */
    void maybeCheckFile() {
        if (data.checkDue()) {
            checkFile();
        }
    }

    /** Runs the file watchdog; a file truncated underneath retires every slot beyond its end. */
    private void checkFile() {
        long size = data.check();
        if (size >= 0) {
            for (int slot = 0; slot < slotCount; slot++) {
                if (!data.slotIntact(slot, size)) {
                    retire(slot);
                }
            }
        }
    }
}
