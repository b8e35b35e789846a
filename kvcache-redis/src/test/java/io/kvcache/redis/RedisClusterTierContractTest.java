package io.kvcache.redis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.block.BlockKey;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Redis tier on a real three-node Redis Cluster: the tier contracts pass, blocks spread
 * over the nodes' hash slots, and a prefix chain fetched across nodes comes back byte for byte.
 */
class RedisClusterTierContractTest extends RedisContract {
    private static RedisCluster cluster;
    private static StatefulRedisClusterConnection<byte[], byte[]> plain;

    @BeforeAll
    static void startCluster() throws Exception {
        cluster = RedisCluster.start();
        plain = cluster.plainConnection();
    }

    @AfterAll
    static void stopCluster() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Override
    RedisTierConfig.Builder config(String namespace) {
        return cluster.config(namespace);
    }

    @Override
    byte[] rawGet(byte[] key) {
        return plain.sync().get(key);
    }

    @Override
    void rawSet(byte[] key, byte[] value) {
        plain.sync().set(key, value);
    }

    @Test
    void blocksSpreadOverTheNodesAndAChainComesBackFromAllOfThem() throws Exception {
        String ns = "spread" + System.nanoTime();
        List<BlockKey> chain = new ArrayList<>();
        RedisTierStats written;
        try (RedisTier w = RedisTier.builder(LAYOUT).config(cluster.config(ns).build()).modelId("contract")
                .capacityBytes(4 * LAYOUT.blockBytes()).open()) {
            for (int i = 0; i < 30; i++) {
                chain.add(key(1000 + i));
                int s = w.allocate(chain.get(i));
                w.write(s, 0, randomBlock(1000 + i));
                w.publish(s, chain.get(i), i == 0 ? null : chain.get(i - 1));
                w.free(s);
            }
            w.close();
            written = w.stats();
        }
        for (RedisServer n : cluster.nodes) {
            assertTrue(cluster.keysOn(n) > 0, "node " + n.port + " holds no block: keys did not spread over hash slots; " + written);
        }
        try (RedisTier r = RedisTier.builder(LAYOUT).config(cluster.config(ns).build()).modelId("contract")
                .capacityBytes(30 * LAYOUT.blockBytes()).open(); Arena arena = Arena.ofConfined()) {
            long trips = r.stats().roundTrips();
            r.prefetch(chain);
            MemorySegment back = arena.allocate(LAYOUT.blockBytes());
            for (int i = 0; i < 30; i++) {
                int s = r.lookup(chain.get(i));
                assertTrue(s >= 0, "block " + i + " not found in the cluster");
                r.read(s, 0, back);
                assertEquals(-1, back.mismatch(randomBlock(1000 + i)), "block " + i + " has other bytes");
            }
            assertEquals(trips + 1, r.stats().roundTrips(), "the chain was not one (multi-node) MGET");
            assertEquals(30, r.stats().prefetchedBlocks());
        }
    }
}
