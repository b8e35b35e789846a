package io.kvcache.tiers.disk;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The kill-loop harness: a kill never fails the run by itself, and no wait is unbounded. */
class ChildRunTest {
    @TempDir
    Path tmp;

    private static List<String> child(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx32m", "-XX:-UsePerfData"));
        cmd.add("-cp");
        cmd.add(KillLoopTest.testClassPath());
        cmd.add(ChattyChild.class.getName());
        cmd.addAll(List.of(args));
        return cmd;
    }

    @Test
    void aKillWhileTheReaderIsNotInReadLineEndsTheRunCleanlyWithTheLinesInOrder() throws Exception {
        // the kill lands while the reader is handling a line, not blocked in readLine: closing the child's
        // stdout with the kill made the next readLine fail with "Stream closed"
        for (int run = 0; run < 5; run++) {
            ChildRun.Result r = ChildRun.run(child("flood", "200000"), tmp.resolve("err" + run), 120, TimeUnit.SECONDS,
                    (line, control) -> {
                        if (line.equals("line 0")) {
                            control.kill();
                        }
                    });
            assertTrue(r.killed());
            assertFalse(r.hung());
            assertTrue(r.diedOfSigkill(), "exit " + r.exitCode() + ", stderr: " + r.stderr());
            for (int i = 0; i < r.lines().size(); i++) {
                assertEquals("line " + i, r.lines().get(i), "a line lost or torn before line " + i);
            }
        }
    }

    @Test
    void aChildThatFallsSilentIsKilledAsHungWithItsThreadsInsteadOfWaitedForForever() throws Exception {
        ChildRun.Result r = ChildRun.run(child("silent"), tmp.resolve("err"), 3, TimeUnit.SECONDS, (line, control) -> {
        });
        assertTrue(r.hung());
        assertTrue(r.killed());
        assertTrue(r.diedOfSigkill(), "exit " + r.exitCode());
        assertTrue(r.lines().isEmpty());
        assertFalse(r.threadDump().isEmpty());
    }

    @Test
    void aChildThatExitsByItselfIsReportedWithItsStatusAndAllItsLines() throws Exception {
        ChildRun.Result r = ChildRun.run(child("exit", "3"), tmp.resolve("err"), 120, TimeUnit.SECONDS,
                (line, control) -> {
                });
        assertFalse(r.killed());
        assertFalse(r.hung());
        assertEquals(3, r.exitCode());
        assertFalse(r.diedOfSigkill());
        assertEquals(List.of("bye"), r.lines());
    }
}
