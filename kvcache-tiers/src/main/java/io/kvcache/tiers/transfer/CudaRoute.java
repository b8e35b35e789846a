package io.kvcache.tiers.transfer;

import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierFailedException;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.slots.GuardedSlots;
import java.util.List;

/**
 * Which way a (source tier, destination tier) pair goes for one engine's device, and what the
 * engine needs of the two tiers: their slot guards, whether the copy crosses to a peer device,
 * and the address of a slot for each copy method. Every downcast to the CUDA tiers happens here.
 *
 * <p>The tiers' {@code slots()}, {@code checkUsable()} and {@code deviceAddress()} are public only
 * because the tiers live in other packages than the engine; this record is their one caller in
 * main code.
 *
 * <p>Immutable; any thread.
 *
 * @param direction         which lane carries the copies
 * @param source            tier read from
 * @param destination       tier written to
 * @param sourceSlots       the source tier's guards
 * @param destinationSlots  the destination tier's guards
 * @param pinnedSource      the source as a pinned host tier, or null
 * @param pinnedDestination the destination as a pinned host tier, or null
 * @param peer              the other device's context for a copy between two devices, else null
 */
record CudaRoute(Direction direction, Tier source, Tier destination, GuardedSlots sourceSlots,
                 GuardedSlots destinationSlots, PinnedHostTier pinnedSource, PinnedHostTier pinnedDestination,
                 CudaContext peer) {

    /** @return the route from {@code source} to {@code destination} on {@code context}, or null if there is none */
    static CudaRoute resolve(CudaContext context, Tier source, Tier destination) {
        if (source instanceof PinnedHostTier h && destination instanceof CudaDeviceTier d && d.context() == context) {
            return new CudaRoute(Direction.HOST_TO_DEVICE, source, destination, h.slots(), d.slots(), h, null, null);
        }
        if (source instanceof CudaDeviceTier s && s.context() == context && destination instanceof PinnedHostTier h) {
            return new CudaRoute(Direction.DEVICE_TO_HOST, source, destination, s.slots(), h.slots(), null, h, null);
        }
        // the same tier on both sides is a copy-on-write within the device
        if (source instanceof CudaDeviceTier s && destination instanceof CudaDeviceTier d
                && (s.context() == context || d.context() == context)) {
            CudaContext other = s.context() == context ? d.context() : s.context();
            return new CudaRoute(Direction.DEVICE_TO_DEVICE, source, destination, s.slots(), d.slots(), null, null,
                    other == context ? null : other);
        }
        return null;
    }

    /** @return whether the copy goes between two devices */
    boolean crossesDevices() {
        return peer != null;
    }

    /**
     * @throws TierFailedException   if either tier has failed
     * @throws IllegalStateException if a device tier is closed
     */
    void checkUsable() {
        checkUsable(source);
        checkUsable(destination);
    }

    private static void checkUsable(Tier t) {
        if (t instanceof CudaDeviceTier d) {
            d.checkUsable();
        } else if (t.failed()) {
            throw new TierFailedException("tier '" + t.name() + "' has failed");
        }
    }

    /** @return whether the pinned host side is the source (only meaningful across the link) */
    boolean hostIsSource() {
        return direction == Direction.HOST_TO_DEVICE;
    }

    /** @return slot count of the pinned host side, or -1 for a device-to-device route */
    int hostSlotCount() {
        PinnedHostTier h = pinnedSource != null ? pinnedSource : pinnedDestination;
        return h == null ? -1 : h.slotCount();
    }

    /** @return the address a copy by {@code kernel} (or by the driver, if false) reads source slot {@code slot} at */
    long sourceAddress(int slot, boolean kernel) {
        return pinnedSource == null ? source.address(slot)
                : kernel ? pinnedSource.deviceAddress(slot) : pinnedSource.address(slot);
    }

    /** @return the address a copy by {@code kernel} (or by the driver, if false) writes destination slot {@code slot} at */
    long destinationAddress(int slot, boolean kernel) {
        return pinnedDestination == null ? destination.address(slot)
                : kernel ? pinnedDestination.deviceAddress(slot) : pinnedDestination.address(slot);
    }

    /** @return the device tier a sticky error is reported against (the destination when both are) */
    Tier deviceTier() {
        return destination instanceof CudaDeviceTier ? destination : source;
    }

    /**
     * Guards the batch's source slots against writes and its destination slots against any
     * other copy, all or nothing: only the batch's byte range of each slot, so that batches of
     * disjoint ranges of the same slots (one per layer) may be in flight together.
     *
     * @throws IllegalArgumentException if a slot is out of range or written twice
     * @throws IllegalStateException    if a slot is not allocated or its bytes are used by a pending copy
     */
    void beginCopies(TransferBatch batch) {
        List<BlockMove> moves = batch.moves();
        long start = guardStart(batch);
        long end = guardEnd(batch);
        sourceSlots.beginCopies(moves, true, start, end);
        try {
            destinationSlots.beginCopies(moves, false, start, end);
        } catch (RuntimeException e) {
            sourceSlots.endCopies(moves, true, start, end);
            throw e;
        }
    }

    /** Ends what {@link #beginCopies} began for the same batch. */
    void endCopies(TransferBatch batch) {
        List<BlockMove> moves = batch.moves();
        long start = guardStart(batch);
        long end = guardEnd(batch);
        sourceSlots.endCopies(moves, true, start, end);
        destinationSlots.endCopies(moves, false, start, end);
    }

    private static long guardStart(TransferBatch batch) {
        return batch.wholeSlots() ? 0 : batch.offset();
    }

    /** @return the end of the guarded range: {@link Long#MAX_VALUE}, which the guards read as the whole slot, for whole slots */
    private static long guardEnd(TransferBatch batch) {
        return batch.wholeSlots() ? Long.MAX_VALUE : batch.offset() + batch.length();
    }
}
