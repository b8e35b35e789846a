package io.kvcache.core.layout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class KvLayoutTest {
    @Test
    void llama3EightBHolds128KiBPerToken() {
        KvLayout l = new KvLayout(32, 8, 128, DType.BF16, 16);
        assertEquals(128 * 1024, l.bytesPerToken());
        assertEquals(2 * 1024 * 1024, l.blockBytes());
        assertEquals(l.blockBytes() / 32, l.layerBytes());
    }

    @Test
    void nonPositiveDimensionsAreRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new KvLayout(4, 0, 64, DType.FP16, 16));
        assertTrue(e.getMessage().contains("kvHeads"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new KvLayout(-1, 1, 64, DType.FP16, 16));
        assertThrows(IllegalArgumentException.class, () -> new KvLayout(1, 1, 0, DType.FP16, 16));
        assertThrows(IllegalArgumentException.class, () -> new KvLayout(1, 1, 64, DType.FP16, 0));
        assertThrows(NullPointerException.class, () -> new KvLayout(1, 1, 64, null, 16));
    }

    @Test
    void blocksOverOneGibibyteAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new KvLayout(80, 64, 128, DType.FP32, 1024));
    }

    @Test
    void layoutsWhoseSizeWrapsPast64BitsAreRefusedNamingTheSizes() {
        // 2 * 65536^4 bytes = 2^65: the unchecked product wrapped to a block of 0 bytes
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new KvLayout(65536, 65536, 65536, DType.FP8, 65536));
        assertTrue(e.getMessage().contains("65536"), e.getMessage());
        assertTrue(e.getMessage().contains("exceeds"), e.getMessage());
        // 2 * 193 * 65537 * 22253377 * 2^15 = 2^64 + 2^16: the unchecked product wrapped to a 64 KiB block,
        // inside the limit, whose tensor offsets collide
        assertThrows(IllegalArgumentException.class, () -> new KvLayout(193, 65537, 22253377, DType.FP8, 1 << 15));
        // tokenLayerBytes alone wraps an int (2^31 * 2 bytes) while the long product wraps to a small value
        assertThrows(IllegalArgumentException.class,
                () -> new KvLayout(1 << 16, 1 << 16, 1 << 15, DType.FP16, 1 << 16));
        assertThrows(IllegalArgumentException.class,
                () -> new KvLayout(Integer.MAX_VALUE, Integer.MAX_VALUE, Integer.MAX_VALUE, DType.FP32, Integer.MAX_VALUE));
        // every accepted layout has a block size equal to the exact product of its dimensions
        int[] dims = {1, 2, 3, 255, 4096, 65535, 65536, 1 << 20, 1 << 29, Integer.MAX_VALUE};
        java.util.Random r = new java.util.Random(7);
        for (int i = 0; i < 20_000; i++) {
            int layers = dims[r.nextInt(dims.length)];
            int heads = dims[r.nextInt(dims.length)];
            int headDim = dims[r.nextInt(dims.length)];
            int tokens = dims[r.nextInt(dims.length)];
            DType t = DType.values()[r.nextInt(DType.values().length)];
            java.math.BigInteger exact = java.math.BigInteger.valueOf(layers).multiply(java.math.BigInteger.TWO)
                    .multiply(java.math.BigInteger.valueOf(heads)).multiply(java.math.BigInteger.valueOf(headDim))
                    .multiply(java.math.BigInteger.valueOf(tokens)).multiply(java.math.BigInteger.valueOf(t.bytes()));
            boolean fits = exact.compareTo(java.math.BigInteger.valueOf(KvLayout.MAX_BLOCK_BYTES)) <= 0;
            if (fits) {
                KvLayout l = new KvLayout(layers, heads, headDim, t, tokens);
                assertEquals(exact.longValueExact(), l.blockBytes(), l.toString());
            } else {
                assertThrows(IllegalArgumentException.class, () -> new KvLayout(layers, heads, headDim, t, tokens),
                        layers + " " + heads + " " + headDim + " " + t + " " + tokens);
            }
        }
    }

    @Test
    void descriptorOffsetsOfTheLargestAcceptedLayoutsEndExactlyAtTheBlockEnd() {
        // each dimension at its largest for a 1 GiB block, the others at 1: no offset may overflow
        KvLayout[] largest = {
            new KvLayout(1 << 29, 1, 1, DType.FP8, 1),
            new KvLayout(1, 1 << 29, 1, DType.FP8, 1),
            new KvLayout(1, 1, 1 << 29, DType.FP8, 1),
            new KvLayout(1, 1, 1, DType.FP8, 1 << 29),
            new KvLayout(1, 1, 1 << 27, DType.FP32, 1),
            new KvLayout(64, 8, 128, DType.FP32, 2048),
        };
        for (KvLayout l : largest) {
            assertEquals(KvLayout.MAX_BLOCK_BYTES, l.blockBytes(), l.toString());
            long vector = (long) l.headDim() * l.dtype().bytes();
            long last = BlockLayoutDescriptor.offset(l, l.layers() - 1, BlockLayoutDescriptor.V, l.blockTokens() - 1,
                    l.kvHeads() - 1);
            assertEquals(l.blockBytes(), last + vector, l.toString());
            assertEquals(l.blockBytes(), BlockLayoutDescriptor.layerOffset(l, l.layers() - 1) + l.layerBytes(),
                    l.toString());
            assertEquals(l.blockBytes(), BlockLayoutDescriptor.tokenOffset(l, l.layers() - 1, BlockLayoutDescriptor.V,
                    l.blockTokens() - 1) + l.tokenLayerBytes(), l.toString());
            assertEquals(l.blockBytes(), l.bytesPerToken() * l.blockTokens(), l.toString());
            assertEquals(l.blockBytes(), l.layerBytes() * l.layers(), l.toString());
        }
    }

    @Test
    void fingerprintDiffersForEveryFieldChange() {
        Set<Long> prints = new HashSet<>();
        prints.add(new KvLayout(4, 2, 64, DType.FP16, 16).fingerprint());
        prints.add(new KvLayout(5, 2, 64, DType.FP16, 16).fingerprint());
        prints.add(new KvLayout(4, 3, 64, DType.FP16, 16).fingerprint());
        prints.add(new KvLayout(4, 2, 65, DType.FP16, 16).fingerprint());
        prints.add(new KvLayout(4, 2, 64, DType.BF16, 16).fingerprint());
        prints.add(new KvLayout(4, 2, 64, DType.FP16, 17).fingerprint());
        assertEquals(6, prints.size());
        assertEquals(new KvLayout(4, 2, 64, DType.FP16, 16).fingerprint(),
                new KvLayout(4, 2, 64, DType.FP16, 16).fingerprint());
    }

    @Test
    void descriptorOffsetsTileTheBlockWithoutOverlap() {
        KvLayout l = new KvLayout(3, 2, 4, DType.FP16, 5);
        boolean[] covered = new boolean[(int) l.blockBytes()];
        int vector = l.headDim() * l.dtype().bytes();
        for (int layer = 0; layer < 3; layer++) {
            for (int kind = 0; kind < 2; kind++) {
                for (int t = 0; t < 5; t++) {
                    for (int h = 0; h < 2; h++) {
                        long off = BlockLayoutDescriptor.offset(l, layer, kind, t, h);
                        for (int i = 0; i < vector; i++) {
                            assertTrue(!covered[(int) off + i], "overlap at " + (off + i));
                            covered[(int) off + i] = true;
                        }
                    }
                }
            }
        }
        for (boolean c : covered) {
            assertTrue(c);
        }
        assertEquals(l.layerBytes(), BlockLayoutDescriptor.layerOffset(l, 1));
        assertEquals(BlockLayoutDescriptor.offset(l, 1, 1, 0, 0),
                BlockLayoutDescriptor.layerOffset(l, 1) + l.layerBytes() / 2);
        assertNotEquals(BlockLayoutDescriptor.tokenOffset(l, 0, 0, 1), BlockLayoutDescriptor.tokenOffset(l, 0, 1, 1));
        assertThrows(IndexOutOfBoundsException.class, () -> BlockLayoutDescriptor.offset(l, 3, 0, 0, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> BlockLayoutDescriptor.offset(l, 0, 2, 0, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> BlockLayoutDescriptor.offset(l, 0, 0, 5, 0));
    }
}
