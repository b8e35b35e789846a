package io.kvcache.bench.serving;

import static org.junit.jupiter.api.Assertions.*;

import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.SyntheticCheckpoint;
import io.kvcache.examples.serving.CpuServingPlatform;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The serving benchmark on the CPU engine at a small scale: every configuration generates the
 * same tokens for every turn (greedy sampling over bit-identical K/V, reloaded or recomputed),
 * the device tier alone recomputes returning users' evicted history while the tiers below it
 * spare that work, and the ratios to configuration 1 are printed. Runs stories260K when it lies
 * beside the repository ({@code ../shared/models}, or {@code -Dkvcache.test.models=DIR}), else the
 * embedded synthetic model. No timing is asserted.
 */
class ServingBenchmarkTest {
    @TempDir
    Path tmp;

    /**
     * Six users, three rounds: their KV is about twice the device budget, so configuration 1 evicts;
     * the host tier is too small for the rest, so configuration 2 evicts too and configuration 3
     * finds the rest on disk.
     */
    private static final String[] SMALL = {"--users", "6", "--rounds", "3", "--system-tokens", "32",
            "--context-tokens", "32", "--host-blocks", "16", "--question-tokens", "16", "--answer-tokens", "8", "--block-tokens", "8", "--concurrency", "2",
            "--no-progress"};

    @Test
    void everyConfigurationGivesTheSameTokensAndTheTiersSpareTheRecompute() throws Exception {
        ServingBenchmark.Outcome o = run(model(), SMALL);
        assertEquals(4, o.runs().size());
        assertNull(o.tokenDifference(), o.tokenDifference());
        List<ServingMetrics> m = ServingReport.metrics(o);
        ServingMetrics recompute = m.get(0);
        ServingMetrics host = m.get(1);
        ServingMetrics disk = m.get(2);
        ServingMetrics allFit = m.get(3);
        // the CPU engine recomputes a token in tens of microseconds or more and reloads it in a few: both tiers pay
        assertTrue(o.costModel().reloadPays(1) && o.costModel().reloadPays(2), o.costModel().report());
        assertTrue(recompute.prefillTokens() > allFit.prefillTokens(),
                "the device tier alone recomputed nothing: " + recompute.prefillTokens() + " vs " + allFit.prefillTokens());
        // device + host + disk hold every history, so no more is computed than with everything in the device tier
        assertEquals(allFit.prefillTokens(), disk.prefillTokens());
        assertTrue(host.prefillTokens() <= recompute.prefillTokens(), host.prefillTokens() + " > " + recompute.prefillTokens());
        assertTrue(host.hitsPerTier()[1] > 0, "no prefix found in the host tier");
        assertTrue(disk.hitsPerTier()[2] > 0, "no prefix found in the disk tier");
        assertEquals(0, recompute.hitsPerTier()[1] + recompute.hitsPerTier()[2]);
        assertEquals(6, allFit.sessionsHeld());
        assertEquals(6, disk.sessionsHeld());
        assertTrue(recompute.sessionsHeld() < disk.sessionsHeld(),
                recompute.sessionsHeld() + " sessions held by the device alone, " + disk.sessionsHeld() + " with host and disk");
        String md = ServingReport.markdown(o);
        assertTrue(md.contains("| TTFT returning turns p50, ms |") && md.contains("every configuration generated the same"), md);
        String html = ServingHtml.render(o);
        assertTrue(html.contains("<svg") && html.contains("polyline") && !html.contains("<script"), "no inline plots");

        // Poisson arrivals interleave the turns differently, never change their tokens
        ServingBenchmark.Outcome poisson = run(model(), Stream.concat(Arrays.stream(SMALL),
                Stream.of("--configs", "2", "--arrival-rate", "40")).toArray(String[]::new));
        assertTrue(poisson.workload().poisson());
        assertNull(ServingBenchmark.firstDifference(o.workload(), List.of(o.runs().get(0), poisson.runs().get(0))));
    }

    /** @return stories260K when it lies beside the repository, else the embedded synthetic model */
    private static Checkpoint model() {
        Path real = Path.of(System.getProperty("kvcache.test.models", "../../shared/models"), "stories260K.bin");
        return Files.isRegularFile(real) ? Checkpoint.read(real) : SyntheticCheckpoint.createDefault();
    }

    @Test
    void badFlagsAreNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ServingOptions.parse("--configs", "1,5"));
        assertTrue(e.getMessage().contains("no configuration 5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ServingOptions.parse("--users", "0"));
        assertTrue(e.getMessage().contains("--users"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ServingOptions.parse("--arrival-rate", "-1"));
        assertTrue(e.getMessage().contains("--arrival-rate"), e.getMessage());
    }

    @Test
    void gpuFlagsAreCheckedBeforeAnyDeviceIsTouched() {
        ServingOptions o = ServingOptions.parse("--platform", "gpu", "--shape", "llama3-70b-slice:8", "--max-prefill-rows", "4096");
        assertEquals(ServingOptions.Platform.GPU, o.platform);
        assertEquals("llama3-70b-slice:8", o.shape);
        assertEquals(4096, o.maxPrefillRows);
        assertEquals(ServingOptions.Platform.CPU, ServingOptions.parse().platform);
        String[][] bad = {
                {"--platform", "tpu"}, {"--platform=tpu"},
                {"--shape", "llama3-8b"},
                {"--precision", "fp32"},
                {"--platform", "gpu", "--shape", "gpt-9"},
                {"--platform", "gpu", "--precision", "fp32"},
                {"--platform", "gpu", "--precision", "fp16", "--model", "m.bin"},
                {"--platform", "gpu", "--shape", "llama3-8b", "--model", "m.bin"},
        };
        String[] named = {"--platform", "--platform", "--shape needs --platform gpu", "--precision needs --platform gpu",
                "unknown model shape 'gpt-9'", "--precision needs --model", "--precision expects bf16 or fp32",
                "--shape and --model"};
        for (int i = 0; i < bad.length; i++) {
            String[] args = bad[i];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ServingOptions.parse(args));
            assertTrue(e.getMessage().contains(named[i]), String.join(" ", args) + ": " + e.getMessage());
        }
    }

    @Test
    void gpuPlatformWithoutADeviceIsAUsageError() {
        org.junit.jupiter.api.Assumptions.assumeFalse(gpuPresent(), "a CUDA device is present");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ServingBenchmark.platform(ServingOptions.parse("--platform", "gpu")));
        assertTrue(e.getMessage().contains("no CUDA device"), e.getMessage());
    }

    private static boolean gpuPresent() {
        try {
            return io.kvcache.nativ.cuda.Cuda.available() && io.kvcache.nativ.cuda.Cuda.deviceCount() > 0;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    private ServingBenchmark.Outcome run(Checkpoint cp, String... args) throws Exception {
        String[] all = Stream.concat(Arrays.stream(args), Stream.of("--disk-dir", tmp.toString())).toArray(String[]::new);
        ServingOptions o = ServingOptions.parse(all);
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ServingBenchmark.Outcome out;
        try (CpuServingPlatform p = new CpuServingPlatform(cp, o.blockTokens);
             PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
            out = ServingBenchmark.run(o, p, ps, ps);
        }
        String text = buf.toString(StandardCharsets.UTF_8);
        System.out.print(text);   // the ratios, in the test log
        assertTrue(text.contains("ratios in parentheses: to configuration"), text);
        return out;
    }
}
