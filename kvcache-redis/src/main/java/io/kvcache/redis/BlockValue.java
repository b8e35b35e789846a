package io.kvcache.redis;

import io.kvcache.core.block.BlockKey;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * The value stored under a block's key: a header, then the block's bytes. Big-endian:
 *
 * <pre>
 *  0  int    magic "KVCR"
 *  4  short  format version (1)
 *  6  short  model id length m (UTF-8 bytes)
 *  8  long   layout fingerprint
 * 16  byte[32] the block's content address (its key)
 * 48  long   payload length
 * 56  int    CRC32C of the payload
 * 60  int    CRC32C of bytes 0..59
 * 64  byte[m] model id
 * 64+m       payload
 * </pre>
 *
 * A value that fails any check is {@link Check#ok() not ok} and is never served.
 */
final class BlockValue {
    static final int MAGIC = 0x4B564352; // "KVCR"
    static final short VERSION = 1;
    static final int HEADER_BYTES = 64;

    /** What {@link #check} found. */
    enum Check {
        OK, TOO_SHORT, BAD_MAGIC, BAD_VERSION, BAD_HEADER_CHECKSUM, FOREIGN_LAYOUT, FOREIGN_MODEL, WRONG_KEY,
        WRONG_LENGTH, BAD_CHECKSUM;

        boolean ok() {
            return this == OK;
        }
    }

    private final long layoutFingerprint;
    private final byte[] model;
    private final long payloadBytes;

    BlockValue(long layoutFingerprint, String modelId, long payloadBytes) {
        this.layoutFingerprint = layoutFingerprint;
        this.model = modelId == null ? new byte[0] : modelId.getBytes(StandardCharsets.UTF_8);
        if (model.length > Short.MAX_VALUE) {
            throw new IllegalArgumentException("model id of " + model.length + " bytes is too long");
        }
        this.payloadBytes = payloadBytes;
    }

    /** @return bytes of a whole value */
    int valueBytes() {
        return Math.toIntExact(HEADER_BYTES + model.length + payloadBytes);
    }

    /** @return the offset of the payload in a value */
    int payloadOffset() {
        return HEADER_BYTES + model.length;
    }

    static int crc(MemorySegment bytes) {
        CRC32C c = new CRC32C();
        c.update(bytes.asByteBuffer());
        return (int) c.getValue();
    }

    /** @return the CRC32C of a value's payload, {@code length} bytes from {@code offset} within it */
    int crcOfPayload(byte[] v, long offset, long length) {
        CRC32C c = new CRC32C();
        c.update(v, payloadOffset() + (int) offset, (int) length);
        return (int) c.getValue();
    }

    /** @return a zeroed value: header room, then the payload */
    byte[] newValue() {
        return new byte[valueBytes()];
    }

    /** Writes the header of a value whose payload is in place and whose CRC32C is {@code crc}. */
    void writeHeader(BlockKey key, byte[] v, int crc) {
        ByteBuffer h = ByteBuffer.wrap(v);
        h.putInt(MAGIC).putShort(VERSION).putShort((short) model.length).putLong(layoutFingerprint);
        key.copyTo(v, 16);
        h.position(48);
        h.putLong(payloadBytes).putInt(crc);
        CRC32C hc = new CRC32C();
        hc.update(v, 0, 60);
        h.putInt((int) hc.getValue());
        System.arraycopy(model, 0, v, HEADER_BYTES, model.length);
    }

    /**
     * Checks a value read under {@code key}: every header field and the length. The payload's
     * CRC32C, recorded in the header, is checked when the bytes are verified or read.
     */
    Check checkHeader(BlockKey key, byte[] v) {
        if (v.length < HEADER_BYTES) {
            return Check.TOO_SHORT;
        }
        ByteBuffer h = ByteBuffer.wrap(v);
        if (h.getInt(0) != MAGIC) {
            return Check.BAD_MAGIC;
        }
        if (h.getShort(4) != VERSION) {
            return Check.BAD_VERSION;
        }
        CRC32C hc = new CRC32C();
        hc.update(v, 0, 60);
        if (h.getInt(60) != (int) hc.getValue()) {
            return Check.BAD_HEADER_CHECKSUM;
        }
        if (h.getLong(8) != layoutFingerprint) {
            return Check.FOREIGN_LAYOUT;
        }
        int m = h.getShort(6);
        if (m != model.length || v.length < HEADER_BYTES + m
                || !java.util.Arrays.equals(v, HEADER_BYTES, HEADER_BYTES + m, model, 0, m)) {
            return Check.FOREIGN_MODEL;
        }
        byte[] k = key.toBytes();
        if (!java.util.Arrays.equals(v, 16, 16 + BlockKey.BYTES, k, 0, BlockKey.BYTES)) {
            return Check.WRONG_KEY;
        }
        if (h.getLong(48) != payloadBytes || v.length != valueBytes()) {
            return Check.WRONG_LENGTH;
        }
        return Check.OK;
    }

    /** Checks a value whole: {@link #checkHeader}, then the payload's CRC32C. */
    Check check(BlockKey key, byte[] v) {
        Check c = checkHeader(key, v);
        if (!c.ok()) {
            return c;
        }
        return crcOf(v) == crcOfPayload(v, 0, payloadBytes) ? Check.OK : Check.BAD_CHECKSUM;
    }

    /** @return the payload CRC32C recorded in a value that passed {@link #check} */
    static int crcOf(byte[] v) {
        return ByteBuffer.wrap(v).getInt(56);
    }
}
