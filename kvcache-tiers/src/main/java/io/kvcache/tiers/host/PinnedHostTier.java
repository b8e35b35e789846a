package io.kvcache.tiers.host;

import com.sun.jna.LastErrorException;
import com.sun.jna.Pointer;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierCapacity;
import io.kvcache.core.tier.TierKind;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaException;
import io.kvcache.nativ.cuda.CudaUnavailableException;
import io.kvcache.nativ.libc.DmaBuf;
import io.kvcache.nativ.libc.DmaBufUnavailableException;
import io.kvcache.nativ.libc.DmaHeap;
import io.kvcache.nativ.libc.LibC;
import io.kvcache.nativ.libc.Udmabuf;
import io.kvcache.tiers.slots.GuardedSlots;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.function.Supplier;

/**
 * Block slots in page-locked host memory that GPUs copy from at link speed and that copy
 * kernels read and write directly (mapped, portable to every context).
 *
 * <p>The memory comes from the first source that works, tried in {@link HostBacking} order: a
 * DMA-BUF from the system dma-heap, a DMA-BUF made by udmabuf from a memfd (each mapped and
 * registered with CUDA), {@code cuMemHostAlloc}, then anonymous memory registered with
 * {@code cuMemHostRegister}. Registration and allocation go in bounded chunks (default 1 GiB,
 * whole slots each) because single pinnings of hundreds of GiB fail. {@link #backing()} says what
 * was obtained and why each earlier source was skipped.
 *
 * <p>The tier is host accessible: {@link #view} is the slot's memory, {@link #address} its host
 * address, {@link #deviceAddress} the address kernels use.
 */
public final class PinnedHostTier implements Tier {
    /** Default bound on one allocation or registration. */
    public static final long DEFAULT_CHUNK_BYTES = 1L << 30;

    private final String name;
    private final long slotBytes;
    private final KvLayout layout;
    private final int slotCount;
    private final int slotsPerChunk;
    private final long[] chunkHost;
    private final long[] chunkDevice;
    private final MemorySegment[] chunkSegments;
    private final HostBacking backingKind;
    private final String backing;
    private final List<String> skipped;
    private final Deque<Runnable> releases;
    private final GuardedSlots slots;
    /** Owns the host views: closing it first makes a view used after close fail instead of crashing. */
    private final Arena arena = Arena.ofShared();
    private volatile boolean closed;

    // the segments cover memory this tier obtained, with the sizes it asked for
    @SuppressWarnings("restricted")
    private PinnedHostTier(Builder b, Obtained o, List<String> skipped) {
        this.name = b.name;
        this.slotBytes = b.slotBytes;
        this.layout = b.layout;
        this.slotCount = b.slotCount;
        this.slotsPerChunk = o.slotsPerChunk;
        this.chunkHost = o.host;
        this.chunkDevice = o.device;
        this.chunkSegments = new MemorySegment[o.host.length];
        for (int i = 0; i < o.host.length; i++) {
            int slotsHere = Math.min(slotsPerChunk, slotCount - i * slotsPerChunk);
            chunkSegments[i] = MemorySegment.ofAddress(o.host[i]).reinterpret(slotsHere * slotBytes, arena, null);
        }
        this.backingKind = o.kind;
        this.skipped = List.copyOf(skipped);
        this.releases = o.releases;
        this.backing = o.kind.label() + (o.hugePages ? " (huge pages)" : "") + ", " + o.host.length
                + " chunk(s) of up to " + (long) slotsPerChunk * slotBytes + " bytes"
                + (skipped.isEmpty() ? "" : "; skipped " + String.join("; ", skipped));
        this.slots = new GuardedSlots(name, slotCount);
    }

    /**
     * Starts building a tier of whole blocks of a layout.
     *
     * @param capacityBytes host memory to pin; whole blocks only
     * @throws IllegalArgumentException when the capacity is not positive or holds no block
     */
    public static Builder builder(KvLayout layout, long capacityBytes) {
        Builder b = new Builder(layout.blockBytes(), TierCapacity.slots("pinned-host", capacityBytes, layout.blockBytes()));
        b.layout = layout;
        return b;
    }

    /**
     * Starts building a tier.
     *
     * @param slotBytes bytes per slot (the layout's block size), positive multiple of 16
     * @param slotCount number of slots, positive
     */
    public static Builder builder(long slotBytes, int slotCount) {
        return new Builder(slotBytes, slotCount);
    }

    /** Options of a {@link PinnedHostTier}. */
    public static final class Builder {
        private final long slotBytes;
        private final int slotCount;
        private String name = "pinned-host";
        private Supplier<CudaContext> context = () -> CudaContext.device(0);
        private long chunkBytes = DEFAULT_CHUNK_BYTES;
        private List<HostBacking> sources = List.of(HostBacking.values());
        private Path dmaHeap = DmaHeap.SYSTEM;
        private Path udmabuf = Udmabuf.DEVICE;
        private boolean hugePages;

