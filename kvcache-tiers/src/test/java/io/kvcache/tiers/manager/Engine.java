package io.kvcache.tiers.manager;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;

/**
 * A stand-in inference engine for tests: the K/V of a token is a deterministic function of the
 * tenant salt and the whole prefix up to it (as real KV is a function of the prefix), so equal
 * prefixes of one tenant give equal blocks and any misplaced, stale or other tenant's byte shows
 * up on read-back. The methods without a salt use the empty salt.
 */
final class Engine {
    private final KvCacheManager manager;
    private final KvLayout layout;

    Engine(KvCacheManager manager) {
        this.manager = manager;
        this.layout = manager.layout();
    }

    private static final byte[] NO_SALT = {};
    /** Longest wait for a residency: a copy that never completes fails the test instead of hanging it. */
    static final Duration AWAIT_BOUND = Duration.ofSeconds(60);

    /** Rolling hash of tokens [0, pos]. */
    static long prefixHash(int[] tokens, int pos) {
        return prefixHash(NO_SALT, tokens, pos);
    }

    /** Rolling hash of the tenant salt and tokens [0, pos]; with an empty salt, that of the tokens alone. */
    static long prefixHash(byte[] salt, int[] tokens, int pos) {
        long h = 0x9E3779B97F4A7C15L;
        for (byte b : salt) {
            h = (h ^ (b & 0xFF) ^ 0x5A00) * 0x94D049BB133111EBL;
            h ^= h >>> 29;
        }
        for (int i = 0; i <= pos; i++) {
            h = (h ^ tokens[i]) * 0xBF58476D1CE4E5B9L;
            h ^= h >>> 31;
        }
        return h;
    }

    /** Expected bytes of one token's K or V vector in one layer. */
    byte[] expectedTokenBytes(int[] tokens, int pos, int layer, int kind) {
        return expectedTokenBytes(NO_SALT, tokens, pos, layer, kind);
    }

    /** Expected bytes of one token's K or V vector in one layer, for a tenant. */
    byte[] expectedTokenBytes(byte[] salt, int[] tokens, int pos, int layer, int kind) {
        byte[] out = new byte[layout.tokenLayerBytes()];
        long h = prefixHash(salt, tokens, pos) + layer * 31L + kind * 7L;
        for (int i = 0; i < out.length; i++) {
            h = h * 6364136223846793005L + 1442695040888963407L;
            out[i] = (byte) ((h >>> 56) | 1);
        }
        return out;
    }

    /**
     * Writes K/V of tokens [written, length) block by block, as a prefill in chunks does (so a
     * prompt longer than the top tier fits), then marks them written.
     */
    void prefill(Sequence s) {
        prefill(s, NO_SALT);
    }

    /** {@link #prefill(Sequence)} with the K/V pattern of a tenant. */
    void prefill(Sequence s, byte[] salt) {
        int from = s.writtenTokens();
        int to = s.length();
        int bt = layout.blockTokens();
        int[] tokens = s.tokens();
        for (int block = from / bt; block * bt < to; block++) {
            try (ResidencyHandle h = manager.ensureResident(s, block, block + 1)) {
                Bounded.await(h, AWAIT_BOUND);
                writePositions(h, salt, tokens, block, Math.max(from, block * bt), Math.min(to, (block + 1) * bt));
            }
            s.markWritten(Math.min(to, (block + 1) * bt));
        }
    }

