package io.kvcache.examples.gpu;

import io.kvcache.core.ResidencyHandle;
import io.kvcache.core.transfer.TransferHandle;
import io.kvcache.tiers.transfer.CudaTransferHandle;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * What a forward pass waits for before layer {@code l} touches the cache's blocks (stores this
 * step's K/V into them, then attends over them): the
 * hook through which a restore overlaps compute. {@link #onDevice} and {@link #perLayer} are backed
 * by the cache's per-layer completion: layer 0 runs while later layers are still being copied in,
 * the first making the launch stream wait for each layer's copies, the second the host;
 * {@link #wholeBlocks} waits for whole blocks before the first layer. The
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
     * <p>The wait is on the host, so the GPU may idle between a layer's copy landing and its
     * kernels' launch; {@link #onDevice} waits on the device instead. A layer already in place
     * costs no wait.
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

    /**
     * A gate over layer-range handles that waits on the device where it can: before layer
     * {@code l}, the launch stream is made to wait ({@code cuStreamWaitEvent}) for the CUDA events
     * of the batches still copying layer {@code l} in ({@link ResidencyHandle#layerTransfers}), so
     * the host goes on launching while the copies run. The host waits only for each batch to be
     * handed to the transfer engine, and waits for the layer itself ({@link
     * ResidencyHandle#awaitLayer}) where a handle's layer also waits for something that is not
     * such a batch (a block made resident whole, a slot's fence: the tail's, which the K/V store
     * of new tokens needs) or its batch is not a CUDA one.
     *
     * <p>A batch's event says its copies ran, not that they succeeded: after the pass the caller
     * must check the handles ({@link ResidencyHandle#await()}) before it trusts the result.
     *
     * @param handles handles whose layer ranges include every layer the engine runs
     * @param stream  the {@code CUstream} the engine launches on ({@link GpuLlamaEngine#stream()})
     */
    static LayerGate onDevice(List<ResidencyHandle> handles, long stream) {
        List<ResidencyHandle> hs = List.copyOf(handles);
        return layer -> {
            for (ResidencyHandle h : hs) {
                Optional<List<CompletableFuture<TransferHandle>>> copies = h.layerTransfers(layer);
                if (copies.isEmpty()) {
                    h.awaitLayer(layer);
                    continue;
                }
                TransferHandle last = null;
                for (CompletableFuture<TransferHandle> started : copies.get()) {
                    TransferHandle t = started.join();
                    if (t == last) {
                        continue;
                    }
                    last = t;
                    if (t instanceof CudaTransferHandle c) {
                        c.streamWait(stream);
                    } else {
                        h.awaitLayer(layer);
                        break;
                    }
                }
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
