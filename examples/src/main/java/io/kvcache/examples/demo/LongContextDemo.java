package io.kvcache.examples.demo;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.examples.attention.AttentionBackend;
import io.kvcache.examples.engine.CachedDecoder;
import io.kvcache.examples.engine.DecodeResult;
import io.kvcache.examples.engine.StepListener;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.CheckpointException;
import io.kvcache.examples.llama.LlamaConfig;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import io.kvcache.examples.llama.SyntheticCheckpoint;
import io.kvcache.examples.report.HtmlReport;
import io.kvcache.examples.report.StepTrace;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.StringJoiner;

/**
 * Decodes a long context with a Llama-2 model whose KV cache lives in the tiers of a
 * {@link KvCacheManager}, with a device budget far below the final KV size, and shows that it
 * costs nothing in correctness: the same decode with an unlimited device budget gives the same
 * tokens and logits bit for bit. Then a follow-up request sharing the decode's prefix reuses the
 * cached blocks instead of recomputing them and still equals a cold run. A progress bar, a summary
 * table and (with {@code --report}) an HTML page of plots show what the cache did.
 */
public final class LongContextDemo {
    private static final byte[] TENANT = "demo".getBytes(StandardCharsets.UTF_8);

    /** Held so the level set on it is not lost when the logger is collected. */
    private static final java.util.logging.Logger CHRONICLE_LOG = java.util.logging.Logger.getLogger("net.openhft");

    private final DemoOptions o;
    private final PrintStream out;
    private final PrintStream err;

    private LongContextDemo(DemoOptions o, PrintStream out, PrintStream err) {
        this.o = o;
        this.out = out;
        this.err = err;
    }

    /**
     * Runs the demo and exits with its status: 0 when every check passed, 1 when a check failed or
     * the run broke, 2 for a bad command line or input file.
     */
    public static void main(String[] args) {
        // Chronicle Map (under the disk tier) announces itself at INFO; keep its warnings only
        CHRONICLE_LOG.setLevel(java.util.logging.Level.WARNING);
        int rc = run(args, System.out, System.err);
        System.out.flush();
        System.exit(rc);
    }

