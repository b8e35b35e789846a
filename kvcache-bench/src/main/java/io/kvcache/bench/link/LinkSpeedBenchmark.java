package io.kvcache.bench.link;

import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CopyMethod;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import io.kvcache.tiers.transfer.CudaTransferHandle;
import io.kvcache.tiers.transfer.Direction;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;

/**
 * Measures how close {@link CudaTransferEngine} gets to the PCIe link's speed.
 *
 * <p>One run measures its own ceilings (one large pinned copy each way through the driver, and
 * both directions at once on two streams), then moves {@code total} bytes of blocks in random
 * slot order between a {@link PinnedHostTier} and a {@link CudaDeviceTier} for each block size:
 * host-to-device, device-to-host, and both at once, through each copy method (the engine's
 * measured choice, the kernel, {@code cuMemcpyBatchAsync}, and one copy per block as the
 * baseline). Data is random; every timed run's bytes are verified after it. Times are wall clock
 * from submit to completion, median of the repetitions.
 *
 * <p>With {@code --slices L}, each size is a layer slice of blocks of {@code L} slices (for a
 * Llama-3-8B layout with 16-token blocks, {@code --sizes 64K --slices 32}: 64 KiB of 2 MiB
 * blocks), and a run moves every slice of its blocks as one batch per slice index ({@code L}
 * batches per direction, submitted back to back, each the same byte range of every block), as
 * an engine that restores layer by layer does; the time runs to the last batch's completion.
 *
 * <p>{@code --variants} picks the copy paths measured, comma-separated, each
 * {@code METHOD[-o|-u][-sN][-cN][-a]}: {@code METHOD} one of {@code auto} (the engine's measured
 * choice), {@code kernel}, {@code batch} ({@code cuMemcpyBatchAsync}), {@code perblock};
 * {@code -o} every batch in host-address order, {@code -u} every batch in the order given
 * (default: the engine's, which orders batched copies only); {@code -sN} batched copies spread
 * over {@code N} streams per direction (default: the engine's); {@code -cN} {@code N} copies per
 * batched call; {@code -a} batched copies may read their sources in any order. Default
 * {@code auto,kernel,batch,batch-u-s1,perblock}.
 *
 * <p>{@code --warmup W} untimed runs before each variant's timed ones (default 1; the first
 * variant measured after a block size's setup has read up to 0.14 of the ceiling low with one).
 *
 * <p>Usage: {@code LinkSpeedBenchmark [--device N] [--total-mib M] [--reps R] [--warmup W] [--sizes 16K,64K,256K,2M]
 * [--slices L] [--variants auto,kernel,...] [--out results.md] [--csv results.csv]}
 */
public final class LinkSpeedBenchmark {

