package io.kvcache.examples.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.Sequence;
import io.kvcache.core.stats.CacheStats;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntPredicate;

/**
 * Serves a {@link Workload}'s turns on one engine and one cache, iteration by iteration as a
 * continuous-batching server does: admit the turns that have arrived (up to the workload's
 * concurrency) and prefill each, then one decode step of every running turn, then retire the
 * turns whose answers are complete. A retired turn's sequence is closed: its blocks stay in the
 * cache, unreferenced, for the user's next turn to find (or for the tiers to demote or drop).
 *
 * <p>Turns are served in round-robin order (see {@link Workload}); a user's next turn is never
 * admitted before the last one finished. Not thread-safe; the engine is called from the calling
 * thread only.
 */
public final class SessionRunner {

    /** Told after every finished turn, e.g. to draw a progress bar. */
    public interface Listener {
        /** Ignores every turn. */
        Listener NONE = (turn, done, total) -> { };

        /**
         * @param turn  the turn just finished
         * @param done  turns finished so far
         * @param total turns in all
         */
        void turnDone(TurnRecord turn, int done, int total);
    }

    private final Workload w;
    private final int vocabSize;
    private final byte[] tenantSalt;

    /**
     * @param workload   what to serve
     * @param vocabSize  the model's vocabulary
     * @param tenantSalt the salt of every user's sequences: one tenant, so the system prompt is shared
     */
    public SessionRunner(Workload workload, int vocabSize, byte[] tenantSalt) {
        this.w = workload;
        this.vocabSize = vocabSize;
        this.tenantSalt = tenantSalt.clone();
    }

    private static final class Running {
        final int user;
        final int round;
        final int[] prompt;
        final Sequence seq;
        final ServingRequest req;
        final long arrival;
        final long firstToken;

        Running(int user, int round, int[] prompt, Sequence seq, ServingRequest req, long arrival, long firstToken) {
            this.user = user;
            this.round = round;
            this.prompt = prompt;
            this.seq = seq;
            this.req = req;
            this.arrival = arrival;
            this.firstToken = firstToken;
        }
    }

    /**
     * @param cache      the cache the engine is bound to
     * @param engine     computes the turns
     * @param tierReused which tiers count toward "sessions held": those the cache reuses blocks from
     * @param listener   told after every turn
     * @return every turn's measurements and answer
     */
    public RunResult run(KvCacheManager cache, ServingEngine engine, IntPredicate tierReused, Listener listener) {
        int total = w.turns();
        int[] system = w.systemPrompt(vocabSize);
        int[][] history = new int[w.users()][];
        long[][] heldBlocks = new long[w.users()][];
        boolean[] busy = new boolean[w.users()];
        long[] userFreeAt = new long[w.users()];
        long[] arrivalOffset = arrivals(total);
        int bt = cache.layout().blockTokens();
        List<TurnRecord> turns = new ArrayList<>(total);
        List<Running> active = new ArrayList<>(w.concurrency());
        List<ServingRequest> batch = new ArrayList<>(w.concurrency());
        int maxHeld = 0;
        int next = 0;
        CacheStats before = cache.stats();
        long start = System.nanoTime();
        try {
            while (next < total || !active.isEmpty()) {
                long now = System.nanoTime();
                while (active.size() < w.concurrency() && next < total) {
                    int user = next % w.users();
                    int round = next / w.users();
                    if (busy[user]) {
                        break;   // the turn order is kept: nobody overtakes a user still being answered
                    }
                    long arrival = now;
                    if (w.poisson()) {
                        arrival = Math.max(start + arrivalOffset[next], userFreeAt[user]);
                        if (arrival > now) {
                            break;
                        }
                    }
                    int[] prompt = history[user] == null
                            ? concat(system, w.userContext(user, vocabSize), w.question(user, round, vocabSize))
                            : concat(history[user], w.question(user, round, vocabSize));
                    Sequence seq = cache.open(tenantSalt, prompt);
                    ServingRequest req;
                    try {
                        req = engine.prefill(seq);
                    } catch (RuntimeException e) {
                        seq.close();
                        throw e;
                    }
                    active.add(new Running(user, round, prompt, seq, req, arrival, System.nanoTime()));
                    busy[user] = true;
                    next++;
                }
                if (active.isEmpty()) {
                    // Poisson mode with nobody running: wait for the next arrival
                    LockSupport.parkNanos(start + arrivalOffset[next] - System.nanoTime());
                    continue;
                }
                batch.clear();
                for (Running r : active) {
                    if (r.req.generated().length < w.answerTokens()) {
                        batch.add(r.req);
                    }
                }
                if (!batch.isEmpty()) {
                    engine.decode(batch);
                }
                for (Iterator<Running> it = active.iterator(); it.hasNext(); ) {
                    Running r = it.next();
                    int[] answer = r.req.generated();
                    if (answer.length < w.answerTokens()) {
                        continue;
                    }
                    long done = System.nanoTime();
                    history[r.user] = concat(r.prompt, answer);
                    int fullBlocks = r.seq.writtenTokens() / bt;
                    long[] ids = new long[fullBlocks];
                    for (int b = 0; b < fullBlocks; b++) {
                        ids[b] = cache.blockId(r.seq, b);
                    }
                    heldBlocks[r.user] = ids;
                    TurnRecord t = new TurnRecord(r.user, r.round, r.prompt.length, r.req.cachedTokens(),
                            r.req.cachedBlocksPerTier(), r.req.prefillTokens(), r.req.prefillNanos(),
                            r.req.decodeNanos(), r.firstToken - r.arrival, done - r.arrival, answer);
                    r.req.close();
                    r.seq.close();
                    it.remove();
                    busy[r.user] = false;
                    userFreeAt[r.user] = done;
                    turns.add(t);
                    maxHeld = Math.max(maxHeld, sessionsHeld(cache, heldBlocks, tierReused));
                    listener.turnDone(t, turns.size(), total);
                }
            }
        } finally {
            for (Running r : active) {
                r.req.close();
                r.seq.close();
            }
        }
        long wall = System.nanoTime() - start;
        return new RunResult(List.copyOf(turns), wall, maxHeld, sessionsHeld(cache, heldBlocks, tierReused),
                before, cache.stats());
    }

    private static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) {
            n += p.length;
        }
        int[] out = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    /** @return users whose every full block of history the cache holds, in a tier it reuses */
    private static int sessionsHeld(KvCacheManager cache, long[][] heldBlocks, IntPredicate tierReused) {
        Map<Long, Integer> tierOf = new HashMap<>();
        cache.blockInfos().forEach(b -> {
            if (!b.lost() && b.tier() >= 0) {
                tierOf.put(b.id(), b.tier());
            }
        });
        int held = 0;
        for (long[] ids : heldBlocks) {
            if (ids == null) {
                continue;
            }
            boolean all = true;
            for (long id : ids) {
                Integer t = tierOf.get(id);
                if (t == null || !tierReused.test(t)) {
                    all = false;
                    break;
                }
            }
            held += all ? 1 : 0;
        }
        return held;
    }

    /** @return per turn, its arrival time after the start in ns (all 0 in the closed loop) */
    private long[] arrivals(int total) {
        long[] at = new long[total];
        if (!w.poisson()) {
            return at;
        }
        SplittableRandom rnd = new SplittableRandom(w.seed() ^ 0x5DEECE66DL);
        double t = 0;
        for (int i = 0; i < total; i++) {
            t += -Math.log(1.0 - rnd.nextDouble()) / w.arrivalsPerSecond();
            at[i] = (long) (t * 1e9);
        }
        return at;
    }
}
