package io.kvcache.core;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The layer-slice copies one request plans for one block (one {@link PlannedCopy} per group of
 * layers, all reading the same source slot into the same partial slot), sharing what would
 * otherwise be done once per copy: the slot fences wait on {@link #settled} once rather than on
 * every copy, and a persistent source's checksum is verified once for all of them.
 *
 * <p>Thread safety: {@link #copySettled} may be called from any thread; {@link #sourceTrusted}
 * is read and written only on the dispatcher's thread, which starts every batch.
 */
final class LayerRun {
    /** Completes (normally) once every copy of the run has settled, successfully or not. */
    final CompletableFuture<Void> settled = new CompletableFuture<>();
    private final AtomicInteger unsettled;
    /** Whether the source passed its checksum, checked by the run's first copy to start; null until then. */
    Boolean sourceTrusted;

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
}
