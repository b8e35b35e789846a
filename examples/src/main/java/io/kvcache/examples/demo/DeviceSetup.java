package io.kvcache.examples.demo;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.examples.attention.AttentionBackend;
import io.kvcache.examples.attention.CpuAttentionBackend;
import io.kvcache.examples.attention.CudaAttentionBackend;
import io.kvcache.examples.llama.LlamaConfig;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import io.kvcache.tiers.host.PinnedHostTier;
import io.kvcache.tiers.transfer.CudaTransferEngine;

/**
 * What {@code --device} selects: the device and host tiers, the transfer engine between them and
 * the attention backend that reads the device tier. Simulated: off-heap memory, mmap'd host
 * memory, the manager's CPU copies and CPU attention. CUDA: VRAM, pinned host memory, batched
 * CUDA copies and the paged attention kernel.
 */
abstract sealed class DeviceSetup {

    /** @return the setup for the option; {@code AUTO} is CUDA when a GPU is present */
    static DeviceSetup of(DemoOptions.Device device) throws UsageException {
        boolean gpu = gpuPresent();
        return switch (device) {
            case SIMULATED -> new Simulated();
            case AUTO -> gpu ? new Gpu() : new Simulated();
            case CUDA -> {
                if (!gpu) {
                    throw new UsageException("--device cuda: no CUDA device found (driver: "
                            + (Cuda.available() ? "loaded, 0 devices" : "not loadable") + ")");
                }
                yield new Gpu();
            }
        };
    }

    private static boolean gpuPresent() {
        try {
            return Cuda.available() && Cuda.deviceCount() > 0;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /** @return "simulated" or "cuda" */
    abstract String name();

    abstract Tier deviceTier(KvLayout layout, int slots);

    abstract Tier hostTier(KvLayout layout, int slots);

    /** @return a fresh engine between host and device for one manager, or null for the manager's own */
    /** @param layout the cache layout, whose block size a GPU engine measures its copy methods for at build */
    abstract TransferEngine engine(KvLayout layout);

    abstract AttentionBackend backend(LlamaConfig c);

    /** Host memory standing in for the GPU. */
    static final class Simulated extends DeviceSetup {
        @Override
        String name() {
            return "simulated";
        }

        @Override
        Tier deviceTier(KvLayout layout, int slots) {
            return new SimulatedDeviceTier("device", layout, slots * layout.blockBytes());
        }

        @Override
        Tier hostTier(KvLayout layout, int slots) {
            return new MmapHostTier("host", layout, slots * layout.blockBytes());
        }

        @Override
        TransferEngine engine(KvLayout layout) {
            return null;
        }

        @Override
        AttentionBackend backend(LlamaConfig c) {
            return new CpuAttentionBackend();
        }
    }

    /** GPU 0. */
    static final class Gpu extends DeviceSetup {
        private final CudaContext context = CudaContext.device(0);

        /** @return the device's context */
        CudaContext context() {
            return context;
        }

        @Override
        String name() {
            return "cuda";
        }

        @Override
        Tier deviceTier(KvLayout layout, int slots) {
            return CudaDeviceTier.allocate("device", context, layout.blockBytes(), slots);
        }

        @Override
        Tier hostTier(KvLayout layout, int slots) {
            return PinnedHostTier.builder(layout, slots * layout.blockBytes()).name("host").context(context).build();
        }

        @Override
        TransferEngine engine(KvLayout layout) {
            return CudaTransferEngine.builder(context).calibrate(layout.blockBytes()).build();
        }

        @Override
        AttentionBackend backend(LlamaConfig c) {
            return new CudaAttentionBackend(context, c.heads(), c.headSize());
        }
    }
}
