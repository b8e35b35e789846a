package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.PersistPolicy;
import io.kvcache.core.OutOfCacheSpaceException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.block.BlockKey;
import io.kvcache.core.block.PrefixHasher;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferHandle;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.Tuple;

/**
 * Restart reuse: random prompts of two tenants, decodes, forks, windowed reads with prefetch (as
 * an attention loop does), requests issued back to back, truncations and closes, over random small
 * device and host budgets and a real {@link MappedFileTier} at the bottom; then the manager is
 * closed and a new one opened over the same directory. Every full, written block the disk tier
 * holds is found again by the same (salt, prompt), byte for byte, and by no other salt; with a
 * disk large enough to need no admission decision, that is every block the first manager sealed.
 *
 * <p>Copies toward the disk are either run by the built-in engine or held back until the workload
 * waits for them (a slow disk, made deterministic): then a block demoted to the disk is still in
 * flight while the next requests are planned, and may be promoted again before its copy lands
 * (the path by which sealed blocks once stayed on disk unpublished and were lost at restart).
 */
class RestartReuseProperties {
    static final KvLayout LAYOUT = CacheModel.LAYOUT;
    static final String MODEL = "restart-reuse-model";
    /** Tenants the workload uses; {@link #UNUSED_SALT} is never used, so it must find nothing. */
    static final byte[][] SALTS = {{0}, {1}};
    static final byte[] UNUSED_SALT = {2};
    /** Disk slots that no workload here can fill: admission never has to refuse or drop. */
    static final int AMPLE_DISK_SLOTS = 512;

    /**
     * @param policy write-through or not: with {@code WRITE_BACK} blocks reach the disk only by
     *               eviction (and the clean close), which is where publication once went wrong
     */
    record Setup(int deviceSlots, int hostSlots, int diskSlots, boolean slowDisk, PersistPolicy policy) {
        boolean ampleDisk() {
            return diskSlots >= AMPLE_DISK_SLOTS;
        }
    }

    /** One step of the workload; sequence choices are taken modulo the sequences open then. */
    sealed interface Op {
    }

    record Open(int salt, int[] prompt) implements Op {
        @Override
        public String toString() {
            return "open salt " + salt + " " + Arrays.toString(prompt);
        }
    }

    record Decode(int seq, int[] tokens) implements Op {
        @Override
        public String toString() {
            return "decode #" + seq + " " + Arrays.toString(tokens);
        }
    }

    record Fork(int seq, int[] tokens) implements Op {
        @Override
        public String toString() {
            return "fork #" + seq + " then decode " + Arrays.toString(tokens);
        }
    }

    /** Reads every block in windows, prefetching the next window, as a decode step's attention does. */
    record Scan(int seq, int window) implements Op {
    }

    /**
     * Pins a window of one sequence and, before waiting for it, asks for a block that request just
     * moved to the disk: a scheduler's next request touching what the previous one evicted.
     */
    record Burst(int seq, int window, int pick) implements Op {
    }

    record Truncate(int seq, int percent) implements Op {
    }

    record Close(int seq) implements Op {
    }

    /** A tenant's chain of full written blocks: the tokens they cover. */
    record Chain(int salt, List<Integer> tokens) {
    }

    @Property(tries = 150, shrinking = ShrinkingMode.OFF)
    void everyBlockOnDiskIsFoundAgainAfterARestart(@ForAll("setups") Setup setup,
                                                   @ForAll("workloads") List<Op> ops) throws IOException {
        Path dir = Files.createTempDirectory("kvcache-restart-reuse");
        StringBuilder log = new StringBuilder(setup + "\n");
        try {
            Set<Chain> sealed = new LinkedHashSet<>();
            HeldDiskCopies gate = setup.slowDisk() ? new HeldDiskCopies() : null;
            try (KvCacheManager m = manager(dir, setup, gate)) {
                try {
                    run(m, gate, ops, sealed, log);
                } finally {
                    if (gate != null) {
                        gate.passThrough(); // close waits for every copy in flight
                    }
                }
            }
            try (KvCacheManager m = manager(dir, setup, null)) {
                checkReuse(m, setup, sealed, log);
            }
        } finally {
            deleteTree(dir);
        }
    }

    @Provide
    Arbitrary<Setup> setups() {
        return Combinators.combine(
                Arbitraries.integers().between(3, 4),
                Arbitraries.integers().between(1, 3),
                Arbitraries.frequencyOf(Tuple.of(2, Arbitraries.just(AMPLE_DISK_SLOTS)),
                        Tuple.of(1, Arbitraries.integers().between(12, 40))),
                Arbitraries.of(false, true, true),
                Arbitraries.of(PersistPolicy.WRITE_BACK, PersistPolicy.WRITE_BACK, PersistPolicy.WRITE_THROUGH))
                .as(Setup::new);
    }

