/** Host-memory tiers: page-locked RAM that devices can copy from and map. */
package io.kvcache.tiers.host;
