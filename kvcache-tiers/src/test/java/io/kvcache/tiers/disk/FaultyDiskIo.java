package io.kvcache.tiers.disk;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The real file system with the Nth operation failing: once, or from then on (a device that
 * died). Counts every operation so a test can raise N until a workload runs clean. It can also
 * hold positional reads at one file position until a test lets them go.
 */
final class FaultyDiskIo implements DiskIo {
    private final DiskIo real = FileDiskIo.INSTANCE;
    private final long failAt;
    private final boolean persistent;
    private final AtomicLong ops = new AtomicLong();
    private final AtomicLong injected = new AtomicLong();
    private long reservableBytes = Long.MAX_VALUE;
    private volatile long heldPosition = -1;
    private volatile CountDownLatch heldEntered;
    private volatile CountDownLatch heldRelease;

    /**
     * @param failAt     1-based number of the operation that fails; 0 for none
     * @param persistent whether every operation after it fails too
     */
    FaultyDiskIo(long failAt, boolean persistent) {
        this.failAt = failAt;
        this.persistent = persistent;
    }

    /** Makes preallocation beyond {@code bytes} of the file fail as a full disk does. */
    FaultyDiskIo diskFullBeyond(long bytes) {
        this.reservableBytes = bytes;
        return this;
    }

    /**
     * Holds every positional read at {@code position}: it counts {@code entered} down, then
     * waits (at most 30 s) for {@code release} before it reads.
     */
    FaultyDiskIo holdReadsAt(long position, CountDownLatch entered, CountDownLatch release) {
        this.heldEntered = entered;
        this.heldRelease = release;
        this.heldPosition = position;
        return this;
    }

    long operations() {
        return ops.get();
    }

    long injected() {
        return injected.get();
    }

    private void maybeFail(String op) throws IOException {
        long n = ops.incrementAndGet();
        if (failAt > 0 && (n == failAt || (persistent && n > failAt))) {
            injected.incrementAndGet();
            throw new IOException("injected failure of I/O operation " + n + " (" + op + ")");
        }
    }

    @Override
    public FileChannel open(Path file) throws IOException {
        maybeFail("open");
        return real.open(file);
    }

    @Override
    public long size(FileChannel channel) throws IOException {
        maybeFail("size");
        return real.size(channel);
    }

    @Override
    public void preallocate(Path file, long offset, long length) throws IOException {
        maybeFail("preallocate");
        if (offset + length > reservableBytes) {
            injected.incrementAndGet();
            throw new IOException("disk full: no room for " + length + " bytes at offset " + offset + " (simulated)");
        }
        real.preallocate(file, offset, length);
    }

    @Override
    public MemorySegment map(FileChannel channel, long length, Arena arena) throws IOException {
        maybeFail("map");
        return real.map(channel, length, arena);
    }

    @Override
    public void load(MemorySegment map, long offset, MemorySegment dst) throws IOException {
        maybeFail("load");
        real.load(map, offset, dst);
    }

    @Override
    public void store(MemorySegment src, MemorySegment map, long offset) throws IOException {
        maybeFail("store");
        real.store(src, map, offset);
    }

    @Override
    public void write(FileChannel channel, long position, MemorySegment src) throws IOException {
        maybeFail("write");
        real.write(channel, position, src);
    }

    @Override
    public void read(FileChannel channel, long position, MemorySegment dst) throws IOException {
        maybeFail("read");
        if (position == heldPosition) {
            heldEntered.countDown();
            try {
                heldRelease.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        real.read(channel, position, dst);
    }

    @Override
    public void force(FileChannel channel) throws IOException {
        maybeFail("force");
        real.force(channel);
    }
}
