package io.kvcache.tiers.host;

import io.kvcache.core.KvCacheException;

/** No source could provide the page-locked host memory a tier asked for; the message lists each attempt. */
public final class PinnedMemoryUnavailableException extends KvCacheException {
    public PinnedMemoryUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
