package io.kvcache.redis;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.PersistPolicy;
import io.kvcache.core.Sequence;
import java.lang.foreign.Arena;
import java.nio.file.Path;

/**
 * The first process of {@link TwoProcessSharingTest}: prefills one prompt through a manager whose
 * lowest tier is Redis, closes the manager (writing its blocks down) and prints
 * {@code WROTE <blocks>}. Arguments: port, password, namespace, salt byte, blocks, disk dir or "-".
 * The password comes from the environment variable KVCACHE_REDIS_PASSWORD, not the command line.
 */
public final class SharingChild {
    private SharingChild() {
    }

    public static void main(String[] args) {
        int port = Integer.parseInt(args[0]);
        String namespace = args[1];
        byte[] salt = {Byte.parseByte(args[2])};
        int blocks = Integer.parseInt(args[3]);
        Path disk = args[4].equals("-") ? null : Path.of(args[4]);
        RedisTierConfig cfg = RedisTierConfig.builder().node("127.0.0.1", port)
                .password(System.getenv("KVCACHE_REDIS_PASSWORD").toCharArray()).namespace(namespace).build();
        // no write-through: the blocks are written down on close, all 40 at once into a Redis tier of 16
        // slots; with a disk, tiers too small for the prompt, so that most blocks reach the disk by
        // eviction, and Redis below it from there
        int small = disk == null ? 48 : 6;
        RedisTier redis = SharedWorkload.redis(cfg, 16);
        try (KvCacheManager m = SharedWorkload.manager(disk, redis, small, small, PersistPolicy.WRITE_BACK);
             Arena arena = Arena.ofConfined()) {
            int[] tokens = SharedWorkload.tokens(7, blocks * SharedWorkload.LAYOUT.blockTokens() + 1);
            try (Sequence s = SharedWorkload.prefill(m, salt, tokens, blocks, arena)) {
                System.out.println("WROTE " + s.writtenTokens() / SharedWorkload.LAYOUT.blockTokens());
            }
        }
        System.out.println("STATS " + redis.stats());
        System.out.flush();
    }
}
