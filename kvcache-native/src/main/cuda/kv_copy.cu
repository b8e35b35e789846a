// Block copy kernels for the KV cache's transfer engine.
//
// One launch copies a whole batch of blocks between arbitrary addresses: pinned host memory
// mapped into the device's address space (read by kv_gather_blocks, written by
// kv_scatter_blocks) and device memory. A driver call per 16 KiB block reaches a tenth of the
// PCIe link; one launch over all the blocks reaches the link's speed.
//
// Work split: each block is cut into pieces of PIECE_BYTES; a CTA copies one piece at a time,
// every thread holding UNROLL 16-byte loads in flight before it stores them (grid size is chosen
// by the host: a few CTAs per SM keep far more bytes in flight than the link's bandwidth-delay
// product).
//
// Requirements (checked on the host): every address and block_bytes a multiple of 16.
//
// Rebuild the PTX resources with scripts/build-ptx.sh.

#define THREADS 256
#define UNROLL 4
#define PIECE_BYTES (THREADS * UNROLL * 16)

// pairs[i].x = source address of block i, pairs[i].y = destination address.
//
// CTAs take pieces from a work counter (zeroed before each launch) rather than striding by the
// grid size: the pieces in flight then stay within a window of about two per CTA in the order
// the host gave them. The host orders a batch by host address, so the device's translations of
// host pages stay local; with a fixed stride, CTAs drift apart and the pieces in flight spread
// over the whole batch (measured: scattered 16 KiB blocks over GiBs of pinned memory ran at
// 0.7 of the link).
template <bool SRC_ON_DEVICE, bool DST_ON_DEVICE>
__device__ __forceinline__ void copy_pieces(const ulonglong2* __restrict__ pairs,
                                            unsigned long long block_bytes,
                                            unsigned int pieces_per_block,
                                            unsigned int total_pieces,
                                            unsigned int* __restrict__ counter) {
    __shared__ unsigned int next_piece;
    if (threadIdx.x == 0) {
        next_piece = atomicAdd(counter, 1u);
    }
    __syncthreads();
    unsigned int p = next_piece;
    while (p < total_pieces) {
        __syncthreads();  // every thread has read next_piece
        unsigned int claimed = 0;
        if (threadIdx.x == 0) {
            claimed = atomicAdd(counter, 1u);  // in flight while this piece is copied
        }
        unsigned int b = p / pieces_per_block;
        unsigned long long off = (unsigned long long)(p - b * pieces_per_block) * PIECE_BYTES;
        ulonglong2 pr = pairs[b];
        const uint4* src = reinterpret_cast<const uint4*>(pr.x + off);
        uint4* dst = reinterpret_cast<uint4*>(pr.y + off);
        unsigned long long left = (block_bytes - off) >> 4;
        uint4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            unsigned int i = u * THREADS + threadIdx.x;
            if (i < left) {
                // every byte is read once: streaming loads (device) and L2-only loads (host
                // memory over the link) keep the copy from evicting the engine's working set
                v[u] = SRC_ON_DEVICE ? __ldcs(src + i) : __ldcg(src + i);
            }
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            unsigned int i = u * THREADS + threadIdx.x;
            if (i < left) {
                if (DST_ON_DEVICE) {
                    __stcs(dst + i, v[u]);
                } else {
                    __stcg(dst + i, v[u]);
                }
            }
        }
        if (threadIdx.x == 0) {
            next_piece = claimed;
        }
        __syncthreads();
        p = next_piece;
    }
}

// Pinned host slots -> device slots.
extern "C" __global__ void __launch_bounds__(THREADS)
kv_gather_blocks(const ulonglong2* __restrict__ pairs, unsigned long long block_bytes,
                 unsigned int pieces_per_block, unsigned int total_pieces, unsigned int* counter) {
    copy_pieces<false, true>(pairs, block_bytes, pieces_per_block, total_pieces, counter);
}

// Device slots -> pinned host slots.
extern "C" __global__ void __launch_bounds__(THREADS)
kv_scatter_blocks(const ulonglong2* __restrict__ pairs, unsigned long long block_bytes,
                  unsigned int pieces_per_block, unsigned int total_pieces, unsigned int* counter) {
    copy_pieces<true, false>(pairs, block_bytes, pieces_per_block, total_pieces, counter);
}

// Device slots -> device slots (same device, or a peer whose access is enabled).
extern "C" __global__ void __launch_bounds__(THREADS)
kv_copy_device_blocks(const ulonglong2* __restrict__ pairs, unsigned long long block_bytes,
                      unsigned int pieces_per_block, unsigned int total_pieces, unsigned int* counter) {
    copy_pieces<true, true>(pairs, block_bytes, pieces_per_block, total_pieces, counter);
}
