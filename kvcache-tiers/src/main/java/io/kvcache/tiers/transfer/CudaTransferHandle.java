package io.kvcache.tiers.transfer;

import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferHandle;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import java.util.concurrent.CompletableFuture;

/**
 * Completion of one batch submitted to {@link CudaTransferEngine}. Besides the future, it carries
 * the CUDA event recorded after the batch's copies, so an inference engine can make its compute
 * stream wait for the blocks on the device ({@link #streamWait}) without a host synchronisation.
 *
 * <p>Thread safety: any thread may call every method. The future completes on the engine's
 * completion thread ({@link BatchCompletion}): dependent actions attached to it should be short.
 */
public final class CudaTransferHandle implements TransferHandle {
    final CompletableFuture<Void> completion = new CompletableFuture<>();
    final TransferBatch batch;
    final CudaRoute route;
    final CudaLane lane;
    final StagingBuffers staging;
    final CopyMethod method;
    final long event;
    private boolean finished;

    CudaTransferHandle(TransferBatch batch, CudaRoute route, CudaLane lane, StagingBuffers staging, CopyMethod method,
                       long event) {
        this.batch = batch;
        this.route = route;
        this.lane = lane;
        this.staging = staging;
        this.method = method;
        this.event = event;
    }

    @Override
    public CompletableFuture<Void> completion() {
        return completion;
    }

    @Override
    public long bytes() {
        return batch == null ? 0 : batch.bytes();
    }

    /** @return how the batch was copied (null for an empty batch) */
    public CopyMethod method() {
        return method;
    }

    /** @return which way the batch went */
    public Direction direction() {
        return route.direction();
    }

    /**
     * Makes {@code stream} (a {@code CUstream} of the engine's context, e.g. the inference
     * engine's compute stream) wait on the device until this batch's bytes are in place. Returns
     * at once; the host does not wait.
     *
     * @return false if the batch had already completed (nothing to wait for), true if the wait was
     *         enqueued
     */
    public boolean streamWait(long stream) {
        synchronized (this) {
            // the event is recycled only after finished is set under this lock, so the wait
            // below always refers to this batch's copies
            if (finished || event == 0) {
                return false;
            }
            CudaContext ctx = lane.context();
            ctx.makeCurrent();
            ctx.check(Cuda.driver().cuStreamWaitEvent(stream, event, 0), "cuStreamWaitEvent");
            return true;
        }
    }

    /**
     * @return the {@code CUevent} recorded after the batch; valid only until the handle is done
     *         (the engine reuses it afterwards), 0 for an empty batch
     */
    public long event() {
        return event;
    }

    synchronized void markFinished() {
        finished = true;
    }
}
