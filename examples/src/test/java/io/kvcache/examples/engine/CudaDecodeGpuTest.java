package io.kvcache.examples.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.examples.attention.AttentionBackend;
import io.kvcache.examples.attention.CpuAttentionBackend;
import io.kvcache.examples.attention.CudaAttentionBackend;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import io.kvcache.examples.llama.TestModels;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * On a GPU: the decode with its device tier in VRAM a tenth of the KV and attention in the paged
 * CUDA kernel gives the CPU decode's tokens (logits within float rounding of expf and the
 * reduction tree), and the same bits as the GPU decode with everything resident.
 */
@Tag("gpu")
class CudaDecodeGpuTest {
    private static final int TOKENS = 400;

    @Test
    void gpuDecodeOfStories260KGivesTheCpuTokensAndIsBudgetIndependent() throws Exception {
        Checkpoint cp = Checkpoint.read(TestModels.stories260K());
        KvLayout layout = new KvLayout(cp.config().layers(), cp.config().kvHeads(), cp.config().headSize(), DType.FP32, 16);
        int blocks = (TOKENS + 1 + 15) / 16;
        int device = Math.max(3, blocks / 10);
        CudaContext ctx = CudaContext.device(0);
        DecodeResult cpu;
        try (KvCacheManager cache = KvCacheManager.builder(layout).modelId("s")
                .tier(new SimulatedDeviceTier(layout, device * layout.blockBytes()))
                .tier(new MmapHostTier(layout, (blocks + 2) * layout.blockBytes())).build()) {
            cpu = decode(cp, cache, new CpuAttentionBackend(), device);
        }
        DecodeResult gpu;
        CacheStats stats;
        try (CudaAttentionBackend backend = new CudaAttentionBackend(ctx, cp.config().heads(), cp.config().headSize());
             KvCacheManager cache = KvCacheManager.builder(layout).modelId("s")
                     .tier(CudaDeviceTier.allocate("device", ctx, layout.blockBytes(), device))
                     .tier(PinnedHostTier.builder(layout, (blocks + 2) * layout.blockBytes()).context(ctx).build())
                     .transferEngine(CudaTransferEngine.create(ctx)).build()) {
            gpu = decode(cp, cache, backend, device);
            stats = cache.stats();
        }
        DecodeResult gpuUnlimited;
        try (CudaAttentionBackend backend = new CudaAttentionBackend(ctx, cp.config().heads(), cp.config().headSize());
             KvCacheManager cache = KvCacheManager.builder(layout).modelId("s")
                     .tier(CudaDeviceTier.allocate("device", ctx, layout.blockBytes(), blocks + 1)).build()) {
            gpuUnlimited = decode(cp, cache, backend, blocks + 1);
        }
        assertTrue(stats.bytesPromoted() > 0, "blocks moved between VRAM and pinned host memory: " + stats);
        assertArrayEquals(cpu.generated(), gpu.generated(), "GPU tokens equal CPU tokens");
        float worst = 0;
        for (int i = 0; i < TOKENS; i++) {
            for (int j = 0; j < cpu.logits()[i].length; j++) {
                float e = cpu.logits()[i][j];
                worst = Math.max(worst, Math.abs(e - gpu.logits()[i][j]) / Math.max(1f, Math.abs(e)));
            }
        }
        assertTrue(worst < 1e-3f, "largest relative logit difference GPU vs CPU " + worst);
        assertNull(gpu.firstDifference(gpuUnlimited), "budgeted GPU decode equals the unlimited one bit for bit");
        System.out.println("GPU vs CPU: identical tokens, largest relative logit difference " + worst);
    }

    private static DecodeResult decode(Checkpoint cp, KvCacheManager cache, AttentionBackend backend, int deviceBlocks) {
        return new CachedDecoder(new LlamaModel(cp), cache, backend, CachedDecoder.windowBlocks(deviceBlocks), true, false)
                .run(new byte[0], new int[] {1}, TOKENS, new Sampler(cp.config().vocabSize(), 0f, 1), StepListener.NONE);
    }
}
