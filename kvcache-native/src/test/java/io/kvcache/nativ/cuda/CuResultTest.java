package io.kvcache.nativ.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class CuResultTest {

    @Test
    void codesMapToTheirNamedConstants() {
        assertEquals(CuResult.SUCCESS, CuResult.of(0));
        assertEquals(CuResult.OUT_OF_MEMORY, CuResult.of(2));
        assertEquals(CuResult.ILLEGAL_ADDRESS, CuResult.of(700));
        assertEquals(CuResult.LAUNCH_FAILED, CuResult.of(719));
        assertEquals(CuResult.UNKNOWN, CuResult.of(999));
        assertEquals("CUDA_ERROR_NOT_READY", CuResult.of(600).cName());
    }

    @Test
    void everyListedCodeRoundTripsAndCodesAreUnique() {
        Set<Integer> seen = new HashSet<>();
        for (CuResult r : CuResult.values()) {
            if (r == CuResult.UNRECOGNIZED) {
                continue;
            }
            assertTrue(seen.add(r.code()), "duplicate code " + r.code());
            assertEquals(r, CuResult.of(r.code()));
        }
        assertTrue(seen.size() > 100, "table has " + seen.size() + " codes");
    }

    @Test
    void unknownCodesKeepTheirNumberInTheMessage() {
        assertEquals(CuResult.UNRECOGNIZED, CuResult.of(4242));
        assertEquals(CuResult.UNRECOGNIZED, CuResult.of(-3));
        CudaException e = CudaException.of("cuFoo", 4242, null);
        assertTrue(e.getMessage().contains("(4242)"), e.getMessage());
        assertEquals(4242, e.code());
    }

    @Test
    void contextPoisoningErrorsAreStickyAndOthersAreNot() {
        for (CuResult r : new CuResult[] {CuResult.ILLEGAL_ADDRESS, CuResult.LAUNCH_FAILED, CuResult.MISALIGNED_ADDRESS,
                CuResult.ILLEGAL_INSTRUCTION, CuResult.HARDWARE_STACK_ERROR, CuResult.ECC_UNCORRECTABLE}) {
            assertTrue(r.sticky(), r.name());
        }
        for (CuResult r : new CuResult[] {CuResult.SUCCESS, CuResult.INVALID_VALUE, CuResult.OUT_OF_MEMORY,
                CuResult.NOT_READY, CuResult.LAUNCH_OUT_OF_RESOURCES, CuResult.INVALID_HANDLE}) {
            assertFalse(r.sticky(), r.name());
        }
    }

    @Test
    void exceptionNamesCallResultAndStickiness() {
        CudaException e = CudaException.of("cuLaunchKernel", 700, "an illegal memory access was encountered");
        assertEquals("cuLaunchKernel", e.call());
        assertEquals(CuResult.ILLEGAL_ADDRESS, e.result());
        assertTrue(e.sticky());
        assertTrue(e.getMessage().startsWith("cuLaunchKernel failed: CUDA_ERROR_ILLEGAL_ADDRESS (700): an illegal"),
                e.getMessage());
        assertTrue(e.getMessage().contains("sticky"), e.getMessage());
        assertInstanceOf(CudaOutOfMemoryException.class, CudaException.of("cuMemAlloc", 2, null));
        assertFalse(CudaException.of("cuMemAlloc", 2, null).getMessage().contains("sticky"));
    }
}
