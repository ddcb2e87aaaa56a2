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
__global__ void weight_convert_kernel(const S *__restrict__ src, D *__restrict__ dst, size_t n, int in, int taps) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t row = i / ((size_t)in * taps);
        int r = (int)(i % ((size_t)in * taps)), tap = r / in, ci = r % in;
        st(dst + i, ld(src + (row * in + ci) * taps + tap));
    }
}

template <typename S, typename D> static sd_status weight_convert_as(be *b, const void *src, void *dst, size_t n, int in, int taps) {
    CUDA_LAUNCH((weight_convert_kernel<S, D>), cuda_grid(n, THREADS), THREADS, 0, cuda_of(b)->stream, (const S *)src, (D *)dst, n, in, taps);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

sd_status cuda_weight_convert(be *b, const void *src, be_dtype st_, void *dst, be_dtype dt_, int rows, int in, int taps) {
    size_t n = (size_t)rows * in * taps;
    CUDA_DTYPE_SWITCH(st_, S, CUDA_DTYPE_SWITCH(dt_, D, return weight_convert_as<S, D>(b, src, dst, n, in, taps)));
    return SD_OK;
}

/* ---- GEMM epilogue and activations ---- */

/* y[r, j] = act(y[r, j] + bias[j]) in place on a GEMM output [rows, cols]. */
template <typename T>
__global__ void bias_act_kernel(T *__restrict__ y, size_t n, int cols, const float *__restrict__ bias, be_act act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = ld(y + i);
        if (bias) v += bias[i % cols];
        st(y + i, act_apply(act, v));
    }
}

sd_status cuda_bias_act(be *b, void *y, size_t rows, int cols, const float *bias, be_act act) {
    if (!bias && act == BE_ACT_NONE) return SD_OK;
    size_t n = rows * cols;
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, CUDA_LAUNCH((bias_act_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (T *)y, n, cols, bias, act));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

template <typename T> __global__ void act_kernel(const T *__restrict__ x, T *__restrict__ y, size_t n, be_act act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) st(y + i, act_apply(act, ld(x + i)));
}

/* x may alias y: each element is read before it is written, by the same thread */
static sd_status act_run(be *b, be_act act, const be_tensor *x, be_tensor *y) {
    size_t n = be_numel(x);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, CUDA_LAUNCH((act_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, n, act));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_act(be *b, be_act act, const be_tensor *x, be_tensor *y) { cuda_report(b, act_run(b, act, x, y)); }

/* x [rows, 2C] = [a | g] -> y [rows, C] = a · GELU(g). */
template <typename T> __global__ void geglu_kernel(const T *__restrict__ x, T *__restrict__ y, size_t n, int C) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C;
        int j = (int)(i % C);
        const T *xr = x + r * 2 * C;
        st(y + i, ld(xr + j) * act_apply(BE_ACT_GELU, ld(xr + C + j)));
    }
}

static sd_status geglu_run(be *b, const be_tensor *x, be_tensor *y) {
    size_t n = be_numel(y);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, CUDA_LAUNCH((geglu_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, n, y->c));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_geglu(be *b, const be_tensor *x, be_tensor *y) { cuda_report(b, geglu_run(b, x, y)); }

/* ---- add with broadcast ---- */

/* y = a + alpha·x, x [xn, xh, xw, C] broadcast over a's [N, H, W] where its extent is 1. y may alias a. */
template <typename T>
__global__ void add_kernel(const T *a, const T *__restrict__ x, T *y, size_t n, int H, int W, int C, int xn, int xh, int xw, float alpha) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C;
        int j = (int)(i % C), ww = (int)(r % W), hh = (int)(r / W % H), nn = (int)(r / ((size_t)W * H));
        size_t xr = ((size_t)(xn == 1 ? 0 : nn) * xh + (xh == 1 ? 0 : hh)) * xw + (xw == 1 ? 0 : ww);
        st(y + i, ld(a + i) + alpha * ld(x + xr * C + j));
    }
}

static sd_status add_run(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y) {
    size_t n = be_numel(a);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T,
                      CUDA_LAUNCH((add_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)a->data, (const T *)x->data, (T *)y->data, n,
                                  a->h, a->w, a->c, x->n, x->h, x->w, alpha));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_add(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y) { cuda_report(b, add_run(b, a, x, alpha, y)); }

/* ---- resampling and concatenation ---- */

/* PyTorch "nearest": src = min(floor(dst · (in / out)), in − 1) with the scale in f32, as the CPU backend. */
template <typename T>
__global__ void upsample_nearest_kernel(const T *__restrict__ x, T *__restrict__ y, size_t n, int H, int W, int Ho, int Wo, int C, float sh, float sw) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C;
        int j = (int)(i % C), ox = (int)(r % Wo), oy = (int)(r / Wo % Ho), nn = (int)(r / ((size_t)Wo * Ho));
        int iy = min((int)floorf((float)oy * sh), H - 1), ix = min((int)floorf((float)ox * sw), W - 1);
        y[i] = x[(((size_t)nn * H + iy) * W + ix) * C + j];
    }
}

static sd_status upsample_run(be *b, const be_tensor *x, be_tensor *y) {
    size_t n = be_numel(y);
    float sh = (float)x->h / (float)y->h, sw = (float)x->w / (float)y->w;
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T,
                      CUDA_LAUNCH((upsample_nearest_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (T *)y->data, n, x->h,
                                  x->w, y->h, y->w, y->c, sh, sw));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_upsample_nearest(be *b, const be_tensor *x, be_tensor *y) { cuda_report(b, upsample_run(b, x, y)); }

/* y[r, :Ca] = a[r], y[r, Ca:] = x[r]. */
template <typename T> __global__ void concat_kernel(const T *__restrict__ a, const T *__restrict__ x, T *__restrict__ y, size_t n, int ca, int cx) {
    int cy = ca + cx;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cy;
        int j = (int)(i % cy);
        y[i] = j < ca ? a[r * ca + j] : x[r * cx + j - ca];
    }
}

static sd_status concat_run(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y) {
    size_t n = be_numel(y);
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T,
                      CUDA_LAUNCH((concat_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)a->data, (const T *)x->data, (T *)y->data, n,
                                  a->c, x->c));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}
void cuda_concat_channels(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y) { cuda_report(b, concat_run(b, a, x, y)); }

/* ---- embeddings ---- */

/* y[r, :] = table[ids[r], :] (ids already range-checked on the host). */
template <typename T> __global__ void embedding_kernel(const int32_t *__restrict__ ids, const T *__restrict__ table, T *__restrict__ y, size_t n, int dim) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = table[(size_t)ids[i / dim] * dim + i % dim];
}

static sd_status embedding_run(be *b, const int32_t *ids, const be_weight *table, be_tensor *y) {
    size_t rows = (size_t)y->n * y->h * y->w, n = rows * y->c;
    void *dids = NULL;
    sd_status st = cuda_scratch(b, rows * sizeof(int32_t), &dids);
    if (st != SD_OK) return st;
    cudaStream_t s = cuda_of(b)->stream;
    /* pageable source: the copy has taken the host data when the call returns */
    CUDA_CHECK(cudaMemcpyAsync(dids, ids, rows * sizeof(int32_t), cudaMemcpyHostToDevice, s));
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T,
                      CUDA_LAUNCH((embedding_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const int32_t *)dids, (const T *)table->data,
                                  (T *)y->data, n, y->c));
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
