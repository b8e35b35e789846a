package io.kvcache.examples.serving;

import io.kvcache.core.Sequence;
import java.util.Arrays;

/**
 * What every engine's request records: its sequence, what the prefill found and cost, the tokens
 * sampled so far and the time its decode steps took. Engines add what they hold for it.
 */
abstract class RunningRequest implements ServingRequest {
    final Sequence seq;
    final int cached;
    final int[] perTier;
    final int prefillPositions;
    int[] generated = new int[16];
    int count;
    long prefillNanos;
    long decodeNanos;

    RunningRequest(Sequence seq, int cached, int[] perTier) {
        this.seq = seq;
        this.cached = cached;
        this.perTier = perTier;
        this.prefillPositions = seq.length() - cached;
    }

    /** Records a sampled token. */
    final void add(int token) {
        if (count == generated.length) {
            generated = Arrays.copyOf(generated, count * 2);
        }
        generated[count++] = token;
    }

    /** @return the last sampled token */
    final int last() {
        return generated[count - 1];
    }

    @Override
    public Sequence sequence() {
        return seq;
    }

    @Override
    public int cachedTokens() {
        return cached;
    }

    @Override
    public int[] cachedBlocksPerTier() {
        return perTier.clone();
    }

    @Override
    public int prefillTokens() {
        return prefillPositions;
    }

    @Override
    public long prefillNanos() {
        return prefillNanos;
    }

    @Override
    public long decodeNanos() {
        return decodeNanos;
    }

    @Override
    public int[] generated() {
        return Arrays.copyOf(generated, count);
    }
}
