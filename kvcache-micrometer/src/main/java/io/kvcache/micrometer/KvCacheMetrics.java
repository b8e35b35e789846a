package io.kvcache.micrometer;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.PersistStats;
import io.kvcache.core.stats.TierStats;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.BaseUnits;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

/**
 * Binds a cache's {@link CacheStats} to a Micrometer registry: per-tier occupancy, hits, misses,
 * losses and blocks moved, the blocks and bytes moved each way, lost blocks, time engine threads
 * waited on residency, prefetch timeliness, prefix reuse and writing down to the persistent tier.
 *
 * <pre>{@code
 * new KvCacheMetrics(cache, Tags.of("model", "llama-3-8b")).bindTo(registry);
 * }</pre>
 *
 * <p>Counters are {@link FunctionCounter}s and levels are {@link Gauge}s over the cache's own
 * counters, so the cache does no extra work per block: each meter read takes a {@code stats()}
 * snapshot. As Micrometer does, the meters hold the cache weakly; once it is garbage they read NaN.
 * Names (as Prometheus shows them, with the {@code _total} and unit suffixes it adds):
 *
 * <table>
 *   <caption>Meters</caption>
 *   <tr><th>meter</th><th>tags</th><th>counts</th></tr>
 *   <tr><td>{@code kvcache.tier.slots}, {@code kvcache.tier.used.slots}</td><td>tier</td><td>slots of the tier, slots in use (gauges)</td></tr>
 *   <tr><td>{@code kvcache.tier.capacity}, {@code kvcache.tier.used} (bytes)</td><td>tier</td><td>the same in bytes (gauges)</td></tr>
 *   <tr><td>{@code kvcache.tier.hits}</td><td>tier</td><td>blocks found in the tier when a step or a prompt asked for them</td></tr>
 *   <tr><td>{@code kvcache.tier.misses}</td><td>tier</td><td>blocks the tier did not hold that a tier below it served ({@link CacheStats#misses(int)})</td></tr>
 *   <tr><td>{@code kvcache.tier.lost}</td><td>tier</td><td>blocks whose bytes in the tier could not be served</td></tr>
 *   <tr><td>{@code kvcache.tier.promoted.out}, {@code kvcache.tier.demoted.in}</td><td>tier</td><td>blocks copied out of the tier toward the top, into it from above</td></tr>
 *   <tr><td>{@code kvcache.tier.fallbacks.in}, {@code kvcache.tier.dropped}</td><td>tier</td><td>evictions into the tier that moved no bytes (a lower copy was there); cached blocks dropped from it</td></tr>
 *   <tr><td>{@code kvcache.tier.failed}</td><td>tier</td><td>1 once the tier has failed (gauge)</td></tr>
 *   <tr><td>{@code kvcache.blocks.moved}, {@code kvcache.moved} (bytes)</td><td>direction = up | down</td><td>blocks and bytes copied toward the top tier and down by eviction</td></tr>
 *   <tr><td>{@code kvcache.blocks.fallbacks}</td><td></td><td>evictions that fell back to a lower copy (no bytes moved)</td></tr>
 *   <tr><td>{@code kvcache.blocks.lost}</td><td></td><td>blocks no tier could serve: reported misses</td></tr>
 *   <tr><td>{@code kvcache.blocks.live}</td><td></td><td>blocks known to the manager (gauge)</td></tr>
 *   <tr><td>{@code kvcache.copy.on.write}</td><td></td><td>copies of shared partial blocks</td></tr>
 *   <tr><td>{@code kvcache.wait} (seconds)</td><td>kind = threads | wall</td><td>time engine threads spent in {@code await}, summed over threads; wall time with at least one waiting</td></tr>
 *   <tr><td>{@code kvcache.prefetch.issued}</td><td></td><td>blocks promoted by prefetch</td></tr>
 *   <tr><td>{@code kvcache.prefetch.used}</td><td>timeliness = in_time | late</td><td>prefetched blocks a step asked for: in place already, or still in flight</td></tr>
 *   <tr><td>{@code kvcache.prefetch.timeliness}</td><td></td><td>in time / (in time + late), NaN before any was asked for (gauge)</td></tr>
 *   <tr><td>{@code kvcache.prefix.tokens}</td><td>result = looked_up | hit</td><td>prompt tokens looked up at open, and found cached</td></tr>
 *   <tr><td>{@code kvcache.persist.blocks}</td><td>outcome = queued | written | skipped | refused | failed</td><td>sealed blocks on their way to the persistent tier</td></tr>
 *   <tr><td>{@code kvcache.persist.written} (bytes)</td><td></td><td>bytes written to the persistent tier</td></tr>
 *   <tr><td>{@code kvcache.persist.queue}</td><td></td><td>blocks waiting to be written (gauge)</td></tr>
 *   <tr><td>{@code kvcache.persist.lag.max} (seconds)</td><td></td><td>longest time from a block's seal to its publication (gauge)</td></tr>
 * </table>
 *
 * <p>The tiers are those of the first snapshot; a cache's tiers do not change after it is built.
 */
