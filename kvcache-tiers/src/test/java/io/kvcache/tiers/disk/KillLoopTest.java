package io.kvcache.tiers.disk;

import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A child JVM stores and evicts blocks under load and is killed with SIGKILL at a random
 * moment, over and over, on one cache directory; sometimes while it is still opening and
 * recovering. After each restart every block the tier serves must be the exact bytes of its
 * key: the count of wrong blocks must be 0.
 *
 * <p>{@code -Dkvcache.killloop.cycles=N} sets the cycles (default 200), {@code
 * -Dkvcache.killloop.lanes=N} how many directories are killed in parallel (default 2).
 */
@ExtendWith(QuietTierLog.class)
class KillLoopTest {
    @TempDir
    Path tmp;

    static List<String> childCommand(Path dir, long seed, long runMillis) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ChronicleJvmFlags.REQUIRED);
        cmd.addAll(ChronicleJvmFlags.RECOMMENDED);
        // a short-lived child: quick start matters more than peak speed
        cmd.addAll(List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m", "-XX:-UsePerfData",
                "-Xlog:disable", "-Xlog:all=off"));
        cmd.add("-cp");
        cmd.add(testClassPath());
        cmd.add(KillLoopChild.class.getName());
        cmd.add(dir.toString());
        cmd.add(Long.toString(seed));
        if (runMillis > 0) {
            cmd.add(Long.toString(runMillis));
        }
        return cmd;
    }

    /** The test class path: Surefire's manifest-only jar hides it from java.class.path. */
    static String testClassPath() {
        String cp = System.getProperty("surefire.test.class.path");
        if (cp == null || cp.isBlank()) {
            cp = System.getProperty("java.class.path");
        }
        return cp;
    }

    record Cycle(long survivors, long wrong, long misses, boolean unclean, boolean rebuilt, boolean verified) {
    }

    /** Runs one child, kills it after {@code killAfterMs} (measured from start, or from READY), reports. */
    static Cycle runAndKill(Path dir, long seed, long killAfterMs, boolean fromReady, AtomicLong wrongDuringLoad)
            throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(childCommand(dir, seed, 0));
        Path errors = dir.resolveSibling(dir.getFileName() + ".stderr");
        pb.redirectError(errors.toFile());
        Process p = pb.start();
        long[] verified = null;
        boolean unclean = false;
        boolean rebuilt = false;
        // a child that hangs (say, waiting on a lock its killed predecessor held) fails the test
        java.util.concurrent.atomic.AtomicBoolean hung = new java.util.concurrent.atomic.AtomicBoolean();
        Thread watchdog = Thread.ofVirtual().start(() -> {
            try {
                if (!p.waitFor(60, TimeUnit.SECONDS)) {
                    hung.set(true);
                    System.out.println("kill loop: child " + p.pid() + " hung; its threads:\n" + threadDump(p.pid()));
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            Thread killer = null;
            if (!fromReady) {
                killer = Thread.ofVirtual().start(() -> sleepThenKill(p, killAfterMs));
            }
            String line;
            while ((line = out.readLine()) != null) {
                if (line.startsWith("VERIFIED ")) {
                    String[] f = line.split(" ");
                    verified = new long[] {Long.parseLong(f[1]), Long.parseLong(f[2]), Long.parseLong(f[3])};
                    unclean = Boolean.parseBoolean(f[4]);
                    rebuilt = Boolean.parseBoolean(f[5]);
                } else if (line.equals("READY") && fromReady) {
                    killer = Thread.ofVirtual().start(() -> sleepThenKill(p, killAfterMs));
                } else if (line.startsWith("WRONG ")) {
                    wrongDuringLoad.incrementAndGet();
                }
            }
            if (killer != null) {
                killer.join();
            }
        } finally {
            p.destroyForcibly();
            p.waitFor();
            watchdog.interrupt();
        }
        if (hung.get()) {
            fail("a child did not finish opening within 60 s (verified: " + (verified != null) + "); its stderr:\n"
                    + Files.readString(errors));
        }
        if (verified == null) {
            return new Cycle(0, 0, 0, unclean, rebuilt, false);
        }
        return new Cycle(verified[0], verified[1], verified[2], unclean, rebuilt, true);
    }

    private static String threadDump(long pid) {
        try {
            Process j = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
                    Long.toString(pid), "Thread.print").redirectErrorStream(true).start();
            return new String(j.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no thread dump: " + e + ")";
        }
    }

    private static void sleepThenKill(Process p, long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        p.destroyForcibly(); // SIGKILL on Linux
    }

    @Test
    void blocksServedAfterEverySigkillVerifyAndWrongBlocksServedIsZero() throws Exception {
        int cycles = Integer.getInteger("kvcache.killloop.cycles", 200);
        int lanes = Integer.getInteger("kvcache.killloop.lanes", 2);
        long seed = Long.getLong("kvcache.killloop.seed", System.nanoTime());
        System.out.println("kill loop: " + cycles + " cycles in " + lanes + " lanes, seed " + seed);
        AtomicLong wrongDuringLoad = new AtomicLong();
        List<List<Cycle>> results = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        List<Throwable> errors = java.util.Collections.synchronizedList(new ArrayList<>());
        AtomicLong done = new AtomicLong();
        for (int lane = 0; lane < lanes; lane++) {
            List<Cycle> laneResults = java.util.Collections.synchronizedList(new ArrayList<>());
            results.add(laneResults);
            Path dir = tmp.resolve("lane" + lane);
            int laneCycles = cycles / lanes + (lane < cycles % lanes ? 1 : 0);
            SplittableRandom rnd = new SplittableRandom(seed + lane);
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    for (int c = 0; c < laneCycles; c++) {
                        // one in four kills lands while the child is still starting or recovering
                        boolean duringStart = rnd.nextInt(4) == 0;
                        long delay = duringStart ? rnd.nextLong(1500) : rnd.nextLong(300);
                        laneResults.add(runAndKill(dir, rnd.nextLong(), delay, !duringStart, wrongDuringLoad));
                        long n = done.incrementAndGet();
                        if (n % 25 == 0) {
                            System.out.println("kill loop: " + n + "/" + cycles + " cycles");
                        }
                    }
                } catch (Throwable t) {
                    errors.add(t);
                }
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        assertTrue(errors.isEmpty(), () -> "kill loop failed: " + errors);

        long wrong = 0;
        long verifiedCycles = 0;
        long uncleanCycles = 0;
        long totalSurvivors = 0;
        long cyclesWithSurvivors = 0;
        StringBuilder survivors = new StringBuilder();
        for (List<Cycle> lane : results) {
            for (Cycle c : lane) {
                if (!c.verified()) {
                    survivors.append("- ");
                    continue;
                }
                verifiedCycles++;
                wrong += c.wrong();
                totalSurvivors += c.survivors();
                cyclesWithSurvivors += c.survivors() > 0 ? 1 : 0;
                uncleanCycles += c.unclean() ? 1 : 0;
                survivors.append(c.survivors()).append(' ');
            }
            survivors.append("| ");
        }
        // a last clean open of each directory, in this JVM
        for (int lane = 0; lane < lanes; lane++) {
            try (MappedFileTier t = KillLoopChild.open(tmp.resolve("lane" + lane))) {
                long[] v = KillLoopChild.verifyAll(t, Arena.ofAuto().allocate(t.slotBytes()));
                wrong += v[1];
                System.out.println("kill loop: final open of lane " + lane + ": " + v[0] + " blocks verified, "
                        + v[2] + " misses, " + t.stats().droppedAtOpen() + " dropped at open");
            }
        }
        System.out.println("kill loop: survivors per restart (- = killed before it verified): " + survivors);
        System.out.printf("kill loop: %d cycles, %d restarts verified (%d after an unclean shutdown), "
                        + "%d blocks survived in all (mean %.1f of %d slots), wrong blocks served: %d during verification, "
                        + "%d under load%n", cycles, verifiedCycles, uncleanCycles, totalSurvivors,
                verifiedCycles == 0 ? 0.0 : (double) totalSurvivors / verifiedCycles, KillLoopChild.SLOTS, wrong,
                wrongDuringLoad.get());
        assertEquals(0, wrong, "wrong blocks served after a restart");
        assertEquals(0, wrongDuringLoad.get(), "wrong blocks served under load");
        assertTrue(verifiedCycles >= cycles / 2, "too few restarts got as far as verifying: " + verifiedCycles);
        assertTrue(uncleanCycles > 0, "no restart noticed that its predecessor was killed");
        // persistence works: apart from the first restarts of each lane, restarts find blocks
        assertTrue(cyclesWithSurvivors >= (verifiedCycles - 2L * lanes) * 8 / 10,
                "blocks did not survive kills: only " + cyclesWithSurvivors + " of " + verifiedCycles + " restarts found any");
    }
}
