package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.fail;

import io.kvcache.core.BlockLostException;
import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayerWindows;
import io.kvcache.core.OutOfCacheSpaceException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Engine threads on one manager with small tiers, so that eviction races every operation, and a
 * deliberately slow transfer engine, so that copies are in flight while sequences open, fork,
 * truncate, rewrite and close. Every byte read back is checked against a K/V pattern derived
 * from the tenant salt and every token up to its position; a lost block without an injected
 * fault is a defect; a hang is caught by a watchdog that dumps every thread's stack.
 *
 * <p>Operations, chosen at random per thread: open (system prompts shared across threads and
 * tenants, and private prompts) with prefill, decode, fork (at block boundaries and inside
 * partial blocks), truncate (mostly into the middle of a block) then append other tokens and
 * rewrite, ensureResident of a range (read back through the handle), readBlock of every written
 * block, prefetch, attention reports, close.
 *
 * <p>System properties:
 * <ul>
 *   <li>{@code kvcache.stress.seconds}: wall time of the whole class, split evenly between its
 *       two configurations (default 44; {@code 1800} for the 30-minute run)</li>
 *   <li>{@code kvcache.stress.ops}: when set, each configuration runs this many operations
 *       instead of for a time</li>
 *   <li>{@code kvcache.stress.threads}: engine threads (default 8)</li>
 *   <li>{@code kvcache.stress.hangSeconds}: an operation running longer is a hang (default 20)</li>
 *   <li>{@code kvcache.stress.seed}: base seed (default: time; printed)</li>
 * </ul>
 */
class ConcurrencyStressTest {
    static final KvLayout LAYOUT = new KvLayout(2, 1, 4, DType.FP16, 4);
    static final int BT = LAYOUT.blockTokens();
    static final int THREADS = Integer.getInteger("kvcache.stress.threads", 8);
    static final long TOTAL_SECONDS = Long.getLong("kvcache.stress.seconds", 44);
    static final long OPS = Long.getLong("kvcache.stress.ops", 0);
    static final long HANG_SECONDS = Long.getLong("kvcache.stress.hangSeconds", 20);
    static final long SEED = Long.getLong("kvcache.stress.seed", System.nanoTime());
    static final int CONFIGURATIONS = 2;

    static final int MAX_SEQUENCES_PER_THREAD = 3;
    static final int MAX_TOKENS = 44;
    /** Tenants: every system prompt is used by each. */
    static final byte[][] SALTS = {{1}, {2, 2}, {3, 3, 3}};
    static final int[][] SYSTEM_PROMPTS = {prompt(9000, 9), prompt(9100, 16), prompt(9200, 22)};

    @TempDir
    Path tmp;

