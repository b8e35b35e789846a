package io.kvcache.core;

import java.util.concurrent.CompletableFuture;
import org.agrona.collections.Long2ObjectHashMap;

/**
 * Blocks promoted by prefetch and not yet asked for, with the copy that promotes them; counts
 * how many arrived before a step asked for them.
 */
@GuardedBy("manager lock")
final class PrefetchTracker {
    private final Long2ObjectHashMap<CompletableFuture<Void>> inFlight = new Long2ObjectHashMap<>();
    long issued;
    long inTime;
    long late;

    boolean tracks(long blockId) {
        return inFlight.containsKey(blockId);
    }

    void issued(long blockId, CompletableFuture<Void> copy) {
        inFlight.put(blockId, copy);
    }

    /** A step asked for the block: counts whether its prefetch had landed. */
    void used(long blockId) {
        if (inFlight.isEmpty()) {
            return;
        }
        CompletableFuture<Void> pf = inFlight.remove(blockId);
        if (pf != null) {
            if (pf.isDone()) {
                inTime++;
            } else {
                late++;
            }
        }
    }

    void forget(long blockId) {
        inFlight.remove(blockId);
    }
}
