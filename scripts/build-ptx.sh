#!/usr/bin/env bash
# Rebuilds the PTX of the block copy kernels, kept as resources so that users need no CUDA
# toolkit: one for Hopper (compute_90) and a portable one (compute_75, the oldest target
# nvcc 13 accepts; the driver compiles it for any newer GPU when the module loads).
set -euo pipefail
cd "$(dirname "$0")/.."
src=kvcache-native/src/main/cuda/kv_copy.cu
out=kvcache-native/src/main/resources/io/kvcache/nativ/cuda
nvcc=${NVCC:-nvcc}
mkdir -p "$out"
for arch in 90 75; do
  "$nvcc" -ptx -O3 -arch=compute_$arch -o "$out/kv_copy.compute_$arch.ptx" "$src"
done
"$nvcc" --version | tail -1
ls -l "$out"
