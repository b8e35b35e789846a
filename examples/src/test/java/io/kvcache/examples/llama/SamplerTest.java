package io.kvcache.examples.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SamplerTest {

    @Test
    void temperatureZeroIsArgmaxTakingTheFirstOfTies() {
        Sampler s = new Sampler(4, 0.0f, 9);
        assertEquals(2, s.sample(new float[] {0f, 1f, 3f, 3f}));
    }

    @Test
    void sameSeedGivesSameTokensAndAnotherSeedDiffers() {
        float[] logits = new float[64];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.sin(i);
        }
        int[] a = draw(new Sampler(64, 1.0f, 42), logits, 200);
        int[] b = draw(new Sampler(64, 1.0f, 42), logits, 200);
        int[] c = draw(new Sampler(64, 1.0f, 43), logits, 200);
        assertEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(b));
        assertTrue(!java.util.Arrays.equals(a, c));
    }

    @Test
    void samplingFollowsTheSoftmax() {
        // probabilities 0.5, 0.25, 0.25 at temperature 1
        float ln2 = (float) Math.log(2);
        float[] logits = {ln2, 0f, 0f};
        int[] counts = new int[3];
        Sampler s = new Sampler(3, 1.0f, 1234);
        int n = 40_000;
        for (int i = 0; i < n; i++) {
            counts[s.sample(logits)]++;
        }
        assertEquals(0.5, counts[0] / (double) n, 0.015);
        assertEquals(0.25, counts[1] / (double) n, 0.015);
    }

    @Test
    void negativeTemperatureIsRejected() {
        var e = assertThrows(IllegalArgumentException.class, () -> new Sampler(3, -1f, 1));
        assertTrue(e.getMessage().contains("temperature"));
    }

    private static int[] draw(Sampler s, float[] logits, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = s.sample(logits);
        }
        return out;
    }
}
