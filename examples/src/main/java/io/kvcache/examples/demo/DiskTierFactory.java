package io.kvcache.examples.demo;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.tiers.disk.MappedFileTier;
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
        try {
            return MappedFileTier.builder(layout).directory(dir).capacityBytes(bytes).modelId(modelId).name("disk")
                    .open();
        } catch (RuntimeException e) {
            // locked by another process, made for other weights or another size, unsafe permissions,
            // missing JVM flags: the tier's message says which
            throw new UsageException("--disk-dir " + dir + ": " + e.getMessage());
        }
    }
}
