package io.kvcache.core.block;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * Content address of a full block: 32 bytes of SHA-256 over the parent key, the block's token
 * ids, the layout fingerprint, the model id and the tenant salt (see {@link PrefixHasher}).
 * Equal keys mean equal KV.
 */
public final class BlockKey {
    /** Length of a key in bytes. */
    public static final int BYTES = 32;

    private final byte[] bytes;
    private final int hash;

    private BlockKey(byte[] bytes) {
        this.bytes = bytes;
        this.hash = Arrays.hashCode(bytes);
    }

    /**
     * @param bytes exactly {@link #BYTES} bytes; copied
     * @throws IllegalArgumentException for another length
     */
    public static BlockKey of(byte[] bytes) {
        if (bytes.length != BYTES) {
            throw new IllegalArgumentException("a block key is " + BYTES + " bytes, got " + bytes.length);
        }
        return new BlockKey(bytes.clone());
    }

    static BlockKey wrap(byte[] bytes) {
        return new BlockKey(bytes);
    }

    /** @return a copy of the 32 key bytes */
    public byte[] toBytes() {
        return bytes.clone();
    }

    /** Copies the key into {@code dst} at {@code offset}. */
    public void copyTo(byte[] dst, int offset) {
        System.arraycopy(bytes, 0, dst, offset, BYTES);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BlockKey k && Arrays.equals(bytes, k.bytes);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return HexFormat.of().formatHex(bytes, 0, 8);
    }
}
