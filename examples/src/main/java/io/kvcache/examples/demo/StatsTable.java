package io.kvcache.examples.demo;

import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.TierStats;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The summary's view of the cache counters: a per-tier table and counters of one phase of a run. */
final class StatsTable {
    private StatsTable() {
    }

    /**
     * Prints the per-tier table and the transfer, wait and prefetch lines, counting as a cache
     * hierarchy does: the device's hits are blocks a step needed that were already there without
     * being brought up for it; a lower tier's hits are blocks brought up from it; a tier's misses
     * are blocks it did not hold that a tier below it served. Lost blocks are those no tier could
     * serve (the engine recomputes them).
     */
    static void print(PrintStream out, CacheStats s, long nanos) {
        out.printf(Locale.ROOT, "%-8s %7s %7s %9s %9s %5s %13s %11s %8s%n", "tier", "blocks", "used", "hits", "misses",
                "lost", "promoted out", "demoted in", "dropped");
        for (int i = 0; i < s.tiers().size(); i++) {
            TierStats t = s.tiers().get(i);
            out.printf(Locale.ROOT, "%-8s %7d %7d %9d %9d %5d %13d %11d %8d%n", t.name(), t.slotCount(), t.usedSlots(),
                    hits(s, i), misses(s, i), t.misses(), t.promotedOut(), t.demotedIn(), t.dropped());
        }
        out.printf(Locale.ROOT, "bytes moved   toward device %s (%d blocks), toward disk %s (%d blocks)%n",
                ByteSize.format(s.bytesPromoted()), s.promotions(), ByteSize.format(s.bytesDemoted()), s.demotions());
        out.printf(Locale.ROOT, "waited        %.3f s on residency (%.1f%% of the decode)%n", s.waitNanos() / 1e9,
                100.0 * s.waitNanos() / Math.max(1, nanos));
        out.println("prefetch      " + prefetchLine(s));
        out.println();
    }

    /** @return hits of tier {@code i} as {@link #print} counts them */
    static long hits(CacheStats s, int i) {
        TierStats t = s.tiers().get(i);
        // the manager counts a prefetched block as a device hit when the step asks for it
        return i == 0 ? Math.max(0, t.hits() - s.prefetchInTime() - s.prefetchLate()) : t.promotedOut();
    }

    /** @return misses of tier {@code i} as {@link #print} counts them: blocks served from below it */
    static long misses(CacheStats s, int i) {
        long below = 0;
        for (int j = i + 1; j < s.tiers().size(); j++) {
            below += s.tiers().get(j).promotedOut();
        }
        return below;
    }

    /** @return the share of prefetched blocks that arrived in time, as a sentence */
    static String prefetchLine(CacheStats s) {
        long asked = s.prefetchInTime() + s.prefetchLate();
        return String.format(Locale.ROOT, "%d blocks issued; %d of %d asked for had arrived in time (%s)",
                s.prefetchIssued(), s.prefetchInTime(), asked,
                asked == 0 ? "none asked" : String.format(Locale.ROOT, "%.1f%%", 100.0 * s.prefetchTimeliness()));
    }

    /** @return the counters accumulated between two snapshots (occupancy and capacity from {@code now}) */
    static CacheStats since(CacheStats now, CacheStats then) {
        List<TierStats> tiers = new ArrayList<>();
        for (int t = 0; t < now.tiers().size(); t++) {
            TierStats a = now.tiers().get(t);
            TierStats b = then.tiers().get(t);
            tiers.add(new TierStats(a.name(), a.backing(), a.slotCount(), a.usedSlots(), a.capacityBytes(),
                    a.usedBytes(), a.hits() - b.hits(), a.misses() - b.misses(), a.promotedOut() - b.promotedOut(),
                    a.demotedIn() - b.demotedIn(), a.dropped() - b.dropped(), a.failed()));
        }
        return new CacheStats(tiers, now.promotions() - then.promotions(), now.demotions() - then.demotions(),
                now.bytesPromoted() - then.bytesPromoted(), now.bytesDemoted() - then.bytesDemoted(),
                now.prefixLookupTokens() - then.prefixLookupTokens(), now.prefixHitTokens() - then.prefixHitTokens(),
                now.waitNanos() - then.waitNanos(), now.prefetchIssued() - then.prefetchIssued(),
                now.prefetchInTime() - then.prefetchInTime(), now.prefetchLate() - then.prefetchLate(),
                now.blocksLost() - then.blocksLost(), now.liveBlocks());
    }
}
