package io.kvcache.redis;

import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.KeyValue;
import io.lettuce.core.RedisChannelHandler;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionStateListener;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisKeyAsyncCommands;
import io.lettuce.core.api.async.RedisStringAsyncCommands;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.models.partitions.RedisClusterNode;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.DefaultClientResources;
import io.lettuce.core.resource.Delay;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One Lettuce connection to a standalone server or a cluster, with byte-array keys and values,
 * commands bounded by the configured timeout, and a view of whether the server is reachable.
 * While the connection is down, commands are rejected at once (no queueing behind a dead
 * socket) and Lettuce reconnects in the background; after a timeout the store is considered
 * unavailable for a short back-off, so that a stalled server costs one timeout, not one per block.
 */
final class RedisStore implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(RedisStore.class.getName());
    /** Lettuce's logger that dumps the bytes of every command sent, at TRACE. */
    static final String WIRE_LOGGER = "io.lettuce.core.protocol.CommandEncoder";

    private final RedisTierConfig config;
    private final ClientResources resources;
    private final AbstractRedisClient client;
    private final StatefulConnection<byte[], byte[]> connection;
    private final RedisStringAsyncCommands<byte[], byte[]> strings;
    private final RedisKeyAsyncCommands<byte[], byte[]> keys;
    private final long timeoutNanos;
    /** Connections of this client that are up now: the server's, or each cluster node's (and topology probes'). */
    private final Set<RedisChannelHandler<?, ?>> live = ConcurrentHashMap.newKeySet();
    private volatile boolean everConnected;
    private volatile boolean closing;
    private volatile long unavailableUntil = System.nanoTime();
    final AtomicLong roundTrips = new AtomicLong();
    final AtomicLong errors = new AtomicLong();
    final AtomicLong reconnects = new AtomicLong();

    /**
     * Connects.
     *
     * @throws RedisTierUnavailableException when no connection can be made (naming where, never the password)
     */
    RedisStore(RedisTierConfig config) {
        this.config = config;
        if (config.hasPassword() && System.getLogger(WIRE_LOGGER).isLoggable(System.Logger.Level.TRACE)) {
            LOG.log(System.Logger.Level.WARNING, "redis tier: TRACE logging of " + WIRE_LOGGER + " writes raw"
                    + " commands, AUTH and its password included: turn it off");
        }
        this.timeoutNanos = config.timeout().toNanos();
        this.resources = DefaultClientResources.builder().ioThreadPoolSize(2).computationThreadPoolSize(2)
                .reconnectDelay(Delay.exponential(Duration.ofMillis(20), config.reconnectDelayMax(), 2,
                        TimeUnit.MILLISECONDS))
                .build();
        List<RedisURI> uris = new ArrayList<>();
        for (RedisTierConfig.Node n : config.nodes()) {
            RedisURI.Builder u = RedisURI.builder().withHost(n.host()).withPort(n.port()).withSsl(config.tls())
                    .withVerifyPeer(config.verifyPeer()).withTimeout(config.timeout());
            char[] pw = config.password();
            if (pw != null) {
                if (config.username() != null) {
                    u.withAuthentication(config.username(), pw);
                } else {
                    u.withPassword(pw);
                }
            }
            uris.add(u.build());
        }
        SocketOptions socket = SocketOptions.builder().connectTimeout(config.timeout()).keepAlive(true).build();
        TimeoutOptions timeouts = TimeoutOptions.builder().fixedTimeout(config.timeout()).build();
        AbstractRedisClient c;
        StatefulConnection<byte[], byte[]> conn;
        try {
            if (config.cluster()) {
                RedisClusterClient cc = RedisClusterClient.create(resources, uris);
                // node connections open lazily, and a topology change opens new ones: commands wait for
                // them (bounded by the timeout) instead of being rejected before their first connect
                cc.setOptions(ClusterClientOptions.builder().autoReconnect(true).socketOptions(socket)
                        .timeoutOptions(timeouts)
                        .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                                .enableAllAdaptiveRefreshTriggers().build())
                        .build());
                c = cc;
                cc.addListener(listener());
                StatefulRedisClusterConnection<byte[], byte[]> cx = cc.connect(ByteArrayCodec.INSTANCE);
                for (RedisClusterNode node : cx.getPartitions()) { // connect to every node now
                    cx.getConnection(node.getUri().getHost(), node.getUri().getPort());
                }
                this.strings = cx.async();
                this.keys = cx.async();
                conn = cx;
            } else {
                RedisClient rc = RedisClient.create(resources, uris.getFirst());
                rc.setOptions(ClientOptions.builder().autoReconnect(true).socketOptions(socket).timeoutOptions(timeouts)
                        .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS).build());
                c = rc;
                rc.addListener(listener());
                StatefulRedisConnection<byte[], byte[]> sx = rc.connect(ByteArrayCodec.INSTANCE);
                this.strings = sx.async();
                this.keys = sx.async();
                conn = sx;
            }
        } catch (RuntimeException e) {
            resources.shutdown(0, 2, TimeUnit.SECONDS);
            throw new RedisTierUnavailableException("cannot connect to redis at " + config.where() + ": "
                    + reason(e), e);
        }
        this.client = c;
        this.connection = conn;
    }

    private RedisConnectionStateListener listener() {
        return new RedisConnectionStateListener() {
            @Override
            public void onRedisConnected(RedisChannelHandler<?, ?> handler, SocketAddress address) {
                if (live.isEmpty() && everConnected) {
                    reconnects.incrementAndGet();
                    LOG.log(System.Logger.Level.INFO, "redis tier: reconnected to " + config.where());
                }
                live.add(handler);
                everConnected = true;
                unavailableUntil = System.nanoTime();
            }

            @Override
            public void onRedisDisconnected(RedisChannelHandler<?, ?> handler) {
                if (live.remove(handler) && live.isEmpty() && !closing) {
                    LOG.log(System.Logger.Level.WARNING, "redis tier: lost the connection to " + config.where()
                            + "; serving misses until it reconnects");
                }
            }
        };
    }

    /** @return a short, secret-free description of a failure */
    String reason(Throwable e) {
        Throwable t = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        String m = t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
        char[] pw = config.password();
        if (pw != null && pw.length > 0) {
            m = m.replace(new String(pw), "****");
        }
        return m;
    }

    /** @return whether commands are worth sending now: connected and not backing off after a timeout */
    boolean available() {
        return (!live.isEmpty() || !everConnected) && connection.isOpen() && System.nanoTime() - unavailableUntil >= 0;
    }

    /** @return whether the connection is down or the store is backing off after a failure */
    boolean degraded() {
        return !available();
    }

    /** Waits for one command's reply within the timeout. @return the reply, or null when it failed (counted) */
    <T> T await(RedisFuture<T> f, String what) {
        try {
            return f.get(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            failed(what, e);
            return null;
        }
    }

    /** Counts a failed command and backs off for a short while. */
    void failed(String what, Throwable e) {
        errors.incrementAndGet();
        boolean wasAvailable = available();
        unavailableUntil = System.nanoTime() + Math.min(timeoutNanos, TimeUnit.MILLISECONDS.toNanos(250));
        // one line per outage, not one per block
        LOG.log(wasAvailable && !closing ? System.Logger.Level.WARNING : System.Logger.Level.DEBUG,
                "redis tier: " + what + " to " + config.where() + " failed: " + reason(e) + "; misses meanwhile");
    }

    RedisFuture<byte[]> get(byte[] key) {
        roundTrips.incrementAndGet();
        return strings.get(key);
    }

    /** @return values of every key, in one round trip (a cluster client splits it per node, in parallel) */
    RedisFuture<List<KeyValue<byte[], byte[]>>> mget(byte[][] k) {
        roundTrips.incrementAndGet();
        return strings.mget(k);
    }

    RedisFuture<String> set(byte[] key, byte[] value) {
        return strings.set(key, value);
    }

    RedisFuture<Long> del(byte[] key) {
        return keys.del(key);
    }

    RedisFuture<Long> exists(byte[] key) {
        roundTrips.incrementAndGet();
        return keys.exists(key);
    }

    /** Closes the connection and the client's threads. */
    @Override
    public void close() {
        closing = true;
        try {
            connection.close();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "redis tier: closing the connection: " + reason(e));
        }
        try {
            client.shutdownAsync(0, 2, TimeUnit.SECONDS).get(5, TimeUnit.SECONDS);
            resources.shutdown(0, 2, TimeUnit.SECONDS).get(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LOG.log(System.Logger.Level.DEBUG, "redis tier: shutting the client down: " + reason(e));
        }
    }
}
