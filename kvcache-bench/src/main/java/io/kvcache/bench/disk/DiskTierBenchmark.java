package io.kvcache.bench.disk;

import com.sun.jna.LastErrorException;
import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.nativ.libc.LibC;
import io.kvcache.tiers.disk.MappedFileTier;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Write and read throughput of the disk tier against a plain sequential write and read of a
 * file of the same size on the same file system, measured in the same run, for 64 KiB and
 * 2 MiB blocks. Reports GB/s and the ratio tier / plain (goal: at least 0.9).
 *
 * <p>Writes: the tier allocates, writes, publishes and frees every block, then closes (which
 * flushes); the plain file is written with {@code FileChannel.write} in block-sized pieces, then
 * forced. Reads: both files are dropped from the page cache with {@code posix_fadvise(DONTNEED)}
 * first, so the bytes come from the device; the tier looks every block up (its header) and
 * reads it out (verifying its CRC32C over the bytes delivered); the plain file is read with {@code FileChannel.read} in
 * block-sized pieces. The two reads alternate every 64 MiB, so that a change of the device's
 * speed during the run affects both alike. Reported: medians over the repeats, after an
 * unrecorded warm-up round; the ratio is the median of each repeat's tier / plain.
 *
 * <pre>
 * java [flags from ChronicleJvmFlags] -cp ... io.kvcache.bench.disk.DiskTierBenchmark \
 *     [--dir DIR] [--total-mib 1024] [--repeats 3] [--blocks-kib 64,2048]
 * </pre>
 */
public final class DiskTierBenchmark {

    /**
     * One measured configuration: medians of the throughputs, and medians of the ratios of each
     * repeat (tier over plain, measured side by side, so the ratio is less noisy than the speeds).
     */
    public record Row(long blockBytes, long totalBytes, double plainWriteGbps, double tierWriteGbps,
            double plainReadGbps, double tierReadGbps, double writeRatio, double readRatio) {
    }

    /** Bytes read from each file in turn while reading back. */
    static final long SEGMENT_BYTES = 64L << 20;

    private DiskTierBenchmark() {
    }

    /** A layout whose block is {@code blockBytes}: fp16, 64-dim heads, 2 KV heads, 4 layers, enough tokens. */
    static KvLayout layoutFor(long blockBytes) {
        long perToken = 2L * 4 * 2 * 64 * 2; // K|V x layers x heads x dim x fp16
        if (blockBytes % perToken != 0) {
            throw new IllegalArgumentException("block of " + blockBytes + " bytes is not a whole number of tokens");
        }
        return new KvLayout(4, 2, 64, DType.FP16, (int) (blockBytes / perToken));
    }

    static BlockKey key(long id) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(ByteBuffer.allocate(8).putLong(id).array());
            return BlockKey.of(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Drops a file's clean pages from the page cache, so that the next read comes from the device. */
    public static void evictFromPageCache(Path file) {
        int fd;
        try {
            fd = LibC.INSTANCE.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC);
        } catch (LastErrorException e) {
            throw new IllegalStateException("cannot open " + file + ": errno " + e.getErrorCode(), e);
        }
        try {
            int rc = LibC.INSTANCE.posix_fadvise(fd, 0, 0, LibC.POSIX_FADV_DONTNEED);
            if (rc != 0) {
                throw new IllegalStateException("posix_fadvise(DONTNEED) of " + file + " failed: errno " + rc);
            }
        } finally {
            LibC.INSTANCE.close(fd);
        }
    }

