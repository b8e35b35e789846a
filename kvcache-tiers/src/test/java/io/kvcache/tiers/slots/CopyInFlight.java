package io.kvcache.tiers.slots;

import io.kvcache.core.transfer.BlockMove;
import java.util.List;

/** A copy that reads one slot, bracketed the way a transfer engine brackets a batch: for contract tests. */
public final class CopyInFlight {
    private CopyInFlight() {
    }

    /** @return ends the copy when closed */
    public static AutoCloseable reading(GuardedSlots slots, int slot) {
        List<BlockMove> copy = List.of(new BlockMove(slot, 0));
        slots.beginCopies(copy, true);
        return () -> slots.endCopies(copy, true);
    }
}
