package io.kvcache.bench.disk;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The disk benchmark runs end to end on a few MiB and leaves nothing behind; no timing is asserted. */
class DiskTierBenchmarkTest {
    @TempDir
    Path tmp;

    @Test
    void measuresBothBlockSizesAgainstThePlainFileAndCleansUp() throws Exception {
        List<DiskTierBenchmark.Row> rows = DiskTierBenchmark.run(tmp, 8L << 20, new long[] {64L << 10, 2L << 20}, 1);
        assertEquals(2, rows.size());
        for (DiskTierBenchmark.Row r : rows) {
            assertEquals(8L << 20, r.totalBytes());
            assertTrue(r.plainWriteGbps() > 0 && r.tierWriteGbps() > 0 && r.plainReadGbps() > 0 && r.tierReadGbps() > 0);
        }
        String table = DiskTierBenchmark.table(rows);
        assertTrue(table.contains("| 64 KiB |") && table.contains("| 2 MiB |"), table);
        try (var s = Files.list(tmp)) {
            assertEquals(List.of(), s.toList(), "benchmark files left behind");
        }
    }

    @Test
    void layoutsHaveTheRequestedBlockSize() {
        assertEquals(64L << 10, DiskTierBenchmark.layoutFor(64L << 10).blockBytes());
        assertEquals(2L << 20, DiskTierBenchmark.layoutFor(2L << 20).blockBytes());
        assertThrows(IllegalArgumentException.class, () -> DiskTierBenchmark.layoutFor(1000));
    }
}
