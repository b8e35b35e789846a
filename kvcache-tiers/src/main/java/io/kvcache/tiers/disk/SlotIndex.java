package io.kvcache.tiers.disk;

import io.kvcache.core.block.BlockKey;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import net.openhft.chronicle.map.ChronicleMap;
import net.openhft.chronicle.map.ChronicleMapBuilder;

/**
 * The persistent key-to-slot index: a Chronicle Map from a block's 32-byte content key to its
 * slot and the low 32 bits of the slot's generation, persisted beside the data file. The slot
 * headers of the data file are the truth; the index only makes lookups cheap, and it is
 * reconciled with the headers on every open.
 *
 * <p>Thread-safe (Chronicle Map is).
 */
final class SlotIndex implements AutoCloseable {
    private final ChronicleMap<byte[], Long> map;
    /** Corruptions Chronicle reported while recovering; 0 for an ordinary open. */
    final long recoveryCorruptions;

    private SlotIndex(ChronicleMap<byte[], Long> map, long recoveryCorruptions) {
        this.map = map;
        this.recoveryCorruptions = recoveryCorruptions;
    }

    private static ChronicleMapBuilder<byte[], Long> builder(long entries) {
        return ChronicleMap.of(byte[].class, Long.class)
                .name("kvcache-disk-index")
                .constantKeySizeBySample(new byte[BlockKey.BYTES])
                .entries(Math.max(1024, entries))
                .maxBloatFactor(2.0);
    }

    /** Opens an index closed cleanly, or creates a new one. */
    static SlotIndex open(File file, long entries) throws IOException {
        return new SlotIndex(builder(entries).createPersistedTo(file), 0);
    }

    /** Opens an index after an unclean shutdown with Chronicle's recovery, which repairs its segments. */
    static SlotIndex recover(File file, long entries) throws IOException {
        AtomicLong corruptions = new AtomicLong();
        ChronicleMap<byte[], Long> map = builder(entries).recoverPersistedTo(file, true,
                corruption -> corruptions.incrementAndGet());
        return new SlotIndex(map, corruptions.get());
    }

    static long pack(int slot, long generation) {
        return (generation << 32) | (slot & 0xFFFF_FFFFL);
    }

    static int slotOf(long packed) {
        return (int) packed;
    }

    static int generationOf(long packed) {
        return (int) (packed >>> 32);
    }

    /** @return the packed slot and generation, or -1 when absent */
    long get(BlockKey key) {
        Long v = map.get(key.toBytes());
        return v == null ? -1 : v;
    }

    /** @return the packed value this replaced, or -1 */
    long put(BlockKey key, int slot, long generation) {
        Long previous = map.put(key.toBytes(), pack(slot, generation));
        return previous == null ? -1 : previous;
    }

    void remove(BlockKey key) {
        map.remove(key.toBytes());
    }

    /** Removes the entry only if it still maps to {@code packed}. */
    void remove(BlockKey key, long packed) {
        map.remove(key.toBytes(), packed);
    }

    long size() {
        return map.longSize();
    }

    /** One entry of {@link #entries()}. */
    record Entry(BlockKey key, long packed) {
    }

    /** @return a snapshot of all entries, for reconciling with the slot headers at open */
    List<Entry> entries() {
        List<Entry> out = new ArrayList<>();
        map.forEach((k, v) -> {
            if (k != null && k.length == BlockKey.BYTES && v != null) {
                out.add(new Entry(BlockKey.of(k), v));
            }
        });
        return out;
    }

    @Override
    public void close() {
        map.close();
    }
}
