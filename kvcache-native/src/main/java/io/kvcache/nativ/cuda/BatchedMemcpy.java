package io.kvcache.nativ.cuda;

import com.sun.jna.Function;
import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;

/**
 * The driver's batched copy, {@code cuMemcpyBatchAsync}, looked up through
 * {@code cuGetProcAddress} because older drivers lack it and CUDA 13 changed its signature (the
 * 12.8 form has a {@code failIdx} out-parameter, the 13.0 form has not).
 */
public final class BatchedMemcpy {

    /** {@code CU_MEMCPY_SRC_ACCESS_ORDER_STREAM}: sources are read in stream order. */
    public static final int SRC_ACCESS_ORDER_STREAM = 1;
    /** {@code CU_MEMCPY_SRC_ACCESS_ORDER_ANY}: sources may be read out of stream order, until the copy completes. */
    public static final int SRC_ACCESS_ORDER_ANY = 3;
    /** {@code CU_MEM_LOCATION_TYPE_DEVICE}. */
    public static final int LOCATION_DEVICE = 1;
    /** {@code CU_MEM_LOCATION_TYPE_HOST}. */
    public static final int LOCATION_HOST = 2;
    /** Bytes of one {@code CUmemcpyAttributes}. */
    public static final int ATTRIBUTES_BYTES = 24;

    private final Function function;
    private final boolean withFailIndex;
    private final String unavailableReason;

    private BatchedMemcpy(Function function, boolean withFailIndex, String unavailableReason) {
        this.function = function;
        this.withFailIndex = withFailIndex;
        this.unavailableReason = unavailableReason;
    }

    static BatchedMemcpy resolve(CudaContext context) {
        int driver = Cuda.driverVersion();
        if (driver < 12080) {
            return new BatchedMemcpy(null, false, "driver CUDA version " + driver + " predates cuMemcpyBatchAsync (12.8)");
        }
        int asked = driver >= 13000 ? 13000 : 12080;
        PointerByReference fn = new PointerByReference();
        IntByReference status = new IntByReference();
        int rc = Cuda.driver().cuGetProcAddress_v2("cuMemcpyBatchAsync", fn, asked, 0L, status);
        if (rc != 0 || fn.getValue() == null || status.getValue() != 0) {
            return new BatchedMemcpy(null, false, "cuGetProcAddress(cuMemcpyBatchAsync, " + asked + ") gave "
                    + CuResult.of(rc).cName() + ", symbol status " + status.getValue());
        }
        return new BatchedMemcpy(Function.getFunction(fn.getValue()), asked < 13000, null);
    }

    /** @return whether the driver offers the batched copy */
    public boolean available() {
        return function != null;
    }

    /** @return why the batched copy is unavailable, or null */
    public String unavailableReason() {
        return unavailableReason;
    }

    /**
     * Fills one {@code CUmemcpyAttributes} at {@code attributes}: stream-ordered source access and
     * location hints for the two sides.
     */
    public static void fillAttributes(Pointer attributes, int srcLocationType, int srcId, int dstLocationType,
                                      int dstId) {
        attributes.setInt(0, SRC_ACCESS_ORDER_STREAM);
        attributes.setInt(4, srcLocationType);
        attributes.setInt(8, srcId);
        attributes.setInt(12, dstLocationType);
        attributes.setInt(16, dstId);
        attributes.setInt(20, 0);
    }

    /**
     * Enqueues {@code count} copies with one set of attributes.
     *
     * @param dsts       native array of {@code count} destination addresses
     * @param srcs       native array of {@code count} source addresses
     * @param sizes      native array of {@code count} sizes in bytes
     * @param attributes one {@code CUmemcpyAttributes}
     * @param attrIndex  native {@code size_t} holding 0
     * @param failIndex  native {@code size_t} scratch (used by 12.x drivers only)
     */
    public void copy(CudaContext context, Pointer dsts, Pointer srcs, Pointer sizes, long count, Pointer attributes,
                     Pointer attrIndex, Memory failIndex, long stream) {
        if (function == null) {
            throw new UnsupportedOperationException("cuMemcpyBatchAsync unavailable: " + unavailableReason);
        }
        int rc = withFailIndex
                ? function.invokeInt(new Object[] {dsts, srcs, sizes, count, attributes, attrIndex, 1L, failIndex, stream})
                : function.invokeInt(new Object[] {dsts, srcs, sizes, count, attributes, attrIndex, 1L, stream});
        context.check(rc, "cuMemcpyBatchAsync(" + count + " copies)");
    }
}
