package io.kvcache.examples.demo;

import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.PersistStats;
import io.kvcache.core.stats.TierStats;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

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
        out.printf(Locale.ROOT, "%-8s %7s %7s %9s %9s %5s %13s %11s %10s %8s%n", "tier", "blocks", "used", "hits", "misses",
                "lost", "promoted out", "demoted in", "fell back", "dropped");
        for (int i = 0; i < s.tiers().size(); i++) {
            TierStats t = s.tiers().get(i);
            out.printf(Locale.ROOT, "%-8s %7d %7d %9d %9d %5d %13d %11d %10d %8d%n", t.name(), t.slotCount(), t.usedSlots(),
                    hits(s, i), misses(s, i), t.lost(), t.promotedOut(), t.demotedIn(), t.fallbacksIn(), t.dropped());
        }
        out.printf(Locale.ROOT, "bytes moved   up to the device %s (%d whole blocks, the rest layer slices), down the tiers %s (%d blocks);"
                        + " %d evictions fell back to a lower copy (no bytes)%n",
                ByteSize.format(s.bytesPromoted()), s.promotions(), ByteSize.format(s.bytesDemoted()), s.demotions(),
                s.lowerCopyFallbacks());
        out.printf(Locale.ROOT, "waited        %.3f s of wall time on residency (%.1f%% of the decode; %d engine thread(s),"
                        + " longest %.3f s)%n", s.waitNanosWall() / 1e9, 100.0 * s.waitNanosWall() / Math.max(1, nanos),
                s.waitNanosByThread().size(), s.waitNanosMaxPerThread() / 1e9);
        out.println("prefetch      " + prefetchLine(s));
        if (!"none".equals(s.persist().policy())) {
            out.println("write-through " + persistLine(s));
        }
        out.println();
    }

    /** @return what writing sealed blocks down cost and how far it lagged, as a sentence */
    static String persistLine(CacheStats s) {
        PersistStats p = s.persist();
        if ("none".equals(p.policy())) {
            return "no persistent tier";
        }
        return String.format(Locale.ROOT, "%s: %d blocks written (%s) in %.3f s of writer time; lag from seal to disk"
                        + " mean %.1f ms, max %.1f ms; %d skipped (queue full), %d not admitted, %d failed",
                p.policy(), p.written(), ByteSize.format(p.bytesWritten()), p.busyNanos() / 1e9, p.lagMeanNanos() / 1e6,
                p.lagMaxNanos() / 1e6, p.skippedQueueFull(), p.refusedByAdmission(), p.failed());
    }

    /** @return hits of tier {@code i} as {@link #print} counts them */
    static long hits(CacheStats s, int i) {
        TierStats t = s.tiers().get(i);
        // the manager counts a prefetched block as a device hit when the step asks for it
        return i == 0 ? Math.max(0, t.hits() - s.prefetchInTime() - s.prefetchLate()) : t.promotedOut();
    }

    /** @return misses of tier {@code i} as {@link #print} counts them: blocks served from below it */
    static long misses(CacheStats s, int i) {
        return s.misses(i);
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
                    a.usedBytes(), a.hits() - b.hits(), a.lost() - b.lost(), a.promotedOut() - b.promotedOut(),
                    a.demotedIn() - b.demotedIn(), a.fallbacksIn() - b.fallbacksIn(), a.dropped() - b.dropped(),
                    a.failed()));
        }
        Map<String, Long> waits = new HashMap<>(now.waitNanosByThread());
        then.waitNanosByThread().forEach((k, v) -> waits.merge(k, -v, Long::sum));
        waits.values().removeIf(v -> v == 0);
        PersistStats p = now.persist();
        PersistStats q = then.persist();
        PersistStats persist = new PersistStats(p.policy(), p.queued() - q.queued(), p.written() - q.written(),
                p.bytesWritten() - q.bytesWritten(), p.skippedQueueFull() - q.skippedQueueFull(),
                p.refusedByAdmission() - q.refusedByAdmission(), p.failed() - q.failed(), p.queueLength(),
                p.busyNanos() - q.busyNanos(), p.lagMaxNanos(), p.lagMeanNanos());
        return new CacheStats(tiers, now.promotions() - then.promotions(), now.bytesPromoted() - then.bytesPromoted(),
                now.demotions() - then.demotions(), now.bytesDemoted() - then.bytesDemoted(),
                now.lowerCopyFallbacks() - then.lowerCopyFallbacks(), now.copyOnWriteCopies() - then.copyOnWriteCopies(),
                now.bytesCopiedOnWrite() - then.bytesCopiedOnWrite(),
                now.prefixLookupTokens() - then.prefixLookupTokens(), now.prefixHitTokens() - then.prefixHitTokens(),
                now.waitNanosTotal() - then.waitNanosTotal(), now.waitNanosWall() - then.waitNanosWall(), Map.copyOf(waits),
                now.prefetchIssued() - then.prefetchIssued(), now.prefetchInTime() - then.prefetchInTime(),
                now.prefetchLate() - then.prefetchLate(), now.blocksLost() - then.blocksLost(), now.liveBlocks(), persist);
    }
}
