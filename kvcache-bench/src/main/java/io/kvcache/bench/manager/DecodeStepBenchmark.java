package io.kvcache.bench.manager;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.tiers.device.SimulatedDeviceTier;
import io.kvcache.tiers.host.MmapHostTier;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The manager's per-step cost, without data movement: making every block of a sequence resident
 * when it already is (the steady state of a decode step that fits), and an unresident window
 * that forces demotion and promotion planning. Run with {@code -prof gc} to see allocation per
 * step. The baseline in the same run is {@link #baselineEmptyLock()}: one lock round trip.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class DecodeStepBenchmark {
    @Param({"64"})
    int blocks;

    private KvCacheManager manager;
    private Sequence sequence;
    private final Object lock = new Object();
    private int counter;

    @Setup(Level.Trial)
    public void setUp() {
        KvLayout layout = new KvLayout(32, 8, 128, DType.BF16, 16);
        manager = KvCacheManager.builder(layout)
                .tier(new SimulatedDeviceTier(layout, (long) blocks * layout.blockBytes()))
                .tier(new MmapHostTier(layout, 2L * blocks * layout.blockBytes()))
                .build();
        int[] prompt = new int[blocks * layout.blockTokens()];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = i;
        }
        sequence = manager.open(new byte[0], prompt);
        try (ResidencyHandle h = manager.ensureResident(sequence)) {
            h.await();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        manager.close();
    }

    /** Every block already resident: plan nothing, pin, unpin. */
    @Benchmark
    public long ensureResidentAllResident() {
        try (ResidencyHandle h = manager.ensureResident(sequence)) {
            h.await();
            return h.address(0);
        }
    }

    /** One lock round trip, the floor of any call into the manager. */
    @Benchmark
    public int baselineEmptyLock() {
        synchronized (lock) {
            return ++counter;
        }
    }
}
