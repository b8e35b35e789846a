package io.kvcache.examples.gpu;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.LongByReference;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The engine's kernels ({@code llama_engine.cu}) loaded into one context from the PTX resource
 * {@code llama_engine.compute_90.ptx}, and a reusable argument block to launch them. The PTX is
 * looked up on the class path, so a freshly built file placed ahead of the jar replaces the one
 * inside it. Needs compute capability 9.0 or later. Not thread-safe (the argument block).
 */
public final class EngineKernels implements AutoCloseable {
    private static final String PTX = "llama_engine.compute_90.ptx";
    private static final int MAX_ARGS = 24;

    private final CudaContext context;
    private final long module;
    final long embedF32;
    final long embedBf16;
    final long rmsnormF32;
    final long rmsnormBf16;
    final long ropeStore;
    final long swiglu;
    final long argmaxRows;
    final long decodeF32;
    final long decodeBf16;
    final long combine;
    final long prefillMmaBf16;
    final long fillUniformBf16;
    final long fillUniformF32;
    final long fillF32;
    final long f32ToBf16;

    private final Memory values = new Memory(MAX_ARGS * 8L);
    private final Memory pointers = new Memory(MAX_ARGS * (long) Native.POINTER_SIZE);
    private int count;
    private boolean closed;

    /**
     * @throws IllegalStateException when the device is older than compute capability 9.0 or the PTX is missing
     */
    public EngineKernels(CudaContext context) {
        if (context.computeMajor() < 9) {
            throw new IllegalStateException("the GPU engine's kernels are built for compute capability 9.0 and later; "
                    + context + " is " + context.computeMajor() + "." + context.computeMinor());
        }
        this.context = context;
        byte[] ptx = resource(PTX);
        Memory image = new Memory(ptx.length + 1L);
        image.write(0, ptx, 0, ptx.length);
        image.setByte(ptx.length, (byte) 0);
        context.makeCurrent();
        LongByReference m = new LongByReference();
        context.check(Cuda.driver().cuModuleLoadData(m, image), "cuModuleLoadData(" + PTX + ")");
        module = m.getValue();
        embedF32 = function("embed_f32");
        embedBf16 = function("embed_bf16");
        rmsnormF32 = function("rmsnorm_f32");
        rmsnormBf16 = function("rmsnorm_bf16");
        ropeStore = function("rope_store");
        swiglu = function("swiglu");
        argmaxRows = function("argmax_rows");
        decodeF32 = function("attn_decode_f32");
        decodeBf16 = function("attn_decode_bf16");
        combine = function("attn_combine");
        prefillMmaBf16 = function("attn_prefill_mma_bf16");
        fillUniformBf16 = function("fill_uniform_bf16");
        fillUniformF32 = function("fill_uniform_f32");
        fillF32 = function("fill_f32");
        f32ToBf16 = function("f32_to_bf16");
        for (int i = 0; i < MAX_ARGS; i++) {
            pointers.setPointer((long) i * Native.POINTER_SIZE, values.share(i * 8L));
        }
    }

    private long function(String name) {
        LongByReference f = new LongByReference();
        context.check(Cuda.driver().cuModuleGetFunction(f, module, name), "cuModuleGetFunction(" + name + ")");
        return f.getValue();
    }

    private static byte[] resource(String name) {
        try (InputStream in = EngineKernels.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("PTX resource " + name + " missing from the class path");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading PTX resource " + name, e);
        }
    }

    /** Starts the arguments of the next launch. */
    EngineKernels args() {
        count = 0;
        return this;
    }

    /** Adds a 64-bit argument (a device pointer, a {@code long long}). */
    EngineKernels i64(long v) {
        values.setLong(slot(), v);
        return this;
    }

    /** Adds a 32-bit integer argument. */
    EngineKernels i32(int v) {
        values.setInt(slot(), v);
        return this;
    }

    /** Adds a float argument. */
    EngineKernels f32(float v) {
        values.setFloat(slot(), v);
        return this;
    }

    private long slot() {
        if (count == MAX_ARGS) {
            throw new IllegalStateException("more than " + MAX_ARGS + " kernel arguments");
        }
        return 8L * count++;
    }

    /** Launches {@code function} with the arguments added since {@link #args()} on the legacy default stream. */
    void launch(long function, String name, int gridX, int gridY, int gridZ, int block, int sharedBytes) {
        CuLib cu = Cuda.driver();
        context.check(cu.cuLaunchKernel(function, gridX, gridY, gridZ, block, 1, 1, sharedBytes, 0L, pointers,
                Pointer.NULL), "cuLaunchKernel(" + name + ")");
    }

    /**
     * Enqueues uniform values in [-scale, scale) from a counter-based hash of {@code seed} and the
     * index into {@code n} elements at {@code ptr}, of the precision's weight type (K/V type too).
     */
    public void fillUniform(long ptr, long n, Precision precision, long seed, float scale) {
        args().i64(ptr).i64(n).i64(seed).f32(scale);
        launch(precision == Precision.FP32 ? fillUniformF32 : fillUniformBf16, "fill_uniform", gridFor(n), 1, 1, 256, 0);
    }

    /** @return a grid-stride launch's CTAs of 256 threads for {@code n} elements */
    static int gridFor(long n) {
        return (int) Math.max(1, Math.min((n + 255) / 256, 132L * 16));
    }

    /** @return the context the module lives in */
    public CudaContext context() {
        return context;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            context.makeCurrent();
            Cuda.driver().cuModuleUnload(module);
        }
    }
}
