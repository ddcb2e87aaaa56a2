/* eltwise.cu — memory-bound CUDA ops: storage-type conversion, weight re-layout, bias + activation epilogue,
 * activations, GEGLU, broadcast add, nearest upsampling, channel concat, embedding lookup, timestep embedding.
 * Every kernel is a grid-stride loop with one output element per thread and iteration: consecutive threads
 * write consecutive addresses of the channels-last output, so loads and stores coalesce. */
#include "cuda_internal.h"

#define THREADS 256

/* ---- conversions ---- */

/* dst[i] = src[i] converted between storage types (round to nearest even). */
template <typename S, typename D>
__global__ void convert_kernel(const S *__restrict__ src, D *__restrict__ dst, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) st(dst + i, ld(src + i));
}

template <typename S, typename D> static sd_status convert_as(be *b, const void *src, void *dst, size_t n) {
    CUDA_LAUNCH((convert_kernel<S, D>), cuda_grid(n, THREADS), THREADS, 0, cuda_of(b)->stream, (const S *)src, (D *)dst, n);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

sd_status cuda_convert(be *b, const void *src, be_dtype st_, void *dst, be_dtype dt_, size_t n) {
    CUDA_DTYPE_SWITCH(st_, S, CUDA_DTYPE_SWITCH(dt_, D, return convert_as<S, D>(b, src, dst, n)));
    return SD_OK;
}

/* Weight rows [rows][in][taps] (PyTorch conv layout, taps = kh·kw) -> [rows][taps][in] in the storage type;
 * taps = 1 is a plain conversion. Thread mapping: one destination element per thread. */
template <typename S, typename D>
__global__ void weight_convert_kernel(const S *__restrict__ src, D *__restrict__ dst, unsigned n, int in, int taps) {
    const unsigned per = (unsigned)in * (unsigned)taps;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const unsigned row = i / per;
        const int r = (int)(i - row * per), tap = r / in, ci = r - tap * in;
        st(dst + i, ld(src + ((size_t)row * in + ci) * taps + tap));
    }
}

template <typename S, typename D> static sd_status weight_convert_as(be *b, const void *src, void *dst, size_t n, int in, int taps) {
    if (n > 0xffffffffu) return err_fail(SD_ERR_ARG, "cuda weight upload: %zu elements in one piece", n);
    CUDA_LAUNCH((weight_convert_kernel<S, D>), cuda_grid(n, THREADS), THREADS, 0, cuda_of(b)->stream, (const S *)src, (D *)dst, (unsigned)n, in, taps);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

sd_status cuda_weight_convert(be *b, const void *src, be_dtype st_, void *dst, be_dtype dt_, int rows, int in, int taps) {
    size_t n = (size_t)rows * in * taps;
    CUDA_DTYPE_SWITCH(st_, S, CUDA_DTYPE_SWITCH(dt_, D, return weight_convert_as<S, D>(b, src, dst, n, in, taps)));
    return SD_OK;
}

/* ---- GEMM epilogue and activations ----
 * From here on, a kernel's thread takes W consecutive channels of one row per step (W = 16 bytes' worth when every
 * channel count is a multiple of it and the tensors are aligned, else 1), with 32-bit indices: the row is one 32-bit
 * division per W elements, never a 64-bit one per element. The tensors of a step stay far below 2^32 elements;
 * larger ones are refused. */

#define MAX_ELEMS 0xffffffffu

template <typename T> static int vec_ok(int c, const void *p0, const void *p1 = NULL, const void *p2 = NULL) {
    return c % cuda_vec_width<T>() == 0 && cuda_aligned16(p0) && (!p1 || cuda_aligned16(p1)) && (!p2 || cuda_aligned16(p2));
}

/* y[r, j] = act(y[r, j] + bias[j]) in place on a GEMM output [rows, cols] (the cuBLAS path's epilogue). */
template <typename T, int W>
__global__ void bias_act_kernel(T *__restrict__ y, unsigned nv, int V, const float *__restrict__ bias, be_act act) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        const int c = (int)(i % (unsigned)V) * W;
        float v[W];
        ldv<W>(y + (size_t)i * W, v);
#pragma unroll
        for (int e = 0; e < W; e++) v[e] = act_apply(act, v[e] + (bias ? bias[c + e] : 0.0f));
        stv<W>(y + (size_t)i * W, v);
    }
}

