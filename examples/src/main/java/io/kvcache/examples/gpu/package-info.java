/**
 * A Llama-architecture forward pass entirely on the GPU over K/V in the cache's device-tier
 * blocks: weights resident in VRAM ({@link io.kvcache.examples.gpu.GpuWeights}, from a llama2.c
 * checkpoint or generated on the device for a named {@link io.kvcache.examples.gpu.ModelShape}),
 * projections through cuBLAS ({@link io.kvcache.examples.gpu.Cublas}), the other stages as CUDA
 * kernels ({@link io.kvcache.examples.gpu.EngineKernels}), in bf16 or fp32
 * ({@link io.kvcache.examples.gpu.Precision}). {@link io.kvcache.examples.gpu.GpuLlamaEngine}
 * runs prefill and batched decode over block tables; {@link io.kvcache.examples.gpu.GpuCachedDecoder}
 * runs requests against a {@link io.kvcache.core.KvCacheManager}; a
 * {@link io.kvcache.examples.gpu.LayerGate} is where per-layer residency will gate each layer.
 */
package io.kvcache.examples.gpu;