    /** Writes the K/V of positions [from, to), all within one logical block, through a handle. */
    void writePositions(ResidencyHandle h, byte[] salt, int[] tokens, int block, int from, int to) {
        int bt = layout.blockTokens();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(layout.tokenLayerBytes());
            for (int pos = from; pos < to; pos++) {
                for (int layer = 0; layer < layout.layers(); layer++) {
                    for (int kind = 0; kind < 2; kind++) {
                        MemorySegment.copy(expectedTokenBytes(salt, tokens, pos, layer, kind), 0, src,
                                ValueLayout.JAVA_BYTE, 0, layout.tokenLayerBytes());
                        h.write(block, BlockLayoutDescriptor.tokenOffset(layout, layer, kind, pos % bt), src);
                    }
                }
            }
        }
    }

    /**
     * Compares the bytes of one logical block (as read from the cache) with the pattern, for the
     * positions of the block below {@code written}.
     *
     * @param first receives a description of the first difference, if it is empty
     * @return bytes that differ
     */
    long wrongBytes(byte[] salt, int[] tokens, int written, int block, MemorySegment bytes, StringBuilder first) {
        int bt = layout.blockTokens();
        long wrong = 0;
        for (int pos = block * bt; pos < Math.min(written, (block + 1) * bt); pos++) {
            for (int layer = 0; layer < layout.layers(); layer++) {
                for (int kind = 0; kind < 2; kind++) {
                    byte[] want = expectedTokenBytes(salt, tokens, pos, layer, kind);
                    long off = BlockLayoutDescriptor.tokenOffset(layout, layer, kind, pos % bt);
                    for (int i = 0; i < want.length; i++) {
                        byte got = bytes.get(ValueLayout.JAVA_BYTE, off + i);
                        if (got != want[i]) {
                            if (wrong == 0 && first != null && first.isEmpty()) {
                                first.append("token ").append(pos).append(" layer ").append(layer).append(" kind ")
                                        .append(kind).append(" byte ").append(i).append(": expected ")
                                        .append(want[i]).append(" got ").append(got);
                            }
                            wrong++;
                        }
                    }
                }
            }
        }
        return wrong;
    }

    /**
     * Reads layers {@code [l0, l1)} of one block through a handle of those layers and compares
     * the positions below {@code written} with the pattern.
     *
     * @return null when identical, else the first difference
     */
    String verifyLayers(ResidencyHandle h, byte[] salt, int[] tokens, int written, int block, int l0, int l1) {
        int bt = layout.blockTokens();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(layout.tokenLayerBytes());
            for (int pos = block * bt; pos < Math.min(written, (block + 1) * bt); pos++) {
                for (int layer = l0; layer < l1; layer++) {
                    for (int kind = 0; kind < 2; kind++) {
                        byte[] want = expectedTokenBytes(salt, tokens, pos, layer, kind);
                        h.read(block, BlockLayoutDescriptor.tokenOffset(layout, layer, kind, pos % bt), one);
                        for (int i = 0; i < want.length; i++) {
                            byte got = one.get(ValueLayout.JAVA_BYTE, i);
                            if (got != want[i]) {
                                return "block " + block + " token " + pos + " layer " + layer + " kind " + kind
                                        + " byte " + i + ": expected " + want[i] + " got " + got;
                            }
                        }
                    }
                }
            }
        }
        return null;
    }

    /** Appends one token and writes its K/V. */
    void decode(Sequence s, int token) {
        s.append(token);
        prefill(s);
    }

    /** Appends one token and writes its K/V with the pattern of a tenant. */
    void decode(Sequence s, byte[] salt, int token) {
        s.append(token);
        prefill(s, salt);
    }

    /**
     * Reads every written token's K/V back through the manager, from whatever tier holds it.
     *
     * @return null when identical, else a description of the first difference
     */
    String verify(Sequence s) {
        return verify(s, NO_SALT);
    }

    /** {@link #verify(Sequence)} against the K/V pattern of a tenant. */
    String verify(Sequence s, byte[] salt) {
        int bt = layout.blockTokens();
        int[] tokens = s.tokens();
        int written = s.writtenTokens();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = arena.allocate(layout.blockBytes());
            for (int b = 0; b * bt < written; b++) {
                manager.readBlock(s, b, block);
                for (int pos = b * bt; pos < Math.min(written, (b + 1) * bt); pos++) {
                    for (int layer = 0; layer < layout.layers(); layer++) {
                        for (int kind = 0; kind < 2; kind++) {
                            byte[] want = expectedTokenBytes(salt, tokens, pos, layer, kind);
                            long off = BlockLayoutDescriptor.tokenOffset(layout, layer, kind, pos % bt);
                            for (int i = 0; i < want.length; i++) {
                                byte got = block.get(ValueLayout.JAVA_BYTE, off + i);
                                if (got != want[i]) {
                                    return s + " token " + pos + " layer " + layer + " kind " + kind + " byte " + i
                                            + ": expected " + want[i] + " got " + got;
                                }
                            }
                        }
                    }
                }
            }
        }
        return null;
    }
}
