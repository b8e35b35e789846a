package io.kvcache.examples.llama;

/**
 * The fp32 weights of a Llama-2 model, each tensor one array holding every layer, in the order and
 * shapes of llama2.c's {@code TransformerWeights}. A matrix of shape (rows, cols) is row-major, so
 * {@code wq} of layer {@code l} starts at {@code l * dim * dim}.
 *
 * @param tokenEmbedding (vocab, dim)
 * @param rmsAtt         (layers, dim)
 * @param wq             (layers, dim, dim): query projection, rows are outputs
 * @param wk             (layers, kvDim, dim)
 * @param wv             (layers, kvDim, dim)
 * @param wo             (layers, dim, dim)
 * @param rmsFfn         (layers, dim)
 * @param w1             (layers, hidden, dim): gate
 * @param w2             (layers, dim, hidden): down
 * @param w3             (layers, hidden, dim): up
 * @param rmsFinal       (dim)
 * @param classifier     (vocab, dim); the same array as {@code tokenEmbedding} when shared
 */
public record LlamaWeights(float[] tokenEmbedding, float[] rmsAtt, float[] wq, float[] wk, float[] wv, float[] wo,
                           float[] rmsFfn, float[] w1, float[] w2, float[] w3, float[] rmsFinal, float[] classifier) {
}
