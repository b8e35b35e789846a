package io.kvcache.redis;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.PersistentTierContractTest;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierSpec;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * The Redis tier passes the contract every tier passes and the persistent tiers' one, against a
 * real redis-server; "reopen" is a new tier on the same namespace, and stored bytes are damaged
 * both in the local slot and in Redis.
 */
class RedisTierContractTest extends PersistentTierContractTest {
    private static RedisServer server;
    private static RedisClient plainClient;
    private static StatefulRedisConnection<byte[], byte[]> plain;
    private int opened;
    private String namespace;
    private KvLayout lastLayout;
    private long lastCapacity;

    @BeforeAll
    static void startServer() throws Exception {
        server = RedisServer.start();
        plainClient = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(server.port)
                .withPassword(server.password.toCharArray()).build());
        plain = plainClient.connect(ByteArrayCodec.INSTANCE);
    }

    @AfterAll
    static void stopServer() throws Exception {
        if (plain != null) {
            plain.close();
            plainClient.shutdown();
        }
        if (server != null) {
            server.close();
        }
    }

    @Override
    protected TierSpec spec() {
        return new TierSpec(false, true, false, false);
    }

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        namespace = "contract-" + System.nanoTime() + "-" + opened++;
        lastLayout = layout;
        lastCapacity = capacityBytes;
        return open();
    }

    private RedisTier open() {
        return RedisTier.builder(lastLayout).config(server.config(namespace).build()).modelId("contract")
                .capacityBytes(lastCapacity).open();
    }

    @Override
    protected PersistentTier reopenStorage() {
        return open();
    }

    @Override
    protected void corruptStoredBytes(PersistentTier tier, int slot) {
        RedisTier t = (RedisTier) tier;
        var mem = t.slotMemory(slot);
        mem.set(ValueLayout.JAVA_BYTE, 100, (byte) ~mem.get(ValueLayout.JAVA_BYTE, 100));
        // the copy in Redis too: a tier that re-fetched would otherwise find good bytes
        var key = t.keyOfSlotForTest(slot);
        if (key != null) {
            byte[] rk = t.redisKey(key);
            byte[] v = plain.sync().get(rk);
            if (v != null) {
                int at = v.length - 10;
                v[at] = (byte) ~v[at];
                plain.sync().set(rk, v);
            }
        }
    }
}
