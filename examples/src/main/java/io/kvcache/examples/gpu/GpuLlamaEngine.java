package io.kvcache.examples.gpu;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import io.kvcache.core.layout.BlockLayoutDescriptor;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.nativ.cuda.CuLib;
import io.kvcache.nativ.cuda.Cuda;
import io.kvcache.nativ.cuda.CudaContext;
import java.util.Objects;

/**
 * A Llama-architecture forward pass entirely on the GPU over K/V in the cache's device-tier
 * blocks: embedding, per layer RMSNorm, the fused q|k|v projection (cuBLAS), rotary embedding
 * with K/V stored straight into the blocks' slots through the block table, paged attention, the
 * output projection with the residual add fused into the GEMM, RMSNorm, the fused gate|up
 * projection, SwiGLU, the down projection (residual fused), then the final RMSNorm, the
 * classifier and greedy sampling on the device.
 *
 * <p>Two entry points: {@link #prefill} runs n new tokens of one sequence at once (causal over its
 * cached prefix and themselves; in bf16 with head size 128 on tensor cores, else through the split
 * attention kernel), {@link #decode} runs one token of each of several sequences, each with its own
 * block table. The caller pins the blocks (the tail block included, for writing) and passes their
 * slot addresses; the {@link LayerGate} is asked before each layer stores K/V into the blocks and
 * attends over them.
 *
 * <p>All work goes to the context's legacy default stream; each call returns after the sampled
 * tokens are back on the host. Not thread-safe.
 */
public final class GpuLlamaEngine implements AutoCloseable {
    private static final float RMS_EPS = 1e-5f;
    private static final int DEC_TILE = 32;
    private static final int PREFILL_ROWS = 64;
    /** Two stages of 64-position K and V tiles of head size 128 (+8 padding), bf16: MM_SMEM of the kernel. */
    private static final int MMA_PREFILL_SHARED_BYTES = 2 * 2 * 64 * (128 + 8) * 2;

    private final CudaContext context;
    private final CuLib cu = Cuda.driver();
    private final GpuWeights w;
    private final EngineKernels k;
    private final Cublas blas;
    private final ModelShape s;
    private final KvLayout layout;
    private final Precision p;
    private final int maxRows;
    private final int maxSeqs;
    private final int maxBlocks;
    private final int splitTarget;
    private final boolean tensorCorePrefill;

    private final long x;
    private final long xn;
    private final long qkv;
    private final long qb;
    private final long att;
    private final long h13;
    private final long hs;
    private final long logits;
    private final long partial;
    private final long partialFloats;
    private final long dTokens;
    private final long dPos;
    private final long dRowSeq;
    private final long dLens;
    private final long dTables;
    private final long dArgmax;
    private final long dFreq;
    private final Memory hInts;
    private final Memory hTables;
    private final Memory hLogits;
    private int logitRows;
    private boolean closed;

