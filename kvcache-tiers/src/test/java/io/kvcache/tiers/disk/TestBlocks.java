package io.kvcache.tiers.disk;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Blocks whose key and bytes both follow from an id, so that any process can tell whether the
 * bytes served for a key are the right ones.
 */
final class TestBlocks {
    /** 2 layers x K|V x 16 tokens x 2 heads x 32 dims x fp16 = 8 KiB per block. */
    static final KvLayout SMALL = new KvLayout(2, 2, 32, DType.FP16, 16);
    static final String MODEL = "test-model";

    private TestBlocks() {
    }

    static BlockKey key(long id) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(ByteBuffer.allocate(8).putLong(id).array());
            return BlockKey.of(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** Fills a segment with the bytes of block {@code id} (a xorshift stream seeded by id). */
    static void fill(MemorySegment seg, long id) {
        long x = id * 0x9E3779B97F4A7C15L + 1;
        long n = seg.byteSize();
        long i = 0;
        for (; i + 8 <= n; i += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, i, x);
        }
        for (; i < n; i++) {
            seg.set(ValueLayout.JAVA_BYTE, i, (byte) id);
        }
    }

    /** @return whether the segment holds exactly the bytes of block {@code id} */
    static boolean matches(MemorySegment seg, long id) {
        MemorySegment expected = MemorySegment.ofArray(new byte[(int) seg.byteSize()]);
        fill(expected, id);
        return seg.mismatch(expected) == -1;
    }
}