public final class KvCacheMetrics implements MeterBinder {
    private final Object source;
    private final Function<Object, CacheStats> stats;
    private final Tags tags;

    /**
     * @param cache the cache whose statistics the meters read
     * @param tags  tags added to every meter (for example the model, or which cache when there are several)
     */
    public KvCacheMetrics(KvCacheManager cache, Iterable<Tag> tags) {
        this(cache, s -> ((KvCacheManager) s).stats(), tags);
    }

    /** @param cache the cache whose statistics the meters read, with no extra tags */
    public KvCacheMetrics(KvCacheManager cache) {
        this(cache, Tags.empty());
    }

    private KvCacheMetrics(Object source, Function<Object, CacheStats> stats, Iterable<Tag> tags) {
        this.source = Objects.requireNonNull(source, "source");
        this.stats = stats;
        this.tags = Tags.of(Objects.requireNonNull(tags, "tags"));
    }

    /**
     * Meters over statistics from elsewhere than a live {@link KvCacheManager} (a recorded run, a
     * proxy for a cache in another process).
     *
     * @param source held weakly by the meters, as Micrometer holds what it measures
     * @param stats  reads a snapshot from {@code source}
     * @param tags   tags added to every meter
     * @param <T>    the source's type
     * @return a binder over those statistics
     */
    @SuppressWarnings("unchecked")
    public static <T> KvCacheMetrics of(T source, Function<? super T, CacheStats> stats, Iterable<Tag> tags) {
        Objects.requireNonNull(stats, "stats");
        return new KvCacheMetrics(source, s -> stats.apply((T) s), tags);
    }

    @Override
    public void bindTo(MeterRegistry registry) {
        List<TierStats> tiers = stats.apply(source).tiers();
        for (int i = 0; i < tiers.size(); i++) {
            bindTier(registry, i, tiers.get(i).name());
        }
        counter(registry, "kvcache.blocks.moved", "blocks copied toward the top tier (up) or down by eviction",
                null, s -> s.promotions(), "direction", "up");
        counter(registry, "kvcache.blocks.moved", "blocks copied toward the top tier (up) or down by eviction",
                null, s -> s.demotions(), "direction", "down");
        counter(registry, "kvcache.moved", "bytes copied toward the top tier (up) or down by eviction",
                BaseUnits.BYTES, s -> s.bytesPromoted(), "direction", "up");
        counter(registry, "kvcache.moved", "bytes copied toward the top tier (up) or down by eviction",
                BaseUnits.BYTES, s -> s.bytesDemoted(), "direction", "down");
        counter(registry, "kvcache.blocks.fallbacks", "evictions that fell back to a lower copy, moving no bytes",
                null, s -> s.lowerCopyFallbacks());
        counter(registry, "kvcache.blocks.lost", "blocks whose bytes no tier could serve (reported misses)",
                null, s -> s.blocksLost());
        gauge(registry, "kvcache.blocks.live", "blocks known to the manager", null, s -> s.liveBlocks());
        counter(registry, "kvcache.copy.on.write", "copies of shared partial blocks for a sequence appending to them",
                null, s -> s.copyOnWriteCopies());
        counter(registry, "kvcache.wait", "time engine threads waited on residency: summed over threads, or wall time",
                "seconds", s -> s.waitNanosTotal() / 1e9, "kind", "threads");
        counter(registry, "kvcache.wait", "time engine threads waited on residency: summed over threads, or wall time",
                "seconds", s -> s.waitNanosWall() / 1e9, "kind", "wall");
        counter(registry, "kvcache.prefetch.issued", "blocks promoted by prefetch", null, s -> s.prefetchIssued());
        counter(registry, "kvcache.prefetch.used", "prefetched blocks a step asked for, by whether they had arrived",
                null, s -> s.prefetchInTime(), "timeliness", "in_time");
        counter(registry, "kvcache.prefetch.used", "prefetched blocks a step asked for, by whether they had arrived",
                null, s -> s.prefetchLate(), "timeliness", "late");
        gauge(registry, "kvcache.prefetch.timeliness", "share of prefetched blocks in place when asked for",
                null, CacheStats::prefetchTimeliness);
        counter(registry, "kvcache.prefix.tokens", "prompt tokens looked up at open, and found cached",
                null, s -> s.prefixLookupTokens(), "result", "looked_up");
        counter(registry, "kvcache.prefix.tokens", "prompt tokens looked up at open, and found cached",
                null, s -> s.prefixHitTokens(), "result", "hit");
        bindPersist(registry);
    }