    /**
     * @param weights   the model in VRAM
     * @param kernels   the engine's kernels in the same context
     * @param blas      a cuBLAS handle in the same context
     * @param layout    the cache's layout: the model's layers, KV heads and head size, the precision's K/V type
     * @param maxRows   most tokens one forward pass takes (prefill chunk, or decode batch)
     * @param maxSeqs   most sequences one decode step takes
     * @param maxBlocks most blocks of one sequence
     * @throws IllegalArgumentException when the layout does not fit the model
     */
    public GpuLlamaEngine(GpuWeights weights, EngineKernels kernels, Cublas blas, KvLayout layout, int maxRows,
                          int maxSeqs, int maxBlocks) {
        this.w = Objects.requireNonNull(weights, "weights");
        this.k = kernels;
        this.blas = blas;
        this.s = weights.shape();
        this.p = weights.precision();
        this.layout = layout;
        this.context = kernels.context();
        if (layout.layers() != s.layers() || layout.kvHeads() != s.kvHeads() || layout.headDim() != s.headSize()
                || layout.dtype() != p.kvType()) {
            throw new IllegalArgumentException("cache layout " + layout + " does not fit the model " + s + " in "
                    + p + " (K/V type " + p.kvType() + ")");
        }
        if (s.headSize() > 128 || s.heads() / s.kvHeads() * s.headSize() > 1024) {
            throw new IllegalArgumentException("head size " + s.headSize() + " with " + s.heads() / s.kvHeads()
                    + " query heads per KV head: the attention kernels take head size <= 128 and"
                    + " (heads / kvHeads) * head size <= 1024");
        }
        if (maxRows < 1 || maxSeqs < 1 || maxSeqs > maxRows || maxBlocks < 1) {
            throw new IllegalArgumentException("maxRows " + maxRows + ", maxSeqs " + maxSeqs + ", maxBlocks "
                    + maxBlocks + ": need 1 <= maxSeqs <= maxRows and maxBlocks >= 1");
        }
        this.maxRows = maxRows;
        this.maxSeqs = maxSeqs;
        this.maxBlocks = maxBlocks;
        this.splitTarget = 2 * context.multiprocessors();
        if (s.headSize() * p.bytes() % 16 != 0) {
            throw new IllegalArgumentException("head size " + s.headSize() + " in " + p
                    + ": the attention kernels move heads in 16-byte vectors");
        }
        this.tensorCorePrefill = p == Precision.BF16 && s.headSize() == 128;
        if (tensorCorePrefill) {
            context.makeCurrent();
            context.check(cu.cuFuncSetAttribute(kernels.prefillMmaBf16,
                    CuLib.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, MMA_PREFILL_SHARED_BYTES),
                    "cuFuncSetAttribute(attn_prefill_mma_bf16, max dynamic shared memory)");
        }
        long e = p.bytes();
        long r = maxRows;
        x = context.allocate(r * s.dim() * 4);
        xn = context.allocate(r * s.dim() * e);
        qkv = context.allocate(r * s.qkvDim() * 4);
        long qbRows = (r + PREFILL_ROWS - 1) / PREFILL_ROWS * PREFILL_ROWS;
        qb = tensorCorePrefill ? context.allocate(qbRows * s.dim() * 2) : 0;
        if (qb != 0) {
            context.check(cu.cuMemsetD8_v2(qb, (byte) 0, qbRows * s.dim() * 2), "cuMemsetD8");
        }
        att = context.allocate(r * s.dim() * e);
        h13 = context.allocate(r * 2L * s.hidden() * 4);
        hs = context.allocate(r * s.hidden() * e);
        logits = context.allocate((long) maxSeqs * s.vocab() * 4);
        partialFloats = (r + splitTarget + DEC_TILE) * s.heads() * (s.headSize() + 2L);
        partial = context.allocate(partialFloats * 4);
        dTokens = context.allocate(r * 4);
        dPos = context.allocate(r * 4);
        dRowSeq = context.allocate(r * 4);
        dLens = context.allocate(r * 4);
        dTables = context.allocate((long) maxSeqs * maxBlocks * 8);
        dArgmax = context.allocate((long) maxSeqs * 4);
        dFreq = context.allocate(s.headSize() / 2 * 4L);
        hInts = new Memory(r * 4);
        hTables = new Memory((long) maxSeqs * maxBlocks * 8);
        hLogits = new Memory((long) s.vocab() * 4);
        // llama2.c: 1 / powf(theta, i / headSize) for even i, in float
        float[] freq = new float[s.headSize() / 2];
        for (int i = 0; i < s.headSize(); i += 2) {
            freq[i / 2] = 1.0f / (float) Math.pow(s.ropeTheta(), i / (float) s.headSize());
        }
        Memory f = new Memory(freq.length * 4L);
        f.write(0, freq, 0, freq.length);
        toDevice(dFreq, f, freq.length * 4L);
    }

    /**
     * Runs {@code n} new tokens of one sequence, positions {@code [pos0, pos0 + n)}, in chunks of at
     * most {@code maxRows}; K/V of every position go into the blocks of {@code table}, whose entries
     * cover blocks {@code [0, (pos0 + n - 1) / blockTokens]} and hold positions {@code [0, pos0)} already.
     *
     * @param table slot addresses of the sequence's blocks, logical block 0 first
     * @return the greedy next token after the last one; {@link #logits(int)} row 0 holds its logits
     */
    public int prefill(int[] tokens, int from, int n, int pos0, long[] table, LayerGate gate) {
        Objects.checkFromIndexSize(from, n, tokens.length);
        if (n < 1) {
            throw new IllegalArgumentException("prefill of " + n + " tokens");
        }
        checkTable(table, pos0 + n);
        context.makeCurrent();
        hTables.write(0, table, 0, table.length);
        toDevice(dTables, hTables, table.length * 8L);
        int result = -1;
        for (int done = 0; done < n; ) {
            int rows = Math.min(maxRows, n - done);
            for (int i = 0; i < rows; i++) {
                hInts.setInt(i * 4L, checkToken(tokens[from + done + i]));
            }
            toDevice(dTokens, hInts, rows * 4L);
            for (int i = 0; i < rows; i++) {
                hInts.setInt(i * 4L, pos0 + done + i);
            }
            toDevice(dPos, hInts, rows * 4L);
            for (int i = 0; i < rows; i++) {
                hInts.setInt(i * 4L, 0);
            }
            toDevice(dRowSeq, hInts, rows * 4L);
            for (int i = 0; i < rows; i++) {
                hInts.setInt(i * 4L, pos0 + done + i + 1);
            }
            toDevice(dLens, hInts, rows * 4L);
            boolean last = done + rows == n;
            forward(rows, true, pos0 + done, pos0 + done + rows, gate, last ? 1 : 0);
            if (last) {
                result = sampled()[0];
            }
            done += rows;
        }
        return result;
    }

