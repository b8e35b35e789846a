package io.kvcache.bench.manager;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayerWindows;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Layer-wise residency, measured against ceilings taken in the same run.
 *
 * <p><b>Decode step.</b> A sequence whose KV is {@code --kv-factor} times the device tier; one
 * step pins the tail block, writes one token's K/V per layer into it, and attends over the other
 * blocks layer by layer through {@link KvCacheManager#layerWindows}. Reported: the step's time
 * against the <em>transfer-bound</em> time of the same step, which is the time the same engine
 * takes, in the same run, to move the exact-attention bound (the blocks that do not fit the
 * device tier) from the host tier to a device tier of the same kind in one batch of whole
 * blocks; and the bytes the step moved against that bound. On the CPU the fold reads every byte
 * of the window's layer slices (a memory-bound stand-in for attention); with {@code --device
 * cuda} there is no fold (the GPU engine measures real attention).
 *
 * <p><b>Restore.</b> An N-token session whose KV sits in the host tier comes back to the device
 * before a prefill-like pass runs a synthetic per-layer compute of fixed length (a busy wait):
 * with per-layer overlap (one request for every layer, layer {@code l}'s compute starts when
 * {@code layerReady(l)} completes) against without (the whole blocks land, then every layer
 * computes). The compute per layer is the no-overlap copy time divided by the layers, measured
 * in the same run, so copy and compute are equal and perfect overlap halves the time; the ideal
 * is {@code max(copy, compute) + copy / layers}.
 *
 * <p>Usage: {@code LayerwiseBenchmark [--device cpu|cuda] [--device-blocks T] [--kv-factor F]
 * [--window W] [--ahead K] [--steps S] [--restore-tokens N] [--reps R] [--only decode|restore] [--no-fold]
 * [--compute spin|park]}; {@code park} stands for compute on another device (a GPU kernel) where
 * a busy wait would take the cores the CPU engine copies with.
 */
public final class LayerwiseBenchmark {
    private static final KvLayout LAYOUT = new KvLayout(32, 8, 128, DType.BF16, 16);   // Llama-3-8B: 64 KiB layer slices

    /** Keeps the CPU fold's reads from being optimized away. */
    static volatile long blackhole;

    private final boolean cuda;
    private final CudaContext ctx;
    private boolean noFold;
    /** Whether the synthetic compute parks instead of spinning (compute on another device, not on these cores). */
    private boolean parkCompute;

    private LayerwiseBenchmark(boolean cuda) {
        this.cuda = cuda;
        this.ctx = cuda ? CudaContext.device(0) : null;
    }

    public static void main(String[] args) {
        boolean cuda = false;
        int deviceBlocks = 16;
        int kvFactor = 4;
        int window = 0;
        int ahead = 1;
        int steps = 10;
        int restoreTokens = 1024;
        int reps = 5;
        String only = "";
        boolean noFold = false;
        boolean park = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> cuda = switch (args[++i]) {
                    case "cuda" -> true;
                    case "cpu" -> false;
                    default -> throw new IllegalArgumentException("--device expects cpu or cuda, got " + args[i]);
                };
                case "--device-blocks" -> deviceBlocks = Integer.parseInt(args[++i]);
                case "--kv-factor" -> kvFactor = Integer.parseInt(args[++i]);
                case "--window" -> window = Integer.parseInt(args[++i]);
                case "--ahead" -> ahead = Integer.parseInt(args[++i]);
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--restore-tokens" -> restoreTokens = Integer.parseInt(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--only" -> only = args[++i];
                case "--no-fold" -> noFold = true;
                case "--compute" -> park = switch (args[++i]) {
                    case "spin" -> false;
                    case "park" -> true;
                    default -> throw new IllegalArgumentException("--compute expects spin or park, got " + args[i]);
                };
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        LayerwiseBenchmark b = new LayerwiseBenchmark(cuda);
        b.noFold = noFold;
        b.parkCompute = park;
        System.out.printf(Locale.ROOT, "layout %s: block %d KiB, layer slice %d KiB; device %s%n", LAYOUT,
                LAYOUT.blockBytes() >> 10, LAYOUT.layerBytes() >> 10, cuda ? "cuda (GPU 0)" : "cpu (simulated device)");
        int w = window > 0 ? window : LayerWindows.Options.forTopTier(deviceBlocks).windowBlocks();
        if (!only.equals("restore")) {
            b.decodeStep(deviceBlocks, deviceBlocks * kvFactor, w, ahead, false, steps);
            b.decodeStep(deviceBlocks, deviceBlocks * kvFactor, w, ahead, true, steps);
        }
        if (!only.equals("decode")) {
            b.restore(restoreTokens, reps);
        }
    }

    private Tier deviceTier(String name, int slots) {
        return cuda ? CudaDeviceTier.allocate(name, ctx, LAYOUT.blockBytes(), slots)
                : new SimulatedDeviceTier(name, LAYOUT, slots * LAYOUT.blockBytes());
    }

    private Tier hostTier(String name, int slots) {
        return cuda ? PinnedHostTier.builder(LAYOUT, slots * LAYOUT.blockBytes()).name(name).context(ctx).build()
                : new MmapHostTier(name, LAYOUT, slots * LAYOUT.blockBytes());
    }

