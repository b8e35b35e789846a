/**
 * The tiers: simulated and CUDA device tiers, mmap and pinned host tiers, the persistent disk
 * tier and the CUDA transfer engine. {@code io.kvcache.tiers.slots} (slot bookkeeping shared by
 * the tiers) is internal.
 *
 * <p>Chronicle Map, the disk tier's index, is optional ({@code requires static}): without it
 * every tier but {@link io.kvcache.tiers.disk.MappedFileTier} works, and opening that one throws
 * {@link io.kvcache.tiers.disk.ChronicleMapMissingException}. Chronicle Map 3.27 is not a named
 * module and needs {@code --add-opens}/{@code --add-exports} into its own code; the disk tier is
 * tested with the jars on the class path (see {@link io.kvcache.tiers.disk.ChronicleJvmFlags}).
 */
@SuppressWarnings("requires-automatic") // Chronicle Map 3.27 is an automatic module
module io.kvcache.tiers {
    requires transitive io.kvcache.core;
    // CudaDeviceTier and PinnedHostTier take a CudaContext
    requires transitive io.kvcache.nativ;
    requires static chronicle.map;

    exports io.kvcache.tiers.device;
    exports io.kvcache.tiers.disk;
    exports io.kvcache.tiers.host;
    exports io.kvcache.tiers.transfer;
}
