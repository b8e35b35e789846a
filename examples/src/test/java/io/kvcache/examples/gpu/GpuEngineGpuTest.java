package io.kvcache.examples.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.examples.llama.ArrayKvAttention;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaModel;
import io.kvcache.examples.llama.Sampler;
import io.kvcache.examples.llama.TestModels;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CudaTransferEngine;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a GPU: the GPU engine against the CPU reference forward pass of llama2.c on stories260K
 * (fp32: the greedy tokens of the whole 512-token context and logits within 1e-4; bf16: logits
 * within a stated tolerance of fp32, top-1 agreement), prefill in one pass against token-by-token
 * decode, the tensor-core prefill against the split attention kernel on a synthetic head-size-128
 * model, and the same tokens whether the prompt's K/V is computed or restored from pinned host
 * memory, whole blocks before the prefill or layer by layer under it.
 */
@Tag("gpu")
class GpuEngineGpuTest {
    private static final int BT = 16;
    private static CudaContext ctx;
    private static EngineKernels kernels;
    private static Cublas blas;
    private static Checkpoint cp;
    /** CPU reference: stream[0] = BOS, stream[i + 1] = argmax(logits[i]) */
    private static int[] stream;
    private static float[][] cpuLogits;

    @BeforeAll
    static void setUp() {
        cp = Checkpoint.read(TestModels.stories260K());
        ctx = CudaContext.device(0);
        kernels = new EngineKernels(ctx);
        blas = new Cublas(ctx);
        int steps = cp.config().seqLen() - 1;
        LlamaModel model = new LlamaModel(cp);
        ArrayKvAttention kv = new ArrayKvAttention(cp.config(), cp.config().seqLen());
        stream = new int[steps + 1];
        cpuLogits = new float[steps][];
        stream[0] = 1;
        for (int pos = 0; pos < steps; pos++) {
            cpuLogits[pos] = model.forward(stream[pos], pos, kv).clone();
            stream[pos + 1] = Sampler.argmax(cpuLogits[pos]);
        }
        System.out.println("cuBLAS " + blas.version() + " on " + ctx);
    }

    @AfterAll
    static void tearDown() {
        if (blas != null) {
            blas.close();
        }
        if (kernels != null) {
            kernels.close();
        }
    }

    private static KvLayout layout(Precision p) {
        return new KvLayout(cp.config().layers(), cp.config().kvHeads(), cp.config().headSize(), p.kvType(), BT);
    }

    private static KvCacheManager deviceOnly(KvLayout layout, int slots) {
        return KvCacheManager.builder(layout).modelId("stories260K")
                .tier(CudaDeviceTier.allocate("device", ctx, layout.blockBytes(), slots)).build();
    }

    /** A device tier over pinned host memory, copies through the CUDA transfer engine. */
    private static KvCacheManager deviceAndPinnedHost(KvLayout layout, int deviceSlots, int hostSlots) {
        return deviceAndPinnedHostTiers(layout, deviceSlots, hostSlots).build();
    }

    /** The tiers and engine of {@link #deviceAndPinnedHost}, for a test to add tiers below. */
    private static KvCacheManager.Builder deviceAndPinnedHostTiers(KvLayout layout, int deviceSlots, int hostSlots) {
        return KvCacheManager.builder(layout).modelId("stories260K")
                .tier(CudaDeviceTier.allocate("device", ctx, layout.blockBytes(), deviceSlots))
                .tier(PinnedHostTier.builder(layout, (long) hostSlots * layout.blockBytes()).context(ctx).build())
                .transferEngine(CudaTransferEngine.create(ctx));
    }

    /** largest |a - b| over the step, relative to the largest |b| of the step, worst step */
    private static double relative(List<float[]> gpu, float[][] ref, int refFrom) {
        double worst = 0;
        for (int i = 0; i < gpu.size(); i++) {
            worst = Math.max(worst, rel(gpu.get(i), ref[refFrom + i]));
        }
        return worst;
    }

