package io.kvcache.examples.llama;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * Makes a deterministic llama2.c checkpoint in memory, so the demo runs with no download. The
 * weights are seeded uniform noise scaled by {@code 1/sqrt(fan-in)} (RMSNorm gains 1), which keeps
 * activations in range over many layers; the model says nothing meaningful but exercises every
 * part of the forward pass and, with its shape, the cache.
 */
public final class SyntheticCheckpoint {

    /**
     * The demo's default shape, chosen to be KV-heavy: 4 layers of 8 key/value heads of 32 floats
     * give 8 KiB of KV per token against 2.9 M weights, so the cache outgrows a small device budget
     * within a few hundred tokens while a token still computes in about a millisecond. Few layers
     * keep the traffic down: every layer of every step reads every block. The classifier is
     * separate from the embedding because with shared, random weights greedy decoding locks onto
     * repeating one token.
     */
    public static final LlamaConfig DEFAULT_SHAPE = new LlamaConfig(256, 512, 4, 8, 8, 512, 4096, false);

    /** Seed of the default checkpoint. */
    public static final long DEFAULT_SEED = 0x6B7663616368L;

    private SyntheticCheckpoint() {
    }

    /** @return the default checkpoint, the same bytes every time */
    public static Checkpoint createDefault() {
        return Checkpoint.parse("embedded synthetic model", bytes(DEFAULT_SHAPE, DEFAULT_SEED));
    }

    /**
     * Writes a checkpoint in llama2.c format.
     *
     * @param config the shape; its {@code sharedClassifier} decides the header's vocab sign
     * @param seed   seeds the weights
     * @return a buffer holding the whole file, position 0
     */
    public static ByteBuffer bytes(LlamaConfig config, long seed) {
        long size = LlamaConfig.HEADER_BYTES + config.weightFloats() * Float.BYTES;
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a synthetic checkpoint of " + size + " bytes is too large");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(config.dim()).putInt(config.hiddenDim()).putInt(config.layers()).putInt(config.heads())
                .putInt(config.kvHeads()).putInt(config.sharedClassifier() ? config.vocabSize() : -config.vocabSize())
                .putInt(config.seqLen());
        SplittableRandom rnd = new SplittableRandom(seed);
        int d = config.dim();
        int l = config.layers();
        int kv = config.kvDim();
        int h = config.hiddenDim();
        noise(b, rnd, (long) config.vocabSize() * d, 1.0f);          // embedding rows of unit scale
        ones(b, (long) l * d);                                       // rms_att
        noise(b, rnd, (long) l * d * d, scale(d));                  // wq
        noise(b, rnd, (long) l * kv * d, scale(d));                 // wk
        noise(b, rnd, (long) l * kv * d, scale(d));                 // wv
        noise(b, rnd, (long) l * d * d, scale(d));                  // wo
        ones(b, (long) l * d);                                       // rms_ffn
        noise(b, rnd, (long) l * h * d, scale(d));                  // w1
        noise(b, rnd, (long) l * d * h, scale(h));                  // w2
        noise(b, rnd, (long) l * h * d, scale(d));                  // w3
        ones(b, d);                                                  // rms_final
        b.position(b.position() + config.seqLen() * config.headSize() * Float.BYTES);  // legacy RoPE tables
        if (!config.sharedClassifier()) {
            noise(b, rnd, (long) config.vocabSize() * d, scale(d));
        }
        return b.flip();
    }

    private static float scale(int fanIn) {
        // uniform in [-a, a] has variance a^2/3; a = sqrt(3 / fanIn) gives variance 1/fanIn
        return (float) Math.sqrt(3.0 / fanIn);
    }

    private static void noise(ByteBuffer b, SplittableRandom rnd, long count, float amplitude) {
        for (long i = 0; i < count; i++) {
            b.putFloat((float) ((rnd.nextDouble() * 2.0 - 1.0) * amplitude));
        }
    }

    private static void ones(ByteBuffer b, long count) {
        for (long i = 0; i < count; i++) {
            b.putFloat(1.0f);
        }
    }
}
