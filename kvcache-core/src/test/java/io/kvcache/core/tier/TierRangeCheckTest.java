package io.kvcache.core.tier;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class TierRangeCheckTest {
    /** A tier of two 2 KiB slots in heap memory. */
    private static final class HeapTier extends SegmentTier {
        HeapTier() {
            super("heap", TierKind.HOST, new KvLayout(2, 2, 16, DType.FP16, 8), 2 * 2048);
            pool(Arena.ofAuto().allocate(poolBytes()));
        }

        @Override
        public String backing() {
            return "heap";
        }

        @Override
        public void close() {
        }
    }

    @Test
    void rangesWhoseEndWrapsPastLongMaxAreRefused() {
        Tier t = new HeapTier();
        long slot = t.slotBytes();
        // offset + length wraps to a negative end, which passed an unchecked "end > slotBytes"
        long[][] bad = {
            {Long.MAX_VALUE, 1}, {Long.MAX_VALUE, Long.MAX_VALUE}, {Long.MAX_VALUE - 4, 8}, {1, Long.MAX_VALUE},
            {slot, Long.MAX_VALUE}, {Long.MAX_VALUE - slot + 1, slot}, {slot + 1, 0}, {-1, 1}, {0, -1},
            {0, slot + 1}, {slot, 1},
        };
        for (long[] r : bad) {
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                    () -> Tier.checkRange(t, r[0], r[1]), () -> "offset " + r[0] + " length " + r[1]);
            assertTrue(e.getMessage().contains(Long.toString(r[0])) && e.getMessage().contains(Long.toString(r[1]))
                    && e.getMessage().contains("'heap'"), e.getMessage());
        }
        long[][] good = {{0, 0}, {0, slot}, {slot, 0}, {slot - 1, 1}, {100, slot - 100}};
        for (long[] r : good) {
            assertDoesNotThrow(() -> Tier.checkRange(t, r[0], r[1]), () -> "offset " + r[0] + " length " + r[1]);
        }
    }
}
