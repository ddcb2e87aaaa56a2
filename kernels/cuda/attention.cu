/* attention.cu — multi-head scaled dot-product attention, any head dim, optional causal mask.
 *
 * Fast path, f16/bf16 storage, head dims up to 160: the fused FlashAttention-2 style kernel of flash.cu (the T x T
 * score matrix never exists in memory; f32 scores, since SD 2.x scores overflow f16).
 *
 * Reference path (f32 storage, other head dims, SD_CUDA_ATTENTION=cublas), per sample and chunk of heads
 * and queries:
 *   S = scale · Q·Kᵀ   strided-batched GEMM over heads, f16/bf16 in, **f32 out**
 *   P = softmax(S)     softmax_kernel: f32, max-subtracted, masked; P stored in the activation type (in [0, 1])
 *   Y = P·V            strided-batched GEMM over heads, written straight into y's head columns
 * Heads are strided views of the [N, T, heads·d] activations (head h = columns h·d .. h·d + d − 1), so no
 * transposes are needed. The score buffer is bounded (the backend's scratch budget) by chunking heads, then
 * queries. Both paths are tested against the CPU backend. */
#include "cuda_internal.h"

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

void cuda_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cuda_impl *c = cuda_of(b);
    sd_status st = SD_ERR_UNSUPPORTED;
    if (c->flash_attention) st = cuda_flash_attention(b, q, k, v, heads, causal, y);
    if (st == SD_ERR_UNSUPPORTED) CUDA_DTYPE_SWITCH(c->dt, T, st = attention_as<T>(b, q, k, v, heads, causal, y));
    cuda_report(b, st);
}
