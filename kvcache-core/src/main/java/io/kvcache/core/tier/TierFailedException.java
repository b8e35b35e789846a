package io.kvcache.core.tier;

import io.kvcache.core.KvCacheException;

/** A tier has failed (a sticky device error, an I/O error); its content is not served. */
public class TierFailedException extends KvCacheException {
    public TierFailedException(String message) {
        super(message);
    }

    public TierFailedException(String message, Throwable cause) {
        super(message, cause);
    }
}
