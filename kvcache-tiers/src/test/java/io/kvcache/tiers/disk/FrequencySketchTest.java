package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.TestBlocks.key;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class FrequencySketchTest {

    @Test
    void countsAccessesUpToFifteenWithoutUndercounting() {
        FrequencySketch s = new FrequencySketch(1024);
        assertEquals(0, s.frequency(key(1)));
        for (int i = 1; i <= 20; i++) {
            s.increment(key(1));
            assertTrue(s.frequency(key(1)) >= Math.min(i, 15), "undercount after " + i);
        }
        assertEquals(15, s.frequency(key(1)));
        for (int i = 0; i < 3; i++) {
            s.increment(key(2));
        }
        assertTrue(s.frequency(key(2)) >= 3 && s.frequency(key(2)) < 15);
    }

    @Test
    void oldPopularityFadesAsNewAccessesArrive() {
        FrequencySketch s = new FrequencySketch(64);
        for (int i = 0; i < 15; i++) {
            s.increment(key(1));
        }
        // enough other accesses to trigger the periodic halving several times
        for (int id = 100; id < 100 + 64 * 10 * 4; id++) {
            s.increment(key(id));
        }
        assertTrue(s.frequency(key(1)) < 8, "no aging: " + s.frequency(key(1)));
    }
}
