package io.kvcache.core.stats;

/**
 * Counters of one tier.
 *
 * @param name          tier name
 * @param backing       what backs the tier, as obtained
 * @param slotCount     total slots
 * @param usedSlots     slots holding blocks
 * @param capacityBytes slotCount times block size
 * @param usedBytes     usedSlots times block size
 * @param hits          blocks a step needed that were found in this tier
 * @param misses        blocks that should have been in this tier but could not be served (lost)
 * @param promotedOut   blocks copied from this tier to a faster one
 * @param demotedIn     blocks moved into this tier from a faster one
 * @param dropped       cached (unreferenced) blocks dropped from this tier to make room
 * @param failed        whether the tier has failed
 */
public record TierStats(String name, String backing, int slotCount, int usedSlots, long capacityBytes,
                        long usedBytes, long hits, long misses, long promotedOut, long demotedIn,
                        long dropped, boolean failed) {
}
