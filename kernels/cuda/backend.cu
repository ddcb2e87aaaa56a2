/* backend.cu — the CUDA backend's host side: device and stream, cuBLAS handle, activation arena, weight upload
 * with re-layout, host<->device transfers, and the ops table (the ops themselves live in the other .cu files). */
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Weight uploads are staged and converted in pieces of at most this many source elements, so loading a
 * large embedding table does not leave a large scratch buffer behind. */
#define WEIGHT_CHUNK_ELEMS ((size_t)8 << 20)

/* ---- scratch and arena ---- */

sd_status cuda_buffer(be *b, int which, size_t bytes, void **out) {
    cuda_impl *c = cuda_of(b);
    if (bytes > c->buf_bytes[which]) {
        /* kernels queued earlier may still use the old buffer */
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
        if (c->buf[which]) CUDA_CHECK(cudaFree(c->buf[which]));
        c->buf[which] = NULL;
        c->buf_bytes[which] = 0;
        size_t want = (bytes + 0xfffff) & ~(size_t)0xfffff; /* whole MiB: fewer regrowths */
        if (cudaMalloc(&c->buf[which], want) != cudaSuccess) {
            cudaGetLastError();
            c->buf[which] = NULL;
            return err_fail(SD_ERR_MEMORY, "cuda backend: cannot allocate %.1f MiB of scratch on the device", want / 1048576.0);
        }
        if (which == CUDA_BUF_COUNTERS || which == CUDA_BUF_SEQ) CUDA_CHECK(cudaMemsetAsync(c->buf[which], 0, want, c->stream));
        c->buf_bytes[which] = want;
        cuda_graphs_drop(b); /* captured graphs hold the old address */
    }
    *out = c->buf[which];
    return SD_OK;
}

void cuda_free_backend(be *b) {
    cuda_impl *c = cuda_of(b);
    cuda_recorder_free(b);
    cuda_igemm_seq_free(b);
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->arena_mem) cudaFree(c->arena_mem);
    for (int i = 0; i < CUDA_BUF_COUNT; i++)
        if (c->buf[i]) cudaFree(c->buf[i]);
    if (c->blas) cublasDestroy(c->blas);
    if (c->blas_ws) cudaFree(c->blas_ws);
    for (int i = 0; i < c->nslabs; i++) cudaFree(c->slabs[i].base);
    free(c->slabs);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->seq_fault) cudaFreeHost(c->seq_fault);
    free(c);
    free(b);
}

sd_status cuda_arena_reserve(be *b, size_t bytes) {
    cuda_impl *c = cuda_of(b);
    if (b->arena.used) return err_fail(SD_ERR_ARG, "cuda backend: arena resized while in use");
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    if (c->arena_mem) CUDA_CHECK(cudaFree(c->arena_mem));
    c->arena_mem = NULL;
    c->arena_bytes = 0;
    arena_init(&b->arena, 0, 0);
    if (cudaMalloc(&c->arena_mem, bytes) != cudaSuccess) {
        cudaGetLastError();
        c->arena_mem = NULL;
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return err_fail(SD_ERR_MEMORY, "cuda backend: cannot reserve %.1f MiB of activation memory (%.1f of %.1f MiB free on %s)",
                       bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0, c->device_name);
    }
    c->arena_bytes = bytes;
    arena_init(&b->arena, (uintptr_t)c->arena_mem, bytes); /* cudaMalloc is 256-byte aligned, as mem_arena wants */
    return SD_OK;
}

/* ---- weights ---- */

/* Weights are packed one after another into slabs of WEIGHT_SLAB bytes (one allocation holds a whole model's UNet
 * in a few pieces: fewer allocations, and one address range an L2 persistence window or a graph can name); a slab
 * is freed when its last weight is. The emulated build gives each weight its own allocation, so that its guard
 * pages still catch a read past a weight's end. */
#ifdef CUDA_EMU
#define WEIGHT_SLAB ((size_t)0)
#else
#define WEIGHT_SLAB ((size_t)256 << 20)
#endif

