/** Host RAM tiers: page-locked memory the GPU can DMA from and map, or locked anonymous mappings. */
package io.kvcache.tiers.host;
