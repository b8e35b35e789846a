package io.kvcache.core.cost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import java.util.List;
import org.junit.jupiter.api.Test;

class CostModelTest {
    /** Llama-3-8B shape: 128 KiB a token, 16-token blocks of 2 MiB. */
    static final KvLayout LLAMA3_8B = new KvLayout(32, 8, 128, DType.BF16, 16);

    @Test
    void hostRamPaysAndThisDiskLosesForAnEightBModel() {
        CostModel m = new CostModel(LLAMA3_8B, 25e-6, List.of(
                new CostModel.Link("host", 55e9, 5e-6),
                new CostModel.Link("disk", 1.5e9, 100e-6)));
        assertTrue(m.reloadPays(1));
        assertFalse(m.reloadPays(2));
        assertEquals(2 * 1024 * 1024 / 55e9 + 5e-6, m.reloadSeconds(1), 1e-12);
        assertEquals(0, m.reloadSeconds(0));
        String report = m.report();
        assertTrue(report.contains("host") && report.contains("reload (offloading pays)"), report);
        assertTrue(report.contains("disk") && report.contains("recompute (offloading loses)"), report);
    }

    @Test
    void badNumbersAreRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new CostModel.Link("disk", 0, 0));
        assertTrue(e.getMessage().contains("disk"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new CostModel.Link("disk", 1e9, -1));
        assertThrows(IllegalArgumentException.class, () -> new CostModel(LLAMA3_8B, 0, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new CostModel(LLAMA3_8B, 1e-6, List.of()).reloadSeconds(1));
    }
}
