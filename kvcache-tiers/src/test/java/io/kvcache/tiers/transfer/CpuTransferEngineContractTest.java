package io.kvcache.tiers.transfer;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;

/** {@link CpuTransferEngine} between an mmap'd host tier and simulated device memory. */
class CpuTransferEngineContractTest extends TransferEngineContractTest {
    @Override
    protected Spec spec() {
        return new Spec(false, true, false);
    }

    @Override
    protected TransferEngine createEngine() {
        return CpuTransferEngine.withDefaults();
    }

    @Override
    protected Tier createHostTier(KvLayout layout, int slots) {
        return new MmapHostTier(layout, (long) slots * layout.blockBytes());
    }

    @Override
    protected Tier createDeviceTier(KvLayout layout, int slots) {
        return new SimulatedDeviceTier(layout, (long) slots * layout.blockBytes());
    }
}