    @Provide
    Arbitrary<List<Op>> workloads() {
        Arbitrary<Integer> seq = Arbitraries.integers().between(0, 7);
        Arbitrary<int[]> tokens = Arbitraries.integers().between(1, 6).array(int[].class).ofMinSize(1).ofMaxSize(12);
        Arbitrary<Op> op = Arbitraries.frequencyOf(
                Tuple.of(3, Combinators.combine(Arbitraries.integers().between(0, 1),
                        ManagerActionChainProperties.prompts()).as(Open::new)),
                Tuple.of(4, Combinators.combine(seq, tokens).as(Decode::new)),
                Tuple.of(2, Combinators.combine(seq, tokens).as(Fork::new)),
                Tuple.of(3, Combinators.combine(seq, Arbitraries.integers().between(1, 2)).as(Scan::new)),
                Tuple.of(3, Combinators.combine(seq, Arbitraries.integers().between(1, 2),
                        Arbitraries.integers().between(0, 99)).as(Burst::new)),
                Tuple.of(1, Combinators.combine(seq, Arbitraries.integers().between(0, 100))
                        .as(Truncate::new)),
                Tuple.of(1, seq.map(Close::new)));
        // the workload starts with a prompt so that the other steps have a sequence to act on
        return Combinators.combine(Combinators.combine(Arbitraries.integers().between(0, 1),
                        ManagerActionChainProperties.prompts()).as(Open::new), op.list().ofMinSize(4).ofMaxSize(24))
                .as((first, rest) -> {
                    List<Op> all = new ArrayList<>(rest.size() + 1);
                    all.add(first);
                    all.addAll(rest);
                    return all;
                });
    }

    private static KvCacheManager manager(Path dir, Setup setup, HeldDiskCopies gate) {
        Tier disk = MappedFileTier.builder(LAYOUT).directory(dir.resolve("cache")).modelId(MODEL)
                .capacityBytes((long) setup.diskSlots() * LAYOUT.blockBytes()).open();
        KvCacheManager.Builder b = KvCacheManager.builder(LAYOUT).modelId(MODEL)
                .tier(new SimulatedDeviceTier(LAYOUT, setup.deviceSlots() * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, setup.hostSlots() * LAYOUT.blockBytes()))
                .tier(disk)
                .evictionPolicy(EvictionPolicy.lru())
                .persistPolicy(setup.policy())
                .prefetchLookaheadBlocks(2);
        if (gate != null) {
            b.transferEngine(gate);
        }
        return b.build();
    }

    /** Runs the workload, recording every tenant's chain of full written blocks. */
    private static void run(KvCacheManager m, HeldDiskCopies gate, List<Op> ops, Set<Chain> sealed,
                            StringBuilder log) {
        Engine engine = new Engine(m);
        List<Sequence> open = new ArrayList<>();
        List<Integer> saltOf = new ArrayList<>();
        for (Op op : ops) {
            log.append(op).append('\n');
            if (op instanceof Open o) {
                if (open.size() >= 4) {
                    continue;
                }
                Sequence s = m.open(SALTS[o.salt()], o.prompt());
                open.add(s);
                saltOf.add(o.salt());
                tolerateNoRoom(() -> prefill(m, engine, gate, s), log);
            } else if (!open.isEmpty()) {
                int i = switch (op) {
                    case Decode d -> d.seq();
                    case Fork f -> f.seq();
                    case Scan sc -> sc.seq();
                    case Burst b -> b.seq();
                    case Truncate t -> t.seq();
                    case Close c -> c.seq();
                    default -> 0;
                } % open.size();
                Sequence s = open.get(i);
                switch (op) {
                    case Decode d -> {
                        s.append(d.tokens());
                        tolerateNoRoom(() -> prefill(m, engine, gate, s), log);
                    }
                    case Fork f -> {
                        if (open.size() >= 4) {
                            continue;
                        }
                        Sequence child = s.fork();
                        open.add(child);
                        saltOf.add(saltOf.get(i));
                        child.append(f.tokens());
                        tolerateNoRoom(() -> prefill(m, engine, gate, child), log);
                    }
                    case Scan sc -> tolerateNoRoom(() -> scan(m, gate, s, sc.window()), log);
                    case Burst b -> tolerateNoRoom(() -> burst(m, gate, open, s, b), log);
                    case Truncate t -> s.truncate(s.length() * t.percent() / 100);
                    case Close c -> {
                        s.close();
                        open.remove(i);
                        saltOf.remove(i);
                    }
                    default -> throw new AssertionError(op);
                }
            }
            for (int k = 0; k < open.size(); k++) {
                Sequence s = open.get(k);
                int full = s.writtenTokens() / LAYOUT.blockTokens() * LAYOUT.blockTokens();
                if (full > 0) {
                    sealed.add(new Chain(saltOf.get(k), Arrays.stream(s.tokens(), 0, full).boxed().toList()));
                }
            }
        }
        // some sequences are still open when the manager closes, some were closed before
        for (int k = 0; k < open.size(); k += 2) {
            open.get(k).close();
        }
    }

