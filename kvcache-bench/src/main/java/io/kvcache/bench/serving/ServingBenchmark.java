package io.kvcache.bench.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.PersistPolicy;
import io.kvcache.core.Sequence;
import io.kvcache.core.cost.CostModel;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.examples.demo.ByteSize;
import io.kvcache.examples.demo.ProgressBar;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.SyntheticCheckpoint;
import io.kvcache.examples.gpu.ModelShape;
import io.kvcache.examples.gpu.Precision;
import io.kvcache.examples.serving.CpuServingPlatform;
import io.kvcache.examples.serving.GpuServingPlatform;
import io.kvcache.examples.serving.RunResult;
import io.kvcache.examples.serving.ServingEngine;
import io.kvcache.examples.serving.ServingPlatform;
import io.kvcache.examples.serving.ServingRequest;
import io.kvcache.examples.serving.SessionRunner;
import io.kvcache.examples.serving.Workload;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.disk.MappedFileTier;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.function.IntPredicate;
import java.util.stream.Stream;

/**
 * The multi-turn serving benchmark (LMCache's multi-round QA shape, see {@link Workload}): the
 * same users, turns and engine served in one run by each {@link ServingConfig}, configurations
 * 1 to 3 with the same device budget. Before the configurations run it measures the engine's
 * prefill rate and the links a reload takes (host to device, disk to device); a {@link CostModel}
 * built from them decides per tier whether reloading beats recomputing, and the cache of each
 * configuration uses it (a block in a tier where reloading loses is recomputed). Reported per
 * configuration: time to first token of first and of returning turns, decode rate, throughput,
 * prefill compute, prefix hits per tier, bytes moved, sessions held at once, each as a ratio to
 * configuration 1; and whether every configuration generated the same tokens (greedy sampling:
 * it must).
 *
 * <p>Defaults give the users' KV about thirteen times the device budget. The disk tier writes back
 * only what is evicted into it ({@link PersistPolicy#WRITE_BACK}): it is capacity here, not
 * persistence.
 *
 * <pre>
 * kvcache-bench/serving-bench.sh [--users 32] [--rounds 6] [--system-tokens 64] ... [--markdown F.md] [--report F.html]
 * </pre>
 */
public final class ServingBenchmark {
    private static final byte[] TENANT = "serving-benchmark".getBytes(StandardCharsets.UTF_8);
    /** Blocks per batch when measuring a link. */
    private static final int PROBE_BLOCKS = 64;

    /**
     * One configuration's run.
     *
     * @param config       which
     * @param deviceBlocks device tier slots
     * @param hostBlocks   host tier slots, 0 without
     * @param diskBlocks   disk tier slots, 0 without
     * @param reused       per tier, whether the cost model let the cache reuse blocks from it
     * @param run          what it measured
     */
    public record ConfigRun(ServingConfig config, int deviceBlocks, int hostBlocks, int diskBlocks, boolean[] reused,
                            RunResult run) {
    }

    /**
     * What the benchmark measured.
     *
     * @param commandLine            the arguments
     * @param platform               the engine's platform
     * @param layout                 the cache layout
     * @param workload               the workload
     * @param prefillTokensPerSecond the engine's prefill rate, measured before the configurations
     * @param costModel              links host and disk to device against that rate
     * @param runs                   per configuration run, in order
     * @param tokenDifference        null when every compared turn generated the same tokens, else where they first differ
     * @param tokenScope             null when every turn of every configuration was compared; else which were, and
     *                               how far the others agree (a platform whose floats depend on the prefill split)
     */
    public record Outcome(String commandLine, String platform, KvLayout layout, Workload workload,
                          double prefillTokensPerSecond, CostModel costModel, List<CostModel.Link> links,
                          List<ConfigRun> runs, String tokenDifference, String tokenScope) {
    }

    /** Held so the level set on it is not lost when the logger is collected. */
    private static final java.util.logging.Logger CHRONICLE_LOG = java.util.logging.Logger.getLogger("net.openhft");

    private ServingBenchmark() {
    }

