package io.kvcache.nativ.cuda;

/** {@code CUDA_ERROR_OUT_OF_MEMORY}: device or pinned host memory could not be obtained. */
public final class CudaOutOfMemoryException extends CudaException {
    CudaOutOfMemoryException(String call, int code, String description) {
        super(call, code, description);
    }
}
