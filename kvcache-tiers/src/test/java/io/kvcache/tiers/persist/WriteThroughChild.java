package io.kvcache.tiers.persist;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.PersistPolicy;
import io.kvcache.core.Sequence;
import io.kvcache.core.stats.PersistStats;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * The process {@link WriteThroughCrashTest} kills: chat sessions grow block by block until it
 * is killed. Output lines (flushed as they happen): {@code READY}; {@code S <session> <blocks>
 * <epochMillis>} once a session's first blocks are sealed; {@code L <lagMaxMillis>}, the
 * longest write-through lag so far.
 */
public final class WriteThroughChild {
    private WriteThroughChild() {
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        SplittableRandom rnd = new SplittableRandom(Long.parseLong(args[1]));
        PersistPolicy policy = PersistPolicy.valueOf(args[2]);
        KvCacheManager m = CrashWorkload.manager(dir, policy);
        int[] blocks = new int[CrashWorkload.SESSIONS];
        System.out.println("READY");
        System.out.flush();
        long ops = 0;
        try (Arena arena = Arena.ofConfined()) {
            while (true) {
                int u = rnd.nextInt(CrashWorkload.SESSIONS);
                int n = Math.min(CrashWorkload.MAX_BLOCKS, Math.max(blocks[u], CrashWorkload.SYSTEM_BLOCKS) + 1 + rnd.nextInt(2));
                try (Sequence s = CrashWorkload.prefill(m, u, n, arena)) {
                    blocks[u] = n;
                    System.out.println("S " + u + " " + n + " " + System.currentTimeMillis());
                }
                if (++ops % 8 == 0) {
                    PersistStats p = m.stats().persist();
                    System.out.println("L " + p.lagMaxNanos() / 1_000_000);
                }
                System.out.flush();
                // the pace of a decode loop: a block's worth of tokens every few milliseconds
                try {
                    Thread.sleep(4);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }
}
