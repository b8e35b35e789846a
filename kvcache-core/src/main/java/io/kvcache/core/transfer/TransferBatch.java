package io.kvcache.core.transfer;

import io.kvcache.core.tier.Tier;
import java.util.List;
import java.util.Objects;

/**
 * Copies of blocks from slots of one tier to slots of another (or the same, for a
 * copy-on-write). Every slot appears at most once on each side. A batch copies either whole
 * slots or one byte range of each slot, the same range on both sides: a layer range of a block
 * is contiguous in the {@code [layer][K|V][token][kvHead][headDim]} layout, so moving layers
 * {@code [l0, l1)} is the range {@code [l0 * layerBytes, l1 * layerBytes)} of every slot.
 *
 * @param source      tier read from
 * @param destination tier written to
 * @param moves       the slot pairs, in any order
 * @param offset      first byte of each slot copied, {@code 0} for whole slots
 * @param length      bytes of each slot copied, from {@code offset}; {@code slotBytes} for whole slots
 */
public record TransferBatch(Tier source, Tier destination, List<BlockMove> moves, long offset, long length) {
    public TransferBatch {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(destination, "destination");
        moves = List.copyOf(moves);
        if (source.slotBytes() != destination.slotBytes()) {
            throw new IllegalArgumentException("slot sizes differ: " + source.name() + " " + source.slotBytes()
                    + " bytes, " + destination.name() + " " + destination.slotBytes() + " bytes");
        }
        long slot = source.slotBytes();
        if (offset < 0 || length <= 0 || offset > slot || length > slot - offset) {
            throw new IllegalArgumentException("byte range [" + offset + ", " + offset + " + " + length
                    + ") is not inside a slot of " + slot + " bytes");
        }
    }

    /** A batch of whole slots. */
    public TransferBatch(Tier source, Tier destination, List<BlockMove> moves) {
        this(source, destination, moves, 0, source.slotBytes());
    }

    /** @return whether every move copies its whole slot */
    public boolean wholeSlots() {
        return offset == 0 && length == source.slotBytes();
    }

    /** @return bytes this batch copies */
    public long bytes() {
        return moves.size() * length;
    }
}
