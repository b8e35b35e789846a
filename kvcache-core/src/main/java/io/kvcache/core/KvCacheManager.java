package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.block.PrefixHasher;
import io.kvcache.core.cost.CostModel;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferHandle;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * Pages the KV blocks of many sequences across an ordered list of tiers (fastest first).
 *
 * <h2>Design</h2>
 *
 * <p><b>Sharing.</b> A sequence's K/V lives in fixed-size blocks. A full block whose K/V is
 * written is sealed under a chained SHA-256 of its prefix, the layout, the model and the tenant
 * salt, and shared by reference count with every sequence of the same salt and prefix
 * ({@link SequenceTable}, {@link BlockRegistry}). A shared partial block is copy-on-write: the
 * appending sequence gets a block that copies it when first made resident, and the source is
 * frozen until then.
 *
 * <p><b>Placement.</b> {@link #ensureResident} pins blocks in the top tier. Room is made by the
 * eviction policy's candidates leaving: a block with a lower copy falls back to it, others are
 * demoted to the next tier with room, cascading down, and a cached block nobody holds is dropped
 * when no lower tier takes it ({@link ResidencyPlanner}).
 *
 * <p><b>The transaction.</b> Each request's changes are applied at once under the lock in a
 * {@link ResidencyTxn} and undone in reverse order if the request cannot be met, so an
 * {@link OutOfCacheSpaceException} leaves the cache as it was. On commit, the copies go to the
 * {@link CopyDispatcher} in batches, one per wave and tier pair, each batch one call of a
 * {@link TransferEngine}.
 *
 * <p><b>Fences and lower copies.</b> Each slot has a fence that completes when no copy uses it
 * ({@link SlotFences}); each block a future for "bytes in place". A slot is never reused,
 * written or freed before its fence, and a block never read before its bytes are in place. A
 * sealed block promoted out of a slot keeps the slot as its lower copy ({@link LowerCopies}).
 *
 * <p><b>Persistence.</b> Sealed blocks are written down to the first persistent tier in the
 * background, and found there by the next process ({@link PersistentTiers}).
 *
 * <p><b>Threads.</b> Every public method may be called from any thread. Metadata is guarded by
 * one lock that is never held while waiting for a copy. Batches start on the dispatcher's
 * thread, complete on the engines' threads, and write-through runs on a thread of its own. Handle
 * accesses to tier memory run under a read lock that {@link #close()} takes exclusively before
 * it closes the tiers. The normative description is {@code docs/residency-protocol.md}.
 *
 * <p><b>Failure.</b> Bad input gets a specific exception and changes nothing. A copy that fails
 * makes its block a reported miss ({@link BlockLostException}), never wrong bytes.
 */
public final class KvCacheManager implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(KvCacheManager.class.getName());

    private final KvLayout layout;
    private final String modelId;
    private final Tier[] tiers;
    private final EvictionPolicy policy;
    private final boolean persistOnClose;
    private final Duration closeTimeout;
    private final ReentrantLock lock = new ReentrantLock();
    /**
     * Held shared by every handle operation while it touches tier memory, and exclusively by
     * {@link #close()} while it closes the tiers: no access runs on unmapped memory.
     */
    private final ReentrantReadWriteLock closeGuard = new ReentrantReadWriteLock();
    private final SlotFences fences;
    private final CacheCounters counters;
    private final PrefetchTracker prefetch;
    private final PersistentTiers persistent;
    private final LowerCopies lowerCopies;
    private final PartialSlots partial;
    private final BlockRegistry registry;
    private final CopyDispatcher dispatcher;
    private final SequenceTable sequences;
    private final ResidencyPlanner planner;
    private final HandleAccess access;
    @GuardedBy("manager lock")
    private boolean closed;

    private KvCacheManager(Builder b) {
        this.layout = b.layout;
        this.modelId = b.modelId;
        this.tiers = b.tiers.toArray(Tier[]::new);
        this.policy = b.policy;
        this.persistOnClose = b.persistOnClose;
        this.closeTimeout = b.closeTimeout;
        int n = tiers.length;
        this.fences = new SlotFences(tiers, lock);
        this.counters = new CacheCounters(n, layout.blockBytes());
        this.prefetch = new PrefetchTracker();
        this.persistent = new PersistentTiers(tiers, lock, fences, layout.blockBytes(), this::guardedAccess,
                b.persistPolicy, b.persistQueueBlocks);
        this.lowerCopies = new LowerCopies(n, fences, persistent, counters, policy);
        this.partial = new PartialSlots(fences, layout.layers());
        this.registry = new BlockRegistry(fences, lowerCopies, persistent, prefetch, counters, policy, partial);
        this.dispatcher = new CopyDispatcher(tiers, b.engines, lock, fences, registry, persistent);
        this.sequences = new SequenceTable(this, layout, modelId, b.costModel, policy, registry, persistent, counters);
        this.planner = new ResidencyPlanner(tiers, fences, lowerCopies, registry, persistent, prefetch, counters,
                policy, dispatcher, sequences, b.prefetchLookahead, partial, layout.layers(),
                layersPerCopy(layout, b.layerCopyBytes));
        this.access = new HandleAccess(tiers, layout, lock, closeGuard, fences, registry, persistent, this::checkOpen);
        persistent.start();
    }

    /** Bytes a layer-range request copies together at least, by default: see {@link Builder#layerCopyBytes}. */
    public static final long DEFAULT_LAYER_COPY_BYTES = 256L << 10;

    /** @return the layers one copy of a layer-range request brings at most: enough for {@code bytes} */
    static int layersPerCopy(KvLayout layout, long bytes) {
        long per = (bytes + layout.layerBytes() - 1) / layout.layerBytes();
        return (int) Math.max(1, Math.min(layout.layers(), per));
    }

    /**
     * @param layout the KV layout; every tier's slot size must equal {@link KvLayout#blockBytes()}
     * @return a builder
     */
    public static Builder builder(KvLayout layout) {
        return new Builder(layout);
    }

    /** Builds a {@link KvCacheManager}. */
    public static final class Builder {
        private final KvLayout layout;
        private final List<Tier> tiers = new ArrayList<>();
        private final List<TransferEngine> engines = new ArrayList<>();
        private String modelId = "model";
        private EvictionPolicy policy = EvictionPolicy.lru();
        private int prefetchLookahead = 64;
        private CostModel costModel;
        private boolean persistOnClose = true;
        private Duration closeTimeout = Duration.ofSeconds(30);
        private PersistPolicy persistPolicy = PersistPolicy.WRITE_THROUGH;
        private int persistQueueBlocks = 4096;
        private long layerCopyBytes = DEFAULT_LAYER_COPY_BYTES;

        private Builder(KvLayout layout) {
            this.layout = Objects.requireNonNull(layout, "layout");
        }

        /** @param modelId identifies the weights; enters every content key */
        public Builder modelId(String modelId) {
            this.modelId = Objects.requireNonNull(modelId, "modelId");
            return this;
        }

        /** Adds a tier below those added before (fastest first). The manager closes it. */
        public Builder tier(Tier tier) {
            tiers.add(Objects.requireNonNull(tier, "tier"));
            return this;
        }

        /** Adds a transfer engine, tried in order before the built-in CPU engine. */
        public Builder transferEngine(TransferEngine engine) {
            engines.add(Objects.requireNonNull(engine, "engine"));
            return this;
        }

        /** @param policy which block leaves a full tier; default {@link EvictionPolicy#lru()} */
        public Builder evictionPolicy(EvictionPolicy policy) {
            this.policy = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /** @param blocks most blocks one {@link KvCacheManager#prefetch} call promotes, >= 0 (default 64) */
        public Builder prefetchLookaheadBlocks(int blocks) {
            if (blocks < 0) {
                throw new IllegalArgumentException("prefetch lookahead must be >= 0, was " + blocks);
            }
            this.prefetchLookahead = blocks;
            return this;
        }

        /**
         * @param model reload-or-recompute costs; with it, a prefix block held in a tier whose
         *              reload costs more than recomputing its tokens is not reused (the engine
         *              recomputes from there). Default: none, every cached block is reused.
         */
        public Builder costModel(CostModel model) {
            this.costModel = Objects.requireNonNull(model, "model");
            return this;
        }

        /**
         * @param persist whether {@link KvCacheManager#close()} copies sealed blocks still held in
         *                volatile tiers into the first persistent tier, so that the next process
         *                finds them (default true; no effect without a persistent tier)
         */
        public Builder persistOnClose(boolean persist) {
            this.persistOnClose = persist;
            return this;
        }

        /**
         * @param policy when sealed blocks are written down to the first persistent tier (default
         *               {@link PersistPolicy#WRITE_THROUGH}; no effect without a persistent tier)
         */
        public Builder persistPolicy(PersistPolicy policy) {
            this.persistPolicy = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /**
         * @param blocks most blocks waiting to be written through; a block sealed while the queue
         *               is full is skipped and counted, never waited for (default 4096); positive
         */
        public Builder persistQueueBlocks(int blocks) {
            if (blocks <= 0) {
                throw new IllegalArgumentException("write-through queue must hold at least one block, was " + blocks);
            }
            this.persistQueueBlocks = blocks;
            return this;
        }

        /**
         * @param bytes how many bytes of a block one copy brings, at least, when a request for a
         *              range of layers ({@link KvCacheManager#ensureResident(Sequence, int, int, int, int)})
         *              copies several of its layers: consecutive layers are copied together, in
         *              aligned groups of {@code ceil(bytes / layer bytes)} layers, as one byte range
         *              of each slot. Each group is one batch, so an engine overlapping compute with
         *              the restore waits for a group rather than a layer, while the copies are fewer
         *              and larger (a transfer engine's cost per copy, a link's rate for small
         *              copies). A request for single layers copies single layers whatever this is.
         *              Default {@value #DEFAULT_LAYER_COPY_BYTES} (256 KiB); positive.
         */
        public Builder layerCopyBytes(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("bytes per layer copy must be positive, was " + bytes);
            }
            this.layerCopyBytes = bytes;
            return this;
        }

        /**
         * @param timeout longest {@link KvCacheManager#close()} waits for copies in flight, and
         *                then for handle operations in progress, before it fails what is left and
         *                closes the tiers (default 30 s); positive
         */
        public Builder closeTimeout(Duration timeout) {
            Objects.requireNonNull(timeout, "timeout");
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("close timeout must be positive, was " + timeout);
            }
            this.closeTimeout = timeout;
            return this;
        }

        /**
         * Builds the manager. A refused build closes the tiers and engines it was given (the
         * manager would have owned them), so that a disk tier's directory is not left locked.
         *
         * @throws IllegalArgumentException  with no tier, or a tier added twice, or a cost model
         *                                   that does not cover every tier
         * @throws LayoutMismatchException   when a tier's slot size is not the layout's block size
         */
        public KvCacheManager build() {
            try {
                validate();
            } catch (RuntimeException e) {
                for (Tier t : tiers) {
                    try {
                        t.close();
                    } catch (RuntimeException suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
                for (TransferEngine en : engines) {
                    try {
                        en.close();
                    } catch (RuntimeException suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
                throw e;
            }
            return new KvCacheManager(this);
        }

        private void validate() {
            if (tiers.isEmpty()) {
                throw new IllegalArgumentException("a cache needs at least one tier");
            }
            for (int i = 0; i < tiers.size(); i++) {
                Tier t = tiers.get(i);
                if (t.slotBytes() != layout.blockBytes()) {
                    throw new LayoutMismatchException("tier '" + t.name() + "' has slots of " + t.slotBytes()
                            + " bytes but the layout's blocks are " + layout.blockBytes() + " bytes");
                }
                if (t.layout() != null && !t.layout().equals(layout)) {
                    throw new LayoutMismatchException("tier '" + t.name() + "' was made for layout " + t.layout()
                            + " but the cache's layout is " + layout + " (same block size, different shape)");
                }
                for (int j = 0; j < i; j++) {
                    if (tiers.get(j) == t) {
                        throw new IllegalArgumentException("tier '" + t.name() + "' added twice");
                    }
                }
                if (t instanceof PersistentTier pt && pt.modelId() != null && !pt.modelId().equals(modelId)) {
                    throw new IllegalArgumentException("tier '" + t.name() + "' holds KV of model '" + pt.modelId()
                            + "' but the manager's modelId is '" + modelId + "'; give the builder modelId(\""
                            + pt.modelId() + "\") or open the tier for this model");
                }
            }
            if (tiers.getFirst() instanceof PersistentTier) {
                throw new IllegalArgumentException("tier '" + tiers.getFirst().name() + "' is persistent and"
                        + " cannot be the top tier: the engine reads and writes KV in the top tier's slots;"
                        + " put a device or host tier above it");
            }
            if (costModel != null && costModel.tierCount() != tiers.size()) {
                throw new IllegalArgumentException("the cost model covers " + costModel.tierCount()
                        + " tiers but the cache has " + tiers.size());
            }
        }
    }

    /** @return the KV layout */
    public KvLayout layout() {
        return layout;
    }

    /** @return the tiers, fastest first */
    public List<Tier> tiers() {
        return List.of(tiers);
    }

    /** The block registry, for the invariant checker of the tests in this package. */
    BlockRegistry registry() {
        return registry;
    }

    /** The partial top-tier slots, for the invariant checker of the tests in this package. */
    PartialSlots partialSlots() {
        return partial;
    }

    /** The copy dispatcher, for the tests in this package. */
    CopyDispatcher dispatcherForTests() {
        return dispatcher;
    }

    /** The open sequences, for the invariant checker of the tests in this package. */
    SequenceTable sequenceTable() {
        return sequences;
    }

    <T> T locked(Supplier<T> s) {
        lock.lock();
        try {
            return s.get();
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ sequences

    /**
     * Opens a sequence with a prompt, reusing cached blocks of the longest matching prefix of
     * full blocks (from any tier, persistent tiers included; with a {@link CostModel}, only from
     * tiers whose reload beats recompute). At least one prompt token is left to compute so the
     * engine gets logits for the last one.
     *
     * @param tenantSalt blocks are shared only between equal salts; may be empty, not null
     * @param prompt     prompt token ids; may be empty
     * @return the sequence; {@link Sequence#cachedTokens()} tells how many leading tokens need no prefill
     */
    public Sequence open(byte[] tenantSalt, int[] prompt) {
        Objects.requireNonNull(tenantSalt, "tenantSalt");
        Objects.requireNonNull(prompt, "prompt");
        byte[] salt = tenantSalt.clone();
        int[] tokens = prompt.clone();
        int bt = layout.blockTokens();
        int full = tokens.length / bt;
        // hash outside the lock: SHA-256 of a long prompt is the costly part of open
        PrefixHasher hasher = new PrefixHasher(layout, modelId);
        BlockKey[] keys = new BlockKey[full];
        for (int i = 0; i < full; i++) {
            keys[i] = hasher.key(i == 0 ? null : keys[i - 1], tokens, i * bt, bt, salt);
        }
        lock.lock();
        try {
            checkOpen();
            return sequences.open(salt, tokens, keys);
        } finally {
            lock.unlock();
        }
    }

    void append(Sequence s, int[] newTokens) {
        Objects.requireNonNull(newTokens, "tokens");
        lock.lock();
        try {
            checkSequence(s);
            sequences.append(s, newTokens);
        } finally {
            lock.unlock();
        }
    }

    void markWritten(Sequence s, int upTo) {
        lock.lock();
        try {
            checkSequence(s);
            sequences.markWritten(s, upTo);
        } finally {
            lock.unlock();
        }
    }

    Sequence fork(Sequence s) {
        CompletableFuture<?>[] snapshot = {null};
        Sequence f;
        lock.lock();
        try {
            checkSequence(s);
            f = sequences.fork(s, source -> {
                Block copy = planner.snapshotCopy(source);
                snapshot[0] = copy.dataReady;
                return copy;
            });
        } finally {
            lock.unlock();
        }
        // the fork's copy of a partly written block: its owner's next writes wait on the slot's fence
        if (snapshot[0] != null) {
            snapshot[0].handle((v, e) -> null).join();
        }
        return f;
    }

    void truncate(Sequence s, int newLength) {
        lock.lock();
        try {
            checkSequence(s);
            sequences.truncate(s, newLength);
        } finally {
            lock.unlock();
        }
    }

    void closeSequence(Sequence s) {
        lock.lock();
        try {
            if (s.manager != this) {
                throw new InvalidHandleException(s + " belongs to another manager");
            }
            checkOpen();
            sequences.close(s);
        } finally {
            lock.unlock();
        }
    }

    private void checkSequence(Sequence s) {
        Objects.requireNonNull(s, "sequence");
        if (s.manager != this) {
            throw new InvalidHandleException(s + " belongs to another manager");
        }
        if (s.closed) {
            throw new InvalidHandleException(s + " is closed");
        }
        checkOpen();
    }

    /** Checks the sequence and that a logical block index lies within it. Caller holds the lock. */
    private void checkBlockIndex(Sequence s, int logicalBlock) {
        checkSequence(s);
        if (logicalBlock < 0 || logicalBlock >= s.blocks.size()) {
            throw new PositionOutOfRangeException("block " + logicalBlock + " outside sequence " + s.id
                    + " of " + s.blocks.size() + " blocks");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new InvalidHandleException("the cache manager is closed");
        }
    }

    // ------------------------------------------------------------------ residency

    /** Makes every block of a sequence resident; see {@link #ensureResident(Sequence, int, int)}. */
    public ResidencyHandle ensureResident(Sequence s) {
        lock.lock();
        try {
            checkSequence(s);
            return ensureResident(s, 0, s.blocks.size());
        } finally {
            lock.unlock();
        }
    }

    /**
     * Promotes logical blocks {@code [fromBlock, toBlock)} of a sequence to the top tier and pins
     * them there until the handle is closed. Returns at once; the copies run asynchronously.
     * Blocks never written get a fresh top-tier slot for the engine to write into.
     *
     * @throws PositionOutOfRangeException if the range is outside the sequence
     * @throws OutOfCacheSpaceException    if the range is larger than the top tier, or the top
     *                                     tier cannot make room (too many pinned blocks, or every
     *                                     lower tier full of referenced blocks); the cache is
     *                                     left as it was
     * @throws BlockLostException          if a block in the range is a known miss
     */
    public ResidencyHandle ensureResident(Sequence s, int fromBlock, int toBlock) {
        lock.lock();
        try {
            Block[] bs = pinRange(s, fromBlock, toBlock);
            boolean allReady = true;
            for (Block b : bs) {
                allReady &= b.tier == 0 && b.dataReady.isDone();
            }
            CompletableFuture<Void> ready;
            if (allReady) {
                // the steady state of a decode step that fits: nothing to plan, nothing to wait for
                for (Block b : bs) {
                    policy.onAccess(b.id, 0);
                    prefetch.used(b.id);
                }
                counters.hits[0] += bs.length;
                ready = Block.DONE;
            } else {
                try {
                    ready = planner.promote(bs);
                } catch (OutOfCacheSpaceException e) {
                    unpin(bs);
                    throw e;
                }
            }
            @SuppressWarnings("unchecked")
            CompletableFuture<Void>[] perLayer = new CompletableFuture[layout.layers()];
            java.util.Arrays.fill(perLayer, ready);
            return handle(s, fromBlock, bs, 0, layout.layers(), perLayer, ready, null);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Makes layers {@code [fromLayer, toLayer)} of logical blocks {@code [fromBlock, toBlock)}
     * resident in the top tier and pins them there until the handle is closed; only those layers
     * are guaranteed in place, and the handle refuses access to any other
     * ({@link LayerNotResidentException}). Returns at once; the copies run asynchronously, one
     * batch per group of consecutive layers ({@link Builder#layerCopyBytes}, one layer when a
     * layer is that large), lowest layers first, and {@link ResidencyHandle#layerReady(int)}
     * completes as each layer lands.
     *
     * <p>A sealed block held whole in a lower tier gets a <em>partial</em> top-tier slot: only the
     * layer slices it lacks are copied into it, and its bytes stay authoritative below, so dropping
     * the slot later moves nothing. A block already in the top tier moves nothing. Any other block
     * (one still being written, a copy-on-write copy, a block with no bytes yet) is made resident
     * whole, as by {@link #ensureResident(Sequence, int, int)}.
     *
     * @throws PositionOutOfRangeException if the block range is outside the sequence
     * @throws IllegalArgumentException    if the layer range is empty or outside the layout's layers
     * @throws OutOfCacheSpaceException    as for {@link #ensureResident(Sequence, int, int)}; the cache
     *                                     is left as it was
     * @throws BlockLostException          if a block in the range is a known miss
     */
    public ResidencyHandle ensureResident(Sequence s, int fromBlock, int toBlock, int fromLayer, int toLayer) {
        return ensureLayers(s, fromBlock, toBlock, fromLayer, toLayer, true);
    }

    /**
     * {@link #ensureResident(Sequence, int, int, int, int)}, where {@code evictWhole} false takes
     * room only from free and partial slots: null when those do not suffice (nothing changed).
     */
    ResidencyHandle ensureLayers(Sequence s, int fromBlock, int toBlock, int fromLayer, int toLayer,
                                 boolean evictWhole) {
        if (fromLayer < 0 || toLayer > layout.layers() || fromLayer >= toLayer) {
            throw new IllegalArgumentException("layers [" + fromLayer + ", " + toLayer + ") are not a non-empty range"
                    + " of the layout's " + layout.layers() + " layers");
        }
        lock.lock();
        try {
            Block[] bs = pinRange(s, fromBlock, toBlock);
            List<CompletableFuture<?>>[] parts;
            try {
                parts = planner.promoteLayers(bs, fromLayer, toLayer, evictWhole);
            } catch (OutOfCacheSpaceException e) {
                unpin(bs);
                if (!evictWhole) {
                    return null;
                }
                throw e;
            }
            @SuppressWarnings("unchecked")
            CompletableFuture<Void>[] perLayer = new CompletableFuture[parts.length];
            for (int l = 0; l < parts.length; l++) {
                perLayer[l] = CompletableFuture.allOf(parts[l].toArray(CompletableFuture[]::new));
            }
            CompletableFuture<Void> ready = perLayer.length == 1 ? perLayer[0] : CompletableFuture.allOf(perLayer);
            return handle(s, fromBlock, bs, fromLayer, toLayer, perLayer, ready, parts);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Streams blocks {@code [fromBlock, toBlock)} of a sequence through the top tier one layer at
     * a time, in windows of {@link LayerWindows.Options#forTopTier} for the top tier's size; see
     * {@link LayerWindows}. A range larger than the top tier is fine: that is what it is for.
     *
     * @throws PositionOutOfRangeException if the range is outside the sequence
     */
    public LayerWindows layerWindows(Sequence s, int fromBlock, int toBlock) {
        return layerWindows(s, fromBlock, toBlock, LayerWindows.Options.forTopTier(tiers[0].slotCount()));
    }

    /**
     * {@link #layerWindows(Sequence, int, int)} with explicit options.
     *
     * @throws PositionOutOfRangeException if the range is outside the sequence
     * @throws IllegalArgumentException    if the window in use and those asked for ahead do not fit
     *                                     the top tier
     */
    public LayerWindows layerWindows(Sequence s, int fromBlock, int toBlock, LayerWindows.Options options) {
        Objects.requireNonNull(options, "options");
        lock.lock();
        try {
            checkSequence(s);
            if (fromBlock < 0 || toBlock > s.blocks.size() || fromBlock > toBlock) {
                throw new PositionOutOfRangeException("blocks [" + fromBlock + ", " + toBlock
                        + ") outside sequence " + s.id + " of " + s.blocks.size() + " blocks");
            }
            if ((1L + options.aheadWindows()) * options.windowBlocks() > tiers[0].slotCount()) {
                throw new IllegalArgumentException("windows of " + options.windowBlocks() + " blocks: the window in"
                        + " use and the " + options.aheadWindows() + " asked for ahead do not fit tier '"
                        + tiers[0].name() + "' of " + tiers[0].slotCount() + " slots");
            }
        } finally {
            lock.unlock();
        }
        return LayerWindows.open(this, s, fromBlock, toBlock, options);
    }

    /** Checks a block range and pins its blocks. Caller holds the lock. */
    private Block[] pinRange(Sequence s, int fromBlock, int toBlock) {
        checkSequence(s);
        if (fromBlock < 0 || toBlock > s.blocks.size() || fromBlock > toBlock) {
            throw new PositionOutOfRangeException("blocks [" + fromBlock + ", " + toBlock
                    + ") outside sequence " + s.id + " of " + s.blocks.size() + " blocks");
        }
        if (toBlock - fromBlock > tiers[0].slotCount()) {
            throw new OutOfCacheSpaceException("blocks [" + fromBlock + ", " + toBlock + ") of sequence " + s.id
                    + " are " + (toBlock - fromBlock) + " blocks, more than tier '" + tiers[0].name()
                    + "' holds (" + tiers[0].slotCount() + " slots); make the range resident in windows of at"
                    + " most that many blocks (KvCacheManager.layerWindows)");
        }
        Block[] bs = new Block[toBlock - fromBlock];
        for (int i = 0; i < bs.length; i++) {
            Block b = s.blocks.get(fromBlock + i);
            if (b.lost) {
                throw new BlockLostException("block " + (fromBlock + i) + " of sequence " + s.id
                        + " was lost; recompute from there", fromBlock + i, null);
            }
            bs[i] = b;
        }
        for (Block b : bs) {
            b.pins++;
        }
        return bs;
    }

    private static void unpin(Block[] bs) {
        for (Block b : bs) {
            b.pins--;
        }
    }

    /** A handle over pinned, planned blocks; each block's top-tier slot is fixed while it is pinned. */
    private ResidencyHandle handle(Sequence s, int fromBlock, Block[] bs, int fromLayer, int toLayer,
                                   CompletableFuture<Void>[] perLayer, CompletableFuture<Void> ready,
                                   List<CompletableFuture<?>>[] layerParts) {
        int[] slots = new int[bs.length];
        for (int i = 0; i < bs.length; i++) {
            slots[i] = bs[i].tier == 0 ? bs[i].slot : bs[i].partialSlot;
        }
        return new ResidencyHandle(this, s, fromBlock, bs, slots, fromLayer, toLayer, perLayer, ready, layerParts,
                tiers[0]);
    }

    /**
     * @return the start of the copy whose completion {@code part} is, completing with its transfer
     *     handle once its batch is handed to an engine (null if it never is); null when {@code part}
     *     is not a copy in flight
     */
    CompletableFuture<TransferHandle> transferOf(CompletableFuture<?> part) {
        return dispatcher.startOf(part);
    }

    /**
     * Promotes blocks the next step will read, within the lookahead budget, without pinning
     * them. Blocks that cannot be given room now are skipped. Whether each arrived in time is
     * counted when a step asks for it.
     *
     * @throws InvalidHandleException if the plan names an unknown or closed sequence
     */
    public void prefetch(AccessPlan accessPlan) {
        Objects.requireNonNull(accessPlan, "plan");
        lock.lock();
        try {
            checkOpen();
            List<Block> wanted = new ArrayList<>();
            for (AccessPlan.Read r : accessPlan.reads()) {
                Sequence s = sequences.get(r.sequenceId());
                if (s == null) {
                    throw new InvalidHandleException("prefetch names sequence " + r.sequenceId()
                            + ", which is not open in this manager");
                }
                int to = r.toBlock() < 0 ? s.blocks.size() : Math.min(r.toBlock(), s.blocks.size());
                for (int i = Math.max(0, r.fromBlock()); i < to; i++) {
                    wanted.add(s.blocks.get(i));
                }
            }
            planner.prefetch(wanted);
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ persistence

    /**
     * Writes every sealed block not yet in the first persistent tier down to it now (as far as
     * its admission takes them), in the background.
     *
     * @return completes with the number of blocks written once every block sealed before the
     *     call is written, refused or failed; at once with 0 without a persistent tier
     * @throws InvalidHandleException after {@link #close()}
     */
    public CompletableFuture<Integer> checkpoint() {
        lock.lock();
        try {
            checkOpen();
            return persistent.checkpoint(registry.all());
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ quiescence

    /**
     * Waits until every copy submitted so far has settled, every slot it held is back in its
     * tier, and nothing waits to be written through: after it, {@link #stats()} shows the
     * occupancy the cache's metadata implies. For
     * tests, benchmarks and orderly shutdown; a running engine never needs it.
     *
     * @param timeout longest wait
     * @return true when idle, false when the timeout passed first
     */
    public boolean awaitIdle(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<CompletableFuture<?>> pending;
            lock.lock();
            try {
                pending = dispatcher.pending();
                pending.addAll(fences.pendingReleases());
                CompletableFuture<Void> written = persistent.idle();
                if (!written.isDone()) {
                    pending.add(written);
                }
            } finally {
                lock.unlock();
            }
            if (pending.isEmpty()) {
                return true;
            }
            if (!awaitAll(pending, deadline - System.nanoTime())) {
                return false;
            }
        }
    }

    /** @return whether every future completed (normally or not) within {@code nanos} */
    private static boolean awaitAll(List<CompletableFuture<?>> futures, long nanos) {
        if (nanos <= 0) {
            return false;
        }
        try {
            CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).handle((v, e) -> null)
                    .get(nanos, TimeUnit.NANOSECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (ExecutionException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Waits until the dispatcher has handed every batch whose inputs are ready to its engine.
     * For deterministic tests that complete copies themselves.
     */
    void drainDispatcher() {
        dispatcher.drain();
    }

    // ------------------------------------------------------------------ handle operations

    BlockLostException lostFor(Sequence s, ResidencyHandle h, Throwable cause) {
        int first = h.fromBlock();
        lock.lock();
        try {
            for (int i = 0; i < h.blocks.length; i++) {
                Block b = h.blocks[i];
                if (b.dataReady.isCompletedExceptionally() || b.lost) {
                    first = h.fromBlock() + i;
                    break;
                }
            }
        } finally {
            lock.unlock();
        }
        return new BlockLostException("block " + first + " of sequence " + s.id
                + " could not be made resident; recompute from there", first, cause);
    }

    /** An engine thread starts waiting in {@link ResidencyHandle#await()}; returns the start time. */
    long beginWait() {
        return locked(counters::beginWait);
    }

    /** The wait begun at {@code start} ended: counted per thread, summed, and as wall time. */
    void endWait(long start) {
        lock.lock();
        try {
            counters.endWait(start);
        } finally {
            lock.unlock();
        }
    }

    void fillAddresses(ResidencyHandle h, long[] out, long add) {
        access.fillAddresses(h, out, add);
    }

    long address(ResidencyHandle h, int i) {
        return access.address(h, i);
    }

    MemorySegment view(ResidencyHandle h, int i) {
        return access.view(h, i);
    }

    void write(ResidencyHandle h, int i, long offset, MemorySegment src) {
        access.write(h, i, offset, src);
    }

    void read(ResidencyHandle h, int i, long offset, MemorySegment dst) {
        access.read(h, i, offset, dst);
    }

    /** Runs an access to tier memory so that {@link #close()} cannot unmap it meanwhile. */
    private void guardedAccess(Runnable r) {
        access.guarded(r);
    }

    void release(ResidencyHandle h) {
        lock.lock();
        try {
            checkOpen();
            if (h.closed) {
                throw new DoubleReleaseException("residency handle of blocks [" + h.fromBlock() + ", "
                        + (h.fromBlock() + h.blocks.length) + ") was already released");
            }
            h.closed = true;
            for (Block b : h.blocks) {
                b.pins--;
                registry.maybeFree(b);
            }
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ reads, attention, stats

    /**
     * Copies one block's bytes, from whatever tier holds them, into {@code dst}. Waits for a
     * copy in flight. A block never written reads as zeros.
     *
     * @param dst at least {@link KvLayout#blockBytes()} bytes
     * @throws BlockLostException if the bytes cannot be served (they are never served wrong)
     */
    public void readBlock(Sequence s, int logicalBlock, MemorySegment dst) {
        HandleAccess.Source src;
        lock.lock();
        try {
            checkBlockIndex(s, logicalBlock);
            src = access.prepareRead(s, logicalBlock, dst);
        } finally {
            lock.unlock();
        }
        if (src != null) {
            access.finishRead(s, logicalBlock, src, dst);
        }
    }

    /**
     * Reports the attention mass a block received in the latest step (for
     * {@link EvictionPolicy#attentionScore}).
     */
    public void reportAttention(Sequence s, int logicalBlock, double mass) {
        lock.lock();
        try {
            checkBlockIndex(s, logicalBlock);
            policy.onAttention(s.blocks.get(logicalBlock).id, mass);
        } finally {
            lock.unlock();
        }
    }

    /** Marks the end of a decode step: decaying policies age their scores. */
    public void endStep() {
        lock.lock();
        try {
            checkOpen();
            policy.onStep();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Drops every cached block no sequence references and no handle pins (from every tier,
     * unpublishing them from persistent tiers too).
     *
     * @return blocks dropped
     */
    public int dropUnreferenced() {
        lock.lock();
        try {
            checkOpen();
            return registry.dropUnreferenced();
        } finally {
            lock.unlock();
        }
    }

    /** @return a snapshot of the counters */
    public CacheStats stats() {
        lock.lock();
        try {
            return counters.snapshot(tiers, prefetch, persistent.stats(), registry.size());
        } finally {
            lock.unlock();
        }
    }

    /**
     * Where every block is, for diagnostics and tests.
     *
     * @return one entry per block known to the manager
     */
    public List<BlockInfo> blockInfos() {
        lock.lock();
        try {
            List<BlockInfo> out = new ArrayList<>(registry.size());
            for (Block b : registry.all()) {
                out.add(new BlockInfo(b.id, b.tier, b.slot, b.refCount, b.pins, b.key != null, b.lost, b.partialSlot));
            }
            return out;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Location of one block as {@link #blockInfos()} reports it.
     *
     * @param id       stable block id
     * @param tier     tier index, or -1 when the block has no bytes yet
     * @param slot     slot in that tier, or -1
     * @param refCount sequences referencing it
     * @param pins     open handles pinning it
     * @param sealed   whether it is content-addressed and shareable
     * @param lost     whether its bytes are a reported miss
     * @param partialSlot top-tier slot holding some of its layers while its bytes live in
     *                    {@code tier} ({@link #ensureResident(Sequence, int, int, int, int)}), or -1
     */
    public record BlockInfo(long id, int tier, int slot, int refCount, int pins, boolean sealed, boolean lost,
                            int partialSlot) {
    }

    /** @return the block id at a logical index of a sequence (stable while the block lives) */
    public long blockId(Sequence s, int logicalBlock) {
        lock.lock();
        try {
            checkBlockIndex(s, logicalBlock);
            return s.blocks.get(logicalBlock).id;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Closes the cache: refuses new calls at once ({@link InvalidHandleException}), waits for
     * copies in flight, persists sealed blocks (see the builder), then waits for handle
     * operations in progress and closes the engines and the tiers. Every wait is bounded by the
     * builder's close timeout: copies still in flight after it are failed (their blocks become
     * misses for anyone awaiting them) and nothing more is persisted. Idempotent.
     */
    @Override
    public void close() {
        List<CompletableFuture<?>> pending = new ArrayList<>();
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            for (Block b : registry.all()) {
                pending.add(b.dataReady);
            }
            pending.addAll(fences.all());
        } finally {
            lock.unlock();
        }
        long deadline = System.nanoTime() + closeTimeout.toNanos();
        boolean settled = awaitAll(pending, closeTimeout.toNanos());
        if (!settled) {
            List<PlannedCopy> stuck = locked(dispatcher::inFlight);
            LOG.log(System.Logger.Level.WARNING, "close: " + stuck.size() + " copies still in flight after "
                    + closeTimeout + "; failing them");
            for (PlannedCopy m : stuck) {
                dispatcher.fail(m, new KvCacheException("the cache manager closed before this copy completed"));
            }
        }
        writeDownAndStop(settled, deadline);
        dispatcher.close();
        closeTiers(deadline);
    }

    /** Lets write-through finish (with a last checkpoint when asked for), then stops its thread. */
    private void writeDownAndStop(boolean settled, long deadline) {
        CompletableFuture<Integer> last = null;
        lock.lock();
        try {
            if (persistOnClose && settled) {
                last = persistent.checkpoint(registry.all());
            }
        } finally {
            lock.unlock();
        }
        if (last != null && !awaitAll(List.of(last), Math.max(1, deadline - System.nanoTime()))) {
            LOG.log(System.Logger.Level.WARNING, "close: writing sealed blocks down did not finish within "
                    + closeTimeout);
        }
        lock.lock();
        try {
            persistent.stop();
        } finally {
            lock.unlock();
        }
        try {
            persistent.join((deadline - System.nanoTime()) / 1_000_000 + 1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Waits for handle operations in progress, then closes the tiers. */
    private void closeTiers(long deadline) {
        boolean exclusive = false;
        try {
            exclusive = closeGuard.writeLock().tryLock(Math.max(0, deadline - System.nanoTime()) + 1_000_000_000L,
                    TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!exclusive) {
            // a handle operation is stuck inside a tier; unmapping under it could crash the JVM
            LOG.log(System.Logger.Level.WARNING, "close: a handle operation did not finish; tiers left open");
            return;
        }
        try {
            lock.lock();
            try {
                fences.markTiersClosed();
            } finally {
                lock.unlock();
            }
            for (Tier t : tiers) {
                try {
                    t.close();
                } catch (RuntimeException ex) {
                    LOG.log(System.Logger.Level.WARNING, "closing tier '" + t.name() + "': " + ex);
                }
            }
        } finally {
            closeGuard.writeLock().unlock();
        }
    }
}
