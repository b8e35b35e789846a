package io.kvcache.examples.serving;

import java.util.SplittableRandom;

/**
 * A multi-round question-answering workload, the shape of LMCache's multi-round QA benchmark:
 * {@code users} conversations of {@code rounds} rounds each. Every conversation starts with the
 * same system prompt of {@code systemTokens} tokens, followed in the first round by
 * {@code contextTokens} tokens of the user's own (a document, a profile: LMCache's "user
 * history"); each round sends the conversation so far plus a new question of {@code questionTokens} tokens and generates an answer of
 * {@code answerTokens} tokens, so a user's history grows by {@code questionTokens +
 * answerTokens} a round. Users take turns round-robin (every user's round 0, then every user's
 * round 1, ...), so a returning user's KV has been idle while the others ran.
 *
 * <p>Arrivals: with {@code arrivalsPerSecond == 0} a closed loop of {@code concurrency} clients,
 * each sending the next turn as soon as its last one finished; otherwise turns arrive as a Poisson
 * process of that rate, at most {@code concurrency} served at once, the rest queued.
 *
 * @param users             conversations, at least 1
 * @param rounds            rounds per conversation, at least 1
 * @param systemTokens      tokens of the shared system prompt, at least 0
 * @param contextTokens     tokens of each user's own context, sent in the first round, at least 0
 * @param questionTokens    tokens of each question, at least 1
 * @param answerTokens      tokens generated per answer, at least 1
 * @param concurrency       requests served at once, at least 1
 * @param arrivalsPerSecond 0 for the closed loop, else the Poisson arrival rate in turns per second
 * @param seed              seeds the prompt tokens and the arrival times
 */
public record Workload(int users, int rounds, int systemTokens, int contextTokens, int questionTokens, int answerTokens,
                       int concurrency, double arrivalsPerSecond, long seed) {

    /** Token ids below this are the llama2.c specials (unknown, BOS, EOS); prompts use the rest. */
    private static final int FIRST_PLAIN_TOKEN = 3;

    public Workload {
        positive("users", users);
        positive("rounds", rounds);
        if (systemTokens < 0) {
            throw new IllegalArgumentException("system prompt tokens must be >= 0, was " + systemTokens);
        }
        if (contextTokens < 0) {
            throw new IllegalArgumentException("user context tokens must be >= 0, was " + contextTokens);
        }
        positive("question tokens", questionTokens);
        positive("answer tokens", answerTokens);
        positive("concurrency", concurrency);
        if (!(arrivalsPerSecond >= 0) || Double.isInfinite(arrivalsPerSecond)) {
            throw new IllegalArgumentException("arrival rate must be >= 0 and finite (0 = closed loop), was "
                    + arrivalsPerSecond);
        }
        if ((long) systemTokens + contextTokens + (long) rounds * (questionTokens + answerTokens) > Integer.MAX_VALUE / 2) {
            throw new IllegalArgumentException("a conversation of " + rounds + " rounds is too long");
        }
    }

    private static void positive(String what, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(what + " must be at least 1, was " + v);
        }
    }

    /** @return whether turns arrive as a Poisson process rather than from a closed loop */
    public boolean poisson() {
        return arrivalsPerSecond > 0;
    }

    /** @return turns in all */
    public int turns() {
        return users * rounds;
    }

    /** @return tokens of a conversation after its last round: the longest context */
    public int maxContextTokens() {
        return systemTokens + contextTokens + rounds * (questionTokens + answerTokens);
    }

    /**
     * @param blockTokens tokens per block
     * @return blocks of every user's final history, the system prompt's full blocks counted once
     *     (they are shared)
     */
    public long uniqueKvBlocks(int blockTokens) {
        long shared = systemTokens / blockTokens;
        long perUser = (maxContextTokens() + blockTokens - 1) / blockTokens - shared;
        return shared + users * perUser;
    }

    /**
     * @param vocabSize the model's vocabulary
     * @return the shared system prompt: BOS, then seeded tokens
     */
    public int[] systemPrompt(int vocabSize) {
        int[] p = tokens(new SplittableRandom(seed), systemTokens, vocabSize);
        if (p.length > 0) {
            p[0] = 1;
        }
        return p;
    }

    /** @return the question of {@code user} in {@code round}, the same tokens every time */
    public int[] question(int user, int round, int vocabSize) {
        return tokens(new SplittableRandom(mix(user, round)), questionTokens, vocabSize);
    }

    /** @return the own context {@code user} sends before the first question, the same tokens every time */
    public int[] userContext(int user, int vocabSize) {
        return tokens(new SplittableRandom(mix(user, -1) ^ 0x243F6A8885A308D3L), contextTokens, vocabSize);
    }

    private long mix(int user, int round) {
        return seed * 0x9E3779B97F4A7C15L + (((long) user << 32) | (round & 0xFFFFFFFFL)) * 0xBF58476D1CE4E5B9L;
    }

    private static int[] tokens(SplittableRandom rnd, int n, int vocabSize) {
        if (vocabSize <= FIRST_PLAIN_TOKEN) {
            throw new IllegalArgumentException("a vocabulary of " + vocabSize + " tokens has no plain tokens");
        }
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = rnd.nextInt(FIRST_PLAIN_TOKEN, vocabSize);
        }
        return t;
    }
}
