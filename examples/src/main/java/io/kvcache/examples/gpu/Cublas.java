package io.kvcache.examples.gpu;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;
import io.kvcache.nativ.cuda.CudaContext;
import java.util.ArrayList;
import java.util.List;

/**
 * One cuBLAS handle in a CUDA context, and the row-major projections of the engine on it:
 * {@code Y[rows][out] = X[rows][in] . W[out][in]^T (+ Y)}, inputs fp32 or bf16, output fp32,
 * fp32 accumulation.
 *
 * <p>The library is found, in this order, at the path in the system property
 * {@value #LIBRARY_PROPERTY}, at the path in the environment variable {@value #LIBRARY_ENV}, then
 * under the names {@code cublas}, {@code libcublas.so.13}, {@code libcublas.so.12} on the library
 * path and in {@code /usr/local/cuda/lib64}. Not thread-safe: one handle per engine.
 */
public final class Cublas implements AutoCloseable {
    /** System property naming the cuBLAS shared library to load. */
    public static final String LIBRARY_PROPERTY = "kvcache.cublas.library";
    /** Environment variable naming the cuBLAS shared library to load. */
    public static final String LIBRARY_ENV = "KVCACHE_CUBLAS_LIBRARY";

    private static volatile CublasLibrary lib;

    private final CudaContext context;
    private final long handle;
    private final Memory one = new Memory(4);
    private final Memory zero = new Memory(4);
    private boolean closed;

    /**
     * Creates a handle in {@code context}, whose work goes to the context's legacy default stream.
     *
     * @throws CublasUnavailableException if the library cannot be loaded
     */
    public Cublas(CudaContext context) {
        this.context = context;
        CublasLibrary l = library();
        context.makeCurrent();
        LongByReference h = new LongByReference();
        check(l.cublasCreate_v2(h), "cublasCreate");
        handle = h.getValue();
        check(l.cublasSetStream_v2(handle, 0L), "cublasSetStream");
        one.setFloat(0, 1f);
        zero.setFloat(0, 0f);
    }

    /**
     * @return the loaded library
     * @throws CublasUnavailableException naming the paths tried when none loads
     */
    public static CublasLibrary library() {
        CublasLibrary l = lib;
        if (l != null) {
            return l;
        }
        synchronized (Cublas.class) {
            if (lib != null) {
                return lib;
            }
            lib = load(System.getProperty(LIBRARY_PROPERTY), System.getenv(LIBRARY_ENV));
            return lib;
        }
    }

    /**
     * Loads cuBLAS from {@code property} if set, else from {@code env} if set, else from the
     * default names.
     *
     * @throws CublasUnavailableException naming every path tried when none loads
     */
    static CublasLibrary load(String property, String env) {
        List<String> names = new ArrayList<>();
        if (property != null && !property.isBlank()) {
            names.add(property);
        } else if (env != null && !env.isBlank()) {
            names.add(env);
        } else {
            names.addAll(List.of("cublas", "libcublas.so.13", "libcublas.so.12",
                    "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so"));
        }
        Throwable last = null;
        for (String n : names) {
            try {
                return Native.load(n, CublasLibrary.class);
            } catch (UnsatisfiedLinkError e) {
                last = e;
            }
        }
        throw new CublasUnavailableException("cuBLAS could not be loaded from " + String.join(", ", names)
                + "; set -D" + LIBRARY_PROPERTY + "=/path/to/libcublas.so (or " + LIBRARY_ENV
                + ") to the CUDA toolkit's library", last);
    }

    /** @return the library's version, e.g. 130000 */
    public int version() {
        IntByReference v = new IntByReference();
        check(library().cublasGetVersion_v2(handle, v), "cublasGetVersion");
        return v.getValue();
    }

    /**
     * Enqueues {@code y = x . w^T} (or {@code y += x . w^T} when {@code accumulate}), all row-major:
     * {@code x [rows][in]}, {@code w [out][in]} (both of {@code inType}), {@code y [rows][out]} fp32.
     *
     * @param inType {@link CublasLibrary#CUDA_R_32F} or {@link CublasLibrary#CUDA_R_16BF}
     */
    public void project(long y, long x, long w, int rows, int in, int out, int inType, boolean accumulate) {
        check(library().cublasGemmEx(handle, CublasLibrary.CUBLAS_OP_T, CublasLibrary.CUBLAS_OP_N, out, rows, in,
                one, w, inType, in, x, inType, in, accumulate ? one : zero, y, CublasLibrary.CUDA_R_32F, out,
                CublasLibrary.CUBLAS_COMPUTE_32F, CublasLibrary.CUBLAS_GEMM_DEFAULT),
                "cublasGemmEx(" + rows + "x" + in + " . " + out + "x" + in + "^T)");
    }

    private static void check(int status, String call) {
        if (status != 0) {
            throw new IllegalStateException(call + " failed with cublasStatus " + status);
        }
    }

    /** @return the context of the handle */
    public CudaContext context() {
        return context;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            context.makeCurrent();
            library().cublasDestroy_v2(handle);
        }
    }
}
