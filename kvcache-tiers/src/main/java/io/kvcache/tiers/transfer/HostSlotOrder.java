package io.kvcache.tiers.transfer;

import io.kvcache.core.transfer.BlockMove;
import java.util.Arrays;
import java.util.List;

/**
 * Orders a batch's moves by host slot, so that a copy walks host memory in ascending address
 * order and the device's translation of host addresses stays local. LSD radix sort of
 * (slot, index) keys in arrays reused from batch to batch: linear work, no allocation once the
 * arrays have grown. Not thread-safe: one per stream, used under the stream's lock.
 */
final class HostSlotOrder {
    private static final int DIGIT_BITS = 11;

    private long[] keys = new long[0];
    private long[] scratch = new long[0];
    private final int[] counts = new int[1 << DIGIT_BITS];

    /**
     * @param hostIsSource whether the host slots are the moves' sources (else destinations)
     * @param hostSlots    slot count of the host tier (bounds the keys)
     * @return an array whose first {@code moves.size()} entries hold, in their low 32 bits, the
     *         move indices in ascending host slot order (stable for equal slots)
     */
    long[] sort(List<BlockMove> moves, boolean hostIsSource, int hostSlots) {
        int n = moves.size();
        if (keys.length < n) {
            int cap = Integer.highestOneBit(Math.max(n, 1024) - 1) << 1;
            keys = new long[cap];
            scratch = new long[cap];
        }
        long[] a = keys;
        long[] b = scratch;
        for (int i = 0; i < n; i++) {
            BlockMove m = moves.get(i);
            a[i] = ((long) (hostIsSource ? m.srcSlot() : m.dstSlot()) << 32) | i;
        }
        int bits = 32 - Integer.numberOfLeadingZeros(Math.max(1, hostSlots - 1));
        int mask = (1 << DIGIT_BITS) - 1;
        for (int shift = 32; shift < 32 + bits; shift += DIGIT_BITS) {
            Arrays.fill(counts, 0);
            for (int i = 0; i < n; i++) {
                counts[(int) (a[i] >>> shift) & mask]++;
            }
            int sum = 0;
            for (int d = 0; d < counts.length; d++) {
                int c = counts[d];
                counts[d] = sum;
                sum += c;
            }
            for (int i = 0; i < n; i++) {
                b[counts[(int) (a[i] >>> shift) & mask]++] = a[i];
            }
            long[] t = a;
            a = b;
            b = t;
        }
        return a;
    }
}
