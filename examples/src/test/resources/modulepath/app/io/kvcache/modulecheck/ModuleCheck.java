package io.kvcache.modulecheck;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.Collectors;

/** Writes a block through the cache, demotes it to the host tier, reads it back, and prints what it saw. */
public final class ModuleCheck {
    public static void main(String[] args) {
        KvLayout layout = new KvLayout(2, 1, 8, DType.FP32, 4);
        try (KvCacheManager cache = KvCacheManager.builder(layout).modelId("module-check")
                .tier(new SimulatedDeviceTier(layout, layout.blockBytes()))
                .tier(new MmapHostTier(layout, 4 * layout.blockBytes()))
                .build();
             Arena arena = Arena.ofConfined()) {
            MemorySegment kv = arena.allocate(layout.blockBytes());
            kv.fill((byte) 42);
            MemorySegment back = arena.allocate(layout.blockBytes());
            try (Sequence a = cache.open(new byte[16], new int[] {1, 2, 3, 4});
                 Sequence b = cache.open(new byte[16], new int[] {5, 6, 7, 8})) {
                try (ResidencyHandle h = cache.ensureResident(a, 0, 1)) {
                    h.await();
                    h.write(0, 0, kv);
                }
                try (ResidencyHandle h = cache.ensureResident(b, 0, 1)) {   // the device tier holds one block: a's is demoted
                    h.await();
                }
                try (ResidencyHandle h = cache.ensureResident(a, 0, 1)) {
                    h.await();
                    h.read(0, 0, back);
                }
            }
            boolean same = kv.mismatch(back) == -1 && back.get(ValueLayout.JAVA_BYTE, 0) == 42;
            System.out.println("module " + KvCacheManager.class.getModule().getName()
                    + " and " + SimulatedDeviceTier.class.getModule().getName()
                    + "; exports " + SimulatedDeviceTier.class.getModule().getDescriptor().exports().stream()
                            .map(e -> e.source()).sorted().collect(Collectors.joining(","))
                    + "; block read back " + (same ? "identical" : "DIFFERENT")
                    + (cache.stats().demotions() > 0 ? " from the host tier" : " without leaving the device tier"));
        }
    }
}
