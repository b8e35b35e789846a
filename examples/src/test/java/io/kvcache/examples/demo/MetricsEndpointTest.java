package io.kvcache.examples.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** {@code --metrics-port} serves the cache's meters in Prometheus' text format over HTTP. */
class MetricsEndpointTest {
    private static String scrape(URI uri) {
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30)).build()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(60)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"), r.headers().toString());
            return r.body();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** @return the value of the sample {@code name{labels...}} in a Prometheus text exposition */
    private static double sample(String body, String name, String labelsRegex) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "\\{[^}]*" + labelsRegex + "[^}]*} (\\S+)$").matcher(body);
        assertTrue(m.find(), "no sample " + name + " with " + labelsRegex + " in:\n" + body);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void aScrapeShowsTheCachesCounters() {
        KvLayout layout = new KvLayout(2, 1, 16, DType.FP16, 4);
        try (KvCacheManager cache = KvCacheManager.builder(layout).modelId("scrape")
                .tier(new SimulatedDeviceTier(layout, 2 * layout.blockBytes()))
                .tier(new MmapHostTier(layout, 8 * layout.blockBytes())).build();
             MetricsEndpoint endpoint = MetricsEndpoint.start(0, cache);
             Sequence seq = cache.open(new byte[] {1}, IntStream.range(0, 24).toArray())) {
            for (int round = 0; round < 2; round++) {
                for (int b = 0; b < seq.blockCount(); b++) {
                    try (ResidencyHandle h = cache.ensureResident(seq, b, b + 1)) {
                        h.await();
                    }
                }
            }
            CacheStats s = cache.stats();
            assertTrue(s.promotions() > 0 && s.demotions() > 0, s.toTable());
            String body = scrape(endpoint.uri());
            assertEquals(s.promotions(), sample(body, "kvcache_blocks_moved_total", "direction=\"up\""));
            assertEquals(s.demotions(), sample(body, "kvcache_blocks_moved_total", "direction=\"down\""));
            assertEquals(s.bytesPromoted(), sample(body, "kvcache_moved_bytes_total", "direction=\"up\""));
            assertEquals(s.tiers().get(0).hits(), sample(body, "kvcache_tier_hits_total", "tier=\"device\""));
            assertEquals(s.misses(0), sample(body, "kvcache_tier_misses_total", "tier=\"device\""));
            assertEquals(8, sample(body, "kvcache_tier_slots", "tier=\"host\""));
            assertEquals(s.blocksLost(), sample(body, "kvcache_blocks_lost_total", ""));
            assertTrue(body.contains("application=\"long-context-demo\""), body);
        }
    }

    @Test
    void theDemoServesAScrapeWhileItRuns() {
        StringBuilder scraped = new StringBuilder();
        // the demo announces the endpoint; the scrape runs inside that println, so the demo (and its
        // cache) is still running while it is served
        OutputStream lines = new OutputStream() {
            private final ByteArrayOutputStream line = new ByteArrayOutputStream();

            @Override
            public void write(int b) {
                if (b != '\n') {
                    line.write(b);
                    return;
                }
                String text = line.toString(StandardCharsets.UTF_8);
                line.reset();
                if (text.startsWith("metrics   http://")) {
                    scraped.append(scrape(URI.create(text.substring(10).split(" ")[0])));
                }
            }
        };
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = LongContextDemo.run(new String[] {"--metrics-port", "0", "--tokens", "16", "--no-verify",
                "--followup-tokens", "0", "--no-progress", "--device", "simulated"},
                new PrintStream(lines, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, status, err.toString(StandardCharsets.UTF_8));
        String body = scraped.toString();
        for (String tier : new String[] {"device", "host", "disk"}) {
            assertTrue(sample(body, "kvcache_tier_slots", "tier=\"" + tier + "\"") > 0, body);
        }
        for (String family : new String[] {"kvcache_tier_hits_total", "kvcache_tier_misses_total", "kvcache_tier_lost_total",
                "kvcache_blocks_moved_total", "kvcache_moved_bytes_total", "kvcache_blocks_lost_total",
                "kvcache_wait_seconds_total", "kvcache_prefetch_used_total", "kvcache_persist_blocks_total"}) {
            assertNotNull(sample(body, family, ""), family);
        }
    }

    @Test
    void aBadPortIsAUsageError() throws UsageException {
        assertThrows(UsageException.class, () -> DemoOptions.parse("--metrics-port", "70000"));
        assertEquals(9464, DemoOptions.parse("--metrics-port", "9464").metricsPort);
    }
}
