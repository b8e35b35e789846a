package io.kvcache.examples.engine;

import io.kvcache.core.BlockLostException;
import io.kvcache.core.KvCacheManager;
import io.kvcache.core.Sequence;
import io.kvcache.examples.attention.AttentionBackend;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import java.util.Arrays;

/**
 * Runs requests of one model against one cache: opens a sequence for the prompt (the cache says
 * how many leading tokens it already holds), computes the rest of the prompt, then samples new
 * tokens, every position's K/V written into and read from the cache's blocks. A block the cache
 * reports lost (a failed tier, a checksum that does not verify) is recomputed: the sequence is cut
 * back to it and its positions run again.
 *
 * <p>Not thread-safe: one request at a time.
 */
public final class CachedDecoder {
    /**
     * Lost blocks a request recovers from, beyond one per block of the sequence, before it gives
     * up. Each loss is found when the block is read and is then forgotten by the cache, so a
     * damaged tier costs at most one recovery per damaged block.
     */
    static final int EXTRA_RECOVERIES = 16;

    private final LlamaModel model;
    private final KvCacheManager cache;
    private final AttentionBackend backend;
    private final int windowBlocks;
    private final boolean prefetchEvicts;
    private final boolean reportAttention;

    /**
     * @param model           the model (its activations are reused)
     * @param cache           holds the K/V
     * @param backend         attention arithmetic over pinned blocks
     * @param windowBlocks    blocks pinned per window, see {@link PagedKvAttention}
     * @param prefetchEvicts  whether the window asked for ahead may evict blocks held whole in
     *                        the top tier (see {@link PagedKvAttention})
     * @param reportAttention whether to report attention mass per block (for the attention policy)
     */
    public CachedDecoder(LlamaModel model, KvCacheManager cache, AttentionBackend backend, int windowBlocks,
                         boolean prefetchEvicts, boolean reportAttention) {
        if (model.config().kvDim() != cache.layout().kvHeads() * cache.layout().headDim()
                || model.config().layers() != cache.layout().layers()) {
            throw new IllegalArgumentException("cache layout " + cache.layout() + " does not fit the model " + model.config());
        }
        var top = cache.tiers().getFirst();
        if (!backend.supports(top.hostAccessible())) {
            throw new IllegalArgumentException("attention backend '" + backend.name() + "' cannot read the top tier '"
                    + top.name() + "' (" + top.backing() + ")");
        }
        this.model = model;
        this.cache = cache;
        this.backend = backend;
        this.windowBlocks = windowBlocks;
        this.prefetchEvicts = prefetchEvicts;
        this.reportAttention = reportAttention;
    }

    /** @return per tier, how many of the sequence's first {@code blocks} blocks it holds */
    private int[] whereCached(Sequence seq, int blocks) {
        int[] perTier = new int[cache.tiers().size()];
        if (blocks == 0) {
            return perTier;
        }
        java.util.Map<Long, Integer> tierOf = new java.util.HashMap<>();
        for (KvCacheManager.BlockInfo b : cache.blockInfos()) {
            tierOf.put(b.id(), b.tier());
        }
        for (int i = 0; i < blocks; i++) {
            int t = tierOf.getOrDefault(cache.blockId(seq, i), -1);
            if (t >= 0) {
                perTier[t]++;
            }
        }
        return perTier;
    }

    /**
     * Blocks per window for a top tier of {@code topSlots} slots: the library's default
     * ({@link io.kvcache.core.LayerWindows.Options#forTopTier}).
     *
     * @throws IllegalArgumentException when the top tier holds fewer than 3 blocks
     */
    public static int windowBlocks(int topSlots) {
        if (topSlots < 3) {
            throw new IllegalArgumentException("the top tier holds " + topSlots
                    + " blocks; decoding needs at least 3 (the current block, a window and the next window)");
        }
        return io.kvcache.core.LayerWindows.Options.forTopTier(topSlots).windowBlocks();
    }

    /**
     * @param tenantSalt blocks are shared only between requests with equal salts
     * @param prompt     at least one token id
     * @param newTokens  tokens to sample, >= 0
     * @param sampler    picks each next token
     * @param listener   told after every computed position
     * @return tokens, logits and reuse counts
     * @throws IllegalArgumentException for an empty prompt or a token outside the vocabulary
     */
    public DecodeResult run(byte[] tenantSalt, int[] prompt, int newTokens, Sampler sampler, StepListener listener) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt needs at least one token");
        }
        for (int t : prompt) {
            if (t < 0 || t >= model.config().vocabSize()) {
                throw new IllegalArgumentException("prompt token " + t + " outside the vocabulary [0, "
                        + model.config().vocabSize() + ")");
            }
        }
        long start = System.nanoTime();
        int[] generated = new int[newTokens];
        float[][] logits = new float[newTokens][];
        try (Sequence seq = cache.open(tenantSalt, prompt)) {
            int cached = seq.cachedTokens();
            int[] cachedPerTier = whereCached(seq, cached / cache.layout().blockTokens());
            PagedKvAttention kv = new PagedKvAttention(cache, seq, model.config().heads(), backend, windowBlocks,
                    prefetchEvicts, reportAttention);
            int bt = cache.layout().blockTokens();
            int total = prompt.length - cached + Math.max(0, newTokens - 1);
            int done = 0;
            // the prompt, then each token as it is sampled: replayed from here after a lost block
            int[] stream = Arrays.copyOf(prompt, prompt.length + newTokens);
            int known = prompt.length;
            int pos = cached;
            int sampled = 0;
            int recoveries = 0;
            try {
                while (true) {
                    long t0 = System.nanoTime();
                    float[] out;
                    try {
                        kv.beginStep(pos);
                        out = model.forward(stream[pos], pos, kv);
                        kv.endStep();
                    } catch (BlockLostException e) {
                        // the cache never serves wrong bytes: it reports the block lost, and the
                        // positions from that block on are computed again from their tokens
                        kv.abort();
                        if (++recoveries > EXTRA_RECOVERIES + seq.blockCount()) {
                            throw e;
                        }
                        int from = Math.min(pos, e.firstLostBlock() * bt);
                        int length = seq.length();
                        seq.truncate(from);
                        seq.append(Arrays.copyOfRange(stream, from, length));
                        total += pos - from;
                        pos = from;
                        continue;
                    }
                    done++;
                    listener.onStep(pos, done, total, System.nanoTime() - t0);
                    pos++;
                    if (pos < known) {
                        continue;   // prompt, or positions computed again after a lost block
                    }
                    if (sampled == newTokens) {
                        break;
                    }
                    logits[sampled] = out.clone();
                    int next = sampler.sample(out);
                    generated[sampled++] = next;
                    if (sampled == newTokens) {
                        break;   // the last sampled token's K/V is not needed
                    }
                    stream[known++] = next;
                    seq.append(next);
                }
            } finally {
                kv.abort();
            }
            return new DecodeResult(prompt.clone(), Arrays.copyOf(generated, sampled), logits, cached, cachedPerTier, done,
                    recoveries, System.nanoTime() - start);
        }
    }
}
