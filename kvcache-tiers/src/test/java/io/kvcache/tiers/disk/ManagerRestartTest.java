package io.kvcache.tiers.disk;

import static org.junit.jupiter.api.Assertions.*;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Blocks a manager demoted to the disk tier are hits for a new manager over the same
 * directory, with the same salt and prefix, byte for byte; another salt does not see them.
 */
class ManagerRestartTest {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 8, DType.FP16, 4);
    static final byte[] SALT = {7, 7, 7};
    static final int PROMPT_BLOCKS = 6;

    @TempDir
    Path tmp;

    private KvCacheManager manager(Path dir) {
        return KvCacheManager.builder(LAYOUT)
                .modelId("restart-model")
                .tier(new SimulatedDeviceTier(LAYOUT, 2 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 2 * LAYOUT.blockBytes()))
                .tier(MappedFileTier.builder(LAYOUT).directory(dir).modelId("restart-model")
                        .capacityBytes(64 * LAYOUT.blockBytes()).open())
                .evictionPolicy(EvictionPolicy.lru())
                .build();
    }

    private static int[] prompt(int seed) {
        return IntStream.range(0, PROMPT_BLOCKS * LAYOUT.blockTokens()).map(i -> seed * 1000 + i).toArray();
    }

    /** The bytes a block of a prompt holds: derived from its block index and prompt seed. */
    private static MemorySegment blockBytes(int seed, int block) {
        MemorySegment m = Arena.ofAuto().allocate(LAYOUT.blockBytes());
        long x = seed * 31L + block + 1;
        for (long i = 0; i < m.byteSize(); i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            m.set(ValueLayout.JAVA_BYTE, i, (byte) ((x >>> 56) | 1));
        }
        return m;
    }

    private static void prefill(KvCacheManager m, Sequence s, int seed) {
        for (int b = 0; b < PROMPT_BLOCKS; b++) {
            try (ResidencyHandle h = m.ensureResident(s, b, b + 1)) {
                h.await();
                h.write(b, 0, blockBytes(seed, b));
            }
            s.markWritten((b + 1) * LAYOUT.blockTokens());
        }
    }

    @Test
    void blocksStoredByOneManagerAreByteIdenticalHitsInTheNext() {
        Path dir = tmp.resolve("cache");
        try (KvCacheManager m = manager(dir)) {
            // three prompts through 2 device + 2 host slots: most blocks end up on disk
            for (int seed = 1; seed <= 3; seed++) {
                Sequence s = m.open(SALT, prompt(seed));
                prefill(m, s, seed);
                s.close();
            }
        }
        try (KvCacheManager m = manager(dir)) {
            MappedFileTier disk = (MappedFileTier) m.tiers().get(2);
            assertTrue(disk.stats().recoveredBlocks() > 0, "nothing was persisted");
            int hits = 0;
            for (int seed = 1; seed <= 3; seed++) {
                Sequence s = m.open(SALT, prompt(seed));
                int cachedBlocks = s.cachedTokens() / LAYOUT.blockTokens();
                MemorySegment dst = Arena.ofAuto().allocate(LAYOUT.blockBytes());
                for (int b = 0; b < cachedBlocks; b++) {
                    m.readBlock(s, b, dst);
                    assertEquals(-1, dst.mismatch(blockBytes(seed, b)), "prompt " + seed + " block " + b + " differs");
                }
                hits += cachedBlocks;
                s.close();
            }
            System.out.println("manager restart: " + hits + " of " + 3 * PROMPT_BLOCKS
                    + " prompt blocks were hits after the restart; disk stats " + disk.stats());
            // every full block but the last of each prompt (always recomputed for its logits):
            // the blocks still in device and host memory were persisted by close()
            assertEquals(3 * (PROMPT_BLOCKS - 1), hits, "blocks that survived the restart");
            Sequence other = m.open(new byte[] {9}, prompt(1));
            assertEquals(0, other.cachedTokens(), "another tenant's salt must not hit");
            other.close();
        }
    }
}
