package io.kvcache.examples.serving;

/**
 * One served turn of one user.
 *
 * @param user                the user
 * @param round               the round, 0 for the first turn
 * @param promptTokens        tokens of the prompt: the history so far and the new question
 * @param cachedTokens        leading prompt tokens the cache held (not computed)
 * @param cachedBlocksPerTier per tier (fastest first), how many of the cached blocks were found there
 * @param prefillTokens       prompt positions computed
 * @param prefillNanos        time the prefill took, in ns
 * @param decodeNanos         time the turn's decode steps took, in ns
 * @param ttftNanos           time from the turn's arrival to its first token, queueing included, in ns
 * @param latencyNanos        time from the turn's arrival to its last token, in ns
 * @param answer              the generated tokens
 */
public record TurnRecord(int user, int round, int promptTokens, int cachedTokens, int[] cachedBlocksPerTier,
                         int prefillTokens, long prefillNanos, long decodeNanos, long ttftNanos, long latencyNanos,
                         int[] answer) {

    /** @return whether the user came back with a history (round 1 and later) */
    public boolean returning() {
        return round > 0;
    }
}
