package io.kvcache.tiers.host;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierContractTest;
import io.kvcache.nativ.cuda.CudaContext;
import org.junit.jupiter.api.Tag;

@Tag("gpu")
class PinnedHostTierContractGpuTest extends TierContractTest {
    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        return PinnedHostTier.builder(layout, capacityBytes).context(CudaContext.device(0)).build();
    }
}
