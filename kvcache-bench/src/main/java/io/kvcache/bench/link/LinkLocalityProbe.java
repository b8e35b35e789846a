package io.kvcache.bench.link;

import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CopyMethod;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Probe of what limits the copy kernel for small scattered blocks: moves a fixed volume of
 * blocks between random subsets of host and device regions of several sizes, pairing them with
 * host side, device side, both or neither in ascending address order. Prints GB/s per case;
 * exploration only (the verified numbers come from {@link LinkSpeedBenchmark}).
 *
 * <p>Usage: {@code LinkLocalityProbe [blockBytes] [batchMiB]}
 */
public final class LinkLocalityProbe {
    private LinkLocalityProbe() {
    }

    public static void main(String[] args) {
        long block = args.length > 0 ? LinkSpeedBenchmark.parseSize(args[0]) : 16 << 10;
        long batchBytes = (args.length > 1 ? Long.parseLong(args[1]) : 256) << 20;
        int n = (int) (batchBytes / block);
        long[] hostSpans = {batchBytes, 1L << 30, 4L << 30};
        long[] devSpans = {batchBytes, 1L << 30};
        CudaContext ctx = CudaContext.device(0);
        int hostSlots = (int) (hostSpans[hostSpans.length - 1] / block);
        int devSlots = (int) (devSpans[devSpans.length - 1] / block);
        SplittableRandom rnd = new SplittableRandom(5);
        try (PinnedHostTier host = PinnedHostTier.builder(block, hostSlots).context(ctx).build();
             CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, block, devSlots);
             CudaTransferEngine engine = CudaTransferEngine.builder(ctx).orderByHostAddress(false).build()) {
            for (int i = 0; i < hostSlots; i++) {
                host.allocate();
            }
            for (int i = 0; i < devSlots; i++) {
                dev.allocate();
            }
            System.out.printf(Locale.ROOT, "block %d B, %d blocks per batch; GB/s H2D / D2H (median of 5)%n", block, n);
            System.out.println("| host span | device span | host order | device order | H2D | D2H |");
            System.out.println("| --- | --- | --- | --- | --- | --- |");
            for (long hs : hostSpans) {
                for (long ds : devSpans) {
                    for (int mode = 0; mode < 4; mode++) {
                        boolean hostSeq = (mode & 1) == 0;
                        boolean devSeq = (mode & 2) == 0;
                        double[] up = new double[5];
                        double[] down = new double[5];
                        for (int r = -1; r < 5; r++) {
                            int[] h = subset((int) (hs / block), n, rnd, hostSeq);
                            int[] d = subset((int) (ds / block), n, rnd, devSeq);
                            List<BlockMove> u = new ArrayList<>(n);
                            List<BlockMove> w = new ArrayList<>(n);
                            for (int i = 0; i < n; i++) {
                                u.add(new BlockMove(h[i], d[i]));
                                w.add(new BlockMove(d[i], h[i]));
                            }
                            long t0 = System.nanoTime();
                            engine.submit(new TransferBatch(host, dev, u), CopyMethod.KERNEL).completion().join();
                            long t1 = System.nanoTime();
                            engine.submit(new TransferBatch(dev, host, w), CopyMethod.KERNEL).completion().join();
                            long t2 = System.nanoTime();
                            if (r >= 0) {
                                up[r] = (double) n * block / (t1 - t0);
                                down[r] = (double) n * block / (t2 - t1);
                            }
                        }
                        System.out.printf(Locale.ROOT, "| %d MiB | %d MiB | %s | %s | %.1f | %.1f |%n", hs >> 20, ds >> 20,
                                hostSeq ? "ascending" : "random", devSeq ? "ascending" : "random",
                                LinkSpeedBenchmark.median(up), LinkSpeedBenchmark.median(down));
                    }
                }
            }
        }
    }

    /** @return n distinct slots of [0, span), ascending or shuffled */
    private static int[] subset(int span, int n, SplittableRandom rnd, boolean ascending) {
        int[] p = Arrays.copyOf(LinkSpeedBenchmark.permutation(span, rnd), n);
        if (ascending) {
            Arrays.sort(p);
        }
        return p;
    }
}
