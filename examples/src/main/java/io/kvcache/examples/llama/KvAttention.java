package io.kvcache.examples.llama;

/**
 * Where the forward pass keeps K and V and how it attends over them. The forward pass hands over the
 * new token's K and V for one layer and receives the attention output; it never sees the cache.
 */
public interface KvAttention {

    /**
     * Stores the K and V of the token at {@code pos} in {@code layer}, then computes multi-head
     * attention of the query over positions {@code [0, pos]}: for each query head {@code h}, the
     * softmax of {@code q_h . k_t / sqrt(headSize)} over {@code t}, weighting {@code v_t}; head
     * {@code h} reads key/value head {@code h / kvMul}.
     *
     * @param layer layer index
     * @param pos   position of the token, in tokens from the sequence start
     * @param q     the rotated query, {@code dim} floats, read only
     * @param k     the rotated key, {@code kvDim} floats, read only
     * @param v     the value, {@code kvDim} floats, read only
     * @param out   receives {@code dim} floats: the heads' outputs side by side
     */
    void attend(int layer, int pos, float[] q, float[] k, float[] v, float[] out);
}
