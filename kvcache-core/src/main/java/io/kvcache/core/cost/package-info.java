/** Reload-or-recompute arithmetic: link bandwidths against the engine's recompute cost per token. */
package io.kvcache.core.cost;
