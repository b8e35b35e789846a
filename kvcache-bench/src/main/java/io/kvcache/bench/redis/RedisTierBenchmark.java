package io.kvcache.bench.redis;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.redis.RedisTier;
import io.kvcache.redis.RedisTierConfig;
import io.lettuce.core.KeyValue;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * Block SET and GET through the Redis tier against plain Lettuce SET and GET of values of the
 * same size to the same server, in the same run, at 64 KiB and 2 MiB blocks. Reports
 * throughput (GB/s of block bytes), per-block latency (median and p99 of one block at a time)
 * and the ratio tier / plain (goal: at least 0.9).
 *
 * <ul>
 *   <li><b>SET, pipelined in batches:</b> the tier allocates, writes, publishes and frees
 *       {@code --window} blocks (its SETs go out without waiting), then waits for their writes to
 *       land, as the manager's write-through does a batch at a time; plain Lettuce sends the same
 *       batches of async SETs of ready-made values and waits for them.</li>
 *   <li><b>GET, chained:</b> the tier prefetches chains of {@code --chain} blocks (one MGET), then
 *       looks every block up and reads it into memory; plain Lettuce MGETs the same chains.</li>
 *   <li><b>Latency:</b> one block at a time: tier publish + wait for its write / lookup + read;
 *       plain SET / GET, each waited for.</li>
 * </ul>
 *
 * Both start from the same off-heap block memory, as a KV cache's blocks are: plain Lettuce
 * copies a block into a {@code byte[]} value to SET it and copies a GET's reply into memory; the
 * tier adds its header, CRC32C and bookkeeping. The GET side uses a new tier (nothing retained
 * locally). Tier and plain alternate batch by batch (chain by chain), so that the load of a
 * shared machine hits both alike; medians over the repeats after a warm-up round.
 *
 * <pre>
 * java -cp ... io.kvcache.bench.redis.RedisTierBenchmark [--uri redis://[user:password@]host:port]
 *     [--total-mib 256] [--repeats 5] [--blocks-kib 64,2048] [--window 32] [--chain 32] [--latency-ops 200]
 * </pre>
 * Without {@code --uri} it starts its own {@code redis-server} on 127.0.0.1 (no persistence) and stops it.
 */
public final class RedisTierBenchmark {
    private RedisTierBenchmark() {
    }

    /** One block size's medians. Throughputs in GB/s, latencies in microseconds. */
    public record Row(long blockBytes, int blocks, double plainSetGbps, double tierSetGbps, double plainGetGbps,
                      double tierGetGbps, double setRatio, double getRatio, double plainSetP50, double tierSetP50,
                      double plainSetP99, double tierSetP99, double plainGetP50, double tierGetP50,
                      double plainGetP99, double tierGetP99) {
    }

    private static final class Options {
        String uri;
        long totalMib = 256;
        int repeats = 5;
        long[] blocksKib = {64, 2048};
        int window = 32;
        int chain = 32;
        int latencyOps = 200;
    }

    public static void main(String[] args) throws Exception {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--uri" -> o.uri = v;
                case "--total-mib" -> o.totalMib = Long.parseLong(v);
                case "--repeats" -> o.repeats = Integer.parseInt(v);
                case "--blocks-kib" -> o.blocksKib = Arrays.stream(v.split(",")).mapToLong(Long::parseLong).toArray();
                case "--window" -> o.window = Integer.parseInt(v);
                case "--chain" -> o.chain = Integer.parseInt(v);
                case "--latency-ops" -> o.latencyOps = Integer.parseInt(v);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
            i++;
        }
        LocalServer local = o.uri == null ? LocalServer.start() : null;
        try {
            String uri = o.uri != null ? o.uri : local.uri();
            List<Row> rows = new ArrayList<>();
            for (long kib : o.blocksKib) {
                rows.add(run(uri, kib * 1024, o));
            }
            System.out.println();
            System.out.println("| block | blocks | plain SET GB/s | tier SET GB/s | SET ratio | plain GET GB/s | tier GET GB/s"
                    + " | GET ratio | SET p50/p99 us plain | tier | GET p50/p99 us plain | tier |");
            System.out.println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            for (Row r : rows) {
                System.out.println(String.format(Locale.ROOT,
                        "| %d KiB | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f/%.0f | %.0f/%.0f | %.0f/%.0f | %.0f/%.0f |",
                        r.blockBytes() / 1024, r.blocks(), r.plainSetGbps(), r.tierSetGbps(), r.setRatio(),
                        r.plainGetGbps(), r.tierGetGbps(), r.getRatio(), r.plainSetP50(), r.plainSetP99(),
                        r.tierSetP50(), r.tierSetP99(), r.plainGetP50(), r.plainGetP99(), r.tierGetP50(),
                        r.tierGetP99()));
            }
        } finally {
            if (local != null) {
                local.close();
            }
        }
    }

    /** A layout whose block is {@code blockBytes}: fp16, 64-dim heads, 2 KV heads, 4 layers. */
    static KvLayout layoutFor(long blockBytes) {
        long perToken = 2L * 4 * 2 * 64 * 2;
        return new KvLayout(4, 2, 64, DType.FP16, (int) (blockBytes / perToken));
    }

    static BlockKey key(String run, long id) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        md.update(run.getBytes(StandardCharsets.UTF_8));
        md.update(ByteBuffer.allocate(8).putLong(id).array());
        return BlockKey.of(md.digest());
    }

    private static Row run(String uri, long blockBytes, Options o) throws Exception {
        KvLayout layout = layoutFor(blockBytes);
        int blocks = (int) Math.max(o.chain, (o.totalMib << 20) / blockBytes);
        blocks -= blocks % Math.max(o.chain, o.window);
        long total = blocks * blockBytes;
        RedisTierConfig.Builder cfgBase = RedisTierConfig.fromUri(uri).timeout(Duration.ofSeconds(30))
                .maxPendingWrites(o.window);
        if (o.chain % o.window != 0 && o.window % o.chain != 0) {
            throw new IllegalArgumentException("--chain and --window must divide one another");
        }
        RedisTierConfig parsed = cfgBase.build();
        RedisURI.Builder ub = RedisURI.builder().withHost(parsed.nodes().getFirst().host())
                .withPort(parsed.nodes().getFirst().port()).withTimeout(Duration.ofSeconds(30));
        char[] pw = passwordOf(uri);
        if (pw != null) {
            if (parsed.username() != null) {
                ub.withAuthentication(parsed.username(), pw);
            } else {
                ub.withPassword(pw);
            }
        }
        RedisClient client = RedisClient.create(ub.build());
        double[] ps = new double[o.repeats];
        double[] ts = new double[o.repeats];
        double[] pg = new double[o.repeats];
        double[] tg = new double[o.repeats];
        double[] rs = new double[o.repeats];
        double[] rg = new double[o.repeats];
        List<Double> pSetLat = new ArrayList<>();
        List<Double> tSetLat = new ArrayList<>();
        List<Double> pGetLat = new ArrayList<>();
        List<Double> tGetLat = new ArrayList<>();
        try (StatefulRedisConnection<byte[], byte[]> plain = client.connect(ByteArrayCodec.INSTANCE);
             Arena arena = Arena.ofShared()) {
            MemorySegment[] src = new MemorySegment[8];
            SplittableRandom rnd = new SplittableRandom(42);
            for (int i = 0; i < src.length; i++) {
                src[i] = arena.allocate(blockBytes, 4096);
                for (long b = 0; b < blockBytes; b += 8) {
                    src[i].set(ValueLayout.JAVA_LONG_UNALIGNED, b, rnd.nextLong());
                }
            }
            MemorySegment dst = arena.allocate(blockBytes, 4096);
            for (int rep = -1; rep < o.repeats; rep++) {
                String run = UUID.randomUUID().toString();
                String ns = "bench-" + run;
                RedisTierConfig cfg = cfgBase.namespace(ns).build();
                long slotsBytes = (long) Math.max(o.window, o.chain) * blockBytes;
                double[] set = new double[2];
                double[] get = new double[2];
                // SET: batches of --window blocks, tier and plain alternating batch by batch
                try (RedisTier t = RedisTier.builder(layout).config(cfg).modelId("bench").capacityBytes(slotsBytes).open()) {
                    List<RedisFuture<String>> fs = new ArrayList<>(o.window);
                    for (int b = 0; b < blocks; b += o.window) {
                        for (int side = 0; side < 2; side++) {
                            boolean tierSide = (side == 0) == ((b / o.window & 1) == 0);
                            long t0 = System.nanoTime();
                            if (tierSide) {
                                for (int i = b; i < b + o.window; i++) {
                                    BlockKey k = key(run, i);
                                    int slot = t.allocate(k);
                                    t.write(slot, 0, src[i % src.length]);
                                    t.publish(slot, k);
                                    t.free(slot);
                                }
                                if (!t.awaitWrites(Duration.ofMinutes(5))) {
                                    throw new IllegalStateException("tier writes did not land");
                                }
                                set[1] += seconds(t0);
                            } else {
                                for (int i = b; i < b + o.window; i++) {
                                    // a plain client has the block in the same memory and copies it into a value
                                    fs.add(plain.async().set(plainKey(run, i), src[i % src.length].toArray(ValueLayout.JAVA_BYTE)));
                                }
                                for (RedisFuture<String> f : fs) {
                                    f.get(5, TimeUnit.MINUTES);
                                }
                                fs.clear();
                                set[0] += seconds(t0);
                            }
                        }
                    }
                    if (t.stats().publishesSkipped() > 0 || t.stats().publishFailures() > 0) {
                        throw new IllegalStateException("tier skipped or failed writes: " + t.stats());
                    }
                }
                // GET: chains of --chain blocks into memory, alternating chain by chain; a new tier holds nothing locally
                try (RedisTier t = RedisTier.builder(layout).config(cfg).modelId("bench").capacityBytes(slotsBytes).open()) {
                    List<BlockKey> chain = new ArrayList<>(o.chain);
                    int[] slots = new int[o.chain];
                    byte[][] keys = new byte[o.chain][];
                    for (int c = 0; c < blocks; c += o.chain) {
                        for (int side = 0; side < 2; side++) {
                            boolean tierSide = (side == 0) == ((c / o.chain & 1) == 0);
                            long t0 = System.nanoTime();
                            if (tierSide) {
                                chain.clear();
                                for (int i = c; i < c + o.chain; i++) {
                                    chain.add(key(run, i));
                                }
                                t.prefetch(chain);
                                for (int i = 0; i < o.chain; i++) {
                                    slots[i] = t.lookup(chain.get(i));
                                    if (slots[i] < 0) {
                                        throw new IllegalStateException("tier missed block " + (c + i) + ": " + t.stats());
                                    }
                                    t.read(slots[i], 0, dst);
                                }
                                for (int slot : slots) {
                                    t.free(slot);
                                }
                                get[1] += seconds(t0);
                            } else {
                                for (int i = 0; i < o.chain; i++) {
                                    keys[i] = plainKey(run, c + i);
                                }
                                List<KeyValue<byte[], byte[]>> got = plain.async().mget(keys).get(5, TimeUnit.MINUTES);
                                for (KeyValue<byte[], byte[]> kv : got) {
                                    if (!kv.hasValue()) {
                                        throw new IllegalStateException("plain GET missed");
                                    }
                                    MemorySegment.copy(MemorySegment.ofArray(kv.getValue()), 0, dst, 0, blockBytes);
                                }
                                get[0] += seconds(t0);
                            }
                        }
                    }
                }
                // latency, one block at a time
                double[][] lat = latency(plain, layout, cfg, run, src, dst, o.latencyOps, blockBytes);
                plain.sync().flushdb();
                double gbPlainSet = total / set[0] / 1e9;
                double gbTierSet = total / set[1] / 1e9;
                double gbPlainGet = total / get[0] / 1e9;
                double gbTierGet = total / get[1] / 1e9;
                System.out.println(String.format(Locale.ROOT,
                        "redis bench: %d KiB blocks, %s: SET plain %.2f tier %.2f GB/s, GET plain %.2f tier %.2f GB/s"
                                + "; latency us p50 SET %.0f/%.0f GET %.0f/%.0f (plain/tier)",
                        blockBytes / 1024, rep < 0 ? "warm-up" : "repeat " + (rep + 1) + "/" + o.repeats,
                        gbPlainSet, gbTierSet, gbPlainGet, gbTierGet, pct(lat[0], 50), pct(lat[1], 50),
                        pct(lat[2], 50), pct(lat[3], 50)));
                if (rep >= 0) {
                    ps[rep] = gbPlainSet;
                    ts[rep] = gbTierSet;
                    pg[rep] = gbPlainGet;
                    tg[rep] = gbTierGet;
                    rs[rep] = gbTierSet / gbPlainSet;
                    rg[rep] = gbTierGet / gbPlainGet;
                    for (double v : lat[0]) {
                        pSetLat.add(v);
                    }
                    for (double v : lat[1]) {
                        tSetLat.add(v);
                    }
                    for (double v : lat[2]) {
                        pGetLat.add(v);
                    }
                    for (double v : lat[3]) {
                        tGetLat.add(v);
                    }
                }
            }
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
        return new Row(blockBytes, blocks, median(ps), median(ts), median(pg), median(tg), median(rs), median(rg),
                pct(pSetLat, 50), pct(tSetLat, 50), pct(pSetLat, 99), pct(tSetLat, 99), pct(pGetLat, 50),
                pct(tGetLat, 50), pct(pGetLat, 99), pct(tGetLat, 99));
    }

    /** @return latencies in microseconds: plain SET, tier SET, plain GET, tier GET */
    private static double[][] latency(StatefulRedisConnection<byte[], byte[]> plain, KvLayout layout,
                                      RedisTierConfig cfg, String run, MemorySegment[] src, MemorySegment dst,
                                      int ops, long blockBytes) throws Exception {
        double[][] r = new double[4][ops];
        try (RedisTier t = RedisTier.builder(layout).config(cfg).modelId("bench").capacityBytes(2 * blockBytes).open()) {
            for (int i = 0; i < ops; i++) {
                BlockKey k = key(run + "-lat", i);
                byte[] pk = plainKey(run + "-lat", i);
                long t0 = System.nanoTime();
                plain.sync().set(pk, src[i % src.length].toArray(ValueLayout.JAVA_BYTE));
                r[0][i] = micros(t0);
                t0 = System.nanoTime();
                int s = t.allocate(k);
                t.write(s, 0, src[i % src.length]);
                t.publish(s, k);
                t.free(s);
                t.awaitWrites(Duration.ofMinutes(1));
                r[1][i] = micros(t0);
            }
        }
        try (RedisTier t = RedisTier.builder(layout).config(cfg).modelId("bench").capacityBytes(2 * blockBytes).open()) {
            for (int i = 0; i < ops; i++) {
                BlockKey k = key(run + "-lat", i);
                byte[] pk = plainKey(run + "-lat", i);
                long t0 = System.nanoTime();
                byte[] v = plain.sync().get(pk);
                MemorySegment.copy(MemorySegment.ofArray(v), 0, dst, 0, blockBytes);
                r[2][i] = micros(t0);
                t0 = System.nanoTime();
                int s = t.lookup(k);
                if (s < 0) {
                    throw new IllegalStateException("tier missed a latency block");
                }
                t.read(s, 0, dst);
                t.free(s);
                r[3][i] = micros(t0);
            }
        }
        return r;
    }

    private static byte[] plainKey(String run, long id) {
        return ("plain-" + run + ":" + id).getBytes(StandardCharsets.US_ASCII);
    }

    private static char[] passwordOf(String uri) {
        String info = java.net.URI.create(uri).getRawUserInfo();
        if (info == null || info.indexOf(':') < 0) {
            return null;
        }
        return java.net.URLDecoder.decode(info.substring(info.indexOf(':') + 1).replace("+", "%2B"),
                StandardCharsets.UTF_8).toCharArray();
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    private static double micros(long t0) {
        return (System.nanoTime() - t0) / 1e3;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double pct(double[] v, int p) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[Math.min(s.length - 1, (int) Math.ceil(p / 100.0 * s.length) - 1)];
    }

    private static double pct(List<Double> v, int p) {
        return pct(v.stream().mapToDouble(Double::doubleValue).toArray(), p);
    }

    /** A redis-server on 127.0.0.1 at a free port with a random password and no persistence. */
    private static final class LocalServer implements AutoCloseable {
        private final Process process;
        private final Path dir;
        private final int port;
        private final String password;

        private LocalServer(Process p, Path dir, int port, String password) {
            this.process = p;
            this.dir = dir;
            this.port = port;
            this.password = password;
        }

        static LocalServer start() throws IOException, InterruptedException {
            int port;
            try (ServerSocket ss = new ServerSocket(0)) {
                port = ss.getLocalPort();
            }
            Path dir = Files.createTempDirectory("kvcache-redis-bench");
            String password = UUID.randomUUID().toString();
            Process p = new ProcessBuilder("redis-server", "--bind", "127.0.0.1", "--port", String.valueOf(port),
                    "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", dir.toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("redis.log").toFile()).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (true) {
                try (Socket ignored = new Socket("127.0.0.1", port)) {
                    return new LocalServer(p, dir, port, password);
                } catch (IOException e) {
                    if (!p.isAlive() || System.nanoTime() > deadline) {
                        throw new IOException("redis-server did not start: " + Files.readString(dir.resolve("redis.log")));
                    }
                    Thread.sleep(20);
                }
            }
        }

        String uri() {
            return "redis://:" + password + "@127.0.0.1:" + port;
        }

        @Override
        public void close() throws Exception {
            process.destroy();
            process.waitFor(30, TimeUnit.SECONDS);
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }
}
