/* cpu_wino_generic.c — the generic level's Winograd transforms: cpu_wino_body.h with one scalar lane. */
#define CPU_VEC_SCALAR
#include "cpu_simd.h"
#include "cpu_wino_body.h"

void cpu_wino_weight_generic(int m, const float *w, int C, int no, float *U, size_t ldu);
void cpu_wino_input_generic(int m, const float *x, int N, int H, int W, int C, int tw, int th, long t0, int nt, float *V, size_t ldv);
void cpu_wino_output_generic(int m, const float *M, size_t ldm, int N, int H, int W, int O, int tw, int th, long t0, int nt, const float *bias,
                             float *y, int ldy);

void cpu_wino_weight_generic(int m, const float *w, int C, int no, float *U, size_t ldu) { k_wino_weight(m, w, C, no, U, ldu); }
void cpu_wino_input_generic(int m, const float *x, int N, int H, int W, int C, int tw, int th, long t0, int nt, float *V, size_t ldv) {
    k_wino_input(m, x, N, H, W, C, tw, th, t0, nt, V, ldv);
}
void cpu_wino_output_generic(int m, const float *M, size_t ldm, int N, int H, int W, int O, int tw, int th, long t0, int nt, const float *bias,
                             float *y, int ldy) {
    k_wino_output(m, M, ldm, N, H, W, O, tw, th, t0, nt, bias, y, ldy);
}
