package io.kvcache.tiers.transfer;

import static io.kvcache.tiers.GpuTestSupport.fillRandom;
import static io.kvcache.tiers.GpuTestSupport.mismatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferFailedException;
import io.kvcache.core.transfer.TransferHandle;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The contract every {@link TransferEngine} passes between a host tier and a device tier: a
 * subclass per engine supplies the engine, the two tiers and a {@link Spec} of what it does
 * beyond the common clauses (clauses that do not apply are skipped, as in JCTools'
 * {@code QueueSanityTest}). Data is random, never zeros, and compared byte for byte.
 */
public abstract class TransferEngineContractTest {
    /** 2 layers, 2 KV heads, head dim 16, fp16, 8 tokens per block: 2 KiB blocks. */
    protected static final KvLayout LAYOUT = new KvLayout(2, 2, 16, DType.FP16, 8);
    protected static final int HOST_SLOTS = 8192;
    protected static final int DEVICE_SLOTS = 4096;
    private static final long TIMEOUT_S = 60;

    /**
     * What an engine does with a bad batch, beyond never completing it normally.
     *
     * @param refusesBadSlotsAtSubmit a slot outside its tier is refused by {@code submit} with
     *                                {@link IllegalArgumentException}, and nothing is copied
     * @param failsMovesAlone         a move that cannot copy fails alone: the batch completes with
     *                                {@link TransferFailedException} naming it, the other moves copied
     * @param completesInOrder        batches of one direction complete in the order they were submitted
     */
    protected record Spec(boolean refusesBadSlotsAtSubmit, boolean failsMovesAlone, boolean completesInOrder) {
    }

    protected TransferEngine engine;
    protected Tier host;
    protected Tier device;
    private int[] hostSlots;
    private int[] deviceSlots;

    protected abstract Spec spec();

    protected abstract TransferEngine createEngine() throws Exception;

    /** @return a host tier of {@code slots} slots of {@code layout.blockBytes()} bytes that the engine serves */
    protected abstract Tier createHostTier(KvLayout layout, int slots) throws Exception;

    /** @return a device tier of {@code slots} slots of {@code layout.blockBytes()} bytes that the engine serves */
    protected abstract Tier createDeviceTier(KvLayout layout, int slots) throws Exception;

    @BeforeEach
    void open() throws Exception {
        host = createHostTier(LAYOUT, HOST_SLOTS);
        device = createDeviceTier(LAYOUT, DEVICE_SLOTS);
        engine = createEngine();
        hostSlots = allocateAll(host);
        deviceSlots = allocateAll(device);
    }

