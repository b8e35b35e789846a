package io.kvcache.core.stats;

import java.util.List;

/**
 * A snapshot of the cache's counters since it was built.
 *
 * @param tiers              per-tier counters, fastest tier first
 * @param promotions         block copies toward the top tier
 * @param demotions          block moves toward the bottom tier
 * @param bytesPromoted      bytes moved toward the top tier
 * @param bytesDemoted       bytes moved toward the bottom tier
 * @param prefixLookupTokens prompt tokens looked up at open
 * @param prefixHitTokens    prompt tokens found cached at open (not recomputed)
 * @param waitNanos          time engines spent in {@code ResidencyHandle.await}, in ns
 * @param prefetchIssued     blocks promoted by prefetch
 * @param prefetchInTime     prefetched blocks whose data was in place when a step asked for them
 * @param prefetchLate       prefetched blocks still in flight when a step asked for them
 * @param blocksLost         blocks whose bytes could not be served (reported misses)
 * @param liveBlocks         blocks known to the manager (referenced or cached)
 */
public record CacheStats(List<TierStats> tiers, long promotions, long demotions, long bytesPromoted,
                         long bytesDemoted, long prefixLookupTokens, long prefixHitTokens, long waitNanos,
                         long prefetchIssued, long prefetchInTime, long prefetchLate, long blocksLost,
                         long liveBlocks) {

    /** @return share of prefetched blocks that arrived before they were needed, or NaN if none was needed yet */
    public double prefetchTimeliness() {
        long n = prefetchInTime + prefetchLate;
        return n == 0 ? Double.NaN : (double) prefetchInTime / n;
    }
}