static sd_status slab_alloc(cuda_impl *c, size_t bytes, void **p) {
    if (WEIGHT_SLAB) bytes = (bytes + 255) & ~(size_t)255; /* (emulated: the allocation's own slack and guard page) */
    struct cuda_impl::cuda_slab *last = c->nslabs ? &c->slabs[c->nslabs - 1] : NULL;
    if (!last || last->used + bytes > last->size) {
        struct cuda_impl::cuda_slab *grown = (struct cuda_impl::cuda_slab *)realloc(c->slabs, (c->nslabs + 1) * sizeof *c->slabs);
        if (!grown) return err_fail(SD_ERR_MEMORY, "out of memory");
        c->slabs = grown;
        last = &c->slabs[c->nslabs];
        last->size = bytes > WEIGHT_SLAB ? bytes : WEIGHT_SLAB;
        last->used = 0;
        last->live = 0;
        if (cudaMalloc(&last->base, last->size) != cudaSuccess) {
            cudaGetLastError();
            return err_fail(SD_ERR_MEMORY, "cuda backend: cannot allocate %.1f MiB of weights on the device", last->size / 1048576.0);
        }
        c->nslabs++;
    }
    *p = last->base + last->used;
    last->used += bytes;
    last->live++;
    return SD_OK;
}

static void slab_free(cuda_impl *c, void *p) {
    for (int i = 0; i < c->nslabs; i++) {
        struct cuda_impl::cuda_slab *sl = &c->slabs[i];
        if ((char *)p < sl->base || (char *)p >= sl->base + sl->size) continue;
        if (--sl->live == 0) {
            cudaFree(sl->base); /* waits for kernels still reading it */
            c->slabs[i] = c->slabs[--c->nslabs];
        }
        return;
    }
}

static size_t weight_elem_size(const be *b, const be_weight *w) {
    return w->kind == BE_W_VEC ? sizeof(float) : cuda_dtype_size(cuda_of((be *)b)->dt);
}

static size_t weight_bytes(const be *b, const be_weight *w) {
    return (size_t)w->out * w->in * w->kh * w->kw * weight_elem_size(b, w);
}

/* Layouts on the device: LINEAR [out][in] and EMBED [rows][dim] as given; CONV [out][kh][kw][in] (rows of the
 * NHWC im2col matrix); VEC in f32. */
static sd_status upload_weight(be *b, be_weight *w, be_dtype src_type, const void *src) {
    cuda_impl *c = cuda_of(b);
    be_dtype dst_type = w->kind == BE_W_VEC ? BE_F32 : c->dt;
    size_t row = (size_t)w->in * w->kh * w->kw, src_es = cuda_dtype_size(src_type);
    size_t bytes = weight_bytes(b, w);
    sd_status sst = slab_alloc(c, bytes, &w->data);
    if (sst != SD_OK) {
        w->data = NULL;
        return sst;
    }
    if (src_type == dst_type) { /* same type: a copy, after the conv re-layout on the host */
        const int taps = w->kind == BE_W_CONV ? w->kh * w->kw : 1;
        if (taps == 1) {
            CUDA_CHECK(cudaMemcpyAsync(w->data, src, bytes, cudaMemcpyHostToDevice, c->stream));
            CUDA_CHECK(cudaStreamSynchronize(c->stream)); /* the host source may be freed as soon as we return */
            return SD_OK;
        }
        unsigned char *t = (unsigned char *)malloc(bytes);
        if (t) {
            const unsigned char *sp = (const unsigned char *)src;
            const size_t es = src_es, in = (size_t)w->in;
            for (size_t o = 0; o < (size_t)w->out; o++) /* [o][in][taps] -> [o][taps][in] */
                for (size_t i = 0; i < in; i++)
                    for (size_t k = 0; k < (size_t)taps; k++) memcpy(t + ((o * taps + k) * in + i) * es, sp + ((o * in + i) * taps + k) * es, es);
            cudaError_t e = cudaMemcpy(w->data, t, bytes, cudaMemcpyHostToDevice);
            free(t);
            CUDA_CHECK(e);
            return SD_OK;
        }
    }
    int rows_per_chunk = row >= WEIGHT_CHUNK_ELEMS ? 1 : (int)(WEIGHT_CHUNK_ELEMS / row);
    for (int r0 = 0; r0 < w->out; r0 += rows_per_chunk) {
        int nr = w->out - r0 < rows_per_chunk ? w->out - r0 : rows_per_chunk;
        void *stage = NULL;
        sd_status st = cuda_scratch(b, (size_t)nr * row * src_es, &stage);
        if (st != SD_OK) return st;
        CUDA_CHECK(cudaMemcpyAsync(stage, (const char *)src + (size_t)r0 * row * src_es, (size_t)nr * row * src_es,
                                   cudaMemcpyHostToDevice, c->stream));
        st = cuda_weight_convert(b, stage, src_type, (char *)w->data + (size_t)r0 * row * cuda_dtype_size(dst_type), dst_type, nr,
                                 w->in, w->kind == BE_W_CONV ? w->kh * w->kw : 1);
        if (st != SD_OK) return st;
    }
    /* the host source may be freed as soon as we return */
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return SD_OK;
}