    /** Writes K/V of the tokens not yet written, block by block, as {@link Engine#prefill} does. */
    private static void prefill(KvCacheManager m, Engine engine, HeldDiskCopies gate, Sequence s) {
        int from = s.writtenTokens();
        int to = s.length();
        int bt = LAYOUT.blockTokens();
        int[] tokens = s.tokens();
        for (int block = from / bt; block * bt < to; block++) {
            try (ResidencyHandle h = m.ensureResident(s, block, block + 1); Arena arena = Arena.ofConfined()) {
                await(h, gate);
                for (int pos = Math.max(from, block * bt); pos < Math.min(to, (block + 1) * bt); pos++) {
                    for (int layer = 0; layer < LAYOUT.layers(); layer++) {
                        for (int kind = 0; kind < 2; kind++) {
                            MemorySegment src = arena.allocate(LAYOUT.tokenLayerBytes());
                            MemorySegment.copy(engine.expectedTokenBytes(tokens, pos, layer, kind), 0, src,
                                    ValueLayout.JAVA_BYTE, 0, LAYOUT.tokenLayerBytes());
                            h.write(block, BlockLayoutDescriptor.tokenOffset(LAYOUT, layer, kind, pos % bt), src);
                        }
                    }
                }
            }
            s.markWritten(Math.min(to, (block + 1) * bt));
        }
    }

