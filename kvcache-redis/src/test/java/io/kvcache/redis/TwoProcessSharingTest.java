package io.kvcache.redis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.Sequence;
import io.kvcache.tiers.disk.ChronicleJvmFlags;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two managers in two JVMs share one redis-server: the second finds the prefix the first wrote,
 * with identical bytes, with Redis as the only persistent tier or below each process's own disk
 * tier; another salt never shares.
 */
class TwoProcessSharingTest {
    private static final int BLOCKS = 40;
    private static RedisServer server;
    @TempDir
    Path tmp;

    @BeforeAll
    static void startServer() throws Exception {
        server = RedisServer.start();
    }

    @AfterAll
    static void stopServer() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void aSecondProcessFindsTheFirstsPrefixThroughRedis() throws Exception {
        runChild("solo", (byte) 1, "-");
        checkShared("solo", null);
    }

    /**
     * The first process's tiers are too small for the prompt and it writes back, not through:
     * blocks evicted into its disk, and those written down on close, reach Redis too.
     */
    @Test
    void eachProcessWithItsOwnDiskSharesThroughRedisBelowIt() throws Exception {
        Path first = tmp.resolve("disk-a");
        runChild("disks", (byte) 1, first.toString());
        assertTrue(Files.exists(first.resolve("blocks.kvc")), "the first process had no disk tier");
        checkShared("disks", tmp.resolve("disk-b"), 6);
    }

    private void checkShared(String namespace, Path disk) {
        checkShared(namespace, disk, 48);
    }

    private void checkShared(String namespace, Path disk, int tierBlocks) {
        byte[] salt = {1};
        int bt = SharedWorkload.LAYOUT.blockTokens();
        int[] tokens = SharedWorkload.tokens(7, BLOCKS * bt + 1);
        RedisTier redis = SharedWorkload.redis(server.config(namespace).build(), 64);
        try (KvCacheManager m = SharedWorkload.manager(disk, redis, tierBlocks, tierBlocks);
             Arena arena = Arena.ofConfined()) {
            try (Sequence s = m.open(salt, tokens)) {
                assertEquals(BLOCKS * bt, s.cachedTokens(), "the second process did not find the whole prefix: "
                        + redis.stats() + "; first process: " + childOut);
                assertEquals(-1, SharedWorkload.firstWrong(m, s, salt, tokens, arena), "a shared block has other bytes");
            }
            RedisTierStats st = redis.stats();
            assertEquals(BLOCKS, st.remoteHits(), "blocks not served from Redis: " + st);
            assertEquals(0, st.invalidValues());
            assertTrue(st.prefetches() >= 1 && st.prefetchedBlocks() == BLOCKS, "the chain was not fetched at once: " + st);
            try (Sequence other = m.open(new byte[] {2}, tokens)) {
                assertEquals(0, other.cachedTokens(), "another salt shared the first salt's blocks");
            }
        }
    }

    /** The first process's output, for messages. */
    private String childOut = "";

    private void runChild(String namespace, byte salt, String disk) throws Exception {
        Path out = Files.createTempFile(tmp, "child", ".out");
        Path err = Files.createTempFile(tmp, "child", ".err");
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ChronicleJvmFlags.REQUIRED);
        cmd.addAll(ChronicleJvmFlags.RECOMMENDED);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(SharingChild.class.getName());
        cmd.addAll(List.of(String.valueOf(server.port), namespace, String.valueOf(salt), String.valueOf(BLOCKS), disk));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("KVCACHE_REDIS_PASSWORD", server.password);
        Process p = pb.start();
        try {
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the first process did not finish: " + Files.readString(err));
        } finally {
            p.destroyForcibly();
        }
        assertEquals(0, p.exitValue(), "the first process failed: " + Files.readString(err));
        String o = Files.readString(out, StandardCharsets.UTF_8);
        childOut = o;
        assertTrue(o.contains("WROTE " + BLOCKS), o + Files.readString(err));
        assertTrue(o.contains("publishFailures=0, publishesSkipped=0"), "the first process did not send every block: " + o);
        String e = Files.readString(err, StandardCharsets.UTF_8);
        assertTrue(!e.contains(server.password) && !o.contains(server.password), "the password reached the output");
    }
}
