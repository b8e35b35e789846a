package io.kvcache.core;

/**
 * Tokens were declared written ({@link Sequence#markWritten}) whose block never had a slot, so
 * no K/V of them can have been written. Nothing is marked or sealed; the cache is unchanged.
 */
public class UnwrittenKvException extends KvCacheException {
    public UnwrittenKvException(String message) {
        super(message);
    }
}
