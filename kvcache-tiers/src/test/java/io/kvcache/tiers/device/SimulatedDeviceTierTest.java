package io.kvcache.tiers.device;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierContractTest;

class SimulatedDeviceTierTest extends TierContractTest {
    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        return new SimulatedDeviceTier(layout, capacityBytes);
    }
}
