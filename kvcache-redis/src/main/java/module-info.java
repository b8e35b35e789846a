/**
 * The remote tier: sealed blocks in Redis (standalone or cluster) through Lettuce, below or
 * instead of the disk tier. {@link io.kvcache.redis.RedisTier} is the tier,
 * {@link io.kvcache.redis.RedisTierConfig} its connection settings.
 */
@SuppressWarnings("requires-automatic") // Lettuce 7 is an automatic module (lettuce.core)
module io.kvcache.redis {
    requires transitive io.kvcache.core;
    requires lettuce.core;
    requires com.github.benmanes.caffeine;
    // the Future that ClientResources.shutdown returns
    requires io.netty.common;

    exports io.kvcache.redis;
}
