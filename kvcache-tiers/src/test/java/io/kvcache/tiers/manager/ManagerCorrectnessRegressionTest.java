package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.kvcache.core.BlockLostException;
import io.kvcache.core.InvalidHandleException;
import io.kvcache.core.KvCacheException;
import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayoutMismatchException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.disk.ChronicleJvmFlags;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One deterministic test per defect of "Correctness under concurrency, forks and close" (and
 * the {@code markWritten} defect of "Reuse that survives restarts and crashes"), each driven
 * through the public API only, each failing for the reason the defect gives. Calls that hung
 * because of a defect are bounded ({@link Bounded}); uses of unmapped memory run in a child JVM.
 */
class ManagerCorrectnessRegressionTest {
    /** Block tokens 4, as in the issue. */
    static final KvLayout LAYOUT = new KvLayout(2, 1, 4, DType.FP32, 4);
    static final byte[] SALT = {3, 1, 4};
    static final byte[] OTHER_SALT = {2, 7, 1};
    static final Duration BOUND = Duration.ofSeconds(20);

    @TempDir
    Path tmp;

    private static SimulatedDeviceTier device(int blocks) {
        return new SimulatedDeviceTier(LAYOUT, blocks * LAYOUT.blockBytes());
    }

    private static MmapHostTier host(String name, int blocks) {
        return new MmapHostTier(name, LAYOUT, blocks * LAYOUT.blockBytes());
    }

    private MappedFileTier disk(Path dir, int blocks) {
        return MappedFileTier.builder(LAYOUT).directory(dir).modelId("regression")
                .capacityBytes(blocks * LAYOUT.blockBytes()).open();
    }

    private static int[] range(int from, int toInclusive) {
        return IntStream.rangeClosed(from, toInclusive).toArray();
    }

    /** Runs a test body on a manager, then closes the manager within a bound (a hung close fails, not hangs). */
    private static void withManager(KvCacheManager m, Bounded.Action body) throws Exception {
        Throwable failure = null;
        try {
            body.run();
        } catch (Throwable t) {
            failure = t;
            throw t;
        } finally {
            try {
                Bounded.run("KvCacheManager.close()", BOUND, m::close);
            } catch (AssertionError e) {
                if (failure == null) {
                    throw e;
                }
                failure.addSuppressed(new AssertionError("and close() hung too"));
            }
        }
    }

    // ------------------------------------------------------------- (a) copy-on-write copies late

    /**
     * {@code b = a.fork()} shares a's written partial block; b's append gives b a private copy
     * whose bytes may only be taken later. a then owns the source alone and rewrites it:
     * truncate into the block, append another token, write it. b must still read its own K/V.
     */
    @Test
    void aForkKeepsItsPartialBlockWhenTheOtherOwnerTruncatesAppendsAndRewritesIt() throws Exception {
        KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(8)).tier(host("host", 16)).build();
        withManager(m, () -> {
            Engine e = new Engine(m);
            Sequence a = m.open(SALT, range(1, 6));
            e.prefill(a, SALT);                      // [1..6] written: block 1 holds tokens 5, 6
            Sequence b = a.fork();
            b.append(7);                             // b's block 1 becomes a private copy of a's
            a.truncate(5);                           // into the middle of block 1
            a.append(99);
            e.prefill(a, SALT);                      // writes position 5 of a: token 99's K/V
            assertNull(e.verify(a, SALT), "a reads its own rewrite");
            assertNull(e.verify(b, SALT), "b must still read token 6's K/V at position 5, not a's token 99");

            b.append(8);
            e.prefill(b, SALT);                      // b's block 1 fills and is sealed under b's key
            assertNull(e.verify(b, SALT), "b after its block 1 was sealed");
            // what every later request of b's prefix is served from that key
            Sequence c = m.open(SALT, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
            assertEquals(8, c.cachedTokens(), "b's two full blocks are found by their content keys");
            assertNull(e.verify(c, SALT), "the block sealed under b's key must hold b's bytes");
        });
    }

    // ------------------------------------------------------------- (b) a copy and an eviction wait on each other

