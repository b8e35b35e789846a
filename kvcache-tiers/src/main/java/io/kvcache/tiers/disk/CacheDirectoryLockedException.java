package io.kvcache.tiers.disk;

import io.kvcache.core.KvCacheException;

/** Another process (or another tier in this JVM) has the cache directory open. */
public class CacheDirectoryLockedException extends KvCacheException {
    public CacheDirectoryLockedException(String message) {
        super(message);
    }
}
