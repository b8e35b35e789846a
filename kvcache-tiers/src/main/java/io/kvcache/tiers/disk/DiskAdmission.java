package io.kvcache.tiers.disk;

import io.kvcache.core.block.BlockKey;

/**
 * TinyLFU admission for a full tier (Caffeine's {@code admit}): a {@link FrequencySketch}
 * counts how often each key is asked for (allocations for it and lookups), and a new block
 * that would drop a retained block asked for more often is refused, so that a stream of one-off
 * blocks does not flush reused ones.
 *
 * <p>Not thread-safe: the tier lock must be held.
 */
final class DiskAdmission {
    private final FrequencySketch sketch;
    private final SlotTable slots;
    private final DiskCounters counters;

    DiskAdmission(int slotCount, SlotTable slots, DiskCounters counters) {
        this.sketch = new FrequencySketch(slotCount);
        this.slots = slots;
        this.counters = counters;
    }

    /** Counts one request for {@code key}: an allocation for it or a lookup. */
    void recordAccess(BlockKey key) {
        sketch.increment(key);
    }

    /**
     * Picks the retained block to drop so that {@code key} can have its slot: among the oldest
     * leaves the least asked for (see {@link RetainedBlocks#victim}), unless {@code key} was
     * asked for less often than it, which is counted as an admission rejection.
     *
     * @param key the block that wants a slot, or null for an allocation without a key (always admitted)
     * @return the victim slot, or -1 when nothing is retained or {@code key} is refused
     */
    int victimFor(BlockKey key) {
        int victim = slots.retainedVictim(s -> sketch.frequency(slots.key(s)));
        if (victim < 0) {
            return -1;
        }
        if (key != null && sketch.frequency(key) < sketch.frequency(slots.key(victim))) {
            counters.admissionRejection();
            return -1;
        }
        return victim;
    }
}
