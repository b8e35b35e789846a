package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.tier.Tier;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.agrona.collections.LongHashSet;

/**
 * Decides where blocks go. Finding a slot in a full tier evicts the policy's candidates: a
 * block with a lower copy falls back to it, others are demoted to the next tier with room
 * (cascading down), and a cached block nobody holds is dropped when no lower tier takes it.
 * Every change is recorded in a {@link ResidencyTxn}, so a request that cannot be met leaves
 * the cache as it was.
 */
@GuardedBy("manager lock")
final class ResidencyPlanner {
    private final Tier[] tiers;
    private final SlotFences fences;
    private final LowerCopies lowerCopies;
    private final BlockRegistry registry;
    private final PersistentTiers persistent;
    private final PrefetchTracker prefetch;
    private final CacheCounters counters;
    private final EvictionPolicy policy;
    private final CopyDispatcher dispatcher;
    private final SequenceTable sequences;
    private final int prefetchLookahead;
    private final PartialSlots partial;
    private final int layers;
    private final int layersPerCopy;
    private long nextTxnId;

    ResidencyPlanner(Tier[] tiers, SlotFences fences, LowerCopies lowerCopies, BlockRegistry registry,
                     PersistentTiers persistent, PrefetchTracker prefetch, CacheCounters counters,
                     EvictionPolicy policy, CopyDispatcher dispatcher, SequenceTable sequences, int prefetchLookahead,
                     PartialSlots partial, int layers, int layersPerCopy) {
        this.tiers = tiers;
        this.layersPerCopy = layersPerCopy;
        this.partial = partial;
        this.layers = layers;
        this.fences = fences;
        this.lowerCopies = lowerCopies;
        this.registry = registry;
        this.persistent = persistent;
        this.prefetch = prefetch;
        this.counters = counters;
        this.policy = policy;
        this.dispatcher = dispatcher;
        this.sequences = sequences;
        this.prefetchLookahead = prefetchLookahead;
    }

    private ResidencyTxn begin() {
        long slotBytes = tiers[0].slotBytes();
        return new ResidencyTxn(nextTxnId++, tiers.length, fences, policy, lowerCopies, counters, dispatcher,
                slotBytes, slotBytes / layers, layersPerCopy);
    }

    /**
     * Brings pinned blocks to the top tier: blocks with no bytes get a fresh slot, copy-on-write
     * blocks copy their source, others move up.
     *
     * @return completes when every block's bytes are in place
     * @throws OutOfCacheSpaceException when the top tier cannot make room; nothing changed (the
     *                                  caller unpins)
     */
    CompletableFuture<Void> promote(Block[] bs) {
        ResidencyTxn txn = begin();
        int[] sourceTiers = new int[bs.length];
        int hitCount = 0;
        try {
            for (Block b : bs) {
                b.txnId = txn.id;
                if (b.tier == 0) {
                    sourceTiers[hitCount++] = 0;
                    continue;
                }
                if (b.hasSlot()) {
                    sourceTiers[hitCount++] = b.tier;
                }
                promoteWhole(txn, b, true);
            }
        } catch (OutOfCacheSpaceException e) {
            txn.rollback();
            throw e;
        }
        for (int i = 0; i < hitCount; i++) {
            counters.hits[sourceTiers[i]]++;
        }
        for (Block b : bs) {
            policy.onAccess(b.id, Math.max(b.tier, 0));
            prefetch.used(b.id);
        }
        txn.commit();
        List<CompletableFuture<?>> waits = new ArrayList<>(bs.length);
        for (Block b : bs) {
            waits.add(b.dataReady);
        }
        return CompletableFuture.allOf(waits.toArray(CompletableFuture[]::new));
    }