    /**
     * @return the exit status (see {@link #main})
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        try {
            DemoOptions o = DemoOptions.parse(args);
            if (o.help) {
                out.println(DemoOptions.USAGE);
                return 0;
            }
            return new LongContextDemo(o, out, err).execute();
        } catch (UsageException | CheckpointException e) {
            err.println("error: " + e.getMessage());
            return 2;
        } catch (OutOfMemoryError e) {
            err.println("error: out of memory (" + e.getMessage() + "); give java a larger -Xmx or use smaller budgets");
            return 1;
        } catch (RuntimeException e) {
            if (Boolean.getBoolean("kvcache.demo.trace")) {
                e.printStackTrace(err);
            }
            // one line, no stack trace (-Dkvcache.demo.trace=true prints it): the deepest cause says what broke
            Throwable root = e;
            while (root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
            }
            err.println("error: " + e.getClass().getSimpleName() + ": " + e.getMessage()
                    + (root != e ? " (cause: " + root + ")" : ""));
            return 1;
        }
    }

    private int execute() throws UsageException {
        // refuse unwritable outputs before minutes of decoding, not after
        checkWritable("--emit-tokens", o.emitTokens);
        checkWritable("--report", o.report);
        Checkpoint cp = o.model == null ? SyntheticCheckpoint.createDefault() : Checkpoint.read(o.model);
        LlamaConfig c = cp.config();
        for (int t : o.promptIds) {
            if (t >= c.vocabSize()) {
                throw new UsageException("--prompt-ids: token " + t + " is outside the model's vocabulary [0, "
                        + c.vocabSize() + ")");
            }
        }
        DeviceSetup device = DeviceSetup.of(o.device);
        if (device instanceof DeviceSetup.Gpu && o.policy == DemoOptions.Policy.ATTENTION) {
            throw new UsageException("--policy attention needs per-block attention mass, which the CUDA attention "
                    + "kernel does not keep; use --policy lru or --device simulated");
        }
        if (o.engine == DemoOptions.Engine.GPU) {
            if (!(device instanceof DeviceSetup.Gpu gpu)) {
                throw new UsageException("--engine gpu runs on a CUDA GPU: use --device cuda");
            }
            if (o.temperature > 0) {
                throw new UsageException("--engine gpu samples greedily: use --temperature 0");
            }
            return new GpuEngineDemo(o, out).run(cp, gpu.context(), modelId(cp));
        }
        KvLayout layout;
        try {
            layout = new KvLayout(c.layers(), c.kvHeads(), c.headSize(), DType.FP32, o.blockTokens);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--block-tokens " + o.blockTokens + ": " + e.getMessage());
        }
        String modelId = modelId(cp);
        // without --disk-dir the disk tier lives in a temporary directory removed at exit, so that
        // the default run demotes all the way down; --disk-dir keeps it for restart reuse
        boolean persistentDisk = o.diskDir != null;
        Path diskDir = o.diskDir;
        if (diskDir == null && !o.noDisk) {
            try {
                diskDir = Files.createTempDirectory("kvcache-demo-");
            } catch (IOException e) {
                out.println("note      no disk tier: cannot create a temporary directory (" + e.getMessage() + ")");
            }
        }
        try {
            return decode(cp, device, layout, modelId, diskDir, persistentDisk);
        } finally {
            if (diskDir != null && !persistentDisk) {
                deleteTree(diskDir);
            }
        }
    }

    private int decode(Checkpoint cp, DeviceSetup device, KvLayout layout, String modelId, Path diskDir,
                       boolean persistentDisk) throws UsageException {
        LlamaConfig c = cp.config();
        int bt = layout.blockTokens();
        int finalTokens = o.promptIds.length + o.tokens;
        int finalBlocks = ceilDiv(finalTokens, bt);
        Budgets budgets = Budgets.choose(o, layout, finalBlocks, diskDir != null, persistentDisk);
        Tier disk = null;
        String diskNote = null;
        if (diskDir != null) {
            try {
                disk = DiskTierFactory.open(diskDir, layout, modelId, budgets.diskBlocks() * layout.blockBytes());
            } catch (UsageException e) {
                if (persistentDisk) {
                    throw e;
                }
                // the implicit temporary disk tier is a nicety: run without it rather than fail
                diskNote = "no disk tier: " + e.getMessage();
                diskDir = null;
                budgets = Budgets.choose(o, layout, finalBlocks, false, false);
            }
        }
        boolean withDisk = disk != null;
        Tier remote = null;
        if (o.remoteTier != null) {
            try {
                remote = RemoteTierFactory.open(o.remoteTier, layout, modelId, finalBlocks + 1);
            } catch (UsageException e) {
                if (disk != null) {
                    disk.close();
                }
                throw e;
            }
        }
        LlamaModel model = new LlamaModel(cp);

        out.println("LongContextDemo: a Llama-2 decode whose KV cache is paged across memory tiers");
        out.printf(Locale.ROOT, "model     %s: dim %d, %d layers, %d heads, %d KV heads, vocab %d; %s of KV per token%n",
                cp.name(), c.dim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(),
                ByteSize.format(layout.bytesPerToken()));
        out.printf(Locale.ROOT, "context   %d prompt + %d generated = %d tokens = %d blocks of %d tokens (%s each) = %s of KV%n",
                o.promptIds.length, o.tokens, finalTokens, finalBlocks, bt, ByteSize.format(layout.blockBytes()),
                ByteSize.format(finalBlocks * layout.blockBytes()));
        if (finalTokens > c.seqLen()) {
            out.printf(Locale.ROOT, "note      the context exceeds the model's training length of %d tokens%n", c.seqLen());
        }
        if (diskNote != null) {
            out.println("note      " + diskNote);
        }

        // the backend holds device buffers and a loaded module on a GPU: released however the run ends
        try (AttentionBackend backend = device.backend(c)) {
            List<Tier> tiers = new ArrayList<>();
            try {
                tiers.add(device.deviceTier(layout, budgets.deviceBlocks()));
                tiers.add(device.hostTier(layout, budgets.hostBlocks()));
                if (withDisk) {
                    tiers.add(disk);
                }
                if (remote != null) {
                    tiers.add(remote);
                }
            } catch (OutOfMemoryError e) {
                tiers.forEach(Tier::close);
                throw new UsageException("cannot allocate the tiers' memory (" + e.getMessage()
                        + "); use a smaller --device-budget or --host-budget");
            } catch (RuntimeException e) {
                tiers.forEach(Tier::close);
                throw e;
            }
            int window = CachedDecoder.windowBlocks(budgets.deviceBlocks());
            EvictionPolicy policy = o.policy == DemoOptions.Policy.ATTENTION
                    ? EvictionPolicy.attentionScore(1, 1, 0.9) : EvictionPolicy.lru();
            KvCacheManager.Builder builder = KvCacheManager.builder(layout).modelId(modelId).evictionPolicy(policy)
                    .prefetchLookaheadBlocks(window);
            tiers.forEach(builder::tier);
            TransferEngine engine = device.engine(layout);
            if (engine != null) {
                builder.transferEngine(engine);
            }
            String first = "tiers     ";
            for (Tier t : tiers) {
                out.printf(Locale.ROOT, "%s%-7s %9s = %4d blocks  %s%s%n", first, t.name(),
                        ByteSize.format(t.slotCount() * t.slotBytes()), t.slotCount(), t.backing(),
                        t == disk && !persistentDisk ? " (temporary, removed at exit; --disk-dir DIR keeps it)" : "");
                first = "          ";
            }
            out.printf(Locale.ROOT, "decode    %s eviction; attention on %s, layer by layer over windows of %d blocks, the next window in flight%n",
                    o.policy.name().toLowerCase(Locale.ROOT), backend.name(), window);
            out.printf(Locale.ROOT, "sampling  %s%n", o.temperature == 0 ? "greedy" : "temperature " + o.temperature + ", seed " + o.seed);
            out.println();

            boolean ok = true;
            List<HtmlReport.Row> rows = new ArrayList<>();
            DecodeResult resumed = null;
            long resumedDiskHits = 0;
            long resumedRemoteHits = 0;
            DecodeResult main;
            CacheStats mainStats;
            StepTrace trace;
            DecodeResult followUp = null;
            DecodeResult cold = null;
            try (KvCacheManager cache = builder.build();
                 MetricsEndpoint metrics = o.metricsPort == null ? null : MetricsEndpoint.start(o.metricsPort, cache)) {
                if (metrics != null) {
                    out.println("metrics   " + metrics.uri() + " (Prometheus text format, while the demo runs)");
                }
                // the window asked for ahead takes only free and partial slots: blocks held whole on the
                // device stay there across steps, so each step moves little more than the bound
                CachedDecoder decoder = new CachedDecoder(model, cache, backend, window, false,
                        o.policy == DemoOptions.Policy.ATTENTION);
                int[] saved = withDisk && persistentDisk ? LastRequest.read(diskDir, modelId, bt) : null;
                if (saved == null && remote != null) {
                    // another process's last request, saved beside the blocks it shared
                    saved = RemoteTierFactory.readLastRequest(o.remoteTier, modelId, bt);
                }
                if (saved != null && o.followupTokens > 0) {
                    // restart reuse: the previous run's last request, sent first, finds its prefix on disk
                    resumed = decoder.run(TENANT, saved, o.followupTokens, sampler(c), StepListener.NONE);
                    resumedDiskHits = withDisk && resumed.cachedBlocksPerTier().length > 2
                            ? resumed.cachedBlocksPerTier()[2] : 0;
                    resumedRemoteHits = remote != null ? resumed.cachedBlocksPerTier()[tiers.indexOf(remote)] : 0;
                }
                CacheStats startStats = cache.stats();
                trace = new StepTrace(bt, tiers.stream().map(Tier::name).toList(),
                        tiers.stream().mapToInt(Tier::slotCount).toArray());
                TraceRecorder recorder = new TraceRecorder(cache, trace, o.progress ? new ProgressBar(err, "decode",
                        ProgressBar.stderrIsTerminal()) : null);
                main = decoder.run(TENANT, o.promptIds, o.tokens, sampler(c), recorder);
                recorder.finish();
                mainStats = StatsTable.since(cache.stats(), startStats);

                if (o.followupTokens > 0 && main.stream().length > bt) {
                    int[] stream = main.stream();
                    int shared = Math.max(bt, (stream.length * 3 / 4) / bt * bt);
                    int[] prompt = Arrays.copyOf(stream, shared + 1);
                    // a different next token than the decode took, so the follow-up diverges from it
                    prompt[shared] = (stream[shared] + 1) % c.vocabSize();
                    followUp = decoder.run(TENANT, prompt, o.followupTokens, sampler(c), StepListener.NONE);
                    // a salt no run used before, so that nothing, not even a disk tier's blocks, is shared
                    byte[] coldTenant = ("demo-cold-run-" + java.util.UUID.randomUUID()).getBytes(StandardCharsets.UTF_8);
                    cold = decoder.run(coldTenant, prompt, o.followupTokens, sampler(c), StepListener.NONE);
                    if (withDisk && persistentDisk) {
                        try {
                            LastRequest.write(diskDir, modelId, bt, prompt);
                        } catch (IOException e) {
                            err.println("warning: cannot save the request for restart reuse in " + diskDir + ": " + e);
                        }
                    }
                    if (remote != null) {
                        try {
                            RemoteTierFactory.writeLastRequest(o.remoteTier, modelId, bt, prompt);
                        } catch (RuntimeException e) {
                            err.println("warning: cannot save the request for the next process in --remote-tier: "
                                    + e.getClass().getSimpleName());
                        }
                    }
                }
            }

            double secs = main.nanos() / 1e9;
            out.printf(Locale.ROOT, "generated %d tokens in %.2f s: %.0f tokens/s (%d positions computed)%n",
                    main.generated().length, secs, main.computedTokens() / secs, main.computedTokens());
            out.println("first tokens " + head(main.generated(), 24));
            if (main.recoveries() > 0) {
                out.printf(Locale.ROOT, "recovered     from %d lost blocks by computing their positions again%n", main.recoveries());
            }
            out.println();
            StatsTable.print(out, mainStats, main.nanos());
            long bound = exactAttentionBound(trace, budgets.deviceBlocks(), layout.blockBytes());
            String boundLine = String.format(Locale.ROOT, "exact attention must move %s up to the device for a device"
                            + " tier of %d blocks (per step, the blocks that do not fit it); moved %s = %s the bound",
                    ByteSize.format(bound), budgets.deviceBlocks(), ByteSize.format(mainStats.bytesPromoted()),
                    bound == 0 ? (mainStats.bytesPromoted() == 0 ? "1.000x" : "above")
                            : String.format(Locale.ROOT, "%.3fx", (double) mainStats.bytesPromoted() / bound));
            out.println("bound         " + boundLine);
            out.println();
            rows.add(new HtmlReport.Row("bytes toward device vs bound", boundLine));
            rows.add(new HtmlReport.Row("tokens/s", String.format(Locale.ROOT, "%.0f (%d positions in %.2f s)",
                    main.computedTokens() / secs, main.computedTokens(), secs)));
            rows.add(new HtmlReport.Row("bytes moved", "toward device " + ByteSize.format(mainStats.bytesPromoted())
                    + ", down the tiers " + ByteSize.format(mainStats.bytesDemoted())));
            rows.add(new HtmlReport.Row("waited on residency", String.format(Locale.ROOT, "%.3f s (wall)",
                    mainStats.waitNanosWall() / 1e9)));
            rows.add(new HtmlReport.Row("write-through", StatsTable.persistLine(mainStats)));
            rows.add(new HtmlReport.Row("prefetches in time", StatsTable.prefetchLine(mainStats)));
            for (int i = 0; i < mainStats.tiers().size(); i++) {
                TierStats t = mainStats.tiers().get(i);
                rows.add(new HtmlReport.Row("tier " + t.name(), t.slotCount() + " blocks, " + t.backing() + "; hits "
                        + StatsTable.hits(mainStats, i) + ", misses " + StatsTable.misses(mainStats, i) + ", lost "
                        + t.lost() + ", promoted out " + t.promotedOut() + ", demoted in " + t.demotedIn()
                        + ", fell back to a lower copy " + t.fallbacksIn()));
            }

            if (resumed != null) {
                out.printf(Locale.ROOT, "restart reuse the previous run's last request (%d-token prompt), sent first, found %d tokens%n",
                        resumed.prompt().length, resumed.cachedTokens());
                out.printf(Locale.ROOT, "              cached (%d blocks from disk%s) and computed only %d positions%s%n",
                        resumedDiskHits, remote != null ? ", " + resumedRemoteHits + " from " + remote.name() : "",
                        resumed.computedTokens(), resumed.recoveries() == 0 ? ""
                                : " (" + resumed.recoveries() + " blocks failed their checksum and were recomputed)");
                rows.add(new HtmlReport.Row("restart reuse", resumed.cachedTokens() + " of " + resumed.prompt().length
                        + " prompt tokens found cached at start, " + resumedDiskHits + " blocks from disk"));
            } else if (remote != null) {
                out.println("restart reuse run another process with the same --remote-tier: it sends this run's last request first");
            } else if (withDisk && persistentDisk) {
                out.println("restart reuse run again with the same --disk-dir: the next run sends this run's last request first");
            }
            if (remote instanceof io.kvcache.redis.RedisTier redis) {
                io.kvcache.redis.RedisTierStats r = redis.stats();
                out.printf(Locale.ROOT, "redis tier    %d lookups (%d served from Redis, %d from local slots, %d misses), %d published;"
                        + " %d read round trips (%d MGETs of prefix chains)%n", r.lookups(), r.remoteHits(), r.localHits(),
                        r.misses(), r.publishes(), r.roundTrips(), r.prefetches());
                out.printf(Locale.ROOT, "              presence cache answered %d of %d presence questions without a round trip"
                        + " (hit rate %.1f%%); %d invalid values, %d errors%n", r.presenceHits(),
                        r.presenceHits() + r.presenceMisses(), 100 * r.presenceHitRate(), r.invalidValues(), r.errors());
            }
            if (followUp != null) {
                String diff = followUp.firstDifference(cold);
                out.printf(Locale.ROOT, "prefix reuse  a follow-up request (%d-token prompt: the decode's first %d tokens + 1 new)%n",
                        followUp.prompt().length, followUp.prompt().length - 1);
                out.printf(Locale.ROOT, "              found %d tokens cached and did not recompute them; computed %d positions%n",
                        followUp.cachedTokens(), followUp.computedTokens());
                out.printf(Locale.ROOT, "              a cold run of it (other tenant, %d cached, %d computed) gives %s%n",
                        cold.cachedTokens(), cold.computedTokens(), diff == null ? "the same tokens and logits: yes" : "DIFFERENT output: " + diff);
                ok &= diff == null && followUp.cachedTokens() > 0;
                rows.add(new HtmlReport.Row("prefix reuse", followUp.cachedTokens() + " of " + followUp.prompt().length
                        + " prompt tokens not recomputed; equals a cold run: " + (diff == null ? "yes" : "NO, " + diff)));
                if (resumed != null && Arrays.equals(resumed.prompt(), cold.prompt())) {
                    String rdiff = resumed.firstDifference(cold);
                    out.printf(Locale.ROOT, "restart reuse the request resumed from disk equals the cold run: %s%n",
                            rdiff == null ? "yes" : "NO, " + rdiff);
                    ok &= rdiff == null;
                }
            }

            if (o.sessions > 0) {
                ok &= SessionsScenario.print(out, SessionsScenario.run(cp, bt, o.sessions));
            }

            if (o.verify) {
                DecodeResult reference = verify(model, layout, modelId, finalBlocks, device, backend);
                String diff = main.firstDifference(reference);
                out.printf(Locale.ROOT, "verification  the same decode with an unlimited device budget (%d blocks): %s%n",
                        finalBlocks + 1, diff == null ? "every token and logit identical: yes" : "DIFFERENT: " + diff);
                ok &= diff == null;
                rows.add(new HtmlReport.Row("verification", diff == null
                        ? "identical tokens and logits with an unlimited device budget" : "DIFFERENT: " + diff));
            }

            if (o.emitTokens != null) {
                StringBuilder sb = new StringBuilder();
                for (int t : main.generated()) {
                    sb.append(t).append('\n');
                }
                try {
                    Files.writeString(o.emitTokens, sb);
                } catch (IOException | RuntimeException e) {
                    throw new UsageException("cannot write --emit-tokens " + o.emitTokens + ": " + e);
                }
                out.println("tokens        written to " + o.emitTokens);
            }
            if (o.report != null) {
                String subtitle = String.format(Locale.ROOT, "%s; %d tokens; device %s, host %s%s; %s eviction",
                        cp.name(), finalTokens, ByteSize.format(budgets.deviceBlocks() * layout.blockBytes()),
                        ByteSize.format(budgets.hostBlocks() * layout.blockBytes()),
                        withDisk ? ", disk " + ByteSize.format(budgets.diskBlocks() * layout.blockBytes()) : "",
                        o.policy.name().toLowerCase(Locale.ROOT));
                try {
                    HtmlReport.write(o.report, "LongContextDemo report", subtitle, rows, trace);
                } catch (IOException | RuntimeException e) {
                    throw new UsageException("cannot write --report " + o.report + ": " + e);
                }
                out.println("report        written to " + o.report);
            }
            if (!ok) {
                out.println("FAILED: a check above did not hold");
            }
            return ok ? 0 : 1;
        }
    }

    /**
     * The bytes exact attention must move up to a device tier of {@code deviceBlocks} blocks over
     * the decode of a trace: at each step every block of the context is read once per layer, and
     * the blocks beyond what the device holds must come up, so at least {@code max(0, blocks -
     * deviceBlocks)} blocks' bytes per step.
     */
    static long exactAttentionBound(StepTrace trace, int deviceBlocks, long blockBytes) {
        long blocks = 0;
        for (int i = 0; i < trace.steps(); i++) {
            int n = trace.position(i) / trace.blockTokens() + 1;
            blocks += Math.max(0, n - deviceBlocks);
        }
        return blocks * blockBytes;
    }

