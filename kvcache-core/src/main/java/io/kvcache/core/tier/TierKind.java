package io.kvcache.core.tier;

/** Where a tier's bytes live. */
public enum TierKind {
    /** Accelerator memory (VRAM), or off-heap memory standing in for it. */
    DEVICE,
    /** Host RAM, page-locked where possible. */
    HOST,
    /** A file on local storage, memory-mapped. */
    DISK,
    /** A store reached over the network (Redis), shared by processes and hosts. */
    REMOTE
}
