package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.TestBlocks.MODEL;
import static io.kvcache.tiers.disk.TestBlocks.SMALL;
import static io.kvcache.tiers.disk.TestBlocks.fill;
import static io.kvcache.tiers.disk.TestBlocks.key;
import static io.kvcache.tiers.disk.TestBlocks.matches;
import static org.junit.jupiter.api.Assertions.*;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.BlockUnavailableException;
import io.kvcache.core.tier.TierKind;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

@ExtendWith(QuietTierLog.class)
class MappedFileTierTest {
    @TempDir
    Path tmp;

    private MappedFileTier open(Path dir, int slots) {
        return MappedFileTier.builder(SMALL).directory(dir).modelId(MODEL)
                .capacityBytes(slots * DiskFileDescriptor.slotStride(SMALL.blockBytes())).open();
    }

    private static int store(MappedFileTier t, long id, BlockKey parent) {
        int slot = t.allocate(key(id));
        assertTrue(slot >= 0, "no slot for block " + id);
        MemorySegment src = Arena.ofAuto().allocate(t.slotBytes());
        fill(src, id);
        t.write(slot, 0, src);
        t.publish(slot, key(id), parent);
        return slot;
    }

    private static boolean readMatches(MappedFileTier t, int slot, long id) {
        MemorySegment dst = Arena.ofAuto().allocate(t.slotBytes());
        t.read(slot, 0, dst);
        return matches(dst, id);
    }

    @Test
    void publishedBlocksAreHitsWithIdenticalBytesAfterReopen() {
        Path dir = tmp.resolve("cache");
        try (MappedFileTier t = open(dir, 16)) {
            assertEquals(TierKind.DISK, t.kind());
            assertEquals(16, t.slotCount());
            for (int i = 0; i < 10; i++) {
                t.free(store(t, i, i == 0 ? null : key(i - 1)));
            }
            assertEquals(16, t.freeSlots());
            assertEquals(10, t.retainedBlocks());
        }
        try (MappedFileTier t = open(dir, 16)) {
            assertEquals(10, t.stats().recoveredBlocks());
            assertFalse(t.stats().uncleanOpen());
            assertFalse(t.stats().indexRebuilt());
            for (int i = 0; i < 10; i++) {
                assertTrue(t.contains(key(i)));
                int slot = t.lookup(key(i));
                assertTrue(slot >= 0, "block " + i + " lost");
                assertTrue(readMatches(t, slot, i), "block " + i + " bytes differ");
                assertEquals(-1, t.lookup(key(i)), "a held block is handed out twice");
                t.free(slot);
            }
            assertEquals(-1, t.lookup(key(99)));
            assertEquals(10, t.stats().hits());
        }
    }

    @Test
    void partialReadsAndWritesRoundTripAndWritingPublishedSlotUnpublishesIt() {
        try (MappedFileTier t = open(tmp.resolve("c"), 4)) {
            int slot = store(t, 7, null);
            MemorySegment part = Arena.ofAuto().allocate(100);
            t.read(slot, 4000, part);
            MemorySegment whole = Arena.ofAuto().allocate(t.slotBytes());
            fill(whole, 7);
            assertEquals(-1, part.mismatch(whole.asSlice(4000, 100)));
            t.write(slot, 10, MemorySegment.ofArray(new byte[] {1, 2, 3}));
            assertFalse(t.contains(key(7)), "a block whose bytes changed stays published");
            t.free(slot);
            assertEquals(-1, t.lookup(key(7)));
        }
    }

    @Test
    void badArgumentsGetSpecificExceptionsAndChangeNothing() {
        try (MappedFileTier t = open(tmp.resolve("c"), 4)) {
            assertThrows(IllegalArgumentException.class, () -> t.free(4));
            assertThrows(IllegalArgumentException.class, () -> t.free(-1));
            assertThrows(IllegalStateException.class, () -> t.free(0));
            int slot = t.allocate();
            assertThrows(IndexOutOfBoundsException.class, () -> t.write(slot, t.slotBytes() - 1, MemorySegment.ofArray(new byte[2])));
            assertThrows(IllegalStateException.class, () -> t.publish((slot + 1) % 4, key(1)));
            assertThrows(IllegalArgumentException.class, () -> t.publish(slot, key(1), key(1)));
            assertThrows(UnsupportedOperationException.class, () -> t.view(slot));
            assertEquals(3, t.freeSlots());
            t.free(slot);
            assertThrows(IllegalStateException.class, () -> t.free(slot));
            assertEquals(4, t.freeSlots());
        }
    }

