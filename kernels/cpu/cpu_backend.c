/* cpu_backend.c — the CPU backend: f32 activations in an mmap'd arena, weights kept in the checkpoint's
 * 16-bit type, OpenBLAS GEMMs (single-threaded, called from OpenMP threads), vectorised row kernels. */
#include "cpu_internal.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../core/error.h"
#include "../../core/half.h"

/* SD_CPU_PROFILE=cpu times ops in process CPU time: with one thread on a busy machine that is the op's own work. */
static clockid_t g_prof_clock = CLOCK_MONOTONIC;

double cpu_now(void) {
    struct timespec ts;
    clock_gettime(g_prof_clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Elementwise work below this many floats runs on one thread: a parallel region costs microseconds. */
#define PAR_MIN 32768

/* ---- memory ---- */

static void prof_print(cpu_impl *c) {
    static const char *names[PROF_COUNT] = {"linear", "conv2d", "widen", "group_norm", "layer_norm", "attention", "elementwise", "copy"};
    double tot = 0;
    for (int i = 0; i < PROF_COUNT; i++) tot += c->prof_s[i];
    fprintf(stderr, "cpu profile (%d threads, %s): %.3f s in ops\n", c->threads, cpu_level_name(cpu_level_get()), tot);
    for (int i = 0; i < PROF_COUNT; i++) {
        if (!c->prof_calls[i]) continue;
        fprintf(stderr, "  %-12s %8ld calls %9.3f s %5.1f%%", names[i], c->prof_calls[i], c->prof_s[i], tot > 0 ? 100 * c->prof_s[i] / tot : 0);
        if (c->prof_flops[i] > 0) fprintf(stderr, "  %8.1f GFLOP/s", c->prof_flops[i] / c->prof_s[i] / 1e9);
        fprintf(stderr, "\n");
    }
}

static void cpu_free(be *b) {
    cpu_impl *c = b->impl;
    if (c->profile) prof_print(c);
    if (c->arena_mem) munmap(c->arena_mem, c->arena_bytes);
    free(c->scratch);
    free(c->wide);
    free(c->borrowed);
    free(c);
    free(b);
}

static sd_status cpu_buffer_alloc(be *b, size_t bytes, void **p) {
    (void)b;
    *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    return *p ? SD_OK : err_fail(SD_ERR_MEMORY, "cpu backend: out of memory for a %.1f MiB buffer", bytes / 1048576.0);
}

static void cpu_buffer_free(be *b, void *p) {
    (void)b;
    free(p);
}

static sd_status cpu_arena_reserve(be *b, size_t bytes) {
    cpu_impl *c = b->impl;
    if (b->arena.used) return err_fail(SD_ERR_ARG, "cpu backend: arena resized while in use");
    if (c->arena_mem) munmap(c->arena_mem, c->arena_bytes);
    c->arena_mem = NULL;
    /* pages are only backed when first touched, so a generous reservation costs nothing */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        arena_init(&b->arena, 0, 0);
        return err_fail(SD_ERR_MEMORY, "cpu backend: cannot reserve %.1f MiB of activation memory", bytes / 1048576.0);
    }
    c->arena_mem = p;
    c->arena_bytes = bytes;
    arena_init(&b->arena, (uintptr_t)p, bytes);
    return SD_OK;
}

static void cpu_arena_trim(be *b) {
    cpu_impl *c = b->impl;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (c->arena_mem) {
        uintptr_t lo = ((uintptr_t)b->arena.base + b->arena.used + page - 1) & ~(page - 1), hi = (uintptr_t)c->arena_mem + c->arena_bytes;
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED); /* anonymous private pages: dropped, zero on next touch */
    }
    for (int i = 0; i < c->nborrowed; i++) { /* read-only file pages: dropped from the process, read back when touched */
        const cpu_w *cw = c->borrowed[i];
        uintptr_t lo = (uintptr_t)cw->data & ~(page - 1), hi = (uintptr_t)cw->data + cw->count * (cw->type == BE_F32 ? 4 : 2);
        madvise((void *)lo, ((hi + page - 1) & ~(page - 1)) - lo, MADV_DONTNEED);
    }
}

