/* igemm.cu — the backend's tensor-core GEMM: convolutions as implicit GEMMs on NHWC activations (no im2col matrix
 * in memory) and linear layers as 1x1 convolutions, with what surrounds them in the models fused in.
 *
 *   rows m = (n, oy, ox) of the output, columns = output channels of up to 3 weights [out][kh][kw][C] sharing the
 *   input, k = (ky, kx, c). The A tile of a k-step is BM output pixels x 32 channels of one tap, gathered straight
 *   from the input: channels [0, ca) from xa and [ca, C) from xb (a channel concat), at (iy, ix) or (iy/2, ix/2)
 *   (a 2x nearest upsample), zero outside (padding). B is 32 consecutive k of BN weight rows.
 *   Prologue: each thread normalises the A chunks it copied (GroupNorm from per-(sample, group) statistics made by
 *   norm.cu's statistics kernel, or LayerNorm from per-row statistics the block computes first), + SiLU; padding
 *   stays zero.
 *   A 1x1 shortcut (a ResNet block whose channels change) is a second stretch of K: its k-steps copy the output
 *   pixel's channels of the block input and the shortcut's weight rows into the same tiles, so the two products
 *   meet in the accumulators (one rounding, no shortcut tensor in memory).
 *   Epilogue: + bias, + a per-sample broadcast (time embedding), activation, rounded to the storage type into a
 *   shared tile; then 16-byte rows out, + residual, or a·GELU(g) of the two halves (GEGLU).
 *
 * Pipeline: STAGES k-steps in flight through cp.async (16-byte copies, zero-fill at the borders), one barrier per
 * k-step; fragments by ldmatrix from rows padded to 40 elements (80 bytes: the 8 rows of an ldmatrix fall in
 * different bank groups); mma.sync m16n8k16 with f32 accumulators. Two tile shapes, chosen per layer (plan()):
 * 128x128 with 8 warps (warp tile 64x32) and 64x64 with 4 warps (32x32); layers with fewer tiles than SMs (the
 * 8x8 and 16x16 levels of a UNet) split K over up to 16 blocks per tile, the last of which adds the partial sums
 * (in a fixed order) and runs the epilogue: one launch either way. Requirements (else the caller uses cuBLAS):
 * C, ca multiples of 32, f16/bf16 storage, 16-byte aligned tensors; or (IN_NARROW, conv_in's 4 channels) C a
 * multiple of 4 below 32, one plain input, copied in 8-byte pieces.
 * The tile code (igemm_tile) serves two kernels: igemm_kernel, one op per launch, and igemm_seq_kernel, the tiles of
 * consecutive ops in one launch, each waiting for the tiles it depends on (sequences, below). */
#include "igemm.h"
#include "tc.h"

#include <algorithm>
#include <memory>
#include <vector>

/* a sequence is one kernel parameter block: up to 32764 bytes since CUDA 12.1 (4096 before) */
static_assert(sizeof(ig_seq) <= 32764, "igemm sequence parameters too large");
static_assert(sizeof(ig_args) % 4 == 0, "ig_args is copied in 4-byte words");

#define BK 32
#define LDA (BK + 8)

template <int BM_, int BN_, int WM_, int WN_> struct ig_tile {
    static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_; /* warps along M and N */
    static constexpr int THREADS = 32 * WM * WN, STAGES = 3;
    /* blocks per SM the register budget is made for (__launch_bounds__): 128 registers for the large tile, 80 for the
     * small one (without it, ptxas trades a few spilled bytes for a register count of its own choosing) */
    static constexpr int MINB = WM * WN == 8 ? 2 : 6, SEQ_MINB = WM * WN == 8 ? 2 : 4;
    static constexpr int WTM = BM / WM, WTN = BN / WN, MI = WTM / 16, NJ = WTN / 8;
    static constexpr int ACH = BM * BK / 8 / THREADS, BCH = BN * BK / 8 / THREADS; /* 16-byte chunks per thread per stage */
    static constexpr int LDC = BN + 8;
    static constexpr int SMEM_PIPE = STAGES * (BM + BN) * LDA * 2, SMEM_C = BM * LDC * 2;
    static constexpr int SMEM = (SMEM_PIPE > SMEM_C ? SMEM_PIPE : SMEM_C) + BM * 8; /* + per-row statistics */
};
typedef ig_tile<128, 128, 2, 4> tile_big;
typedef ig_tile<64, 64, 2, 2> tile_small;

/* Where a block's tile is: row tile bx() of gx(), column tile nb() of gy(), K slice z() of S(). A lone igemm's is its
 * grid position (read from the special registers wherever used: no register kept live); a sequence's lies in shared
 * memory (seq_pos). */
struct ig_pos { int bx, nb, gx, gy, z, S; };
struct ig_grid_pos {
    __device__ __forceinline__ int bx() const { return (int)blockIdx.x; }
    __device__ __forceinline__ int nb() const { return (int)blockIdx.y; }
    __device__ __forceinline__ int gx() const { return (int)gridDim.x; }
    __device__ __forceinline__ int gy() const { return (int)gridDim.y; }
    __device__ __forceinline__ int z() const { return (int)blockIdx.z; }
    __device__ __forceinline__ int S() const { return (int)gridDim.z; }
};
/* a sequence's tile: its op's arguments and its position in shared memory, at fixed addresses (igemm_seq_kernel) */
__shared__ ig_args seq_args;
__shared__ ig_pos seq_pos;
struct ig_seq_pos {
    __device__ __forceinline__ int bx() const { return seq_pos.bx; }
    __device__ __forceinline__ int nb() const { return seq_pos.nb; }
    __device__ __forceinline__ int gx() const { return seq_pos.gx; }
    __device__ __forceinline__ int gy() const { return seq_pos.gy; }
    __device__ __forceinline__ int z() const { return seq_pos.z; }
    __device__ __forceinline__ int S() const { return seq_pos.S; }
};

static __device__ __forceinline__ float silu(float v) { return v / (1.0f + __expf(-v)); }

/* The statistics epilogue (ig_stats): Cs holds the tile's stored output values (rows m0.., columns nb·BN..). Per
 * set, one warp per (sample, group) piece of the tile: its count, mean and M2 (two passes over shared memory, the
 * sums shifted by the piece's first value) into the tile's slots; the last tile to finish merges each
 * (sample, group)'s pieces in tile order, then the concat's other part (Chan's formula; the result does not depend
 * on which tile is last). */
