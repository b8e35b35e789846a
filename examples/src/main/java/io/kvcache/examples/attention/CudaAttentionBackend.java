package io.kvcache.examples.attention;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.LongByReference;
import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * Attention on the GPU over blocks pinned in a CUDA device tier: the paged decode-attention
 * kernel ({@code paged_attention.cu}) reads K and V through the handle's block table of device
 * addresses and folds the window's positions, one after another, into the running softmax state
 * of each head, which goes to the device before the launch and comes back after it. The rest of
 * the model stays on the CPU.
 *
 * <p>Per fold: three small host-to-device copies (query, block table, state), one launch, a
 * synchronize and one device-to-host copy; nothing is allocated once the block table has grown
 * to the sequence. Does not keep per-block attention mass. Not thread-safe.
 */
public final class CudaAttentionBackend implements AttentionBackend {
    private static final int MAX_HEAD_SIZE = 1024;
    private static final int PARAMS = 13;

    private final CudaContext context;
    private final CuLib cu = Cuda.driver();
    private final long module;
    private final long function;
    private final int heads;
    private final int headSize;
    private final int threads;
    private final float[] state;
    private final Memory hostQ;
    private final Memory hostState;
    private final long deviceQ;
    private final long deviceState;
    private Memory hostTable;
    private long deviceTable;
    private int tableCapacity;
    private final Memory values = new Memory(PARAMS * 8L);
    private final Memory pointers = new Memory(PARAMS * (long) Native.POINTER_SIZE);
    private boolean closed;

    /**
     * Loads the kernel into the context and allocates its buffers.
     *
     * @param context  the device whose tier holds the blocks
     * @param heads    query heads
     * @param headSize floats per head, at most 1024
     */
    public CudaAttentionBackend(CudaContext context, int heads, int headSize) {
        if (headSize < 1 || headSize > MAX_HEAD_SIZE) {
            throw new IllegalArgumentException("head size " + headSize + " outside [1, " + MAX_HEAD_SIZE + "]");
        }
        this.context = context;
        this.heads = heads;
        this.headSize = headSize;
        this.threads = (headSize + 31) / 32 * 32;
        String target = context.computeMajor() >= 9 ? "compute_90" : "compute_75";
        byte[] ptx = resource("paged_attention." + target + ".ptx");
        Memory image = new Memory(ptx.length + 1L);
        image.write(0, ptx, 0, ptx.length);
        image.setByte(ptx.length, (byte) 0);
        context.makeCurrent();
        LongByReference ref = new LongByReference();
        context.check(cu.cuModuleLoadData(ref, image), "cuModuleLoadData(paged_attention." + target + ".ptx)");
        module = ref.getValue();
        context.check(cu.cuModuleGetFunction(ref, module, "kv_decode_attention_fold"), "cuModuleGetFunction");
        function = ref.getValue();
        state = new float[heads * (headSize + 2)];
        hostQ = new Memory((long) heads * headSize * Float.BYTES);
        hostState = new Memory((long) state.length * Float.BYTES);
        deviceQ = context.allocate(hostQ.size());
        deviceState = context.allocate(hostState.size());
        for (int i = 0; i < PARAMS; i++) {
            pointers.setPointer((long) i * Native.POINTER_SIZE, values.share(i * 8L));
        }
    }

    @Override
    public String name() {
        return "cuda (" + context.deviceName() + ")";
    }

    @Override
    public boolean supports(boolean topTierHostAccessible) {
        return !topTierHostAccessible;
    }

    @Override
    public void fold(KvLayout layout, int layer, float[] q, ResidencyHandle blocks, int fromPos, int toPos,
                     boolean descending, AttentionAccumulator acc) {
        if (toPos <= fromPos) {
            return;
        }
        if (acc.tracksBlocks()) {
            throw new IllegalStateException("the CUDA attention backend does not keep per-block attention mass");
        }
        context.makeCurrent();
        // addresses of the layer's slices: the handle may make only this layer resident
        long[] table = blocks.blockTable(layer);
        long layerBase = BlockLayoutDescriptor.layerOffset(layout, layer);
        if (table.length > tableCapacity) {
            if (deviceTable != 0) {
                context.free(deviceTable);
            }
            tableCapacity = Math.max(table.length, tableCapacity * 2);
            hostTable = new Memory(tableCapacity * 8L);
            deviceTable = context.allocate(hostTable.size());
        }
        hostTable.write(0, table, 0, table.length);
        hostQ.write(0, q, 0, heads * headSize);
        acc.exportState(state);
        hostState.write(0, state, 0, state.length);
        context.check(cu.cuMemcpyHtoD_v2(deviceTable, Pointer.nativeValue(hostTable), table.length * 8L), "cuMemcpyHtoD");
        context.check(cu.cuMemcpyHtoD_v2(deviceQ, Pointer.nativeValue(hostQ), hostQ.size()), "cuMemcpyHtoD");
        context.check(cu.cuMemcpyHtoD_v2(deviceState, Pointer.nativeValue(hostState), hostState.size()), "cuMemcpyHtoD");

        values.setLong(0, deviceQ);
        values.setLong(8, deviceTable);
        values.setInt(16, blocks.fromBlock());
        values.setInt(24, fromPos);
        values.setInt(32, toPos);
        values.setInt(40, descending ? 1 : 0);
        values.setInt(48, layout.blockTokens());
        values.setInt(56, headSize);
        values.setInt(64, heads / layout.kvHeads());
        values.setLong(72, BlockLayoutDescriptor.tokenOffset(layout, layer, BlockLayoutDescriptor.K, 0) - layerBase);
        values.setLong(80, BlockLayoutDescriptor.tokenOffset(layout, layer, BlockLayoutDescriptor.V, 0) - layerBase);
        values.setLong(88, layout.tokenLayerBytes());
        values.setLong(96, deviceState);
        context.check(cu.cuLaunchKernel(function, heads, 1, 1, threads, 1, 1, 0, 0L, pointers, Pointer.NULL),
                "cuLaunchKernel(kv_decode_attention_fold)");
        context.check(cu.cuCtxSynchronize(), "cuCtxSynchronize after kv_decode_attention_fold");
        context.check(cu.cuMemcpyDtoH_v2(Pointer.nativeValue(hostState), deviceState, hostState.size()), "cuMemcpyDtoH");
        hostState.read(0, state, 0, state.length);
        acc.importState(state);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        context.makeCurrent();
        context.free(deviceQ);
        context.free(deviceState);
        if (deviceTable != 0) {
            context.free(deviceTable);
        }
        cu.cuModuleUnload(module);
    }

    private static byte[] resource(String name) {
        try (InputStream in = CudaAttentionBackend.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("PTX resource " + name + " missing from the examples jar");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading PTX resource " + name, e);
        }
    }
}
