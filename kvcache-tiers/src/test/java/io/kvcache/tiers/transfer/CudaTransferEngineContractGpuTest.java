package io.kvcache.tiers.transfer;

import static io.kvcache.tiers.GpuTestSupport.device0;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import org.junit.jupiter.api.Tag;

/**
 * {@link CudaTransferEngine} as {@code create} makes it (methods chosen by measurement, on its
 * calibration thread) between a pinned host tier and a device tier of device 0.
 */
@Tag("gpu")
class CudaTransferEngineContractGpuTest extends TransferEngineContractTest {
    @Override
    protected Spec spec() {
        return new Spec(true, false, true);
    }

    @Override
    protected TransferEngine createEngine() {
        return CudaTransferEngine.create(device0());
    }

    @Override
    protected Tier createHostTier(KvLayout layout, int slots) {
        return PinnedHostTier.builder(layout.blockBytes(), slots).context(device0()).build();
    }

    @Override
    protected Tier createDeviceTier(KvLayout layout, int slots) {
        return CudaDeviceTier.allocate(device0(), layout.blockBytes(), slots);
    }
}
