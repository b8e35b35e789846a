package io.kvcache.tiers.device;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierContractTest;
import io.kvcache.core.tier.TierSpec;

class SimulatedDeviceTierTest extends TierContractTest {
    @Override
    protected TierSpec spec() {
        return TierSpec.HOST_MEMORY;
    }

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        return new SimulatedDeviceTier(layout, capacityBytes);
    }
}
