package io.kvcache.tiers.manager;

import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferHandle;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A deliberately slow {@link TransferEngine} for tests, written against the public SPI only:
 * each batch waits a random delay on one of the engine's own threads, then its blocks are copied
 * through {@link Tier#view} where both sides are host accessible and {@link Tier#read}/{@link
 * Tier#write} otherwise (as {@code CpuTransferEngine} does). With more than one thread, batches
 * complete out of submission order, which the SPI allows.
 *
 * <p>{@link #hold()} stops batches from starting until {@link #release()}, so that a test can
 * act while a copy is known to be queued.
 */
final class SlowTransferEngine implements TransferEngine {
    private record Job(TransferBatch batch, CompletableFuture<Void> done) {
    }

    private static final Job POISON = new Job(null, null);

    private final long minDelayNanos;
    private final long maxDelayNanos;
    private final LinkedBlockingQueue<Job> queue = new LinkedBlockingQueue<>();
    private final Thread[] workers;
    private final ReentrantLock gate = new ReentrantLock();
    private final Condition opened = gate.newCondition();
    private boolean held;
    private volatile boolean closed;
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong blocks = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicLong queued = new AtomicLong();
    private final ConcurrentLinkedQueue<String> failureSamples =
            new ConcurrentLinkedQueue<>();

    /**
     * @param threads        copy threads, at least 1
     * @param minDelayMicros shortest delay before a batch is copied
     * @param maxDelayMicros longest delay, at least minDelayMicros
     */
    SlowTransferEngine(int threads, long minDelayMicros, long maxDelayMicros) {
        if (threads < 1 || minDelayMicros < 0 || maxDelayMicros < minDelayMicros) {
            throw new IllegalArgumentException("threads " + threads + ", delay [" + minDelayMicros + ", "
                    + maxDelayMicros + "] us");
        }
        this.minDelayNanos = TimeUnit.MICROSECONDS.toNanos(minDelayMicros);
        this.maxDelayNanos = TimeUnit.MICROSECONDS.toNanos(maxDelayMicros);
        this.workers = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            workers[i] = Thread.ofPlatform().daemon().name("slow-copy-" + i).start(this::work);
        }
    }

    /** @return two threads delaying each batch by 100-600 microseconds */
    static SlowTransferEngine withDefaults() {
        return new SlowTransferEngine(2, 100, 600);
    }

    @Override
    public boolean supports(Tier source, Tier destination) {
        return true;
    }

    @Override
    public TransferHandle submit(TransferBatch batch) {
        if (closed) {
            throw new IllegalStateException("slow transfer engine is closed");
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        queued.incrementAndGet();
        queue.add(new Job(batch, done));
        long bytes = batch.bytes();
        return TransferHandle.of(done, bytes);
    }

    /** Batches submitted from now on (and those queued) wait until {@link #release()}. */
    void hold() {
        gate.lock();
        try {
            held = true;
        } finally {
            gate.unlock();
        }
    }

    /** Lets held batches run. */
    void release() {
        gate.lock();
        try {
            held = false;
            opened.signalAll();
        } finally {
            gate.unlock();
        }
    }

    /** @return batches submitted and not yet finished (queued, held or copying) */
    long pending() {
        return queued.get();
    }

    /** @return batches finished, normally or not */
    long batches() {
        return batches.get();
    }

    /** @return blocks copied */
    long blocks() {
        return blocks.get();
    }

    /** @return batches that failed */
    long failures() {
        return failures.get();
    }

    /** @return the first few failures, as "source -> destination: exception" */
    List<String> failureSamples() {
        return List.copyOf(failureSamples);
    }

    private void awaitGate() throws InterruptedException {
        gate.lock();
        try {
            while (held && !closed) {
                opened.await(50, TimeUnit.MILLISECONDS);
            }
        } finally {
            gate.unlock();
        }
    }

    private void work() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = null;
            while (true) {
                Job job;
                try {
                    job = queue.take();
                    if (job == POISON) {
                        return;
                    }
                    awaitGate();
                } catch (InterruptedException e) {
                    return;
                }
                long delay = minDelayNanos + (maxDelayNanos > minDelayNanos
                        ? ThreadLocalRandom.current().nextLong(maxDelayNanos - minDelayNanos) : 0);
                if (delay > 0) {
                    LockSupport.parkNanos(delay);
                }
                try {
                    Tier src = job.batch.source();
                    Tier dst = job.batch.destination();
                    if (bounce == null || bounce.byteSize() < src.slotBytes()) {
                        bounce = arena.allocate(src.slotBytes(), 4096);
                    }
                    for (BlockMove m : job.batch.moves()) {
                        CpuTransferEngine.copyRange(src, m.srcSlot(), dst, m.dstSlot(), job.batch.offset(),
                                job.batch.length(), bounce.asSlice(0, job.batch.length()));
                        blocks.incrementAndGet();
                    }
                    batches.incrementAndGet();
                    queued.decrementAndGet();
                    job.done.complete(null);
                } catch (Throwable t) {
                    if (failures.incrementAndGet() <= 10) {
                        failureSamples.add(job.batch.source().name() + " -> " + job.batch.destination().name() + " "
                                + job.batch.moves() + ": " + t);
                    }
                    batches.incrementAndGet();
                    queued.decrementAndGet();
                    job.done.completeExceptionally(t);
                }
            }
        }
    }

    /** Lets queued batches finish (within a bound) and stops the threads. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        release();
        for (int i = 0; i < workers.length; i++) {
            queue.add(POISON);
        }
        for (Thread w : workers) {
            try {
                w.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
