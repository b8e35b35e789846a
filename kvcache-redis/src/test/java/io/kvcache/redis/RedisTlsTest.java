package io.kvcache.redis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * TLS from configuration against a real redis-server that speaks only TLS: a {@code rediss://}
 * tier stores and finds blocks; a certificate the JVM does not trust is refused while peers are
 * verified; a plain {@code redis://} connection gets nowhere.
 */
class RedisTlsTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 2, 16, DType.FP16, 8);
    private static RedisServer server;

    @BeforeAll
    static void start() throws Exception {
        server = RedisServer.startTls();
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    private RedisTierConfig.Builder uri(String scheme) {
        return RedisTierConfig.fromUri(scheme + "://:" + server.password + "@127.0.0.1:" + server.port)
                .namespace("tls").timeout(Duration.ofSeconds(5));
    }

    private static RedisTier open(RedisTierConfig c) {
        return RedisTier.builder(LAYOUT).config(c).modelId("m").capacityBytes(4 * LAYOUT.blockBytes()).open();
    }

    @Test
    void aRedissTierStoresAndFindsBlocks() {
        BlockKey key = BlockKey.of(new byte[32]);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = arena.allocate(LAYOUT.blockBytes());
            for (long i = 0; i < block.byteSize(); i++) {
                block.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7 + 1));
            }
            // the self-signed certificate is not in the JVM's trust store: encrypted, not verified
            try (RedisTier w = open(uri("rediss").verifyPeer(false).build())) {
                assertTrue(w.backing().contains("TLS"), w.backing());
                int s = w.allocate(key);
                w.write(s, 0, block);
                w.publish(s, key);
                w.free(s);
            }
            try (RedisTier r = open(uri("rediss").verifyPeer(false).build())) {
                int s = r.lookup(key);
                assertTrue(s >= 0, "the block was not found over TLS: " + r.stats());
                MemorySegment back = arena.allocate(LAYOUT.blockBytes());
                r.read(s, 0, back);
                assertEquals(-1, back.mismatch(block));
            }
        }
    }

    @Test
    void anUntrustedCertificateIsRefusedWhenPeersAreVerified() {
        RedisTierUnavailableException e = assertThrows(RedisTierUnavailableException.class,
                () -> open(uri("rediss").build()));
        assertFalse(e.getMessage().contains(server.password), e.getMessage());
    }

    @Test
    void aPlainConnectionToTheTlsPortGetsNowhere() {
        RedisTierUnavailableException e = assertThrows(RedisTierUnavailableException.class,
                () -> open(uri("redis").timeout(Duration.ofSeconds(2)).build()));
        assertFalse(e.getMessage().contains(server.password), e.getMessage());
    }
}
