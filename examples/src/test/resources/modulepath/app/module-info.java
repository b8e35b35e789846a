// An application module that uses the library on the module path, as a JPMS user would.
module io.kvcache.modulecheck {
    requires io.kvcache.tiers;
}
