package io.kvcache.examples.engine;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.examples.attention.AttentionAccumulator;
import io.kvcache.examples.attention.AttentionBackend;
import io.kvcache.examples.llama.KvAttention;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The model's attention over a sequence whose K/V live only in the cache's blocks. A step pins
 * the block of the current position (the tail) for writing the new K/V, and for each layer walks
 * the older blocks in windows that fit the top tier: pin a window, ask the cache to prefetch the
 * next one, wait, fold the window into the running softmax, unpin.
 *
 * <p>Layers alternate direction (even layers oldest block first, odd layers newest first), so the
 * window a layer ends on is the window the next layer starts on and is still resident: with a
 * top tier of {@code W} blocks, fewer blocks move per layer than in a one-way sweep. The
 * visiting order depends only on layer and position, never on the budget, so any budget gives
 * the same floats.
 *
 * <p>Use: {@link #beginStep}, then the model's forward pass (which calls {@link #attend} per
 * layer), then {@link #endStep}. Not thread-safe.
 */
public final class PagedKvAttention implements KvAttention {
    private final KvCacheManager cache;
    private final Sequence seq;
    private final KvLayout layout;
    private final AttentionBackend backend;
    private final AttentionAccumulator acc;
    private final int windowBlocks;
    private final boolean prefetch;
    private final boolean reportAttention;
    private ResidencyHandle tail;
    /** The window being folded; null between windows. */
    private ResidencyHandle window;
    /** The last window of the previous layer, still pinned for the next layer's first. */
    private ResidencyHandle carry;
    private int carryFrom;
    private int carryTo;
    private int stepPos = -1;
    private float[] kArray;
    private float[] vArray;
    private MemorySegment kSeg;
    private MemorySegment vSeg;
    private double[] stepMass = new double[0];

    /**
     * @param cache           the cache holding the sequence
     * @param seq             the sequence decoded
     * @param heads           query heads of the model
     * @param backend         computes attention over pinned blocks
     * @param windowBlocks    blocks pinned at once besides the tail, at least 1; with the tail and a
     *                        prefetched window, {@code 2 * windowBlocks + 1} must fit the top tier
     * @param prefetch        whether to ask the cache for the next window ahead of use
     * @param reportAttention whether to report each block's attention mass to the cache
     */
    public PagedKvAttention(KvCacheManager cache, Sequence seq, int heads, AttentionBackend backend,
                            int windowBlocks, boolean prefetch, boolean reportAttention) {
        if (windowBlocks < 1) {
            throw new IllegalArgumentException("window of " + windowBlocks + " blocks; needs at least 1");
        }
        this.cache = cache;
        this.seq = seq;
        this.layout = cache.layout();
        this.backend = backend;
        this.acc = new AttentionAccumulator(heads, layout.headDim(), reportAttention);
        this.windowBlocks = windowBlocks;
        this.prefetch = prefetch;
        this.reportAttention = reportAttention;
    }

    /**
     * Pins the block of {@code pos} for the step. The sequence must already hold the token at
     * {@code pos}.
     */
    public void beginStep(int pos) {
        if (stepPos >= 0) {
            throw new IllegalStateException("step at position " + stepPos + " not ended");
        }
        int tb = pos / layout.blockTokens();
        tail = cache.ensureResident(seq, tb, tb + 1);
        stepPos = pos;
        tail.await();
        if (reportAttention) {
            if (stepMass.length < tb + 1) {
                stepMass = new double[Math.max(tb + 1, stepMass.length * 2)];
            }
            java.util.Arrays.fill(stepMass, 0, tb + 1, 0.0);
        }
    }

    @Override
    public void attend(int layer, int pos, float[] q, float[] k, float[] v, float[] out) {
        if (pos != stepPos) {
            throw new IllegalStateException("attend at position " + pos + " inside the step of position " + stepPos);
        }
        int bt = layout.blockTokens();
        int tb = pos / bt;
        int tok = pos % bt;
        tail.write(tb, BlockLayoutDescriptor.tokenOffset(layout, layer, BlockLayoutDescriptor.K, tok), segK(k));
        tail.write(tb, BlockLayoutDescriptor.tokenOffset(layout, layer, BlockLayoutDescriptor.V, tok), segV(v));

        acc.reset(tb + 1);
        boolean descending = (layer & 1) == 1;
        if (!descending) {
            foldWindows(layer, q, tb, false);
            backend.fold(layout, layer, q, tail, tb * bt, pos + 1, false, acc);
        } else {
            backend.fold(layout, layer, q, tail, tb * bt, pos + 1, true, acc);
            foldWindows(layer, q, tb, true);
        }
        acc.finish(out);
        if (reportAttention) {
            for (int b = 0; b <= tb; b++) {
                stepMass[b] += acc.blockMass(b);
            }
        }
    }

    /** Folds the full blocks {@code [0, blocks)} window by window. */
    private void foldWindows(int layer, float[] q, int blocks, boolean descending) {
        if (blocks == 0) {
            return;
        }
        int bt = layout.blockTokens();
        int windows = (blocks + windowBlocks - 1) / windowBlocks;
        for (int i = 0; i < windows; i++) {
            int w = descending ? windows - 1 - i : i;
            int from = w * windowBlocks;
            int to = Math.min(from + windowBlocks, blocks);
            if (carry != null && carryFrom == from && carryTo == to) {
                window = carry;
                carry = null;
            } else {
                closeCarry();
                window = cache.ensureResident(seq, from, to);
            }
            if (prefetch && i + 1 < windows) {
                int nw = descending ? w - 1 : w + 1;
                int nFrom = nw * windowBlocks;
                cache.prefetch(new AccessPlan(List.of(new AccessPlan.Read(seq.id(), nFrom,
                        Math.min(nFrom + windowBlocks, blocks)))));
            }
            window.await();
            backend.fold(layout, layer, q, window, from * bt, to * bt, descending, acc);
            if (i + 1 == windows) {
                // the next layer walks the other way and starts on this window: keep it pinned
                carry = window;
                carryFrom = from;
                carryTo = to;
            } else {
                window.close();
            }
            window = null;
        }
    }

    /**
     * Ends the step: unpins, declares the position's K/V written (sealing a block that became
     * full), reports attention mass and tells the cache the step is over.
     */
    public void endStep() {
        if (stepPos < 0) {
            throw new IllegalStateException("no step in progress");
        }
        int pos = stepPos;
        stepPos = -1;
        closeCarry();
        tail.close();
        tail = null;
        seq.markWritten(pos + 1);
        if (reportAttention) {
            int tb = pos / layout.blockTokens();
            for (int b = 0; b <= tb; b++) {
                cache.reportAttention(seq, b, stepMass[b]);
            }
        }
        cache.endStep();
    }

    /** Unpins whatever a failed step left pinned; safe to call at any time. */
    public void abort() {
        if (window != null) {
            window.close();
            window = null;
        }
        closeCarry();
        if (tail != null) {
            tail.close();
            tail = null;
        }
        stepPos = -1;
    }

    private void closeCarry() {
        if (carry != null) {
            carry.close();
            carry = null;
        }
    }

    private MemorySegment segK(float[] k) {
        if (k != kArray) {
            kArray = k;
            kSeg = MemorySegment.ofArray(k);
        }
        return kSeg;
    }

    private MemorySegment segV(float[] v) {
        if (v != vArray) {
            vArray = v;
            vSeg = MemorySegment.ofArray(v);
        }
        return vSeg;
    }
}