static void *grow(be *b, void *old, size_t *have, size_t floats, const char *what) {
    if (floats <= *have) return old;
    free(old);
    void *p = NULL;
    if (posix_memalign(&p, 64, floats * sizeof(float))) p = NULL;
    *have = p ? floats : 0;
    if (!p) be_set_error(b, SD_ERR_MEMORY, "cpu backend: cannot allocate %.1f MiB of %s", floats * 4 / 1048576.0, what);
    return p;
}

float *cpu_scratch(be *b, size_t floats) {
    cpu_impl *c = b->impl;
    c->scratch = grow(b, c->scratch, &c->scratch_floats, floats, "scratch");
    return c->scratch;
}

int cpu_weight_block(const be_weight *w) {
    const cpu_w *cw = w->data;
    size_t k = cw->count / w->out;
    if ((cw->type == BE_F32 && !cw->torch_layout) || (size_t)w->out * k <= WIDE_FLOATS) return w->out;
    int nb = (int)(WIDE_FLOATS / k) & ~15;
    return nb < 16 ? 16 : nb;
}

const float *cpu_weight_rows(be *b, const be_weight *w, int o0, int n) {
    cpu_impl *c = b->impl;
    const cpu_w *cw = w->data;
    size_t k = cw->count / w->out;
    if (cw->type == BE_F32 && !cw->torch_layout) return (const float *)cw->data + (size_t)o0 * k;
    if (c->wide_of == cw && c->wide_o0 == o0 && c->wide_n == n) return c->wide;
    double t0 = c->profile ? cpu_now() : 0;
    size_t count = (size_t)n * k;
    if (count > c->wide_floats) c->wide_of = NULL;
    c->wide = grow(b, c->wide, &c->wide_floats, count, "widened weights");
    if (!c->wide) return NULL;
    float *dst = c->wide;
    const cpu_kern *kn = cpu_kern_get();
    if (cw->torch_layout) { /* each row [in][kk] -> [kk][in], widened into a per-thread row first */
        int ci = w->in, kk = w->kh * w->kw, T = c->threads;
        float *tmp = malloc((size_t)T * k * sizeof(float));
        if (!tmp) { be_set_error(b, SD_ERR_MEMORY, "cpu backend: out of memory re-laying out a weight"); return NULL; }
#pragma omp parallel for schedule(static) num_threads(T) if (count > 65536)
        for (int r = 0; r < n; r++) {
            float *row = tmp + (size_t)omp_get_thread_num() * k, *d = dst + (size_t)r * k;
            size_t o = (size_t)(o0 + r) * k;
            if (cw->type == BE_F32) memcpy(row, (const float *)cw->data + o, k * sizeof(float));
            else if (cw->type == BE_F16) kn->widen_f16((const uint16_t *)cw->data + o, row, k);
            else kn->widen_bf16((const uint16_t *)cw->data + o, row, k);
            for (int i = 0; i < ci; i++)
                for (int t = 0; t < kk; t++) d[(size_t)t * ci + i] = row[(size_t)i * kk + t];
        }
        free(tmp);
    } else {
        const uint16_t *src = (const uint16_t *)cw->data + (size_t)o0 * k;
        size_t chunk = 1 << 16;
        long nchunks = (long)((count + chunk - 1) / chunk);
        int f16 = cw->type == BE_F16;
#pragma omp parallel for schedule(static) num_threads(c->threads) if (nchunks > 1)
        for (long i = 0; i < nchunks; i++) {
            size_t o = (size_t)i * chunk, len = count - o < chunk ? count - o : chunk;
            if (f16) kn->widen_f16(src + o, dst + o, len);
            else kn->widen_bf16(src + o, dst + o, len);
        }
    }
    c->wide_of = cw;
    c->wide_o0 = o0;
    c->wide_n = n;
    if (c->profile) { c->prof_s[PROF_WIDEN] += cpu_now() - t0; c->prof_calls[PROF_WIDEN]++; }
    return c->wide;
}

