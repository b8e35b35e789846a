package io.kvcache.examples.attention;

import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.layout.KvLayout;

/**
 * Computes decode attention over positions whose K/V sit in blocks pinned by a
 * {@link ResidencyHandle}. The seam between the paging loop (which pins windows of blocks) and
 * the arithmetic: the CPU backend reads the blocks' host views; a GPU backend would hand the
 * handle's {@link ResidencyHandle#blockTable(int) block table} of device addresses to a paged
 * attention kernel and {@link AttentionAccumulator#merge merge} its partial results.
 */
public interface AttentionBackend extends AutoCloseable {

    /** @return a short name for the summary, e.g. "cpu" */
    String name();

    /**
     * @param topTierHostAccessible whether the cache's top tier has host views
     * @return whether this backend can read the top tier
     */
    boolean supports(boolean topTierHostAccessible);

    /**
     * Folds positions {@code [fromPos, toPos)} of one layer into {@code acc}, one position after
     * another in ascending order, or in descending order when {@code descending}. Every position's
     * block lies within {@code blocks}, which is resident.
     *
     * @param layout     the cache layout (fp32, {@code kvHeads * headDim} per token and kind)
     * @param layer      layer index
     * @param q          rotated query, {@code heads * headDim} floats
     * @param blocks     the pinned blocks
     * @param fromPos    first position, inclusive
     * @param toPos      last position, exclusive
     * @param descending visit order
     * @param acc        running softmax state of this layer
     */
    void fold(KvLayout layout, int layer, float[] q, ResidencyHandle blocks, int fromPos, int toPos,
              boolean descending, AttentionAccumulator acc);

    /** Releases what the backend holds (device buffers, modules). */
    @Override
    default void close() {
    }
}
