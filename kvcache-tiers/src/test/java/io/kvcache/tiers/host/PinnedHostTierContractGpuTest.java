package io.kvcache.tiers.host;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierContractTest;
import io.kvcache.core.tier.TierSpec;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.tiers.slots.CopyInFlight;
import org.junit.jupiter.api.Tag;

@Tag("gpu")
class PinnedHostTierContractGpuTest extends TierContractTest {
    @Override
    protected TierSpec spec() {
        return new TierSpec(true, false, true);
    }

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        return PinnedHostTier.builder(layout, capacityBytes).context(CudaContext.device(0)).build();
    }

    @Override
    protected AutoCloseable beginCopyReading(int slot) {
        return CopyInFlight.reading(((PinnedHostTier) tier).slots(), slot);
    }
}
