package io.kvcache.bench.link;

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
import java.util.Locale;
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
 * <p>Usage: {@code LinkSpeedBenchmark [--device N] [--total-mib M] [--reps R] [--sizes 16K,64K,256K,2M]
 * [--out results.md] [--csv results.csv]}
 */
public final class LinkSpeedBenchmark {

    private final CudaContext ctx;
    private final long total;
    private final int reps;
    private final PrintStream log = System.out;
    private final ExecutorService second = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "link-bench-evict");
        t.setDaemon(true);
        return t;
    });
    private double ceilH2D;
    private double ceilD2H;
    private double ceilBoth;

    private LinkSpeedBenchmark(CudaContext ctx, long total, int reps) {
        this.ctx = ctx;
        this.total = total;
        this.reps = reps;
    }

    /** One row of the results. */
    record Row(long blockBytes, String method, String direction, double gbps, double ratio, String chosen) {
    }

    public static void main(String[] args) throws Exception {
        int device = 0;
        long totalMiB = 1024;
        int reps = 5;
        long[] sizes = {16 << 10, 64 << 10, 256 << 10, 2 << 20};
        Path out = null;
        Path csv = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> device = Integer.parseInt(args[++i]);
                case "--total-mib" -> totalMiB = Long.parseLong(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--sizes" -> sizes = Arrays.stream(args[++i].split(",")).mapToLong(LinkSpeedBenchmark::parseSize).toArray();
                case "--out" -> out = Path.of(args[++i]);
                case "--csv" -> csv = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        CudaContext ctx = CudaContext.device(device);
        LinkSpeedBenchmark b = new LinkSpeedBenchmark(ctx, totalMiB << 20, reps);
        String started = ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
        b.log.printf("link speed on %s, driver %d, %d MiB per run, %d reps%n", ctx, Cuda.driverVersion(), totalMiB, reps);
        b.measureCeilings();
        List<Row> rows = new ArrayList<>();
        for (long size : sizes) {
            rows.addAll(b.measureBlockSize(size));
        }
        String table = b.table(rows, started, String.join(" ", args));
        b.log.println();
        b.log.println(table);
        if (out != null) {
            Files.writeString(out, table);
        }
        if (csv != null) {
            StringBuilder sb = new StringBuilder("block_bytes,method,direction,gbps,ratio\n");
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%d,%s,%s,%.2f,%.3f%n", r.blockBytes, r.method, r.direction,
                        r.gbps, r.ratio));
            }
            sb.append(String.format(Locale.ROOT, "0,ceiling,h2d,%.2f,1%n0,ceiling,d2h,%.2f,1%n0,ceiling,both,%.2f,1%n",
                    b.ceilH2D, b.ceilD2H, b.ceilBoth));
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
    record Variant(String name, CudaTransferEngine engine, CopyMethod up, CopyMethod down, boolean bothOnly,
                   boolean noBoth) {
    }

    /**
     * Host tier: A = 2s slots from which host-to-device runs read a random half, B = s slots
     * holding the reference copy of device half B, C = 2s slots of which device-to-host runs
     * write a random half (so that the blocks of a batch are scattered over twice their size).
     * Device tier: half A receives, half B is the source.
     */
    @SuppressWarnings("restricted") // the verification segment covers the pinned buffer allocated here
    private List<Row> measureBlockSize(long blockBytes) {
        int s = (int) (total / blockBytes);
        List<Row> rows = new ArrayList<>();
        List<CudaTransferEngine> engines = new ArrayList<>();
        try (PinnedHostTier host = PinnedHostTier.builder(blockBytes, 5 * s).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, 2 * s)) {
            for (int i = 0; i < 5 * s; i++) {
                host.allocate();
            }
            for (int i = 0; i < 2 * s; i++) {
                dev.allocate();
            }
            log.printf(Locale.ROOT, "%s: host tier %s%n", size(blockBytes), host.backing());
            IntStream.range(0, 3 * s).parallel().forEach(i -> fillRandom(host.view(i), blockBytes * 7919 + i));
            // device half B starts as a copy of host half B
            for (int i = 0; i < s; i++) {
                dev.write(s + i, 0, host.view(2 * s + i));
            }
            // measured at build, so that no background calibration runs beside the timed copies
            CudaTransferEngine auto = add(engines, CudaTransferEngine.builder(ctx).calibrate(blockBytes).build());
            CudaTransferEngine ordered = add(engines, CudaTransferEngine.builder(ctx).orderByHostAddress(true)
                    .calibrate(blockBytes).build());
            String chosenH2D = auto.methodFor(Direction.HOST_TO_DEVICE, blockBytes).name();
            String chosenD2H = auto.methodFor(Direction.DEVICE_TO_HOST, blockBytes).name();
            log.printf(Locale.ROOT, "%s: engine chose H2D %s %s, D2H %s %s%n", size(blockBytes), chosenH2D,
                    rates(auto.measuredRates(Direction.HOST_TO_DEVICE, blockBytes)), chosenD2H,
                    rates(auto.measuredRates(Direction.DEVICE_TO_HOST, blockBytes)));
            List<Variant> variants = List.of(
                    new Variant("engine (auto)", auto, null, null, false, false),
                    new Variant("KERNEL", auto, CopyMethod.KERNEL, CopyMethod.KERNEL, false, false),
                    new Variant("BATCH_MEMCPY", auto, CopyMethod.BATCH_MEMCPY, CopyMethod.BATCH_MEMCPY, false, false),
                    new Variant("KERNEL, blocks in host-address order", ordered, CopyMethod.KERNEL, CopyMethod.KERNEL,
                            false, false),
                    new Variant("PER_BLOCK baseline", auto, CopyMethod.PER_BLOCK, CopyMethod.PER_BLOCK, false, true));
            long verify = ctx.hostAllocate((long) s * blockBytes);
            try {
                MemorySegment verifySeg = MemorySegment.ofAddress(verify).reinterpret((long) s * blockBytes);
                SplittableRandom rnd = new SplittableRandom(blockBytes);
                for (Variant v : variants) {
                    for (String dir : new String[] {"h2d", "d2h", "both"}) {
                        if ((v.bothOnly && !dir.equals("both")) || (v.noBoth && dir.equals("both"))) {
                            continue;
                        }
                        double gbps = run(v, host, dev, s, blockBytes, dir, rnd, verifySeg, verify);
                        double ceil = dir.equals("h2d") ? ceilH2D : dir.equals("d2h") ? ceilD2H : ceilBoth;
                        String chosen = v.up != null ? "" : dir.equals("h2d") ? chosenH2D : dir.equals("d2h") ? chosenD2H
                                : chosenH2D + " + " + chosenD2H;
                        rows.add(new Row(blockBytes, v.name, dir, gbps, gbps / ceil, chosen));
                        log.printf(Locale.ROOT, "  %-7s %-36s %-4s %6.1f GB/s  ratio %.3f  (verified)%n",
                                size(blockBytes), v.name, dir, gbps, gbps / ceil);
                    }
                }
            } finally {
                ctx.hostFree(verify);
            }
        } finally {
            for (CudaTransferEngine e : engines) {
                e.close();
            }
        }
        return rows;
    }

    private static CudaTransferEngine add(List<CudaTransferEngine> engines, CudaTransferEngine e) {
        engines.add(e);
        return e;
    }

    /** Median GB/s of {@code reps} verified runs after one warm-up. */
    private double run(Variant v, PinnedHostTier host, CudaDeviceTier dev, int s, long blockBytes, String dir,
                       SplittableRandom rnd, MemorySegment verifySeg, long verify) {
        boolean up = !dir.equals("d2h");
        boolean down = !dir.equals("h2d");
        double[] rates = new double[reps];
        double[] submitMs = new double[reps];
        double[] totalMs = new double[reps];
        for (int r = -1; r < reps; r++) {
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
                ctx.check(Cuda.driver().cuMemsetD8_v2(dev.baseAddress(), (byte) 0, (long) s * blockBytes), "cuMemsetD8");
                ctx.check(Cuda.driver().cuCtxSynchronize(), "cuCtxSynchronize");
            }
            if (down) {
                IntStream.range(0, s).parallel().forEach(i -> host.view(3 * s + dstC[i]).fill((byte) 0));
            }
            TransferBatch ub = new TransferBatch(host, dev, upMoves);
            TransferBatch db = new TransferBatch(dev, host, downMoves);
            CudaTransferHandle hu;
            CudaTransferHandle hd;
            long t0;
            if (up && down) {
                // prefetch and eviction come from different threads in a cache: submit them so
                CountDownLatch go = new CountDownLatch(1);
                Future<CudaTransferHandle> evict = second.submit(() -> {
                    go.await();
                    return submit(v.engine, db, v.down);
                });
                t0 = System.nanoTime();
                go.countDown();
                hu = submit(v.engine, ub, v.up);
                hd = join(evict);
            } else {
                t0 = System.nanoTime();
                hu = up ? submit(v.engine, ub, v.up) : null;
                hd = down ? submit(v.engine, db, v.down) : null;
            }
            long submitted = System.nanoTime();
            if (hu != null) {
                hu.completion().join();
            }
            if (hd != null) {
                hd.completion().join();
            }
            long t1 = System.nanoTime();
            if (up) {
                ctx.makeCurrent();
                ctx.check(Cuda.driver().cuMemcpyDtoH_v2(verify, dev.baseAddress(), (long) s * blockBytes), "cuMemcpyDtoH");
                long bad = IntStream.range(0, s).parallel().filter(i -> verifySeg.asSlice((long) devA[i] * blockBytes,
                        blockBytes).mismatch(host.view(srcA[i])) != -1).count();
                check(bad == 0, bad + " blocks differ after host-to-device " + v.name + " of " + size(blockBytes));
            }
            if (down) {
                long bad = IntStream.range(0, s).parallel().filter(i -> host.view(3 * s + dstC[i])
                        .mismatch(host.view(2 * s + i)) != -1).count();
                check(bad == 0, bad + " blocks differ after device-to-host " + v.name + " of " + size(blockBytes));
            }
            if (r >= 0) {
                rates[r] = (up && down ? 2.0 : 1.0) * s * blockBytes / (t1 - t0);
                submitMs[r] = (submitted - t0) / 1e6;
                totalMs[r] = (t1 - t0) / 1e6;
            }
        }
        log.printf(Locale.ROOT, "    submit returned after %.2f ms of %.2f ms (medians)%n", median(submitMs),
                median(totalMs));
        return median(rates);
    }

    private static CudaTransferHandle join(Future<CudaTransferHandle> f) {
        try {
            return f.get();
        } catch (InterruptedException | ExecutionException e) {
            throw new IllegalStateException("device-to-host submission failed", e);
        }
    }

    private static CudaTransferHandle submit(CudaTransferEngine e, TransferBatch b, CopyMethod m) {
        return m == null ? e.submit(b) : e.submit(b, m);
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
                .append("median of ").append(reps).append(" runs after a warm-up; each batch moves blocks in random ")
                .append("order between a random half of twice as many host slots and the device; random data; ")
                .append("every run's bytes verified\n");
        sb.append(String.format(Locale.ROOT, "- ceilings measured in this run (one %d MiB pinned copy): "
                + "H2D **%.1f GB/s**, D2H **%.1f GB/s**, both directions at once (two streams) **%.1f GB/s**%n%n",
                total >> 20, ceilH2D, ceilD2H, ceilBoth));
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
            sb.append("| ").append(r.blockBytes == lastSize ? "" : size(r.blockBytes)).append(" | ").append(r.method)
                    .append(" | ").append(h2d).append(" | ").append(d2h).append(" | ").append(both.isEmpty() ? "-" : both)
                    .append(" | ").append(chosen).append(" |\n");
            lastSize = r.blockBytes;
            i = j;
        }
        return sb.toString();
    }

    private static String rates(java.util.Map<CopyMethod, Double> r) {
        StringBuilder sb = new StringBuilder("(");
        r.forEach((k, v) -> sb.append(String.format(Locale.ROOT, "%s %.1f ", k, v)));
        return sb.toString().trim() + " GB/s)";
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
