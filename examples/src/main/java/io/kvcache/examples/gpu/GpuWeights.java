package io.kvcache.examples.gpu;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaWeights;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import java.util.ArrayList;
import java.util.List;

/**
 * A model's weights resident in VRAM, in the engine's {@link Precision}. The projections of a
 * layer are fused: {@code wqkv [qkvDim][dim]} (wq, wk, wv stacked), {@code w13 [2 hidden][dim]}
 * (gate w1, then up w3), {@code wo [dim][dim]}, {@code w2 [dim][hidden]}; each tensor holds every
 * layer back to back. Norm weights are fp32. Either read from a llama2.c checkpoint (converted on
 * the device) or generated on the device from a seed ({@link #synthetic}), so that model shapes of
 * many gigabytes need no file.
 */
public final class GpuWeights implements AutoCloseable {
    private final CudaContext context;
    private final ModelShape shape;
    private final Precision precision;
    private final List<Long> allocations = new ArrayList<>();
    final long embedding;
    final long classifier;
    final long rmsAtt;
    final long rmsFfn;
    final long rmsFinal;
    final long wqkv;
    final long wo;
    final long w13;
    final long w2;
    private long bytes;
    private boolean closed;

    private GpuWeights(CudaContext context, ModelShape shape, Precision precision) {
        this.context = context;
        this.shape = shape;
        this.precision = precision;
        long d = shape.dim();
        long l = shape.layers();
        int e = precision.bytes();
        embedding = alloc((long) shape.vocab() * d * e);
        classifier = shape.sharedClassifier() ? embedding : alloc((long) shape.vocab() * d * e);
        rmsAtt = alloc(l * d * 4);
        rmsFfn = alloc(l * d * 4);
        rmsFinal = alloc(d * 4);
        wqkv = alloc(l * shape.qkvDim() * d * e);
        wo = alloc(l * d * d * e);
        w13 = alloc(l * 2L * shape.hidden() * d * e);
        w2 = alloc(l * d * shape.hidden() * e);
    }

    private long alloc(long n) {
        long p = context.allocate(n);
        allocations.add(p);
        bytes += n;
        return p;
    }

