package io.kvcache.examples.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class AttentionAccumulatorTest {
    private static final int HEADS = 2;
    private static final int HS = 4;
    private static final int N = 50;

    private final float[] scores = new float[HEADS * N];
    private final MemorySegment values = MemorySegment.ofArray(new float[N * HEADS * HS]);

    AttentionAccumulatorTest() {
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < scores.length; i++) {
            scores[i] = (float) (r.nextDouble() * 8 - 4);
        }
        for (long i = 0; i < values.byteSize() / 4; i++) {
            values.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextDouble());
        }
    }

    private long vOff(int t, int h) {
        return ((long) t * HEADS + h) * HS * 4;
    }

    /** Two-pass softmax as llama2.c computes it, in double for the oracle. */
    private double[] twoPass() {
        double[] out = new double[HEADS * HS];
        for (int h = 0; h < HEADS; h++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int t = 0; t < N; t++) {
                max = Math.max(max, scores[h * N + t]);
            }
            double sum = 0;
            for (int t = 0; t < N; t++) {
                sum += Math.exp(scores[h * N + t] - max);
            }
            for (int t = 0; t < N; t++) {
                double w = Math.exp(scores[h * N + t] - max) / sum;
                for (int i = 0; i < HS; i++) {
                    out[h * HS + i] += w * values.get(ValueLayout.JAVA_FLOAT, vOff(t, h) + 4L * i);
                }
            }
        }
        return out;
    }

    @Test
    void onlineSoftmaxEqualsTwoPassSoftmaxAndBlockMassesSumToOnePerHead() {
        AttentionAccumulator acc = new AttentionAccumulator(HEADS, HS, true);
        int blocks = (N + 7) / 8;
        acc.reset(blocks);
        for (int t = 0; t < N; t++) {
            for (int h = 0; h < HEADS; h++) {
                acc.add(h, scores[h * N + t], values, vOff(t, h), t / 8);
            }
        }
        float[] out = new float[HEADS * HS];
        acc.finish(out);
        double[] expected = twoPass();
        for (int i = 0; i < out.length; i++) {
            assertEquals(expected[i], out[i], 1e-5);
        }
        double mass = 0;
        for (int b = 0; b < blocks; b++) {
            mass += acc.blockMass(b);
        }
        assertEquals(HEADS, mass, 1e-5);
    }

    @Test
    void mergingPartialResultsEqualsOneRun() {
        AttentionAccumulator whole = new AttentionAccumulator(HEADS, HS, false);
        whole.reset(1);
        AttentionAccumulator merged = new AttentionAccumulator(HEADS, HS, false);
        merged.reset(1);
        AttentionAccumulator part = new AttentionAccumulator(HEADS, HS, false);
        for (int t = 0; t < N; t++) {
            for (int h = 0; h < HEADS; h++) {
                whole.add(h, scores[h * N + t], values, vOff(t, h), 0);
            }
        }
        // a "kernel" computes the second half; its unnormalized state is folded in with merge
        for (int t = 0; t < N / 2; t++) {
            for (int h = 0; h < HEADS; h++) {
                merged.add(h, scores[h * N + t], values, vOff(t, h), 0);
            }
        }
        for (int h = 0; h < HEADS; h++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int t = N / 2; t < N; t++) {
                max = Math.max(max, scores[h * N + t]);
            }
            float norm = 0;
            float[] sum = new float[HS];
            for (int t = N / 2; t < N; t++) {
                float w = (float) Math.exp(scores[h * N + t] - max);
                norm += w;
                for (int i = 0; i < HS; i++) {
                    sum[i] += w * values.get(ValueLayout.JAVA_FLOAT, vOff(t, h) + 4L * i);
                }
            }
            merged.merge(h, max, norm, sum, 0);
        }
        float[] a = new float[HEADS * HS];
        float[] b = new float[HEADS * HS];
        whole.finish(a);
        merged.finish(b);
        assertArrayEquals(a, b, 1e-5f);
    }
}