sd_status cuda_weight_upload(be *b, be_weight *w, be_dtype src_type, const void *src) {
    w->data = NULL;
    sd_status st = upload_weight(b, w, src_type, src);
    if (st != SD_OK) {
        if (w->data) slab_free(cuda_of(b), w->data);
        w->data = NULL;
        return st;
    }
    b->weight_bytes += weight_bytes(b, w);
    return SD_OK;
}

void cuda_weight_free(be *b, be_weight *w) {
    slab_free(cuda_of(b), w->data);
    b->weight_bytes -= weight_bytes(b, w);
}

sd_status cuda_buffer_alloc(be *b, size_t bytes, void **p) {
    (void)b;
    if (cudaMalloc(p, bytes) != cudaSuccess) {
        cudaGetLastError();
        *p = NULL;
        return err_fail(SD_ERR_MEMORY, "cuda backend: cannot allocate a %.1f MiB buffer on the device", bytes / 1048576.0);
    }
    return SD_OK;
}

void cuda_buffer_free(be *b, void *p) {
    (void)b;
    cudaFree(p); /* waits for kernels still using it */
}

/* ---- transfers ---- */

void cuda_upload(be *b, be_tensor *dst, const float *src) {
    cuda_impl *c = cuda_of(b);
    size_t n = be_numel(dst);
    sd_status st = SD_OK;
    if (c->dt == BE_F32) {
        cudaError_t e = cudaMemcpyAsync(dst->data, src, n * sizeof(float), cudaMemcpyHostToDevice, c->stream);
        if (e != cudaSuccess) st = err_fail(SD_ERR_BACKEND, "cuda upload: %s", cudaGetErrorString(e));
    } else {
        void *stage = NULL;
        st = cuda_scratch(b, n * sizeof(float), &stage);
        if (st == SD_OK) {
            cudaError_t e = cudaMemcpyAsync(stage, src, n * sizeof(float), cudaMemcpyHostToDevice, c->stream);
            st = e == cudaSuccess ? cuda_convert(b, stage, BE_F32, dst->data, c->dt, n)
                                  : err_fail(SD_ERR_BACKEND, "cuda upload: %s", cudaGetErrorString(e));
        }
    }
    cuda_report(b, st);
}

