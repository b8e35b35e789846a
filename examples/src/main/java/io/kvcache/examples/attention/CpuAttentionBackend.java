package io.kvcache.examples.attention;

import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Attention on the CPU, reading K and V straight from the top tier's host views of the pinned
 * blocks' layer slices (no copy). Query head {@code h} reads KV head {@code h / (heads / kvHeads)}.
 */
public final class CpuAttentionBackend implements AttentionBackend {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public boolean supports(boolean topTierHostAccessible) {
        return topTierHostAccessible;
    }

    @Override
    public void fold(KvLayout layout, int layer, float[] q, ResidencyHandle blocks, int fromPos, int toPos,
                     boolean descending, AttentionAccumulator acc) {
        final int bt = layout.blockTokens();
        final int hs = acc.headSize();
        final int heads = acc.heads();
        final int kvMul = heads / layout.kvHeads();
        final long headBytes = (long) hs * Float.BYTES;
        // offsets within the layer's slice: the handle may make only this layer resident
        final long layerBase = BlockLayoutDescriptor.layerOffset(layout, layer);
        final long kBase = BlockLayoutDescriptor.tokenOffset(layout, layer, BlockLayoutDescriptor.K, 0) - layerBase;
        final long vBase = BlockLayoutDescriptor.tokenOffset(layout, layer, BlockLayoutDescriptor.V, 0) - layerBase;
        final long tokenBytes = layout.tokenLayerBytes();
        final float scale = (float) Math.sqrt(hs);
        int count = toPos - fromPos;
        MemorySegment view = null;
        int viewBlock = -1;
        for (int n = 0; n < count; n++) {
            int pos = descending ? toPos - 1 - n : fromPos + n;
            int block = pos / bt;
            if (block != viewBlock) {
                view = blocks.view(block, layer);
                viewBlock = block;
            }
            long kTok = kBase + (pos % bt) * tokenBytes;
            long vTok = vBase + (pos % bt) * tokenBytes;
            for (int h = 0; h < heads; h++) {
                long kOff = kTok + (h / kvMul) * headBytes;
                int qo = h * hs;
                float score = 0.0f;
                for (int i = 0; i < hs; i++) {
                    score += q[qo + i] * view.get(F32, kOff + (long) i * Float.BYTES);
                }
                score /= scale;
                acc.add(h, score, view, vTok + (h / kvMul) * headBytes, block);
            }
        }
    }
}
