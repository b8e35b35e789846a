package io.kvcache.core;

/** Every tier is full of blocks that cannot move (pinned, or referenced with no lower tier to take them). Nothing stored was lost; the engine may preempt a sequence or recompute. */
public class OutOfCacheSpaceException extends KvCacheException {
    public OutOfCacheSpaceException(String message) {
        super(message);
    }
}
