package io.kvcache.tiers.transfer;

import static io.kvcache.tiers.GpuTestSupport.device0;

import io.kvcache.core.transfer.TransferEngine;

/**
 * {@link CudaTransferEngine} copying every batch with {@code cuMemcpyBatchAsync} calls spread
 * over three streams per direction ({@link CudaTransferEngine.Builder#copyStreams}), in calls of
 * 16 copies so that even small batches use several: the same contract, so a batch's event covers
 * the copies on all of its streams.
 */
class CudaTransferEngineSeveralStreamsContractGpuTest extends CudaTransferEngineContractGpuTest {
    @Override
    protected TransferEngine createEngine() {
        return CudaTransferEngine.builder(device0()).method(CopyMethod.BATCH_MEMCPY).copyStreams(3)
                .copiesPerBatchCall(16).build();
    }
}
