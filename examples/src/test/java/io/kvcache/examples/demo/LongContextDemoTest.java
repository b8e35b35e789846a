package io.kvcache.examples.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.examples.llama.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The demo program end to end, in process: its output, its files and its exit status. */
class LongContextDemoTest {

    record Run(int status, String out, String err) {
    }

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = LongContextDemo.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void gpuEngineOffTheGpuIsACommandLineError() {
        Run r = run("--engine", "gpu", "--device", "simulated", "--tokens", "4", "--no-progress");
        assertEquals(2, r.status(), r.out() + r.err());
        assertTrue(r.err().contains("--engine gpu runs on a CUDA GPU: use --device cuda"), r.err());
    }

    @Test
    void smallDeviceBudgetDecodeVerifiesAndReusesThePrefix(@TempDir Path dir) throws Exception {
        Path tokens = dir.resolve("tokens.txt");
        // 161 tokens = 11 blocks of 128 KiB against a device of 3 blocks: eviction, demotion and prefetch
        Run r = run("--tokens", "160", "--device-budget", "384KiB", "--emit-tokens", tokens.toString(),
                "--followup-tokens", "8", "--no-progress");
        assertEquals(0, r.status(), r.out() + r.err());
        assertTrue(r.out().contains("every token and logit identical: yes"), r.out());
        assertTrue(r.out().contains("gives the same tokens and logits: yes"), r.out());
        // the default run's sessions scenario: returning turns restored beside the same turns recomputed
        assertTrue(r.out().contains("returning-turn TTFT p50: restored from the host tier")
                && r.out().contains("restored and recomputed turns generate the same tokens: yes"), r.out());
        Matcher reuse = Pattern.compile("found (\\d+) tokens cached").matcher(r.out());
        assertTrue(reuse.find(), r.out());
        assertTrue(Integer.parseInt(reuse.group(1)) >= 16, r.out());
        Matcher moved = Pattern.compile("up to the device .* \\((\\d+) blocks\\)").matcher(r.out());
        assertTrue(moved.find() && Integer.parseInt(moved.group(1)) > 0, "blocks were promoted: " + r.out());
        // by default a temporary disk tier sits below the host tier: blocks reach it, and it is gone after
        // (copied there, or falling back to the copy written through to it)
        Matcher disk = Pattern.compile("(?m)^disk +\\d+ +\\d+ +\\d+ +\\d+ +\\d+ +\\d+ +(\\d+) +(\\d+)").matcher(r.out());
        assertTrue(disk.find() && Integer.parseInt(disk.group(1)) + Integer.parseInt(disk.group(2)) > 0,
                "blocks were demoted to disk: " + r.out());
        Matcher diskDir = Pattern.compile("mmap of (\\S+)/blocks\\.kvc").matcher(r.out());
        assertTrue(diskDir.find(), r.out());
        assertFalse(Files.exists(Path.of(diskDir.group(1))), "temporary disk directory removed");
        List<String> lines = Files.readAllLines(tokens);
        assertEquals(160, lines.size());
        for (String l : lines) {
            int t = Integer.parseInt(l);
            assertTrue(t >= 0 && t < 512, l);
        }
    }

    @Test
    void stories260KWithAttentionPolicyAndSamplingVerifies() {
        Path model = TestModels.stories260K();
        Run r = run("--model", model.toString(), "--tokens", "300", "--device-budget", "60KiB", "--policy",
                "attention", "--temperature", "0.9", "--seed", "7", "--followup-tokens", "8", "--no-progress");
        assertEquals(0, r.status(), r.out() + r.err());
        assertTrue(r.out().contains("every token and logit identical: yes"), r.out());
        assertTrue(r.out().contains("attention eviction"), r.out());
    }

    @Test
    void badFlagsAndFilesGiveOneLineAndStatus2(@TempDir Path dir) throws Exception {
        Path truncated = dir.resolve("cut.bin");
        byte[] model = Files.readAllBytes(TestModels.stories260K());
        Files.write(truncated, java.util.Arrays.copyOf(model, 1000));
        String[][] cases = {
                {"--tokens", "lots"},
                {"--bogus"},
                {"--device-budget", "1KiB"},
                {"--model", dir.resolve("absent.bin").toString()},
                {"--model", truncated.toString()},
                {"--model", dir.toString()},
                {"--prompt-ids", "1,9999"},
                {"--device", "cuda"},
                {"--tokens", "10", "--host-budget", "1KiB", "--device-budget", "384KiB"},
                {"--emit-tokens", dir.resolve("no/such/dir/t").toString()},
                {"--report", dir.toString()},
                {"--device-budget", "64TiB", "--tokens", "4"},
        };
        for (String[] args : cases) {
            String[] withQuiet = java.util.Arrays.copyOf(args, args.length + 1);
            withQuiet[args.length] = "--no-progress";
            Run r = run(withQuiet);
            String what = String.join(" ", args) + " -> " + r.err();
            assertEquals(2, r.status(), what);
            assertTrue(r.err().startsWith("error: "), what);
            assertEquals(1, r.err().strip().lines().count(), what);
            assertFalse(r.err().contains("\tat "), what);
        }
    }

    @Test
    void helpPrintsUsage() {
        Run r = run("--help");
        assertEquals(0, r.status());
        assertTrue(r.out().contains("--device-budget"), r.out());
    }
}
