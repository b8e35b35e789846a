package io.kvcache.tiers.manager;

import io.kvcache.core.Sequence;
import io.kvcache.core.prefetch.AccessPlan;
import io.kvcache.core.tier.Tier;
import io.kvcache.tiers.disk.MappedFileTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.lifecycle.AfterTry;
import net.jqwik.api.state.Action;
import net.jqwik.api.state.ActionChain;
import net.jqwik.api.state.Transformer;

/**
 * Random chains of open, decode, fork (also inside a partial block, the fork's K/V written at
 * once or by a later step), truncate (also into the middle of a block, then other tokens
 * appended and written), ensureResident, release, attention reports, prefetch and close against
 * {@link CacheModel}'s reference model, with the invariants checked after every action; over
 * three tiers, over the persistent disk tier, and with a slow transfer engine. Tries per
 * property: {@code -Djqwik.tries=N} on the Maven command line (the disk and slow-engine
 * properties run a fixed, smaller number).
 */
class ManagerActionChainProperties {
    private final List<CacheModel> models = new ArrayList<>();

    private final List<Path> directories = new ArrayList<>();

    @AfterTry
    void closeModels() throws IOException {
        for (CacheModel m : models) {
            m.close();
        }
        models.clear();
        for (Path dir : directories) {
            try (var files = Files.walk(dir)) {
                for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
        directories.clear();
    }

    @Property(shrinking = ShrinkingMode.OFF)
    void invariantsHoldUnderLru(@ForAll("lruChains") ActionChain<CacheModel> chain) {
        chain.withInvariant(CacheModel::checkInvariants).run();
        chain.finalState().ifPresent(CacheModel::closeAllAndCheckEmpty);
    }

    @Property(shrinking = ShrinkingMode.OFF)
    void invariantsHoldUnderAttentionScore(@ForAll("attentionChains") ActionChain<CacheModel> chain) {
        chain.withInvariant(CacheModel::checkInvariants).run();
        chain.finalState().ifPresent(CacheModel::closeAllAndCheckEmpty);
    }

    /** The bottom tier is the persistent disk tier (real file, real Chronicle Map index). */
    @Property(tries = 150, shrinking = ShrinkingMode.OFF)
    void invariantsHoldOverThePersistentDiskTier(@ForAll("diskChains") ActionChain<CacheModel> chain) {
        chain.withInvariant(CacheModel::checkInvariants).run();
        chain.finalState().ifPresent(CacheModel::closeAllAndCheckEmpty);
    }

    /**
     * Copies take a random few hundred microseconds on the slow engine's own threads, so they
     * are still in flight while the next actions plan around them.
     */
    @Property(tries = 200, shrinking = ShrinkingMode.OFF)
    void invariantsHoldWithASlowTransferEngine(@ForAll("slowEngineChains") ActionChain<CacheModel> chain) {
        chain.withInvariant(CacheModel::checkInvariants).run();
        chain.finalState().ifPresent(CacheModel::closeAllAndCheckEmpty);
    }

    @Provide
    Arbitrary<ActionChain<CacheModel>> slowEngineChains() {
        return chains(false, () -> new MmapHostTier("lower", CacheModel.LAYOUT, 8 * CacheModel.LAYOUT.blockBytes()),
                true);
    }

    @Provide
    Arbitrary<ActionChain<CacheModel>> lruChains() {
        return chains(false);
    }

    @Provide
    Arbitrary<ActionChain<CacheModel>> diskChains() {
        return chains(false, () -> {
            try {
                Path dir = Files.createTempDirectory("kvcache-chain");
                directories.add(dir);
                return MappedFileTier.builder(CacheModel.LAYOUT).directory(dir.resolve("cache"))
                        .modelId("model-under-test").capacityBytes(8 * CacheModel.LAYOUT.blockBytes()).open();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    @Provide
    Arbitrary<ActionChain<CacheModel>> attentionChains() {
        return chains(true);
    }

    private Arbitrary<ActionChain<CacheModel>> chains(boolean attention) {
        return chains(attention, () -> new MmapHostTier("lower", CacheModel.LAYOUT, 8 * CacheModel.LAYOUT.blockBytes()));
    }

    private Arbitrary<ActionChain<CacheModel>> chains(boolean attention, Supplier<Tier> lowest) {
        return chains(attention, lowest, false);
    }

    private Arbitrary<ActionChain<CacheModel>> chains(boolean attention, Supplier<Tier> lowest, boolean slowEngine) {
        return ActionChain.<CacheModel>startWith(() -> {
                    CacheModel m = new CacheModel(attention, lowest.get(),
                            slowEngine ? SlowTransferEngine.withDefaults() : null);
                    models.add(m);
                    return m;
                })
                .withAction(3, new OpenAction())
                .withAction(4, new DecodeAction())
                .withAction(1, new ForkAction())
                .withAction(1, new TruncateAction())
                .withAction(2, new ForkInsideBlockAction())
                .withAction(2, new TruncateIntoBlockAction())
                .withAction(2, new HoldAction())
                .withAction(2, new ReleaseAction())
                .withAction(1, new AttentionAction())
                .withAction(1, new PrefetchAction())
                .withAction(3, new HoldLayersAction())
                .withAction(2, new ReleaseLayersAction())
                .withAction(1, new CloseAction())
                .withMaxTransformations(30);
    }

    /** Prompts from a small alphabet built on a few shared stems, so prefixes collide often. */
    static Arbitrary<int[]> prompts() {
        Arbitrary<int[]> stems = Arbitraries.of(new int[] {1, 2, 3, 4, 5, 6, 7, 8}, new int[] {1, 2, 3, 4, 9, 9},
                new int[] {}, new int[] {5, 5, 5, 5});
        Arbitrary<int[]> tails = Arbitraries.integers().between(1, 6).array(int[].class).ofMaxSize(9);
        return Combinators.combine(stems, tails).as((a, b) -> {
            int[] p = new int[a.length + b.length];
            System.arraycopy(a, 0, p, 0, a.length);
            System.arraycopy(b, 0, p, a.length, b.length);
            return p;
        });
    }

    static Arbitrary<Sequence> anySequence(CacheModel m) {
        return Arbitraries.of(List.copyOf(m.sequences));
    }

    static final class OpenAction implements Action.Independent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return m.sequences.size() < 5;
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer() {
            return Combinators.combine(Arbitraries.of((byte) 0, (byte) 1), prompts()).as((salt, prompt) ->
                    Transformer.mutate("open salt " + salt + " " + java.util.Arrays.toString(prompt), m -> {
                        m.note("open " + salt + " " + java.util.Arrays.toString(prompt));
                        m.open(salt, prompt);
                    }));
        }
    }

    static final class DecodeAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return Combinators.combine(anySequence(m), Arbitraries.integers().between(1, 6).array(int[].class)
                    .ofMinSize(1).ofMaxSize(6)).as((s, tokens) ->
                    Transformer.mutate("decode " + s + " " + java.util.Arrays.toString(tokens), x -> {
                        x.note("decode " + s + " " + java.util.Arrays.toString(tokens));
                        x.decode(s, tokens);
                    }));
        }
    }

    static final class ForkAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty() && m.sequences.size() < 6;
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return anySequence(m).map(s -> Transformer.mutate("fork " + s, x -> {
                x.note("fork " + s);
                x.fork(s);
            }));
        }
    }

    static final class ForkInsideBlockAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty() && m.sequences.size() < 6;
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            Arbitrary<int[]> tokens = Arbitraries.integers().between(1, 6).array(int[].class).ofMinSize(1).ofMaxSize(5);
            return Combinators.combine(anySequence(m), tokens, tokens, Arbitraries.of(true, false)).as(
                    (s, pad, forkTokens, defer) -> Transformer.mutate("fork inside a block " + s + " pad "
                            + java.util.Arrays.toString(pad) + " fork appends " + java.util.Arrays.toString(forkTokens)
                            + (defer ? " (written later)" : ""), x -> {
                        x.note("fork inside block " + s + " " + java.util.Arrays.toString(pad) + " "
                                + java.util.Arrays.toString(forkTokens) + (defer ? " deferred" : ""));
                        x.forkInsideBlock(s, pad, forkTokens, defer);
                    }));
        }
    }

    static final class TruncateIntoBlockAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return m.sequences.stream().anyMatch(s -> s.length() >= 2);
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            Arbitrary<Sequence> longEnough = Arbitraries.of(m.sequences.stream().filter(s -> s.length() >= 2).toList());
            return Combinators.combine(longEnough, Arbitraries.integers().between(0, 7),
                    Arbitraries.integers().between(1, 6).array(int[].class).ofMinSize(1).ofMaxSize(6)).as(
                    (s, pick, tokens) -> Transformer.mutate("truncate into a block " + s + " (pick " + pick
                            + ") then write " + java.util.Arrays.toString(tokens), x -> {
                        x.note("truncate into block " + s + " " + pick + " " + java.util.Arrays.toString(tokens));
                        x.truncateIntoBlock(s, pick, tokens);
                    }));
        }
    }

    static final class TruncateAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return anySequence(m).flatMap(s -> Arbitraries.integers().between(0, s.length()).map(n ->
                    Transformer.mutate("truncate " + s + " to " + n, x -> {
                        x.note("truncate " + s + " to " + n);
                        x.truncate(s, n);
                    })));
        }
    }

    static final class HoldAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty() && m.held.size() < 3;
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return anySequence(m).flatMap(s -> {
                int n = s.blockCount();
                return Arbitraries.integers().between(0, n).flatMap(from -> Arbitraries.integers()
                        .between(from, Math.min(n, from + 3)).map(to ->
                                Transformer.mutate("ensureResident " + s + " [" + from + "," + to + ")", x -> {
                                    x.note("hold " + s + " " + from + " " + to);
                                    x.hold(s, from, to);
                                })));
            });
        }
    }

    /** Layer-range residency: some layers of a few blocks, read back through the handle. */
    static final class HoldLayersAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty() && m.heldLayers.size() < 3;
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            int layers = CacheModel.LAYOUT.layers();
            return anySequence(m).flatMap(s -> {
                int n = s.blockCount();
                return Combinators.combine(Arbitraries.integers().between(0, n), Arbitraries.integers().between(0, 3),
                        Arbitraries.integers().between(0, layers - 1), Arbitraries.integers().between(1, layers))
                        .as((from, len, l0, span) -> {
                            int to = Math.min(n, from + len);
                            int l1 = Math.min(layers, l0 + span);
                            return Transformer.<CacheModel>mutate("ensureResident " + s + " blocks [" + from + "," + to
                                    + ") layers [" + l0 + "," + l1 + ")", x -> {
                                        x.note("hold layers " + s + " " + from + " " + to + " " + l0 + " " + l1);
                                        x.holdLayers(s, from, to, l0, l1);
                                    });
                        });
            });
        }
    }

    static final class ReleaseLayersAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.heldLayers.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return Arbitraries.integers().between(0, m.heldLayers.size() - 1).map(i ->
                    Transformer.mutate("release layer handle " + i, x -> {
                        x.note("release layers " + i);
                        x.releaseLayers(i);
                    }));
        }
    }

    static final class ReleaseAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.held.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return Arbitraries.integers().between(0, m.held.size() - 1).map(i ->
                    Transformer.mutate("release handle " + i, x -> {
                        x.note("release " + i);
                        x.release(i);
                    }));
        }
    }

    static final class AttentionAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return m.sequences.stream().anyMatch(s -> s.blockCount() > 0);
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            Arbitrary<Sequence> withBlocks = Arbitraries.of(m.sequences.stream().filter(s -> s.blockCount() > 0)
                    .toList());
            return withBlocks.flatMap(s -> Combinators.combine(Arbitraries.integers().between(0, s.blockCount() - 1),
                    Arbitraries.doubles().between(0, 4)).as((b, mass) ->
                    Transformer.mutate("attention " + s + " block " + b + " mass " + mass, x -> {
                        x.note("attention " + s + " " + b);
                        x.manager.reportAttention(s, b, mass);
                        x.manager.endStep();
                    })));
        }
    }

    static final class PrefetchAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return anySequence(m).map(s -> Transformer.mutate("prefetch " + s, x -> {
                x.note("prefetch " + s);
                x.manager.prefetch(AccessPlan.allBlocksOf(s.id()));
            }));
        }
    }

    static final class CloseAction implements Action.Dependent<CacheModel> {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.sequences.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<CacheModel>> transformer(CacheModel m) {
            return anySequence(m).map(s -> Transformer.mutate("close " + s, x -> {
                x.note("close " + s);
                x.close(s);
            }));
        }
    }
}
