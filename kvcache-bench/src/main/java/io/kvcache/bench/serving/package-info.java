/**
 * The multi-turn serving benchmark: time to first token, throughput and sessions held with the
 * device tier alone (evicted KV recomputed), with the host tier, with the disk tier, and with
 * everything in the device tier, in one run on one engine.
 */
package io.kvcache.bench.serving;
