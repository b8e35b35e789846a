package io.kvcache.tiers;

import io.kvcache.nativ.cuda.CudaContext;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/** Helpers shared by the GPU tests: random block contents that a seed regenerates. */
public final class GpuTestSupport {
    private GpuTestSupport() {
    }

    /** @return the context of device 0 */
    public static CudaContext device0() {
        return CudaContext.device(0);
    }

    /** Fills a segment with bytes determined by {@code seed}, never all zeros. */
    public static void fillRandom(MemorySegment seg, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long n = seg.byteSize();
        long i = 0;
        for (; i + 8 <= n; i += 8) {
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, i, r.nextLong() | 1L);
        }
        for (; i < n; i++) {
            seg.set(ValueLayout.JAVA_BYTE, i, (byte) (r.nextInt(255) + 1));
        }
    }

    /** @return the first offset where {@code seg} differs from what {@link #fillRandom} writes for seed, or -1 */
    public static long mismatch(MemorySegment seg, long seed) {
        MemorySegment expected = MemorySegment.ofArray(new byte[(int) seg.byteSize()]);
        fillRandom(expected, seed);
        return seg.mismatch(expected);
    }
}
