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
 */
public record TierSpec(boolean hostAccessible, boolean persistent, boolean defersFreesBehindCopies) {
    /** Host memory with no copy tracking: heap, mmap and simulated tiers. */
    public static final TierSpec HOST_MEMORY = new TierSpec(true, false, false);
}
