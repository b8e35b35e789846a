package io.kvcache.redis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.Sequence;
import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The server killed in the middle of a run: lookups become misses at once (no wrong bytes, no
 * step bounded by more than the hang bound), the tier reports itself degraded, the volatile
 * tiers keep serving, and once the server is back the tier reconnects and shares again.
 */
class RedisOutageTest {
    /** Bounds a hang, not a speed: a step that takes this long is stuck. */
    private static final long HANG_NANOS = TimeUnit.SECONDS.toNanos(30);
    private static final int BLOCKS = 6;
    private RedisServer server;

    @BeforeEach
    void start() throws Exception {
        server = RedisServer.start();
    }

    @AfterEach
    void stop() throws Exception {
        server.close();
    }

    private RedisTierConfig config() {
        return server.config("outage").timeout(Duration.ofMillis(500)).reconnectDelayMax(Duration.ofMillis(200)).build();
    }

    private static int[] tokens(int prompt) {
        return SharedWorkload.tokens(prompt, BLOCKS * SharedWorkload.LAYOUT.blockTokens() + 1);
    }

    @Test
    void aKilledServerGivesMissesAndARestartedOneIsUsedAgain() throws Exception {
        byte[] salt = {3};
        int full = BLOCKS * SharedWorkload.LAYOUT.blockTokens();
        try (KvCacheManager writer = SharedWorkload.manager(null, SharedWorkload.redis(config(), 64));
             Arena arena = Arena.ofConfined()) {
            for (int p = 0; p < 6; p++) {
                SharedWorkload.prefill(writer, salt, tokens(p), BLOCKS, arena).close();
            }
        }
        RedisTier redis = SharedWorkload.redis(config(), 64);
        try (KvCacheManager m = SharedWorkload.manager(null, redis); Arena arena = Arena.ofConfined()) {
            try (Sequence s = m.open(salt, tokens(0))) {
                assertEquals(full, s.cachedTokens(), "the prefix written before the outage was not found");
                assertEquals(-1, SharedWorkload.firstWrong(m, s, salt, tokens(0), arena));
            }
            server.kill();
            long worst = 0;
            for (int p = 1; p < 6; p++) {
                long t0 = System.nanoTime();
                try (Sequence s = SharedWorkload.prefill(m, salt, tokens(p), BLOCKS, arena)) {
                    assertEquals(-1, SharedWorkload.firstWrong(m, s, salt, tokens(p), arena), "wrong bytes while down");
                }
                worst = Math.max(worst, System.nanoTime() - t0);
            }
            assertTrue(worst < HANG_NANOS, "a step hung for " + worst / 1_000_000 + " ms while the server was down");
            assertTrue(redis.degraded(), "the tier did not notice the server was gone");
            assertTrue(redis.stats().misses() > 0, "no lookup missed while the server was down: " + redis.stats());
            try (Sequence s = m.open(salt, tokens(0))) {
                assertEquals(full, s.cachedTokens(), "the volatile tiers stopped serving while Redis was down");
                assertEquals(-1, SharedWorkload.firstWrong(m, s, salt, tokens(0), arena));
            }

            server.restart();
            long deadline = System.nanoTime() + HANG_NANOS;
            while (redis.degraded() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertFalse(redis.degraded(), "the tier did not reconnect to the restarted server: " + redis.stats());
            assertTrue(redis.stats().reconnects() >= 1);
            SharedWorkload.prefill(m, salt, tokens(9), BLOCKS, arena).close();
            assertTrue(m.awaitIdle(Duration.ofSeconds(30)), "write-through did not settle");
        }
        RedisTier after = SharedWorkload.redis(config(), 64);
        try (KvCacheManager m = SharedWorkload.manager(null, after); Arena arena = Arena.ofConfined()) {
            try (Sequence s = m.open(salt, tokens(9))) {
                assertEquals(full, s.cachedTokens(), "a prefix written after the restart was not shared");
                assertEquals(-1, SharedWorkload.firstWrong(m, s, salt, tokens(9), arena));
            }
            try (Sequence s = m.open(salt, tokens(1))) {
                assertEquals(0, s.cachedTokens(), "a block the restarted (empty) server never held was found");
            }
        }
    }

    @Test
    void aHungServerCostsBoundedTimeoutsAndMissesNeverWrongBytes() throws Exception {
        byte[] salt = {4};
        int full = BLOCKS * SharedWorkload.LAYOUT.blockTokens();
        try (KvCacheManager writer = SharedWorkload.manager(null, SharedWorkload.redis(config(), 64));
             Arena arena = Arena.ofConfined()) {
            for (int p = 0; p < 4; p++) {
                SharedWorkload.prefill(writer, salt, tokens(p), BLOCKS, arena).close();
            }
        }
        RedisTier redis = SharedWorkload.redis(config(), 64);
        try (KvCacheManager m = SharedWorkload.manager(null, redis); Arena arena = Arena.ofConfined()) {
            server.pause();
            try {
                long worst = 0;
                for (int p = 0; p < 3; p++) {
                    long t0 = System.nanoTime();
                    try (Sequence s = SharedWorkload.prefill(m, salt, tokens(p), BLOCKS, arena)) {
                        assertEquals(0, s.cachedTokens(), "a block was served by a server that answers nothing");
                        assertEquals(-1, SharedWorkload.firstWrong(m, s, salt, tokens(p), arena));
                    }
                    worst = Math.max(worst, System.nanoTime() - t0);
                }
                assertTrue(worst < HANG_NANOS, "a step hung for " + worst / 1_000_000 + " ms on a stalled server");
                assertTrue(redis.stats().errors() > 0, "no command timed out: " + redis.stats());
            } finally {
                server.resume();
            }
        }
        try (KvCacheManager m = SharedWorkload.manager(null, SharedWorkload.redis(config(), 64));
             Arena arena = Arena.ofConfined(); Sequence s = m.open(salt, tokens(3))) {
            assertEquals(full, s.cachedTokens(), "the server that went on was not used again");
            assertEquals(-1, SharedWorkload.firstWrong(m, s, salt, tokens(3), arena));
        }
    }
}
