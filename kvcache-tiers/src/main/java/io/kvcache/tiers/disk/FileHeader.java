package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.DiskFileDescriptor.DATA_OFFSET_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.FILE_HEADER_BYTES;
import static io.kvcache.tiers.disk.DiskFileDescriptor.FILE_HEADER_CRC_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.FINGERPRINT_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.FORMAT_VERSION;
import static io.kvcache.tiers.disk.DiskFileDescriptor.HEADER_BYTES_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.INDEX_CRC_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.INDEX_LENGTH_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.MAGIC;
import static io.kvcache.tiers.disk.DiskFileDescriptor.MAGIC_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.MAX_MODEL_ID_BYTES;
import static io.kvcache.tiers.disk.DiskFileDescriptor.MODEL_ID_LENGTH_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.MODEL_ID_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.OPEN_STATE_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_BYTES_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_COUNT_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_HEADER_BYTES;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_HEADER_SIZE_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.SLOT_STRIDE_OFFSET;
import static io.kvcache.tiers.disk.DiskFileDescriptor.STATE_CLOSED;
import static io.kvcache.tiers.disk.DiskFileDescriptor.STATE_OPEN;
import static io.kvcache.tiers.disk.DiskFileDescriptor.VERSION_OFFSET;

import io.kvcache.core.layout.KvLayout;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * The data file's 4,096-byte header, decoded, and its codec: {@link #encode} writes one,
 * {@link #read} reads, checks and classifies the one on disk. The byte layout is
 * {@link DiskFileDescriptor}'s; this class is the only one that reads or writes a file header
 * offset.
 *
 * <p>Immutable; {@link #read} works on the caller's channel and may run on any thread (the tier
 * calls it from the opening thread only).
 *
 * @param fingerprint the KV layout's fingerprint
 * @param slotBytes   bytes of one block
 * @param slotStride  bytes between consecutive slots' data
 * @param slotCount   number of slots
 * @param dataOffset  offset of slot 0's data
 * @param modelId     the model the file's KV belongs to
 * @param openState   {@link DiskFileDescriptor#STATE_OPEN} while a process has the file open,
 *                    {@link DiskFileDescriptor#STATE_CLOSED} after a clean close
 * @param indexCrc    CRC32C of the index file at the last clean close
 * @param indexLength length of the index file at the last clean close
 */
record FileHeader(long fingerprint, long slotBytes, long slotStride, long slotCount, long dataOffset, String modelId,
        int openState, int indexCrc, long indexLength) {
    private static final System.Logger LOG = System.getLogger(MappedFileTier.class.getName());

    /** What the header found at open says. */
    enum Status {
        /** The header verifies and names this tier's format, layout, model and capacity. */
        VALID,
        /**
         * The header fails its checksum but names this tier's format, layout, model and capacity:
         * a damaged byte lies in a field that does not say whose file it is (open state, index
         * checksum or length, reserved bytes, the checksum itself). The slot headers, which
         * carry their own checksums, still prove their blocks; the header is rewritten and the
         * index, which it vouched for, rebuilt.
         */
        DAMAGED,
        /**
         * Shorter than a header, or a header never written (all zero): the file is initialized (it
         * holds no slot header).
         */
        UNUSABLE
    }

    /**
     * A header read from disk.
     *
     * @param status what it says
     * @param header its fields as found (identity fields equal the expected ones); null when {@link Status#UNUSABLE}
     */
    record Found(Status status, FileHeader header) {
        static final Found UNUSABLE = new Found(Status.UNUSABLE, null);
    }

    /** @return the header of an open file of this geometry, layout and model (no index checksum yet) */
    static FileHeader opened(KvLayout layout, String modelId, int slotCount) {
        long slotBytes = layout.blockBytes();
        return new FileHeader(layout.fingerprint(), slotBytes, DiskFileDescriptor.slotStride(slotBytes), slotCount,
                DiskFileDescriptor.dataOffset(slotCount), modelId, STATE_OPEN, 0, 0);
    }

    /** @return this header marked closed cleanly, vouching for the index file by its checksum and length */
    FileHeader closed(int indexChecksum, long indexBytes) {
        return new FileHeader(fingerprint, slotBytes, slotStride, slotCount, dataOffset, modelId, STATE_CLOSED,
                indexChecksum, indexBytes);
    }

    /** @return the {@value DiskFileDescriptor#FILE_HEADER_BYTES} bytes of this header, checksum included */
    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(FILE_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        byte[] model = modelId.getBytes(StandardCharsets.UTF_8);
        b.putLong(MAGIC_OFFSET, MAGIC)
                .putInt(VERSION_OFFSET, FORMAT_VERSION)
                .putInt(HEADER_BYTES_OFFSET, FILE_HEADER_BYTES)
                .putLong(FINGERPRINT_OFFSET, fingerprint)
                .putLong(SLOT_BYTES_OFFSET, slotBytes)
                .putLong(SLOT_STRIDE_OFFSET, slotStride)
                .putLong(SLOT_COUNT_OFFSET, slotCount)
                .putLong(DATA_OFFSET_OFFSET, dataOffset)
                .putInt(SLOT_HEADER_SIZE_OFFSET, SLOT_HEADER_BYTES)
                .putInt(OPEN_STATE_OFFSET, openState)
                .putInt(INDEX_CRC_OFFSET, indexCrc)
                .putLong(INDEX_LENGTH_OFFSET, indexLength)
                .putInt(MODEL_ID_LENGTH_OFFSET, model.length)
                .put(MODEL_ID_OFFSET, model);
        b.putInt(FILE_HEADER_CRC_OFFSET, crc(b.array()));
        return b.array();
    }

    /**
     * Reads and checks the file header. The identity fields (magic, version, layout, model,
     * capacity) decide whether the file is this tier's, whether or not the header's checksum
     * verifies: a file that is not is refused untouched.
     *
     * @param expected the header this tier writes (its identity fields are compared)
     * @param layout   this tier's layout, named when the file's differs
     * @param tier     the tier's name, for log lines
     * @param file     the data file, for messages
     * @return whether the header is valid, damaged in a field that does not identify the file
     *         (repaired at open), or too short to hold a header (reinitialized)
     * @throws DiskFormatException when the file is another format, version, layout, model or capacity
     */
    static Found read(FileChannel ch, FileHeader expected, KvLayout layout, String tier, Path file) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(FILE_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        int n = 0;
        while (n < FILE_HEADER_BYTES) {
            int r = ch.read(header, n);
            if (r < 0) {
                break;
            }
            n += r;
        }
        if (n < 8) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': {1} is shorter than its header ({2} bytes): reinitialized, "
                    + "its blocks are lost", tier, file, n);
            return Found.UNUSABLE;
        }
        if (allZero(header.array(), n)) {
            // the first open reserves the file (zeros) before it writes the header: killed in between, it
            // left a file that nothing was ever written to
            LOG.log(Level.WARNING, "disk tier ''{0}'': {1} has an all-zero header, never written (its creator was "
                    + "killed while creating it): initialized", tier, file);
            return Found.UNUSABLE;
        }
        long magic = header.getLong(MAGIC_OFFSET);
        if (magic != MAGIC) {
            throw new DiskFormatException(file + " is not a kvcache disk file (magic 0x"
                    + Long.toHexString(magic) + "); refused, nothing changed");
        }
        if (n < FILE_HEADER_BYTES) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': header of {1} is truncated: reinitialized, its blocks are lost",
                    tier, file);
            return Found.UNUSABLE;
        }
        int version = header.getInt(VERSION_OFFSET);
        if (version != FORMAT_VERSION) {
            throw new DiskFormatException(file + " has disk format version " + version + ", this build reads version "
                    + FORMAT_VERSION + "; refused, nothing changed (use another directory or delete it)");
        }
        boolean verifies = crc(header.array()) == header.getInt(FILE_HEADER_CRC_OFFSET);
        String damage = verifies ? "" : " (the header also fails its checksum, so this field may be damaged: "
                + "if the file is this tier's, delete the directory)";
        long fp = header.getLong(FINGERPRINT_OFFSET);
        long sb = header.getLong(SLOT_BYTES_OFFSET);
        if (fp != expected.fingerprint || sb != expected.slotBytes) {
            throw new DiskFormatException(file + " was made for another KV layout (fingerprint 0x" + Long.toHexString(fp)
                    + ", " + sb + "-byte blocks); this tier's layout " + layout + " has fingerprint 0x"
                    + Long.toHexString(expected.fingerprint) + " and " + expected.slotBytes
                    + "-byte blocks; refused, nothing changed (use another directory)" + damage);
        }
        int idLength = header.getInt(MODEL_ID_LENGTH_OFFSET);
        String fileModel = idLength < 0 || idLength > MAX_MODEL_ID_BYTES ? "?"
                : new String(header.array(), MODEL_ID_OFFSET, idLength, StandardCharsets.UTF_8);
        if (!fileModel.equals(expected.modelId)) {
            throw new DiskFormatException(file + " was made for model '" + fileModel + "', this tier is for model '"
                    + expected.modelId + "'; refused, nothing changed (use another directory)" + damage);
        }
        long fileSlots = header.getLong(SLOT_COUNT_OFFSET);
        if (fileSlots != expected.slotCount || header.getLong(SLOT_STRIDE_OFFSET) != expected.slotStride
                || header.getLong(DATA_OFFSET_OFFSET) != expected.dataOffset
                || header.getInt(SLOT_HEADER_SIZE_OFFSET) != SLOT_HEADER_BYTES
                || header.getInt(HEADER_BYTES_OFFSET) != FILE_HEADER_BYTES) {
            throw new DiskFormatException(file + " holds " + fileSlots + " slots, this tier is configured for "
                    + expected.slotCount + " (capacity " + expected.slotCount * expected.slotStride + " bytes); refused, "
                    + "nothing changed (open it with the same capacity, or use another directory)" + damage);
        }
        FileHeader found = new FileHeader(fp, sb, expected.slotStride, fileSlots, expected.dataOffset, fileModel,
                header.getInt(OPEN_STATE_OFFSET), header.getInt(INDEX_CRC_OFFSET), header.getLong(INDEX_LENGTH_OFFSET));
        if (!verifies) {
            LOG.log(Level.WARNING, "disk tier ''{0}'': header of {1} fails its checksum but names this tier''s format, "
                    + "layout, model and capacity: repaired; its blocks are recovered from their slot headers and the "
                    + "index is rebuilt", tier, file);
            return new Found(Status.DAMAGED, found);
        }
        return new Found(Status.VALID, found);
    }

    /** @return CRC32C of the header's bytes before its checksum field */
    private static int crc(byte[] header) {
        CRC32C c = new CRC32C();
        c.update(header, 0, FILE_HEADER_CRC_OFFSET);
        return (int) c.getValue();
    }

    private static boolean allZero(byte[] b, int n) {
        for (int i = 0; i < n; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