static void to_f32(be_dtype t, const void *src, float *dst, size_t n) {
    switch (t) {
    case BE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case BE_F16: f16_to_f32_array(src, dst, n); break;
    case BE_BF16: bf16_to_f32_array(src, dst, n); break;
    }
}

static sd_status cpu_weight_upload(be *b, be_weight *w, be_dtype src_type, const void *src) {
    size_t n = (size_t)w->out * w->in * w->kh * w->kw;
    cpu_w *cw = calloc(1, sizeof *cw);
    /* parameter vectors are read directly by the ops: f32; matrices keep the checkpoint's type */
    be_dtype t = w->kind == BE_W_VEC ? BE_F32 : src_type;
    size_t es = t == BE_F32 ? 4 : 2;
    void *d = NULL;
    if (!cw || posix_memalign(&d, 64, n > 0 ? n * es : 64)) {
        free(cw);
        return err_fail(SD_ERR_MEMORY, "cpu backend: cannot allocate %.1f MiB for a weight", n * es / 1048576.0);
    }
    cw->type = t;
    cw->count = n;
    cw->data = d;
    if (w->kind == BE_W_VEC) {
        to_f32(src_type, src, d, n);
    } else if (w->kind == BE_W_CONV && (w->kh > 1 || w->kw > 1)) {
        /* [out][in][kh][kw] -> [out][kh][kw][in]: rows match the NHWC im2col layout and each tap is a [out, in] slice */
        int ci = w->in, kk = w->kh * w->kw;
        for (int oc = 0; oc < w->out; oc++) {
            size_t base = (size_t)oc * ci * kk;
            if (es == 2) {
                const uint16_t *s = (const uint16_t *)src + base;
                uint16_t *o = (uint16_t *)d + base;
                for (int i = 0; i < ci; i++)
                    for (int k = 0; k < kk; k++) o[(size_t)k * ci + i] = s[(size_t)i * kk + k];
            } else {
                const float *s = (const float *)src + base;
                float *o = (float *)d + base;
                for (int i = 0; i < ci; i++)
                    for (int k = 0; k < kk; k++) o[(size_t)k * ci + i] = s[(size_t)i * kk + k];
            }
        }
    } else {
        memcpy(d, src, n * es);
    }
    w->data = cw;
    b->weight_bytes += n * es;
    return SD_OK;
}

/* Zero-copy: matrices and kernels are read from the caller's memory (the mapped checkpoint) in place. */
static sd_status cpu_weight_borrow(be *b, be_weight *w, be_dtype src_type, const void *src, void (*release)(void *), void *keep) {
    if (w->kind == BE_W_VEC) return SD_ERR_UNSUPPORTED; /* parameter vectors are read as f32 by the ops: copied */
    cpu_w *cw = calloc(1, sizeof *cw);
    if (!cw) return err_fail(SD_ERR_MEMORY, "cpu backend: out of memory");
    cw->type = src_type;
    cw->count = (size_t)w->out * w->in * w->kh * w->kw;
    cw->data = (void *)src;
    cw->borrowed = 1;
    cw->torch_layout = w->kind == BE_W_CONV && w->kh * w->kw > 1;
    cw->release = release;
    cw->keep = keep;
    cpu_impl *c = b->impl;
    if (c->nborrowed == c->borrowed_cap) {
        int cap = c->borrowed_cap ? 2 * c->borrowed_cap : 256;
        cpu_w **l = realloc(c->borrowed, cap * sizeof *l);
        if (!l) { free(cw); return err_fail(SD_ERR_MEMORY, "cpu backend: out of memory"); }
        c->borrowed = l;
        c->borrowed_cap = cap;
    }
    c->borrowed[c->nborrowed++] = cw;
    b->weight_mapped += cw->count * (src_type == BE_F32 ? 4 : 2);
    w->data = cw;
    return SD_OK;
}

