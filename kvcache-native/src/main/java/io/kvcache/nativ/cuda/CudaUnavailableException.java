package io.kvcache.nativ.cuda;

/**
 * CUDA cannot be used in this process: the driver library did not load, {@code cuInit} failed,
 * or there is no device. Thrown only when CUDA is actually used; nothing else depends on it.
 */
public final class CudaUnavailableException extends RuntimeException {
    public CudaUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
