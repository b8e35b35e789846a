package io.kvcache.core;

import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferHandle;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * A range of a sequence's blocks being made resident in the top tier, and pinned there until
 * {@link #close()}, for a range of layers: all of them ({@link KvCacheManager#ensureResident(Sequence,
 * int, int)}) or {@code [fromLayer, toLayer)} ({@link KvCacheManager#ensureResident(Sequence, int,
 * int, int, int)}). After {@link #await()} (or {@link #awaitLayer} for one layer) the engine reads
 * and writes the blocks' KV of those layers through this handle or, for a device tier, through
 * the {@link #blockTable(int) block table} of slot addresses that its attention kernel takes.
 *
 * <p>Only the handle's layers are guaranteed in place: a view, read, write or address that
 * touches another layer throws {@link LayerNotResidentException}, so an engine cannot read a
 * layer whose bytes may not be there. The layer-free forms ({@link #view(int)},
 * {@link #address(int)}, {@link #blockTable()}) need a handle of every layer.
 *
 * <p>Thread safety: {@link #await()}, {@link #read} and {@link #address} may be called from
 * any thread; {@link #close()} once.
 */
public final class ResidencyHandle implements AutoCloseable {
    private final KvCacheManager manager;
    private final Sequence sequence;
    private final int fromBlock;
    final Block[] blocks;
    /** The top-tier slot of each block when pinned (its own, or its partial slot); fixed while pinned. */
    final int[] slots;
    private final int fromLayer;
    private final int toLayer;
    private final CompletableFuture<Void>[] layerReady;
    private final CompletableFuture<Void> ready;
    /** Per layer of the range, the futures {@link #layerReady} is made of; null for a whole-block handle. */
    private final List<CompletableFuture<?>>[] layerParts;
    private final Tier top;
    private final long layerBytes;
    boolean closed;

    ResidencyHandle(KvCacheManager manager, Sequence sequence, int fromBlock, Block[] blocks, int[] slots,
                    int fromLayer, int toLayer, CompletableFuture<Void>[] layerReady, CompletableFuture<Void> ready,
                    List<CompletableFuture<?>>[] layerParts, Tier top) {
        this.manager = manager;
        this.sequence = sequence;
        this.fromBlock = fromBlock;
        this.blocks = blocks;
        this.slots = slots;
        this.fromLayer = fromLayer;
        this.toLayer = toLayer;
        this.layerReady = layerReady;
        this.ready = ready;
        this.layerParts = layerParts;
        this.top = top;
        this.layerBytes = manager.layout().layerBytes();
    }

    /** @return completes when every block's bytes of the handle's layers are in the top tier; exceptionally if a block was lost */
    public CompletableFuture<Void> ready() {
        return ready;
    }

    /**
     * @param layer a layer of the handle's range
     * @return completes when that layer of every block is in the top tier (a restore of many
     *     layers completes them one by one, so layer {@code l}'s compute can start before the rest land)
     * @throws LayerNotResidentException if the layer is outside the handle's range
     */
    public CompletableFuture<Void> layerReady(int layer) {
        return layerReady[layerIndex(layer)];
    }

    /**
     * The batches still bringing layer {@code layer} in, for an engine that waits for them on the
     * device rather than on the host (on CUDA, a {@code CudaTransferHandle}'s event): one future per
     * pending copy, completing with the handle of the batch that copies it once that batch is
     * handed to its transfer engine (null if it never is: the copy failed first). Empty when the
     * layer's readiness is not only such copies (a block made resident whole, a slot's fence); the
     * engine then waits on {@link #layerReady}. A batch completing is not a copy settled: an engine
     * that waits on the device checks {@link #layerReady} (or {@link #await()}) before it trusts
     * what it computed, since a failed copy reports only there.
     *
     * @param layer a layer of the handle's range
     * @return the copies' starts (an empty list when the layer is in place), or empty
     * @throws LayerNotResidentException if the layer is outside the handle's range
     */
    public Optional<List<CompletableFuture<TransferHandle>>> layerTransfers(int layer) {
        int i = layerIndex(layer);
        if (layerReady[i].isDone()) {
            return Optional.of(List.of());
        }
        if (layerParts == null) {
            return Optional.empty();
        }
        List<CompletableFuture<TransferHandle>> out = new ArrayList<>();
        for (CompletableFuture<?> part : layerParts[i]) {
            if (part.isDone()) {
                continue;
            }
            CompletableFuture<TransferHandle> started = manager.transferOf(part);
            if (started == null) {
                // not a copy, or one that settled meanwhile (then waiting on the host costs nothing)
                return Optional.empty();
            }
            out.add(started);
        }
        return Optional.of(out);
    }

    /**
     * Waits until the blocks are resident. The time waited is counted in the cache's stats.
     *
     * @throws BlockLostException if a block's bytes could not be served
     */
    public void await() {
        join(ready);
    }

    /**
     * Waits until one layer of every block is resident. The time waited is counted in the cache's stats.
     *
     * @throws LayerNotResidentException if the layer is outside the handle's range
     * @throws BlockLostException        if a block's bytes could not be served
     */
    public void awaitLayer(int layer) {
        join(layerReady(layer));
    }

    private void join(CompletableFuture<Void> f) {
        if (f.isDone() && !f.isCompletedExceptionally()) {
            return;
        }
        long start = manager.beginWait();
        try {
            f.join();
        } catch (CompletionException e) {
            throw manager.lostFor(sequence, this, e.getCause());
        } finally {
            manager.endWait(start);
        }
    }

    /** @return first logical block covered */
    public int fromBlock() {
        return fromBlock;
    }

    /** @return logical blocks covered */
    public int blockCount() {
        return blocks.length;
    }

    /** @return first layer made resident */
    public int fromLayer() {
        return fromLayer;
    }

    /** @return the layer after the last made resident */
    public int toLayer() {
        return toLayer;
    }

    /** @return whether the handle makes every layer resident */
    public boolean allLayers() {
        return fromLayer == 0 && toLayer == manager.layout().layers();
    }

    /**
     * @return slot addresses of the covered blocks in the top tier, index 0 = {@link #fromBlock()}:
     *     device pointers for a device tier, host addresses otherwise
     * @throws LayerNotResidentException unless the handle covers every layer (use {@link #blockTable(int)})
     */
    public long[] blockTable() {
        requireAllLayers("blockTable()");
        long[] t = new long[blocks.length];
        manager.fillAddresses(this, t, 0);
        return t;
    }

    /**
     * @param layer a layer of the handle's range
     * @return addresses of that layer's slice ({@code KvLayout.layerBytes()} bytes) in each
     *     covered block's top-tier slot, index 0 = {@link #fromBlock()}
     * @throws LayerNotResidentException if the layer is outside the handle's range
     */
    public long[] blockTable(int layer) {
        layerIndex(layer);
        long[] t = new long[blocks.length];
        manager.fillAddresses(this, t, layer * layerBytes);
        return t;
    }

    /**
     * @return the address of one block's slot in the top tier
     * @throws LayerNotResidentException unless the handle covers every layer
     */
    public long address(int logicalBlock) {
        requireAllLayers("address(block)");
        return manager.address(this, index(logicalBlock)) ;
    }

    /**
     * @return the address of one layer's slice of a block's slot in the top tier
     * @throws LayerNotResidentException if the layer is outside the handle's range
     */
    public long address(int logicalBlock, int layer) {
        layerIndex(layer);
        return manager.address(this, index(logicalBlock)) + layer * layerBytes;
    }

    /**
     * @return a host view of a block's bytes; for reading, or writing a private block
     * @throws UnsupportedOperationException when the top tier is not host accessible
     * @throws LayerNotResidentException     unless the handle covers every layer (use {@link #view(int, int)})
     */
    public MemorySegment view(int logicalBlock) {
        requireAllLayers("view(block)");
        return manager.view(this, index(logicalBlock));
    }

    /**
     * @return a host view of one layer's slice of a block ({@code KvLayout.layerBytes()} bytes,
     *     offset 0 = the layer's first byte); read-only unless the block is private
     * @throws UnsupportedOperationException when the top tier is not host accessible
     * @throws LayerNotResidentException     if the layer is outside the handle's range
     */
    public MemorySegment view(int logicalBlock, int layer) {
        layerIndex(layer);
        return manager.view(this, index(logicalBlock)).asSlice(layer * layerBytes, layerBytes);
    }

    /**
     * Copies {@code src} into a block at a byte offset, e.g. a new token's K or V.
     *
     * @throws SharedBlockWriteException if the block is shared or sealed
     * @throws LayerNotResidentException if the bytes reach outside the handle's layers
     */
    public void write(int logicalBlock, long offset, MemorySegment src) {
        checkBytes(offset, src.byteSize());
        manager.write(this, index(logicalBlock), offset, src);
    }

    /**
     * Copies bytes of a block from a byte offset into {@code dst}.
     *
     * @throws LayerNotResidentException if the bytes reach outside the handle's layers
     */
    public void read(int logicalBlock, long offset, MemorySegment dst) {
        checkBytes(offset, dst.byteSize());
        manager.read(this, index(logicalBlock), offset, dst);
    }

    /** @return the top tier, whose slots this handle's addresses point into */
    public Tier tier() {
        return top;
    }

    private int index(int logicalBlock) {
        int i = logicalBlock - fromBlock;
        if (i < 0 || i >= blocks.length) {
            throw new PositionOutOfRangeException("block " + logicalBlock + " outside this handle's blocks ["
                    + fromBlock + ", " + (fromBlock + blocks.length) + ")");
        }
        return i;
    }

    private int layerIndex(int layer) {
        if (layer < fromLayer || layer >= toLayer) {
            throw new LayerNotResidentException("layer " + layer + " is outside this handle's layers [" + fromLayer
                    + ", " + toLayer + "); its bytes need not be in the top tier");
        }
        return layer - fromLayer;
    }

    private void requireAllLayers(String what) {
        if (!allLayers()) {
            throw new LayerNotResidentException(what + " covers every layer but this handle makes only layers ["
                    + fromLayer + ", " + toLayer + ") resident; use the form that takes a layer");
        }
    }

    /** Checks that bytes {@code [offset, offset + length)} of a block lie within the handle's layers. */
    private void checkBytes(long offset, long length) {
        if (allLayers()) {
            return;
        }
        long lo = fromLayer * layerBytes;
        long hi = toLayer * layerBytes;
        if (offset < lo || length < 0 || offset > hi || length > hi - offset) {
            throw new LayerNotResidentException("bytes [" + offset + ", " + offset + " + " + length
                    + ") of a block reach outside this handle's layers [" + fromLayer + ", " + toLayer
                    + ") = bytes [" + lo + ", " + hi + ")");
        }
    }

    /**
     * Unpins the blocks; they may move after this.
     *
     * @throws DoubleReleaseException if already released
     */
    @Override
    public void close() {
        manager.release(this);
    }
}
