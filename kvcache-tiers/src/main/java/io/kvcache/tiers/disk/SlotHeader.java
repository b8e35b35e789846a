package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.DiskFileDescriptor.FLAG_HAS_PARENT;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_DATA_CRC_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_FLAGS_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_FREE;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_GENERATION_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_HEADER_BYTES;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_HEADER_CRC_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_KEY_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_LENGTH_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_PARENT_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_PUBLISHED;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_STATE_OFFSET;

import io.kvcache.core.block.BlockKey;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.zip.CRC32C;

/**
 * One 128-byte slot header, decoded, and its codec. The byte layout is
 * {@link DiskFileDescriptor}'s: this class is the only one that reads or writes a
 * {@code SLOT_*_OFFSET}, so callers speak in headers, never in offsets (Agrona's descriptor
 * style).
 *
 * <p>On disk a slot header has two states: free (state 0, all zero when written by this tier)
 * and published. {@code docs/disk-format.md} maps the tier's six in-memory
 * {@linkplain SlotState slot states} onto them.
 *
 * <p>Immutable; the codec methods work on the caller's memory and may run on any thread.
 *
 * @param kind       what the header says
 * @param generation the publication's generation (published only)
 * @param length     bytes of block data (published only)
 * @param dataCrc    CRC32C of the block data (published only)
 * @param key        the block's key (published only)
 * @param parent     the parent block's key, or null
 */
record SlotHeader(Kind kind, long generation, long length, int dataCrc, BlockKey key, BlockKey parent) {
    /** What a slot header found on disk says. */
    enum Kind {
        /** Free: no block (the header of a slot never published, or cleared). */
        FREE,
        /** A published block whose header verifies and whose length is this tier's block size. */
        PUBLISHED,
        /** Neither: torn by a crash, corrupt, or of another block size. The block is a miss. */
        DAMAGED
    }

    /** The free header, all zero. */
    static final SlotHeader FREE = new SlotHeader(Kind.FREE, 0, 0, 0, null, null);
    private static final SlotHeader DAMAGED = new SlotHeader(Kind.DAMAGED, 0, 0, 0, null, null);

    /** @return the header of a block published under {@code key} with generation {@code gen} */
    static SlotHeader published(long gen, long length, int dataCrc, BlockKey key, BlockKey parent) {
        return new SlotHeader(Kind.PUBLISHED, gen, length, dataCrc, key, parent);
    }

    /** Writes this header's {@value DiskFileDescriptor#SLOT_HEADER_BYTES} bytes into {@code h}; a free header is all zero. */
    void encode(MemorySegment h) {
        h.fill((byte) 0);
        if (kind != Kind.PUBLISHED) {
            return;
        }
        h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_STATE_OFFSET, SLOT_PUBLISHED);
        h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_FLAGS_OFFSET, parent == null ? 0 : FLAG_HAS_PARENT);
        h.set(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_GENERATION_OFFSET, generation);
        h.set(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_LENGTH_OFFSET, length);
        h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_DATA_CRC_OFFSET, dataCrc);
        MemorySegment.copy(MemorySegment.ofArray(key.toBytes()), 0, h, SLOT_KEY_OFFSET, BlockKey.BYTES);
        if (parent != null) {
            MemorySegment.copy(MemorySegment.ofArray(parent.toBytes()), 0, h, SLOT_PARENT_OFFSET, BlockKey.BYTES);
        }
        h.set(ValueLayout.JAVA_INT_UNALIGNED, SLOT_HEADER_CRC_OFFSET, headerCrc(h));
    }

    /**
     * Decodes a header read from disk. State 0 is free whatever the other bytes hold; a
     * published header counts only if its own CRC32C verifies and it covers {@code slotBytes}.
     */
    static SlotHeader decode(MemorySegment h, long slotBytes) {
        int st = h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_STATE_OFFSET);
        if (st == SLOT_FREE) {
            return FREE;
        }
        if (st != SLOT_PUBLISHED || headerCrc(h) != h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_HEADER_CRC_OFFSET)
                || h.get(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_LENGTH_OFFSET) != slotBytes) {
            return DAMAGED;
        }
        BlockKey parent = (h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_FLAGS_OFFSET) & FLAG_HAS_PARENT) == 0 ? null
                : BlockKey.of(h.asSlice(SLOT_PARENT_OFFSET, BlockKey.BYTES).toArray(ValueLayout.JAVA_BYTE));
        return published(h.get(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_GENERATION_OFFSET), slotBytes,
                h.get(ValueLayout.JAVA_INT_UNALIGNED, SLOT_DATA_CRC_OFFSET),
                BlockKey.of(h.asSlice(SLOT_KEY_OFFSET, BlockKey.BYTES).toArray(ValueLayout.JAVA_BYTE)), parent);
    }

    /** @return the bytes of {@code count} consecutive headers, for a segment holding them */
    static long bytes(int count) {
        return (long) count * SLOT_HEADER_BYTES;
    }

    private static int headerCrc(MemorySegment h) {
        CRC32C c = new CRC32C();
        c.update(h.asSlice(0, SLOT_HEADER_CRC_OFFSET).asByteBuffer());
        return (int) c.getValue();
    }
}
