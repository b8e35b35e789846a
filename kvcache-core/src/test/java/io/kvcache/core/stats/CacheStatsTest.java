package io.kvcache.core.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link CacheStats} prints as a table whose rows and columns line up, with every counter in it. */
class CacheStatsTest {
    private static final long MIB = 1 << 20;

    private static CacheStats sample() {
        List<TierStats> tiers = List.of(
                new TierStats("device", "simulated (off-heap)", 8, 8, 8 * MIB, 8 * MIB, 120, 0, 0, 40, 3, 0, false),
                new TierStats("host", "mmap + mlock", 64, 30, 64 * MIB, 30 * MIB, 35, 1, 31, 40, 0, 2, false),
                new TierStats("disk", "a backing description longer than its column", 512, 90, 512 * MIB, 90 * MIB,
                        9, 0, 9, 5, 0, 0, true));
        PersistStats persist = new PersistStats("WRITE_THROUGH", 70, 64, 64 * MIB, 2, 3, 1, 5, 60_000_000,
                29_000_000, 2_100_000);
        return new CacheStats(tiers, 40, 40 * MIB, 45, 45 * MIB, 3, 2, 2 * MIB, 800, 768, 12_500_000, 9_000_000,
                Map.of("engine-0", 7_000_000L, "engine-1", 5_500_000L), 30, 24, 6, 1, 125, persist);
    }

    @Test
    void tierRowsLineUpUnderTheHeader() {
        List<String> lines = sample().toTable().lines().toList();
        String header = lines.get(0);
        assertTrue(header.matches("tier\\s+backing\\s+slots\\s+used\\s+used MiB\\s+hits\\s+misses\\s+lost\\s+promoted"
                + "\\s+demoted\\s+fell back\\s+dropped"), header);
        for (String row : lines.subList(2, 5)) {
            assertEquals(header.length(), row.length(), "row and header widths differ:\n" + header + "\n" + row);
            // every right-aligned column ends where its header ends
            int end = header.indexOf("misses") + "misses".length();
            assertTrue(Character.isDigit(row.charAt(end - 1)) && row.charAt(end) == ' ', row);
        }
        assertTrue(lines.get(2).matches("device\\s+simulated \\(off-heap\\)\\s+8\\s+8\\s+8\\.0\\s+120\\s+40\\s+0\\s+0\\s+40\\s+3\\s+0"),
                lines.get(2));
        assertTrue(lines.get(3).matches("host\\s+mmap \\+ mlock\\s+64\\s+30\\s+30\\.0\\s+35\\s+9\\s+1\\s+31\\s+40\\s+0\\s+2"),
                lines.get(3));
        assertTrue(lines.get(4).startsWith("disk FAILED"), "a failed tier says so: " + lines.get(4));
        assertTrue(lines.get(4).contains("a backing description longe~"), "a long backing is cut to its column: " + lines.get(4));
    }

    @Test
    void everyCounterHasALine() {
        String t = sample().toTable();
        for (String expected : List.of(
                "moved up       40 blocks, 40.0 MiB\n",
                "moved down     45 blocks, 45.0 MiB; 3 evictions fell back to a lower copy (no bytes)\n",
                "copy-on-write  2 blocks, 2.0 MiB\n",
                "prefix reuse   768 of 800 prompt tokens found cached (96.0%)\n",
                "waited         9.000 ms wall, 12.500 ms summed over 2 thread(s), longest thread 7.000 ms\n",
                "prefetch       30 blocks issued; 24 in time, 6 late (80.0%)\n",
                "blocks         125 live, 1 lost\n",
                "persist        WRITE_THROUGH: 70 queued, 64 written (64.0 MiB), 2 skipped (queue full), 3 not admitted,"
                        + " 1 failed, 5 waiting; writer 60.000 ms; lag mean 2.100 ms, max 29.000 ms\n")) {
            assertTrue(t.contains(expected), "missing \"" + expected.strip() + "\" in\n" + t);
        }
        assertEquals(t, sample().toString(), "toString prints the table");
    }

    @Test
    void missesOfATierAreTheBlocksTheTiersBelowItServed() {
        CacheStats s = sample();
        assertEquals(31 + 9, s.misses(0));
        assertEquals(9, s.misses(1));
        assertEquals(0, s.misses(2));
        assertThrows(IndexOutOfBoundsException.class, () -> s.misses(3));
    }

    @Test
    void nothingAskedForPrintsNoPercentages() {
        CacheStats s = new CacheStats(List.of(), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, Map.of(), 0, 0, 0, 0, 0,
                new PersistStats("none", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        String t = s.toTable();
        assertTrue(t.contains("prefix reuse   0 of 0 prompt tokens found cached\n"), t);
        assertTrue(t.contains("persist        no persistent tier\n"), t);
        assertTrue(!t.contains("NaN"), t);
    }
}
