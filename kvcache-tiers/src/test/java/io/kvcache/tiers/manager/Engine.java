package io.kvcache.tiers.manager;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A stand-in inference engine for tests: the K/V of a token is a deterministic function of the
 * whole prefix up to it (as real KV is), so equal prefixes give equal blocks and any misplaced
 * or stale byte shows up on read-back.
 */
final class Engine {
    private final KvCacheManager manager;
    private final KvLayout layout;

    Engine(KvCacheManager manager) {
        this.manager = manager;
        this.layout = manager.layout();
    }

    /** Rolling hash of tokens [0, pos]. */
    static long prefixHash(int[] tokens, int pos) {
        long h = 0x9E3779B97F4A7C15L;
        for (int i = 0; i <= pos; i++) {
            h = (h ^ tokens[i]) * 0xBF58476D1CE4E5B9L;
            h ^= h >>> 31;
        }
        return h;
    }

    /** Expected bytes of one token's K or V vector in one layer. */
    byte[] expectedTokenBytes(int[] tokens, int pos, int layer, int kind) {
        byte[] out = new byte[layout.tokenLayerBytes()];
        long h = prefixHash(tokens, pos) + layer * 31L + kind * 7L;
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
        int from = s.writtenTokens();
        int to = s.length();
        int bt = layout.blockTokens();
        int[] tokens = s.tokens();
        for (int block = from / bt; block * bt < to; block++) {
            try (ResidencyHandle h = manager.ensureResident(s, block, block + 1);
                 Arena arena = Arena.ofConfined()) {
                h.await();
                for (int pos = Math.max(from, block * bt); pos < Math.min(to, (block + 1) * bt); pos++) {
                    for (int layer = 0; layer < layout.layers(); layer++) {
                        for (int kind = 0; kind < 2; kind++) {
                            MemorySegment src = arena.allocate(layout.tokenLayerBytes());
                            MemorySegment.copy(expectedTokenBytes(tokens, pos, layer, kind), 0, src,
                                    ValueLayout.JAVA_BYTE, 0, layout.tokenLayerBytes());
                            h.write(block, BlockLayoutDescriptor.tokenOffset(layout, layer, kind, pos % bt), src);
                        }
                    }
                }
            }
            s.markWritten(Math.min(to, (block + 1) * bt));
        }
    }

    /** Appends one token and writes its K/V. */
    void decode(Sequence s, int token) {
        s.append(token);
        prefill(s);
    }

    /**
     * Reads every written token's K/V back through the manager, from whatever tier holds it.
     *
     * @return null when identical, else a description of the first difference
     */
    String verify(Sequence s) {
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
                            byte[] want = expectedTokenBytes(tokens, pos, layer, kind);
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
