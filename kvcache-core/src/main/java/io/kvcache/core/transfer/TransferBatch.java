package io.kvcache.core.transfer;

import io.kvcache.core.tier.Tier;
import java.util.List;
import java.util.Objects;

/**
 * Copies of whole blocks from slots of one tier to slots of another (or the same, for a
 * copy-on-write). Every slot appears at most once on each side.
 *
 * @param source      tier read from
 * @param destination tier written to
 * @param moves       the slot pairs, in any order
 */
public record TransferBatch(Tier source, Tier destination, List<BlockMove> moves) {
    public TransferBatch {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(destination, "destination");
        moves = List.copyOf(moves);
        if (source.slotBytes() != destination.slotBytes()) {
            throw new IllegalArgumentException("slot sizes differ: " + source.name() + " " + source.slotBytes()
                    + " bytes, " + destination.name() + " " + destination.slotBytes() + " bytes");
        }
    }

    /** @return bytes this batch copies */
    public long bytes() {
        return moves.size() * source.slotBytes();
    }
}
