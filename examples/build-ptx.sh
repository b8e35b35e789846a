#!/usr/bin/env bash
# Rebuilds the PTX of the demo's paged attention kernel (src/main/cuda/paged_attention.cu: compute_90
# for Hopper and later, compute_75 for older GPUs) and of the GPU engine (src/main/cuda/llama_engine.cu:
# compute_90 only) into the resources. Needs nvcc (13.0 used); users need no toolkit: the driver
# compiles the PTX when the module loads.
set -euo pipefail
cd "$(dirname "$0")"
nvcc=${NVCC:-nvcc}
src=src/main/cuda/paged_attention.cu
out=src/main/resources/io/kvcache/examples/attention
for arch in 90 75; do
  "$nvcc" -ptx -O3 -arch=compute_$arch -o "$out/paged_attention.compute_$arch.ptx" "$src"
done
"$nvcc" -ptx -O3 -arch=compute_90 -o src/main/resources/io/kvcache/examples/gpu/llama_engine.compute_90.ptx \
    src/main/cuda/llama_engine.cu
"$nvcc" --version | tail -1