template <typename T, typename TL, typename P> static __device__ __forceinline__ void epi_stats(const ig_args &a, const T *Cs, const P &pos) {
    constexpr int BM = TL::BM, BN = TL::BN, THREADS = TL::THREADS;
    __shared__ int last_tile;
    const int m0 = pos.bx() * BM, nb = pos.nb();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tile = pos.nb() * pos.gx() + pos.bx();
    const int HWo = a.Ho * a.Wo, c0 = nb * BN, r_end = min(m0 + BM, a.M), c_end = min(c0 + BN, a.cout);
    const int n0 = m0 / HWo, ns = (r_end - 1) / HWo - n0 + 1;
#pragma unroll /* (constant indices into the parameters: a dynamic one would copy them to local memory) */
    for (int e = 0; e < IG_MAX_STATS; e++) {
        if (e >= a.nst) break;
        const ig_stats &o = a.st[e];
        const int cpg = o.ctot / o.groups, g0 = (c0 + o.coff) / cpg, ng = (c_end - 1 + o.coff) / cpg - g0 + 1;
        float *part = o.ws + (size_t)tile * o.ns * o.gt * 3;
        for (int s = warp; s < ns * ng; s += THREADS / 32) {
            const int n = n0 + s / ng, g = g0 + s % ng;
            const int ra = max(m0, n * HWo) - m0, rb = min(r_end, (n + 1) * HWo) - m0;
            const int ca = max(c0, g * cpg - o.coff) - c0, cb = min(c_end, (g + 1) * cpg - o.coff) - c0, w = cb - ca, cnt = (rb - ra) * w;
            const float ref = ld(Cs + ra * TL::LDC + ca);
            float s1 = 0.0f;
            for (int i = lane; i < cnt; i += 32) s1 += ld(Cs + (ra + i / w) * TL::LDC + ca + i % w) - ref;
            const float mean = ref + __fdividef(warp_sum(s1), (float)cnt);
            float s2 = 0.0f;
            for (int i = lane; i < cnt; i += 32) {
                const float d = ld(Cs + (ra + i / w) * TL::LDC + ca + i % w) - mean;
                s2 += d * d;
            }
            s2 = warp_sum(s2);
            if (lane == 0) {
                float *p = part + ((size_t)(n - n0) * o.gt + (g - g0)) * 3;
                p[0] = (float)cnt;
                p[1] = mean;
                p[2] = s2;
            }
        }
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last_tile = atomicAdd(a.counter, 1u) == (unsigned)(pos.gx() * pos.gy() - 1);
    __syncthreads();
    if (!last_tile) return;
    __threadfence();
    const int N = a.M / HWo;
#pragma unroll
    for (int e = 0; e < IG_MAX_STATS; e++) {
        if (e >= a.nst) break;
        const ig_stats &o = a.st[e];
        const int cpg = o.ctot / o.groups;
        for (int s = threadIdx.x; s < N * o.groups; s += THREADS) {
            const int n = s / o.groups, g = s - n * o.groups;
            const int lo = max(0, g * cpg - o.coff), hi = min(a.cout, (g + 1) * cpg - o.coff); /* the group's output columns */
            float cnt = 0.0f; /* counts and their ratios in f32 (to 6e-8), the sums in f64 */
            double mean = 0.0, m2 = 0.0; /* (__fdividef: with IEEE divisions, f32 or f64, ptxas spilled the 64x64 instances) */
            auto merge = [&](const float *p) {
                const float pn = p[0], tot = cnt + pn, f = __fdividef(pn, tot);
                const double d = p[1] - mean;
                mean += d * f;
                m2 += p[2] + d * d * (double)(cnt * f);
                cnt = tot;
            };
            if (lo < hi)
                for (int bx = n * HWo / BM; bx <= ((n + 1) * HWo - 1) / BM; bx++)
                    for (int by = lo / BN; by <= (hi - 1) / BN; by++)
                        merge(o.ws + ((size_t)(by * pos.gx() + bx) * o.ns * o.gt + (size_t)(n - bx * BM / HWo) * o.gt +
                                      (g - (by * BN + o.coff) / cpg)) * 3);
            if (o.merge && o.merge[(size_t)s * 3] > 0.0f) merge(o.merge + (size_t)s * 3);
            if (o.partial) {
                o.partial[(size_t)s * 3] = cnt;
                o.partial[(size_t)s * 3 + 1] = (float)mean;
                o.partial[(size_t)s * 3 + 2] = (float)m2;
            }
            if (o.out) o.out[s] = make_float2((float)mean, rsqrtf(__fdividef((float)m2, cnt) + o.eps));
        }
    }
    if (threadIdx.x == 0) *a.counter = 0; /* ready for the next launch (and the next replay of a graph) */
}

/* The tile at pos (K slice pos.z() of pos.S()); returns whether this block ran its epilogue (with K split, only the last
 * slice's block does). Every thread of the block returns the same. */
template <typename T, typename TL, int NORM, typename P> static __device__ __forceinline__ bool igemm_tile(const ig_args &a, const P &pos) {
    constexpr int BM = TL::BM, BN = TL::BN, THREADS = TL::THREADS, STAGES = TL::STAGES, MI = TL::MI, NJ = TL::NJ;
    CUDA_DYNAMIC_SHARED(unsigned char, smem);
    T *As = (T *)smem, *Bs = As + STAGES * BM * LDA;
    float2 *rowstat = (float2 *)(smem + (TL::SMEM - BM * 8));
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp / TL::WN, wn = warp % TL::WN;
    const int m0 = pos.bx() * BM, nb = pos.nb();
    const int HWo = a.Ho * a.Wo, Hs = a.H >> a.up, Ws = a.W >> a.up, KT1 = (a.K + BK - 1) / BK, KT = KT1 + (a.sxa ? a.sC / BK : 0);
    const T *xa = (const T *)a.xa, *xb = (const T *)a.xb;

    /* ---- the rows this thread copies (fixed for the whole k loop) ---- */
    int a_row[TL::ACH], a_n[TL::ACH], a_iy[TL::ACH], a_ix[TL::ACH];
#pragma unroll
    for (int i = 0; i < TL::ACH; i++) {
        const int q = tid + i * THREADS, r = q >> 2, m = m0 + r;
        a_row[i] = r;
        if (m < a.M) {
            const int n = m / HWo, rem = m - n * HWo, oy = rem / a.Wo, ox = rem - oy * a.Wo;
            a_n[i] = n;
            a_iy[i] = oy * a.stride - a.pad;
            a_ix[i] = ox * a.stride - a.pad;
        } else {
            a_n[i] = -1;
            a_iy[i] = a_ix[i] = 0;
        }
    }
    /* B rows: weight row of tile column r (GEGLU: the a half, then the g half, of the same outputs) */
    const T *b_src[TL::BCH];
#pragma unroll
    for (int i = 0; i < TL::BCH; i++) {
        const int r = (tid + i * THREADS) >> 2;
        b_src[i] = NULL;
        if (a.geglu) {
            const int half = r / (BN / 2), j = nb * (BN / 2) + r % (BN / 2), F = a.cout / 2;
            if (j < F) b_src[i] = (const T *)a.w[0] + (size_t)(half * F + j) * a.K;
        } else {
            const int col = nb * BN + r, wi = col / a.cout;
            if (wi < a.nw) b_src[i] = (const T *)a.w[wi] + (size_t)(col - wi * a.cout) * a.K;
        }
    }

    /* ---- LayerNorm prologue: the statistics of the block's rows first (two passes over each row) ---- */
    if (NORM == NORM_LAYER) {
        for (int r = warp; r < BM; r += THREADS / 32) {
            const int m = m0 + r;
            float mean = 0.0f, rstd = 0.0f;
            if (m < a.M) {
                const T *xr = xa + (size_t)m * a.C;
                float s = 0.0f;
                for (int c = lane * 8; c < a.C; c += 256) {
                    const tc_v8 v = tc_ld8(xr + c);
#pragma unroll
                    for (int e = 0; e < 4; e++) { const float2 f = tc_unpack<T>(v.r[e]); s += f.x + f.y; }
                }
                mean = warp_sum(s) / (float)a.C;
                float q = 0.0f;
                for (int c = lane * 8; c < a.C; c += 256) {
                    const tc_v8 v = tc_ld8(xr + c);
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const float2 f = tc_unpack<T>(v.r[e]);
                        q += (f.x - mean) * (f.x - mean) + (f.y - mean) * (f.y - mean);
                    }
                }
                rstd = rsqrtf(warp_sum(q) / (float)a.C + a.eps);
            }
            if (lane == 0) rowstat[r] = make_float2(mean, rstd);
        }
        __syncthreads(); /* every warp reads the statistics of the rows it copies */
    }

    /* ---- one k-step's copies; bit i of the returned mask: chunk i of this thread is inside the input ---- */
    auto load = [&](int kt, int stage) -> unsigned {
        if constexpr (NORM == IN_NARROW) { /* 8-byte pieces: 4 channels of one tap of a row; zeros past K */
            const int k0 = kt * BK;
            T *as = As + stage * BM * LDA, *bs = Bs + stage * BN * LDA;
#pragma unroll
            for (int i = 0; i < BM * BK / 4 / THREADS; i++) {
                const int q = tid + i * THREADS, r = q >> 3, k = k0 + (q & 7) * 4, m = m0 + r;
                const T *src = NULL;
                if (m < a.M && k < a.K) {
                    const int n = m / HWo, rem = m - n * HWo, oy = rem / a.Wo, ox = rem - oy * a.Wo, tap = k / a.C, c = k - tap * a.C;
                    const int ky = tap / a.kw, iy = oy * a.stride - a.pad + ky, ix = ox * a.stride - a.pad + tap - ky * a.kw;
                    if (iy >= 0 && iy < a.H && ix >= 0 && ix < a.W) src = xa + ((size_t)(n * a.H + iy) * a.W + ix) * a.C + c;
                }
                tc_cp_async8(as + r * LDA + (q & 7) * 4, src ? src : xa, src ? 8 : 0);
            }
#pragma unroll
            for (int i = 0; i < BN * BK / 4 / THREADS; i++) {
                const int q = tid + i * THREADS, r = q >> 3, k = k0 + (q & 7) * 4, col = nb * BN + r;
                const bool in = col < a.cout && k < a.K;
                tc_cp_async8(bs + r * LDA + (q & 7) * 4, (const T *)a.w[0] + (in ? (size_t)col * a.K + k : 0), in ? 8 : 0);
            }
            return 0u;
        }
        if (kt >= KT1) { /* the shortcut's k-steps: 32 channels of the output pixel's row of sx, and of sw */
            const int k0 = (kt - KT1) * BK;
            const bool second = k0 >= a.sca;
            const T *xs = (const T *)(second ? a.sxb : a.sxa);
            const int cs = second ? a.sC - a.sca : a.sca, cc = second ? k0 - a.sca : k0;
            T *as = As + stage * BM * LDA, *bs = Bs + stage * BN * LDA;
#pragma unroll
            for (int i = 0; i < TL::ACH; i++) {
                const int ch = (tid + i * THREADS) & 3;
                const bool in = a_n[i] >= 0;
                tc_cp_async16(as + a_row[i] * LDA + ch * 8, in ? xs + (size_t)(m0 + a_row[i]) * cs + cc + ch * 8 : xa, in ? 16 : 0);
            }
#pragma unroll
            for (int i = 0; i < TL::BCH; i++) {
                const int q = tid + i * THREADS, r = q >> 2, ch = q & 3;
                const T *src = b_src[i] ? (const T *)a.sw + (size_t)(nb * BN + r) * a.sC + k0 + ch * 8 : NULL;
                tc_cp_async16(bs + r * LDA + ch * 8, src ? src : (const T *)a.w[0], src ? 16 : 0);
            }
            return 0; /* (no prologue on these) */
        }
        const int k0 = kt * BK, tap = k0 / a.C, c0 = k0 - tap * a.C, ky = tap / a.kw, kx = tap - ky * a.kw;
        const bool second = c0 >= a.ca;
        const T *xs = second ? xb : xa;
        const int cs = second ? a.C - a.ca : a.ca, cc = second ? c0 - a.ca : c0;
        unsigned ok = 0;
        T *as = As + stage * BM * LDA;
#pragma unroll
        for (int i = 0; i < TL::ACH; i++) {
            const int ch = (tid + i * THREADS) & 3;
            bool in;
            const T *src;
            if constexpr (NORM == NORM_LAYER) { /* a 1x1 convolution of stride 1 on one input (cuda_igemm_fits): input row m
                                                 * (fewer registers: no pixel coordinates) */
                const int m = m0 + a_row[i];
                in = m < a.M;
                src = in ? xa + (size_t)m * a.C + k0 + ch * 8 : xa;
            } else {
                const int iy = a_iy[i] + ky, ix = a_ix[i] + kx;
                in = a_n[i] >= 0 && iy >= 0 && iy < a.H && ix >= 0 && ix < a.W;
                src = in ? xs + ((size_t)(a_n[i] * Hs + (iy >> a.up)) * Ws + (ix >> a.up)) * cs + cc + ch * 8 : xa;
            }
            tc_cp_async16(as + a_row[i] * LDA + ch * 8, src, in ? 16 : 0);
            ok |= (unsigned)in << i;
        }
        T *bs = Bs + stage * BN * LDA;
#pragma unroll
        for (int i = 0; i < TL::BCH; i++) {
            const int q = tid + i * THREADS, r = q >> 2, ch = q & 3;
            tc_cp_async16(bs + r * LDA + ch * 8, b_src[i] ? b_src[i] + k0 + ch * 8 : (const T *)a.w[0], b_src[i] ? 16 : 0);
        }
        return ok;
    };

    /* ---- the prologue on the chunks this thread copied (they have landed: its own wait_group) ---- */
    auto normalise = [&](int kt, int stage, unsigned ok) {
        const int k0 = kt * BK, c0 = k0 - (k0 / a.C) * a.C;
        T *as = As + stage * BM * LDA;
#pragma unroll
        for (int i = 0; i < TL::ACH; i++) {
            if (!(ok >> i & 1)) continue; /* padding stays zero */
            const int ch = (tid + i * THREADS) & 3, c = c0 + ch * 8;
            T *p = as + a_row[i] * LDA + ch * 8;
            tc_v8 v = tc_ld8(p);
            float2 rs = make_float2(0.0f, 0.0f);
            int g = 0, gr = 0;
            if (NORM == NORM_LAYER) rs = rowstat[a_row[i]];
            else { g = c / a.cpg; gr = c - g * a.cpg; rs = a.stats[a_n[i] * a.groups + g]; }
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float2 f = tc_unpack<T>(v.r[e]);
                float o[2] = {f.x, f.y};
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int cc = c + 2 * e + h;
                    if (NORM == NORM_GROUP && gr == a.cpg) { /* the next group starts inside the chunk */
                        g++;
                        gr = 0;
                        rs = a.stats[a_n[i] * a.groups + g];
                    }
                    float t = (o[h] - rs.x) * rs.y;
                    if (a.gamma) t *= a.gamma[cc];
                    if (a.beta) t += a.beta[cc];
                    o[h] = a.silu ? silu(t) : t;
                    gr++;
                }
                v.r[e] = tc_pack<T>(o[0], o[1]);
            }
            tc_st8(p, v);
        }
    };

    float acc[MI][NJ][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;

    /* bits [ACH·stage, ACH·stage + ACH): which of this thread's A chunks of that stage lie inside the input (one
     * register: an array indexed by the rotating stage would live in local memory) */
    unsigned okm = 0;
    constexpr unsigned OKW = (1u << TL::ACH) - 1;
    /* split-K: slice z of S takes k-steps [kt0, kt0 + KN) */
    const int S = pos.S(), z = pos.z();
    const int kt0 = (int)((long long)KT * z / S), KN = (int)((long long)KT * (z + 1) / S) - kt0;
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < KN) okm |= load(kt0 + s, s) << (TL::ACH * s);
        tc_cp_async_commit();
    }
    for (int j = 0; j < KN; j++) {
        const int stage = j % STAGES;
        tc_cp_async_wait<STAGES - 2>();
        if ((NORM == NORM_GROUP || NORM == NORM_LAYER) && kt0 + j < KT1) normalise(kt0 + j, stage, okm >> (TL::ACH * stage) & OKW);
        __syncthreads(); /* stage j is complete for everyone, and stage j - 1 is no longer read */
        const int nk = j + STAGES - 1;
        if (nk < KN) {
            const int ns = nk % STAGES;
            okm = (okm & ~(OKW << (TL::ACH * ns))) | load(kt0 + nk, ns) << (TL::ACH * ns);
        }
        tc_cp_async_commit();
        const T *as = As + stage * BM * LDA, *bs = Bs + stage * BN * LDA;
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) {
            uint32_t af[MI][4], bfr[NJ][2];
#pragma unroll
            for (int i = 0; i < MI; i++)
                tc_ldmatrix_x4(af[i], as + (wm * TL::WTM + i * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LDA + kk * 16 + 8 * (lane >> 4));
#pragma unroll
            for (int p = 0; p < NJ / 2; p++) {
                uint32_t t4[4];
                tc_ldmatrix_x4(t4, bs + (wn * TL::WTN + p * 16 + (lane & 7) + 8 * (lane >> 4)) * LDA + kk * 16 + 8 * ((lane >> 3) & 1));
                bfr[2 * p][0] = t4[0]; bfr[2 * p][1] = t4[1];
                bfr[2 * p + 1][0] = t4[2]; bfr[2 * p + 1][1] = t4[3];
            }
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NJ; j++) tc_mma<T>(acc[i][j], af[i], bfr[j]);
        }
    }
    tc_cp_async_wait<0>();

    /* ---- split-K: every block leaves its partial sums; the last of a tile adds them in z order (the result does
     * not depend on which block is last) and goes on to the epilogue ---- */
    if (S > 1) {
        __shared__ int last_block;
        constexpr int PER = MI * NJ * 4;
        const int tile = pos.nb() * pos.gx() + pos.bx();
        float *ws = a.ws + (size_t)tile * S * PER * THREADS;
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int j = 0; j < NJ; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) ws[((size_t)z * PER + (i * NJ + j) * 4 + e) * THREADS + tid] = acc[i][j][e];
        __threadfence();
        __syncthreads();
        if (tid == 0) last_block = atomicAdd(&a.counters[tile], 1u) == (unsigned)(S - 1);
        __syncthreads();
        if (!last_block) return false; /* the whole block leaves together */
        __threadfence();
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int j = 0; j < NJ; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float v = 0.0f;
                    for (int zz = 0; zz < S; zz++) v += ws[((size_t)zz * PER + (i * NJ + j) * 4 + e) * THREADS + tid];
                    acc[i][j][e] = v;
                }
        if (tid == 0) a.counters[tile] = 0; /* ready for the next launch (and the next replay of a graph) */
    }
    __syncthreads(); /* the pipeline's shared memory becomes the output tile */

    /* ---- epilogue 1: + bias, + per-sample add, activation; rounded into the shared tile ---- */
    T *Cs = (T *)smem;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int j = 0; j < NJ; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int cl = wn * TL::WTN + j * 8 + 2 * t + h; /* tile column */
            int wi = 0, wrow = -1;                          /* its weight and weight row (output column) */
            if (a.geglu) {
                const int jj = nb * (BN / 2) + cl % (BN / 2);
                if (jj < a.cout / 2) wrow = (cl / (BN / 2)) * (a.cout / 2) + jj;
            } else {
                const int col = nb * BN + cl;
                wi = col / a.cout;
                if (wi < a.nw) wrow = col - wi * a.cout;
            }
            const float bias = wrow < 0 ? 0.0f : (a.bias[wi] ? a.bias[wi][wrow] : 0.0f) + (a.sbias ? a.sbias[wrow] : 0.0f);
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int r2 = 0; r2 < 2; r2++) {
                    const int rl = wm * TL::WTM + i * 16 + g + 8 * r2, m = m0 + rl;
                    float v = acc[i][j][r2 * 2 + h] + bias;
                    if (a.add && wrow >= 0 && m < a.M) v += ld((const T *)a.add + (size_t)(m / HWo) * a.cout + wrow);
                    if (!a.geglu) v = epi_act((be_act)a.act, v);
                    st(Cs + rl * TL::LDC + cl, v);
                }
        }
    __syncthreads();

    /* ---- epilogue 2: rows out (16 bytes at a time when the widths allow), + residual or GEGLU ---- */
    const int OC = a.geglu ? BN / 2 : BN, ow = a.geglu ? a.cout / 2 : a.cout; /* tile / tensor output widths */
    if (a.vec_out) {
        constexpr int V = BN / 8;
        for (int q = tid; q < BM * V; q += THREADS) {
            const int rl = q / V, c8 = (q - rl * V) * 8, m = m0 + rl;
            if (c8 >= OC || m >= a.M) continue;
            int wi = 0, oc;
            if (a.geglu) oc = nb * OC + c8;
            else { const int col = nb * BN + c8; wi = col / a.cout; oc = col - wi * a.cout; }
            if (wi >= a.nw || oc >= ow) continue;
            tc_v8 v = tc_ld8(Cs + rl * TL::LDC + c8);
            if (a.geglu) {
                const tc_v8 gv = tc_ld8(Cs + rl * TL::LDC + OC + c8);
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float2 x = tc_unpack<T>(v.r[e]), y = tc_unpack<T>(gv.r[e]);
                    v.r[e] = tc_pack<T>(x.x * act_apply(BE_ACT_GELU, y.x), x.y * act_apply(BE_ACT_GELU, y.y));
                }
            }
            T *dst = (T *)a.y[wi] + (size_t)m * ow + oc;
            if (a.res) {
                const tc_v8 rv = tc_ld8((const T *)a.res + (size_t)m * ow + oc);
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float2 x = tc_unpack<T>(v.r[e]), r = tc_unpack<T>(rv.r[e]);
                    v.r[e] = tc_pack<T>(x.x + r.x, x.y + r.y);
                }
            }
            tc_st8(dst, v);
            if (a.nst) tc_st8(Cs + rl * TL::LDC + c8, v); /* the stored values, for the statistics */
        }
    } else {
        for (int q = tid; q < BM * OC; q += THREADS) {
            const int rl = q / OC, cl = q - rl * OC, m = m0 + rl;
            if (m >= a.M) continue;
            int wi = 0, oc;
            if (a.geglu) oc = nb * OC + cl;
            else { const int col = nb * BN + cl; wi = col / a.cout; oc = col - wi * a.cout; }
            if (wi >= a.nw || oc >= ow) continue;
            float v = ld(Cs + rl * TL::LDC + cl);
            if (a.geglu) v *= act_apply(BE_ACT_GELU, ld(Cs + rl * TL::LDC + OC + cl));
            if (a.res) {
                /* round like the unfused sequence: the product and the sum are stored values */
                T p;
                st(&p, v);
                v = ld(&p) + ld((const T *)a.res + (size_t)m * ow + oc);
            }
            st((T *)a.y[wi] + (size_t)m * ow + oc, v);
            if (a.nst) st(Cs + rl * TL::LDC + cl, v);
        }
    }
    if (a.nst) {
        __syncthreads();
        epi_stats<T, TL, P>(a, Cs, pos);
    }
    return true;
}

