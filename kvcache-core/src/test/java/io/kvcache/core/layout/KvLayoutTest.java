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
