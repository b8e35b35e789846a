package io.kvcache.examples.engine;

/**
 * What one request produced.
 *
 * @param prompt         the prompt token ids
 * @param generated      the sampled token ids, in order
 * @param logits         per sampled token, the logits it was sampled from (row {@code i} came from
 *                       the position before {@code generated[i]})
 * @param cachedTokens   leading prompt tokens whose K/V the cache already held: not recomputed
 * @param cachedBlocksPerTier per tier (fastest first), how many of the cached blocks were found there
 * @param computedTokens positions run through the model, recomputed ones included
 * @param recoveries     lost blocks recovered from by recomputing their positions
 * @param nanos          wall time of the request, in ns
 */
public record DecodeResult(int[] prompt, int[] generated, float[][] logits, int cachedTokens, int[] cachedBlocksPerTier,
                           int computedTokens, int recoveries,
                           long nanos) {

    /** @return prompt followed by the generated tokens */
    public int[] stream() {
        int[] s = java.util.Arrays.copyOf(prompt, prompt.length + generated.length);
        System.arraycopy(generated, 0, s, prompt.length, generated.length);
        return s;
    }

    /**
     * Compares tokens and every logit bit for bit.
     *
     * @return null when identical, else a line saying where they first differ
     */
    public String firstDifference(DecodeResult other) {
        int n = Math.min(generated.length, other.generated.length);
        for (int i = 0; i < n; i++) {
            float[] a = logits[i];
            float[] b = other.logits[i];
            for (int j = 0; j < a.length; j++) {
                if (Float.floatToRawIntBits(a[j]) != Float.floatToRawIntBits(b[j])) {
                    return "logit " + j + " of generated token " + i + " differs: " + a[j] + " vs " + b[j];
                }
            }
            if (generated[i] != other.generated[i]) {
                return "generated token " + i + " differs: " + generated[i] + " vs " + other.generated[i];
            }
        }
        if (generated.length != other.generated.length) {
            return "generated " + generated.length + " vs " + other.generated.length + " tokens";
        }
        return null;
    }
}
