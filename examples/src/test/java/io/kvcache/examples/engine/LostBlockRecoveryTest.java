package io.kvcache.examples.engine;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.examples.attention.CpuAttentionBackend;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaConfig;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import io.kvcache.examples.llama.SyntheticCheckpoint;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Blocks demoted to the disk tier are overwritten with garbage in the middle of a decode. The
 * disk tier's checksums turn them into reported losses, the decoder computes their positions
 * again, and the tokens and logits are still those of a decode that lost nothing.
 */
class LostBlockRecoveryTest {
    private static final LlamaConfig SHAPE = new LlamaConfig(48, 64, 3, 6, 3, 64, 256, true);
    private static final Checkpoint MODEL = Checkpoint.parse("small", SyntheticCheckpoint.bytes(SHAPE, 11));
    private static final KvLayout LAYOUT = new KvLayout(SHAPE.layers(), SHAPE.kvHeads(), SHAPE.headSize(), DType.FP32, 8);
    private static final int TOKENS = 160;

    @Test
    void corruptedDiskBlocksAreRecomputedAndTheDecodeIsUnchanged(@TempDir Path dir) throws Exception {
        DecodeResult clean;
        try (KvCacheManager cache = KvCacheManager.builder(LAYOUT).modelId("small")
                .tier(new SimulatedDeviceTier(LAYOUT, 30 * LAYOUT.blockBytes())).build()) {
            clean = new CachedDecoder(new LlamaModel(MODEL), cache, new CpuAttentionBackend(), 30, false, false)
                    .run(new byte[0], new int[] {1}, TOKENS, new Sampler(SHAPE.vocabSize(), 0f, 1), StepListener.NONE);
        }
        Path disk = dir.resolve("kv");
        DecodeResult damaged;
        try (KvCacheManager cache = KvCacheManager.builder(LAYOUT).modelId("small")
                .tier(new SimulatedDeviceTier(LAYOUT, 3 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 2 * LAYOUT.blockBytes()))
                .tier(MappedFileTier.builder(LAYOUT).directory(disk).capacityBytes(64 * LAYOUT.blockBytes())
                        .modelId("small").open())
                .build()) {
            CachedDecoder d = new CachedDecoder(new LlamaModel(MODEL), cache, new CpuAttentionBackend(), 1, true, false);
            java.util.concurrent.atomic.AtomicBoolean once = new java.util.concurrent.atomic.AtomicBoolean();
            StepListener vandal = (pos, done, total, nanos) -> {
                if (pos == 100 && once.compareAndSet(false, true)) {
                    scribble(disk.resolve(MappedFileTier.DATA_FILE));
                }
            };
            damaged = d.run(new byte[0], new int[] {1}, TOKENS, new Sampler(SHAPE.vocabSize(), 0f, 1), vandal);
        }
        assertTrue(damaged.recoveries() > 0, "the garbage was detected and recomputed");
        assertTrue(damaged.computedTokens() > clean.computedTokens(), "positions were computed again");
        assertNull(damaged.firstDifference(clean));
    }

    /** Overwrites every slot's data (not the headers or the index) through the file. */
    private static void scribble(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer header = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(header, 48);
            long dataOffset = header.flip().getLong();
            ByteBuffer junk = ByteBuffer.allocate(1 << 16);
            new Random(2).nextBytes(junk.array());
            for (long off = dataOffset; off < ch.size(); off += junk.capacity()) {
                junk.clear();
                ch.write(junk, off);
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
