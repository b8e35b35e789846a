/** Counters of the cache and its tiers, as immutable snapshots. */
package io.kvcache.core.stats;