    private static int[] prompt(int base, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = base + i;
        }
        return p;
    }

    @Test
    void threeTiersUnderEightThreadsServeNoWrongByteLoseNoBlockAndNeverHang() {
        SlowTransferEngine engine = SlowTransferEngine.withDefaults();
        KvCacheManager m = KvCacheManager.builder(LAYOUT)
                .modelId("stress")
                .tier(new SimulatedDeviceTier(LAYOUT, 12 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 20 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier("lower", LAYOUT, 56 * LAYOUT.blockBytes()))
                .transferEngine(engine)
                .evictionPolicy(EvictionPolicy.attentionScore(1, 1, 0.9))
                .prefetchLookaheadBlocks(4)
                .build();
        new Run("three tiers", m, engine, SEED).execute();
    }

    @Test
    void fourTiersWithTheDiskTierUnderEightThreadsServeNoWrongByteLoseNoBlockAndNeverHang() {
        SlowTransferEngine engine = SlowTransferEngine.withDefaults();
        KvCacheManager m = KvCacheManager.builder(LAYOUT)
                .modelId("stress")
                .tier(new SimulatedDeviceTier(LAYOUT, 12 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 16 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier("lower", LAYOUT, 24 * LAYOUT.blockBytes()))
                .tier(MappedFileTier.builder(LAYOUT).directory(tmp.resolve("disk")).modelId("stress")
                        .capacityBytes(48 * LAYOUT.blockBytes()).open())
                .transferEngine(engine)
                .evictionPolicy(EvictionPolicy.lru())
                .prefetchLookaheadBlocks(4)
                .build();
        new Run("four tiers with disk", m, engine, SEED + 1).execute();
    }

    enum Op { OPEN, DECODE, FORK, TRUNCATE_REWRITE, ENSURE_RESIDENT, LAYER_RANGE, LAYER_WINDOWS, READ_BLOCKS, PREFETCH,
        ATTENTION, CLOSE }

    /** A sequence an engine thread owns, with the tokens it must hold (the reference model). */
    static final class Seq {
        final Sequence s;
        final byte[] salt;
        int[] tokens;

        Seq(Sequence s, byte[] salt, int[] tokens) {
            this.s = s;
            this.salt = salt;
            this.tokens = tokens;
        }
    }

    /** A hang seen by the watchdog or by a bounded wait. */
    record Hang(String where, String dump) {
    }

    /** One configuration's run: the threads, the watchdog, the counters and the verdict. */
    static final class Run {
        final String name;
        final KvCacheManager manager;
        final SlowTransferEngine engine;
        final Engine pattern;
        final long seed;
        final AtomicBoolean stop = new AtomicBoolean();
        final LongAdder ops = new LongAdder();
        final Map<Op, LongAdder> opCounts = new EnumMap<>(Op.class);
        final LongAdder blocksVerified = new LongAdder();
        final LongAdder bytesVerified = new LongAdder();
        final LongAdder wrongReads = new LongAdder();
        final LongAdder wrongBytes = new LongAdder();
        final LongAdder lostBlocks = new LongAdder();
        final LongAdder outOfSpace = new LongAdder();
        final LongAdder unexpected = new LongAdder();
        final LongAdder forksInsideBlock = new LongAdder();
        final LongAdder forksAtBoundary = new LongAdder();
        final LongAdder truncationsIntoBlock = new LongAdder();
        final LongAdder forkRollbacks = new LongAdder();
        final LongAdder deferredWrites = new LongAdder();
        final LongAdder cacheHitTokens = new LongAdder();
        final ConcurrentLinkedQueue<String> wrongSamples = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<String> lostSamples = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<String> unexpectedSamples = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Hang> hangs = new ConcurrentLinkedQueue<>();
        final Worker[] workers = new Worker[THREADS];

        Run(String name, KvCacheManager manager, SlowTransferEngine engine, long seed) {
            this.name = name;
            this.manager = manager;
            this.engine = engine;
            this.pattern = new Engine(manager);
            this.seed = seed;
            for (Op op : Op.values()) {
                opCounts.put(op, new LongAdder());
            }
        }

        static void sample(ConcurrentLinkedQueue<String> q, String s) {
            if (q.size() < 12) {
                q.add(s);
            }
        }

        void hang(String where) {
            if (hangs.isEmpty()) {
                hangs.add(new Hang(where, Bounded.threadDump()));
            } else {
                hangs.add(new Hang(where, ""));
            }
            stop.set(true);
        }

        void execute() {
            long budgetNanos = TimeUnit.SECONDS.toNanos(Math.max(1, TOTAL_SECONDS / CONFIGURATIONS));
            CountDownLatch start = new CountDownLatch(1);
            for (int t = 0; t < THREADS; t++) {
                workers[t] = new Worker(this, t, new SplittableRandom(seed * 1_000_003L + t), start);
            }
            Thread watchdog = Thread.ofPlatform().daemon().name("stress-watchdog").start(this::watch);
            long began = System.nanoTime();
            start.countDown();
            try {
                while (!stop.get()) {
                    boolean done = OPS > 0 ? ops.sum() >= OPS : System.nanoTime() - began >= budgetNanos;
                    if (done || Arrays.stream(workers).noneMatch(w -> w.thread.isAlive())) {
                        break;
                    }
                    Thread.sleep(100);
                }
                stop.set(true);
                // after a hang the other threads are usually stuck behind it: wait less for them
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(hangs.isEmpty() ? HANG_SECONDS : 5);
                for (Worker w : workers) {
                    w.thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
                    if (w.thread.isAlive()) {
                        hang(w.thread.getName() + " did not stop within " + HANG_SECONDS + " s, in " + w.current);
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            } finally {
                watchdog.interrupt();
            }
            double seconds = (System.nanoTime() - began) / 1e9;

            List<String> failures = new ArrayList<>();
            if (hangs.isEmpty()) {
                checkNothingLeft(failures);
            }
            CacheStats stats = manager.stats();
            try {
                Bounded.run("KvCacheManager.close() of '" + name + "'", Duration.ofSeconds(HANG_SECONDS), manager::close);
            } catch (AssertionError e) {
                hangs.add(new Hang("KvCacheManager.close()", hangs.isEmpty() ? e.getMessage() : ""));
            }

            String summary = summary(seconds, stats);
            System.out.println(summary);
            if (wrongBytes.sum() > 0) {
                failures.add(wrongReads.sum() + " wrong reads (" + wrongBytes.sum() + " wrong bytes), e.g.:\n  "
                        + String.join("\n  ", wrongSamples));
            }
            if (lostBlocks.sum() > 0) {
                failures.add(lostBlocks.sum() + " BlockLostExceptions with no injected fault, e.g.:\n  "
                        + String.join("\n  ", lostSamples));
            }
            if (engine.failures() > 0) {
                failures.add(engine.failures() + " copy batches failed in the transfer engine with no injected fault"
                        + " (e.g. a copy into a slot already freed), e.g.:\n  " + String.join("\n  ", engine.failureSamples()));
            }
            if (unexpected.sum() > 0) {
                failures.add(unexpected.sum() + " unexpected exceptions, e.g.:\n" + String.join("\n", unexpectedSamples));
            }
            if (!hangs.isEmpty()) {
                StringBuilder sb = new StringBuilder(hangs.size() + " hangs:");
                for (Hang h : hangs) {
                    sb.append("\n  ").append(h.where());
                }
                hangs.stream().filter(h -> !h.dump().isEmpty()).findFirst()
                        .ifPresent(h -> sb.append("\nthread dump at the first hang:\n").append(h.dump()));
                failures.add(sb.toString());
            }
            if (ops.sum() == 0) {
                failures.add("no operation ran");
            }
            if (!failures.isEmpty()) {
                fail(summary + "\n\n" + String.join("\n\n", failures));
            }
        }

        /** Every sequence is closed: no reference or pin is left, and everything drops. */
        private void checkNothingLeft(List<String> failures) {
            for (KvCacheManager.BlockInfo i : manager.blockInfos()) {
                if (i.refCount() != 0 || i.pins() != 0) {
                    failures.add("after every sequence closed, block " + i + " is still held");
                    return;
                }
            }
            // copies still settling (the slow engine) may hold slots for a moment
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            String left;
            do {
                manager.dropUnreferenced();
                left = leftAllocated();
                if (left == null) {
                    return;
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            } while (System.nanoTime() < deadline);
            failures.add("after every sequence closed and dropUnreferenced(): " + left);
        }

        private String leftAllocated() {
            int blocks = manager.blockInfos().size();
            StringBuilder sb = new StringBuilder();
            if (blocks > 0) {
                sb.append(blocks).append(" blocks left; ");
            }
            for (TierStats t : manager.stats().tiers()) {
                if (t.usedSlots() > 0) {
                    sb.append("tier '").append(t.name()).append("' has ").append(t.usedSlots())
                            .append(" slots allocated; ");
                }
            }
            return sb.isEmpty() ? null : sb.toString();
        }

        private String summary(double seconds, CacheStats st) {
            StringBuilder sb = new StringBuilder();
            sb.append(String.format("stress '%s': %d threads, %.1f s, seed %d: %d operations (%.0f/s)",
                    name, THREADS, seconds, seed, ops.sum(), ops.sum() / Math.max(seconds, 1e-9)));
            sb.append("\n  operations:");
            opCounts.forEach((op, n) -> sb.append(' ').append(op.name().toLowerCase()).append('=').append(n.sum()));
            sb.append(String.format("%n  forks inside a block %d, at a boundary %d, rolled back into their shared block"
                            + " %d; truncations into a block %d; appends written later %d; cached prompt tokens %d",
                    forksInsideBlock.sum(), forksAtBoundary.sum(), forkRollbacks.sum(), truncationsIntoBlock.sum(),
                    deferredWrites.sum(), cacheHitTokens.sum()));
            sb.append(String.format("%n  verified %d block reads (%d bytes): wrong reads %d, wrong bytes %d;"
                            + " lost blocks %d; failed copies %d; hangs %d; unexpected exceptions %d;"
                            + " out of space (allowed) %d",
                    blocksVerified.sum(), bytesVerified.sum(), wrongReads.sum(), wrongBytes.sum(), lostBlocks.sum(),
                    engine.failures(), hangs.size(), unexpected.sum(), outOfSpace.sum()));
            sb.append(String.format("%n  manager: %d promotions, %d demotions, %d lost; slow engine: %d batches,"
                            + " %d blocks, %d failed",
                    st.promotions(), st.demotions(), st.blocksLost(), engine.batches(), engine.blocks(),
                    engine.failures()));
            return sb.toString();
        }

        /** Fails the run when one operation runs past the bound or no operation completes for that long. */
        private void watch() {
            long bound = TimeUnit.SECONDS.toNanos(HANG_SECONDS);
            long lastOps = -1;
            long lastProgress = System.nanoTime();
            while (!stop.get()) {
                try {
                    Thread.sleep(250);
                } catch (InterruptedException e) {
                    return;
                }
                long now = System.nanoTime();
                for (Worker w : workers) {
                    long started = w.opStarted;
                    if (started != 0 && now - started > bound) {
                        hang(w.thread.getName() + " stuck in " + w.current + " for more than " + HANG_SECONDS + " s");
                        return;
                    }
                }
                long n = ops.sum();
                if (n != lastOps) {
                    lastOps = n;
                    lastProgress = now;
                } else if (now - lastProgress > bound) {
                    hang("no operation completed for " + HANG_SECONDS + " s");
                    return;
                }
            }
        }
    }

    /** One engine thread: its sequences, its random choices, its checks. */
    static final class Worker {
        final Run run;
        final int id;
        final SplittableRandom r;
        final Thread thread;
        final List<Seq> seqs = new ArrayList<>();
        final MemorySegment block;
        /** The sequence the current operation last worked on (a fork, a new one): dropped if it fails. */
        Seq touching;
        volatile String current = "nothing";
        volatile long opStarted;

        Worker(Run run, int id, SplittableRandom r, CountDownLatch start) {
            this.run = run;
            this.id = id;
            this.r = r;
            this.block = Arena.ofAuto().allocate(LAYOUT.blockBytes());
            this.thread = Thread.ofPlatform().daemon().name("stress-engine-" + id).unstarted(() -> {
                try {
                    start.await();
                    loop();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            thread.start();
        }

        private void loop() {
            while (!run.stop.get()) {
                Op op = choose();
                perform(op, seqs.isEmpty() ? null : seqs.get(r.nextInt(seqs.size())));
            }
            // the end of the run: every sequence closes (each close is watched like any operation)
            for (Seq s : new ArrayList<>(seqs)) {
                if (run.hangs.isEmpty()) {
                    perform(Op.CLOSE, s);
                }
            }
        }

        private Op choose() {
            if (seqs.isEmpty()) {
                return Op.OPEN;
            }
            int x = r.nextInt(100);
            if (x < 10) {
                return seqs.size() < MAX_SEQUENCES_PER_THREAD ? Op.OPEN : Op.CLOSE;
            } else if (x < 32) {
                return Op.DECODE;
            } else if (x < 42) {
                return seqs.size() < MAX_SEQUENCES_PER_THREAD ? Op.FORK : Op.CLOSE;
            } else if (x < 52) {
                return Op.TRUNCATE_REWRITE;
            } else if (x < 58) {
                return Op.ENSURE_RESIDENT;
            } else if (x < 62) {
                return Op.LAYER_RANGE;
            } else if (x < 64) {
                return Op.LAYER_WINDOWS;
            } else if (x < 78) {
                return Op.READ_BLOCKS;
            } else if (x < 84) {
                return Op.PREFETCH;
            } else if (x < 92) {
                return Op.ATTENTION;
            }
            return Op.CLOSE;
        }

        private void perform(Op op, Seq s) {
            touching = s;
            current = op + (s == null ? "" : " on " + s.s);
            opStarted = System.nanoTime();
            try {
                switch (op) {
                    case OPEN -> open();
                    case DECODE -> decode(s);
                    case FORK -> fork(s);
                    case TRUNCATE_REWRITE -> truncateAndRewrite(s);
                    case ENSURE_RESIDENT -> ensureResident(s, false);
                    case LAYER_RANGE -> ensureResident(s, true);
                    case LAYER_WINDOWS -> layerWindows(s);
                    case READ_BLOCKS -> readBlocks(s);
                    case PREFETCH -> run.manager.prefetch(AccessPlan.allBlocksOf(s.s.id()));
                    case ATTENTION -> attention(s);
                    case CLOSE -> close(s);
                }
            } catch (OutOfCacheSpaceException e) {
                // allowed: the engine backs off, and sometimes gives up a sequence to make room
                run.outOfSpace.increment();
                if (seqs.size() > 1 && r.nextInt(3) == 0) {
                    drop(seqs.get(r.nextInt(seqs.size())));
                }
                java.util.concurrent.locks.LockSupport.parkNanos(r.nextLong(50_000, 300_000));
            } catch (BlockLostException e) {
                Seq v = touching;
                run.lostBlocks.increment();
                Run.sample(run.lostSamples, op + " on " + v.s + " (salt " + Arrays.toString(v.salt) + ", "
                        + v.tokens.length + " tokens): " + e.getMessage());
                // the engine would recompute from there; the test drops the sequence
                drop(v);
            } catch (Stuck e) {
                run.hang(thread.getName() + ": " + e.getMessage());
            } catch (RuntimeException | AssertionError e) {
                run.unexpected.increment();
                StringWriter sw = new StringWriter();
                e.printStackTrace(new PrintWriter(sw));
                Seq v = touching;
                Run.sample(run.unexpectedSamples, op + (v == null ? "" : " on " + v.s) + ": " + sw);
                if (v != null) {
                    drop(v);
                }
            } finally {
                opStarted = 0;
                current = "between operations after " + op;
            }
            run.ops.increment();
            run.opCounts.get(op).increment();
        }

        /** Thrown by a bounded wait that ran out: the watchdog would have said so too. */
        static final class Stuck extends RuntimeException {
            Stuck(String message) {
                super(message);
            }
        }

        private void drop(Seq s) {
            seqs.remove(s);
            try {
                s.s.close();
            } catch (RuntimeException ignored) {
                // counted where it happened
            }
        }

        // ------------------------------------------------------------------ operations

        private void open() {
            byte[] salt = SALTS[r.nextInt(SALTS.length)];
            int[] prompt;
            if (r.nextInt(10) < 7) {
                int[] system = SYSTEM_PROMPTS[r.nextInt(SYSTEM_PROMPTS.length)];
                int suffix = r.nextInt(9);
                prompt = Arrays.copyOf(system, system.length + suffix);
                for (int i = system.length; i < prompt.length; i++) {
                    prompt[i] = id * 1000 + r.nextInt(12);
                }
            } else {
                prompt = new int[1 + r.nextInt(24)];
                for (int i = 0; i < prompt.length; i++) {
                    prompt[i] = id * 1000 + 500 + r.nextInt(6);
                }
            }
            Sequence s = run.manager.open(salt, prompt);
            Seq q = new Seq(s, salt, prompt);
            seqs.add(q);
            touching = q;
            check(s.length() == prompt.length, "open: length " + s.length() + " for a prompt of " + prompt.length);
            check(s.cachedTokens() % BT == 0 && s.cachedTokens() < Math.max(1, prompt.length),
                    "open: " + s.cachedTokens() + " cached tokens of a prompt of " + prompt.length);
            run.cacheHitTokens.add(s.cachedTokens());
            prefill(q);
            if (r.nextInt(4) == 0) {
                readBlocks(q);
            }
        }

        private void decode(Seq s) {
            int n = 1 + r.nextInt(3);
            if (s.tokens.length + n > MAX_TOKENS) {
                truncateAndRewrite(s);
                return;
            }
            append(s, randomTokens(n, -1));
            if (r.nextInt(4) == 0) {
                // tokens appended now, their K/V written by a later step (as a batched or
                // speculative engine does): the written prefix stays behind the length
                run.deferredWrites.increment();
                return;
            }
            prefill(s);
        }

        private void fork(Seq s) {
            Sequence f = s.s.fork();
            Seq q = new Seq(f, s.salt, s.tokens.clone());
            seqs.add(q);
            touching = q;
            boolean inside = s.tokens.length % BT != 0;
            if (inside) {
                run.forksInsideBlock.increment();
            } else {
                run.forksAtBoundary.increment();
            }
            check(Arrays.equals(f.tokens(), q.tokens), "fork: tokens of " + f + " differ from its parent's");
            int choice = r.nextInt(3);
            if (choice == 0 && inside && s.tokens.length + 2 <= MAX_TOKENS && s.s.writtenTokens() == s.tokens.length) {
                // beam search / speculative rollback: the fork appends (its K/V not written yet)
                // while the parent rolls back into the block they shared and rewrites it
                run.forkRollbacks.increment();
                append(q, randomTokens(1, -1));
                int len = s.tokens.length;
                int n = Math.max(len / BT * BT + 1, len - 1 - r.nextInt(BT - 1));
                if (n < len) {
                    int replaced = s.tokens[n];
                    s.s.truncate(n);
                    s.tokens = Arrays.copyOf(s.tokens, n);
                    append(s, randomTokens(1 + r.nextInt(2), replaced));
                    prefill(s);
                }
                readBlocks(q);
                prefill(q);
                readBlocks(q);
                readBlocks(s);
            } else if (choice == 1 && s.tokens.length + 3 <= MAX_TOKENS) {
                // beams diverge: each appends its own tokens into the block they shared
                append(q, randomTokens(1 + r.nextInt(2), -1));
                prefill(q);
                if (r.nextBoolean()) {
                    append(s, randomTokens(1 + r.nextInt(2), -1));
                    prefill(s);
                }
            }
            if (r.nextInt(3) == 0) {
                readBlocks(r.nextBoolean() ? q : s);
            }
        }

        /** Truncates (mostly into the middle of a block), appends other tokens and rewrites them. */
        private void truncateAndRewrite(Seq s) {
            int len = s.tokens.length;
            if (len == 0) {
                decode(s);
                return;
            }
            int n;
            if (r.nextInt(10) < 7 && len > 1) {
                // a position strictly inside one of the last three blocks
                int lastBlock = (len - 1) / BT;
                int b = Math.max(0, lastBlock - r.nextInt(3));
                n = Math.min(len - 1, b * BT + 1 + r.nextInt(BT - 1));
            } else {
                n = Math.max(0, len - r.nextInt(2 * BT + 1));
            }
            if (n % BT != 0) {
                run.truncationsIntoBlock.increment();
            }
            int replaced = n < len ? s.tokens[n] : -1;
            s.s.truncate(n);
            s.tokens = Arrays.copyOf(s.tokens, n);
            check(s.s.length() == n, "truncate: length " + s.s.length() + ", expected " + n);
            int room = Math.min(MAX_TOKENS - n, 1 + r.nextInt(BT + 2));
            if (room > 0) {
                append(s, randomTokens(room, replaced));
                prefill(s);
            }
            if (r.nextInt(3) == 0) {
                readBlocks(s);
            }
        }

        /**
         * A few blocks made resident, all layers or (with {@code someLayers}) a layer range: what
         * the handle reads of its layers equals the model.
         */
        private void ensureResident(Seq s, boolean someLayers) {
            int blocks = s.s.blockCount();
            if (blocks == 0) {
                decode(s);
                return;
            }
            int from = r.nextInt(blocks);
            int to = Math.min(blocks, from + 1 + r.nextInt(3));
            int l0 = someLayers ? r.nextInt(LAYOUT.layers()) : 0;
            int l1 = someLayers ? l0 + 1 + r.nextInt(LAYOUT.layers() - l0) : LAYOUT.layers();
            ResidencyHandle h = someLayers ? run.manager.ensureResident(s.s, from, to, l0, l1)
                    : run.manager.ensureResident(s.s, from, to);
            try {
                awaitBounded(h, "ensureResident(" + s.s + ", " + from + ", " + to + ", layers " + l0 + ", " + l1 + ")");
                long[] table = someLayers ? h.blockTable(l0) : h.blockTable();
                check(table.length == to - from, "blockTable of " + table.length + " entries for " + (to - from));
                int written = s.s.writtenTokens();
                for (int b = from; b < to && b * BT < written; b++) {
                    if (someLayers) {
                        verifyLayers(s, h, b, l0, l1, written, "layer handle read");
                    } else {
                        h.read(b, 0, block);
                        verifyBlock(s, b, written, "handle read");
                    }
                }
            } finally {
                h.close();
            }
        }

        /** A layer-by-layer sweep over every full block through the library's streaming windows. */
        private void layerWindows(Seq s) {
            int full = s.s.writtenTokens() / BT;
            try (LayerWindows windows = run.manager.layerWindows(s.s, 0, full)) {
                for (int layer = 0; layer < LAYOUT.layers(); layer++) {
                    for (ResidencyHandle w : windows.layer(layer)) {
                        int written = s.s.writtenTokens();
                        for (int b = w.fromBlock(); b < w.fromBlock() + w.blockCount(); b++) {
                            verifyLayers(s, w, b, layer, layer + 1, written, "layer window read");
                        }
                    }
                }
            }
        }

        /** The block read whole from the cache, its layers {@code [l0, l1)} overwritten with what the handle reads. */
        private void verifyLayers(Seq s, ResidencyHandle h, int b, int l0, int l1, int written, String how) {
            run.manager.readBlock(s.s, b, block);
            long lb = LAYOUT.layerBytes();
            h.read(b, l0 * lb, block.asSlice(l0 * lb, (l1 - l0) * lb));
            verifyBlock(s, b, written, how);
        }

        private void readBlocks(Seq s) {
            touching = s;
            check(Arrays.equals(s.s.tokens(), s.tokens), "tokens of " + s.s + " differ from the model");
            int written = s.s.writtenTokens();
            check(written <= s.tokens.length, "written " + written + " past length " + s.tokens.length);
            for (int b = 0; b * BT < written; b++) {
                run.manager.readBlock(s.s, b, block);
                verifyBlock(s, b, written, "readBlock");
            }
        }

        private void attention(Seq s) {
            int blocks = s.s.blockCount();
            for (int i = 0; i < 1 + r.nextInt(3) && blocks > 0; i++) {
                run.manager.reportAttention(s.s, r.nextInt(blocks), r.nextDouble() * 2);
            }
            if (r.nextInt(3) == 0) {
                run.manager.endStep();
            }
        }

        private void close(Seq s) {
            if (r.nextInt(3) == 0 && seqs.contains(s)) {
                readBlocks(s);
            }
            seqs.remove(s);
            s.s.close();
        }

        // ------------------------------------------------------------------ helpers

        private int[] randomTokens(int n, int avoid) {
            int[] t = new int[n];
            for (int i = 0; i < n; i++) {
                do {
                    t[i] = 1 + r.nextInt(8);
                } while (i == 0 && t[i] == avoid);
            }
            return t;
        }

        private void append(Seq s, int[] tokens) {
            touching = s;
            s.s.append(tokens);
            int[] grown = Arrays.copyOf(s.tokens, s.tokens.length + tokens.length);
            System.arraycopy(tokens, 0, grown, s.tokens.length, tokens.length);
            s.tokens = grown;
        }

        /**
         * Writes K/V of [written, length) in chunks of one to three blocks, each chunk made
         * resident by one handle (a chunked prefill, or a speculative step writing several
         * tokens), then marks them written.
         */
        private void prefill(Seq s) {
            touching = s;
            int from = s.s.writtenTokens();
            int to = s.tokens.length;
            int endBlock = (to + BT - 1) / BT;
            int b = from / BT;
            while (b < endBlock) {
                int end = Math.min(endBlock, b + 1 + r.nextInt(3));
                ResidencyHandle h = run.manager.ensureResident(s.s, b, end);
                try {
                    awaitBounded(h, "prefill ensureResident(" + s.s + ", " + b + ", " + end + ")");
                    for (int x = b; x < end; x++) {
                        run.pattern.writePositions(h, s.salt, s.tokens, x, Math.max(from, x * BT),
                                Math.min(to, (x + 1) * BT));
                    }
                } finally {
                    h.close();
                }
                s.s.markWritten(Math.min(to, end * BT));
                b = end;
            }
        }

        private void awaitBounded(ResidencyHandle h, String what) {
            try {
                h.ready().get(HANG_SECONDS, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new Stuck(what + " not ready after " + HANG_SECONDS + " s");
            } catch (ExecutionException | CompletionException e) {
                h.await(); // throws the BlockLostException naming the block
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Stuck(what + ": interrupted");
            }
            h.await();
        }

        private void verifyBlock(Seq s, int b, int written, String how) {
            StringBuilder first = new StringBuilder();
            long wrong = run.pattern.wrongBytes(s.salt, s.tokens, written, b, block, first);
            int positions = Math.min(written, (b + 1) * BT) - b * BT;
            run.blocksVerified.increment();
            run.bytesVerified.add((long) positions * 2 * LAYOUT.layers() * LAYOUT.tokenLayerBytes());
            if (wrong > 0) {
                run.wrongReads.increment();
                run.wrongBytes.add(wrong);
                Run.sample(run.wrongSamples, how + " of " + s.s + " block " + b + " (salt " + Arrays.toString(s.salt)
                        + ", tokens " + Arrays.toString(s.tokens) + ", written " + written + "): " + wrong
                        + " wrong bytes, first at " + first);
            }
        }

        private static void check(boolean ok, String what) {
            if (!ok) {
                throw new AssertionError(what);
            }
        }
    }
}
