package io.kvcache.core;

import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierFailedException;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferFailedException;
import io.kvcache.core.transfer.TransferHandle;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.PriorityBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs committed copies: groups them into batches by wave and tier pair, hands each batch to a
 * {@link TransferEngine} once its sources are in place and its destinations free, and settles
 * each copy when its engine reports (publishing into persistent tiers, freeing promoted-from
 * slots, failing only what failed).
 *
 * <p>Threads: {@link #submit} is called with the manager lock held; batches start on the
 * dispatcher's own thread ({@code kvcache-dispatch}); completions run on the engine's threads
 * and take the manager lock briefly.
 */
final class CopyDispatcher {
    private static final System.Logger LOG = System.getLogger(CopyDispatcher.class.getName());

    private final Tier[] tiers;
    private final List<TransferEngine> engines;
    private final TransferEngine cpuEngine;
    private final ReentrantLock lock;
    private final SlotFences fences;
    private final BlockRegistry registry;
    private final PersistentTiers persistent;
    private final ExecutorService executor = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon()
            .name("kvcache-dispatch").unstarted(r));
    /** Copies handed over and not yet settled; failed by a close that times out. */
    @GuardedBy("manager lock")
    private final Set<PlannedCopy> inFlight = new HashSet<>();
    /** The copies in flight by their completion, for {@link #startOf}: read without the lock. */
    private final Map<CompletableFuture<?>, PlannedCopy> byCompletion = new ConcurrentHashMap<>();
    /** Batches whose inputs are complete, for the dispatcher's thread to start in {@link ReadyBatch} order. */
    private final PriorityBlockingQueue<ReadyBatch> ready = new PriorityBlockingQueue<>();
    @GuardedBy("manager lock")
    private long requests;
    @GuardedBy("manager lock")
    private long queued;

    CopyDispatcher(Tier[] tiers, List<TransferEngine> engines, ReentrantLock lock, SlotFences fences,
                   BlockRegistry registry, PersistentTiers persistent) {
        this.tiers = tiers;
        this.cpuEngine = CpuTransferEngine.withDefaults();
        List<TransferEngine> all = new ArrayList<>(engines);
        all.add(cpuEngine);
        this.engines = List.copyOf(all);
        this.lock = lock;
        this.fences = fences;
        this.registry = registry;
        this.persistent = persistent;
    }

    /** Groups a transaction's copies into batches and starts each once its inputs are ready. */
    @GuardedBy("manager lock")
    void submit(List<PlannedCopy> copies) {
        if (copies.isEmpty()) {
            return;
        }
        // one batch per wave, tier pair and byte range (a layer-slice copy's batch is that group of
        // layers'); by wave, and within one, copies to a lower tier first: they vacate the slots
        // later copies of the request wait for
        List<PlannedCopy> byWave = new ArrayList<>(copies);
        byWave.sort(Comparator.<PlannedCopy>comparingInt(m -> m.wave).thenComparing(m -> m.dstTier <= m.srcTier));
        Map<BatchKey, List<PlannedCopy>> groups = new LinkedHashMap<>();
        for (PlannedCopy m : byWave) {
            groups.computeIfAbsent(new BatchKey(m.wave, m.srcTier, m.dstTier, m.offset, m.length),
                    k -> new ArrayList<>()).add(m);
        }
        long request = requests++;
        for (List<PlannedCopy> group : groups.values()) {
            // what the batch waits for, each future once (a block's layer copies share theirs),
            // leaving out what is already complete
            Set<CompletableFuture<?>> deps = Collections.newSetFromMap(new IdentityHashMap<>());
            for (PlannedCopy m : group) {
                if (!m.srcReady.isDone()) {
                    deps.add(m.srcReady);
                }
                if (!m.dstFree.isDone()) {
                    deps.add(m.dstFree);
                }
            }
            inFlight.addAll(group);
            for (PlannedCopy m : group) {
                byCompletion.put(m.done, m);
            }
            ReadyBatch b = new ReadyBatch(request, group.getFirst().offset, queued++, group);
            if (deps.isEmpty()) {
                enqueue(b);
            } else {
                CompletableFuture.allOf(deps.toArray(CompletableFuture<?>[]::new)).handle((v, e) -> null)
                        .thenRun(() -> enqueue(b));
            }
        }
    }

    /**
     * A batch whose inputs are complete, waiting for the dispatcher's thread. Batches start in
     * the order of their requests, and within a request in the order of the bytes of the slot
     * they copy: a layer-by-layer restore whose later blocks waited for an eviction still starts
     * their layer 0 before the other blocks' last layers (a device link runs batches in the order
     * they are handed over, so the order here is the order layers land).
     */
    private record ReadyBatch(long request, long offset, long seq, List<PlannedCopy> group)
            implements Comparable<ReadyBatch> {
        @Override
        public int compareTo(ReadyBatch o) {
            int c = Long.compare(request, o.request);
            if (c == 0) {
                c = Long.compare(offset, o.offset);
            }
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    /** Queues a batch whose inputs are complete (failed inputs included: each copy checks its own). */
    private void enqueue(ReadyBatch b) {
        ready.add(b);
        try {
            executor.execute(this::startNext);
        } catch (RejectedExecutionException closed) {
            // closing: the copies stay in flight until close fails them
        }
    }

    /** Starts the first ready batch (one per {@link #enqueue}, so every queued batch is started). */
    private void startNext() {
        ReadyBatch b = ready.poll();
        if (b != null) {
            runBatch(b.group);
        }
    }

    /** Copies that may share a batch: the same wave, tier pair and byte range of each slot. */
    private record BatchKey(int wave, int srcTier, int dstTier, long offset, long length) {
    }

    /** Starts one batch; whatever goes wrong fails its copies, so that none is left in flight unseen. */
    private void runBatch(List<PlannedCopy> group) {
        try {
            startBatch(group);
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "could not start a batch of " + group.size() + " copies", t);
            for (PlannedCopy m : group) {
                if (!m.done.isDone()) {
                    fail(m, t);
                }
            }
        }
    }

    private void startBatch(List<PlannedCopy> group) {
        Tier src = tiers[group.getFirst().srcTier];
        Tier dst = tiers[group.getFirst().dstTier];
        List<PlannedCopy> ok = new ArrayList<>(group.size());
        for (PlannedCopy m : group) {
            if (m.srcReady.isCompletedExceptionally()) {
                fail(m, new TierFailedException("source bytes of block " + m.source.id + " were lost"));
            } else if (src.failed()) {
                fail(m, new TierFailedException("tier '" + src.name() + "' has failed"));
            } else if (!sourceTrusted(m)) {
                fail(m, new TierFailedException("block " + m.source.id + " failed its checksum in tier '"
                        + src.name() + "'"));
            } else {
                ok.add(m);
            }
        }
        if (ok.isEmpty()) {
            return;
        }
        List<BlockMove> bm = new ArrayList<>(ok.size());
        for (PlannedCopy m : ok) {
            bm.add(new BlockMove(m.srcSlot, m.dstSlot));
        }
        try {
            PlannedCopy first = ok.getFirst();
            TransferBatch batch = new TransferBatch(src, dst, bm, first.offset, first.length);
            TransferHandle handle;
            try {
                handle = engineFor(src, dst).submit(batch);
            } catch (UnsupportedOperationException e) {
                if (batch.wholeSlots()) {
                    throw e;
                }
                // an engine that copies only whole slots: the built-in engine copies the range
                handle = cpuEngine.submit(batch);
            }
            for (PlannedCopy m : ok) {
                m.started.complete(handle);
            }
            handle.completion().whenComplete((v, e) -> {
                Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
                List<PlannedCopy> copied = new ArrayList<>(ok.size());
                for (int i = 0; i < ok.size(); i++) {
                    PlannedCopy m = ok.get(i);
                    // an engine that names its failed moves fails only those
                    if (cause != null && (!(cause instanceof TransferFailedException tf) || tf.failed(i))) {
                        fail(m, cause);
                    } else {
                        copied.add(m);
                    }
                }
                finish(copied);
            });
        } catch (RuntimeException e) {
            for (PlannedCopy m : ok) {
                fail(m, e);
            }
        }
    }

    /**
     * @return whether a copy's source bytes may be read: a persistent tier's checksum must hold,
     *     checked once for all the layer copies of one block planned together
     */
    private boolean sourceTrusted(PlannedCopy m) {
        if (!persistent.isPersistent(m.srcTier)) {
            return true;
        }
        if (m.run == null) {
            return persistent.verify(m.srcTier, m.srcSlot);
        }
        if (m.run.sourceTrusted == null) {
            m.run.sourceTrusted = persistent.verify(m.srcTier, m.srcSlot);
        }
        return m.run.sourceTrusted;
    }

    /** Settles the copies of a batch that succeeded, under one hold of the manager lock. */
    private void finish(List<PlannedCopy> copied) {
        if (copied.isEmpty()) {
            return;
        }
        lock.lock();
        try {
            for (PlannedCopy m : copied) {
                // publish only while the block still lives in the slot the copy filled
                persistent.publishCopied(m);
                settleLocked(m);
                inFlight.remove(m);
            }
        } finally {
            lock.unlock();
        }
        for (PlannedCopy m : copied) {
            if (m.done.complete(null) && m.run != null) {
                m.run.copySettled();
            }
            byCompletion.remove(m.done);
        }
    }

    /** Frees the source slot of a settled promotion and unfreezes a copy-on-write source. */
    @GuardedBy("manager lock")
    private void settleLocked(PlannedCopy m) {
        if (m.freeSourceWhenSettled) {
            m.freeSourceWhenSettled = false;
            // freed once every other copy reading it (a layer slice still queued) has settled too
            fences.release(m.srcTier, m.srcSlot);
        }
        if (m.releaseWhenSettled != null) {
            Block src = m.releaseWhenSettled;
            m.releaseWhenSettled = null;
            registry.releaseCow(src);
        }
    }

    /** Settles a failed copy: its block becomes a reported miss, unless it has moved on since. */
    void fail(PlannedCopy m, Throwable e) {
        boolean first;
        lock.lock();
        try {
            settleLocked(m);
            if (m.block.dataReady == m.done && m.block.registered) {
                registry.markLost(m.block, m.srcTier);
            }
            if (m.layerSlice()) {
                for (int l = m.layer; l < m.layer + m.layerCount; l++) {
                    if (m.block.partialLayers != null && m.block.partialLayers[l] == m.done) {
                        m.block.partialLayers[l] = null;
                    }
                }
                if (m.block.registered && m.block.tier == m.srcTier && m.block.slot == m.srcSlot) {
                    // the slot read holds the block's only whole bytes: nobody can vouch for them now
                    registry.markLost(m.block, m.srcTier);
                }
            }
            inFlight.remove(m);
            first = !m.done.isDone();
        } finally {
            lock.unlock();
        }
        if (first) {
            LOG.log(System.Logger.Level.WARNING, "copy of block " + m.block.id + " from tier '"
                    + tiers[m.srcTier].name() + "' to '" + tiers[m.dstTier].name() + "' failed; the block is a miss: " + e);
        }
        m.started.complete(null);
        if (m.done.completeExceptionally(e) && m.run != null) {
            m.run.copySettled();
        }
        byCompletion.remove(m.done);
    }

    /**
     * @param completion a copy's {@link PlannedCopy#done}
     * @return that copy's {@link PlannedCopy#started} while it is in flight; null for any other
     *     future, or once the copy has settled
     */
    CompletableFuture<TransferHandle> startOf(CompletableFuture<?> completion) {
        PlannedCopy m = byCompletion.get(completion);
        return m == null ? null : m.started;
    }

    private TransferEngine engineFor(Tier src, Tier dst) {
        for (TransferEngine e : engines) {
            if (e.supports(src, dst)) {
                return e;
            }
        }
        return cpuEngine;
    }

    /** @return completions of the copies not yet settled */
    @GuardedBy("manager lock")
    List<CompletableFuture<?>> pending() {
        List<CompletableFuture<?>> out = new ArrayList<>(inFlight.size());
        for (PlannedCopy m : inFlight) {
            out.add(m.done);
        }
        return out;
    }

    /** @return the copies not yet settled */
    @GuardedBy("manager lock")
    List<PlannedCopy> inFlight() {
        return new ArrayList<>(inFlight);
    }

    /** Waits until every batch whose inputs are ready has been handed to its engine (for deterministic tests). */
    void drain() {
        CompletableFuture.runAsync(() -> { }, executor).join();
    }

    /** Stops the dispatcher thread and closes the engines. */
    void close() {
        executor.shutdownNow();
        for (TransferEngine e : engines) {
            try {
                e.close();
            } catch (RuntimeException ex) {
                LOG.log(System.Logger.Level.WARNING, "closing transfer engine: " + ex);
            }
        }
    }
}
