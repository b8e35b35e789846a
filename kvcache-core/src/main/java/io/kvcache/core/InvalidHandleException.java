package io.kvcache.core;

/** A sequence or residency handle that is closed, or that belongs to another manager, was used. */
public class InvalidHandleException extends KvCacheException {
    public InvalidHandleException(String message) {
        super(message);
    }
}
