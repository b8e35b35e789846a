package io.kvcache.bench.serving;

import io.kvcache.examples.serving.TurnRecord;
import io.kvcache.examples.serving.Workload;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The token check of a platform whose floats depend on how a prompt was split between the cache
 * and the prefill (the GPU engine): two configurations must generate the same tokens for a turn
 * when they computed that user's history the same way, which the benchmark takes to be when every
 * turn of that user so far found the same number of tokens cached (the shared system prompt is
 * computed once, by the first turn, in every configuration). Other turns are compared loosely: the
 * share of answer tokens equal to configuration 1's is reported, not required.
 *
 * @param difference null when every strictly compared turn agreed, else the first that did not
 * @param scope      what was compared and how far the rest agreed
 */
record TokenCheck(String difference, String scope) {

    static TokenCheck sameComputation(Workload w, List<ServingBenchmark.ConfigRun> runs) {
        String diff = null;
        int strict = 0;
        int pairs = 0;
        StringBuilder agreement = new StringBuilder();
        for (int a = 0; a < runs.size(); a++) {
            Map<Long, TurnRecord> ta = byTurn(runs.get(a));
            for (int b = a + 1; b < runs.size(); b++) {
                Map<Long, TurnRecord> tb = byTurn(runs.get(b));
                long equalTokens = 0;
                long tokens = 0;
                for (int u = 0; u < w.users(); u++) {
                    boolean same = true;
                    for (int r = 0; r < w.rounds(); r++) {
                        TurnRecord x = ta.get(key(u, r));
                        TurnRecord y = tb.get(key(u, r));
                        same &= x.cachedTokens() == y.cachedTokens();
                        pairs++;
                        if (same) {
                            strict++;
                            if (diff == null && !Arrays.equals(x.answer(), y.answer())) {
                                diff = "user " + u + " round " + r + ", computed alike: configuration "
                                        + runs.get(a).config().number() + " " + Arrays.toString(x.answer())
                                        + ", configuration " + runs.get(b).config().number() + " "
                                        + Arrays.toString(y.answer());
                            }
                        }
                        for (int i = 0; i < Math.min(x.answer().length, y.answer().length); i++) {
                            equalTokens += x.answer()[i] == y.answer()[i] ? 1 : 0;
                        }
                        tokens += Math.max(x.answer().length, y.answer().length);
                    }
                }
                if (a == 0) {
                    agreement.append(String.format(Locale.ROOT, "%s%d: %.1f%%", agreement.isEmpty() ? "" : ", ",
                            runs.get(b).config().number(), 100.0 * equalTokens / Math.max(1, tokens)));
                }
            }
        }
        String scope = String.format(Locale.ROOT, "Compared strictly: %d of %d turn pairs, those whose user's history "
                + "every configuration of the pair had computed the same way (the same tokens found cached on every "
                + "turn so far); the GPU engine's floats depend on the prefill split. Answer tokens equal to "
                + "configuration %d's, position by position: %s.", strict, pairs, runs.getFirst().config().number(),
                agreement.isEmpty() ? "-" : agreement);
        return new TokenCheck(diff, scope);
    }

    private static Map<Long, TurnRecord> byTurn(ServingBenchmark.ConfigRun run) {
        Map<Long, TurnRecord> m = new HashMap<>();
        for (TurnRecord t : run.run().turns()) {
            m.put(key(t.user(), t.round()), t);
        }
        return m;
    }

    private static long key(int user, int round) {
        return ((long) user << 32) | round;
    }
}
