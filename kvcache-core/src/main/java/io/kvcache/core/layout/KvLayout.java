package io.kvcache.core.layout;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Objects;

/**
 * Shape of the KV cache: how many layers, KV heads and head dimensions, the element type and
 * how many tokens one block holds. A block holds {@code blockTokens} tokens for all layers,
 * laid out as described in {@link BlockLayoutDescriptor}.
 *
 * @param layers      transformer layers, at least 1
 * @param kvHeads     key/value heads per layer, at least 1
 * @param headDim     elements per head, at least 1
 * @param dtype       element type
 * @param blockTokens tokens per block, at least 1
 */
public record KvLayout(int layers, int kvHeads, int headDim, DType dtype, int blockTokens) {

    /** Largest block the cache accepts, in bytes (1 GiB); slots are addressed with int offsets within a block. */
    public static final long MAX_BLOCK_BYTES = 1L << 30;

    public KvLayout {
        Objects.requireNonNull(dtype, "dtype");
        requirePositive("layers", layers);
        requirePositive("kvHeads", kvHeads);
        requirePositive("headDim", headDim);
        requirePositive("blockTokens", blockTokens);
        long bytes = checkedBlockBytes(layers, kvHeads, headDim, dtype, blockTokens);
        if (bytes > MAX_BLOCK_BYTES) {
            throw new IllegalArgumentException("block of " + describe(layers, kvHeads, headDim, dtype, blockTokens)
                    + " = " + bytes + " bytes exceeds the maximum of " + MAX_BLOCK_BYTES
                    + " bytes; use fewer tokens per block");
        }
    }

    /**
     * The block size, each multiplication checked: the product of six factors of up to 2^31
     * can exceed 2^64, and a wrapped product could land inside the limit (a 0-byte block, or
     * tensors at the same offset). Every partial product of an accepted layout, and so every
     * {@code int} and {@code long} derived from it here and in {@link BlockLayoutDescriptor},
     * is at most {@link #MAX_BLOCK_BYTES}, because every factor is at least 1.
     */
    private static long checkedBlockBytes(int layers, int kvHeads, int headDim, DType dtype, int blockTokens) {
        try {
            long bytes = Math.multiplyExact((long) layers, 2L);
            bytes = Math.multiplyExact(bytes, (long) blockTokens);
            bytes = Math.multiplyExact(bytes, (long) kvHeads);
            bytes = Math.multiplyExact(bytes, (long) headDim);
            return Math.multiplyExact(bytes, (long) dtype.bytes());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("block of " + describe(layers, kvHeads, headDim, dtype, blockTokens)
                    + " bytes exceeds 2^63 bytes, far over the maximum of " + MAX_BLOCK_BYTES
                    + " bytes; use fewer tokens per block", e);
        }
    }

    private static String describe(int layers, int kvHeads, int headDim, DType dtype, int blockTokens) {
        return "layers " + layers + " x 2 (K, V) x blockTokens " + blockTokens + " x kvHeads " + kvHeads
                + " x headDim " + headDim + " x " + dtype.bytes() + " (" + dtype + ")";
    }

    private static void requirePositive(String name, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + " must be positive, was " + value);
        }
    }

    /** @return bytes of K (or of V) for one token in one layer: {@code kvHeads * headDim * dtype.bytes()} */
    public int tokenLayerBytes() {
        return kvHeads * headDim * dtype.bytes();
    }

    /** @return bytes of K and V for one token across all layers */
    public long bytesPerToken() {
        return 2L * layers * tokenLayerBytes();
    }

    /** @return bytes of one whole block: all layers, K and V, {@code blockTokens} tokens */
    public long blockBytes() {
        return bytesPerToken() * blockTokens;
    }

    /** @return bytes of one layer of a block (its K and V), a contiguous slice of the block */
    public long layerBytes() {
        return 2L * blockTokens * tokenLayerBytes();
    }

    /**
     * A stable 64-bit fingerprint of this layout, used to refuse persisted blocks made for
     * another layout. Not a content address: blocks are addressed by SHA-256 keys.
     *
     * @return fingerprint derived from every field
     */
    public long fingerprint() {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            ByteBuffer b = ByteBuffer.allocate(32);
            b.putInt(1).putInt(layers).putInt(kvHeads).putInt(headDim).putInt(dtype.ordinal()).putInt(blockTokens);
            md.update(b.array(), 0, b.position());
            return ByteBuffer.wrap(md.digest()).getLong();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }
}
