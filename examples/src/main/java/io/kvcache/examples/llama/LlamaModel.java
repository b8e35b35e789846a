package io.kvcache.examples.llama;

import java.util.Objects;

/**
 * The Llama-2 forward pass of llama2.c's {@code run.c}, in fp32, one token at a time: token
 * embedding, per layer RMSNorm (eps 1e-5), Q/K/V projections, rotary embedding, grouped-query
 * attention, output projection and residual, RMSNorm, SwiGLU feed-forward and residual; then a final
 * RMSNorm and the classifier. Attention and the KV cache are delegated to a {@link KvAttention}.
 *
 * <p>Not thread-safe: holds its activations; one instance per decoding thread. The weights may be
 * shared. {@link #forward} allocates nothing.
 */
public final class LlamaModel {
    private static final float RMS_EPS = 1e-5f;

    private final LlamaConfig c;
    private final LlamaWeights w;
    private final float[] x;
    private final float[] xb;
    private final float[] xb2;
    private final float[] hb;
    private final float[] hb2;
    private final float[] q;
    private final float[] k;
    private final float[] v;
    private final float[] logits;
    private final float[] ropeFreq;

    /** @param checkpoint the model to run */
    public LlamaModel(Checkpoint checkpoint) {
        this.c = checkpoint.config();
        this.w = checkpoint.weights();
        x = new float[c.dim()];
        xb = new float[c.dim()];
        xb2 = new float[c.dim()];
        hb = new float[c.hiddenDim()];
        hb2 = new float[c.hiddenDim()];
        q = new float[c.dim()];
        k = new float[c.kvDim()];
        v = new float[c.kvDim()];
        logits = new float[c.vocabSize()];
        // llama2.c computes 1 / powf(10000, headDim / headSize) per pair; the value depends only on
        // the index within the head, so it is computed once with the same float arithmetic
        ropeFreq = new float[c.headSize() / 2];
        for (int i = 0; i < c.headSize(); i += 2) {
            ropeFreq[i / 2] = 1.0f / (float) Math.pow(10000.0f, i / (float) c.headSize());
        }
    }

    /** @return the model's shape */
    public LlamaConfig config() {
        return c;
    }

    /**
     * Runs one token through the model.
     *
     * @param token the token id at {@code pos}
     * @param pos   its position, in tokens from the sequence start
     * @param kv    stores this token's K/V and attends over positions {@code [0, pos]}
     * @return the logits over the vocabulary; the array is reused by the next call
     * @throws IllegalArgumentException for a token outside the vocabulary or a negative position
     */
    public float[] forward(int token, int pos, KvAttention kv) {
        if (token < 0 || token >= c.vocabSize()) {
            throw new IllegalArgumentException("token " + token + " outside the vocabulary [0, " + c.vocabSize() + ")");
        }
        if (pos < 0) {
            throw new IllegalArgumentException("position " + pos + " is negative");
        }
        Objects.requireNonNull(kv, "kv");
        final int dim = c.dim();
        final int kvDim = c.kvDim();
        final int hidden = c.hiddenDim();
        final int headSize = c.headSize();
        System.arraycopy(w.tokenEmbedding(), token * dim, x, 0, dim);

        for (int l = 0; l < c.layers(); l++) {
            rmsnorm(xb, x, w.rmsAtt(), l * dim, dim);
            matmul(q, xb, w.wq(), l * dim * dim, dim, dim);
            matmul(k, xb, w.wk(), l * dim * kvDim, dim, kvDim);
            matmul(v, xb, w.wv(), l * dim * kvDim, dim, kvDim);

            // RoPE, relative positional encoding: rotate pairs of q (and of k while inside kvDim)
            for (int i = 0; i < dim; i += 2) {
                int headDim = i % headSize;
                float val = pos * ropeFreq[headDim / 2];
                float fcr = (float) Math.cos(val);
                float fci = (float) Math.sin(val);
                rotate(q, i, fcr, fci);
                if (i < kvDim) {
                    rotate(k, i, fcr, fci);
                }
            }

            kv.attend(l, pos, q, k, v, xb);

            matmul(xb2, xb, w.wo(), l * dim * dim, dim, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb2[i];
            }

            rmsnorm(xb, x, w.rmsFfn(), l * dim, dim);
            matmul(hb, xb, w.w1(), l * dim * hidden, dim, hidden);
            matmul(hb2, xb, w.w3(), l * dim * hidden, dim, hidden);
            for (int i = 0; i < hidden; i++) {
                float val = hb[i];
                val *= (1.0f / (1.0f + (float) Math.exp(-val)));   // SiLU
                val *= hb2[i];
                hb[i] = val;
            }
            matmul(xb, hb, w.w2(), l * dim * hidden, hidden, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb[i];
            }
        }

        rmsnorm(x, x, w.rmsFinal(), 0, dim);
        matmul(logits, x, w.classifier(), 0, dim, c.vocabSize());
        return logits;
    }

    private static void rotate(float[] vec, int i, float fcr, float fci) {
        float v0 = vec[i];
        float v1 = vec[i + 1];
        vec[i] = v0 * fcr - v1 * fci;
        vec[i + 1] = v0 * fci + v1 * fcr;
    }

    static void rmsnorm(float[] o, float[] x, float[] weight, int wOff, int size) {
        float ss = 0.0f;
        for (int j = 0; j < size; j++) {
            ss += x[j] * x[j];
        }
        ss /= size;
        ss += RMS_EPS;
        ss = 1.0f / (float) Math.sqrt(ss);
        for (int j = 0; j < size; j++) {
            o[j] = weight[wOff + j] * (ss * x[j]);
        }
    }

    /** {@code out (d) = W (d, n) @ x (n)} with W row-major at {@code wOff}; sums in index order as llama2.c. */
    static void matmul(float[] out, float[] x, float[] wt, int wOff, int n, int d) {
        for (int i = 0; i < d; i++) {
            float val = 0.0f;
            int row = wOff + i * n;
            for (int j = 0; j < n; j++) {
                val += wt[row + j] * x[j];
            }
            out[i] = val;
        }
    }
}
