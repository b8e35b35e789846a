package io.kvcache.tiers.disk;

import java.util.concurrent.atomic.LongAdder;

/**
 * The disk tier's counters and their {@link DiskTierStats} snapshot.
 *
 * <p>Thread-safe: the running counters are {@link LongAdder}s that any thread may bump. The
 * open-time values are written once, by the opening thread through {@link #opened}, before the
 * tier is published through a final field.
 */
final class DiskCounters {
    private final LongAdder lookups = new LongAdder();
    private final LongAdder hits = new LongAdder();
    private final LongAdder publishes = new LongAdder();
    private final LongAdder evictions = new LongAdder();
    private final LongAdder admissionRejections = new LongAdder();
    private final LongAdder checksumFailures = new LongAdder();
    private final LongAdder wholeBlockChecks = new LongAdder();
    private final LongAdder ioErrors = new LongAdder();
    private final LongAdder retiredSlots = new LongAdder();

    private long recoveredBlocks;
    private long droppedAtOpen;
    private boolean uncleanOpen;
    private boolean indexRebuilt;
    private boolean headerRepaired;

    void lookup() {
        lookups.increment();
    }

    void hit() {
        hits.increment();
    }

    void publish() {
        publishes.increment();
    }

    void eviction() {
        evictions.increment();
    }

    void admissionRejection() {
        admissionRejections.increment();
    }

    void checksumFailure() {
        checksumFailures.increment();
    }

    void wholeBlockCheck() {
        wholeBlockChecks.increment();
    }

    void ioError() {
        ioErrors.increment();
    }

    void retiredSlot() {
        retiredSlots.increment();
    }

    /** Records what the open found; called once by the opening thread. */
    void opened(long recovered, long dropped, boolean unclean, boolean rebuilt, boolean repaired) {
        this.recoveredBlocks = recovered;
        this.droppedAtOpen = dropped;
        this.uncleanOpen = unclean;
        this.indexRebuilt = rebuilt;
        this.headerRepaired = repaired;
    }

    /** @param fileLost whether the data file was deleted or replaced underneath */
    DiskTierStats snapshot(boolean fileLost) {
        return new DiskTierStats(recoveredBlocks, droppedAtOpen, uncleanOpen, indexRebuilt, lookups.sum(), hits.sum(),
                publishes.sum(), evictions.sum(), admissionRejections.sum(), checksumFailures.sum(), wholeBlockChecks.sum(), ioErrors.sum(),
                retiredSlots.sum(), fileLost, headerRepaired);
    }
}