sd_status cuda_download_async(be *b, const be_tensor *src, float *dst) {
    cuda_impl *c = cuda_of(b);
    size_t n = be_numel(src);
    const void *from = src->data;
    if (c->dt != BE_F32) {
        void *stage = NULL;
        sd_status st = cuda_scratch(b, n * sizeof(float), &stage);
        if (st != SD_OK) return st;
        st = cuda_convert(b, src->data, c->dt, stage, BE_F32, n);
        if (st != SD_OK) return st;
        from = stage;
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, from, n * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    return SD_OK;
}

static sd_status sync_stream(be *b) {
    CUDA_CHECK(cudaStreamSynchronize(cuda_of(b)->stream));
    CUDA_CHECK(cudaGetLastError());
    return SD_OK;
}

sd_status cuda_sync(be *b) { return cuda_explain(b, sync_stream(b)); }

/* ---- construction ---- */

extern "C" int be_cuda_available(void) {
    static int known = -1; /* the answer cannot change while the process runs */
    if (known < 0) {
        int n = 0;
        known = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
        cudaGetLastError(); /* no driver / no device is not an error of anything that follows */
    }
    return known;
}

static sd_status init(be *b, cuda_impl *c, int device) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return err_fail(SD_ERR_UNSUPPORTED, "no CUDA device found (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "device count 0");
    }
    if (device < 0 || device >= count) return err_fail(SD_ERR_ARG, "CUDA device %d does not exist (%d found)", device, count);
    CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    if (prop.major < 8) return err_fail(SD_ERR_UNSUPPORTED, "%s: compute capability %d.%d; the CUDA backend needs 8.0 or newer", prop.name, prop.major, prop.minor);
    snprintf(c->device_name, sizeof c->device_name, "%s", prop.name);
    int optin = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    c->smem_optin = (size_t)optin;
    c->sms = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    c->device = device;
    sd_status st = cuda_blas_load();
    if (st != SD_OK) return st;
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&c->blas));
    CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    /* a workspace of its own: cuBLAS then allocates nothing while a step is captured into a graph */
    CUDA_CHECK(cudaMalloc(&c->blas_ws, CUDA_BLAS_WORKSPACE));
    CUBLAS_CHECK(cublasSetWorkspace(c->blas, c->blas_ws, CUDA_BLAS_WORKSPACE));
    /* where a sequence's wait that timed out leaves its record: host memory, readable after the kernel stopped */
    CUDA_CHECK(cudaMallocHost((void **)&c->seq_fault, sizeof *c->seq_fault));
    *c->seq_fault = 0;
    return cuda_recorder_new(b);
}

extern "C" be *be_cuda_new(int device, be_dtype act_dtype) {
    be *b = (be *)calloc(1, sizeof *b);
    cuda_impl *c = (cuda_impl *)calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        err_fail(SD_ERR_MEMORY, "cuda backend: out of memory");
        return NULL;
    }
    c->dt = act_dtype;
    c->scratch_budget = (size_t)256 << 20;
    const char *env = getenv("SD_CUDA_SCRATCH_BYTES");
    if (env && atoll(env) > 0) c->scratch_budget = (size_t)atoll(env);
    env = getenv("SD_CUDA_ATTENTION");
    c->flash_attention = !(env && !strcmp(env, "cublas"));
    env = getenv("SD_CUDA_TILE");
    c->tile_mode = env && !strcmp(env, "big") ? 1 : env && !strcmp(env, "small") ? 2 : 0;
    env = getenv("SD_CUDA_SPLITK");
    c->split_k = env && atoi(env) > 0 ? atoi(env) : 0;
    env = getenv("SD_CUDA_SEQ");
    c->seq_mode = !env                         ? 1
                  : !strcmp(env, "0")             ? 0
                  : !strcmp(env, "eager")         ? 2
                  : !strcmp(env, "eager-reverse") ? 3
                  : !strcmp(env, "stall")         ? 4
                                                  : 1;
    env = getenv("SD_CUDA_SEQ_TIMEOUT");
    c->seq_timeout_ns = (unsigned long long)((env && atof(env) > 0 && atof(env) < 1e6 ? atof(env) : 60.0) * 1e9);
    b->ops = &cuda_ops;
    b->impl = c;
    b->elem_size = cuda_dtype_size(act_dtype);
    sd_status st = init(b, c, device);
    if (st != SD_OK) {
        cuda_free_backend(b);
        return NULL;
    }
    return b;
}

extern "C" const char *be_cuda_device_name(const be *b) {
    return b && b->ops == &cuda_ops ? cuda_of((be *)b)->device_name : NULL;
}