    @Test
    void fp32DecodeGivesTheCpuTokensOfTheWholeContext() {
        Precision p = Precision.FP32;
        int blocks = cp.config().seqLen() / BT + 1;
        try (GpuWeights w = GpuWeights.of(ctx, kernels, cp, p);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, kernels, blas, layout(p), 512, 4, blocks);
             KvCacheManager cache = deviceOnly(layout(p), blocks)) {
            GpuCachedDecoder.Result r = new GpuCachedDecoder(engine, cache).run(new byte[0], new int[] {1},
                    stream.length - 1, true);
            assertArrayEquals(Arrays.copyOfRange(stream, 1, stream.length), r.generated(), "GPU fp32 tokens = CPU tokens");
            double rel = relative(r.logits(), cpuLogits, 0);
            System.out.printf("fp32 decode: %d tokens identical to the CPU reference, logits within %.3g relative%n",
                    r.generated().length, rel);
            assertTrue(rel < 1e-4, "fp32 logits within 1e-4 relative of the CPU: " + rel);
        }
    }

    @Test
    void fp32PrefillInOnePassGivesTheTokenByTokenResult() {
        Precision p = Precision.FP32;
        int blocks = cp.config().seqLen() / BT + 1;
        int prompt = 300;
        try (GpuWeights w = GpuWeights.of(ctx, kernels, cp, p);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, kernels, blas, layout(p), 512, 4, blocks);
             KvCacheManager cache = deviceOnly(layout(p), blocks)) {
            GpuCachedDecoder.Result r = new GpuCachedDecoder(engine, cache).run(new byte[0],
                    Arrays.copyOf(stream, prompt), 100, true);
            assertArrayEquals(Arrays.copyOfRange(stream, prompt, prompt + 100), r.generated());
            double rel = relative(r.logits(), cpuLogits, prompt - 1);
            System.out.printf("fp32 prefill of %d tokens then 100 decoded: CPU tokens, logits within %.3g relative%n",
                    prompt, rel);
            assertTrue(rel < 1e-4, "fp32 prefill logits within 1e-4 relative of the CPU: " + rel);
        }
    }

    @Test
    void bf16LogitsStayNearFp32() {
        Precision p = Precision.BF16;
        int blocks = cp.config().seqLen() / BT + 1;
        try (GpuWeights w = GpuWeights.of(ctx, kernels, cp, p);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, kernels, blas, layout(p), 512, 4, blocks);
             KvCacheManager cache = deviceOnly(layout(p), blocks)) {
            GpuCachedDecoder.Result r = new GpuCachedDecoder(engine, cache).score(new byte[0], stream);
            int agree = 0;
            for (int i = 0; i < cpuLogits.length; i++) {
                if (r.generated()[i] == stream[i + 1]) {
                    agree++;
                }
            }
            double rel = relative(r.logits().subList(0, cpuLogits.length), cpuLogits, 0);
            double agreement = agree / (double) cpuLogits.length;
            System.out.printf("bf16 teacher-forced over the fp32 tokens: logits within %.3g relative of fp32,"
                    + " top-1 agreement %d/%d = %.4f%n", rel, agree, cpuLogits.length, agreement);
            assertTrue(rel < 0.15, "bf16 logits within 0.15 relative of fp32: " + rel);
            assertTrue(agreement >= 0.9, "bf16 top-1 agrees with fp32 on at least 90% of positions: " + agreement);
        }
    }

    @Test
    void tensorCorePrefillMatchesSplitAttentionOverACachedPrefix() {
        ModelShape shape = new ModelShape("synthetic-hd128", 512, 1024, 2, 4, 2, 1000, 500000f, false);
        KvLayout layout = new KvLayout(2, 2, 128, Precision.BF16.kvType(), BT);
        int n = 300;
        int blocks = n / BT + 2;
        int[] tokens = new Random(7).ints(n, 0, shape.vocab()).toArray();
        try (GpuWeights w = GpuWeights.synthetic(ctx, kernels, shape, Precision.BF16, 11);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, kernels, blas, layout, 512, 4, blocks)) {
            assertTrue(engine.tensorCorePrefill());
            float[] onePass;
            float[] cachedPrefix;
            GpuCachedDecoder.Result stepwise;
            try (KvCacheManager cache = KvCacheManager.builder(layout).modelId("syn")
                    .tier(CudaDeviceTier.allocate("device", ctx, layout.blockBytes(), 3 * blocks)).build()) {
                GpuCachedDecoder dec = new GpuCachedDecoder(engine, cache);
                onePass = dec.run(new byte[] {3}, tokens, 1, true).logits().getFirst();
                // 256 tokens (16 blocks) cached by one request: the next computes only its last 44
                dec.run(new byte[] {1}, Arrays.copyOf(tokens, 256), 1, false);
                GpuCachedDecoder.Result again = dec.run(new byte[] {1}, tokens, 1, true);
                assertEquals(256, again.cachedTokens());
                cachedPrefix = again.logits().getFirst();
                stepwise = dec.score(new byte[] {2}, tokens);
            }
            float[] ref = stepwise.logits().get(n - 1);
            double relOnePass = rel(onePass, ref);
            double relCached = rel(cachedPrefix, ref);
            System.out.printf("tensor-core prefill vs split-kernel decode (bf16, head size 128): logits within %.3g"
                    + " relative (one pass of %d), %.3g (44 tokens over a cached prefix of 256)%n",
                    relOnePass, n, relCached);
            assertTrue(relOnePass < 3e-2, "one-pass prefill near token-by-token: " + relOnePass);
            assertTrue(relCached < 3e-2, "prefill over the cached prefix near token-by-token: " + relCached);
        }
    }

    /** largest |a - b| relative to the largest |b| */
    private static double rel(float[] a, float[] b) {
        double diff = 0;
        double scale = 0;
        for (int j = 0; j < b.length; j++) {
            diff = Math.max(diff, Math.abs(a[j] - b[j]));
            scale = Math.max(scale, Math.abs(b[j]));
        }
        return diff / scale;
    }

    @Test
    void promptRestoredFromPinnedHostMemoryGivesTheSameTokens() {
        Precision p = Precision.FP32;
        KvLayout layout = layout(p);
        int prompt = 128;
        int newTokens = 64;
        int blocks = (prompt + newTokens + BT - 1) / BT;
        try (GpuWeights w = GpuWeights.of(ctx, kernels, cp, p);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, kernels, blas, layout, 512, 4, blocks + 2);
             KvCacheManager cache = deviceAndPinnedHost(layout, blocks + 2, 8 * blocks)) {
            GpuCachedDecoder dec = new GpuCachedDecoder(engine, cache);
            int[] promptTokens = Arrays.copyOf(stream, prompt);
            GpuCachedDecoder.Result first = dec.run(new byte[] {1}, promptTokens, newTokens, false);
            // another tenant's request of the same size pushes the first one's blocks down to host memory
            dec.run(new byte[] {2}, promptTokens, newTokens, false);
            long promotionsBefore = cache.stats().promotions();
            GpuCachedDecoder.Result restored = dec.run(new byte[] {1}, promptTokens, newTokens, false);
            CacheStats stats = cache.stats();
            assertTrue(restored.cachedTokens() >= prompt - BT, "prompt found in the cache: " + restored.cachedTokens());
            assertTrue(stats.promotions() > promotionsBefore, "blocks came back from host memory: " + stats);
            assertArrayEquals(first.generated(), restored.generated(), "restored K/V gives the computed K/V's tokens");
            assertArrayEquals(Arrays.copyOfRange(stream, prompt, prompt + newTokens), first.generated());
            System.out.printf("restored %d cached prompt tokens from pinned host memory (%d promotions): same %d tokens%n",
                    restored.cachedTokens(), stats.promotions() - promotionsBefore, newTokens);
        }
    }

    /**
     * The state before a restart: one cache (device, pinned host and disk tiers, write-through)
     * computes a prompt and its tokens and is closed; new caches on the same directory find the
     * prompt on disk and bring it back whole, then layer by layer under the prefill. Every run
     * samples the tokens computed with nothing cached.
     */
    @Test
    void promptRestoredFromTheDiskTierAfterARestartGivesTheSameTokens(@TempDir Path dir) {
        Precision p = Precision.FP32;
        KvLayout layout = layout(p);
        int prompt = 128;
        int newTokens = 48;
        int blocks = (prompt + newTokens + BT - 1) / BT;
        try (GpuWeights w = GpuWeights.of(ctx, kernels, cp, p);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, kernels, blas, layout, 512, 4, blocks + 2)) {
            int[] promptTokens = Arrays.copyOf(stream, prompt);
            GpuCachedDecoder.Result first;
            try (KvCacheManager cache = withDisk(layout, dir, blocks)) {
                first = new GpuCachedDecoder(engine, cache).run(new byte[] {1}, promptTokens, newTokens, false);
                assertEquals(0, first.cachedTokens());
            }
            for (GpuCachedDecoder.Residency way : GpuCachedDecoder.Residency.values()) {
                try (KvCacheManager cache = withDisk(layout, dir, blocks)) {
                    GpuCachedDecoder.Result again = new GpuCachedDecoder(engine, cache)
                            .run(new byte[] {1}, promptTokens, newTokens, false, way);
                    CacheStats stats = cache.stats();
                    assertTrue(again.cachedTokens() >= prompt - BT, way + ": the prompt was on disk: "
                            + again.cachedTokens());
                    assertTrue(stats.tiers().get(2).hits() > 0, way + ": blocks came from the disk tier: " + stats);
                    assertArrayEquals(first.generated(), again.generated(), way + ": K/V read back from disk gives"
                            + " the computed K/V's tokens");
                    System.out.printf("restart, %s: %d prompt tokens from the disk tier, same %d tokens%n", way,
                            again.cachedTokens(), newTokens);
                }
            }
            assertArrayEquals(Arrays.copyOfRange(stream, prompt, prompt + newTokens), first.generated());
        }
    }

    private static KvCacheManager withDisk(KvLayout layout, Path dir, int blocks) {
        return deviceAndPinnedHostTiers(layout, blocks + 2, blocks + 2)
                .tier(MappedFileTier.builder(layout).directory(dir).modelId("stories260K")
                        .capacityBytes((long) (4 * blocks) * layout.blockBytes()).open()).build();
    }

    /**
     * A returning session restored layer by layer: its prompt's blocks pushed down to pinned host
     * memory by another tenant, then made resident layer by layer (partial device slots, one CUDA
     * batch per group of layers) while the prefill of the new prompt tokens runs each layer as it lands, the
     * launch stream waiting on each layer's event ({@link GpuCachedDecoder.Residency#PER_LAYER}) or
     * the host on each layer ({@link GpuCachedDecoder.Residency#PER_LAYER_HOST_WAIT}); then decode,
     * which adopts the partial slots. The tokens are those computed with everything resident, and
     * the CPU reference's; the other tenant's blocks, demoted out of the slots the new K/V went
     * into, give its tokens again.
     */
    @Test
    void promptRestoredLayerByLayerWhileThePrefillRunsGivesTheSameTokens() {
        Precision p = Precision.FP32;
        KvLayout layout = layout(p);
        int parked = 128;
        int prompt = parked + 40;
        int newTokens = 64;
        int blocks = (prompt + newTokens + BT - 1) / BT;
        try (GpuWeights w = GpuWeights.of(ctx, kernels, cp, p);
             GpuLlamaEngine engine = new GpuLlamaEngine(w, kernels, blas, layout, 512, 4, blocks + 2);
             KvCacheManager cache = deviceAndPinnedHost(layout, blocks + 2, 8 * blocks)) {
            GpuCachedDecoder dec = new GpuCachedDecoder(engine, cache);
            int[] promptTokens = Arrays.copyOf(stream, prompt);
            GpuCachedDecoder.Result resident = dec.run(new byte[] {9}, promptTokens, newTokens, true);
            GpuCachedDecoder.Residency[] ways = {GpuCachedDecoder.Residency.PER_LAYER,
                GpuCachedDecoder.Residency.PER_LAYER_HOST_WAIT};
            for (int i = 0; i < ways.length; i++) {
                byte[] session = {1, (byte) i};
                byte[] other = {2, (byte) i};
                // the session's first turn, then another tenant's request pushes it down to host memory
                dec.run(session, Arrays.copyOf(stream, parked), 1, false);
                GpuCachedDecoder.Result otherFirst = dec.run(other, promptTokens, newTokens, false);
                long promotedBefore = cache.stats().bytesPromoted();
                GpuCachedDecoder.Result restored = dec.run(session, promptTokens, newTokens, true, ways[i]);
                long promoted = cache.stats().bytesPromoted() - promotedBefore;
                assertEquals(parked, restored.cachedTokens(), "the parked turn's blocks found in the cache");
                // the device tier holds 2 blocks beyond the other tenant's request: at most 2 parked blocks stay there
                assertTrue(promoted >= (long) (parked / BT - 2) * layout.blockBytes(),
                        "the parked blocks came back from host memory: " + promoted + " bytes");
                assertArrayEquals(resident.generated(), restored.generated(), ways[i] + " gives the resident tokens");
                assertArrayEquals(Arrays.copyOfRange(stream, prompt, prompt + newTokens), restored.generated());
                double rel = relative(restored.logits(), cpuLogits, prompt - 1);
                assertTrue(rel < 1e-4, "logits within 1e-4 relative of the CPU: " + rel);
                // the other tenant's blocks, demoted to make room while the new K/V was stored, are intact
                GpuCachedDecoder.Result otherAgain = dec.run(other, promptTokens, newTokens, false);
                assertTrue(otherAgain.cachedTokens() >= prompt - BT, "other found: " + otherAgain.cachedTokens());
                assertArrayEquals(otherFirst.generated(), otherAgain.generated(), "the demoted blocks read back");
                System.out.printf("%s: restored %d parked tokens layer by layer (%d bytes from pinned host) under a"
                        + " prefill of %d: same %d tokens, logits within %.3g relative%n", ways[i],
                        restored.cachedTokens(), promoted, prompt - parked, newTokens, rel);
            }
        }
    }
}
