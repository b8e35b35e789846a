package io.kvcache.tiers.slots;

import io.kvcache.core.transfer.BlockMove;
import java.util.List;

/**
 * The free list of a tier whose slots asynchronous copies read and write. A slot freed while a
 * copy still reads or writes it is returned to the free list only when that copy completes, so
 * {@link #allocate()} never hands out memory a copy is still using.
 *
 * <p>Transfer engines bracket each batch with {@link #beginCopies} and {@link #endCopies}. A batch
 * is refused, with nothing changed, when it names a slot that is not allocated, writes a slot
 * twice, writes a slot another copy is reading or writing, or reads a slot another copy is
 * writing.
 *
 * <p>Thread safety: every method is synchronized; a batch takes the lock once.
 */
public final class GuardedSlots {
    private static final byte FREE = 0;
    private static final byte ALLOCATED = 1;
    private static final byte FREE_PENDING = 2;

    private final String tierName;
    private final int count;
    private final int[] freeStack;
    private int freeTop;
    private final byte[] state;
    private final int[] readers;
    private final byte[] writers;
    private final long[] stamp;
    private long serial;

    /**
     * @param tierName name used in exception messages
     * @param count    number of slots, all free
     */
    public GuardedSlots(String tierName, int count) {
        if (count <= 0) {
            throw new IllegalArgumentException("slot count must be positive, was " + count);
        }
        this.tierName = tierName;
        this.count = count;
        this.freeStack = new int[count];
        // lowest slot first, so that a fresh tier fills from its start
        for (int i = 0; i < count; i++) {
            freeStack[i] = count - 1 - i;
        }
        this.freeTop = count;
        this.state = new byte[count];
        this.readers = new int[count];
        this.writers = new byte[count];
        this.stamp = new long[count];
    }

    /** @return a free slot, now allocated, or -1 when none is free */
    public synchronized int allocate() {
        if (freeTop == 0) {
            return -1;
        }
        int slot = freeStack[--freeTop];
        state[slot] = ALLOCATED;
        return slot;
    }

    /**
     * Frees an allocated slot; if a copy still uses it, the slot joins the free list when that
     * copy completes.
     *
     * @throws IllegalArgumentException if the slot is out of range
     * @throws IllegalStateException    if the slot is not allocated
     */
    public synchronized void free(int slot) {
        checkRange(slot);
        if (state[slot] != ALLOCATED) {
            throw new IllegalStateException("slot " + slot + " of tier '" + tierName + "' is not allocated");
        }
        if (readers[slot] > 0 || writers[slot] > 0) {
            state[slot] = FREE_PENDING;
        } else {
            release(slot);
        }
    }

    /** @return slots on the free list (slots whose free waits for a copy are not counted) */
    public synchronized int freeCount() {
        return freeTop;
    }

    /** @return whether the slot is allocated (and not freed) */
    public synchronized boolean isAllocated(int slot) {
        checkRange(slot);
        return state[slot] == ALLOCATED;
    }

    /** @return whether a copy is reading or writing the slot */
    public synchronized boolean inFlight(int slot) {
        checkRange(slot);
        return readers[slot] > 0 || writers[slot] > 0;
    }

    /** @return the number of slots */
    public int count() {
        return count;
    }

    /**
     * Marks the source (or destination) slots of a batch as in use by a copy.
     *
     * @param moves  the batch's moves
     * @param source true for the source side of the moves, false for the destination side
     * @throws IllegalArgumentException if a slot is out of range or written twice by the batch
     * @throws IllegalStateException    if a slot is not allocated or another copy conflicts
     */
    public synchronized void beginCopies(List<BlockMove> moves, boolean source) {
        long batch = ++serial;
        int n = moves.size();
        for (int i = 0; i < n; i++) {
            BlockMove m = moves.get(i);
            int slot = source ? m.srcSlot() : m.dstSlot();
            checkRange(slot);
            if (state[slot] != ALLOCATED) {
                throw new IllegalStateException((source ? "source" : "destination") + " slot " + slot
                        + " of tier '" + tierName + "' is not allocated");
            }
            if (writers[slot] > 0) {
                throw new IllegalStateException("slot " + slot + " of tier '" + tierName
                        + "' is being written by a copy that has not completed");
            }
            if (!source) {
                if (readers[slot] > 0) {
                    throw new IllegalStateException("slot " + slot + " of tier '" + tierName
                            + "' is being read by a copy that has not completed");
                }
                if (stamp[slot] == batch) {
                    throw new IllegalArgumentException("destination slot " + slot + " of tier '" + tierName
                            + "' appears twice in one batch");
                }
                stamp[slot] = batch;
            }
        }
        for (int i = 0; i < n; i++) {
            BlockMove m = moves.get(i);
            if (source) {
                readers[m.srcSlot()]++;
            } else {
                writers[m.dstSlot()] = 1;
            }
        }
    }

    /** Ends what {@link #beginCopies} began for the same moves and side. */
    public synchronized void endCopies(List<BlockMove> moves, boolean source) {
        int n = moves.size();
        for (int i = 0; i < n; i++) {
            BlockMove m = moves.get(i);
            int slot = source ? m.srcSlot() : m.dstSlot();
            if (source) {
                readers[slot]--;
            } else {
                writers[slot] = 0;
            }
            if (state[slot] == FREE_PENDING && readers[slot] == 0 && writers[slot] == 0) {
                release(slot);
            }
        }
    }

    private void release(int slot) {
        state[slot] = FREE;
        freeStack[freeTop++] = slot;
    }

    private void checkRange(int slot) {
        if (slot < 0 || slot >= count) {
            throw new IllegalArgumentException("slot " + slot + " outside [0, " + count + ") of tier '"
                    + tierName + "'");
        }
    }
}
