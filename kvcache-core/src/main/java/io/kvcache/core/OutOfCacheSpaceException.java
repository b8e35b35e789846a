package io.kvcache.core;

/** Every tier is full of blocks that cannot move (pinned, or referenced with no lower tier to take them). Nothing stored was lost; the engine may preempt a sequence or recompute. */
public class OutOfCacheSpaceException extends KvCacheException {
    public OutOfCacheSpaceException(String message) {
        super(message);
    }

    private OutOfCacheSpaceException(String message, boolean stackTrace) {
        super(message, stackTrace);
    }

    /**
     * The refusal of a request that may take only free and partial slots when there are none: the
     * manager answers it (the request is not made) and never throws it to a caller, so it is made
     * without a message worth building or a stack trace (layer windows ask ahead thousands of
     * times a step).
     */
    static OutOfCacheSpaceException noFreeOrPartialSlot() {
        return new OutOfCacheSpaceException("no free or partial slot in the top tier", false);
    }
}