    /**
     * Runs one token of each sequence: sequence {@code i} has token {@code tokens[i]} at position
     * {@code positions[i]} and its blocks' slot addresses in {@code tables[i]}.
     *
     * @return the greedy next token of each sequence; {@link #logits(int)} row i holds its logits
     */
    public int[] decode(int[] tokens, int[] positions, long[][] tables, LayerGate gate) {
        int b = tokens.length;
        if (b < 1 || b > maxSeqs || positions.length != b || tables.length != b) {
            throw new IllegalArgumentException("decode of " + b + " sequences (" + positions.length + " positions, "
                    + tables.length + " tables); between 1 and " + maxSeqs);
        }
        context.makeCurrent();
        int maxLen = 0;
        for (int i = 0; i < b; i++) {
            checkTable(tables[i], positions[i] + 1);
            hTables.write((long) i * maxBlocks * 8, tables[i], 0, tables[i].length);
            maxLen = Math.max(maxLen, positions[i] + 1);
        }
        toDevice(dTables, hTables, (long) b * maxBlocks * 8);
        for (int i = 0; i < b; i++) {
            hInts.setInt(i * 4L, checkToken(tokens[i]));
        }
        toDevice(dTokens, hInts, b * 4L);
        for (int i = 0; i < b; i++) {
            hInts.setInt(i * 4L, positions[i]);
        }
        toDevice(dPos, hInts, b * 4L);
        for (int i = 0; i < b; i++) {
            hInts.setInt(i * 4L, i);
        }
        toDevice(dRowSeq, hInts, b * 4L);
        for (int i = 0; i < b; i++) {
            hInts.setInt(i * 4L, positions[i] + 1);
        }
        toDevice(dLens, hInts, b * 4L);
        forward(b, false, 0, maxLen, gate, b);
        return sampled();
    }

    private int checkToken(int t) {
        if (t < 0 || t >= s.vocab()) {
            throw new IllegalArgumentException("token " + t + " outside the vocabulary [0, " + s.vocab() + ")");
        }
        return t;
    }

    private void checkTable(long[] table, int length) {
        int need = (length - 1) / layout.blockTokens() + 1;
        if (table.length < need || table.length > maxBlocks) {
            throw new IllegalArgumentException("block table of " + table.length + " blocks for " + length
                    + " positions: needs " + need + ", at most " + maxBlocks);
        }
    }

