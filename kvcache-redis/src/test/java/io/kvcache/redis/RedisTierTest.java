package io.kvcache.redis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What the Redis tier does beyond the contract, against a real server: values that fail a check
 * (garbage, another layout's or model's block, another key's block) are counted misses, never
 * served; the presence cache answers repeated questions without a round trip; a prefix chain is
 * one round trip; ACL users; and no password in messages, logs or toString.
 */
class RedisTierTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 2, 16, DType.FP16, 8);
    private static final KvLayout OTHER = new KvLayout(2, 2, 16, DType.FP16, 4);
    private static RedisServer server;
    private static StatefulRedisConnection<byte[], byte[]> plain;
    private final List<RedisTier> open = new ArrayList<>();
    private Arena arena;
    private String ns;

    @BeforeAll
    static void startServer() throws Exception {
        server = RedisServer.start();
        plain = server.plainConnection();
    }

    @AfterAll
    static void stopServer() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    @BeforeEach
    void setUp() {
        arena = Arena.ofConfined();
        ns = "t" + System.nanoTime();
    }

    @AfterEach
    void tearDown() {
        open.forEach(RedisTier::close);
        arena.close();
    }

    /** A tier that remembers no presence answer, so that every lookup reads the value. */
    private RedisTier tier(KvLayout layout, String model) {
        RedisTier t = RedisTier.builder(layout).config(server.config(ns).presenceTtl(java.time.Duration.ZERO).build())
                .modelId(model)
                .capacityBytes(8 * layout.blockBytes()).open();
        open.add(t);
        return t;
    }

    private static BlockKey key(long id) throws Exception {
        return BlockKey.of(MessageDigest.getInstance("SHA-256").digest(ByteBuffer.allocate(8).putLong(id).array()));
    }

    private MemorySegment block(KvLayout layout, long seed) {
        MemorySegment m = arena.allocate(layout.blockBytes());
        Random r = new Random(seed);
        for (long i = 0; i < m.byteSize(); i++) {
            m.set(ValueLayout.JAVA_BYTE, i, (byte) (r.nextInt(255) + 1));
        }
        return m;
    }

    /** Publishes a block and closes the tier, so that its write has landed. */
    private void publishAndClose(KvLayout layout, String model, BlockKey key, long seed) {
        RedisTier w = tier(layout, model);
        int s = w.allocate(key);
        w.write(s, 0, block(layout, seed));
        w.publish(s, key);
        w.free(s);
        w.close();
    }

    /** @return whether the key is gone within a bound (the tier's DEL travels on its own connection) */
    private static boolean deleted(byte[] rk) throws InterruptedException {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
        while (plain.sync().get(rk) != null) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(5);
        }
        return true;
    }

    @Test
    void garbageUnderABlocksKeyIsACountedMissAndIsDeleted() throws Exception {
        RedisTier t = tier(LAYOUT, "m");
        byte[] rk = t.redisKey(key(1));
        for (byte[] garbage : new byte[][] {"hello".getBytes(StandardCharsets.US_ASCII), new byte[70_000], new byte[0]}) {
            new Random(garbage.length).nextBytes(garbage);
            plain.sync().set(rk, garbage);
            assertEquals(-1, t.lookup(key(1)), "garbage was served");
            assertTrue(deleted(rk), "an invalid value was left in Redis");
        }
        assertEquals(3, t.stats().invalidValues());
        assertEquals(8, t.freeSlots(), "a refused value kept a slot");
    }

    @Test
    void aValueWithOneFlippedByteIsAMiss() throws Exception {
        RedisTier t = tier(LAYOUT, "m");
        byte[] rk = t.redisKey(key(2));
        // header fields fail at lookup; payload bytes fail their CRC32C at verify and read, before any is served
        int[] at = {3, 9, 20, 50, 61, 64 + 1, 300, 64 + 1 + (int) LAYOUT.blockBytes() - 1};
        MemorySegment dst = arena.allocate(LAYOUT.blockBytes());
        for (int a : at) {
            publishAndClose(LAYOUT, "m", key(2), 2);
            byte[] v = plain.sync().get(rk);
            assertNotNull(v);
            v[a] ^= 0x40;
            plain.sync().set(rk, v);
            int s = t.lookup(key(2));
            if (s >= 0) {
                assertTrue(a >= 64 + 1, "a value with a damaged header (byte " + a + ") was handed out");
                assertThrows(io.kvcache.core.tier.BlockUnavailableException.class, () -> t.read(s, 0, dst),
                        "a value damaged at byte " + a + " was served");
                assertFalse(t.verify(s));
                assertFalse(t.contains(key(2)));
                t.free(s);
            }
            assertTrue(deleted(rk));
        }
        RedisTierStats st = t.stats();
        assertEquals(at.length, st.invalidValues() + st.checksumFailures(), st.toString());
        assertEquals(8, t.freeSlots());
    }

    @Test
    void anotherLayoutsOrModelsOrKeysBlockIsAMiss() throws Exception {
        RedisTier t = tier(LAYOUT, "m");
        byte[] rk = t.redisKey(key(3));
        // another layout's block copied under this key
        publishAndClose(OTHER, "m", key(3), 3);
        assertNotNull(plain.sync().get(rk));
        assertEquals(-1, t.lookup(key(3)), "another layout's block was served");
        assertTrue(deleted(rk));
        // another model's block
        publishAndClose(LAYOUT, "other-model", key(3), 3);
        assertEquals(-1, t.lookup(key(3)), "another model's block was served");
        assertTrue(deleted(rk));
        // another key's block, copied under this key
        publishAndClose(LAYOUT, "m", key(4), 4);
        plain.sync().set(rk, plain.sync().get(t.redisKey(key(4))));
        assertEquals(-1, t.lookup(key(3)), "another key's block was served");
        assertTrue(deleted(rk));
        assertEquals(3, t.stats().invalidValues());
        // and the right block is found, byte for byte
        publishAndClose(LAYOUT, "m", key(3), 3);
        RedisTier fresh = tier(LAYOUT, "m");
        int s = fresh.lookup(key(3));
        assertTrue(s >= 0);
        MemorySegment back = arena.allocate(LAYOUT.blockBytes());
        fresh.read(s, 0, back);
        assertEquals(-1, back.mismatch(block(LAYOUT, 3)));
    }

    @Test
    void thePresenceCacheAnswersRepeatedQuestionsWithoutARoundTrip() throws Exception {
        RedisTier t = RedisTier.builder(LAYOUT).config(server.config(ns).presenceTtl(java.time.Duration.ofMinutes(5))
                .build()).modelId("m").capacityBytes(8 * LAYOUT.blockBytes()).open();
        open.add(t);
        assertFalse(t.contains(key(5)));
        long trips = t.stats().roundTrips();
        for (int i = 0; i < 50; i++) {
            assertFalse(t.contains(key(5)));
            assertEquals(-1, t.lookup(key(5)));
        }
        RedisTierStats st = t.stats();
        assertEquals(trips, st.roundTrips(), "a remembered absence cost a round trip");
        assertTrue(st.presenceHits() >= 100 && st.presenceHitRate() > 0.9, st.toString());
    }

    @Test
    void aPrefixChainIsOneRoundTripAndHeldBlocksAreServedLocally() throws Exception {
        RedisTier w = tier(LAYOUT, "m");
        List<BlockKey> chain = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            chain.add(key(100 + i));
            int s = w.allocate(chain.get(i));
            w.write(s, 0, block(LAYOUT, 100 + i));
            w.publish(s, chain.get(i), i == 0 ? null : chain.get(i - 1));
            w.free(s);
        }
        w.close();
        RedisTier t = tier(LAYOUT, "m");
        long trips = t.stats().roundTrips();
        t.prefetch(chain);
        MemorySegment back = arena.allocate(LAYOUT.blockBytes());
        int[] slots = new int[6];
        for (int i = 0; i < 6; i++) {
            slots[i] = t.lookup(chain.get(i));
            assertTrue(slots[i] >= 0, "block " + i + " of the chain not found");
            t.read(slots[i], 0, back);
            assertEquals(-1, back.mismatch(block(LAYOUT, 100 + i)), "block " + i + " has other bytes");
        }
        assertEquals(trips + 1, t.stats().roundTrips(), "the chain took more than one round trip");
        for (int s : slots) {
            t.free(s);
        }
        for (int i = 0; i < 6; i++) {
            int s = t.lookup(chain.get(i));
            assertTrue(s >= 0);
            t.free(s);
        }
        assertEquals(trips + 1, t.stats().roundTrips(), "a retained block cost a round trip");
        assertEquals(6, t.stats().localHits());
    }

    @Test
    void anAclUserWithItsPasswordIsServedAndAWrongPasswordIsRefusedWithoutEchoingIt() throws Exception {
        String secret = "acl-" + System.nanoTime();
        plain.sync().dispatch(io.lettuce.core.protocol.CommandType.ACL, new io.lettuce.core.output.StatusOutput<>(
                ByteArrayCodec.INSTANCE), new io.lettuce.core.protocol.CommandArgs<>(ByteArrayCodec.INSTANCE)
                .add("SETUSER").add("kvuser").add("on").add(">" + secret).add("~" + ns + ":*").add("+@all"));
        RedisTierConfig good = RedisTierConfig.fromUri("redis://kvuser:" + secret + "@127.0.0.1:" + server.port)
                .namespace(ns).build();
        try (RedisTier t = RedisTier.builder(LAYOUT).config(good).modelId("m").capacityBytes(LAYOUT.blockBytes()).open()) {
            int s = t.allocate(key(7));
            t.write(s, 0, block(LAYOUT, 7));
            t.publish(s, key(7));
            t.free(s);
        }
        assertNotNull(plain.sync().get(tier(LAYOUT, "m").redisKey(key(7))), "the ACL user's block did not land");
        String wrong = "not-" + secret;
        RedisTierConfig bad = RedisTierConfig.fromUri("redis://kvuser:" + wrong + "@127.0.0.1:" + server.port).build();
        RedisTierUnavailableException e = assertThrows(RedisTierUnavailableException.class,
                () -> RedisTier.builder(LAYOUT).config(bad).modelId("m").capacityBytes(LAYOUT.blockBytes()).open());
        assertTrue(e.getMessage().contains("127.0.0.1:" + server.port), e.getMessage());
        for (Throwable c = e; c != null; c = c.getCause()) {
            assertFalse(String.valueOf(c.getMessage()).contains(wrong), "the password is in a message: " + c);
        }
    }

    @Test
    void noPasswordInToStringMessagesOrLogs() throws Exception {
        List<String> logged = new ArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                logged.add(r.getLevel() + " " + r.getLoggerName() + " " + r.getMessage() + " " + java.util.Arrays.toString(r.getParameters()) + " " + r.getThrown());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger root = Logger.getLogger("");
        Level was = root.getLevel();
        root.addHandler(h);
        // DEBUG (FINE) and above, Lettuce's included; its TRACE wire dump (CommandEncoder, FINEST) prints
        // raw commands, AUTH among them, and is documented as never for production
        root.setLevel(Level.FINE);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream oldErr = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            RedisTierConfig cfg = RedisTierConfig.fromUri(server.uri()).namespace(ns).build();
            assertFalse(cfg.toString().contains(server.password), cfg.toString());
            assertTrue(cfg.hasPassword());
            try (RedisTier t = RedisTier.builder(LAYOUT).config(cfg).modelId("m").capacityBytes(LAYOUT.blockBytes()).open()) {
                assertFalse(t.toString().contains(server.password));
                assertFalse(t.backing().contains(server.password));
                t.lookup(key(8));
                plain.sync().set(t.redisKey(key(9)), new byte[10]);
                t.lookup(key(9)); // logs the invalid value
            }
            RedisTierConfig bad = RedisTierConfig.fromUri("redis://:wrong-" + server.password + "@127.0.0.1:"
                    + server.port).build();
            RedisTierUnavailableException e = assertThrows(RedisTierUnavailableException.class,
                    () -> RedisTier.builder(LAYOUT).config(bad).modelId("m").capacityBytes(LAYOUT.blockBytes()).open());
            assertFalse(e.getMessage().contains(server.password), e.getMessage());
            IllegalArgumentException iae = assertThrows(IllegalArgumentException.class,
                    () -> RedisTierConfig.fromUri("redis://kvuser@127.0.0.1:1"));
            assertTrue(iae.getMessage().contains("no password"), iae.getMessage());
            IllegalArgumentException scheme = assertThrows(IllegalArgumentException.class,
                    () -> RedisTierConfig.fromUri("http://u:" + server.password + "@h:1"));
            assertFalse(scheme.getMessage().contains(server.password), scheme.getMessage());
        } finally {
            System.setErr(oldErr);
            root.removeHandler(h);
            root.setLevel(was);
        }
        assertFalse(logged.isEmpty(), "nothing was logged: the check would prove nothing");
        for (String line : logged) {
            assertFalse(line.contains(server.password), "the password was logged: " + line);
        }
        assertFalse(err.toString(StandardCharsets.UTF_8).contains(server.password), "the password reached stderr");
    }

    @Test
    void uriFormsAreParsed() {
        RedisTierConfig a = RedisTierConfig.fromUri("rediss://alice:p%40ss@cache.example:6380").build();
        assertEquals("cache.example", a.nodes().getFirst().host());
        assertEquals(6380, a.nodes().getFirst().port());
        assertEquals("alice", a.username());
        assertEquals("p@ss", new String(a.password()));
        assertTrue(a.tls());
        RedisTierConfig b = RedisTierConfig.fromUri("redis://h").build();
        assertEquals(6379, b.nodes().getFirst().port());
        assertFalse(b.hasPassword());
        assertFalse(b.tls());
        assertThrows(IllegalArgumentException.class, () -> RedisTierConfig.fromUri("redis://h:1/3"));
        assertThrows(IllegalArgumentException.class, () -> RedisTierConfig.builder().namespace("a b"));
        assertThrows(IllegalArgumentException.class, () -> RedisTierConfig.builder().build());
    }
}
