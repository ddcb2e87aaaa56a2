/* conv.cu — 2-D convolution on NHWC activations. Shapes the tensor-core implicit GEMM takes (igemm.cu: 16-bit
 * storage, channels a multiple of 32) go there. The rest, and the reference: a 1x1 stride-1 convolution is one
 * cuBLAS GEMM; any other is an im2col pass into scratch (in chunks of output rows within the scratch budget, so a
 * 512x512 VAE layer needs no gigabytes) followed by a GEMM against the [out][kh][kw][in] weight, then the bias. */
#include "cuda_internal.h"

#define THREADS 256

/* cols[r, (ky·kw + kx)·C + ci] = x[n, oy·s − pad + ky, ox·s − pad + kx, ci] (0 outside) for the output rows
 * r0 .. r0 + nr − 1. One column element per thread: consecutive threads take consecutive channels of one
 * tap, so both the gather from x and the store to cols coalesce. A chunk holds fewer than 2^32 elements (the
 * scratch budget), so the indices are 32-bit. */
template <typename T>
__global__ void im2col_kernel(const T *__restrict__ x, T *__restrict__ cols, unsigned r0, unsigned n, int H, int W, int C, int Ho, int Wo,
                              int kh, int kw, int stride, int pad) {
    const unsigned K = (unsigned)(kh * kw * C);
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const unsigned rr = i / K, g = r0 + rr, q = g / (unsigned)Wo;
        const int kk = (int)(i - rr * K), tap = kk / C, ci = kk - tap * C, ky = tap / kw, kx = tap - ky * kw;
        const int ox = (int)(g - q * Wo), oy = (int)(q % (unsigned)Ho), nn = (int)(q / (unsigned)Ho);
        const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) cols[i] = x[(((size_t)nn * H + iy) * W + ix) * C + ci];
        else st(cols + i, 0.0f);
    }
}

template <typename T>
static sd_status conv_as(be *b, const be_tensor *x, const be_weight *w, const float *bias, int stride, int pad_lo, be_tensor *y) {
    const int ci = x->c, co = w->out, kh = w->kh, kw = w->kw;
    const size_t rows = (size_t)y->n * y->h * y->w, K = (size_t)kh * kw * ci;
    if (rows > 0x7fffffff || K > 0x7fffffff) return err_fail(SD_ERR_ARG, "cuda conv2d: GEMM of %zu x %zu exceeds cuBLAS's int range", rows, K);
    if (kh == 1 && kw == 1 && stride == 1 && pad_lo == 0) { /* a 1x1 convolution is a linear layer on [N·H·W, C] */
        sd_status st = cuda_gemm(b, 1, 0, co, (int)rows, ci, 1.0f, w->data, ci, 0, x->data, ci, 0, 0.0f, y->data, cuda_of(b)->dt, co, 0, 1);
        return st != SD_OK ? st : cuda_bias_act(b, y->data, rows, co, bias, BE_ACT_NONE);
    }
    size_t chunk = cuda_of(b)->scratch_budget / (K * sizeof(T));
    if (chunk > 0xffffffffu / K) chunk = 0xffffffffu / K; /* the kernel's 32-bit indices */
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    void *cols = NULL;
    sd_status st = cuda_scratch(b, chunk * K * sizeof(T), &cols);
    if (st != SD_OK) return st;
    cudaStream_t s = cuda_of(b)->stream;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        const size_t nr = rows - r0 < chunk ? rows - r0 : chunk, n = nr * K;
        CUDA_LAUNCH((im2col_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (T *)cols, (unsigned)r0, (unsigned)n, x->h, x->w,
                    ci, y->h, y->w, kh, kw, stride, pad_lo);
        CUDA_CHECK_LAUNCH();
        /* y[r0 .. r0+nr, co] = cols[nr, K] · W[co, K]ᵀ */
        st = cuda_gemm(b, 1, 0, co, (int)nr, (int)K, 1.0f, w->data, (int)K, 0, cols, (int)K, 0, 0.0f, (T *)y->data + r0 * co, cuda_of(b)->dt, co, 0, 1);
        if (st != SD_OK) return st;
    }
    return cuda_bias_act(b, y->data, rows, co, bias, BE_ACT_NONE);
}

void cuda_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y) {
    (void)pad_hi; /* implied by the output size, which the wrapper checked */
    sd_status st = cuda_conv_igemm(b, x, w, bias, stride, pad_lo, y);
    if (st == SD_ERR_UNSUPPORTED) {
        const float *bs = bias ? (const float *)bias->data : NULL;
        st = SD_OK;
        CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, st = conv_as<T>(b, x, w, bs, stride, pad_lo, y));
    }
    cuda_report(b, st);
}