sd_status cuda_bias_act(be *b, void *y, size_t rows, int cols, const float *bias, be_act act) {
    if (!bias && act == BE_ACT_NONE) return SD_OK;
    const size_t n = rows * cols;
    if (n > MAX_ELEMS) return err_fail(SD_ERR_ARG, "cuda bias: %zu elements", n);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, {
        constexpr int W = cuda_vec_width<T>();
        if (vec_ok<T>(cols, y)) CUDA_LAUNCH((bias_act_kernel<T, W>), cuda_grid(n / W, THREADS), THREADS, 0, s, (T *)y, (unsigned)(n / W), cols / W, bias, act);
        else CUDA_LAUNCH((bias_act_kernel<T, 1>), cuda_grid(n, THREADS), THREADS, 0, s, (T *)y, (unsigned)n, cols, bias, act);
    });
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

template <typename T, int W> __global__ void act_kernel(const T *x, T *y, unsigned nv, be_act act) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        float v[W];
        ldv<W>(x + (size_t)i * W, v);
#pragma unroll
        for (int e = 0; e < W; e++) v[e] = act_apply(act, v[e]);
        stv<W>(y + (size_t)i * W, v);
    }
}

/* x may alias y: each element is read before it is written, by the same thread */
static sd_status act_run(be *b, be_act act, const be_tensor *x, be_tensor *y) {
    const size_t n = be_numel(x);
    if (n > MAX_ELEMS) return err_fail(SD_ERR_ARG, "cuda activation: %zu elements", n);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, {
        constexpr int W = cuda_vec_width<T>();
        if (n % W == 0 && cuda_aligned16(x->data) && cuda_aligned16(y->data))
            CUDA_LAUNCH((act_kernel<T, W>), cuda_grid(n / W, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, (unsigned)(n / W), act);
        else CUDA_LAUNCH((act_kernel<T, 1>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, (unsigned)n, act);
    });
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_act(be *b, be_act act, const be_tensor *x, be_tensor *y) { cuda_report(b, act_run(b, act, x, y)); }

/* x [rows, 2C] = [a | g] -> y [rows, C] = a · GELU(g). */
template <typename T, int W> __global__ void geglu_kernel(const T *__restrict__ x, T *__restrict__ y, unsigned nv, int V) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        const unsigned r = i / (unsigned)V;
        const int c = (int)(i - r * V) * W;
        const T *xr = x + (size_t)r * 2 * V * W;
        float a[W], g[W];
        ldv<W>(xr + c, a);
        ldv<W>(xr + V * W + c, g);
#pragma unroll
        for (int e = 0; e < W; e++) a[e] *= act_apply(BE_ACT_GELU, g[e]);
        stv<W>(y + (size_t)i * W, a);
    }
}

static sd_status geglu_run(be *b, const be_tensor *x, be_tensor *y) {
    const size_t n = be_numel(y);
    if (2 * n > MAX_ELEMS) return err_fail(SD_ERR_ARG, "cuda geglu: %zu elements", n);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, {
        constexpr int W = cuda_vec_width<T>();
        if (vec_ok<T>(y->c, x->data, y->data))
            CUDA_LAUNCH((geglu_kernel<T, W>), cuda_grid(n / W, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, (unsigned)(n / W), y->c / W);
        else CUDA_LAUNCH((geglu_kernel<T, 1>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, (unsigned)n, y->c);
    });
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_geglu(be *b, const be_tensor *x, be_tensor *y) { cuda_report(b, geglu_run(b, x, y)); }

/* ---- add with broadcast ---- */

/* y = a + alpha·x, x [xn, xh, xw, C] broadcast over a's [N, H, W] where its extent is 1. y may alias a. */
template <typename T, int W>
__global__ void add_kernel(const T *a, const T *__restrict__ x, T *y, unsigned nv, int V, int H, int Wd, int xn, int xh, int xw, float alpha) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        const unsigned r = i / (unsigned)V, q = r / (unsigned)Wd;
        const int c = (int)(i - r * V), ww = (int)(r - q * Wd), hh = (int)(q % (unsigned)H), nn = (int)(q / (unsigned)H);
        const unsigned xr = ((unsigned)(xn == 1 ? 0 : nn) * xh + (xh == 1 ? 0 : hh)) * xw + (xw == 1 ? 0 : ww);
        float va[W], vx[W];
        ldv<W>(a + (size_t)i * W, va);
        ldv<W>(x + ((size_t)xr * V + c) * W, vx);
#pragma unroll
        for (int e = 0; e < W; e++) va[e] += alpha * vx[e];
        stv<W>(y + (size_t)i * W, va);
    }
}

