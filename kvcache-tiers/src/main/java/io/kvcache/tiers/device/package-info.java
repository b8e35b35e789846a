/** Device tiers: VRAM through the CUDA driver (one tier per GPU), or off-heap memory standing in for it. */
package io.kvcache.tiers.device;
