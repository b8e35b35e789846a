package io.kvcache.tiers.disk;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.PersistentTierContractTest;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierSpec;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The disk tier passes the contract every tier passes, and the persistent tiers' one. */
@ExtendWith(QuietTierLog.class)
class MappedFileTierContractTest extends PersistentTierContractTest {
    @TempDir
    Path dir;
    private int opened;
    private Path last;
    private KvLayout lastLayout;
    private long lastCapacity;

    @Override
    protected TierSpec spec() {
        return new TierSpec(false, true, false);
    }

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        Path d = dir.resolve("c" + opened++);
        MappedFileTier t = open(d, layout, capacityBytes);
        last = d;
        lastLayout = layout;
        lastCapacity = capacityBytes;
        return t;
    }

    @Override
    protected PersistentTier reopenStorage() {
        return open(last, lastLayout, lastCapacity);
    }

    private static MappedFileTier open(Path d, KvLayout layout, long capacityBytes) {
        return MappedFileTier.builder(layout).directory(d).modelId("contract").capacityBytes(capacityBytes).open();
    }

    @Override
    protected void corruptStoredBytes(PersistentTier tier, int slot) throws Exception {
        try (FileChannel ch = FileChannel.open(last.resolve(MappedFileTier.DATA_FILE), StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            long at = tier.address(slot) + 100; // the slot's data offset in the file
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, at);
            b.put(0, (byte) ~b.get(0)).rewind();
            ch.write(b, at);
        }
    }
}
