package io.kvcache.examples.demo;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.examples.attention.CpuAttentionBackend;
import io.kvcache.examples.engine.CachedDecoder;
import io.kvcache.examples.engine.StepListener;
import io.kvcache.examples.gpu.Cublas;
import io.kvcache.examples.gpu.EngineKernels;
import io.kvcache.examples.gpu.GpuCachedDecoder;
import io.kvcache.examples.gpu.GpuLlamaEngine;
import io.kvcache.examples.gpu.GpuWeights;
import io.kvcache.examples.gpu.Precision;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaConfig;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Locale;

/**
 * {@code --engine gpu}: the request and its prefix-reuse follow-up through the GPU engine, whole
 * sequences in a VRAM device tier over a pinned host tier; with verification (fp32) the tokens are
 * compared with the CPU engine's.
 */
final class GpuEngineDemo {
    private final DemoOptions o;
    private final PrintStream out;

    GpuEngineDemo(DemoOptions o, PrintStream out) {
        this.o = o;
        this.out = out;
    }

    int run(Checkpoint cp, CudaContext ctx, String modelId) throws UsageException {
        if (o.tokens < 1) {
            throw new UsageException("--engine gpu needs --tokens of at least 1");
        }
        LlamaConfig c = cp.config();
        Precision p = o.precision;
        int total = o.promptIds.length + o.tokens + o.followupTokens + 1;
        int blocks = total / o.blockTokens + 2;
        KvLayout layout;
        try {
            layout = new KvLayout(c.layers(), c.kvHeads(), c.headSize(), p.kvType(), o.blockTokens);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--block-tokens " + o.blockTokens + ": " + e.getMessage());
        }
        int[] generated;
        try (EngineKernels k = new EngineKernels(ctx);
             Cublas blas = new Cublas(ctx);
             GpuWeights w = GpuWeights.of(ctx, k, cp, p);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, k, blas, layout, Math.min(total, 4096), 1, blocks);
             KvCacheManager cache = KvCacheManager.builder(layout).modelId(modelId)
                     .tier(CudaDeviceTier.allocate("device", ctx, layout.blockBytes(), 2 * blocks))
                     .tier(PinnedHostTier.builder(layout, 2L * blocks * layout.blockBytes()).name("host").context(ctx)
                             .build())
                     .transferEngine(CudaTransferEngine.create(ctx)).build()) {
            out.printf(Locale.ROOT, "engine    gpu on %s, %s, cuBLAS %d; weights %.1f MB in VRAM%n", ctx, p,
                    blas.version(), w.bytes() / 1e6);
            GpuCachedDecoder decoder = new GpuCachedDecoder(engine, cache);
            GpuCachedDecoder.Result r = decoder.run(new byte[0], o.promptIds, o.tokens, false);
            generated = r.generated();
            out.printf(Locale.ROOT, "request   prompt %d tokens (%d cached), prefill %.2f ms; %d tokens decoded at %.0f tok/s%n",
                    o.promptIds.length, r.cachedTokens(), r.prefillNanos() / 1e6, o.tokens,
                    (o.tokens - 1) / Math.max(1e-9, r.decodeNanos() / 1e9));
            if (o.followupTokens > 0) {
                int[] prompt = Arrays.copyOf(o.promptIds, o.promptIds.length + generated.length);
                System.arraycopy(generated, 0, prompt, o.promptIds.length, generated.length);
                GpuCachedDecoder.Result f = decoder.run(new byte[0], prompt, o.followupTokens, false);
                out.printf(Locale.ROOT, "followup  prompt %d tokens, %d from the cache (%.2f ms to make them resident),"
                        + " %d computed in %.2f ms%n", prompt.length, f.cachedTokens(), f.restoreNanos() / 1e6,
                        prompt.length - f.cachedTokens(), f.prefillNanos() / 1e6);
            }
        }
        if (o.emitTokens != null) {
            StringBuilder sb = new StringBuilder();
            for (int t : generated) {
                sb.append(t).append('\n');
            }
            try {
                Files.writeString(o.emitTokens, sb);
            } catch (IOException e) {
                throw new UsageException("cannot write --emit-tokens " + o.emitTokens + ": " + e);
            }
            out.println("tokens    written to " + o.emitTokens);
        }
        if (!o.verify || p != Precision.FP32) {
            return 0;
        }
        int[] cpu = cpuTokens(cp, layout, modelId);
        int diff = Arrays.mismatch(cpu, generated);
        if (diff >= 0) {
            out.println("verify    FAILED: the GPU engine's token " + diff + " differs from the CPU engine's");
            return 1;
        }
        out.println("verify    the GPU engine's " + generated.length + " tokens are the CPU engine's");
        return 0;
    }

    private int[] cpuTokens(Checkpoint cp, KvLayout cpuLayoutSource, String modelId) {
        KvLayout layout = new KvLayout(cpuLayoutSource.layers(), cpuLayoutSource.kvHeads(), cpuLayoutSource.headDim(),
                Precision.FP32.kvType(), cpuLayoutSource.blockTokens());
        int slots = (o.promptIds.length + o.tokens) / layout.blockTokens() + 2;
        try (KvCacheManager cache = KvCacheManager.builder(layout).modelId(modelId)
                .tier(new SimulatedDeviceTier(layout, slots * layout.blockBytes())).build()) {
            return new CachedDecoder(new LlamaModel(cp), cache, new CpuAttentionBackend(), CachedDecoder.windowBlocks(slots),
                    false, false).run(new byte[0], o.promptIds, o.tokens, new Sampler(cp.config().vocabSize(), 0f, o.seed),
                    StepListener.NONE).generated();
        }
    }
}
