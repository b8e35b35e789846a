package io.kvcache.tiers.manager;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.OutOfCacheSpaceException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.stats.TierStats;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Several engine threads on separate and shared-prefix sequences of one manager, with a
 * small top tier so that eviction, promotion and sharing race each other.
 */
class ConcurrentSequencesTest {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 8, DType.FP16, 4);

    @Test
    void threadsOnSharedAndSeparatePrefixesKeepEveryByteAndLeakNothing() throws Exception {
        int threads = 6;
        try (KvCacheManager m = KvCacheManager.builder(LAYOUT)
                .modelId("concurrent")
                .tier(new SimulatedDeviceTier(LAYOUT, 24 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier(LAYOUT, 64 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier("lower", LAYOUT, 256 * LAYOUT.blockBytes()))
                .build()) {
            Engine engine = new Engine(m);
            CyclicBarrier start = new CyclicBarrier(threads);
            ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                results.add(pool.submit(() -> {
                    Random r = new Random(id);
                    // even threads share a system prompt; odd threads have their own
                    int[] prompt = new int[12 + r.nextInt(6)];
                    for (int i = 0; i < prompt.length; i++) {
                        prompt[i] = id % 2 == 0 && i < 12 ? 1000 + i : id * 100 + i;
                    }
                    start.await();
                    int rounds = 0;
                    for (int round = 0; round < 25; round++) {
                        try (Sequence s = m.open(new byte[] {0}, prompt)) {
                            engine.prefill(s);
                            Sequence f = null;
                            for (int step = 0; step < 10 + r.nextInt(10); step++) {
                                engine.decode(s, r.nextInt(50));
                                if (step == 5) {
                                    f = s.fork();
                                }
                            }
                            if (f != null) {
                                engine.decode(f, 7);
                                String p = engine.verify(f);
                                if (p != null) {
                                    problems.add(p);
                                }
                                f.close();
                            }
                            try (ResidencyHandle h = m.ensureResident(s, 0, Math.min(4, s.blockCount()))) {
                                h.await();
                            }
                            String p = engine.verify(s);
                            if (p != null) {
                                problems.add(p);
                            }
                            rounds++;
                        } catch (OutOfCacheSpaceException e) {
                            // six threads may pin more than the top tier at once: a legal refusal
                        }
                    }
                    return rounds;
                }));
            }
            int rounds = 0;
            for (Future<Integer> f : results) {
                rounds += f.get();
            }
            pool.shutdown();
            assertTrue(problems.isEmpty(), () -> String.join("\n", problems));
            assertTrue(rounds > threads * 20, "most rounds ran: " + rounds);
            assertTrue(m.stats().demotions() > 0, "the small top tier had to demote");
            assertTrue(m.stats().prefixHitTokens() > 0, "shared prompts were reused");
            for (KvCacheManager.BlockInfo i : m.blockInfos()) {
                assertEquals(0, i.refCount(), "leaked reference " + i);
                assertEquals(0, i.pins(), "leaked pin " + i);
            }
            m.dropUnreferenced();
            for (TierStats t : m.stats().tiers()) {
                assertEquals(0, t.usedSlots(), t.name());
            }
        }
    }
}
