package io.kvcache.examples.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.Sequence;
import io.kvcache.examples.attention.CpuAttentionBackend;
import io.kvcache.examples.engine.CachedDecoder;
import io.kvcache.examples.engine.PagedKvAttention;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import java.util.List;

/**
 * The CPU engine: one position at a time through {@link LlamaModel}, attention by
 * {@link PagedKvAttention} over windows of the cache's blocks (the next window prefetched),
 * greedy sampling. Requests interleave step by step; each holds its own attention state, and
 * pins blocks only inside its own steps. A block the cache reports lost fails the request
 * ({@link io.kvcache.core.BlockLostException}); the demo's {@link CachedDecoder} is the engine that
 * recovers by recomputing.
 */
final class CpuServingEngine implements ServingEngine {
    private final LlamaModel model;
    private final KvCacheManager cache;
    private final CpuAttentionBackend backend = new CpuAttentionBackend();
    private final int windowBlocks;
    private final Sampler greedy;
    private long prefillTokens;
    private long prefillComputeNanos;

    CpuServingEngine(Checkpoint checkpoint, KvCacheManager cache) {
        this.model = new LlamaModel(checkpoint);
        this.cache = cache;
        this.windowBlocks = CachedDecoder.windowBlocks(cache.tiers().getFirst().slotCount());
        this.greedy = new Sampler(checkpoint.config().vocabSize(), 0.0f, 1);
    }

    @Override
    public ServingRequest prefill(Sequence seq) {
        long start = System.nanoTime();
        int cached = seq.cachedTokens();
        int[] tokens = seq.tokens();
        if (tokens.length == 0) {
            throw new IllegalArgumentException("a prefill needs at least one prompt token");
        }
        Request r = new Request(seq, cached, CachedBlocks.perTier(cache, seq, cached / cache.layout().blockTokens()),
                new PagedKvAttention(cache, seq, model.config().heads(), backend, windowBlocks, true, false));
        float[] logits = null;
        try {
            for (int pos = cached; pos < tokens.length; pos++) {
                logits = r.step(tokens[pos], pos);
            }
        } catch (RuntimeException e) {
            r.close();
            throw e;
        }
        r.add(greedy.sample(logits));
        r.prefillNanos = System.nanoTime() - start;
        prefillTokens += tokens.length - cached;
        prefillComputeNanos += r.prefillNanos;
        return r;
    }

    @Override
    public void decode(List<ServingRequest> batch) {
        for (ServingRequest x : batch) {
            if (!(x instanceof Request r) || r.engine() != this) {
                throw new IllegalArgumentException(x + " is not a request of this engine");
            }
            long t0 = System.nanoTime();
            int token = r.last();
            r.seq.append(token);
            float[] logits = r.step(token, r.seq.length() - 1);
            r.add(greedy.sample(logits));
            r.decodeNanos += System.nanoTime() - t0;
        }
    }

    @Override
    public double prefillTokensPerSecond() {
        return prefillComputeNanos == 0 ? Double.NaN : prefillTokens / (prefillComputeNanos / 1e9);
    }

    private final class Request extends RunningRequest {
        final PagedKvAttention kv;

        Request(Sequence seq, int cached, int[] perTier, PagedKvAttention kv) {
            super(seq, cached, perTier);
            this.kv = kv;
        }

        CpuServingEngine engine() {
            return CpuServingEngine.this;
        }

        float[] step(int token, int pos) {
            try {
                kv.beginStep(pos);
                float[] out = model.forward(token, pos, kv);
                kv.endStep();
                return out;
            } catch (RuntimeException e) {
                kv.abort();
                throw e;
            }
        }

        @Override
        public void close() {
            kv.abort();
        }
    }
}
