/* cpu_backend.c — the CPU backend: f32 activations in an mmap'd arena, OpenBLAS GEMMs, OpenMP loops. */
#include "cpu_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../core/error.h"
#include "../../core/half.h"

/* ---- memory ---- */

static void cpu_free(be *b) {
    cpu_impl *c = b->impl;
    if (c->arena_mem) munmap(c->arena_mem, c->arena_bytes);
    free(c->scratch);
    free(c);
    free(b);
}

static sd_status cpu_arena_reserve(be *b, size_t bytes) {
    cpu_impl *c = b->impl;
    if (b->arena.used) return sd_fail(SD_ERR_ARG, "cpu backend: arena resized while in use");
    if (c->arena_mem) munmap(c->arena_mem, c->arena_bytes);
    c->arena_mem = NULL;
    /* pages are only backed when first touched, so a generous reservation costs nothing */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        sd_arena_init(&b->arena, 0, 0);
        return sd_fail(SD_ERR_MEMORY, "cpu backend: cannot reserve %.1f MiB of activation memory", bytes / 1048576.0);
    }
    c->arena_mem = p;
    c->arena_bytes = bytes;
    sd_arena_init(&b->arena, (uintptr_t)p, bytes);
    return SD_OK;
}

float *cpu_scratch(be *b, size_t floats) {
    cpu_impl *c = b->impl;
    if (floats > c->scratch_floats) {
        free(c->scratch);
        c->scratch = malloc(floats * sizeof(float));
        c->scratch_floats = c->scratch ? floats : 0;
        if (!c->scratch) be_set_error(b, SD_ERR_MEMORY, "cpu backend: cannot allocate %.1f MiB of scratch", floats * 4 / 1048576.0);
    }
    return c->scratch;
}

static sd_status cpu_weight_upload(be *b, be_weight *w, be_dtype src_type, const void *src) {
    size_t n = (size_t)w->out * w->in * w->kh * w->kw;
    float *d = malloc(n * sizeof(float));
    if (!d) return sd_fail(SD_ERR_MEMORY, "cpu backend: cannot allocate %.1f MiB for a weight", n * 4 / 1048576.0);
    float *tmp = d;
    if (w->kind == BE_W_CONV && (w->kh > 1 || w->kw > 1)) tmp = malloc(n * sizeof(float));
    if (!tmp) { free(d); return sd_fail(SD_ERR_MEMORY, "cpu backend: out of memory"); }
    switch (src_type) {
    case BE_F32: memcpy(tmp, src, n * sizeof(float)); break;
    case BE_F16: f16_to_f32_array(src, tmp, n); break;
    case BE_BF16: bf16_to_f32_array(src, tmp, n); break;
    }
    if (tmp != d) { /* [out][in][kh][kw] -> [out][kh][kw][in]: rows match the NHWC im2col layout */
        int ci = w->in, kk = w->kh * w->kw;
        for (int o = 0; o < w->out; o++)
            for (int i = 0; i < ci; i++)
                for (int k = 0; k < kk; k++) d[((size_t)o * kk + k) * ci + i] = tmp[((size_t)o * ci + i) * kk + k];
        free(tmp);
    }
    w->data = d;
    b->weight_bytes += n * sizeof(float);
    return SD_OK;
}

static void cpu_weight_free(be *b, be_weight *w) {
    b->weight_bytes -= (size_t)w->out * w->in * w->kh * w->kw * sizeof(float);
    free(w->data);
}

static void cpu_upload(be *b, be_tensor *dst, const float *src) {
    (void)b;
    memcpy(dst->data, src, be_numel(dst) * sizeof(float));
}

static void cpu_download(be *b, const be_tensor *src, float *dst) {
    (void)b;
    memcpy(dst, src->data, be_numel(src) * sizeof(float));
}

/* ---- element-wise and normalisation ops ---- */

