package io.kvcache.nativ.cuda;

/**
 * A CUDA driver call returned an error. The message names the call, the {@code CUresult}
 * enumerator, its number and the driver's description.
 */
public class CudaException extends RuntimeException {
    private final CuResult result;
    private final int code;
    private final String call;

    CudaException(String call, int code, String description) {
        super(call + " failed: " + CuResult.of(code).cName() + " (" + code + ")"
                + (description == null ? "" : ": " + description)
                + (CuResult.of(code).sticky() ? " [sticky: the context is unusable]" : ""));
        this.result = CuResult.of(code);
        this.code = code;
        this.call = call;
    }

    /**
     * Builds the exception subclass for a result code.
     *
     * @param call        the driver function that failed, e.g. {@code cuMemAlloc}
     * @param code        its return value
     * @param description the driver's text for the code, or null
     */
    public static CudaException of(String call, int code, String description) {
        return CuResult.of(code) == CuResult.OUT_OF_MEMORY
                ? new CudaOutOfMemoryException(call, code, description)
                : new CudaException(call, code, description);
    }

    /** @return the named result */
    public CuResult result() {
        return result;
    }

    /** @return the raw return value (kept for codes {@link CuResult} does not list) */
    public int code() {
        return code;
    }

    /** @return the driver function that failed */
    public String call() {
        return call;
    }

    /** @return whether the error poisoned the context (see {@link CuResult#sticky()}) */
    public boolean sticky() {
        return result.sticky();
    }
}
