package io.kvcache.tiers.disk;

/**
 * Byte layout of the disk tier's data file, format version {@value #FORMAT_VERSION}; the
 * normative description with diagrams is {@code docs/disk-format.md}. All integers are
 * little-endian.
 *
 * <pre>
 * file:  [ file header, 4096 B ][ slot header table, slotCount * 128 B ][ padding to 2 MiB ][ slot 0 data ][ slot 1 data ] ...
 *        dataOffset = roundUp(4096 + slotCount * 128, 2 MiB); slot i at dataOffset + i * slotStride,
 *        slotStride = slotBytes rounded up to 4096
 *
 * file header (4096 bytes)
 *   0  magic            u64  "KVCDISK1" (0x314B5349_4443564B as a little-endian long)
 *   8  format version   u32
 *  12  header bytes     u32  4096
 *  16  layout fprint    i64  KvLayout.fingerprint()
 *  24  slot bytes       i64  bytes of one block
 *  32  slot stride      i64
 *  40  slot count       i64
 *  48  data offset      i64
 *  56  slot header size u32  128
 *  60  open state       u32  0 = closed cleanly, 1 = open (found at open: unclean shutdown)
 *  64  index crc        u32  CRC32C of the index file at the last clean close
 *  68  reserved         u32
 *  72  index length     i64  length of the index file at the last clean close
 *  80  model id length  u32  (at most 256)
 *  84  model id         UTF-8 bytes
 * 4092 header crc       u32  CRC32C of bytes [0, 4092)
 *
 * slot header (128 bytes)
 *   0  state            u32  0 = free, 1 = published
 *   4  flags            u32  bit 0: has parent
 *   8  generation       i64  incremented on every publish of this slot
 *  16  length           i64  bytes of block data (the slot bytes)
 *  24  data crc         u32  CRC32C of the block data
 *  28  reserved         u32
 *  32  key              32 B the block's content key
 *  64  parent key       32 B the parent block's key, zero if none
 *  96  reserved         28 B
 * 124  header crc       u32  CRC32C of bytes [0, 124)
 * </pre>
 *
 * <p>Only the codecs {@link FileHeader} and {@link SlotHeader} use the field offsets; everything
 * else speaks in decoded headers and in the geometry functions below.
 */
final class DiskFileDescriptor {
    static final long MAGIC = 0x314B_5349_4443_564BL;
    static final int FORMAT_VERSION = 1;
    static final int FILE_HEADER_BYTES = 4096;
    static final int PAGE = 4096;
    static final int SLOT_HEADER_BYTES = 128;
    static final int MAX_MODEL_ID_BYTES = 256;

    static final int MAGIC_OFFSET = 0;
    static final int VERSION_OFFSET = 8;
    static final int HEADER_BYTES_OFFSET = 12;
    static final int FINGERPRINT_OFFSET = 16;
    static final int SLOT_BYTES_OFFSET = 24;
    static final int SLOT_STRIDE_OFFSET = 32;
    static final int SLOT_COUNT_OFFSET = 40;
    static final int DATA_OFFSET_OFFSET = 48;
    static final int SLOT_HEADER_SIZE_OFFSET = 56;
    static final int OPEN_STATE_OFFSET = 60;
    static final int INDEX_CRC_OFFSET = 64;
    static final int INDEX_LENGTH_OFFSET = 72;
    static final int MODEL_ID_LENGTH_OFFSET = 80;
    static final int MODEL_ID_OFFSET = 84;
    static final int FILE_HEADER_CRC_OFFSET = FILE_HEADER_BYTES - 4;

    static final int STATE_CLOSED = 0;
    static final int STATE_OPEN = 1;

    static final int SLOT_STATE_OFFSET = 0;
    static final int SLOT_FLAGS_OFFSET = 4;
    static final int SLOT_GENERATION_OFFSET = 8;
    static final int SLOT_LENGTH_OFFSET = 16;
    static final int SLOT_DATA_CRC_OFFSET = 24;
    static final int SLOT_KEY_OFFSET = 32;
    static final int SLOT_PARENT_OFFSET = 64;
    static final int SLOT_HEADER_CRC_OFFSET = 124;

    static final int SLOT_FREE = 0;
    static final int SLOT_PUBLISHED = 1;
    static final int FLAG_HAS_PARENT = 1;

    private DiskFileDescriptor() {
    }

    /** @return bytes between consecutive slots' data: slot bytes rounded up to a page */
    static long slotStride(long slotBytes) {
        return roundUp(slotBytes, PAGE);
    }

    /**
     * Alignment of the first slot's data. With slots a multiple of 4096 bytes apart and the
     * first one 2 MiB aligned, a 64 KiB block starts on a 64 KiB boundary and a 2 MiB block on a
     * 2 MiB boundary, so the kernel's large page-cache folios cover whole blocks (measured: a
     * 64 KiB pwrite off such a boundary cost 1.5 us more).
     */
    static final long DATA_ALIGNMENT = 2L << 20;

    /** @return offset of the first slot's data: after the file header and the slot header table, 2 MiB aligned */
    static long dataOffset(long slotCount) {
        return roundUp(FILE_HEADER_BYTES + slotCount * SLOT_HEADER_BYTES, DATA_ALIGNMENT);
    }

    /** @return offset of a slot's header in the file */
    static long slotHeaderOffset(int slot) {
        return FILE_HEADER_BYTES + (long) slot * SLOT_HEADER_BYTES;
    }

    /** @return total file length for a slot count */
    static long fileLength(long slotCount, long slotBytes) {
        return dataOffset(slotCount) + slotCount * slotStride(slotBytes);
    }

    static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }
}