        /** Set when built from a layout. */
        private KvLayout layout;

        private Builder(long slotBytes, int slotCount) {
            if (slotBytes <= 0 || slotBytes % 16 != 0) {
                throw new IllegalArgumentException("slot size must be a positive multiple of 16 bytes, was " + slotBytes);
            }
            if (slotCount <= 0) {
                throw new IllegalArgumentException("slot count must be positive, was " + slotCount);
            }
            this.slotBytes = slotBytes;
            this.slotCount = slotCount;
        }

        /** @param name tier name for logs and messages (default "pinned-host") */
        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /** @param context context used to pin and map the memory (default: device 0); the memory is portable */
        public Builder context(CudaContext context) {
            this.context = () -> context;
            return this;
        }

        /** @param chunkBytes bound on one allocation or registration, in bytes (default 1 GiB) */
        public Builder chunkBytes(long chunkBytes) {
            if (chunkBytes <= 0) {
                throw new IllegalArgumentException("chunk size must be positive, was " + chunkBytes);
            }
            this.chunkBytes = chunkBytes;
            return this;
        }

        /** @param sources the sources to try, in order (default: all, in {@link HostBacking} order) */
        public Builder sources(HostBacking... sources) {
            if (sources.length == 0) {
                throw new IllegalArgumentException("at least one host memory source is needed");
            }
            this.sources = List.of(sources);
            return this;
        }

        /** @param dmaHeap dma-heap device file (default /dev/dma_heap/system) */
        public Builder dmaHeap(Path dmaHeap) {
            this.dmaHeap = dmaHeap;
            return this;
        }

        /** @param udmabuf udmabuf device file (default /dev/udmabuf) */
        public Builder udmabuf(Path udmabuf) {
            this.udmabuf = udmabuf;
            return this;
        }

        /**
         * @param hugePages back the {@link HostBacking#CU_MEM_HOST_REGISTER} source with transparent
         *                  huge pages (2 MiB aligned mapping, {@code MADV_HUGEPAGE}); default false
         */
        public Builder hugePages(boolean hugePages) {
            this.hugePages = hugePages;
            return this;
        }

        /**
         * Obtains the memory from the first source that works.
         *
         * @throws PinnedMemoryUnavailableException listing why each source failed
         */
        public PinnedHostTier build() {
            List<String> skipped = new ArrayList<>();
            RuntimeException last = null;
            for (HostBacking source : sources) {
                try {
                    return new PinnedHostTier(this, obtain(source), skipped);
                } catch (DmaBufUnavailableException | CudaException | CudaUnavailableException
                         | LastErrorException e) {
                    skipped.add(source.label() + ": " + e.getMessage());
                    last = e;
                }
            }
            throw new PinnedMemoryUnavailableException("no page-locked host memory for tier '" + name + "' ("
                    + slotCount + " slots of " + slotBytes + " bytes); tried " + String.join("; ", skipped), last);
        }

        private Obtained obtain(HostBacking source) {
            int perChunk = (int) Math.max(1, Math.min(slotCount, chunkBytes / slotBytes));
            int chunks = (slotCount + perChunk - 1) / perChunk;
            long total = slotBytes * slotCount;
            Obtained o = new Obtained(source, perChunk, chunks);
            o.hugePages = hugePages && source == HostBacking.CU_MEM_HOST_REGISTER;
            try {
                switch (source) {
                    case DMA_HEAP -> registerContiguous(o, DmaHeap.allocate(dmaHeap, total));
                    case UDMABUF -> registerContiguous(o, Udmabuf.allocate(udmabuf, total));
                    case CU_MEM_HOST_ALLOC -> {
                        CudaContext ctx = context.get();
                        for (int i = 0; i < chunks; i++) {
                            long bytes = chunkSlots(i, perChunk) * slotBytes;
                            long host = ctx.hostAllocate(bytes);
                            o.releases.push(() -> ctx.hostFree(host));
                            o.host[i] = host;
                            o.device[i] = ctx.hostPointerIsDevicePointer() ? host : ctx.hostDevicePointer(host);
                        }
                    }
                    case CU_MEM_HOST_REGISTER -> {
                        CudaContext ctx = context.get();
                        long huge = 2L << 20;
                        long mapped = hugePages ? (total + huge - 1) / huge * huge + huge : total;
                        Pointer p = LibC.INSTANCE.mmap(null, mapped, LibC.PROT_READ | LibC.PROT_WRITE,
                                LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
                        long start = Pointer.nativeValue(p);
                        if (start == LibC.MAP_FAILED) {
                            throw new LastErrorException(12);
                        }
                        o.releases.push(() -> LibC.INSTANCE.munmap(new Pointer(start), mapped));
                        long base = start;
                        if (hugePages) {
                            // 2 MiB aligned so that the kernel can back it with huge pages
                            base = (start + huge - 1) / huge * huge;
                            LibC.INSTANCE.madvise(new Pointer(base), mapped - huge, LibC.MADV_HUGEPAGE);
                        }
                        registerChunks(o, ctx, base);
                    }
                }
                return o;
            } catch (RuntimeException e) {
                o.releaseAll();
                throw e;
            }
        }

        private void registerContiguous(Obtained o, DmaBuf buffer) {
            o.releases.push(buffer::close);
            registerChunks(o, context.get(), buffer.address());
        }

        private void registerChunks(Obtained o, CudaContext ctx, long base) {
            for (int i = 0; i < o.host.length; i++) {
                long host = base + (long) i * o.slotsPerChunk * slotBytes;
                long bytes = chunkSlots(i, o.slotsPerChunk) * slotBytes;
                ctx.hostRegister(host, bytes);
                o.releases.push(() -> ctx.hostUnregister(host));
                o.host[i] = host;
                o.device[i] = ctx.hostPointerIsDevicePointer() ? host : ctx.hostDevicePointer(host);
            }
        }

        private long chunkSlots(int chunk, int perChunk) {
            return Math.min(perChunk, slotCount - (long) chunk * perChunk);
        }
    }

