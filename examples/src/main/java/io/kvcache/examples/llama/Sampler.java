package io.kvcache.examples.llama;

/**
 * Picks the next token from logits as llama2.c's sampler does without top-p: greedy argmax at
 * temperature 0, otherwise softmax of {@code logits / temperature} sampled with llama2.c's xorshift
 * generator, so a seed gives the same tokens every run.
 *
 * <p>Not thread-safe (holds the generator state and a probability buffer).
 */
public final class Sampler {
    private final float temperature;
    private final float[] probs;
    private long state;

    /**
     * @param vocabSize   logits per call
     * @param temperature 0 for greedy decoding, else a positive divisor of the logits
     * @param seed        generator seed; 0 is replaced by 1 because xorshift never leaves 0
     * @throws IllegalArgumentException for a negative or non-finite temperature
     */
    public Sampler(int vocabSize, float temperature, long seed) {
        if (!(temperature >= 0.0f) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, was " + temperature);
        }
        this.temperature = temperature;
        this.probs = new float[vocabSize];
        this.state = seed == 0 ? 1 : seed;
    }

    /**
     * @param logits scores over the vocabulary; not modified
     * @return the chosen token id
     */
    public int sample(float[] logits) {
        if (temperature == 0.0f) {
            return argmax(logits);
        }
        int n = probs.length;
        for (int i = 0; i < n; i++) {
            probs[i] = logits[i] / temperature;
        }
        softmax(probs, n);
        float coin = randomF32();
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) {
            cdf += probs[i];
            if (coin < cdf) {
                return i;
            }
        }
        return n - 1;   // rounding left the cdf a hair under 1
    }

    /** @return index of the largest value; the first one on ties */
    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    static void softmax(float[] x, int size) {
        float max = x[0];
        for (int i = 1; i < size; i++) {
            if (x[i] > max) {
                max = x[i];
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < size; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < size; i++) {
            x[i] /= sum;
        }
    }

    private int randomU32() {
        state ^= state >>> 12;
        state ^= state << 25;
        state ^= state >>> 27;
        return (int) ((state * 0x2545F4914F6CDD1DL) >>> 32);
    }

    private float randomF32() {
        return (randomU32() >>> 8) / 16777216.0f;
    }
}
