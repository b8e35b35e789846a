package io.kvcache.core;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Top-tier slots that hold only some layers of a block. Only a sealed block whose bytes stay
 * whole in a lower tier gets one (its residency remains that lower slot), so a partial slot is a
 * cache of layer slices: dropping it moves no bytes and loses nothing. Each layer of the slot
 * has its own data future, set when the copy bringing that layer is planned. A partial slot is
 * the first thing the top tier reclaims when it needs room (least recently used first), unless
 * its block is pinned.
 */
@GuardedBy("manager lock")
final class PartialSlots {
    private final SlotFences fences;
    private final int layers;
    /** Blocks with a partial slot, least recently used first. */
    private final LinkedHashSet<Block> held = new LinkedHashSet<>();

    PartialSlots(SlotFences fences, int layers) {
        this.fences = fences;
        this.layers = layers;
    }

    /** Gives a block a partial slot with no layer in it yet. */
    @SuppressWarnings("unchecked")
    void attach(ResidencyTxn txn, Block b, int slot) {
        b.partialSlot = slot;
        b.partialLayers = new CompletableFuture[layers];
        held.add(b);
        txn.onUndo(() -> detachNow(b));
    }

    /** Marks the block's partial slot most recently used. */
    void touch(Block b) {
        if (held.remove(b)) {
            held.add(b);
        }
    }

    /**
     * Takes the partial slot of the least recently used unpinned block not touched by this
     * transaction (its layers are dropped, no bytes move), or -1 when none.
     */
    int reclaim(ResidencyTxn txn) {
        // within a transaction no partial slot becomes reclaimable: pins only grow, and slots
        // attached now belong to its own blocks. So once none is found, none will be.
        if (txn.partialSlotsExhausted) {
            return -1;
        }
        for (Block b : held) {
            if (b.pins == 0 && b.txnId != txn.id) {
                int slot = take(txn, b);
                txn.claim(0, slot);
                return slot;
            }
        }
        txn.partialSlotsExhausted = true;
        return -1;
    }

    /**
     * Detaches a block's partial slot within a transaction (undone on rollback) and hands the
     * slot to the caller.
     *
     * @return the slot
     */
    int take(ResidencyTxn txn, Block b) {
        int slot = b.partialSlot;
        CompletableFuture<Void>[] ls = b.partialLayers;
        detachNow(b);
        txn.onUndo(() -> {
            b.partialSlot = slot;
            b.partialLayers = ls;
            held.add(b);
        });
        return slot;
    }

    /** Drops a block's partial slot within a transaction: the slot returns to the tier at commit. */
    void dropInTxn(ResidencyTxn txn, Block b) {
        if (b.hasPartialSlot()) {
            int slot = take(txn, b);
            txn.onCommit(() -> fences.release(0, slot));
        }
    }

    /** Drops a block's partial slot now (the block is freed); the slot returns once no copy uses it. */
    void drop(Block b) {
        if (b.hasPartialSlot()) {
            int slot = b.partialSlot;
            detachNow(b);
            fences.release(0, slot);
        }
    }

    private void detachNow(Block b) {
        held.remove(b);
        b.partialSlot = -1;
        b.partialLayers = null;
    }

    /** @return how many partial slots there are */
    int size() {
        return held.size();
    }

    /** @return the blocks holding partial slots (for invariant checks) */
    List<Block> blocks() {
        return new ArrayList<>(held);
    }
}
