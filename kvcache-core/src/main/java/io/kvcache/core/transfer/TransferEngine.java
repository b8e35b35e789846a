package io.kvcache.core.transfer;

import io.kvcache.core.tier.Tier;

/**
 * Moves batches of blocks between tiers. Implementations copy asynchronously and batch the
 * work (one kernel or one batched driver call per batch, not one call per block).
 *
 * <p>Thread safety: {@link #submit} may be called from any thread.
 */
public interface TransferEngine extends AutoCloseable {

    /** @return whether this engine can copy from {@code source} to {@code destination} */
    boolean supports(Tier source, Tier destination);

    /**
     * Starts copying a batch.
     *
     * @return a handle that completes when the bytes are in place
     * @throws IllegalArgumentException if the tiers are not {@link #supports supported}
     */
    TransferHandle submit(TransferBatch batch);

    /** Waits for submitted batches and releases threads or streams. */
    @Override
    void close();
}
