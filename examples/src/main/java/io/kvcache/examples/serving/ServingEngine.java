package io.kvcache.examples.serving;

import io.kvcache.core.Sequence;
import java.util.List;

/**
 * An inference engine bound to one {@link io.kvcache.core.KvCacheManager}: it computes the K/V of
 * a request's prompt positions the cache does not hold (prefill), then generates tokens for a
 * batch of running requests one step at a time (decode). Every position's K/V is written into
 * and read from the cache's blocks. Sampling is greedy, so any engine that computes the same
 * floats produces the same tokens whatever the cache held.
 *
 * <p>The CPU engine ({@link CpuServingPlatform}) computes one position at a time; a GPU engine
 * computes a prompt in one pass and a batch in one step. The scheduler
 * ({@link SessionRunner}) calls one method at a time, from one thread.
 */
public interface ServingEngine {

    /**
     * Computes positions {@code [seq.cachedTokens(), seq.length())} of a sequence just opened with
     * its prompt, and samples the first token of the answer from the last position's logits. The
     * sampled token is not appended to the sequence yet: the first {@link #decode} of the request
     * appends it.
     *
     * @param seq an open sequence holding the prompt, of at least one token
     * @return the running request; the caller closes it (the sequence stays open)
     */
    ServingRequest prefill(Sequence seq);

    /**
     * One decode step of every request of the batch: appends its last sampled token to its
     * sequence, computes that position and samples the next token.
     *
     * @param batch running requests of this engine, each at most once
     */
    void decode(List<ServingRequest> batch);

    /**
     * @return prompt tokens per second of prefill compute over every prefill this engine ran
     *     (positions computed / seconds spent computing them); NaN before the first
     */
    double prefillTokensPerSecond();
}