static inline float act_apply(be_act a, float v) {
    switch (a) {
    case BE_ACT_SILU: return v / (1.0f + expf(-v));
    case BE_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case BE_ACT_QUICK_GELU: return v / (1.0f + expf(-1.702f * v));
    default: return v;
    }
}

void cpu_bias_act(float *y, size_t rows, int cols, const float *bias, be_act act) {
    if (!bias && act == BE_ACT_NONE) return;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * cols;
        for (int j = 0; j < cols; j++) yr[j] = act_apply(act, yr[j] + (bias ? bias[j] : 0.0f));
    }
}

static void cpu_act(be *b, be_act act, const be_tensor *x, be_tensor *y) {
    (void)b;
    const float *xs = x->data;
    float *ys = y->data;
    size_t n = be_numel(x);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) ys[i] = act_apply(act, xs[i]);
}

static void cpu_geglu(be *b, const be_tensor *x, be_tensor *y) {
    (void)b;
    size_t rows = (size_t)y->n * y->h * y->w;
    int c = y->c;
    const float *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < c; j++) ys[r * c + j] = xs[r * 2 * c + j] * act_apply(BE_ACT_GELU, xs[r * 2 * c + c + j]);
}

static void cpu_add(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y) {
    (void)b;
    const float *as = a->data, *xs = x->data;
    float *ys = y->data;
    int C = a->c;
    size_t rows = (size_t)a->n * a->h * a->w;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        int n = (int)(r / ((size_t)a->h * a->w)), hh = (int)(r / a->w % a->h), ww = (int)(r % a->w);
        size_t xr = ((size_t)(x->n == 1 ? 0 : n) * x->h + (x->h == 1 ? 0 : hh)) * x->w + (x->w == 1 ? 0 : ww);
        for (int j = 0; j < C; j++) ys[r * C + j] = as[r * C + j] + alpha * xs[xr * C + j];
    }
}

static void cpu_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y) {
    (void)b;
    const float *xs = x->data, *g = gamma ? gamma->data : NULL, *bt = beta ? beta->data : NULL;
    float *ys = y->data;
    int C = x->c, cpg = C / groups;
    size_t hw = (size_t)x->h * x->w;
#pragma omp parallel for schedule(dynamic)
    for (int task = 0; task < x->n * groups; task++) {
        int n = task / groups, gi = task % groups;
        const float *base = xs + (size_t)n * hw * C + (size_t)gi * cpg;
        double s = 0;
        for (size_t p = 0; p < hw; p++)
            for (int j = 0; j < cpg; j++) s += base[p * C + j];
        double mean = s / ((double)hw * cpg), v = 0;
        for (size_t p = 0; p < hw; p++)
            for (int j = 0; j < cpg; j++) {
                double d = base[p * C + j] - mean;
                v += d * d;
            }
        float m = (float)mean, rstd = (float)(1.0 / sqrt(v / ((double)hw * cpg) + eps));
        float *out = ys + (size_t)n * hw * C + (size_t)gi * cpg;
        for (size_t p = 0; p < hw; p++)
            for (int j = 0; j < cpg; j++) {
                int c = gi * cpg + j;
                float o = (base[p * C + j] - m) * rstd * (g ? g[c] : 1.0f) + (bt ? bt[c] : 0.0f);
                out[p * C + j] = silu ? o / (1.0f + expf(-o)) : o;
            }
    }
}

static void cpu_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y) {
    (void)b;
    const float *xs = x->data, *g = gamma ? gamma->data : NULL, *bt = beta ? beta->data : NULL;
    float *ys = y->data;
    int C = x->c;
    size_t rows = (size_t)x->n * x->h * x->w;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = xs + r * C;
        double s = 0, v = 0;
        for (int j = 0; j < C; j++) s += xr[j];
        double mean = s / C;
        for (int j = 0; j < C; j++) v += (xr[j] - mean) * (xr[j] - mean);
        float m = (float)mean, rstd = (float)(1.0 / sqrt(v / C + eps));
        for (int j = 0; j < C; j++) ys[r * C + j] = (xr[j] - m) * rstd * (g ? g[j] : 1.0f) + (bt ? bt[j] : 0.0f);
    }
}

