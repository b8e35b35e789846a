package io.kvcache.core;

/** A token position or block index lies outside a sequence. */
public class PositionOutOfRangeException extends KvCacheException {
    public PositionOutOfRangeException(String message) {
        super(message);
    }
}
