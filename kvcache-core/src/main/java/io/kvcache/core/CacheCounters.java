package io.kvcache.core;

import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.PersistStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.core.tier.Tier;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The manager's counters, and the {@link CacheStats} snapshot made of them. */
@GuardedBy("manager lock")
final class CacheCounters {
    private final long blockBytes;
    final long[] hits;
    final long[] lost;
    final long[] promotedOut;
    final long[] demotedIn;
    final long[] fallbacksIn;
    final long[] dropped;
    long promotions;
    long demotions;
    long bytesPromoted;
    long bytesDemoted;
    long layerSlicesPromoted;
    long lowerCopyFallbacks;
    long copyOnWriteCopies;
    long prefixLookupTokens;
    long prefixHitTokens;
    long blocksLost;
    private long waitNanos;
    private long waitWallNanos;
    private int waiters;
    private long waitWallStart;
    private final Map<String, Long> waitByThread = new HashMap<>();

    CacheCounters(int tiers, long blockBytes) {
        this.blockBytes = blockBytes;
        hits = new long[tiers];
        lost = new long[tiers];
        promotedOut = new long[tiers];
        demotedIn = new long[tiers];
        fallbacksIn = new long[tiers];
        dropped = new long[tiers];
    }

    /**
     * Counts a copy of one block, or of a layer slice of it ({@code bytes} less than a block), by
     * its direction. A layer slice counts its bytes, not a promotion.
     */
    void copied(int srcTier, int dstTier, boolean copyOnWrite, long bytes) {
        if (copyOnWrite) {
            copyOnWriteCopies++;
        } else if (dstTier < srcTier) {
            bytesPromoted += bytes;
            if (bytes == blockBytes) {
                promotions++;
                promotedOut[srcTier]++;
            } else {
                layerSlicesPromoted++;
            }
        } else {
            demotions++;
            bytesDemoted += bytes;
            demotedIn[dstTier]++;
        }
    }

    void fellBack(int toTier) {
        lowerCopyFallbacks++;
        fallbacksIn[toTier]++;
    }

    void lost(int tier) {
        blocksLost++;
        lost[tier]++;
    }

    /** An engine thread starts waiting on residency; returns the start time. */
    long beginWait() {
        long now = System.nanoTime();
        if (waiters++ == 0) {
            waitWallStart = now;
        }
        return now;
    }

    /** The wait begun at {@code start} ended: counted per thread, summed, and as wall time. */
    void endWait(long start) {
        long now = System.nanoTime();
        waitNanos += now - start;
        waitByThread.merge(Thread.currentThread().getName(), now - start, Long::sum);
        if (--waiters == 0) {
            waitWallNanos += now - waitWallStart;
        }
    }

    CacheStats snapshot(Tier[] tiers, PrefetchTracker prefetch, PersistStats persist, int liveBlocks) {
        List<TierStats> ts = new ArrayList<>(tiers.length);
        for (int t = 0; t < tiers.length; t++) {
            Tier tier = tiers[t];
            int used = tier.slotCount() - tier.freeSlots();
            ts.add(new TierStats(tier.name(), tier.backing(), tier.slotCount(), used,
                    tier.slotCount() * tier.slotBytes(), used * tier.slotBytes(), hits[t], lost[t],
                    promotedOut[t], demotedIn[t], fallbacksIn[t], dropped[t], tier.failed()));
        }
        long wall = waitWallNanos + (waiters > 0 ? System.nanoTime() - waitWallStart : 0);
        return new CacheStats(ts, promotions, bytesPromoted, demotions, bytesDemoted,
                lowerCopyFallbacks, copyOnWriteCopies, copyOnWriteCopies * blockBytes, prefixLookupTokens,
                prefixHitTokens, waitNanos, wall, Map.copyOf(waitByThread), prefetch.issued, prefetch.inTime,
                prefetch.late, blocksLost, liveBlocks, persist);
    }
}
