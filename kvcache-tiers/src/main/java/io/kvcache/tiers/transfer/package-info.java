/**
 * Transfer engines that move batches of blocks between tiers.
 *
 * <p>The API is {@link io.kvcache.tiers.transfer.CudaTransferEngine} (with its builder),
 * {@link io.kvcache.tiers.transfer.CudaTransferHandle}, {@link io.kvcache.tiers.transfer.CopyMethod}
 * and {@link io.kvcache.tiers.transfer.Direction}; {@code submit(batch, method)},
 * {@code methodFor} and {@code measuredRates} are there for benchmarks. Everything else is
 * package-private, one responsibility a class:
 *
 * <table>
 *   <caption>Inside the CUDA engine</caption>
 *   <tr><th>class</th><th>does</th><th>called from</th></tr>
 *   <tr><td>{@code CudaRoute}</td><td>tiers to direction, slot guards, peer, slot addresses</td><td>any thread</td></tr>
 *   <tr><td>{@code CopyMethodSelector}</td><td>the copy method per direction and block size</td><td>any thread; measures on its own thread</td></tr>
 *   <tr><td>{@code CopyMethodProbe}</td><td>which methods run on the device, and their measured rates</td><td>the selector</td></tr>
 *   <tr><td>{@code CopyDescriptorLayout}</td><td>the offsets of the pinned copy descriptors</td><td>any thread</td></tr>
 *   <tr><td>{@code StagingBuffers}</td><td>one batch's descriptor memory and its chunk schedule</td><td>the lane lock's holder</td></tr>
 *   <tr><td>{@code ChunkEnqueuer}</td><td>one chunk's copies as kernel, batched copy or per-block copies</td><td>the lane lock's holder</td></tr>
 *   <tr><td>{@code CudaLane}</td><td>a direction's stream, completion thread and reused resources</td><td>submitters under its lock; its completion thread</td></tr>
 *   <tr><td>{@code BatchCompletion}</td><td>ends a batch: guards, recycling, the future</td><td>a lane's completion thread</td></tr>
 *   <tr><td>{@code HostSlotOrder}</td><td>orders a batch by host slot</td><td>the lane lock's holder</td></tr>
 * </table>
 */
package io.kvcache.tiers.transfer;
