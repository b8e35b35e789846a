package io.kvcache.tiers.slots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.transfer.BlockMove;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class GuardedSlotsTest {

    @Test
    void allocatesEverySlotOnceThenReportsFull() {
        GuardedSlots s = new GuardedSlots("t", 5);
        Set<Integer> got = new HashSet<>();
        for (int i = 0; i < 5; i++) {
            got.add(s.allocate());
        }
        assertEquals(Set.of(0, 1, 2, 3, 4), got);
        assertEquals(-1, s.allocate());
        assertEquals(0, s.freeCount());
    }

    @Test
    void badFreesNameTheProblem() {
        GuardedSlots s = new GuardedSlots("host", 4);
        assertThrows(IllegalArgumentException.class, () -> s.free(4));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.free(1));
        assertEquals("slot 1 of tier 'host' is not allocated", e.getMessage());
        int a = s.allocate();
        s.free(a);
        assertThrows(IllegalStateException.class, () -> s.free(a));
    }

    @Test
    void aSlotFreedWhileACopyReadsItIsNotReusedUntilTheCopyEnds() {
        GuardedSlots s = new GuardedSlots("t", 2);
        int a = s.allocate();
        int b = s.allocate();
        List<BlockMove> moves = List.of(new BlockMove(a, 0));
        s.beginCopies(moves, true);
        s.free(a);
        assertEquals(0, s.freeCount());
        assertEquals(-1, s.allocate(), "slot still being read must not be handed out");
        assertFalse(s.isAllocated(a));
        s.endCopies(moves, true);
        assertEquals(1, s.freeCount());
        assertEquals(a, s.allocate());
        s.free(b);
    }

    @Test
    void aSlotFreedWhileACopyWritesItIsNotReusedUntilTheCopyEnds() {
        GuardedSlots s = new GuardedSlots("t", 1);
        int a = s.allocate();
        List<BlockMove> moves = List.of(new BlockMove(7, a));
        s.beginCopies(moves, false);
        s.free(a);
        assertEquals(-1, s.allocate());
        s.endCopies(moves, false);
        assertEquals(a, s.allocate());
    }

    @Test
    void conflictingBatchesAreRefusedAndLeaveNothingMarked() {
        GuardedSlots s = new GuardedSlots("dev", 4);
        int a = s.allocate();
        int b = s.allocate();
        int c = s.allocate();
        List<BlockMove> writeA = List.of(new BlockMove(0, a));
        s.beginCopies(writeA, false);
        // reading a slot being written
        assertThrows(IllegalStateException.class, () -> s.beginCopies(List.of(new BlockMove(b, 0), new BlockMove(a, 1)), true));
        assertFalse(s.inFlight(b), "refused batch marked nothing");
        // writing a slot being written
        assertThrows(IllegalStateException.class, () -> s.beginCopies(List.of(new BlockMove(0, c), new BlockMove(1, a)), false));
        assertFalse(s.inFlight(c));
        // the same destination twice in one batch
        IllegalArgumentException dup = assertThrows(IllegalArgumentException.class,
                () -> s.beginCopies(List.of(new BlockMove(0, b), new BlockMove(1, b)), false));
        assertTrue(dup.getMessage().contains("appears twice"), dup.getMessage());
        assertFalse(s.inFlight(b));
        // a slot that is not allocated
        assertThrows(IllegalStateException.class, () -> s.beginCopies(List.of(new BlockMove(3, 0)), true));
        s.endCopies(writeA, false);
        // reading the same slot from two batches is fine
        List<BlockMove> readB = List.of(new BlockMove(b, 0));
        s.beginCopies(readB, true);
        s.beginCopies(readB, true);
        assertThrows(IllegalStateException.class, () -> s.beginCopies(List.of(new BlockMove(0, b)), false),
                "writing a slot being read");
        s.endCopies(readB, true);
        assertTrue(s.inFlight(b));
        s.endCopies(readB, true);
        assertFalse(s.inFlight(b));
    }

    /**
     * A block restored layer by layer: batches of disjoint byte ranges of the same slots are in
     * flight together; a range overlapping one in flight, or a whole-slot copy, is refused with
     * nothing marked; a slot freed meanwhile is reused only after its last range lands.
     */
    @Test
    void copiesOfDisjointRangesOfOneSlotMayBeInFlightTogether() {
        GuardedSlots s = new GuardedSlots("dev", 4);
        int a = s.allocate();
        int b = s.allocate();
        List<BlockMove> toA = List.of(new BlockMove(0, a));
        s.beginCopies(toA, false, 0, 1024);
        s.beginCopies(toA, false, 1024, 2048);
        IllegalStateException overlap = assertThrows(IllegalStateException.class,
                () -> s.beginCopies(List.of(new BlockMove(0, b), new BlockMove(1, a)), false, 1000, 1100));
        assertTrue(overlap.getMessage().contains("bytes [1000, 1100) of slot " + a), overlap.getMessage());
        assertFalse(s.inFlight(b), "refused batch marked nothing");
        assertThrows(IllegalStateException.class, () -> s.beginCopies(toA, false), "a whole-slot write");
        assertThrows(IllegalStateException.class, () -> s.beginCopies(List.of(new BlockMove(a, 0)), true, 2000, 2100),
                "reading bytes being written");
        // reading other bytes of the slot is fine, and blocks a write of those bytes
        List<BlockMove> fromA = List.of(new BlockMove(a, 0));
        s.beginCopies(fromA, true, 4096, 8192);
        assertThrows(IllegalStateException.class, () -> s.beginCopies(toA, false, 4096, 4112));
        s.endCopies(fromA, true, 4096, 8192);
        s.free(a);
        s.endCopies(toA, false, 0, 1024);
        assertTrue(s.inFlight(a));
        assertEquals(2, s.freeCount(), "slot freed while its second range is in flight is not reusable yet");
        s.endCopies(toA, false, 1024, 2048);
        assertFalse(s.inFlight(a));
        assertEquals(3, s.freeCount());
        assertThrows(IllegalArgumentException.class, () -> s.beginCopies(List.of(new BlockMove(0, b)), false, 5, 5));
    }
}
