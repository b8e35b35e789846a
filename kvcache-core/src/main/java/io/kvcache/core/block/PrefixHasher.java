package io.kvcache.core.block;

import io.kvcache.core.layout.KvLayout;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Computes chained content keys of full blocks:
 * {@code key_i = SHA-256(domain, key_{i-1} or 32 zero bytes, tokens_i, layoutFingerprint, modelId, tenantSalt)}.
 * A cryptographic hash, so an attacker cannot make two prefixes collide and be served each
 * other's KV (the failure of 64-bit prefix hashes).
 *
 * <p>Not thread-safe: one hasher per thread or per call.
 */
public final class PrefixHasher {
    private static final byte[] DOMAIN = "kvcache.block.v1".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] ROOT = new byte[BlockKey.BYTES];

    private final MessageDigest sha;
    private final long layoutFingerprint;
    private final byte[] modelId;

    /**
     * @param layout  the cache layout (its fingerprint enters every key)
     * @param modelId identifies the model weights; blocks of different models never share keys
     */
    public PrefixHasher(KvLayout layout, String modelId) {
        try {
            this.sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
        this.layoutFingerprint = layout.fingerprint();
        this.modelId = modelId.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * @param parent     key of the previous block, or null for the first block
     * @param tokens     token ids
     * @param from       index of the block's first token in {@code tokens}
     * @param count      tokens in the block
     * @param tenantSalt salt separating tenants; blocks are shared only within equal salts
     * @return the block's key
     */
    public BlockKey key(BlockKey parent, int[] tokens, int from, int count, byte[] tenantSalt) {
        sha.reset();
        sha.update(DOMAIN);
        if (parent == null) {
            sha.update(ROOT);
        } else {
            byte[] p = new byte[BlockKey.BYTES];
            parent.copyTo(p, 0);
            sha.update(p);
        }
        byte[] buf = new byte[Math.max(8, count * 4)];
        for (int i = 0; i < count; i++) {
            int t = tokens[from + i];
            buf[i * 4] = (byte) (t >>> 24);
            buf[i * 4 + 1] = (byte) (t >>> 16);
            buf[i * 4 + 2] = (byte) (t >>> 8);
            buf[i * 4 + 3] = (byte) t;
        }
        sha.update(buf, 0, count * 4);
        updateLong(layoutFingerprint);
        updateLong(modelId.length);
        sha.update(modelId);
        updateLong(tenantSalt.length);
        sha.update(tenantSalt);
        return BlockKey.wrap(sha.digest());
    }

    private void updateLong(long v) {
        for (int i = 7; i >= 0; i--) {
            sha.update((byte) (v >>> (i * 8)));
        }
    }
}
