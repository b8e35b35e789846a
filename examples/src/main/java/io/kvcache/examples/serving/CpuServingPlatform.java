package io.kvcache.examples.serving;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.examples.llama.Checkpoint;
import io.kvcache.examples.llama.LlamaConfig;
import io.kvcache.examples.llama.ModelId;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;

/**
 * The CPU platform: a Llama-2 checkpoint run in fp32 by {@link io.kvcache.examples.llama.LlamaModel},
 * a simulated device tier (off-heap memory) read by CPU attention, an mmap'd host tier, and the
 * manager's own CPU copies between them.
 */
public final class CpuServingPlatform implements ServingPlatform {
    private final Checkpoint checkpoint;
    private final KvLayout layout;
    private final String modelId;

    /**
     * @param checkpoint  the model
     * @param blockTokens tokens per KV block
     * @throws IllegalArgumentException when the layout refuses the block size
     */
    public CpuServingPlatform(Checkpoint checkpoint, int blockTokens) {
        this.checkpoint = checkpoint;
        LlamaConfig c = checkpoint.config();
        this.layout = new KvLayout(c.layers(), c.kvHeads(), c.headSize(), DType.FP32, blockTokens);
        this.modelId = ModelId.of(checkpoint);
    }

    @Override
    public String name() {
        return "cpu, " + checkpoint.name();
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public String modelId() {
        return modelId;
    }

    @Override
    public int vocabSize() {
        return checkpoint.config().vocabSize();
    }

    @Override
    public Tier deviceTier(int slots) {
        return new SimulatedDeviceTier("device", layout, slots * layout.blockBytes());
    }

    @Override
    public Tier hostTier(int slots) {
        return new MmapHostTier("host", layout, slots * layout.blockBytes());
    }

    @Override
    public TransferEngine transferEngine() {
        return null;
    }

    @Override
    public ServingEngine engine(KvCacheManager cache) {
        return new CpuServingEngine(checkpoint, cache);
    }

    @Override
    public void close() {
    }
}