static sd_status add_run(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y) {
    const size_t n = be_numel(a);
    if (n > MAX_ELEMS) return err_fail(SD_ERR_ARG, "cuda add: %zu elements", n);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, {
        constexpr int W = cuda_vec_width<T>();
        if (vec_ok<T>(a->c, a->data, x->data, y->data))
            CUDA_LAUNCH((add_kernel<T, W>), cuda_grid(n / W, THREADS), THREADS, 0, s, (const T *)a->data, (const T *)x->data, (T *)y->data,
                        (unsigned)(n / W), a->c / W, a->h, a->w, x->n, x->h, x->w, alpha);
        else CUDA_LAUNCH((add_kernel<T, 1>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)a->data, (const T *)x->data, (T *)y->data,
                         (unsigned)n, a->c, a->h, a->w, x->n, x->h, x->w, alpha);
    });
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_add(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y) { cuda_report(b, add_run(b, a, x, alpha, y)); }

/* ---- resampling and concatenation ---- */

/* PyTorch "nearest": src = min(floor(dst · (in / out)), in − 1) with the scale in f32, as the CPU backend. */
template <typename T, int W>
__global__ void upsample_nearest_kernel(const T *__restrict__ x, T *__restrict__ y, unsigned nv, int V, int H, int Wd, int Ho, int Wo, float sh, float sw) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        const unsigned r = i / (unsigned)V, q = r / (unsigned)Wo;
        const int c = (int)(i - r * V), ox = (int)(r - q * Wo), oy = (int)(q % (unsigned)Ho), nn = (int)(q / (unsigned)Ho);
        const int iy = min((int)floorf((float)oy * sh), H - 1), ix = min((int)floorf((float)ox * sw), Wd - 1);
        const T *src = x + ((((size_t)nn * H + iy) * Wd + ix) * V + c) * W;
        T *dst = y + (size_t)i * W;
        if constexpr (W == 1) *dst = *src;
        else tc_st128(dst, tc_ld128(src));
    }
}

static sd_status upsample_run(be *b, const be_tensor *x, be_tensor *y) {
    const size_t n = be_numel(y);
    if (n > MAX_ELEMS) return err_fail(SD_ERR_ARG, "cuda upsample: %zu elements", n);
    const float sh = (float)x->h / (float)y->h, sw = (float)x->w / (float)y->w;
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, {
        constexpr int W = cuda_vec_width<T>();
        if (vec_ok<T>(y->c, x->data, y->data))
            CUDA_LAUNCH((upsample_nearest_kernel<T, W>), cuda_grid(n / W, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data,
                        (unsigned)(n / W), y->c / W, x->h, x->w, y->h, y->w, sh, sw);
        else CUDA_LAUNCH((upsample_nearest_kernel<T, 1>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, (unsigned)n, y->c,
                         x->h, x->w, y->h, y->w, sh, sw);
    });
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_upsample_nearest(be *b, const be_tensor *x, be_tensor *y) { cuda_report(b, upsample_run(b, x, y)); }

/* y[r, :Ca] = a[r], y[r, Ca:] = x[r] (W divides Ca and Cx). */
template <typename T, int W> __global__ void concat_kernel(const T *__restrict__ a, const T *__restrict__ x, T *__restrict__ y, unsigned nv, int va, int vx) {
    const int vy = va + vx;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        const unsigned r = i / (unsigned)vy;
        const int j = (int)(i - r * vy);
        const T *src = j < va ? a + ((size_t)r * va + j) * W : x + ((size_t)r * vx + j - va) * W;
        T *dst = y + (size_t)i * W;
        if constexpr (W == 1) *dst = *src;
        else tc_st128(dst, tc_ld128(src));
    }
}

static sd_status concat_run(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y) {
    const size_t n = be_numel(y);
    if (n > MAX_ELEMS) return err_fail(SD_ERR_ARG, "cuda concat: %zu elements", n);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, {
        constexpr int W = cuda_vec_width<T>();
        if (vec_ok<T>(a->c, a->data, x->data, y->data) && x->c % W == 0)
            CUDA_LAUNCH((concat_kernel<T, W>), cuda_grid(n / W, THREADS), THREADS, 0, s, (const T *)a->data, (const T *)x->data, (T *)y->data,
                        (unsigned)(n / W), a->c / W, x->c / W);
        else CUDA_LAUNCH((concat_kernel<T, 1>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)a->data, (const T *)x->data, (T *)y->data,
                         (unsigned)n, a->c, x->c);
    });
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_concat_channels(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y) { cuda_report(b, concat_run(b, a, x, y)); }

/* ---- embeddings ---- */

/* y[r, :] = table[ids[r], :] (ids already range-checked on the host); 32-bit indices. */
template <typename T> __global__ void embedding_kernel(const int32_t *__restrict__ ids, const T *__restrict__ table, T *__restrict__ y, unsigned n, int dim) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const unsigned r = i / (unsigned)dim;
        y[i] = table[(size_t)ids[r] * dim + (i - r * dim)];
    }
}

