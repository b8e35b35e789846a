package io.kvcache.core;

/** A write was aimed at a block that is shared (sealed under its content key, or referenced by another sequence). */
public class SharedBlockWriteException extends KvCacheException {
    public SharedBlockWriteException(String message) {
        super(message);
    }
}