    /**
     * Random weights of a shape, generated on the device: uniform with variance {@code 1/in} for
     * each projection (activations keep their scale through the layers), embeddings uniform in
     * [-1, 1), norm weights 1.
     */
    public static GpuWeights synthetic(CudaContext context, EngineKernels k, ModelShape shape, Precision precision,
                                       long seed) {
        GpuWeights w = new GpuWeights(context, shape, precision);
        try {
            long d = shape.dim();
            long l = shape.layers();
            w.fill(k, w.embedding, (long) shape.vocab() * d, seed, 1f);
            if (!shape.sharedClassifier()) {
                w.fill(k, w.classifier, (long) shape.vocab() * d, seed + 1, uniformScale(d));
            }
            w.fill(k, w.wqkv, l * shape.qkvDim() * d, seed + 2, uniformScale(d));
            w.fill(k, w.wo, l * d * d, seed + 3, uniformScale(d));
            w.fill(k, w.w13, l * 2L * shape.hidden() * d, seed + 4, uniformScale(d));
            w.fill(k, w.w2, l * d * shape.hidden(), seed + 5, uniformScale(shape.hidden()));
            constant(k, w.rmsAtt, l * d, 1f);
            constant(k, w.rmsFfn, l * d, 1f);
            constant(k, w.rmsFinal, d, 1f);
            context.check(Cuda.driver().cuCtxSynchronize(), "cuCtxSynchronize after generating weights");
            return w;
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    /** Reads a llama2.c checkpoint's weights into VRAM, converting them to {@code precision} on the device. */
    public static GpuWeights of(CudaContext context, EngineKernels k, Checkpoint cp, Precision precision) {
        ModelShape shape = ModelShape.of(cp.name(), cp.config());
        GpuWeights w = new GpuWeights(context, shape, precision);
        try {
            LlamaWeights lw = cp.weights();
            int d = shape.dim();
            int kv = shape.kvDim();
            int h = shape.hidden();
            long stageFloats = Math.max((long) shape.vocab() * d, (long) Math.max(shape.qkvDim(), 2 * h) * d);
            long stage = precision == Precision.FP32 ? 0 : context.allocate(stageFloats * 4);
            try (Memory host = new Memory(stageFloats * 4)) {
                Uploader up = new Uploader(context, k, precision, host, stage);
                up.put(w.embedding, 0, lw.tokenEmbedding(), 0, shape.vocab() * d);
                if (!shape.sharedClassifier()) {
                    up.put(w.classifier, 0, lw.classifier(), 0, shape.vocab() * d);
                }
                int e = precision.bytes();
                for (int l = 0; l < shape.layers(); l++) {
                    long qkvAt = (long) l * shape.qkvDim() * d * e;
                    up.put(w.wqkv, qkvAt, lw.wq(), l * d * d, d * d);
                    up.put(w.wqkv, qkvAt + (long) d * d * e, lw.wk(), l * kv * d, kv * d);
                    up.put(w.wqkv, qkvAt + (long) (d + kv) * d * e, lw.wv(), l * kv * d, kv * d);
                    up.put(w.wo, (long) l * d * d * e, lw.wo(), l * d * d, d * d);
                    long w13At = (long) l * 2 * h * d * e;
                    up.put(w.w13, w13At, lw.w1(), l * h * d, h * d);
                    up.put(w.w13, w13At + (long) h * d * e, lw.w3(), l * h * d, h * d);
                    up.put(w.w2, (long) l * d * h * e, lw.w2(), l * d * h, d * h);
                }
                Uploader f32 = new Uploader(context, k, Precision.FP32, host, 0);
                f32.put(w.rmsAtt, 0, lw.rmsAtt(), 0, shape.layers() * d);
                f32.put(w.rmsFfn, 0, lw.rmsFfn(), 0, shape.layers() * d);
                f32.put(w.rmsFinal, 0, lw.rmsFinal(), 0, d);
            } finally {
                if (stage != 0) {
                    context.free(stage);
                }
            }
            return w;
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    /** Copies float arrays into device tensors, converting to bf16 through a staging buffer when asked. */
    private record Uploader(CudaContext context, EngineKernels k, Precision precision, Memory host, long stage) {
        void put(long dst, long dstByteOffset, float[] src, int from, int n) {
            host.write(0, src, from, n);
            long bytes = n * 4L;
            if (precision == Precision.FP32) {
                context.check(Cuda.driver().cuMemcpyHtoD_v2(dst + dstByteOffset, Pointer.nativeValue(host), bytes),
                        "cuMemcpyHtoD(weights)");
            } else {
                context.check(Cuda.driver().cuMemcpyHtoD_v2(stage, Pointer.nativeValue(host), bytes),
                        "cuMemcpyHtoD(weights)");
                k.args().i64(stage).i64(dst + dstByteOffset).i64(n);
                k.launch(k.f32ToBf16, "f32_to_bf16", EngineKernels.gridFor(n), 1, 1, 256, 0);
                context.check(Cuda.driver().cuCtxSynchronize(), "cuCtxSynchronize after f32_to_bf16");
            }
        }
    }

    private static float uniformScale(long in) {
        return (float) Math.sqrt(3.0 / in);
    }

    private void fill(EngineKernels k, long p, long n, long seed, float scale) {
        k.fillUniform(p, n, precision, seed, scale);
    }

    private static void constant(EngineKernels k, long p, long n, float v) {
        k.args().i64(p).i64(n).f32(v);
        k.launch(k.fillF32, "fill_f32", EngineKernels.gridFor(n), 1, 1, 256, 0);
    }

    /** @return the model's shape */
    public ModelShape shape() {
        return shape;
    }

    /** @return the number format of the weights */
    public Precision precision() {
        return precision;
    }

    /** @return bytes of VRAM the weights take */
    public long bytes() {
        return bytes;
    }

    /** @return bytes a decode step reads: every projection of every layer and the classifier */
    public long bytesReadPerStep() {
        return shape.matmulParams() * precision.bytes() + (2L * shape.layers() + 1) * shape.dim() * 4;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            for (long p : allocations) {
                context.free(p);
            }
            allocations.clear();
        }
    }
}
