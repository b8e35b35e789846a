/**
 * Counters of the cache and its tiers, as immutable snapshots since the cache was built.
 *
 * <p>{@link io.kvcache.core.stats.CacheStats} is the whole cache, {@link io.kvcache.core.stats.TierStats}
 * one tier, {@link io.kvcache.core.stats.PersistStats} writing sealed blocks down; each component
 * is documented on its record. In short:
 *
 * <ul>
 * <li><b>Occupancy</b>: slots and bytes per tier, in use now (blocks, lower copies, slots whose
 *     copies are settling).</li>
 * <li><b>Hits</b>: blocks a step or a prompt asked for that a tier already held; prompt tokens
 *     looked up and found at {@code open}.</li>
 * <li><b>Movement</b>: blocks (and bytes, always a whole block each) copied toward the top tier
 *     (promotions) and toward the bottom by eviction (demotions); evictions that moved no bytes
 *     because a lower copy existed are counted apart (fallbacks); drops of cached blocks nobody
 *     held; copy-on-write copies.</li>
 * <li><b>Loss</b>: blocks whose bytes could not be served: each one a reported miss.</li>
 * <li><b>Waits</b>: time engine threads spent in {@code ResidencyHandle.await}, summed over
 *     threads, per thread, and as wall time with at least one thread waiting.</li>
 * <li><b>Prefetch</b>: blocks promoted by {@code prefetch}, and of those a step asked for, how
 *     many were in place in time and how many were still in flight.</li>
 * <li><b>Persistence</b>: blocks queued, written, skipped (queue full) or refused by admission,
 *     write failures, writer time and the lag from seal to disk.</li>
 * </ul>
 */
package io.kvcache.core.stats;
