package io.kvcache.tiers.device;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierCapacity;
import io.kvcache.core.tier.TierFailedException;
import io.kvcache.core.tier.TierKind;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaException;
import io.kvcache.nativ.cuda.CudaOutOfMemoryException;
import io.kvcache.tiers.slots.GuardedSlots;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Block slots in GPU memory: one {@code cuMemAlloc} of {@code slotBytes * slotCount} bytes on one
 * device, slot {@code i} at device address {@code base + i * slotBytes}. One tier per device
 * ordinal; any number of devices.
 *
 * <p>{@link #read} and {@link #write} are synchronous copies through the driver (on a stream of
 * the tier's own, waited for), for single blocks and tests; batches move through {@code CudaTransferEngine}. The tier is not host
 * accessible: {@link #view} throws and {@link #address} is the device pointer.
 *
 * <p>A sticky CUDA error on the device's context marks the tier failed: every later read, write
 * or transfer throws {@link TierFailedException} naming the error.
 */
public final class CudaDeviceTier implements Tier {
    private final String name;
    private final CudaContext context;
    private volatile KvLayout layout;
    private final long slotBytes;
    private final int slotCount;
    private final long base;
    private final GuardedSlots slots;
    /** Stream of the synchronous read/write/fill calls; the legacy stream would not order them with engines' streams. */
    private final long stream;
    private final Object streamLock = new Object();
    private volatile boolean closed;

    private CudaDeviceTier(String name, CudaContext context, long slotBytes, int slotCount, long base, long stream) {
        this.name = name;
        this.context = context;
        this.slotBytes = slotBytes;
        this.slotCount = slotCount;
        this.base = base;
        this.stream = stream;
        this.slots = new GuardedSlots(name, slotCount);
    }

    /**
     * Allocates a tier named "cuda:ORDINAL" of whole blocks of a layout.
     *
     * @param capacityBytes device memory to use; whole blocks only
     * @throws IllegalArgumentException when the capacity is not positive or holds no block
     */
    public static CudaDeviceTier allocate(CudaContext context, KvLayout layout, long capacityBytes) {
        String name = "cuda:" + context.ordinal();
        CudaDeviceTier t = allocate(name, context, layout.blockBytes(),
                TierCapacity.slots(name, capacityBytes, layout.blockBytes()));
        t.layout = layout;
        return t;
    }

    /** @return the layout given at allocation, or null when the tier was sized by slot bytes alone */
    @Override
    public KvLayout layout() {
        return layout;
    }

    /**
     * Allocates a tier named "cuda:ORDINAL".
     *
     * @see #allocate(String, CudaContext, long, int)
     */
    public static CudaDeviceTier allocate(CudaContext context, long slotBytes, int slotCount) {
        return allocate("cuda:" + context.ordinal(), context, slotBytes, slotCount);
    }

    /**
     * Allocates the tier's device memory.
     *
     * @param name      tier name for logs and messages
     * @param context   the device's context
     * @param slotBytes bytes per slot (the layout's block size), positive multiple of 16
     * @param slotCount number of slots, positive
     * @throws DeviceMemoryExhaustedException if the device lacks that much free memory
     * @throws io.kvcache.nativ.cuda.CudaUnavailableException if CUDA cannot be used on this host
     */
    public static CudaDeviceTier allocate(String name, CudaContext context, long slotBytes, int slotCount) {
        if (slotBytes <= 0 || slotBytes % 16 != 0) {
            throw new IllegalArgumentException("slot size must be a positive multiple of 16 bytes, was " + slotBytes);
        }
        if (slotCount <= 0) {
            throw new IllegalArgumentException("slot count must be positive, was " + slotCount);
        }
        long bytes = Math.multiplyExact(slotBytes, (long) slotCount);
        long base;
        try {
            base = context.allocate(bytes);
        } catch (CudaOutOfMemoryException e) {
            long free = -1;
            try {
                free = context.memoryInfo()[0];
            } catch (CudaException ignored) {
                // the size asked for is the useful part of the message
            }
            throw new DeviceMemoryExhaustedException("device tier '" + name + "' needs " + bytes + " bytes ("
                    + slotCount + " slots of " + slotBytes + ") but " + context + " has "
                    + (free < 0 ? "less" : free + " bytes") + " free", bytes, free, e);
        }
        long stream;
        try {
            stream = context.createStream();
        } catch (CudaException e) {
            context.free(base);
            throw e;
        }
        return new CudaDeviceTier(name, context, slotBytes, slotCount, base, stream);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public TierKind kind() {
        return TierKind.DEVICE;
    }

    @Override
    public long slotBytes() {
        return slotBytes;
    }

    @Override
    public int slotCount() {
        return slotCount;
    }

    @Override
    public int freeSlots() {
        return slots.freeCount();
    }

    @Override
    public int allocate() {
        return slots.allocate();
    }

    @Override
    public void free(int slot) {
        slots.free(slot);
    }

    @Override
    public boolean hostAccessible() {
        return false;
    }

    @Override
    public MemorySegment view(int slot) {
        throw new UnsupportedOperationException("device tier '" + name + "' is not host accessible; use read/write "
                + "or a transfer engine");
    }

    /** @return the device pointer of a slot */
    @Override
    public long address(int slot) {
        Tier.checkSlot(this, slot);
        return base + slot * slotBytes;
    }

    @Override
    public void write(int slot, long offset, MemorySegment src) {
        Tier.checkSlot(this, slot);
        long n = src.byteSize();
        Tier.checkRange(this, offset, n);
        checkUsable();
        if (n == 0) {
            return;
        }
        long dst = base + slot * slotBytes + offset;
        try {
            if (src.isNative()) {
                copyToDevice(dst, src.address(), n);
            } else {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment bounce = arena.allocate(n, 16);
                    bounce.copyFrom(src);
                    copyToDevice(dst, bounce.address(), n);
                }
            }
        } catch (CudaException e) {
            throw translate(e);
        }
    }

    @Override
    public void read(int slot, long offset, MemorySegment dst) {
        Tier.checkSlot(this, slot);
        long n = dst.byteSize();
        Tier.checkRange(this, offset, n);
        checkUsable();
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("destination segment is read-only");
        }
        if (n == 0) {
            return;
        }
        long src = base + slot * slotBytes + offset;
        try {
            if (dst.isNative()) {
                copyToHost(dst.address(), src, n);
            } else {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment bounce = arena.allocate(n, 16);
                    copyToHost(bounce.address(), src, n);
                    dst.copyFrom(bounce);
                }
            }
        } catch (CudaException e) {
            throw translate(e);
        }
    }

    /** Fills a whole slot with one byte value (device-side memset); for tests and poisoning. */
    public void fill(int slot, byte value) {
        Tier.checkSlot(this, slot);
        checkUsable();
        try {
            synchronized (streamLock) {
                context.makeCurrent();
                context.check(Cuda.driver().cuMemsetD8Async(base + slot * slotBytes, value, slotBytes, stream),
                        "cuMemsetD8Async");
                context.check(Cuda.driver().cuStreamSynchronize(stream), "cuStreamSynchronize");
            }
        } catch (CudaException e) {
            throw translate(e);
        }
    }

    // Async copy plus stream synchronisation: the plain cuMemcpyHtoD may return before a copy
    // from pageable memory reaches the device, and a later copy on a non-blocking engine stream
    // would not be ordered after it.
    private void copyToDevice(long dst, long src, long n) {
        synchronized (streamLock) {
            context.makeCurrent();
            context.check(Cuda.driver().cuMemcpyHtoDAsync_v2(dst, src, n, stream), "cuMemcpyHtoDAsync");
            context.check(Cuda.driver().cuStreamSynchronize(stream), "cuStreamSynchronize");
        }
    }

    private void copyToHost(long dst, long src, long n) {
        synchronized (streamLock) {
            context.makeCurrent();
            context.check(Cuda.driver().cuMemcpyDtoHAsync_v2(dst, src, n, stream), "cuMemcpyDtoHAsync");
            context.check(Cuda.driver().cuStreamSynchronize(stream), "cuStreamSynchronize");
        }
    }

    @Override
    public String backing() {
        return "cuMemAlloc " + slotBytes * slotCount + " bytes on " + context;
    }

    @Override
    public boolean failed() {
        return context.failed();
    }

    /** @return the context the tier's memory belongs to */
    public CudaContext context() {
        return context;
    }

    /** @return the device pointer of slot 0; slots follow contiguously */
    public long baseAddress() {
        return base;
    }

    /**
     * @return the slot bookkeeping transfer engines use to guard in-flight copies; its type is in a
     *         package the module does not export, so only this module's engines use it
     */
    @SuppressWarnings("exports")
    public GuardedSlots slots() {
        return slots;
    }

    /**
     * @throws TierFailedException if a sticky error poisoned the device's context
     * @throws IllegalStateException if the tier is closed
     */
    public void checkUsable() {
        if (closed) {
            throw new IllegalStateException("device tier '" + name + "' is closed");
        }
        if (context.failed()) {
            throw new TierFailedException("device tier '" + name + "' failed: " + context.failure().getMessage(),
                    context.failure());
        }
    }

    private RuntimeException translate(CudaException e) {
        if (e.sticky()) {
            return new TierFailedException("device tier '" + name + "' failed: " + e.getMessage(), e);
        }
        return e;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (!context.failed()) {
            context.makeCurrent();
            Cuda.driver().cuStreamDestroy_v2(stream);
            context.free(base);
        }
    }
}
