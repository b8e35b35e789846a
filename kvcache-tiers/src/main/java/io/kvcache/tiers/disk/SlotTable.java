package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.SlotState.FREE;
import static io.kvcache.tiers.disk.SlotState.OWNED;
import static io.kvcache.tiers.disk.SlotState.OWNED_PUBLISHED;
import static io.kvcache.tiers.disk.SlotState.OWNED_RETIRED;
import static io.kvcache.tiers.disk.SlotState.RETAINED;
import static io.kvcache.tiers.disk.SlotState.RETIRED;

import io.kvcache.core.block.BlockKey;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;
import java.util.function.IntUnaryOperator;

/**
 * The disk tier's slot state machine in memory: each slot's {@link SlotState}, the block it
 * holds (key, parent key, generation, data checksum), the free stack and the retained lists.
 * Nothing here touches the file; the façade writes the slot header or index entry a transition
 * needs before it calls the transition.
 *
 * <p>Every transition names the states it may start from and checks it: a slot in another state
 * is a bug of the tier, reported as an {@link IllegalStateException} that names the state found
 * (callers check the state first and throw the tier's own messages). {@link #release} and
 * {@link #retire}, which start from several states, return the state they found.
 *
 * <p>The retained lists ({@link RetainedBlocks}) are kept here because membership in them is
 * exactly the {@link SlotState#RETAINED} state: every transition into or out of it updates both.
 *
 * <p>Not thread-safe: the tier lock must be held, or, for the recovery methods, the opening
 * thread before the tier is published.
 */
final class SlotTable {
    private final int slotCount;
    private final byte[] state;
    private final long[] generation;
    private final int[] crc;
    private final boolean[] crcKnown;
    private final BlockKey[] keys;
    private final BlockKey[] parents;
    private final int[] freeStack;
    private int freeTop;
    private final RetainedBlocks retained;
    private long nextGeneration = 1;

    /** @param slots the slot count; every slot starts {@link SlotState#FREE}, off the free stack until {@link #completeRecovery} */
    SlotTable(int slots) {
        this.slotCount = slots;
        this.state = new byte[slots];
        this.generation = new long[slots];
        this.crc = new int[slots];
        this.crcKnown = new boolean[slots];
        this.keys = new BlockKey[slots];
        this.parents = new BlockKey[slots];
        this.freeStack = new int[slots];
        this.retained = new RetainedBlocks(slots);
    }

    // ---------------------------------------------------------------- queries

    SlotState state(int slot) {
        return SlotState.of(state[slot]);
    }

    /** @return the published block's key, or null */
    BlockKey key(int slot) {
        return keys[slot];
    }

    /** @return the published block's parent key, or null */
    BlockKey parent(int slot) {
        return parents[slot];
    }

    /** @return the generation of the slot's last publication (kept after it is unpublished) */
    long generation(int slot) {
        return generation[slot];
    }

    /** @return whether the CRC32C of the slot's bytes is known (published, looked up, or written whole) */
    boolean crcKnown(int slot) {
        return crcKnown[slot];
    }

    int crc(int slot) {
        return crc[slot];
    }

    /** @return whether the slot still holds the block whose checksum a reader saw (same generation and CRC) */
    boolean sameBlock(int slot, long gen, int expectedCrc) {
        return generation[slot] == gen && crcKnown[slot] && crc[slot] == expectedCrc;
    }

    /** @return slots on the free stack */
    int freeCount() {
        return freeTop;
    }

    /** @return published blocks nobody holds */
    int retainedCount() {
        return retained.size();
    }

    /**
     * @return whether an index entry ({@code packed} slot and generation) for {@code key} names
     *         the block this slot publishes now
     */
    boolean holds(int slot, BlockKey key, long packed) {
        return slot >= 0 && slot < slotCount && state(slot).published() && key.equals(keys[slot])
                && (int) generation[slot] == SlotIndex.generationOf(packed);
    }

    /** Tells the retained lists that a retained block gained its first or lost its last child; other states are unaffected. */
    void setLeaf(int slot, boolean leaf) {
        if (state[slot] == RETAINED.code()) {
            retained.setLeaf(slot, leaf);
        }
    }

    /** @return the retained block to drop for room (see {@link RetainedBlocks#victim}), or -1 when none */
    int retainedVictim(IntUnaryOperator frequencyOfSlot) {
        return retained.victim(frequencyOfSlot);
    }

    // ---------------------------------------------------------------- transitions

    /** The next publication's generation: file-wide, increasing. */
    long nextGeneration() {
        return nextGeneration++;
    }

    /** FREE → OWNED, the top of the free stack. @return the slot, or -1 when the stack is empty */
    int takeFree() {
        if (freeTop == 0) {
            return -1;
        }
        int slot = freeStack[--freeTop];
        expect(slot, FREE, "takeFree");
        set(slot, OWNED);
        crcKnown[slot] = false;
        return slot;
    }

    /**
     * A holder lets go: OWNED → FREE, OWNED_PUBLISHED → RETAINED (a leaf or inner block of its
     * chain), OWNED_RETIRED → RETIRED. A slot in any other state is left as it is.
     *
     * @return the state found; the release happened when it is {@linkplain SlotState#held() held}
     */
    SlotState release(int slot, boolean leaf) {
        SlotState found = state(slot);
        switch (found) {
            case OWNED -> pushFree(slot);
            case OWNED_PUBLISHED -> {
                set(slot, RETAINED);
                if (leaf) {
                    retained.addLeaf(slot);
                } else {
                    retained.addInner(slot);
                }
            }
            case OWNED_RETIRED -> set(slot, RETIRED);
            default -> {
                // not held: the caller reports it
            }
        }
        return found;
    }

