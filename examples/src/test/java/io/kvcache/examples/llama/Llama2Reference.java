package io.kvcache.examples.llama;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A plain-array transcription of llama2.c's {@code run.c} (reader, forward pass, KV cache as one
 * float array per kind), used as the oracle. It shares no code with the demo or the library on
 * purpose: a mistake copied into both would otherwise go unseen.
 */
public final class Llama2Reference {
    final int dim;
    final int hiddenDim;
    final int nLayers;
    final int nHeads;
    final int nKvHeads;
    final int vocabSize;
    final int seqLen;
    final int headSize;
    final int kvDim;
    final int kvMul;
    final float[] emb;
    final float[] rmsAtt;
    final float[] wq;
    final float[] wk;
    final float[] wv;
    final float[] wo;
    final float[] rmsFfn;
    final float[] w1;
    final float[] w2;
    final float[] w3;
    final float[] rmsFinal;
    final float[] wcls;
    // run state
    final float[] x;
    final float[] xb;
    final float[] xb2;
    final float[] hb;
    final float[] hb2;
    final float[] q;
    final float[] att;
    final float[] logits;
    final float[] keyCache;
    final float[] valueCache;
    final int maxPos;

    public Llama2Reference(ByteBuffer file, int maxPos) {
        ByteBuffer b = file.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        dim = b.getInt();
        hiddenDim = b.getInt();
        nLayers = b.getInt();
        nHeads = b.getInt();
        nKvHeads = b.getInt();
        int v = b.getInt();
        seqLen = b.getInt();
        boolean shared = v > 0;
        vocabSize = Math.abs(v);
        headSize = dim / nHeads;
        kvDim = dim * nKvHeads / nHeads;
        kvMul = nHeads / nKvHeads;
        FloatBuffer f = b.asFloatBuffer();
        emb = next(f, vocabSize * dim);
        rmsAtt = next(f, nLayers * dim);
        wq = next(f, nLayers * dim * nHeads * headSize);
        wk = next(f, nLayers * dim * nKvHeads * headSize);
        wv = next(f, nLayers * dim * nKvHeads * headSize);
        wo = next(f, nLayers * nHeads * headSize * dim);
        rmsFfn = next(f, nLayers * dim);
        w1 = next(f, nLayers * dim * hiddenDim);
        w2 = next(f, nLayers * hiddenDim * dim);
        w3 = next(f, nLayers * dim * hiddenDim);
        rmsFinal = next(f, dim);
        f.position(f.position() + seqLen * headSize / 2);
        f.position(f.position() + seqLen * headSize / 2);
        wcls = shared ? emb : next(f, vocabSize * dim);
        this.maxPos = maxPos;
        x = new float[dim];
        xb = new float[dim];
        xb2 = new float[dim];
        hb = new float[hiddenDim];
        hb2 = new float[hiddenDim];
        q = new float[dim];
        att = new float[nHeads * maxPos];
        logits = new float[vocabSize];
        keyCache = new float[nLayers * maxPos * kvDim];
        valueCache = new float[nLayers * maxPos * kvDim];
    }

    public static Llama2Reference load(Path p, int maxPos) throws IOException {
        return new Llama2Reference(ByteBuffer.wrap(Files.readAllBytes(p)), maxPos);
    }

    private static float[] next(FloatBuffer f, int n) {
        float[] a = new float[n];
        f.get(a);
        return a;
    }

    static void rmsnorm(float[] o, int oOff, float[] x, int xOff, float[] weight, int wOff, int size) {
        float ss = 0.0f;
        for (int j = 0; j < size; j++) {
            ss += x[xOff + j] * x[xOff + j];
        }
        ss /= size;
        ss += 1e-5f;
        ss = 1.0f / (float) Math.sqrt(ss);
        for (int j = 0; j < size; j++) {
            o[oOff + j] = weight[wOff + j] * (ss * x[xOff + j]);
        }
    }

