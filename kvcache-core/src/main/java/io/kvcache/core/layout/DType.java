package io.kvcache.core.layout;

/** Element type of the K and V tensors held in a block. */
public enum DType {
    /** IEEE 754 binary32. */
    FP32(4),
    /** IEEE 754 binary16. */
    FP16(2),
    /** bfloat16. */
    BF16(2),
    /** 8-bit float (e4m3 or e5m2; the cache does not interpret the bits). */
    FP8(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** @return size of one element in bytes */
    public int bytes() {
        return bytes;
    }
}
