package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayerNotResidentException;
import io.kvcache.core.LayerWindows;
import io.kvcache.core.OutOfCacheSpaceException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferHandle;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Residency by layer range: only the layer slices a request lacks move, each layer completes on
 * its own and names the batch still copying it, a handle refuses every access outside its layers, a partial slot is dropped without
 * moving bytes, and {@link LayerWindows} streams a context larger than the top tier with each
 * layer slice moving at most once per sweep; nothing stays pinned or allocated afterwards.
 */
class LayerResidencyTest {
    static final KvLayout LAYOUT = new KvLayout(4, 1, 4, DType.FP32, 4);
    static final byte[] SALT = {7};

    private KvCacheManager manager;

    /** A manager whose layer-range requests copy one layer per copy (most of these tests are about single layers). */
    private KvCacheManager build(int deviceBlocks, TransferEngine engine) {
        return build(deviceBlocks, engine, LAYOUT.layerBytes());
    }

    private KvCacheManager build(int deviceBlocks, TransferEngine engine, long layerCopyBytes) {
        KvCacheManager.Builder b = KvCacheManager.builder(LAYOUT).modelId("layers").layerCopyBytes(layerCopyBytes)
                .tier(new SimulatedDeviceTier(LAYOUT, deviceBlocks * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 64 * LAYOUT.blockBytes()));
        if (engine != null) {
            b.transferEngine(engine);
        }
        manager = b.build();
        return manager;
    }

    @AfterEach
    void close() {
        if (manager != null) {
            manager.close();
        }
    }

    /** A sequence of {@code blocks} full, sealed blocks, written, with the copies settled. */
    private Sequence written(int blocks) {
        Sequence s = manager.open(SALT, IntStream.range(0, blocks * LAYOUT.blockTokens()).map(i -> 1 + i % 5).toArray());
        new Engine(manager).prefill(s, SALT);
        assertTrue(manager.awaitIdle(Duration.ofSeconds(30)));
        return s;
    }

    private int tierOf(Sequence s, int block) {
        long id = manager.blockId(s, block);
        return manager.blockInfos().stream().filter(i -> i.id() == id).findFirst().orElseThrow().tier();
    }

    private String verify(ResidencyHandle h, Sequence s, int block) {
        return new Engine(manager).verifyLayers(h, SALT, s.tokens(), s.writtenTokens(), block, h.fromLayer(), h.toLayer());
    }

    private static long promoted(CacheStats before, CacheStats after) {
        return after.bytesPromoted() - before.bytesPromoted();
    }

