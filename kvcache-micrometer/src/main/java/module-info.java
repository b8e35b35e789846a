/** Micrometer meters over the cache's statistics ({@link io.kvcache.micrometer.KvCacheMetrics}). */
@SuppressWarnings({"requires-automatic", "requires-transitive-automatic"}) // Micrometer 1.16 is an automatic module
module io.kvcache.micrometer {
    requires transitive io.kvcache.core;
    // KvCacheMetrics is a MeterBinder and takes Micrometer Tags
    requires transitive micrometer.core;

    exports io.kvcache.micrometer;
}
