package io.kvcache.nativ.cuda;

import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.FloatByReference;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;

/**
 * The subset of the CUDA driver API ({@code libcuda}) the tiers use, bound through JNA interface
 * mapping. Handles ({@code CUcontext}, {@code CUstream}, {@code CUevent}, {@code CUmodule},
 * {@code CUfunction}) and device pointers are passed as {@code long}; every function returns a
 * {@code CUresult}. Versioned symbols are bound by their exported names ({@code _v2}), the ones
 * {@code cuda.h} maps the plain names to.
 *
 * <p>Obtain the instance through {@link Cuda#driver()}, which loads the library on first use.
 */
public interface CuLib extends Library {

    int CU_STREAM_NON_BLOCKING = 0x1;
    int CU_EVENT_DEFAULT = 0x0;
    int CU_EVENT_BLOCKING_SYNC = 0x1;
    int CU_EVENT_DISABLE_TIMING = 0x2;
    int CU_MEMHOSTALLOC_PORTABLE = 0x1;
    int CU_MEMHOSTALLOC_DEVICEMAP = 0x2;
    int CU_MEMHOSTREGISTER_PORTABLE = 0x1;
    int CU_MEMHOSTREGISTER_DEVICEMAP = 0x2;

    int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    int CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
    int CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41;
    int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    int CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM = 91;

    int cuInit(int flags);

    int cuDriverGetVersion(IntByReference version);

    int cuGetErrorName(int result, PointerByReference name);

    int cuGetErrorString(int result, PointerByReference text);

    int cuGetProcAddress_v2(String symbol, PointerByReference fn, int cudaVersion, long flags, IntByReference status);

    int cuDeviceGetCount(IntByReference count);

    int cuDeviceGet(IntByReference device, int ordinal);

    int cuDeviceGetName(byte[] name, int length, int device);

    int cuDeviceGetAttribute(IntByReference value, int attribute, int device);

    int cuDeviceTotalMem_v2(LongByReference bytes, int device);

    int cuDeviceCanAccessPeer(IntByReference canAccess, int device, int peerDevice);

    int cuDevicePrimaryCtxRetain(LongByReference context, int device);

    int cuDevicePrimaryCtxRelease_v2(int device);

    int cuCtxSetCurrent(long context);

    int cuCtxSynchronize();

    int cuCtxEnablePeerAccess(long peerContext, int flags);

    int cuMemGetInfo_v2(LongByReference free, LongByReference total);

    int cuMemAlloc_v2(LongByReference devicePointer, long bytes);

    int cuMemFree_v2(long devicePointer);

    int cuMemHostAlloc(LongByReference hostPointer, long bytes, int flags);

    int cuMemFreeHost(long hostPointer);

    int cuMemHostRegister_v2(long hostPointer, long bytes, int flags);

    int cuMemHostUnregister(long hostPointer);

    int cuMemHostGetDevicePointer_v2(LongByReference devicePointer, long hostPointer, int flags);

    int cuMemcpy(long dst, long src, long bytes);

    int cuMemcpyAsync(long dst, long src, long bytes, long stream);

    int cuMemcpyHtoD_v2(long dstDevice, long srcHost, long bytes);

    int cuMemcpyDtoH_v2(long dstHost, long srcDevice, long bytes);

    int cuMemcpyHtoDAsync_v2(long dstDevice, long srcHost, long bytes, long stream);

    int cuMemcpyDtoHAsync_v2(long dstHost, long srcDevice, long bytes, long stream);

    int cuMemcpyPeerAsync(long dst, long dstContext, long src, long srcContext, long bytes, long stream);

    int cuMemsetD8_v2(long dst, byte value, long count);

    int cuMemsetD8Async(long dst, byte value, long count, long stream);

    int cuStreamCreate(LongByReference stream, int flags);

    int cuStreamDestroy_v2(long stream);

    int cuStreamSynchronize(long stream);

    int cuStreamQuery(long stream);

    int cuStreamWaitEvent(long stream, long event, int flags);

    int cuEventCreate(LongByReference event, int flags);

    int cuEventDestroy_v2(long event);

    int cuEventRecord(long event, long stream);

    int cuEventQuery(long event);

    int cuEventSynchronize(long event);

    int cuEventElapsedTime_v2(FloatByReference milliseconds, long start, long end);

    int cuModuleLoadData(LongByReference module, Pointer image);

    int cuModuleUnload(long module);

    int cuModuleGetFunction(LongByReference function, long module, String name);

    int cuFuncSetAttribute(long function, int attribute, int value);

    int cuLaunchKernel(long function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                       int sharedMemBytes, long stream, Pointer kernelParams, Pointer extra);
}
