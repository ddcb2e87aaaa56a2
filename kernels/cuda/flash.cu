/* flash.cu — fused multi-head attention in the FlashAttention-2 style on the tensor-core helpers (tc.h): one kernel
 * for self- and cross-attention (any key count, e.g. 77 text tokens), optional causal mask, f16/bf16 storage, f32
 * scores and softmax state.
 *
 * Block = 4 warps = 64 queries of one (sample, head); warp w owns query rows 16w..16w+15 for the whole kernel:
 *   - Q: the block's 64 x D tile arrives by cp.async, each warp keeps its 16 rows as mma A fragments in registers;
 *   - K, V: tiles of BC keys stream through a two-stage cp.async ring (the next tile is in flight while this one
 *     is used); fragments come out of shared memory by ldmatrix (V transposed on the way: ldmatrix.trans);
 *   - S = Q·Kᵀ (mma, f32), scaled by log2(e)/sqrt(d), masked; the running row max m and row sum l stay in
 *     registers (each row is spread over the 4 lanes of a quad: two shuffles reduce it); P = exp2(S - m) goes
 *     straight from the S accumulators into A fragments (rounded to the storage type) and O += P·V (mma, f32);
 *   - at the end O / l is staged in the warp's own rows of the Q tile and written out in 16-byte stores.
 * D is the head dim rounded up to 16 (template: 16 .. 160; the padding columns are zero-filled by the copies);
 * BC = 64 keys per tile, 32 for D > 96 to stay within the register file. Shared rows are D + 8 elements long, an
 * odd number of 16-byte units, so the 8 row addresses of every ldmatrix fall in different bank groups.
 * Head dims that are not a multiple of 8 (or unaligned tensors) take the same kernel with element-wise loads
 * (VEC = false, D = 32 or 48); larger such dims go to the reference path in attention.cu. */
#include "cuda_internal.h"
#include "tc.h"

#include <math.h>

#define FA_WARPS 4
#define FA_BQ (16 * FA_WARPS)

template <int D> struct fa_cfg {
    static constexpr int BC = D > 96 ? 32 : 64;  /* keys per tile */
    static constexpr int LD = D + 8;             /* shared row stride (elements) */
    static constexpr int SMEM = (FA_BQ + 4 * BC) * LD * 2; /* Q + 2 stages of K and V, bytes */
};

