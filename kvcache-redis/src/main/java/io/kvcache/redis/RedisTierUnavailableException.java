package io.kvcache.redis;

import io.kvcache.core.KvCacheException;

/** The Redis tier could not reach its server when it was opened. The message names where, never a password. */
public class RedisTierUnavailableException extends KvCacheException {
    public RedisTierUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
