package io.kvcache.core.tier;

import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.MemorySegment;

/**
 * A pool of fixed-size block slots in one kind of memory. A tier only stores bytes; which block
 * lives in which slot is decided by the cache manager.
 *
 * <p>Thread safety: {@link #allocate()} and {@link #free(int)} are called by the manager under
 * its own lock; {@link #read}, {@link #write} and {@link #view} may be called from transfer
 * threads at the same time, on distinct slots.
 *
 * <p>Every implementation must pass {@code TierContractTest}.
 */
public interface Tier extends AutoCloseable {

    /** @return a short name for logs and stats, e.g. "device", "host", "disk" */
    String name();

    /** @return where the bytes live */
    TierKind kind();

    /** @return bytes per slot; equals the layout's block size */
    long slotBytes();

    /** @return total slots */
    int slotCount();

    /** @return slots not allocated */
    int freeSlots();

    /**
     * Takes a free slot.
     *
     * @return slot number in [0, slotCount()), or -1 when every slot is taken
     */
    int allocate();

    /**
     * Returns a slot to the free pool. Its bytes are no longer meaningful.
     *
     * @param slot an allocated slot
     * @throws IllegalArgumentException if slot is outside [0, slotCount())
     * @throws IllegalStateException    if the slot is not allocated
     */
    void free(int slot);

    /** @return whether {@link #view(int)} gives host-addressable memory */
    boolean hostAccessible();

    /**
     * A view of a slot's bytes in host memory.
     *
     * @param slot an allocated slot
     * @return a segment of {@link #slotBytes()} bytes
     * @throws UnsupportedOperationException if {@link #hostAccessible()} is false
     */
    MemorySegment view(int slot);

    /**
     * Address of a slot as the compute engine sees it: a device pointer for device tiers, a
     * (possibly device-mapped) host address otherwise. Used to build block tables.
     */
    long address(int slot);

    /**
     * Copies {@code src.byteSize()} bytes into a slot at a byte offset; returns when the bytes
     * are in place.
     */
    void write(int slot, long offset, MemorySegment src);

    /** Copies {@code dst.byteSize()} bytes out of a slot from a byte offset into {@code dst}. */
    void read(int slot, long offset, MemorySegment dst);

    /** @return what backs this tier, as obtained (e.g. "mmap+mlock", "cuMemHostAlloc") */
    String backing();

    /**
     * @return the layout the tier was made for, or null when the tier knows only its slot size;
     *     the manager refuses a tier whose layout differs from the cache's
     */
    default KvLayout layout() {
        return null;
    }

    /** @return true once the tier has failed and must not be read any more */
    default boolean failed() {
        return false;
    }

    /** Releases the memory. Slots must not be used afterwards. */
    @Override
    void close();

    /**
     * Checks a slot number for {@link #free}, {@link #read}, {@link #write}, {@link #view}.
     *
     * @throws IllegalArgumentException naming the tier and the bad slot
     */
    static void checkSlot(Tier tier, int slot) {
        if (slot < 0 || slot >= tier.slotCount()) {
            throw new IllegalArgumentException("slot " + slot + " outside [0, " + tier.slotCount()
                    + ") of tier '" + tier.name() + "'");
        }
    }

    /**
     * Checks a byte range within a slot. Never computes {@code offset + length}, which wraps to
     * a negative end for ranges near {@link Long#MAX_VALUE}.
     *
     * @throws IndexOutOfBoundsException naming the range
     */
    static void checkRange(Tier tier, long offset, long length) {
        long slotBytes = tier.slotBytes();
        if (offset < 0 || length < 0 || offset > slotBytes || length > slotBytes - offset) {
            throw new IndexOutOfBoundsException("range of " + length + " bytes at offset " + offset
                    + " is outside the slot of " + slotBytes + " bytes in tier '" + tier.name() + "'");
        }
    }
}
