package io.kvcache.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferHandle;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Model-checks the manager's copy ordering: small scenarios run against an engine that completes
 * nothing by itself, and a depth-first search completes the submitted batches in every possible
 * order (replaying the scenario from the start for each path). In every order, every request
 * must finish (no batch may wait, directly or through others, on itself) and every sequence
 * must read the K/V of its own tokens.
 */
class CopyOrderModelCheckTest {
    static final KvLayout LAYOUT = new KvLayout(1, 1, 4, DType.FP32, 4);

    /** Records batches; the search decides when each completes. */
    static final class ControlledEngine implements TransferEngine {
        record Pending(TransferBatch batch, CompletableFuture<Void> done) {
        }

        final List<Pending> pending = new ArrayList<>();

        @Override
        public boolean supports(Tier source, Tier destination) {
            return true;
        }

        @Override
        public synchronized TransferHandle submit(TransferBatch batch) {
            Pending p = new Pending(batch, new CompletableFuture<>());
            pending.add(p);
            return TransferHandle.of(p.done, batch.bytes());
        }

        synchronized int size() {
            return pending.size();
        }

        void complete(int i) {
            Pending p;
            synchronized (this) {
                p = pending.remove(i);
            }
            for (BlockMove m : p.batch.moves()) {
                MemorySegment.copy(p.batch.source().view(m.srcSlot()), 0, p.batch.destination().view(m.dstSlot()), 0,
                        LAYOUT.blockBytes());
            }
            p.done.complete(null);
        }

        @Override
        public void close() {
        }
    }

    /** A scenario: API calls that may wait for copies, run on a thread of their own. */
    interface Scenario extends Consumer<KvCacheManager> {
    }

    static byte pattern(int[] tokens, int pos) {
        long h = 17;
        for (int i = 0; i <= pos; i++) {
            h = h * 31 + tokens[i];
        }
        return (byte) (h | 1);
    }