static void cpu_weight_free(be *b, be_weight *w) {
    cpu_impl *c = b->impl;
    cpu_w *cw = w->data;
    if (c->wide_of == cw) c->wide_of = NULL;
    if (cw->borrowed) {
        for (int i = 0; i < c->nborrowed; i++)
            if (c->borrowed[i] == cw) {
                c->borrowed[i] = c->borrowed[--c->nborrowed];
                break;
            }
        b->weight_mapped -= cw->count * (cw->type == BE_F32 ? 4 : 2);
        if (cw->release) cw->release(cw->keep);
    } else {
        b->weight_bytes -= cw->count * (cw->type == BE_F32 ? 4 : 2);
        free(cw->data);
    }
    free(cw);
}

static void cpu_upload(be *b, be_tensor *dst, const float *src) {
    (void)b;
    memcpy(dst->data, src, be_numel(dst) * sizeof(float));
}

static void cpu_download(be *b, const be_tensor *src, float *dst) {
    (void)b;
    memcpy(dst, src->data, be_numel(src) * sizeof(float));
}

/* ---- element-wise ops ---- */

#define PROF_BEGIN double prof_t0_ = ((cpu_impl *)b->impl)->profile ? cpu_now() : 0
#define PROF_END(k)                                                     \
    do {                                                                \
        cpu_impl *pc_ = b->impl;                                        \
        if (pc_->profile) {                                             \
            pc_->prof_s[k] += cpu_now() - prof_t0_;                     \
            pc_->prof_calls[k]++;                                       \
        }                                                               \
    } while (0)

static void cpu_act(be *b, be_act act, const be_tensor *x, be_tensor *y) {
    PROF_BEGIN;
    cpu_impl *c = b->impl;
    const float *xs = x->data;
    float *ys = y->data;
    size_t n = be_numel(x), chunk = 16384;
    long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) num_threads(c->threads) if (n > PAR_MIN)
    for (long i = 0; i < nchunks; i++) {
        size_t o = (size_t)i * chunk;
        cpu_bias_act_row(xs + o, NULL, act, ys + o, n - o < chunk ? n - o : chunk);
    }
    PROF_END(PROF_ELEM);
}

static void cpu_geglu(be *b, const be_tensor *x, be_tensor *y) {
    PROF_BEGIN;
    cpu_impl *c = b->impl;
    size_t rows = (size_t)y->n * y->h * y->w;
    int C = y->c;
    const float *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for schedule(static) num_threads(c->threads) if (rows * C > PAR_MIN)
    for (size_t r = 0; r < rows; r++) cpu_geglu_row(xs + r * 2 * C, xs + r * 2 * C + C, ys + r * C, C);
    PROF_END(PROF_ELEM);
}

static void cpu_add(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y) {
    PROF_BEGIN;
    cpu_impl *c = b->impl;
    const float *as = a->data, *xs = x->data;
    float *ys = y->data;
    int C = a->c;
    size_t rows = (size_t)a->n * a->h * a->w;
    if (x->n == a->n && x->h == a->h && x->w == a->w) { /* no broadcast: one flat row */
        size_t n = rows * C, chunk = 16384;
        long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) num_threads(c->threads) if (n > PAR_MIN)
        for (long i = 0; i < nchunks; i++) {
            size_t o = (size_t)i * chunk;
            cpu_axpy_row(as + o, xs + o, alpha, ys + o, n - o < chunk ? n - o : chunk);
        }
    } else {
#pragma omp parallel for schedule(static) num_threads(c->threads) if (rows * C > PAR_MIN)
        for (size_t r = 0; r < rows; r++) {
            int n = (int)(r / ((size_t)a->h * a->w)), hh = (int)(r / a->w % a->h), ww = (int)(r % a->w);
            size_t xr = ((size_t)(x->n == 1 ? 0 : n) * x->h + (x->h == 1 ? 0 : hh)) * x->w + (x->w == 1 ? 0 : ww);
            cpu_axpy_row(as + r * C, xs + xr * C, alpha, ys + r * C, C);
        }
    }
    PROF_END(PROF_ELEM);
}

