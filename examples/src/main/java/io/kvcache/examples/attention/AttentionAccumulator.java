package io.kvcache.examples.attention;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Running softmax-weighted sum of values for every query head of one layer, fed one key score at
 * a time (online softmax: a running maximum, a running normalizer and an accumulator rescaled
 * when the maximum grows). Visiting positions in one fixed order gives the same floats however
 * the positions are split into resident windows, which is what lets a budget-limited decode
 * reproduce an unlimited one bit for bit.
 *
 * <p>It also keeps, per block and head, the mass the block received relative to the head's
 * running maximum, so the engine can report each block's attention share to the cache.
 *
 * <p>Not thread-safe; reused across layers and steps (allocates only when a sequence outgrows it).
 */
public final class AttentionAccumulator {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

    private final int heads;
    private final int headSize;
    private final float[] max;
    private final float[] norm;
    private final float[] acc;
    private final boolean trackBlocks;
    private float[] blockMass = new float[0];
    private float[] blockMax = new float[0];
    private int blocks;

    /**
     * @param heads       query heads
     * @param headSize    floats per head
     * @param trackBlocks whether to keep per-block attention mass (costs one exp per score more)
     */
    public AttentionAccumulator(int heads, int headSize, boolean trackBlocks) {
        this.heads = heads;
        this.headSize = headSize;
        this.max = new float[heads];
        this.norm = new float[heads];
        this.acc = new float[heads * headSize];
        this.trackBlocks = trackBlocks;
    }

    /** @return query heads */
    public int heads() {
        return heads;
    }

    /** @return floats per head */
    public int headSize() {
        return headSize;
    }

    /**
     * Starts a layer.
     *
     * @param blockCount logical blocks the layer's positions span (for per-block mass)
     */
    public void reset(int blockCount) {
        java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
        java.util.Arrays.fill(norm, 0.0f);
        java.util.Arrays.fill(acc, 0.0f);
        if (trackBlocks) {
            if (blockMass.length < blockCount * heads) {
                blockMass = new float[Math.max(blockCount * heads, blockMass.length * 2)];
                blockMax = new float[blockMass.length];
            }
            java.util.Arrays.fill(blockMass, 0, blockCount * heads, 0.0f);
            java.util.Arrays.fill(blockMax, 0, blockCount * heads, Float.NEGATIVE_INFINITY);
        }
        blocks = blockCount;
    }

    /**
     * Folds one position into head {@code h}.
     *
     * @param h          query head
     * @param score      {@code q_h . k_t / sqrt(headSize)}
     * @param values     segment holding {@code v_t}
     * @param valueOffset byte offset of the head's value vector in {@code values}
     * @param block      logical block of the position
     */
    public void add(int h, float score, MemorySegment values, long valueOffset, int block) {
        float m = max[h];
        int base = h * headSize;
        if (score > m) {
            float c = (float) Math.exp(m - score);
            norm[h] *= c;
            for (int i = 0; i < headSize; i++) {
                acc[base + i] *= c;
            }
            max[h] = score;
            m = score;
        }
        float w = (float) Math.exp(score - m);
        norm[h] += w;
        for (int i = 0; i < headSize; i++) {
            acc[base + i] += w * values.get(F32, valueOffset + (long) i * Float.BYTES);
        }
        if (trackBlocks) {
            int j = block * heads + h;
            float bm = blockMax[j];
            if (score > bm) {
                blockMass[j] = blockMass[j] * (float) Math.exp(bm - score) + 1.0f;
                blockMax[j] = score;
            } else {
                blockMass[j] += (float) Math.exp(score - bm);
            }
        }
    }

    /**
     * Merges a partial result computed elsewhere (e.g. by a GPU kernel over one window) into head
     * {@code h}: its maximum score, its normalizer relative to that maximum and its unnormalized
     * weighted value sum.
     */
    public void merge(int h, float partialMax, float partialNorm, float[] partialAcc, int accOffset) {
        if (partialNorm == 0.0f) {
            return;
        }
        int base = h * headSize;
        float m = Math.max(max[h], partialMax);
        float a = (float) Math.exp(max[h] - m);
        float b = (float) Math.exp(partialMax - m);
        norm[h] = norm[h] * a + partialNorm * b;
        for (int i = 0; i < headSize; i++) {
            acc[base + i] = acc[base + i] * a + partialAcc[accOffset + i] * b;
        }
        max[h] = m;
    }

    /** @return floats of {@link #exportState}: per head the maximum, the normalizer and the value sum */
    public int stateFloats() {
        return heads * (headSize + 2);
    }

    /**
     * Copies the running state out for a backend that folds elsewhere (a GPU kernel): per head
     * {@code [max, normalizer, weighted value sum (headSize floats)]}.
     */
    public void exportState(float[] dst) {
        for (int h = 0; h < heads; h++) {
            int o = h * (headSize + 2);
            dst[o] = max[h];
            dst[o + 1] = norm[h];
            System.arraycopy(acc, h * headSize, dst, o + 2, headSize);
        }
    }

    /** Takes back a state in the form {@link #exportState} gives, after positions were folded elsewhere. */
    public void importState(float[] src) {
        for (int h = 0; h < heads; h++) {
            int o = h * (headSize + 2);
            max[h] = src[o];
            norm[h] = src[o + 1];
            System.arraycopy(src, o + 2, acc, h * headSize, headSize);
        }
    }

    /** @return whether per-block attention mass is kept (only {@link #add} feeds it) */
    public boolean tracksBlocks() {
        return trackBlocks;
    }

    /** Writes the normalized output of every head, side by side, into {@code out}. */
    public void finish(float[] out) {
        for (int h = 0; h < heads; h++) {
            float inv = norm[h];
            int base = h * headSize;
            for (int i = 0; i < headSize; i++) {
                out[base + i] = acc[base + i] / inv;
            }
        }
    }

    /**
     * @param block logical block
     * @return the share of attention the block received in this layer, summed over heads (so in
     *     [0, heads]); valid after the layer's last {@link #add}
     */
    public double blockMass(int block) {
        if (!trackBlocks || block >= blocks) {
            return 0.0;
        }
        double sum = 0.0;
        for (int h = 0; h < heads; h++) {
            int j = block * heads + h;
            if (blockMass[j] > 0.0f) {
                sum += blockMass[j] * Math.exp(blockMax[j] - max[h]) / norm[h];
            }
        }
        return sum;
    }
}