template <typename T, typename TL, int NORM>
__global__ void __launch_bounds__(TL::THREADS, TL::MINB)
igemm_kernel(const ig_args a) {
    igemm_tile<T, TL, NORM>(a, ig_grid_pos());
}

/* ---- sequences: consecutive igemm ops in one launch ----
 * The ops a recorded sequence runs one after another (graph.cu: those with nothing but an igemm between them) go
 * out as one launch of all their tiles. Blocks take tickets (an atomic counter) and ticket t runs item t: the ops'
 * items in op order (row tile fastest, then column tile, then K slice), or a host-made order (tests). Before its
 * tile a block waits until the tiles of earlier ops it depends on have run their epilogues (a counter per op and
 * row tile): those holding its output rows (a residual, a shortcut input, or an output an earlier op read or wrote),
 * those holding its input window's rows, or all of them (a GroupNorm's statistics, a per-sample add, anything not
 * row for row). A ticket is only waited on by later tickets, whose blocks started after its own: every wait ends,
 * however the GPU places blocks. The last block to finish zeroes the counters for the next launch or replay. */

/* Where the rows of a tile's input window lie: [*lo, *hi) of the stored input's rows (those holding output rows
 * [m0, m1) of the convolution; a conservative range when the tile spans samples). */
static __host__ __device__ __forceinline__ void in_rows(const ig_args &a, int m0, int m1, int *lo, int *hi) {
    const int HWo = a.Ho * a.Wo, Hs = a.H >> a.up, Ws = a.W >> a.up, kh = a.taps / a.kw;
    const int n0 = m0 / HWo, oy0 = (m0 - n0 * HWo) / a.Wo, n1 = (m1 - 1) / HWo, oy1 = (m1 - 1 - n1 * HWo) / a.Wo;
    const int iy0 = max(0, oy0 * a.stride - a.pad), iy1 = min(a.H - 1, oy1 * a.stride - a.pad + kh - 1);
    *lo = (n0 * Hs + (iy0 >> a.up)) * Ws;
    *hi = (n1 * Hs + (iy1 >> a.up) + 1) * Ws;
}

