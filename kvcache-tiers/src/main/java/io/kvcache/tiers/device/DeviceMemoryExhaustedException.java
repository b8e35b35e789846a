package io.kvcache.tiers.device;

import io.kvcache.core.OutOfCacheSpaceException;

/**
 * The device has not enough free memory for the requested tier. Nothing was allocated; the
 * caller may retry with fewer slots. An {@link OutOfCacheSpaceException}, so that an engine
 * handles running out of device memory where it handles a full cache.
 */
public final class DeviceMemoryExhaustedException extends OutOfCacheSpaceException {
    private final long requestedBytes;
    private final long freeBytes;

    public DeviceMemoryExhaustedException(String message, long requestedBytes, long freeBytes, Throwable cause) {
        super(message);
        initCause(cause);
        this.requestedBytes = requestedBytes;
        this.freeBytes = freeBytes;
    }

    /** @return bytes asked for */
    public long requestedBytes() {
        return requestedBytes;
    }

    /** @return bytes the device reported free at the time, or -1 if unknown */
    public long freeBytes() {
        return freeBytes;
    }
}
