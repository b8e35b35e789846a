package io.kvcache.nativ.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CopyKernelsResourceTest {

    @ParameterizedTest
    @ValueSource(strings = {"compute_90", "compute_75"})
    void ptxResourceHoldsAllThreeKernelsForItsTarget(String target) {
        String ptx = new String(CopyKernels.resource("kv_copy." + target + ".ptx"), StandardCharsets.US_ASCII);
        assertTrue(ptx.contains(".target sm_" + target.substring("compute_".length())), "target line");
        for (String k : new String[] {"kv_gather_blocks", "kv_scatter_blocks", "kv_copy_device_blocks"}) {
            assertTrue(ptx.contains(".entry " + k + "("), k);
        }
        // 16-byte vector accesses: the kernels' bandwidth depends on them
        assertTrue(ptx.contains(".v4.u32"), "vector loads");
    }
}
