package io.kvcache.tiers.transfer;

import io.kvcache.core.transfer.BlockMove;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One direction's stream (and any further streams its batched copies are spread over), the
 * thread that completes its batches in submission order, and the staging memory and events its
 * batches reuse. Every batch's event is recorded on the lane's stream, after the batch's copies
 * on the other streams (see {@link ChunkEnqueuer#join}), so batches complete in the order they
 * were submitted and each one's event covers all of its bytes.
 *
 * <p>Thread safety: {@link #lock} serialises submissions; {@link #enqueuer}, {@link #staging},
 * {@link #event}, {@link #drain} and {@link #sortByHostSlot} are called with it held. {@link #run} runs on the
 * lane's completion thread only; {@link #recycle} is called from there or, for a batch that
 * failed to enqueue, under the lock. {@link #shutdown} is called once, by the engine's close.
 */
final class CudaLane implements Runnable {
    final long stream;
    private final long[] streams;
    final ReentrantLock lock = new ReentrantLock();
    private final CudaContext context;
    private final ChunkEnqueuer enqueuer;
    private final BatchCompletion completion;
    private final LinkedBlockingQueue<CudaTransferHandle> pending = new LinkedBlockingQueue<>();
    private final ConcurrentLinkedQueue<StagingBuffers> staging = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Long> events = new ConcurrentLinkedQueue<>();
    private final CudaTransferHandle stop = new CudaTransferHandle(null, null, this, null, null, 0);
    private final HostSlotOrder order = new HostSlotOrder();
    private final Thread completer;

    /**
     * Creates the stream and starts the completion thread.
     *
     * @param label               names the thread ("h2d", "d2h")
     * @param copyStreams         streams batched copies are spread over (the lane's own first)
     * @param maxCtas             upper bound on a copy kernel's grid
     * @param batchSourceAnyOrder whether batched copies may read sources in any order
     * @param callCopies          copies per {@code cuMemcpyBatchAsync} call
     * @param completion          what ends each batch, on the completion thread
     */
    CudaLane(CudaContext context, String label, int copyStreams, int maxCtas, boolean batchSourceAnyOrder,
             int callCopies, BatchCompletion completion) {
        this.context = context;
        this.completion = completion;
        this.streams = new long[copyStreams];
        for (int i = 0; i < copyStreams; i++) {
            streams[i] = context.createStream();
        }
        this.stream = streams[0];
        this.enqueuer = new ChunkEnqueuer(context, streams, maxCtas, batchSourceAnyOrder, callCopies);
        this.completer = Thread.ofPlatform().daemon().name("kvcache-cuda" + context.ordinal() + "-" + label
                + "-completion").start(this);
    }

    CudaContext context() {
        return context;
    }

    ChunkEnqueuer enqueuer() {
        return enqueuer;
    }

    /** Waits on the host until every copy queued on the lane's streams has run (a failed batch's cleanup). */
    void drain() {
        enqueuer.synchronize();
    }

    long[] sortByHostSlot(List<BlockMove> moves, boolean hostIsSource, int hostSlots) {
        return order.sort(moves, hostIsSource, hostSlots);
    }

    /** @return staging of {@code chunkBlocks}-block chunks with room for {@code chunks}, reused when one is free */
    StagingBuffers staging(int chunkBlocks, int chunks) {
        for (int tries = staging.size(); tries > 0; tries--) {
            StagingBuffers s = staging.poll();
            if (s == null) {
                break;
            }
            if (s.chunkBlocks == chunkBlocks && s.chunks >= chunks) {
                return s;
            }
            staging.add(s);
        }
        int cap = 1;
        while (cap < chunks) {
            cap <<= 1;
        }
        return new StagingBuffers(context, chunkBlocks, cap);
    }

    /** @return an event to record after a batch, reused when one is free */
    long event() {
        Long e = events.poll();
        return e != null ? e : context.createEvent(false);
    }

    /** Returns a batch's staging and event for reuse, unless the context failed ({@code reusable} false). */
    void recycle(StagingBuffers st, long event, boolean reusable) {
        if (!reusable) {
            return;
        }
        if (st != null) {
            staging.add(st);
        }
        if (event != 0) {
            events.add(event);
        }
    }

    /** Hands a batch whose event is recorded to the completion thread. Caller holds {@link #lock}. */
    void pending(CudaTransferHandle h) {
        pending.add(h);
    }

    @Override
    public void run() {
        boolean current = false;
        while (true) {
            CudaTransferHandle h;
            try {
                h = pending.take();
            } catch (InterruptedException e) {
                continue;
            }
            if (h == stop) {
                return;
            }
            if (!current) {
                Cuda.driver().cuCtxSetCurrent(context.handle());
                current = true;
            }
            int rc = Cuda.driver().cuEventSynchronize(h.event);
            try {
                completion.finish(h, rc);
            } catch (RuntimeException e) {
                h.completion.completeExceptionally(e);
            }
        }
    }

    /** Completes every batch handed over, then releases the stream, events and staging memory. */
    void shutdown() {
        lock.lock();
        try {
            pending.add(stop);
        } finally {
            lock.unlock();
        }
        try {
            completer.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (context.failed()) {
            return;
        }
        context.makeCurrent();
        CuLib cu = Cuda.driver();
        enqueuer.synchronize();
        for (StagingBuffers s; (s = staging.poll()) != null; ) {
            s.free(context);
        }
        for (Long e; (e = events.poll()) != null; ) {
            cu.cuEventDestroy_v2(e);
        }
        enqueuer.free();
        for (long s : streams) {
            cu.cuStreamDestroy_v2(s);
        }
    }
}
