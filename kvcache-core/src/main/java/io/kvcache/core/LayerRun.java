package io.kvcache.core;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The layer-slice copies one request plans for one block (one {@link PlannedCopy} per layer,
 * all reading the same source slot into the same partial slot), sharing what would otherwise be
 * done once per layer: the slot fences wait on {@link #settled} once rather than on every
 * layer's copy, and a persistent source's checksum is verified once for all of them.
 *
 * <p>Thread safety: {@link #copySettled} and {@link #sourceTrusted} may be called from any
 * thread.
 */
final class LayerRun {
    /** Completes (normally) once every copy of the run has settled, successfully or not. */
    final CompletableFuture<Void> settled = new CompletableFuture<>();
    private final AtomicInteger unsettled;
    /** 0 while the source has not been checked, 1 once it passed, 2 once it failed. */
    private volatile int sourceVerdict;

    /** @param copies copies in the run */
    LayerRun(int copies) {
        this.unsettled = new AtomicInteger(copies);
    }

    /** Called exactly once per copy of the run, when it settles. */
    void copySettled() {
        if (unsettled.decrementAndGet() == 0) {
            settled.complete(null);
        }
    }

    /**
     * @param verify checks the source's bytes (a checksum of the whole slot)
     * @return whether the source may be read: checked by the first copy of the run that asks,
     *     that answer given to the rest
     */
    boolean sourceTrusted(java.util.function.BooleanSupplier verify) {
        int v = sourceVerdict;
        if (v == 0) {
            v = verify.getAsBoolean() ? 1 : 2;
            sourceVerdict = v;
        }
        return v == 1;
    }
}
