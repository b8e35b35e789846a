package io.kvcache.examples.gpu;

import io.kvcache.core.layout.DType;

/**
 * Number format of the engine: weights, the inputs of the projections and the K/V in the cache.
 * The residual stream, the norms, the softmax and every accumulation stay fp32 in both.
 */
public enum Precision {
    /** fp32 throughout, rounding as llama2.c where the order allows: for exactness tests. */
    FP32(DType.FP32, CublasLibrary.CUDA_R_32F, 4),
    /** bf16 weights, activations into the projections and K/V; fp32 accumulation; tensor cores. */
    BF16(DType.BF16, CublasLibrary.CUDA_R_16BF, 2);

    private final DType kvType;
    private final int cudaType;
    private final int bytes;

    Precision(DType kvType, int cudaType, int bytes) {
        this.kvType = kvType;
        this.cudaType = cudaType;
        this.bytes = bytes;
    }

    /** @return the element type of the K/V blocks in the cache */
    public DType kvType() {
        return kvType;
    }

    /** @return the cuBLAS data type of weights and projection inputs */
    int cudaType() {
        return cudaType;
    }

    /** @return bytes per weight */
    public int bytes() {
        return bytes;
    }
}
