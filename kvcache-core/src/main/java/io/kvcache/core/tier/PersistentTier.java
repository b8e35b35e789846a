package io.kvcache.core.tier;

import io.kvcache.core.block.BlockKey;

/**
 * A tier whose content-addressed blocks survive a restart. The manager publishes full, written
 * blocks under their key and looks keys up when a sequence opens.
 */
public interface PersistentTier extends Tier {

    /**
     * Finds a published block and takes ownership of its slot for the caller: the slot counts
     * as allocated until {@link #free(int)}.
     *
     * @return the slot holding the block, or -1 when absent
     */
    int lookup(BlockKey key);

    /** @return whether a block with this key is published, without taking its slot */
    boolean contains(BlockKey key);

    /**
     * Seals a slot's bytes under a key: records the key, length and checksum so that a later
     * {@link #lookup} (in this process or the next) finds it.
     */
    void publish(int slot, BlockKey key);

    /**
     * Verifies a slot's bytes against its recorded checksum. A slot that fails is quarantined:
     * it is unpublished and must not be served.
     *
     * @return true when the bytes verify or the slot was never published
     */
    boolean verify(int slot);

    /**
     * Forgets the key published for a slot the caller keeps (the manager is about to reuse the
     * slot for other bytes), so that neither a lookup nor a restart can find it.
     */
    void unpublish(int slot);
}
