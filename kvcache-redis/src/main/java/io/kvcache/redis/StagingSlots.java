package io.kvcache.redis;

import io.kvcache.core.block.BlockKey;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * The Redis tier's local slots and what each holds. A slot is free, held by the caller, or
 * retained: freed by the caller while it holds a published block's bytes, so that a lookup of
 * that block again is served without a round trip. Retained slots count as free; when no slot
 * is free the oldest retained one is taken (only the local copy goes: the block stays in Redis).
 * Not thread-safe: the tier guards it with its lock.
 */
final class StagingSlots {
    private final int count;
    private final BitSet free = new BitSet();
    private final boolean[] held;
    private final BlockKey[] keys;
    private final boolean[] crcKnown;
    private final int[] crc;
    /** Retained slots, oldest first. */
    private final LinkedHashSet<Integer> retained = new LinkedHashSet<>();
    /** Slot of each key held or retained here. */
    private final Map<BlockKey, Integer> byKey = new HashMap<>();

    StagingSlots(int count) {
        this.count = count;
        this.held = new boolean[count];
        this.keys = new BlockKey[count];
        this.crcKnown = new boolean[count];
        this.crc = new int[count];
        free.set(0, count);
    }

    int count() {
        return count;
    }

    /** @return free plus retained slots */
    int available() {
        return free.cardinality() + retained.size();
    }

    /** Takes a free slot, else the oldest retained one (dropping its local copy). @return the slot or -1 */
    int take() {
        int s = free.nextSetBit(0);
        if (s < 0 && !retained.isEmpty()) {
            s = retained.getFirst();
            retained.remove(s);
            forgetKey(s);
            free.set(s);
        }
        if (s < 0) {
            return -1;
        }
        free.clear(s);
        held[s] = true;
        crcKnown[s] = false;
        return s;
    }

    boolean held(int s) {
        return held[s];
    }

    boolean isFree(int s) {
        return free.get(s);
    }

    /** Releases a held slot: retained when it holds a published block, free otherwise. */
    void release(int s) {
        held[s] = false;
        if (keys[s] != null) {
            retained.add(s);
        } else {
            free.set(s);
        }
    }

    /** @return the slot holding {@code key} here (held or retained), or -1 */
    int slotOf(BlockKey key) {
        Integer s = byKey.get(key);
        return s == null ? -1 : s;
    }

    /** Hands a retained slot to the caller. */
    void takeRetained(int s) {
        retained.remove(s);
        held[s] = true;
    }

    BlockKey key(int s) {
        return keys[s];
    }

    /** Records that a held slot holds {@code key}'s bytes; another local slot that held them forgets them. */
    void setKey(int s, BlockKey key) {
        Integer old = byKey.put(key, s);
        if (old != null && old != s) {
            keys[old] = null;
            if (retained.remove(old)) {
                free.set(old);
            }
        }
        keys[s] = key;
    }

    /** Forgets the key of a slot; a retained slot becomes free. @return the key, or null */
    BlockKey forgetKey(int s) {
        BlockKey k = keys[s];
        if (k != null) {
            byKey.remove(k, s);
            keys[s] = null;
        }
        if (retained.remove(s)) {
            free.set(s);
        }
        return k;
    }

    boolean crcKnown(int s) {
        return crcKnown[s];
    }

    int crc(int s) {
        return crc[s];
    }

    void recordCrc(int s, int sum) {
        crc[s] = sum;
        crcKnown[s] = true;
    }

    void forgetCrc(int s) {
        crcKnown[s] = false;
    }
}
