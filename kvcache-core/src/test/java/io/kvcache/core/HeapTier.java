package io.kvcache.core;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.SegmentTier;
import io.kvcache.core.tier.TierKind;
import java.lang.foreign.Arena;

/** A tier of plain off-heap memory from a shared arena: the manager's tests need no native tier. */
final class HeapTier extends SegmentTier {
    private final Arena arena = Arena.ofShared();

    HeapTier(String name, KvLayout layout, int slots) {
        super(name, TierKind.HOST, layout, slots * layout.blockBytes());
        pool(arena.allocate(poolBytes(), 64));
    }

    @Override
    public String backing() {
        return "heap";
    }

    @Override
    public void close() {
        arena.close();
    }
}
