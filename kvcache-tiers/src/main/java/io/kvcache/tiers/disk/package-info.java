/** The disk tier: a preallocated, memory-mapped file of checksummed block slots with a persistent Chronicle Map index. */
package io.kvcache.tiers.disk;
