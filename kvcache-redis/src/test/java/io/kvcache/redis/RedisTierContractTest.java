package io.kvcache.redis;

import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** The Redis tier passes the contract every tier passes and the persistent tiers' one, on a standalone server. */
class RedisTierContractTest extends RedisContract {
    private static RedisServer server;
    private static StatefulRedisConnection<byte[], byte[]> plain;

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

    @Override
    RedisTierConfig.Builder config(String namespace) {
        return server.config(namespace);
    }

    @Override
    byte[] rawGet(byte[] key) {
        return plain.sync().get(key);
    }

    @Override
    void rawSet(byte[] key, byte[] value) {
        plain.sync().set(key, value);
    }
}