template <typename T, int D, bool VEC>
__global__ void __launch_bounds__(32 * FA_WARPS)
fa2_kernel(const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v, T *__restrict__ y, int Tq, int Tk, int qc, int kc,
           int vc, int yc, int d, int dv, float scale_log2, int causal) {
    typedef fa_cfg<D> C;
    constexpr int BC = C::BC, LD = C::LD, NT = BC / 8, DT = D / 8, KS = D / 16, PS = BC / 16;
    CUDA_DYNAMIC_SHARED(T, smem);
    T *Qs = smem, *Ks = Qs + FA_BQ * LD, *Vs = Ks + 2 * BC * LD;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int q0 = blockIdx.x * FA_BQ, h = blockIdx.y, n = blockIdx.z;
    const T *qb = q + ((size_t)n * Tq + q0) * qc + (size_t)h * d;
    const T *kb = k + (size_t)n * Tk * kc + (size_t)h * d, *vb = v + (size_t)n * Tk * vc + (size_t)h * dv;

    /* rows x D/8 16-byte chunks of a [rows][D] tile from src (row stride `stride`, `cols` valid columns, `valid` rows) */
    auto load = [&](T *dst, const T *src, int rows, int valid, int stride, int cols) {
        if constexpr (VEC) {
            for (int i = tid; i < rows * DT; i += 32 * FA_WARPS) {
                const int r = i / DT, c = (i % DT) * 8;
                const bool ok = r < valid && c < cols;
                tc_cp_async16(dst + r * LD + c, ok ? src + (size_t)r * stride + c : src, ok ? 16 : 0);
            }
        } else {
            for (int i = tid; i < rows * D; i += 32 * FA_WARPS) {
                const int r = i / D, c = i % D;
                st(dst + r * LD + c, r < valid && c < cols ? ld(src + (size_t)r * stride + c) : 0.0f);
            }
        }
    };
    const int kend = causal ? min(Tk, q0 + FA_BQ) : Tk; /* causal: no key past the block's last query */
    const int ntiles = (kend + BC - 1) / BC;
    load(Qs, qb, FA_BQ, Tq - q0, qc, d);
    load(Ks, kb, BC, kend, kc, d);
    load(Vs, vb, BC, kend, vc, dv);
    tc_cp_async_commit();

    uint32_t qf[KS][4];
    float o[DT][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < DT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    const int row0 = q0 + warp * 16 + g; /* the query of accumulator rows g (and g + 8) of this lane */

    for (int j = 0; j < ntiles; j++) {
        const int st_ = j & 1, k0 = j * BC;
        if (j + 1 < ntiles) {
            const int k1 = k0 + BC;
            load(Ks + (st_ ^ 1) * BC * LD, kb + (size_t)k1 * kc, BC, kend - k1, kc, d);
            load(Vs + (st_ ^ 1) * BC * LD, vb + (size_t)k1 * vc, BC, kend - k1, vc, dv);
            tc_cp_async_commit();
            tc_cp_async_wait<1>();
        } else {
            tc_cp_async_wait<0>();
        }
        __syncthreads();
        if (j == 0) { /* the warp's 16 query rows as A fragments, kept for the whole kernel */
#pragma unroll
            for (int kk = 0; kk < KS; kk++)
                tc_ldmatrix_x4(qf[kk], Qs + (warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + kk * 16 + 8 * (lane >> 4));
        }
        const T *Kt = Ks + st_ * BC * LD, *Vt = Vs + st_ * BC * LD;

        /* S = Q · K_tileᵀ: two key n8-tiles per ldmatrix.x4 */
        float s[NT][4];
#pragma unroll
        for (int i = 0; i < NT; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KS; kk++)
#pragma unroll
            for (int p = 0; p < NT / 2; p++) {
                uint32_t b[4];
                tc_ldmatrix_x4(b, Kt + (p * 16 + (lane & 7) + 8 * (lane >> 4)) * LD + kk * 16 + 8 * ((lane >> 3) & 1));
                const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
                tc_mma<T>(s[2 * p], qf[kk], b0);
                tc_mma<T>(s[2 * p + 1], qf[kk], b1);
            }

        /* online softmax in base 2; accumulator i of tile nt is row g + 8 (i >> 1), key k0 + 8 nt + 2t + (i & 1) */
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int key = k0 + nt * 8 + 2 * t + (i & 1), qi = row0 + 8 * (i >> 1);
                const float x = key < kend && (!causal || key <= qi) ? s[nt][i] * scale_log2 : -INFINITY;
                s[nt][i] = x;
                mx[i >> 1] = fmaxf(mx[i >> 1], x);
            }
        float alpha[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(CUDA_FULL_MASK, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(CUDA_FULL_MASK, mx[r], 2));
            alpha[r] = mx[r] == -INFINITY ? 1.0f : exp2f(m[r] - mx[r]); /* exp2(-inf) = 0 on the first tile */
            m[r] = mx[r];
            l[r] *= alpha[r]; /* each lane keeps its partial row sum; the quad adds them at the end */
        }
#pragma unroll
        for (int dt = 0; dt < DT; dt++) {
            o[dt][0] *= alpha[0]; o[dt][1] *= alpha[0];
            o[dt][2] *= alpha[1]; o[dt][3] *= alpha[1];
        }
        uint32_t pf[PS][4];
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            float p[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float mr = m[i >> 1];
                p[i] = mr == -INFINITY ? 0.0f : exp2f(s[nt][i] - mr);
                l[i >> 1] += p[i];
            }
            /* P as the A operand of P·V: keys 16kk + 2t.. are tile 2kk, keys 16kk + 8 + 2t.. tile 2kk + 1 */
            pf[nt >> 1][(nt & 1) * 2 + 0] = tc_pack<T>(p[0], p[1]);
            pf[nt >> 1][(nt & 1) * 2 + 1] = tc_pack<T>(p[2], p[3]);
        }

        /* O += P · V_tile: V [key][dim] through ldmatrix.trans, two dim n8-tiles per x4 */
#pragma unroll
        for (int kk = 0; kk < PS; kk++)
#pragma unroll
            for (int p = 0; p < DT / 2; p++) {
                uint32_t b[4];
                tc_ldmatrix_x4_trans(b, Vt + (kk * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + p * 16 + 8 * (lane >> 4));
                const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
                tc_mma<T>(o[2 * p], pf[kk], b0);
                tc_mma<T>(o[2 * p + 1], pf[kk], b1);
            }
        __syncthreads(); /* every warp is done with this stage before the next iteration refills it */
    }

    /* O / l into the warp's own 16 rows of the Q tile, then out */
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float sum = l[r] + __shfl_xor_sync(CUDA_FULL_MASK, l[r], 1);
        sum += __shfl_xor_sync(CUDA_FULL_MASK, sum, 2);
        inv[r] = 1.0f / sum;
    }
    T *Ow = Qs + warp * 16 * LD;
#pragma unroll
    for (int dt = 0; dt < DT; dt++) {
        *(uint32_t *)(Ow + g * LD + dt * 8 + 2 * t) = tc_pack<T>(o[dt][0] * inv[0], o[dt][1] * inv[0]);
        *(uint32_t *)(Ow + (g + 8) * LD + dt * 8 + 2 * t) = tc_pack<T>(o[dt][2] * inv[1], o[dt][3] * inv[1]);
    }
    __syncwarp();
    const int rows = min(16, Tq - (q0 + warp * 16));
    T *yb = y + ((size_t)n * Tq + q0 + warp * 16) * yc + (size_t)h * dv;
    if constexpr (VEC) {
        for (int i = lane; i < rows * (dv / 8); i += 32) {
            const int r = i / (dv / 8), c = (i % (dv / 8)) * 8;
            tc_st128(yb + (size_t)r * yc + c, *(const uint4 *)(Ow + r * LD + c));
        }
    } else {
        for (int i = lane; i < rows * dv; i += 32) yb[(size_t)(i / dv) * yc + i % dv] = Ow[(i / dv) * LD + i % dv];
    }
}

