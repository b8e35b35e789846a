package io.kvcache.bench.engine;

import com.sun.jna.Pointer;
import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.examples.gpu.Cublas;
import io.kvcache.examples.gpu.EngineKernels;
import io.kvcache.examples.gpu.GpuCachedDecoder;
import io.kvcache.examples.gpu.GpuLlamaEngine;
import io.kvcache.examples.gpu.GpuWeights;
import io.kvcache.examples.gpu.LayerGate;
import io.kvcache.examples.gpu.ModelShape;
import io.kvcache.examples.gpu.Precision;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * Measures the GPU Llama engine on a synthetic model of a named shape (bf16 weights generated on
 * the device) against ceilings measured in the same run:
 * <ul>
 *   <li>prefill of N tokens: tokens/s and achieved TFLOP/s (projections plus causal attention)
 *       against the same projections alone through cuBLAS (the GEMMs of the same sizes on the
 *       same buffers), and an 8192^3 bf16 GEMM for reference;</li>
 *   <li>decode at batch B over a context of C tokens per sequence: ms per step against the HBM
 *       bound, (weight bytes + K/V bytes read per step) / measured device copy bandwidth;</li>
 *   <li>restore of an N-token session from the pinned host tier (through the cache: blocks pushed
 *       down by another tenant, then made resident again) against recomputing it, with the link's
 *       bound (K/V bytes / measured pinned host-to-device bandwidth);</li>
 *   <li>a returning session's turn: N tokens parked in the pinned host tier, then Q new tokens;
 *       time to the first new token with the restore overlapping the prefill layer by layer
 *       ({@link GpuCachedDecoder.Residency#PER_LAYER}, and with host waits), with restore then compute
 *       ({@link GpuCachedDecoder.Residency#WHOLE}), and with all N + Q tokens recomputed;</li>
 *   <li>a restart ({@code --disk-restore}): an N-token session written through to a disk tier by
 *       one cache, served by a new cache on the same directory, with the data file cold (dropped
 *       from the page cache) and warm, against recomputing it and the disk's measured read rate.</li>
 * </ul>
 * Wall-clock times around synchronous calls, median of the repetitions after a warm-up.
 *
 * <p>Usage: {@code GpuEngineBenchmark [--shape llama3-8b] [--prefill 1024,4096,16384] [--batches 1,32]
 * [--context 1024] [--restore 1024,4096,16384] [--overlap 4096,16384] [--turn 256] [--reps 3]
 * [--disk-restore 1024,4096] [--disk-dir DIR] [--out results.md]}; an empty list ({@code --prefill ''}) skips that part, so
 * {@code --prefill '' --batches '' --restore '' --overlap 4096,16384} runs only the turn.
 */
public final class GpuEngineBenchmark {
    private static final int BT = 16;

    private final CudaContext ctx = CudaContext.device(0);
    private final CuLib cu = Cuda.driver();
    private final StringBuilder md = new StringBuilder();
    private int[] diskSizes = {};
    private Path diskDir;

    public static void main(String[] args) throws IOException {
        String shapeName = "llama3-8b";
        int[] prefill = {1024, 4096, 16384};
        int[] batches = {1, 32};
        int context = 1024;
        int[] restore = {1024, 4096, 16384};
        int[] overlap = {4096, 16384};
        int turn = 256;
        int reps = 3;
        int[] disk = {};
        Path diskDir = Path.of(System.getProperty("java.io.tmpdir"));
        Path out = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--shape" -> shapeName = args[++i];
                case "--prefill" -> prefill = ints(args[++i]);
                case "--batches" -> batches = ints(args[++i]);
                case "--context" -> context = Integer.parseInt(args[++i]);
                case "--restore" -> restore = ints(args[++i]);
                case "--overlap" -> overlap = ints(args[++i]);
                case "--turn" -> turn = Integer.parseInt(args[++i]);
                case "--disk-restore" -> disk = ints(args[++i]);
                case "--disk-dir" -> diskDir = Path.of(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (turn < 1) {
            throw new IllegalArgumentException("--turn " + turn + ": a turn has at least one new token");
        }
        GpuEngineBenchmark b = new GpuEngineBenchmark();
        b.diskSizes = disk;
        b.diskDir = diskDir;
        b.run(ModelShape.named(shapeName), prefill, batches, context, restore, overlap, turn, reps,
                String.join(" ", args));
        if (out != null) {
            Files.writeString(out, b.md.toString());
        }
    }

    private static int[] ints(String csv) {
        return csv.isBlank() ? new int[0] : Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
    }

    private void line(String fmt, Object... args) {
        String s = String.format(Locale.ROOT, fmt, args);
        System.out.println(s);
        System.out.flush();
        md.append(s).append('\n');
    }

    private void run(ModelShape shape, int[] prefill, int[] batches, int context, int[] restore, int[] overlap,
                     int turn, int reps, String argLine) throws IOException {
        line("# GPU engine: %s, bf16", shape.name());
        line("");
        line("%s, %s. Command: `GpuEngineBenchmark %s`",
                ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ISO_LOCAL_DATE_TIME), ctx, argLine);
        line("");
        double copyBw = deviceCopyBandwidth(1L << 31);
        double linkBw = hostToDeviceBandwidth(1L << 30);
        try (EngineKernels k = new EngineKernels(ctx); Cublas blas = new Cublas(ctx)) {
            line("Ceilings measured in this run: device copy %.0f GB/s (read + write), pinned host-to-device %.1f GB/s,"
                    + " cuBLAS %d.", copyBw / 1e9, linkBw / 1e9, blas.version());
            double square = squareGemm(k, blas, 8192, Math.max(reps, 5));
            line("bf16 GEMM 8192x8192x8192 (fp32 out, fp32 accumulation): %.0f TFLOP/s.", square / 1e12);
            line("");
            long t0 = System.nanoTime();
            KvLayout layout = new KvLayout(shape.layers(), shape.kvHeads(), shape.headSize(), Precision.BF16.kvType(), BT);
            int maxTurn = overlap.length == 0 ? 0 : max(overlap) + turn;
            int maxPrefill = Math.max(Math.max(Math.max(max(prefill), max(restore) + 1), maxTurn), max(diskSizes) + 1);
            int maxSeqs = Math.max(1, max(batches));
            int maxRows = Math.max(Math.min(maxPrefill, 32768), maxSeqs);
            int perSeq = context / BT + 1;
            int maxBlocks = Math.max(maxPrefill / BT + 1, perSeq);
            try (GpuWeights w = GpuWeights.synthetic(ctx, k, shape, Precision.BF16, 42);
                 GpuLlamaEngine engine = new GpuLlamaEngine(w, k, blas, layout, maxRows, maxSeqs, maxBlocks)) {
                line("Weights: %.2f GB generated on the device in %.1f s; K/V %d bytes per token; blocks of %d tokens"
                        + " (%d bytes).", w.bytes() / 1e9, (System.nanoTime() - t0) / 1e9, layout.bytesPerToken(), BT,
                        layout.blockBytes());
                line("");
                try (CudaDeviceTier tier = CudaDeviceTier.allocate("bench", ctx, layout.blockBytes(),
                        Math.max(maxBlocks, maxSeqs * perSeq))) {
                    k.fillUniform(tier.address(0), tier.slotCount() * layout.blockBytes() / 2, Precision.BF16, 3, 1f);
                    prefill(engine, tier, prefill, reps);
                    decode(engine, tier, batches, context, copyBw, reps);
                }
                restore(engine, layout, restore, linkBw, reps);
                turn(engine, layout, overlap, turn, linkBw, reps);
                diskRestore(engine, layout, diskSizes, linkBw, reps, diskDir);
            }
        }
    }

    private static int max(int[] v) {
        return Arrays.stream(v).max().orElse(0);
    }

    private static long[] table(CudaDeviceTier tier, int from, int blocks) {
        long[] t = new long[blocks];
        for (int i = 0; i < blocks; i++) {
            t[i] = tier.address(from + i);
        }
        return t;
    }

    private void prefill(GpuLlamaEngine engine, CudaDeviceTier tier, int[] sizes, int reps) {
        if (sizes.length == 0) {
            return;
        }
        ModelShape s = engine.shape();
        int[] tokens = new Random(1).ints(max(sizes), 0, s.vocab()).toArray();
        engine.prefill(tokens, 0, Math.min(1024, tokens.length), 0, table(tier, 0, max(sizes) / BT + 1), LayerGate.NONE);
        line("## Prefill (attention on tensor cores: %s)", engine.tensorCorePrefill());
        line("");
        line("| tokens | ms | tokens/s | TFLOP/s (all) | projections alone: ms, TFLOP/s | attention alone: ms, TFLOP/s |"
                + " rest ms | achieved / projections ceiling | attention share of FLOPs |");
        line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (int n : sizes) {
            long[] table = table(tier, 0, n / BT + 1);
            double[] t = new double[reps];
            double[] g = new double[reps];
            double[] at = new double[reps];
            boolean oneChunk = n <= 32768;
            for (int r = 0; r < reps; r++) {
                long a = System.nanoTime();
                engine.prefill(tokens, 0, n, 0, table, LayerGate.NONE);
                t[r] = (System.nanoTime() - a) / 1e9;
                int chunk = Math.min(n, 32768);
                a = System.nanoTime();
                for (int done = 0; done < n; done += chunk) {
                    engine.projectionsOnly(Math.min(chunk, n - done));
                }
                engine.synchronize();
                g[r] = (System.nanoTime() - a) / 1e9;
                if (oneChunk && engine.tensorCorePrefill()) {
                    a = System.nanoTime();
                    engine.prefillAttentionOnly(n, 0);
                    engine.synchronize();
                    at[r] = (System.nanoTime() - a) / 1e9;
                }
            }
            double time = median(t);
            double gemm = median(g);
            double attn = median(at);
            double linear = 2.0 * n * (s.matmulParams() - (long) s.vocab() * s.dim()) + 2.0 * s.vocab() * s.dim();
            double attention = 4.0 * s.dim() * s.layers() * ((double) n * (n + 1) / 2);
            double achieved = (linear + attention) / time;
            double ceiling = linear / gemm;
            line("| %d | %.1f | %.0f | %.0f | %.1f, %.0f | %.1f, %.0f | %.1f | %.2f | %.2f |", n, time * 1e3, n / time,
                    achieved / 1e12, gemm * 1e3, ceiling / 1e12, attn * 1e3, attn > 0 ? attention / attn / 1e12 : 0,
                    (time - gemm - attn) * 1e3, achieved / ceiling, attention / (linear + attention));
        }
        line("");
    }

    private void decode(GpuLlamaEngine engine, CudaDeviceTier tier, int[] batches, int context, double copyBw,
                        int reps) {
        if (batches.length == 0) {
            return;
        }
        ModelShape s = engine.shape();
        int perSeq = context / BT + 1;
        line("## Decode over a context of %d tokens per sequence", context);
        line("");
        line("| batch | ms / step | tokens/s | bytes read / step | HBM bound ms | step / bound |");
        line("|---:|---:|---:|---:|---:|---:|");
        for (int b : batches) {
            int[] tokens = new Random(b).ints(b, 0, s.vocab()).toArray();
            int[] pos = new int[b];
            long[][] tables = new long[b][];
            for (int i = 0; i < b; i++) {
                pos[i] = context;
                tables[i] = table(tier, i * perSeq, perSeq);
            }
            for (int i = 0; i < 3; i++) {
                engine.decode(tokens, pos, tables, LayerGate.NONE);
            }
            int steps = Math.max(20, 5 * reps);
            double[] t = new double[steps];
            for (int i = 0; i < steps; i++) {
                long a = System.nanoTime();
                engine.decode(tokens, pos, tables, LayerGate.NONE);
                t[i] = (System.nanoTime() - a) / 1e9;
            }
            double step = median(t);
            double bytes = engine.weights().bytesReadPerStep() + (double) b * (context + 1) * engine.layout().bytesPerToken();
            double bound = bytes / copyBw;
            line("| %d | %.2f | %.0f | %.2f GB | %.2f | %.2f |", b, step * 1e3, b / step, bytes / 1e9, bound * 1e3,
                    step / bound);
        }
        line("");
    }

    private void restore(GpuLlamaEngine engine, KvLayout layout, int[] sizes, double linkBw, int reps) {
        if (sizes.length == 0) {
            return;
        }
        line("## Restore from the pinned host tier vs recompute");
        line("");
        line("Per N: two tenants' sessions of N + 1 tokens take turns in a device tier that holds one, so each run");
        line("finds its N cached tokens pushed down to pinned host memory by the other; restore = ensureResident of");
        line("the prompt's blocks until resident (whole blocks; the turn below is restored layer by layer);");
        line("recompute = prefill of the N + 1 tokens when nothing is cached. Link bound = N tokens' K/V / pinned");
        line("host-to-device bandwidth.");
        line("");
        line("| N | recompute ms | restore ms | restored from host | restore / recompute | link bound / recompute |");
        line("|---:|---:|---:|---:|---:|---:|");
        ModelShape s = engine.shape();
        for (int n : sizes) {
            int blocks = (n + 1) / BT + 1;
            int[] a = new Random(10 + n).ints(n + 1, 0, s.vocab()).toArray();
            try (KvCacheManager cache = deviceAndPinnedHost(layout, s.name(), blocks + 2, 3 * blocks).build()) {
                GpuCachedDecoder dec = new GpuCachedDecoder(engine, cache);
                byte[][] salts = {{1}, {2}};
                double recompute = dec.run(salts[0], a, 1, false).prefillNanos() / 1e9;
                dec.run(salts[1], a, 1, false);
                double[] t = new double[reps];
                long promoted = 0;
                int cached = 0;
                for (int r = 0; r < reps; r++) {
                    long before = cache.stats().bytesPromoted();
                    GpuCachedDecoder.Result res = dec.run(salts[r % 2], a, 1, false);
                    t[r] = res.restoreNanos() / 1e9;
                    promoted = cache.stats().bytesPromoted() - before;
                    cached = res.cachedTokens();
                }
                double rt = median(t);
                double bound = (double) cached * layout.bytesPerToken() / linkBw;
                line("| %d | %.1f | %.1f | %d tokens, %.0f MB | %.3f (1/%.0f) | %.3f (1/%.0f) |", n, recompute * 1e3,
                        rt * 1e3, cached, promoted / 1e6, rt / recompute, recompute / rt, bound / recompute,
                        recompute / bound);
            }
        }
        line("");
    }

    /**
     * A returning session's turn: N tokens of tenant A parked in pinned host memory (pushed down by
     * tenant B's N tokens in a device tier that holds one session), then A's turn of Q new tokens,
     * timed to its first new token three ways. A fresh suffix each turn, so only the N are cached.
     */
    private void turn(GpuLlamaEngine engine, KvLayout layout, int[] sizes, int q, double linkBw, int reps) {
        if (sizes.length == 0) {
            return;
        }
        line("## A returning session's turn: N tokens parked in pinned host memory, then %d new tokens", q);
        line("");
        line("Per N: tenant A's N tokens are pushed down to the pinned host tier by tenant B's N (a device tier that");
        line("holds one session; copies settled before each turn), then A's turn of %d new tokens is timed to its", q);
        line("first new token: **overlap** = ensureResident of every layer (partial device slots, one CUDA batch per");
        line("group of layers of the cache's layerCopyBytes, 256 KiB by default) with the prefill's layer l waiting");
        line("for the batch bringing layer l on the device (LayerGate.onDevice,");
        line("cuStreamWaitEvent); **overlap, host waits** = the same with the host awaiting each layer");
        line("(LayerGate.perLayer);");
        line("**no overlap** = whole blocks awaited, then the prefill (its parts: restore, compute); **recompute** =");
        line("prefill of all N + %d tokens, nothing cached. Ideal overlap = max(restore, compute) of the no-overlap", q);
        line("turn. Link bound = N tokens' K/V / pinned host-to-device bandwidth. Median of %d turns after one warm-up.",
                reps);
        line("");
        line("| N | recompute ms | no overlap ms (restore + compute) | overlap ms | overlap, host waits ms |"
                + " overlap / no overlap | overlap / recompute | no overlap / recompute | overlap / ideal |"
                + " link bound ms | MB restored |");
        line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        ModelShape s = engine.shape();
        for (int n : sizes) {
            int blocks = (n + q) / BT + 1;
            Random rnd = new Random(30 + n);
            int[] prefix = rnd.ints(n, 0, s.vocab()).toArray();
            try (KvCacheManager cache = deviceAndPinnedHost(layout, s.name(), blocks + 2, 3 * blocks).build()) {
                GpuCachedDecoder dec = new GpuCachedDecoder(engine, cache);
                byte[] a = {1};
                dec.run(a, prefix, 1, false);
                double[] over = new double[reps];
                double[] overHost = new double[reps];
                double[] whole = new double[reps];
                double[] wholeRestore = new double[reps];
                double[] wholeCompute = new double[reps];
                double[] recompute = new double[reps];
                long restoredBytes = 0;
                // A's turns first, overlap and no overlap alternating, after one warm-up of each
                for (int r = -1; r < reps; r++) {
                    long before = cache.stats().bytesPromoted();
                    GpuCachedDecoder.Result o = turnOnce(dec, cache, a, prefix, q, s.vocab(), rnd,
                            GpuCachedDecoder.Residency.PER_LAYER);
                    restoredBytes = cache.stats().bytesPromoted() - before;
                    GpuCachedDecoder.Result oh = turnOnce(dec, cache, a, prefix, q, s.vocab(), rnd,
                            GpuCachedDecoder.Residency.PER_LAYER_HOST_WAIT);
                    GpuCachedDecoder.Result w = turnOnce(dec, cache, a, prefix, q, s.vocab(), rnd,
                            GpuCachedDecoder.Residency.WHOLE);
                    if (r >= 0) {
                        over[r] = (o.restoreNanos() + o.prefillNanos()) / 1e9;
                        overHost[r] = (oh.restoreNanos() + oh.prefillNanos()) / 1e9;
                        whole[r] = (w.restoreNanos() + w.prefillNanos()) / 1e9;
                        wholeRestore[r] = w.restoreNanos() / 1e9;
                        wholeCompute[r] = w.prefillNanos() / 1e9;
                    }
                }
                // then the recomputes, whose sessions (N + Q tokens each, pushed down in turn) may
                // evict A's parked tokens: each under a salt of its own, so nothing is cached
                for (int r = -1; r < reps; r++) {
                    GpuCachedDecoder.Result c = turnOnce(dec, cache, new byte[] {3, (byte) r}, prefix, q, s.vocab(),
                            rnd, null);
                    if (r >= 0) {
                        recompute[r] = (c.restoreNanos() + c.prefillNanos()) / 1e9;
                    }
                }
                double ov = median(over);
                double wh = median(whole);
                double rc = median(recompute);
                double ideal = Math.max(median(wholeRestore), median(wholeCompute));
                double bound = (double) n * layout.bytesPerToken() / linkBw;
                double oh = median(overHost);
                line("| %d | %.1f | %.1f (%.1f + %.1f) | %.1f | %.1f | %.3f | %.3f (1/%.1f) | %.3f (1/%.1f) | %.3f | %.1f"
                        + " | %.0f |", n, rc * 1e3, wh * 1e3, median(wholeRestore) * 1e3, median(wholeCompute) * 1e3,
                        ov * 1e3, oh * 1e3, ov / wh, ov / rc, rc / ov, wh / rc, rc / wh, ov / ideal, bound * 1e3,
                        restoredBytes / 1e6);
            }
        }
        line("");
    }

    /**
     * A restart: a session's N + 1 tokens are prefilled by one process's cache (written through to
     * the disk tier), the cache is closed, and a new cache on the same directory serves the same
     * prompt, finding its N tokens on disk. Cold: the data file dropped from the page cache first
     * (what a restart after the machine's memory moved on sees); warm: the file's pages still
     * cached (a process restart). Each measured turn opens a cache of its own.
     */
    private void diskRestore(GpuLlamaEngine engine, KvLayout layout, int[] sizes, double linkBw, int reps, Path base)
            throws IOException {
        if (sizes.length == 0) {
            return;
        }
        line("## Restore after a restart: from the disk tier vs recompute");
        line("");
        line("Per N: a cache with device, pinned host and disk tiers (write-through) prefills N + 1 tokens and is");
        line("closed; then, per turn, a new cache on the same directory serves the same prompt and finds N tokens on");
        line("disk. **cold** = the data file dropped from the page cache first (`posix_fadvise(DONTNEED)`), **warm** =");
        line("its pages still cached. restore = ensureResident of the prompt's blocks until resident (whole blocks);");
        line("turn = restore + compute to the first new token; per layer = the turn with the restore layer by layer");
        line("under the prefill (LayerGate.onDevice). Disk read = the data file read cold, sequentially, in the same");
        line("run; disk bound = N tokens' K/V / min(disk read, pinned host-to-device). Median of %d turns.", reps);
        line("");
        line("| N | recompute ms | disk read GB/s | cold: restore ms | cold: turn ms | cold: turn per layer ms"
                + " | warm: restore ms | warm: turn ms | warm: turn per layer ms | cold turn / recompute"
                + " | warm turn / recompute | disk bound / recompute |");
        line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        ModelShape s = engine.shape();
        Files.createDirectories(base);
        for (int n : sizes) {
            int blocks = (n + 1) / BT + 1;
            int[] prompt = new Random(50 + n).ints(n + 1, 0, s.vocab()).toArray();
            Path dir = Files.createTempDirectory(base, "gpu-engine-disk-");
            try {
                byte[] salt = {9};
                double recompute;
                try (KvCacheManager cache = diskCache(layout, dir, blocks)) {
                    recompute = new GpuCachedDecoder(engine, cache).run(salt, prompt, 1, false).prefillNanos() / 1e9;
                }
                Path data = dir.resolve(io.kvcache.tiers.disk.MappedFileTier.DATA_FILE);
                double diskBw = coldRead(data, (long) blocks * layout.blockBytes());
                double[][] t = new double[6][reps];
                for (int r = -1; r < reps; r++) {
                    for (int cold = 1; cold >= 0; cold--) {
                        for (GpuCachedDecoder.Residency res : new GpuCachedDecoder.Residency[] {
                                GpuCachedDecoder.Residency.WHOLE, GpuCachedDecoder.Residency.PER_LAYER}) {
                            if (cold == 1) {
                                io.kvcache.bench.disk.DiskTierBenchmark.evictFromPageCache(data);
                            }
                            GpuCachedDecoder.Result o;
                            try (KvCacheManager cache = diskCache(layout, dir, blocks)) {
                                o = new GpuCachedDecoder(engine, cache).run(salt, prompt, 1, false, res);
                            }
                            if (o.cachedTokens() != n / BT * BT) {
                                throw new IllegalStateException("a restart after " + n + " tokens found "
                                        + o.cachedTokens() + " on disk, not " + n / BT * BT);
                            }
                            if (r < 0) {
                                continue;
                            }
                            int col = (cold == 1 ? 0 : 3);
                            if (res == GpuCachedDecoder.Residency.WHOLE) {
                                t[col][r] = o.restoreNanos() / 1e9;
                                t[col + 1][r] = (o.restoreNanos() + o.prefillNanos()) / 1e9;
                            } else {
                                t[col + 2][r] = (o.restoreNanos() + o.prefillNanos()) / 1e9;
                            }
                        }
                    }
                }
                double bound = (double) n * layout.bytesPerToken() / Math.min(diskBw, linkBw);
                line("| %d | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f | %.3f | %.3f |", n,
                        recompute * 1e3, diskBw / 1e9, median(t[0]) * 1e3, median(t[1]) * 1e3, median(t[2]) * 1e3,
                        median(t[3]) * 1e3, median(t[4]) * 1e3, median(t[5]) * 1e3,
                        Math.min(median(t[1]), median(t[2])) / recompute,
                        Math.min(median(t[4]), median(t[5])) / recompute, bound / recompute);
            } finally {
                deleteTree(dir);
            }
        }
        line("");
    }

    private KvCacheManager diskCache(KvLayout layout, Path dir, int blocks) {
        return deviceAndPinnedHost(layout, "gpu-engine-disk", blocks + 2, blocks + 2)
                .tier(io.kvcache.tiers.disk.MappedFileTier.builder(layout).directory(dir).modelId("gpu-engine-disk")
                        .capacityBytes((long) (blocks + 4) * layout.blockBytes()).name("disk").open()).build();
    }

    /** A cache's device and pinned host tiers (slots of the layout's blocks) and CUDA engine; tiers below may follow. */
    private KvCacheManager.Builder deviceAndPinnedHost(KvLayout layout, String model, int deviceSlots, int hostSlots) {
        return KvCacheManager.builder(layout).modelId(model)
                .tier(CudaDeviceTier.allocate("device", ctx, layout.blockBytes(), deviceSlots))
                .tier(PinnedHostTier.builder(layout, (long) hostSlots * layout.blockBytes()).context(ctx).build())
                .transferEngine(CudaTransferEngine.builder(ctx).calibrate(layout.blockBytes()).build());
    }

    /** @return GB/s of one sequential read of a file's first {@code bytes}, from the device (page cache dropped) */
    private static double coldRead(Path file, long bytes) throws IOException {
        io.kvcache.bench.disk.DiskTierBenchmark.evictFromPageCache(file);
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocateDirect(16 << 20);
        long t0 = System.nanoTime();
        long read = 0;
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            long end = Math.min(bytes, ch.size());
            while (read < end) {
                buf.clear();
                int got = ch.read(buf, read);
                if (got < 0) {
                    break;
                }
                read += got;
            }
        }
        return read / ((System.nanoTime() - t0) / 1e9);
    }

    private static void deleteTree(Path p) throws IOException {
        try (java.util.stream.Stream<Path> st = Files.walk(p)) {
            for (Path f : st.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
    }

    /**
     * Tenant B's N tokens push tenant A's down (copies settled), then a turn of {@code q} fresh
     * tokens after {@code prefix} under {@code salt}: A's with {@code residency}, or a recompute
     * under a salt nothing is cached for ({@code residency} null).
     */
    private static GpuCachedDecoder.Result turnOnce(GpuCachedDecoder dec, KvCacheManager cache, byte[] salt,
                                                    int[] prefix, int q, int vocab, Random rnd,
                                                    GpuCachedDecoder.Residency residency) {
        int n = prefix.length;
        dec.run(new byte[] {2}, prefix, 1, false);
        if (!cache.awaitIdle(java.time.Duration.ofSeconds(120))) {
            throw new IllegalStateException("copies did not settle before the turn");
        }
        int[] prompt = Arrays.copyOf(prefix, n + q);
        for (int i = n; i < n + q; i++) {
            prompt[i] = rnd.nextInt(vocab);
        }
        GpuCachedDecoder.Result res = residency == null ? dec.run(salt, prompt, 1, false)
                : dec.run(salt, prompt, 1, false, residency);
        int want = residency == null ? 0 : n / BT * BT;
        if (res.cachedTokens() != want) {
            throw new IllegalStateException("a turn after " + n + " tokens found " + res.cachedTokens()
                    + " cached, not " + want);
        }
        return res;
    }

    private double deviceCopyBandwidth(long bytes) {
        long src = ctx.allocate(bytes);
        long dst = ctx.allocate(bytes);
        try {
            ctx.check(cu.cuMemsetD8_v2(src, (byte) 7, bytes), "cuMemsetD8");
            double[] t = new double[7];
            for (int i = -2; i < t.length; i++) {
                ctx.check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
                long a = System.nanoTime();
                ctx.check(cu.cuMemcpy(dst, src, bytes), "cuMemcpy");
                ctx.check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
                if (i >= 0) {
                    t[i] = (System.nanoTime() - a) / 1e9;
                }
            }
            return 2.0 * bytes / median(t);
        } finally {
            ctx.free(src);
            ctx.free(dst);
        }
    }

    private double hostToDeviceBandwidth(long bytes) {
        long host = ctx.hostAllocate(bytes);
        long dev = ctx.allocate(bytes);
        try {
            new Pointer(host).setMemory(0, bytes, (byte) 3);
            double[] t = new double[5];
            for (int i = -1; i < t.length; i++) {
                long a = System.nanoTime();
                ctx.check(cu.cuMemcpyHtoD_v2(dev, host, bytes), "cuMemcpyHtoD");
                if (i >= 0) {
                    t[i] = (System.nanoTime() - a) / 1e9;
                }
            }
            return bytes / median(t);
        } finally {
            ctx.free(dev);
            ctx.hostFree(host);
        }
    }

    private double squareGemm(EngineKernels k, Cublas blas, int n, int reps) {
        long elems = (long) n * n;
        long a = ctx.allocate(elems * 2);
        long b = ctx.allocate(elems * 2);
        long c = ctx.allocate(elems * 4);
        try {
            k.fillUniform(a, elems, Precision.BF16, 1, 1f);
            k.fillUniform(b, elems, Precision.BF16, 2, 1f);
            double[] t = new double[reps];
            for (int i = -2; i < reps; i++) {
                ctx.check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
                long t0 = System.nanoTime();
                blas.project(c, a, b, n, n, n, io.kvcache.examples.gpu.CublasLibrary.CUDA_R_16BF, false);
                ctx.check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
                if (i >= 0) {
                    t[i] = (System.nanoTime() - t0) / 1e9;
                }
            }
            return 2.0 * n * n * (double) n / median(t);
        } finally {
            ctx.free(a);
            ctx.free(b);
            ctx.free(c);
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
