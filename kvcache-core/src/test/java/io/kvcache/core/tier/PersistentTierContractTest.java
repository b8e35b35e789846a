package io.kvcache.core.tier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvcache.core.block.BlockKey;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.junit.jupiter.api.Test;

/**
 * The contract every {@link PersistentTier} passes, on top of {@link TierContractTest}'s:
 * publish, lookup, contains, unpublish and verify; a freed published block stays published and
 * counts as free; {@link PersistentTier#allocate(BlockKey)} takes free room first and never
 * drops a held block; published blocks survive a reopen with identical bytes; a block whose
 * stored bytes fail their checksum is a miss, never served. A subclass supplies, besides the
 * tier, a way to reopen its storage and to damage stored bytes behind the tier's back.
 */
public abstract class PersistentTierContractTest extends TierContractTest {

    /**
     * Opens again the storage of the tier {@link #createTier} made last, which the caller has
     * closed.
     */
    protected abstract PersistentTier reopenStorage() throws Exception;

    /** Changes one stored byte of a slot's block behind the open tier's back, so that its checksum fails. */
    protected abstract void corruptStoredBytes(PersistentTier tier, int slot) throws Exception;

    /** @return the tier under test */
    protected PersistentTier persistent() {
        return (PersistentTier) tier;
    }

    /** Closes the tier and opens its storage again. */
    protected void reopen() throws Exception {
        tier.close();
        tier = reopenStorage();
    }

