package io.kvcache.core.transfer;

import io.kvcache.core.KvCacheException;
import java.util.BitSet;

/**
 * A batch in which some moves failed. {@link #failedMoves()} names them by their index in
 * {@link TransferBatch#moves()}; every other move of the batch completed and its bytes are in
 * place. An engine that cannot tell which moves failed completes the batch with any other
 * exception, and every move of it is then treated as failed.
 */
public final class TransferFailedException extends KvCacheException {
    private final BitSet failed;
    private final int moves;

    /**
     * @param failed indices of the failed moves
     * @param moves  moves in the batch
     * @param cause  the first failure
     */
    public TransferFailedException(BitSet failed, int moves, Throwable cause) {
        super(failed.cardinality() + " of " + moves + " moves failed, first: " + cause, cause);
        this.failed = (BitSet) failed.clone();
        this.moves = moves;
    }

    /** @return indices of the failed moves in the batch */
    public BitSet failedMoves() {
        return (BitSet) failed.clone();
    }

    /** @return whether the move at this index of the batch failed */
    public boolean failed(int moveIndex) {
        return failed.get(moveIndex);
    }

    /** @return moves in the batch */
    public int moveCount() {
        return moves;
    }
}
