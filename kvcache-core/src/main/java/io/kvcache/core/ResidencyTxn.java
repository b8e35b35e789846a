package io.kvcache.core;

import io.kvcache.core.policy.EvictionPolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.agrona.collections.Long2LongHashMap;
import org.agrona.collections.Long2ObjectHashMap;
import org.agrona.collections.LongHashSet;

/**
 * The metadata changes of one residency request (an {@code ensureResident}, a prefetch, a
 * copy-on-write copy), applied at once under the manager lock and undone in reverse order if
 * the request fails. Tier frees and copies wait for {@link #commit()}, which hands the copies to
 * the {@link CopyDispatcher} grouped by wave and tier pair.
 *
 * <p>Waves: a copy runs in a wave above every earlier copy of this transaction that writes its
 * source, or reads or writes its destination (a slot vacated by one eviction and filled by the
 * next, a slot a copy-on-write copy reads and an eviction then refills). A batch therefore waits
 * only on batches of lower waves or of earlier transactions, never on itself.
 */
@GuardedBy("manager lock")
final class ResidencyTxn {
    final long id;
    private final SlotFences fences;
    private final EvictionPolicy policy;
    private final LowerCopies lowerCopies;
    private final CacheCounters counters;
    private final CopyDispatcher dispatcher;
    private final List<Runnable> undo = new ArrayList<>();
    private final List<PlannedCopy> copies = new ArrayList<>();
    private final List<Runnable> onCommit = new ArrayList<>();
    /** Per tier: set once the tier proved unable to make room in this transaction. */
    final boolean[] exhausted;
    /** Set once the top tier had no partial slot to reclaim in this transaction. */
    boolean partialSlotsExhausted;
    private final Long2LongHashMap readWave = new Long2LongHashMap(-1);
    private final Long2LongHashMap writeWave = new Long2LongHashMap(-1);
    private final Long2ObjectHashMap<PlannedCopy> copyOf = new Long2ObjectHashMap<>();
    /** Slots vacated by an eviction and handed to another block in this transaction (so not freed). */
    private final LongHashSet claimedSlots = new LongHashSet();
    /** Attention sinks and recent windows of every sequence, computed on first need. */
    LongHashSet protectedBlocks;

    private final long slotBytes;
    private final long layerBytes;
    /** Most consecutive layers of a block one layer-slice copy brings (an aligned group). */
    private final int layersPerCopy;

    ResidencyTxn(long id, int tiers, SlotFences fences, EvictionPolicy policy, LowerCopies lowerCopies,
                 CacheCounters counters, CopyDispatcher dispatcher, long slotBytes, long layerBytes,
                 int layersPerCopy) {
        this.id = id;
        this.layersPerCopy = layersPerCopy;
        this.slotBytes = slotBytes;
        this.layerBytes = layerBytes;
        this.exhausted = new boolean[tiers];
        this.fences = fences;
        this.policy = policy;
        this.lowerCopies = lowerCopies;
        this.counters = counters;
        this.dispatcher = dispatcher;
    }

    void onUndo(Runnable r) {
        undo.add(r);
    }

    void onCommit(Runnable r) {
        onCommit.add(r);
    }

    private void raise(Long2LongHashMap waves, long key, int wave) {
        long prev = waves.get(key);
        if (prev < wave) {
            waves.put(key, wave);
            undo.add(() -> {
                if (prev < 0) {
                    waves.remove(key);
                } else {
                    waves.put(key, prev);
                }
            });
        }
    }

    /** Records that a slot vacated in this transaction is handed to another block (so it is not freed). */
    void claim(int t, int slot) {
        long claimed = SlotFences.key(t, slot);
        claimedSlots.add(claimed);
        undo.add(() -> claimedSlots.remove(claimed));
    }

    /** Gives a block with no bytes yet a top-tier slot to be written into. */
    void placeNew(Block b, int slot) {
        b.tier = 0;
        b.slot = slot;
        b.dataReady = fences.get(0, slot).handle((v, e) -> (Void) null);
        policy.onInsert(b.id, 0);
        undo.add(() -> {
            policy.onRemove(b.id, 0);
            b.tier = -1;
            b.slot = -1;
            b.dataReady = Block.DONE;
        });
    }

