package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.block.PrefixHasher;
import io.kvcache.core.cost.CostModel;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierFailedException;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import org.agrona.collections.Long2ObjectHashMap;
import org.agrona.collections.LongHashSet;

/**
 * Pages the KV blocks of many sequences across an ordered list of tiers (fastest first).
 *
 * <ul>
 *   <li>A block's bytes live in exactly one tier at a time. When a tier is full, the eviction
 *       policy picks an unpinned block and demotes it to the next tier with room; a block is
 *       dropped only if it is referenced by no sequence (a cached prefix block) and no lower
 *       tier can take it.</li>
 *   <li>{@link #ensureResident} promotes blocks to the top tier asynchronously and pins them.
 *       Copies are batched per tier pair and handed to a {@link TransferEngine}.</li>
 *   <li>A slot is never overwritten before every copy reading it has completed, and a block is
 *       never read before the copy writing it has completed: each slot carries a future for
 *       "free to overwrite", each block one for "bytes in place".</li>
 *   <li>Full, written blocks are content-addressed (chained SHA-256) and shared by reference
 *       count between sequences with the same tenant salt and prefix; persistent tiers keep
 *       them across restarts.</li>
 * </ul>
 *
 * <p>Thread safety: every public method may be called from any thread. Metadata is guarded by
 * one lock that is never held while waiting for a copy.
 */