    /** RETAINED → OWNED_PUBLISHED: a lookup hands the block to a caller. */
    void takeRetained(int slot) {
        expect(slot, RETAINED, "takeRetained");
        retained.remove(slot);
        set(slot, OWNED_PUBLISHED);
    }

    /** OWNED → OWNED_PUBLISHED, once the slot header is written: records the block and its checksum. */
    void publish(int slot, long gen, int sum, BlockKey key, BlockKey parent) {
        expect(slot, OWNED, "publish");
        crc[slot] = sum;
        crcKnown[slot] = true;
        set(slot, OWNED_PUBLISHED);
        generation[slot] = gen;
        keys[slot] = key;
        parents[slot] = parent;
    }

    /** OWNED_PUBLISHED → OWNED, once the header is cleared and the index entry removed: the holder keeps the slot. */
    void unpublishHeld(int slot) {
        expect(slot, OWNED_PUBLISHED, "unpublishHeld");
        forgetKeys(slot);
        set(slot, OWNED);
    }

    /**
     * RETAINED → FREE, once the header is cleared and the index entry removed: the one way a
     * retained block goes back to the free stack (eviction, an older copy of a republished key,
     * unpublish, quarantine). The checksum stays as it was (the bytes have not changed): a copy
     * still reading the slot is checked against it until {@link #takeFree} forgets it. Callers
     * that must not trust it any more call {@link #forgetCrc} first.
     */
    void dropRetainedToFree(int slot) {
        expect(slot, RETAINED, "dropRetainedToFree");
        retained.remove(slot);
        forgetKeys(slot);
        set(slot, FREE);
        freeStack[freeTop++] = slot;
    }

    /** The slot's bytes are about to change or failed their check: its checksum is no longer known. */
    void forgetCrc(int slot) {
        crcKnown[slot] = false;
    }

    /** Records the checksum of bytes written whole, if the slot is still OWNED. @return whether it was */
    boolean recordCrc(int slot, int sum) {
        if (state[slot] != OWNED.code()) {
            return false;
        }
        crc[slot] = sum;
        crcKnown[slot] = true;
        return true;
    }

    /**
     * Takes a slot out of use: FREE and RETAINED → RETIRED (off the free stack or the retained
     * lists), OWNED and OWNED_PUBLISHED → OWNED_RETIRED. A published block's header and index
     * entry must be cleared first.
     *
     * @return the state found; nothing changed when it was already retired
     */
    SlotState retire(int slot) {
        SlotState found = state(slot);
        if (found.retired()) {
            return found;
        }
        if (found == RETAINED) {
            retained.remove(slot);
        } else if (found == FREE) {
            removeFromFreeStack(slot);
        }
        forgetKeys(slot);
        set(slot, found.held() ? OWNED_RETIRED : RETIRED);
        crcKnown[slot] = false;
        return found;
    }

    // ---------------------------------------------------------------- recovery (opening thread)

    /** FREE → RETAINED: a valid published slot header found at open (off the lists until {@link #completeRecovery}). */
    void recover(int slot, long gen, int sum, BlockKey key, BlockKey parent) {
        expect(slot, FREE, "recover");
        set(slot, RETAINED);
        generation[slot] = gen;
        nextGeneration = Math.max(nextGeneration, gen + 1);
        crc[slot] = sum;
        crcKnown[slot] = true;
        keys[slot] = key;
        parents[slot] = parent;
    }

    /** RETAINED → FREE at open, before {@link #completeRecovery}: a second slot claiming a key, its header cleared. */
    void dropDuplicateAtOpen(int slot) {
        expect(slot, RETAINED, "dropDuplicateAtOpen");
        set(slot, FREE);
        forgetKeys(slot);
        crcKnown[slot] = false;
    }

    /** @return whether any slot is RETAINED */
    boolean hasRetained() {
        for (byte st : state) {
            if (st == RETAINED.code()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Ends recovery: the retained blocks join the retained lists oldest generation first (leaves
     * and inner blocks apart), the free slots the free stack, lowest slot on top.
     */
    void completeRecovery(IntPredicate leaf) {
        List<Integer> held = new ArrayList<>();
        for (int slot = 0; slot < slotCount; slot++) {
            if (state[slot] == RETAINED.code()) {
                held.add(slot);
            }
        }
        held.sort((x, y) -> Long.compare(generation[x], generation[y]));
        for (int slot : held) {
            if (leaf.test(slot)) {
                retained.addLeaf(slot);
            } else {
                retained.addInner(slot);
            }
        }
        for (int slot = slotCount - 1; slot >= 0; slot--) {
            if (state[slot] == FREE.code()) {
                freeStack[freeTop++] = slot;
            }
        }
    }

    /** @return whether free, retained and retired slots add up to the slot count (nothing is held at open) */
    boolean accountsForEverySlot() {
        int retired = 0;
        for (byte s : state) {
            if (s == RETIRED.code()) {
                retired++;
            }
        }
        return freeTop + retained.size() + retired == slotCount;
    }

    // ---------------------------------------------------------------- internals

    private void set(int slot, SlotState s) {
        state[slot] = s.code();
    }

    private void expect(int slot, SlotState expected, String transition) {
        SlotState found = state(slot);
        if (found != expected) {
            throw new IllegalStateException("slot " + slot + " is " + found + ", not " + expected + " as " + transition
                    + " expects");
        }
    }

    private void pushFree(int slot) {
        set(slot, FREE);
        crcKnown[slot] = false;
        freeStack[freeTop++] = slot;
    }

    private void removeFromFreeStack(int slot) {
        for (int i = 0; i < freeTop; i++) {
            if (freeStack[i] == slot) {
                freeStack[i] = freeStack[--freeTop];
                return;
            }
        }
    }

    private void forgetKeys(int slot) {
        keys[slot] = null;
        parents[slot] = null;
    }
}
