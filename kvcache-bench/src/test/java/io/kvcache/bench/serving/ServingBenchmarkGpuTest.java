package io.kvcache.bench.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.serving.CpuServingPlatform;
import io.kvcache.examples.serving.ServingPlatform;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a GPU, stories260K: the serving benchmark's four configurations on the GPU platform (CUDA
 * device tier, pinned host tier, disk tier, the GPU engine). In fp32 the engine computes
 * llama2.c's tokens whatever the prefill split, so every configuration must give every turn the
 * CPU engine's answer; in bf16 the floats depend on the split, so configurations must agree on
 * the turns they computed alike, and the host tier must be what spares the recompute.
 */
@Tag("gpu")
class ServingBenchmarkGpuTest {
    @TempDir
    Path tmp;

    /** As the CPU test's small workload: the users' KV about twice the device budget, the host tier too small for it. */
    private static final String[] SMALL = {"--users", "6", "--rounds", "3", "--system-tokens", "32",
            "--context-tokens", "32", "--host-blocks", "16", "--question-tokens", "16", "--answer-tokens", "8",
            "--block-tokens", "8", "--concurrency", "2", "--no-progress"};

    private static Path stories260K() {
        Path p = Path.of(System.getProperty("kvcache.test.models", "../../shared/models"), "stories260K.bin");
        assertTrue(Files.isRegularFile(p), "the GPU tests need " + p);
        return p;
    }

    @Test
    void fp32ConfigurationsGiveTheCpuEnginesTokensForEveryTurn() throws Exception {
        Path model = stories260K();
        ServingBenchmark.Outcome cpu;
        ServingOptions co = options(SMALL);
        try (CpuServingPlatform p = new CpuServingPlatform(Checkpoint.read(model), co.blockTokens)) {
            cpu = run(co, p);
        }
        ServingOptions go = options(concat(SMALL, "--platform", "gpu", "--model", model.toString(), "--precision", "fp32"));
        ServingBenchmark.Outcome gpu;
        try (ServingPlatform p = ServingBenchmark.platform(go)) {
            assertTrue(p.name().startsWith("gpu"), p.name());
            gpu = run(go, p);
        }
        assertEquals(4, gpu.runs().size());
        assertNull(ServingBenchmark.firstDifference(gpu.workload(), gpu.runs()), "GPU configurations differ");
        assertNull(ServingBenchmark.firstDifference(gpu.workload(), List.of(cpu.runs().getFirst(), gpu.runs().getFirst())),
                "GPU tokens are not the CPU engine's");
        List<ServingMetrics> m = ServingReport.metrics(gpu);
        assertTrue(m.get(0).prefillTokens() > m.get(3).prefillTokens(), "the device tier alone recomputed nothing");
        assertEquals(0, m.get(0).hitsPerTier()[1] + m.get(0).hitsPerTier()[2]);
        hostTierAsDecided(gpu, m);
    }

    /** A tiny model recomputes fast: the host tier is reused when the cost model says reloading pays, and only then. */
    private static void hostTierAsDecided(ServingBenchmark.Outcome o, List<ServingMetrics> m) {
        if (o.costModel().reloadPays(1)) {
            assertTrue(m.get(1).hitsPerTier()[1] > 0, "no prefix found in the pinned host tier");
            assertTrue(m.get(1).prefillTokens() < m.get(0).prefillTokens(), "the host tier spared no recompute");
        } else {
            assertEquals(0, m.get(1).hitsPerTier()[1], "blocks reused from a tier the cost model ruled out");
        }
    }

    @Test
    void bf16ConfigurationsAgreeWhereTheyComputedAlike() throws Exception {
        ServingOptions o = options(concat(SMALL, "--platform", "gpu", "--model", stories260K().toString()));
        ServingBenchmark.Outcome out;
        try (ServingPlatform p = ServingBenchmark.platform(o)) {
            out = run(o, p);
        }
        assertNull(out.tokenDifference(), out.tokenDifference());
        assertTrue(out.tokenScope() != null && out.tokenScope().contains("Compared strictly"), out.tokenScope());
        List<ServingMetrics> m = ServingReport.metrics(out);
        hostTierAsDecided(out, m);
        assertTrue(ServingReport.markdown(out).contains(out.tokenScope()));
    }

    private ServingOptions options(String... args) {
        return ServingOptions.parse(concat(args, "--disk-dir", tmp.toString()));
    }

    private static String[] concat(String[] a, String... b) {
        return Stream.concat(Arrays.stream(a), Arrays.stream(b)).toArray(String[]::new);
    }

    private static ServingBenchmark.Outcome run(ServingOptions o, ServingPlatform p) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ServingBenchmark.Outcome out;
        try (PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
            out = ServingBenchmark.run(o, p, ps, ps);
        }
        System.out.print(buf.toString(StandardCharsets.UTF_8));
        return out;
    }
}
