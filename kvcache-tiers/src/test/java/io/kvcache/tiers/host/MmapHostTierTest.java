package io.kvcache.tiers.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierContractTest;
import io.kvcache.core.tier.TierSpec;
import org.junit.jupiter.api.Test;

class MmapHostTierTest extends TierContractTest {
    @Override
    protected TierSpec spec() {
        return TierSpec.HOST_MEMORY;
    }

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        return new MmapHostTier(layout, capacityBytes);
    }

    @Test
    void reportsWhetherItsPagesAreLocked() {
        MmapHostTier t = (MmapHostTier) tier;
        assertEquals(t.locked(), t.backing().equals("mmap+mlock"), t.backing());
        assertTrue(t.backing().startsWith("mmap"), t.backing());
    }
}
