package io.kvcache.core;

import io.kvcache.core.transfer.TransferHandle;
import java.util.concurrent.CompletableFuture;

/**
 * One block copy recorded by a {@link ResidencyTxn} and run, batched with others of its wave
 * and tier pair, once the transaction commits. A move takes the block with it (its old slot is
 * freed or kept as a lower copy); a copy-on-write copy fills a new block from another.
 */
final class PlannedCopy {
    /** The block whose bytes land in the destination slot. */
    final Block block;
    /** Block whose bytes are read: the block itself for a move, the source for a copy. */
    final Block source;
    final int srcTier;
    final int srcSlot;
    final int dstTier;
    final int dstSlot;
    /** True for a copy-on-write copy (the source stays where it is), false for a move. */
    final boolean copyOnWrite;
    /**
     * The first layer a layer-slice copy brings into a partial slot (the source stays where it is, the
     * block's residency does not change), or -1 for a copy of the whole slot.
     */
    final int layer;
    /** Layers a layer-slice copy brings, from {@link #layer} on (consecutive in the slot); 0 for a whole slot. */
    final int layerCount;
    /** First byte of each slot copied: 0 for a whole slot. */
    final long offset;
    /** Bytes copied from {@link #offset}: the slot size for a whole slot. */
    final long length;
    /** Completes when the source's bytes are in place. */
    final CompletableFuture<?> srcReady;
    /** Completes when the destination slot may be overwritten. */
    final CompletableFuture<?> dstFree;
    /** Completes when the bytes are in place (exceptionally when the copy failed). */
    final CompletableFuture<Void> done = new CompletableFuture<>();
    /**
     * Completes with the transfer handle of the batch that copies this once the batch is handed to
     * its engine, or with null when the copy settles without one (it failed before that).
     */
    final CompletableFuture<TransferHandle> started = new CompletableFuture<>();
    /**
     * The dependency wave: above every earlier copy of the same transaction that writes this
     * copy's source or reads or writes its destination, so that batching copies by wave never
     * makes a batch wait on itself.
     */
    final int wave;
    /** The layer copies of one block planned together, for a layer-slice copy; null otherwise. */
    final LayerRun run;
    /** Set at commit: the source slot is freed when the copy settles, before {@link #done} completes. */
    @GuardedBy("manager lock")
    boolean freeSourceWhenSettled;
    /** Set while planning when the source slot stays as the block's lower copy. */
    @GuardedBy("manager lock")
    boolean keepSourceAsLowerCopy;
    /** Set at commit for a copy-on-write: the source's reader count drops when the copy settles. */
    @GuardedBy("manager lock")
    Block releaseWhenSettled;

    PlannedCopy(Block block, Block source, int srcTier, int srcSlot, int dstTier, int dstSlot, boolean copyOnWrite,
                CompletableFuture<?> srcReady, CompletableFuture<?> dstFree, int wave, int layer, int layerCount,
                long offset, long length, LayerRun run) {
        this.block = block;
        this.source = source;
        this.srcTier = srcTier;
        this.srcSlot = srcSlot;
        this.dstTier = dstTier;
        this.dstSlot = dstSlot;
        this.copyOnWrite = copyOnWrite;
        this.srcReady = srcReady;
        this.dstFree = dstFree;
        this.wave = wave;
        this.layer = layer;
        this.layerCount = layerCount;
        this.offset = offset;
        this.length = length;
        this.run = run;
    }

    /** @return whether this copy brings layer slices into a partial slot */
    boolean layerSlice() {
        return layer >= 0;
    }
}
