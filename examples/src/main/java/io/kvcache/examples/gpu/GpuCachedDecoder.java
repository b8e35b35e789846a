package io.kvcache.examples.gpu;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Runs greedy requests of the {@link GpuLlamaEngine} against a cache whose top tier is a CUDA
 * device tier: opens a sequence for the prompt (the cache says how many leading tokens it holds,
 * in any tier), pins the sequence's blocks in VRAM, prefills the rest of the prompt in one pass,
 * then decodes token by token, every position's K/V written by the kernels into the blocks' slots.
 * With {@link Residency#PER_LAYER} the prompt's blocks are made resident layer by layer
 * ({@link KvCacheManager#ensureResident(Sequence, int, int, int, int)} over every layer) and the
 * prefill's layer {@code l} starts as soon as layer {@code l} of the cached prefix has landed
 * ({@link LayerGate#onDevice}: the launch stream waits for that layer's CUDA batches), so a
 * restore from a lower tier overlaps the new tokens' compute.
 * Each step pins the whole sequence, so a sequence must fit the device tier (no windowing over
 * the tiers as the CPU demo engine does). A lost block is not recovered here: its
 * {@link io.kvcache.core.BlockLostException} reaches the caller.
 *
 * <p>Not thread-safe: one request at a time.
 */
public final class GpuCachedDecoder {
    private final GpuLlamaEngine engine;
    private final KvCacheManager cache;

    /**
     * @throws IllegalArgumentException if the cache's layout is not the engine's or its top tier is host memory
     */
    public GpuCachedDecoder(GpuLlamaEngine engine, KvCacheManager cache) {
        requireFits(engine, cache);
        this.engine = engine;
        this.cache = cache;
    }

    /**
     * Checks that the engine can run against the cache: the same layout, a top tier in VRAM.
     *
     * @throws IllegalArgumentException if the cache's layout is not the engine's or its top tier is host memory
     */
    public static void requireFits(GpuLlamaEngine engine, KvCacheManager cache) {
        if (!cache.layout().equals(engine.layout())) {
            throw new IllegalArgumentException("cache layout " + cache.layout() + " is not the engine's " + engine.layout());
        }
        if (cache.tiers().getFirst().hostAccessible()) {
            throw new IllegalArgumentException("the GPU engine reads K/V in VRAM; the cache's top tier '"
                    + cache.tiers().getFirst().name() + "' is host memory");
        }
    }

    /** How the prompt's cached blocks are made resident before its prefill. */
    public enum Residency {
        /** Whole blocks, awaited before the prefill's first layer: restore, then compute. */
        WHOLE,
        /**
         * Layer by layer (consecutive layers grouped as the cache's {@code layerCopyBytes} says); the
         * prefill's layer {@code l} waits for the copy bringing layer {@code l} only,
         * so the restore of later layers overlaps the compute of earlier ones. The wait is on the
         * device where the copies are CUDA batches ({@link LayerGate#onDevice}), else on the host.
         */
        PER_LAYER,
        /** {@link #PER_LAYER} with every wait on the host ({@link LayerGate#perLayer}). */
        PER_LAYER_HOST_WAIT
    }

    /**
     * What a request gave.
     *
     * @param generated     the sampled tokens
     * @param logits        the logits each token was sampled from, when kept
     * @param cachedTokens  prompt tokens the cache held (not recomputed)
     * @param restoreNanos  time from pinning the prompt's blocks to their residency ({@link Residency#WHOLE}),
     *                      or to the residency request's return ({@link Residency#PER_LAYER}: the copies
     *                      then run during the prefill)
     * @param prefillNanos  time of the prefill pass over the uncached prompt tokens, with its waits
     *                      for layers still being copied in
     * @param decodeNanos   time of the decode steps
     */
    public record Result(int[] generated, List<float[]> logits, int cachedTokens, long restoreNanos, long prefillNanos,
                         long decodeNanos) {
    }

    /**
     * @param tenantSalt blocks are shared only between requests with equal salts
     * @param prompt     at least one token
     * @param newTokens  tokens to sample greedily, at least 1
     * @param keepLogits whether to copy every step's logits back
     */
    public Result run(byte[] tenantSalt, int[] prompt, int newTokens, boolean keepLogits) {
        return run(tenantSalt, prompt, newTokens, keepLogits, null, Residency.WHOLE);
    }

    /**
     * {@link #run(byte[], int[], int, boolean)} with the prompt's blocks made resident as
     * {@code residency} says: {@link Residency#PER_LAYER} restores a returning session's prefix
     * from a lower tier while the prefill of its new tokens runs, layer by layer as each lands.
     */
    public Result run(byte[] tenantSalt, int[] prompt, int newTokens, boolean keepLogits, Residency residency) {
        return run(tenantSalt, prompt, newTokens, keepLogits, null, Objects.requireNonNull(residency, "residency"));
    }

    /**
     * Teacher-forced scoring: runs {@code tokens[0]} as the prompt, then feeds {@code tokens[1..]}
     * one decode step each whatever the model predicts.
     *
     * @return per position i, the logits after {@code tokens[0..i]} (in {@link Result#logits()}) and
     *     the greedy prediction (in {@link Result#generated()})
     */
    public Result score(byte[] tenantSalt, int[] tokens) {
        return run(tenantSalt, new int[] {tokens[0]}, tokens.length, true, tokens, Residency.WHOLE);
    }

    private Result run(byte[] tenantSalt, int[] prompt, int newTokens, boolean keepLogits, int[] forced,
                       Residency residency) {
        if (prompt.length == 0 || newTokens < 1) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens, " + newTokens
                    + " new tokens: needs at least one of each");
        }
        int bt = cache.layout().blockTokens();
        int[] generated = new int[newTokens];
        List<float[]> logits = new ArrayList<>();
        try (Sequence seq = cache.open(tenantSalt, prompt)) {
            int cached = seq.cachedTokens();
            long t0 = System.nanoTime();
            int next;
            long restore;
            int blocks = (prompt.length - 1) / bt + 1;
            if (residency != Residency.WHOLE) {
                try (ResidencyHandle h = cache.ensureResident(seq, 0, blocks, 0, cache.layout().layers())) {
                    restore = System.nanoTime() - t0;
                    LayerGate gate = residency == Residency.PER_LAYER ? LayerGate.onDevice(List.of(h), engine.stream())
                            : LayerGate.perLayer(List.of(h));
                    next = engine.prefill(prompt, cached, prompt.length - cached, cached, h.blockTable(), gate);
                    // a copy waited for on the device reports a failure only here: never sample from it
                    h.await();
                }
            } else {
                try (ResidencyHandle h = cache.ensureResident(seq, 0, blocks)) {
                    h.await();
                    restore = System.nanoTime() - t0;
                    next = engine.prefill(prompt, cached, prompt.length - cached, cached, h.blockTable(),
                            LayerGate.NONE);
                }
            }
            long t1 = System.nanoTime();
            seq.markWritten(prompt.length);
            cache.endStep();
            if (keepLogits) {
                logits.add(engine.logits(0));
            }
            generated[0] = next;
            int[] tok = new int[1];
            int[] pos = new int[1];
            long[][] table = new long[1][];
            for (int i = 1; i < newTokens; i++) {
                if (forced != null) {
                    next = forced[i];
                }
                seq.append(next);
                int p = seq.length() - 1;
                try (ResidencyHandle h = cache.ensureResident(seq, 0, p / bt + 1)) {
                    tok[0] = next;
                    pos[0] = p;
                    table[0] = h.blockTable();
                    next = engine.decode(tok, pos, table, LayerGate.wholeBlocks(List.of(h)))[0];
                }
                seq.markWritten(p + 1);
                cache.endStep();
                if (keepLogits) {
                    logits.add(engine.logits(0));
                }
                generated[i] = next;
            }
            long t2 = System.nanoTime();
            return new Result(generated, logits, cached, restore, t1 - t0 - restore, t2 - t1);
        }
    }

    /**
     * Decodes several sequences together, one token of each per step (each with its own block
     * table): prefills every prompt, then {@code newTokens - 1} batched steps.
     *
     * @return per sequence, its sampled tokens
     */
    public int[][] runBatch(byte[] tenantSalt, List<int[]> prompts, int newTokens) {
        int n = prompts.size();
        int bt = cache.layout().blockTokens();
        int[][] generated = new int[n][newTokens];
        List<Sequence> seqs = new ArrayList<>();
        try {
            int[] next = new int[n];
            for (int i = 0; i < n; i++) {
                int[] prompt = prompts.get(i);
                Sequence seq = cache.open(tenantSalt, prompt);
                seqs.add(seq);
                int cached = seq.cachedTokens();
                try (ResidencyHandle h = cache.ensureResident(seq, 0, (prompt.length - 1) / bt + 1)) {
                    h.await();
                    next[i] = engine.prefill(prompt, cached, prompt.length - cached, cached, h.blockTable(),
                            LayerGate.NONE);
                }
                seq.markWritten(prompt.length);
                cache.endStep();
                generated[i][0] = next[i];
            }
            int[] pos = new int[n];
            long[][] tables = new long[n][];
            for (int step = 1; step < newTokens; step++) {
                List<ResidencyHandle> handles = new ArrayList<>();
                try {
                    for (int i = 0; i < n; i++) {
                        Sequence seq = seqs.get(i);
                        seq.append(next[i]);
                        pos[i] = seq.length() - 1;
                        ResidencyHandle h = cache.ensureResident(seq, 0, pos[i] / bt + 1);
                        handles.add(h);
                        tables[i] = h.blockTable();
                    }
                    next = engine.decode(Arrays.copyOf(next, n), pos, tables, LayerGate.wholeBlocks(handles));
                } finally {
                    handles.forEach(ResidencyHandle::close);
                }
                for (int i = 0; i < n; i++) {
                    seqs.get(i).markWritten(pos[i] + 1);
                    generated[i][step] = next[i];
                }
                cache.endStep();
            }
            return generated;
        } finally {
            seqs.forEach(Sequence::close);
        }
    }
}
