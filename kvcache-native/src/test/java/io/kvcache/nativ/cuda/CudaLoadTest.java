package io.kvcache.nativ.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.util.List;
import org.junit.jupiter.api.Test;

class CudaLoadTest {

    @Test
    void missingDriverLibraryGivesAMessageNamingTheDriverAndEveryNameTried() {
        Cuda.Loaded l = Cuda.load(List.of("kvcache-no-such-cuda", "libkvcache-no-such-cuda.so.1"));
        assertNull(l.lib());
        assertNotNull(l.failure());
        String m = l.failure().getMessage();
        assertTrue(m.contains("driver library (libcuda) could not be loaded"), m);
        assertTrue(m.contains("NVIDIA driver"), m);
        assertTrue(m.contains("kvcache-no-such-cuda:"), m);
        assertTrue(m.contains("libkvcache-no-such-cuda.so.1:"), m);
    }

    @Test
    void onAHostWithoutDriverEveryEntryPointFailsWithTheSameClearException() {
        assumeFalse(Cuda.available(), "a CUDA driver is present on this host");
        CudaUnavailableException a = assertThrows(CudaUnavailableException.class, Cuda::driver);
        assertTrue(a.getMessage().contains("CUDA is not available"), a.getMessage());
        CudaUnavailableException b = assertThrows(CudaUnavailableException.class, () -> CudaContext.device(0));
        assertEquals(a.getMessage(), b.getMessage());
    }

    @Test
    void configuredLibraryPropertyReplacesTheDefaultNames() {
        String old = System.getProperty(Cuda.LIBRARY_PROPERTY);
        try {
            System.setProperty(Cuda.LIBRARY_PROPERTY, "/opt/elsewhere/libcuda.so.1");
            assertEquals(List.of("/opt/elsewhere/libcuda.so.1"), Cuda.libraryNames());
            System.clearProperty(Cuda.LIBRARY_PROPERTY);
            assertEquals(List.of("cuda", "libcuda.so.1"), Cuda.libraryNames());
        } finally {
            if (old != null) {
                System.setProperty(Cuda.LIBRARY_PROPERTY, old);
            }
        }
    }
}
