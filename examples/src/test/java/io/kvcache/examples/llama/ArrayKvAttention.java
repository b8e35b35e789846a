package io.kvcache.examples.llama;

/**
 * Test-only cache in two plain arrays with llama2.c's attention arithmetic (scores, softmax, then
 * the weighted sum), to check the rest of the forward pass bit for bit against the reference.
 */
public final class ArrayKvAttention implements KvAttention {
    private final LlamaConfig c;
    private final int maxPos;
    private final float[] keys;
    private final float[] values;
    private final float[] att;

    public ArrayKvAttention(LlamaConfig c, int maxPos) {
        this.c = c;
        this.maxPos = maxPos;
        keys = new float[c.layers() * maxPos * c.kvDim()];
        values = new float[c.layers() * maxPos * c.kvDim()];
        att = new float[maxPos];
    }

    @Override
    public void attend(int layer, int pos, float[] q, float[] k, float[] v, float[] out) {
        int kvDim = c.kvDim();
        int hs = c.headSize();
        int loff = layer * maxPos * kvDim;
        System.arraycopy(k, 0, keys, loff + pos * kvDim, kvDim);
        System.arraycopy(v, 0, values, loff + pos * kvDim, kvDim);
        for (int h = 0; h < c.heads(); h++) {
            int kvh = h / c.kvMul();
            for (int t = 0; t <= pos; t++) {
                float score = 0.0f;
                for (int i = 0; i < hs; i++) {
                    score += q[h * hs + i] * keys[loff + t * kvDim + kvh * hs + i];
                }
                att[t] = score / (float) Math.sqrt(hs);
            }
            Sampler.softmax(att, pos + 1);
            for (int i = 0; i < hs; i++) {
                out[h * hs + i] = 0.0f;
            }
            for (int t = 0; t <= pos; t++) {
                for (int i = 0; i < hs; i++) {
                    out[h * hs + i] += att[t] * values[loff + t * kvDim + kvh * hs + i];
                }
            }
        }
    }
}