static void cpu_upsample_nearest(be *b, const be_tensor *x, be_tensor *y) {
    (void)b;
    const float *xs = x->data;
    float *ys = y->data;
    int C = x->c;
    /* PyTorch's "nearest": src = min(floor(dst * (in / out)), in - 1), scale computed in float */
    float sh = (float)x->h / (float)y->h, sw = (float)x->w / (float)y->w;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < y->n * y->h; r++) {
        int n = r / y->h, oy = r % y->h, iy = (int)floorf((float)oy * sh);
        if (iy > x->h - 1) iy = x->h - 1;
        for (int ox = 0; ox < y->w; ox++) {
            int ix = (int)floorf((float)ox * sw);
            if (ix > x->w - 1) ix = x->w - 1;
            memcpy(ys + (((size_t)n * y->h + oy) * y->w + ox) * C, xs + (((size_t)n * x->h + iy) * x->w + ix) * C, C * sizeof(float));
        }
    }
}

static void cpu_concat_channels(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y) {
    (void)b;
    size_t rows = (size_t)a->n * a->h * a->w;
    const float *as = a->data, *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        memcpy(ys + r * y->c, as + r * a->c, a->c * sizeof(float));
        memcpy(ys + r * y->c + a->c, xs + r * x->c, x->c * sizeof(float));
    }
}

static void cpu_embedding(be *b, const int32_t *ids, const be_weight *table, be_tensor *y) {
    (void)b;
    size_t rows = (size_t)y->n * y->h * y->w;
    const float *t = table->data;
    for (size_t r = 0; r < rows; r++) memcpy((float *)y->data + r * y->c, t + (size_t)ids[r] * table->in, table->in * sizeof(float));
}

void cpu_timestep_embedding_host(const float *t, int n, int dim, int flip, float shift, float *out) {
    /* diffusers get_timestep_embedding, in float32 like torch: exponent = -ln(10000)·j / (half - shift) */
    int half = dim / 2;
    const float neg_log = (float)-9.210340371976184; /* -math.log(10000) rounded to f32 */
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * dim;
        for (int j = 0; j < half; j++) {
            float e = (neg_log * (float)j) / ((float)half - shift);
            float arg = t[i] * expf(e);
            float s = sinf(arg), c = cosf(arg);
            o[j] = flip ? c : s;
            o[half + j] = flip ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}

static void cpu_timestep_embedding(be *b, const float *t, int flip, float shift, be_tensor *y) {
    (void)b;
    cpu_timestep_embedding_host(t, y->n, y->c, flip, shift, y->data);
}

static const struct be_ops cpu_ops = {
    .name = "cpu",
    .free = cpu_free,
    .arena_reserve = cpu_arena_reserve,
    .weight_upload = cpu_weight_upload,
    .weight_free = cpu_weight_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = NULL,
    .linear = cpu_linear,
    .conv2d = cpu_conv2d,
    .group_norm = cpu_group_norm,
    .layer_norm = cpu_layer_norm,
    .act = cpu_act,
    .geglu = cpu_geglu,
    .add = cpu_add,
    .attention = cpu_attention,
    .upsample_nearest = cpu_upsample_nearest,
    .concat_channels = cpu_concat_channels,
    .embedding = cpu_embedding,
    .timestep_embedding = cpu_timestep_embedding,
};

be *be_cpu_new(int threads) {
    be *b = calloc(1, sizeof *b);
    cpu_impl *c = calloc(1, sizeof *c);
    if (!b || !c) { free(b); free(c); sd_fail(SD_ERR_MEMORY, "cpu backend: out of memory"); return NULL; }
    c->threads = threads > 0 ? threads : omp_get_num_procs();
    omp_set_num_threads(c->threads);
    openblas_set_num_threads(c->threads);
    b->ops = &cpu_ops;
    b->impl = c;
    b->elem_size = sizeof(float);
    return b;
}