    @Test
    void aLayerRangeMovesOnlyTheLayerSlicesItLacks() {
        build(4, null);
        Sequence s = written(8);
        assertEquals(1, tierOf(s, 0), "block 0 was evicted to the host");
        assertEquals(1, tierOf(s, 1));
        long lb = LAYOUT.layerBytes();

        CacheStats before = manager.stats();
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 1, 3)) {
            h.await();
            assertEquals(2 * 2 * lb, promoted(before, manager.stats()), "two layers of two blocks");
            assertNull(verify(h, s, 0));
            assertNull(verify(h, s, 1));
            assertEquals(1, tierOf(s, 0), "the block's bytes stay authoritative in the host tier");
        }
        before = manager.stats();
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 1, 3)) {
            h.await();
            assertEquals(0, promoted(before, manager.stats()), "the layers are still in their partial slots");
        }
        before = manager.stats();
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 0, 4)) {
            h.await();
            assertEquals(2 * 2 * lb, promoted(before, manager.stats()), "only layers 0 and 3 were missing");
            assertNull(verify(h, s, 0));
        }
        before = manager.stats();
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2)) {
            h.await();
            assertEquals(0, promoted(before, manager.stats()), "a whole request adopts the complete partial slots");
            assertEquals(0, tierOf(s, 0));
            assertEquals(0, tierOf(s, 1));
            assertNull(new Engine(manager).verifyLayers(h, SALT, s.tokens(), s.writtenTokens(), 1, 0, 4));
        }
        assertNull(new Engine(manager).verify(s, SALT));
    }

    @Test
    void everyAccessOutsideTheHandlesLayersIsRefused() {
        build(4, null);
        Sequence s = written(6);
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 1, 2); Arena a = Arena.ofConfined()) {
            h.awaitLayer(1);
            MemorySegment one = a.allocate(LAYOUT.tokenLayerBytes());
            long layer0 = 0;
            long layer2 = 2 * LAYOUT.layerBytes();
            assertThrows(LayerNotResidentException.class, () -> h.view(0));
            assertThrows(LayerNotResidentException.class, () -> h.view(0, 0));
            assertThrows(LayerNotResidentException.class, () -> h.view(1, 2));
            assertThrows(LayerNotResidentException.class, h::blockTable);
            assertThrows(LayerNotResidentException.class, () -> h.blockTable(3));
            assertThrows(LayerNotResidentException.class, () -> h.address(0));
            assertThrows(LayerNotResidentException.class, () -> h.address(0, 0));
            assertThrows(LayerNotResidentException.class, () -> h.read(0, layer0, one));
            assertThrows(LayerNotResidentException.class, () -> h.read(0, layer2 - 4, one), "a read across layers 1 and 2");
            assertThrows(LayerNotResidentException.class, () -> h.write(0, layer0, one));
            assertThrows(LayerNotResidentException.class, () -> h.layerReady(0));
            assertThrows(LayerNotResidentException.class, () -> h.awaitLayer(3));
            assertEquals(LAYOUT.layerBytes(), h.view(0, 1).byteSize());
            assertEquals(2, h.blockTable(1).length);
            assertEquals(h.blockTable(1)[1], h.address(1, 1));
            assertNull(verify(h, s, 1));
        }
    }

    @Test
    void aBadLayerRangeIsRefusedAndChangesNothing() {
        build(4, null);
        Sequence s = written(6);
        Set<KvCacheManager.BlockInfo> before = Set.copyOf(manager.blockInfos());
        assertThrows(IllegalArgumentException.class, () -> manager.ensureResident(s, 0, 1, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> manager.ensureResident(s, 0, 1, -1, 1));
        assertThrows(IllegalArgumentException.class, () -> manager.ensureResident(s, 0, 1, 3, 5));
        assertThrows(IllegalArgumentException.class, () -> manager.layerWindows(s, 0, 6,
                new LayerWindows.Options(3, false)), "two windows of 3 blocks do not fit 4 slots");
        assertThrows(IllegalArgumentException.class, () -> new LayerWindows.Options(0, false));
        assertThrows(IllegalArgumentException.class, () -> new LayerWindows.Options(1, false, 0));
        assertThrows(IllegalArgumentException.class, () -> manager.layerWindows(s, 0, 6,
                new LayerWindows.Options(1, false, 4)), "the window in use and four ahead do not fit 4 slots");
        assertEquals(before, Set.copyOf(manager.blockInfos()));
        assertEquals(0, manager.stats().tiers().getFirst().usedSlots() - before.stream().filter(i -> i.tier() == 0)
                .count(), "no partial slot was allocated");
    }

    @Test
    void pinsHoldPerLayerAndDroppingAPartialSlotMovesNoBytes() {
        build(4, null);
        Sequence s = written(8);
        assertTrue(IntStream.range(0, 4).allMatch(b -> tierOf(s, b) == 1));
        ResidencyHandle h = manager.ensureResident(s, 0, 4, 0, 1);
        h.await();
        // every top-tier slot is a partial slot pinned by h: a request for another block finds no room
        Set<KvCacheManager.BlockInfo> infos = Set.copyOf(manager.blockInfos());
        assertThrows(OutOfCacheSpaceException.class, () -> manager.ensureResident(s, 4, 5, 0, 1));
        assertEquals(infos, Set.copyOf(manager.blockInfos()), "a refused request changes nothing");
        for (int b = 0; b < 4; b++) {
            assertNull(verify(h, s, b), "the pinned layer is still in place");
        }
        h.close();
        CacheStats before = manager.stats();
        try (ResidencyHandle g = manager.ensureResident(s, 4, 8, 0, 1)) {
            g.await();
            CacheStats after = manager.stats();
            assertEquals(before.bytesDemoted(), after.bytesDemoted(), "the partial slots were dropped, not demoted");
            assertEquals(4 * LAYOUT.layerBytes(), promoted(before, after));
            for (int b = 4; b < 8; b++) {
                assertNull(verify(g, s, b));
            }
        }
        assertNull(new Engine(manager).verify(s, SALT), "the dropped blocks read back whole from the host");
    }

    /** Holds the batches {@link #held} picks (all but layer 0's slices) until {@link #hold} completes; records each batch. */
    static final class LayerGate implements TransferEngine {
        final CpuTransferEngine inner = new CpuTransferEngine(1, 64);
        volatile CompletableFuture<Void> hold = CompletableFuture.completedFuture(null);
        volatile java.util.function.Predicate<TransferBatch> held = b -> b.offset() != 0;
        final List<TransferBatch> batches = new CopyOnWriteArrayList<>();

        @Override
        public boolean supports(Tier source, Tier destination) {
            return true;
        }

        @Override
        public TransferHandle submit(TransferBatch batch) {
            batches.add(batch);
            CompletableFuture<Void> start = held.test(batch) ? hold : CompletableFuture.completedFuture(null);
            return TransferHandle.of(start.thenCompose(v -> inner.submit(batch).completion()), batch.bytes());
        }

        @Override
        public void close() {
            hold.complete(null);
            inner.close();
        }
    }

    @Test
    void layerBatchesThatBecomeReadyTogetherStartInLayerOrder() throws Exception {
        LayerGate engine = new LayerGate();
        engine.held = TransferBatch::wholeSlots;
        CompletableFuture<Void> hold = new CompletableFuture<>();
        Sequence s = pushedDownWithLayersHeld(engine, hold);
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 0, 4)) {
            // the slots the layers go to are being vacated by held evictions: every layer waits for them
            manager.awaitIdle(Duration.ofMillis(50));
            assertTrue(engine.batches.stream().allMatch(TransferBatch::wholeSlots),
                    "no layer batch starts before its slots are vacated: " + engine.batches);
            assertFalse(engine.batches.isEmpty(), "the request had to evict");
            hold.complete(null);
            h.await();
            for (int b = 0; b < 2; b++) {
                assertNull(verify(h, s, b));
            }
        } finally {
            hold.complete(null);
        }
        List<Long> offsets = engine.batches.stream().filter(b -> !b.wholeSlots()).map(TransferBatch::offset).toList();
        assertEquals(4, offsets.size(), "one batch per layer: " + engine.batches);
        assertEquals(offsets.stream().sorted().toList(), offsets, "layer 0 first, as planned");
    }

    @Test
    void consecutiveLayersAreCopiedTogetherInAlignedGroupsOfLayerCopyBytes() throws Exception {
        LayerGate engine = new LayerGate();
        CompletableFuture<Void> hold = new CompletableFuture<>();
        Sequence s = pushedDownWithLayersHeld(engine, hold, 2 * LAYOUT.layerBytes());
        engine.held = b -> b.offset() > LAYOUT.layerBytes();
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 1, 4)) {
            // layers 1..3 of two blocks: layer 1 alone (the rest of its group, layer 0, was not
            // asked for), then layers 2 and 3 as one range
            h.layerReady(1).get(30, TimeUnit.SECONDS);
            assertFalse(h.layerReady(2).isDone(), "layers 2 and 3 are one copy, held by the engine");
            hold.complete(null);
            h.await();
            assertTrue(h.layerReady(3).isDone());
            for (int b = 0; b < 2; b++) {
                assertNull(verify(h, s, b));
            }
            List<TransferBatch> slices = engine.batches.stream().filter(b -> !b.wholeSlots()).toList();
            assertEquals(2, slices.size(), "one batch per group: " + engine.batches);
            assertEquals(LAYOUT.layerBytes(), slices.get(0).offset());
            assertEquals(LAYOUT.layerBytes(), slices.get(0).length());
            assertEquals(2 * LAYOUT.layerBytes(), slices.get(1).offset());
            assertEquals(2 * LAYOUT.layerBytes(), slices.get(1).length());
            for (TransferBatch b : slices) {
                assertEquals(2, b.moves().size(), "a batch carries its layers of both blocks");
            }
            assertThrows(LayerNotResidentException.class, () -> h.blockTable(0), "layer 0 was not asked for");
        } finally {
            hold.complete(null);
        }
        // the rest of the group: only layer 0 moves now
        engine.batches.clear();
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 0, 4)) {
            h.await();
            for (int b = 0; b < 2; b++) {
                assertNull(verify(h, s, b));
            }
        }
        List<TransferBatch> rest = engine.batches.stream().filter(b -> !b.wholeSlots()).toList();
        assertEquals(1, rest.size(), "only layer 0 was missing: " + engine.batches);
        assertEquals(0, rest.getFirst().offset());
        assertEquals(LAYOUT.layerBytes(), rest.getFirst().length());
    }

    /**
     * An 8-block sequence written through a 4-block top tier (blocks 0 and 1 pushed down to the
     * host), then the engine holding every layer slice but layer 0's until {@code hold} completes.
     */
    private Sequence pushedDownWithLayersHeld(LayerGate engine, CompletableFuture<Void> hold) {
        return pushedDownWithLayersHeld(engine, hold, LAYOUT.layerBytes());
    }

    private Sequence pushedDownWithLayersHeld(LayerGate engine, CompletableFuture<Void> hold, long layerCopyBytes) {
        build(4, engine, layerCopyBytes);
        Sequence s = written(8);
        assertEquals(1, tierOf(s, 0));
        assertEquals(1, tierOf(s, 1));
        engine.hold = hold;
        engine.batches.clear();
        return s;
    }

    @Test
    void eachLayerCompletesWhenItsOwnSlicesLand() throws Exception {
        LayerGate engine = new LayerGate();
        CompletableFuture<Void> hold = new CompletableFuture<>();
        Sequence s = pushedDownWithLayersHeld(engine, hold);
        ResidencyHandle h = manager.ensureResident(s, 0, 2, 0, 4);
        try {
            h.layerReady(0).get(30, TimeUnit.SECONDS);
            try (ResidencyHandle first = manager.ensureResident(s, 0, 2, 0, 1)) {
                assertTrue(first.ready().isDone(), "layer 0 is in place: the second request waits for nothing");
                assertNull(verify(first, s, 0), "layer 0 reads back while layers 1 to 3 are held");
            }
            assertFalse(h.layerReady(1).isDone(), "layer 1 is held by the engine; layer 0 did not wait for it");
            assertFalse(h.ready().isDone());
            hold.complete(null);
            h.await();
            for (int b = 0; b < 2; b++) {
                assertNull(verify(h, s, b));
            }
            List<TransferBatch> slices = engine.batches.stream().filter(b -> !b.wholeSlots()).toList();
            assertEquals(4, slices.size(), "one batch per layer: " + engine.batches);
            for (TransferBatch b : slices) {
                assertEquals(LAYOUT.layerBytes(), b.length());
                assertEquals(0, b.offset() % LAYOUT.layerBytes());
                assertEquals(2, b.moves().size(), "a batch carries its layer of both blocks");
            }
        } finally {
            hold.complete(null);
            h.close();
        }
    }

    @Test
    void layerTransfersNameTheBatchStillCopyingALayerUntilItLands() throws Exception {
        LayerGate engine = new LayerGate();
        CompletableFuture<Void> hold = new CompletableFuture<>();
        Sequence s = pushedDownWithLayersHeld(engine, hold);
        ResidencyHandle h = manager.ensureResident(s, 0, 2, 0, 4);
        try {
            h.layerReady(0).get(30, TimeUnit.SECONDS);
            assertEquals(Optional.of(List.of()), h.layerTransfers(0), "a layer in place waits for nothing");
            List<CompletableFuture<TransferHandle>> layer1 = h.layerTransfers(1).orElseThrow();
            assertEquals(2, layer1.size(), "one copy per block");
            TransferHandle batch = layer1.get(0).get(30, TimeUnit.SECONDS);
            assertSame(batch, layer1.get(1).get(30, TimeUnit.SECONDS), "both blocks' layer 1 travel in one batch");
            assertEquals(2 * LAYOUT.layerBytes(), batch.bytes());
            assertFalse(batch.completion().isDone(), "the engine holds the batch");
            assertFalse(h.layerReady(1).isDone());
            hold.complete(null);
            batch.completion().get(30, TimeUnit.SECONDS);
            h.awaitLayer(1);
            assertEquals(Optional.of(List.of()), h.layerTransfers(1));
            assertThrows(LayerNotResidentException.class, () -> h.layerTransfers(4));
        } finally {
            hold.complete(null);
            h.close();
        }
    }

    /** Copies whole slots only, as an engine that cannot copy byte ranges does. */
    static final class WholeSlotsOnly implements TransferEngine {
        final CpuTransferEngine inner = new CpuTransferEngine(1, 64);
        final java.util.concurrent.atomic.AtomicInteger refused = new java.util.concurrent.atomic.AtomicInteger();

        @Override
        public boolean supports(Tier source, Tier destination) {
            return true;
        }

        @Override
        public TransferHandle submit(TransferBatch batch) {
            if (!batch.wholeSlots()) {
                refused.incrementAndGet();
                throw new UnsupportedOperationException("whole slots only");
            }
            return inner.submit(batch);
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    @Test
    void anEngineThatCopiesOnlyWholeSlotsLeavesLayerSlicesToTheBuiltInEngine() {
        WholeSlotsOnly engine = new WholeSlotsOnly();
        build(4, engine);
        Sequence s = written(8);
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2, 2, 4)) {
            h.await();
            assertNull(verify(h, s, 0));
            assertNull(verify(h, s, 1));
        }
        assertTrue(engine.refused.get() > 0, "the engine was asked and refused the ranges");
        assertEquals(0, manager.stats().blocksLost(), "a refused range is copied, not lost");
    }

    @Test
    void layerWindowsStreamAContextLargerThanTheTopTier() {
        sweep(new LayerWindows.Options(1, false));
    }

    @Test
    void layerWindowsWithSeveralWindowsAheadThatMayEvictStreamTheSameBytes() {
        sweep(new LayerWindows.Options(1, true, 2));
    }

    private void sweep(LayerWindows.Options options) {
        build(4, null);
        Sequence s = written(16);
        CacheStats before = manager.stats();
        try (LayerWindows windows = manager.layerWindows(s, 0, 16, options)) {
            for (int layer = 0; layer < LAYOUT.layers(); layer++) {
                int next = 0;
                for (ResidencyHandle w : windows.layer(layer)) {
                    assertEquals(next, w.fromBlock(), "windows visit the blocks in ascending order");
                    assertEquals(layer, w.fromLayer());
                    assertEquals(layer + 1, w.toLayer());
                    for (int b = w.fromBlock(); b < w.fromBlock() + w.blockCount(); b++) {
                        assertNull(verify(w, s, b));
                    }
                    next = w.fromBlock() + w.blockCount();
                }
                assertEquals(16, next, "every block of layer " + layer + " was visited");
            }
        }
        assertTrue(promoted(before, manager.stats()) <= 16 * LAYOUT.blockBytes(),
                "each layer slice moved at most once in the sweep: " + promoted(before, manager.stats()));
        assertTrue(manager.blockInfos().stream().allMatch(i -> i.pins() == 0), "the windows left nothing pinned");
        LayerWindows closed = manager.layerWindows(s, 0, 16);
        closed.close();
        assertThrows(IllegalStateException.class, () -> closed.layer(0));
        s.close();
        manager.dropUnreferenced();
        assertTrue(manager.awaitIdle(Duration.ofSeconds(30)));
        for (TierStats t : manager.stats().tiers()) {
            assertEquals(0, t.usedSlots(), "tier " + t.name() + " keeps slots");
        }
    }
}
