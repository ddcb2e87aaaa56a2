/* gemv.cu — linear layers of a few rows (a batch's time embedding, [N, 1, 1, C]), several on the same input in one
 * launch (graph.cu groups consecutive ones: a UNet's per-block time-embedding projections, 22 launches -> 1 for
 * SD 1.5). Such a layer is bound by reading its weight once, which a GEMM tile of 64+ rows would mostly waste:
 * a warp per output column streams its weight row in 16-byte loads and keeps the M dot
 * products in registers; the columns of the group's layers are numbered one after another and a warp finds its
 * layer by its first column. f32 sums, one rounding of the output (+ bias, activation), as the GEMM paths. */
#include "cuda_internal.h"

#define WARPS 8

template <typename T>
__global__ void __launch_bounds__(WARPS * 32) gemv_group_kernel(const cuda_gemv_group g) {
    const int lane = threadIdx.x & 31, col = blockIdx.x * WARPS + (threadIdx.x >> 5);
    if (col >= g.cols) return; /* the whole warp */
    int i = 0;
    while (i + 1 < g.n && col >= g.item[i + 1].col0) i++;
    const cuda_gemv_item &it = g.item[i];
    const int o = col - it.col0;
    const T *w = (const T *)it.w + (size_t)o * g.K, *x = (const T *)g.x;
    float acc[GEMV_MAX_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) acc[r] = 0.0f;
    constexpr int V = 8; /* 16-byte loads: K is a multiple of 8, the rows 16-byte aligned (cuda_gemv_takes) */
    for (int k = lane * V; k < g.K; k += 32 * V) {
        float wv[V];
        ldv<V>(w + k, wv);
#pragma unroll
        for (int r = 0; r < GEMV_MAX_ROWS; r++)
            if (r < g.M) {
                float xv[V];
                ldv<V>(x + (size_t)r * g.K + k, xv);
#pragma unroll
                for (int e = 0; e < V; e++) acc[r] += wv[e] * xv[e];
            }
    }
    const float bias = it.bias ? it.bias[o] : 0.0f;
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++)
        if (r < g.M) {
            const float v = warp_sum(acc[r]);
            if (lane == 0) st((T *)it.y + (size_t)r * it.cout + o, act_apply((be_act)it.act, v + bias));
        }
}

int cuda_gemv_takes(be *b, int rows, int K) { return rows >= 1 && rows <= GEMV_MAX_ROWS && K % 8 == 0 && cuda_of(b)->dt != BE_F32; }

sd_status cuda_gemv_run(be *b, cuda_gemv_group *g) {
    int ok = g->n >= 1 && g->n <= GEMV_MAX_ITEMS && cuda_gemv_takes(b, g->M, g->K) && cuda_aligned16(g->x);
    g->cols = 0;
    for (int i = 0; i < g->n && ok; i++) {
        g->item[i].col0 = g->cols;
        g->cols += g->item[i].cout;
        ok = cuda_aligned16(g->item[i].w);
    }
    if (!ok) return err_fail(SD_ERR_ARG, "cuda gemv: %d layers of %d rows x %d (or unaligned)", g->n, g->M, g->K);
    const int blocks = (g->cols + WARPS - 1) / WARPS;
    CUDA_HALF_SWITCH(cuda_of(b)->dt, T, CUDA_LAUNCH((gemv_group_kernel<T>), blocks, WARPS * 32, 0, cuda_of(b)->stream, *g));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
