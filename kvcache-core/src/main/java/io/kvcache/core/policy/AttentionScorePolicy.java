package io.kvcache.core.policy;

import java.util.ArrayList;
import java.util.List;
import java.util.function.LongPredicate;
import org.agrona.collections.Long2LongHashMap;
import org.agrona.collections.LongHashSet;
import org.agrona.collections.LongArrayList;

/**
 * Evicts the block with the lowest decayed attention mass (H2O / InfLLM-style heavy hitters).
 * A block's score is the sum of reported masses, each multiplied by {@code decay} once per step
 * since it was reported; decay is applied lazily from the step the score was last touched.
 * Attention sinks and the recent window of each sequence are offered only after every other
 * block. Ties (e.g. blocks never attended) fall back to insertion order, oldest first.
 */
final class AttentionScorePolicy implements EvictionPolicy {
    private final int sinkBlocks;
    private final int recentBlocks;
    private final double decay;
    private final Long2LongHashMap scoreBits = new Long2LongHashMap(Long.MIN_VALUE);
    private final Long2LongHashMap scoreStep = new Long2LongHashMap(-1);
    private final Long2LongHashMap tierOf = new Long2LongHashMap(-1);
    private final Long2LongHashMap order = new Long2LongHashMap(-1);
    private long step;
    private long sequence;

    AttentionScorePolicy(int sinkBlocks, int recentBlocks, double decay) {
        if (sinkBlocks < 0 || recentBlocks < 0) {
            throw new IllegalArgumentException("sink and recent block counts must be >= 0, were "
                    + sinkBlocks + " and " + recentBlocks);
        }
        if (!(decay > 0 && decay <= 1)) {
            throw new IllegalArgumentException("decay must be in (0, 1], was " + decay);
        }
        this.sinkBlocks = sinkBlocks;
        this.recentBlocks = recentBlocks;
        this.decay = decay;
    }

    @Override
    public void onInsert(long blockId, int tier) {
        tierOf.put(blockId, tier);
        if (!order.containsKey(blockId)) {
            order.put(blockId, sequence++);
        }
    }

    @Override
    public void onRemove(long blockId, int tier) {
        tierOf.remove(blockId);
        order.remove(blockId);
        scoreBits.remove(blockId);
        scoreStep.remove(blockId);
    }

    @Override
    public void onMove(long blockId, int fromTier, int toTier) {
        if (tierOf.containsKey(blockId)) {
            tierOf.put(blockId, toTier);
        } else {
            onInsert(blockId, toTier);
        }
    }

    /** @return blocks the policy holds any state for (placed blocks, scores) */
    int trackedBlocks() {
        LongHashSet ids = new LongHashSet();
        tierOf.forEach((id, t) -> ids.add(id));
        scoreBits.forEach((id, v) -> ids.add(id));
        return ids.size();
    }

    @Override
    public void onAccess(long blockId, int tier) {
        if (tierOf.containsKey(blockId)) {
            tierOf.put(blockId, tier);
        }
    }

    @Override
    public void onAttention(long blockId, double mass) {
        if (!(mass >= 0) || Double.isInfinite(mass)) {
            throw new IllegalArgumentException("attention mass must be finite and >= 0, was " + mass);
        }
        if (!tierOf.containsKey(blockId)) {
            return; // a block with no bytes in any tier: nothing to evict, nothing to remember
        }
        scoreBits.put(blockId, Double.doubleToRawLongBits(score(blockId) + mass));
        scoreStep.put(blockId, step);
    }

    @Override
    public void onStep() {
        step++;
    }

    /** @return the block's decayed score now */
    double score(long blockId) {
        long bits = scoreBits.get(blockId);
        if (bits == Long.MIN_VALUE) {
            return 0;
        }
        long age = step - scoreStep.get(blockId);
        return Double.longBitsToDouble(bits) * Math.pow(decay, age);
    }

    @Override
    public void forEachCandidate(int tier, LongPredicate isProtected, LongPredicate visitor) {
        LongArrayList open = new LongArrayList();
        LongArrayList kept = new LongArrayList();
        tierOf.forEach((id, t) -> {
            if (t == tier) {
                (isProtected.test(id) ? kept : open).addLong(id);
            }
        });
        for (LongArrayList group : List.of(open, kept)) {
            List<long[]> ranked = new ArrayList<>(group.size());
            for (int i = 0; i < group.size(); i++) {
                long id = group.getLong(i);
                ranked.add(new long[] {id, Double.doubleToLongBits(score(id)), order.get(id)});
            }
            ranked.sort((a, b) -> {
                int c = Double.compare(Double.longBitsToDouble(a[1]), Double.longBitsToDouble(b[1]));
                return c != 0 ? c : Long.compare(a[2], b[2]);
            });
            for (long[] r : ranked) {
                if (visitor.test(r[0])) {
                    return;
                }
            }
        }
    }

    @Override
    public int sinkBlocks() {
        return sinkBlocks;
    }

    @Override
    public int recentBlocks() {
        return recentBlocks;
    }
}
