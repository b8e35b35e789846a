#!/usr/bin/env bash
# Rebuilds the PTX of the demo's paged attention kernel (src/main/cuda/paged_attention.cu) and of the
# GPU engine (src/main/cuda/llama_engine.cu) into the resources: compute_90 for Hopper and later, compute_75 for older GPUs. Needs nvcc (13.0 used);
# users need no toolkit: the driver compiles the PTX when the module loads.
set -euo pipefail
cd "$(dirname "$0")"
nvcc=${NVCC:-nvcc}
src=src/main/cuda/paged_attention.cu
out=src/main/resources/io/kvcache/examples/attention
for arch in 90 75; do
  "$nvcc" -ptx -O3 -arch=compute_$arch -o "$out/paged_attention.compute_$arch.ptx" "$src"
done
# the GPU Llama engine's kernels (bf16 tensor cores, sm_80 and up): Hopper build only
"$nvcc" -ptx -O3 -arch=compute_90 -o src/main/resources/io/kvcache/examples/gpu/llama_engine.compute_90.ptx \
    src/main/cuda/llama_engine.cu
"$nvcc" --version | tail -1
