package io.kvcache.examples.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.examples.gpu.GpuCachedDecoder;
import io.kvcache.examples.gpu.GpuLlamaEngine;
import io.kvcache.examples.gpu.LayerGate;
import java.util.ArrayList;
import java.util.List;

/**
 * The GPU engine: a prompt's uncached positions in one prefill pass of {@link GpuLlamaEngine},
 * then one batched decode step for every running request, each with its own block table. Every
 * call pins the blocks it touches in the device tier (restoring those found in a lower tier) and
 * unpins them when it returns, so between steps the cache may demote the blocks of waiting users;
 * a running request's whole sequence must fit the device tier, and a step's batch together.
 */
final class GpuServingEngine implements ServingEngine {
    private final GpuLlamaEngine engine;
    private final KvCacheManager cache;
    private final int bt;
    private long prefillTokens;
    private long prefillComputeNanos;

    GpuServingEngine(GpuLlamaEngine engine, KvCacheManager cache) {
        GpuCachedDecoder.requireFits(engine, cache);
        this.engine = engine;
        this.cache = cache;
        this.bt = cache.layout().blockTokens();
    }

    @Override
    public ServingRequest prefill(Sequence seq) {
        long start = System.nanoTime();
        int[] tokens = seq.tokens();
        if (tokens.length == 0) {
            throw new IllegalArgumentException("a prefill needs at least one prompt token");
        }
        int cached = seq.cachedTokens();
        Request r = new Request(seq, cached, CachedBlocks.perTier(cache, seq, cached / bt));
        int next;
        long computeStart;
        try (ResidencyHandle h = cache.ensureResident(seq, 0, (tokens.length - 1) / bt + 1)) {
            h.await();
            computeStart = System.nanoTime();
            next = engine.prefill(tokens, cached, tokens.length - cached, cached, h.blockTable(), LayerGate.NONE);
        }
        long end = System.nanoTime();
        seq.markWritten(tokens.length);
        cache.endStep();
        r.add(next);
        r.prefillNanos = end - start;
        prefillTokens += tokens.length - cached;
        prefillComputeNanos += end - computeStart;
        return r;
    }

    @Override
    public void decode(List<ServingRequest> batch) {
        int n = batch.size();
        Request[] rs = new Request[n];
        for (int i = 0; i < n; i++) {
            if (!(batch.get(i) instanceof Request r) || r.engine() != this) {
                throw new IllegalArgumentException(batch.get(i) + " is not a request of this engine");
            }
            rs[i] = r;
        }
        long t0 = System.nanoTime();
        int[] tokens = new int[n];
        int[] pos = new int[n];
        long[][] tables = new long[n][];
        List<ResidencyHandle> handles = new ArrayList<>(n);
        int[] next;
        try {
            for (int i = 0; i < n; i++) {
                tokens[i] = rs[i].last();
                rs[i].seq.append(tokens[i]);
                pos[i] = rs[i].seq.length() - 1;
                ResidencyHandle h = cache.ensureResident(rs[i].seq, 0, pos[i] / bt + 1);
                handles.add(h);
                tables[i] = h.blockTable();
            }
            next = engine.decode(tokens, pos, tables, LayerGate.wholeBlocks(handles));
        } finally {
            handles.forEach(ResidencyHandle::close);
        }
        for (int i = 0; i < n; i++) {
            rs[i].seq.markWritten(pos[i] + 1);
            rs[i].add(next[i]);
        }
        cache.endStep();
        long step = System.nanoTime() - t0;
        for (Request r : rs) {
            r.decodeNanos += step;   // the step's latency, which every request of the batch waited
        }
    }

    @Override
    public double prefillTokensPerSecond() {
        return prefillComputeNanos == 0 ? Double.NaN : prefillTokens / (prefillComputeNanos / 1e9);
    }

    private final class Request extends RunningRequest {
        Request(Sequence seq, int cached, int[] perTier) {
            super(seq, cached, perTier);
        }

        GpuServingEngine engine() {
            return GpuServingEngine.this;
        }

        @Override
        public void close() {
            // nothing held between calls: every call unpins what it pinned
        }
    }
}
