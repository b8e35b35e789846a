package io.kvcache.examples.serving;

import io.kvcache.core.Sequence;

/**
 * One request running on a {@link ServingEngine}: what its prefill found and cost, and the
 * tokens sampled so far. Closing it releases what the engine holds for it (pinned blocks,
 * buffers), not the sequence.
 */
public interface ServingRequest extends AutoCloseable {

    /** @return the request's sequence */
    Sequence sequence();

    /** @return leading prompt tokens whose K/V the cache held when the request was opened */
    int cachedTokens();

    /** @return per tier (fastest first), how many of the cached blocks were found there */
    int[] cachedBlocksPerTier();

    /** @return prompt positions the prefill computed */
    int prefillTokens();

    /** @return time the prefill took, waits for blocks included, in ns */
    long prefillNanos();

    /** @return time the decode steps of this request took, in ns */
    long decodeNanos();

    /** @return the tokens sampled so far, the first from the prefill */
    int[] generated();

    @Override
    void close();
}
