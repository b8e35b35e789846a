package io.kvcache.examples.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.examples.gpu.Cublas;
import io.kvcache.examples.gpu.EngineKernels;
import io.kvcache.examples.gpu.GpuLlamaEngine;
import io.kvcache.examples.gpu.GpuWeights;
import io.kvcache.examples.gpu.ModelShape;
import io.kvcache.examples.gpu.Precision;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.ModelId;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import java.util.Locale;
import java.util.function.Function;

/**
 * The GPU platform: {@link GpuLlamaEngine} on one CUDA device (weights in VRAM, synthetic ones of a
 * named {@link ModelShape} or a llama2.c checkpoint), a CUDA device tier its kernels read and
 * write, a pinned host tier below it and batched CUDA copies between them
 * ({@link CudaTransferEngine}, calibrated for the block size). One engine serves every cache built
 * on the platform, one cache at a time.
 *
 * <p>Prefill computes a prompt's uncached positions in one pass (in chunks of at most
 * {@code maxPrefillRows}); a restored prefix is not computed again. The floats of a position
 * depend on how its prompt was split between cache and prefill (cuBLAS picks kernels by the
 * number of rows, decode steps run other kernels than prefill), so two configurations that
 * computed a history differently may sample different tokens: {@link #splitInvariant()} is false.
 */
public final class GpuServingPlatform implements ServingPlatform {
    private final CudaContext context;
    private final KvLayout layout;
    private final String modelId;
    private final String name;
    private final EngineKernels kernels;
    private final Cublas blas;
    private final GpuWeights weights;
    private final GpuLlamaEngine engine;

    private GpuServingPlatform(CudaContext context, KvLayout layout, String modelId, String name, EngineKernels kernels,
                               Cublas blas, GpuWeights weights, int maxPrefillRows, int maxBatch, int maxContextTokens) {
        this.context = context;
        this.layout = layout;
        this.modelId = modelId;
        this.kernels = kernels;
        this.blas = blas;
        this.weights = weights;
        GpuLlamaEngine e = null;
        try {
            e = new GpuLlamaEngine(weights, kernels, blas, layout, Math.max(maxPrefillRows, maxBatch), maxBatch,
                    (maxContextTokens + layout.blockTokens() - 1) / layout.blockTokens() + 1);
        } finally {
            if (e == null) {
                weights.close();
                blas.close();
                kernels.close();
            }
        }
        this.engine = e;
        this.name = String.format(Locale.ROOT, "gpu %s, %s, %s weights %.1f GB, cuBLAS %d", context, name,
                weights.precision().name().toLowerCase(Locale.ROOT), weights.bytes() / 1e9, blas.version());
    }

    /**
     * Synthetic weights of a shape, generated on the device (bf16).
     *
     * @param context          the device
     * @param shape            the model
     * @param blockTokens      tokens per KV block
     * @param maxContextTokens longest sequence a request may reach
     * @param maxBatch         most requests of one decode step
     * @param maxPrefillRows   most prompt positions of one forward pass (longer prompts go in chunks)
     * @throws IllegalArgumentException when the block size or the limits do not fit
     */
    public static GpuServingPlatform synthetic(CudaContext context, ModelShape shape, int blockTokens,
                                               int maxContextTokens, int maxBatch, int maxPrefillRows) {
        Precision p = Precision.BF16;
        KvLayout layout = new KvLayout(shape.layers(), shape.kvHeads(), shape.headSize(), p.kvType(), blockTokens);
        return create(context, layout, "synthetic-" + shape.name() + "-seed42-" + p, "synthetic " + shape.name(),
                k -> GpuWeights.synthetic(context, k, shape, p, 42), maxPrefillRows, maxBatch, maxContextTokens);
    }

    /**
     * A llama2.c checkpoint's weights.
     *
     * @param precision fp32 (for exactness tests) or bf16
     * @see #synthetic
     */
    public static GpuServingPlatform of(CudaContext context, Checkpoint checkpoint, Precision precision, int blockTokens,
                                        int maxContextTokens, int maxBatch, int maxPrefillRows) {
        ModelShape shape = ModelShape.of(checkpoint.name(), checkpoint.config());
        KvLayout layout = new KvLayout(shape.layers(), shape.kvHeads(), shape.headSize(), precision.kvType(), blockTokens);
        return create(context, layout, ModelId.of(checkpoint) + "-" + precision, checkpoint.name(),
                k -> GpuWeights.of(context, k, checkpoint, precision), maxPrefillRows, maxBatch, maxContextTokens);
    }

    private static GpuServingPlatform create(CudaContext context, KvLayout layout, String modelId, String name,
                                             Function<EngineKernels, GpuWeights> weights, int maxPrefillRows,
                                             int maxBatch, int maxContextTokens) {
        EngineKernels k = new EngineKernels(context);
        Cublas blas = null;
        GpuWeights w = null;
        try {
            blas = new Cublas(context);
            w = weights.apply(k);
        } finally {
            if (w == null) {
                if (blas != null) {
                    blas.close();
                }
                k.close();
            }
        }
        return new GpuServingPlatform(context, layout, modelId, name, k, blas, w, maxPrefillRows, maxBatch,
                maxContextTokens);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public String modelId() {
        return modelId;
    }

    @Override
    public int vocabSize() {
        return weights.shape().vocab();
    }

    @Override
    public boolean splitInvariant() {
        return false;
    }

    @Override
    public Tier deviceTier(int slots) {
        return CudaDeviceTier.allocate("device", context, layout.blockBytes(), slots);
    }

    @Override
    public Tier hostTier(int slots) {
        return PinnedHostTier.builder(layout, (long) slots * layout.blockBytes()).name("host").context(context).build();
    }

    @Override
    public TransferEngine transferEngine() {
        return CudaTransferEngine.builder(context).calibrate(layout.blockBytes()).build();
    }

    @Override
    public ServingEngine engine(KvCacheManager cache) {
        return new GpuServingEngine(engine, cache);
    }

    @Override
    public void close() {
        engine.close();
        weights.close();
        blas.close();
        kernels.close();
    }
}
