package io.kvcache.core.tier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The contract every {@link Tier} implementation passes: a subclass per implementation
 * supplies the tier and the {@link TierSpec} of what it can do. Clauses that need a capability
 * the tier lacks are skipped with an assumption (JCTools' {@code QueueSanityTest} style), and
 * their counterparts for a tier without it run instead. A persistent tier's subclass extends
 * {@link PersistentTierContractTest}, which adds the {@link PersistentTier} clauses. Data is
 * random, never zeros, and compared byte for byte.
 */
public abstract class TierContractTest {
    /** 2 layers, 2 KV heads, head dim 16, fp16, 8 tokens per block: 2 KiB blocks. */
    protected static final KvLayout LAYOUT = new KvLayout(2, 2, 16, DType.FP16, 8);
    /** Slots every tier under test holds. */
    protected static final int SLOTS = 6;

    protected Tier tier;
    private Arena arena;

    /** @return a new tier of exactly {@link #SLOTS} slots of {@code LAYOUT.blockBytes()} bytes */
    protected abstract Tier createTier(KvLayout layout, long capacityBytes) throws Exception;

    /** @return what the tier under test can do */
    protected abstract TierSpec spec();

    /**
     * Starts an asynchronous copy that reads {@code slot}, the way a transfer engine brackets
     * one, for tiers whose spec {@linkplain TierSpec#defersFreesBehindCopies() defers frees
     * behind copies}.
     *
     * @return ends the copy when closed
     */
    protected AutoCloseable beginCopyReading(int slot) {
        throw new UnsupportedOperationException("the spec of " + getClass().getSimpleName()
                + " says it defers frees behind copies, but it does not override beginCopyReading");
    }

    @BeforeEach
    void open() throws Exception {
        tier = createTier(LAYOUT, SLOTS * LAYOUT.blockBytes());
        arena = Arena.ofConfined();
    }

    @AfterEach
    void closeTier() {
        tier.close();
        arena.close();
    }

    /** @return zeroed memory for one block, freed after the test */
    protected MemorySegment emptyBlock() {
        return arena.allocate(LAYOUT.blockBytes());
    }

    protected MemorySegment randomBlock(long seed) {
        MemorySegment m = arena.allocate(LAYOUT.blockBytes());
        Random r = new Random(seed);
        for (long i = 0; i < m.byteSize(); i++) {
            m.set(ValueLayout.JAVA_BYTE, i, (byte) (r.nextInt(255) + 1));
        }
        return m;
    }

    @Test
    void reportsItsGeometry() {
        assertEquals(LAYOUT.blockBytes(), tier.slotBytes());
        assertEquals(SLOTS, tier.slotCount());
        assertEquals(SLOTS, tier.freeSlots());
        assertTrue(!tier.backing().isBlank());
    }

    @Test
    void storedBlockReadsBackByteIdentical() {
        int[] slots = new int[SLOTS];
        for (int i = 0; i < SLOTS; i++) {
            slots[i] = tier.allocate();
            tier.write(slots[i], 0, randomBlock(i));
        }
        for (int i = SLOTS - 1; i >= 0; i--) {
            MemorySegment back = arena.allocate(LAYOUT.blockBytes());
            tier.read(slots[i], 0, back);
            assertArrayEquals(randomBlock(i).toArray(ValueLayout.JAVA_BYTE), back.toArray(ValueLayout.JAVA_BYTE),
                    "slot " + slots[i]);
        }
    }

    @Test
    void partialWriteAtOffsetChangesOnlyThatRange() {
        int s = tier.allocate();
        MemorySegment base = randomBlock(1);
        tier.write(s, 0, base);
        MemorySegment patch = randomBlock(2).asSlice(0, 100);
        tier.write(s, 300, patch);
        MemorySegment back = arena.allocate(LAYOUT.blockBytes());
        tier.read(s, 0, back);
        byte[] expected = base.toArray(ValueLayout.JAVA_BYTE);
        System.arraycopy(patch.toArray(ValueLayout.JAVA_BYTE), 0, expected, 300, 100);
        assertArrayEquals(expected, back.toArray(ValueLayout.JAVA_BYTE));
    }

    @Test
    void allocatesEachSlotOnceThenReportsFull() {
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < SLOTS; i++) {
            int s = tier.allocate();
            assertTrue(s >= 0 && s < SLOTS, "slot " + s);
            assertTrue(seen.add(s), "slot handed out twice: " + s);
        }
        assertEquals(0, tier.freeSlots());
        assertEquals(-1, tier.allocate());
    }

    @Test
    void freedSlotIsAllocatableAgain() {
        for (int i = 0; i < SLOTS; i++) {
            tier.allocate();
        }
        tier.free(3);
        assertEquals(1, tier.freeSlots());
        assertEquals(3, tier.allocate());
    }

    @Test
    void badSlotNumbersAreRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tier.free(SLOTS));
        assertTrue(e.getMessage().contains("slot " + SLOTS), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> tier.free(-1));
        assertThrows(IllegalArgumentException.class, () -> tier.read(SLOTS + 5, 0, arena.allocate(8)));
        assertThrows(IllegalArgumentException.class, () -> tier.write(-2, 0, arena.allocate(8)));
        assertEquals(SLOTS, tier.freeSlots());
    }

    @Test
    void freeingAFreeSlotIsRefusedAndChangesNothing() {
        int s = tier.allocate();
        tier.free(s);
        assertThrows(IllegalStateException.class, () -> tier.free(s));
        assertEquals(SLOTS, tier.freeSlots());
    }

    @Test
    void rangesPastTheSlotAreRefused() {
        int s = tier.allocate();
        assertThrows(IndexOutOfBoundsException.class,
                () -> tier.write(s, LAYOUT.blockBytes() - 4, arena.allocate(8)));
        assertThrows(IndexOutOfBoundsException.class, () -> tier.read(s, -1, arena.allocate(8)));
    }

    @Test
    void rangesWhoseEndWrapsPastLongMaxAreRefusedAndChangeNothing() {
        int s = tier.allocate();
        MemorySegment block = randomBlock(5);
        tier.write(s, 0, block);
        MemorySegment big = arena.allocate(LAYOUT.blockBytes() * 4);
        long[] offsets = {Long.MAX_VALUE, Long.MAX_VALUE - 1, Long.MAX_VALUE - LAYOUT.blockBytes()};
        for (long off : offsets) {
            assertThrows(IndexOutOfBoundsException.class, () -> tier.write(s, off, big), "write at " + off);
            assertThrows(IndexOutOfBoundsException.class, () -> tier.read(s, off, big), "read at " + off);
            assertThrows(IndexOutOfBoundsException.class, () -> tier.write(s, off, arena.allocate(8)), "write at " + off);
            assertThrows(IndexOutOfBoundsException.class, () -> tier.read(s, off, arena.allocate(8)), "read at " + off);
        }
        MemorySegment back = arena.allocate(LAYOUT.blockBytes());
        tier.read(s, 0, back);
        assertArrayEquals(block.toArray(ValueLayout.JAVA_BYTE), back.toArray(ValueLayout.JAVA_BYTE));
        assertEquals(SLOTS - 1, tier.freeSlots());
        assertTrue(!tier.failed());
    }

    @Test
    void capacityThatHoldsNoBlockIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> createTier(LAYOUT, LAYOUT.blockBytes() - 1).close());
        assertTrue(e.getMessage().contains("holds no block"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> createTier(LAYOUT, 0).close());
        assertThrows(IllegalArgumentException.class, () -> createTier(LAYOUT, -4096).close());
    }

    @Test
    void declaresWhatItsSpecSays() {
        assertEquals(spec().hostAccessible(), tier.hostAccessible(), "hostAccessible()");
        assertEquals(spec().persistent(), tier instanceof PersistentTier, "implements PersistentTier");
        assertEquals(spec().persistent(), this instanceof PersistentTierContractTest,
                "a persistent tier's contract test extends PersistentTierContractTest");
    }

    @Test
    void viewShowsTheSlotsBytesAndWritesThroughToThem() {
        assumeTrue(spec().hostAccessible(), "not host accessible");
        int s = tier.allocate();
        tier.write(s, 0, randomBlock(7));
        MemorySegment view = tier.view(s);
        assertEquals(LAYOUT.blockBytes(), view.byteSize());
        assertArrayEquals(randomBlock(7).toArray(ValueLayout.JAVA_BYTE), view.toArray(ValueLayout.JAVA_BYTE));
        MemorySegment.copy(randomBlock(8), 0, view, 0, LAYOUT.blockBytes());
        MemorySegment back = emptyBlock();
        tier.read(s, 0, back);
        assertArrayEquals(randomBlock(8).toArray(ValueLayout.JAVA_BYTE), back.toArray(ValueLayout.JAVA_BYTE));
    }

    @Test
    void viewIsRefusedWhenNotHostAccessible() {
        assumeFalse(spec().hostAccessible(), "host accessible");
        int s = tier.allocate();
        assertThrows(UnsupportedOperationException.class, () -> tier.view(s));
        tier.write(s, 0, randomBlock(3)); // the slot still works through read and write
        MemorySegment back = emptyBlock();
        tier.read(s, 0, back);
        assertArrayEquals(randomBlock(3).toArray(ValueLayout.JAVA_BYTE), back.toArray(ValueLayout.JAVA_BYTE));
    }

    @Test
    void aSlotFreedDuringACopyIsReusedOnlyAfterTheCopyEnds() throws Exception {
        assumeTrue(spec().defersFreesBehindCopies(), "does not defer frees behind copies");
        int s = tier.allocate();
        tier.write(s, 0, randomBlock(4));
        AutoCloseable copy = beginCopyReading(s);
        tier.free(s);
        assertEquals(SLOTS - 1, tier.freeSlots(), "a slot a copy still reads was counted free");
        Set<Integer> others = new HashSet<>();
        for (int i = 0; i < SLOTS - 1; i++) {
            int o = tier.allocate();
            assertTrue(o >= 0 && o != s, "slot " + s + " was handed out while a copy still read it");
            assertTrue(others.add(o), "slot handed out twice: " + o);
        }
        assertEquals(-1, tier.allocate());
        copy.close();
        assertEquals(1, tier.freeSlots());
        assertEquals(s, tier.allocate());
    }
}
