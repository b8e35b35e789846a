// Paged decode attention over KV blocks resident in a device tier, for the LongContextDemo.
//
// One launch folds the positions [from_pos, to_pos) of one layer into a running online-softmax
// state per query head: state[h] = { running max, running normalizer, weighted value sum[head_size] }.
// Blocks are reached through a block table of device addresses (one per logical block, index =
// block - first_block); within a block, K and V of token t and KV head g sit at
//   base + k_base + t * token_bytes + g * head_size * 4   (and v_base for V),
// the layout [layer][K|V][token][kvHead][headDim] with the layer's offsets passed in.
//
// Deterministic on purpose: positions are visited one after another in the order the host asks
// (ascending or descending), and each dot product is reduced in a fixed tree, so the same
// positions in the same order give the same floats however the host splits them into launches.
// That is what lets a budget-limited decode reproduce an unlimited one bit for bit on the GPU.
//
// Grid: one CTA per query head. Block: head_size threads rounded up to a multiple of 32, at most
// 1024. Rebuild the PTX resources with examples/build-ptx.sh.

#define MAX_WARPS 32

__device__ __forceinline__ float block_sum(float v, float* scratch) {
    // fixed tree: within each warp by xor-shuffle, then warp sums added in warp order by thread 0
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        int warps = (blockDim.x + 31) >> 5;
        for (int w = 0; w < warps; w++) {
            s += scratch[w];
        }
        scratch[MAX_WARPS] = s;
    }
    __syncthreads();
    float s = scratch[MAX_WARPS];
    __syncthreads();
    return s;
}

extern "C" __global__ void kv_decode_attention_fold(
        const float* __restrict__ q,
        const unsigned long long* __restrict__ table,
        int first_block, int from_pos, int to_pos, int descending,
        int block_tokens, int head_size, int kv_mul,
        long long k_base, long long v_base, long long token_bytes,
        float* __restrict__ state) {
    __shared__ float scratch[MAX_WARPS + 1];
    const int h = blockIdx.x;
    const int i = threadIdx.x;
    const bool active = i < head_size;
    const int g = h / kv_mul;
    float* st = state + (long long) h * (head_size + 2);
    float m = st[0];
    float l = st[1];
    float a = active ? st[2 + i] : 0.0f;
    const float qi = active ? q[h * head_size + i] : 0.0f;
    const float scale = sqrtf((float) head_size);
    const long long head_off = (long long) g * head_size * 4;
    const int count = to_pos - from_pos;
    for (int n = 0; n < count; n++) {
        const int pos = descending ? to_pos - 1 - n : from_pos + n;
        const int b = pos / block_tokens;
        const int t = pos - b * block_tokens;
        const char* base = (const char*) table[b - first_block];
        const float* k = (const float*) (base + k_base + t * token_bytes + head_off);
        const float* v = (const float*) (base + v_base + t * token_bytes + head_off);
        float score = block_sum(active ? qi * k[i] : 0.0f, scratch) / scale;
        if (score > m) {
            const float c = expf(m - score);
            l *= c;
            a *= c;
            m = score;
        }
        const float w = expf(score - m);
        l += w;
        if (active) {
            a += w * v[i];
        }
    }
    if (i == 0) {
        st[0] = m;
        st[1] = l;
    }
    if (active) {
        st[2 + i] = a;
    }
}
