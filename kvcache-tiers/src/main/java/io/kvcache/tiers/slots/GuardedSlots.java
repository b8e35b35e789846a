package io.kvcache.tiers.slots;

import io.kvcache.core.transfer.BlockMove;
import java.util.Arrays;
import java.util.List;

/**
 * The free list of a tier whose slots asynchronous copies read and write. A slot freed while a
 * copy still reads or writes it is returned to the free list only when that copy completes, so
 * {@link #allocate()} never hands out memory a copy is still using.
 *
 * <p>Transfer engines bracket each batch with {@link #beginCopies} and {@link #endCopies}. A batch
 * copies whole slots or one byte range of each (a layer range, say). It is refused, with nothing
 * changed, when it names a slot that is not allocated, writes a slot twice, writes bytes another
 * copy is reading or writing, or reads bytes another copy is writing. Copies of disjoint ranges
 * of one slot may be in flight together: an engine restoring a block layer by layer submits one
 * batch per layer into the same slots.
 *
 * <p>Whole-slot copies, the common case, are counted in arrays; ranges in flight are kept in a
 * small list per slot, made the first time the slot's range is copied and kept for reuse, so
 * neither allocates once warm.
 *
 * <p>Thread safety: every method is synchronized; a batch takes the lock once.
 */
public final class GuardedSlots {
    private static final byte FREE = 0;
    private static final byte ALLOCATED = 1;
    private static final byte FREE_PENDING = 2;
    /** The end of the range that stands for a whole slot. */
    private static final long WHOLE = Long.MAX_VALUE;

    private final String tierName;
    private final int count;
    private final int[] freeStack;
    private int freeTop;
    private final byte[] state;
    private final int[] readers;
    private final byte[] writers;
    private final long[] stamp;
    private long serial;
    /** Byte ranges of each slot that copies in flight read (or write); null until a range of the slot is copied. */
    private final Ranges[] rangeReads;
    private final Ranges[] rangeWrites;
    /** Range lists that are not empty, so that whole-slot batches skip the range checks while there are none. */
    private int rangedSlots;

    /** Byte ranges {@code [start, end)} in flight on one slot, as pairs; a range may appear more than once. */
    private static final class Ranges {
        long[] r = new long[8];
        int n;

        boolean overlaps(long start, long end) {
            for (int i = 0; i < n; i++) {
                if (r[2 * i] < end && start < r[2 * i + 1]) {
                    return true;
                }
            }
            return false;
        }

        void add(long start, long end) {
            if (2 * n == r.length) {
                r = Arrays.copyOf(r, 2 * r.length);
            }
            r[2 * n] = start;
            r[2 * n + 1] = end;
            n++;
        }

        void remove(long start, long end) {
            for (int i = 0; i < n; i++) {
                if (r[2 * i] == start && r[2 * i + 1] == end) {
                    n--;
                    r[2 * i] = r[2 * n];
                    r[2 * i + 1] = r[2 * n + 1];
                    return;
                }
            }
            throw new IllegalStateException("range [" + start + ", " + end + ") was not in flight");
        }
    }

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
        this.rangeReads = new Ranges[count];
        this.rangeWrites = new Ranges[count];
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
        if (busy(slot)) {
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

    /** @return whether a copy is reading or writing the slot (or a range of it) */
    public synchronized boolean inFlight(int slot) {
        checkRange(slot);
        return busy(slot);
    }

    private boolean busy(int slot) {
        return readers[slot] > 0 || writers[slot] > 0 || inFlight(rangeReads[slot]) || inFlight(rangeWrites[slot]);
    }

    private static boolean inFlight(Ranges r) {
        return r != null && r.n > 0;
    }

    /** @return the number of slots */
    public int count() {
        return count;
    }

    /** Marks the source (or destination) slots of a batch of whole slots as in use by a copy. */
    public void beginCopies(List<BlockMove> moves, boolean source) {
        beginCopies(moves, source, 0, WHOLE);
    }

    /**
     * Marks bytes {@code [start, end)} of the source (or destination) slots of a batch as in use
     * by a copy; {@code start == 0, end == Long.MAX_VALUE} stands for whole slots.
     *
     * @param moves  the batch's moves
     * @param source true for the source side of the moves, false for the destination side
     * @throws IllegalArgumentException if a slot is out of range or written twice by the batch, or
     *                                  the range is empty
     * @throws IllegalStateException    if a slot is not allocated or another copy conflicts
     */
    public synchronized void beginCopies(List<BlockMove> moves, boolean source, long start, long end) {
        if (start < 0 || end <= start) {
            throw new IllegalArgumentException("byte range [" + start + ", " + end + ") is empty or negative");
        }
        boolean whole = start == 0 && end == WHOLE;
        String what = whole ? "slot " : "bytes [" + start + ", " + end + ") of slot ";
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
            if (writers[slot] > 0 || overlaps(rangeWrites, slot, start, end)) {
                throw new IllegalStateException(what + slot + " of tier '" + tierName
                        + "' is being written by a copy that has not completed");
            }
            if (!source) {
                if (readers[slot] > 0 || overlaps(rangeReads, slot, start, end)) {
                    throw new IllegalStateException(what + slot + " of tier '" + tierName
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
            int slot = source ? m.srcSlot() : m.dstSlot();
            if (!whole) {
                Ranges[] all = source ? rangeReads : rangeWrites;
                Ranges r = all[slot];
                if (r == null) {
                    r = new Ranges();
                    all[slot] = r;
                }
                if (r.n == 0) {
                    rangedSlots++;
                }
                r.add(start, end);
            } else if (source) {
                readers[slot]++;
            } else {
                writers[slot] = 1;
            }
        }
    }

    private boolean overlaps(Ranges[] all, int slot, long start, long end) {
        if (rangedSlots == 0) {
            return false;
        }
        Ranges r = all[slot];
        return r != null && r.overlaps(start, end);
    }

    /** Ends what {@link #beginCopies(List, boolean)} began for the same moves and side. */
    public void endCopies(List<BlockMove> moves, boolean source) {
        endCopies(moves, source, 0, WHOLE);
    }

    /** Ends what {@link #beginCopies(List, boolean, long, long)} began for the same moves, side and range. */
    public synchronized void endCopies(List<BlockMove> moves, boolean source, long start, long end) {
        boolean whole = start == 0 && end == WHOLE;
        int n = moves.size();
        for (int i = 0; i < n; i++) {
            BlockMove m = moves.get(i);
            int slot = source ? m.srcSlot() : m.dstSlot();
            if (!whole) {
                Ranges r = (source ? rangeReads : rangeWrites)[slot];
                r.remove(start, end);
                if (r.n == 0) {
                    rangedSlots--;
                }
            } else if (source) {
                readers[slot]--;
            } else {
                writers[slot] = 0;
            }
            if (state[slot] == FREE_PENDING && !busy(slot)) {
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
