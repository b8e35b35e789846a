package io.kvcache.core.stats;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

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

    /**
     * @param tier index into {@link #tiers()}, fastest first
     * @return blocks that tier did not hold when they were asked for and a tier below it served:
     *     the blocks promoted out of every tier below it (lost blocks, served by none, are {@link #blocksLost()})
     * @throws IndexOutOfBoundsException if there is no such tier
     */
    public long misses(int tier) {
        Objects.checkIndex(tier, tiers.size());
        long below = 0;
        for (int j = tier + 1; j < tiers.size(); j++) {
            below += tiers.get(j).promotedOut();
        }
        return below;
    }

    /**
     * The counters as a table: one row per tier (occupancy, hits, misses, losses and the blocks
     * that moved in and out of it), then one line each for movement, prefix reuse, waits,
     * prefetch, losses and writing down to the persistent tier. Byte counts are in MiB.
     *
     * @return the table, lines separated by {@code \n}, ending with one
     */
    public String toTable() {
        StringBuilder b = new StringBuilder();
        int nameWidth = "tier".length();
        int backingWidth = "backing".length();
        for (TierStats t : tiers) {
            nameWidth = Math.max(nameWidth, label(t).length());
            backingWidth = Math.max(backingWidth, Math.min(BACKING_WIDTH, t.backing().length()));
        }
        String row = "%-" + nameWidth + "s %-" + backingWidth + "s %7s %7s %9s %9s %9s %6s %9s %9s %9s %8s%n";
        b.append(String.format(Locale.ROOT, row, "tier", "backing", "slots", "used", "used MiB", "hits", "misses",
                "lost", "promoted", "demoted", "fell back", "dropped"));
        b.append(String.format(Locale.ROOT, row, "", "", "", "", "", "", "", "", "out", "in", "in", ""));
        for (int i = 0; i < tiers.size(); i++) {
            TierStats t = tiers.get(i);
            b.append(String.format(Locale.ROOT, row, label(t), clip(t.backing(), BACKING_WIDTH),
                    t.slotCount(), t.usedSlots(), mib(t.usedBytes()), t.hits(), misses(i), t.lost(), t.promotedOut(),
                    t.demotedIn(), t.fallbacksIn(), t.dropped()));
        }
        String line = "%-14s %s%n";
        b.append(String.format(Locale.ROOT, line, "moved up", promotions + " blocks, " + mib(bytesPromoted) + " MiB"));
        b.append(String.format(Locale.ROOT, line, "moved down", demotions + " blocks, " + mib(bytesDemoted) + " MiB; "
                + lowerCopyFallbacks + " evictions fell back to a lower copy (no bytes)"));
        b.append(String.format(Locale.ROOT, line, "copy-on-write", copyOnWriteCopies + " blocks, "
                + mib(bytesCopiedOnWrite) + " MiB"));
        b.append(String.format(Locale.ROOT, line, "prefix reuse", prefixHitTokens + " of " + prefixLookupTokens
                + " prompt tokens found cached" + percent(prefixHitTokens, prefixLookupTokens)));
        b.append(String.format(Locale.ROOT, line, "waited", String.format(Locale.ROOT,
                "%.3f ms wall, %.3f ms summed over %d thread(s), longest thread %.3f ms",
                waitNanosWall / 1e6, waitNanosTotal / 1e6, waitNanosByThread.size(), waitNanosMaxPerThread() / 1e6)));
        b.append(String.format(Locale.ROOT, line, "prefetch", prefetchIssued + " blocks issued; "
                + prefetchInTime + " in time, " + prefetchLate + " late"
                + percent(prefetchInTime, prefetchInTime + prefetchLate)));
        b.append(String.format(Locale.ROOT, line, "blocks", liveBlocks + " live, " + blocksLost + " lost"));
        if (persist != null) {
            PersistStats p = persist;
            b.append(String.format(Locale.ROOT, line, "persist", "none".equals(p.policy()) ? "no persistent tier"
                    : String.format(Locale.ROOT, "%s: %d queued, %d written (%s MiB), %d skipped (queue full), "
                                    + "%d not admitted, %d failed, %d waiting; writer %.3f ms; lag mean %.3f ms, max %.3f ms",
                            p.policy(), p.queued(), p.written(), mib(p.bytesWritten()), p.skippedQueueFull(),
                            p.refusedByAdmission(), p.failed(), p.queueLength(), p.busyNanos() / 1e6,
                            p.lagMeanNanos() / 1e6, p.lagMaxNanos() / 1e6)));
        }
        return b.toString();
    }

    /** @return {@link #toTable()} */
    @Override
    public String toString() {
        return toTable();
    }

    /** Widest backing description {@link #toTable()} prints; a longer one is cut, ending in {@code ~}. */
    private static final int BACKING_WIDTH = 28;

    private static String label(TierStats t) {
        return t.name() + (t.failed() ? " FAILED" : "");
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f", bytes / (double) (1 << 20));
    }

    private static String percent(long part, long whole) {
        return whole == 0 ? "" : String.format(Locale.ROOT, " (%.1f%%)", 100.0 * part / whole);
    }

    private static String clip(String s, int width) {
        return s.length() <= width ? s : s.substring(0, width - 1) + "~";
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
