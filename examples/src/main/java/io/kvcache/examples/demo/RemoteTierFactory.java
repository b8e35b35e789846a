package io.kvcache.examples.demo;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.redis.RedisTier;
import io.kvcache.redis.RedisTierConfig;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import java.time.Duration;

/**
 * Opens the remote tier for {@code --remote-tier redis://[user:password@]host:port}: the one place
 * the demo names the Redis tier, and where it keeps the last request for the next process (which
 * may run on another host with its own disk directory) beside the shared blocks.
 */
final class RemoteTierFactory {
    /** The key namespace of the demo's blocks and of its last request. */
    static final String NAMESPACE = "kvcache-demo";

    private RemoteTierFactory() {
    }

    /**
     * @param uri     redis:// or rediss:// URI
     * @param blocks  local staging slots (a whole prefix chain must fit)
     * @return the opened tier; the cache manager closes it
     * @throws UsageException naming the server (never the password) when it cannot be used
     */
    static RedisTier open(String uri, KvLayout layout, String modelId, int blocks) throws UsageException {
        try {
            return RedisTier.builder(layout).config(RedisTierConfig.fromUri(uri).namespace(NAMESPACE).build())
                    .modelId(modelId).capacityBytes(blocks * layout.blockBytes()).name("redis").open();
        } catch (RuntimeException e) {
            throw new UsageException("--remote-tier: " + e.getMessage());
        }
    }

    /** @return the last request a process saved through this server, or null */
    static int[] readLastRequest(String uri, String modelId, int blockTokens) {
        try (Session s = new Session(uri)) {
            return LastRequest.parse(s.connection.sync().get(key(modelId, blockTokens)), modelId, blockTokens);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Saves a request for the next process that uses this server. */
    static void writeLastRequest(String uri, String modelId, int blockTokens, int[] prompt) {
        try (Session s = new Session(uri)) {
            s.connection.sync().set(key(modelId, blockTokens), LastRequest.format(modelId, blockTokens, prompt));
        }
    }

    private static String key(String modelId, int blockTokens) {
        return NAMESPACE + ":last-request:" + Integer.toHexString((modelId + "/" + blockTokens).hashCode());
    }

    /** A short-lived plain connection. */
    private static final class Session implements AutoCloseable {
        final RedisClient client;
        final StatefulRedisConnection<String, String> connection;

        Session(String uri) {
            RedisURI u = RedisURI.create(uri);
            u.setTimeout(Duration.ofSeconds(2));
            client = RedisClient.create(u);
            try {
                connection = client.connect();
            } catch (RuntimeException e) {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(1));
                throw e;
            }
        }

        @Override
        public void close() {
            connection.close();
            client.shutdown(Duration.ZERO, Duration.ofSeconds(1));
        }
    }
}
