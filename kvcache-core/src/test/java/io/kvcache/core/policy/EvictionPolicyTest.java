package io.kvcache.core.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class EvictionPolicyTest {
    static List<Long> order(EvictionPolicy p, int tier, java.util.function.LongPredicate prot) {
        List<Long> out = new ArrayList<>();
        p.forEachCandidate(tier, prot, id -> {
            out.add(id);
            return false;
        });
        return out;
    }

    @Test
    void lruOffersLeastRecentlyUsedFirstPerTier() {
        EvictionPolicy p = EvictionPolicy.lru();
        p.onInsert(1, 0);
        p.onInsert(2, 0);
        p.onInsert(3, 0);
        p.onInsert(4, 1);
        p.onAccess(1, 0);
        assertEquals(List.of(2L, 3L, 1L), order(p, 0, id -> false));
        p.onRemove(3, 0);
        p.onInsert(3, 1);
        assertEquals(List.of(2L, 1L), order(p, 0, id -> false));
        assertEquals(List.of(4L, 3L), order(p, 1, id -> false));
    }

    @Test
    void lruStopsWhenTheVisitorSaysSo() {
        EvictionPolicy p = EvictionPolicy.lru();
        for (long i = 0; i < 5; i++) {
            p.onInsert(i, 0);
        }
        List<Long> seen = new ArrayList<>();
        p.forEachCandidate(0, id -> false, id -> {
            seen.add(id);
            return id == 1;
        });
        assertEquals(List.of(0L, 1L), seen);
    }

    @Test
    void attentionOffersLowestDecayedScoreFirstAndProtectedLast() {
        EvictionPolicy p = EvictionPolicy.attentionScore(1, 1, 0.5);
        for (long i = 0; i < 4; i++) {
            p.onInsert(i, 0);
        }
        p.onAttention(0, 1.0);
        p.onAttention(1, 4.0);
        p.onStep();
        p.onStep();
        p.onAttention(2, 1.5); // fresh 1.5 beats 4.0 * 0.25 = 1.0
        assertEquals(List.of(3L, 1L, 2L, 0L), order(p, 0, id -> id == 0));
        assertEquals(List.of(3L, 0L, 1L, 2L), order(p, 0, id -> false));
    }

    @Test
    void attentionRefusesNegativeMassAndBadDecay() {
        EvictionPolicy p = EvictionPolicy.attentionScore(0, 0, 0.9);
        assertThrows(IllegalArgumentException.class, () -> p.onAttention(1, -1));
        assertThrows(IllegalArgumentException.class, () -> p.onAttention(1, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> EvictionPolicy.attentionScore(0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> EvictionPolicy.attentionScore(-1, 0, 0.5));
    }
}
