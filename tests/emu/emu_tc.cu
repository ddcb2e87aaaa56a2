// emu_tc.cu — test kernels for the tensor-core helpers of kernels/cuda/tc.h: probes that expose each lane's
// registers (so the test can compare them with the PTX ISA's layout tables), a small cp.async + ldmatrix + mma
// GEMM, and deliberately wrong uses that the emulator must catch. Built by nvcc in `make cuda-check` too.
#include "kernels/cuda/cuda_portable.h"
#include "kernels/cuda/tc.h"
#include "tests/emu/emu_tc_kernels.h"

// ---- probes ----

// One warp: each lane assembles its A, B, C registers from row-major A [16][16], B [16][8] (k, n), C [16][8]
// by the PTX table (g = lane / 4, t = lane % 4), runs one mma and writes D back by the same table.
template <typename T>
__global__ void probe_mma_kernel(const unsigned short *A, const unsigned short *B, const float *C, float *D) {
    const int l = threadIdx.x, g = l >> 2, t = l & 3;
    uint32_t a[4], b[2];
    float d[4];
    for (int r = 0; r < 4; r++) {
        const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
        a[r] = (uint32_t)A[row * 16 + col] | (uint32_t)A[row * 16 + col + 1] << 16;
    }
    for (int r = 0; r < 2; r++) b[r] = (uint32_t)B[(2 * t + 8 * r) * 8 + g] | (uint32_t)B[(2 * t + 8 * r + 1) * 8 + g] << 16;
    for (int i = 0; i < 4; i++) d[i] = C[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
    tc_mma<T>(d, a, b);
    for (int i = 0; i < 4; i++) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
}

cudaError_t emu_tc_probe_mma(int bf16, const unsigned short *A, const unsigned short *B, const float *C, float *D) {
    if (bf16) CUDA_LAUNCH((probe_mma_kernel<__nv_bfloat16>), 1, 32, 0, 0, A, B, C, D);
    else CUDA_LAUNCH((probe_mma_kernel<__half>), 1, 32, 0, 0, A, B, C, D);
    return cudaGetLastError();
}

// One warp: M [16][16] into shared memory (rows 48 bytes apart), then ldmatrix x4, x4.trans, x2, x2.trans with lane
// l pointing at row (l % 8) + 8 ((l / 8) % 2), column 8 (l / 16). out[l * 12 + ...] = the lane's 4 + 4 + 2 + 2 registers.
__global__ void probe_ldmatrix_kernel(const unsigned short *M, unsigned *out) {
    __shared__ __align__(16) unsigned short S[16][24];
    const int l = threadIdx.x;
    for (int i = l; i < 256; i += 32) S[i / 16][i % 16] = M[i];
    __syncwarp();
    const unsigned short *p = &S[(l & 7) + 8 * ((l >> 3) & 1)][8 * (l >> 4)];
    uint32_t r4[4], t4[4], r2[2], t2[2];
    tc_ldmatrix_x4(r4, p);
    tc_ldmatrix_x4_trans(t4, p);
    tc_ldmatrix_x2(r2, p);
    tc_ldmatrix_x2_trans(t2, p);
    unsigned *o = out + l * 12;
    for (int i = 0; i < 4; i++) o[i] = r4[i], o[4 + i] = t4[i];
    o[8] = r2[0], o[9] = r2[1], o[10] = t2[0], o[11] = t2[1];
}

cudaError_t emu_tc_probe_ldmatrix(const unsigned short *M, unsigned *out) {
    CUDA_LAUNCH(probe_ldmatrix_kernel, 1, 32, 0, 0, M, out);
    return cudaGetLastError();
}

// ---- a small GEMM on the helpers ----

#define GK 16        // k per stage
#define GLD 24       // shared row stride in elements (48 bytes: 16-byte aligned rows)

// C [m][n] (f32) = A [m][k] · B, A row-major; B [n][k] (b_kn = 0) or [k][n] (b_kn = 1); k a multiple of 8, any
// m, n. Block = two warps computing a 32x16 tile (warp w: rows 16w.., both n8 halves); k in 16-wide stages
// through a two-stage cp.async ring shared by the warps; fragments by ldmatrix (B of [k][n] storage through
// .trans); rows and columns past the matrix are zero-filled by the copies. skip_barrier leaves out the barrier
// that keeps a warp from refilling a stage the other warp still reads (a bug, for the negative test).
template <typename T>
__global__ void gemm_kernel(const T *A, const T *B, float *C, int m, int n, int k, int b_kn, int skip_barrier) {
    __shared__ __align__(16) T As[2][32][GLD];
    __shared__ __align__(16) T Bs[2][16][GLD];
    const int tid = threadIdx.x, l = tid & 31, w = tid >> 5, m0 = blockIdx.y * 32, n0 = blockIdx.x * 16;
    const int stages = (k + GK - 1) / GK;
    // thread tid copies chunk tid of A (32 rows x 2) and, if tid < 32, chunk tid of B (16 rows x 2) per stage
    auto load = [&](int s, int buf) {
        const int row = tid >> 1, ch = tid & 1, kk = s * GK + ch * 8;
        const int ar = m0 + row;
        const bool aok = ar < m && kk < k;
        tc_cp_async16(&As[buf][row][ch * 8], aok ? A + (size_t)ar * k + kk : A, aok ? 16 : 0);
        if (tid < 32 && !b_kn) {
            const int br = n0 + row;
            const bool ok = br < n && kk < k;
            tc_cp_async16(&Bs[buf][row][ch * 8], ok ? B + (size_t)br * k + kk : B, ok ? 16 : 0);
        } else if (tid < 32) { // rows of B are k: row `row` of the stage, columns n0 + ch * 8 ..
            const int kr = s * GK + row, c0 = n0 + ch * 8;
            const int have = kr < k ? (n - c0 >= 8 ? 8 : n - c0 > 0 ? n - c0 : 0) : 0;
            tc_cp_async16(&Bs[buf][row][ch * 8], have ? B + (size_t)kr * n + c0 : B, have * 2);
        }
        tc_cp_async_commit();
    };
    float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    load(0, 0);
    for (int s = 0; s < stages; s++) {
        const int buf = s & 1;
        if (s + 1 < stages) {
            load(s + 1, buf ^ 1);
            tc_cp_async_wait<1>();
        } else {
            tc_cp_async_wait<0>();
        }
        __syncthreads();
        uint32_t a[4], b[4];
        tc_ldmatrix_x4(a, &As[buf][16 * w + (l & 7) + 8 * ((l >> 3) & 1)][8 * (l >> 4)]);
        if (!b_kn) {
            // [n][k]: matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
            tc_ldmatrix_x4(b, &Bs[buf][(l & 7) + 8 * (l >> 4)][8 * ((l >> 3) & 1)]);
        } else {
            // [k][n] transposed: matrices (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15)
            tc_ldmatrix_x4_trans(b, &Bs[buf][(l & 7) + 8 * ((l >> 3) & 1)][8 * (l >> 4)]);
        }
        const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
        tc_mma<T>(acc[0], a, b0);
        tc_mma<T>(acc[1], a, b1);
        if (!skip_barrier) __syncthreads(); // the next refill of this buffer waits until both warps have read it
    }
    const int g = l >> 2, t = l & 3;
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
            const int r = m0 + 16 * w + g + 8 * (i >> 1), c = n0 + 8 * h + 2 * t + (i & 1);
            if (r < m && c < n) C[(size_t)r * n + c] = acc[h][i];
        }
}