    protected static BlockKey key(long id) {
        try {
            return BlockKey.of(MessageDigest.getInstance("SHA-256").digest(ByteBuffer.allocate(8).putLong(id).array()));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** Allocates a slot for block {@code id}, writes its bytes whole and publishes it. @return the slot, held */
    protected int store(long id, BlockKey parent) {
        int slot = persistent().allocate(key(id));
        assertTrue(slot >= 0, "no slot for block " + id);
        tier.write(slot, 0, randomBlock(id));
        persistent().publish(slot, key(id), parent);
        return slot;
    }

    protected boolean holdsBlock(int slot, long id) {
        MemorySegment back = emptyBlock();
        tier.read(slot, 0, back);
        return back.mismatch(randomBlock(id)) == -1;
    }

    private int publishedOf(long first, int count) {
        int n = 0;
        for (long id = first; id < first + count; id++) {
            n += persistent().contains(key(id)) ? 1 : 0;
        }
        return n;
    }

    @Test
    void aPublishedBlockIsFoundWithItsBytesOnceFreed() {
        int slot = store(1, null);
        assertTrue(persistent().contains(key(1)));
        assertEquals(-1, persistent().lookup(key(1)), "a held block was handed out a second time");
        tier.free(slot);
        assertTrue(persistent().contains(key(1)), "freeing a published slot forgot its block");
        assertEquals(SLOTS, tier.freeSlots(), "a freed published slot does not count as free");
        int found = persistent().lookup(key(1));
        assertTrue(found >= 0);
        assertTrue(persistent().verify(found));
        assertTrue(holdsBlock(found, 1));
        assertEquals(SLOTS - 1, tier.freeSlots(), "a looked-up slot still counts as free");
        assertEquals(-1, persistent().lookup(key(1)), "a looked-up block was handed out a second time");
        tier.free(found);
        assertEquals(-1, persistent().lookup(key(99)));
        assertFalse(persistent().contains(key(99)));
    }

    @Test
    void containsDoesNotTakeTheSlot() {
        tier.free(store(2, null));
        for (int i = 0; i < 3; i++) {
            assertTrue(persistent().contains(key(2)));
        }
        assertEquals(SLOTS, tier.freeSlots());
        int slot = persistent().lookup(key(2));
        assertTrue(slot >= 0);
        tier.free(slot);
    }

    @Test
    void publishingAgainUnderTheSameKeyChangesNothing() {
        int slot = store(3, null);
        persistent().publish(slot, key(3));
        persistent().publish(slot, key(3), null);
        tier.free(slot);
        int found = persistent().lookup(key(3));
        assertEquals(slot, found);
        assertTrue(holdsBlock(found, 3));
        tier.free(found);
    }

    @Test
    void publishingAnUnheldSlotIsRefused() {
        assertThrows(IllegalStateException.class, () -> persistent().publish(0, key(4)));
        assertFalse(persistent().contains(key(4)));
    }

    @Test
    void unpublishForgetsTheBlockAndTheCallerKeepsTheSlot() throws Exception {
        int slot = store(5, null);
        persistent().unpublish(slot);
        assertFalse(persistent().contains(key(5)));
        assertEquals(-1, persistent().lookup(key(5)));
        tier.write(slot, 0, randomBlock(6)); // still held
        tier.free(slot);
        assertEquals(SLOTS, tier.freeSlots());
        reopen();
        assertFalse(persistent().contains(key(5)), "an unpublished block came back after a reopen");
    }

    @Test
    void writingAHeldPublishedSlotUnpublishesItsBlock() {
        int slot = store(7, null);
        tier.write(slot, 0, randomBlock(8));
        assertFalse(persistent().contains(key(7)), "a block whose bytes changed is still published");
        tier.free(slot);
        assertEquals(-1, persistent().lookup(key(7)));
    }

    @Test
    void verifyPassesIntactBytesAndSlotsNeverPublished() {
        int never = tier.allocate();
        assertTrue(persistent().verify(never));
        int slot = store(9, null);
        assertTrue(persistent().verify(slot));
        assertTrue(persistent().contains(key(9)));
        tier.free(slot);
        tier.free(never);
    }

    @Test
    void blocksWhoseStoredBytesFailTheirChecksumAreMisses() throws Exception {
        int a = store(10, null);
        int b = store(11, null);
        corruptStoredBytes(persistent(), a);
        corruptStoredBytes(persistent(), b);
        assertFalse(persistent().verify(a), "verify passed corrupted bytes");
        MemorySegment dst = emptyBlock();
        assertThrows(BlockUnavailableException.class, () -> tier.read(b, 0, dst), "corrupted bytes were served");
        assertFalse(persistent().contains(key(10)), "a block that failed its checksum is still published");
        assertFalse(persistent().contains(key(11)), "a block that failed its checksum is still published");
        tier.free(a);
        tier.free(b);
        assertEquals(-1, persistent().lookup(key(10)));
        assertEquals(-1, persistent().lookup(key(11)));
        assertEquals(SLOTS, tier.freeSlots());
    }

    @Test
    void aBlockCorruptedWhileUnheldIsAMissOnceLookedUp() throws Exception {
        int slot = store(12, null);
        tier.free(slot);
        corruptStoredBytes(persistent(), slot);
        int found = persistent().lookup(key(12));
        if (found >= 0) { // a tier may check at lookup or, as the caller does anyway, at verify and read
            assertFalse(persistent().verify(found), "verify passed corrupted bytes");
            assertFalse(persistent().contains(key(12)));
            tier.free(found);
        }
        assertEquals(-1, persistent().lookup(key(12)));
        assertEquals(SLOTS, tier.freeSlots());
    }

    @Test
    void allocateForAKeyTakesFreeRoomBeforeDroppingABlock() {
        for (int id = 0; id < SLOTS / 2; id++) {
            tier.free(store(id, null));
        }
        for (int i = 0; i < SLOTS - SLOTS / 2; i++) {
            assertTrue(persistent().allocate(key(100 + i)) >= 0, "refused with free room");
        }
        assertEquals(SLOTS / 2, publishedOf(0, SLOTS / 2), "a block was dropped while free slots remained");
    }

    @Test
    void allocateForAKeyWhenFullDropsOneUnheldBlockOrRefuses() {
        assumeTrue(spec().storeBoundedBySlots(), "store not bounded by the tier's slots");
        for (int id = 0; id < SLOTS; id++) {
            tier.free(store(id, null));
        }
        assertEquals(SLOTS, tier.freeSlots());
        int slot = persistent().allocate(key(100));
        if (slot < 0) {
            assertEquals(SLOTS, publishedOf(0, SLOTS), "a refused allocation dropped a block");
            assertEquals(SLOTS, tier.freeSlots());
        } else {
            assertEquals(SLOTS - 1, publishedOf(0, SLOTS), "not exactly one block was dropped for room");
            assertEquals(SLOTS - 1, tier.freeSlots());
            tier.write(slot, 0, randomBlock(100));
            persistent().publish(slot, key(100));
            tier.free(slot);
        }
    }

    @Test
    void aHeldBlockIsNeverDroppedForRoom() {
        int[] held = new int[SLOTS];
        for (int id = 0; id < SLOTS; id++) {
            held[id] = store(id, id == 0 ? null : key(id - 1));
        }
        assertEquals(-1, persistent().allocate(key(100)));
        assertEquals(-1, tier.allocate());
        assertEquals(SLOTS, publishedOf(0, SLOTS));
        for (int id = 0; id < SLOTS; id++) {
            assertTrue(holdsBlock(held[id], id));
            tier.free(held[id]);
        }
    }

    @Test
    void publishedBlocksSurviveAReopenWithIdenticalBytes() throws Exception {
        for (int id = 0; id < SLOTS - 1; id++) {
            tier.free(store(id, id == 0 ? null : key(id - 1)));
        }
        int held = store(50, key(SLOTS - 2)); // still held when the tier closes
        assertTrue(held >= 0);
        reopen();
        assertEquals(SLOTS, tier.freeSlots());
        for (long id : new long[] {0, 1, 2, 3, 4, 50}) {
            assertTrue(persistent().contains(key(id)), "block " + id + " lost across the reopen");
            int slot = persistent().lookup(key(id));
            assertTrue(slot >= 0, "block " + id + " not found after the reopen");
            assertTrue(persistent().verify(slot));
            assertTrue(holdsBlock(slot, id), "block " + id + " has other bytes after the reopen");
            tier.free(slot);
        }
    }

    @Test
    void aBlockDroppedForRoomDoesNotComeBackAfterAReopen() throws Exception {
        assumeTrue(spec().storeBoundedBySlots(), "store not bounded by the tier's slots");
        for (int id = 0; id < SLOTS; id++) {
            tier.free(store(id, null));
        }
        int slot = tier.allocate(); // no key: admitted, drops one block
        assertTrue(slot >= 0);
        tier.write(slot, 0, randomBlock(77)); // new bytes, never published
        int dropped = -1;
        for (int id = 0; id < SLOTS; id++) {
            if (!persistent().contains(key(id))) {
                assertEquals(-1, dropped, "more than one block dropped for one slot");
                dropped = id;
            }
        }
        assertNotEquals(-1, dropped, "no block was dropped for room");
        reopen();
        assertFalse(persistent().contains(key(dropped)), "a dropped block came back after a reopen");
        assertEquals(-1, persistent().lookup(key(77)), "bytes never published were found");
        assertEquals(SLOTS - 1, publishedOf(0, SLOTS));
    }

    @Test
    void takingASlotForRoomKeepsEveryBlockPublishedWhenTheStoreIsLarger() throws Exception {
        assumeFalse(spec().storeBoundedBySlots(), "store bounded by the tier's slots");
        for (int id = 0; id < SLOTS; id++) {
            tier.free(store(id, null));
        }
        int slot = persistent().allocate(key(100));
        assertTrue(slot >= 0, "refused a slot while every slot was free of holders");
        int plain = tier.allocate();
        assertTrue(plain >= 0);
        tier.write(slot, 0, randomBlock(100));
        persistent().publish(slot, key(100));
        tier.free(slot);
        tier.free(plain);
        assertEquals(SLOTS, publishedOf(0, SLOTS), "taking a slot for room unpublished a block");
        reopen();
        for (long id : new long[] {0, SLOTS - 1, 100}) {
            int found = persistent().lookup(key(id));
            assertTrue(found >= 0, "block " + id + " not found after its slot was taken and the tier reopened");
            assertTrue(persistent().verify(found));
            assertTrue(holdsBlock(found, id), "block " + id + " has other bytes");
            tier.free(found);
        }
    }
}
