package io.kvcache.tiers.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.kvcache.tiers.device.CudaDeviceTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

final class MemoryCheck {
    private MemoryCheck() {
    }

    static void assertDeviceSlotFilled(CudaDeviceTier dev, int slot, byte value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment back = arena.allocate(dev.slotBytes());
            dev.read(slot, 0, back);
            for (long i = 0; i < back.byteSize(); i += 8) {
                assertEquals(value, back.get(ValueLayout.JAVA_BYTE, i), "slot " + slot + " byte " + i);
            }
        }
    }
}
