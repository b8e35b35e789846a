package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.stats.PersistStats;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.Tier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Everything the manager does with persistent tiers: finding published blocks, admission,
 * publishing, verifying, unpublishing, and writing sealed blocks down to the first persistent
 * tier in the background (write-through, {@code checkpoint()}, close). The only place that
 * knows a tier is persistent.
 *
 * <p>Threads: every method but {@link #run()} is called with the manager lock held. The
 * write-through thread runs {@link #run()}: it takes the lock to pick blocks and to publish
 * them, and copies with it released.
 */
final class PersistentTiers implements Runnable {
    private static final System.Logger LOG = System.getLogger(PersistentTiers.class.getName());
    private static final int BATCH = 64;

    private final Tier[] tiers;
    private final ReentrantLock lock;
    private final SlotFences fences;
    private final long blockBytes;
    /** Runs an access to tier memory so that close cannot unmap it meanwhile. */
    private final Consumer<Runnable> access;
    private final PersistPolicy policy;
    /** Index of the first persistent tier, where write-through goes, or -1. */
    final int writeTier;
    /** Whether persistent tiers below the first one get a copy of what is written down to it. */
    private final boolean mirrors;
    private final int queueCapacity;
    private final ArrayDeque<Block> queue = new ArrayDeque<>();
    private final ArrayDeque<Checkpoint> checkpoints = new ArrayDeque<>();
    private final Condition work;
    private Thread thread;
    private boolean stopping;
    /** Whether the writer is copying a batch now. */
    private boolean writing;
    /** Completed once nothing is queued or being written. */
    private final List<CompletableFuture<Void>> idleWaiters = new ArrayList<>();
    private long queued;
    private long written;
    private long skippedFull;
    private long refused;
    private long failed;
    private long busyNanos;
    private long lagMax;
    private long lagSum;

    /** A {@code checkpoint()} request: blocks to write down, and the future to complete. */
    private record Checkpoint(List<Block> blocks, CompletableFuture<Integer> done) {
    }

    /** One block's copy into the persistent tier, as prepared under the lock. */
    private record Job(Block block, BlockKey key, BlockKey parent, int srcTier, int srcSlot,
                       CompletableFuture<Void> ready, CompletableFuture<?> dstFree, int dstSlot,
                       CompletableFuture<Void> reading, CompletableFuture<Void> writing) {
    }

    PersistentTiers(Tier[] tiers, ReentrantLock lock, SlotFences fences, long blockBytes, Consumer<Runnable> access,
                    PersistPolicy policy, int queueCapacity) {
        this.tiers = tiers;
        this.lock = lock;
        this.fences = fences;
        this.blockBytes = blockBytes;
        this.access = access;
        this.policy = policy;
        this.queueCapacity = queueCapacity;
        this.work = lock.newCondition();
        int first = -1;
        for (int t = 0; t < tiers.length && first < 0; t++) {
            if (tiers[t] instanceof PersistentTier) {
                first = t;
            }
        }
        this.writeTier = first;
        boolean below = false;
        for (int t = first + 1; first >= 0 && t < tiers.length; t++) {
            below |= tiers[t] instanceof PersistentTier;
        }
        this.mirrors = below;
    }

    /** Starts the write-through thread, when there is a persistent tier. */
    void start() {
        if (writeTier >= 0) {
            thread = Thread.ofPlatform().daemon().name("kvcache-write-through").start(this);
        }
    }

    boolean isPersistent(int t) {
        return tiers[t] instanceof PersistentTier;
    }

    private PersistentTier at(int t) {
        return (PersistentTier) tiers[t];
    }

    // ------------------------------------------------------------------ the manager's questions

    /** @return (tier, slot) packed as {@link SlotFences#key} of a published block with this key, or -1 */
    @GuardedBy("manager lock")
    long find(BlockKey key) {
        for (int t = 0; t < tiers.length; t++) {
            if (tiers[t] instanceof PersistentTier pt && !pt.failed()) {
                int slot = pt.lookup(key);
                if (slot >= 0) {
                    return SlotFences.key(t, slot);
                }
            }
        }
        return -1;
    }

    /**
     * Tells the persistent tiers which blocks of a prompt's chain the manager is about to look up,
     * so that a remote tier fetches them in one round trip. A tier is told only the keys no
     * persistent tier above it holds.
     */
    @GuardedBy("manager lock")
    void prefetch(List<BlockKey> chain) {
        List<BlockKey> rest = chain;
        for (int t = 0; t < tiers.length && !rest.isEmpty(); t++) {
            if (tiers[t] instanceof PersistentTier pt && !pt.failed()) {
                try {
                    pt.prefetch(rest);
                    if (t < tiers.length - 1) {
                        List<BlockKey> left = new ArrayList<>(rest.size());
                        for (BlockKey k : rest) {
                            if (!pt.contains(k)) {
                                left.add(k);
                            }
                        }
                        rest = left;
                    }
                } catch (RuntimeException e) {
                    LOG.log(System.Logger.Level.DEBUG, "prefetch from tier '" + pt.name() + "' failed: " + e);
                }
            }
        }
    }

    /** A free slot of tier {@code t} for a block (persistent tiers apply their admission to its key), or -1. */
    @GuardedBy("manager lock")
    int allocate(int t, Block forBlock) {
        return tiers[t] instanceof PersistentTier pt && forBlock.key != null ? pt.allocate(forBlock.key)
                : tiers[t].allocate();
    }

    /** Gives a slot back to its tier; a published one stays findable. */
    @GuardedBy("manager lock")
    void release(int t, int slot) {
        tiers[t].free(slot);
    }

    /** @return the slot of the first persistent tier holding this block's written-through copy, taking it; or -1 */
    @GuardedBy("manager lock")
    int takeWrittenThrough(Block b) {
        int slot = at(writeTier).lookup(b.key);
        if (slot < 0) {
            b.persisted = false;
        }
        return slot;
    }

    /** Publishes a sealed block that lives in a persistent tier once its bytes are in place. */
    @GuardedBy("manager lock")
    void publishWhenReady(Block b) {
        if (!b.hasSlot() || !isPersistent(b.tier)) {
            return;
        }
        PersistentTier pt = at(b.tier);
        CompletableFuture<Void> ready = b.dataReady;
        int tier = b.tier;
        int slot = b.slot;
        BlockKey key = b.key;
        ready.thenRun(() -> {
            lock.lock();
            try {
                if (!fences.tiersClosed() && holdsCopy(b, tier, slot, ready)) {
                    pt.publish(slot, key, b.parentKey);
                    b.persisted |= tier == writeTier;
                }
            } finally {
                lock.unlock();
            }
        });
    }

    /**
     * Whether (tier, slot) still holds the bytes {@code ready} put there, as the block's
     * residency or as the lower copy it kept when promoted out of the slot before the copy into
     * it settled. Publication follows the bytes, not where the block lives now.
     */
    private static boolean holdsCopy(Block b, int tier, int slot, CompletableFuture<Void> ready) {
        return b.registered && !b.lost
                && (b.tier == tier && b.slot == slot && b.dataReady == ready
                        || b.lowerTier == tier && b.lowerSlot == slot && b.lowerReady == ready);
    }

    /** Publishes a block a copy has just filled, while that slot still holds its bytes. */
    @GuardedBy("manager lock")
    void publishCopied(PlannedCopy m) {
        if (!isPersistent(m.dstTier)) {
            return;
        }
        try {
            if (m.block.key != null && holdsCopy(m.block, m.dstTier, m.dstSlot, m.done)) {
                at(m.dstTier).publish(m.dstSlot, m.block.key, m.block.parentKey);
                m.block.persisted |= m.dstTier == writeTier;
                if (m.dstTier == writeTier) {
                    enqueueMirror(m.block); // evicted into the first persistent tier: the tiers below get it too
                }
            }
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "could not publish block " + m.block.id
                    + " in tier '" + tiers[m.dstTier].name() + "': " + e);
        }
    }

    /**
     * @return false when the bytes of a slot of a persistent tier cannot be trusted: they fail
     *     their checksum (the slot is then quarantined), or the tier knows no checksum for them,
     *     so that a read could not tell wrong bytes from right ones; true otherwise
     */
    boolean verify(int t, int slot) {
        if (!(tiers[t] instanceof PersistentTier pt)) {
            return true;
        }
        try {
            return pt.checksumKnown(slot) && pt.verify(slot);
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Forgets the key published for a slot of a persistent tier (no-op for other tiers). */
    @GuardedBy("manager lock")
    void unpublish(int t, int slot) {
        if (tiers[t] instanceof PersistentTier pt) {
            pt.unpublish(slot);
        }
    }

    /** Unpublishes every persistent copy of a block that is being dropped for good. */
    @GuardedBy("manager lock")
    void unpublishAll(Block b) {
        if (b.hasSlot()) {
            unpublish(b.tier, b.slot);
        }
        if (b.hasLowerCopy()) {
            unpublish(b.lowerTier, b.lowerSlot);
        }
        if (b.persisted && b.key != null && b.tier != writeTier) {
            PersistentTier pt = at(writeTier);
            int held = pt.lookup(b.key);
            if (held >= 0) {
                pt.unpublish(held);
                pt.free(held);
            }
        }
    }

    // ------------------------------------------------------------------ write-through

    /** A block was sealed: queue it, unless the policy or the bounded queue says otherwise. */
    @GuardedBy("manager lock")
    void sealed(Block b) {
        if (b.hasSlot() && isPersistent(b.tier)) {
            publishWhenReady(b);
            if (b.tier == writeTier) {
                enqueueMirror(b);
            }
        } else if (policy == PersistPolicy.WRITE_THROUGH) {
            enqueue(b);
        }
    }

    /** A cached block was found again by another request. */
    @GuardedBy("manager lock")
    void reused(Block b) {
        if (policy == PersistPolicy.WRITE_THROUGH_SELECTIVE) {
            enqueue(b);
        }
    }

    private void enqueue(Block b) {
        if (writeTier >= 0 && !b.persisted) {
            queueForWriter(b);
        }
    }

    /** Queues a block that lives in the first persistent tier for a copy into the persistent tiers below it. */
    private void enqueueMirror(Block b) {
        if (mirrors) {
            queueForWriter(b);
        }
    }

    /** Hands a sealed, live block not yet queued to the writer, unless the queue is full (counted) or stopping. */
    private void queueForWriter(Block b) {
        if (b.persistQueued || b.key == null || b.lost || stopping) {
            return;
        }
        if (queue.size() >= queueCapacity) {
            skippedFull++;
            return;
        }
        b.persistQueued = true;
        queue.add(b);
        queued++;
        work.signal();
    }

    /** Queues every sealed block not yet written down; the future completes with the count written. */
    @GuardedBy("manager lock")
    CompletableFuture<Integer> checkpoint(Collection<Block> all) {
        if (writeTier < 0) {
            return CompletableFuture.completedFuture(0);
        }
        List<Block> sealed = new ArrayList<>();
        for (Block b : all) {
            // persisted ones too: the tier may have dropped a copy since (the writer asks it)
            if (b.key != null && !b.lost) {
                sealed.add(b);
            }
        }
        Checkpoint cp = new Checkpoint(sealed, new CompletableFuture<>());
        checkpoints.add(cp);
        work.signal();
        return cp.done;
    }

    /** @return completes once nothing is queued for the persistent tier or being written to it */
    @GuardedBy("manager lock")
    CompletableFuture<Void> idle() {
        if (writeTier < 0 || thread == null || (!writing && queue.isEmpty() && checkpoints.isEmpty())) {
            return CompletableFuture.completedFuture(null);
        }
        CompletableFuture<Void> f = new CompletableFuture<>();
        idleWaiters.add(f);
        return f;
    }

    @GuardedBy("manager lock")
    private void signalIdleIfSo() {
        if (!writing && queue.isEmpty() && checkpoints.isEmpty()) {
            for (CompletableFuture<Void> f : idleWaiters) {
                f.complete(null);
            }
            idleWaiters.clear();
        }
    }

    /** Asks the write-through thread to stop once its current batch is written. */
    @GuardedBy("manager lock")
    void stop() {
        stopping = true;
        work.signal();
    }

    /** Waits for the write-through thread to end, at most {@code millis}. */
    void join(long millis) throws InterruptedException {
        if (thread != null) {
            thread.join(Math.max(1, millis));
        }
    }

    @GuardedBy("manager lock")
    PersistStats stats() {
        return new PersistStats(writeTier < 0 ? "none" : policy.name(), queued, written, written * blockBytes,
                skippedFull, refused, failed, queue.size(), busyNanos, lagMax, written == 0 ? 0 : lagSum / written);
    }

    /** The write-through thread: drains checkpoints first, then the queue, in batches. */
    @Override
    public void run() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(blockBytes, 4096);
            while (true) {
                List<Block> batch = new ArrayList<>();
                Checkpoint cp = null;
                lock.lock();
                try {
                    while (!stopping && queue.isEmpty() && checkpoints.isEmpty()) {
                        work.awaitUninterruptibly();
                    }
                    if (!checkpoints.isEmpty()) {
                        cp = checkpoints.poll();
                        batch.addAll(cp.blocks());
                    } else if (stopping) {
                        return;
                    } else {
                        while (batch.size() < BATCH && !queue.isEmpty()) {
                            Block b = queue.poll();
                            b.persistQueued = false;
                            batch.add(b);
                        }
                    }
                    writing = true;
                } finally {
                    lock.unlock();
                }
                int n = 0;
                try {
                    // a batch takes one slot of the persistent tier per block at once: chunks of at most
                    // half its slots, so that a tier of few slots (a remote tier's staging) refuses none
                    int chunk = Math.max(1, Math.min(BATCH, tiers[writeTier].slotCount() / 2));
                    for (int i = 0; i < batch.size(); i += chunk) {
                        n += writeDown(batch.subList(i, Math.min(batch.size(), i + chunk)), bounce);
                    }
                } catch (RuntimeException e) {
                    LOG.log(System.Logger.Level.WARNING, "write-through batch failed: " + e);
                } finally {
                    lock.lock();
                    try {
                        writing = false;
                        signalIdleIfSo();
                    } finally {
                        lock.unlock();
                    }
                }
                if (cp != null) {
                    cp.done().complete(n);
                }
            }
        } finally {
            lock.lock();
            try {
                for (Checkpoint cp : checkpoints) {
                    cp.done().complete(0);
                }
                checkpoints.clear();
                queue.clear();
                writing = false;
                signalIdleIfSo();
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Copies sealed blocks into fresh slots of the first persistent tier and publishes them. The
     * block stays where it is; its source slot is fenced as read (so it is not overwritten
     * meanwhile) and the destination slot as written, as any copy's are.
     *
     * @return blocks written
     */
    private int writeDown(List<Block> batch, MemorySegment bounce) {
        PersistentTier pt = at(writeTier);
        List<Job> jobs = new ArrayList<>(batch.size());
        lock.lock();
        try {
            if (fences.tiersClosed() || pt.failed()) {
                return 0;
            }
            for (Block b : batch) {
                if (b.key == null || b.lost || !b.registered) {
                    continue;
                }
                Block holder = b.hasSlot() ? b : b.cowFrom;
                if (holder == null || !holder.hasSlot() || holder.lost || tiers[holder.tier].failed()) {
                    continue;
                }
                boolean inFirst = holder.tier == writeTier;
                if (isPersistent(holder.tier) && !inFirst) {
                    continue;
                }
                if (inFirst || pt.contains(b.key)) {
                    b.persisted = true;
                    if (mirrors) {
                        // in the first persistent tier already: only the tiers below need a copy
                        CompletableFuture<Void> reading = new CompletableFuture<>();
                        fences.addUse(holder.tier, holder.slot, reading);
                        jobs.add(new Job(b, b.key, b.parentKey, holder.tier, holder.slot, holder.dataReady,
                                Block.DONE, -1, reading, Block.DONE));
                    }
                    continue;
                }
                int slot = pt.allocate(b.key);
                if (slot < 0) {
                    refused++;
                    continue;
                }
                CompletableFuture<Void> reading = new CompletableFuture<>();
                CompletableFuture<Void> writing = new CompletableFuture<>();
                CompletableFuture<?> dstFree = fences.get(writeTier, slot);
                fences.addUse(holder.tier, holder.slot, reading);
                fences.addUse(writeTier, slot, writing);
                jobs.add(new Job(b, b.key, b.parentKey, holder.tier, holder.slot, holder.dataReady, dstFree, slot,
                        reading, writing));
            }
        } finally {
            lock.unlock();
        }
        int n = 0;
        for (Job j : jobs) {
            if (j.dstSlot() < 0) {
                mirrorOnly(j, bounce);
                continue;
            }
            long t0 = System.nanoTime();
            boolean copied = false;
            boolean mirror = false;
            try {
                j.ready().join();
                if (!j.dstFree().isDone()) {
                    j.dstFree().handle((v, e) -> null).join();
                }
                access.accept(() -> {
                    tiers[j.srcTier()].read(j.srcSlot(), 0, bounce);
                    pt.write(j.dstSlot(), 0, bounce);
                });
                copied = true;
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.DEBUG, "write-through of block " + j.block().id + " failed: " + e);
            } finally {
                j.reading().complete(null);
            }
            lock.lock();
            try {
                Block b = j.block();
                if (copied && !fences.tiersClosed() && b.registered && !b.lost && j.key().equals(b.key)) {
                    pt.publish(j.dstSlot(), j.key(), j.parent());
                    b.persisted = true;
                    mirror = true;
                    written++;
                    n++;
                    long lag = System.nanoTime() - b.sealedNanos;
                    lagMax = Math.max(lagMax, lag);
                    lagSum += lag;
                } else if (!copied) {
                    failed++;
                }
            } catch (RuntimeException e) {
                failed++;
                LOG.log(System.Logger.Level.WARNING, "could not publish block " + j.block().id + " in tier '"
                        + pt.name() + "': " + e);
            } finally {
                try {
                    if (!fences.tiersClosed()) {
                        // a published slot stays findable after the free; an unpublished one is simply free
                        pt.free(j.dstSlot());
                    }
                } finally {
                    busyNanos += System.nanoTime() - t0;
                    lock.unlock();
                }
                j.writing().complete(null);
            }
            if (mirror) {
                mirror(j, bounce);
            }
        }
        return n;
    }

    /** Reads a block that needs copies only in the tiers below the first persistent one, and writes them. */
    private void mirrorOnly(Job j, MemorySegment bounce) {
        boolean read = false;
        try {
            j.ready().join();
            access.accept(() -> tiers[j.srcTier()].read(j.srcSlot(), 0, bounce));
            read = true;
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "reading block " + j.block().id + " to copy it down failed: " + e);
        } finally {
            j.reading().complete(null);
        }
        if (read) {
            mirror(j, bounce);
        }
    }

    /**
     * Writes a block just written down to the first persistent tier into every persistent tier
     * below it too (a shared remote tier under a local disk), from the bounce buffer that still
     * holds its bytes. A tier that has no slot for it, or fails, is skipped: the block is in the
     * first one anyway.
     */
    private void mirror(Job j, MemorySegment bounce) {
        for (int d = writeTier + 1; d < tiers.length; d++) {
            if (!(tiers[d] instanceof PersistentTier pd)) {
                continue;
            }
            int slot;
            CompletableFuture<?> dstFree;
            CompletableFuture<Void> writing = new CompletableFuture<>();
            lock.lock();
            try {
                if (fences.tiersClosed() || pd.failed() || pd.contains(j.key()) || (slot = pd.allocate(j.key())) < 0) {
                    continue;
                }
                dstFree = fences.get(d, slot);
                fences.addUse(d, slot, writing);
            } finally {
                lock.unlock();
            }
            boolean copied = false;
            try {
                if (!dstFree.isDone()) {
                    dstFree.handle((v, e) -> null).join();
                }
                access.accept(() -> pd.write(slot, 0, bounce));
                copied = true;
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.DEBUG, "write-through of block " + j.block().id + " into tier '"
                        + pd.name() + "' failed: " + e);
            }
            lock.lock();
            try {
                Block b = j.block();
                if (copied && !fences.tiersClosed() && b.registered && !b.lost && j.key().equals(b.key)) {
                    pd.publish(slot, j.key(), j.parent());
                }
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "could not publish block " + j.block().id + " in tier '"
                        + pd.name() + "': " + e);
            } finally {
                try {
                    if (!fences.tiersClosed()) {
                        pd.free(slot);
                    }
                } finally {
                    lock.unlock();
                    writing.complete(null);
                }
            }
        }
    }
}
