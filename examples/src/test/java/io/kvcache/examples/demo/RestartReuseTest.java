package io.kvcache.examples.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Two runs of the demo on one disk directory: the second finds the first one's blocks on disk. */
class RestartReuseTest {

    @Test
    void secondRunServesThePreviousRequestsPrefixFromDisk(@TempDir Path dir) {
        Path disk = dir.resolve("kv");
        String[] args = {"--tokens", "120", "--device-budget", "384KiB", "--host-budget", "256KiB", "--disk-dir",
                disk.toString(), "--disk-budget", "16MiB", "--followup-tokens", "8", "--no-verify", "--no-progress",
                "--sessions", "0"};
        LongContextDemoTest.Run first = LongContextDemoTest.run(args);
        assertEquals(0, first.status(), first.out() + first.err());
        assertTrue(first.out().contains("run again with the same --disk-dir"), first.out());

        LongContextDemoTest.Run second = LongContextDemoTest.run(args);
        assertEquals(0, second.status(), second.out() + second.err());
        Matcher m = Pattern.compile("\\((\\d+)-token prompt\\), sent first, found (\\d+) tokens\\s+cached \\((\\d+) blocks "
                + "from disk\\)").matcher(second.out());
        assertTrue(m.find(), second.out());
        int prompt = Integer.parseInt(m.group(1));
        int tokens = Integer.parseInt(m.group(2));
        int fromDisk = Integer.parseInt(m.group(3));
        // every full block of the prompt (but a last one that ends it, recomputed for its logits) is on disk
        int blockTokens = 16; // the demo's default --block-tokens
        int fullBlocks = (prompt - 1) / blockTokens;
        assertEquals(fullBlocks * blockTokens, tokens, second.out());
        assertEquals(fullBlocks, fromDisk, second.out());
        assertTrue(second.out().contains("the request resumed from disk equals the cold run: yes"), second.out());
    }

    @Test
    void corruptedDiskBlocksAreRecomputedNeverServed(@TempDir Path dir) throws Exception {
        Path disk = dir.resolve("kv");
        String[] args = {"--tokens", "120", "--device-budget", "384KiB", "--host-budget", "256KiB", "--disk-dir",
                disk.toString(), "--disk-budget", "16MiB", "--followup-tokens", "8", "--no-verify", "--no-progress",
                "--sessions", "0"};
        assertEquals(0, LongContextDemoTest.run(args).status());
        // overwrite every slot's data with garbage, leaving headers and index intact
        Path file = disk.resolve("blocks.kvc");
        long dataOffset;
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file,
                java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer header = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            ch.read(header, 48);
            dataOffset = header.flip().getLong();
            java.nio.ByteBuffer junk = java.nio.ByteBuffer.allocate(1 << 16);
            new java.util.Random(1).nextBytes(junk.array());
            for (long off = dataOffset; off < ch.size(); off += junk.capacity()) {
                junk.clear();
                ch.write(junk, off);
            }
        }
        LongContextDemoTest.Run second = LongContextDemoTest.run(args);
        assertEquals(0, second.status(), second.out() + second.err());
        assertTrue(second.out().contains("the request resumed from disk equals the cold run: yes"), second.out());
    }

    @Test
    void aDirectoryHeldByAnotherTierIsOneLineAndStatus2(@TempDir Path dir) throws Exception {
        // a regular file where the directory should be
        Path file = java.nio.file.Files.writeString(dir.resolve("not-a-dir"), "x");
        LongContextDemoTest.Run r = LongContextDemoTest.run("--tokens", "8", "--disk-dir", file.toString(),
                "--no-progress", "--sessions", "0");
        assertEquals(2, r.status(), r.out() + r.err());
        assertTrue(r.err().startsWith("error: --disk-dir " + file), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }
}
