package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.TestBlocks.MODEL;
import static io.kvcache.tiers.disk.TestBlocks.SMALL;
import static io.kvcache.tiers.disk.TestBlocks.fill;
import static io.kvcache.tiers.disk.TestBlocks.key;
import static io.kvcache.tiers.disk.TestBlocks.matches;
import static org.junit.jupiter.api.Assertions.*;

import io.kvcache.core.tier.BlockUnavailableException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fails the Nth I/O operation of the disk tier, for N rising until a workload runs without
 * reaching it, once and persistently. Whatever fails, the tier reports it, serves no wrong
 * bytes, lets no InternalError out, and a later clean open serves only verified blocks.
 */
@ExtendWith(QuietTierLog.class)
class FaultInjectionTest {
    private static final int SLOTS = 6;
    private static final int BLOCKS = 10;

    @TempDir
    Path tmp;

    private static MappedFileTier open(Path dir, DiskIo io) {
        return MappedFileTier.builder(SMALL).directory(dir).modelId(MODEL).io(io)
                .capacityBytes(SLOTS * DiskFileDescriptor.slotStride(SMALL.blockBytes())).open();
    }

    /** Stores, reads back, evicts, overwrites; counts wrong bytes served. @return wrong blocks */
    private static int workload(MappedFileTier t, long wrongSoFar) {
        int wrong = 0;
        MemorySegment buf = Arena.ofAuto().allocate(t.slotBytes());
        for (int id = 0; id < BLOCKS; id++) {
            int slot = t.allocate(key(id));
            if (slot < 0) {
                continue;
            }
            try {
                fill(buf, id);
                t.write(slot, 0, buf);
                t.publish(slot, key(id), id % 3 == 0 ? null : key(id - 1));
            } catch (BlockUnavailableException e) {
                // the write failed and was reported: the block is a miss
            }
            t.free(slot);
        }
        for (int id = 0; id < BLOCKS; id++) {
            int slot = t.lookup(key(id));
            if (slot < 0) {
                continue;
            }
            try {
                t.read(slot, 0, buf);
                if (!matches(buf, id)) {
                    wrong++;
                }
                t.verify(slot);
            } catch (BlockUnavailableException e) {
                // a miss
            }
            t.free(slot);
        }
        return wrong;
    }

    private void runRising(boolean persistent) {
        int wrong = 0;
        int openFailures = 0;
        int faultsReported = 0;
        long n = 1;
        for (; ; n++) {
            Path dir = tmp.resolve((persistent ? "p" : "o") + n);
            // a first clean run leaves published blocks to recover
            try (MappedFileTier t = open(dir, FileDiskIo.INSTANCE)) {
                workload(t, 0);
            }
            FaultyDiskIo io = new FaultyDiskIo(n, persistent);
            MappedFileTier t;
            try {
                t = open(dir, io);
            } catch (UncheckedIOException e) {
                openFailures++;
                assertTrue(e.getMessage().contains("injected"), e.getMessage());
                verifyCleanReopen(dir);
                continue;
            }
            try {
                wrong += workload(t, wrong);
            } finally {
                t.close();
            }
            if (io.injected() > 0) {
                faultsReported += t.stats().ioErrors() > 0 ? 1 : 0;
                assertTrue(t.stats().ioErrors() > 0 || io.operations() >= n, "an injected fault went unreported");
            }
            verifyCleanReopen(dir);
            if (io.injected() == 0) {
                break; // N is beyond the workload's last operation
            }
        }
        System.out.printf("fault injection (%s): workload of %d I/O operations; faults at N = 1..%d: %d failed the open, "
                + "%d were reported through stats, wrong blocks served: %d%n", persistent ? "persistent" : "once", n - 1,
                n - 1, openFailures, faultsReported, wrong);
        assertEquals(0, wrong, "wrong bytes served under injected faults");
        assertTrue(n > 20, "the workload should perform many I/O operations, did " + (n - 1));
    }

    /** With the real file system, every block served verifies and the tier works. */
    private static void verifyCleanReopen(Path dir) {
        try (MappedFileTier t = open(dir, FileDiskIo.INSTANCE)) {
            MemorySegment buf = Arena.ofAuto().allocate(t.slotBytes());
            for (int id = 0; id < BLOCKS; id++) {
                int slot = t.lookup(key(id));
                if (slot >= 0) {
                    t.read(slot, 0, buf);
                    assertTrue(matches(buf, id), "block " + id + " served with wrong bytes after a fault");
                    t.free(slot);
                }
            }
            assertEquals(0, workload(t, 0));
        }
    }

    @Test
    void failingTheNthOperationOnceNeverServesWrongBytes() {
        runRising(false);
    }

    @Test
    void failingFromTheNthOperationOnNeverServesWrongBytes() {
        runRising(true);
    }

    @Test
    void diskFullWhilePreallocatingLeavesASmallerWorkingTierAndIsReported() {
        long stride = DiskFileDescriptor.slotStride(SMALL.blockBytes());
        long fileLength = DiskFileDescriptor.fileLength(SLOTS, SMALL.blockBytes());
        long chunk = 4096;
        DiskIo full = new FaultyDiskIo(0, false).diskFullBeyond(fileLength - 2 * stride);
        try (MappedFileTier t = MappedFileTier.builder(SMALL).directory(tmp.resolve("full")).modelId(MODEL).io(full)
                .preallocateChunk(chunk).capacityBytes(SLOTS * stride).open()) {
            assertEquals(SLOTS - 2, t.freeSlots());
            assertEquals(2, t.stats().retiredSlots());
            assertTrue(t.stats().ioErrors() > 0);
            assertTrue(t.backing().contains("disk full"), t.backing());
            assertEquals(0, workload(t, 0));
            assertTrue(t.stats().publishes() > 0, "the smaller tier still stores blocks");
        }
    }
}
