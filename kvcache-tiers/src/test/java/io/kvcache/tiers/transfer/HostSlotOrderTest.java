package io.kvcache.tiers.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.transfer.BlockMove;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class HostSlotOrderTest {

    @ParameterizedTest(name = "{0} moves over {1} host slots")
    @CsvSource({"1, 1", "5, 7", "1000, 1000", "3000, 70000", "20000, 5000000", "100, 2147483647"})
    void ordersEveryMoveOnceByAscendingHostSlot(int n, int hostSlots) {
        SplittableRandom rnd = new SplittableRandom(n * 31L + hostSlots);
        HostSlotOrder order = new HostSlotOrder();
        for (boolean hostIsSource : new boolean[] {true, false}) {
            List<BlockMove> moves = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int host = rnd.nextInt(hostSlots);
                moves.add(hostIsSource ? new BlockMove(host, i) : new BlockMove(i, host));
            }
            long[] keys = order.sort(moves, hostIsSource, hostSlots);
            Set<Integer> seen = new HashSet<>();
            int last = -1;
            int lastIndex = -1;
            for (int k = 0; k < n; k++) {
                int idx = (int) keys[k];
                assertTrue(seen.add(idx), "index " + idx + " twice");
                BlockMove m = moves.get(idx);
                int slot = hostIsSource ? m.srcSlot() : m.dstSlot();
                assertTrue(slot >= last, "slot " + slot + " after " + last);
                if (slot == last) {
                    assertTrue(idx > lastIndex, "equal slots keep their order");
                }
                last = slot;
                lastIndex = idx;
            }
            assertEquals(n, seen.size());
        }
    }
}
