package io.kvcache.examples.report;

import java.util.Arrays;
import java.util.List;

/**
 * Per decode step: latency, blocks held by each tier, bytes moved toward the top tier and toward
 * the bottom, and time waited for residency. Grows as steps are added.
 *
 * <p>Not thread-safe; filled by the decoding thread.
 */
public final class StepTrace {
    private final int blockTokens;
    private final List<String> tierNames;
    private final int[] tierSlots;
    private int steps;
    private int[] positions = new int[256];
    private long[] nanos = new long[256];
    private int[][] used;
    private long[] bytesUp = new long[256];
    private long[] bytesDown = new long[256];
    private long[] waitNanos = new long[256];

    /**
     * @param blockTokens tokens per block, to show the context's size in blocks
     * @param tierNames   tier names, fastest first
     * @param tierSlots   capacity of each tier in blocks
     */
    public StepTrace(int blockTokens, List<String> tierNames, int[] tierSlots) {
        this.blockTokens = blockTokens;
        this.tierNames = List.copyOf(tierNames);
        this.tierSlots = tierSlots.clone();
        used = new int[tierNames.size()][256];
    }

    /**
     * Records one step.
     *
     * @param pos       position computed
     * @param nanos     latency of the step, ns
     * @param usedSlots blocks held per tier after the step
     * @param up        bytes promoted during the step
     * @param down      bytes demoted during the step
     * @param wait      ns waited for residency during the step
     */
    public void add(int pos, long nanos, int[] usedSlots, long up, long down, long wait) {
        if (steps == positions.length) {
            int n = steps * 2;
            positions = Arrays.copyOf(positions, n);
            this.nanos = Arrays.copyOf(this.nanos, n);
            for (int t = 0; t < used.length; t++) {
                used[t] = Arrays.copyOf(used[t], n);
            }
            bytesUp = Arrays.copyOf(bytesUp, n);
            bytesDown = Arrays.copyOf(bytesDown, n);
            waitNanos = Arrays.copyOf(waitNanos, n);
        }
        positions[steps] = pos;
        this.nanos[steps] = nanos;
        for (int t = 0; t < used.length; t++) {
            used[t][steps] = usedSlots[t];
        }
        bytesUp[steps] = up;
        bytesDown[steps] = down;
        waitNanos[steps] = wait;
        steps++;
    }

    /** @return tokens per block */
    public int blockTokens() {
        return blockTokens;
    }

    /** @return steps recorded */
    public int steps() {
        return steps;
    }

    /** @return tier names, fastest first */
    public List<String> tierNames() {
        return tierNames;
    }

    /** @return capacity of tier {@code t} in blocks */
    public int tierSlots(int t) {
        return tierSlots[t];
    }

    /** @return position computed at step {@code i} */
    public int position(int i) {
        return positions[i];
    }

    /** @return latency of step {@code i}, ns */
    public long nanos(int i) {
        return nanos[i];
    }

    /** @return blocks tier {@code t} held after step {@code i} */
    public int used(int t, int i) {
        return used[t][i];
    }

    /** @return bytes promoted during step {@code i} */
    public long bytesUp(int i) {
        return bytesUp[i];
    }

    /** @return bytes demoted during step {@code i} */
    public long bytesDown(int i) {
        return bytesDown[i];
    }

    /** @return ns waited for residency during step {@code i} */
    public long waitNanos(int i) {
        return waitNanos[i];
    }
}
