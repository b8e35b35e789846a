/** Device tiers: VRAM through the CUDA driver, or off-heap memory standing in for it. */
package io.kvcache.tiers.device;
