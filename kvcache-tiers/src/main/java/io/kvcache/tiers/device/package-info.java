/** Device (VRAM) tiers: one large CUDA allocation per GPU carved into block slots. */
package io.kvcache.tiers.device;