    private Sampler sampler(LlamaConfig c) {
        return new Sampler(c.vocabSize(), o.temperature, o.seed);
    }



    private DecodeResult verify(LlamaModel model, KvLayout layout, String modelId, int finalBlocks,
                                DeviceSetup device, AttentionBackend backend) {
        int slots = finalBlocks + 1;
        try (KvCacheManager unlimited = KvCacheManager.builder(layout).modelId(modelId)
                .tier(device.deviceTier(layout, slots)).build()) {
            CachedDecoder d = new CachedDecoder(model, unlimited, backend, CachedDecoder.windowBlocks(slots), false,
                    false);
            ProgressBar bar = o.progress ? new ProgressBar(err, "verify", ProgressBar.stderrIsTerminal()) : null;
            StepListener l = bar == null ? StepListener.NONE : (pos, done, total, nanos) -> {
                bar.update(done, total, "");
                if (done == total) {
                    bar.finish();
                }
            };
            return d.run(TENANT, o.promptIds, o.tokens, new Sampler(model.config().vocabSize(), o.temperature, o.seed), l);
        }
    }

    /** Removes a temporary disk directory and what the disk tier left in it; best effort. */
    private void deleteTree(Path dir) {
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    err.println("warning: cannot remove " + p + ": " + e.getMessage());
                }
            });
        } catch (IOException | java.io.UncheckedIOException e) {
            err.println("warning: cannot remove the temporary disk directory " + dir + ": " + e.getMessage());
        }
    }

    private static void checkWritable(String flag, Path file) throws UsageException {
        if (file == null) {
            return;
        }
        Path parent = file.toAbsolutePath().getParent();
        if (Files.isDirectory(file)) {
            throw new UsageException(flag + " " + file + " is a directory");
        }
        if (parent == null || !Files.isDirectory(parent)) {
            throw new UsageException(flag + " " + file + ": directory " + parent + " does not exist");
        }
        if (Files.exists(file) ? !Files.isWritable(file) : !Files.isWritable(parent)) {
            throw new UsageException(flag + " " + file + " is not writable");
        }
    }

    private static String head(int[] tokens, int n) {
        StringJoiner j = new StringJoiner(" ");
        for (int i = 0; i < Math.min(n, tokens.length); i++) {
            j.add(Integer.toString(tokens[i]));
        }
        return j + (tokens.length > n ? " ..." : "");
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /** A model id for content keys: the checkpoint's SHA-256, so blocks of other weights never match. */
    private static String modelId(Checkpoint cp) {
        return io.kvcache.examples.llama.ModelId.of(cp);
    }
}
