package io.kvcache.tiers.transfer;

/** How {@link CudaTransferEngine} moves one batch. */
public enum CopyMethod {
    /** One launch of the gather / scatter kernel over mapped pinned memory: fastest for small blocks. */
    KERNEL,
    /** One {@code cuMemcpyBatchAsync} call: copy engines, no SMs; fastest for large blocks. */
    BATCH_MEMCPY,
    /** One {@code cuMemcpyAsync} per block: the fallback, and the baseline benchmarks compare against. */
    PER_BLOCK
}
