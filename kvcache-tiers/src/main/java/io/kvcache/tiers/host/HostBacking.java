package io.kvcache.tiers.host;

/** Sources of page-locked host memory for {@link PinnedHostTier}, in the order they are tried. */
public enum HostBacking {
    /** A DMA-BUF from {@code /dev/dma_heap/system}, mapped and registered with CUDA. */
    DMA_HEAP("dma-heap"),
    /** A DMA-BUF made by {@code /dev/udmabuf} from a sealed memfd, mapped and registered with CUDA. */
    UDMABUF("udmabuf"),
    /** {@code cuMemHostAlloc} (portable, device-mapped) in bounded chunks. */
    CU_MEM_HOST_ALLOC("cuMemHostAlloc"),
    /** Anonymous {@code mmap} registered with {@code cuMemHostRegister} in bounded chunks. */
    CU_MEM_HOST_REGISTER("mmap+cuMemHostRegister");

    private final String label;

    HostBacking(String label) {
        this.label = label;
    }

    /** @return short label used in {@link PinnedHostTier#backing()} */
    public String label() {
        return label;
    }
}