    /** Fills a new block with a copy of {@code source}'s bytes (copy-on-write). */
    void copy(Block source, Block b, int dstTier, int dstSlot) {
        PlannedCopy m = record(b, source, dstTier, dstSlot, true);
        b.tier = dstTier;
        b.slot = dstSlot;
        CompletableFuture<Void> prevReady = b.dataReady;
        b.dataReady = m.done;
        policy.onInsert(b.id, dstTier);
        undo.add(() -> {
            policy.onRemove(b.id, dstTier);
            b.tier = -1;
            b.slot = -1;
            b.dataReady = prevReady;
        });
        if (b.cowFrom == source) {
            // the copy-on-write source stays frozen until the copy has read it
            onCommit.add(() -> {
                m.releaseWhenSettled = source;
                b.cowFrom = null;
            });
        }
    }

    /** Moves a block to another tier's slot; a promoted sealed block keeps its old slot as a lower copy. */
    CompletableFuture<Void> move(Block b, int dstTier, int dstSlot) {
        int srcTier = b.tier;
        int srcSlot = b.slot;
        PlannedCopy m = record(b, b, dstTier, dstSlot, false);
        CompletableFuture<Void> prevReady = b.dataReady;
        b.tier = dstTier;
        b.slot = dstSlot;
        b.dataReady = m.done;
        b.txnId = id;
        policy.onMove(b.id, srcTier, dstTier);
        undo.add(() -> {
            policy.onMove(b.id, dstTier, srcTier);
            b.tier = srcTier;
            b.slot = srcSlot;
            b.dataReady = prevReady;
        });
        if (dstTier < srcTier && b.key != null && !b.lost) {
            lowerCopies.keep(this, b, m, srcTier, srcSlot, prevReady);
        }
        return m.done;
    }

    /**
     * Copies layer slices of a sealed block from the slot holding its bytes into its partial slot:
     * one copy per run of consecutive layers within an aligned group of {@link #layersPerCopy}
     * (so each group's batch completes on its own). Distinct groups are disjoint byte ranges of
     * the slot: the copies wait for the slot's earlier users, not for each other.
     *
     * @return one future per entry of {@code layers}, completing when that layer is in place
     */
    List<CompletableFuture<Void>> copyLayers(Block b, int[] layers) {
        int srcTier = b.tier;
        int srcSlot = b.slot;
        int dstSlot = b.partialSlot;
        long srcKey = SlotFences.key(srcTier, srcSlot);
        long dstKey = SlotFences.key(0, dstSlot);
        PlannedCopy dep = copyOf.get(b.id);
        int wave = 1 + (int) Math.max(Math.max(writeWave.get(srcKey), dep == null ? -1 : dep.wave),
                Math.max(writeWave.get(dstKey), readWave.get(dstKey)));
        raise(readWave, srcKey, wave);
        raise(writeWave, dstKey, wave);
        CompletableFuture<?> prevSrcFree = fences.get(srcTier, srcSlot);
        CompletableFuture<?> prevDstFree = fences.get(0, dstSlot);
        CompletableFuture<Void>[] prevLayers = b.partialLayers.clone();
        List<CompletableFuture<Void>> out = new ArrayList<>(layers.length);
        List<PlannedCopy> mine = new ArrayList<>(layers.length);
        // consecutive layers of one aligned group of layersPerCopy go as one copy (one range of
        // the slot), so that every block's copy of a group lands in the same batch
        int runs = 0;
        for (int i = 0; i < layers.length; i++) {
            if (i == 0 || !sameRun(layers[i - 1], layers[i])) {
                runs++;
            }
        }
        // the slots are in use until every run's copy has settled: one fence entry for all of them
        LayerRun run = new LayerRun(runs);
        fences.addUse(srcTier, srcSlot, run.settled);
        fences.addUse(0, dstSlot, run.settled);
        for (int i = 0; i < layers.length; ) {
            int first = layers[i];
            int j = i + 1;
            while (j < layers.length && sameRun(layers[j - 1], layers[j])) {
                j++;
            }
            int count = j - i;
            PlannedCopy m = new PlannedCopy(b, b, srcTier, srcSlot, 0, dstSlot, false, b.dataReady, prevDstFree, wave,
                    first, count, first * layerBytes, count * layerBytes, run);
            for (int k = i; k < j; k++) {
                b.partialLayers[layers[k]] = m.done;
                out.add(m.done);
            }
            copies.add(m);
            mine.add(m);
            i = j;
        }
        CompletableFuture<Void>[] layersNow = b.partialLayers;
        undo.add(() -> {
            fences.set(srcTier, srcSlot, prevSrcFree);
            fences.set(0, dstSlot, prevDstFree);
            copies.removeAll(mine);
            if (b.partialLayers == layersNow) {
                System.arraycopy(prevLayers, 0, layersNow, 0, prevLayers.length);
            }
        });
        return out;
    }