    /** Runs the benchmark; exits 0 when every configuration generated the same tokens, 1 otherwise, 2 for a bad command line. */
    public static void main(String[] args) {
        CHRONICLE_LOG.setLevel(java.util.logging.Level.WARNING);
        int rc;
        try {
            ServingOptions o = ServingOptions.parse(args);
            if (o.help) {
                System.out.println(ServingOptions.USAGE);
                rc = 0;
            } else {
                try (ServingPlatform platform = platform(o)) {
                    Outcome out = run(o, platform, System.out, System.err);
                    writeReports(o, out);
                    rc = out.tokenDifference() == null ? 0 : 1;
                }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            rc = 2;
        } catch (IOException e) {
            System.err.println("error: " + e);
            rc = 1;
        }
        System.exit(rc);
    }

    /** @return the platform {@code --platform} names, with its model */
    static ServingPlatform platform(ServingOptions o) {
        if (o.platform == ServingOptions.Platform.CPU) {
            Checkpoint cp = o.model == null ? SyntheticCheckpoint.createDefault() : Checkpoint.read(o.model);
            return new CpuServingPlatform(cp, o.blockTokens);
        }
        if (!Cuda.available() || Cuda.deviceCount() < 1) {
            throw new IllegalArgumentException("--platform gpu: no CUDA device found (driver: "
                    + (Cuda.available() ? "loaded, 0 devices" : "not loadable") + ")");
        }
        Workload w = o.workload();
        int maxContext = w.maxContextTokens() + 1;
        int rows = Math.min(o.maxPrefillRows, maxContext);
        CudaContext ctx = CudaContext.device(0);
        if (o.model != null) {
            Precision p = "fp32".equals(o.precision) ? Precision.FP32 : Precision.BF16;
            return GpuServingPlatform.of(ctx, Checkpoint.read(o.model), p, o.blockTokens, maxContext, w.concurrency(), rows);
        }
        ModelShape shape = ModelShape.named(o.shape == null ? "llama3-8b" : o.shape);
        return GpuServingPlatform.synthetic(ctx, shape, o.blockTokens, maxContext, w.concurrency(), rows);
    }

    /** Writes {@code --markdown} and {@code --report} when given. */
    static void writeReports(ServingOptions o, Outcome out) throws IOException {
        if (o.markdown != null) {
            Files.writeString(o.markdown, ServingReport.markdown(out), StandardCharsets.UTF_8);
        }
        if (o.report != null) {
            Files.writeString(o.report, ServingHtml.render(out), StandardCharsets.UTF_8);
        }
    }

    /**
     * Measures the prefill rate and the links, then runs every configuration the options select.
     *
     * @param o        the options
     * @param platform the engine and its tiers
     * @param out      where the results table goes
     * @param err      where the progress bar goes (when the options ask for one)
     * @return what was measured
     */
    public static Outcome run(ServingOptions o, ServingPlatform platform, PrintStream out, PrintStream err) {
        Workload w = o.workload();
        KvLayout layout = platform.layout();
        int bt = layout.blockTokens();
        int ctxBlocks = (w.maxContextTokens() + bt - 1) / bt + 1;
        long unique = w.uniqueKvBlocks(bt);
        int device = o.deviceBlocks != null ? o.deviceBlocks : Math.max(3, w.concurrency() * ctxBlocks + 2);
        int host = o.hostBlocks != null ? o.hostBlocks : (int) Math.max(1, unique / 2);
        int disk = o.diskBlocks != null ? o.diskBlocks : (int) Math.min(Integer.MAX_VALUE, 2 * unique + device);
        int allFit = (int) Math.min(Integer.MAX_VALUE, unique + w.concurrency() * ctxBlocks + 2);

        out.println("ServingBenchmark: multi-round QA, the device tier alone against the tiers below it");
        out.printf(Locale.ROOT, "platform  %s; %s of KV per token, blocks of %d tokens (%s)%n", platform.name(),
                ByteSize.format(layout.bytesPerToken()), bt, ByteSize.format(layout.blockBytes()));
        out.printf(Locale.ROOT, "workload  %d users x %d rounds, system prompt %d, user context %d, question %d, answer %d "
                        + "tokens; %s%n", w.users(), w.rounds(), w.systemTokens(), w.contextTokens(), w.questionTokens(),
                w.answerTokens(),
                w.poisson() ? String.format(Locale.ROOT, "Poisson arrivals at %.2f turns/s, at most %d at once",
                        w.arrivalsPerSecond(), w.concurrency()) : "closed loop of " + w.concurrency() + " clients");
        out.printf(Locale.ROOT, "KV        the users' histories: %d blocks (%s) = %.1fx the device budget of %d blocks (%s)%n",
                unique, ByteSize.format(unique * layout.blockBytes()), unique / (double) device, device,
                ByteSize.format(device * layout.blockBytes()));

        double rate = measurePrefill(platform, w, ctxBlocks);
        List<CostModel.Link> links = measureLinks(platform, layout, o.diskDir);
        CostModel model = new CostModel(layout, 1.0 / rate, links);
        out.printf(Locale.ROOT, "prefill   %.0f tokens/s measured (%.1f us a token); links measured, block of %s:%n",
                rate, 1e6 / rate, ByteSize.format(layout.blockBytes()));
        model.report().lines().forEach(l -> out.println("          " + l));
        out.println();

        List<ConfigRun> runs = new ArrayList<>();
        for (ServingConfig c : o.configs) {
            int d = c == ServingConfig.ALL_FIT ? allFit : device;
            int h = c == ServingConfig.HOST || c == ServingConfig.DISK ? host : 0;
            int k = c == ServingConfig.DISK ? disk : 0;
            try {
                runs.add(runConfig(c, d, h, k, platform, w, links, rate, o, err));
            } catch (OutOfMemoryError | RuntimeException e) {
                if (c != ServingConfig.ALL_FIT || runs.isEmpty()) {
                    throw e;
                }
                // the upper bound is run where memory allows
                out.printf(Locale.ROOT, "note      configuration 4 skipped: a device tier of %d blocks (%s) cannot be had: %s%n",
                        d, ByteSize.format(d * layout.blockBytes()), e);
            }
        }
        String diff;
        String scope = null;
        if (platform.splitInvariant()) {
            diff = firstDifference(w, runs);
        } else {
            TokenCheck check = TokenCheck.sameComputation(w, runs);
            diff = check.difference();
            scope = check.scope();
        }
        Outcome result = new Outcome(o.commandLine, platform.name(), layout, w, rate, model, links, runs, diff, scope);
        out.print(ServingReport.text(result));
        return result;
    }

    private static ConfigRun runConfig(ServingConfig c, int deviceBlocks, int hostBlocks, int diskBlocks,
                                       ServingPlatform platform, Workload w, List<CostModel.Link> links,
                                       double prefillRate, ServingOptions o, PrintStream err) {
        KvLayout layout = platform.layout();
        Path diskDir = null;
        List<Tier> tiers = new ArrayList<>();
        try {
            tiers.add(platform.deviceTier(deviceBlocks));
            List<CostModel.Link> used = new ArrayList<>();
            if (hostBlocks > 0) {
                tiers.add(platform.hostTier(hostBlocks));
                used.add(links.get(0));
            }
            if (diskBlocks > 0) {
                diskDir = tempDir(o.diskDir, "kvcache-serving-disk-");
                tiers.add(MappedFileTier.builder(layout).directory(diskDir).modelId(platform.modelId())
                        .capacityBytes(diskBlocks * layout.blockBytes()).name("disk").open());
                used.add(links.get(1));
            }
            CostModel configModel = new CostModel(layout, 1.0 / prefillRate, used);
            boolean[] reused = new boolean[tiers.size()];
            reused[0] = true;
            for (int t = 1; t < tiers.size(); t++) {
                reused[t] = configModel.reloadPays(t);
            }
            KvCacheManager.Builder b = KvCacheManager.builder(layout).modelId(platform.modelId())
                    .evictionPolicy(EvictionPolicy.lru()).persistPolicy(PersistPolicy.WRITE_BACK).persistOnClose(false)
                    .prefetchLookaheadBlocks(Math.max(1, (deviceBlocks - 1) / 2));
            if (tiers.size() > 1) {
                b.costModel(configModel);
            }
            tiers.forEach(b::tier);
            TransferEngine engine = platform.transferEngine();
            if (engine != null) {
                b.transferEngine(engine);
            }
            tiers.clear();   // the manager owns them from here, and closes them if build() refuses
            try (KvCacheManager cache = b.build()) {
                ServingEngine e = platform.engine(cache);
                ProgressBar bar = o.progress ? new ProgressBar(err, "config " + c.number(), ProgressBar.stderrIsTerminal()) : null;
                // counted in answer tokens, so that the bar's rate is the throughput
                SessionRunner.Listener l = bar == null ? SessionRunner.Listener.NONE : (turn, done, total) -> {
                    bar.update(done * w.answerTokens(), total * w.answerTokens(), "");
                    if (done == total) {
                        bar.finish();
                    }
                };
                IntPredicate tierReused = t -> t < reused.length && reused[t];
                RunResult r = new SessionRunner(w, platform.vocabSize(), TENANT).run(cache, e, tierReused, l);
                return new ConfigRun(c, deviceBlocks, hostBlocks, diskBlocks, reused, r);
            }
        } finally {
            tiers.forEach(Tier::close);
            if (diskDir != null && o.diskDir == null) {
                deleteTree(diskDir);
            }
        }
    }

    /** Prefills of the calibration: the first ones warm the JIT up, the last one is measured. */
    private static final int CALIBRATION_ROUNDS = 4;

    /** @return prompt tokens per second of a cold prefill of an average history, after warm-up ones */
    static double measurePrefill(ServingPlatform platform, Workload w, int ctxBlocks) {
        int avg = Math.max(1, Math.min(w.maxContextTokens(), w.systemTokens() + w.contextTokens()
                + (w.rounds() / 2 + 1) * (w.questionTokens() + w.answerTokens())));
        int[] prompt = new int[avg];
        int vocab = platform.vocabSize();
        for (int i = 0; i < avg; i++) {
            prompt[i] = 3 + (int) ((i * 2654435761L) % (vocab - 3));
        }
        double rate = Double.NaN;
        for (int round = 0; round < CALIBRATION_ROUNDS; round++) {
            try (KvCacheManager cache = KvCacheManager.builder(platform.layout()).modelId(platform.modelId())
                    .tier(platform.deviceTier(ctxBlocks + 3)).build()) {
                ServingEngine e = platform.engine(cache);
                try (Sequence seq = cache.open(("calibrate-" + round).getBytes(StandardCharsets.UTF_8), prompt);
                     ServingRequest r = e.prefill(seq)) {
                    r.generated();
                }
                rate = e.prefillTokensPerSecond();
            }
        }
        return rate;
    }

    /** @return the host-to-device and disk-to-device links, measured on fresh tiers */
    static List<CostModel.Link> measureLinks(ServingPlatform platform, KvLayout layout, Path diskParent) {
        List<CostModel.Link> links = new ArrayList<>();
        TransferEngine engine = platform.transferEngine();
        Path dir = tempDir(diskParent, "kvcache-serving-probe-");
        try (Tier device = platform.deviceTier(PROBE_BLOCKS); Tier host = platform.hostTier(PROBE_BLOCKS)) {
            links.add(LinkProbe.measure(host, device, engine, PROBE_BLOCKS));
            try (Tier disk = MappedFileTier.builder(layout).directory(dir).modelId(platform.modelId())
                    .capacityBytes(PROBE_BLOCKS * layout.blockBytes()).name("disk").open()) {
                links.add(LinkProbe.measure(disk, device, engine, PROBE_BLOCKS));
            }
        } finally {
            if (engine != null) {
                engine.close();
            }
            deleteTree(dir);
        }
        return links;
    }

    /** @return null when every configuration gave every turn the same answer, else the first difference */
    static String firstDifference(Workload w, List<ConfigRun> runs) {
        for (int i = 1; i < runs.size(); i++) {
            for (int u = 0; u < w.users(); u++) {
                for (int r = 0; r < w.rounds(); r++) {
                    int[] a = runs.get(0).run().answer(u, r);
                    int[] b = runs.get(i).run().answer(u, r);
                    if (!Arrays.equals(a, b)) {
                        return "user " + u + " round " + r + ": configuration " + runs.get(0).config().number() + " "
                                + Arrays.toString(a) + ", configuration " + runs.get(i).config().number() + " "
                                + Arrays.toString(b);
                    }
                }
            }
        }
        return null;
    }

    private static Path tempDir(Path parent, String prefix) {
        try {
            return parent == null ? Files.createTempDirectory(prefix) : Files.createTempDirectory(parent, prefix);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a directory for the disk tier", e);
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException e) {
            System.err.println("warning: cannot remove " + dir + ": " + e.getMessage());
        }
    }
}
