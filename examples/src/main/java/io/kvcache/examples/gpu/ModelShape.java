package io.kvcache.examples.gpu;

import io.kvcache.examples.llama.LlamaConfig;

/**
 * Shape of a Llama-architecture model for the GPU engine.
 *
 * @param name       what to call it in reports
 * @param dim        width of the residual stream
 * @param hidden     width of the SwiGLU feed-forward layer
 * @param layers     transformer layers
 * @param heads      query heads
 * @param kvHeads    key/value heads (grouped-query attention)
 * @param vocab      vocabulary size
 * @param ropeTheta  rotary base: 10000 for llama2.c's models, 500000 for Llama 3
 * @param sharedClassifier whether the classifier is the token embedding table
 */
public record ModelShape(String name, int dim, int hidden, int layers, int heads, int kvHeads, int vocab,
                         float ropeTheta, boolean sharedClassifier) {

    public ModelShape {
        new LlamaConfig(dim, hidden, layers, heads, kvHeads, vocab, 1, sharedClassifier);   // validates
        if (!(ropeTheta > 1f)) {
            throw new IllegalArgumentException("rope theta must be above 1, was " + ropeTheta);
        }
    }

    /** Llama 3 8B: 32 layers, dim 4096, 32 heads, 8 KV heads, FFN 14336, vocab 128256, theta 500000. */
    public static ModelShape llama3_8b() {
        return new ModelShape("llama3-8b", 4096, 14336, 32, 32, 8, 128256, 500000f, false);
    }

    /**
     * A slice of Llama 3 70B: {@code layers} of its 80 layers (dim 8192, 64 heads, 8 KV heads, FFN
     * 28672, vocab 128256); per-layer costs scale to the whole model.
     */
    public static ModelShape llama3_70bSlice(int layers) {
        return new ModelShape("llama3-70b/" + layers + "-layers", 8192, 28672, layers, 64, 8, 128256, 500000f, false);
    }

    /** @return the shape of a llama2.c checkpoint (theta 10000) */
    public static ModelShape of(String name, LlamaConfig c) {
        return new ModelShape(name, c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(), 10000f,
                c.sharedClassifier());
    }

    /**
     * @param name "llama3-8b" or "llama3-70b-slice:N" (N layers)
     * @throws IllegalArgumentException for another name
     */
    public static ModelShape named(String name) {
        if (name.equals("llama3-8b")) {
            return llama3_8b();
        }
        if (name.startsWith("llama3-70b-slice:")) {
            return llama3_70bSlice(Integer.parseInt(name.substring("llama3-70b-slice:".length())));
        }
        throw new IllegalArgumentException("unknown model shape '" + name + "'; known: llama3-8b, llama3-70b-slice:N");
    }

    /** @return elements per head */
    public int headSize() {
        return dim / heads;
    }

    /** @return width of K (and V) of one token in one layer */
    public int kvDim() {
        return kvHeads * headSize();
    }

    /** @return width of the fused q|k|v projection */
    public int qkvDim() {
        return dim + 2 * kvDim();
    }

    /** @return parameters of the projections of all layers plus the classifier (what a token's forward multiplies by) */
    public long matmulParams() {
        long perLayer = (long) qkvDim() * dim + (long) dim * dim + 3L * hidden * dim;
        return perLayer * layers + (long) vocab * dim;
    }
}
