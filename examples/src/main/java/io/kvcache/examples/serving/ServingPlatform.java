package io.kvcache.examples.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;

/**
 * Where a {@link ServingEngine} runs: the model, the cache layout it needs, the tiers nearest it
 * (the device tier its attention reads, the host tier below it), the engine copying between
 * them, and a factory of engines bound to a cache built from those tiers. The serving benchmark
 * is written against this seam, so running it on another machine is one more implementation:
 * {@link CpuServingPlatform} on the CPU, a GPU platform with CUDA tiers on a GPU.
 */
public interface ServingPlatform extends AutoCloseable {

    /** @return a short description for reports, e.g. "cpu, embedded synthetic model" */
    String name();

    /** @return the cache layout of the model */
    KvLayout layout();

    /** @return an id of the model's weights, for content keys and persistent tiers */
    String modelId();

    /** @return the model's vocabulary size: token ids are {@code [0, vocabSize)} */
    int vocabSize();

    /**
     * @return whether a position's K/V and logits are the same floats however its prompt was split
     *     between the cache and the prefill (true on the CPU engine, which computes one position at
     *     a time); when false, configurations that computed a history differently may sample
     *     different tokens, and only those that computed it the same way must agree
     */
    default boolean splitInvariant() {
        return true;
    }

    /** @return a new device tier of {@code slots} blocks */
    Tier deviceTier(int slots);

    /** @return a new host tier of {@code slots} blocks */
    Tier hostTier(int slots);

    /** @return a fresh engine copying between this platform's tiers, or null for the manager's own CPU copies */
    TransferEngine transferEngine();

    /**
     * @param cache a cache whose top tier came from {@link #deviceTier}
     * @return an engine serving requests against it
     */
    ServingEngine engine(KvCacheManager cache);

    /** Releases what the platform holds (device context, modules). */
    @Override
    void close();
}