    /** Waits for a handle; held copies toward the disk are let go, newest first, only while it waits. */
    private static void await(ResidencyHandle h, HeldDiskCopies gate) {
        if (gate != null) {
            while (!h.ready().isDone()) {
                try {
                    h.ready().get(200, TimeUnit.MICROSECONDS);
                } catch (TimeoutException e) {
                    gate.releaseNewest();
                } catch (ExecutionException e) {
                    break; // await reports it as the library does
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
            }
        }
        h.await();
    }

    /** Pins the blocks window by window, prefetching the next window first, as attention over a long context does. */
    private static void scan(KvCacheManager m, HeldDiskCopies gate, Sequence s, int window) {
        int n = s.blockCount();
        for (int from = 0; from < n; from += window) {
            int to = Math.min(n, from + window);
            if (to < n) {
                m.prefetch(new AccessPlan(List.of(new AccessPlan.Read(s.id(), to, Math.min(n, to + window)))));
            }
            try (ResidencyHandle h = m.ensureResident(s, from, to)) {
                await(h, gate);
            }
        }
    }

    private static void burst(KvCacheManager m, HeldDiskCopies gate, List<Sequence> open, Sequence s, Burst b) {
        int n = s.blockCount();
        if (n == 0) {
            return;
        }
        int from = b.pick() % n;
        Map<Long, Integer> before = tierOfBlocks(m);
        try (ResidencyHandle first = m.ensureResident(s, from, Math.min(n, from + b.window()))) {
            Map<Long, Integer> after = tierOfBlocks(m);
            int disk = m.tiers().size() - 1;
            List<int[]> moved = new ArrayList<>();
            for (int q = 0; q < open.size(); q++) {
                for (int i = 0; i < open.get(q).blockCount(); i++) {
                    long id = m.blockId(open.get(q), i);
                    if (after.getOrDefault(id, -1) == disk && before.getOrDefault(id, -1) != disk) {
                        moved.add(new int[] {q, i});
                    }
                }
            }
            if (moved.isEmpty()) {
                await(first, gate);
                return;
            }
            int[] again = moved.get(b.pick() % moved.size());
            try (ResidencyHandle second = m.ensureResident(open.get(again[0]), again[1], again[1] + 1)) {
                await(first, gate);
                await(second, gate);
            }
        }
    }

    private static Map<Long, Integer> tierOfBlocks(KvCacheManager m) {
        Map<Long, Integer> tiers = new HashMap<>();
        for (KvCacheManager.BlockInfo info : m.blockInfos()) {
            tiers.put(info.id(), info.tier());
        }
        return tiers;
    }

    private static void tolerateNoRoom(Runnable r, StringBuilder log) {
        try {
            r.run();
        } catch (OutOfCacheSpaceException e) {
            log.append("  -> out of space: ").append(e.getMessage()).append('\n');
        }
    }

    private static void checkReuse(KvCacheManager m, Setup setup, Set<Chain> sealed, StringBuilder log) {
        PersistentTier disk = (PersistentTier) m.tiers().get(2);
        int bt = LAYOUT.blockTokens();
        // what the disk tier holds, asked before any lookup of the new manager changes anything
        record Expectation(Chain chain, byte[] salt, int held) {
        }
        List<Expectation> expected = new ArrayList<>();
        for (Chain c : sealed) {
            int[] tokens = c.tokens().stream().mapToInt(Integer::intValue).toArray();
            for (byte[] salt : new byte[][] {SALTS[0], SALTS[1], UNUSED_SALT}) {
                int held = heldPrefix(disk, tokens, salt);
                boolean own = salt == SALTS[c.salt()];
                if (own && setup.ampleDisk()) {
                    assertEquals(tokens.length / bt, held, () -> "blocks of tenant " + c.salt() + "'s chain "
                            + c.tokens() + " that are not on the disk after close (a disk that never refuses "
                            + "a block)\n" + log);
                }
                if (salt == UNUSED_SALT) {
                    assertEquals(0, held, "a salt nobody used has blocks on disk");
                }
                expected.add(new Expectation(c, salt, held));
            }
        }
        Engine engine = new Engine(m);
        for (Expectation e : expected) {
            int[] tokens = e.chain().tokens().stream().mapToInt(Integer::intValue).toArray();
            // one token more, so that every full block of the chain can be matched
            int[] prompt = Arrays.copyOf(tokens, tokens.length + 1);
            prompt[tokens.length] = 1;
            try (Sequence s = m.open(e.salt(), prompt)) {
                assertEquals(e.held() * bt, s.cachedTokens(), () -> "tokens found by salt "
                        + Arrays.toString(e.salt()) + " for tenant " + e.chain().salt() + "'s chain "
                        + e.chain().tokens() + ", of which " + e.held() + " blocks are on disk\n" + log);
                assertNull(engine.verify(s), () -> "bytes found after the restart differ\n" + log);
            }
        }
    }

    /** @return how many leading full blocks of {@code tokens} the disk tier holds under {@code salt} */
    private static int heldPrefix(PersistentTier disk, int[] tokens, byte[] salt) {
        PrefixHasher hasher = new PrefixHasher(LAYOUT, MODEL);
        int bt = LAYOUT.blockTokens();
        BlockKey parent = null;
        for (int i = 0; i < tokens.length / bt; i++) {
            BlockKey key = hasher.key(parent, tokens, i * bt, bt, salt);
            if (!disk.contains(key)) {
                return i;
            }
            parent = key;
        }
        return tokens.length / bt;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var files = Files.walk(dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    /**
     * Copies toward the disk, held back until the workload waits (see {@link #await}) or until
     * more than a few are held; then copied by a CPU engine. Copies between other tiers are the
     * built-in engine's.
     */
    static final class HeldDiskCopies implements TransferEngine {
        private static final int MAX_HELD = 64;
        private final CpuTransferEngine cpu = new CpuTransferEngine(1, 256);
        private final ArrayDeque<Runnable> held = new ArrayDeque<>();
        private boolean passThrough;

        @Override
        public boolean supports(Tier source, Tier destination) {
            return destination instanceof PersistentTier;
        }

        @Override
        public TransferHandle submit(TransferBatch batch) {
            CompletableFuture<Void> done = new CompletableFuture<>();
            Runnable copy = () -> cpu.submit(batch).completion().whenComplete((v, e) -> {
                if (e == null) {
                    done.complete(null);
                } else {
                    done.completeExceptionally(e);
                }
            });
            boolean now;
            synchronized (this) {
                now = passThrough;
                if (!now) {
                    held.add(copy);
                }
            }
            if (now) {
                copy.run();
            } else {
                while (heldCount() > MAX_HELD && releaseOldest()) {
                    // bounded: the oldest go first
                }
            }
            long bytes = batch.bytes();
            return TransferHandle.of(done, bytes);
        }

        private synchronized int heldCount() {
            return held.size();
        }

        /** @return whether a held copy was let go */
        boolean releaseOldest() {
            return release(true);
        }

        /** @return whether a held copy was let go */
        boolean releaseNewest() {
            return release(false);
        }

        private boolean release(boolean oldest) {
            Runnable r;
            synchronized (this) {
                r = oldest ? held.pollFirst() : held.pollLast();
            }
            if (r == null) {
                return false;
            }
            r.run();
            return true;
        }

        /** Lets every held copy go and holds no more. */
        void passThrough() {
            synchronized (this) {
                passThrough = true;
            }
            while (releaseOldest()) {
                // drained
            }
        }

        @Override
        public void close() {
            passThrough();
            cpu.close();
        }
    }
}
