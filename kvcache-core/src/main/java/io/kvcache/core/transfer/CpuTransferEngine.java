package io.kvcache.core.transfer;

import io.kvcache.core.tier.Tier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Copies blocks with worker threads fed from one bounded queue (not a thread per copy). A batch
 * is split into at most one chunk per worker. Works between any two tiers: host-accessible
 * tiers are copied directly, others through their {@link Tier#read}/{@link Tier#write}. A move
 * that fails fails alone: the batch then completes with a {@link TransferFailedException} naming
 * the failed moves.
 *
 * <p>Thread safety: {@link #submit} may be called from any thread other than this engine's
 * workers; it blocks while the queue is full.
 */
public final class CpuTransferEngine implements TransferEngine {
    /** Moves {@code [from, to)} of a batch; failures are recorded per move in {@link Outcome}. */
    private record Chunk(TransferBatch batch, int from, int to, Outcome outcome) {
    }

    /** Shared by the chunks of one batch: completes the batch when the last chunk ends. */
    private static final class Outcome {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final AtomicInteger remaining;
        final BitSet failed = new BitSet();
        Throwable first;

        Outcome(int chunks) {
            this.remaining = new AtomicInteger(chunks);
        }

        synchronized void fail(int move, Throwable t) {
            failed.set(move);
            if (first == null) {
                first = t;
            }
        }

        void chunkDone(int moves) {
            if (remaining.decrementAndGet() == 0) {
                synchronized (this) {
                    if (first == null) {
                        done.complete(null);
                    } else {
                        done.completeExceptionally(new TransferFailedException(failed, moves, first));
                    }
                }
            }
        }
    }

    private static final Chunk POISON = new Chunk(null, 0, 0, null);

    private final BlockingQueue<Chunk> queue;
    private final Thread[] workers;
    private volatile boolean closed;

    /**
     * @param threads       worker threads, at least 1
     * @param queueCapacity chunks that may wait, at least 1
     */
    public CpuTransferEngine(int threads, int queueCapacity) {
        if (threads <= 0) {
            throw new IllegalArgumentException("threads must be positive, was " + threads);
        }
        if (queueCapacity <= 0) {
            throw new IllegalArgumentException("queueCapacity must be positive, was " + queueCapacity);
        }
        this.queue = new ArrayBlockingQueue<>(queueCapacity);
        this.workers = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            workers[i] = Thread.ofPlatform().daemon().name("kvcache-cpu-copy-" + i).start(this::work);
        }
    }

    /** @return an engine with two workers and room for 256 waiting chunks */
    public static CpuTransferEngine withDefaults() {
        return new CpuTransferEngine(2, 256);
    }

    @Override
    public boolean supports(Tier source, Tier destination) {
        return true;
    }

    @Override
    public TransferHandle submit(TransferBatch batch) {
        if (closed) {
            throw new IllegalStateException("transfer engine is closed");
        }
        List<BlockMove> moves = batch.moves();
        int chunks = Math.max(1, Math.min(workers.length, moves.size()));
        Outcome outcome = new Outcome(chunks);
        CompletableFuture<Void> done = outcome.done;
        int per = (moves.size() + chunks - 1) / Math.max(1, chunks);
        try {
            for (int c = 0; c < chunks; c++) {
                int from = Math.min(moves.size(), c * per);
                int to = Math.min(moves.size(), from + per);
                queue.put(new Chunk(batch, from, to, outcome));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            done.completeExceptionally(e);
        }
        long bytes = batch.bytes();
        return TransferHandle.of(done, bytes);
    }

    private void work() {
        MemorySegment bounce = null;
        try (Arena arena = Arena.ofConfined()) {
            while (true) {
                Chunk chunk;
                try {
                    chunk = queue.take();
                } catch (InterruptedException e) {
                    return;
                }
                if (chunk == POISON) {
                    return;
                }
                Tier src = chunk.batch.source();
                Tier dst = chunk.batch.destination();
                List<BlockMove> moves = chunk.batch.moves();
                for (int i = chunk.from; i < chunk.to; i++) {
                    // a failed move fails only itself: the others of the batch still copy
                    try {
                        if (!src.hostAccessible() && !dst.hostAccessible() && bounce == null) {
                            bounce = arena.allocate(src.slotBytes(), 4096);
                        }
                        BlockMove m = moves.get(i);
                        copyRange(src, m.srcSlot(), dst, m.dstSlot(), chunk.batch.offset(),
                                chunk.batch.length(), bounce);
                    } catch (Throwable t) {
                        chunk.outcome.fail(i, t);
                    }
                }
                chunk.outcome.chunkDone(moves.size());
            }
        }
    }

    /**
     * Copies one block between any two tiers: directly between host-accessible tiers, else
     * through {@link Tier#read}/{@link Tier#write}, staging through {@code bounce} (a block's
     * worth of host memory) when neither side is host accessible.
     */
    public static void copyBlock(Tier src, int srcSlot, Tier dst, int dstSlot, MemorySegment bounce) {
        copyRange(src, srcSlot, dst, dstSlot, 0, src.slotBytes(), bounce);
    }

    /**
     * Copies bytes {@code [offset, offset + length)} of one slot to the same range of another,
     * as {@link #copyBlock} does for whole slots; {@code bounce} holds at least {@code length}
     * bytes when neither side is host accessible.
     */
    public static void copyRange(Tier src, int srcSlot, Tier dst, int dstSlot, long offset, long length,
                                 MemorySegment bounce) {
        if (src.hostAccessible() && dst.hostAccessible()) {
            MemorySegment.copy(src.view(srcSlot), offset, dst.view(dstSlot), offset, length);
        } else if (src.hostAccessible()) {
            dst.write(dstSlot, offset, src.view(srcSlot).asSlice(offset, length));
        } else if (dst.hostAccessible()) {
            src.read(srcSlot, offset, dst.view(dstSlot).asSlice(offset, length));
        } else {
            MemorySegment b = bounce.asSlice(0, length);
            src.read(srcSlot, offset, b);
            dst.write(dstSlot, offset, b);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (int i = 0; i < workers.length; i++) {
            try {
                queue.put(POISON);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
