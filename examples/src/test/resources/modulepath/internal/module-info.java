// A module that reaches into a package kvcache-tiers keeps internal: must not compile.
module io.kvcache.peek {
    requires io.kvcache.tiers;
}
