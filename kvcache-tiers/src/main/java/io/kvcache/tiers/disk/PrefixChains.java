package io.kvcache.tiers.disk;

import io.kvcache.core.block.BlockKey;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Parent and child links between published slots, so that the tier drops the leaves of prefix
 * chains before the blocks they extend. A link names the parent's slot and the generation the
 * parent had when linked, so a link to a slot since republished is recognised as stale. A child
 * published before its parent waits among the orphans until the parent is published.
 *
 * <p>It tells {@link SlotTable#setLeaf} when a retained block gains its first child or loses its
 * last, which moves it between the retained lists.
 *
 * <p>Not thread-safe: the tier lock must be held, or the opening thread before the tier is
 * published ({@link #linkRecovered}).
 */
final class PrefixChains {
    private final SlotTable slots;
    private final IndexFile index;
    private final int slotCount;
    private final int[] parentSlot;
    private final long[] parentGeneration;
    private final int[] childCount;
    /** Blocks published before their parent, by parent key, so the parent can adopt them. */
    private final Map<BlockKey, int[]> orphans = new HashMap<>();
    /** The slot published last, or -1: the likely parent of the next publish. */
    private int lastPublished = -1;

    PrefixChains(SlotTable slots, IndexFile index, int slotCount) {
        this.slots = slots;
        this.index = index;
        this.slotCount = slotCount;
        this.parentSlot = new int[slotCount];
        this.parentGeneration = new long[slotCount];
        this.childCount = new int[slotCount];
        Arrays.fill(parentSlot, -1);
    }

    /** @return whether no published block links to this slot as its parent */
    boolean isLeaf(int slot) {
        return childCount[slot] == 0;
    }

    /** At open: links every recovered block that names a parent to it. */
    void linkRecovered() {
        for (int slot = 0; slot < slotCount; slot++) {
            if (slots.state(slot) == SlotState.RETAINED && slots.parent(slot) != null) {
                link(slot);
            }
        }
    }

    /** A slot was just published: starts it unlinked, before the index entry is written. */
    void reset(int slot) {
        childCount[slot] = 0;
        parentSlot[slot] = -1;
    }

    /** A slot was just published: links it to its parent (if it names one) and adopts its waiting children. */
    void linkPublished(int slot) {
        if (slots.parent(slot) != null) {
            link(slot);
        }
        adoptOrphans(slot);
        lastPublished = slot;
    }

    /** A published slot's block is being forgotten: its parent loses a child, and the slot's links go. */
    void unlink(int slot) {
        int p = parentSlot[slot];
        if (p >= 0 && slots.generation(p) == parentGeneration[slot] && slots.state(p).published()) {
            if (--childCount[p] == 0) {
                slots.setLeaf(p, true);
            }
        }
        parentSlot[slot] = -1;
        childCount[slot] = 0;
    }

    private void link(int slot) {
        BlockKey parent = slots.parent(slot);
        int p;
        long v;
        int last = lastPublished;
        if (last >= 0 && last != slot && parent.equals(slots.key(last))) {
            // chains are mostly published in order: the parent is the block published just before
            p = last;
            v = SlotIndex.pack(last, slots.generation(last));
        } else {
            v = index.get(parent);
            p = v < 0 ? -1 : SlotIndex.slotOf(v);
        }
        if (p >= 0 && p != slot && slots.holds(p, parent, v)) {
            parentSlot[slot] = p;
            parentGeneration[slot] = slots.generation(p);
            if (childCount[p]++ == 0) {
                slots.setLeaf(p, false);
            }
            return;
        }
        if (orphans.size() > slotCount) {
            orphans.clear(); // bounded memory: costs only the chain order of blocks published child-first
        }
        int[] waiting = orphans.get(parent);
        if (waiting == null) {
            orphans.put(parent, new int[] {slot});
        } else {
            int[] more = Arrays.copyOf(waiting, waiting.length + 1);
            more[waiting.length] = slot;
            orphans.put(parent, more);
        }
    }

    private void adoptOrphans(int slot) {
        BlockKey key = slots.key(slot);
        int[] children = orphans.remove(key);
        if (children == null) {
            return;
        }
        for (int c : children) {
            if (c != slot && slots.state(c).published() && key.equals(slots.parent(c)) && parentSlot[c] < 0) {
                parentSlot[c] = slot;
                parentGeneration[c] = slots.generation(slot);
                childCount[slot]++;
            }
        }
    }
}