    private TransferEngine engine() {
        return cuda ? CudaTransferEngine.builder(ctx).calibrate(LAYOUT.blockBytes()).build()
                : CpuTransferEngine.withDefaults();
    }

    private KvCacheManager cache(int deviceSlots, int hostSlots) {
        KvCacheManager.Builder b = KvCacheManager.builder(LAYOUT).modelId("layerwise-bench")
                .tier(deviceTier("device", deviceSlots)).tier(hostTier("host", hostSlots));
        if (cuda) {
            b.transferEngine(engine());
        }
        return b.build();
    }

    /** A sequence of {@code blocks} full blocks, written (whole blocks, as a prefill does) and sealed. */
    private static Sequence written(KvCacheManager cache, int salt, int blocks) {
        int bt = LAYOUT.blockTokens();
        int[] prompt = new int[blocks * bt];
        Arrays.setAll(prompt, i -> 1 + (i * 7 + salt) % 30000);
        Sequence s = cache.open(new byte[] {(byte) salt}, prompt);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment one = a.allocate(LAYOUT.tokenLayerBytes());
            for (int b = 0; b < blocks; b++) {
                try (ResidencyHandle h = cache.ensureResident(s, b, b + 1)) {
                    h.await();
                    one.fill((byte) (b + salt));
                    for (int t = 0; t < bt; t++) {
                        for (int layer = 0; layer < LAYOUT.layers(); layer++) {
                            h.write(b, BlockLayoutDescriptor.tokenOffset(LAYOUT, layer, BlockLayoutDescriptor.K, t), one);
                            h.write(b, BlockLayoutDescriptor.tokenOffset(LAYOUT, layer, BlockLayoutDescriptor.V, t), one);
                        }
                    }
                }
            }
        }
        s.markWritten(s.length());
        return s;
    }

    /** The CPU stand-in for attention over one window: reads every byte of its layer slices. */
    private long fold(ResidencyHandle w, int layer) {
        if (cuda || noFold) {
            return 0;
        }
        long sum = 0;
        for (int b = w.fromBlock(); b < w.fromBlock() + w.blockCount(); b++) {
            MemorySegment v = w.view(b, layer);
            for (long o = 0; o < v.byteSize(); o += 8) {
                sum += v.get(ValueLayout.JAVA_LONG_UNALIGNED, o);
            }
        }
        return sum;
    }

    /** Median time to move {@code blocks} whole blocks host -> device in one batch of the engine the cache uses. */
    private long transferBoundNanos(int blocks, int reps) {
        try (Tier host = hostTier("bound-host", blocks); Tier dev = deviceTier("bound-device", blocks);
             TransferEngine e = engine()) {
            // slots are allocated as the manager would: the CUDA engine refuses copies of free slots
            List<BlockMove> moves = new ArrayList<>(blocks);
            for (int i = 0; i < blocks; i++) {
                moves.add(new BlockMove(host.allocate(), dev.allocate()));
            }
            TransferBatch batch = new TransferBatch(host, dev, moves);
            long[] t = new long[reps + 1];
            for (int r = 0; r <= reps; r++) {
                long t0 = System.nanoTime();
                e.submit(batch).completion().join();
                t[r] = System.nanoTime() - t0;
            }
            return median(Arrays.copyOfRange(t, 1, t.length));
        }
    }

    private void decodeStep(int deviceBlocks, int kvBlocks, int window, int ahead, boolean prefetchEvicts, int steps) {
        int bound = Math.max(0, kvBlocks - deviceBlocks);
        long boundNanos = transferBoundNanos(bound, steps);
        try (KvCacheManager cache = cache(deviceBlocks, kvBlocks + 8); Arena a = Arena.ofConfined()) {
            Sequence s = written(cache, 1, kvBlocks - 1);
            int bt = LAYOUT.blockTokens();
            s.append(7);   // the tail: one token in a fresh block
            int tb = kvBlocks - 1;
            MemorySegment one = a.allocate(LAYOUT.tokenLayerBytes());
            LayerWindows.Options opts = new LayerWindows.Options(window, prefetchEvicts, ahead);
            long[] t = new long[steps + 1];
            long[] bytes = new long[steps + 1];
            long sink = 0;
            for (int step = 0; step <= steps; step++) {
                CacheStats before = cache.stats();
                long t0 = System.nanoTime();
                try (ResidencyHandle tail = cache.ensureResident(s, tb, tb + 1);
                     LayerWindows windows = cache.layerWindows(s, 0, tb, opts)) {
                    tail.await();
                    for (int layer = 0; layer < LAYOUT.layers(); layer++) {
                        tail.write(tb, BlockLayoutDescriptor.tokenOffset(LAYOUT, layer, BlockLayoutDescriptor.K, 0), one);
                        tail.write(tb, BlockLayoutDescriptor.tokenOffset(LAYOUT, layer, BlockLayoutDescriptor.V, 0), one);
                        for (ResidencyHandle w : windows.layer(layer)) {
                            sink += fold(w, layer);
                        }
                    }
                }
                t[step] = System.nanoTime() - t0;
                bytes[step] = cache.stats().bytesPromoted() - before.bytesPromoted();
            }
            // step 0 warms up (and fills the device from the prefill's leftovers); the rest are steady
            long stepNanos = median(Arrays.copyOfRange(t, 1, t.length));
            long stepBytes = median(Arrays.copyOfRange(bytes, 1, bytes.length));
            long boundBytes = bound * LAYOUT.blockBytes();
            System.out.printf(Locale.ROOT, "decode step  %sKV %d blocks (%d MiB) over a device of %d blocks, windows of %d, "
                            + "%d ahead %s: step %.2f ms, transfer-bound %.2f ms (%d blocks in one batch) = %.3fx; "
                            + "moved %d MiB per step, bound %d MiB = %.3fx (%s)%n",
                    cuda || noFold ? "(no fold) " : "(fold reads every slice) ", kvBlocks,
                    (kvBlocks * LAYOUT.blockBytes()) >> 20, deviceBlocks, window, ahead,
                    prefetchEvicts ? "(may evict)" : "(free/partial slots only)", stepNanos / 1e6, boundNanos / 1e6, bound,
                    (double) stepNanos / boundNanos, stepBytes >> 20, boundBytes >> 20,
                    (double) stepBytes / boundBytes, "median of " + steps);
            blackhole = sink;
        }
    }

    private void restore(int tokens, int reps) {
        int blocks = (tokens + LAYOUT.blockTokens() - 1) / LAYOUT.blockTokens();
        int layers = LAYOUT.layers();
        try (KvCacheManager cache = cache(blocks + 1, 2 * blocks + 4)) {
            Sequence session = written(cache, 2, blocks);
            Sequence other = written(cache, 3, blocks);   // pushes the session down to the host tier
            // calibrate: the no-overlap copy alone, so that compute per layer = copy / layers
            long copy = median(timeRestores(cache, session, other, reps, 0, false));
            long perLayer = copy / layers;
            long layered = median(timeRestores(cache, session, other, reps, 0, true));
            long[] without = timeRestores(cache, session, other, reps, perLayer, false);
            long[] with = timeRestores(cache, session, other, reps, perLayer, true);
            if (Boolean.getBoolean("layerwise.verbose")) {
                System.out.println("without " + Arrays.toString(without) + "\nwith    " + Arrays.toString(with));
            }
            long w0 = median(without);
            long w1 = median(with);
            long ideal = Math.max(copy, perLayer * layers) + copy / layers;
            System.out.printf(Locale.ROOT, "restore      %d tokens = %d blocks (%d MiB) from the host tier, %d layers, "
                            + "compute %.3f ms per layer (%s; = copy / layers): copy alone %.2f ms whole, %.2f ms"
                            + " by layer (one batch per group of layerCopyBytes); without overlap "
                            + "%.2f ms, with per-layer overlap %.2f ms = %.3fx of without; ideal %.2f ms, overlap at %.3fx of it"
                            + " (median of %d)%n",
                    tokens, blocks, (blocks * LAYOUT.blockBytes()) >> 20, layers, perLayer / 1e6,
                    parkCompute ? "parked: compute on another device" : "busy wait on these cores", copy / 1e6,
                    layered / 1e6, w0 / 1e6,
                    w1 / 1e6, (double) w1 / w0, ideal / 1e6, (double) w1 / ideal, reps);
        }
    }

    /** Each rep: push the session down (by touching the other sequence), then restore it and compute. */
    private long[] timeRestores(KvCacheManager cache, Sequence session, Sequence other, int reps, long perLayerNanos,
                                boolean overlap) {
        int blocks = session.blockCount();
        int layers = LAYOUT.layers();
        long[] t = new long[reps];
        for (int r = 0; r < reps; r++) {
            try (ResidencyHandle h = cache.ensureResident(other, 0, other.blockCount())) {
                h.await();
            }
            if (!cache.awaitIdle(java.time.Duration.ofSeconds(60))) {
                throw new IllegalStateException("copies did not settle");
            }
            long t0 = System.nanoTime();
            if (overlap) {
                try (ResidencyHandle h = cache.ensureResident(session, 0, blocks, 0, layers)) {
                    for (int l = 0; l < layers; l++) {
                        h.awaitLayer(l);
                        spin(perLayerNanos);
                    }
                }
            } else {
                try (ResidencyHandle h = cache.ensureResident(session, 0, blocks)) {
                    h.await();
                    for (int l = 0; l < layers; l++) {
                        spin(perLayerNanos);
                    }
                }
            }
            t[r] = System.nanoTime() - t0;
        }
        return t;
    }

    private void spin(long nanos) {
        long end = System.nanoTime() + nanos;
        if (parkCompute) {
            for (long left = nanos; left > 0; left = end - System.nanoTime()) {
                java.util.concurrent.locks.LockSupport.parkNanos(left);
            }
            return;
        }
        while (System.nanoTime() < end) {
            Thread.onSpinWait();
        }
    }

    private static long median(long[] xs) {
        long[] c = xs.clone();
        Arrays.sort(c);
        return c[c.length / 2];
    }
}
