package io.kvcache.core;

/** A tier's slot size does not match the cache layout's block size. */
public class LayoutMismatchException extends KvCacheException {
    public LayoutMismatchException(String message) {
        super(message);
    }
}
