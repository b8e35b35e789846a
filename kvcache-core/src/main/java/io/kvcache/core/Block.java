package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import java.util.concurrent.CompletableFuture;

/**
 * A block's metadata. Every field is guarded by the manager lock. Its id is stable for its
 * life; its residency (tier, slot) changes as it moves. Who writes what:
 * {@link BlockRegistry} the reference counts and registration; {@link SequenceTable} the key at
 * sealing; {@link ResidencyTxn} and {@link LowerCopies} the residency, data future and lower
 * copy; {@link PersistentTiers} the write-through fields; the manager façade the pins.
 */
@GuardedBy("manager lock")
final class Block {
    static final CompletableFuture<Void> DONE = CompletableFuture.completedFuture(null);

    final long id;
    /** Content key once sealed (full and written) and registered for sharing; null while private. */
    BlockKey key;
    /** Key of the previous block of the prefix chain once sealed; null for a chain's first block. */
    BlockKey parentKey;
    /** Sequences referencing this block. */
    int refCount;
    /** Open residency handles holding this block in place. */
    int pins;
    /**
     * Copy-on-write blocks that will copy this block's bytes when they are first made resident.
     * While there are any, the block is frozen: nobody writes it (its owner copies too), so each
     * of them gets exactly the bytes it was forked from.
     */
    int cowReaders;
    /** Tier index, or -1 while the block has no bytes anywhere yet. */
    int tier = -1;
    int slot = -1;
    /** Completes when the bytes in (tier, slot) are in place; exceptionally if they are lost. */
    CompletableFuture<Void> dataReady = DONE;
    /** Frozen block whose bytes this one copies when first made resident (copy-on-write); null otherwise. */
    Block cowFrom;
    /** Set when the bytes could not be served; the block stays a reported miss. */
    boolean lost;
    /** Whether the block is in the registry (false once freed or dropped). */
    boolean registered;
    /**
     * A second copy of a sealed (immutable) block in a lower tier: the slot it was promoted from,
     * kept so that evicting the block later costs no copy. -1 when none. Reclaimed for free when
     * that tier needs room.
     */
    int lowerTier = -1;
    int lowerSlot = -1;
    /** Completes when the lower copy's bytes are in place. */
    CompletableFuture<Void> lowerReady;
    /** Whether a copy of this sealed block is published in the first persistent tier (write-through). */
    boolean persisted;
    /** Whether the block waits in the write-through queue. */
    boolean persistQueued;
    /** {@link System#nanoTime()} when the block was sealed, for the write-through lag. */
    long sealedNanos;
    /**
     * A top-tier slot holding some of the layers of this sealed block, whose bytes stay in
     * (tier, slot) below: -1 when none ({@link PartialSlots}). Dropping it moves no bytes.
     */
    int partialSlot = -1;
    /**
     * Per layer of the partial slot: completes when that layer's bytes are in place there; null
     * where the layer is not in the slot. Null when there is no partial slot.
     */
    CompletableFuture<Void>[] partialLayers;
    /** Transaction that last moved this block, so one transaction never moves a block twice. */
    long txnId = -1;

    Block(long id) {
        this.id = id;
    }

    /** @return whether the block has a slot of its own in some tier */
    boolean hasSlot() {
        return tier >= 0;
    }

    /** @return whether the block's bytes exist somewhere: in a slot of its own or in its copy-on-write source */
    boolean hasBytes() {
        return tier >= 0 || cowFrom != null;
    }

    /** @return whether nobody may write the block's bytes: shared, sealed, or frozen for copy-on-write readers */
    boolean immutable() {
        return refCount > 1 || key != null || cowReaders > 0;
    }

    /** @return whether some of the block's layers sit in a top-tier slot of their own */
    boolean hasPartialSlot() {
        return partialSlot >= 0;
    }

    /**
     * @return whether a request for some layers may give the block a partial top-tier slot: its
     *     bytes are sealed (immutable) and held whole in a lower tier, so dropping the partial
     *     slot later loses nothing
     */
    boolean layerPartialEligible() {
        return key != null && !lost && tier > 0 && cowFrom == null;
    }

    boolean hasLowerCopy() {
        return lowerTier >= 0;
    }

    /** @return whether the block can be dropped without losing a sequence's K/V: sealed, cached, unreferenced */
    boolean droppable() {
        return refCount == 0 && cowReaders == 0 && key != null;
    }
}
