/* attention.cu — multi-head scaled dot-product attention, any head dim, optional causal mask.
 *
 * Fast path, f16/bf16 storage: flash_attention_kernel, one fused kernel (tensor cores through wmma). The T x T
 * score matrix never exists in memory: each block keeps 64 queries of one head on chip, streams the keys and
 * values through shared memory in tiles, and keeps a running (max, sum, output) per query row in f32 (the
 * online softmax of FlashAttention). Scores are f32 wmma accumulators (SD 2.x scores overflow f16).
 *
 * Reference path (f32 storage, head dims past 256, SD_CUDA_ATTENTION=cublas), per sample and chunk of heads
 * and queries:
 *   S = scale · Q·Kᵀ   strided-batched GEMM over heads, f16/bf16 in, **f32 out**
 *   P = softmax(S)     softmax_kernel: f32, max-subtracted, masked; P stored in the activation type (in [0, 1])
 *   Y = P·V            strided-batched GEMM over heads, written straight into y's head columns
 * Heads are strided views of the [N, T, heads·d] activations (head h = columns h·d .. h·d + d − 1), so no
 * transposes are needed. The score buffer is bounded (the backend's scratch budget) by chunking heads, then
 * queries. Both paths are tested against the CPU backend. */
#include "cuda_internal.h"

#include <mma.h>

#include <math.h>

#define THREADS 256

/* P[r, :] = softmax(S[r, :valid]) and 0 beyond `valid` (causal: query q0 + r % tq sees keys 0 .. itself).
 * One warp per row, 8 rows per block; each lane strides over the row. */
template <typename T>
__global__ void softmax_kernel(const float *__restrict__ S, T *__restrict__ P, int rows, int tq, int tk, int q0, int causal) {
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return; /* whole warps leave together */
    const int qi = q0 + row % tq, valid = causal ? min(qi + 1, tk) : tk;
    const float *s = S + (size_t)row * tk;
    T *p = P + (size_t)row * tk;
    float m = -INFINITY;
    for (int j = lane; j < valid; j += 32) m = fmaxf(m, s[j]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j < valid; j += 32) sum += expf(s[j] - m);
    const float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < tk; j += 32) st(p + j, j < valid ? expf(s[j] - m) * inv : 0.0f);
}

template <typename T>
static sd_status attention_as(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    const int N = q->n, Tq = q->h * q->w, Tk = k->h * k->w, d = q->c / heads, dv = v->c / heads;
    const int qc = q->c, kc = k->c, vc = v->c, yc = y->c;
    const float scale = 1.0f / sqrtf((float)d);
    /* rows of scores (one query of one head) that fit the budget: all heads and queries at once if possible */
    const size_t row_bytes = (size_t)Tk * (sizeof(float) + sizeof(T));
    size_t fit = cuda_of(b)->scratch_budget / row_bytes;
    if (fit < 1) fit = 1;
    int hc, tc;
    if (fit >= (size_t)heads * Tq) hc = heads, tc = Tq;
    else if (fit >= (size_t)Tq) hc = (int)(fit / Tq), tc = Tq;
    else hc = 1, tc = (int)fit;
    const size_t s_bytes = (((size_t)hc * tc * Tk * sizeof(float)) + 255) & ~(size_t)255;
    void *scratch = NULL;
    sd_status st = cuda_scratch(b, s_bytes + (size_t)hc * tc * Tk * sizeof(T), &scratch);
    if (st != SD_OK) return st;
    float *S = (float *)scratch;
    T *P = (T *)((char *)scratch + s_bytes);
    const T *Q = (const T *)q->data, *K = (const T *)k->data, *V = (const T *)v->data;
    T *Y = (T *)y->data;
    for (int n = 0; n < N; n++)
        for (int h0 = 0; h0 < heads; h0 += hc) {
            const int nh = heads - h0 < hc ? heads - h0 : hc;
            for (int q0 = 0; q0 < Tq; q0 += tc) {
                const int nq = Tq - q0 < tc ? Tq - q0 : tc;
                /* column-major: S_h [Tk, nq] = scale · K_h [d, Tk]ᵀ · Q_h [d, nq] */
                st = cuda_gemm(b, 1, 0, Tk, nq, d, scale, K + (size_t)n * Tk * kc + (size_t)h0 * d, kc, d,
                               Q + ((size_t)n * Tq + q0) * qc + (size_t)h0 * d, qc, d, 0.0f, S, BE_F32, Tk, (long long)nq * Tk, nh);
                if (st != SD_OK) return st;
                const int rows = nh * nq;
                CUDA_LAUNCH((softmax_kernel<T>), (rows + THREADS / 32 - 1) / (THREADS / 32), THREADS, 0, cuda_of(b)->stream, (const float *)S, P,
                            rows, nq, Tk, q0, causal ? 1 : 0);
                CUDA_CHECK_LAUNCH();
                /* column-major: Y_h [dv, nq] = V_h [dv, Tk] · P_h [Tk, nq] */
                st = cuda_gemm(b, 0, 0, dv, nq, Tk, 1.0f, V + (size_t)n * Tk * vc + (size_t)h0 * dv, vc, dv, P, Tk, (long long)nq * Tk, 0.0f,
                               Y + ((size_t)n * Tq + q0) * yc + (size_t)h0 * dv, cuda_of(b)->dt, yc, dv, nh);
                if (st != SD_OK) return st;
            }
        }
    return SD_OK;
}

