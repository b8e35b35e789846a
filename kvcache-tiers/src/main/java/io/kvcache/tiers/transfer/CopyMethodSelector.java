package io.kvcache.tiers.transfer;

import io.kvcache.nativ.cuda.CudaContext;
import java.util.EnumMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Which {@link CopyMethod} a batch uses, per direction and block size.
 *
 * <p>Unless a method is fixed, the choice is measured: each available method moves scattered
 * blocks between scratch buffers and the fastest wins ({@link #choose}, {@link #chooseForLink}).
 * A measurement moves hundreds of MiB, so it never runs on a submitting thread: a batch of a
 * size not yet measured gets a {@linkplain #provisional provisional} method at once and asks for
 * the measurement on the selector's own calibration thread; batches submitted after it lands
 * use the measured method. Sizes known in advance can be measured while the engine is built
 * ({@link CudaTransferEngine.Builder#calibrate}).
 *
 * <p>Thread safety: every method may be called from any thread. {@link #select} never waits for
 * a measurement; {@link #methodFor} and {@link #calibrate} measure on the caller's thread when
 * needed, one measurement at a time.
 */
final class CopyMethodSelector implements AutoCloseable {
    /** Fraction of the kernel's rate within which the copy engines are preferred. */
    static final double COPY_ENGINE_MARGIN = 0.03;
    /**
     * The same for the link, where the two directions' rates are measured one at a time: kernels
     * in both directions at once reach only 0.72-0.82 of the both-ways ceiling where copy
     * engines reach 0.93-1.0 (64 KiB blocks on the H200 host, results/link-speed-layer-slices.md),
     * which trials of one direction cannot see, and those trials measured the kernel up to 13%
     * faster at 64 KiB in one run and 3% slower in the next.
     */
    static final double LINK_COPY_ENGINE_MARGIN = 0.15;
    /**
     * Block size from which the provisional method is the driver's batched copy: on the H200 host
     * it measured faster than the kernel from 64 KiB up, and the kernel faster below
     * (kvcache-bench results/link-speed.md).
     */
    static final long PROVISIONAL_BATCH_MEMCPY_FROM = 64 << 10;

    private static final System.Logger LOG = System.getLogger(CopyMethodSelector.class.getName());

    /** What the selector asks of the device: which methods can run, and how fast they copy. */
    interface Probe {
        /**
         * @param peer the other device's context for a copy between two devices, else null
         * @return why {@code m} cannot run here, or null if it can
         */
        String unavailable(CopyMethod m, CudaContext peer);

        /** @return GB/s per available method for a direction and block size, measured on scratch memory */
        Map<CopyMethod, Double> measure(Direction dir, long blockBytes);
    }

    private final Probe probe;
    private final CopyMethod fixedMethod;
    private final String threadName;
    private final Map<Long, CopyMethod> chosen = new ConcurrentHashMap<>();
    private final Map<Long, Map<CopyMethod, Double>> measurements = new ConcurrentHashMap<>();
    private final Set<Long> requested = ConcurrentHashMap.newKeySet();
    /** One measurement at a time: they would disturb each other's timings. */
    private final ReentrantLock measuring = new ReentrantLock();
    private ExecutorService calibrator;
    private volatile boolean closed;

    /**
     * @param fixedMethod the method of every batch, or null to choose by measurement
     * @param threadName  name of the calibration thread, started when the first measurement is asked for
     */
    CopyMethodSelector(Probe probe, CopyMethod fixedMethod, String threadName) {
        this.probe = probe;
        this.fixedMethod = fixedMethod;
        this.threadName = threadName;
    }

    /**
     * The method for a batch on {@code route} when the caller named none. Never measures.
     *
     * @throws UnsupportedOperationException if the fixed method cannot run on the route
     */
    CopyMethod select(CudaRoute route, long blockBytes) {
        if (fixedMethod != null) {
            return checkRunnable(fixedMethod, route);
        }
        if (route.crossesDevices()) {
            // peer copies are rare (rebalancing); not worth a calibration
            return firstAvailable(route.peer(), CopyMethod.KERNEL, CopyMethod.BATCH_MEMCPY);
        }
        CopyMethod m = chosen.get(key(route.direction(), blockBytes));
        if (m != null) {
            return m;
        }
        calibrateInBackground(route.direction(), blockBytes);
        return provisional(blockBytes);
    }

    /**
     * The method for a batch whose byte range is not 16-byte aligned, which the kernel cannot
     * copy: the driver's batched copy, else one copy per block. Never measures.
     */
    CopyMethod unaligned(CudaRoute route) {
        return probe.unavailable(CopyMethod.BATCH_MEMCPY, route.peer()) == null ? CopyMethod.BATCH_MEMCPY
                : CopyMethod.PER_BLOCK;
    }

    /**
     * @return {@code m}
     * @throws UnsupportedOperationException if {@code m} cannot run on the route
     */
    CopyMethod checkRunnable(CopyMethod m, CudaRoute route) {
        String why = probe.unavailable(m, route.peer());
        if (why != null) {
            throw new UnsupportedOperationException(m + " cannot copy from '" + route.source().name() + "' to '"
                    + route.destination().name() + "': " + why);
        }
        return m;
    }

    /** @return the method used until a size is measured: the kernel for small blocks, copy engines for large */
    CopyMethod provisional(long blockBytes) {
        return blockBytes < PROVISIONAL_BATCH_MEMCPY_FROM
                ? firstAvailable(null, CopyMethod.KERNEL, CopyMethod.BATCH_MEMCPY)
                : firstAvailable(null, CopyMethod.BATCH_MEMCPY, CopyMethod.KERNEL);
    }

    private CopyMethod firstAvailable(CudaContext peer, CopyMethod first, CopyMethod second) {
        return probe.unavailable(first, peer) == null ? first
                : probe.unavailable(second, peer) == null ? second
                : CopyMethod.PER_BLOCK;
    }

    /** @return whether a measured choice exists for the direction and size (or the method is fixed) */
    boolean measured(Direction dir, long blockBytes) {
        return fixedMethod != null || chosen.containsKey(key(dir, blockBytes));
    }

    /**
     * The method used for a direction and block size, measured now if it has not been: both
     * directions over the link are measured together and get one method.
     */
    CopyMethod methodFor(Direction dir, long blockBytes) {
        if (fixedMethod != null) {
            return fixedMethod;
        }
        CopyMethod m = chosen.get(key(dir, blockBytes));
        return m != null ? m : measureChoice(dir, blockBytes);
    }

    private CopyMethod measureChoice(Direction dir, long blockBytes) {
        measuring.lock();
        try {
            long key = key(dir, blockBytes);
            CopyMethod m = chosen.get(key);
            if (m != null) {
                return m;
            }
            if (dir == Direction.DEVICE_TO_DEVICE) {
                chosen.putIfAbsent(key, choose(calibrate(dir, blockBytes)));
            } else {
                CopyMethod link = chooseForLink(calibrate(Direction.HOST_TO_DEVICE, blockBytes),
                        calibrate(Direction.DEVICE_TO_HOST, blockBytes));
                chosen.putIfAbsent(key(Direction.HOST_TO_DEVICE, blockBytes), link);
                chosen.putIfAbsent(key(Direction.DEVICE_TO_HOST, blockBytes), link);
            }
            return chosen.get(key);
        } finally {
            measuring.unlock();
        }
    }

    /**
     * Measures the available methods for a direction and block size, and keeps the rates for
     * {@link #measuredRates}; does not change the choice.
     *
     * @return GB/s per method
     */
    Map<CopyMethod, Double> calibrate(Direction dir, long blockBytes) {
        measuring.lock();
        try {
            Map<CopyMethod, Double> rates = probe.measure(dir, blockBytes);
            measurements.put(key(dir, blockBytes), Map.copyOf(rates));
            return rates;
        } finally {
            measuring.unlock();
        }
    }

    /** @return the rates (GB/s) measured when choosing the method for a direction and block size, if any */
    Map<CopyMethod, Double> measuredRates(Direction dir, long blockBytes) {
        return measurements.getOrDefault(key(dir, blockBytes), Map.of());
    }

    private void calibrateInBackground(Direction dir, long blockBytes) {
        // the two directions over the link are measured together
        Direction asked = dir == Direction.DEVICE_TO_DEVICE ? dir : Direction.HOST_TO_DEVICE;
        if (closed || !requested.add(key(asked, blockBytes))) {
            return;
        }
        ExecutorService ex;
        synchronized (this) {
            if (closed) {
                return;
            }
            if (calibrator == null) {
                calibrator = Executors.newSingleThreadExecutor(
                        r -> Thread.ofPlatform().daemon().name(threadName).unstarted(r));
            }
            ex = calibrator;
        }
        ex.execute(() -> {
            if (closed) {
                return;
            }
            try {
                measureChoice(asked, blockBytes);
            } catch (RuntimeException e) {
                // keep the provisional method rather than measuring again for every batch
                CopyMethod fallback = provisional(blockBytes);
                LOG.log(System.Logger.Level.WARNING, "measuring copy methods for " + blockBytes + "-byte blocks ("
                        + asked + ") failed, keeping " + fallback + ": " + e);
                chosen.putIfAbsent(key(asked, blockBytes), fallback);
                if (asked == Direction.HOST_TO_DEVICE) {
                    chosen.putIfAbsent(key(Direction.DEVICE_TO_HOST, blockBytes), fallback);
                }
            }
        });
    }

    /**
     * One method for both directions over the link. Kernels in one direction and copy engines in
     * the other measured far slower together than either alone (64 KiB blocks on the H200 host:
     * 50 GB/s both ways, against 70 for two kernels and 82 for copy engines), so the choice is
     * made on the sum of the two directions' rates, with the copy engines preferred within
     * {@link #LINK_COPY_ENGINE_MARGIN}.
     */
    static CopyMethod chooseForLink(Map<CopyMethod, Double> up, Map<CopyMethod, Double> down) {
        Map<CopyMethod, Double> sum = new EnumMap<>(CopyMethod.class);
        for (Map.Entry<CopyMethod, Double> e : up.entrySet()) {
            Double d = down.get(e.getKey());
            if (d != null) {
                sum.put(e.getKey(), e.getValue() + d);
            }
        }
        return sum.isEmpty() ? CopyMethod.PER_BLOCK : choose(sum, LINK_COPY_ENGINE_MARGIN);
    }

    /**
     * Picks the fastest method, except that the driver's batched copy wins when it is within
     * {@link #COPY_ENGINE_MARGIN} of the kernel: copy engines leave the SMs to the inference
     * engine's kernels and overlap better with the other direction (measured on the H200 host:
     * 93 GB/s both ways at 256 KiB against 74 for two kernels, results/link-speed.md).
     */
    static CopyMethod choose(Map<CopyMethod, Double> rates) {
        return choose(rates, COPY_ENGINE_MARGIN);
    }

    /** {@link #choose(Map)} with the copy engines preferred within {@code margin} of the kernel's rate. */
    static CopyMethod choose(Map<CopyMethod, Double> rates, double margin) {
        CopyMethod best = CopyMethod.PER_BLOCK;
        double bestRate = -1;
        for (Map.Entry<CopyMethod, Double> e : rates.entrySet()) {
            if (e.getValue() > bestRate) {
                best = e.getKey();
                bestRate = e.getValue();
            }
        }
        Double batch = rates.get(CopyMethod.BATCH_MEMCPY);
        if (best == CopyMethod.KERNEL && batch != null && batch >= bestRate * (1 - margin)) {
            return CopyMethod.BATCH_MEMCPY;
        }
        return best;
    }

    private static long key(Direction dir, long blockBytes) {
        return ((long) dir.ordinal() << 56) | blockBytes;
    }

    /** Drops measurements not yet started and waits for the one running, if any. */
    @Override
    public void close() {
        ExecutorService ex;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            ex = calibrator;
        }
        if (ex == null) {
            return;
        }
        ex.shutdown();
        boolean interrupted = false;
        while (true) {
            try {
                if (ex.awaitTermination(1, TimeUnit.MINUTES)) {
                    break;
                }
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
