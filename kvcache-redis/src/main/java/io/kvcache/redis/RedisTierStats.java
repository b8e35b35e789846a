package io.kvcache.redis;

/**
 * A snapshot of a {@link RedisTier}'s counters since it was opened.
 *
 * @param lookups          {@code lookup} calls
 * @param localHits        lookups served from a retained local slot (no round trip)
 * @param remoteHits       lookups served from Redis (a prefetched value or a {@code GET})
 * @param misses           lookups that found nothing servable (absent, invalid, timed out, unreachable, no free slot)
 * @param publishes        blocks published
 * @param publishFailures  writes Redis refused or that timed out (the block is then a miss for others)
 * @param publishesSkipped publishes not sent: Redis unreachable or too many writes in flight
 * @param invalidValues    values whose header failed a check (magic, version, header CRC32C, layout,
 *                         model, key, length): counted misses, deleted, never served
 * @param checksumFailures blocks whose bytes failed their CRC32C on read or verify (as they came from
 *                         Redis, or damaged since): unpublished, deleted, never served
 * @param prefetches       {@code MGET} round trips for prefix chains
 * @param prefetchedBlocks values those round trips brought
 * @param presenceHits     presence or absence questions the Caffeine cache answered
 * @param presenceMisses   presence questions it could not answer
 * @param roundTrips       reads sent to Redis ({@code GET}, {@code MGET}, {@code EXISTS})
 * @param errors           commands that failed or timed out
 * @param reconnects       connections re-established after a loss
 * @param degraded         whether Redis is unreachable now
 */
public record RedisTierStats(long lookups, long localHits, long remoteHits, long misses, long publishes,
        long publishFailures, long publishesSkipped, long invalidValues, long checksumFailures, long prefetches,
        long prefetchedBlocks, long presenceHits, long presenceMisses, long roundTrips, long errors,
        long reconnects, boolean degraded) {

    /** @return the presence cache's hit rate in [0, 1], 0 before any question */
    public double presenceHitRate() {
        long n = presenceHits + presenceMisses;
        return n == 0 ? 0 : (double) presenceHits / n;
    }
}
