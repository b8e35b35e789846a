package io.kvcache.examples.llama;

/**
 * Shape of a Llama-2 model as stored in the seven-int header of a llama2.c checkpoint.
 *
 * @param dim              width of the residual stream
 * @param hiddenDim        width of the SwiGLU feed-forward layer
 * @param layers           transformer layers
 * @param heads            query heads
 * @param kvHeads          key/value heads; {@code heads} is a multiple of it (grouped-query attention)
 * @param vocabSize        tokens in the vocabulary
 * @param seqLen           longest context the model was trained for, in tokens; RoPE itself has no limit
 * @param sharedClassifier whether the output classifier is the token embedding table (the header's
 *                         vocab size was positive)
 */
public record LlamaConfig(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize, int seqLen,
                          boolean sharedClassifier) {

    /** Bytes of the checkpoint header: seven little-endian int32. */
    public static final int HEADER_BYTES = 7 * Integer.BYTES;

    public LlamaConfig {
        positive("dim", dim);
        positive("hidden_dim", hiddenDim);
        positive("n_layers", layers);
        positive("n_heads", heads);
        positive("n_kv_heads", kvHeads);
        positive("vocab_size", vocabSize);
        positive("seq_len", seqLen);
        if (dim % heads != 0) {
            throw new IllegalArgumentException("dim " + dim + " is not a multiple of n_heads " + heads);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("n_heads " + heads + " is not a multiple of n_kv_heads " + kvHeads);
        }
        if ((dim / heads) % 2 != 0) {
            throw new IllegalArgumentException("head size " + dim / heads + " is odd; RoPE rotates pairs");
        }
    }

    private static void positive(String name, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException(name + " must be positive, was " + v);
        }
    }

    /** @return elements per attention head */
    public int headSize() {
        return dim / heads;
    }

    /** @return width of K (and of V) for one token in one layer: {@code kvHeads * headSize} */
    public int kvDim() {
        return kvHeads * headSize();
    }

    /** @return query heads that share one key/value head */
    public int kvMul() {
        return heads / kvHeads;
    }

    /** @return fp32 weights the checkpoint holds after its header, classifier included when not shared */
    public long weightFloats() {
        long d = dim;
        long l = layers;
        long hs = headSize();
        long n = (long) vocabSize * d           // token embedding
                + l * d                          // rms_att
                + l * d * heads * hs             // wq
                + 2 * l * d * kvHeads * hs       // wk, wv
                + l * heads * hs * d             // wo
                + l * d                          // rms_ffn
                + 3 * l * d * hiddenDim          // w1, w2, w3
                + d                              // rms_final
                + (long) seqLen * hs;            // legacy freq_cis_real and freq_cis_imag, unused
        return sharedClassifier ? n : n + (long) vocabSize * d;
    }

    /** @return K and V bytes of one token across all layers in fp32 */
    public long kvBytesPerToken() {
        return 2L * layers * kvDim() * Float.BYTES;
    }
}
