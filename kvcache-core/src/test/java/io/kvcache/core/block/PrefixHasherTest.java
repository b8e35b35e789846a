package io.kvcache.core.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import org.junit.jupiter.api.Test;

class PrefixHasherTest {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 8, DType.FP16, 4);
    static final byte[] SALT = {1};

    @Test
    void equalPrefixesGiveEqualKeys() {
        PrefixHasher h = new PrefixHasher(LAYOUT, "m");
        int[] t = {1, 2, 3, 4, 5, 6, 7, 8};
        BlockKey a0 = h.key(null, t, 0, 4, SALT);
        BlockKey a1 = h.key(a0, t, 4, 4, SALT);
        BlockKey b0 = new PrefixHasher(LAYOUT, "m").key(null, t.clone(), 0, 4, SALT.clone());
        assertEquals(a0, b0);
        assertEquals(a1, h.key(b0, t, 4, 4, SALT));
        assertEquals(a0.hashCode(), b0.hashCode());
    }

    @Test
    void keyDependsOnParentTokensLayoutModelAndSalt() {
        PrefixHasher h = new PrefixHasher(LAYOUT, "m");
        int[] t = {1, 2, 3, 4};
        BlockKey base = h.key(null, t, 0, 4, SALT);
        BlockKey parent = h.key(null, new int[] {9, 9, 9, 9}, 0, 4, SALT);
        assertNotEquals(base, h.key(parent, t, 0, 4, SALT), "parent");
        assertNotEquals(base, h.key(null, new int[] {1, 2, 3, 5}, 0, 4, SALT), "tokens");
        assertNotEquals(base, new PrefixHasher(new KvLayout(2, 2, 8, DType.BF16, 4), "m").key(null, t, 0, 4, SALT),
                "layout");
        assertNotEquals(base, new PrefixHasher(LAYOUT, "other").key(null, t, 0, 4, SALT), "model");
        assertNotEquals(base, h.key(null, t, 0, 4, new byte[] {2}), "salt");
        assertNotEquals(base, h.key(null, t, 0, 4, new byte[0]), "empty salt");
    }

    @Test
    void modelIdAndSaltBoundariesCannotBeShifted() {
        // "ab" + salt "c" must differ from "a" + salt "bc": lengths are hashed too
        int[] t = {1, 2, 3, 4};
        BlockKey x = new PrefixHasher(LAYOUT, "ab").key(null, t, 0, 4, new byte[] {'c'});
        BlockKey y = new PrefixHasher(LAYOUT, "a").key(null, t, 0, 4, new byte[] {'b', 'c'});
        assertNotEquals(x, y);
    }

    @Test
    void keysAreThirtyTwoBytes() {
        BlockKey k = new PrefixHasher(LAYOUT, "m").key(null, new int[] {1, 2, 3, 4}, 0, 4, SALT);
        assertEquals(32, k.toBytes().length);
        assertEquals(k, BlockKey.of(k.toBytes()));
        assertThrows(IllegalArgumentException.class, () -> BlockKey.of(new byte[8]));
    }
}
