package io.kvcache.core;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Access to tier memory on behalf of residency handles and {@code readBlock}: block tables,
 * views, reads and writes. Checks a handle's state under the manager lock, waits outside it for
 * copies still using a slot, and touches memory under the close guard's read lock, so that
 * {@code close()} cannot unmap it meanwhile.
 *
 * <p>Threads: any; each method takes the manager lock itself, except {@link #prepareRead}, whose
 * caller holds it.
 */
final class HandleAccess {
    private final Tier[] tiers;
    private final KvLayout layout;
    private final ReentrantLock lock;
    private final ReentrantReadWriteLock closeGuard;
    private final SlotFences fences;
    private final BlockRegistry registry;
    private final PersistentTiers persistent;
    /** Throws {@link InvalidHandleException} once the manager is closed; caller holds the lock. */
    private final Runnable checkOpen;

    /** Where a block's bytes are to be read from, as seen under the lock. */
    record Source(Block block, int tier, int slot, CompletableFuture<Void> ready, CompletableFuture<Void> reading) {
    }

    HandleAccess(Tier[] tiers, KvLayout layout, ReentrantLock lock, ReentrantReadWriteLock closeGuard,
                 SlotFences fences, BlockRegistry registry, PersistentTiers persistent, Runnable checkOpen) {
        this.tiers = tiers;
        this.layout = layout;
        this.lock = lock;
        this.closeGuard = closeGuard;
        this.fences = fences;
        this.registry = registry;
        this.persistent = persistent;
        this.checkOpen = checkOpen;
    }

    @GuardedBy("manager lock")
    private Block pinnedBlock(ResidencyHandle h, int i) {
        checkOpen.run();
        if (h.closed) {
            throw new InvalidHandleException("residency handle is closed");
        }
        return h.blocks[i];
    }

    /** Runs an access to tier memory so that close cannot unmap it meanwhile. */
    void guarded(Runnable access) {
        closeGuard.readLock().lock();
        try {
            if (fences.tiersClosed()) {
                throw new InvalidHandleException("the cache manager is closed");
            }
            access.run();
        } finally {
            closeGuard.readLock().unlock();
        }
    }

    /** Fills in the top-tier address of each pinned block's slot plus {@code add} bytes. */
    void fillAddresses(ResidencyHandle h, long[] out, long add) {
        lock.lock();
        try {
            for (int i = 0; i < out.length; i++) {
                pinnedBlock(h, i);
                out[i] = tiers[0].address(h.slots[i]) + add;
            }
        } finally {
            lock.unlock();
        }
    }

    long address(ResidencyHandle h, int i) {
        lock.lock();
        try {
            pinnedBlock(h, i);
            return tiers[0].address(h.slots[i]);
        } finally {
            lock.unlock();
        }
    }

    /**
     * A view of a pinned block's slot: read-only for a shared, sealed or frozen block (its bytes
     * are other sequences' K/V too). Waits for copies still reading the slot, so that bytes
     * written through the view cannot reach them.
     */
    MemorySegment view(ResidencyHandle h, int i) {
        MemorySegment v;
        CompletableFuture<?> busy;
        lock.lock();
        try {
            Block b = pinnedBlock(h, i);
            v = tiers[0].view(h.slots[i]);
            if (b.immutable()) {
                return v.asReadOnly();
            }
            busy = fences.get(0, b.slot);
        } finally {
            lock.unlock();
        }
        awaitQuietly(busy);
        return v;
    }

    void write(ResidencyHandle h, int i, long offset, MemorySegment src) {
        int slot;
        CompletableFuture<?> busy;
        lock.lock();
        try {
            Block b = pinnedBlock(h, i);
            if (b.immutable()) {
                throw new SharedBlockWriteException("block " + (h.fromBlock() + i) + " is shared ("
                        + (b.key != null ? "sealed under its content key" : b.refCount > 1 ? b.refCount
                        + " references" : "frozen: " + b.cowReaders + " copy-on-write copies of it are still to be"
                        + " made") + "); only a sequence's private blocks are written");
            }
            Tier.checkRange(tiers[0], offset, src.byteSize());
            slot = h.slots[i];
            busy = fences.get(0, slot);
        } finally {
            lock.unlock();
        }
        // a copy still reading the slot (a fork's copy) gets the bytes it was promised
        awaitQuietly(busy);
        guarded(() -> tiers[0].write(slot, offset, src));
    }

    void read(ResidencyHandle h, int i, long offset, MemorySegment dst) {
        int slot;
        lock.lock();
        try {
            pinnedBlock(h, i);
            slot = h.slots[i];
        } finally {
            lock.unlock();
        }
        guarded(() -> tiers[0].read(slot, offset, dst));
    }

    private static void awaitQuietly(CompletableFuture<?> f) {
        if (!f.isDone()) {
            f.handle((v, e) -> null).join();
        }
    }

    /**
     * First half of {@code readBlock}, under the lock: finds where the block's bytes are and
     * fences that slot against reuse until the read ends.
     *
     * @return where to read, or null when the block was never written (then {@code dst} holds zeros)
     * @throws BlockLostException when the block is a known miss
     */
    @GuardedBy("manager lock")
    Source prepareRead(Sequence s, int logicalBlock, MemorySegment dst) {
        if (dst.byteSize() < layout.blockBytes()) {
            throw new IllegalArgumentException("destination of " + dst.byteSize()
                    + " bytes is smaller than a block of " + layout.blockBytes() + " bytes");
        }
        Block b = s.blocks.get(logicalBlock);
        Block holder = b.hasSlot() ? b : b.cowFrom;
        if (b.lost || (holder != null && holder.lost)) {
            throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id + " was lost",
                    logicalBlock, null);
        }
        if (holder == null) {
            dst.asSlice(0, layout.blockBytes()).fill((byte) 0);
            return null;
        }
        CompletableFuture<Void> reading = new CompletableFuture<>();
        fences.addUse(holder.tier, holder.slot, reading);
        return new Source(b, holder.tier, holder.slot, holder.dataReady, reading);
    }

    /** Second half of {@code readBlock}, outside the lock: waits for the bytes, verifies and copies them. */
    void finishRead(Sequence s, int logicalBlock, Source src, MemorySegment dst) {
        try {
            src.ready().join();
            Tier tier = tiers[src.tier()];
            if (!persistent.verify(src.tier(), src.slot())) {
                markLost(src.block(), src.tier());
                throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id
                        + " failed its checksum in tier '" + tier.name() + "'", logicalBlock, null);
            }
            try {
                guarded(() -> tier.read(src.slot(), 0, dst.asSlice(0, layout.blockBytes())));
            } catch (InvalidHandleException e) {
                throw e;
            } catch (KvCacheException e) {
                markLost(src.block(), src.tier());
                throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id
                        + " could not be read from tier '" + tier.name() + "'", logicalBlock, e);
            }
        } catch (CompletionException e) {
            throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id + " was lost",
                    logicalBlock, e.getCause());
        } finally {
            src.reading().complete(null);
        }
    }

    private void markLost(Block b, int tier) {
        lock.lock();
        try {
            registry.markLost(b, tier);
        } finally {
            lock.unlock();
        }
    }
}