cudaError_t emu_tc_gemm(int bf16, const void *A, const void *B, float *C, int m, int n, int k, int b_kn, int skip_barrier) {
    dim3 grid((n + 15) / 16, (m + 31) / 32);
    if (bf16)
        CUDA_LAUNCH((gemm_kernel<__nv_bfloat16>), grid, 64, 0, 0, (const __nv_bfloat16 *)A, (const __nv_bfloat16 *)B, C, m, n, k, b_kn,
                    skip_barrier);
    else CUDA_LAUNCH((gemm_kernel<__half>), grid, 64, 0, 0, (const __half *)A, (const __half *)B, C, m, n, k, b_kn, skip_barrier);
    return cudaGetLastError();
}

// ---- 128-bit accesses ----

// y[i] = x[i] for n uint4 (16-byte aligned), one per thread, at a byte offset `skew` from both bases.
__global__ void copy128_kernel(const unsigned char *x, unsigned char *y, int n, int skew) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) tc_st128(y + skew + 16 * i, tc_ld128(x + skew + 16 * i));
}

cudaError_t emu_tc_copy128(const void *x, void *y, int n, int skew) {
    CUDA_LAUNCH(copy128_kernel, (n + 127) / 128, 128, 0, 0, (const unsigned char *)x, (unsigned char *)y, n, skew);
    return cudaGetLastError();
}

// ---- wrong uses ----

// bug 0: reads the stage before cp.async.wait_group; bug 1: never waits (copies in flight at exit); bug 2: the
// refill of a two-stage ring is issued without the barrier that ends the other warps' reads of that stage.
// y[i] = sum over 4 stages of the 16 floats each thread's lane group staged (n threads, one block).
__global__ void cp_async_bug_kernel(const float *x, float *y, int bug) {
    __shared__ __align__(16) float S[2][128][4];
    const int i = threadIdx.x;
    float sum = 0.0f;
    tc_cp_async16(S[0][i], x + 4 * i, 16);
    tc_cp_async_commit();
    for (int s = 0; s < 4; s++) {
        if (s + 1 < 4) {
            // the other half of the block reads what this thread stages (S[.][127 - i])
            tc_cp_async16(S[(s + 1) & 1][i], x + 512 * (s + 1) + 4 * i, 16);
            tc_cp_async_commit();
            if (bug != 0 && bug != 1) tc_cp_async_wait<1>();
        } else if (bug != 1) {
            tc_cp_async_wait<0>();
        }
        if (bug == 0 && s == 0) {} // no wait at all before the first read
        __syncthreads();
        for (int j = 0; j < 4; j++) sum += S[s & 1][127 - i][j];
        if (bug != 2) __syncthreads();
    }
    y[i] = sum;
}

cudaError_t emu_tc_cp_async_bug(const float *x, float *y, int bug) {
    CUDA_LAUNCH(cp_async_bug_kernel, 1, 128, 0, 0, x, y, bug);
    return cudaGetLastError();
}

// mma in divergent code: only lanes < 16 call it.
__global__ void mma_divergent_kernel(float *y) {
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    float d[4] = {0, 0, 0, 0};
    if (threadIdx.x < 16) tc_mma<__half>(d, a, b);
    y[threadIdx.x] = d[0];
}

// ldmatrix on a global-memory address.
__global__ void ldmatrix_global_kernel(const unsigned short *x, unsigned *y) {
    uint32_t r[2];
    tc_ldmatrix_x2(r, x + 8 * (threadIdx.x & 15));
    y[threadIdx.x] = r[0] + r[1];
}

cudaError_t emu_tc_misuse(int which, const void *x, void *y) {
    if (which == 0) CUDA_LAUNCH(mma_divergent_kernel, 1, 32, 0, 0, (float *)y);
    else CUDA_LAUNCH(ldmatrix_global_kernel, 1, 32, 0, 0, (const unsigned short *)x, (unsigned *)y);
    return cudaGetLastError();
}
