package io.kvcache.examples.gpu;

import io.kvcache.core.ResidencyHandle;
import java.util.List;

/**
 * What a forward pass waits for before layer {@code l} touches the cache's blocks (stores this
 * step's K/V into them, then attends over them): the
 * hook through which a restore overlaps compute. {@link #perLayer} is backed by the cache's
 * per-layer completion ({@link ResidencyHandle#awaitLayer}): layer 0 runs while later layers are
 * still being copied in; {@link #wholeBlocks} waits for whole blocks before the first layer. The
 * engine calls the gate from the thread that launches its kernels, layers in ascending order; a
 * gate may block that thread or make the launch stream wait.
 *
 * <p>Whatever it waits for, a gate must cover the slots the step writes as well as those it reads:
 * the step stores its new tokens' K/V into the tail block's slot right after the gate, and a slot
 * freshly taken from a block being demoted out of it is free only once that demotion has read it
 * (the slot's fence, part of the handle's readiness). A gate that let the store run earlier would
 * corrupt the demoted block.
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

    /**
     * A gate over layer-range handles: before layer {@code l}, waits on the host until layer
     * {@code l} of every handle's blocks is in place ({@link ResidencyHandle#awaitLayer}), so the
     * kernels of the layers already launched run on the device while the host waits for the next
     * layer's bytes. A handle's layer completion also covers the fences of the slots its blocks
     * were given (a tail block's slot among them), so the K/V store of new tokens is covered too.
     *
     * <p>The wait is on the host: the cache's handles expose a layer's completion as a future, not
     * the CUDA event of the batch that copies it, so the compute stream cannot wait for it on the
     * device. A layer already in place costs no wait.
     *
     * @param handles handles whose layer ranges include every layer the engine runs
     * @throws io.kvcache.core.LayerNotResidentException (from the gate) when asked for a layer
     *     outside a handle's range
     */
    static LayerGate perLayer(List<ResidencyHandle> handles) {
        List<ResidencyHandle> hs = List.copyOf(handles);
        return layer -> {
            for (ResidencyHandle h : hs) {
                h.awaitLayer(layer);
            }
        };
    }

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
