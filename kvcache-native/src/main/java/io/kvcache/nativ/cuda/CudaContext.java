package io.kvcache.nativ.cuda;

import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The primary context of one CUDA device, shared by everything in the process that uses that
 * device (one device tier per ordinal, any number of ordinals). A thread calls
 * {@link #makeCurrent()} before driver calls; the classes of this module do so themselves.
 *
 * <p>A sticky error seen by any call checked through {@link #check} marks the context failed:
 * from then on {@link #failed()} is true and {@link #failure()} says what happened.
 */
public final class CudaContext {

    private static final ConcurrentMap<Integer, CudaContext> PRIMARY = new ConcurrentHashMap<>();

    private final int ordinal;
    private final int device;
    private final long handle;
    private final String name;
    private final int computeMajor;
    private final int computeMinor;
    private final int multiprocessors;
    private final long totalMemory;
    private final boolean unifiedAddressing;
    private final boolean hostPointerIsDevicePointer;
    private volatile CudaException failure;
    private volatile CopyKernels kernels;
    private volatile BatchedMemcpy batchedMemcpy;

    private CudaContext(int ordinal) {
        CuLib cu = Cuda.driver();
        int count = Cuda.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new IllegalArgumentException("CUDA device ordinal " + ordinal + " outside [0, " + count + ")");
        }
        IntByReference dev = new IntByReference();
        Cuda.check(cu.cuDeviceGet(dev, ordinal), "cuDeviceGet");
        this.ordinal = ordinal;
        this.device = dev.getValue();
        byte[] nameBytes = new byte[256];
        Cuda.check(cu.cuDeviceGetName(nameBytes, nameBytes.length, device), "cuDeviceGetName");
        int len = 0;
        while (len < nameBytes.length && nameBytes[len] != 0) {
            len++;
        }
        this.name = new String(nameBytes, 0, len, StandardCharsets.US_ASCII);
        this.computeMajor = attribute(cu, CuLib.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.computeMinor = attribute(cu, CuLib.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = attribute(cu, CuLib.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        this.unifiedAddressing = attribute(cu, CuLib.CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING) != 0;
        this.hostPointerIsDevicePointer = unifiedAddressing
                && attribute(cu, CuLib.CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM) != 0;
        LongByReference total = new LongByReference();
        Cuda.check(cu.cuDeviceTotalMem_v2(total, device), "cuDeviceTotalMem");
        this.totalMemory = total.getValue();
        LongByReference ctx = new LongByReference();
        Cuda.check(cu.cuDevicePrimaryCtxRetain(ctx, device), "cuDevicePrimaryCtxRetain");
        this.handle = ctx.getValue();
    }

    private int attribute(CuLib cu, int attribute) {
        IntByReference v = new IntByReference();
        Cuda.check(cu.cuDeviceGetAttribute(v, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
        return v.getValue();
    }

    /**
     * The primary context of a device, retained on first use and kept for the life of the process.
     *
     * @param ordinal device ordinal in [0, {@link Cuda#deviceCount()})
     * @throws CudaUnavailableException if CUDA cannot be used on this host
     * @throws IllegalArgumentException if the ordinal names no device
     */
    public static CudaContext device(int ordinal) {
        CudaContext c = PRIMARY.get(ordinal);
        if (c != null) {
            return c;
        }
        synchronized (PRIMARY) {
            return PRIMARY.computeIfAbsent(ordinal, CudaContext::new);
        }
    }

    /** Makes this context current on the calling thread. */
    public void makeCurrent() {
        check(Cuda.driver().cuCtxSetCurrent(handle), "cuCtxSetCurrent");
    }

    /**
     * Turns a driver return value into an exception; a sticky error also marks this context
     * failed.
     *
     * @throws CudaException if {@code result} is not {@code CUDA_SUCCESS}
     */
    public void check(int result, String call) {
        if (result != 0) {
            CudaException e = CudaException.of(call, result, Cuda.describe(result));
            if (e.sticky()) {
                markFailed(e);
            }
            throw e;
        }
    }

    /** Records a sticky error; the first one recorded is kept. */
    public void markFailed(CudaException e) {
        synchronized (this) {
            if (failure == null) {
                failure = e;
            }
        }
    }

    /** @return true once a sticky error has poisoned this context */
    public boolean failed() {
        return failure != null;
    }

    /** @return the sticky error that poisoned the context, or null */
    public CudaException failure() {
        return failure;
    }

    /** @return the copy kernels loaded into this context (loaded on first use) */
    public CopyKernels copyKernels() {
        CopyKernels k = kernels;
        if (k == null) {
            synchronized (this) {
                k = kernels;
                if (k == null) {
                    k = CopyKernels.load(this);
                    kernels = k;
                }
            }
        }
        return k;
    }

    /** @return the driver's batched copy, resolved on first use; check {@link BatchedMemcpy#available()} */
    public BatchedMemcpy batchedMemcpy() {
        BatchedMemcpy b = batchedMemcpy;
        if (b == null) {
            synchronized (this) {
                b = batchedMemcpy;
                if (b == null) {
                    b = BatchedMemcpy.resolve(this);
                    batchedMemcpy = b;
                }
            }
        }
        return b;
    }

    /**
     * Allocates device memory.
     *
     * @param bytes size in bytes
     * @return the device pointer
     * @throws CudaOutOfMemoryException if the device has not that much free memory
     */
    public long allocate(long bytes) {
        makeCurrent();
        LongByReference p = new LongByReference();
        check(Cuda.driver().cuMemAlloc_v2(p, bytes), "cuMemAlloc(" + bytes + " bytes)");
        return p.getValue();
    }

    /** Frees memory from {@link #allocate}. */
    public void free(long devicePointer) {
        makeCurrent();
        check(Cuda.driver().cuMemFree_v2(devicePointer), "cuMemFree");
    }

    /** @return {free, total} device memory in bytes */
    public long[] memoryInfo() {
        makeCurrent();
        LongByReference free = new LongByReference();
        LongByReference total = new LongByReference();
        check(Cuda.driver().cuMemGetInfo_v2(free, total), "cuMemGetInfo");
        return new long[] {free.getValue(), total.getValue()};
    }

    /**
     * Allocates page-locked host memory that every context can use and every device can map
     * ({@code cuMemHostAlloc} with {@code PORTABLE | DEVICEMAP}).
     *
     * @param bytes size in bytes
     * @return the host address
     * @throws CudaOutOfMemoryException if the driver cannot pin that much
     */
    public long hostAllocate(long bytes) {
        makeCurrent();
        LongByReference p = new LongByReference();
        check(Cuda.driver().cuMemHostAlloc(p, bytes,
                CuLib.CU_MEMHOSTALLOC_PORTABLE | CuLib.CU_MEMHOSTALLOC_DEVICEMAP), "cuMemHostAlloc(" + bytes + " bytes)");
        return p.getValue();
    }

    /** Frees memory from {@link #hostAllocate}. */
    public void hostFree(long hostPointer) {
        makeCurrent();
        check(Cuda.driver().cuMemFreeHost(hostPointer), "cuMemFreeHost");
    }

    /**
     * Page-locks and maps existing host memory for all contexts ({@code cuMemHostRegister} with
     * {@code PORTABLE | DEVICEMAP}). Callers register large ranges in bounded pieces.
     */
    public void hostRegister(long hostPointer, long bytes) {
        makeCurrent();
        check(Cuda.driver().cuMemHostRegister_v2(hostPointer, bytes,
                CuLib.CU_MEMHOSTREGISTER_PORTABLE | CuLib.CU_MEMHOSTREGISTER_DEVICEMAP),
                "cuMemHostRegister(" + bytes + " bytes)");
    }

    /** Undoes {@link #hostRegister}. */
    public void hostUnregister(long hostPointer) {
        makeCurrent();
        check(Cuda.driver().cuMemHostUnregister(hostPointer), "cuMemHostUnregister");
    }

    /** @return the address kernels of this context use for mapped host memory at {@code hostPointer} */
    public long hostDevicePointer(long hostPointer) {
        makeCurrent();
        LongByReference d = new LongByReference();
        check(Cuda.driver().cuMemHostGetDevicePointer_v2(d, hostPointer, 0), "cuMemHostGetDevicePointer");
        return d.getValue();
    }

    /** Creates a stream that does not synchronise with the legacy default stream. */
    public long createStream() {
        makeCurrent();
        LongByReference s = new LongByReference();
        check(Cuda.driver().cuStreamCreate(s, CuLib.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        return s.getValue();
    }

    /** Creates an event; {@code timing} false gives the cheaper event used for completion. */
    public long createEvent(boolean timing) {
        makeCurrent();
        LongByReference e = new LongByReference();
        check(Cuda.driver().cuEventCreate(e, timing ? CuLib.CU_EVENT_DEFAULT : CuLib.CU_EVENT_DISABLE_TIMING),
                "cuEventCreate");
        return e.getValue();
    }

    /**
     * Whether this device can map the memory of {@code peer} (always true for itself).
     */
    public boolean canAccessPeer(CudaContext peer) {
        if (peer == this) {
            return true;
        }
        IntByReference can = new IntByReference();
        check(Cuda.driver().cuDeviceCanAccessPeer(can, device, peer.device), "cuDeviceCanAccessPeer");
        return can.getValue() != 0;
    }

    /**
     * Lets kernels in this context read and write {@code peer}'s memory directly. Idempotent.
     *
     * @return false when the hardware does not allow it (copies then go through the driver)
     */
    public boolean enablePeerAccess(CudaContext peer) {
        if (peer == this) {
            return true;
        }
        if (!canAccessPeer(peer)) {
            return false;
        }
        makeCurrent();
        int rc = Cuda.driver().cuCtxEnablePeerAccess(peer.handle, 0);
        if (rc == CuResult.PEER_ACCESS_ALREADY_ENABLED.code()) {
            return true;
        }
        check(rc, "cuCtxEnablePeerAccess");
        return true;
    }

    /** @return device ordinal */
    public int ordinal() {
        return ordinal;
    }

    /** @return the {@code CUcontext} handle */
    public long handle() {
        return handle;
    }

    /** @return the device's name, e.g. "NVIDIA H200" */
    public String deviceName() {
        return name;
    }

    /** @return compute capability major version */
    public int computeMajor() {
        return computeMajor;
    }

    /** @return compute capability minor version */
    public int computeMinor() {
        return computeMinor;
    }

    /** @return multiprocessor (SM) count */
    public int multiprocessors() {
        return multiprocessors;
    }

    /** @return device memory in bytes */
    public long totalMemory() {
        return totalMemory;
    }

    /** @return whether host and device share one virtual address space */
    public boolean unifiedAddressing() {
        return unifiedAddressing;
    }

    /** @return whether kernels may use the host address of registered or mapped host memory */
    public boolean hostPointerIsDevicePointer() {
        return hostPointerIsDevicePointer;
    }

    @Override
    public String toString() {
        return "cuda:" + ordinal + " (" + name + ", sm_" + computeMajor + computeMinor + ")";
    }
}
