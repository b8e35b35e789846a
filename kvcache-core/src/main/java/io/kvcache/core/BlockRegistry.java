package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.policy.EvictionPolicy;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.agrona.collections.Long2ObjectHashMap;

/**
 * Every block the manager knows, by id and, once sealed, by content key; their reference
 * counts, and what happens when a block's last holder lets go. The pool of vLLM's block manager:
 * the only writer of {@link Block#refCount}, {@link Block#cowReaders} and {@link Block#registered}.
 */
@GuardedBy("manager lock")
final class BlockRegistry {
    private final Long2ObjectHashMap<Block> blocks = new Long2ObjectHashMap<>();
    private final Map<BlockKey, Block> byKey = new HashMap<>();
    private final SlotFences fences;
    private final LowerCopies lowerCopies;
    private final PersistentTiers persistent;
    private final PrefetchTracker prefetch;
    private final CacheCounters counters;
    private final EvictionPolicy policy;
    private final PartialSlots partial;
    private long nextBlockId;

    BlockRegistry(SlotFences fences, LowerCopies lowerCopies, PersistentTiers persistent, PrefetchTracker prefetch,
                  CacheCounters counters, EvictionPolicy policy, PartialSlots partial) {
        this.partial = partial;
        this.fences = fences;
        this.lowerCopies = lowerCopies;
        this.persistent = persistent;
        this.prefetch = prefetch;
        this.counters = counters;
        this.policy = policy;
    }

    /** @return a new block with no bytes and no references */
    Block create() {
        Block b = new Block(nextBlockId++);
        add(b);
        return b;
    }

    /** @return a new block referenced once (by the sequence about to hold it) */
    Block createReferenced() {
        Block b = create();
        b.refCount = 1;
        return b;
    }

    void add(Block b) {
        blocks.put(b.id, b);
        b.registered = true;
    }

    void remove(Block b) {
        blocks.remove(b.id);
        b.registered = false;
    }

    Block get(long id) {
        return blocks.get(id);
    }

    int size() {
        return blocks.size();
    }

    Collection<Block> all() {
        return blocks.values();
    }

    /** @return the sealed block registered under a key, lost or not, or null */
    Block sealed(BlockKey key) {
        return byKey.get(key);
    }

    void registerKey(BlockKey key, Block b) {
        byKey.put(key, b);
    }

    void unregisterKey(Block b) {
        if (b.key != null && byKey.get(b.key) == b) {
            byKey.remove(b.key);
        }
    }

    /** @return whether a block with this content key is registered (in memory or a tier already), without looking further */
    boolean inMemory(BlockKey key) {
        return byKey.containsKey(key);
    }

    /**
     * @return a block with this content key that can be served: one in memory, or one published
     *     in a persistent tier (registered on the way); null when none
     */
    Block findCached(BlockKey key) {
        Block b = byKey.get(key);
        if (b != null) {
            return b.lost ? null : b;
        }
        long at = persistent.find(key);
        if (at < 0) {
            return null;
        }
        b = create();
        b.key = key;
        b.tier = (int) (at >>> 32);
        b.slot = (int) at;
        b.persisted = b.tier == persistent.writeTier;
        byKey.put(key, b);
        policy.onInsert(b.id, b.tier);
        return b;
    }

    /**
     * A new private block that copies {@code original}'s bytes when first made resident. The
     * block it copies from is frozen until then ({@link Block#cowReaders}).
     */
    Block lazyCopyOf(Block original) {
        Block b = createReferenced();
        Block source = original.hasSlot() ? original : original.cowFrom;
        if (original.lost || (source != null && source.lost)) {
            b.lost = true;
        } else if (source != null) {
            source.cowReaders++;
            b.cowFrom = source;
        }
        return b;
    }

    void releaseRef(Block b) {
        if (b.refCount <= 0) {
            throw new IllegalStateException("reference count of block " + b.id + " would go negative");
        }
        b.refCount--;
        maybeFree(b);
    }

    void releaseCow(Block b) {
        if (b.cowReaders <= 0) {
            throw new IllegalStateException("copy-on-write readers of block " + b.id + " would go negative");
        }
        b.cowReaders--;
        maybeFree(b);
    }

    /** Frees a block nobody holds, unless it is sealed and cached (then it stays, droppable). */
    void maybeFree(Block b) {
        if (b.refCount == 0 && b.pins == 0 && b.cowReaders == 0 && (b.key == null || b.lost)) {
            free(b);
        }
    }

    private void free(Block b) {
        lowerCopies.drop(b);
        partial.drop(b);
        if (b.hasSlot()) {
            fences.release(b.tier, b.slot);
            policy.onRemove(b.id, b.tier);
            b.tier = -1;
            b.slot = -1;
        }
        unregisterKey(b);
        remove(b);
        prefetch.forget(b.id);
        if (b.cowFrom != null) {
            Block src = b.cowFrom;
            b.cowFrom = null;
            releaseCow(src);
        }
    }

    /** Marks a block's bytes a reported miss (counted against the tier that could not serve them). */
    void markLost(Block b, int tier) {
        if (!b.lost) {
            b.lost = true;
            counters.lost(tier);
            unregisterKey(b);
        }
    }

    /**
     * Drops every cached block no sequence references and no handle pins, from every tier,
     * unpublishing its persistent copies.
     *
     * @return blocks dropped
     */
    int dropUnreferenced() {
        List<Block> victims = new ArrayList<>();
        for (Block b : blocks.values()) {
            if (b.refCount == 0 && b.pins == 0 && b.cowReaders == 0) {
                victims.add(b);
            }
        }
        for (Block b : victims) {
            persistent.unpublishAll(b);
            b.lost = true;
            free(b);
        }
        return victims.size();
    }

    /** @return blocks of tier {@code t} pinned by open handles (for messages) */
    int pinnedIn(int t) {
        int pinned = 0;
        for (Block b : blocks.values()) {
            if (b.tier == t && b.pins > 0) {
                pinned++;
            }
        }
        return pinned;
    }
}
