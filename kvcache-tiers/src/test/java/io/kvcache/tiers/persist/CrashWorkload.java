package io.kvcache.tiers.persist;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.PersistPolicy;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * The multi-session chat workload of {@link WriteThroughCrashTest}: a session's tokens, salt and
 * K/V bytes are functions of its number and position, so a verifier in another process knows
 * what every block must hold. The volatile tiers hold the whole workload: blocks reach the disk
 * only by write-through, never by eviction.
 */
final class CrashWorkload {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 8, DType.FP16, 4);
    static final String MODEL = "crash-model";
    static final int SESSIONS = 48;
    static final int SYSTEM_BLOCKS = 2;
    static final int MAX_BLOCKS = 24;
    static final int DISK_SLOTS = 1536;

    private CrashWorkload() {
    }

    static KvCacheManager manager(Path dir, PersistPolicy policy) {
        MappedFileTier disk = MappedFileTier.builder(LAYOUT).directory(dir).modelId(MODEL)
                .capacityBytes(DISK_SLOTS * (LAYOUT.blockBytes() + 4096L)).open();
        return KvCacheManager.builder(LAYOUT).modelId(MODEL)
                .tier(new SimulatedDeviceTier(LAYOUT, 1400L * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 64L * LAYOUT.blockBytes()))
                .tier(disk)
                .persistPolicy(policy)
                .persistOnClose(false)
                .build();
    }

    /** Sessions of one salt share a system prompt. */
    static byte[] salt(int session) {
        return new byte[] {(byte) (session % 3)};
    }

    static int token(int session, int pos) {
        if (pos < SYSTEM_BLOCKS * LAYOUT.blockTokens()) {
            return 1000 + pos;
        }
        long h = (session * 0x9E3779B97F4A7C15L) ^ (pos * 0xBF58476D1CE4E5B9L);
        h ^= h >>> 29;
        return (int) Math.floorMod(h, 5000L);
    }

    static int[] tokens(int session, int length) {
        int[] t = new int[length];
        for (int i = 0; i < length; i++) {
            t[i] = token(session, i);
        }
        return t;
    }

    /** The bytes of block {@code block} of a session: a function of the salt and every token up to its end. */
    static void fill(MemorySegment dst, int session, int block) {
        long h = 0x632BE59BD9B4E019L + (session % 3) * 0x8CB92BA72F3D8DD7L;
        int end = (block + 1) * LAYOUT.blockTokens();
        for (int p = 0; p < end; p++) {
            h = (h ^ token(session, p)) * 0xBF58476D1CE4E5B9L;
            h ^= h >>> 31;
        }
        for (long i = 0; i < LAYOUT.blockBytes(); i++) {
            h = h * 6364136223846793005L + 1442695040888963407L;
            dst.set(ValueLayout.JAVA_BYTE, i, (byte) ((h >>> 56) | 1));
        }
    }

    /**
     * Opens a session's first {@code blocks} full blocks (plus one token to compute), writes the
     * blocks not found cached, and marks them written.
     */
    static Sequence prefill(KvCacheManager m, int session, int blocks, Arena arena) {
        int bt = LAYOUT.blockTokens();
        Sequence s = m.open(salt(session), tokens(session, blocks * bt + 1));
        MemorySegment buf = arena.allocate(LAYOUT.blockBytes());
        for (int b = s.cachedTokens() / bt; b < blocks; b++) {
            try (ResidencyHandle h = m.ensureResident(s, b, b + 1)) {
                h.await();
                fill(buf, session, b);
                h.write(b, 0, buf);
            }
            s.markWritten((b + 1) * bt);
        }
        return s;
    }

    /** @return the first block of a session whose bytes differ from the pattern, or -1 */
    static int firstWrong(KvCacheManager m, Sequence s, int session, int blocks, Arena arena) {
        MemorySegment got = arena.allocate(LAYOUT.blockBytes());
        MemorySegment want = arena.allocate(LAYOUT.blockBytes());
        for (int b = 0; b < blocks; b++) {
            m.readBlock(s, b, got);
            fill(want, session, b);
            if (got.mismatch(want) != -1) {
                return b;
            }
        }
        return -1;
    }
}
