package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.block.PrefixHasher;
import io.kvcache.core.cost.CostModel;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import java.util.Arrays;
import java.util.Collection;
import java.util.function.UnaryOperator;
import org.agrona.collections.Long2ObjectHashMap;

/**
 * The open sequences and what each holds: its tokens, its block table (logical block to block),
 * the chained content keys of its full blocks, and how far its K/V is written. Opening matches
 * a prompt against cached blocks; marking K/V written seals full blocks under their keys.
 */
@GuardedBy("manager lock")
final class SequenceTable {
    private final KvCacheManager manager;
    private final KvLayout layout;
    private final String modelId;
    private final CostModel costModel;
    private final EvictionPolicy policy;
    private final BlockRegistry registry;
    private final PersistentTiers persistent;
    private final CacheCounters counters;
    private final Long2ObjectHashMap<Sequence> open = new Long2ObjectHashMap<>();
    private long nextSequenceId;

    SequenceTable(KvCacheManager manager, KvLayout layout, String modelId, CostModel costModel, EvictionPolicy policy,
                  BlockRegistry registry, PersistentTiers persistent, CacheCounters counters) {
        this.manager = manager;
        this.layout = layout;
        this.modelId = modelId;
        this.costModel = costModel;
        this.policy = policy;
        this.registry = registry;
        this.persistent = persistent;
        this.counters = counters;
    }

    Sequence get(long id) {
        return open.get(id);
    }

    Collection<Sequence> all() {
        return open.values();
    }

    /**
     * Opens a sequence, reusing the longest run of cached full blocks of the prompt (at least
     * one prompt token is left to compute). {@code keys} are the prompt's chained block keys,
     * hashed by the caller outside the lock.
     */
    Sequence open(byte[] salt, int[] tokens, BlockKey[] keys) {
        int bt = layout.blockTokens();
        int full = keys.length;
        Sequence s = new Sequence(manager, nextSequenceId++, salt, tokens.length);
        int matchable = tokens.length == full * bt ? full - 1 : full;
        int matched = 0;
        int inMemory = 0;
        while (inMemory < matchable && registry.inMemory(keys[inMemory])) {
            inMemory++;
        }
        if (inMemory < matchable) {
            persistent.prefetch(Arrays.asList(keys).subList(inMemory, matchable));
        }
        for (int i = 0; i < matchable; i++) {
            Block b = registry.findCached(keys[i]);
            int holderTier = b == null ? -1 : b.hasSlot() ? b.tier : b.cowFrom != null ? b.cowFrom.tier : -1;
            if (holderTier < 0 || (costModel != null && !costModel.reloadPays(holderTier))) {
                break;
            }
            b.refCount++;
            s.blocks.add(b);
            counters.hits[holderTier]++;
            persistent.reused(b);
            policy.onAccess(b.id, holderTier);
            matched++;
        }
        for (int i = 0; i < full; i++) {
            s.chainKeys.add(keys[i]);
        }
        System.arraycopy(tokens, 0, s.tokens, 0, matched * bt);
        s.length = matched * bt;
        s.written = s.length;
        s.cachedTokens = s.length;
        counters.prefixLookupTokens += tokens.length;
        counters.prefixHitTokens += s.cachedTokens;
        open.put(s.id, s);
        append(s, Arrays.copyOfRange(tokens, s.length, tokens.length));
        return s;
    }

