/**
 * The cache manager: sequences, residency handles, block tables and the exceptions an engine acts on.
 *
 * <p>An engine builds one {@link io.kvcache.core.KvCacheManager} over its tiers (fastest first),
 * opens a {@link io.kvcache.core.Sequence} per request with a tenant salt and the prompt, and per
 * step pins the blocks it reads or writes with
 * {@link io.kvcache.core.KvCacheManager#ensureResident(Sequence, int, int)}, getting a
 * {@link io.kvcache.core.ResidencyHandle} whose {@link io.kvcache.core.ResidencyHandle#blockTable()
 * block table} its attention kernel takes. The overview page defines the terms used throughout:
 * block, {@code markWritten}, sealed block, pinning, block table, tenant salt.
 *
 * <p>Exceptions: {@link io.kvcache.core.OutOfCacheSpaceException} (no room; preempt or recompute),
 * {@link io.kvcache.core.BlockLostException} (a reported miss), and one per kind of bad input
 * ({@link io.kvcache.core.PositionOutOfRangeException}, {@link io.kvcache.core.InvalidHandleException},
 * {@link io.kvcache.core.DoubleReleaseException}, {@link io.kvcache.core.SharedBlockWriteException},
 * {@link io.kvcache.core.LayoutMismatchException}, {@link io.kvcache.core.UnwrittenKvException}),
 * each leaving the cache as it was.
 */
package io.kvcache.core;
