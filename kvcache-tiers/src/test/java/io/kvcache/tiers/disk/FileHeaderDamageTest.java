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
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A damaged byte of the data file's 4 KiB header. Bytes that do not say whose file it is (the
 * reserved word and zero tail, the open state, the index checksum and length, the header
 * checksum itself) are repaired: every block the slot headers prove is still served. Bytes that
 * do (layout, model, capacity) still decide: a file that is not this tier's is refused and left
 * untouched, damaged or not.
 */
@ExtendWith(QuietTierLog.class)
class FileHeaderDamageTest {
    private static final int SLOTS = 16;
    private static final int BLOCKS = 12;
    private static final int MODEL_BYTES = MODEL.getBytes(StandardCharsets.UTF_8).length;

    @TempDir
    Path tmp;

    private static MappedFileTier open(Path dir) {
        return open(dir, SMALL, MODEL, SLOTS);
    }

    private static MappedFileTier open(Path dir, KvLayout layout, String model, int slots) {
        return MappedFileTier.builder(layout).directory(dir).modelId(model)
                .capacityBytes(slots * DiskFileDescriptor.slotStride(layout.blockBytes())).open();
    }

    private static BlockKey parent(int id) {
        return id % 4 == 0 ? null : key(id - 1);
    }

    /** A cleanly closed cache holding blocks 0..BLOCKS-1, chains of 4. */
    private Path cacheWithBlocks(String name) {
        Path dir = tmp.resolve(name);
        try (MappedFileTier t = open(dir)) {
            MemorySegment buf = Arena.ofAuto().allocate(t.slotBytes());
            for (int id = 0; id < BLOCKS; id++) {
                int slot = t.allocate(key(id));
                fill(buf, id);
                t.write(slot, 0, buf);
                t.publish(slot, key(id), parent(id));
                t.free(slot);
            }
        }
        return dir;
    }

    /** Offsets of the header bytes that say nothing about whose file it is. */
    static List<Integer> nonIdentityBytes() {
        List<Integer> at = new ArrayList<>();
        // open state, index crc, reserved word, index length
        for (int i = DiskFileDescriptor.OPEN_STATE_OFFSET; i < DiskFileDescriptor.MODEL_ID_LENGTH_OFFSET; i++) {
            at.add(i);
        }
        // the zero tail after the model id, and the header crc
        for (int i = DiskFileDescriptor.MODEL_ID_OFFSET + MODEL_BYTES; i < DiskFileDescriptor.FILE_HEADER_BYTES; i++) {
            at.add(i);
        }
        return at;
    }

