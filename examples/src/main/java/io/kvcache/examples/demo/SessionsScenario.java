package io.kvcache.examples.demo;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.serving.CpuServingPlatform;
import io.kvcache.examples.serving.RunResult;
import io.kvcache.examples.serving.SessionRunner;
import io.kvcache.examples.serving.TurnRecord;
import io.kvcache.examples.serving.Workload;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Locale;

/**
 * The demo's sessions scenario, the payoff in one comparison: a few users in conversation share a
 * system prompt and come back for more rounds while the others run, served twice on the CPU
 * engine with the same device budget: once with a host tier below the device, where a returning
 * user's history is restored, and once with the device tier alone, where it was evicted and is
 * recomputed. Prints the returning turns' time to first token of both and checks that both
 * generated the same tokens. The full benchmark is {@code kvcache-bench}'s ServingBenchmark.
 */
public final class SessionsScenario {
    private static final byte[] TENANT = "demo-sessions".getBytes(StandardCharsets.UTF_8);

    /**
     * @param workload     the conversations
     * @param deviceBlocks the device budget of both runs
     * @param userKvBlocks blocks of the users' histories at the end
     * @param restored     the run with a host tier
     * @param recomputed   the run with the device tier alone
     */
    public record Result(Workload workload, int deviceBlocks, long userKvBlocks, RunResult restored,
                         RunResult recomputed) {

        /** @return null when both runs gave every turn the same answer, else the first difference */
        public String difference() {
            for (TurnRecord t : restored.turns()) {
                int[] other = recomputed.answer(t.user(), t.round());
                if (!Arrays.equals(t.answer(), other)) {
                    return "user " + t.user() + " round " + t.round() + ": " + Arrays.toString(t.answer()) + " restored, "
                            + Arrays.toString(other) + " recomputed";
                }
            }
            return null;
        }

        /** @return the median time to first token of the returning turns of a run, in ms */
        public static double returningTtftP50Ms(RunResult r) {
            double[] v = r.turns().stream().filter(TurnRecord::returning).mapToDouble(t -> t.ttftNanos() / 1e6)
                    .sorted().toArray();
            return v.length == 0 ? Double.NaN : v[(v.length - 1) / 2];
        }

        /** @return prompt positions a run computed over all its turns */
        public static long promptTokensComputed(RunResult r) {
            return r.turns().stream().mapToLong(TurnRecord::prefillTokens).sum();
        }
    }

    private SessionsScenario() {
    }

    /**
     * @param cp          the model
     * @param blockTokens tokens per block
     * @param users       conversations, at least 2
     * @return both runs
     */
    public static Result run(Checkpoint cp, int blockTokens, int users) {
        Workload w = new Workload(users, 3, 32, 96, 8, 8, 1, 0, 1);
        try (CpuServingPlatform p = new CpuServingPlatform(cp, blockTokens)) {
            int bt = p.layout().blockTokens();
            int device = Math.max(Budgets.MIN_DEVICE_BLOCKS, (w.maxContextTokens() + bt - 1) / bt + 3);
            long kv = w.uniqueKvBlocks(bt);
            // the recomputed run first, so that the restored one does not profit from a warmer JIT
            RunResult recomputed = serve(p, w, device, 0);
            RunResult restored = serve(p, w, device, (int) kv + device);
            return new Result(w, device, kv, restored, recomputed);
        }
    }

    private static RunResult serve(CpuServingPlatform p, Workload w, int deviceBlocks, int hostBlocks) {
        KvCacheManager.Builder b = KvCacheManager.builder(p.layout()).modelId(p.modelId())
                .evictionPolicy(EvictionPolicy.lru()).tier(p.deviceTier(deviceBlocks));
        if (hostBlocks > 0) {
            b.tier(p.hostTier(hostBlocks));
        }
        try (KvCacheManager cache = b.build()) {
            return new SessionRunner(w, p.vocabSize(), TENANT).run(cache, p.engine(cache), t -> true,
                    SessionRunner.Listener.NONE);
        }
    }

    /**
     * Prints the comparison.
     *
     * @return whether both runs generated the same tokens
     */
    static boolean print(PrintStream out, Result r) {
        Workload w = r.workload();
        double rest = Result.returningTtftP50Ms(r.restored());
        double reco = Result.returningTtftP50Ms(r.recomputed());
        String diff = r.difference();
        out.printf(Locale.ROOT, "sessions      %d users x %d rounds after a shared %d-token system prompt and %d of their own "
                        + "(CPU engine); their KV, %d blocks, is %.1fx the device tier of %d%n", w.users(), w.rounds(),
                w.systemTokens(), w.contextTokens(),
                r.userKvBlocks(), r.userKvBlocks() / (double) r.deviceBlocks(), r.deviceBlocks());
        out.printf(Locale.ROOT, "              returning-turn TTFT p50: restored from the host tier %.1f ms, recomputed %.1f ms "
                        + "(%.1fx); positions computed %d vs %d%n", rest, reco, reco / rest,
                Result.promptTokensComputed(r.restored()), Result.promptTokensComputed(r.recomputed()));
        out.printf(Locale.ROOT, "              restored and recomputed turns generate the same tokens: %s%n",
                diff == null ? "yes" : "NO, " + diff);
        return diff == null;
    }
}
