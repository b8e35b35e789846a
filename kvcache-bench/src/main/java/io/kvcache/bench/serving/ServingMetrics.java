package io.kvcache.bench.serving;

import io.kvcache.examples.serving.RunResult;
import io.kvcache.examples.serving.TurnRecord;
import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;

/**
 * One configuration's figures, derived from its turns.
 *
 * @param ttftFirstMs      p50, p95, p99 of the first turns' time to first token, in ms
 * @param ttftReturningMs  p50, p95, p99 of the returning turns', in ms (NaN with one round)
 * @param decodeTokensPerS decode tokens over the time spent in decode steps
 * @param answerTokensPerS answer tokens over the run's wall time: the throughput
 * @param turnsPerS        turns over the run's wall time
 * @param wallS            the run's wall time
 * @param prefillS         time spent in prefills, summed over turns
 * @param prefillTokens    prompt positions computed
 * @param promptTokens     prompt tokens sent
 * @param hitsPerTier      prefix blocks found per tier (device, host, disk; a tier the configuration lacks counts 0)
 * @param bytesUp          bytes copied toward the device
 * @param bytesDown        bytes copied down the tiers
 * @param sessionsHeld     users whose whole history the cache held after the last turn, in tiers it reuses
 * @param meanTtftByRoundMs per round, the mean time to first token, in ms
 */
public record ServingMetrics(double[] ttftFirstMs, double[] ttftReturningMs, double decodeTokensPerS,
                             double answerTokensPerS, double turnsPerS, double wallS, double prefillS,
                             long prefillTokens, long promptTokens, long[] hitsPerTier, long bytesUp, long bytesDown,
                             int sessionsHeld, double[] meanTtftByRoundMs) {

    /** Percentiles reported, as fractions. */
    static final double[] PERCENTILES = {0.50, 0.95, 0.99};

    /** @return the figures of one configuration's run */
    static ServingMetrics of(ServingBenchmark.ConfigRun c, int rounds) {
        RunResult r = c.run();
        List<TurnRecord> turns = r.turns();
        long decodeTokens = 0;
        long decodeNanos = 0;
        long answer = 0;
        long prefillNanos = 0;
        long prefillTokens = 0;
        long prompt = 0;
        long[] hits = new long[3];
        double[] byRound = new double[rounds];
        int[] perRound = new int[rounds];
        for (TurnRecord t : turns) {
            decodeTokens += t.answer().length - 1;
            decodeNanos += t.decodeNanos();
            answer += t.answer().length;
            prefillNanos += t.prefillNanos();
            prefillTokens += t.prefillTokens();
            prompt += t.promptTokens();
            int[] per = t.cachedBlocksPerTier();
            // tier indices of the configuration: device, then host when present, then disk
            int host = c.hostBlocks() > 0 ? 1 : -1;
            int disk = c.diskBlocks() > 0 ? (host > 0 ? 2 : 1) : -1;
            for (int i = 0; i < per.length; i++) {
                hits[i == 0 ? 0 : i == host ? 1 : i == disk ? 2 : 0] += per[i];
            }
            byRound[t.round()] += t.ttftNanos() / 1e6;
            perRound[t.round()]++;
        }
        for (int i = 0; i < rounds; i++) {
            byRound[i] = perRound[i] == 0 ? Double.NaN : byRound[i] / perRound[i];
        }
        double wall = r.wallNanos() / 1e9;
        return new ServingMetrics(ttft(turns, t -> !t.returning()), ttft(turns, TurnRecord::returning),
                decodeNanos == 0 ? Double.NaN : decodeTokens / (decodeNanos / 1e9), answer / wall, turns.size() / wall,
                wall, prefillNanos / 1e9, prefillTokens, prompt, hits, r.bytesPromoted(), r.bytesDemoted(),
                r.sessionsHeldAtEnd(), byRound);
    }

    /** @return the sorted times to first token of the matching turns, in ms */
    static double[] ttftSortedMs(List<TurnRecord> turns, Predicate<TurnRecord> which) {
        return turns.stream().filter(which).mapToDouble(t -> t.ttftNanos() / 1e6).sorted().toArray();
    }

    private static double[] ttft(List<TurnRecord> turns, Predicate<TurnRecord> which) {
        double[] sorted = ttftSortedMs(turns, which);
        double[] p = new double[PERCENTILES.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = percentile(sorted, PERCENTILES[i]);
        }
        return p;
    }

    /** @return the nearest-rank percentile of sorted values, NaN for none */
    static double percentile(double[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int rank = (int) Math.ceil(q * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    @Override
    public String toString() {
        return "ServingMetrics[ttftFirstMs=" + Arrays.toString(ttftFirstMs) + ", ttftReturningMs="
                + Arrays.toString(ttftReturningMs) + ", answerTokensPerS=" + answerTokensPerS + ", sessionsHeld="
                + sessionsHeld + "]";
    }
}
