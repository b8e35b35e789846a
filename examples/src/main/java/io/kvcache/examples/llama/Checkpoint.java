package io.kvcache.examples.llama;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A llama2.c checkpoint: a header of seven little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len) followed by the fp32 weights in {@link LlamaWeights} order, then
 * the legacy RoPE tables (skipped: RoPE is computed), then the classifier when vocab_size was
 * negative. A positive vocab_size means the classifier is the embedding table.
 *
 * @param name    where the checkpoint came from, for messages
 * @param config  the model's shape
 * @param weights the weights
 */
public record Checkpoint(String name, LlamaConfig config, LlamaWeights weights) {

    /**
     * Reads a checkpoint file.
     *
     * @throws CheckpointException naming the file when it is missing, unreadable, has a bad header
     *                             or a size that does not match its header
     */
    public static Checkpoint read(Path file) {
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new CheckpointException("model file " + file + " does not exist");
        } catch (IOException e) {
            throw new CheckpointException("cannot read model file " + file + ": " + e.getMessage(), e);
        }
        if (Files.isDirectory(file)) {
            throw new CheckpointException("model file " + file + " is a directory");
        }
        if (size > Integer.MAX_VALUE) {
            throw new CheckpointException("model file " + file + " is " + size
                    + " bytes; this demo reads checkpoints up to 2 GiB");
        }
        ByteBuffer bytes = ByteBuffer.allocate((int) size);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (bytes.hasRemaining() && ch.read(bytes) >= 0) {
                // read to the end
            }
        } catch (IOException e) {
            throw new CheckpointException("cannot read model file " + file + ": " + e.getMessage(), e);
        }
        bytes.flip();
        return parse(file.toString(), bytes);
    }

    /**
     * Parses a checkpoint held in memory.
     *
     * @param name  names the source in messages
     * @param bytes the whole checkpoint, from position to limit
     * @throws CheckpointException when the header is invalid or the size does not match it
     */
    public static Checkpoint parse(String name, ByteBuffer bytes) {
        ByteBuffer b = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() < LlamaConfig.HEADER_BYTES) {
            throw new CheckpointException("model file " + name + " is " + b.remaining()
                    + " bytes, shorter than the 28-byte llama2.c header");
        }
        int dim = b.getInt();
        int hidden = b.getInt();
        int layers = b.getInt();
        int heads = b.getInt();
        int kvHeads = b.getInt();
        int vocab = b.getInt();
        int seqLen = b.getInt();
        LlamaConfig config;
        try {
            config = new LlamaConfig(dim, hidden, layers, heads, kvHeads, Math.abs(vocab), seqLen, vocab > 0);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException("model file " + name + " has an invalid llama2.c header: " + e.getMessage());
        }
        long expected = LlamaConfig.HEADER_BYTES + config.weightFloats() * Float.BYTES;
        long actual = (long) LlamaConfig.HEADER_BYTES + b.remaining();
        if (expected != actual) {
            throw new CheckpointException("model file " + name + " is " + actual + " bytes but its header (dim "
                    + dim + ", hidden_dim " + hidden + ", n_layers " + layers + ", n_heads " + heads + ", n_kv_heads "
                    + kvHeads + ", vocab_size " + vocab + ", seq_len " + seqLen + ") needs " + expected
                    + " bytes; truncated or not a llama2.c checkpoint");
        }
        FloatBuffer f = b.asFloatBuffer();
        int d = config.dim();
        int l = config.layers();
        int kv = config.kvDim();
        int h = config.hiddenDim();
        float[] emb = take(name, "token_embedding_table", f, (long) config.vocabSize() * d);
        float[] rmsAtt = take(name, "rms_att_weight", f, (long) l * d);
        float[] wq = take(name, "wq", f, (long) l * d * d);
        float[] wk = take(name, "wk", f, (long) l * d * kv);
        float[] wv = take(name, "wv", f, (long) l * d * kv);
        float[] wo = take(name, "wo", f, (long) l * d * d);
        float[] rmsFfn = take(name, "rms_ffn_weight", f, (long) l * d);
        float[] w1 = take(name, "w1", f, (long) l * d * h);
        float[] w2 = take(name, "w2", f, (long) l * h * d);
        float[] w3 = take(name, "w3", f, (long) l * d * h);
        float[] rmsFinal = take(name, "rms_final_weight", f, d);
        f.position(f.position() + config.seqLen() * config.headSize());
        float[] cls = config.sharedClassifier() ? emb : take(name, "wcls", f, (long) config.vocabSize() * d);
        LlamaWeights w = new LlamaWeights(emb, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, cls);
        return new Checkpoint(name, config, w);
    }

    private static float[] take(String name, String tensor, FloatBuffer f, long count) {
        if (count > Integer.MAX_VALUE - 8) {
            throw new CheckpointException("model file " + name + ": tensor " + tensor + " has " + count
                    + " elements, more than this demo holds in one array");
        }
        float[] a = new float[(int) count];
        f.get(a);
        return a;
    }
}
