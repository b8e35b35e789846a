package io.kvcache.tiers.transfer;

import static io.kvcache.tiers.GpuTestSupport.device0;
import static io.kvcache.tiers.GpuTestSupport.fillRandom;
import static io.kvcache.tiers.GpuTestSupport.mismatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kvcache.core.tier.TierFailedException;
import io.kvcache.core.transfer.BlockMove;
import io.kvcache.core.transfer.TransferBatch;
import io.kvcache.nativ.cuda.CuResult;
import io.kvcache.nativ.cuda.CudaContext;
import io.kvcache.nativ.cuda.CudaException;
import io.kvcache.tiers.device.CudaDeviceTier;
import io.kvcache.tiers.host.PinnedHostTier;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Poisons the device's primary context on purpose, so it runs in a JVM of its own (tag
 * {@code gpu-poisons-context}); every other GPU test would fail after it.
 */
@Tag("gpu")
@Tag("gpu-poisons-context")
class CudaStickyErrorGpuTest {

    @Test
    void anIllegalAddressInACopyMarksTheDeviceTierFailedAndNothingMoreIsReadFromIt() throws Exception {
        CudaContext ctx = device0();
        long blockBytes = 16 * 1024;
        // the first block's source address is replaced by an unmapped one
        CudaTransferEngine engine = CudaTransferEngine.builder(ctx).descriptorHook((pairs, chunk) -> {
            if (chunk == 0) {
                pairs.set(ValueLayout.JAVA_LONG_UNALIGNED, CopyDescriptorLayout.pairSourceOffset(0), 16L);
            }
        }).build();
        PinnedHostTier host = PinnedHostTier.builder(blockBytes, 4).context(ctx).build();
        CudaDeviceTier dev = CudaDeviceTier.allocate(ctx, blockBytes, 4);
        int h0 = host.allocate();
        int h1 = host.allocate();
        int d0 = dev.allocate();
        int d1 = dev.allocate();
        fillRandom(host.view(h0), 1);
        fillRandom(host.view(h1), 2);
        CudaTransferHandle h = engine.submit(new TransferBatch(host, dev, List.of(new BlockMove(h0, d0),
                new BlockMove(h1, d1))), CopyMethod.KERNEL);
        ExecutionException e = assertThrows(ExecutionException.class, () -> h.completion().get(30, TimeUnit.SECONDS));
        TierFailedException failed = assertInstanceOf(TierFailedException.class, e.getCause());
        CudaException cause = assertInstanceOf(CudaException.class, failed.getCause());
        assertTrue(cause.sticky());
        assertEquals(CuResult.ILLEGAL_ADDRESS, cause.result());
        assertTrue(failed.getMessage().contains("CUDA_ERROR_ILLEGAL_ADDRESS"), failed.getMessage());
        System.out.println("sticky error reported as: " + failed.getMessage());

        assertTrue(dev.failed());
        assertTrue(ctx.failed());
        TierFailedException onRead = assertThrows(TierFailedException.class,
                () -> dev.read(d1, 0, MemorySegment.ofArray(new byte[16])));
        assertTrue(onRead.getMessage().contains("device tier 'cuda:0' failed"), onRead.getMessage());
        assertThrows(TierFailedException.class, () -> dev.write(d1, 0, MemorySegment.ofArray(new byte[16])));
        assertThrows(TierFailedException.class,
                () -> engine.submit(new TransferBatch(dev, host, List.of(new BlockMove(d1, h0)))));
        // the host tier is host memory: it still serves its own bytes
        assertFalse(host.failed());
        assertEquals(-1, mismatch(host.view(h1), 2));
        // guards were released: the slots can be freed and reused
        host.free(h0);
        assertEquals(h0, host.allocate());
    }
}