    @AfterEach
    void close() {
        // in this order, and each only if setting up got that far
        for (AutoCloseable c : new AutoCloseable[] {engine, device, host}) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException("closing " + c, e);
                }
            }
        }
    }

    private static int[] allocateAll(Tier t) {
        int[] s = new int[t.slotCount()];
        for (int i = 0; i < s.length; i++) {
            s[i] = t.allocate();
            assertTrue(s[i] >= 0, "tier '" + t.name() + "' handed out only " + i + " slots");
        }
        return s;
    }

    private static void put(Tier t, int slot, long seed) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(t.slotBytes(), 16);
            fillRandom(m, seed);
            t.write(slot, 0, m);
        }
    }

    /** @return the first byte where the slot differs from what seed {@code seed} fills, or -1 */
    private static long differs(Tier t, int slot, long seed) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(t.slotBytes(), 16);
            t.read(slot, 0, m);
            return mismatch(m, seed);
        }
    }

    private static void await(TransferHandle h) throws Exception {
        assertNull(h.completion().get(TIMEOUT_S, TimeUnit.SECONDS));
        assertTrue(h.isDone());
    }

    private static int[] shuffled(int[] slots, SplittableRandom rnd) {
        int[] p = CopyMethodProbe.permutation(slots.length, rnd);
        int[] s = new int[slots.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = slots[p[i]];
        }
        return s;
    }

    @Test
    void servesTheFixturesTiers() {
        assertTrue(engine.supports(host, device));
        assertTrue(engine.supports(device, host));
        assertTrue(engine.supports(device, device));
    }

    /**
     * Host blocks go to scattered device slots and back to other host slots; every byte must
     * match, on the device too, and a device slot no move names keeps its bytes.
     */
    @ParameterizedTest(name = "{0} blocks")
    @ValueSource(ints = {1, 3, 256, 257, 1000, 4000})
    void blocksArriveByteExactBothWays(int n) throws Exception {
        SplittableRandom rnd = new SplittableRandom(n);
        int[] dev = shuffled(deviceSlots, rnd);
        // back into host slots the sources do not use, in random order
        int[] back = CopyMethodProbe.permutation(HOST_SLOTS - n, rnd);
        List<BlockMove> up = new ArrayList<>();
        List<BlockMove> down = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            put(host, hostSlots[i], 1000 + i);
            up.add(new BlockMove(hostSlots[i], dev[i]));
            down.add(new BlockMove(dev[i], hostSlots[n + back[i]]));
        }
        int untouched = Math.min(16, DEVICE_SLOTS - n);
        for (int i = 0; i < untouched; i++) {
            put(device, dev[n + i], -1 - i);
        }
        TransferHandle h1 = engine.submit(new TransferBatch(host, device, up));
        assertEquals(n * LAYOUT.blockBytes(), h1.bytes());
        await(h1);
        TransferHandle h2 = engine.submit(new TransferBatch(device, host, down));
        await(h2);
        for (int i = 0; i < n; i++) {
            assertEquals(-1, differs(host, down.get(i).dstSlot(), 1000 + i), "block " + i + " back on the host");
        }
        for (int i = 0; i < Math.min(n, 16); i++) {
            int k = i * n / Math.min(n, 16);
            assertEquals(-1, differs(device, dev[k], 1000 + k), "block " + k + " on the device");
        }
        for (int i = 0; i < untouched; i++) {
            assertEquals(-1, differs(device, dev[n + i], -1 - i), "untouched device slot " + dev[n + i]);
        }
    }

    /** @return slot {@code slot}'s bytes */
    private static byte[] bytesOf(Tier t, int slot) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(t.slotBytes(), 16);
            t.read(slot, 0, m);
            return m.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** @return what seed {@code seed} fills a slot with */
    private static byte[] seeded(long slotBytes, long seed) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(slotBytes, 16);
            fillRandom(m, seed);
            return m.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** @return the slot filled by {@code base}, with {@code [offset, offset + length)} taken from {@code from} */
    private static byte[] overlay(byte[] base, byte[] from, long offset, long length) {
        byte[] b = base.clone();
        System.arraycopy(from, (int) offset, b, (int) offset, (int) length);
        return b;
    }

    /** @return the first index where the arrays differ, or -1 */
    private static int firstDifference(byte[] a, byte[] b) {
        return Arrays.mismatch(a, b);
    }

    /**
     * A batch of one byte range of every slot copies exactly those bytes, both ways, and leaves
     * the rest of each destination slot as it was: a layer range of a block (here 2 layers of
     * 1 KiB), a range inside one layer, the last bytes of a slot, and ranges that are not
     * 16-byte aligned.
     */
    @ParameterizedTest(name = "[{0}, +{1}) of {2} slots")
    @CsvSource({"0, 1024, 300", "1024, 1024, 300", "512, 256, 1000", "2032, 16, 50", "0, 2048, 7", "3, 1000, 257",
            "1, 1, 40"})
    void aByteRangeOfEachSlotCopiesExactlyThoseBytes(long offset, long length, int n) throws Exception {
        long slotBytes = LAYOUT.blockBytes();
        SplittableRandom rnd = new SplittableRandom(offset * 31 + length);
        int[] dev = shuffled(deviceSlots, rnd);
        int[] back = CopyMethodProbe.permutation(HOST_SLOTS - n, rnd);
        List<BlockMove> up = new ArrayList<>();
        List<BlockMove> down = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            put(host, hostSlots[i], 3_000 + i);
            put(device, dev[i], -3_000 - i);
            up.add(new BlockMove(hostSlots[i], dev[i]));
            down.add(new BlockMove(dev[i], hostSlots[n + back[i]]));
            put(host, hostSlots[n + back[i]], 6_000 + i);
        }
        TransferHandle h1 = engine.submit(new TransferBatch(host, device, up, offset, length));
        assertEquals(n * length, h1.bytes());
        await(h1);
        for (int i = 0; i < n; i++) {
            byte[] want = overlay(seeded(slotBytes, -3_000 - i), seeded(slotBytes, 3_000 + i), offset, length);
            assertEquals(-1, firstDifference(want, bytesOf(device, dev[i])), "device slot of move " + i);
        }
        // back into host slots holding other bytes: the range comes from the device, the rest stays
        await(engine.submit(new TransferBatch(device, host, down, offset, length)));
        for (int i = 0; i < n; i++) {
            byte[] onDevice = overlay(seeded(slotBytes, -3_000 - i), seeded(slotBytes, 3_000 + i), offset, length);
            byte[] want = overlay(seeded(slotBytes, 6_000 + i), onDevice, offset, length);
            assertEquals(-1, firstDifference(want, bytesOf(host, down.get(i).dstSlot())), "host slot of move " + i);
        }
    }

    /**
     * An engine attending layer by layer submits one batch per layer range, back to back: each
     * batch can be awaited on its own, and once it has completed its layer's bytes are in place
     * (later layers need not be). Where the spec says so, batches also complete in submission
     * order, so layer {@code l} being in place means every earlier layer is.
     */
    @Test
    void layerBatchesSubmittedBackToBackCompleteEachWithItsLayer() throws Exception {
        int layers = 8;
        long layerBytes = LAYOUT.blockBytes() / layers;
        int n = 1500;
        SplittableRandom rnd = new SplittableRandom(8);
        int[] dev = shuffled(deviceSlots, rnd);
        List<BlockMove> up = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            put(host, hostSlots[i], 40_000 + i);
            up.add(new BlockMove(hostSlots[i], dev[i]));
        }
        List<TransferHandle> handles = new ArrayList<>();
        ConcurrentLinkedQueue<String> outOfOrder = new ConcurrentLinkedQueue<>();
        for (int l = 0; l < layers; l++) {
            TransferHandle h = engine.submit(new TransferBatch(host, device, up, l * layerBytes, layerBytes));
            handles.add(h);
            List<TransferHandle> earlier = List.copyOf(handles.subList(0, l));
            int layer = l;
            h.completion().thenRun(() -> {
                for (int k = 0; k < earlier.size(); k++) {
                    if (!earlier.get(k).isDone()) {
                        outOfOrder.add("layer " + layer + " completed before layer " + k);
                    }
                }
            });
        }
        for (int l = 0; l < layers; l++) {
            await(handles.get(l));
            for (int i = 0; i < n; i += 37) {
                byte[] want = seeded(LAYOUT.blockBytes(), 40_000 + i);
                byte[] got = bytesOf(device, dev[i]);
                int from = (int) (l * layerBytes);
                int to = (int) ((l + 1) * layerBytes);
                assertEquals(-1, Arrays.mismatch(want, from, to, got, from, to),
                        "layer " + l + " of block " + i + " after its batch completed");
            }
        }
        if (spec().completesInOrder()) {
            assertTrue(outOfOrder.isEmpty(), outOfOrder.toString());
        }
    }

    /** Copy-on-write: the same tier on both sides of a batch. */
    @Test
    void copiesWithinOneTierLeaveTheSourcesIntact() throws Exception {
        int n = 300;
        List<BlockMove> up = new ArrayList<>();
        List<BlockMove> cow = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            put(host, hostSlots[i], 50_000 + i);
            up.add(new BlockMove(hostSlots[i], deviceSlots[i]));
            cow.add(new BlockMove(deviceSlots[i], deviceSlots[DEVICE_SLOTS - 1 - i]));
        }
        await(engine.submit(new TransferBatch(host, device, up)));
        await(engine.submit(new TransferBatch(device, device, cow)));
        for (int i = 0; i < n; i++) {
            assertEquals(-1, differs(device, deviceSlots[DEVICE_SLOTS - 1 - i], 50_000 + i), "copy " + i);
            assertEquals(-1, differs(device, deviceSlots[i], 50_000 + i), "source " + i);
        }
    }

    /**
     * Threads submit batches of their own slots at once, both ways; no batch sees another's
     * bytes.
     */
    @Test
    void concurrentSubmitsFromSeveralThreadsKeepEveryBlockIntact() throws Exception {
        int threads = 4;
        int rounds = 25;
        int hostPer = HOST_SLOTS / threads;
        int devPer = DEVICE_SLOTS / threads;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                results.add(pool.submit(() -> {
                    SplittableRandom rnd = new SplittableRandom(id);
                    int verified = 0;
                    go.await();
                    for (int r = 0; r < rounds; r++) {
                        int k = 1 + rnd.nextInt(Math.min(hostPer / 2, devPer));
                        List<BlockMove> up = new ArrayList<>();
                        List<BlockMove> down = new ArrayList<>();
                        for (int i = 0; i < k; i++) {
                            int hs = hostSlots[id * hostPer + i];
                            put(host, hs, seed(id, r, i));
                            int ds = deviceSlots[id * devPer + (i + r) % devPer];
                            up.add(new BlockMove(hs, ds));
                            down.add(new BlockMove(ds, hostSlots[id * hostPer + hostPer / 2 + i]));
                        }
                        await(engine.submit(new TransferBatch(host, device, up)));
                        await(engine.submit(new TransferBatch(device, host, down)));
                        for (int i = 0; i < k; i++) {
                            long at = differs(host, down.get(i).dstSlot(), seed(id, r, i));
                            if (at >= 0) {
                                throw new AssertionError("thread " + id + " round " + r + " block " + i
                                        + " differs at byte " + at);
                            }
                            verified++;
                        }
                    }
                    return verified;
                }));
            }
            go.countDown();
            int total = 0;
            for (Future<Integer> f : results) {
                total += f.get(TIMEOUT_S, TimeUnit.SECONDS);
            }
            assertTrue(total >= threads * rounds, "verified " + total);
        } finally {
            pool.shutdownNow();
        }
    }

    private static long seed(int thread, int round, int block) {
        return ((long) thread << 40) | ((long) round << 20) | block;
    }

    /** The future completes normally once, and only when the bytes are in place for whoever it runs. */
    @Test
    void theCompletionFollowsTheBytes() throws Exception {
        int n = 2000;
        List<BlockMove> up = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            put(host, hostSlots[i], 7_000 + i);
            up.add(new BlockMove(hostSlots[i], deviceSlots[i]));
        }
        TransferHandle h = engine.submit(new TransferBatch(host, device, up));
        assertEquals((long) n * LAYOUT.blockBytes(), h.bytes());
        CompletableFuture<Integer> seen = h.completion().thenApply(v -> {
            int bad = 0;
            for (int i = 0; i < n; i++) {
                if (differs(device, deviceSlots[i], 7_000 + i) >= 0) {
                    bad++;
                }
            }
            return bad;
        });
        assertEquals(0, seen.get(TIMEOUT_S, TimeUnit.SECONDS), "blocks not in place when the future completed");
        assertTrue(h.isDone());
        assertEquals(h.completion().isDone(), h.isDone());
        assertFalse(h.completion().isCompletedExceptionally());
        assertFalse(h.completion().complete(null), "the engine's future was already complete");
    }

    @Test
    void anEmptyBatchCompletesNormally() throws Exception {
        TransferHandle h = engine.submit(new TransferBatch(host, device, List.of()));
        assertEquals(0, h.bytes());
        await(h);
    }

    /** close waits for every batch submitted before it; later submits are refused; a second close does nothing. */
    @Test
    void closeCompletesWhatWasSubmittedAndRefusesTheRest() throws Exception {
        int batches = 8;
        int per = DEVICE_SLOTS / batches;
        List<TransferHandle> handles = new ArrayList<>();
        for (int b = 0; b < batches; b++) {
            List<BlockMove> up = new ArrayList<>();
            for (int i = 0; i < per; i++) {
                int k = b * per + i;
                put(host, hostSlots[k], 90_000 + k);
                up.add(new BlockMove(hostSlots[k], deviceSlots[k]));
            }
            handles.add(engine.submit(new TransferBatch(host, device, up)));
        }
        engine.close();
        for (TransferHandle h : handles) {
            assertTrue(h.isDone(), "a batch submitted before close was still pending after it");
            assertNull(h.completion().get(0, TimeUnit.SECONDS));
        }
        for (int k = 0; k < batches * per; k += 97) {
            assertEquals(-1, differs(device, deviceSlots[k], 90_000 + k), "block " + k);
        }
        assertThrows(IllegalStateException.class, () -> engine.submit(new TransferBatch(host, device,
                List.of(new BlockMove(hostSlots[0], deviceSlots[0])))));
        engine.close();
    }

    /** A slot outside its tier either is refused at submit or fails the batch: never a normal completion. */
    @Test
    void aBatchNamingASlotOutsideItsTierNeverCompletesNormally() throws Exception {
        put(host, hostSlots[0], 11);
        put(host, hostSlots[1], 12);
        TransferBatch bad = new TransferBatch(host, device, List.of(new BlockMove(hostSlots[0], deviceSlots[0]),
                new BlockMove(hostSlots[1], DEVICE_SLOTS + 3)));
        TransferHandle h;
        try {
            h = engine.submit(bad);
        } catch (IllegalArgumentException e) {
            assertTrue(spec().refusesBadSlotsAtSubmit(), "refused at submit: " + e);
            return;
        }
        ExecutionException e = assertThrows(ExecutionException.class, () -> h.completion().get(TIMEOUT_S,
                TimeUnit.SECONDS));
        assertFalse(spec().refusesBadSlotsAtSubmit(), "accepted at submit, failed with " + e.getCause());
    }

    @Test
    void aRefusedBatchChangesNothing() throws Exception {
        assumeTrue(spec().refusesBadSlotsAtSubmit());
        put(host, hostSlots[0], 21);
        put(device, deviceSlots[0], 22);
        assertThrows(IllegalArgumentException.class, () -> engine.submit(new TransferBatch(host, device,
                List.of(new BlockMove(hostSlots[0], deviceSlots[0]), new BlockMove(hostSlots[1], -1)))));
        assertEquals(-1, differs(device, deviceSlots[0], 22));
        // and the slots it named are free for the next batch
        await(engine.submit(new TransferBatch(host, device, List.of(new BlockMove(hostSlots[0], deviceSlots[0])))));
        assertEquals(-1, differs(device, deviceSlots[0], 21));
    }

    @Test
    void aFailedMoveFailsAloneAndIsNamed() throws Exception {
        assumeTrue(spec().failsMovesAlone());
        int n = 40;
        List<BlockMove> moves = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            put(host, hostSlots[i], 31 + i);
            moves.add(new BlockMove(hostSlots[i], i == 17 ? DEVICE_SLOTS + 1 : deviceSlots[i]));
        }
        TransferHandle h = engine.submit(new TransferBatch(host, device, moves));
        ExecutionException e = assertThrows(ExecutionException.class, () -> h.completion().get(TIMEOUT_S,
                TimeUnit.SECONDS));
        TransferFailedException failed = assertInstanceOf(TransferFailedException.class, e.getCause());
        assertEquals(n, failed.moveCount());
        assertEquals(1, failed.failedMoves().cardinality());
        assertTrue(failed.failed(17));
        for (int i = 0; i < n; i++) {
            if (i != 17) {
                assertEquals(-1, differs(device, deviceSlots[i], 31 + i), "move " + i);
            }
        }
    }
}
