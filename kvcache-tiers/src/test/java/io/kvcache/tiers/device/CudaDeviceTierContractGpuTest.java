package io.kvcache.tiers.device;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierContractTest;
import io.kvcache.core.tier.TierSpec;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.slots.CopyInFlight;
import org.junit.jupiter.api.Tag;

@Tag("gpu")
class CudaDeviceTierContractGpuTest extends TierContractTest {
    @Override
    protected TierSpec spec() {
        return new TierSpec(false, false, true);
    }

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        return CudaDeviceTier.allocate(CudaContext.device(0), layout, capacityBytes);
    }

    @Override
    protected AutoCloseable beginCopyReading(int slot) {
        return CopyInFlight.reading(((CudaDeviceTier) tier).slots(), slot);
    }
}
