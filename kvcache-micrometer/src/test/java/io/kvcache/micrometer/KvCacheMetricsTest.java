package io.kvcache.micrometer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.PersistStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Every meter reads the counter it names, per tier where it has a tier tag, and follows it. */
class KvCacheMetricsTest {
    private static final long MIB = 1 << 20;

    private static CacheStats stats(long scale) {
        List<TierStats> tiers = List.of(
                new TierStats("device", "simulated", 8, 7, 8 * MIB, 7 * MIB, 100 * scale, 1, 0, 30 * scale, 2, 0, false),
                new TierStats("host", "mmap", 64, 20, 64 * MIB, 20 * MIB, 40 * scale, 3, 25 * scale, 31, 4, 5, true));
        PersistStats persist = new PersistStats("WRITE_THROUGH", 70, 64 * scale, 64 * MIB * scale, 2, 3, 1, 6,
                1_000_000, 29_000_000, 2_000_000);
        return new CacheStats(tiers, 25 * scale, 25 * MIB * scale, 31, 31 * MIB, 7, 2, 2 * MIB, 800, 768,
                3_000_000_000L, 1_500_000_000L, Map.of("t", 3_000_000_000L), 30, 24, 6, 9, 125, persist);
    }

    private static double counter(SimpleMeterRegistry r, String name, String... tags) {
        FunctionCounter c = r.find(name).tags(tags).functionCounter();
        assertNotNull(c, "no counter " + name + " " + String.join(",", tags));
        return c.count();
    }

    private static double gauge(SimpleMeterRegistry r, String name, String... tags) {
        Gauge g = r.find(name).tags(tags).gauge();
        assertNotNull(g, "no gauge " + name + " " + String.join(",", tags));
        return g.value();
    }

    @Test
    void everyMeterReadsItsCounter() {
        AtomicReference<CacheStats> now = new AtomicReference<>(stats(1));
        SimpleMeterRegistry r = new SimpleMeterRegistry();
        KvCacheMetrics.of(now, AtomicReference::get, Tags.of("cache", "test")).bindTo(r);

        assertEquals(8, gauge(r, "kvcache.tier.slots", "tier", "device"));
        assertEquals(20, gauge(r, "kvcache.tier.used.slots", "tier", "host"));
        assertEquals(64 * MIB, gauge(r, "kvcache.tier.capacity", "tier", "host"));
        assertEquals(7 * MIB, gauge(r, "kvcache.tier.used", "tier", "device"));
        assertEquals(100, counter(r, "kvcache.tier.hits", "tier", "device"));
        assertEquals(25, counter(r, "kvcache.tier.misses", "tier", "device"), "served from below: the host's promotions");
        assertEquals(0, counter(r, "kvcache.tier.misses", "tier", "host"));
        assertEquals(3, counter(r, "kvcache.tier.lost", "tier", "host"));
        assertEquals(25, counter(r, "kvcache.tier.promoted.out", "tier", "host"));
        assertEquals(31, counter(r, "kvcache.tier.demoted.in", "tier", "host"));
        assertEquals(4, counter(r, "kvcache.tier.fallbacks.in", "tier", "host"));
        assertEquals(5, counter(r, "kvcache.tier.dropped", "tier", "host"));
        assertEquals(1, gauge(r, "kvcache.tier.failed", "tier", "host"));
        assertEquals(0, gauge(r, "kvcache.tier.failed", "tier", "device"));
        assertEquals(25, counter(r, "kvcache.blocks.moved", "direction", "up"));
        assertEquals(31, counter(r, "kvcache.blocks.moved", "direction", "down"));
        assertEquals(25 * MIB, counter(r, "kvcache.moved", "direction", "up"));
        assertEquals(31 * MIB, counter(r, "kvcache.moved", "direction", "down"));
        assertEquals(7, counter(r, "kvcache.blocks.fallbacks"));
        assertEquals(9, counter(r, "kvcache.blocks.lost"));
        assertEquals(125, gauge(r, "kvcache.blocks.live"));
        assertEquals(2, counter(r, "kvcache.copy.on.write"));
        assertEquals(3.0, counter(r, "kvcache.wait", "kind", "threads"), 1e-9);
        assertEquals(1.5, counter(r, "kvcache.wait", "kind", "wall"), 1e-9);
        assertEquals(30, counter(r, "kvcache.prefetch.issued"));
        assertEquals(24, counter(r, "kvcache.prefetch.used", "timeliness", "in_time"));
        assertEquals(6, counter(r, "kvcache.prefetch.used", "timeliness", "late"));
        assertEquals(0.8, gauge(r, "kvcache.prefetch.timeliness"), 1e-9);
        assertEquals(800, counter(r, "kvcache.prefix.tokens", "result", "looked_up"));
        assertEquals(768, counter(r, "kvcache.prefix.tokens", "result", "hit"));
        assertEquals(70, counter(r, "kvcache.persist.blocks", "outcome", "queued"));
        assertEquals(64, counter(r, "kvcache.persist.blocks", "outcome", "written"));
        assertEquals(2, counter(r, "kvcache.persist.blocks", "outcome", "skipped"));
        assertEquals(3, counter(r, "kvcache.persist.blocks", "outcome", "refused"));
        assertEquals(1, counter(r, "kvcache.persist.blocks", "outcome", "failed"));
        assertEquals(64 * MIB, counter(r, "kvcache.persist.written"));
        assertEquals(6, gauge(r, "kvcache.persist.queue"));
        assertEquals(0.029, gauge(r, "kvcache.persist.lag.max"), 1e-9);
        for (Meter m : r.getMeters()) {
            assertEquals("test", m.getId().getTag("cache"), "the binder's tags are on " + m.getId());
        }

        now.set(stats(3));   // meters read the counters at each read, not at binding
        assertEquals(300, counter(r, "kvcache.tier.hits", "tier", "device"));
        assertEquals(75, counter(r, "kvcache.blocks.moved", "direction", "up"));
        assertEquals(192 * MIB, counter(r, "kvcache.persist.written"));
    }