    private static KvCacheManager hangConfiguration() {
        return KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(2)).tier(host("host", 2)).tier(host("lower", 8)).build();
    }

    /** The 11 calls of the issue up to the append, leaving b = a.fork() with tokens [1..9]. */
    private static Sequence forkWithPendingCopy(KvCacheManager m, Engine e) {
        Sequence a = m.open(SALT, range(1, 6));
        e.prefill(a, SALT);
        Sequence b = a.fork();
        Sequence other = m.open(OTHER_SALT, range(101, 108));
        e.prefill(other, OTHER_SALT);
        b.append(7, 8, 9);
        return b;
    }

    @Test
    void aCopyOnWriteAndAnEvictionInOnePlanDoNotWaitOnEachOther() throws Exception {
        KvCacheManager m = hangConfiguration();
        withManager(m, () -> {
            Engine e = new Engine(m);
            Sequence b = forkWithPendingCopy(m, e);
            ResidencyHandle h = m.ensureResident(b, 1, 3);
            Bounded.run("ensureResident(b, 1, 3).await()", BOUND, h::await);
            h.close();
            String diff = Bounded.call("verify(b)", BOUND, () -> e.verify(b, SALT));
            assertNull(diff, "b after its copy-on-write");
        });
    }

    @Test
    void closeReturnsWithinABoundRightAfterACopyOnWriteWithEvictions() {
        KvCacheManager m = hangConfiguration();
        Engine e = new Engine(m);
        Sequence b = forkWithPendingCopy(m, e);
        m.ensureResident(b, 1, 3);                   // not awaited: close must settle or refuse it
        Bounded.run("KvCacheManager.close() after ensureResident(b, 1, 3)", BOUND, m::close);
    }

    // ------------------------------------------------------------- (c) closing one sequence loses another's blocks

    /**
     * One plan demotes x's and y's partial blocks from the host into two disk slots, in one
     * batch of a (held) slow engine. x closes while the batch is queued: its disk slot must not
     * be freed under the pending copy, and y's block must not be lost.
     */
    @Test
    void closingASequenceWhileItsBlockIsBeingDemotedToDiskLosesNoOtherBlock() throws Exception {
        SlowTransferEngine engine = SlowTransferEngine.withDefaults();
        KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(2)).tier(host("host", 2)).tier(disk(tmp.resolve("disk"), 8))
                .transferEngine(engine).evictionPolicy(EvictionPolicy.lru()).build();
        withManager(m, () -> {
            Engine e = new Engine(m);
            Sequence x = m.open(SALT, new int[] {10, 11, 12});
            e.prefill(x, SALT);
            Sequence y = m.open(SALT, new int[] {20, 21, 22});
            e.prefill(y, SALT);
            Sequence z = m.open(SALT, range(30, 37));
            e.prefill(z, SALT);                      // x's and y's blocks demoted to the host
            assertEquals(1, tierOf(m, x, 0), "x's block is in the host tier");
            assertEquals(1, tierOf(m, y, 0), "y's block is in the host tier");

            engine.hold();
            Sequence w = m.open(SALT, range(40, 47));
            ResidencyHandle h = m.ensureResident(w, 0, 2); // z's blocks to the host, x's and y's to disk
            assertEquals(2, tierOf(m, x, 0), "x's block is being demoted to disk");
            assertEquals(2, tierOf(m, y, 0), "y's block is being demoted to disk");
            x.close();                                   // while the demotion into its disk slot is queued
            engine.release();
            Bounded.run("ensureResident(w, 0, 2).await()", BOUND, h::await);
            h.close();

            MemorySegment dst = Arena.ofAuto().allocate(LAYOUT.blockBytes());
            BlockLostException lost = null;
            try {
                Bounded.run("readBlock(y, 0)", BOUND, () -> m.readBlock(y, 0, dst));
            } catch (BlockLostException ex) {
                lost = ex;
            }
            assertNull(lost, () -> "y's block was lost although nothing failed: x's close freed a disk slot "
                    + "under the pending copy into it; engine batches failed: " + engine.failures());
            assertNull(e.verify(y, SALT), "y's bytes");
            assertNull(e.verify(z, SALT), "z's bytes");
            assertEquals(0, m.stats().blocksLost(), "blocks lost without any fault");
        });
    }

    private static int tierOf(KvCacheManager m, Sequence s, int block) {
        long id = m.blockId(s, block);
        return m.blockInfos().stream().filter(i -> i.id() == id).findFirst().orElseThrow().tier();
    }

    // ------------------------------------------------------------- (d) handles used during or after close()

    /** Runs {@link ClosedManagerChild} in a child JVM and returns its exit status and output. */
    private record Child(int status, String output) {
    }

    private Child child(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ChronicleJvmFlags.REQUIRED);
        cmd.addAll(List.of("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-CreateCoredumpOnCrash",
                "-XX:ErrorFile=" + tmp.resolve("hs_err_pid%p.log")));
        cmd.add("-cp");
        String cp = System.getProperty("surefire.test.class.path");
        cmd.add(cp == null || cp.isBlank() ? System.getProperty("java.class.path") : cp);
        cmd.add(ClosedManagerChild.class.getName());
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(tmp, "child", ".out");
        // output to a file, not a pipe: no reader thread to race the child's end
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            fail("child JVM " + String.join(" ", args) + " did not finish within 120 s:\n" + Files.readString(out));
        }
        return new Child(p.exitValue(), Files.readString(out));
    }

    private static String describe(Child c) {
        List<String> lines = c.output().lines().filter(l -> !l.isBlank() && !l.startsWith("WARNING:")).toList();
        if (c.output().contains("A fatal error has been detected")) {
            // the JVM's own crash report: its signal line and the frame that touched the memory
            StringBuilder crash = new StringBuilder();
            for (int i = 0; i < lines.size(); i++) {
                String l = lines.get(i);
                if (l.startsWith("manager closed") || l.contains("SIGSEGV") || l.contains("SIGBUS")) {
                    crash.append(l).append('\n');
                } else if (l.contains("Problematic frame") && i + 1 < lines.size()) {
                    crash.append(l).append(' ').append(lines.get(i + 1)).append('\n');
                }
            }
            return "child JVM crashed (status " + c.status() + "):\n" + crash;
        }
        String how = c.status() == 0 ? "exited normally"
                : c.status() == 3 ? "reported a wrong outcome"
                : c.status() > 128 ? "was killed by signal " + (c.status() - 128)
                : "exited with status " + c.status();
        return "child JVM " + how + " (status " + c.status() + "):\n"
                + lines.stream().limit(40).reduce("", (a, b) -> a + b + "\n");
    }

    @ParameterizedTest(name = "ResidencyHandle.{0} after close()")
    @ValueSource(strings = {"read", "write", "view", "blockTable", "address"})
    void handleOperationsAfterCloseOverMmapHostTierAreRefusedNotACrash(String op) throws Exception {
        Child c = child(op);
        assertEquals(0, c.status(), () -> "ResidencyHandle." + op + " after KvCacheManager.close() must throw "
                + "InvalidHandleException; the " + describe(c));
        assertTrue(c.output().contains("OK " + op), c::output);
    }

    @Test
    void closeRacingEngineThreadsWritingThroughHandlesDoesNotCrash() throws Exception {
        Child c = child("race", "20", "9");
        assertEquals(0, c.status(), () -> "close() racing engine threads' handle writes over MmapHostTier: the "
                + describe(c));
    }

    // ------------------------------------------------------------- (e) calls after close()

    @Test
    void everyCallAfterCloseIsRefusedWithInvalidHandleException() {
        KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(8)).tier(host("host", 8)).build();
        Engine e = new Engine(m);
        Sequence s = m.open(SALT, range(1, 6));
        e.prefill(s, SALT);
        Sequence t = m.open(SALT, range(1, 6));
        ResidencyHandle h = m.ensureResident(s, 0, 2);
        h.await();
        ResidencyHandle h2 = m.ensureResident(t, 0, 2);
        h2.await();
        Bounded.run("KvCacheManager.close()", BOUND, m::close);
        MemorySegment buf = Arena.ofAuto().allocate(LAYOUT.blockBytes());
        assertAll(
                refused("dropUnreferenced", m::dropUnreferenced),
                refused("endStep", m::endStep),
                refused("Sequence.close", s::close),
                refused("ResidencyHandle.close", h::close),
                refused("ResidencyHandle.blockTable", h2::blockTable),
                refused("ResidencyHandle.address", () -> h2.address(0)),
                refused("ResidencyHandle.read (simulated top tier)", () -> h2.read(0, 0, buf)),
                refused("ResidencyHandle.write (simulated top tier)",
                        () -> h2.write(1, 0, buf.asSlice(0, LAYOUT.tokenLayerBytes()))),
                refused("ResidencyHandle.view (simulated top tier)", () -> h2.view(0)),
                refused("readBlock", () -> m.readBlock(t, 0, buf)));
    }

    private static Executable refused(String call, Executable e) {
        return () -> {
            Throwable thrown = null;
            try {
                e.execute();
            } catch (Throwable x) {
                thrown = x;
            }
            if (!(thrown instanceof InvalidHandleException)) {
                fail(call + " after close() must throw InvalidHandleException, "
                        + (thrown == null ? "was accepted silently" : "threw " + thrown));
            }
        };
    }

    // ------------------------------------------------------------- (f) a refused build() closes its tiers

    @Test
    void aRefusedBuildClosesItsTiersSoTheDiskDirectoryCanBeOpenedAgain() {
        Path dir = tmp.resolve("refused");
        SimulatedDeviceTier top = device(4);
        MappedFileTier disk = disk(dir, 8);
        KvLayout other = new KvLayout(2, 1, 8, DType.FP32, 4);       // twice the block size
        SimulatedDeviceTier wrong = new SimulatedDeviceTier("wrong", other, 4 * other.blockBytes());
        try {
            assertThrows(LayoutMismatchException.class, () -> KvCacheManager.builder(LAYOUT).modelId("regression")
                    .tier(top).tier(disk).tier(wrong).build());
            MappedFileTier again = assertDoesNotThrow(() -> disk(dir, 8),
                    "after a refused build() the disk directory must not stay locked by the tier given to it");
            again.close();
            assertAll(
                    () -> assertTrue(closed(top), "the refused build() left the top tier open"),
                    () -> assertTrue(closed(wrong), "the refused build() left the mismatched tier open"));
        } finally {
            disk.close();
        }
    }

    /** A simulated tier's memory is an arena's: touching it after close throws. */
    private static boolean closed(SimulatedDeviceTier t) {
        try {
            t.view(0).get(ValueLayout.JAVA_BYTE, 0);
            return false;
        } catch (IllegalStateException e) {
            return true;
        }
    }

    // ------------------------------------------------------------- (g) the attention-score policy

    /**
     * Blocks that got attention reports and never became resident, and blocks that did, all
     * closed and dropped: the policy must hold no entry for any of them. The policy has no size
     * accessor, so its state is measured as the sizes of its collections.
     */
    @Test
    void attentionScorePolicyKeepsNoEntryForBlocksThatAreGone() throws Exception {
        EvictionPolicy policy = EvictionPolicy.attentionScore(1, 1, 0.9);
        KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(4)).tier(host("host", 64)).evictionPolicy(policy).build();
        withManager(m, () -> {
            Engine e = new Engine(m);
            int neverResident = 0;
            for (int i = 0; i < 400; i++) {
                int[] prompt = {i, i + 1, i + 2, i + 3, i + 4, i + 5};
                Sequence s = m.open(SALT, prompt);
                if (i % 2 == 0) {
                    e.prefill(s, SALT);              // resident, then demoted by later prefills
                } else {
                    neverResident += s.blockCount();
                }
                m.reportAttention(s, 0, 1.0);
                m.reportAttention(s, 1, 0.5);
                m.endStep();
                s.close();
            }
            m.dropUnreferenced();
            assertEquals(0, m.blockInfos().size(), "every block is gone");
            int entries = entries(policy);
            assertEquals(0, entries, "the attention-score policy keeps " + entries + " entries after every block is "
                    + "gone (" + neverResident + " blocks never became resident)");
        });
    }

    /** Sum of the sizes of a policy's collections (every field with a size() method). */
    private static int entries(EvictionPolicy policy) throws ReflectiveOperationException {
        int n = 0;
        for (Field f : policy.getClass().getDeclaredFields()) {
            if (java.lang.reflect.Modifier.isStatic(f.getModifiers()) || f.getType().isPrimitive()) {
                continue;
            }
            f.setAccessible(true);
            Object v = f.get(policy);
            if (v == null) {
                continue;
            }
            Method size;
            try {
                size = v.getClass().getMethod("size");
            } catch (NoSuchMethodException e) {
                continue;
            }
            size.setAccessible(true);
            n += ((Number) size.invoke(v)).intValue();
        }
        return n;
    }

    /**
     * a's block earns attention 8 while in the host tier and is promoted to the device; c's
     * block later earns 1. With decay 0.5, a's score (2) beats c's (0.5): the next eviction must
     * take c's block, not a's. A reset on the tier move makes a's score 0 and evicts it.
     */
    @Test
    void aBlocksDecayedAttentionScoreSurvivesATierMove() throws Exception {
        KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(2)).tier(host("host", 8)).evictionPolicy(EvictionPolicy.attentionScore(0, 0, 0.5))
                .build();
        withManager(m, () -> {
            Engine e = new Engine(m);
            Sequence a = m.open(SALT, new int[] {1, 2, 3});
            e.prefill(a, SALT);
            Sequence b = m.open(SALT, new int[] {11, 12, 13});
            e.prefill(b, SALT);
            Sequence c = m.open(SALT, new int[] {21, 22, 23});
            e.prefill(c, SALT);                      // evicts a's block (oldest, all scores 0) to the host
            assertEquals(1, tierOf(m, a, 0));
            m.reportAttention(a, 0, 8.0);
            m.endStep();
            try (ResidencyHandle h = m.ensureResident(a, 0, 1)) {
                h.await();                           // a's block moves host -> device; b's is evicted
            }
            assertEquals(0, tierOf(m, a, 0));
            assertEquals(0, tierOf(m, c, 0));
            m.reportAttention(c, 0, 1.0);
            m.endStep();                             // a: 8 * 0.5^2 = 2, c: 1 * 0.5 = 0.5
            Sequence d = m.open(SALT, new int[] {31, 32, 33});
            e.prefill(d, SALT);                      // needs one device slot
            assertEquals(1, tierOf(m, c, 0), "c's block (score 0.5) is the one to evict");
            assertEquals(0, tierOf(m, a, 0), "a's block (decayed score 2) was evicted: its score was reset "
                    + "when it moved from the host to the device");
        });
    }

    // ------------------------------------------------------------- (h) views of sealed blocks

    @Test
    void theViewOfASealedSharedBlockIsReadOnly() throws Exception {
        KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(8)).tier(host("host", 8)).build();
        withManager(m, () -> {
            Engine e = new Engine(m);
            Sequence a = m.open(SALT, range(1, 9));
            e.prefill(a, SALT);                      // blocks 0 and 1 sealed, block 2 private
            Sequence b = m.open(SALT, range(1, 9));
            assertEquals(8, b.cachedTokens());
            try (ResidencyHandle h = m.ensureResident(b, 0, 3)) {
                h.await();
                MemorySegment sealed = h.view(0);
                assertAll(
                        () -> assertTrue(sealed.isReadOnly(), "the view of a sealed, shared block must be read-only"),
                        () -> assertThrows(IllegalArgumentException.class,
                                () -> sealed.set(ValueLayout.JAVA_BYTE, 0, (byte) 0x55),
                                "writing through the view of a sealed, shared block must be refused"),
                        () -> assertFalse(h.view(2).isReadOnly(), "a private block's view stays writable"));
            }
            assertNull(e.verify(a, SALT), "a's sealed blocks are unchanged");
        });
    }

    // ------------------------------------------------------------- (i) markWritten without a slot

    /**
     * {@code markWritten(40)} on a 40-token prompt whose K/V never reached a slot (no
     * ensureResident, no write): whether markWritten refuses or accepts, those blocks must not
     * seal, so reopening the prompt finds nothing cached, fails with nothing, leaks nothing.
     */
    @Test
    void markWrittenOfPositionsThatNeverHadASlotSealsNothing() throws Exception {
        KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("regression")
                .tier(device(16)).tier(host("host", 16)).build();
        withManager(m, () -> {
            int[] prompt = range(1, 40);
            Sequence s = m.open(SALT, prompt);
            try {
                s.markWritten(40);
            } catch (KvCacheException refused) {
                // a specific refusal is acceptable too
            }
            s.close();
            for (int attempt = 1; attempt <= 3; attempt++) {
                int n = attempt;
                Sequence r = assertDoesNotThrow(() -> m.open(SALT, prompt), "reopening the prompt, attempt " + n);
                assertEquals(0, r.cachedTokens(), "blocks whose K/V never reached a slot are not found as cached");
                r.close();
                for (KvCacheManager.BlockInfo i : m.blockInfos()) {
                    assertEquals(0, i.refCount(), "leaked reference after attempt " + n + ": " + i);
                    assertEquals(0, i.pins(), "leaked pin after attempt " + n + ": " + i);
                }
            }
            Engine e = new Engine(m);
            Sequence t = m.open(SALT, prompt);
            e.prefill(t, SALT);
            assertNull(e.verify(t, SALT));
            t.close();
            m.dropUnreferenced();
            assertEquals(0, m.blockInfos().size(), "nothing left after dropUnreferenced");
            assertTrue(Stream.of(0, 1).allMatch(i -> m.stats().tiers().get(i).usedSlots() == 0),
                    "no slot left allocated");
        });
    }
}
