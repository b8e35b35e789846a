package io.kvcache.core.tier;

/**
 * What a tier under {@link TierContractTest} can do. A clause of the contract that needs a
 * capability the tier lacks is skipped (an assumption fails), and the clauses that say what a
 * tier without it must do run instead, in the style of JCTools' {@code ConcurrentQueueSpec}.
 *
 * @param hostAccessible          {@link Tier#view} gives host memory ({@link Tier#hostAccessible()} is true)
 * @param persistent              the tier is a {@link PersistentTier}: its published blocks outlive a reopen
 *                                (its subclass extends {@link PersistentTierContractTest})
 * @param defersFreesBehindCopies a slot freed while an asynchronous copy still uses it returns to the free
 *                                pool only when the copy ends (the subclass overrides
 *                                {@link TierContractTest#beginCopyReading})
 * @param storeBoundedBySlots     (persistent tiers) a published block occupies one of the tier's slots until
 *                                the tier drops it for room (a disk file of slots); false for a tier whose
 *                                slots only stage blocks of a larger store (a remote tier), where taking a
 *                                slot for room drops the local copy and the block stays published
 */
public record TierSpec(boolean hostAccessible, boolean persistent, boolean defersFreesBehindCopies,
                       boolean storeBoundedBySlots) {
    /** Host memory with no copy tracking: heap, mmap and simulated tiers. */
    public static final TierSpec HOST_MEMORY = new TierSpec(true, false, false);

    /** A spec whose store, when persistent, is bounded by its slots. */
    public TierSpec(boolean hostAccessible, boolean persistent, boolean defersFreesBehindCopies) {
        this(hostAccessible, persistent, defersFreesBehindCopies, true);
    }
}
