package io.kvcache.core;

/**
 * A block's bytes could not be served: its tier failed, a checksum did not verify, or a copy
 * failed. The bytes are never served wrong; the engine recomputes from the first lost block
 * ({@link #firstLostBlock()}), e.g. after {@code sequence.truncate(firstLostBlock * blockTokens)}.
 */
public class BlockLostException extends KvCacheException {
    private final int firstLostBlock;

    public BlockLostException(String message, int firstLostBlock, Throwable cause) {
        super(message, cause);
        this.firstLostBlock = firstLostBlock;
    }

    /** @return logical index of the first lost block of the sequence */
    public int firstLostBlock() {
        return firstLostBlock;
    }
}
