package io.kvcache.examples.serving;

import io.kvcache.core.stats.CacheStats;
import java.util.List;

/**
 * What serving a {@link Workload} measured.
 *
 * @param turns          every turn, in the order they finished
 * @param wallNanos      time from the first arrival to the last token, in ns
 * @param maxSessionsHeld most users whose whole history (every full block) the cache held at once,
 *                        sampled after every turn, in tiers the run counted as reused
 * @param sessionsHeldAtEnd users whose whole history the cache held after the last turn
 * @param before         the cache's stats before the first turn
 * @param after          the cache's stats after the last turn
 */
public record RunResult(List<TurnRecord> turns, long wallNanos, int maxSessionsHeld, int sessionsHeldAtEnd,
                        CacheStats before, CacheStats after) {

    /** @return bytes copied toward the device during the run */
    public long bytesPromoted() {
        return after.bytesPromoted() - before.bytesPromoted();
    }

    /** @return bytes copied down the tiers during the run */
    public long bytesDemoted() {
        return after.bytesDemoted() - before.bytesDemoted();
    }

    /**
     * @param user  the user
     * @param round the round
     * @return that turn's answer
     * @throws IllegalArgumentException when the run has no such turn
     */
    public int[] answer(int user, int round) {
        for (TurnRecord t : turns) {
            if (t.user() == user && t.round() == round) {
                return t.answer();
            }
        }
        throw new IllegalArgumentException("no turn of user " + user + " in round " + round);
    }
}