    /** @return whether layer {@code b} follows layer {@code a} within one group of {@link #layersPerCopy} */
    private boolean sameRun(int a, int b) {
        return b == a + 1 && a / layersPerCopy == b / layersPerCopy;
    }

    /**
     * Makes a block's partial slot its residency once every layer is in it or coming: the block
     * lives in the top tier from now on, and the slot it lived in stays as its lower copy.
     */
    void adoptPartialSlot(Block b, int slot, CompletableFuture<Void> ready) {
        int srcTier = b.tier;
        int srcSlot = b.slot;
        CompletableFuture<Void> prevReady = b.dataReady;
        b.tier = 0;
        b.slot = slot;
        b.dataReady = ready;
        b.txnId = id;
        policy.onMove(b.id, srcTier, 0);
        undo.add(() -> {
            policy.onMove(b.id, 0, srcTier);
            b.tier = srcTier;
            b.slot = srcSlot;
            b.dataReady = prevReady;
        });
        lowerCopies.keep(this, b, srcTier, srcSlot, prevReady);
    }

    private PlannedCopy record(Block b, Block source, int dstTier, int dstSlot, boolean copyOnWrite) {
        PlannedCopy dep = copyOf.get(source.id);
        int srcTier = source.tier;
        int srcSlot = source.slot;
        long srcKey = SlotFences.key(srcTier, srcSlot);
        long dstKey = SlotFences.key(dstTier, dstSlot);
        int wave = 1 + (int) Math.max(Math.max(writeWave.get(srcKey), dep == null ? -1 : dep.wave),
                Math.max(writeWave.get(dstKey), readWave.get(dstKey)));
        raise(readWave, srcKey, wave);
        raise(writeWave, dstKey, wave);
        CompletableFuture<?> prevSrcFree = fences.get(srcTier, srcSlot);
        CompletableFuture<?> prevDstFree = fences.get(dstTier, dstSlot);
        PlannedCopy m = new PlannedCopy(b, source, srcTier, srcSlot, dstTier, dstSlot, copyOnWrite, source.dataReady,
                prevDstFree, wave, -1, 0, 0, slotBytes, null);
        // the slot read and the slot written are busy until the copy settles
        CompletableFuture<Void> settled = m.done.handle((v, e) -> null);
        fences.addUse(srcTier, srcSlot, settled);
        fences.addUse(dstTier, dstSlot, settled);
        copies.add(m);
        copyOf.put(b.id, m);
        undo.add(() -> {
            fences.set(srcTier, srcSlot, prevSrcFree);
            fences.set(dstTier, dstSlot, prevDstFree);
            copies.remove(m);
            copyOf.remove(b.id);
        });
        return m;
    }

    /** Undoes every change, newest first. */
    void rollback() {
        for (int i = undo.size() - 1; i >= 0; i--) {
            undo.get(i).run();
        }
        undo.clear();
    }

    /** Counts the copies, runs the commit actions and hands the copies to the dispatcher. */
    void commit() {
        for (PlannedCopy m : copies) {
            // a promoted block's old slot stays allocated until the copy reading it settles
            m.freeSourceWhenSettled = !m.copyOnWrite && !m.layerSlice() && !m.keepSourceAsLowerCopy
                    && !claimedSlots.contains(SlotFences.key(m.srcTier, m.srcSlot));
            counters.copied(m.srcTier, m.dstTier, m.copyOnWrite, m.length);
        }
        for (Runnable r : onCommit) {
            r.run();
        }
        dispatcher.submit(copies);
    }
}
