package io.kvcache.tiers.host;

import com.sun.jna.LastErrorException;
import com.sun.jna.Pointer;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.SegmentTier;
import io.kvcache.core.tier.TierKind;
import io.kvcache.nativ.libc.LibC;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Host RAM from an anonymous {@code mmap}, locked with {@code mlock} when the memlock limit
 * allows so the pages cannot be swapped out. What was obtained is reported by
 * {@link #backing()} and {@link #locked()}, never hidden: under an 8 MiB memlock limit a large
 * tier is plain pageable memory.
 */
public final class MmapHostTier extends SegmentTier {
    private final Pointer base;
    private final boolean locked;
    private final String backing;
    private final Arena arena = Arena.ofShared();
    private boolean closed;

    /**
     * @param layout        the cache layout; one slot holds one block
     * @param capacityBytes bytes of host memory; whole blocks only
     * @throws IllegalArgumentException when the capacity is not positive or holds no block
     * @throws IllegalStateException    when the kernel refuses the mapping
     */
    public MmapHostTier(KvLayout layout, long capacityBytes) {
        this("host", layout, capacityBytes);
    }

    /** @param name tier name in stats and messages */
    public MmapHostTier(String name, KvLayout layout, long capacityBytes) {
        super(name, TierKind.HOST, layout, capacityBytes);
        long bytes = poolBytes();
        LibC libc = LibC.INSTANCE;
        try {
            this.base = libc.mmap(null, bytes, LibC.PROT_READ | LibC.PROT_WRITE,
                    LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0);
        } catch (LastErrorException e) {
            throw new IllegalStateException("mmap of " + bytes + " bytes for tier '" + name
                    + "' failed: errno " + e.getErrorCode(), e);
        }
        // the mapping belongs to a shared arena: closing it unmaps, and a view used after that
        // fails with IllegalStateException instead of touching unmapped memory
        Pointer mapped = this.base;
        pool(MemorySegment.ofAddress(Pointer.nativeValue(base)).reinterpret(bytes, arena,
                segment -> LibC.INSTANCE.munmap(mapped, bytes)));
        LibC.RLimit limit = new LibC.RLimit();
        libc.getrlimit(LibC.RLIMIT_MEMLOCK, limit);
        boolean ok = false;
        String why;
        if (limit.rlim_cur != LibC.RLIM_INFINITY && Long.compareUnsigned(limit.rlim_cur, bytes) < 0) {
            why = "mmap, pageable (RLIMIT_MEMLOCK " + limit.rlim_cur + " bytes < " + bytes + " bytes)";
        } else {
            try {
                libc.mlock(base, bytes);
                ok = true;
                why = "mmap+mlock";
            } catch (LastErrorException e) {
                why = "mmap, pageable (mlock failed: errno " + e.getErrorCode() + ")";
            }
        }
        this.locked = ok;
        this.backing = why;
    }

    /** @return whether the pages are locked in RAM */
    public boolean locked() {
        return locked;
    }

    @Override
    public String backing() {
        return backing;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        arena.close();
    }
}
