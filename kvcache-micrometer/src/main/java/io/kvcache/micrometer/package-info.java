/**
 * The cache's statistics as Micrometer meters: {@link io.kvcache.micrometer.KvCacheMetrics}, a
 * {@code MeterBinder}. A module of its own so that {@code kvcache-core} needs no Micrometer.
 */
package io.kvcache.micrometer;
