package io.kvcache.examples.demo;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.PersistentTier;
import java.nio.file.Path;

/**
 * Opens the persistent disk tier for {@code --disk-dir}: the one place the demo names the disk
 * tier's implementation. Everything else (budgets, restart reuse, the summary's disk row) works
 * against {@link PersistentTier} and the manager.
 */
final class DiskTierFactory {
    private DiskTierFactory() {
    }

    /**
     * @param dir     the cache directory (created when absent; one process at a time)
     * @param layout  the cache layout
     * @param modelId identifies the weights; a directory made for other weights is refused
     * @param bytes   capacity of block data in bytes
     * @return the opened tier; the cache manager closes it
     * @throws UsageException naming the directory when it cannot be used
     */
    static PersistentTier open(Path dir, KvLayout layout, String modelId, long bytes) throws UsageException {
        throw new UsageException("--disk-dir " + dir + ": the disk tier (MappedFileTier) is not in this build yet");
    }
}
