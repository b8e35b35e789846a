package io.kvcache.core.layout;

/**
 * Byte layout of one KV block. A block holds {@code T = blockTokens} tokens for every layer:
 *
 * <pre>
 *  block
 *  +---------------------------- layer 0 ----------------------------+-- layer 1 --+ ...
 *  |  K: token 0 [kvHead 0 [headDim] .. kvHead H-1] .. token T-1      |
 *  |  V: token 0 [kvHead 0 [headDim] .. kvHead H-1] .. token T-1      |
 *  +------------------------------------------------------------------+-------------+
 *  offset(layer, kind, token, head) =
 *      ((((layer * 2 + kind) * T + token) * H + head) * headDim) * dtypeBytes
 * </pre>
 *
 * So a whole block is one contiguous DMA and one layer of a block is one contiguous slice of
 * {@link KvLayout#layerBytes()} bytes, which keeps layer-wise transfers possible.
 */
public final class BlockLayoutDescriptor {
    /** Index of the K half within a layer. */
    public static final int K = 0;
    /** Index of the V half within a layer. */
    public static final int V = 1;

    private BlockLayoutDescriptor() {
    }

    /**
     * @param layout the cache layout
     * @param layer  layer index in [0, layers)
     * @param kind   {@link #K} or {@link #V}
     * @param token  token index within the block, in [0, blockTokens)
     * @param head   KV head index in [0, kvHeads)
     * @return byte offset of that head's vector within the block
     */
    public static long offset(KvLayout layout, int layer, int kind, int token, int head) {
        check("layer", layer, layout.layers());
        check("kind", kind, 2);
        check("token", token, layout.blockTokens());
        check("head", head, layout.kvHeads());
        long index = (((long) layer * 2 + kind) * layout.blockTokens() + token) * layout.kvHeads() + head;
        return index * layout.headDim() * layout.dtype().bytes();
    }

    /**
     * @return byte offset of the K or V vectors of all heads of one token in one layer;
     *     {@link KvLayout#tokenLayerBytes()} bytes are contiguous from there
     */
    public static long tokenOffset(KvLayout layout, int layer, int kind, int token) {
        return offset(layout, layer, kind, token, 0);
    }

    /** @return byte offset of one layer's slice ({@link KvLayout#layerBytes()} bytes) */
    public static long layerOffset(KvLayout layout, int layer) {
        check("layer", layer, layout.layers());
        return layer * layout.layerBytes();
    }

    private static void check(String name, int value, int bound) {
        if (value < 0 || value >= bound) {
            throw new IndexOutOfBoundsException(name + " " + value + " outside [0, " + bound + ")");
        }
    }
}
