/** Host RAM tiers: page-locked memory the GPU can DMA from, or locked anonymous mappings. */
package io.kvcache.tiers.host;