    /**
     * Brings one block not in the top tier there whole: a fresh slot for a block with no bytes, a
     * copy for a copy-on-write block, the missing layers for a block with a partial slot (which
     * becomes its residency), else a move.
     *
     * @param evictWhole whether room may be made by evicting blocks held whole in the top tier
     *                   (else only free slots and partial slots are taken)
     * @return completes when the block's bytes are in place
     */
    private CompletableFuture<Void> promoteWhole(ResidencyTxn txn, Block b, boolean evictWhole) {
        if (b.hasPartialSlot()) {
            CompletableFuture<Void>[] ls = fillLayers(txn, b, 0, layers);
            int slot = partial.take(txn, b);
            CompletableFuture<Void> ready = CompletableFuture.allOf(ls);
            txn.adoptPartialSlot(b, slot, ready);
            return ready;
        }
        int slot = obtainSlot(0, txn, b, evictWhole);
        if (!b.hasSlot() && b.cowFrom == null) {
            txn.placeNew(b, slot);
        } else if (!b.hasSlot()) {
            txn.copy(b.cowFrom, b, 0, slot);
        } else {
            txn.move(b, 0, slot);
        }
        return b.dataReady;
    }

    /**
     * Copies the layers of {@code [fromLayer, toLayer)} that a block's partial slot lacks into it.
     *
     * @return the futures of layers {@code [fromLayer, toLayer)} of the slot, in place or coming
     */
    private CompletableFuture<Void>[] fillLayers(ResidencyTxn txn, Block b, int fromLayer, int toLayer) {
        int missing = 0;
        int[] ls = new int[toLayer - fromLayer];
        for (int l = fromLayer; l < toLayer; l++) {
            if (b.partialLayers[l] == null) {
                ls[missing++] = l;
            }
        }
        if (missing > 0) {
            txn.copyLayers(b, java.util.Arrays.copyOf(ls, missing));
        }
        partial.touch(b);
        return java.util.Arrays.copyOfRange(b.partialLayers, fromLayer, toLayer);
    }

    /**
     * Brings layers {@code [fromLayer, toLayer)} of pinned blocks to the top tier. A sealed block
     * whose bytes are held whole in a lower tier gets a partial slot and only the layer slices it
     * lacks, one copy per group of consecutive layers; a block already in the top tier needs nothing; any other block
     * (one still written, a copy-on-write block, a block with no bytes) is brought whole.
     *
     * @param evictWhole whether room may be made by evicting blocks held whole in the top tier;
     *                   free and partial slots are always taken first
     * @return per layer of the range, what completes when that layer of every block is in place:
     *     one future per block (a layer copy's {@link PlannedCopy#done} where the block gets that layer)
     * @throws OutOfCacheSpaceException when the top tier cannot make room; nothing changed (the
     *                                  caller unpins)
     */
    List<CompletableFuture<?>>[] promoteLayers(Block[] bs, int fromLayer, int toLayer, boolean evictWhole) {
        ResidencyTxn txn = begin();
        int n = toLayer - fromLayer;
        @SuppressWarnings("unchecked")
        List<CompletableFuture<?>>[] perLayer = new List[n];
        for (int i = 0; i < n; i++) {
            perLayer[i] = new ArrayList<>(bs.length);
        }
        int[] hitTiers = new int[bs.length];
        try {
            for (int i = 0; i < bs.length; i++) {
                Block b = bs[i];
                b.txnId = txn.id;
                hitTiers[i] = b.tier == 0 || (b.hasPartialSlot() && hasLayers(b, fromLayer, toLayer)) ? 0 : b.tier;
                if (b.tier == 0) {
                    for (List<CompletableFuture<?>> l : perLayer) {
                        l.add(b.dataReady);
                    }
                } else if (b.layerPartialEligible()) {
                    if (!b.hasPartialSlot()) {
                        partial.attach(txn, b, obtainSlot(0, txn, b, evictWhole));
                    }
                    CompletableFuture<Void>[] ls = fillLayers(txn, b, fromLayer, toLayer);
                    for (int l = 0; l < n; l++) {
                        perLayer[l].add(ls[l]);
                    }
                } else {
                    CompletableFuture<Void> ready = promoteWhole(txn, b, evictWhole);
                    for (List<CompletableFuture<?>> l : perLayer) {
                        l.add(ready);
                    }
                }
            }
        } catch (OutOfCacheSpaceException e) {
            txn.rollback();
            throw e;
        }
        for (int i = 0; i < bs.length; i++) {
            if (hitTiers[i] >= 0) {
                counters.hits[hitTiers[i]]++;
            }
            policy.onAccess(bs[i].id, Math.max(bs[i].tier, 0));
            prefetch.used(bs[i].id);
        }
        txn.commit();
        return perLayer;
    }

