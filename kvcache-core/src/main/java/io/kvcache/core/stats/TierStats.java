package io.kvcache.core.stats;

/**
 * Counters of one tier, since the cache was built. Block counts and byte counts agree: every
 * copy moves one whole block ({@link #slotCount()} slots of the block size).
 *
 * @param name          tier name
 * @param backing       what backs the tier, as obtained
 * @param slotCount     total slots
 * @param usedSlots     slots allocated now (blocks, lower copies, slots still settling)
 * @param capacityBytes slotCount times block size
 * @param usedBytes     usedSlots times block size
 * @param hits          blocks found in this tier when a step or a prompt asked for them
 *                      (by {@code ensureResident}, and prefix blocks found by {@code open})
 * @param lost          blocks whose bytes in this tier could not be served (failed copy, checksum
 *                      or read); each is a reported miss, never wrong bytes
 * @param promotedOut   blocks copied from this tier toward the top tier (bytes moved)
 * @param demotedIn     blocks copied into this tier from a faster one (bytes moved)
 * @param fallbacksIn   blocks evicted into this tier without moving bytes: they fell back to a
 *                      lower copy already here (a slot kept from a promotion, or a written-through copy)
 * @param dropped       cached blocks no sequence referenced, dropped from this tier to make room
 * @param failed        whether the tier has failed
 */
public record TierStats(String name, String backing, int slotCount, int usedSlots, long capacityBytes,
                        long usedBytes, long hits, long lost, long promotedOut, long demotedIn,
                        long fallbacksIn, long dropped, boolean failed) {
}