    private static byte[] header(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir.resolve(MappedFileTier.DATA_FILE), StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(DiskFileDescriptor.FILE_HEADER_BYTES);
            while (b.hasRemaining() && ch.read(b) > 0) {
                // fill
            }
            return b.array();
        }
    }

    private static void writeHeader(Path dir, byte[] header) throws IOException {
        try (FileChannel ch = FileChannel.open(dir.resolve(MappedFileTier.DATA_FILE), StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(header);
            while (b.hasRemaining()) {
                ch.write(b, b.position());
            }
        }
    }

    private static boolean crcVerifies(byte[] header) {
        CRC32C c = new CRC32C();
        c.update(header, 0, DiskFileDescriptor.FILE_HEADER_CRC_OFFSET);
        return (int) c.getValue() == ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN)
                .getInt(DiskFileDescriptor.FILE_HEADER_CRC_OFFSET);
    }

    private static byte[] flipped(byte[] pristine, int at) {
        byte[] h = pristine.clone();
        h[at] ^= (byte) (1 << (at % 8));
        return h;
    }

    @Test
    void everyNonIdentityByteOfTheHeaderFlippedStillServesEveryBlockByteIdentical() throws IOException {
        Path dir = cacheWithBlocks("c");
        byte[] pristine = header(dir);
        assertTrue(crcVerifies(pristine));
        MemorySegment buf = Arena.ofAuto().allocate(SMALL.blockBytes());
        for (int at : nonIdentityBytes()) {
            writeHeader(dir, flipped(pristine, at));
            try (MappedFileTier t = open(dir)) {
                DiskTierStats st = t.stats();
                assertEquals(BLOCKS, st.recoveredBlocks(), "blocks lost after flipping header byte " + at);
                assertTrue(st.headerRepaired(), "a damaged header went unnoticed, byte " + at);
                assertTrue(st.indexRebuilt(), "an index the damaged header vouched for was kept, byte " + at);
                assertEquals(0, st.droppedAtOpen(), "byte " + at);
                for (int id = 0; id < BLOCKS; id++) {
                    int slot = t.lookup(key(id));
                    assertTrue(slot >= 0, "block " + id + " lost after flipping header byte " + at);
                    t.read(slot, 0, buf);
                    assertTrue(matches(buf, id), "block " + id + " bytes differ after flipping header byte " + at);
                    t.free(slot);
                }
            }
            byte[] after = header(dir);
            assertTrue(crcVerifies(after), "the header was not repaired on disk, byte " + at);
            assertEquals(DiskFileDescriptor.STATE_CLOSED, ByteBuffer.wrap(after).order(ByteOrder.LITTLE_ENDIAN)
                    .getInt(DiskFileDescriptor.OPEN_STATE_OFFSET));
            pristine = after; // the index was rebuilt: the next damage starts from the repaired header
        }
        // and the repaired file opens cleanly, its chains intact (leaves are dropped before their parents)
        try (MappedFileTier t = open(dir)) {
            assertFalse(t.stats().headerRepaired());
            assertFalse(t.stats().indexRebuilt());
            assertEquals(BLOCKS, t.stats().recoveredBlocks());
        }
    }

    @Test
    void aFileLeftAllZeroByAKillDuringItsCreationIsInitializedNotRefused() throws IOException {
        // the first open reserves the file (posix_fallocate: zeros) before it writes the header; a kill
        // between the two left a file that every later open refused as "not a kvcache disk file"
        Path dir = tmp.resolve("c");
        long length;
        try (MappedFileTier t = open(dir)) {
            length = Files.size(dir.resolve(MappedFileTier.DATA_FILE));
        }
        Files.delete(dir.resolve(MappedFileTier.INDEX_FILE));
        try (FileChannel ch = FileChannel.open(dir.resolve(MappedFileTier.DATA_FILE), StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(ByteBuffer.allocate(1), length - 1);
        }
        try (MappedFileTier t = open(dir)) {
            assertEquals(0, t.stats().recoveredBlocks());
            MemorySegment buf = Arena.ofAuto().allocate(t.slotBytes());
            int slot = t.allocate(key(1));
            fill(buf, 1);
            t.write(slot, 0, buf);
            t.publish(slot, key(1), null);
            t.free(slot);
        }
        try (MappedFileTier t = open(dir)) {
            assertEquals(1, t.stats().recoveredBlocks());
        }
        // a header that is not all zero and not ours is still refused
        writeHeader(dir, flipped(new byte[DiskFileDescriptor.FILE_HEADER_BYTES], 3));
        byte[] before = Files.readAllBytes(dir.resolve(MappedFileTier.DATA_FILE));
        assertThrows(DiskFormatException.class, () -> open(dir));
        assertArrayEquals(before, Files.readAllBytes(dir.resolve(MappedFileTier.DATA_FILE)));
    }

    @Test
    void aDamagedHeaderOfAnotherModelLayoutOrCapacityIsRefusedAndLeftUntouched() throws IOException {
        Path dir = cacheWithBlocks("c");
        Path data = dir.resolve(MappedFileTier.DATA_FILE);
        byte[] pristine = header(dir);
        int reservedWord = DiskFileDescriptor.INDEX_CRC_OFFSET + 4;
        writeHeader(dir, flipped(pristine, reservedWord));
        byte[] before = Files.readAllBytes(data);
        byte[] indexBefore = Files.readAllBytes(dir.resolve(MappedFileTier.INDEX_FILE));

        DiskFormatException model = assertThrows(DiskFormatException.class, () -> open(dir, SMALL, "another-model", SLOTS));
        assertTrue(model.getMessage().contains("another-model") && model.getMessage().contains(MODEL), model.getMessage());
        assertTrue(model.getMessage().contains("checksum"), model.getMessage());
        KvLayout other = new KvLayout(2, 2, 32, DType.BF16, 16);
        DiskFormatException layout = assertThrows(DiskFormatException.class, () -> open(dir, other, MODEL, SLOTS));
        assertTrue(layout.getMessage().contains("layout"), layout.getMessage());
        DiskFormatException capacity = assertThrows(DiskFormatException.class, () -> open(dir, SMALL, MODEL, SLOTS * 2));
        assertTrue(capacity.getMessage().contains("slots"), capacity.getMessage());
        assertArrayEquals(before, Files.readAllBytes(data), "a refused open changed the data file");
        assertArrayEquals(indexBefore, Files.readAllBytes(dir.resolve(MappedFileTier.INDEX_FILE)),
                "a refused open changed the index");

        // a damaged identity byte cannot tell this tier's file from another's: refused, not reinterpreted
        int[] identity = {DiskFileDescriptor.FINGERPRINT_OFFSET + 3, DiskFileDescriptor.SLOT_COUNT_OFFSET,
            DiskFileDescriptor.MODEL_ID_LENGTH_OFFSET, DiskFileDescriptor.MODEL_ID_OFFSET + 2};
        for (int at : identity) {
            writeHeader(dir, flipped(pristine, at));
            byte[] damaged = Files.readAllBytes(data);
            DiskFormatException e = assertThrows(DiskFormatException.class, () -> open(dir), "identity byte " + at);
            assertTrue(e.getMessage().contains("checksum"), e.getMessage());
            assertArrayEquals(damaged, Files.readAllBytes(data), "a refused open changed the data file, byte " + at);
        }

        // undamaged again, it is this tier's file with every block
        writeHeader(dir, pristine);
        try (MappedFileTier t = open(dir)) {
            assertEquals(BLOCKS, t.stats().recoveredBlocks());
        }
    }
}
