package io.kvcache.core;

/** A residency handle was released twice. */
public class DoubleReleaseException extends KvCacheException {
    public DoubleReleaseException(String message) {
        super(message);
    }
}
