package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.TestBlocks.MODEL;
import static io.kvcache.tiers.disk.TestBlocks.SMALL;
import static io.kvcache.tiers.disk.TestBlocks.fill;
import static io.kvcache.tiers.disk.TestBlocks.key;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code verify} and {@code publish} read a block for its checksum without the tier lock, so a
 * slow device does not hold up every other operation, and re-check under the lock that the slot
 * still holds the block they read. The device is made slow by holding the read of one slot.
 */
@ExtendWith(QuietTierLog.class)
class ChecksumOutsideLockTest {
    private static final int SLOTS = 4;

    @TempDir
    Path tmp;
    private final ExecutorService pool = Executors.newFixedThreadPool(2);
    private final CountDownLatch entered = new CountDownLatch(1);
    private final CountDownLatch release = new CountDownLatch(1);
    private final FaultyDiskIo io = new FaultyDiskIo(0, false);

    @AfterEach
    void stop() {
        release.countDown();
        pool.shutdownNow();
    }

    private MappedFileTier open() {
        return MappedFileTier.builder(SMALL).directory(tmp.resolve("c")).modelId(MODEL).io(io)
                .capacityBytes(SLOTS * DiskFileDescriptor.slotStride(SMALL.blockBytes())).open();
    }

    private static MemorySegment block(long id) {
        MemorySegment m = Arena.ofAuto().allocate(SMALL.blockBytes());
        fill(m, id);
        return m;
    }

    /** Runs allocation, lookup and free on another thread while a read is held; fails if they wait for it. */
    private void otherOperationsProceed(MappedFileTier t) throws Exception {
        assertTrue(entered.await(10, TimeUnit.SECONDS), "the checksum read never started");
        pool.submit(() -> {
            int s = t.allocate();
            assertTrue(s >= 0);
            t.free(s);
            assertFalse(t.contains(key(99)));
            assertEquals(-1, t.lookup(key(99)));
            return t.freeSlots();
        }).get(10, TimeUnit.SECONDS);
    }

    @Test
    void verifyReadsTheBlockWithoutHoldingTheTierLock() throws Exception {
        try (MappedFileTier t = open()) {
            int slot = t.allocate(key(1));
            t.write(slot, 0, block(1));
            t.publish(slot, key(1));
            io.holdReadsAt(t.address(slot), entered, release);
            Future<Boolean> verified = pool.submit(() -> t.verify(slot));
            otherOperationsProceed(t);
            release.countDown();
            assertTrue(verified.get(10, TimeUnit.SECONDS));
            assertTrue(t.contains(key(1)));
            t.free(slot);
        }
    }

    @Test
    void publishOfBytesWrittenInPartsReadsThemWithoutHoldingTheTierLock() throws Exception {
        try (MappedFileTier t = open()) {
            int slot = t.allocate(key(2));
            MemorySegment b = block(2);
            long half = SMALL.blockBytes() / 2;
            t.write(slot, 0, b.asSlice(0, half));
            t.write(slot, half, b.asSlice(half)); // no checksum known: publish reads the block
            io.holdReadsAt(t.address(slot), entered, release);
            Future<?> published = pool.submit(() -> t.publish(slot, key(2)));
            otherOperationsProceed(t);
            assertFalse(t.contains(key(2)), "published before its checksum was read");
            release.countDown();
            published.get(10, TimeUnit.SECONDS);
            assertTrue(t.contains(key(2)));
            assertTrue(t.verify(slot));
            t.free(slot);
        }
        try (MappedFileTier t = open()) {
            int slot = t.lookup(key(2));
            assertTrue(slot >= 0 && t.verify(slot), "the block published from parts did not survive a reopen");
            t.free(slot);
        }
    }

    @Test
    void aVerifyThatRacedAReuseOfTheSlotQuarantinesNothing() throws Exception {
        try (MappedFileTier t = MappedFileTier.builder(SMALL).directory(tmp.resolve("one")).modelId(MODEL).io(io)
                .capacityBytes(DiskFileDescriptor.slotStride(SMALL.blockBytes())).open()) {
            int slot = t.allocate(key(3));
            t.write(slot, 0, block(3));
            t.publish(slot, key(3));
            t.free(slot); // retained: the only slot
            io.holdReadsAt(t.address(slot), entered, release);
            Future<Boolean> verified = pool.submit(() -> t.verify(slot));
            assertTrue(entered.await(10, TimeUnit.SECONDS));
            int reused = pool.submit(() -> {
                int s = t.allocate(); // drops block 3
                t.write(s, 0, block(4));
                t.publish(s, key(4));
                return s;
            }).get(10, TimeUnit.SECONDS);
            assertEquals(slot, reused);
            release.countDown();
            assertFalse(verified.get(10, TimeUnit.SECONDS), "the bytes read were not block 3's");
            assertEquals(0, t.stats().checksumFailures(), "the block that replaced the one verified was quarantined");
            assertTrue(t.contains(key(4)));
            assertTrue(t.verify(reused));
            t.free(reused);
        }
    }
}
