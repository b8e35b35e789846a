package io.kvcache.tiers.transfer;

/** Which way a batch crosses the link; each direction has its own stream. */
public enum Direction {
    /** Pinned host slots to device slots (prefetch, promotion). */
    HOST_TO_DEVICE,
    /** Device slots to pinned host slots (eviction, demotion). */
    DEVICE_TO_HOST,
    /** Device slots to device slots (same device, or a peer). */
    DEVICE_TO_DEVICE
}
