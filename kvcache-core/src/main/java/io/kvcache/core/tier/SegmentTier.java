package io.kvcache.core.tier;

import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.MemorySegment;

/**
 * Base of tiers whose slots are consecutive ranges of one host-addressable memory segment
 * (simulated VRAM, anonymous mappings, pinned host memory). Subclasses obtain the memory, say
 * what backs it, and release it.
 */
public abstract class SegmentTier implements Tier {
    private final String name;
    private final TierKind kind;
    private final long slotBytes;
    private final KvLayout layout;
    private final SlotAllocator slots;
    private MemorySegment pool;

    /**
     * @param name          tier name in stats and messages
     * @param kind          where the bytes live
     * @param layout        the cache layout; one slot holds one block
     * @param capacityBytes capacity in bytes; whole blocks only
     * @throws IllegalArgumentException when the capacity is not positive or holds no block
     */
    protected SegmentTier(String name, TierKind kind, KvLayout layout, long capacityBytes) {
        this.name = name;
        this.kind = kind;
        this.slotBytes = layout.blockBytes();
        this.layout = layout;
        this.slots = new SlotAllocator(name, TierCapacity.slots(name, capacityBytes, slotBytes));
    }

    /** @return bytes the subclass must provide: {@code slotCount() * slotBytes()} */
    protected final long poolBytes() {
        return slots.slotCount() * slotBytes;
    }

    /** Sets the memory of all slots, {@link #poolBytes()} long; called once from the subclass constructor. */
    protected final void pool(MemorySegment memory) {
        if (memory.byteSize() < poolBytes()) {
            throw new IllegalArgumentException("pool of " + memory.byteSize() + " bytes is smaller than "
                    + poolBytes() + " bytes");
        }
        this.pool = memory;
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final TierKind kind() {
        return kind;
    }

    @Override
    public final long slotBytes() {
        return slotBytes;
    }

    @Override
    public final KvLayout layout() {
        return layout;
    }

    @Override
    public final int slotCount() {
        return slots.slotCount();
    }

    @Override
    public final int freeSlots() {
        return slots.freeSlots();
    }

    @Override
    public final int allocate() {
        return slots.allocate();
    }

    @Override
    public final void free(int slot) {
        slots.free(slot);
    }

    @Override
    public final boolean hostAccessible() {
        return true;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Checks the slot number but not that it is allocated: a copy may still be reading a slot
     * the manager has just freed, and the manager never hands the slot out for new bytes before
     * that copy has settled.
     */
    @Override
    public final MemorySegment view(int slot) {
        Tier.checkSlot(this, slot);
        return pool.asSlice(slot * slotBytes, slotBytes);
    }

    @Override
    public long address(int slot) {
        return view(slot).address();
    }

    @Override
    public final void write(int slot, long offset, MemorySegment src) {
        Tier.checkRange(this, offset, src.byteSize());
        MemorySegment.copy(src, 0, view(slot), offset, src.byteSize());
    }

    @Override
    public final void read(int slot, long offset, MemorySegment dst) {
        Tier.checkRange(this, offset, dst.byteSize());
        MemorySegment.copy(view(slot), offset, dst, 0, dst.byteSize());
    }
}
