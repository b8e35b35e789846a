package io.kvcache.tiers.transfer;

import io.kvcache.core.tier.TierFailedException;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaException;

/**
 * Ends a batch once its event has been waited for: releases the slot guards, lets the handle's
 * event go, returns the staging memory and event to the lane, and completes the future, or
 * fails it with the CUDA error ({@link TierFailedException} for a sticky one).
 *
 * <p>Thread safety: called only on the batch's lane's completion thread.
 */
final class BatchCompletion {
    private final CudaContext context;

    BatchCompletion(CudaContext context) {
        this.context = context;
    }

    /**
     * @param h  the batch
     * @param rc what {@code cuEventSynchronize} returned for the batch's event
     */
    void finish(CudaTransferHandle h, int rc) {
        RuntimeException failure = null;
        if (rc != 0) {
            try {
                context.check(rc, "cuEventSynchronize");
            } catch (CudaException e) {
                failure = translate(e, h.route);
            }
        }
        h.route.endCopies(h.batch);
        h.markFinished();
        h.lane.recycle(h.staging, h.event, !context.failed());
        if (failure == null) {
            h.completion.complete(null);
        } else {
            h.completion.completeExceptionally(failure);
        }
    }

    /** @return a sticky error as the failure of the route's device tier, any other error as it is */
    static RuntimeException translate(CudaException e, CudaRoute route) {
        if (e.sticky()) {
            return new TierFailedException("device tier '" + route.deviceTier().name() + "' failed: " + e.getMessage(),
                    e);
        }
        return e;
    }
}
