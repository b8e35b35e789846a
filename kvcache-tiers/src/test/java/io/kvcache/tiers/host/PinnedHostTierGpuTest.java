package io.kvcache.tiers.host;

import static io.kvcache.tiers.GpuTestSupport.device0;
import static io.kvcache.tiers.GpuTestSupport.fillRandom;
import static io.kvcache.tiers.GpuTestSupport.mismatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.tier.TierKind;
import io.kvcache.nativ.libc.DmaHeap;
import io.kvcache.nativ.libc.Udmabuf;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class PinnedHostTierGpuTest {

    @Test
    void defaultChainReportsWhatItObtainedAndWhatItSkipped() {
        try (PinnedHostTier t = PinnedHostTier.builder(65536, 64).context(device0()).build()) {
            System.out.println("pinned host tier backing: " + t.backing());
            assertEquals(TierKind.HOST, t.kind());
            assertTrue(t.hostAccessible());
            if (!Files.exists(DmaHeap.SYSTEM) && !Files.exists(Udmabuf.DEVICE)) {
                assertEquals(HostBacking.CU_MEM_HOST_ALLOC, t.backingKind());
                assertEquals(2, t.skippedSources().size());
                assertTrue(t.backing().contains("dma-heap: /dev/dma_heap/system: absent"), t.backing());
                assertTrue(t.backing().contains("udmabuf: /dev/udmabuf: absent"), t.backing());
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = HostBacking.class, names = {"CU_MEM_HOST_ALLOC", "CU_MEM_HOST_REGISTER"})
    void slotsSpreadOverBoundedChunksHoldTheirBytes(HostBacking source) {
        long slotBytes = 16 * 1024;
        // 3 slots per chunk: 10 slots need 4 allocations or registrations
        try (PinnedHostTier t = PinnedHostTier.builder(slotBytes, 10).context(device0()).chunkBytes(3 * slotBytes + 100)
                .sources(source).build(); Arena arena = Arena.ofConfined()) {
            assertEquals(source, t.backingKind());
            assertEquals(3, t.slotsPerChunk());
            assertTrue(t.backing().contains("4 chunk(s)"), t.backing());
            for (int i = 0; i < 10; i++) {
                assertEquals(i, t.allocate());
                MemorySegment src = arena.allocate(slotBytes);
                fillRandom(src, 100 + i);
                t.write(i, 0, src);
                assertEquals(t.address(i), t.view(i).address());
                assertEquals(slotBytes, t.view(i).byteSize());
            }
            for (int i = 0; i < 10; i++) {
                assertEquals(-1, mismatch(t.view(i), 100 + i), "slot " + i);
                MemorySegment back = arena.allocate(100);
                t.read(i, slotBytes - 100, back);
                assertEquals(-1, back.mismatch(t.view(i).asSlice(slotBytes - 100)));
            }
            assertEquals(-1, t.allocate());
            assertThrows(IndexOutOfBoundsException.class, () -> t.write(0, 1, t.view(1)));
            assertThrows(IllegalArgumentException.class, () -> t.view(10));
        }
    }

    @Test
    void registeredHugePageMemoryHoldsItsBytes() {
        long slotBytes = 64 * 1024;
        try (PinnedHostTier t = PinnedHostTier.builder(slotBytes, 100).context(device0())
                .sources(HostBacking.CU_MEM_HOST_REGISTER).hugePages(true).build()) {
            assertTrue(t.backing().startsWith("mmap+cuMemHostRegister (huge pages)"), t.backing());
            assertEquals(0, t.address(0) % (2 << 20), "2 MiB aligned");
            for (int i = 0; i < 100; i++) {
                t.allocate();
                fillRandom(t.view(i), 300 + i);
            }
            for (int i = 0; i < 100; i++) {
                assertEquals(-1, mismatch(t.view(i), 300 + i));
            }
        }
    }
}