    /** @return whether a block's partial slot holds (or is receiving) every layer of a range */
    static boolean hasLayers(Block b, int fromLayer, int toLayer) {
        for (int l = fromLayer; l < toLayer; l++) {
            if (b.partialLayers[l] == null) {
                return false;
            }
        }
        return true;
    }

    /** Promotes the wanted blocks within the lookahead budget, without pinning them; skips what finds no room. */
    void prefetch(List<Block> wanted) {
        ResidencyTxn txn = begin();
        // the blocks asked for must not evict each other
        for (Block b : wanted) {
            b.pins++;
        }
        try {
            int issued = 0;
            for (Block b : wanted) {
                if (issued >= prefetchLookahead) {
                    break;
                }
                if (b.tier <= 0 || b.lost || b.txnId == txn.id || prefetch.tracks(b.id)) {
                    continue;
                }
                CompletableFuture<Void> ready;
                try {
                    ready = promoteWhole(txn, b, true);
                } catch (OutOfCacheSpaceException e) {
                    break;
                }
                b.txnId = txn.id;
                prefetch.issued(b.id, ready);
                issued++;
            }
            prefetch.issued += issued;
            txn.commit();
        } finally {
            for (Block b : wanted) {
                b.pins--;
            }
        }
    }

    /**
     * A new private block holding a copy of {@code source}'s bytes as they are now, planned at
     * once (a fork's copy of a partly written block, which its owner goes on writing). It goes
     * to the source's tier if that has room, else to the nearest tier that does.
     *
     * @throws OutOfCacheSpaceException when no tier can take the copy; nothing changed
     */
    Block snapshotCopy(Block source) {
        if (source.lost) {
            Block b = registry.createReferenced();
            b.lost = true;
            return b;
        }
        if (!source.hasSlot()) {
            // its bytes are its own frozen copy-on-write source's: share that
            return registry.lazyCopyOf(source);
        }
        Block b = registry.createReferenced();
        source.pins++;
        try {
            for (int i = 0; i < tiers.length; i++) {
                // the source's tier first, then those below it, then those above
                int t = i < tiers.length - source.tier ? source.tier + i : tiers.length - 1 - i;
                ResidencyTxn txn = begin();
                b.txnId = txn.id;
                int slot;
                try {
                    slot = obtainSlot(t, txn, b);
                } catch (OutOfCacheSpaceException e) {
                    txn.rollback();
                    continue;
                }
                txn.copy(source, b, t, slot);
                txn.commit();
                return b;
            }
        } finally {
            source.pins--;
        }
        registry.remove(b);
        throw new OutOfCacheSpaceException("no tier has room for a copy of block " + source.id
                + " (copy-on-write of a shared partial block): every slot is pinned or referenced");
    }

    /**
     * Finds a slot in tier {@code t} for a block, evicting if needed. The slot's old bytes may
     * still be in flight; copies into it wait on its fence.
     */
    private int obtainSlot(int t, ResidencyTxn txn, Block forBlock) {
        return obtainSlot(t, txn, forBlock, true);
    }

    /**
     * @param evictBlocks whether blocks living in the tier may be evicted; free slots, lower
     *                    copies and (in the top tier) partial slots are taken first either way
     */
    private int obtainSlot(int t, ResidencyTxn txn, Block forBlock, boolean evictBlocks) {
        if (txn.exhausted[t] || tiers[t].failed()) {
            throw evictBlocks ? new OutOfCacheSpaceException(noRoom(t)) : OutOfCacheSpaceException.noFreeOrPartialSlot();
        }
        int slot = allocateFree(t, txn, forBlock);
        if (slot < 0) {
            slot = lowerCopies.reclaim(txn, t);
            if (slot >= 0) {
                txn.claim(t, slot);
            }
        }
        if (slot < 0 && t == 0) {
            // a partial slot holds layers whose bytes live below too: dropping it moves nothing
            slot = partial.reclaim(txn);
        }
        if (slot >= 0) {
            return slot;
        }
        if (!evictBlocks) {
            throw OutOfCacheSpaceException.noFreeOrPartialSlot();
        }
        int[] found = {-1};
        policy.forEachCandidate(t, id -> isProtected(txn, id), id -> {
            Block v = registry.get(id);
            if (v == null || v.pins > 0 || v.txnId == txn.id || v.tier != t) {
                return false;
            }
            int vacated = v.slot;
            if (evict(t, txn, v)) {
                found[0] = vacated;
                return true;
            }
            return false;
        });
        if (found[0] < 0) {
            txn.exhausted[t] = true;
            throw new OutOfCacheSpaceException(noRoom(t));
        }
        txn.claim(t, found[0]);
        return found[0];
    }