    private final CudaContext ctx;
    private final long total;
    private final int reps;
    private int warmup = 1;
    private final PrintStream log = System.out;
    private final ExecutorService second = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "link-bench-evict");
        t.setDaemon(true);
        return t;
    });
    private double ceilH2D;
    private double ceilD2H;
    private double ceilBoth;
    private double[] ceilingsBefore;

    private final int slices;
    private final List<VariantSpec> variantSpecs;

    private LinkSpeedBenchmark(CudaContext ctx, long total, int reps, int slices, List<VariantSpec> variantSpecs) {
        this.ctx = ctx;
        this.total = total;
        this.reps = reps;
        this.slices = slices;
        this.variantSpecs = variantSpecs;
    }

    /**
     * One row of the results.
     *
     * @param blockBytes bytes per copy (a whole block, or one slice of it)
     * @param slotBytes  bytes per block
     */
    record Row(long blockBytes, long slotBytes, String method, String direction, double gbps, double ratio,
               String chosen) {
    }

    /**
     * A copy path to measure, parsed from {@code METHOD[-o][-sN][-cN]}.
     *
     * @param method  the method, or null for the engine's choice
     * @param ordered blocks in host-address order (true), in batch order (false), or as the engine orders them (null)
     * @param streams streams per direction for batched copies, or 0 for the engine's default
     * @param call    copies per batched call, or 0 for the engine's default
     * @param any     batched copies may read their sources in any order
     */
    record VariantSpec(String key, CopyMethod method, Boolean ordered, int streams, int call, boolean any) {
        static VariantSpec parse(String key) {
            String[] parts = key.trim().split("-");
            CopyMethod m = switch (parts[0]) {
                case "auto" -> null;
                case "kernel" -> CopyMethod.KERNEL;
                case "batch" -> CopyMethod.BATCH_MEMCPY;
                case "perblock" -> CopyMethod.PER_BLOCK;
                default -> throw new IllegalArgumentException("unknown method '" + parts[0] + "' in variant " + key);
            };
            Boolean ordered = null;
            int streams = 0;
            int call = 0;
            boolean any = false;
            for (int i = 1; i < parts.length; i++) {
                String p = parts[i];
                if (p.equals("o")) {
                    ordered = true;
                } else if (p.equals("u")) {
                    ordered = false;
                } else if (p.equals("a")) {
                    any = true;
                } else if (p.startsWith("s")) {
                    streams = Integer.parseInt(p.substring(1));
                } else if (p.startsWith("c")) {
                    call = Integer.parseInt(p.substring(1));
                } else {
                    throw new IllegalArgumentException("unknown option '" + p + "' in variant " + key);
                }
            }
            return new VariantSpec(key.trim(), m, ordered, streams, call, any);
        }

        String name() {
            StringBuilder sb = new StringBuilder(method == null ? "engine (auto)"
                    : method == CopyMethod.PER_BLOCK ? "PER_BLOCK baseline" : method.name());
            if (ordered != null) {
                sb.append(ordered ? ", blocks in host-address order" : ", blocks in batch order");
            }
            if (streams > 0) {
                sb.append(", ").append(streams).append(streams == 1 ? " stream" : " streams");
            }
            if (call > 0) {
                sb.append(", calls of ").append(call);
            }
            if (any) {
                sb.append(", sources in any order");
            }
            return sb.toString();
        }

        /** @return the engine configuration this variant needs (variants with equal keys share an engine) */
        String engineKey() {
            return ordered + "/" + streams + "/" + call + "/" + any;
        }
    }

    public static void main(String[] args) throws Exception {
        int device = 0;
        long totalMiB = 1024;
        int reps = 5;
        int warmup = 1;
        long[] sizes = {16 << 10, 64 << 10, 256 << 10, 2 << 20};
        Path out = null;
        Path csv = null;
        int slices = 0;
        String variants = "auto,kernel,batch,batch-u-s1,perblock";
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--slices" -> slices = Integer.parseInt(args[++i]);
                case "--variants" -> variants = args[++i];
                case "--device" -> device = Integer.parseInt(args[++i]);
                case "--total-mib" -> totalMiB = Long.parseLong(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--sizes" -> sizes = Arrays.stream(args[++i].split(",")).mapToLong(LinkSpeedBenchmark::parseSize).toArray();
                case "--out" -> out = Path.of(args[++i]);
                case "--csv" -> csv = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        CudaContext ctx = CudaContext.device(device);
        List<VariantSpec> specs = Arrays.stream(variants.split(",")).map(VariantSpec::parse).toList();
        LinkSpeedBenchmark b = new LinkSpeedBenchmark(ctx, totalMiB << 20, reps, slices, specs);
        if (warmup < 1) {
            throw new IllegalArgumentException("--warmup must be at least 1, was " + warmup);
        }
        b.warmup = warmup;
        String started = ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
        b.log.printf("link speed on %s, driver %d, %d MiB per run, %d reps%n", ctx, Cuda.driverVersion(), totalMiB, reps);
        b.measureCeilings();
        double[] before = {b.ceilH2D, b.ceilD2H, b.ceilBoth};
        List<Row> measured = new ArrayList<>();
        for (long size : sizes) {
            measured.addAll(b.measureBlockSize(size));
        }
        // measured again after the copies, and the higher of the two kept: a ceiling that read low
        // once (a cold link, say) would flatter every ratio
        b.measureCeilings();
        b.ceilH2D = Math.max(b.ceilH2D, before[0]);
        b.ceilD2H = Math.max(b.ceilD2H, before[1]);
        b.ceilBoth = Math.max(b.ceilBoth, before[2]);
        b.ceilingsBefore = before;
        List<Row> rows = new ArrayList<>();
        for (Row r : measured) {
            double ceil = r.direction.equals("h2d") ? b.ceilH2D : r.direction.equals("d2h") ? b.ceilD2H : b.ceilBoth;
            rows.add(new Row(r.blockBytes, r.slotBytes, r.method, r.direction, r.gbps, r.gbps / ceil, r.chosen));
        }
        String table = b.table(rows, started, String.join(" ", args));
        b.log.println();
        b.log.println(table);
        if (out != null) {
            Files.writeString(out, table);
        }
        if (csv != null) {
            StringBuilder sb = new StringBuilder("block_bytes,method,direction,gbps,ratio,slot_bytes\n");
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%d,\"%s\",%s,%.2f,%.3f,%d%n", r.blockBytes, r.method,
                        r.direction, r.gbps, r.ratio, r.slotBytes));
            }
            sb.append(String.format(Locale.ROOT, "0,ceiling,h2d,%.2f,1,0%n0,ceiling,d2h,%.2f,1,0%n"
                    + "0,ceiling,both,%.2f,1,0%n", b.ceilH2D, b.ceilD2H, b.ceilBoth));
            Files.writeString(csv, sb.toString());
        }
    }

    static long parseSize(String s) {
        s = s.trim().toUpperCase(Locale.ROOT);
        long mul = s.endsWith("K") ? 1 << 10 : s.endsWith("M") ? 1 << 20 : 1;
        return Long.parseLong(mul == 1 ? s : s.substring(0, s.length() - 1)) * mul;
    }

    /** One large pinned copy each way, and both at once on two streams; verified. */
    @SuppressWarnings("restricted") // segments over pinned buffers allocated here, at their sizes
    private void measureCeilings() {
        CuLib cu = Cuda.driver();
        ctx.makeCurrent();
        long hostA = ctx.hostAllocate(total);
        long hostB = ctx.hostAllocate(total);
        long devA = ctx.allocate(total);
        long devB = ctx.allocate(total);
        long s1 = ctx.createStream();
        long s2 = ctx.createStream();
        try {
            MemorySegment a = MemorySegment.ofAddress(hostA).reinterpret(total);
            MemorySegment bseg = MemorySegment.ofAddress(hostB).reinterpret(total);
            fillParallel(a, 42);
            double[] h2d = new double[reps];
            double[] d2h = new double[reps];
            double[] both = new double[reps];
            for (int r = -1; r < reps; r++) {
                ctx.makeCurrent();
                long t0 = System.nanoTime();
                ctx.check(cu.cuMemcpyHtoDAsync_v2(devA, hostA, total, s1), "cuMemcpyHtoDAsync");
                ctx.check(cu.cuStreamSynchronize(s1), "cuStreamSynchronize");
                long t1 = System.nanoTime();
                bseg.fill((byte) 0);
                ctx.makeCurrent();
                long t2 = System.nanoTime();
                ctx.check(cu.cuMemcpyDtoHAsync_v2(hostB, devA, total, s2), "cuMemcpyDtoHAsync");
                ctx.check(cu.cuStreamSynchronize(s2), "cuStreamSynchronize");
                long t3 = System.nanoTime();
                check(bseg.mismatch(a) == -1, "ceiling copy round trip differs");
                bseg.fill((byte) 0);
                ctx.makeCurrent();
                long t4 = System.nanoTime();
                ctx.check(cu.cuMemcpyHtoDAsync_v2(devB, hostA, total, s1), "cuMemcpyHtoDAsync");
                ctx.check(cu.cuMemcpyDtoHAsync_v2(hostB, devA, total, s2), "cuMemcpyDtoHAsync");
                ctx.check(cu.cuStreamSynchronize(s1), "cuStreamSynchronize");
                ctx.check(cu.cuStreamSynchronize(s2), "cuStreamSynchronize");
                long t5 = System.nanoTime();
                check(bseg.mismatch(a) == -1, "ceiling both-directions copy differs");
                if (r >= 0) {
                    h2d[r] = total / (double) (t1 - t0);
                    d2h[r] = total / (double) (t3 - t2);
                    both[r] = 2.0 * total / (t5 - t4);
                }
            }
            ceilH2D = median(h2d);
            ceilD2H = median(d2h);
            ceilBoth = median(both);
            log.printf(Locale.ROOT, "ceilings (one %d MiB pinned copy): H2D %.1f GB/s, D2H %.1f GB/s, both %.1f GB/s%n",
                    total >> 20, ceilH2D, ceilD2H, ceilBoth);
        } finally {
            ctx.makeCurrent();
            cu.cuStreamDestroy_v2(s1);
            cu.cuStreamDestroy_v2(s2);
            ctx.free(devA);
            ctx.free(devB);
            ctx.hostFree(hostA);
            ctx.hostFree(hostB);
        }
    }

    /** A way of moving blocks: an engine configuration and the method for each direction (null: engine's choice). */
    record Variant(String name, CudaTransferEngine engine, CopyMethod up, CopyMethod down, boolean noBoth) {
    }

    /**
     * Host tier: A = 2s slots from which host-to-device runs read a random half, B = s slots
     * holding the reference copy of device half B, C = 2s slots of which device-to-host runs
     * write a random half (so that the blocks of a batch are scattered over twice their size).
     * Device tier: half A receives, half B is the source. With slices, a block holds
     * {@code slices} copies of {@code blockBytes} each.
     */
    @SuppressWarnings("restricted") // the verification segment covers the pinned buffer allocated here
    private List<Row> measureBlockSize(long blockBytes) {
        long slotBytes = slices > 0 ? slices * blockBytes : blockBytes;
        int s = (int) (total / slotBytes);
        String label = label(blockBytes, slotBytes);
        List<Row> rows = new ArrayList<>();
        Map<String, CudaTransferEngine> engines = new LinkedHashMap<>();
        try (PinnedHostTier host = PinnedHostTier.builder(slotBytes, 5 * s).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, slotBytes, 2 * s)) {
            for (int i = 0; i < 5 * s; i++) {
                host.allocate();
            }
            for (int i = 0; i < 2 * s; i++) {
                dev.allocate();
            }
            log.printf(Locale.ROOT, "%s: host tier %s%n", label, host.backing());
            IntStream.range(0, 3 * s).parallel().forEach(i -> fillRandom(host.view(i), slotBytes * 7919 + i));
            // device half B starts as a copy of host half B
            for (int i = 0; i < s; i++) {
                dev.write(s + i, 0, host.view(2 * s + i));
            }
            List<Variant> variants = new ArrayList<>();
            String chosenH2D = "";
            String chosenD2H = "";
            for (VariantSpec v : variantSpecs) {
                boolean calibrate = variantSpecs.stream().anyMatch(o -> o.method() == null
                        && o.engineKey().equals(v.engineKey()));
                CudaTransferEngine e = engines.computeIfAbsent(v.engineKey(), k -> {
                    CudaTransferEngine.Builder b = CudaTransferEngine.builder(ctx).batchSourceAnyOrder(v.any());
                    if (v.ordered() != null) {
                        b.orderByHostAddress(v.ordered());
                    }
                    if (v.streams() > 0) {
                        b.copyStreams(v.streams());
                    }
                    if (v.call() > 0) {
                        b.copiesPerBatchCall(v.call());
                    }
                    // measured at build, so that no background calibration runs beside the timed copies
                    return (calibrate ? b.calibrate(blockBytes) : b).build();
                });
                if (v.method() == null) {
                    chosenH2D = e.methodFor(Direction.HOST_TO_DEVICE, blockBytes).name();
                    chosenD2H = e.methodFor(Direction.DEVICE_TO_HOST, blockBytes).name();
                    log.printf(Locale.ROOT, "%s: engine chose H2D %s %s, D2H %s %s%n", label, chosenH2D,
                            rates(e.measuredRates(Direction.HOST_TO_DEVICE, blockBytes)), chosenD2H,
                            rates(e.measuredRates(Direction.DEVICE_TO_HOST, blockBytes)));
                }
                variants.add(new Variant(v.name(), e, v.method(), v.method(), v.method() == CopyMethod.PER_BLOCK));
            }
            long verify = ctx.hostAllocate((long) s * slotBytes);
            try {
                MemorySegment verifySeg = MemorySegment.ofAddress(verify).reinterpret((long) s * slotBytes);
                SplittableRandom rnd = new SplittableRandom(blockBytes);
                for (Variant v : variants) {
                    for (String dir : new String[] {"h2d", "d2h", "both"}) {
                        if (v.noBoth && dir.equals("both")) {
                            continue;
                        }
                        double gbps = run(v, host, dev, s, blockBytes, slotBytes, dir, rnd, verifySeg, verify);
                        double ceil = dir.equals("h2d") ? ceilH2D : dir.equals("d2h") ? ceilD2H : ceilBoth;
                        String chosen = v.up != null ? "" : dir.equals("h2d") ? chosenH2D : dir.equals("d2h") ? chosenD2H
                                : chosenH2D + " + " + chosenD2H;
                        rows.add(new Row(blockBytes, slotBytes, v.name, dir, gbps, gbps / ceil, chosen));
                        log.printf(Locale.ROOT, "  %-16s %-52s %-4s %6.1f GB/s  ratio %.3f  (verified)%n",
                                label, v.name, dir, gbps, gbps / ceil);
                    }
                }
            } finally {
                ctx.hostFree(verify);
            }
        } finally {
            for (CudaTransferEngine e : engines.values()) {
                e.close();
            }
        }
        return rows;
    }

    /** @return the batches a run submits in one direction: one of whole blocks, or one per slice index */
    private List<TransferBatch> batches(Tier from, Tier to, List<BlockMove> moves, long blockBytes) {
        if (slices == 0) {
            return List.of(new TransferBatch(from, to, moves));
        }
        List<TransferBatch> b = new ArrayList<>(slices);
        for (int l = 0; l < slices; l++) {
            b.add(new TransferBatch(from, to, moves, l * blockBytes, blockBytes));
        }
        return b;
    }

    /** Median GB/s of {@code reps} verified runs after {@code warmup} untimed ones. */
    private double run(Variant v, PinnedHostTier host, CudaDeviceTier dev, int s, long blockBytes, long slotBytes,
                       String dir, SplittableRandom rnd, MemorySegment verifySeg, long verify) {
        boolean up = !dir.equals("d2h");
        boolean down = !dir.equals("h2d");
        double[] rates = new double[reps];
        double[] submitMs = new double[reps];
        double[] totalMs = new double[reps];
        for (int r = -warmup; r < reps; r++) {
            int[] srcA = Arrays.copyOf(permutation(2 * s, rnd), s);       // random half of host A
            int[] dstC = Arrays.copyOf(permutation(2 * s, rnd), s);       // random half of host C
            int[] devA = permutation(s, rnd);
            List<BlockMove> upMoves = new ArrayList<>(s);
            List<BlockMove> downMoves = new ArrayList<>(s);
            for (int i = 0; i < s; i++) {
                upMoves.add(new BlockMove(srcA[i], devA[i]));
                downMoves.add(new BlockMove(s + i, 3 * s + dstC[i]));
            }
            // poison the destinations so that a block not written cannot pass verification
            if (up) {
                ctx.makeCurrent();
                ctx.check(Cuda.driver().cuMemsetD8_v2(dev.baseAddress(), (byte) 0, (long) s * slotBytes), "cuMemsetD8");
                ctx.check(Cuda.driver().cuCtxSynchronize(), "cuCtxSynchronize");
            }
            if (down) {
                IntStream.range(0, s).parallel().forEach(i -> host.view(3 * s + dstC[i]).fill((byte) 0));
            }
            List<TransferBatch> ub = batches(host, dev, upMoves, blockBytes);
            List<TransferBatch> db = batches(dev, host, downMoves, blockBytes);
            List<CudaTransferHandle> hu = List.of();
            List<CudaTransferHandle> hd = List.of();
            long t0;
            if (up && down) {
                // prefetch and eviction come from different threads in a cache: submit them so
                CountDownLatch go = new CountDownLatch(1);
                Future<List<CudaTransferHandle>> evict = second.submit(() -> {
                    go.await();
                    return submitAll(v.engine, db, v.down);
                });
                t0 = System.nanoTime();
                go.countDown();
                hu = submitAll(v.engine, ub, v.up);
                hd = join(evict);
            } else {
                t0 = System.nanoTime();
                if (up) {
                    hu = submitAll(v.engine, ub, v.up);
                }
                if (down) {
                    hd = submitAll(v.engine, db, v.down);
                }
            }
            long submitted = System.nanoTime();
            for (CudaTransferHandle h : hu) {
                h.completion().join();
            }
            for (CudaTransferHandle h : hd) {
                h.completion().join();
            }
            long t1 = System.nanoTime();
            if (up) {
                ctx.makeCurrent();
                ctx.check(Cuda.driver().cuMemcpyDtoH_v2(verify, dev.baseAddress(), (long) s * slotBytes), "cuMemcpyDtoH");
                long bad = IntStream.range(0, s).parallel().filter(i -> verifySeg.asSlice((long) devA[i] * slotBytes,
                        slotBytes).mismatch(host.view(srcA[i])) != -1).count();
                check(bad == 0, bad + " blocks differ after host-to-device " + v.name + " of " + size(blockBytes));
            }
            if (down) {
                long bad = IntStream.range(0, s).parallel().filter(i -> host.view(3 * s + dstC[i])
                        .mismatch(host.view(2 * s + i)) != -1).count();
                check(bad == 0, bad + " blocks differ after device-to-host " + v.name + " of " + size(blockBytes));
            }
            if (r >= 0) {
                rates[r] = (up && down ? 2.0 : 1.0) * s * slotBytes / (t1 - t0);
                submitMs[r] = (submitted - t0) / 1e6;
                totalMs[r] = (t1 - t0) / 1e6;
            }
        }
        log.printf(Locale.ROOT, "    submit returned after %.2f ms of %.2f ms (medians)%n", median(submitMs),
                median(totalMs));
        return median(rates);
    }

    private static List<CudaTransferHandle> submitAll(CudaTransferEngine e, List<TransferBatch> batches, CopyMethod m) {
        List<CudaTransferHandle> h = new ArrayList<>(batches.size());
        for (TransferBatch b : batches) {
            h.add(m == null ? e.submit(b) : e.submit(b, m));
        }
        return h;
    }

    private static List<CudaTransferHandle> join(Future<List<CudaTransferHandle>> f) {
        try {
            return f.get();
        } catch (InterruptedException | ExecutionException e) {
            throw new IllegalStateException("device-to-host submission failed", e);
        }
    }

    private String table(List<Row> rows, String started, String args) {
        StringBuilder sb = new StringBuilder();
        sb.append("# Link speed: CudaTransferEngine against the PCIe link\n\n");
        sb.append("- date (UTC): ").append(started).append('\n');
        sb.append("- device: ").append(ctx).append(", ").append(ctx.totalMemory() >> 20).append(" MiB, ")
                .append(ctx.multiprocessors()).append(" SMs; driver CUDA ").append(Cuda.driverVersion()).append('\n');
        sb.append("- JVM: ").append(System.getProperty("java.vm.name")).append(' ')
                .append(System.getProperty("java.version")).append(", ")
                .append(Runtime.getRuntime().availableProcessors()).append(" cores\n");
        sb.append("- arguments: `").append(args).append("`; ").append(total >> 20).append(" MiB of blocks per run, ")
                .append("median of ").append(reps).append(" runs after ")
                .append(warmup == 1 ? "a warm-up" : warmup + " warm-up runs").append("; each batch moves blocks in random ")
                .append("order between a random half of twice as many host slots and the device; random data; ")
                .append("every run's bytes verified\n");
        if (slices > 0) {
            sb.append("- layer slices: a block holds ").append(slices).append(" slices of the size in the first ")
                    .append("column; a run submits ").append(slices).append(" batches per direction back to back, ")
                    .append("one per slice index (the same byte range of every block), and ends when the last ")
                    .append("completes\n");
        }
        sb.append(String.format(Locale.ROOT, "- ceilings measured in this run (one %d MiB pinned copy, median of %d, "
                + "before and after the copies, the higher kept): H2D **%.1f GB/s**, D2H **%.1f GB/s**, both "
                + "directions at once (two streams) **%.1f GB/s** (before the copies: %.1f / %.1f / %.1f)%n%n",
                total >> 20, reps, ceilH2D, ceilD2H, ceilBoth, ceilingsBefore[0], ceilingsBefore[1],
                ceilingsBefore[2]));
        sb.append("GB/s (ratio to the ceiling of the same direction); GB = 10^9 bytes.\n\n");
        sb.append("| block | method | H2D | D2H | both at once | engine's choice |\n");
        sb.append("| --- | --- | --- | --- | --- | --- |\n");
        long lastSize = -1;
        for (int i = 0; i < rows.size(); ) {
            Row r = rows.get(i);
            String h2d = "";
            String d2h = "";
            String both = "";
            String chosen = "";
            int j = i;
            while (j < rows.size() && rows.get(j).blockBytes == r.blockBytes && rows.get(j).method.equals(r.method)) {
                Row x = rows.get(j);
                String cell = String.format(Locale.ROOT, "%.1f (%.3f)", x.gbps, x.ratio);
                if (r.method.startsWith("engine")) {
                    cell = "**" + cell + "**";
                }
                switch (x.direction) {
                    case "h2d" -> h2d = cell;
                    case "d2h" -> d2h = cell;
                    default -> both = cell;
                }
                if (!x.chosen.isEmpty() && x.direction.equals("both")) {
                    chosen = x.chosen;
                }
                j++;
            }
            sb.append("| ").append(r.blockBytes == lastSize ? "" : label(r.blockBytes, r.slotBytes)).append(" | ")
                    .append(r.method)
                    .append(" | ").append(h2d).append(" | ").append(d2h).append(" | ").append(both.isEmpty() ? "-" : both)
                    .append(" | ").append(chosen).append(" |\n");
            lastSize = r.blockBytes;
            i = j;
        }
        return sb.toString();
    }

    private static String rates(Map<CopyMethod, Double> r) {
        StringBuilder sb = new StringBuilder("(");
        r.forEach((k, v) -> sb.append(String.format(Locale.ROOT, "%s %.1f ", k, v)));
        return sb.toString().trim() + " GB/s)";
    }

    /** @return a block size, or a slice and its block */
    static String label(long blockBytes, long slotBytes) {
        return blockBytes == slotBytes ? size(blockBytes) : size(blockBytes) + " of " + size(slotBytes);
    }

    static String size(long b) {
        return b >= 1 << 20 && b % (1 << 20) == 0 ? (b >> 20) + " MiB" : (b >> 10) + " KiB";
    }

    static void fillRandom(MemorySegment seg, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i + 8 <= seg.byteSize(); i += 8) {
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, i, r.nextLong() | 1L);
        }
    }

    static void fillParallel(MemorySegment seg, long seed) {
        long piece = 1 << 20;
        int pieces = (int) ((seg.byteSize() + piece - 1) / piece);
        IntStream.range(0, pieces).parallel().forEach(p -> fillRandom(
                seg.asSlice(p * piece, Math.min(piece, seg.byteSize() - p * piece)), seed * 1_000_003 + p));
    }

    /**
     * @return a random permutation of [0, n): the JDK's Fisher-Yates, which for a seed gives the
     *         permutation the engine's calibration uses (a test of the engine checks that)
     */
    static int[] permutation(int n, SplittableRandom rnd) {
        List<Integer> p = new ArrayList<>(IntStream.range(0, n).boxed().toList());
        Collections.shuffle(p, rnd);
        return p.stream().mapToInt(Integer::intValue).toArray();
    }

    static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalStateException("verification failed: " + message);
        }
    }
}
