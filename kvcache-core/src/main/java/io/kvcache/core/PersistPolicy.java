package io.kvcache.core;

/**
 * When sealed blocks are written down to the first persistent tier (the disk tier), named as
 * SGLang HiCache names its write policies. Whatever the policy, blocks evicted into the
 * persistent tier land there, and {@link KvCacheManager#checkpoint()} and a clean
 * {@link KvCacheManager#close()} write every sealed block down.
 */
public enum PersistPolicy {
    /**
     * Every block is queued for the persistent tier as soon as it is sealed, and written in the
     * background: a crash keeps every block sealed longer ago than the write-through lag,
     * including hot prefixes that never leave VRAM. The default when a persistent tier is present.
     */
    WRITE_THROUGH,
    /**
     * A block is queued when it is first reused (found by another request's prefix), so one-off
     * blocks cost no disk bandwidth while shared prefixes still survive a crash.
     */
    WRITE_THROUGH_SELECTIVE,
    /** Blocks reach the persistent tier only when evicted into it (or on checkpoint and close). */
    WRITE_BACK
}
