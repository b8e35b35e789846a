package io.kvcache.core;

/**
 * An access through a residency handle touches a layer the handle does not make resident: the
 * bytes of that layer need not be in the top tier's slot. Ask for a handle whose layer range
 * covers it.
 */
public class LayerNotResidentException extends KvCacheException {
    public LayerNotResidentException(String message) {
        super(message);
    }
}