template <typename T, int D, bool VEC>
static sd_status fa2_launch(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cuda_impl *c = cuda_of(b);
    const int N = q->n, Tq = q->h * q->w, Tk = k->h * k->w, d = q->c / heads, dv = v->c / heads;
    const int smem = fa_cfg<D>::SMEM;
    if ((size_t)smem > c->smem_optin) return SD_ERR_UNSUPPORTED;
    CUDA_SMEM_OPTIN((fa2_kernel<T, D, VEC>), smem);
    const dim3 grid((Tq + FA_BQ - 1) / FA_BQ, heads, N);
    CUDA_LAUNCH((fa2_kernel<T, D, VEC>), grid, 32 * FA_WARPS, smem, c->stream, (const T *)q->data, (const T *)k->data, (const T *)v->data,
                (T *)y->data, Tq, Tk, q->c, k->c, v->c, y->c, d, dv, 1.4426950408889634f / sqrtf((float)d), causal ? 1 : 0);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

template <typename T>
static sd_status fa2_as(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    const int d = q->c / heads, dv = v->c / heads, dmax = d > dv ? d : dv;
    if (q->n > 65535 || heads > 65535) return SD_ERR_UNSUPPORTED;
    const int vec = d % 8 == 0 && dv % 8 == 0 && q->c % 8 == 0 && k->c % 8 == 0 && v->c % 8 == 0 && y->c % 8 == 0 && aligned16(q->data) &&
                    aligned16(k->data) && aligned16(v->data) && aligned16(y->data);
    /* element-wise loads: two instances cover head dims up to 48 */
    if (!vec) return dmax <= 32 ? fa2_launch<T, 32, false>(b, q, k, v, heads, causal, y)
                     : dmax <= 48 ? fa2_launch<T, 48, false>(b, q, k, v, heads, causal, y) : SD_ERR_UNSUPPORTED;
#define FA_CASE(DD) \
    if (dmax <= DD) return fa2_launch<T, DD, true>(b, q, k, v, heads, causal, y);
    FA_CASE(16) FA_CASE(32) FA_CASE(48) FA_CASE(64) FA_CASE(80) FA_CASE(96) FA_CASE(128) FA_CASE(160)
#undef FA_CASE
    return SD_ERR_UNSUPPORTED;
}

sd_status cuda_flash_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    switch (cuda_of(b)->dt) {
    case BE_F16: return fa2_as<__half>(b, q, k, v, heads, causal, y);
    case BE_BF16: return fa2_as<__nv_bfloat16>(b, q, k, v, heads, causal, y);
    default: return SD_ERR_UNSUPPORTED;
    }
}
