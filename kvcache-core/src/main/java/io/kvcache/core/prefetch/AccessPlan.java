package io.kvcache.core.prefetch;

import java.util.List;
import java.util.Objects;

/**
 * What the engine's next step reads, declared ahead so the manager can promote it early.
 *
 * @param reads per sequence, the logical block range read
 */
public record AccessPlan(List<Read> reads) {

    /**
     * Logical blocks [fromBlock, toBlock) of a sequence.
     *
     * @param sequenceId the sequence's id
     * @param fromBlock  first block, inclusive
     * @param toBlock    last block, exclusive; -1 means through the sequence's last block
     */
    public record Read(long sequenceId, int fromBlock, int toBlock) {
    }

    public AccessPlan {
        reads = List.copyOf(Objects.requireNonNull(reads, "reads"));
    }

    /** @return a plan reading every block of the given sequences */
    public static AccessPlan allBlocksOf(long... sequenceIds) {
        Read[] r = new Read[sequenceIds.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = new Read(sequenceIds[i], 0, -1);
        }
        return new AccessPlan(List.of(r));
    }
}
