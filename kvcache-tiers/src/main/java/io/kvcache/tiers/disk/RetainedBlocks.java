package io.kvcache.tiers.disk;

import java.util.function.IntUnaryOperator;

/**
 * The published blocks nobody holds, which the tier may drop to make room, in two
 * least-recently-released-first lists: leaves (no published child in this tier) and inner
 * blocks (at least one). Victims come from the leaves first, so a prefix chain shrinks from its
 * end and its shared head stays. Intrusive lists over slot numbers: no allocation per block.
 * Not thread-safe: the tier calls it under its lock.
 */
final class RetainedBlocks {
    private static final byte NONE = 0;
    private static final byte LEAF = 1;
    private static final byte INNER = 2;
    /** How many of the oldest leaves are compared by frequency when picking a victim. */
    static final int VICTIM_SAMPLE = 16;

    private final int[] prev;
    private final int[] next;
    private final byte[] list;
    private final int[] head = {-1, -1, -1};
    private final int[] tail = {-1, -1, -1};
    private int size;

    RetainedBlocks(int slots) {
        prev = new int[slots];
        next = new int[slots];
        list = new byte[slots];
    }

    int size() {
        return size;
    }

    boolean contains(int slot) {
        return list[slot] != NONE;
    }

    boolean isLeaf(int slot) {
        return list[slot] == LEAF;
    }

    void addLeaf(int slot) {
        append(slot, LEAF);
    }

    void addInner(int slot) {
        append(slot, INNER);
    }

    /** Moves a retained block between the lists when it gains its first or loses its last child. */
    void setLeaf(int slot, boolean leaf) {
        byte want = leaf ? LEAF : INNER;
        if (list[slot] != NONE && list[slot] != want) {
            remove(slot);
            append(slot, want);
        }
    }

    private void append(int slot, byte which) {
        if (list[slot] != NONE) {
            throw new IllegalStateException("slot " + slot + " is already retained");
        }
        list[slot] = which;
        prev[slot] = tail[which];
        next[slot] = -1;
        if (tail[which] >= 0) {
            next[tail[which]] = slot;
        } else {
            head[which] = slot;
        }
        tail[which] = slot;
        size++;
    }

    void remove(int slot) {
        byte which = list[slot];
        if (which == NONE) {
            return;
        }
        int p = prev[slot];
        int n = next[slot];
        if (p >= 0) {
            next[p] = n;
        } else {
            head[which] = n;
        }
        if (n >= 0) {
            prev[n] = p;
        } else {
            tail[which] = p;
        }
        list[slot] = NONE;
        size--;
    }

    /**
     * Picks the block to drop: among the {@value #VICTIM_SAMPLE} least recently released leaves,
     * the one with the lowest frequency; when there is no leaf, the oldest inner block.
     *
     * @param frequency estimated access frequency of a slot's block
     * @return the victim slot, or -1 when nothing is retained
     */
    int victim(IntUnaryOperator frequency) {
        int best = -1;
        int bestFreq = Integer.MAX_VALUE;
        int s = head[LEAF];
        for (int i = 0; i < VICTIM_SAMPLE && s >= 0; i++, s = next[s]) {
            int f = frequency.applyAsInt(s);
            if (f < bestFreq) {
                best = s;
                bestFreq = f;
            }
        }
        return best >= 0 ? best : head[INNER];
    }
}
