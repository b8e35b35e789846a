package io.kvcache.tiers.disk;

import io.kvcache.core.KvCacheException;

/**
 * A cache directory holds a file this tier must not use as it is: another format version, a
 * different layout, model or capacity, a bad magic number or header checksum, or unsafe
 * ownership or permissions. The file is left untouched.
 */
public class DiskFormatException extends KvCacheException {
    public DiskFormatException(String message) {
        super(message);
    }
}