/* Row tiles [*t0, *t1] of an earlier op (row tiles of bm rows, gx of them) that the tile [m0, m1) of op a depends on. */
static __host__ __device__ __forceinline__ void dep_tiles(const ig_args &a, int dep, int m0, int m1, int bm, int gx, int *t0, int *t1) {
    if (dep & IG_DEP_ALL) {
        *t0 = 0;
        *t1 = gx - 1;
        return;
    }
    int lo = 0x7fffffff, hi = 0;
    if (dep & IG_DEP_OUT) {
        lo = m0;
        hi = m1;
    }
    if (dep & IG_DEP_IN) {
        int l, h;
        in_rows(a, m0, m1, &l, &h);
        lo = min(lo, l);
        hi = max(hi, h);
    }
    *t0 = lo / bm;
    *t1 = min(gx - 1, (hi - 1) / bm);
}

/* Waits until *counter reaches need; false if it has not after timeout_ns. */
static __device__ __forceinline__ bool seq_wait(const unsigned *counter, unsigned need, unsigned long long timeout_ns) {
    unsigned have = tc_ld_acquire(counter);
#ifdef CUDA_EMU /* blocks run one after another: what a tile waits for has run already (every tile of the row, in the
                * orders the host makes: exactly `need`), or never will */
    (void)timeout_ns;
    if (have > need) cuda_emu_fail("igemm sequence: a tile waits for %u tiles of a row, %u have run", need, have);
    return have == need;