    private void bindTier(MeterRegistry registry, int i, String name) {
        String[] tag = {"tier", name};
        gauge(registry, "kvcache.tier.slots", "slots of the tier", null, s -> tier(s, i).slotCount(), tag);
        gauge(registry, "kvcache.tier.used.slots", "slots of the tier in use", null, s -> tier(s, i).usedSlots(), tag);
        gauge(registry, "kvcache.tier.capacity", "bytes of the tier's slots", BaseUnits.BYTES,
                s -> tier(s, i).capacityBytes(), tag);
        gauge(registry, "kvcache.tier.used", "bytes of the tier's slots in use", BaseUnits.BYTES,
                s -> tier(s, i).usedBytes(), tag);
        counter(registry, "kvcache.tier.hits", "blocks found in the tier when a step or a prompt asked for them",
                null, s -> tier(s, i).hits(), tag);
        counter(registry, "kvcache.tier.misses", "blocks the tier did not hold that a tier below it served",
                null, s -> s.misses(i), tag);
        counter(registry, "kvcache.tier.lost", "blocks whose bytes in the tier could not be served",
                null, s -> tier(s, i).lost(), tag);
        counter(registry, "kvcache.tier.promoted.out", "blocks copied out of the tier toward the top tier",
                null, s -> tier(s, i).promotedOut(), tag);
        counter(registry, "kvcache.tier.demoted.in", "blocks copied into the tier from a faster one",
                null, s -> tier(s, i).demotedIn(), tag);
        counter(registry, "kvcache.tier.fallbacks.in", "evictions into the tier that fell back to a lower copy there",
                null, s -> tier(s, i).fallbacksIn(), tag);
        counter(registry, "kvcache.tier.dropped", "cached blocks nobody referenced, dropped to make room",
                null, s -> tier(s, i).dropped(), tag);
        gauge(registry, "kvcache.tier.failed", "1 once the tier has failed", null, s -> tier(s, i).failed() ? 1 : 0, tag);
    }

    private void bindPersist(MeterRegistry registry) {
        String what = "sealed blocks on their way to the persistent tier, by outcome";
        counter(registry, "kvcache.persist.blocks", what, null, s -> persist(s).queued(), "outcome", "queued");
        counter(registry, "kvcache.persist.blocks", what, null, s -> persist(s).written(), "outcome", "written");
        counter(registry, "kvcache.persist.blocks", what, null, s -> persist(s).skippedQueueFull(), "outcome", "skipped");
        counter(registry, "kvcache.persist.blocks", what, null, s -> persist(s).refusedByAdmission(), "outcome", "refused");
        counter(registry, "kvcache.persist.blocks", what, null, s -> persist(s).failed(), "outcome", "failed");
        counter(registry, "kvcache.persist.written", "bytes written to the persistent tier", BaseUnits.BYTES,
                s -> persist(s).bytesWritten());
        gauge(registry, "kvcache.persist.queue", "blocks waiting to be written to the persistent tier", null,
                s -> persist(s).queueLength());
        gauge(registry, "kvcache.persist.lag.max", "longest time from a block's seal to its publication",
                "seconds", s -> persist(s).lagMaxNanos() / 1e9);
    }

    private static TierStats tier(CacheStats s, int i) {
        return s.tiers().get(i);
    }

    private static PersistStats persist(CacheStats s) {
        return s.persist() == null ? new PersistStats("none", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) : s.persist();
    }

    private void counter(MeterRegistry registry, String name, String description, String unit,
                         ToDoubleFunction<CacheStats> value, String... tagPairs) {
        FunctionCounter.builder(name, source, src -> value.applyAsDouble(stats.apply(src)))
                .description(description).baseUnit(unit).tags(tags).tags(tagPairs).register(registry);
    }

    private void gauge(MeterRegistry registry, String name, String description, String unit,
                       ToDoubleFunction<CacheStats> value, String... tagPairs) {
        Gauge.builder(name, source, src -> value.applyAsDouble(stats.apply(src)))
                .description(description).baseUnit(unit).tags(tags).tags(tagPairs).register(registry);
    }
}
