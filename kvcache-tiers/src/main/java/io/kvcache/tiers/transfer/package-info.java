/** Transfer engines that move batches of blocks between tiers. */
package io.kvcache.tiers.transfer;