    @Test
    void aRangeWrappingPastLongMaxIsRefusedBeforeItTouchesAPublishedBlock() {
        Path dir = tmp.resolve("c");
        try (MappedFileTier t = open(dir, 4)) {
            int slot = store(t, 9, null);
            // offset + length wraps negative; the file position slot offset + offset does not: a read there hit
            // the end of the file, which retired the slot and dropped the block as an I/O error
            MemorySegment big = Arena.ofAuto().allocate(16L << 20);
            long near = Long.MAX_VALUE - (8L << 20);
            assertThrows(IndexOutOfBoundsException.class, () -> t.read(slot, near, big));
            assertThrows(IndexOutOfBoundsException.class, () -> t.write(slot, near, big));
            assertThrows(IndexOutOfBoundsException.class, () -> t.write(slot, Long.MAX_VALUE, MemorySegment.ofArray(new byte[1])));
            assertThrows(IndexOutOfBoundsException.class, () -> t.read(slot, Long.MAX_VALUE, Arena.ofAuto().allocate(8)));
            assertTrue(t.contains(key(9)), "a refused range unpublished the block");
            assertTrue(readMatches(t, slot, 9), "a refused range changed the block");
            DiskTierStats st = t.stats();
            assertEquals(0, st.ioErrors(), "a bad argument was reported as an I/O error");
            assertEquals(0, st.retiredSlots());
            assertEquals(0, st.checksumFailures());
            t.free(slot);
        }
        try (MappedFileTier t = open(dir, 4)) {
            int slot = t.lookup(key(9));
            assertTrue(slot >= 0, "the block did not survive a reopen");
            assertTrue(readMatches(t, slot, 9));
            t.free(slot);
        }
    }

