package io.kvcache.core.tier;

import java.util.BitSet;

/**
 * Free-slot bookkeeping shared by tier implementations: a stack of free slot numbers and a bit
 * per slot. Lowest slots are handed out first so a fresh tier fills from the front.
 *
 * <p>Thread-safe (synchronized); allocation and free are O(1) and allocate nothing.
 */
public final class SlotAllocator {
    private final String tierName;
    private final int[] freeStack;
    private final BitSet allocated;
    private int top;

    /**
     * @param tierName  for error messages
     * @param slotCount slots managed, at least 1
     */
    public SlotAllocator(String tierName, int slotCount) {
        if (slotCount <= 0) {
            throw new IllegalArgumentException("tier '" + tierName + "' needs at least one slot, got " + slotCount);
        }
        this.tierName = tierName;
        this.freeStack = new int[slotCount];
        this.allocated = new BitSet(slotCount);
        for (int i = 0; i < slotCount; i++) {
            freeStack[i] = slotCount - 1 - i;
        }
        this.top = slotCount;
    }

    /** @return total slots */
    public int slotCount() {
        return freeStack.length;
    }

    /** @return a free slot, now allocated, or -1 when none is free */
    public synchronized int allocate() {
        if (top == 0) {
            return -1;
        }
        int slot = freeStack[--top];
        allocated.set(slot);
        return slot;
    }

    /**
     * Marks a specific slot allocated (used when recovering persisted slots).
     *
     * @throws IllegalStateException if it is already allocated
     */
    public synchronized void claim(int slot) {
        checkSlot(slot);
        if (allocated.get(slot)) {
            throw new IllegalStateException("slot " + slot + " of tier '" + tierName + "' is already allocated");
        }
        for (int i = 0; i < top; i++) {
            if (freeStack[i] == slot) {
                freeStack[i] = freeStack[--top];
                allocated.set(slot);
                return;
            }
        }
        throw new IllegalStateException("slot " + slot + " of tier '" + tierName + "' missing from the free list");
    }

    /**
     * @throws IllegalArgumentException for a slot outside the tier
     * @throws IllegalStateException    for a slot that is not allocated
     */
    public synchronized void free(int slot) {
        checkSlot(slot);
        if (!allocated.get(slot)) {
            throw new IllegalStateException("slot " + slot + " of tier '" + tierName + "' is not allocated");
        }
        allocated.clear(slot);
        freeStack[top++] = slot;
    }

    /** @return whether the slot is allocated */
    public synchronized boolean isAllocated(int slot) {
        checkSlot(slot);
        return allocated.get(slot);
    }

    /**
     * @throws IllegalArgumentException for a slot outside the tier
     * @throws IllegalStateException    for a slot that is not allocated
     */
    public synchronized void checkAllocated(int slot) {
        if (!isAllocated(slot)) {
            throw new IllegalStateException("slot " + slot + " of tier '" + tierName + "' is not allocated");
        }
    }

    /** @return free slots */
    public synchronized int freeSlots() {
        return top;
    }

    private void checkSlot(int slot) {
        if (slot < 0 || slot >= freeStack.length) {
            throw new IllegalArgumentException("slot " + slot + " outside [0, " + freeStack.length
                    + ") of tier '" + tierName + "'");
        }
    }
}