#else
    if (have >= need) return true;
    const unsigned long long t0 = tc_globaltimer();
    while ((have = tc_ld_acquire(counter)) < need) {
        if (tc_globaltimer() - t0 > timeout_ns) return false;
        __nanosleep(100);
    }
    return true;
#endif
}

/* A wait that never ends means a dependency the host got wrong or a GPU that does not run a block which took an
 * earlier ticket: neither should happen, and a hang would say nothing. So the waiting thread leaves a record in host
 * memory (one 64-bit store: op, earlier op, its row tile, tiles run and needed) and stops the kernel; the backend's
 * error message then reads the record (cuda_igemm_seq_fault). */
static __device__ __noinline__ void seq_stall(unsigned long long *fault, int s, int p, int t, const unsigned *counter, unsigned need) {
    const unsigned long long have = tc_ld_acquire(counter);
    if (fault) {
        *(volatile unsigned long long *)fault = 1ull << 63 | (unsigned long long)s << 59 | (unsigned long long)p << 55 |
                                                  (unsigned long long)(t & 0xffffff) << 31 | (have & 0x7fff) << 16 | (need & 0xffff);
        __threadfence_system();
    }
    __trap();
}

/* One variant of the tile code per prologue, each compiled on its own (not inlined into one kernel, where the four
 * together needed more registers than one), reading its op's arguments from shared memory at fixed addresses. */
template <typename T, typename TL, int NORM> static __device__ __noinline__ bool seq_tile(void) {
    return igemm_tile<T, TL, NORM>(seq_args, ig_seq_pos());
}

template <typename T, typename TL>
__global__ void __launch_bounds__(TL::THREADS, TL::SEQ_MINB)
igemm_seq_kernel(const ig_seq q) {
    __shared__ int s_s, last_s;
    if (threadIdx.x == 0) {
        const unsigned t = atomicAdd(q.ticket, 1u);
        const int item = (int)(q.order ? q.order[t] : t);
        int s = 0;
        while (s + 1 < q.nops && item >= q.op[s + 1].first) s++;
        const ig_seq_op &o = q.op[s];
        const int local = item - o.first;
        seq_pos = ig_pos{local % o.gx, local / o.gx % o.gy, o.gx, o.gy, local / (o.gx * o.gy), o.S};
        s_s = s;
    }
    __syncthreads();
    const int s = s_s;
    for (int i = threadIdx.x; i < (int)(sizeof(ig_args) / 4); i += TL::THREADS) ((int *)&seq_args)[i] = ((const int *)&q.op[s].a)[i];
    if (threadIdx.x == 0) {
        const int m0 = seq_pos.bx * TL::BM, m1 = min(m0 + TL::BM, q.op[s].a.M);
        for (int p = 0; p < s; p++) {
            if (!q.op[s].dep[p]) continue;
            int t0, t1;
            dep_tiles(q.op[s].a, q.op[s].dep[p], m0, m1, TL::BM, q.op[p].gx, &t0, &t1);
            for (int t = t0; t <= t1; t++) {
                const unsigned need = (unsigned)q.op[p].gy + q.stall;
                const unsigned *counter = q.done + q.op[p].done_off + t;
                if (!seq_wait(counter, need, q.timeout_ns)) seq_stall(q.fault, s, p, t, counter, need);
            }
        }
        __threadfence();
    }
    __syncthreads();
    bool ran = false;
    switch (seq_args.C < BK ? IN_NARROW : seq_args.norm) {
    case NORM_GROUP: /* (the large tile's GroupNorm variant would need a few registers more than 128: those run alone) */
        if constexpr (TL::BM == 64) ran = seq_tile<T, TL, NORM_GROUP>();
        else __trap();
        break;
    case NORM_LAYER: ran = seq_tile<T, TL, NORM_LAYER>(); break;
    case IN_NARROW: ran = seq_tile<T, TL, IN_NARROW>(); break;
    default: ran = seq_tile<T, TL, 0>(); break;
    }
    __threadfence(); /* the tile's outputs before its counter; and every block's counters before the reset */
    __syncthreads();
    if (threadIdx.x == 0) {
        if (ran) atomicAdd(q.done + q.op[s].done_off + seq_pos.bx, 1u);
        last_s = atomicAdd(q.ticket + 1, 1u) == (unsigned)(q.items - 1);
    }
    __syncthreads();
    if (last_s) { /* every block is done: ready for the next launch (and the next replay of a graph) */
        for (int i = threadIdx.x; i < q.ndone; i += TL::THREADS) q.done[i] = 0;
        if (threadIdx.x == 0) q.ticket[0] = q.ticket[1] = 0;
    }
}