    @Test
    void corruptedBytesAreAQuarantinedMissNeverServed() throws Exception {
        Path dir = tmp.resolve("c");
        long dataOffset;
        try (MappedFileTier t = open(dir, 4)) {
            int slot = store(t, 3, null);
            dataOffset = t.address(slot);
            t.free(slot);
        }
        try (var ch = java.nio.channels.FileChannel.open(dir.resolve(MappedFileTier.DATA_FILE),
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {0x55}), dataOffset + 123);
        }
        try (MappedFileTier t = open(dir, 4)) {
            assertTrue(t.contains(key(3)));
            int slot = t.lookup(key(3)); // the header is fine; the bytes are checked when read
            MemorySegment dst = Arena.ofAuto().allocate(t.slotBytes());
            assertThrows(BlockUnavailableException.class, () -> t.read(slot, 0, dst));
            assertEquals(1, t.stats().checksumFailures());
            assertFalse(t.contains(key(3)), "a quarantined block stays published");
            assertFalse(t.verify(slot) && t.contains(key(3)));
            t.free(slot);
            assertEquals(-1, t.lookup(key(3)));
        }
    }

    @Test
    void readOfHeldBlockCorruptedWhileOpenThrowsAndZeroesDestination() throws Exception {
        Path dir = tmp.resolve("c");
        try (MappedFileTier t = open(dir, 4)) {
            int slot = store(t, 5, null);
            try (var ch = java.nio.channels.FileChannel.open(dir.resolve(MappedFileTier.DATA_FILE),
                    java.nio.file.StandardOpenOption.WRITE)) {
                ch.write(java.nio.ByteBuffer.wrap(new byte[] {0x55, 0x66}), t.address(slot) + 17);
            }
            MemorySegment dst = Arena.ofAuto().allocate(t.slotBytes());
            BlockUnavailableException e = assertThrows(BlockUnavailableException.class, () -> t.read(slot, 0, dst));
            assertEquals(slot, e.slot());
            assertEquals(-1, dst.asByteBuffer().compareTo(java.nio.ByteBuffer.allocate((int) t.slotBytes())) == 0 ? -1 : 0);
            assertFalse(t.contains(key(5)));
            assertFalse(t.verify(slot) && t.contains(key(5)));
            assertEquals(1, t.stats().checksumFailures());
            t.free(slot);
            assertEquals(4, t.freeSlots());
        }
    }

    @Test
    void aBlockReadLayerByLayerRightAfterItsCheckIsCheckedOnceNotPerLayer() {
        Path dir = tmp.resolve("layers");
        try (MappedFileTier t = open(dir, 4)) {
            int slot = store(t, 8, null);
            int layers = SMALL.layers();
            long slice = t.slotBytes() / layers;
            long before = t.stats().wholeBlockChecks();
            assertTrue(t.verify(slot));
            MemorySegment part = Arena.ofAuto().allocate(slice);
            MemorySegment whole = Arena.ofAuto().allocate(t.slotBytes());
            for (int l = 0; l < layers; l++) {
                t.read(slot, l * slice, part);
                MemorySegment.copy(part, 0, whole, l * slice, slice);
            }
            assertTrue(matches(whole, 8), "the layer slices put together are the block");
            assertEquals(1, t.stats().wholeBlockChecks() - before, "one check for the verify, none per layer");
        }
    }

    @Test
    void aPartialReadOfABlockCorruptedAfterAStaleCheckThrows() throws Exception {
        Path dir = tmp.resolve("stale");
        try (MappedFileTier t = MappedFileTier.builder(SMALL).directory(dir).modelId(MODEL)
                .capacityBytes(4 * DiskFileDescriptor.slotStride(SMALL.blockBytes())).checkReuseNanos(0).open()) {
            int slot = store(t, 9, null);
            assertTrue(t.verify(slot));
            try (var ch = java.nio.channels.FileChannel.open(dir.resolve(MappedFileTier.DATA_FILE),
                    java.nio.file.StandardOpenOption.WRITE)) {
                ch.write(java.nio.ByteBuffer.wrap(new byte[] {0x55, 0x66}), t.address(slot) + 3);
            }
            MemorySegment part = Arena.ofAuto().allocate(t.slotBytes() / 2);
            long before = t.stats().wholeBlockChecks();
            assertThrows(BlockUnavailableException.class, () -> t.read(slot, t.slotBytes() / 2, part));
            assertEquals(1, t.stats().wholeBlockChecks() - before, "the partial read checked the whole block");
            assertEquals(1, t.stats().checksumFailures());
            assertFalse(t.contains(key(9)));
        }
    }

    @Test
    void aBlockRewrittenAfterItsCheckIsCheckedAgainByAPartialRead() {
        Path dir = tmp.resolve("rewritten");
        try (MappedFileTier t = open(dir, 4)) {
            int slot = t.allocate(key(10));
            MemorySegment src = Arena.ofAuto().allocate(t.slotBytes());
            fill(src, 10);
            t.write(slot, 0, src);
            assertTrue(t.verify(slot));
            fill(src, 11);
            t.write(slot, 0, src);
            long before = t.stats().wholeBlockChecks();
            MemorySegment part = Arena.ofAuto().allocate(64);
            t.read(slot, 0, part);
            assertEquals(1, t.stats().wholeBlockChecks() - before, "the rewrite's checksum is not the one checked");
        }
    }

    @Test
    void secondOpenOfSameDirectoryFailsFastNamingTheHolder() {
        Path dir = tmp.resolve("c");
        try (MappedFileTier t = open(dir, 4)) {
            CacheDirectoryLockedException e = assertThrows(CacheDirectoryLockedException.class, () -> open(dir, 4));
            assertTrue(e.getMessage().contains(dir.toAbsolutePath().toString()), e.getMessage());
            assertFalse(t.failed(), "the refused second open disturbed the first");
        }
        open(dir, 4).close(); // released on close
    }

    @Test
    void layoutModelVersionAndCapacityMismatchesAreRefusedAndLeaveTheFileUntouched() throws Exception {
        Path dir = tmp.resolve("c");
        try (MappedFileTier t = open(dir, 4)) {
            t.free(store(t, 1, null));
        }
        Path data = dir.resolve(MappedFileTier.DATA_FILE);
        byte[] before = Files.readAllBytes(data);
        KvLayout other = new KvLayout(2, 2, 32, DType.BF16, 16);
        DiskFormatException e1 = assertThrows(DiskFormatException.class, () -> MappedFileTier.builder(other)
                .directory(dir).modelId(MODEL).capacityBytes(4 * 8192).open());
        assertTrue(e1.getMessage().contains("layout"), e1.getMessage());
        DiskFormatException e2 = assertThrows(DiskFormatException.class, () -> MappedFileTier.builder(SMALL)
                .directory(dir).modelId("another-model").capacityBytes(4 * 8192).open());
        assertTrue(e2.getMessage().contains("another-model"), e2.getMessage());
        DiskFormatException e3 = assertThrows(DiskFormatException.class, () -> open(dir, 8));
        assertTrue(e3.getMessage().contains("slots"), e3.getMessage());
        assertArrayEquals(before, Files.readAllBytes(data));

        // a future format version
        try (var ch = java.nio.channels.FileChannel.open(data, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .putInt(0, DiskFileDescriptor.FORMAT_VERSION + 1), DiskFileDescriptor.VERSION_OFFSET);
        }
        byte[] v2 = Files.readAllBytes(data);
        DiskFormatException e4 = assertThrows(DiskFormatException.class, () -> open(dir, 4));
        assertTrue(e4.getMessage().contains("version " + (DiskFileDescriptor.FORMAT_VERSION + 1)), e4.getMessage());
        assertArrayEquals(v2, Files.readAllBytes(data));

        // not our file at all
        Files.write(data, "hello, this is somebody's file".getBytes());
        assertThrows(DiskFormatException.class, () -> open(dir, 4));
        assertEquals("hello, this is somebody's file", Files.readString(data));
    }

    @Test
    void aNegativeOrZeroCapacityIsRefusedAsSuchNotAsMissing() {
        Path dir = tmp.resolve("c");
        for (long bad : new long[] {-1, -8192, 0, Long.MIN_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MappedFileTier.builder(SMALL).directory(dir).modelId(MODEL).capacityBytes(bad).open());
            assertFalse(e.getMessage().contains("required"), e.getMessage());
            assertTrue(e.getMessage().contains("capacityBytes") && e.getMessage().contains(Long.toString(bad))
                    && e.getMessage().contains("positive"), e.getMessage());
        }
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> MappedFileTier.builder(SMALL).directory(dir).modelId(MODEL).open());
        assertTrue(missing.getMessage().contains("capacityBytes is required"), missing.getMessage());
        // a refused value leaves the builder as it was
        MappedFileTier.Builder b = MappedFileTier.builder(SMALL).directory(dir).modelId(MODEL)
                .capacityBytes(3 * SMALL.blockBytes());
        assertThrows(IllegalArgumentException.class, () -> b.capacityBytes(-1));
        try (MappedFileTier t = b.open()) {
            assertEquals(3, t.slotCount());
        }
    }

    @Test
    void aSymlinkedCacheDirectoryOrFileIsRefusedAsASymbolicLink() throws Exception {
        Path real = Files.createDirectories(tmp.resolve("real"));
        Path link = Files.createSymbolicLink(tmp.resolve("link"), real);
        DiskFormatException e = assertThrows(DiskFormatException.class, () -> open(link, 4));
        assertTrue(e.getMessage().contains("symbolic link") && e.getMessage().contains("refused")
                && e.getMessage().contains(link.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("not a directory"), e.getMessage());
        try (var files = Files.list(real)) {
            assertEquals(0, files.count(), "a refused open wrote into the link's target");
        }
        Path dangling = Files.createSymbolicLink(tmp.resolve("dangling"), tmp.resolve("nowhere"));
        DiskFormatException d = assertThrows(DiskFormatException.class, () -> open(dangling, 4));
        assertTrue(d.getMessage().contains("symbolic link"), d.getMessage());
        assertFalse(Files.exists(tmp.resolve("nowhere")), "a refused open created the link's target");

        // a cache file replaced by a link
        Path dir = tmp.resolve("c");
        open(dir, 4).close();
        Path data = dir.resolve(MappedFileTier.DATA_FILE);
        Path elsewhere = tmp.resolve("elsewhere.kvc");
        Files.move(data, elsewhere);
        Files.createSymbolicLink(data, elsewhere);
        byte[] before = Files.readAllBytes(elsewhere);
        DiskFormatException f = assertThrows(DiskFormatException.class, () -> open(dir, 4));
        assertTrue(f.getMessage().contains("symbolic link") && f.getMessage().contains("refused"), f.getMessage());
        assertArrayEquals(before, Files.readAllBytes(elsewhere));
    }

    @Test
    void directoryIs0700AndFiles0600WhateverTheUmask() throws Exception {
        Path dir = tmp.resolve("a/b/cache");
        try (MappedFileTier t = open(dir, 4)) {
            assertEquals(4, t.slotCount());
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
            for (String f : new String[] {MappedFileTier.DATA_FILE, MappedFileTier.INDEX_FILE, CacheDirectory.LOCK_FILE}) {
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(f))), f);
            }
        }
    }

    @Test
    void cacheFileWritableByOthersOrOwnedByAnotherUserIsRefused() throws Exception {
        Path dir = tmp.resolve("c");
        open(dir, 4).close();
        Path data = dir.resolve(MappedFileTier.DATA_FILE);
        Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rw-rw-rw-"));
        DiskFormatException e = assertThrows(DiskFormatException.class, () -> open(dir, 4));
        assertTrue(e.getMessage().contains("writable by group or others"), e.getMessage());
        Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rw-------"));
        open(dir, 4).close();

        int me = io.kvcache.nativ.libc.LibC.INSTANCE.geteuid();
        org.junit.jupiter.api.Assumptions.assumeTrue(me == 0, "changing a file's owner needs root");
        Files.setAttribute(data, "unix:uid", 65534);
        DiskFormatException e2 = assertThrows(DiskFormatException.class, () -> open(dir, 4));
        assertTrue(e2.getMessage().contains("belongs to uid 65534"), e2.getMessage());
    }

    @Test
    void reusedBlocksAreNotFlushedByOneOffBlocksAndLeavesGoFirst() {
        try (MappedFileTier t = open(tmp.resolve("c"), 8)) {
            // a chain of 4 blocks, looked up often
            for (int i = 0; i < 4; i++) {
                t.free(store(t, i, i == 0 ? null : key(i - 1)));
            }
            for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 4; i++) {
                    int s = t.lookup(key(i));
                    assertTrue(s >= 0);
                    t.free(s);
                }
            }
            // a flood of one-off blocks
            int stored = 0;
            for (int id = 1000; id < 1100; id++) {
                int slot = t.allocate(key(id));
                if (slot >= 0) {
                    MemorySegment src = Arena.ofAuto().allocate(t.slotBytes());
                    fill(src, id);
                    t.write(slot, 0, src);
                    t.publish(slot, key(id));
                    t.free(slot);
                    stored++;
                }
            }
            assertTrue(stored >= 4, "one-off blocks still get the free room");
            assertTrue(t.stats().admissionRejections() > 0);
            for (int i = 0; i < 4; i++) {
                assertTrue(t.contains(key(i)), "reused block " + i + " was flushed by one-off blocks");
            }
        }
    }

    @Test
    void leafBlocksOfAChainAreDroppedBeforeTheirParents() {
        try (MappedFileTier t = open(tmp.resolve("c"), 4)) {
            for (int i = 0; i < 4; i++) {
                t.free(store(t, i, i == 0 ? null : key(i - 1))); // chain 0 <- 1 <- 2 <- 3, 0 released first
            }
            int slot = t.allocate(); // needs room: must drop 3, the leaf, not 0, the oldest
            assertTrue(slot >= 0);
            assertTrue(t.contains(key(0)) && t.contains(key(1)) && t.contains(key(2)));
            assertFalse(t.contains(key(3)));
            int s2 = t.allocate(); // 2 is the leaf now
            assertFalse(t.contains(key(2)));
            assertTrue(t.contains(key(0)) && t.contains(key(1)));
            t.free(slot);
            t.free(s2);
        }
    }

    @Test
    void childPublishedBeforeItsParentStillProtectsTheParent() {
        try (MappedFileTier t = open(tmp.resolve("c"), 3)) {
            t.free(store(t, 11, key(10))); // child first
            t.free(store(t, 10, null));    // then its parent
            t.free(store(t, 50, null));    // an unrelated leaf, released last
            int slot = t.allocate();
            assertTrue(t.contains(key(10)), "the parent of a retained child was dropped first");
            t.free(slot);
        }
    }

    @Test
    void publishingAKeyAgainReplacesTheUnreferencedCopyAndKeepsAHeldOne() {
        Path dir = tmp.resolve("c");
        try (MappedFileTier t = open(dir, 4)) {
            int first = store(t, 1, null);
            t.free(first);
            int second = store(t, 1, null); // the same block, computed again
            assertNotEquals(first, second);
            assertEquals(3, t.freeSlots(), "the unreferenced older copy was not dropped");
            t.free(second);
            int held = t.lookup(key(1));
            assertEquals(second, held);
            int third = store(t, 1, null); // published again while the other copy is held
            t.free(third);
            t.free(held);
            int found = t.lookup(key(1));
            assertTrue(found >= 0 && readMatches(t, found, 1));
            t.free(found);
        }
        try (MappedFileTier t = open(dir, 4)) {
            assertEquals(1, t.stats().recoveredBlocks(), "a duplicate survived the reopen");
            int found = t.lookup(key(1));
            assertTrue(found >= 0 && readMatches(t, found, 1));
            t.free(found);
        }
    }

    /** The files as a crash at this instant would leave them (the page cache outlives a killed process). */
    private static Path crashImage(Path dir, Path to) throws java.io.IOException {
        Files.createDirectories(to);
        for (String f : new String[] {MappedFileTier.DATA_FILE, MappedFileTier.INDEX_FILE}) {
            Files.copy(dir.resolve(f), to.resolve(f));
        }
        return to;
    }

    @Test
    void crashAfterAnEvictedSlotIsRewrittenNeverServesTheOldKeyWithTheNewBytes() throws Exception {
        Path dir = tmp.resolve("c");
        Path image;
        try (MappedFileTier t = open(dir, 1)) {
            t.free(store(t, 1, null));                // block 1 published, unreferenced
            int slot = t.allocate(key(2));            // the only slot: block 1 is dropped
            assertEquals(0, slot);
            MemorySegment src = Arena.ofAuto().allocate(t.slotBytes());
            fill(src, 2);
            t.write(slot, 0, src);                    // block 2's bytes, not yet published
            image = crashImage(dir, tmp.resolve("crash"));
            t.publish(slot, key(2));
        }
        try (MappedFileTier t = open(image, 1)) {
            assertTrue(t.stats().uncleanOpen());
            assertEquals(-1, t.lookup(key(1)), "the dropped block is still found after the crash");
            assertEquals(-1, t.lookup(key(2)), "a block is found that was never published");
            assertEquals(0, t.stats().checksumFailures(), "the header was not cleared before the bytes changed");
        }
    }

    @Test
    void crashWhileAHeldPublishedBlockIsOverwrittenNeverServesTheOldKeyWithTheNewBytes() throws Exception {
        Path dir = tmp.resolve("c");
        Path image;
        try (MappedFileTier t = open(dir, 2)) {
            int slot = store(t, 1, null);             // published and held
            MemorySegment src = Arena.ofAuto().allocate(t.slotBytes());
            fill(src, 2);
            t.write(slot, 0, src);                    // other bytes into the held slot
            image = crashImage(dir, tmp.resolve("crash"));
            t.free(slot);
        }
        try (MappedFileTier t = open(image, 2)) {
            assertEquals(-1, t.lookup(key(1)), "the overwritten block is still found after the crash");
            assertEquals(0, t.stats().checksumFailures(), "the header was not cleared before the bytes changed");
        }
    }

    @Test
    void anIndexWhoseOpenWasInterruptedIsRebuiltFromTheSlotHeadersWithoutWaiting() throws Exception {
        Path dir = tmp.resolve("c");
        try (MappedFileTier t = open(dir, 4)) {
            t.free(store(t, 1, null));
            t.free(store(t, 2, key(1)));
        }
        Files.createFile(dir.resolve(MappedFileTier.INDEX_FILE + ".opening")); // a process died opening it
        try (MappedFileTier t = open(dir, 4)) {
            assertTrue(t.stats().indexRebuilt());
            assertEquals(2, t.stats().recoveredBlocks());
            for (int id = 1; id <= 2; id++) {
                int slot = t.lookup(key(id));
                assertTrue(slot >= 0 && readMatches(t, slot, id), "block " + id);
                t.free(slot);
            }
        }
        assertFalse(Files.exists(dir.resolve(MappedFileTier.INDEX_FILE + ".opening")));
    }
}
