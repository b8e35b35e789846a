package io.kvcache.core;

import io.kvcache.core.policy.EvictionPolicy;
import java.util.LinkedHashSet;
import java.util.concurrent.CompletableFuture;

/**
 * Second copies of sealed (immutable) blocks in lower tiers. A sealed block promoted out of a
 * slot keeps that slot as its lower copy, so that evicting it again moves no bytes: it falls
 * back to the copy. A lower copy's slot is the first thing a tier reclaims when it needs room
 * (the block keeps its copy above). A written-through block's copy in the persistent tier is a
 * lower copy found through the tier's index.
 */
@GuardedBy("manager lock")
final class LowerCopies {
    private final SlotFences fences;
    private final PersistentTiers persistent;
    private final CacheCounters counters;
    private final EvictionPolicy policy;
    /** Per tier: blocks whose lower copy sits there, oldest first (reclaimed first). */
    private final LinkedHashSet<Block>[] in;

    @SuppressWarnings("unchecked")
    LowerCopies(int tiers, SlotFences fences, PersistentTiers persistent, CacheCounters counters,
                EvictionPolicy policy) {
        this.fences = fences;
        this.persistent = persistent;
        this.counters = counters;
        this.policy = policy;
        this.in = new LinkedHashSet[tiers];
        for (int t = 0; t < tiers; t++) {
            in[t] = new LinkedHashSet<>();
        }
    }

    /**
     * A sealed block promoted out of a slot keeps that slot as its lower copy; a deeper lower
     * copy it had is released when the transaction commits.
     */
    void keep(ResidencyTxn txn, Block b, PlannedCopy m, int srcTier, int srcSlot, CompletableFuture<Void> srcReady) {
        keep(txn, b, srcTier, srcSlot, srcReady);
        m.keepSourceAsLowerCopy = true;
        txn.onUndo(() -> m.keepSourceAsLowerCopy = false);
    }

    /**
     * A sealed block that now lives in a top-tier slot without a whole copy into it (its partial
     * slot became its residency) keeps the slot it lived in as its lower copy.
     */
    void keep(ResidencyTxn txn, Block b, int srcTier, int srcSlot, CompletableFuture<Void> srcReady) {
        int oldTier = b.lowerTier;
        int oldSlot = b.lowerSlot;
        CompletableFuture<Void> oldReady = b.lowerReady;
        if (oldTier >= 0) {
            in[oldTier].remove(b);
        }
        b.lowerTier = srcTier;
        b.lowerSlot = srcSlot;
        b.lowerReady = srcReady;
        in[srcTier].add(b);
        txn.onUndo(() -> {
            in[srcTier].remove(b);
            b.lowerTier = oldTier;
            b.lowerSlot = oldSlot;
            b.lowerReady = oldReady;
            if (oldTier >= 0) {
                in[oldTier].add(b);
            }
        });
        if (oldTier >= 0) {
            txn.onCommit(() -> fences.release(oldTier, oldSlot));
        }
    }

    /** Evicts a block that has a lower copy: it falls back to the copy, no bytes move. */
    void fallBack(ResidencyTxn txn, Block v) {
        int lt = v.lowerTier;
        int ls = v.lowerSlot;
        CompletableFuture<Void> lr = v.lowerReady;
        in[lt].remove(v);
        v.lowerTier = -1;
        v.lowerSlot = -1;
        v.lowerReady = null;
        txn.onUndo(() -> {
            v.lowerTier = lt;
            v.lowerSlot = ls;
            v.lowerReady = lr;
            in[lt].add(v);
        });
        relocate(txn, v, lt, ls, lr);
    }

    /** Evicts a written-through block into the persistent tier's slot that already holds its bytes. */
    void fallBackToPersisted(ResidencyTxn txn, Block v, int d, int slot) {
        txn.onUndo(() -> persistent.release(d, slot));
        relocate(txn, v, d, slot, Block.DONE);
    }

    /** Points a block at a slot that already holds its bytes (undone before the caller's own undo). */
    private void relocate(ResidencyTxn txn, Block v, int toTier, int toSlot, CompletableFuture<Void> ready) {
        int t = v.tier;
        int slot = v.slot;
        CompletableFuture<Void> prevReady = v.dataReady;
        v.tier = toTier;
        v.slot = toSlot;
        v.dataReady = ready;
        v.txnId = txn.id;
        policy.onMove(v.id, t, toTier);
        txn.onUndo(() -> {
            policy.onMove(v.id, toTier, t);
            v.tier = t;
            v.slot = slot;
            v.dataReady = prevReady;
        });
        txn.onCommit(() -> counters.fellBack(toTier));
    }

    /** Takes the slot of the oldest lower copy in a tier (its block keeps its copy above), or -1. */
    int reclaim(ResidencyTxn txn, int t) {
        if (in[t].isEmpty()) {
            return -1;
        }
        Block b = in[t].getFirst();
        int slot = b.lowerSlot;
        CompletableFuture<Void> lr = b.lowerReady;
        in[t].remove(b);
        b.lowerTier = -1;
        b.lowerSlot = -1;
        b.lowerReady = null;
        txn.onUndo(() -> {
            b.lowerTier = t;
            b.lowerSlot = slot;
            b.lowerReady = lr;
            in[t].add(b);
        });
        if (persistent.isPersistent(t)) {
            txn.onCommit(() -> {
                persistent.unpublish(t, slot);
                if (t == persistent.writeTier) {
                    b.persisted = false;
                }
            });
        }
        return slot;
    }

    /** Releases a block's lower copy; a persistent tier keeps the block findable after the release. */
    void drop(Block b) {
        if (b.hasLowerCopy()) {
            in[b.lowerTier].remove(b);
            fences.release(b.lowerTier, b.lowerSlot);
            b.lowerTier = -1;
            b.lowerSlot = -1;
            b.lowerReady = null;
        }
    }
}
