package io.kvcache.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.policy.EvictionPolicy;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.stats.TierStats;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

/**
 * Random actions against a manager over heap tiers, with {@link ManagerInvariants} read after
 * every action and every written token's K/V checked against what its tokens imply. The
 * manager's own specification, in its own module, with no native tier.
 */
class ManagerInvariantProperties {
    static final KvLayout LAYOUT = CopyOrderModelCheckTest.LAYOUT;

    @Property(tries = 1000)
    void invariantsHoldAfterEveryAction(@ForAll long seed) {
        Random rnd = new Random(seed);
        EvictionPolicy policy = rnd.nextBoolean() ? EvictionPolicy.lru() : EvictionPolicy.attentionScore(1, 1, 0.9);
        StringBuilder log = new StringBuilder("seed " + seed + "\n");
        try (KvCacheManager m = KvCacheManager.builder(LAYOUT).modelId("inv")
                .tier(new HeapTier("device", LAYOUT, 3 + rnd.nextInt(3)))
                .tier(new HeapTier("host", LAYOUT, 3 + rnd.nextInt(4)))
                .tier(new HeapTier("lower", LAYOUT, 24))
                .evictionPolicy(policy).build()) {
            List<Sequence> open = new ArrayList<>();
            List<ResidencyHandle> held = new ArrayList<>();
            for (int step = 0; step < 40; step++) {
                int op = rnd.nextInt(10);
                Sequence s = open.isEmpty() ? null : open.get(rnd.nextInt(open.size()));
                try {
                    switch (op) {
                        case 0, 1 -> {
                            int salt = rnd.nextInt(2);
                            int[] prompt = new int[1 + rnd.nextInt(10)];
                            for (int i = 0; i < prompt.length; i++) {
                                prompt[i] = i < 4 ? 1 + i : 1 + rnd.nextInt(3);
                            }
                            log.append("open ").append(salt).append(' ').append(prompt.length).append('\n');
                            Sequence n = m.open(new byte[] {(byte) salt}, prompt);
                            open.add(n);
                            CopyOrderModelCheckTest.write(m, n);
                        }
                        case 2, 3 -> {
                            if (s != null) {
                                log.append("decode ").append(s).append('\n');
                                s.append(1 + rnd.nextInt(3));
                                CopyOrderModelCheckTest.write(m, s);
                            }
                        }
                        case 4 -> {
                            if (s != null) {
                                log.append("fork ").append(s).append('\n');
                                open.add(s.fork());
                            }
                        }
                        case 5 -> {
                            if (s != null && s.length() > 0) {
                                int to = rnd.nextInt(s.length());
                                log.append("truncate ").append(s).append(" to ").append(to).append('\n');
                                s.truncate(to);
                            }
                        }
                        case 6 -> {
                            if (s != null && s.blockCount() > 0) {
                                int from = rnd.nextInt(s.blockCount());
                                int to = Math.min(s.blockCount(), from + 1 + rnd.nextInt(2));
                                log.append("hold ").append(s).append(' ').append(from).append('-').append(to).append('\n');
                                ResidencyHandle h = m.ensureResident(s, from, to);
                                h.await();
                                held.add(h);
                            }
                        }
                        case 7 -> {
                            if (!held.isEmpty()) {
                                log.append("release\n");
                                held.remove(rnd.nextInt(held.size())).close();
                            } else if (s != null) {
                                log.append("prefetch ").append(s).append('\n');
                                m.prefetch(AccessPlan.allBlocksOf(s.id()));
                            }
                        }
                        case 8 -> {
                            if (s != null && s.blockCount() > 0) {
                                m.reportAttention(s, rnd.nextInt(s.blockCount()), rnd.nextDouble());
                                m.endStep();
                            }
                        }
                        default -> {
                            if (s != null) {
                                log.append("close ").append(s).append('\n');
                                s.close();
                                open.remove(s);
                            }
                        }
                    }
                } catch (OutOfCacheSpaceException e) {
                    log.append("  no room\n");
                }
                assertNull(ManagerInvariants.check(m), () -> "after:\n" + log);
                for (Sequence x : open) {
                    if (x.isOpen()) {
                        assertNull(CopyOrderModelCheckTest.verify(m, x), () -> "after:\n" + log);
                    }
                }
            }
            for (ResidencyHandle h : held) {
                h.close();
            }
            for (Sequence x : open) {
                x.close();
            }
            assertNull(ManagerInvariants.check(m), () -> "after closing everything:\n" + log);
            m.dropUnreferenced();
            assertTrue(m.awaitIdle(Duration.ofSeconds(30)));
            assertEquals(0, m.blockInfos().size());
            for (TierStats t : m.stats().tiers()) {
                assertEquals(0, t.usedSlots(), () -> "tier " + t.name() + " keeps slots after:\n" + log);
            }
        }
    }
}