    @Test
    void metersOfALiveCacheAgreeWithItsStats() {
        KvLayout layout = new KvLayout(2, 1, 16, DType.FP16, 4);
        SimpleMeterRegistry r = new SimpleMeterRegistry();
        try (KvCacheManager cache = KvCacheManager.builder(layout).modelId("metrics")
                .tier(new SimulatedDeviceTier(layout, 2 * layout.blockBytes()))
                .tier(new MmapHostTier(layout, 16 * layout.blockBytes())).build();
             Arena arena = Arena.ofConfined()) {
            new KvCacheMetrics(cache, Tags.of("model", "m")).bindTo(r);
            MemorySegment kv = arena.allocate(layout.blockBytes());
            Sequence seq = cache.open(new byte[] {1}, IntStream.range(0, 32).toArray());   // 8 blocks, device holds 2
            for (int b = 0; b < seq.blockCount(); b++) {
                try (ResidencyHandle h = cache.ensureResident(seq, b, b + 1)) {
                    if (b + 1 < seq.blockCount()) {
                        cache.prefetch(new AccessPlan(List.of(new AccessPlan.Read(seq.id(), b + 1, b + 2))));
                    }
                    h.await();
                    h.write(b, 0, kv);
                }
            }
            for (int b = 0; b < seq.blockCount(); b++) {
                try (ResidencyHandle h = cache.ensureResident(seq, b, b + 1)) {
                    h.await();
                }
            }
            CacheStats s = cache.stats();
            assertTrue(s.promotions() > 0 && s.demotions() > 0, "blocks moved both ways: " + s);
            assertEquals(s.promotions(), counter(r, "kvcache.blocks.moved", "direction", "up"));
            assertEquals(s.bytesDemoted(), counter(r, "kvcache.moved", "direction", "down"));
            assertEquals(s.tiers().get(0).hits(), counter(r, "kvcache.tier.hits", "tier", "device"));
            assertEquals(s.misses(0), counter(r, "kvcache.tier.misses", "tier", "device"));
            assertEquals(s.tiers().get(1).slotCount(), gauge(r, "kvcache.tier.slots", "tier", "host"));
            assertEquals(s.prefetchIssued(), counter(r, "kvcache.prefetch.issued"));
            assertEquals(s.waitNanosWall() / 1e9, counter(r, "kvcache.wait", "kind", "wall"), 1e-9);
            assertEquals(2, r.find("kvcache.tier.hits").functionCounters().size(), "one per tier");
            seq.close();
        }
    }
}
