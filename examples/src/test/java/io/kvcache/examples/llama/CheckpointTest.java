package io.kvcache.examples.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
    private static final LlamaConfig SHAPE = new LlamaConfig(16, 24, 2, 4, 2, 20, 32, true);

    @Test
    void stories260KHeaderIsReadAsDocumented() {
        Checkpoint cp = Checkpoint.read(TestModels.stories260K());
        assertEquals(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true), cp.config());
        assertSame(cp.weights().tokenEmbedding(), cp.weights().classifier());
    }

    @Test
    void negativeVocabSizeReadsASeparateClassifier() {
        LlamaConfig separate = new LlamaConfig(16, 24, 2, 4, 2, 20, 32, false);
        Checkpoint cp = Checkpoint.parse("t", SyntheticCheckpoint.bytes(separate, 3));
        assertEquals(separate, cp.config());
        assertNotSame(cp.weights().tokenEmbedding(), cp.weights().classifier());
        assertEquals(20 * 16, cp.weights().classifier().length);
    }

    @Test
    void syntheticCheckpointIsDeterministic() {
        assertEquals(SyntheticCheckpoint.bytes(SHAPE, 5), SyntheticCheckpoint.bytes(SHAPE, 5));
        assertTrue(!SyntheticCheckpoint.bytes(SHAPE, 5).equals(SyntheticCheckpoint.bytes(SHAPE, 6)));
    }

    @Test
    void truncatedFileIsRejectedWithSizes(@TempDir Path dir) throws Exception {
        ByteBuffer b = SyntheticCheckpoint.bytes(SHAPE, 1);
        byte[] all = new byte[b.remaining() - 4];
        b.get(all);
        Path f = Files.write(dir.resolve("cut.bin"), all);
        var e = assertThrows(CheckpointException.class, () -> Checkpoint.read(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void shortFileIsRejected(@TempDir Path dir) throws Exception {
        Path f = Files.write(dir.resolve("short.bin"), new byte[10]);
        var e = assertThrows(CheckpointException.class, () -> Checkpoint.read(f));
        assertTrue(e.getMessage().contains("shorter than the 28-byte"), e.getMessage());
    }

    @Test
    void headerWithHeadsNotDividingDimIsRejected() {
        ByteBuffer b = ByteBuffer.allocate(28 + 400).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(30).putInt(24).putInt(2).putInt(4).putInt(2).putInt(20).putInt(32).rewind();
        var e = assertThrows(CheckpointException.class, () -> Checkpoint.parse("odd", b));
        assertTrue(e.getMessage().contains("not a multiple of n_heads"), e.getMessage());
    }

    @Test
    void missingFileAndDirectoryAreNamed(@TempDir Path dir) {
        var missing = assertThrows(CheckpointException.class, () -> Checkpoint.read(dir.resolve("nope.bin")));
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        var directory = assertThrows(CheckpointException.class, () -> Checkpoint.read(dir));
        assertTrue(directory.getMessage().contains("is a directory"), directory.getMessage());
    }
}
