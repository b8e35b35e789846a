package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.OutOfCacheSpaceException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.stats.TierStats;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A manager over three small tiers, the sequences and handles an engine holds on it, and the
 * reference model the invariants compare against: the token ids and tenant salt of each open
 * sequence (from which every written token's K/V is known) and where each pinned block was when
 * pinned. Waits are bounded, so that a copy that never completes fails the property instead of
 * hanging the build.
 */
final class CacheModel implements AutoCloseable {
    static final KvLayout LAYOUT = new KvLayout(2, 1, 4, DType.FP32, 4);

    /** A handle the engine holds, with where its blocks were when it became ready. */
    record Held(Sequence sequence, ResidencyHandle handle, Map<Long, List<Integer>> placement) {
    }

    /**
     * A handle of a layer range the engine holds, with the bytes of its layers read through it
     * when it became ready, for the blocks that were sealed then (whose bytes never change).
     */
    record HeldLayers(Sequence sequence, ResidencyHandle handle, Map<Integer, byte[]> sealedLayerBytes) {
    }

    final KvCacheManager manager;
    final Engine engine;
    final List<Sequence> sequences = new ArrayList<>();
    final Map<Sequence, int[]> expectedTokens = new HashMap<>();
    final Map<Sequence, byte[]> salts = new HashMap<>();
    final List<Held> held = new ArrayList<>();
    final List<HeldLayers> heldLayers = new ArrayList<>();
    final int[] slotCounts;
    private final StringBuilder log = new StringBuilder();

    CacheModel(boolean attention) {
        this(attention, new MmapHostTier("lower", LAYOUT, 8 * LAYOUT.blockBytes()));
    }

    /** @param lowest the bottom tier: another host tier, or the persistent disk tier */
    CacheModel(boolean attention, Tier lowest) {
        this(attention, lowest, null);
    }

    /** @param transfers a transfer engine tried before the built-in one (e.g. a slow one), or null */
    CacheModel(boolean attention, Tier lowest, TransferEngine transfers) {
        KvCacheManager.Builder b = KvCacheManager.builder(LAYOUT)
                .modelId("model-under-test")
                .tier(new SimulatedDeviceTier(LAYOUT, 5 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 6 * LAYOUT.blockBytes()))
                .tier(lowest)
                .evictionPolicy(attention ? EvictionPolicy.attentionScore(1, 1, 0.8) : EvictionPolicy.lru())
                .prefetchLookaheadBlocks(3);
        if (transfers != null) {
            b.transferEngine(transfers);
        }
        manager = b.build();
        engine = new Engine(manager);
        slotCounts = manager.tiers().stream().mapToInt(t -> t.slotCount()).toArray();
    }

    void note(String action) {
        log.append(action).append('\n');
    }

    /** Runs an action that may legitimately find no room; then the cache must be as it was. */
    void tolerateNoRoom(Runnable action) {
        try {
            action.run();
        } catch (OutOfCacheSpaceException e) {
            note("  -> out of space: " + e.getMessage());
        }
    }

    void open(byte salt, int[] prompt) {
        byte[] tenant = {salt};
        Sequence s = manager.open(tenant, prompt);
        sequences.add(s);
        expectedTokens.put(s, prompt.clone());
        salts.put(s, tenant);
        assertEquals(prompt.length, s.length());
        assertEquals(0, s.cachedTokens() % LAYOUT.blockTokens());
        assertTrue(s.cachedTokens() < Math.max(1, prompt.length) || prompt.length == 0);
        tolerateNoRoom(() -> engine.prefill(s, tenant));
    }

    void decode(Sequence s, int[] tokens) {
        appendOnly(s, tokens);
        tolerateNoRoom(() -> engine.prefill(s, salts.get(s)));
    }

    /** Appends tokens whose K/V a later step writes (as a batched or speculative engine does). */
    void appendOnly(Sequence s, int[] tokens) {
        for (int t : tokens) {
            s.append(t);
            int[] e = expectedTokens.get(s);
            int[] grown = Arrays.copyOf(e, e.length + 1);
            grown[e.length] = t;
            expectedTokens.put(s, grown);
        }
    }

    /** @return the fork, or null when the copy of a partly written block found no room (nothing changed) */
    Sequence fork(Sequence s) {
        Sequence f;
        try {
            f = s.fork();
        } catch (OutOfCacheSpaceException e) {
            return null;
        }
        sequences.add(f);
        expectedTokens.put(f, expectedTokens.get(s).clone());
        salts.put(f, salts.get(s));
        return f;
    }

    /**
     * Forks inside a partial block: decodes {@code pad} tokens first if the sequence ends on a
     * block boundary, then forks; the fork appends {@code forkTokens}, written at once or, with
     * {@code deferWrite}, by a later step (so its copy of the shared block is still to be made).
     */
    void forkInsideBlock(Sequence s, int[] pad, int[] forkTokens, boolean deferWrite) {
        int bt = LAYOUT.blockTokens();
        for (int i = 0; i < pad.length && s.length() % bt == 0; i++) {
            decode(s, new int[] {pad[i]});
        }
        Sequence f = fork(s);
        if (f != null && forkTokens.length > 0) {
            if (deferWrite) {
                appendOnly(f, forkTokens);
            } else {
                decode(f, forkTokens);
            }
        }
    }

    /**
     * Truncates into the middle of a block (at the {@code pick}-th position inside a block below
     * the length, counting from the end), appends other tokens and writes them.
     */
    void truncateIntoBlock(Sequence s, int pick, int[] tokens) {
        int bt = LAYOUT.blockTokens();
        List<Integer> inside = new ArrayList<>();
        for (int p = s.length() - 1; p > 0; p--) {
            if (p % bt != 0) {
                inside.add(p);
            }
        }
        if (inside.isEmpty()) {
            return;
        }
        int n = inside.get(pick % inside.size());
        int replaced = expectedTokens.get(s)[n];
        truncate(s, n);
        int[] other = tokens.clone();
        if (other.length > 0 && other[0] == replaced) {
            other[0] = replaced % 6 + 1;   // the first token written differs from the one cut off
        }
        decode(s, other);
    }

    void truncate(Sequence s, int length) {
        s.truncate(length);
        expectedTokens.put(s, Arrays.copyOf(expectedTokens.get(s), length));
    }

    void hold(Sequence s, int from, int to) {
        List<KvCacheManager.BlockInfo> before = manager.blockInfos();
        ResidencyHandle h;
        try {
            h = manager.ensureResident(s, from, to);
        } catch (OutOfCacheSpaceException e) {
            assertEquals(Set.copyOf(before), Set.copyOf(manager.blockInfos()), "a refused request changes nothing");
            return;
        }
        Bounded.await(h, Engine.AWAIT_BOUND);
        Map<Long, List<Integer>> placement = new HashMap<>();
        Map<Long, KvCacheManager.BlockInfo> infos = byId();
        for (int b = from; b < to; b++) {
            KvCacheManager.BlockInfo i = infos.get(manager.blockId(s, b));
            assertEquals(0, i.tier(), "a resident block is in the top tier");
            placement.put(i.id(), List.of(i.tier(), i.slot()));
        }
        held.add(new Held(s, h, placement));
    }

    /**
     * Makes layers {@code [l0, l1)} of blocks {@code [from, to)} resident and reads them back
     * through the handle: every written position of those layers equals its pattern, and every
     * access outside the layers is refused.
     */
    void holdLayers(Sequence s, int from, int to, int l0, int l1) {
        List<KvCacheManager.BlockInfo> before = manager.blockInfos();
        ResidencyHandle h;
        try {
            h = manager.ensureResident(s, from, to, l0, l1);
        } catch (OutOfCacheSpaceException e) {
            assertEquals(Set.copyOf(before), Set.copyOf(manager.blockInfos()), "a refused request changes nothing");
            return;
        }
        for (int l = l0; l < l1; l++) {
            int layer = l;
            Bounded.call("layer " + l, Engine.AWAIT_BOUND, () -> {
                h.awaitLayer(layer);
                return null;
            });
        }
        Bounded.await(h, Engine.AWAIT_BOUND);
        Map<Long, KvCacheManager.BlockInfo> infos = byId();
        Map<Integer, byte[]> sealed = new HashMap<>();
        for (int b = from; b < to; b++) {
            String diff = engine.verifyLayers(h, salts.get(s), expectedTokens.get(s), s.writtenTokens(), b, l0, l1);
            assertNull(diff, () -> "layer read through the handle:\n" + log);
            if (infos.get(manager.blockId(s, b)).sealed()) {
                sealed.put(b, layerBytes(h, b));
            }
        }
        if (l0 > 0 || l1 < LAYOUT.layers()) {
            int outside = l0 > 0 ? l0 - 1 : l1;
            org.junit.jupiter.api.Assertions.assertThrows(io.kvcache.core.LayerNotResidentException.class,
                    () -> h.view(from < to ? from : 0, outside));
            org.junit.jupiter.api.Assertions.assertThrows(io.kvcache.core.LayerNotResidentException.class,
                    () -> h.blockTable());
            org.junit.jupiter.api.Assertions.assertThrows(io.kvcache.core.LayerNotResidentException.class,
                    () -> h.layerReady(outside));
            if (from < to) {
                try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                    var dst = a.allocate(LAYOUT.tokenLayerBytes());
                    org.junit.jupiter.api.Assertions.assertThrows(io.kvcache.core.LayerNotResidentException.class,
                            () -> h.read(from, io.kvcache.core.layout.BlockLayoutDescriptor.layerOffset(LAYOUT, outside),
                                    dst));
                }
            }
        }
        heldLayers.add(new HeldLayers(s, h, sealed));
    }

    /** The bytes of a handle's layers of one block, read through it. */
    private static byte[] layerBytes(ResidencyHandle h, int block) {
        long lb = LAYOUT.layerBytes();
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            var dst = a.allocate(lb * (h.toLayer() - h.fromLayer()));
            h.read(block, h.fromLayer() * lb, dst);
            return dst.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        }
    }

    void releaseLayers(int index) {
        heldLayers.remove(index).handle().close();
    }

    void release(int index) {
        held.remove(index).handle().close();
    }

    void close(Sequence s) {
        held.removeIf(h -> {
            if (h.sequence() == s) {
                h.handle().close();
                return true;
            }
            return false;
        });
        heldLayers.removeIf(h -> {
            if (h.sequence() == s) {
                h.handle().close();
                return true;
            }
            return false;
        });
        s.close();
        sequences.remove(s);
        expectedTokens.remove(s);
        salts.remove(s);
    }

    Map<Long, KvCacheManager.BlockInfo> byId() {
        Map<Long, KvCacheManager.BlockInfo> m = new HashMap<>();
        for (KvCacheManager.BlockInfo i : manager.blockInfos()) {
            m.put(i.id(), i);
        }
        return m;
    }

    /** The invariants, checked after every action. */
    void checkInvariants() {
        Map<Long, KvCacheManager.BlockInfo> infos = byId();
        // no tier exceeds its capacity, and no slot holds two blocks
        Map<Integer, Set<Integer>> used = new HashMap<>();
        for (KvCacheManager.BlockInfo i : infos.values()) {
            assertTrue(i.refCount() >= 0, "reference count negative: " + i);
            assertTrue(i.pins() >= 0, "pin count negative: " + i);
            if (i.tier() >= 0) {
                assertTrue(used.computeIfAbsent(i.tier(), t -> new HashSet<>()).add(i.slot()),
                        "two blocks in tier " + i.tier() + " slot " + i.slot());
            }
            if (i.partialSlot() >= 0) {
                // a partial slot is only for a sealed block whose bytes live below
                assertTrue(i.tier() > 0 && i.sealed(), "partial slot of a block in tier " + i.tier() + ": " + i);
                assertTrue(used.computeIfAbsent(0, t -> new HashSet<>()).add(i.partialSlot()),
                        "top-tier slot " + i.partialSlot() + " held by two blocks (one of them partially)");
            }
        }
        List<TierStats> tiers = manager.stats().tiers();
        for (int t = 0; t < slotCounts.length; t++) {
            int n = used.getOrDefault(t, Set.of()).size();
            assertTrue(n <= slotCounts[t], "tier " + t + " holds " + n + " blocks in " + slotCounts[t] + " slots");
            assertTrue(tiers.get(t).usedSlots() <= slotCounts[t]);
        }
        // reference counts equal the references open sequences hold
        Map<Long, Integer> refs = new HashMap<>();
        for (Sequence s : sequences) {
            assertEquals(expectedTokens.get(s).length, s.length());
            assertTrue(Arrays.equals(expectedTokens.get(s), s.tokens()), "tokens of " + s);
            for (int b = 0; b < s.blockCount(); b++) {
                refs.merge(manager.blockId(s, b), 1, Integer::sum);
            }
        }
        for (KvCacheManager.BlockInfo i : infos.values()) {
            assertTrue(i.refCount() >= refs.getOrDefault(i.id(), 0),
                    "block " + i.id() + " has " + i.refCount() + " references, sequences hold " + refs.get(i.id()));
        }
        for (Map.Entry<Long, Integer> e : refs.entrySet()) {
            assertTrue(infos.containsKey(e.getKey()), "a sequence references a freed block " + e.getKey());
        }
        // a pinned block never moves
        for (Held h : held) {
            for (Map.Entry<Long, List<Integer>> p : h.placement().entrySet()) {
                KvCacheManager.BlockInfo i = infos.get(p.getKey());
                assertEquals(p.getValue(), List.of(i.tier(), i.slot()), "pinned block " + p.getKey() + " moved");
                assertTrue(i.pins() > 0);
            }
        }
        // a held layer range stays in place: a sealed block's layers read the same through the handle
        for (HeldLayers h : heldLayers) {
            for (Map.Entry<Integer, byte[]> e : h.sealedLayerBytes().entrySet()) {
                assertTrue(Arrays.equals(e.getValue(), layerBytes(h.handle(), e.getKey())),
                        () -> "layers [" + h.handle().fromLayer() + ", " + h.handle().toLayer() + ") of block "
                                + e.getKey() + " changed while pinned, after:\n" + log);
            }
        }
        // every written token's K/V reads back identical from whatever tier holds it (bounded:
        // a read waits for the copy bringing the block)
        for (Sequence s : sequences) {
            String diff = Bounded.call("verify " + s, Engine.AWAIT_BOUND, () -> engine.verify(s, salts.get(s)));
            assertNull(diff, () -> "after actions:\n" + log);
        }
    }

    /** Closes everything; then nothing but unreferenced cached blocks may remain, and those drop. */
    void closeAllAndCheckEmpty() {
        for (Sequence s : new ArrayList<>(sequences)) {
            close(s);
        }
        for (KvCacheManager.BlockInfo i : manager.blockInfos()) {
            assertEquals(0, i.refCount(), "leaked reference: " + i);
            assertEquals(0, i.pins(), "leaked pin: " + i);
            assertTrue(i.sealed(), "a private block outlived its sequences: " + i);
        }
        manager.dropUnreferenced();
        assertEquals(0, manager.blockInfos().size());
        // slots of freed blocks return to their tiers once the copies still using them settle
        assertTrue(manager.awaitIdle(java.time.Duration.ofSeconds(60)), "copies did not settle");
        for (TierStats t : manager.stats().tiers()) {
            assertEquals(0, t.usedSlots(), "tier " + t.name() + " still has slots allocated");
        }
    }

    /** Closes the manager within a bound: a close that waits forever fails instead of hanging. */
    @Override
    public void close() {
        Bounded.run("KvCacheManager.close()", Engine.AWAIT_BOUND, manager::close);
    }

    @Override
    public String toString() {
        return "CacheModel[" + sequences.size() + " sequences, " + held.size() + " handles]";
    }
}