    /** Writes K/V of tokens [written, length) and marks them written; waits for residency. */
    static void write(KvCacheManager m, Sequence s) {
        int bt = LAYOUT.blockTokens();
        int[] tokens = s.tokens();
        int from = s.writtenTokens();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(LAYOUT.tokenLayerBytes());
            for (int b = from / bt; b * bt < tokens.length; b++) {
                try (ResidencyHandle h = m.ensureResident(s, b, b + 1)) {
                    h.await();
                    for (int pos = Math.max(from, b * bt); pos < Math.min(tokens.length, (b + 1) * bt); pos++) {
                        for (int kind = 0; kind < 2; kind++) {
                            one.fill(pattern(tokens, pos));
                            h.write(b, BlockLayoutDescriptor.tokenOffset(LAYOUT, 0, kind, pos % bt), one);
                        }
                    }
                }
            }
        }
        s.markWritten(tokens.length);
    }

    static String verify(KvCacheManager m, Sequence s) {
        int bt = LAYOUT.blockTokens();
        int[] tokens = s.tokens();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = arena.allocate(LAYOUT.blockBytes());
            for (int b = 0; b * bt < s.writtenTokens(); b++) {
                m.readBlock(s, b, block);
                for (int pos = b * bt; pos < Math.min(s.writtenTokens(), (b + 1) * bt); pos++) {
                    byte got = block.get(ValueLayout.JAVA_BYTE, BlockLayoutDescriptor.tokenOffset(LAYOUT, 0, 0, pos % bt));
                    if (got != pattern(tokens, pos)) {
                        return s + " position " + pos + ": expected " + pattern(tokens, pos) + " got " + got;
                    }
                }
            }
        }
        return null;
    }

    /** Outcome of one path: the number of choices seen at each step, or the failure. */
    record Run(List<Integer> branching, String failure) {
    }

    private static Run run(int[] slots, Scenario scenario, List<Integer> choices) throws InterruptedException {
        ControlledEngine engine = new ControlledEngine();
        KvCacheManager.Builder b = KvCacheManager.builder(LAYOUT).modelId("mc").transferEngine(engine)
                .persistOnClose(false).closeTimeout(java.time.Duration.ofSeconds(2));
        for (int i = 0; i < slots.length; i++) {
            b.tier(new HeapTier("t" + i, LAYOUT, slots[i]));
        }
        KvCacheManager m = b.build();
        AtomicReference<Throwable> error = new AtomicReference<>();
        Thread t = Thread.ofPlatform().daemon().start(() -> {
            try {
                scenario.accept(m);
            } catch (Throwable e) {
                error.set(e);
            }
        });
        List<Integer> branching = new ArrayList<>();
        String failure = null;
        try {
            int step = 0;
            while (true) {
                settle(m, engine, t);
                int n = engine.size();
                if (!t.isAlive() && n == 0) {
                    break;
                }
                if (n == 0) {
                    if (!stillStuck(m, engine, t)) {
                        continue;       // it was only waking up
                    }
                    failure = "hang: the scenario waits for a copy but no batch is runnable; thread:\n"
                            + stack(t) + "blocks: " + m.blockInfos() + "\nin flight: " + m.locked(() ->
                            m.dispatcherForTests().inFlight().stream().map(c -> c.block.id + ":" + c.srcTier + "/"
                                    + c.srcSlot + "->" + c.dstTier + "/" + c.dstSlot + " wave " + c.wave + " src "
                                    + c.srcReady.isDone() + " dst " + c.dstFree.isDone()).toList());
                    break;
                }
                branching.add(n);
                int c = step < choices.size() ? choices.get(step) : 0;
                engine.complete(c);
                step++;
            }
            if (failure == null && error.get() != null) {
                failure = "scenario failed: " + error.get();
            }
        } finally {
            if (t.isAlive()) {
                t.interrupt();
            }
            m.close();
        }
        return new Run(branching, failure);
    }

    /**
     * Waits until the dispatcher is idle and the scenario thread either ended or waits for a
     * copy, as seen three times in a row. A loaded machine only makes this slower: the verdict
     * never depends on how long anything took (the bound is only a last resort).
     */
    private static void settle(KvCacheManager m, ControlledEngine engine, Thread t) throws InterruptedException {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(300);
        int stable = 0;
        int last = -1;
        while (stable < 3) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the scenario thread neither ended nor parked within 300 s:\n" + stack(t));
            }
            m.drainDispatcher();
            Thread.State st = t.getState();
            boolean parked = st == Thread.State.WAITING || st == Thread.State.TERMINATED;
            int n = engine.size();
            stable = parked && n == last ? stable + 1 : 0;
            last = n;
            if (stable < 3) {
                Thread.sleep(0, 200_000);
            }
        }
    }

    /**
     * A thread just woken may still show as waiting until it is scheduled, which on a loaded
     * machine takes a while: a hang is declared only when, for 10 s, the scenario thread stays
     * parked and no batch becomes runnable. A real hang lasts forever, so it is always caught.
     */
    private static boolean stillStuck(KvCacheManager m, ControlledEngine engine, Thread t)
            throws InterruptedException {
        long until = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < until) {
            m.drainDispatcher();
            if (!t.isAlive() || t.getState() != Thread.State.WAITING || engine.size() > 0) {
                return false;
            }
            Thread.sleep(1);
        }
        return true;
    }

    private static String stack(Thread t) {
        StringBuilder sb = new StringBuilder();
        for (StackTraceElement e : t.getStackTrace()) {
            sb.append("  at ").append(e).append('\n');
        }
        return sb.toString();
    }

    /** Explores every completion order; returns the number of complete paths. */
    private static int explore(int[] slots, Scenario scenario, int maxPaths) throws InterruptedException {
        List<List<Integer>> stack = new ArrayList<>();
        stack.add(List.of());
        int paths = 0;
        while (!stack.isEmpty() && paths < maxPaths) {
            List<Integer> prefix = stack.removeLast();
            Run r = run(slots, scenario, prefix);
            if (Boolean.getBoolean("kvcache.mc.debug")) {
                System.out.println("path " + prefix + " branching " + r.branching() + " failure " + r.failure());
            }
            if (r.failure() != null) {
                fail("completion order " + prefix + " (then first-pending): " + r.failure());
            }
            paths++;
            // branch on every alternative past the prefix
            for (int step = r.branching().size() - 1; step >= prefix.size(); step--) {
                for (int alt = 1; alt < r.branching().get(step); alt++) {
                    List<Integer> next = new ArrayList<>(prefix);
                    while (next.size() < step) {
                        next.add(0);
                    }
                    next.add(alt);
                    stack.add(next);
                }
            }
        }
        return paths;
    }

    @Test
    void theHangOfACopyAndAnEvictionInOnePlanCannotHappenInAnyOrder() throws Exception {
        // device 2 slots, host 2, a third tier; a forked partial block, another tenant's blocks,
        // then a request that copies the fork's block while evicting its source
        AtomicReference<String> wrong = new AtomicReference<>();
        int paths = explore(new int[] {2, 2, 8}, m -> {
            Sequence a = m.open(new byte[] {1}, new int[] {1, 2, 3, 4, 5, 6});
            write(m, a);
            Sequence b = a.fork();
            Sequence other = m.open(new byte[] {2}, new int[] {9, 9, 9, 9, 8, 8, 8, 8});
            write(m, other);
            b.append(7, 8, 9);
            try (ResidencyHandle h = m.ensureResident(b, 1, 3)) {
                h.await();
            }
            write(m, b);
            String v = verify(m, a);
            v = v != null ? v : verify(m, b);
            v = v != null ? v : verify(m, other);
            if (v != null) {
                wrong.set(v);
            }
        }, 3000);
        assertTrue(paths >= 1);
        assertEquals(null, wrong.get());
        System.out.println("model check (hang scenario): " + paths + " completion orders");
    }

    @Test
    void aForkNeverSeesItsParentsRewriteInAnyOrder() throws Exception {
        AtomicReference<String> wrong = new AtomicReference<>();
        int paths = explore(new int[] {2, 2, 8}, m -> {
            Sequence a = m.open(new byte[] {1}, new int[] {1, 2, 3, 4, 5, 6});
            write(m, a);
            Sequence b = a.fork();
            b.append(7);
            a.truncate(5);
            a.append(99);
            write(m, a);
            write(m, b);
            b.append(8);
            write(m, b);             // b's block fills and seals under b's key
            String v = verify(m, b);
            v = v != null ? v : verify(m, a);
            if (v != null) {
                wrong.set(v);
            }
        }, 3000);
        assertTrue(paths >= 1);
        assertEquals(null, wrong.get());
        System.out.println("model check (fork rewrite scenario): " + paths + " completion orders");
    }

    @Test
    void concurrentRequestsForksAndPrefetchesFinishAndReadRightInEveryOrder() throws Exception {
        AtomicReference<String> wrong = new AtomicReference<>();
        int paths = 0;
        for (int device = 4; device <= 6; device++) {
            paths += explore(new int[] {device, 4, 16}, m -> {
            Sequence a = m.open(new byte[] {1}, new int[] {1, 2, 3, 4, 5, 6});
            write(m, a);
            Sequence c = m.open(new byte[] {2}, new int[] {7, 7, 7, 7, 8, 8, 8, 8, 9});
            write(m, c);
            Sequence b = a.fork();
            b.append(7);
            Sequence d = c.fork();
            d.append(1, 2, 3, 4);
            a.truncate(5);
            a.append(99);
            // several requests in flight at once, awaited only at the end
            m.prefetch(io.kvcache.core.prefetch.AccessPlan.allBlocksOf(c.id()));
            ResidencyHandle hb = m.ensureResident(b, 0, 2);
            ResidencyHandle ha = m.ensureResident(a, 1, 2);
            hb.await();
            ha.await();
            hb.close();
            ha.close();
            write(m, a);
            write(m, b);
            write(m, d);
            for (Sequence s : List.of(a, b, c, d)) {
                String v = verify(m, s);
                if (v != null && wrong.get() == null) {
                    wrong.set(v);
                }
            }
            }, Integer.getInteger("kvcache.mc.paths", 400));
        }
        assertTrue(paths > 3, "the scenario has several orders to explore");
        assertEquals(null, wrong.get());
        System.out.println("model check (concurrent scenario): " + paths + " completion orders");
    }
}
