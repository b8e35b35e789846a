package io.kvcache.nativ.cuda;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.LongByReference;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The block copy kernels ({@code kv_copy.cu}) loaded into one context from their PTX resource:
 * the Hopper build on compute capability 9.x and up, the portable build otherwise. The driver
 * compiles the PTX when the module loads, so no CUDA toolkit is needed at run time.
 *
 * <p>Each launch copies a batch of blocks given as (source address, destination address) pairs
 * in device memory, CTAs taking pieces of 16 KiB from a work counter in the order of the pairs;
 * see {@link Launch}.
 */
public final class CopyKernels {

    /** Threads per CTA, as compiled into the kernels. */
    public static final int THREADS = 256;
    /** Bytes one CTA copies per step: 256 threads x 4 loads x 16 bytes. */
    public static final int PIECE_BYTES = 16384;
    /** Bytes each pair takes in the descriptor array: two 64-bit addresses. */
    public static final int PAIR_BYTES = 16;
    /** Addresses and block sizes must be multiples of this (the kernels move 16-byte vectors). */
    public static final int ALIGNMENT = 16;

    private final CudaContext context;
    private final long module;
    private final long gather;
    private final long scatter;
    private final long deviceToDevice;
    private final String target;

    private CopyKernels(CudaContext context, long module, long gather, long scatter, long deviceToDevice,
                        String target) {
        this.context = context;
        this.module = module;
        this.gather = gather;
        this.scatter = scatter;
        this.deviceToDevice = deviceToDevice;
        this.target = target;
    }

    static CopyKernels load(CudaContext context) {
        String target = context.computeMajor() >= 9 ? "compute_90" : "compute_75";
        byte[] ptx = resource("kv_copy." + target + ".ptx");
        Memory image = new Memory(ptx.length + 1L);
        image.write(0, ptx, 0, ptx.length);
        image.setByte(ptx.length, (byte) 0);
        context.makeCurrent();
        CuLib cu = Cuda.driver();
        LongByReference m = new LongByReference();
        context.check(cu.cuModuleLoadData(m, image), "cuModuleLoadData(kv_copy." + target + ".ptx)");
        long module = m.getValue();
        return new CopyKernels(context, module, function(context, module, "kv_gather_blocks"),
                function(context, module, "kv_scatter_blocks"), function(context, module, "kv_copy_device_blocks"),
                target);
    }

    private static long function(CudaContext context, long module, String name) {
        LongByReference f = new LongByReference();
        context.check(Cuda.driver().cuModuleGetFunction(f, module, name), "cuModuleGetFunction(" + name + ")");
        return f.getValue();
    }

    static byte[] resource(String name) {
        try (InputStream in = CopyKernels.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("PTX resource " + name + " missing from the kvcache-native jar");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading PTX resource " + name, e);
        }
    }

    /** @return the kernel copying pinned host blocks to device blocks */
    public long gather() {
        return gather;
    }

    /** @return the kernel copying device blocks to pinned host blocks */
    public long scatter() {
        return scatter;
    }

    /** @return the kernel copying device blocks to device blocks */
    public long deviceToDevice() {
        return deviceToDevice;
    }

    /** @return the PTX target loaded, e.g. "compute_90" */
    public String target() {
        return target;
    }

    /** @return the context the module lives in */
    public CudaContext context() {
        return context;
    }

    /** @return the {@code CUmodule} handle */
    public long module() {
        return module;
    }

    /**
     * Reusable kernel-parameter block for launches from one thread (or under one lock): filling
     * it allocates nothing, and the driver copies parameters during the launch call, so it may
     * be refilled as soon as {@link #launch} returns.
     */
    public static final class Launch {
        private final Memory values = new Memory(32);
        private final Memory pointers = new Memory(5L * Native.POINTER_SIZE);

        public Launch() {
            pointers.setPointer(0, values.share(0));
            pointers.setPointer(Native.POINTER_SIZE, values.share(8));
            pointers.setPointer(2L * Native.POINTER_SIZE, values.share(16));
            pointers.setPointer(3L * Native.POINTER_SIZE, values.share(20));
            pointers.setPointer(4L * Native.POINTER_SIZE, values.share(24));
        }

        /**
         * Enqueues one copy of {@code blocks} blocks.
         *
         * @param kernel      one of {@link #gather()}, {@link #scatter()}, {@link #deviceToDevice()}
         * @param pairs       device address of {@code blocks} (source, destination) address pairs
         * @param counter     device address of a 32-bit work counter holding 0 when the kernel starts
         * @param blockBytes  bytes per block, a multiple of 16
         * @param blocks      number of pairs
         * @param maxCtas     upper bound on the grid (the grid strides over all pieces)
         * @param stream      stream to launch on
         */
        public void launch(CudaContext context, long kernel, long pairs, long counter, long blockBytes, int blocks,
                           int maxCtas, long stream) {
            long piecesPerBlock = (blockBytes + PIECE_BYTES - 1) / PIECE_BYTES;
            long totalPieces = piecesPerBlock * blocks;
            if (totalPieces > 0xFFFF_FFFFL) {
                throw new IllegalArgumentException("batch of " + blocks + " blocks of " + blockBytes
                        + " bytes is too large for one launch");
            }
            values.setLong(0, pairs);
            values.setLong(8, blockBytes);
            values.setInt(16, (int) piecesPerBlock);
            values.setInt(20, (int) totalPieces);
            values.setLong(24, counter);
            int grid = (int) Math.max(1, Math.min(totalPieces, maxCtas));
            context.check(Cuda.driver().cuLaunchKernel(kernel, grid, 1, 1, THREADS, 1, 1, 0, stream, pointers,
                    Pointer.NULL), "cuLaunchKernel");
        }
    }
}