    static void softmax(float[] x, int off, int size) {
        float max = x[off];
        for (int i = 1; i < size; i++) {
            if (x[off + i] > max) {
                max = x[off + i];
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < size; i++) {
            x[off + i] = (float) Math.exp(x[off + i] - max);
            sum += x[off + i];
        }
        for (int i = 0; i < size; i++) {
            x[off + i] /= sum;
        }
    }

    static void matmul(float[] xout, int oOff, float[] x, float[] w, int wOff, int n, int d) {
        for (int i = 0; i < d; i++) {
            float val = 0.0f;
            for (int j = 0; j < n; j++) {
                val += w[wOff + i * n + j] * x[j];
            }
            xout[oOff + i] = val;
        }
    }

    public float[] forward(int token, int pos) {
        System.arraycopy(emb, token * dim, x, 0, dim);
        for (int l = 0; l < nLayers; l++) {
            rmsnorm(xb, 0, x, 0, rmsAtt, l * dim, dim);
            int loff = l * maxPos * kvDim;
            int kOff = loff + pos * kvDim;
            matmul(q, 0, xb, wq, l * dim * dim, dim, dim);
            matmul(keyCache, kOff, xb, wk, l * dim * kvDim, dim, kvDim);
            matmul(valueCache, kOff, xb, wv, l * dim * kvDim, dim, kvDim);
            for (int i = 0; i < dim; i += 2) {
                int headDim = i % headSize;
                float freq = 1.0f / (float) Math.pow(10000.0f, headDim / (float) headSize);
                float val = pos * freq;
                float fcr = (float) Math.cos(val);
                float fci = (float) Math.sin(val);
                int rotn = i < kvDim ? 2 : 1;
                for (int vv = 0; vv < rotn; vv++) {
                    float[] vec = vv == 0 ? q : keyCache;
                    int o = vv == 0 ? 0 : kOff;
                    float v0 = vec[o + i];
                    float v1 = vec[o + i + 1];
                    vec[o + i] = v0 * fcr - v1 * fci;
                    vec[o + i + 1] = v0 * fci + v1 * fcr;
                }
            }
            for (int h = 0; h < nHeads; h++) {
                int qo = h * headSize;
                int ao = h * maxPos;
                for (int t = 0; t <= pos; t++) {
                    int ko = loff + t * kvDim + (h / kvMul) * headSize;
                    float score = 0.0f;
                    for (int i = 0; i < headSize; i++) {
                        score += q[qo + i] * keyCache[ko + i];
                    }
                    score /= (float) Math.sqrt(headSize);
                    att[ao + t] = score;
                }
                softmax(att, ao, pos + 1);
                for (int i = 0; i < headSize; i++) {
                    xb[qo + i] = 0.0f;
                }
                for (int t = 0; t <= pos; t++) {
                    int vo = loff + t * kvDim + (h / kvMul) * headSize;
                    float a = att[ao + t];
                    for (int i = 0; i < headSize; i++) {
                        xb[qo + i] += a * valueCache[vo + i];
                    }
                }
            }
            matmul(xb2, 0, xb, wo, l * dim * dim, dim, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb2[i];
            }
            rmsnorm(xb, 0, x, 0, rmsFfn, l * dim, dim);
            matmul(hb, 0, xb, w1, l * dim * hiddenDim, dim, hiddenDim);
            matmul(hb2, 0, xb, w3, l * dim * hiddenDim, dim, hiddenDim);
            for (int i = 0; i < hiddenDim; i++) {
                float val = hb[i];
                val *= (1.0f / (1.0f + (float) Math.exp(-val)));
                val *= hb2[i];
                hb[i] = val;
            }
            matmul(xb, 0, hb, w2, l * dim * hiddenDim, hiddenDim, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb[i];
            }
        }
        rmsnorm(x, 0, x, 0, rmsFinal, 0, dim);
        matmul(logits, 0, x, wcls, 0, dim, vocabSize);
        return logits;
    }
}
