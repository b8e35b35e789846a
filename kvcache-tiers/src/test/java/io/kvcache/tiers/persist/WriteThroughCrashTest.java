package io.kvcache.tiers.persist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.PersistPolicy;
import io.kvcache.core.Sequence;
import io.kvcache.tiers.disk.ChronicleJvmFlags;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Write-through keeps what a crash would lose: a child JVM runs chat sessions whose blocks stay
 * in VRAM and host RAM (nothing is evicted), and is SIGKILLed at a random moment; after each
 * kill every block sealed longer ago than the write-through lag (plus a margin) is found again
 * by its session's salt and prompt, byte-identical, and no wrong byte is served. With
 * {@link PersistPolicy#WRITE_BACK} the same workload keeps nothing, which shows the test can fail.
 */
class WriteThroughCrashTest {
    /** Added to the longest lag the child reported: the slack of a loaded machine. */
    static final long MARGIN_MILLIS = 1500;

    @TempDir
    Path tmp;

    record Outcome(int expectedBlocks, int foundBlocks, int wrongBlocks, long boundMillis, String log) {
    }

    @Test
    void afterSigkillEveryBlockSealedLongerAgoThanTheLagIsFound() throws Exception {
        Random rnd = new Random();
        long seed = rnd.nextLong();
        int cycles = Integer.getInteger("kvcache.writethrough.cycles", 4);
        Path dir = tmp.resolve("cache");
        int checked = 0;
        String lastLog = "";
        for (int cycle = 0; cycle < cycles; cycle++) {
            Outcome o = killOnce(dir, seed + cycle, PersistPolicy.WRITE_THROUGH, 2500 + rnd.nextInt(2500));
            String where = "seed " + seed + ", cycle " + cycle + ", bound " + o.boundMillis() + " ms\n" + o.log();
            assertEquals(0, o.wrongBlocks(), "wrong bytes served; " + where);
            assertTrue(o.foundBlocks() >= o.expectedBlocks(), "blocks sealed before the bound were lost: expected "
                    + o.expectedBlocks() + ", found " + o.foundBlocks() + "; " + where);
            checked += o.expectedBlocks();
            lastLog = o.log();
        }
        assertTrue(checked > 0, "the child never sealed a block early enough to check (seed " + seed + ")\n" + lastLog);
        System.out.println("write-through crash test: " + cycles + " kills, " + checked + " sealed blocks checked, seed " + seed);
    }

    @Test
    void withWriteBackTheSameCrashKeepsNothing() throws Exception {
        Outcome o = killOnce(tmp.resolve("back"), 42, PersistPolicy.WRITE_BACK, 3000);
        assertTrue(o.expectedBlocks() > 0, "the child sealed nothing in time (bound " + o.boundMillis() + " ms):\n"
                + o.log());
        assertEquals(0, o.wrongBlocks());
        assertEquals(0, o.foundBlocks(), "nothing is evicted, so without write-through nothing reaches the disk");
    }

    private Outcome killOnce(Path dir, long seed, PersistPolicy policy, long runMillis) throws Exception {
        Path out = Files.createTempFile(tmp, "child", ".out");
        Path err = Files.createTempFile(tmp, "child", ".err");
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ChronicleJvmFlags.REQUIRED);
        cmd.addAll(ChronicleJvmFlags.RECOMMENDED);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(WriteThroughChild.class.getName());
        cmd.add(dir.toString());
        cmd.add(Long.toString(seed));
        cmd.add(policy.name());
        // output goes to files, not pipes: no reader thread races the kill
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        long killAt;
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.readString(out, StandardCharsets.UTF_8).contains("READY")) {
                if (!p.isAlive() || System.nanoTime() > deadline) {
                    throw new AssertionError("child did not start (seed " + seed + "): " + Files.readString(err));
                }
                Thread.sleep(20);
            }
            Thread.sleep(runMillis);
            killAt = System.currentTimeMillis();
        } finally {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
        List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
        long lagMax = 0;
        for (String l : lines) {
            String[] f = l.split(" ");
            if (f.length == 2 && f[0].equals("L")) {
                lagMax = Math.max(lagMax, Long.parseLong(f[1]));
            }
        }
        long bound = lagMax + MARGIN_MILLIS;
        int[] expected = new int[CrashWorkload.SESSIONS];
        for (String l : lines) {
            String[] f = l.split(" ");
            if (f.length == 4 && f[0].equals("S") && Long.parseLong(f[3]) <= killAt - bound) {
                int u = Integer.parseInt(f[1]);
                expected[u] = Math.max(expected[u], Integer.parseInt(f[2]));
            }
        }
        int want = 0;
        int found = 0;
        int wrong = 0;
        try (KvCacheManager m = CrashWorkload.manager(dir, policy); Arena arena = Arena.ofConfined()) {
            for (int u = 0; u < CrashWorkload.SESSIONS; u++) {
                if (expected[u] == 0) {
                    continue;
                }
                int blocks = expected[u];
                want += blocks;
                int bt = CrashWorkload.LAYOUT.blockTokens();
                try (Sequence s = m.open(CrashWorkload.salt(u), CrashWorkload.tokens(u, blocks * bt + 1))) {
                    int cached = Math.min(blocks, s.cachedTokens() / bt);
                    found += cached;
                    if (CrashWorkload.firstWrong(m, s, u, cached, arena) >= 0) {
                        wrong++;
                    }
                }
            }
        }
        String tail = String.join("\n", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
        return new Outcome(want, found, wrong, bound, "child output tail:\n" + tail + "\nstderr: "
                + readQuietly(err));
    }

    private static String readQuietly(Path p) {
        try {
            String s = Files.readString(p);
            return s.length() > 2000 ? s.substring(s.length() - 2000) : s;
        } catch (IOException e) {
            return "(unreadable: " + e + ")";
        }
    }
}