/* An op waiting to go out, with its tile shape and K slices. */
struct ig_pending {
    ig_args a;
    int small, splits;
};
struct ig_seq_state {
    std::vector<ig_pending> ops;
};
static ig_seq_state *seq_state(be *b) {
    cuda_impl *c = cuda_of(b);
    if (!c->seq) c->seq = new ig_seq_state();
    return (ig_seq_state *)c->seq;
}

template <typename TL> static void grid_of(const ig_args &a, int *gx, int *gy) {
    const int ncols = a.geglu ? a.cout / 2 : a.nw * a.cout, oc = a.geglu ? TL::BN / 2 : TL::BN;
    *gx = (a.M + TL::BM - 1) / TL::BM;
    *gy = (ncols + oc - 1) / oc;
}

/* The workspace of n ops that may run at once, side by side: split-K partial tiles and a counter per tile, the
 * statistics epilogue's tile slots and its counter (op k: CUDA_EPI_STATS_COUNTER - k). */
template <typename TL> static sd_status bind(be *b, ig_args *x, const int *splits, int n) {
    size_t ws_f = 0, st_f = 0, ws_off[IG_SEQ_MAX], st_off[IG_SEQ_MAX][IG_MAX_STATS];
    size_t tiles_split = 0, cnt_off[IG_SEQ_MAX];
    int counters = 0;
    for (int k = 0; k < n; k++) {
        ig_args &a = x[k];
        int gx, gy;
        grid_of<TL>(a, &gx, &gy);
        const size_t tiles = (size_t)gx * gy;
        if (splits[k] > 1) { /* f32 partial tiles and a counter per tile */
            ws_off[k] = ws_f;
            ws_f += tiles * splits[k] * TL::BM * TL::BN;
            cnt_off[k] = tiles_split;
            tiles_split += tiles;
            counters = 1;
        }
        const int HWo = a.Ho * a.Wo; /* per set, per tile: slots for the samples and groups a tile's rows and columns can touch */
        for (int e = 0; e < a.nst; e++) {
            const int cpg = a.st[e].ctot / a.st[e].groups, ns = (TL::BM - 1) / HWo + 2, gt = (TL::BN - 1) / cpg + 2;
            a.st[e].ns = ns < a.M / HWo ? ns : a.M / HWo;
            a.st[e].gt = gt < a.st[e].groups ? gt : a.st[e].groups;
            st_off[k][e] = st_f;
            st_f += tiles * a.st[e].ns * a.st[e].gt * 3;
            counters = 1;
        }
    }
    if (tiles_split > CUDA_SPLITK_COUNTERS) return SD_ERR_UNSUPPORTED;
    void *ws = NULL, *cnt = NULL, *stw = NULL;
    sd_status st = SD_OK;
    if (ws_f) st = cuda_buffer(b, CUDA_BUF_SPLITK, ws_f * sizeof(float), &ws);
    if (st == SD_OK && st_f) st = cuda_buffer(b, CUDA_BUF_GN_TILES, st_f * sizeof(float), &stw);
    if (st == SD_OK && counters) st = cuda_buffer(b, CUDA_BUF_COUNTERS, 65536 * sizeof(unsigned), &cnt);
    if (st != SD_OK) return st;
    for (int k = 0; k < n; k++) {
        if (splits[k] > 1) {
            x[k].ws = (float *)ws + ws_off[k];
            x[k].counters = (unsigned *)cnt + CUDA_SPLITK_COUNTER0 + cnt_off[k];
        }
        for (int e = 0; e < x[k].nst; e++) x[k].st[e].ws = (float *)stw + st_off[k][e];
        if (x[k].nst) x[k].counter = (unsigned *)cnt + CUDA_EPI_STATS_COUNTER - k;
    }
    return SD_OK;
}

