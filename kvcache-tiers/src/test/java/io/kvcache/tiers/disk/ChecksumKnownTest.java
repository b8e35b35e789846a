package io.kvcache.tiers.disk;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The disk tier says when it cannot verify a slot's bytes, so that the manager treats them as a
 * miss instead of serving bytes nobody can vouch for.
 */
class ChecksumKnownTest {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 8, DType.FP16, 4);

    @Test
    void onlyBytesWrittenWholeOrPublishedHaveAKnownChecksum(@TempDir Path dir) {
        try (MappedFileTier t = MappedFileTier.builder(LAYOUT).directory(dir).modelId("m")
                .capacityBytes(8 * (LAYOUT.blockBytes() + 4096L)).open();
             Arena arena = Arena.ofConfined()) {
            MemorySegment block = arena.allocate(LAYOUT.blockBytes());
            block.fill((byte) 5);
            int whole = t.allocate();
            assertFalse(t.checksumKnown(whole), "nothing written yet");
            t.write(whole, 0, block);
            assertTrue(t.checksumKnown(whole), "written whole");
            int partial = t.allocate();
            t.write(partial, 16, block.asSlice(0, 32));
            assertFalse(t.checksumKnown(partial), "written in part: the tier cannot vouch for the block");
        }
    }
}
