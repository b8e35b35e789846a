/**
 * kvcache's API and manager: sequences, residency handles, block tables, the tier and transfer
 * SPIs, eviction policies, prefetch plans, the cost model and statistics. Pure Java; every package
 * is API (the manager's internals are package-private classes of {@code io.kvcache.core}).
 */
@SuppressWarnings("requires-automatic") // Agrona 2.6 is an automatic module
module io.kvcache.core {
    requires org.agrona;

    exports io.kvcache.core;
    exports io.kvcache.core.block;
    exports io.kvcache.core.cost;
    exports io.kvcache.core.layout;
    exports io.kvcache.core.policy;
    exports io.kvcache.core.prefetch;
    exports io.kvcache.core.stats;
    exports io.kvcache.core.tier;
    exports io.kvcache.core.transfer;
}