    /** Makes a block leave tier {@code t}: to its lower copy, to a lower tier, or out (when droppable). */
    private boolean evict(int t, ResidencyTxn txn, Block v) {
        if (v.hasLowerCopy()) {
            lowerCopies.fallBack(txn, v);
            return true;
        }
        for (int d = t + 1; d < tiers.length; d++) {
            if (txn.exhausted[d]) {
                continue;
            }
            if (d == persistent.writeTier && v.persisted && v.key != null) {
                // written through already: evicting it into that tier moves no bytes
                int held = persistent.takeWrittenThrough(v);
                if (held >= 0) {
                    lowerCopies.fallBackToPersisted(txn, v, d, held);
                    return true;
                }
            }
            int lower;
            if (v.droppable() && persistent.isPersistent(d)) {
                // a block nobody holds enters a persistent tier only if its admission policy
                // takes it; it never evicts others there
                lower = allocateFree(d, txn, v);
                if (lower < 0) {
                    continue;
                }
            } else {
                try {
                    lower = obtainSlot(d, txn, v);
                } catch (OutOfCacheSpaceException e) {
                    txn.exhausted[d] = true;
                    continue;
                }
            }
            v.txnId = txn.id;
            txn.move(v, d, lower);
            return true;
        }
        if (v.droppable()) {
            drop(txn, v);
            return true;
        }
        return false;
    }

    /** A free slot of tier {@code t} for a block (persistent tiers apply their admission to its key), or -1. */
    private int allocateFree(int t, ResidencyTxn txn, Block forBlock) {
        int slot = persistent.allocate(t, forBlock);
        if (slot >= 0) {
            txn.onUndo(() -> tiers[t].free(slot));
        }
        return slot;
    }

    private String noRoom(int t) {
        return "no room in tier '" + tiers[t].name() + "' (" + tiers[t].slotCount() + " slots, "
                + registry.pinnedIn(t) + " pinned by open handles or this request) or below: every other block"
                + " there is referenced by a sequence and no lower tier can take it";
    }

    /** Drops an unreferenced cached block to hand its slot to another block. */
    private void drop(ResidencyTxn txn, Block v) {
        int t = v.tier;
        int slot = v.slot;
        BlockKey key = v.key;
        CompletableFuture<Void> ready = v.dataReady;
        v.txnId = txn.id;
        partial.dropInTxn(txn, v);
        registry.remove(v);
        registry.unregisterKey(v);
        policy.onRemove(v.id, t);
        v.tier = -1;
        v.slot = -1;
        txn.onUndo(() -> {
            registry.add(v);
            registry.registerKey(key, v);
            policy.onInsert(v.id, t);
            v.tier = t;
            v.slot = slot;
            v.dataReady = ready;
        });
        txn.onCommit(() -> {
            counters.dropped[t]++;
            prefetch.forget(v.id);
            lowerCopies.drop(v);
            persistent.unpublish(t, slot);
        });
    }

    private boolean isProtected(ResidencyTxn txn, long blockId) {
        int sink = policy.sinkBlocks();
        int recent = policy.recentBlocks();
        if (sink == 0 && recent == 0) {
            return false;
        }
        if (txn.protectedBlocks == null) {
            LongHashSet set = new LongHashSet();
            for (Sequence s : sequences.all()) {
                int n = s.blocks.size();
                for (int i = 0; i < Math.min(sink, n); i++) {
                    set.add(s.blocks.get(i).id);
                }
                for (int i = Math.max(0, n - recent); i < n; i++) {
                    set.add(s.blocks.get(i).id);
                }
            }
            txn.protectedBlocks = set;
        }
        return txn.protectedBlocks.contains(blockId);
    }
}
