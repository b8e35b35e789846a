package io.kvcache.examples.gpu;

import io.kvcache.core.ResidencyHandle;
import java.util.List;

/**
 * What a forward pass waits for before layer {@code l} touches the cache's blocks (stores this
 * step's K/V into them, then attends over them): the
 * hook through which a restore overlaps compute. A gate backed by per-layer completion lets layer 0
 * run while later layers are still being copied in; {@link #wholeBlocks} waits for whole blocks
 * before the first layer, which is what the cache offers today. The engine calls the gate from the
 * thread that launches its kernels, layers in ascending order; a gate may block that thread or
 * make the launch stream wait.
 */
@FunctionalInterface
public interface LayerGate {

    /** Nothing to wait for: every block is resident already. */
    LayerGate NONE = layer -> { };

    /**
     * Returns when layer {@code layer}'s K/V of every block the step uses may be read and written.
     *
     * @throws io.kvcache.core.BlockLostException if a block the step needs was lost
     */
    void beforeAttention(int layer);

    /** @return a gate that awaits every handle (all layers of their blocks) before layer 0 */
    static LayerGate wholeBlocks(List<ResidencyHandle> handles) {
        return layer -> {
            if (layer == 0) {
                for (ResidencyHandle h : handles) {
                    h.await();
                }
            }
        };
    }
}