/* ---- fused (flash) attention ---- */

#define FA_WARPS 4
#define FA_BQ (16 * FA_WARPS) /* queries per block: 16 rows per warp */

/* Block (query tile, head, sample), 4 warps. Shared memory (dp, dvp: head dims rounded up to 16; bk: keys per
 * tile, 64 or 32 for wide heads so that d = 160 fits the 99 KiB of sm_86/89):
 *   Qs [64][dp]  Ks [bk][dp]  Vs [bk][dvp]  (activation type, zero-padded)
 *   per warp: Sw [16][bk] f32 scores, Pw [16][bk] probabilities, Ow [16][dvp] f32 running output.
 * Per key tile: each warp computes its 16 x bk scores with wmma (f32 accumulators), then lane pair (2r, 2r+1)
 * owns row r: masks, takes the tile maximum, rescales the row's running sum and output by exp(m_old - m_new)
 * and writes p = exp(s - m_new); then the warp adds P·V (wmma, one 16-column block at a time through Sw). */
template <typename T>
__global__ void __launch_bounds__(32 * FA_WARPS)
flash_attention_kernel(const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v, T *__restrict__ y, int Tq, int Tk,
                       int qc, int kc, int vc, int yc, int d, int dv, int dp, int dvp, int bk, float scale, int causal) {
    using namespace nvcuda;
    CUDA_DYNAMIC_SHARED(unsigned char, smem_raw);
    unsigned char *smem = (unsigned char *)(((uintptr_t)smem_raw + 31) & ~(uintptr_t)31); /* wmma wants 32-byte alignment */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, r = lane >> 1, half = lane & 1;
    const int q0 = blockIdx.x * FA_BQ, h = blockIdx.y, n = blockIdx.z;
    T *Qs = (T *)smem, *Ks = Qs + FA_BQ * dp, *Vs = Ks + bk * dp;
    float *Ss = (float *)(Vs + bk * dvp);
    T *Ps = (T *)(Ss + FA_WARPS * 16 * bk);
    float *Os = (float *)(Ps + FA_WARPS * 16 * bk);
    float *Sw = Ss + warp * 16 * bk, *Ow = Os + warp * 16 * dvp;
    T *Pw = Ps + warp * 16 * bk;
    const T *qb = q + (size_t)n * Tq * qc + (size_t)h * d, *kb = k + (size_t)n * Tk * kc + (size_t)h * d, *vb = v + (size_t)n * Tk * vc + (size_t)h * dv;

    for (int i = tid; i < FA_BQ * dp; i += blockDim.x) {
        const int row = i / dp, c = i % dp, qi = q0 + row;
        if (qi < Tq && c < d) Qs[i] = qb[(size_t)qi * qc + c];
        else st(Qs + i, 0.0f);
    }
    for (int i = tid; i < FA_BQ * dvp; i += blockDim.x) Os[i] = 0.0f;
    const int qi = q0 + warp * 16 + r; /* the query row this lane pair owns */
    float m_i = -INFINITY, l_i = 0.0f;
    __syncthreads();

    const int kend = causal ? min(Tk, q0 + FA_BQ) : Tk; /* causal: no key past the block's last query */
    for (int k0 = 0; k0 < kend; k0 += bk) {
        for (int i = tid; i < bk * dp; i += blockDim.x) {
            const int j = k0 + i / dp, c = i % dp;
            if (j < Tk && c < d) Ks[i] = kb[(size_t)j * kc + c];
            else st(Ks + i, 0.0f);
        }
        for (int i = tid; i < bk * dvp; i += blockDim.x) {
            const int j = k0 + i / dvp, c = i % dvp;
            if (j < Tk && c < dv) Vs[i] = vb[(size_t)j * vc + c];
            else st(Vs + i, 0.0f);
        }
        __syncthreads();

        /* Sw = Q_w · K_tileᵀ: Ks is [key][dim] row-major, i.e. Kᵀ column-major */
        for (int jb = 0; jb < bk / 16; jb++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < dp / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, Qs + warp * 16 * dp + kk * 16, dp);
                wmma::load_matrix_sync(fb, Ks + jb * 16 * dp + kk * 16, dp);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(Sw + jb * 16, acc, bk, wmma::mem_row_major);
        }
        __syncwarp();

        /* online softmax of row r over this tile; lanes 2r and 2r+1 take alternate columns */
        float tmax = -INFINITY;
        for (int j = half; j < bk; j += 2) {
            const int kj = k0 + j;
            const float s = kj < Tk && (!causal || kj <= qi) ? Sw[r * bk + j] * scale : -INFINITY;
            Sw[r * bk + j] = s;
            tmax = fmaxf(tmax, s);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(CUDA_FULL_MASK, tmax, 1));
        const float m_new = fmaxf(m_i, tmax);
        const float alpha = m_new == -INFINITY ? 1.0f : expf(m_i - m_new); /* exp(-inf) = 0 on the first tile */
        float psum = 0.0f;
        for (int j = half; j < bk; j += 2) {
            const float s = Sw[r * bk + j], p = s == -INFINITY ? 0.0f : expf(s - m_new);
            st(Pw + r * bk + j, p);
            psum += p;
        }
        psum += __shfl_xor_sync(CUDA_FULL_MASK, psum, 1);
        l_i = l_i * alpha + psum;
        m_i = m_new;
        for (int c = half; c < dvp; c += 2) Ow[r * dvp + c] *= alpha;
        __syncwarp();

        /* Ow += P_w · V_tile, 16 output columns at a time through Sw */
        for (int jb = 0; jb < dvp / 16; jb++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < bk / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
                wmma::load_matrix_sync(fa, Pw + kk * 16, bk);
                wmma::load_matrix_sync(fb, Vs + kk * 16 * dvp + jb * 16, dvp);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(Sw, acc, 16, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < 256; e += 32) Ow[(e >> 4) * dvp + jb * 16 + (e & 15)] += Sw[e];
            __syncwarp();
        }
        __syncthreads(); /* every warp is done with Ks, Vs before the next tile replaces them */
    }
    if (qi < Tq) {
        const float inv = 1.0f / l_i;
        T *yr = y + ((size_t)n * Tq + qi) * yc + (size_t)h * dv;
        for (int c = half; c < dv; c += 2) st(yr + c, Ow[r * dvp + c] * inv);
    }
}

