package io.kvcache.examples.packaging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.examples.demo.LongContextDemo;
import io.kvcache.examples.quickstart.QuickStart;
import io.kvcache.tiers.disk.ChronicleJvmFlags;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With the JVM flags the README documents, the demo (with its disk tier) and the quick start
 * write nothing to stderr: no JNA native-access warning, no {@code sun.misc.Unsafe} warning on
 * behalf of Chronicle's libraries, no SLF4J "no binding" notice, no Chronicle banner.
 */
class QuietRunTest {
    @TempDir
    Path tmp;

    private record Result(int status, String out, String err) {
    }

    private Result run(List<String> flags, Class<?> main, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(flags);
        cmd.add("-cp");
        cmd.add(System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
        cmd.add(main.getName());
        cmd.addAll(List.of(args));
        Path err = tmp.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).directory(tmp.toFile()).redirectError(err.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the child did not finish");
        return new Result(p.exitValue(), out, Files.readString(err));
    }

    @Test
    void theDemoWithItsDiskTierWritesNothingToStderr() throws Exception {
        List<String> flags = new ArrayList<>(ChronicleJvmFlags.REQUIRED);
        flags.addAll(ChronicleJvmFlags.RECOMMENDED);
        flags.add("-Djava.io.tmpdir=" + tmp);
        Result r = run(flags, LongContextDemo.class, "--tokens", "64", "--no-progress", "--followup-tokens", "8");
        assertEquals(0, r.status(), r.out() + r.err());
        assertTrue(r.out().contains("tiers     device") && r.out().contains("disk "), "the run had a disk tier: " + r.out());
        assertEquals("", r.err(), "the demo wrote to stderr");
    }

    @Test
    void theQuickStartWritesNothingToStderr() throws Exception {
        Result r = run(List.of("--enable-native-access=ALL-UNNAMED"), QuickStart.class);
        assertEquals(0, r.status(), r.out() + r.err());
        assertTrue(r.out().contains("tokens cached"), r.out());
        assertEquals("", r.err(), "the quick start wrote to stderr");
    }
}