    /**
     * @param prefill   rows are consecutive positions [posFrom, posTo) of sequence 0
     * @param maxLen    longest attended length (posTo for prefill)
     * @param outRows   rows whose logits are computed: the last row (prefill, 1) or all rows (decode)
     */
    private void forward(int rows, boolean prefill, int posFrom, int maxLen, LayerGate gate, int outRows) {
        final int dim = s.dim();
        final int e = p.bytes();
        final int act = p.cudaType();
        final int bf16 = p == Precision.BF16 ? 1 : 0;
        final long tokenBytes = layout.tokenLayerBytes();
        final int kvMul = s.heads() / s.kvHeads();
        final int hd = s.headSize();
        final boolean tc = prefill && tensorCorePrefill;

        k.args().i64(dTokens).i64(w.embedding).i64(x).i32(dim);
        k.launch(bf16 == 1 ? k.embedBf16 : k.embedF32, "embed", rows, 1, 1, 256, 0);
        for (int l = 0; l < s.layers(); l++) {
            long kOff = BlockLayoutDescriptor.tokenOffset(layout, l, BlockLayoutDescriptor.K, 0);
            long vOff = BlockLayoutDescriptor.tokenOffset(layout, l, BlockLayoutDescriptor.V, 0);
            rmsnorm(x, w.rmsAtt + (long) l * dim * 4, xn, rows);
            blas.project(qkv, xn, w.wqkv + (long) l * s.qkvDim() * dim * e, rows, dim, s.qkvDim(), act, false);
            long pairs = (long) rows * dim / 2;
            // the gate covers the blocks' slots, written (this step's K/V) as well as read
            gate.beforeAttention(l);
            k.args().i64(qkv).i32(rows).i32(dim).i32(s.kvDim()).i32(hd).i64(dFreq).i64(dPos).i64(dRowSeq)
                    .i64(dTables).i32(maxBlocks).i32(layout.blockTokens()).i64(kOff).i64(vOff).i64(tokenBytes)
                    .i32(bf16).i64(tc ? qb : 0L);
            k.launch(k.ropeStore, "rope_store", (int) ((pairs + 255) / 256), 1, 1, 256, 0);
            if (tc) {
                prefillAttention(rows, posFrom, kOff, vOff);
            } else {
                splitAttention(rows, maxLen, kOff, vOff, tokenBytes, kvMul, bf16);
            }
            blas.project(x, att, w.wo + (long) l * dim * dim * e, rows, dim, dim, act, true);
            rmsnorm(x, w.rmsFfn + (long) l * dim * 4, xn, rows);
            blas.project(h13, xn, w.w13 + (long) l * 2 * s.hidden() * dim * e, rows, dim, 2 * s.hidden(), act, false);
            long n = (long) rows * s.hidden();
            k.args().i64(h13).i64(hs).i32(rows).i32(s.hidden()).i32(bf16).i32(1 - bf16);
            k.launch(k.swiglu, "swiglu", (int) ((n + 255) / 256), 1, 1, 256, 0);
            blas.project(x, hs, w.w2 + (long) l * dim * s.hidden() * e, rows, s.hidden(), dim, act, true);
        }
        long firstOut = (long) (rows - outRows) * dim * 4;
        rmsnorm(x + firstOut, w.rmsFinal, xn, outRows);
        blas.project(logits, xn, w.classifier, outRows, dim, s.vocab(), act, false);
        k.args().i64(logits).i32(s.vocab()).i64(dArgmax);
        k.launch(k.argmaxRows, "argmax_rows", outRows, 1, 1, 1024, 0);
        logitRows = outRows;
    }

