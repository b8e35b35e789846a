package io.kvcache.examples.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.LayerNotResidentException;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.transfer.CpuTransferEngine;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.core.transfer.TransferEngine;
import io.kvcache.core.transfer.TransferHandle;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The per-layer gate without a GPU: a session's sealed blocks pushed down to a host tier, then
 * made resident layer by layer through a cache with a simulated device tier and the built-in
 * copy engine, each layer's copy started only when the test releases it: the gate (waiting on the
 * host, or the device gate falling back to the host for batches that are not CUDA ones) holds layer
 * {@code l} back until its copy is released and has landed, and then it is in place in every
 * block, byte for byte.
 */
class LayerGateTest {
    private static final KvLayout LAYOUT = new KvLayout(8, 2, 16, DType.FP32, 16);
    private static final int SESSION = 12;

    /** A cache whose layer-range requests copy one layer per copy, so that the test releases layers one by one. */
    private static KvCacheManager cache(TransferEngine engine) {
        return KvCacheManager.builder(LAYOUT).modelId("gate").layerCopyBytes(LAYOUT.layerBytes())
                .tier(new SimulatedDeviceTier("device", LAYOUT, 16 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier("host", LAYOUT, 64 * LAYOUT.blockBytes())).transferEngine(engine).build();
    }

    private static byte mark(int salt, int block, int layer) {
        return (byte) (1 + salt * 61 + block * 7 + layer * 13);
    }

    /** A sequence of full blocks, each layer of each block filled with its own byte, then sealed. */
    private static Sequence written(KvCacheManager cache, int salt, int blocks) {
        int[] prompt = new int[blocks * LAYOUT.blockTokens()];
        Arrays.setAll(prompt, i -> 1 + (i * 5 + salt) % 1000);
        Sequence s = cache.open(new byte[] {(byte) salt}, prompt);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment layer = a.allocate(LAYOUT.layerBytes());
            for (int b = 0; b < blocks; b++) {
                try (ResidencyHandle h = cache.ensureResident(s, b, b + 1)) {
                    h.await();
                    for (int l = 0; l < LAYOUT.layers(); l++) {
                        layer.fill(mark(salt, b, l));
                        h.write(b, l * LAYOUT.layerBytes(), layer);
                    }
                }
            }
        }
        s.markWritten(s.length());
        return s;
    }

    /**
     * The built-in copy engine, except that once {@link #hold} is set it starts a layer slice's
     * batch only when the test releases that layer: layers land exactly when the test says.
     */
    private static final class ReleasedLayers implements TransferEngine {
        private final CpuTransferEngine copies = CpuTransferEngine.withDefaults();
        private final ConcurrentHashMap<Integer, CompletableFuture<Void>> released = new ConcurrentHashMap<>();
        volatile boolean hold;

        private CompletableFuture<Void> release(int layer) {
            return released.computeIfAbsent(layer, l -> new CompletableFuture<>());
        }

        @Override
        public boolean supports(Tier source, Tier destination) {
            return true;
        }

        @Override
        public TransferHandle submit(TransferBatch batch) {
            if (!hold || batch.wholeSlots()) {
                return copies.submit(batch);
            }
            CompletableFuture<Void> done = release((int) (batch.offset() / LAYOUT.layerBytes()))
                    .thenCompose(v -> copies.submit(batch).completion());
            return TransferHandle.of(done, batch.bytes());
        }

        @Override
        public void close() {
            released.values().forEach(f -> f.complete(null));
            copies.close();
        }
    }

    /** The host-waiting gate, and the device-waiting one falling back to host waits for CPU copies. */
    static List<Arguments> gates() {
        Function<ResidencyHandle, LayerGate> host = h -> LayerGate.perLayer(List.of(h));
        Function<ResidencyHandle, LayerGate> device = h -> LayerGate.onDevice(List.of(h), 0L);
        return List.of(Arguments.of("perLayer", host), Arguments.of("onDevice", device));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("gates")
    void eachLayerTheGateLetsThroughIsInPlaceInEveryBlock(String name, Function<ResidencyHandle, LayerGate> gateOf)
            throws Exception {
        ReleasedLayers engine = new ReleasedLayers();
        try (KvCacheManager cache = cache(engine); Arena a = Arena.ofConfined()) {
            Sequence session = written(cache, 1, SESSION);
            Sequence other = written(cache, 2, SESSION);
            assertTrue(cache.awaitIdle(Duration.ofSeconds(30)));
            long below = cache.blockInfos().stream().filter(i -> i.tier() > 0).count();
            assertTrue(below >= SESSION - 4, "the other session pushed most of this one down: " + below + " below");
            engine.hold = true;
            MemorySegment got = a.allocate(LAYOUT.layerBytes());
            ExecutorService engineThread = Executors.newSingleThreadExecutor();
            try (ResidencyHandle h = cache.ensureResident(session, 0, SESSION, 0, LAYOUT.layers())) {
                LayerGate gate = gateOf.apply(h);
                for (int l = 0; l < LAYOUT.layers(); l++) {
                    int layer = l;
                    assertFalse(h.layerReady(l).isDone(), "layer " + l + " is held back");
                    Future<?> passed = engineThread.submit(() -> gate.beforeAttention(layer));
                    // a gate that does not wait returns at once; this one may return only after the release
                    assertThrows(TimeoutException.class, () -> passed.get(50, TimeUnit.MILLISECONDS),
                            "the gate let layer " + l + " through before its copy was released");
                    engine.release(l).complete(null);
                    passed.get(30, TimeUnit.SECONDS);
                    assertTrue(h.layerReady(l).isDone(), "layer " + l + " landed before the gate let it through");
                    for (int b = 0; b < SESSION; b++) {
                        h.read(b, l * LAYOUT.layerBytes(), got);
                        byte want = mark(1, b, l);
                        for (long o = 0; o < got.byteSize(); o++) {
                            if (got.get(ValueLayout.JAVA_BYTE, o) != want) {
                                throw new AssertionError("block " + b + " layer " + l + " byte " + o + ": "
                                        + got.get(ValueLayout.JAVA_BYTE, o) + " != " + want);
                            }
                        }
                    }
                }
            } finally {
                engineThread.shutdownNow();
            }
            other.close();
            session.close();
        }
    }

    @Test
    void aGateAskedForALayerOutsideItsHandlesRefusesByName() {
        try (KvCacheManager cache = cache(CpuTransferEngine.withDefaults())) {
            Sequence session = written(cache, 3, 4);
            try (ResidencyHandle h = cache.ensureResident(session, 0, 4, 2, 5)) {
                LayerGate gate = LayerGate.perLayer(List.of(h));
                gate.beforeAttention(2);
                LayerNotResidentException e = assertThrows(LayerNotResidentException.class,
                        () -> gate.beforeAttention(5));
                assertTrue(e.getMessage().contains("layer 5"), e.getMessage());
                assertEquals(2, h.fromLayer());
            }
            session.close();
        }
    }
}