static void cpu_upsample_nearest(be *b, const be_tensor *x, be_tensor *y) {
    PROF_BEGIN;
    cpu_impl *c = b->impl;
    const float *xs = x->data;
    float *ys = y->data;
    int C = x->c;
    /* PyTorch's "nearest": src = min(floor(dst * (in / out)), in - 1), scale computed in float */
    float sh = (float)x->h / (float)y->h, sw = (float)x->w / (float)y->w;
#pragma omp parallel for schedule(static) num_threads(c->threads) if (be_numel(y) > PAR_MIN)
    for (int r = 0; r < y->n * y->h; r++) {
        int n = r / y->h, oy = r % y->h, iy = (int)floorf((float)oy * sh);
        if (iy > x->h - 1) iy = x->h - 1;
        for (int ox = 0; ox < y->w; ox++) {
            int ix = (int)floorf((float)ox * sw);
            if (ix > x->w - 1) ix = x->w - 1;
            memcpy(ys + (((size_t)n * y->h + oy) * y->w + ox) * C, xs + (((size_t)n * x->h + iy) * x->w + ix) * C, C * sizeof(float));
        }
    }
    PROF_END(PROF_COPY);
}

static void cpu_concat_channels(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y) {
    PROF_BEGIN;
    cpu_impl *c = b->impl;
    size_t rows = (size_t)a->n * a->h * a->w;
    const float *as = a->data, *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for schedule(static) num_threads(c->threads) if (be_numel(y) > PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        memcpy(ys + r * y->c, as + r * a->c, a->c * sizeof(float));
        memcpy(ys + r * y->c + a->c, xs + r * x->c, x->c * sizeof(float));
    }
    PROF_END(PROF_COPY);
}

static void cpu_embedding(be *b, const int32_t *ids, const be_weight *table, be_tensor *y) {
    (void)b;
    size_t rows = (size_t)y->n * y->h * y->w;
    const cpu_w *cw = table->data;
    int dim = table->in;
    for (size_t r = 0; r < rows; r++) {
        float *dst = (float *)y->data + r * y->c;
        size_t o = (size_t)ids[r] * dim;
        if (cw->type == BE_F32) memcpy(dst, (const float *)cw->data + o, dim * sizeof(float));
        else if (cw->type == BE_F16) cpu_widen_f16((const uint16_t *)cw->data + o, dst, dim);
        else cpu_widen_bf16((const uint16_t *)cw->data + o, dst, dim);
    }
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
    .host_memory = 1,
    .free = cpu_free,
    .arena_reserve = cpu_arena_reserve,
    .arena_trim = cpu_arena_trim,
    .weight_upload = cpu_weight_upload,
    .weight_free = cpu_weight_free,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
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

const char *be_cpu_level(void) { return cpu_level_name(cpu_level_get()); }

be *be_cpu_new(int threads) {
    be *b = calloc(1, sizeof *b);
    cpu_impl *c = calloc(1, sizeof *c);
    if (!b || !c) { free(b); free(c); err_fail(SD_ERR_MEMORY, "cpu backend: out of memory"); return NULL; }
    c->threads = threads > 0 ? threads : omp_get_num_procs();
    const char *p = getenv("SD_CPU_PROFILE");
    c->profile = p && *p && strcmp(p, "0");
    if (p && !strcmp(p, "cpu")) g_prof_clock = CLOCK_PROCESS_CPUTIME_ID;
    cpu_level_get();
    /* All parallelism is OpenMP's: GEMMs are split over the threads here and each part calls a single-threaded
     * BLAS, so OpenBLAS's own pthreads never spin against the OpenMP threads between calls. */
    openblas_set_num_threads(1);
    b->ops = &cpu_ops;
    b->weight_borrow = cpu_weight_borrow;
    b->impl = c;
    b->elem_size = sizeof(float);
    return b;
}
