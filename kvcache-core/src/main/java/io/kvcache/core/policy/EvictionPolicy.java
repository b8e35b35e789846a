package io.kvcache.core.policy;

import java.util.function.LongPredicate;

/**
 * Chooses which unpinned block leaves a full tier. The manager tells the policy where blocks
 * are and how they are used, and asks it for candidates in eviction order; the manager skips
 * candidates that cannot move (pinned, in flight).
 *
 * <p>Thread safety: called only under the manager's lock; implementations need no locking.
 */
public interface EvictionPolicy {

    /** A block was placed in a tier. */
    void onInsert(long blockId, int tier);

    /** A block left the tiers for good (freed or dropped); the policy forgets it. */
    void onRemove(long blockId, int tier);

    /**
     * A block moved from one tier to another (promoted, demoted, or fell back to its lower
     * copy). What the policy knows of it (scores, age) carries over.
     */
    default void onMove(long blockId, int fromTier, int toTier) {
        onRemove(blockId, fromTier);
        onInsert(blockId, toTier);
    }

    /** A block was used by a decode step. */
    void onAccess(long blockId, int tier);

    /**
     * The engine reports attention mass a block received in the latest step.
     *
     * @param mass non-negative share of attention, summed over heads and layers as the engine likes
     */
    default void onAttention(long blockId, double mass) {
    }

    /** A decode step finished (policies with decay age their scores). */
    default void onStep() {
    }

    /**
     * Offers the blocks of a tier in eviction order, first the most evictable.
     *
     * @param tier        tier index
     * @param isProtected true for blocks the policy should offer only after every other block
     *                    (attention sinks and recent windows); policies may ignore it
     * @param visitor     returns true to stop the iteration
     */
    void forEachCandidate(int tier, LongPredicate isProtected, LongPredicate visitor);

    /** @return leading blocks of each sequence protected from eviction (attention sinks) */
    default int sinkBlocks() {
        return 0;
    }

    /** @return trailing blocks of each sequence protected from eviction (recent window) */
    default int recentBlocks() {
        return 0;
    }

    /** @return least-recently-used eviction */
    static EvictionPolicy lru() {
        return new LruPolicy();
    }

    /**
     * @param sinkBlocks   leading blocks per sequence kept (attention sinks), >= 0
     * @param recentBlocks trailing blocks per sequence kept (recent window), >= 0
     * @param decay        factor in (0, 1] applied to a block's score each step
     * @return eviction of the block with the lowest decayed attention mass (H2O-style)
     */
    static EvictionPolicy attentionScore(int sinkBlocks, int recentBlocks, double decay) {
        return new AttentionScorePolicy(sinkBlocks, recentBlocks, decay);
    }
}
