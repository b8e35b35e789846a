package io.kvcache.examples.llama;

/** Test-only plain-array cache that also hands out the K/V it stored, for layout checks. */
public final class RecordingKvAttention implements KvAttention {
    private final LlamaConfig c;
    private final int maxPos;
    private final ArrayKvAttention delegate;
    private final float[] keys;
    private final float[] values;

    public RecordingKvAttention(LlamaConfig c, int maxPos) {
        this.c = c;
        this.maxPos = maxPos;
        this.delegate = new ArrayKvAttention(c, maxPos);
        this.keys = new float[c.layers() * maxPos * c.kvDim()];
        this.values = new float[c.layers() * maxPos * c.kvDim()];
    }

    @Override
    public void attend(int layer, int pos, float[] q, float[] k, float[] v, float[] out) {
        int off = (layer * maxPos + pos) * c.kvDim();
        System.arraycopy(k, 0, keys, off, c.kvDim());
        System.arraycopy(v, 0, values, off, c.kvDim());
        delegate.attend(layer, pos, q, k, v, out);
    }

    /** @param kind 0 for K, 1 for V */
    public float[] stored(int layer, int pos, int kind) {
        int off = (layer * maxPos + pos) * c.kvDim();
        return java.util.Arrays.copyOfRange(kind == 0 ? keys : values, off, off + c.kvDim());
    }
}
