package io.kvcache.redis;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.PersistPolicy;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A prompt workload whose K/V bytes are a function of the salt and the tokens, so that a process
 * that did not write a block knows what it must hold. Managers of device + host + Redis, or
 * device + host + disk + Redis.
 */
final class SharedWorkload {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 16, DType.FP16, 8);
    static final String MODEL = "shared-model";

    private SharedWorkload() {
    }

    static RedisTier redis(RedisTierConfig config, int slots) {
        return RedisTier.builder(LAYOUT).config(config).modelId(MODEL).capacityBytes(slots * LAYOUT.blockBytes()).open();
    }

    /** Device and host tiers that hold a test's prompts. */
    static KvCacheManager manager(Path diskDir, Tier remote) {
        return manager(diskDir, remote, 48, 32);
    }

    /** Device and host tiers of the given sizes: small ones make long prompts evict blocks down the tiers. */
    static KvCacheManager manager(Path diskDir, Tier remote, int deviceBlocks, int hostBlocks) {
        return manager(diskDir, remote, deviceBlocks, hostBlocks, PersistPolicy.WRITE_THROUGH);
    }

    static KvCacheManager manager(Path diskDir, Tier remote, int deviceBlocks, int hostBlocks, PersistPolicy policy) {
        KvCacheManager.Builder b = KvCacheManager.builder(LAYOUT).modelId(MODEL).persistPolicy(policy)
                .tier(new SimulatedDeviceTier(LAYOUT, deviceBlocks * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, hostBlocks * LAYOUT.blockBytes()));
        if (diskDir != null) {
            b.tier(MappedFileTier.builder(LAYOUT).directory(diskDir).modelId(MODEL)
                    .capacityBytes(256 * (LAYOUT.blockBytes() + 4096L)).open());
        }
        return b.tier(remote).closeTimeout(Duration.ofSeconds(30)).build();
    }

    static int[] tokens(int prompt, int length) {
        int[] t = new int[length];
        for (int i = 0; i < length; i++) {
            t[i] = 1 + Math.floorMod((int) ((prompt * 0x9E3779B97F4A7C15L) ^ (i * 0xBF58476D1CE4E5B9L) >>> 17), 30_000);
        }
        return t;
    }

    /** The bytes of block {@code block}: a function of the salt and every token up to its end. */
    static void fill(MemorySegment dst, byte[] salt, int[] tokens, int block) {
        long h = 0x632BE59BD9B4E019L;
        for (byte s : salt) {
            h = (h ^ s) * 0x8CB92BA72F3D8DD7L;
        }
        int end = (block + 1) * LAYOUT.blockTokens();
        for (int p = 0; p < end; p++) {
            h = (h ^ tokens[p]) * 0xBF58476D1CE4E5B9L;
            h ^= h >>> 31;
        }
        for (long i = 0; i < LAYOUT.blockBytes(); i++) {
            h = h * 6364136223846793005L + 1442695040888963407L;
            dst.set(ValueLayout.JAVA_BYTE, i, (byte) ((h >>> 56) | 1));
        }
    }

    /** Opens a prompt of {@code blocks} full blocks plus one token, writes the blocks not found cached. */
    static Sequence prefill(KvCacheManager m, byte[] salt, int[] tokens, int blocks, Arena arena) {
        int bt = LAYOUT.blockTokens();
        int[] prompt = java.util.Arrays.copyOf(tokens, blocks * bt + 1);
        Sequence s = m.open(salt, prompt);
        MemorySegment buf = arena.allocate(LAYOUT.blockBytes());
        for (int b = s.cachedTokens() / bt; b < blocks; b++) {
            try (ResidencyHandle h = m.ensureResident(s, b, b + 1)) {
                h.await();
                fill(buf, salt, tokens, b);
                h.write(b, 0, buf);
            }
            s.markWritten((b + 1) * bt);
        }
        return s;
    }

    /** @return the first of the sequence's cached blocks whose bytes differ from the pattern, or -1 */
    static int firstWrong(KvCacheManager m, Sequence s, byte[] salt, int[] tokens, Arena arena) {
        MemorySegment got = arena.allocate(LAYOUT.blockBytes());
        MemorySegment want = arena.allocate(LAYOUT.blockBytes());
        for (int b = 0; b < s.cachedTokens() / LAYOUT.blockTokens(); b++) {
            m.readBlock(s, b, got);
            fill(want, salt, tokens, b);
            if (got.mismatch(want) != -1) {
                return b;
            }
        }
        return -1;
    }
}
