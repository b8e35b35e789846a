package io.kvcache.core;

/** Base of the cache's own exceptions. */
public class KvCacheException extends RuntimeException {
    public KvCacheException(String message) {
        super(message);
    }

    public KvCacheException(String message, Throwable cause) {
        super(message, cause);
    }
}