template <typename T, typename TL, int NORM> static sd_status launch(be *b, const ig_args &a, int splits) {
    cuda_impl *c = cuda_of(b);
    if ((size_t)TL::SMEM > c->smem_optin) return SD_ERR_UNSUPPORTED;
    CUDA_SMEM_OPTIN((igemm_kernel<T, TL, NORM>), TL::SMEM);
    int gx, gy;
    grid_of<TL>(a, &gx, &gy);
    ig_args x = a;
    const sd_status st = bind<TL>(b, &x, &splits, 1);
    if (st != SD_OK) return st;
    CUDA_LAUNCH((igemm_kernel<T, TL, NORM>), dim3(gx, gy, splits), TL::THREADS, TL::SMEM, c->stream, x);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

template <typename T, typename TL> static sd_status launch_one(be *b, const ig_args &a, int splits) {
    if (a.C < BK) return launch<T, TL, IN_NARROW>(b, a, splits);
    switch (a.norm) {
    case NORM_GROUP: return launch<T, TL, NORM_GROUP>(b, a, splits);
    case NORM_LAYER: return launch<T, TL, NORM_LAYER>(b, a, splits);
    default: return launch<T, TL, 0>(b, a, splits);
    }
}

/* The memory an op reads or writes, for the dependencies between the ops of a sequence: `rows` rows of `width`
 * elements, addressed by row (IG_DEP_OUT: rows of the op's output; IG_DEP_IN: rows of its input window) or not
 * (IG_DEP_ALL: read or written as a whole, or by sample). */
struct ig_region {
    const char *p;
    size_t bytes;
    long long rows, width;
    int role;
};

static void regions(const ig_args &a, size_t es, std::vector<ig_region> *rd, std::vector<ig_region> *wr) {
    const long long HWo = (long long)a.Ho * a.Wo, N = a.M / HWo, in_rows_n = N * (a.H >> a.up) * (a.W >> a.up), M = a.M;
    const long long ow = a.geglu ? a.cout / 2 : a.cout;
    auto add = [&](std::vector<ig_region> *v, const void *p, long long rows, long long width, size_t elem, int role) {
        if (p) v->push_back(ig_region{(const char *)p, (size_t)(rows * width) * elem, rows, width, role});
    };
    add(rd, a.xa, in_rows_n, a.ca, es, IG_DEP_IN);
    add(rd, a.xb, in_rows_n, a.C - a.ca, es, IG_DEP_IN);
    add(rd, a.res, M, ow, es, IG_DEP_OUT);
    add(rd, a.sxa, M, a.sca, es, IG_DEP_OUT);
    add(rd, a.sxb, M, a.sC - a.sca, es, IG_DEP_OUT);
    add(rd, a.add, N, a.cout, es, IG_DEP_ALL);
    if (a.norm == NORM_GROUP) add(rd, a.stats, N, a.groups, sizeof(float2), IG_DEP_ALL);
    for (int j = 0; j < a.nw; j++) add(wr, a.y[j], M, ow, es, IG_DEP_OUT);
    for (int e = 0; e < a.nst; e++) {
        add(rd, a.st[e].merge, N, a.st[e].groups * 3, sizeof(float), IG_DEP_ALL);
        add(wr, a.st[e].out, N, a.st[e].groups, sizeof(float2), IG_DEP_ALL);
        add(wr, a.st[e].partial, N, a.st[e].groups * 3, sizeof(float), IG_DEP_ALL);
    }
}

static bool overlaps(const ig_region &x, const ig_region &y) { return x.p < y.p + y.bytes && y.p < x.p + x.bytes; }
static bool same(const ig_region &x, const ig_region &y) { return x.p == y.p && x.rows == y.rows && x.width == y.width; }

/* What op t (later) waits for of op e's tiles (IG_DEP_*; 0: nothing). Row for row only where the two touch one
 * tensor as rows of their outputs (or, for e's reads, of a row-local input: a 1x1 convolution of stride 1). */
static int dependency(const ig_args &e, const ig_args &t, size_t es) {
    std::vector<ig_region> er, ew, tr, tw;
    regions(e, es, &er, &ew);
    regions(t, es, &tr, &tw);
    const bool e_rowlocal = e.taps == 1 && e.stride == 1 && e.pad == 0 && !e.up;
    int dep = 0;
    for (auto &w : ew) /* t reads what e writes */
        for (auto &r : tr)
            if (overlaps(w, r)) dep |= same(w, r) && w.role == IG_DEP_OUT && r.role != IG_DEP_ALL ? r.role : IG_DEP_ALL;
    for (auto &w : tw) { /* t writes what e reads or writes */
        for (auto &r : er)
            if (overlaps(w, r)) dep |= same(w, r) && w.role == IG_DEP_OUT && (r.role == IG_DEP_OUT || (r.role == IG_DEP_IN && e_rowlocal)) ? IG_DEP_OUT : IG_DEP_ALL;
        for (auto &x : ew)
            if (overlaps(w, x)) dep |= same(w, x) && w.role == IG_DEP_OUT && x.role == IG_DEP_OUT ? IG_DEP_OUT : IG_DEP_ALL;
    }
    return dep;
}

/* Tests ($SD_CUDA_SEQ=eager, eager-reverse): the order that runs every item as early as the dependencies allow, the
 * latest op first, its items from the first (or from the last: a window missing rows above its own shows only then),
 * so that a dependency the analysis missed shows as a wrong result. */
template <typename TL> static std::vector<unsigned> eager_order(const ig_seq &q, bool reverse) {
    std::vector<unsigned> order, done(q.ndone, 0);
    std::vector<char> ran(q.items, 0);
    while ((int)order.size() < q.items) {
        int pick = -1;
        for (int s = q.nops - 1; s >= 0 && pick < 0; s--) {
            const ig_seq_op &o = q.op[s];
            const int n = o.gx * o.gy * o.S;
            for (int i = 0; i < n && pick < 0; i++) {
                const int l = reverse ? n - 1 - i : i;
                if (ran[o.first + l]) continue;
                const int bx = l % o.gx, m0 = bx * TL::BM, m1 = std::min(m0 + TL::BM, o.a.M);
                bool ready = true;
                for (int p = 0; p < s && ready; p++) {
                    if (!o.dep[p]) continue;
                    int t0, t1;
                    dep_tiles(o.a, o.dep[p], m0, m1, TL::BM, q.op[p].gx, &t0, &t1);
                    for (int t = t0; t <= t1 && ready; t++) ready = done[q.op[p].done_off + t] == (unsigned)(q.op[p].gy * q.op[p].S);
                }
                if (ready) pick = o.first + l;
            }
        }
        if (pick < 0) break; /* (cannot happen: op order is always possible) */
        int s = 0;
        while (s + 1 < q.nops && pick >= q.op[s + 1].first) s++;
        ran[pick] = 1;
        done[q.op[s].done_off + (pick - q.op[s].first) % q.op[s].gx]++;
        order.push_back((unsigned)pick);
    }
    return order;
}

template <typename T, typename TL> static sd_status launch_seq(be *b, const std::vector<ig_pending> &v) {
    cuda_impl *c = cuda_of(b);
    if (v.size() == 1) return launch_one<T, TL>(b, v[0].a, v[0].splits);
    if ((size_t)TL::SMEM > c->smem_optin) return SD_ERR_UNSUPPORTED;
    CUDA_SMEM_OPTIN((igemm_seq_kernel<T, TL>), TL::SMEM);
    std::unique_ptr<ig_seq> qp(new ig_seq()); /* (7.5 KB, zeroed: kept off the stack) */
    ig_seq &q = *qp;
    q.nops = (int)v.size();
    ig_args x[IG_SEQ_MAX];
    int splits[IG_SEQ_MAX];
    for (int k = 0; k < q.nops; k++) {
        x[k] = v[k].a;
        splits[k] = v[k].splits;
    }
    sd_status st = bind<TL>(b, x, splits, q.nops);
    if (st != SD_OK) return st;
    for (int k = 0; k < q.nops; k++) {
        ig_seq_op &o = q.op[k];
        o.a = x[k];
        grid_of<TL>(x[k], &o.gx, &o.gy);
        o.S = splits[k];
        o.first = q.items;
        q.items += o.gx * o.gy * o.S;
        o.done_off = q.ndone;
        q.ndone += o.gx;
        for (int p = 0; p < k; p++) o.dep[p] = (unsigned char)dependency(x[p], x[k], cuda_dtype_size(c->dt));
    }
    void *cnt;
    if ((st = cuda_buffer(b, CUDA_BUF_SEQ, (size_t)(2 + q.ndone) * sizeof(unsigned), &cnt)) != SD_OK) return st;
    q.ticket = (unsigned *)cnt;
    q.done = q.ticket + 2;
    q.fault = c->seq_fault;
    q.timeout_ns = c->seq_timeout_ns;
    q.stall = c->seq_mode == 4;
    if (c->seq_mode == 2 || c->seq_mode == 3) { /* tests: an eager order, uploaded (a synchronous copy: never inside a graph's capture) */
        const std::vector<unsigned> order = eager_order<TL>(q, c->seq_mode == 3);
        void *ord;
        if ((st = cuda_buffer(b, CUDA_BUF_SEQ_ORDER, order.size() * sizeof(unsigned), &ord)) != SD_OK) return st;
        CUDA_CHECK(cudaMemcpy(ord, order.data(), order.size() * sizeof(unsigned), cudaMemcpyHostToDevice));
        q.order = (const unsigned *)ord;
    }
    CUDA_LAUNCH((igemm_seq_kernel<T, TL>), dim3(q.items), TL::THREADS, TL::SMEM, c->stream, q);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

sd_status cuda_igemm_seq_flush(be *b) {
    cuda_impl *c = cuda_of(b);
    if (!c->seq || ((ig_seq_state *)c->seq)->ops.empty()) return SD_OK;
    std::vector<ig_pending> v;
    v.swap(((ig_seq_state *)c->seq)->ops);
    if (!be_ok(b)) return SD_OK; /* after an error nothing more runs */
    const bool small = v[0].small;
    if (c->dt == BE_F16) return small ? launch_seq<__half, tile_small>(b, v) : launch_seq<__half, tile_big>(b, v);
    return small ? launch_seq<__nv_bfloat16, tile_small>(b, v) : launch_seq<__nv_bfloat16, tile_big>(b, v);
}

sd_status cuda_explain(be *b, sd_status st) {
    const cuda_impl *c = cuda_of(b);
    const unsigned long long r = c->seq_fault ? *(volatile const unsigned long long *)c->seq_fault : 0;
    if (st == SD_OK || !(r >> 63)) return st;
    return err_fail(SD_ERR_BACKEND,
                    "cuda backend: an igemm sequence stopped: a tile of its op %d waited in vain for row tile %d of op %d "
                    "(%u of the %u column tiles it needs had run; timeout %.0f s). $SD_CUDA_SEQ=0 launches every igemm "
                    "on its own; please report this",
                    (int)(r >> 59 & 15), (int)(r >> 31 & 0xffffff), (int)(r >> 55 & 15), (unsigned)(r >> 16 & 0x7fff),
                    (unsigned)(r & 0xffff), c->seq_timeout_ns / 1e9);
}

void cuda_igemm_seq_free(be *b) {
    cuda_impl *c = cuda_of(b);
    delete (ig_seq_state *)c->seq;
    c->seq = NULL;
}

/* The tile shape and the number of K slices for a GEMM of tiles_big 128x128 tiles (tiles_small 64x64) and kt k-steps
 * on a GPU of `sms` SMs: the pair whose busiest SM has the least work, in 64x64-tile k-steps: a large tile's k-step
 * counts 4, a small one's 1.25 (its warps reuse each fragment half as much); a block of a split K also writes its
 * partial tile and the last one reads them back (2 k-steps' worth); a lone block (fewer blocks than SMs) runs at half
 * its SM's rate. tools/cuda_roofline.py models the same choice. */
static double plan_cost(long long tiles, double area, int kt, int s, int sms) {
    const long long blocks = tiles * s;
    const double per = area * ((double)kt / s + (s > 1 ? 2.0 : 0.0));
    double cost = (double)((blocks + sms - 1) / sms) * per;
    return blocks < sms && cost < 2 * per ? 2 * per : cost;
}

static void plan(long long tiles_big, long long tiles_small, int kt, int sms, int *small, int *splits) {
    double best = 1e300;
    *small = 0;
    *splits = 1;
    for (int sh = 0; sh < 2; sh++)
        for (int s = 1; s <= 16 && (s == 1 || kt / s >= 4); s++) {
            const double cost = plan_cost(sh ? tiles_small : tiles_big, sh ? 1.25 : 4.0, kt, s, sms);
            if (cost < best * (1 - 1e-9)) {
                best = cost;
                *small = sh;
                *splits = s;
            }
        }
}

/* the tiles of a with the 128x128 or the 64x64 tile (the grid's two dimensions: grid_of) */
static long long tiles_of(const ig_args &a, int small) {
    int gx, gy;
    if (small) grid_of<tile_small>(a, &gx, &gy);
    else grid_of<tile_big>(a, &gx, &gy);
    return (long long)gx * gy;
}

/* whether the split-K tiles of the open sequence and a would need more counters than there are */
static bool splits_over(const std::vector<ig_pending> &ops, const ig_args &a, int small, int splits) {
    long long n = splits > 1 ? tiles_of(a, small) : 0;
    for (auto &p : ops) n += p.splits > 1 ? tiles_of(p.a, p.small) : 0;
    return n > CUDA_SPLITK_COUNTERS;
}

template <typename T> static sd_status run_as(be *b, const ig_args &a) {
    cuda_impl *c = cuda_of(b);
    int small, splits;
    const int kt = (a.K + BK - 1) / BK + (a.sxa ? a.sC / BK : 0);
    plan(tiles_of(a, 0), tiles_of(a, 1), kt, c->sms, &small, &splits);
    if (c->tile_mode) small = c->tile_mode == 2; /* $SD_CUDA_TILE, $SD_CUDA_SPLITK: tests */
    if (c->split_k > 0) splits = c->split_k < kt ? c->split_k : kt;
    if (c->seq_mode && c->seq_collect && (small || a.norm != NORM_GROUP)) { /* joins the open sequence, or starts the next one */
        ig_seq_state *q = seq_state(b);
        if (!q->ops.empty() && (q->ops[0].small != small || q->ops.size() == IG_SEQ_MAX || splits_over(q->ops, a, small, splits))) {
            const sd_status st = cuda_igemm_seq_flush(b);
            if (st != SD_OK) return st;
        }
        if ((size_t)(small ? tile_small::SMEM : tile_big::SMEM) > c->smem_optin || (splits > 1 && tiles_of(a, small) > CUDA_SPLITK_COUNTERS))
            return SD_ERR_UNSUPPORTED; /* (what launch() would say) */
        q->ops.push_back(ig_pending{a, small, splits});
        return SD_OK;
    }
    const sd_status st = cuda_igemm_seq_flush(b); /* (a large tile with a GroupNorm prologue goes out alone, in order) */
    if (st != SD_OK) return st;
    return small ? launch_one<T, tile_small>(b, a, splits) : launch_one<T, tile_big>(b, a, splits);
}

static int al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

int cuda_igemm_fits(be *b, const ig_args *a) {
    if (cuda_of(b)->dt == BE_F32 || a->nw < 1 || a->nw > 3) return 0;
    if (a->C < BK) { /* IN_NARROW: one plain input and weight, 8-byte pieces */
        if (a->C % 4 || a->C < 4 || a->xb || a->up || a->norm || a->sxa || a->nw != 1 || a->geglu || ((uintptr_t)a->xa & 7) ||
            ((uintptr_t)a->w[0] & 7))
            return 0;
    } else {
        if (a->C % BK || a->ca % BK || a->K % BK) return 0;
        if (!al16(a->xa) || (a->xb && !al16(a->xb))) return 0;
        for (int j = 0; j < a->nw; j++)
            if (!al16(a->w[j])) return 0;
    }
    if (a->norm == NORM_LAYER && (a->xb || a->up || a->taps != 1)) return 0;
    if (a->geglu && (a->nw != 1 || a->cout % 2 || a->add)) return 0;
    if (a->sxa && (a->nw != 1 || a->geglu || a->norm == NORM_LAYER || a->sC % BK || a->sca % BK || !al16(a->sxa) || (a->sxb && !al16(a->sxb)) ||
                   !al16(a->sw)))
        return 0;
    if (a->nst && (a->nst > IG_MAX_STATS || a->nw != 1 || a->geglu || a->M % (a->Ho * a->Wo))) return 0;
    for (int e = 0; e < a->nst; e++) {
        const ig_stats &o = a->st[e];
        if (o.groups < 1 || o.ctot % o.groups || o.coff < 0 || o.coff + a->cout > o.ctot || (!o.out && !o.partial)) return 0;
    }
    /* the epilogue knows the models' fused activations (epi_act); another (TAESD's ReLU) runs composed */
    if (a->act != BE_ACT_NONE && a->act != BE_ACT_SILU && a->act != BE_ACT_GELU && a->act != BE_ACT_QUICK_GELU) return 0;
    return a->M > 0 && (long long)(a->geglu ? a->cout / 2 : a->nw * a->cout) <= 65535LL * 32;
}

sd_status cuda_igemm(be *b, const ig_args *a) {
    if (!cuda_igemm_fits(b, a)) return SD_ERR_UNSUPPORTED;
    ig_args x = *a;
    const int ow = a->geglu ? a->cout / 2 : a->cout;
    x.vec_out = ow % 8 == 0 && (!a->res || al16(a->res));
    for (int j = 0; j < a->nw; j++) x.vec_out = x.vec_out && al16(a->y[j]);
    return cuda_of(b)->dt == BE_F16 ? run_as<__half>(b, x) : run_as<__nv_bfloat16>(b, x);
}
