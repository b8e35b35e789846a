package io.kvcache.tiers.disk;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierContractTest;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** The disk tier passes the contract every tier passes. */
class MappedFileTierContractTest extends TierContractTest {
    @TempDir
    Path dir;

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        return MappedFileTier.builder(layout).directory(dir.resolve("c" + System.nanoTime())).modelId("contract")
                .capacityBytes(capacityBytes).open();
    }
}
