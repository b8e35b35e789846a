package io.kvcache.tiers.manager;

import io.kvcache.core.InvalidHandleException;
import io.kvcache.core.KvCacheManager;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.Sequence;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.DType;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.tiers.host.MmapHostTier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;

/**
 * A child JVM for {@link ManagerCorrectnessRegressionTest}: uses residency handles of a manager
 * whose top tier is {@link MmapHostTier} (memory that is unmapped when the tier closes) after or
 * during {@link KvCacheManager#close()}. Touching unmapped memory kills the JVM with SIGSEGV,
 * which the parent sees as an exit status instead of losing its own JVM.
 *
 * <p>Arguments: {@code read|write|view|blockTable|address} (one handle operation after close)
 * or {@code race ROUNDS SEED} (close while engine threads write and read through their handles).
 * Exit status 0: every operation was refused with {@link InvalidHandleException}; 3: some
 * operation failed otherwise or returned normally (printed); anything else: the JVM died.
 */
public final class ClosedManagerChild {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 8, DType.FP16, 4);
    static final byte[] SALT = {4, 2};

    private ClosedManagerChild() {
    }

    public static void main(String[] args) throws Exception {
        int status = switch (args[0]) {
            case "race" -> race(Integer.parseInt(args[1]), Long.parseLong(args[2]));
            default -> afterClose(args[0]);
        };
        System.out.flush();
        System.exit(status);
    }

    static KvCacheManager manager() {
        return KvCacheManager.builder(LAYOUT)
                .modelId("closed-manager")
                .tier(new MmapHostTier("top", LAYOUT, 16 * LAYOUT.blockBytes()))
                .tier(new MmapHostTier("lower", LAYOUT, 16 * LAYOUT.blockBytes()))
                .build();
    }

    private static int afterClose(String op) {
        KvCacheManager m = manager();
        Sequence s = m.open(SALT, new int[] {1, 2, 3, 4, 5, 6});
        ResidencyHandle h = m.ensureResident(s, 0, 2);
        h.await();
        MemorySegment src = Arena.ofAuto().allocate(LAYOUT.tokenLayerBytes());
        h.write(1, 0, src);
        m.close();
        System.out.println("manager closed; calling ResidencyHandle." + op);
        System.out.flush();
        try {
            switch (op) {
                case "read" -> h.read(0, 0, Arena.ofAuto().allocate(LAYOUT.blockBytes()));
                case "write" -> h.write(1, 0, src);
                case "view" -> {
                    // never touched: a view of unmapped memory would crash this JVM when used
                    MemorySegment v = h.view(0);
                    System.out.println("WRONG " + op + " returned a segment of " + v.byteSize() + " bytes");
                    return 3;
                }
                case "blockTable" -> {
                    long[] t = h.blockTable();
                    System.out.println("WRONG " + op + " returned addresses " + java.util.Arrays.toString(t));
                    return 3;
                }
                case "address" -> {
                    long a = h.address(0);
                    System.out.println("WRONG " + op + " returned address " + a);
                    return 3;
                }
                default -> throw new IllegalArgumentException("unknown operation " + op);
            }
            System.out.println("WRONG " + op + " returned normally after close");
            return 3;
        } catch (InvalidHandleException e) {
            System.out.println("OK " + op + ": " + e);
            return 0;
        } catch (RuntimeException e) {
            System.out.println("WRONG " + op + " threw " + e);
            return 3;
        }
    }

    /** Each round: four engine threads write and read through their handles while the manager closes. */
    private static int race(int rounds, long seed) throws InterruptedException {
        Random r = new Random(seed);
        ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
        long ops = 0;
        for (int round = 0; round < rounds; round++) {
            KvCacheManager m = manager();
            int threads = 4;
            List<ResidencyHandle> handles = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Sequence s = m.open(new byte[] {(byte) t}, new int[] {t, t + 1, t + 2, t + 3, t + 4, t + 5});
                ResidencyHandle h = m.ensureResident(s, 0, 2);
                h.await();
                handles.add(h);
            }
            CountDownLatch started = new CountDownLatch(threads);
            long[] counts = new long[threads];
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                ResidencyHandle h = handles.get(t);
                workers.add(Thread.ofPlatform().name("engine-" + t).start(() -> {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment token = arena.allocate(LAYOUT.tokenLayerBytes());
                        MemorySegment block = arena.allocate(LAYOUT.blockBytes());
                        token.fill((byte) (id + 1));
                        started.countDown();
                        long n = 0;
                        while (true) {
                            try {
                                // block 1 is private and partial: writable; block 0 is read
                                h.write(1, BlockLayoutDescriptor.tokenOffset(LAYOUT, (int) (n % 2),
                                        (int) (n / 2 % 2), (int) (n % LAYOUT.blockTokens())), token);
                                h.read(0, 0, block);
                                h.read(1, 0, block);
                                n++;
                            } catch (InvalidHandleException e) {
                                break;
                            } catch (RuntimeException e) {
                                wrong.add("engine thread " + id + " after " + n + " writes: " + e);
                                break;
                            }
                        }
                        counts[id] = n;
                    }
                }));
            }
            started.await();
            Thread.sleep(r.nextInt(3));
            m.close();
            for (Thread w : workers) {
                w.join();
            }
            for (long c : counts) {
                ops += c;
            }
        }
        System.out.println("race: " + rounds + " rounds, " + ops + " handle operations, " + wrong.size() + " wrong");
        for (String w : wrong) {
            System.out.println("WRONG " + w);
        }
        return wrong.isEmpty() ? 0 : 3;
    }
}