static sd_status embedding_run(be *b, const int32_t *ids, const be_weight *table, be_tensor *y) {
    size_t rows = (size_t)y->n * y->h * y->w, n = rows * y->c;
    if (n > MAX_ELEMS) return err_fail(SD_ERR_ARG, "cuda embedding: %zu elements", n);
    void *dids = NULL;
    sd_status st = cuda_scratch(b, rows * sizeof(int32_t), &dids);
    if (st != SD_OK) return st;
    cudaStream_t s = cuda_of(b)->stream;
    /* pageable source: the copy has taken the host data when the call returns */
    CUDA_CHECK(cudaMemcpyAsync(dids, ids, rows * sizeof(int32_t), cudaMemcpyHostToDevice, s));
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T,
                      CUDA_LAUNCH((embedding_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const int32_t *)dids, (const T *)table->data,
                                  (T *)y->data, (unsigned)n, y->c));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_embedding(be *b, const int32_t *ids, const be_weight *table, be_tensor *y) { cuda_report(b, embedding_run(b, ids, table, y)); }

/* diffusers get_timestep_embedding in f32: exponent = −ln(10000)·j / (half − shift); [sin | cos] or [cos | sin];
 * an odd dim gets a zero last column. One output element per thread. */
template <typename T>
__global__ void timestep_embedding_kernel(const float *__restrict__ t, T *__restrict__ y, int n, int dim, int flip, float shift) {
    int half = dim / 2;
    const float neg_log = -9.210340371976184f; /* -math.log(10000) rounded to f32 */
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)n * dim; i += (size_t)gridDim.x * blockDim.x) {
        int r = (int)(i / dim), j = (int)(i % dim);
        float v = 0.0f;
        if (j < 2 * half) {
            int f = j < half ? j : j - half;
            float arg = t[r] * expf((neg_log * (float)f) / ((float)half - shift));
            int first = j < half; /* first half: sin, or cos when flipped */
            v = (first != flip) ? sinf(arg) : cosf(arg);
        }
        st(y + i, v);
    }
}

static sd_status timestep_run(be *b, const float *t, int flip, float shift, be_tensor *y) {
    void *dt = NULL;
    sd_status st = cuda_scratch(b, y->n * sizeof(float), &dt);
    if (st != SD_OK) return st;
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_CHECK(cudaMemcpyAsync(dt, t, y->n * sizeof(float), cudaMemcpyHostToDevice, s));
    size_t n = (size_t)y->n * y->c;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T,
                      CUDA_LAUNCH((timestep_embedding_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const float *)dt, (T *)y->data, y->n, y->c,
                                  flip, shift));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_timestep_embedding(be *b, const float *t, int flip, float shift, be_tensor *y) { cuda_report(b, timestep_run(b, t, flip, shift, y)); }
