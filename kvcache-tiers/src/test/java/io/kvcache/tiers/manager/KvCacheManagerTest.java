package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.DoubleReleaseException;
import io.kvcache.core.InvalidHandleException;
import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayoutMismatchException;
import io.kvcache.core.OutOfCacheSpaceException;
import io.kvcache.core.PositionOutOfRangeException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.SharedBlockWriteException;
import io.kvcache.core.cost.CostModel;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class KvCacheManagerTest {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 4, DType.FP32, 4);
    static final byte[] SALT = {1, 2, 3};

    private KvCacheManager manager;

    private KvCacheManager build(int deviceBlocks, int hostBlocks, EvictionPolicy policy) {
        manager = KvCacheManager.builder(LAYOUT)
                .modelId("test-model")
                .tier(new SimulatedDeviceTier(LAYOUT, deviceBlocks * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, hostBlocks * LAYOUT.blockBytes()))
                .evictionPolicy(policy)
                .build();
        return manager;
    }

    @AfterEach
    void close() {
        if (manager != null) {
            manager.close();
        }
    }

    static int[] tokens(int from, int count) {
        return IntStream.range(from, from + count).toArray();
    }

    @Test
    void evictedBlocksAreServedFromTheHostTierWithIdenticalBytes() {
        build(2, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence s = manager.open(SALT, tokens(10, 3));
        engine.prefill(s);
        for (int i = 0; i < 30; i++) {
            engine.decode(s, 100 + i);
        }
        CacheStats st = manager.stats();
        assertTrue(st.demotions() > 0, "the device tier of 2 blocks must have demoted: " + st);
        assertEquals(2, st.tiers().get(0).usedSlots());
        assertNull(engine.verify(s));
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2)) {
            h.await();
        }
        assertNull(engine.verify(s));
        assertTrue(manager.stats().tiers().get(1).hits() > 0);
    }

    @Test
    void aPromotedSealedBlockFallsBackToItsLowerCopyWhenEvictedWithoutMovingBytes() {
        build(2, 8, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence s = manager.open(SALT, tokens(0, 17));
        engine.prefill(s);                       // blocks 0-3 sealed; 3 and 4 on the device
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2)) {
            h.await();                           // 0 and 1 promoted, their host slots kept as copies
        }
        CacheStats before = manager.stats();
        try (ResidencyHandle h = manager.ensureResident(s, 2, 4)) {
            h.await();                           // evicts 0 and 1: they fall back to their host copies
        }
        CacheStats after = manager.stats();
        assertEquals(before.demotions(), after.demotions(), "a fall-back is not a demotion: it copies nothing");
        assertEquals(before.lowerCopyFallbacks() + 2, after.lowerCopyFallbacks());
        assertEquals(before.tiers().get(1).fallbacksIn() + 2, after.tiers().get(1).fallbacksIn());
        assertEquals(before.tiers().get(1).demotedIn(), after.tiers().get(1).demotedIn());
        assertEquals(before.bytesDemoted(), after.bytesDemoted(), "no bytes move for blocks with a lower copy");
        assertEquals(after.demotions() * LAYOUT.blockBytes(), after.bytesDemoted(), "blocks and bytes agree");
        assertEquals(after.promotions() * LAYOUT.blockBytes(), after.bytesPromoted(), "blocks and bytes agree");
        assertEquals(1, manager.blockInfos().stream().filter(i -> i.id() == manager.blockId(s, 0)).findFirst()
                .orElseThrow().tier());
        assertNull(engine.verify(s));
        try (ResidencyHandle h = manager.ensureResident(s, 0, 2)) {
            h.await();
        }
        assertNull(engine.verify(s));
    }

    @Test
    void secondSequenceWithSamePrefixReusesFullBlocks() {
        build(8, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 10));
        assertEquals(0, a.cachedTokens());
        engine.prefill(a);
        Sequence b = manager.open(SALT, tokens(0, 11));
        assertEquals(8, b.cachedTokens(), "two full blocks of 4 tokens are shared");
        assertEquals(manager.blockId(a, 0), manager.blockId(b, 0));
        assertEquals(manager.blockId(a, 1), manager.blockId(b, 1));
        engine.prefill(b);
        assertNull(engine.verify(a));
        assertNull(engine.verify(b));
        Sequence otherTenant = manager.open(new byte[] {9}, tokens(0, 11));
        assertEquals(0, otherTenant.cachedTokens(), "another salt shares nothing");
    }

    @Test
    void aBlockIsSharedOnlyAfterItsKvIsMarkedWritten() {
        build(8, 16, EvictionPolicy.lru());
        Sequence a = manager.open(SALT, tokens(0, 9));
        Sequence b = manager.open(SALT, tokens(0, 9));
        assertEquals(0, b.cachedTokens());
        new Engine(manager).prefill(a);
        Sequence c = manager.open(SALT, tokens(0, 9));
        assertEquals(8, c.cachedTokens());
    }

    @Test
    void promptThatIsAllCachedLeavesTheLastBlockToCompute() {
        build(8, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        engine.prefill(manager.open(SALT, tokens(0, 8)));
        Sequence b = manager.open(SALT, tokens(0, 8));
        assertEquals(4, b.cachedTokens());
        engine.prefill(b);
        assertNull(engine.verify(b));
    }

    @Test
    void forkSharesThePrefixAndCopiesThePartialBlockOnWrite() {
        build(8, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 6));
        engine.prefill(a);
        Sequence f = a.fork();
        assertEquals(manager.blockId(a, 1), manager.blockId(f, 1), "partial block shared until written");
        engine.decode(a, 50);
        engine.decode(f, 60);
        assertTrue(manager.blockId(a, 1) != manager.blockId(f, 1));
        assertEquals(manager.blockId(a, 0), manager.blockId(f, 0));
        assertNull(engine.verify(a));
        assertNull(engine.verify(f));
    }

    @Test
    void truncateReleasesBlocksAndDecodingContinuesCorrectly() {
        build(4, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 14));
        engine.prefill(a);
        a.truncate(5);
        assertEquals(2, a.blockCount());
        assertEquals(5, a.writtenTokens());
        for (int i = 0; i < 6; i++) {
            engine.decode(a, 70 + i);
        }
        assertNull(engine.verify(a));
    }

    @Test
    void closingEverySequenceLeavesOnlyDroppableCachedBlocks() {
        build(3, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 13));
        engine.prefill(a);
        Sequence f = a.fork();
        engine.decode(f, 99);
        a.close();
        f.close();
        assertTrue(manager.blockInfos().stream().allMatch(b -> b.refCount() == 0 && b.pins() == 0 && b.sealed()));
        manager.dropUnreferenced();
        assertEquals(0, manager.blockInfos().size());
        for (var t : manager.stats().tiers()) {
            assertEquals(0, t.usedSlots(), t.name());
        }
    }

    @Test
    void pinnedBlocksNeverMoveAndAFullTopTierOfPinsIsOutOfSpace() {
        build(2, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 8));
        engine.prefill(a);
        Sequence b = manager.open(new byte[] {7}, tokens(0, 8));
        try (ResidencyHandle h = manager.ensureResident(a)) {
            h.await();
            var before = manager.blockInfos();
            OutOfCacheSpaceException e = assertThrows(OutOfCacheSpaceException.class, () -> manager.ensureResident(b));
            assertTrue(e.getMessage().contains("device"), e.getMessage());
            assertEquals(before, manager.blockInfos(), "a refused request changes nothing");
        }
        engine.prefill(b);
        assertNull(engine.verify(a));
        assertNull(engine.verify(b));
    }

    @Test
    void allTiersFullOfReferencedBlocksIsOutOfSpaceAndNothingIsLost() {
        build(2, 2, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 16));
        engine.prefill(a);
        Sequence b = manager.open(new byte[] {5}, tokens(0, 4));
        var before = manager.blockInfos();
        assertThrows(OutOfCacheSpaceException.class, () -> engine.prefill(b));
        assertEquals(before.size() + 0, manager.blockInfos().size());
        assertNull(engine.verify(a));
    }

    @Test
    void cachedBlocksAreDroppedOnlyWhenNoTierHasRoom() {
        build(2, 2, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 16));
        engine.prefill(a);
        a.close();
        Sequence b = manager.open(new byte[] {5}, tokens(0, 12));
        engine.prefill(b);
        assertNull(engine.verify(b));
        long dropped = manager.stats().tiers().stream().mapToLong(t -> t.dropped()).sum();
        assertTrue(dropped > 0);
    }

    @Test
    void writingIntoASharedBlockIsRefused() {
        build(8, 16, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 9));
        engine.prefill(a);
        try (ResidencyHandle h = manager.ensureResident(a); Arena arena = Arena.ofConfined()) {
            h.await();
            MemorySegment src = arena.allocate(16);
            SharedBlockWriteException e = assertThrows(SharedBlockWriteException.class, () -> h.write(0, 0, src));
            assertTrue(e.getMessage().contains("sealed"), e.getMessage());
        }
        assertNull(engine.verify(a));
    }

    @Test
    void doubleReleaseIsRefused() {
        build(8, 16, EvictionPolicy.lru());
        Sequence a = manager.open(SALT, tokens(0, 5));
        ResidencyHandle h = manager.ensureResident(a);
        h.close();
        assertThrows(DoubleReleaseException.class, h::close);
        assertThrows(InvalidHandleException.class, () -> h.address(0));
        assertTrue(manager.blockInfos().stream().allMatch(b -> b.pins() == 0));
    }

    @Test
    void closedAndForeignSequencesAreRefused() {
        build(8, 16, EvictionPolicy.lru());
        Sequence a = manager.open(SALT, tokens(0, 5));
        a.close();
        assertThrows(InvalidHandleException.class, () -> manager.ensureResident(a));
        assertThrows(InvalidHandleException.class, a::fork);
        assertThrows(InvalidHandleException.class, () -> a.append(1));
        try (KvCacheManager other = KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(LAYOUT, 4 * LAYOUT.blockBytes())).build()) {
            Sequence foreign = other.open(SALT, tokens(0, 5));
            InvalidHandleException e = assertThrows(InvalidHandleException.class,
                    () -> manager.ensureResident(foreign));
            assertTrue(e.getMessage().contains("another manager"), e.getMessage());
        }
    }

    @Test
    void positionsPastTheSequenceAreRefusedAndChangeNothing() {
        build(8, 16, EvictionPolicy.lru());
        Sequence a = manager.open(SALT, tokens(0, 5));
        assertThrows(PositionOutOfRangeException.class, () -> a.markWritten(6));
        assertThrows(PositionOutOfRangeException.class, () -> a.truncate(6));
        assertThrows(PositionOutOfRangeException.class, () -> a.truncate(-1));
        assertThrows(PositionOutOfRangeException.class, () -> manager.ensureResident(a, 0, 3));
        assertThrows(PositionOutOfRangeException.class, () -> manager.reportAttention(a, 2, 1.0));
        assertEquals(5, a.length());
        assertEquals(0, a.writtenTokens());
        assertEquals(2, a.blockCount());
    }

    @Test
    void tierWhoseSlotsDoNotFitTheLayoutIsRefused() {
        KvLayout other = new KvLayout(2, 2, 4, DType.FP16, 4);
        LayoutMismatchException e = assertThrows(LayoutMismatchException.class, () -> KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(other, 4 * other.blockBytes())).build());
        assertTrue(e.getMessage().contains("bytes"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KvCacheManager.builder(LAYOUT).build());
        assertThrows(IllegalArgumentException.class, () -> new KvLayout(0, 2, 4, DType.FP16, 4));
        assertThrows(IllegalArgumentException.class, () -> new KvLayout(2, 2, 4, DType.FP16, -1));
    }

    @Test
    void attentionPolicyKeepsHeavyHittersSinksAndRecentBlocks() {
        build(4, 32, EvictionPolicy.attentionScore(1, 1, 0.9));
        Engine engine = new Engine(manager);
        Sequence s = manager.open(SALT, tokens(0, 16));
        engine.prefill(s);
        // blocks 0..3 resident; block 2 is a heavy hitter
        manager.reportAttention(s, 2, 5.0);
        manager.reportAttention(s, 1, 0.1);
        manager.reportAttention(s, 3, 0.5);
        manager.endStep();
        long heavy = manager.blockId(s, 2);
        long sink = manager.blockId(s, 0);
        for (int i = 0; i < 8; i++) {
            engine.decode(s, 200 + i);
            manager.reportAttention(s, 2, 1.0);
            manager.endStep();
        }
        List<KvCacheManager.BlockInfo> infos = manager.blockInfos();
        assertEquals(0, infos.stream().filter(b -> b.id() == heavy).findFirst().orElseThrow().tier());
        assertEquals(0, infos.stream().filter(b -> b.id() == sink).findFirst().orElseThrow().tier());
        assertEquals(1, infos.stream().filter(b -> b.id() == manager.blockId(s, 1)).findFirst().orElseThrow().tier(),
                "the lowest-scoring unprotected block leaves first");
        assertEquals(0, infos.stream().filter(b -> b.id() == manager.blockId(s, 5)).findFirst().orElseThrow().tier(),
                "the recent window stays");
        assertNull(engine.verify(s));
    }

    @Test
    void prefixBlocksInATierWhoseReloadLosesToRecomputeAreNotReused() {
        CostModel slowHost = new CostModel(LAYOUT, 1e-9, List.of(new CostModel.Link("host", 1e6, 0)));
        manager = KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(LAYOUT, 2 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 16 * LAYOUT.blockBytes()))
                .costModel(slowHost)
                .build();
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 16));
        engine.prefill(a);
        // blocks 0 and 1 were demoted to the host tier, 2 and 3 are on the device
        Sequence b = manager.open(SALT, tokens(0, 17));
        assertEquals(0, b.cachedTokens(), "block 0 sits in a tier that loses to recompute");
        assertThrows(IllegalArgumentException.class, () -> KvCacheManager.builder(LAYOUT)
                .tier(new SimulatedDeviceTier(LAYOUT, 2 * LAYOUT.blockBytes()))
                .costModel(slowHost).build());
    }

    @Test
    void prefetchPromotesAheadAndCountsTimeliness() throws Exception {
        build(4, 32, EvictionPolicy.lru());
        Engine engine = new Engine(manager);
        Sequence a = manager.open(SALT, tokens(0, 16));
        engine.prefill(a);
        Sequence b = manager.open(new byte[] {4}, tokens(0, 16));
        engine.prefill(b);
        assertTrue(manager.blockInfos().stream().filter(i -> i.tier() == 1).count() >= 4);
        manager.prefetch(AccessPlan.allBlocksOf(a.id()));
        CacheStats st = manager.stats();
        assertEquals(4, st.prefetchIssued());
        try (ResidencyHandle h = manager.ensureResident(a)) {
            h.await();
        }
        st = manager.stats();
        assertEquals(4, st.prefetchInTime() + st.prefetchLate());
        assertNull(engine.verify(a));
        assertThrows(InvalidHandleException.class, () -> manager.prefetch(AccessPlan.allBlocksOf(12345)));
    }
}
