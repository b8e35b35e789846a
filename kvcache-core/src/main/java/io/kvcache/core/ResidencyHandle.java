package io.kvcache.core;

import io.kvcache.core.tier.Tier;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * A range of a sequence's blocks being made resident in the top tier, and pinned there until
 * {@link #close()}. After {@link #await()} the engine reads and writes the blocks' KV through
 * this handle or, for a device tier, through the {@link #blockTable() block table} of slot
 * addresses that its attention kernel takes.
 *
 * <p>Thread safety: {@link #await()}, {@link #read} and {@link #address} may be called from
 * any thread; {@link #close()} once.
 */
public final class ResidencyHandle implements AutoCloseable {
    private final KvCacheManager manager;
    private final Sequence sequence;
    private final int fromBlock;
    final Block[] blocks;
    private final CompletableFuture<Void> ready;
    private final Tier top;
    boolean closed;

    ResidencyHandle(KvCacheManager manager, Sequence sequence, int fromBlock, Block[] blocks,
                    CompletableFuture<Void> ready, Tier top) {
        this.manager = manager;
        this.sequence = sequence;
        this.fromBlock = fromBlock;
        this.blocks = blocks;
        this.ready = ready;
        this.top = top;
    }

    /** @return completes when every block's bytes are in the top tier; exceptionally if a block was lost */
    public CompletableFuture<Void> ready() {
        return ready;
    }

    /**
     * Waits until the blocks are resident. The time waited is counted in the cache's stats.
     *
     * @throws BlockLostException if a block's bytes could not be served
     */
    public void await() {
        if (ready.isDone() && !ready.isCompletedExceptionally()) {
            return;
        }
        long start = manager.beginWait();
        try {
            ready.join();
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

    /**
     * @return slot addresses of the covered blocks in the top tier, index 0 = {@link #fromBlock()}:
     *     device pointers for a device tier, host addresses otherwise
     */
    public long[] blockTable() {
        long[] t = new long[blocks.length];
        manager.fillAddresses(this, t);
        return t;
    }

    /** @return the address of one block's slot in the top tier */
    public long address(int logicalBlock) {
        return manager.address(this, index(logicalBlock));
    }

    /**
     * @return a host view of a block's bytes; for reading, or writing a private block
     * @throws UnsupportedOperationException when the top tier is not host accessible
     */
    public MemorySegment view(int logicalBlock) {
        return manager.view(this, index(logicalBlock));
    }

    /**
     * Copies {@code src} into a block at a byte offset, e.g. a new token's K or V.
     *
     * @throws SharedBlockWriteException if the block is shared or sealed
     */
    public void write(int logicalBlock, long offset, MemorySegment src) {
        manager.write(this, index(logicalBlock), offset, src);
    }

    /** Copies bytes of a block from a byte offset into {@code dst}. */
    public void read(int logicalBlock, long offset, MemorySegment dst) {
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
