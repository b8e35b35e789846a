package io.kvcache.examples.gpu;

import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;

/**
 * The part of cuBLAS ({@code libcublas} of the CUDA toolkit) the engine uses, bound through JNA.
 * Handles, streams and device pointers are passed as {@code long}; every function returns a
 * {@code cublasStatus_t}. Load it through {@link Cublas#library()}.
 */
public interface CublasLibrary extends Library {

    int CUBLAS_OP_N = 0;
    int CUBLAS_OP_T = 1;

    int CUDA_R_32F = 0;
    int CUDA_R_16BF = 14;

    /** fp32 accumulation; no TF32 under the default math mode */
    int CUBLAS_COMPUTE_32F = 68;

    int CUBLAS_GEMM_DEFAULT = -1;

    int cublasCreate_v2(LongByReference handle);

    int cublasDestroy_v2(long handle);

    int cublasGetVersion_v2(long handle, IntByReference version);

    int cublasSetStream_v2(long handle, long stream);

    int cublasGemmEx(long handle, int transa, int transb, int m, int n, int k, Pointer alpha, long a, int aType,
                     int lda, long b, int bType, int ldb, Pointer beta, long c, int cType, int ldc, int computeType,
                     int algo);
}
