package io.kvcache.tiers.device;

import static io.kvcache.tiers.GpuTestSupport.device0;
import static io.kvcache.tiers.GpuTestSupport.fillRandom;
import static io.kvcache.tiers.GpuTestSupport.mismatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.tier.TierKind;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaOutOfMemoryException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class CudaDeviceTierGpuTest {

    @Test
    void contextDescribesTheDevice() {
        CudaContext ctx = device0();
        assertTrue(ctx.multiprocessors() > 0);
        assertTrue(ctx.totalMemory() > 1L << 30);
        assertTrue(ctx.unifiedAddressing());
        assertEquals(ctx, CudaContext.device(0), "one primary context per ordinal");
        assertThrows(IllegalArgumentException.class, () -> CudaContext.device(1_000));
        System.out.println("device: " + ctx + ", " + ctx.totalMemory() + " bytes, " + ctx.multiprocessors()
                + " SMs, kernels " + ctx.copyKernels().target() + ", cuMemcpyBatchAsync "
                + (ctx.batchedMemcpy().available() ? "available" : ctx.batchedMemcpy().unavailableReason()));
    }

    @Test
    void everySlotIsHandedOutOnceThenFullAndBadFreesAreNamed() {
        try (CudaDeviceTier t = CudaDeviceTier.allocate(device0(), 4096, 16)) {
            assertEquals(TierKind.DEVICE, t.kind());
            assertFalse(t.hostAccessible());
            Set<Integer> slots = new HashSet<>();
            Set<Long> addresses = new HashSet<>();
            for (int i = 0; i < 16; i++) {
                int s = t.allocate();
                assertTrue(slots.add(s));
                assertTrue(addresses.add(t.address(s)));
                assertEquals(0, (t.address(s) - t.baseAddress()) % 4096);
            }
            assertEquals(-1, t.allocate());
            assertEquals(0, t.freeSlots());
            t.free(3);
            assertEquals(1, t.freeSlots());
            assertThrows(IllegalStateException.class, () -> t.free(3));
            assertThrows(IllegalArgumentException.class, () -> t.free(16));
            assertThrows(IllegalArgumentException.class, () -> t.free(-1));
            assertThrows(UnsupportedOperationException.class, () -> t.view(0));
            assertTrue(t.backing().startsWith("cuMemAlloc 65536 bytes on cuda:0"), t.backing());
        }
    }

    @Test
    void bytesWrittenAtAnyOffsetReadBackIdenticalFromNativeAndHeapMemory() {
        int slotBytes = 64 * 1024;
        try (CudaDeviceTier t = CudaDeviceTier.allocate(device0(), slotBytes, 8); Arena arena = Arena.ofConfined()) {
            int a = t.allocate();
            int b = t.allocate();
            MemorySegment src = arena.allocate(slotBytes);
            fillRandom(src, 11);
            t.write(a, 0, src);
            byte[] heap = new byte[1000];
            MemorySegment heapSrc = MemorySegment.ofArray(heap);
            fillRandom(heapSrc, 12);
            t.fill(b, (byte) 0x5A);
            t.write(b, 777, heapSrc);
            MemorySegment back = arena.allocate(slotBytes);
            t.read(a, 0, back);
            assertEquals(-1, mismatch(back, 11));
            byte[] heapBack = new byte[1000];
            t.read(b, 777, MemorySegment.ofArray(heapBack));
            assertEquals(-1, mismatch(MemorySegment.ofArray(heapBack), 12));
            MemorySegment around = arena.allocate(777);
            t.read(b, 0, around);
            for (long i = 0; i < 777; i++) {
                assertEquals(0x5A, around.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i), "byte " + i + " untouched");
            }
            assertThrows(IndexOutOfBoundsException.class, () -> t.write(a, slotBytes - 10, src.asSlice(0, 11)));
            assertThrows(IndexOutOfBoundsException.class, () -> t.read(a, -1, back.asSlice(0, 1)));
            assertThrows(IllegalArgumentException.class, () -> t.read(8, 0, back.asSlice(0, 1)));
            t.read(a, 0, back);
            assertEquals(-1, mismatch(back, 11), "refused writes changed nothing");
        }
    }

    @Test
    void exhaustingDeviceMemoryGivesTheTypedExceptionAndLeavesTheDeviceUsable() {
        CudaContext ctx = device0();
        long free = ctx.memoryInfo()[0];
        long slot = 1L << 30;
        int slots = (int) (ctx.totalMemory() / slot) + 64;
        DeviceMemoryExhaustedException e = assertThrows(DeviceMemoryExhaustedException.class,
                () -> CudaDeviceTier.allocate(ctx, slot, slots));
        assertEquals(slot * slots, e.requestedBytes());
        assertTrue(e.getCause() instanceof CudaOutOfMemoryException);
        assertTrue(e.getMessage().contains("needs " + slot * slots + " bytes"), e.getMessage());
        long after = ctx.memoryInfo()[0];
        assertTrue(Math.abs(after - free) < (64L << 20), "free memory " + free + " -> " + after);
        try (CudaDeviceTier small = CudaDeviceTier.allocate(ctx, 4096, 4)) {
            assertEquals(4, small.freeSlots());
        }
        System.out.println("out-of-memory message: " + e.getMessage());
    }
}
