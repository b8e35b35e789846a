/** Slot allocation for tiers whose slots are read and written by asynchronous copies. */
package io.kvcache.tiers.slots;
