package io.kvcache.examples.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.Sequence;
import java.util.HashMap;
import java.util.Map;

/** Where a request's cached prefix was found, for {@link ServingRequest#cachedBlocksPerTier()}. */
final class CachedBlocks {
    private CachedBlocks() {
    }

    /** @return per tier, how many of the sequence's first {@code blocks} blocks it holds */
    static int[] perTier(KvCacheManager cache, Sequence seq, int blocks) {
        int[] perTier = new int[cache.tiers().size()];
        if (blocks == 0) {
            return perTier;
        }
        Map<Long, Integer> tierOf = new HashMap<>();
        cache.blockInfos().forEach(b -> tierOf.put(b.id(), b.tier()));
        for (int i = 0; i < blocks; i++) {
            Integer t = tierOf.get(cache.blockId(seq, i));
            if (t != null && t >= 0) {
                perTier[t]++;
            }
        }
        return perTier;
    }
}