/* Shared memory of one flash block for head dims dp, dvp (rounded to 16) and bk keys per tile, + alignment slack. */
static size_t flash_smem(int dp, int dvp, int bk, size_t es) {
    return 32 + (size_t)(FA_BQ * dp + bk * dp + bk * dvp) * es + (size_t)FA_WARPS * 16 * bk * (4 + es) + (size_t)FA_BQ * dvp * 4;
}

/* Returns SD_ERR_UNSUPPORTED (no message) when the shape does not fit the kernel; the caller then takes the
 * reference path. */
template <typename T>
static sd_status flash_as(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cuda_impl *c = cuda_of(b);
    const int N = q->n, Tq = q->h * q->w, Tk = k->h * k->w, d = q->c / heads, dv = v->c / heads;
    const int dp = (d + 15) & ~15, dvp = (dv + 15) & ~15, bk = dp <= 64 && dvp <= 64 ? 64 : 32;
    const size_t smem = flash_smem(dp, dvp, bk, sizeof(T));
    if (dp > 256 || dvp > 256 || smem > c->smem_optin || N > 65535 || heads > 65535) return SD_ERR_UNSUPPORTED;
    if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(flash_attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    dim3 grid((Tq + FA_BQ - 1) / FA_BQ, heads, N);
    CUDA_LAUNCH((flash_attention_kernel<T>), grid, 32 * FA_WARPS, smem, c->stream, (const T *)q->data, (const T *)k->data, (const T *)v->data,
                (T *)y->data, Tq, Tk, q->c, k->c, v->c, y->c, d, dv, dp, dvp, bk, 1.0f / sqrtf((float)d), causal ? 1 : 0);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

void cuda_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cuda_impl *c = cuda_of(b);
    sd_status st = SD_ERR_UNSUPPORTED;
    if (c->flash_attention && c->dt == BE_F16) st = flash_as<__half>(b, q, k, v, heads, causal, y);
    if (c->flash_attention && c->dt == BE_BF16) st = flash_as<__nv_bfloat16>(b, q, k, v, heads, causal, y);
    if (st == SD_ERR_UNSUPPORTED) CUDA_DTYPE_SWITCH(c->dt, T, st = attention_as<T>(b, q, k, v, heads, causal, y));
    cuda_report(b, st);
}
