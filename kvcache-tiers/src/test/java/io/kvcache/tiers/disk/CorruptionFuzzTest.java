package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.TestBlocks.MODEL;
import static io.kvcache.tiers.disk.TestBlocks.SMALL;
import static io.kvcache.tiers.disk.TestBlocks.fill;
import static io.kvcache.tiers.disk.TestBlocks.key;
import static io.kvcache.tiers.disk.TestBlocks.matches;
import static org.junit.jupiter.api.Assertions.*;

import io.kvcache.core.tier.BlockUnavailableException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Flips bytes, zeroes ranges, truncates and deletes parts of the data file and of the index,
 * of a cleanly closed cache and of a crash image, then opens it: every read is either the
 * exact bytes of its key or a miss, and nothing but a clear refusal of the file escapes. Also
 * truncates and deletes the data file underneath an open tier.
 * {@code -Dkvcache.fuzz.iterations=N} sets the iterations (default 150).
 */
@ExtendWith(QuietTierLog.class)
class CorruptionFuzzTest {
    private static final int SLOTS = 24;
    private static final int BLOCKS = 20;

    @TempDir
    Path tmp;

    private static MappedFileTier open(Path dir) {
        return MappedFileTier.builder(SMALL).directory(dir).modelId(MODEL)
                .capacityBytes(SLOTS * DiskFileDescriptor.slotStride(SMALL.blockBytes())).open();
    }

    private static void store(MappedFileTier t, int id, boolean hold, List<Integer> held) {
        int slot = t.allocate(key(id));
        if (slot < 0) {
            return;
        }
        MemorySegment buf = Arena.ofAuto().allocate(t.slotBytes());
        fill(buf, id);
        t.write(slot, 0, buf);
        t.publish(slot, key(id), id % 4 == 0 ? null : key(id - 1));
        if (hold) {
            held.add(slot);
        } else {
            t.free(slot);
        }
    }

    /** @return {verified, misses, wrong} over all ids */
    private static long[] verifyAll(MappedFileTier t) {
        long ok = 0;
        long miss = 0;
        long wrong = 0;
        MemorySegment buf = Arena.ofAuto().allocate(t.slotBytes());
        for (int id = 0; id < BLOCKS + 10; id++) {
            int slot = t.lookup(key(id));
            if (slot < 0) {
                miss++;
                continue;
            }
            try {
                t.read(slot, 0, buf);
                if (matches(buf, id)) {
                    ok++;
                } else {
                    wrong++;
                }
            } catch (BlockUnavailableException e) {
                miss++;
            }
            t.free(slot);
        }
        return new long[] {ok, miss, wrong};
    }

