package io.kvcache.core.stats;

/**
 * Counters of writing sealed blocks down to the first persistent tier (write-through,
 * {@code checkpoint()} and close), since the cache was built.
 *
 * @param policy          the write policy in force ({@code WRITE_THROUGH}, ...), or "none" without a persistent tier
 * @param queued          blocks queued for writing
 * @param written         blocks written and published in the persistent tier
 * @param bytesWritten    bytes written ({@code written} times the block size)
 * @param skippedQueueFull blocks not queued because the bounded queue was full (never blocking a step)
 * @param refusedByAdmission blocks the persistent tier's admission policy did not take
 * @param failed          blocks whose write failed (I/O error); they stay in memory
 * @param queueLength     blocks waiting now
 * @param busyNanos       time the writer spent copying, in ns
 * @param lagMaxNanos     longest time from a block's seal to its publication, in ns
 * @param lagMeanNanos    mean of that time, in ns (0 when nothing was written)
 */
public record PersistStats(String policy, long queued, long written, long bytesWritten, long skippedQueueFull,
                           long refusedByAdmission, long failed, int queueLength, long busyNanos,
                           long lagMaxNanos, long lagMeanNanos) {
}
