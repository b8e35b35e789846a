package io.kvcache.redis;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.lettuce.core.RedisURI;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * A real three-node Redis Cluster for tests (three masters, no replicas) on 127.0.0.1, made with
 * {@code redis-cli --cluster create}; skipped where redis-server or redis-cli is absent.
 */
final class RedisCluster implements AutoCloseable {
    final String password = "pw-" + UUID.randomUUID();
    final List<RedisServer> nodes = new ArrayList<>();
    private RedisClusterClient plainClient;
    private StatefulRedisClusterConnection<byte[], byte[]> plain;

    static RedisCluster start() throws Exception {
        assumeTrue(RedisServer.available(), "redis-server is not on the PATH");
        RedisCluster c = new RedisCluster();
        try {
            for (int i = 0; i < 3; i++) {
                c.nodes.add(RedisServer.startWithPassword(c.password, "--cluster-enabled", "yes", "--cluster-config-file",
                        "nodes.conf", "--cluster-node-timeout", "5000", "--masterauth", c.password));
            }
            List<String> create = new ArrayList<>(List.of("redis-cli", "--cluster", "create"));
            for (RedisServer n : c.nodes) {
                create.add("127.0.0.1:" + n.port);
            }
            create.add("--cluster-yes");
            c.cli(create, 60);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            for (RedisServer n : c.nodes) {
                while (!c.cli(List.of("redis-cli", "-p", String.valueOf(n.port), "cluster", "info"), 30)
                        .contains("cluster_state:ok")) {
                    if (System.nanoTime() > deadline) {
                        throw new IOException("the cluster did not reach state ok within 60 s");
                    }
                    Thread.sleep(50);
                }
            }
            return c;
        } catch (Exception e) {
            c.close();
            throw e;
        }
    }

    /** Runs redis-cli with the password in its environment (not on the command line). @return its output */
    String cli(List<String> cmd, int seconds) throws IOException, InterruptedException {
        Path out = Files.createTempFile(nodes.getFirst().dir(), "cli", ".out");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile());
        pb.environment().put("REDISCLI_AUTH", password);
        Process p = pb.start();
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + " did not finish within " + seconds + " s");
        }
        String o = Files.readString(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed: " + o);
        }
        return o;
    }

    /** @return keys held by one node */
    long keysOn(RedisServer n) throws IOException, InterruptedException {
        return Long.parseLong(cli(List.of("redis-cli", "-p", String.valueOf(n.port), "dbsize"), 30).trim());
    }

    RedisTierConfig.Builder config(String namespace) {
        RedisTierConfig.Builder b = RedisTierConfig.builder().cluster(true).password(password.toCharArray())
                .namespace(namespace).timeout(Duration.ofSeconds(2)).presenceTtl(Duration.ofMillis(200));
        for (RedisServer n : nodes) {
            b.node("127.0.0.1", n.port);
        }
        return b;
    }

    /**
     * @return a plain Lettuce cluster connection (byte arrays), for a test to read and write raw
     *     values beside a tier; made on first use, closed with the cluster
     */
    synchronized StatefulRedisClusterConnection<byte[], byte[]> plainConnection() {
        if (plain == null) {
            plainClient = RedisClusterClient.create(RedisURI.builder().withHost("127.0.0.1")
                    .withPort(nodes.getFirst().port).withPassword(password.toCharArray()).build());
            plain = plainClient.connect(ByteArrayCodec.INSTANCE);
        }
        return plain;
    }

    @Override
    public void close() throws Exception {
        synchronized (this) {
            if (plain != null) {
                plain.close();
                plainClient.shutdown();
                plain = null;
            }
        }
        for (RedisServer n : nodes) {
            n.close();
        }
    }
}
