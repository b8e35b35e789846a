package io.kvcache.tiers.disk;

import io.kvcache.core.block.BlockKey;

/**
 * A TinyLFU frequency sketch: a count-min sketch of 4-bit counters (four hashed positions per
 * key) that estimates how often each block key was asked for, halved every
 * {@code 10 * expectedEntries} counted accesses so that old popularity fades. Estimates never undercount between resets; collisions can only
 * overcount. Not thread-safe: the tier calls it under its lock.
 */
final class FrequencySketch {
    private static final long[] SEEDS = {0x9E37_79B9_7F4A_7C15L, 0xC2B2_AE3D_27D4_EB4FL,
        0x1656_67B1_9E37_79F9L, 0x27D4_EB2F_1656_67C5L};
    private static final int MAX = 15;

    private final long[] table;
    private final int mask;
    private final int sampleSize;
    private int additions;

    /**
     * @param expectedEntries blocks the tier can hold. The table has 16 counters per entry (half
     *                        a byte each) and ages every {@code 10 * expectedEntries} counted
     *                        accesses, so a counter sees a few increments per period rather than
     *                        saturating under a stream of one-off keys.
     */
    FrequencySketch(int expectedEntries) {
        long entries = Math.max(16, expectedEntries);
        int counters = (int) Math.min(1L << 26, Long.highestOneBit(entries * 16 - 1) << 1);
        this.table = new long[counters / 16];
        this.mask = counters - 1;
        this.sampleSize = (int) Math.min(Integer.MAX_VALUE, 10 * entries);
    }

    private static int index(int hash, int row, int mask) {
        long h = (hash + SEEDS[row]) * SEEDS[row];
        h ^= h >>> 29;
        return (int) h & mask;
    }

    private int counter(int i) {
        return (int) (table[i >>> 4] >>> ((i & 15) << 2)) & 0xF;
    }

    /** @return the estimated count of {@code key}, 0 to 15 */
    int frequency(BlockKey key) {
        int h = key.hashCode();
        int min = MAX;
        for (int row = 0; row < SEEDS.length; row++) {
            min = Math.min(min, counter(index(h, row, mask)));
        }
        return min;
    }

    /** Counts one access of {@code key}. */
    void increment(BlockKey key) {
        int h = key.hashCode();
        boolean added = false;
        for (int row = 0; row < SEEDS.length; row++) {
            int i = index(h, row, mask);
            if (counter(i) < MAX) {
                table[i >>> 4] += 1L << ((i & 15) << 2);
                added = true;
            }
        }
        if (added && ++additions >= sampleSize) {
            reset();
        }
    }

    /** Halves every counter (ages the history). */
    private void reset() {
        for (int i = 0; i < table.length; i++) {
            table[i] = (table[i] >>> 1) & 0x7777_7777_7777_7777L;
        }
        additions /= 2;
    }
}
