/** Eviction policies: which unpinned block leaves a full tier (LRU, attention score). */
package io.kvcache.core.policy;