    private static double gbps(long bytes, long nanos) {
        return bytes / (double) nanos;
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            for (Path f : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(f);
            }
        }
    }

    /** Writes the plain file: block-sized {@code FileChannel.write}s, then {@code force}. @return nanoseconds */
    static long writePlain(Path file, MemorySegment block, long blocks) throws IOException {
        Files.deleteIfExists(file);
        ByteBuffer src = block.asByteBuffer();
        long t0 = System.nanoTime();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long i = 0; i < blocks; i++) {
                src.clear();
                while (src.hasRemaining()) {
                    ch.write(src);
                }
            }
            ch.force(false);
        }
        return System.nanoTime() - t0;
    }

    /** Stores every block in a new tier: allocate, write, publish, free; then close (which flushes). @return nanoseconds */
    static long writeTier(MappedFileTier.Builder b, MemorySegment block, long blocks, BlockKey[] keys) {
        MappedFileTier t = b.open();
        long t0 = System.nanoTime();
        for (int i = 0; i < blocks; i++) {
            block.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, i); // every block differs
            int slot = t.allocate(keys[i]);
            if (slot < 0) {
                throw new IllegalStateException("tier full at block " + i);
            }
            t.write(slot, 0, block);
            t.publish(slot, keys[i], i == 0 ? null : keys[i - 1]);
            t.free(slot);
        }
        t.close();
        return System.nanoTime() - t0;
    }

    /**
     * Reads both back from the device, interleaved in segments of {@value #SEGMENT_BYTES} bytes
     * (plain segment, then the same tier segment), so that a change in the device's speed during
     * the run hits both alike. @return {plain ns, tier ns}
     */
    static long[] readBoth(Path plain, MappedFileTier.Builder b, Path tierFile, long blockBytes, long blocks,
            BlockKey[] keys) throws IOException {
        long plainNs = 0;
        long tierNs = 0;
        MemorySegment dst = Arena.ofAuto().allocate(blockBytes, 4096);
        ByteBuffer dstBuffer = dst.asByteBuffer();
        long perSegment = Math.max(1, SEGMENT_BYTES / blockBytes);
        try (MappedFileTier t = b.open(); FileChannel ch = FileChannel.open(plain, StandardOpenOption.READ)) {
            evictFromPageCache(plain);
            evictFromPageCache(tierFile);
            for (long first = 0; first < blocks; first += perSegment) {
                long end = Math.min(blocks, first + perSegment);
                long t0 = System.nanoTime();
                for (long i = first; i < end; i++) {
                    dstBuffer.clear();
                    long at = i * blockBytes;
                    while (dstBuffer.hasRemaining()) {
                        int n = ch.read(dstBuffer, at);
                        if (n < 0) {
                            throw new IOException("short file");
                        }
                        at += n;
                    }
                }
                long t1 = System.nanoTime();
                for (long i = first; i < end; i++) {
                    int slot = t.lookup(keys[(int) i]);
                    if (slot < 0) {
                        throw new IllegalStateException("block " + i + " missing after reopen");
                    }
                    t.read(slot, 0, dst);
                    if (dst.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) != i) {
                        throw new IllegalStateException("block " + i + " read back wrong");
                    }
                    t.free(slot);
                }
                long t2 = System.nanoTime();
                plainNs += t1 - t0;
                tierNs += t2 - t1;
            }
        }
        return new long[] {plainNs, tierNs};
    }

    /** One repeat. @return {plain write, tier write, plain read, tier read} in GB/s */
    static double[] once(Path dir, KvLayout layout, MemorySegment block, long blocks, BlockKey[] keys, boolean plainFirst)
            throws IOException {
        Path plain = dir.resolve("plain.bin");
        Path tierDir = dir.resolve("tier");
        deleteTree(tierDir);
        MappedFileTier.Builder b = MappedFileTier.builder(layout).directory(tierDir).modelId("bench")
                .capacityBytes(blocks * layout.blockBytes());
        long plainWrite;
        long tierWrite;
        // alternate the order so that neither always runs on a fresher device
        if (plainFirst) {
            plainWrite = writePlain(plain, block, blocks);
            tierWrite = writeTier(b, block, blocks, keys);
        } else {
            tierWrite = writeTier(b, block, blocks, keys);
            plainWrite = writePlain(plain, block, blocks);
        }
        long[] reads = readBoth(plain, b, tierDir.resolve(MappedFileTier.DATA_FILE), layout.blockBytes(), blocks, keys);
        Files.delete(plain);
        deleteTree(tierDir);
        long bytes = blocks * layout.blockBytes();
        return new double[] {gbps(bytes, plainWrite), gbps(bytes, tierWrite), gbps(bytes, reads[0]), gbps(bytes, reads[1])};
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    /** Runs every block size; prints progress to stderr. */
    public static List<Row> run(Path dir, long totalBytes, long[] blockSizes, int repeats) throws IOException {
        Files.createDirectories(dir);
        List<Row> rows = new ArrayList<>();
        for (long blockBytes : blockSizes) {
            KvLayout layout = layoutFor(blockBytes);
            long blocks = Math.max(1, totalBytes / blockBytes);
            BlockKey[] keys = new BlockKey[(int) blocks];
            for (int i = 0; i < blocks; i++) {
                keys[i] = key(i);
            }
            MemorySegment block = Arena.ofAuto().allocate(blockBytes, 4096);
            SplittableRandom rnd = new SplittableRandom(blockBytes);
            for (long i = 0; i < blockBytes; i += 8) {
                block.set(ValueLayout.JAVA_LONG_UNALIGNED, i, rnd.nextLong());
            }
            double[][] m = new double[4][repeats];
            // one unrecorded round first, so that the JIT has compiled both paths before measuring
            once(dir, layout, block, Math.min(blocks, 64), keys, true);
            for (int r = 0; r < repeats; r++) {
                double[] v = once(dir, layout, block, blocks, keys, r % 2 == 0);
                for (int k = 0; k < 4; k++) {
                    m[k][r] = v[k];
                }
                System.err.printf(Locale.ROOT, "disk bench: %d KiB blocks, repeat %d/%d: write plain %.2f tier %.2f GB/s, "
                        + "read plain %.2f tier %.2f GB/s%n", blockBytes >> 10, r + 1, repeats, v[0], v[1], v[2], v[3]);
            }
            double[] writeRatios = new double[repeats];
            double[] readRatios = new double[repeats];
            for (int r = 0; r < repeats; r++) {
                writeRatios[r] = m[1][r] / m[0][r];
                readRatios[r] = m[3][r] / m[2][r];
            }
            rows.add(new Row(blockBytes, blocks * blockBytes, median(m[0]), median(m[1]), median(m[2]), median(m[3]),
                    median(writeRatios), median(readRatios)));
        }
        return rows;
    }

    /** @return the rows as a markdown table */
    public static String table(List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append("| block | bytes moved | plain write GB/s | tier write GB/s | write ratio | plain read GB/s "
                + "| tier read GB/s | read ratio |\n");
        sb.append("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (Row r : rows) {
            sb.append(String.format(Locale.ROOT, "| %s | %d MiB | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |%n",
                    r.blockBytes() >= 1 << 20 ? (r.blockBytes() >> 20) + " MiB" : (r.blockBytes() >> 10) + " KiB",
                    r.totalBytes() >> 20, r.plainWriteGbps(), r.tierWriteGbps(), r.writeRatio(), r.plainReadGbps(),
                    r.tierReadGbps(), r.readRatio()));
        }
        return sb.toString();
    }

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "kvcache-disk-bench");
        long totalMib = 1024;
        int repeats = 3;
        long[] blocks = {64L << 10, 2L << 20};
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--dir" -> dir = Path.of(args[++i]);
                case "--total-mib" -> totalMib = Long.parseLong(args[++i]);
                case "--repeats" -> repeats = Integer.parseInt(args[++i]);
                case "--blocks-kib" -> blocks = Arrays.stream(args[++i].split(",")).mapToLong(s -> Long.parseLong(s) << 10)
                        .toArray();
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; use --dir DIR --total-mib N --repeats N --blocks-kib 64,2048");
            }
        }
        try {
            List<Row> rows = run(dir, totalMib << 20, blocks, repeats);
            System.out.print(table(rows));
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
