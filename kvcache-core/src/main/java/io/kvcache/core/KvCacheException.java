package io.kvcache.core;

/** Base of the cache's own exceptions. */
public class KvCacheException extends RuntimeException {
    public KvCacheException(String message) {
        super(message);
    }

    public KvCacheException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Without a stack trace: for a refusal the cache answers itself and never lets escape. */
    KvCacheException(String message, boolean stackTrace) {
        super(message, null, false, stackTrace);
    }
}