    /** Memory obtained from one source, with the actions that give it back, last first. */
    private static final class Obtained {
        final HostBacking kind;
        final int slotsPerChunk;
        final long[] host;
        final long[] device;
        final Deque<Runnable> releases = new ArrayDeque<>();
        boolean hugePages;

        Obtained(HostBacking kind, int slotsPerChunk, int chunks) {
            this.kind = kind;
            this.slotsPerChunk = slotsPerChunk;
            this.host = new long[chunks];
            this.device = new long[chunks];
        }

        void releaseAll() {
            RuntimeException first = null;
            while (!releases.isEmpty()) {
                try {
                    releases.pop().run();
                } catch (RuntimeException e) {
                    if (first == null) {
                        first = e;
                    }
                }
            }
            if (first != null) {
                throw first;
            }
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public TierKind kind() {
        return TierKind.HOST;
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
        return true;
    }

    @Override
    public MemorySegment view(int slot) {
        Tier.checkSlot(this, slot);
        checkOpen();
        return chunkSegments[slot / slotsPerChunk].asSlice((slot % slotsPerChunk) * slotBytes, slotBytes);
    }

    /** @return the host address of a slot */
    @Override
    public long address(int slot) {
        Tier.checkSlot(this, slot);
        return chunkHost[slot / slotsPerChunk] + (slot % slotsPerChunk) * slotBytes;
    }

    /** @return the address copy kernels use for a slot (equal to {@link #address} on unified addressing) */
    public long deviceAddress(int slot) {
        Tier.checkSlot(this, slot);
        return chunkDevice[slot / slotsPerChunk] + (slot % slotsPerChunk) * slotBytes;
    }

    @Override
    public void write(int slot, long offset, MemorySegment src) {
        Tier.checkSlot(this, slot);
        Tier.checkRange(this, offset, src.byteSize());
        checkOpen();
        MemorySegment.copy(src, 0, chunkSegments[slot / slotsPerChunk], (slot % slotsPerChunk) * slotBytes + offset,
                src.byteSize());
    }

    @Override
    public void read(int slot, long offset, MemorySegment dst) {
        Tier.checkSlot(this, slot);
        Tier.checkRange(this, offset, dst.byteSize());
        checkOpen();
        MemorySegment.copy(chunkSegments[slot / slotsPerChunk], (slot % slotsPerChunk) * slotBytes + offset, dst, 0,
                dst.byteSize());
    }

    /** @return the layout the tier was built for, or null when built from a slot size */
    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public String backing() {
        return backing;
    }

    /** @return which source provided the memory */
    public HostBacking backingKind() {
        return backingKind;
    }

    /** @return for each source tried before the one that worked, why it was skipped */
    public List<String> skippedSources() {
        return skipped;
    }

    /** @return slots per pinned chunk (the last chunk may hold fewer) */
    public int slotsPerChunk() {
        return slotsPerChunk;
    }

    /**
     * @return the slot bookkeeping transfer engines use to guard in-flight copies; its type is in a
     *         package the module does not export, so only this module's engines use it
     */
    @SuppressWarnings("exports")
    public GuardedSlots slots() {
        return slots;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("host tier '" + name + "' is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        arena.close();
        Obtained o = new Obtained(backingKind, slotsPerChunk, 0);
        o.releases.addAll(releases);
        releases.clear();
        o.releaseAll();
    }
}