    /**
     * Appends tokens. A shared, sealed or frozen partial last block is first replaced by a
     * copy-on-write block of its own, which copies the frozen bytes when first made resident.
     */
    void append(Sequence s, int[] newTokens) {
        int bt = layout.blockTokens();
        if (newTokens.length == 0) {
            return;
        }
        if (s.length % bt != 0) {
            Block last = s.blocks.getLast();
            if (last.immutable()) {
                s.blocks.set(s.blocks.size() - 1, registry.lazyCopyOf(last));
                registry.releaseRef(last);
            }
        }
        if (s.length + newTokens.length > s.tokens.length) {
            s.tokens = Arrays.copyOf(s.tokens, Math.max(s.tokens.length * 2, s.length + newTokens.length));
        }
        for (int t : newTokens) {
            if (s.length % bt == 0) {
                s.blocks.add(registry.createReferenced());
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

    /**
     * Declares K/V of tokens {@code [0, upTo)} written and seals the blocks that are now full.
     *
     * @throws PositionOutOfRangeException past the sequence
     * @throws UnwrittenKvException        when a block in the range never had a slot; nothing changed
     */
    void markWritten(Sequence s, int upTo) {
        if (upTo < 0 || upTo > s.length) {
            throw new PositionOutOfRangeException("cannot mark " + upTo + " tokens written: sequence "
                    + s.id + " has " + s.length + " tokens");
        }
        if (upTo <= s.written) {
            return;
        }
        int bt = layout.blockTokens();
        for (int i = s.written / bt; i <= (upTo - 1) / bt; i++) {
            Block b = s.blocks.get(i);
            if (!b.hasBytes() && !b.lost) {
                throw new UnwrittenKvException("cannot mark tokens [" + s.written + ", " + upTo
                        + ") of sequence " + s.id + " written: block " + i + " never had a slot, so no K/V of"
                        + " it was written; make it resident and write its K/V first");
            }
        }
        for (int i = s.written / bt; i < upTo / bt; i++) {
            seal(s, i);
        }
        s.written = upTo;
    }

    private void seal(Sequence s, int index) {
        Block b = s.blocks.get(index);
        if (b.key != null) {
            return;
        }
        BlockKey key = s.chainKeys.get(index);
        Block existing = registry.sealed(key);
        if (existing != null && !existing.lost) {
            if (b.pins == 0) {
                // the same prefix was computed twice: keep one copy
                existing.refCount++;
                s.blocks.set(index, existing);
                registry.releaseRef(b);
            }
            return;
        }
        b.key = key;
        b.parentKey = index == 0 ? null : s.chainKeys.get(index - 1);
        b.sealedNanos = System.nanoTime();
        registry.registerKey(key, b);
        persistent.sealed(b);
    }

    /**
     * Forks a sequence: written blocks are shared; the block holding the boundary between
     * written and unwritten K/V is copied for the fork at once ({@code snapshot}); blocks with
     * no K/V written yet are fresh.
     *
     * @throws OutOfCacheSpaceException when the boundary block's copy finds no room; nothing changed
     */
    Sequence fork(Sequence s, UnaryOperator<Block> snapshot) {
        int bt = layout.blockTokens();
        int boundary = s.written % bt != 0 && s.written < s.length ? s.written / bt : -1;
        Block boundaryCopy = boundary >= 0 ? snapshot.apply(s.blocks.get(boundary)) : null;
        Sequence f = new Sequence(manager, nextSequenceId++, s.salt, s.length);
        System.arraycopy(s.tokens, 0, f.tokens, 0, s.length);
        f.length = s.length;
        f.written = s.written;
        f.cachedTokens = s.cachedTokens;
        f.chainKeys.addAll(s.chainKeys);
        for (int i = 0; i < s.blocks.size(); i++) {
            Block b = s.blocks.get(i);
            if (i == boundary) {
                f.blocks.add(boundaryCopy);
            } else if (i * bt >= s.written) {
                f.blocks.add(registry.createReferenced());
            } else {
                b.refCount++;
                f.blocks.add(b);
            }
        }
        open.put(f.id, f);
        return f;
    }

    void truncate(Sequence s, int newLength) {
        if (newLength < 0 || newLength > s.length) {
            throw new PositionOutOfRangeException("cannot truncate sequence " + s.id + " of " + s.length
                    + " tokens to " + newLength);
        }
        int bt = layout.blockTokens();
        int keep = (newLength + bt - 1) / bt;
        while (s.blocks.size() > keep) {
            registry.releaseRef(s.blocks.removeLast());
        }
        while (s.chainKeys.size() > newLength / bt) {
            s.chainKeys.removeLast();
        }
        s.length = newLength;
        s.written = Math.min(s.written, newLength);
        s.cachedTokens = Math.min(s.cachedTokens, newLength);
    }

    void close(Sequence s) {
        if (s.closed) {
            return;
        }
        s.closed = true;
        open.remove(s.id);
        for (Block b : s.blocks) {
            registry.releaseRef(b);
        }
        s.blocks.clear();
    }
}
