package io.kvcache.core.transfer;

import java.util.concurrent.CompletableFuture;

/**
 * Completion of one submitted {@link TransferBatch}. A slot read by the batch must not be
 * reused, and a slot written by it must not be read, before completion.
 */
public interface TransferHandle {

    /** @return completes normally when every byte is in place, exceptionally on failure */
    CompletableFuture<Void> completion();

    /** @return bytes the batch moves */
    long bytes();

    /**
     * @param completion completes when the batch's bytes are in place
     * @param bytes      bytes the batch moves
     * @return a handle over a completion future, for engines with nothing else to report
     */
    static TransferHandle of(CompletableFuture<Void> completion, long bytes) {
        return new TransferHandle() {
            @Override
            public CompletableFuture<Void> completion() {
                return completion;
            }

            @Override
            public long bytes() {
                return bytes;
            }
        };
    }

    /** @return true once complete, normally or not */
    default boolean isDone() {
        return completion().isDone();
    }
}
