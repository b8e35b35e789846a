package io.kvcache.tiers.device;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.SegmentTier;
import io.kvcache.core.tier.TierKind;
import java.lang.foreign.Arena;

/**
 * Off-heap memory standing in for VRAM on hosts without a GPU, so that every code path above
 * the CUDA calls runs anywhere. One 4 KiB-aligned pool carved into slots, like a device tier.
 */
public final class SimulatedDeviceTier extends SegmentTier {
    private final Arena arena = Arena.ofShared();

    /**
     * @param layout        the cache layout; one slot holds one block
     * @param capacityBytes bytes of simulated VRAM; whole blocks only
     * @throws IllegalArgumentException when the capacity is not positive or holds no block
     */
    public SimulatedDeviceTier(KvLayout layout, long capacityBytes) {
        this("device", layout, capacityBytes);
    }

    /** @param name tier name in stats and messages */
    public SimulatedDeviceTier(String name, KvLayout layout, long capacityBytes) {
        super(name, TierKind.DEVICE, layout, capacityBytes);
        pool(arena.allocate(poolBytes(), 4096));
    }

    @Override
    public String backing() {
        return "simulated (off-heap memory)";
    }

    @Override
    public void close() {
        arena.close();
    }
}
