package io.kvcache.examples.engine;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayerWindows;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.examples.attention.AttentionAccumulator;
import io.kvcache.examples.attention.AttentionBackend;
import io.kvcache.examples.llama.KvAttention;
import java.lang.foreign.MemorySegment;

/**
 * The model's attention over a sequence whose K/V live only in the cache's blocks. A step pins
 * the block of the current position (the tail) for writing the new K/V, and for each layer folds
 * the older blocks window by window as the cache's {@link LayerWindows} hands them out: only that
 * layer's slices move, the next window is in flight while one is folded, and a context larger
 * than the top tier costs nothing more to write than one that fits.
 *
 * <p>Blocks are folded in ascending order, the tail last; the order depends only on the position,
 * never on the budget, so any budget gives the same floats.
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
    private final LayerWindows.Options windowOptions;
    private final boolean reportAttention;
    private ResidencyHandle tail;
    private LayerWindows windows;
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
     * @param windowBlocks    blocks per window, at least 1; at most half the top tier (larger is
     *                        taken as half)
     * @param prefetchEvicts  whether the window asked for ahead may evict blocks held whole in the
     *                        top tier ({@link LayerWindows.Options#prefetchEvicts()})
     * @param reportAttention whether to report each block's attention mass to the cache
     */
    public PagedKvAttention(KvCacheManager cache, Sequence seq, int heads, AttentionBackend backend,
                            int windowBlocks, boolean prefetchEvicts, boolean reportAttention) {
        if (windowBlocks < 1) {
            throw new IllegalArgumentException("window of " + windowBlocks + " blocks; needs at least 1");
        }
        this.cache = cache;
        this.seq = seq;
        this.layout = cache.layout();
        this.backend = backend;
        this.acc = new AttentionAccumulator(heads, layout.headDim(), reportAttention);
        int half = Math.max(1, cache.tiers().getFirst().slotCount() / 2);
        this.windowOptions = new LayerWindows.Options(Math.min(windowBlocks, half), prefetchEvicts);
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
        windows = cache.layerWindows(seq, 0, tb, windowOptions);
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
        for (ResidencyHandle w : windows.layer(layer)) {
            int from = w.fromBlock();
            backend.fold(layout, layer, q, w, from * bt, (from + w.blockCount()) * bt, false, acc);
        }
        backend.fold(layout, layer, q, tail, tb * bt, pos + 1, false, acc);
        acc.finish(out);
        if (reportAttention) {
            for (int b = 0; b <= tb; b++) {
                stepMass[b] += acc.blockMass(b);
            }
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
        windows.close();
        windows = null;
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
        if (windows != null) {
            windows.close();
            windows = null;
        }
        if (tail != null) {
            tail.close();
            tail = null;
        }
        stepPos = -1;
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
