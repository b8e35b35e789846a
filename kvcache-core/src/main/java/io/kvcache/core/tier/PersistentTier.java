package io.kvcache.core.tier;

import io.kvcache.core.block.BlockKey;
import java.util.List;

/**
 * A tier whose content-addressed blocks survive a restart. The manager publishes full, written
 * blocks under their key and looks keys up when a sequence opens.
 *
 * <p>Freeing a published slot releases the caller's hold, not the block: the block stays
 * published and can be found by {@link #lookup} until the tier needs the slot for a new
 * allocation and drops it (a tier decides which of its unreferenced published blocks to drop).
 * Such slots count as free in {@link #freeSlots()}. Reads of a published block verify its
 * checksum; a block that fails is reported with {@link BlockUnavailableException}.
 */
public interface PersistentTier extends Tier {

    /**
     * Finds a published block and takes ownership of its slot for the caller: the slot counts
     * as allocated until {@link #free(int)}.
     *
     * @return the slot holding the block, or -1 when absent
     */
    int lookup(BlockKey key);

    /**
     * Takes a free slot for a block that will be published under {@code key}. A bounded tier
     * that must drop one of its own unreferenced blocks to make room may refuse instead, when
     * its admission policy rates the block it would drop as more valuable than {@code key}
     * (a one-off block does not flush reused ones).
     *
     * @return a slot as {@link #allocate()} gives, or -1 when full or the block is not admitted
     */
    default int allocate(BlockKey key) {
        return allocate();
    }

    /**
     * @return the model whose KV this tier holds, or null when the tier does not record one; the
     *     manager refuses a tier made for another model than its own
     */
    default String modelId() {
        return null;
    }

    /**
     * A hint that the caller is about to {@link #lookup} these keys, in order (the blocks of a
     * prefix chain, first block first): a remote tier fetches them in one round trip, so that
     * the lookups that follow cost none. The default does nothing, which suits local tiers.
     */
    default void prefetch(List<BlockKey> keys) {
    }

    /** @return whether a block with this key is published, without taking its slot */
    boolean contains(BlockKey key);

    /**
     * Seals a slot's bytes under a key: records the key, length and checksum so that a later
     * {@link #lookup} (in this process or the next) finds it.
     */
    void publish(int slot, BlockKey key);

    /**
     * Publishes like {@link #publish(int, BlockKey)} and records the key of the block before
     * this one in its prefix chain, so that a bounded tier can drop leaf blocks of chains first.
     *
     * @param parent key of the previous block of the chain, or null for a chain's first block
     */
    default void publish(int slot, BlockKey key, BlockKey parent) {
        publish(slot, key);
    }

    /**
     * Verifies a slot's bytes against its recorded checksum. A slot that fails is quarantined:
     * it is unpublished and must not be served.
     *
     * @return true when the bytes verify or the slot was never published
     */
    boolean verify(int slot);

    /**
     * @return whether the tier knows the checksum of the bytes in a slot the caller holds (they
     *     were written whole, published or looked up since the slot was taken), so that a read of
     *     it is verified; false when a read could not tell wrong bytes from right ones
     */
    default boolean checksumKnown(int slot) {
        return true;
    }

    /**
     * Forgets the key published for a slot the caller keeps (the manager is about to reuse the
     * slot for other bytes), so that neither a lookup nor a restart can find it.
     */
    void unpublish(int slot);
}