public final class KvCacheManager implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(KvCacheManager.class.getName());

    private final KvLayout layout;
    private final String modelId;
    private final Tier[] tiers;
    private final List<TransferEngine> engines;
    private final TransferEngine cpuEngine;
    private final EvictionPolicy policy;
    private final int prefetchLookahead;
    private final CostModel costModel;
    private final boolean persistOnClose;
    private final ReentrantLock lock = new ReentrantLock();
    private final ExecutorService dispatcher;

    private final Long2ObjectHashMap<Block> blocks = new Long2ObjectHashMap<>();
    private final Map<BlockKey, Block> byKey = new HashMap<>();
    private final Long2ObjectHashMap<Sequence> sequences = new Long2ObjectHashMap<>();
    /** Per tier, per slot: completes when the slot may be overwritten. */
    private final CompletableFuture<?>[][] slotFree;
    /** Per tier: blocks whose shadow copy sits there, oldest first (reclaimed first). */
    private final LinkedHashSet<Block>[] shadowsIn;
    /** Blocks promoted by prefetch and not yet asked for, with the copy that promotes them. */
    private final Long2ObjectHashMap<CompletableFuture<Void>> prefetched = new Long2ObjectHashMap<>();
    private long nextBlockId;
    private long nextSequenceId;
    private long nextPlanId;
    private boolean closed;

    // counters, guarded by lock
    private final long[] hits;
    private final long[] misses;
    private final long[] promotedOut;
    private final long[] demotedIn;
    private final long[] dropped;
    private long promotions;
    private long demotions;
    private long bytesPromoted;
    private long bytesDemoted;
    private long prefixLookupTokens;
    private long prefixHitTokens;
    private long waitNanos;
    private long prefetchIssued;
    private long prefetchInTime;
    private long prefetchLate;
    private long blocksLost;

    private KvCacheManager(Builder b) {
        this.layout = b.layout;
        this.modelId = b.modelId;
        this.tiers = b.tiers.toArray(Tier[]::new);
        this.cpuEngine = CpuTransferEngine.withDefaults();
        List<TransferEngine> all = new ArrayList<>(b.engines);
        all.add(cpuEngine);
        this.engines = List.copyOf(all);
        this.policy = b.policy;
        this.prefetchLookahead = b.prefetchLookahead;
        this.costModel = b.costModel;
        this.persistOnClose = b.persistOnClose;
        this.slotFree = new CompletableFuture<?>[tiers.length][];
        for (int t = 0; t < tiers.length; t++) {
            slotFree[t] = new CompletableFuture<?>[tiers[t].slotCount()];
            Arrays.fill(slotFree[t], Block.DONE);
        }
        int n = tiers.length;
        @SuppressWarnings("unchecked")
        LinkedHashSet<Block>[] sh = new LinkedHashSet[n];
        for (int t = 0; t < n; t++) {
            sh[t] = new LinkedHashSet<>();
        }
        this.shadowsIn = sh;
        hits = new long[n];
        misses = new long[n];
        promotedOut = new long[n];
        demotedIn = new long[n];
        dropped = new long[n];
        this.dispatcher = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon()
                .name("kvcache-dispatch").unstarted(r));
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
         * @throws IllegalArgumentException  with no tier, or a tier added twice, or a cost model
         *                                   that does not cover every tier
         * @throws LayoutMismatchException   when a tier's slot size is not the layout's block size
         */
        public KvCacheManager build() {
            if (tiers.isEmpty()) {
                throw new IllegalArgumentException("a cache needs at least one tier");
            }
            for (int i = 0; i < tiers.size(); i++) {
                Tier t = tiers.get(i);
                if (t.slotBytes() != layout.blockBytes()) {
                    throw new LayoutMismatchException("tier '" + t.name() + "' has slots of " + t.slotBytes()
                            + " bytes but the layout's blocks are " + layout.blockBytes() + " bytes");
                }
                for (int j = 0; j < i; j++) {
                    if (tiers.get(j) == t) {
                        throw new IllegalArgumentException("tier '" + t.name() + "' added twice");
                    }
                }
            }
            if (costModel != null && costModel.tierCount() != tiers.size()) {
                throw new IllegalArgumentException("the cost model covers " + costModel.tierCount()
                        + " tiers but the cache has " + tiers.size());
            }
            return new KvCacheManager(this);
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
            Sequence s = new Sequence(this, nextSequenceId++, salt, tokens.length);
            int matchable = tokens.length == full * bt ? full - 1 : full;
            int matched = 0;
            for (int i = 0; i < matchable; i++) {
                Block b = findCached(keys[i]);
                if (b == null || (costModel != null && !costModel.reloadPays(b.tier))) {
                    break;
                }
                b.refCount++;
                s.blocks.add(b);
                hits[b.tier]++;
                policy.onAccess(b.id, b.tier);
                matched++;
            }
            for (int i = 0; i < full; i++) {
                s.chainKeys.add(keys[i]);
            }
            System.arraycopy(tokens, 0, s.tokens, 0, matched * bt);
            s.length = matched * bt;
            s.written = s.length;
            s.cachedTokens = s.length;
            prefixLookupTokens += tokens.length;
            prefixHitTokens += s.cachedTokens;
            sequences.put(s.id, s);
            appendLocked(s, Arrays.copyOfRange(tokens, s.length, tokens.length));
            return s;
        } finally {
            lock.unlock();
        }
    }

    private Block findCached(BlockKey key) {
        Block b = byKey.get(key);
        if (b != null) {
            return b.lost ? null : b;
        }
        for (int t = 0; t < tiers.length; t++) {
            if (tiers[t] instanceof PersistentTier pt && !pt.failed()) {
                int slot = pt.lookup(key);
                if (slot >= 0) {
                    b = newBlock();
                    b.key = key;
                    b.tier = t;
                    b.slot = slot;
                    byKey.put(key, b);
                    policy.onInsert(b.id, t);
                    return b;
                }
            }
        }
        return null;
    }

    private Block newBlock() {
        Block b = new Block(nextBlockId++);
        blocks.put(b.id, b);
        return b;
    }

    void append(Sequence s, int[] newTokens) {
        Objects.requireNonNull(newTokens, "tokens");
        lock.lock();
        try {
            checkSequence(s);
            appendLocked(s, newTokens);
        } finally {
            lock.unlock();
        }
    }

    private void appendLocked(Sequence s, int[] newTokens) {
        int bt = layout.blockTokens();
        if (s.length + newTokens.length > s.tokens.length) {
            s.tokens = Arrays.copyOf(s.tokens, Math.max(s.tokens.length * 2, s.length + newTokens.length));
        }
        for (int t : newTokens) {
            if (s.length % bt == 0) {
                Block b = newBlock();
                b.refCount = 1;
                s.blocks.add(b);
            } else {
                Block last = s.blocks.getLast();
                if (last.refCount > 1 || last.key != null) {
                    s.blocks.set(s.blocks.size() - 1, copyOnWrite(last));
                }
            }
            s.tokens[s.length++] = t;
            int full = s.length / bt;
            if (s.length % bt == 0 && s.chainKeys.size() < full) {
                PrefixHasher hasher = new PrefixHasher(layout, modelId);
                BlockKey parent = full == 1 ? null : s.chainKeys.get(full - 2);
                s.chainKeys.add(hasher.key(parent, s.tokens, (full - 1) * bt, bt, s.salt));
            }
        }
    }

    /** A private copy of a shared partial block; the bytes are copied when it is materialized. */
    private Block copyOnWrite(Block shared) {
        Block b = privateCopyOf(shared);
        releaseRef(shared);
        return b;
    }

    /** A new private block that will copy {@code original}'s bytes when it is materialized. */
    private Block privateCopyOf(Block original) {
        Block b = newBlock();
        b.refCount = 1;
        Block source = original.materialized() ? original : original.cowFrom;
        if (source != null) {
            source.cowReaders++;
            b.cowFrom = source;
        }
        return b;
    }

    void markWritten(Sequence s, int upTo) {
        lock.lock();
        try {
            checkSequence(s);
            if (upTo < 0 || upTo > s.length) {
                throw new PositionOutOfRangeException("cannot mark " + upTo + " tokens written: sequence "
                        + s.id + " has " + s.length + " tokens");
            }
            if (upTo <= s.written) {
                return;
            }
            int bt = layout.blockTokens();
            for (int i = s.written / bt; i < upTo / bt; i++) {
                seal(s, i);
            }
            s.written = upTo;
        } finally {
            lock.unlock();
        }
    }

    private void seal(Sequence s, int index) {
        Block b = s.blocks.get(index);
        if (b.key != null) {
            return;
        }
        BlockKey key = s.chainKeys.get(index);
        Block existing = byKey.get(key);
        if (existing != null && !existing.lost) {
            if (b.pins == 0) {
                // the same prefix was computed twice: keep one copy
                existing.refCount++;
                s.blocks.set(index, existing);
                releaseRef(b);
            }
            return;
        }
        b.key = key;
        b.parentKey = index == 0 ? null : s.chainKeys.get(index - 1);
        byKey.put(key, b);
        if (b.materialized() && tiers[b.tier] instanceof PersistentTier pt) {
            CompletableFuture<Void> ready = b.dataReady;
            int tier = b.tier;
            int slot = b.slot;
            ready.thenRun(() -> {
                lock.lock();
                try {
                    if (holdsCopy(b, tier, slot, ready)) {
                        pt.publish(slot, key, b.parentKey);
                    }
                } finally {
                    lock.unlock();
                }
            });
        }
    }

    Sequence fork(Sequence s) {
        lock.lock();
        try {
            checkSequence(s);
            Sequence f = new Sequence(this, nextSequenceId++, s.salt, s.length);
            System.arraycopy(s.tokens, 0, f.tokens, 0, s.length);
            f.length = s.length;
            f.written = s.written;
            f.cachedTokens = s.cachedTokens;
            f.chainKeys.addAll(s.chainKeys);
            int bt = layout.blockTokens();
            for (int i = 0; i < s.blocks.size(); i++) {
                Block b = s.blocks.get(i);
                if (Math.min(s.length, (i + 1) * bt) > s.written) {
                    // KV still to be written by each sequence: the fork writes its own copy
                    f.blocks.add(privateCopyOf(b));
                } else {
                    b.refCount++;
                    f.blocks.add(b);
                }
            }
            sequences.put(f.id, f);
            return f;
        } finally {
            lock.unlock();
        }
    }

    void truncate(Sequence s, int newLength) {
        lock.lock();
        try {
            checkSequence(s);
            if (newLength < 0 || newLength > s.length) {
                throw new PositionOutOfRangeException("cannot truncate sequence " + s.id + " of " + s.length
                        + " tokens to " + newLength);
            }
            int bt = layout.blockTokens();
            int keep = (newLength + bt - 1) / bt;
            while (s.blocks.size() > keep) {
                releaseRef(s.blocks.removeLast());
            }
            while (s.chainKeys.size() > newLength / bt) {
                s.chainKeys.removeLast();
            }
            s.length = newLength;
            s.written = Math.min(s.written, newLength);
            s.cachedTokens = Math.min(s.cachedTokens, newLength);
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
            if (s.closed) {
                return;
            }
            s.closed = true;
            sequences.remove(s.id);
            for (Block b : s.blocks) {
                releaseRef(b);
            }
            s.blocks.clear();
        } finally {
            lock.unlock();
        }
    }

    private void releaseRef(Block b) {
        if (b.refCount <= 0) {
            throw new IllegalStateException("reference count of block " + b.id + " would go negative");
        }
        b.refCount--;
        maybeFree(b);
    }

    private void releaseCow(Block b) {
        if (b.cowReaders <= 0) {
            throw new IllegalStateException("copy-on-write readers of block " + b.id + " would go negative");
        }
        b.cowReaders--;
        maybeFree(b);
    }

    private void maybeFree(Block b) {
        if (b.refCount == 0 && b.pins == 0 && b.cowReaders == 0 && (b.key == null || b.lost)) {
            freeBlock(b);
        }
    }

    private void freeBlock(Block b) {
        dropShadow(b);
        if (b.materialized()) {
            tiers[b.tier].free(b.slot);
            policy.onRemove(b.id, b.tier);
            b.tier = -1;
            b.slot = -1;
        }
        if (b.key != null && byKey.get(b.key) == b) {
            byKey.remove(b.key);
        }
        blocks.remove(b.id);
        prefetched.remove(b.id);
        if (b.cowFrom != null) {
            Block src = b.cowFrom;
            b.cowFrom = null;
            releaseCow(src);
        }
    }

    /** Frees a block's shadow slot; a persistent tier keeps the block findable after the free. */
    private void dropShadow(Block b) {
        if (b.hasShadow()) {
            shadowsIn[b.shadowTier].remove(b);
            tiers[b.shadowTier].free(b.shadowSlot);
            b.shadowTier = -1;
            b.shadowSlot = -1;
            b.shadowReady = null;
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
     * @throws OutOfCacheSpaceException    if the top tier cannot make room (too many pinned
     *                                     blocks, or every lower tier full of referenced blocks);
     *                                     the cache is left as it was
     * @throws BlockLostException          if a block in the range is a known miss
     */
    public ResidencyHandle ensureResident(Sequence s, int fromBlock, int toBlock) {
        lock.lock();
        try {
            checkSequence(s);
            if (fromBlock < 0 || toBlock > s.blocks.size() || fromBlock > toBlock) {
                throw new PositionOutOfRangeException("blocks [" + fromBlock + ", " + toBlock
                        + ") outside sequence " + s.id + " of " + s.blocks.size() + " blocks");
            }
            Block[] bs = new Block[toBlock - fromBlock];
            boolean allReady = true;
            for (int i = 0; i < bs.length; i++) {
                Block b = s.blocks.get(fromBlock + i);
                if (b.lost) {
                    throw new BlockLostException("block " + (fromBlock + i) + " of sequence " + s.id
                            + " was lost; recompute from there", fromBlock + i, null);
                }
                allReady &= b.tier == 0 && b.dataReady.isDone();
                bs[i] = b;
            }
            for (Block b : bs) {
                b.pins++;
            }
            if (allReady) {
                // the steady state of a decode step that fits: nothing to plan, nothing to wait for
                for (Block b : bs) {
                    policy.onAccess(b.id, 0);
                    countPrefetchUse(b);
                }
                hits[0] += bs.length;
                return new ResidencyHandle(this, s, fromBlock, bs, Block.DONE, tiers[0]);
            }
            Plan plan = new Plan(nextPlanId++);
            List<CompletableFuture<?>> waits = new ArrayList<>();
            int[] sourceTiers = new int[bs.length];
            int hitCount = 0;
            try {
                for (Block b : bs) {
                    b.planId = plan.id;
                    if (b.tier == 0) {
                        sourceTiers[hitCount++] = 0;
                        continue;
                    }
                    if (b.materialized()) {
                        sourceTiers[hitCount++] = b.tier;
                    }
                    int slot = obtainSlot(0, plan, b);
                    if (!b.materialized() && b.cowFrom == null) {
                        plan.materialize(b, slot);
                    } else if (!b.materialized()) {
                        plan.copy(b.cowFrom, b, 0, slot);
                    } else {
                        plan.move(b, 0, slot);
                    }
                }
            } catch (OutOfCacheSpaceException e) {
                plan.rollback();
                for (Block b : bs) {
                    b.pins--;
                }
                throw e;
            }
            for (int i = 0; i < hitCount; i++) {
                hits[sourceTiers[i]]++;
            }
            for (Block b : bs) {
                policy.onAccess(b.id, Math.max(b.tier, 0));
                countPrefetchUse(b);
            }
            plan.commit();
            for (Block b : bs) {
                waits.add(b.dataReady);
            }
            CompletableFuture<Void> ready = CompletableFuture.allOf(waits.toArray(CompletableFuture[]::new));
            return new ResidencyHandle(this, s, fromBlock, bs, ready, tiers[0]);
        } finally {
            lock.unlock();
        }
    }

    private void countPrefetchUse(Block b) {
        if (prefetched.isEmpty()) {
            return;
        }
        CompletableFuture<Void> pf = prefetched.remove(b.id);
        if (pf != null) {
            if (pf.isDone()) {
                prefetchInTime++;
            } else {
                prefetchLate++;
            }
        }
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
            Plan plan = new Plan(nextPlanId++);
            // the blocks asked for must not evict each other
            for (Block b : wanted) {
                b.pins++;
            }
            try {
                int issued = 0;
                for (Block b : wanted) {
                    if (issued >= prefetchLookahead) {
                        break;
                    }
                    if (b.tier <= 0 || b.lost || b.planId == plan.id || prefetched.containsKey(b.id)) {
                        continue;
                    }
                    int slot;
                    try {
                        slot = obtainSlot(0, plan, b);
                    } catch (OutOfCacheSpaceException e) {
                        break;
                    }
                    b.planId = plan.id;
                    prefetched.put(b.id, plan.move(b, 0, slot));
                    issued++;
                }
                prefetchIssued += issued;
                plan.commit();
            } finally {
                for (Block b : wanted) {
                    b.pins--;
                }
            }
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ planning

    /** A move (or copy) recorded by a plan, executed in a batch when the plan commits. */
    private static final class Move {
        final Block block;
        /** Block whose bytes are read: the block itself for a move, the source for a copy. */
        final Block source;
        final int srcTier;
        final int srcSlot;
        final int dstTier;
        final int dstSlot;
        final boolean copy;
        final CompletableFuture<?> srcReady;
        final CompletableFuture<?> dstFree;
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final int level;
        /** Set at commit: the source slot is freed when the copy settles, before {@link #done} completes. */
        boolean freeSourceWhenSettled;
        /** Set while planning when the source slot stays as the block's shadow. */
        boolean keepSourceAsShadow;
        /** Set at commit for a copy-on-write: the source's reference is dropped when the copy settles. */
        Block releaseWhenSettled;

        Move(Block block, Block source, int srcTier, int srcSlot, int dstTier, int dstSlot, boolean copy,
             CompletableFuture<?> srcReady, CompletableFuture<?> dstFree, int level) {
            this.block = block;
            this.source = source;
            this.srcTier = srcTier;
            this.srcSlot = srcSlot;
            this.dstTier = dstTier;
            this.dstSlot = dstSlot;
            this.copy = copy;
            this.srcReady = srcReady;
            this.dstFree = dstFree;
            this.level = level;
        }
    }

    /**
     * Metadata changes of one residency request. Changes apply at once under the lock and are
     * undone on failure; tier frees and copies wait for {@link #commit()}.
     */
    private final class Plan {
        final long id;
        final List<Runnable> undo = new ArrayList<>();
        final List<Move> moves = new ArrayList<>();
        final List<Runnable> onCommit = new ArrayList<>();
        final boolean[] exhausted = new boolean[tiers.length];
        /** Level of the move that vacated a slot in this plan, so later moves into it run after. */
        final Map<Long, Integer> vacatedLevel = new HashMap<>();
        final Map<Long, Move> moveOf = new HashMap<>();
        /** Slots vacated by an eviction and handed to another block in this plan. */
        final Set<Long> claimedSlots = new HashSet<>();
        LongHashSet protectedBlocks;

        Plan(long id) {
            this.id = id;
        }

        int levelAfter(int tier, int slot) {
            return vacatedLevel.getOrDefault(((long) tier << 32) | slot, -1) + 1;
        }

        void materialize(Block b, int slot) {
            b.tier = 0;
            b.slot = slot;
            CompletableFuture<?> free = slotFree[0][slot];
            b.dataReady = free.handle((v, e) -> (Void) null);
            policy.onInsert(b.id, 0);
            undo.add(() -> {
                policy.onRemove(b.id, 0);
                b.tier = -1;
                b.slot = -1;
                b.dataReady = Block.DONE;
            });
        }

        void copy(Block source, Block b, int dstTier, int dstSlot) {
            Move m = record(b, source, dstTier, dstSlot, true);
            b.tier = dstTier;
            b.slot = dstSlot;
            CompletableFuture<Void> prevReady = b.dataReady;
            b.dataReady = m.done;
            policy.onInsert(b.id, dstTier);
            undo.add(() -> {
                policy.onRemove(b.id, dstTier);
                b.tier = -1;
                b.slot = -1;
                b.dataReady = prevReady;
            });
            onCommit.add(() -> {
                m.releaseWhenSettled = b.cowFrom;
                b.cowFrom = null;
            });
        }

        CompletableFuture<Void> move(Block b, int dstTier, int dstSlot) {
            int srcTier = b.tier;
            int srcSlot = b.slot;
            Move m = record(b, b, dstTier, dstSlot, false);
            CompletableFuture<Void> prevReady = b.dataReady;
            b.tier = dstTier;
            b.slot = dstSlot;
            b.dataReady = m.done;
            b.planId = id;
            policy.onRemove(b.id, srcTier);
            policy.onInsert(b.id, dstTier);
            vacatedLevel.put(((long) srcTier << 32) | srcSlot, m.level);
            undo.add(() -> {
                vacatedLevel.remove(((long) srcTier << 32) | srcSlot);
                policy.onRemove(b.id, dstTier);
                policy.onInsert(b.id, srcTier);
                b.tier = srcTier;
                b.slot = srcSlot;
                b.dataReady = prevReady;
            });
            if (dstTier < srcTier && b.key != null && !b.lost) {
                keepAsShadow(b, m, srcTier, srcSlot, prevReady);
            }
            return m.done;
        }

        /**
         * A sealed block promoted out of a slot keeps that slot as its shadow: its bytes cannot
         * change, so a later eviction just falls back to it. A deeper shadow it had is freed.
         */
        private void keepAsShadow(Block b, Move m, int srcTier, int srcSlot, CompletableFuture<Void> srcReady) {
            int oldTier = b.shadowTier;
            int oldSlot = b.shadowSlot;
            CompletableFuture<Void> oldReady = b.shadowReady;
            if (oldTier >= 0) {
                shadowsIn[oldTier].remove(b);
            }
            b.shadowTier = srcTier;
            b.shadowSlot = srcSlot;
            b.shadowReady = srcReady;
            shadowsIn[srcTier].add(b);
            m.keepSourceAsShadow = true;
            undo.add(() -> {
                shadowsIn[srcTier].remove(b);
                b.shadowTier = oldTier;
                b.shadowSlot = oldSlot;
                b.shadowReady = oldReady;
                if (oldTier >= 0) {
                    shadowsIn[oldTier].add(b);
                }
                m.keepSourceAsShadow = false;
            });
            if (oldTier >= 0) {
                onCommit.add(() -> tiers[oldTier].free(oldSlot));
            }
        }

        /** Evicts a block that has a shadow: it falls back to the shadow, no bytes move. */
        void fallBackToShadow(Block v) {
            int t = v.tier;
            int slot = v.slot;
            CompletableFuture<Void> ready = v.dataReady;
            int st = v.shadowTier;
            int ss = v.shadowSlot;
            CompletableFuture<Void> sr = v.shadowReady;
            shadowsIn[st].remove(v);
            v.tier = st;
            v.slot = ss;
            v.dataReady = sr;
            v.shadowTier = -1;
            v.shadowSlot = -1;
            v.shadowReady = null;
            v.planId = id;
            policy.onRemove(v.id, t);
            policy.onInsert(v.id, st);
            undo.add(() -> {
                policy.onRemove(v.id, st);
                policy.onInsert(v.id, t);
                v.tier = t;
                v.slot = slot;
                v.dataReady = ready;
                v.shadowTier = st;
                v.shadowSlot = ss;
                v.shadowReady = sr;
                shadowsIn[st].add(v);
            });
            onCommit.add(() -> {
                demotions++;
                demotedIn[st]++;
            });
        }

        /** Takes the slot of the oldest shadow in a tier (its block keeps its copy above), or -1. */
        int reclaimShadow(int t) {
            if (shadowsIn[t].isEmpty()) {
                return -1;
            }
            Block b = shadowsIn[t].getFirst();
            int slot = b.shadowSlot;
            CompletableFuture<Void> sr = b.shadowReady;
            shadowsIn[t].remove(b);
            b.shadowTier = -1;
            b.shadowSlot = -1;
            b.shadowReady = null;
            undo.add(() -> {
                b.shadowTier = t;
                b.shadowSlot = slot;
                b.shadowReady = sr;
                shadowsIn[t].add(b);
            });
            if (tiers[t] instanceof PersistentTier pt) {
                onCommit.add(() -> pt.unpublish(slot));
            }
            return slot;
        }

        private Move record(Block b, Block source, int dstTier, int dstSlot, boolean copy) {
            Move dep = moveOf.get(source.id);
            int level = Math.max(levelAfter(dstTier, dstSlot), dep == null ? 0 : dep.level + 1);
            int srcTier = source.tier;
            int srcSlot = source.slot;
            CompletableFuture<?> prevSrcFree = slotFree[srcTier][srcSlot];
            CompletableFuture<?> prevDstFree = slotFree[dstTier][dstSlot];
            Move m = new Move(b, source, srcTier, srcSlot, dstTier, dstSlot, copy, source.dataReady,
                    prevDstFree, level);
            // the slot read and the slot written are busy until the copy settles
            CompletableFuture<Void> settled = m.done.handle((v, e) -> null);
            slotFree[srcTier][srcSlot] = combine(prevSrcFree, settled);
            slotFree[dstTier][dstSlot] = combine(prevDstFree, settled);
            moves.add(m);
            moveOf.put(b.id, m);
            undo.add(() -> {
                slotFree[srcTier][srcSlot] = prevSrcFree;
                slotFree[dstTier][dstSlot] = prevDstFree;
                moves.remove(m);
                moveOf.remove(b.id);
            });
            return m;
        }

        void rollback() {
            for (int i = undo.size() - 1; i >= 0; i--) {
                undo.get(i).run();
            }
            undo.clear();
        }

        void commit() {
            for (Move m : moves) {
                // a promoted block's old slot stays allocated until the copy reading it settles
                m.freeSourceWhenSettled = !m.copy && !m.keepSourceAsShadow
                        && !claimedSlots.contains(((long) m.srcTier << 32) | m.srcSlot);
                if (m.dstTier < m.srcTier) {
                    promotions++;
                    bytesPromoted += layout.blockBytes();
                    promotedOut[m.srcTier]++;
                } else {
                    demotions++;
                    bytesDemoted += layout.blockBytes();
                    demotedIn[m.dstTier]++;
                }
            }
            for (Runnable r : onCommit) {
                r.run();
            }
            submit(moves);
        }

    }

    private static CompletableFuture<?> combine(CompletableFuture<?> a, CompletableFuture<?> b) {
        return a.isDone() ? b : CompletableFuture.allOf(a, b);
    }

    /**
     * Finds a slot in tier {@code t} for a block, evicting if needed: the policy's candidates are
     * demoted to the next tier with room, or dropped when unreferenced and no lower tier has
     * room. The slot's old bytes may still be in flight; moves into it wait on its future.
     */
    private int obtainSlot(int t, Plan plan, Block forBlock) {
        if (plan.exhausted[t] || tiers[t].failed()) {
            throw new OutOfCacheSpaceException(noRoom(t));
        }
        int slot = allocateFree(t, plan, forBlock);
        if (slot < 0) {
            slot = plan.reclaimShadow(t);
            if (slot >= 0) {
                claim(plan, t, slot);
            }
        }
        if (slot >= 0) {
            return slot;
        }
        int[] found = {-1};
        policy.forEachCandidate(t, id -> isProtected(plan, id), id -> {
            Block v = blocks.get(id);
            if (v == null || v.pins > 0 || v.planId == plan.id || v.tier != t) {
                return false;
            }
            int vacated = v.slot;
            if (v.hasShadow()) {
                plan.fallBackToShadow(v);
                found[0] = vacated;
                return true;
            }
            for (int d = t + 1; d < tiers.length; d++) {
                if (plan.exhausted[d]) {
                    continue;
                }
                int lower;
                if (v.cachedOnly() && tiers[d] instanceof PersistentTier) {
                    // a block nobody holds enters a persistent tier only if its admission policy
                    // takes it; it never evicts others there
                    lower = allocateFree(d, plan, v);
                    if (lower < 0) {
                        continue;
                    }
                } else {
                    try {
                        lower = obtainSlot(d, plan, v);
                    } catch (OutOfCacheSpaceException e) {
                        plan.exhausted[d] = true;
                        continue;
                    }
                }
                v.planId = plan.id;
                plan.move(v, d, lower);
                found[0] = vacated;
                return true;
            }
            if (v.cachedOnly()) {
                drop(plan, v);
                found[0] = vacated;
                return true;
            }
            return false;
        });
        if (found[0] < 0) {
            plan.exhausted[t] = true;
            throw new OutOfCacheSpaceException(noRoom(t));
        }
        claim(plan, t, found[0]);
        return found[0];
    }

    /** Records that a slot vacated in this plan is handed to another block (so it is not freed). */
    private static void claim(Plan plan, int t, int slot) {
        long claimed = ((long) t << 32) | slot;
        plan.claimedSlots.add(claimed);
        plan.undo.add(() -> plan.claimedSlots.remove(claimed));
    }

    /** A free slot of tier {@code t} for a block (persistent tiers apply their admission to its key), or -1. */
    private int allocateFree(int t, Plan plan, Block forBlock) {
        int slot = tiers[t] instanceof PersistentTier pt && forBlock.key != null
                ? pt.allocate(forBlock.key) : tiers[t].allocate();
        if (slot >= 0) {
            plan.undo.add(() -> tiers[t].free(slot));
        }
        return slot;
    }

    private String noRoom(int t) {
        return "no room in tier '" + tiers[t].name() + "' (" + tiers[t].slotCount()
                + " slots) or below: every block there is pinned or referenced";
    }

    /** Drops an unreferenced cached block to hand its slot to another block. */
    private void drop(Plan plan, Block v) {
        int t = v.tier;
        int slot = v.slot;
        BlockKey key = v.key;
        CompletableFuture<Void> ready = v.dataReady;
        v.planId = plan.id;
        blocks.remove(v.id);
        if (byKey.get(key) == v) {
            byKey.remove(key);
        }
        policy.onRemove(v.id, t);
        v.tier = -1;
        v.slot = -1;
        plan.undo.add(() -> {
            blocks.put(v.id, v);
            byKey.put(key, v);
            policy.onInsert(v.id, t);
            v.tier = t;
            v.slot = slot;
            v.dataReady = ready;
        });
        plan.onCommit.add(() -> {
            dropped[t]++;
            prefetched.remove(v.id);
            dropShadow(v);
            if (tiers[t] instanceof PersistentTier pt) {
                pt.unpublish(slot);
            }
        });
    }

    private boolean isProtected(Plan plan, long blockId) {
        int sink = policy.sinkBlocks();
        int recent = policy.recentBlocks();
        if (sink == 0 && recent == 0) {
            return false;
        }
        if (plan.protectedBlocks == null) {
            LongHashSet set = new LongHashSet();
            for (Sequence s : sequences.values()) {
                int n = s.blocks.size();
                for (int i = 0; i < Math.min(sink, n); i++) {
                    set.add(s.blocks.get(i).id);
                }
                for (int i = Math.max(0, n - recent); i < n; i++) {
                    set.add(s.blocks.get(i).id);
                }
            }
            plan.protectedBlocks = set;
        }
        return plan.protectedBlocks.contains(blockId);
    }

    // ------------------------------------------------------------------ execution

    private void submit(List<Move> moves) {
        if (moves.isEmpty()) {
            return;
        }
        Map<List<Integer>, List<Move>> groups = new LinkedHashMap<>();
        moves.stream()
                .sorted((a, b) -> Integer.compare(a.level, b.level))
                .forEach(m -> groups.computeIfAbsent(List.of(m.level, m.srcTier, m.dstTier), k -> new ArrayList<>())
                        .add(m));
        for (List<Move> group : groups.values()) {
            CompletableFuture<?>[] deps = new CompletableFuture<?>[group.size() * 2];
            for (int i = 0; i < group.size(); i++) {
                deps[2 * i] = group.get(i).srcReady;
                deps[2 * i + 1] = group.get(i).dstFree;
            }
            CompletableFuture.allOf(deps).handle((v, e) -> null)
                    .thenRunAsync(() -> runBatch(group), dispatcher);
        }
    }

    private void runBatch(List<Move> group) {
        Tier src = tiers[group.getFirst().srcTier];
        Tier dst = tiers[group.getFirst().dstTier];
        List<Move> ok = new ArrayList<>(group.size());
        for (Move m : group) {
            if (m.srcReady.isCompletedExceptionally()) {
                fail(m, new TierFailedException("source bytes of block " + m.source.id + " were lost"));
            } else if (src.failed()) {
                fail(m, new TierFailedException("tier '" + src.name() + "' has failed"));
            } else if (src instanceof PersistentTier pt && !verifySafely(pt, m.srcSlot)) {
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
        for (Move m : ok) {
            bm.add(new BlockMove(m.srcSlot, m.dstSlot));
        }
        try {
            TransferEngine engine = engineFor(src, dst);
            engine.submit(new TransferBatch(src, dst, bm)).completion().whenComplete((v, e) -> {
                for (Move m : ok) {
                    if (e != null) {
                        fail(m, e);
                    } else {
                        finish(m, dst);
                    }
                }
            });
        } catch (RuntimeException e) {
            for (Move m : ok) {
                fail(m, e);
            }
        }
    }

    /** Whether (tier, slot) still holds the bytes {@code ready} put there: the block's residency or lower copy. */
    private boolean holdsCopy(Block b, int tier, int slot, CompletableFuture<Void> ready) {
        return blocks.get(b.id) == b && !b.lost
                && (b.tier == tier && b.slot == slot && b.dataReady == ready
                        || b.shadowTier == tier && b.shadowSlot == slot && b.shadowReady == ready);
    }

    private static boolean verifySafely(PersistentTier pt, int slot) {
        try {
            return pt.verify(slot);
        } catch (RuntimeException e) {
            return false;
        }
    }

    private void finish(Move m, Tier dst) {
        if (dst instanceof PersistentTier pt) {
            lock.lock();
            try {
                // publish while the slot the copy filled still holds the block: as its residency, or as
                // the lower copy it kept when promoted out of the slot before this copy settled
                if (m.block.key != null && holdsCopy(m.block, m.dstTier, m.dstSlot, m.done)) {
                    pt.publish(m.dstSlot, m.block.key, m.block.parentKey);
                }
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "could not publish block " + m.block.id
                        + " in tier '" + dst.name() + "': " + e);
            } finally {
                lock.unlock();
            }
        }
        settle(m);
        m.done.complete(null);
    }

    /** Frees the source slot of a settled promotion, so that whoever awaits the copy sees it freed. */
    private void settle(Move m) {
        if (m.freeSourceWhenSettled || m.releaseWhenSettled != null) {
            lock.lock();
            try {
                if (m.freeSourceWhenSettled) {
                    tiers[m.srcTier].free(m.srcSlot);
                }
                if (m.releaseWhenSettled != null) {
                    releaseCow(m.releaseWhenSettled);
                }
            } finally {
                lock.unlock();
            }
        }
    }

    private void fail(Move m, Throwable e) {
        settle(m);
        lock.lock();
        try {
            if (m.block.dataReady == m.done && blocks.get(m.block.id) == m.block) {
                m.block.lost = true;
                blocksLost++;
                misses[m.srcTier]++;
                if (m.block.key != null && byKey.get(m.block.key) == m.block) {
                    byKey.remove(m.block.key);
                }
            }
        } finally {
            lock.unlock();
        }
        LOG.log(System.Logger.Level.WARNING, "copy of block " + m.block.id + " from tier '" + tiers[m.srcTier].name()
                + "' to '" + tiers[m.dstTier].name() + "' failed; the block is a miss: " + e);
        m.done.completeExceptionally(e);
    }

    private TransferEngine engineFor(Tier src, Tier dst) {
        for (TransferEngine e : engines) {
            if (e.supports(src, dst)) {
                return e;
            }
        }
        return cpuEngine;
    }

    // ------------------------------------------------------------------ handle operations

    BlockLostException lostFor(Sequence s, ResidencyHandle h, Throwable cause) {
        int first = h.fromBlock();
        for (int i = 0; i < h.blocks.length; i++) {
            if (h.blocks[i].dataReady.isCompletedExceptionally()) {
                first = h.fromBlock() + i;
                break;
            }
        }
        return new BlockLostException("block " + first + " of sequence " + s.id
                + " could not be made resident; recompute from there", first, cause);
    }

    void addWait(long nanos) {
        lock.lock();
        try {
            waitNanos += nanos;
        } finally {
            lock.unlock();
        }
    }

    private Block pinnedBlock(ResidencyHandle h, int i) {
        if (h.closed) {
            throw new InvalidHandleException("residency handle is closed");
        }
        return h.blocks[i];
    }

    void fillAddresses(ResidencyHandle h, long[] out) {
        lock.lock();
        try {
            for (int i = 0; i < out.length; i++) {
                out[i] = tiers[0].address(pinnedBlock(h, i).slot);
            }
        } finally {
            lock.unlock();
        }
    }

    long address(ResidencyHandle h, int i) {
        return locked(() -> tiers[0].address(pinnedBlock(h, i).slot));
    }

    MemorySegment view(ResidencyHandle h, int i) {
        return locked(() -> tiers[0].view(pinnedBlock(h, i).slot));
    }

    void write(ResidencyHandle h, int i, long offset, MemorySegment src) {
        int slot;
        lock.lock();
        try {
            Block b = pinnedBlock(h, i);
            if (b.key != null || b.refCount > 1) {
                throw new SharedBlockWriteException("block " + (h.fromBlock() + i) + " is shared ("
                        + (b.key != null ? "sealed under its content key" : b.refCount + " references")
                        + "); only a sequence's private blocks are written");
            }
            Tier.checkRange(tiers[0], offset, src.byteSize());
            slot = b.slot;
        } finally {
            lock.unlock();
        }
        tiers[0].write(slot, offset, src);
    }

    void read(ResidencyHandle h, int i, long offset, MemorySegment dst) {
        int slot = locked(() -> pinnedBlock(h, i).slot);
        tiers[0].read(slot, offset, dst);
    }

    void release(ResidencyHandle h) {
        lock.lock();
        try {
            if (h.closed) {
                throw new DoubleReleaseException("residency handle of blocks [" + h.fromBlock() + ", "
                        + (h.fromBlock() + h.blocks.length) + ") was already released");
            }
            h.closed = true;
            for (Block b : h.blocks) {
                b.pins--;
                maybeFree(b);
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
        Block b;
        int t;
        int slot;
        CompletableFuture<Void> ready;
        CompletableFuture<Void> reading = new CompletableFuture<>();
        lock.lock();
        try {
            checkBlockIndex(s, logicalBlock);
            if (dst.byteSize() < layout.blockBytes()) {
                throw new IllegalArgumentException("destination of " + dst.byteSize()
                        + " bytes is smaller than a block of " + layout.blockBytes() + " bytes");
            }
            b = s.blocks.get(logicalBlock);
            Block holder = b.materialized() ? b : b.cowFrom;
            if (b.lost || (holder != null && holder.lost)) {
                throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id + " was lost",
                        logicalBlock, null);
            }
            if (holder == null) {
                dst.asSlice(0, layout.blockBytes()).fill((byte) 0);
                return;
            }
            t = holder.tier;
            slot = holder.slot;
            ready = holder.dataReady;
            slotFree[t][slot] = combine(slotFree[t][slot], reading);
        } finally {
            lock.unlock();
        }
        try {
            ready.join();
            Tier tier = tiers[t];
            if (tier instanceof PersistentTier pt && !verifySafely(pt, slot)) {
                markLost(b, t);
                throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id
                        + " failed its checksum in tier '" + tier.name() + "'", logicalBlock, null);
            }
            try {
                tier.read(slot, 0, dst.asSlice(0, layout.blockBytes()));
            } catch (KvCacheException e) {
                markLost(b, t);
                throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id
                        + " could not be read from tier '" + tier.name() + "'", logicalBlock, e);
            }
        } catch (CompletionException e) {
            throw new BlockLostException("block " + logicalBlock + " of sequence " + s.id + " was lost",
                    logicalBlock, e.getCause());
        } finally {
            reading.complete(null);
        }
    }

    private void markLost(Block b, int tier) {
        lock.lock();
        try {
            if (!b.lost) {
                b.lost = true;
                blocksLost++;
                misses[tier]++;
                if (b.key != null && byKey.get(b.key) == b) {
                    byKey.remove(b.key);
                }
            }
        } finally {
            lock.unlock();
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
            List<Block> victims = new ArrayList<>();
            for (Block b : blocks.values()) {
                if (b.refCount == 0 && b.pins == 0 && b.cowReaders == 0) {
                    victims.add(b);
                }
            }
            for (Block b : victims) {
                if (b.materialized() && tiers[b.tier] instanceof PersistentTier pt) {
                    pt.unpublish(b.slot);
                }
                if (b.hasShadow() && tiers[b.shadowTier] instanceof PersistentTier pt) {
                    pt.unpublish(b.shadowSlot);
                }
                b.lost = true;
                freeBlock(b);
            }
            return victims.size();
        } finally {
            lock.unlock();
        }
    }

    /** @return a snapshot of the counters */
    public CacheStats stats() {
        lock.lock();
        try {
            List<TierStats> ts = new ArrayList<>(tiers.length);
            for (int t = 0; t < tiers.length; t++) {
                Tier tier = tiers[t];
                int used = tier.slotCount() - tier.freeSlots();
                ts.add(new TierStats(tier.name(), tier.backing(), tier.slotCount(), used,
                        tier.slotCount() * tier.slotBytes(), used * tier.slotBytes(), hits[t], misses[t],
                        promotedOut[t], demotedIn[t], dropped[t], tier.failed()));
            }
            return new CacheStats(ts, promotions, demotions, bytesPromoted, bytesDemoted, prefixLookupTokens,
                    prefixHitTokens, waitNanos, prefetchIssued, prefetchInTime, prefetchLate, blocksLost,
                    blocks.size());
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
            List<BlockInfo> out = new ArrayList<>(blocks.size());
            for (Block b : blocks.values()) {
                out.add(new BlockInfo(b.id, b.tier, b.slot, b.refCount, b.pins, b.key != null, b.lost));
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
     */
    public record BlockInfo(long id, int tier, int slot, int refCount, int pins, boolean sealed, boolean lost) {
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
     * Copies every sealed block held only in volatile tiers into the first persistent tier (as
     * far as its admission takes them), so the next process finds them. Blocks already published
     * there are skipped. Called by {@link #close()} unless the builder said otherwise.
     *
     * @return blocks written
     */
    private int persistSealedBlocks() {
        int target = -1;
        for (int t = 0; t < tiers.length && target < 0; t++) {
            if (tiers[t] instanceof PersistentTier && !tiers[t].failed()) {
                target = t;
            }
        }
        if (target < 0) {
            return 0;
        }
        PersistentTier pt = (PersistentTier) tiers[target];
        List<Block> sealed = new ArrayList<>();
        lock.lock();
        try {
            for (Block b : blocks.values()) {
                if (b.key != null && !b.lost && b.materialized() && !(tiers[b.tier] instanceof PersistentTier)
                        && !tiers[b.tier].failed()) {
                    sealed.add(b);
                }
            }
        } finally {
            lock.unlock();
        }
        int written = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(layout.blockBytes(), 4096);
            for (Block b : sealed) {
                if (pt.contains(b.key)) {
                    continue;
                }
                int slot = pt.allocate(b.key);
                if (slot < 0) {
                    continue;
                }
                try {
                    tiers[b.tier].read(b.slot, 0, bounce);
                    pt.write(slot, 0, bounce);
                    pt.publish(slot, b.key, b.parentKey);
                    written++;
                } catch (RuntimeException e) {
                    LOG.log(System.Logger.Level.WARNING, "could not persist block " + b.id + ": " + e);
                } finally {
                    // a published slot stays findable after the free; an unpublished one is simply free
                    pt.free(slot);
                }
            }
        }
        return written;
    }

    /** Waits for copies in flight, persists sealed blocks (see the builder), then closes the engines and the tiers. */
    @Override
    public void close() {
        List<CompletableFuture<?>> pending = new ArrayList<>();
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            for (Block b : blocks.values()) {
                pending.add(b.dataReady);
            }
            for (CompletableFuture<?>[] fs : slotFree) {
                pending.addAll(Arrays.asList(fs));
            }
        } finally {
            lock.unlock();
        }
        CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new)).handle((v, e) -> null).join();
        if (persistOnClose) {
            persistSealedBlocks();
        }
        dispatcher.shutdown();
        for (TransferEngine e : engines) {
            e.close();
        }
        for (Tier t : tiers) {
            t.close();
        }
    }
}
