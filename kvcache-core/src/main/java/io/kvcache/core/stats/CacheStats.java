package io.kvcache.core.stats;

import java.util.List;
import java.util.Map;

/**
 * A snapshot of the cache's counters since it was built. A promotion or demotion copies one
 * whole block; a layer-range request copies layer slices, counted in bytes only; moves that copy
 * no bytes are counted apart.
 *
 * @param tiers              per-tier counters, fastest tier first
 * @param promotions         whole blocks copied toward the top tier
 * @param bytesPromoted      bytes copied toward the top tier: those blocks and the layer slices
 *                           copied into partial top-tier slots
 * @param demotions          blocks copied toward the bottom tier by eviction
 * @param bytesDemoted       bytes of those copies ({@code demotions} times the block size)
 * @param lowerCopyFallbacks evictions that moved no bytes: the block fell back to a lower copy
 *                           it already had (not counted in {@code demotions})
 * @param copyOnWriteCopies  copies of a shared partial block made for a sequence that appends to it
 * @param bytesCopiedOnWrite bytes of those copies
 * @param prefixLookupTokens prompt tokens looked up at open
 * @param prefixHitTokens    prompt tokens found cached at open (not recomputed)
 * @param waitNanosTotal     time engine threads spent in {@code ResidencyHandle.await}, summed over
 *                           threads, in ns (with N threads waiting at once it grows N times as fast)
 * @param waitNanosWall      wall time during which at least one engine thread was waiting, in ns
 * @param waitNanosByThread  {@code waitNanosTotal} per engine thread, by thread name
 * @param prefetchIssued     blocks promoted by prefetch
 * @param prefetchInTime     prefetched blocks whose data was in place when a step asked for them
 * @param prefetchLate       prefetched blocks still in flight when a step asked for them
 * @param blocksLost         blocks whose bytes could not be served (reported misses)
 * @param liveBlocks         blocks known to the manager (referenced or cached)
 * @param persist            writing sealed blocks down to the persistent tier
 */
public record CacheStats(List<TierStats> tiers, long promotions, long bytesPromoted, long demotions,
                         long bytesDemoted, long lowerCopyFallbacks, long copyOnWriteCopies, long bytesCopiedOnWrite,
                         long prefixLookupTokens, long prefixHitTokens, long waitNanosTotal, long waitNanosWall,
                         Map<String, Long> waitNanosByThread, long prefetchIssued, long prefetchInTime,
                         long prefetchLate, long blocksLost, long liveBlocks, PersistStats persist) {

    /** @return share of prefetched blocks that arrived before they were needed, or NaN if none was needed yet */
    public double prefetchTimeliness() {
        long n = prefetchInTime + prefetchLate;
        return n == 0 ? Double.NaN : (double) prefetchInTime / n;
    }

    /** @return the longest time one engine thread spent waiting on residency, in ns */
    public long waitNanosMaxPerThread() {
        long max = 0;
        for (long v : waitNanosByThread.values()) {
            max = Math.max(max, v);
        }
        return max;
    }
}