    /**
     * Enqueues only the projections a forward pass of {@code rows} tokens runs (every layer's four
     * GEMMs and the classifier on one row), on the engine's own buffers: the benchmark's cuBLAS
     * ceiling for the same sizes.
     */
    public void projectionsOnly(int rows) {
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException("rows " + rows + " outside [1, " + maxRows + "]");
        }
        context.makeCurrent();
        int dim = s.dim();
        int e = p.bytes();
        int act = p.cudaType();
        for (int l = 0; l < s.layers(); l++) {
            blas.project(qkv, xn, w.wqkv + (long) l * s.qkvDim() * dim * e, rows, dim, s.qkvDim(), act, false);
            blas.project(x, att, w.wo + (long) l * dim * dim * e, rows, dim, dim, act, true);
            blas.project(h13, xn, w.w13 + (long) l * 2 * s.hidden() * dim * e, rows, dim, 2 * s.hidden(), act, false);
            blas.project(x, hs, w.w2 + (long) l * dim * s.hidden() * e, rows, s.hidden(), dim, act, true);
        }
        blas.project(logits, xn, w.classifier, 1, dim, s.vocab(), act, false);
    }

    private void prefillAttention(int rows, int posFrom, long kOff, long vOff) {
        k.args().i64(qb).i32(rows).i32(posFrom).i32(s.heads()).i32(s.heads() / s.kvHeads()).i64(dTables)
                .i32(layout.blockTokens()).i64(kOff).i64(vOff).i64(layout.tokenLayerBytes()).i64(att).i32(1);
        k.launch(k.prefillMmaBf16, "attn_prefill_mma_bf16", (rows + PREFILL_ROWS - 1) / PREFILL_ROWS, s.heads(), 1,
                128, MMA_PREFILL_SHARED_BYTES);
    }

    /**
     * Enqueues only the tensor-core prefill attention of every layer for the last prefill chunk
     * ({@code rows} tokens from position {@code posFrom}, the queries and block table it left in
     * the engine's buffers): the benchmark's measure of the attention's share.
     *
     * @throws IllegalStateException when prefill attention does not run on tensor cores
     */
    public void prefillAttentionOnly(int rows, int posFrom) {
        if (!tensorCorePrefill) {
            throw new IllegalStateException("prefill attention runs on tensor cores only in bf16 with head size 128");
        }
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException("rows " + rows + " outside [1, " + maxRows + "]");
        }
        context.makeCurrent();
        for (int l = 0; l < s.layers(); l++) {
            prefillAttention(rows, posFrom, BlockLayoutDescriptor.tokenOffset(layout, l, BlockLayoutDescriptor.K, 0),
                    BlockLayoutDescriptor.tokenOffset(layout, l, BlockLayoutDescriptor.V, 0));
        }
    }

    private void splitAttention(int rows, int maxLen, long kOff, long vOff, long tokenBytes, int kvMul, int bf16) {
        int hd = s.headSize();
        int splits = Math.max(1, (splitTarget + s.kvHeads() * rows - 1) / (s.kvHeads() * rows));
        splits = Math.min(splits, (maxLen + DEC_TILE - 1) / DEC_TILE);
        int chunk = (maxLen + splits - 1) / splits;
        chunk = (chunk + DEC_TILE - 1) / DEC_TILE * DEC_TILE;
        splits = (maxLen + chunk - 1) / chunk;
        if ((long) rows * splits * s.heads() * (hd + 2) > partialFloats) {
            throw new IllegalStateException("attention partials of " + rows + " rows x " + splits + " splits overflow");
        }
        int smemFloats = kvMul * hd + 2 * DEC_TILE * (hd + 1) + kvMul * DEC_TILE + 3 * kvMul;
        k.args().i64(qkv).i64(dTables).i64(dRowSeq).i64(dLens).i32(maxBlocks).i32(layout.blockTokens()).i32(hd)
                .i32(kvMul).i32(s.heads()).i32(s.qkvDim()).i64(kOff).i64(vOff).i64(tokenBytes).i32(chunk).i32(splits).i64(partial);
        k.launch(bf16 == 1 ? k.decodeBf16 : k.decodeF32, "attn_decode", s.kvHeads(), splits, rows, 128,
                smemFloats * 4);
        k.args().i64(partial).i32(s.heads()).i32(hd).i32(splits).i64(att).i32(bf16);
        k.launch(k.combine, "attn_combine", s.heads(), rows, 1, 128, 0);
    }

    private void rmsnorm(long in, long weight, long out, int rows) {
        k.args().i64(in).i64(weight).i64(out).i32(s.dim()).f32(RMS_EPS);
        k.launch(p == Precision.BF16 ? k.rmsnormBf16 : k.rmsnormF32, "rmsnorm", rows, 1, 1, 256, 0);
    }

    private int[] sampled() {
        Memory m = new Memory(logitRows * 4L);
        context.check(cu.cuMemcpyDtoH_v2(Pointer.nativeValue(m), dArgmax, logitRows * 4L), "cuMemcpyDtoH(argmax)");
        return m.getIntArray(0, logitRows);
    }

    /** @return the logits of row {@code row} of the last call (row 0 after a prefill) */
    public float[] logits(int row) {
        Objects.checkIndex(row, logitRows);
        context.makeCurrent();
        context.check(cu.cuMemcpyDtoH_v2(Pointer.nativeValue(hLogits), logits + (long) row * s.vocab() * 4,
                s.vocab() * 4L), "cuMemcpyDtoH(logits)");
        return hLogits.getFloatArray(0, s.vocab());
    }

    private void toDevice(long dst, Memory src, long bytes) {
        context.check(cu.cuMemcpyHtoD_v2(dst, Pointer.nativeValue(src), bytes), "cuMemcpyHtoD");
    }

    /**
     * @return the {@code CUstream} every call launches on: 0, the context's legacy default stream
     *     (what a {@link LayerGate} makes wait on the device)
     */
    public long stream() {
        return 0L;
    }

    /** Waits for every launched kernel. */
    public void synchronize() {
        context.check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /** @return the model */
    public ModelShape shape() {
        return s;
    }

    /** @return the weights */
    public GpuWeights weights() {
        return w;
    }

    /** @return the cache layout the engine writes */
    public KvLayout layout() {
        return layout;
    }

    /** @return whether prefill attention runs on tensor cores (bf16, head size 128) */
    public boolean tensorCorePrefill() {
        return tensorCorePrefill;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        context.makeCurrent();
        for (long ptr : new long[] {x, xn, qkv, qb, att, h13, hs, logits, partial, dTokens, dPos, dRowSeq, dLens,
                dTables, dArgmax, dFreq}) {
            if (ptr != 0) {
                context.free(ptr);
            }
        }
    }
}