    private static void copyDir(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        for (String f : new String[] {MappedFileTier.DATA_FILE, MappedFileTier.INDEX_FILE}) {
            Files.copy(from.resolve(f), to.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Applies one random corruption to the data file or the index; @return what was done */
    private static String corrupt(SplittableRandom rnd, Path dir) throws IOException {
        boolean data = rnd.nextInt(10) < 7 || !Files.exists(dir.resolve(MappedFileTier.INDEX_FILE));
        Path f = dir.resolve(data ? MappedFileTier.DATA_FILE : MappedFileTier.INDEX_FILE);
        long size = Files.size(f);
        long headers = DiskFileDescriptor.FILE_HEADER_BYTES + (long) SLOTS * DiskFileDescriptor.SLOT_HEADER_BYTES;
        long dataStart = DiskFileDescriptor.dataOffset(SLOTS);
        int op = rnd.nextInt(data ? 4 : 5);
        if (op == 4) {
            Files.delete(f);
            return "index: deleted";
        }
        if (size == 0) {
            return (data ? "data" : "index") + ": already empty";
        }
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            switch (op) {
                case 0, 1 -> {
                    int flips = 1 + rnd.nextInt(16);
                    for (int i = 0; i < flips; i++) {
                        long at = data ? interesting(rnd, headers, dataStart, size) : rnd.nextLong(size);
                        ByteBuffer b = ByteBuffer.allocate(1);
                        ch.read(b, at);
                        b.put(0, (byte) (b.get(0) ^ (1 << rnd.nextInt(8))));
                        ch.write(b.rewind(), at);
                    }
                    return (data ? "data" : "index") + ": flipped " + flips + " bits";
                }
                case 2 -> {
                    long at = data ? interesting(rnd, headers, dataStart, size) : rnd.nextLong(size);
                    int len = (int) Math.min(size - at, 1 + rnd.nextInt(64 * 1024));
                    ch.write(ByteBuffer.allocate(len), at);
                    return (data ? "data" : "index") + ": zeroed " + len + " bytes at " + at;
                }
                default -> {
                    long to = data ? interesting(rnd, headers, dataStart, size) : rnd.nextLong(size);
                    ch.truncate(to);
                    return (data ? "data" : "index") + ": truncated to " + to;
                }
            }
        }
    }

    /** An offset in the data file's headers (a third of the time) or its slot data, never its padding. */
    private static long interesting(SplittableRandom rnd, long headers, long dataStart, long size) {
        if (size <= dataStart) {
            return rnd.nextLong(Math.max(1, size)); // already truncated
        }
        return rnd.nextInt(3) == 0 ? rnd.nextLong(headers) : dataStart + rnd.nextLong(size - dataStart);
    }

    @Test
    void everyReadAfterCorruptionIsVerifiedOrAMiss() throws Exception {
        int iterations = Integer.getInteger("kvcache.fuzz.iterations", 150);
        long seed = Long.getLong("kvcache.fuzz.seed", System.nanoTime());
        Path clean = tmp.resolve("clean");
        Path crash = tmp.resolve("crash");
        List<Integer> held = new ArrayList<>();
        try (MappedFileTier t = open(clean)) {
            for (int id = 0; id < BLOCKS; id++) {
                store(t, id, id % 5 == 0, held);
            }
            // a crash image: the files as they are while the tier is open, index and all
            copyDir(clean, crash);
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        long verified = 0;
        long misses = 0;
        long wrong = 0;
        int refused = 0;
        int rebuilt = 0;
        for (int i = 0; i < iterations; i++) {
            Path dir = tmp.resolve("it" + i);
            copyDir(rnd.nextBoolean() ? clean : crash, dir);
            String what = corrupt(rnd, dir);
            if (rnd.nextInt(4) == 0) {
                what += "; " + corrupt(rnd, dir);
            }
            MappedFileTier t;
            try {
                t = open(dir);
            } catch (DiskFormatException e) {
                refused++; // a header no longer ours (magic, version, layout): refused untouched, never reinterpreted
                continue;
            }
            try {
                rebuilt += t.stats().indexRebuilt() ? 1 : 0;
                long[] v = verifyAll(t);
                verified += v[0];
                misses += v[1];
                wrong += v[2];
                assertEquals(0, v[2], "wrong bytes served after: " + what + " (seed " + seed + ", iteration " + i + ")");
                // the tier keeps working: new blocks go in and come back
                for (int id = BLOCKS; id < BLOCKS + 10; id++) {
                    store(t, id, false, new ArrayList<>());
                }
            } finally {
                t.close();
            }
            try (MappedFileTier again = open(dir)) {
                long[] v = verifyAll(again);
                wrong += v[2];
                assertEquals(0, v[2], "wrong bytes served on reopen after: " + what);
                assertTrue(v[0] >= 10 || again.stats().retiredSlots() > 0,
                        "blocks stored after the corruption did not survive a clean reopen: " + what);
            }
        }
        System.out.printf("corruption fuzz: %d iterations (seed %d): %d opens refused, %d index rebuilds, %d blocks "
                + "verified, %d misses, wrong blocks served: %d%n", iterations, seed, refused, rebuilt, verified, misses, wrong);
        assertEquals(0, wrong);
        assertTrue(verified > 0);
    }

    static final class Captured extends Handler {
        final List<LogRecord> records = new ArrayList<>();

        @Override
        public synchronized void publish(LogRecord r) {
            records.add(r);
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }

        synchronized boolean has(Level level, String text) {
            return records.stream().anyMatch(r -> r.getLevel().intValue() >= level.intValue()
                    && java.text.MessageFormat.format(r.getMessage(), r.getParameters()).contains(text));
        }
    }

    @Test
    void fileTruncatedUnderneathTurnsLostBlocksIntoMissesWithoutInternalError() throws Exception {
        Path dir = tmp.resolve("trunc");
        Logger log = Logger.getLogger(MappedFileTier.class.getName());
        Captured captured = new Captured();
        log.addHandler(captured);
        try (MappedFileTier t = open(dir)) {
            List<Integer> held = new ArrayList<>();
            for (int id = 0; id < 8; id++) {
                store(t, id, true, held);
            }
            // warm the read path up so that the JIT has compiled it when the fault comes
            MemorySegment warm = Arena.ofAuto().allocate(t.slotBytes());
            for (int i = 0; i < 20_000; i++) {
                t.read(held.get(i % held.size()), 0, warm);
            }
            long keep = DiskFileDescriptor.dataOffset(SLOTS) + 3 * DiskFileDescriptor.slotStride(SMALL.blockBytes());
            try (RandomAccessFile raf = new RandomAccessFile(dir.resolve(MappedFileTier.DATA_FILE).toFile(), "rw")) {
                raf.setLength(keep);
            }
            MemorySegment buf = Arena.ofAuto().allocate(t.slotBytes());
            int served = 0;
            int missed = 0;
            for (int i = 0; i < held.size(); i++) {
                int slot = held.get(i);
                try {
                    t.read(slot, 0, buf);
                    assertTrue(matches(buf, i), "wrong bytes for block " + i);
                    served++;
                } catch (BlockUnavailableException e) {
                    missed++;
                }
                t.free(slot);
            }
            assertEquals(3, served, "blocks before the cut are still served");
            assertEquals(5, missed, "blocks beyond the cut are misses");
            assertTrue(t.stats().ioErrors() > 0);
            assertTrue(t.stats().retiredSlots() >= SLOTS - 3);
            assertTrue(captured.has(Level.SEVERE, "truncated underneath"), "no log line for the truncation");
            for (int id = 0; id < 8; id++) {
                assertTrue(t.lookup(key(id)) < 0 || id < 3);
            }
        } finally {
            log.removeHandler(captured);
        }
        try (MappedFileTier t = open(dir)) {
            long[] v = verifyAll(t);
            assertEquals(0, v[2]);
            assertEquals(3, v[0], "the blocks before the cut survive a reopen");
        }
    }

    @Test
    void fileDeletedUnderneathIsReportedAndTheTierStopsServing() throws Exception {
        Path dir = tmp.resolve("del");
        try (MappedFileTier t = open(dir)) {
            List<Integer> held = new ArrayList<>();
            for (int id = 0; id < 6; id++) {
                store(t, id, false, held);
            }
            Files.delete(dir.resolve(MappedFileTier.DATA_FILE));
            for (int i = 0; i < 100 && !t.failed(); i++) {
                t.lookup(key(i % 6)); // the file is checked every few operations
                int slot = t.lookup(key(i % 6));
                if (slot >= 0) {
                    t.free(slot);
                }
            }
            assertTrue(t.failed());
            assertTrue(t.stats().fileLost());
            assertEquals(-1, t.lookup(key(1)));
            assertEquals(-1, t.allocate());
            assertEquals(0, t.freeSlots());
        }
        try (MappedFileTier t = open(dir)) {
            assertEquals(0, t.stats().recoveredBlocks());
            assertEquals(0, verifyAll(t)[0]);
        }
    }
}
