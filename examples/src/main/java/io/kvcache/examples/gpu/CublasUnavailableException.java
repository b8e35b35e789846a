package io.kvcache.examples.gpu;

/** cuBLAS could not be loaded: the message names every library path tried and how to point at one. */
public final class CublasUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CublasUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
