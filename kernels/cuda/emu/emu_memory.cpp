/* emu_memory.cpp — device memory for the emulator: every cudaMalloc is its own mapping that ends at a guard
 * page (and starts after one), filled with 0xFF; cudaFree keeps it inaccessible for a while so a late
 * use faults; cudaMemcpy/Memset check direction and bounds against the registry of allocations. */
#include "emu_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <deque>
#include <map>

namespace {

struct Alloc {
    char *map, *user;
    size_t map_size, size, slack;   /* slack: poisoned bytes between user + size and the guard page */
    const char *file;
    int line;
    emu_mem_kind kind;
};

std::map<uintptr_t, Alloc> g_allocs;  /* keyed by the user pointer */
std::deque<uintptr_t> g_quarantine;
size_t g_quarantine_bytes, g_in_use;
pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

struct Lock {
    Lock() { pthread_mutex_lock(&g_lock); }
    ~Lock() { pthread_mutex_unlock(&g_lock); }
};

size_t page_size(void) { static size_t p = (size_t)sysconf(_SC_PAGESIZE); return p; }
size_t env_size(const char *name, size_t dflt) {
    const char *v = getenv(name);
    return v && strtoull(v, NULL, 0) ? (size_t)strtoull(v, NULL, 0) : dflt;
}
/* Allocation alignment: 256 as cudaMalloc guarantees (wmma and vector loads rely on it). Up to 255 bytes
 * of poisoned slack then lie between the end of the data and the guard page: reads there give NaN, writes
 * are found by the check after each launch. CUDA_EMU_ALIGN=16 moves the guard closer. */
size_t alloc_align(void) {
    static size_t a = 0;
    if (!a) { a = env_size("CUDA_EMU_ALIGN", 256); if (a < 16 || (a & (a - 1))) a = 256; }
    return a;
}
size_t mem_limit(void) { static size_t l = env_size("CUDA_EMU_MEM_MB", 8192) << 20; return l; }

const Alloc *find(const void *p) {  /* the allocation whose [user, user + size] holds p, or NULL */
    auto it = g_allocs.upper_bound((uintptr_t)p);
    if (it == g_allocs.begin()) return NULL;
    --it;
    const Alloc &a = it->second;
    return (const char *)p <= a.user + a.size ? &a : NULL;
}

const Alloc *find_mapping(const void *p) { /* the allocation whose whole mapping (guards too) holds p */
    const char *c = (const char *)p;
    auto it = g_allocs.upper_bound((uintptr_t)p);
    if (it != g_allocs.end() && c >= it->second.map && c < it->second.map + it->second.map_size) return &it->second;
    if (it == g_allocs.begin()) return NULL;
    --it;
    return c >= it->second.map && c < it->second.map + it->second.map_size ? &it->second : NULL;
}

void describe(const Alloc &a, char *buf, size_t n) {
    static const char *kinds[] = {"", "device allocation", "pinned host allocation", "__device__ symbol", "freed device allocation"};
    if (a.file) snprintf(buf, n, "a %zu-byte %s from %s:%d", a.size, kinds[a.kind], a.file, a.line);
    else snprintf(buf, n, "a %zu-byte %s", a.size, kinds[a.kind]);
}

void release(Alloc &a) {
    if (a.kind == EMU_MEM_DEVICE || a.kind == EMU_MEM_FREED) munmap(a.map, a.map_size);
    else if (a.kind == EMU_MEM_PINNED) free(a.map);
}

void quarantine_trim(void) {
    const size_t max_bytes = env_size("CUDA_EMU_QUARANTINE_MB", 256) << 20;
    while (!g_quarantine.empty() && (g_quarantine_bytes > max_bytes || g_quarantine.size() > 4096)) {
        auto it = g_allocs.find(g_quarantine.front());
        g_quarantine.pop_front();
        if (it == g_allocs.end() || it->second.kind != EMU_MEM_FREED) continue;
        g_quarantine_bytes -= it->second.map_size;
        release(it->second);
        g_allocs.erase(it);
    }
}

/* Direction and bounds of one copy. Device side: a device allocation or symbol; host side: anything
 * else (pinned memory is host memory). */
cudaError_t check_copy(void *dst, const void *src, size_t ndst, size_t nsrc, cudaMemcpyKind kind, const char *fn) {
    if ((int)kind < 0 || (int)kind > 4) {
        emu_violation(cudaSuccess, "%s: invalid cudaMemcpyKind %d", fn, (int)kind);
        return emu_error(cudaErrorInvalidMemcpyDirection);
    }
    Lock l;
    const void *ptr[2] = {dst, src};
    const size_t len[2] = {ndst, nsrc};
    int dev[2];
    for (int i = 0; i < 2; i++) {
        const Alloc *a = find(ptr[i]);
        char d[256] = "";
        if (a && a->kind == EMU_MEM_FREED && (const char *)ptr[i] < a->user + a->size) {
            describe(*a, d, sizeof d);
            emu_violation(cudaSuccess, "%s: the %s %p is in %s", fn, i ? "source" : "destination", ptr[i], d);
            return emu_error(cudaErrorInvalidValue);
        }
        dev[i] = a && (a->kind == EMU_MEM_DEVICE || a->kind == EMU_MEM_SYMBOL) && (const char *)ptr[i] < a->user + a->size;
        if (dev[i] && (const char *)ptr[i] + len[i] > a->user + a->size) {
            describe(*a, d, sizeof d);
            emu_violation(cudaSuccess, "%s: %zu bytes at offset %zu overrun the %s (%s)", fn, len[i],
                          (size_t)((const char *)ptr[i] - a->user), i ? "source" : "destination", d);
            return emu_error(cudaErrorInvalidValue);
        }
    }
    static const int want[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}}; /* {dst is device, src is device} */
    if (kind != cudaMemcpyDefault && (dev[0] != want[kind][0] || dev[1] != want[kind][1])) {
        static const char *names[] = {"cudaMemcpyHostToHost", "cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost", "cudaMemcpyDeviceToDevice"};
        emu_violation(cudaSuccess, "%s with %s, but the destination %p is %s memory and the source %p is %s memory", fn,
                      names[kind], dst, dev[0] ? "device" : "host", src, dev[1] ? "device" : "host");
        return emu_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

} // namespace

emu_mem_kind emu_mem_lookup(const void *p, size_t n, int *fits, char *desc, size_t desc_n) {
    Lock l;
    if (desc_n) desc[0] = 0;
    *fits = 0;
    const Alloc *a = find(p);
    if (!a) {
        const Alloc *m = find_mapping(p);
        if (m && desc_n) {
            char d[256];
            describe(*m, d, sizeof d);
            const char *c = (const char *)p;
            if (c < m->user) snprintf(desc, desc_n, "%zu bytes before the start of %s", (size_t)(m->user - c), d);
            else snprintf(desc, desc_n, "%zu bytes past the end of %s", (size_t)(c - m->user - m->size), d);
        }
        return EMU_MEM_NONE;
    }
    if (desc_n) describe(*a, desc, desc_n);
    *fits = (const char *)p + n <= a->user + a->size;
    return a->kind;
}

int emu_mem_check(const void *p, size_t n, int allow_pinned, const char *what) {
    int fits;
    char d[300];
    emu_mem_kind k = emu_mem_lookup(p, n, &fits, d, sizeof d);
    if ((k == EMU_MEM_DEVICE || k == EMU_MEM_SYMBOL || (allow_pinned && k == EMU_MEM_PINNED)) && fits) return 1;
    if (k == EMU_MEM_DEVICE || k == EMU_MEM_SYMBOL || k == EMU_MEM_PINNED)
        emu_violation(cudaSuccess, "%s: %zu bytes at %p overrun %s", what, n, p, d);
    else
        emu_violation(cudaSuccess, "%s: %p is %s%s%s", what, p, k == EMU_MEM_FREED ? "freed memory" : "not device memory",
                      d[0] ? ": " : "", d);
    return 0;
}

int emu_mem_describe_fault(const void *addr, char *buf, size_t n) {
    if (pthread_mutex_trylock(&g_lock)) return 0; /* in a signal handler: never wait */
    const char *c = (const char *)addr;
    const Alloc *a = find_mapping(addr);
    char d[256];
    int r = 1;
    if (a) {
        describe(*a, d, sizeof d);
        if (a->kind == EMU_MEM_FREED) snprintf(buf, n, "use after cudaFree: byte %zd of %s", (ssize_t)(c - a->user), d);
        else if (c < a->user) snprintf(buf, n, "out-of-bounds access %zu bytes before the start of %s", (size_t)(a->user - c), d);
        else snprintf(buf, n, "out-of-bounds access at byte %zu of %s (%zu bytes past its end)", (size_t)(c - a->user), d,
                      (size_t)(c - a->user - a->size));
    } else {
        /* beyond the guard pages: name the nearest allocation within 1 MiB, below or above */
        auto it = g_allocs.upper_bound((uintptr_t)addr);
        const Alloc *above = it != g_allocs.end() ? &it->second : NULL, *below = NULL;
        if (it != g_allocs.begin()) below = &(--it)->second;
        const size_t db = below ? (size_t)(c - (below->user + below->size)) : SIZE_MAX;
        const size_t da = above ? (size_t)(above->user - c) : SIZE_MAX;
        if (below && db <= da && db < (1u << 20)) {
            describe(*below, d, sizeof d);
            snprintf(buf, n, "out-of-bounds access %zu bytes past the end of the nearest allocation, %s (beyond its guard page)", db, d);
        } else if (above && da < (1u << 20)) {
            describe(*above, d, sizeof d);
            snprintf(buf, n, "out-of-bounds access %zu bytes before the start of the nearest allocation, %s (beyond its guard page)", da, d);
        } else r = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return r;
}

void emu_mem_check_tails(const void *const *ptrs, int n, const char *kernel) {
    for (int i = 0; i < n; i++) {
        Lock l;
        const Alloc *a = ptrs[i] ? find(ptrs[i]) : NULL;
        if (!a || a->kind != EMU_MEM_DEVICE) continue;
        const unsigned char *t = (const unsigned char *)a->user + a->size;
        for (size_t j = 0; j < a->slack; j++)
            if (t[j] != 0xff) {
                char d[256];
                describe(*a, d, sizeof d);
                memset((void *)t, 0xff, a->slack); /* report once */
                emu_violation(cudaErrorIllegalAddress, "kernel %s wrote past the end of %s (byte %zu; the guard page "
                              "sits %zu bytes further)", kernel, d, a->size + j, a->slack);
                break;
            }
    }
}

void emu_mem_free_all(void) {
    Lock l;
    for (auto &kv : g_allocs) release(kv.second);
    g_allocs.clear();
    g_quarantine.clear();
    g_quarantine_bytes = 0;
    g_in_use = 0;
}

size_t emu_mem_in_use(void) { return g_in_use; }

int cuda_emu_is_device_ptr(const void *p, size_t n) {
    int fits;
    return emu_mem_lookup(p, n, &fits, NULL, 0) == EMU_MEM_DEVICE && fits;
}

void cuda_emu_register_symbol(const void *p, size_t n) {
    Lock l;
    if (find(p)) return;
    Alloc a = {(char *)p, (char *)p, n, n, 0, NULL, 0, EMU_MEM_SYMBOL};
    g_allocs[(uintptr_t)p] = a;
}

/* ---- runtime API ------------------------------------------------------------------------------------- */
cudaError_t cudaMalloc(void **p, size_t n, const char *file, int line) {
    if (emu_sticky()) return emu_sticky();
    if (emu_capture_prohibits("cudaMalloc")) return emu_error(cudaErrorStreamCaptureUnsupported);
    emu_count_mallocs++;
    if (!p) return emu_error(cudaErrorInvalidValue);
    *p = NULL;
    if (n == 0) return cudaSuccess;
    const size_t pg = page_size(), al = alloc_align();
    if (n > mem_limit() || g_in_use + n > mem_limit()) return emu_error(cudaErrorMemoryAllocation);
    const size_t data = (n + al - 1) & ~(al - 1), body = (data + pg - 1) / pg * pg, map_size = body + 2 * pg;
    char *m = (char *)mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return emu_error(cudaErrorMemoryAllocation);
    mprotect(m, pg, PROT_NONE);
    mprotect(m + pg + body, pg, PROT_NONE);
    memset(m + pg, 0xff, body);
    Alloc a = {m, m + pg + body - data, map_size, n, data - n, file, line, EMU_MEM_DEVICE};
    {
        Lock l;
        g_allocs[(uintptr_t)a.user] = a;
        g_in_use += n;
    }
    *p = a.user;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return emu_sticky();
    if (emu_capture_prohibits("cudaFree")) return emu_error(cudaErrorStreamCaptureUnsupported);
    Lock l;
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || it->second.kind != EMU_MEM_DEVICE) {
        char d[256] = "";
        const Alloc *a = it != g_allocs.end() ? &it->second : find(p);
        if (a) describe(*a, d, sizeof d);
        emu_violation(cudaSuccess, "cudaFree(%p): %s%s", p,
                      it != g_allocs.end() && it->second.kind == EMU_MEM_FREED ? "double free of " :
                      a ? "not the start of an allocation: inside " : "not a pointer from cudaMalloc", d);
        return emu_error(cudaErrorInvalidValue);
    }
    Alloc &a = it->second;
    mprotect(a.map, a.map_size, PROT_NONE);
    a.kind = EMU_MEM_FREED;
    g_in_use -= a.size;
    g_quarantine.push_back((uintptr_t)p);
    g_quarantine_bytes += a.map_size;
    quarantine_trim();
    return emu_sticky();
}

cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s, const char *file, int line) {
    cudaError_t e = cudaStreamQuery(s);
    return e ? emu_error(e) : cudaMalloc(p, n, file, line);
}

cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
    cudaError_t e = cudaStreamQuery(s);
    return e ? emu_error(e) : cudaFree(p);
}

cudaError_t cudaHostAlloc(void **p, size_t n, unsigned) {
    if (emu_sticky()) return emu_sticky();
    if (emu_capture_prohibits("cudaHostAlloc")) return emu_error(cudaErrorStreamCaptureUnsupported);
    emu_count_mallocs++;
    if (!p) return emu_error(cudaErrorInvalidValue);
    *p = NULL;
    if (n == 0) return cudaSuccess;
    char *m = (char *)aligned_alloc(256, (n + 255) & ~(size_t)255);
    if (!m) return emu_error(cudaErrorMemoryAllocation);
    memset(m, 0xff, n);
    Alloc a = {m, m, n, n, 0, NULL, 0, EMU_MEM_PINNED};
    Lock l;
    g_allocs[(uintptr_t)m] = a;
    *p = m;
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) { return cudaHostAlloc(p, n, 0); }

cudaError_t cudaFreeHost(void *p) {
    if (!p) return emu_sticky();
    if (emu_capture_prohibits("cudaFreeHost")) return emu_error(cudaErrorStreamCaptureUnsupported);
    Lock l;
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || it->second.kind != EMU_MEM_PINNED) {
        emu_violation(cudaSuccess, "cudaFreeHost(%p): not a pointer from cudaMallocHost/cudaHostAlloc", p);
        return emu_error(cudaErrorInvalidValue);
    }
    release(it->second);
    g_allocs.erase(it);
    return emu_sticky();
}

static cudaError_t copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    if (emu_capture_prohibits("a synchronous cudaMemcpy")) return emu_error(cudaErrorStreamCaptureUnsupported);
    emu_count_syncs++;
    return copy(dst, src, n, kind);
}

static cudaError_t copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    if (emu_sticky()) return emu_sticky();
    if (n == 0) return cudaSuccess;
    if (!dst || !src) {
        emu_violation(cudaSuccess, "cudaMemcpy of %zu bytes with a null %s", n, dst ? "source" : "destination");
        return emu_error(cudaErrorInvalidValue);
    }
    cudaError_t e = check_copy(dst, src, n, n, kind, "cudaMemcpy");
    if (e) return e;
    memmove(dst, src, n);
    return cudaSuccess;
}

/* host memory a captured copy may use: pinned (a graph reads or writes it when it runs, not at the call) */
static int capturable_host(const void *p, size_t n) {
    int fits;
    emu_mem_kind k = emu_mem_lookup(p, n, &fits, NULL, 0);
    return (k == EMU_MEM_PINNED || k == EMU_MEM_DEVICE) && fits;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    cudaError_t e = cudaStreamQuery(s);
    if (e) return emu_error(e);
    if (cuda_emu_stream_capturing(s)) {
        if (!capturable_host(dst, n) || !capturable_host(src, n)) {
            emu_capture_invalidate(s, "cudaMemcpyAsync with pageable host memory");
            return emu_error(cudaErrorStreamCaptureUnsupported);
        }
        cuda_emu_capture_node(s, "cudaMemcpyAsync", [=](cudaStream_t) { copy(dst, src, n, kind); });
        return cudaSuccess;
    }
    return copy(dst, src, n, kind);
}

cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height, cudaMemcpyKind kind) {
    if (emu_sticky()) return emu_sticky();
    if (width > dpitch || width > spitch) return emu_error(cudaErrorInvalidPitchValue);
    if (!width || !height) return cudaSuccess;
    cudaError_t e = check_copy(dst, src, dpitch * (height - 1) + width, spitch * (height - 1) + width, kind, "cudaMemcpy2D");
    if (e) return e;
    for (size_t r = 0; r < height; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s) {
    cudaError_t e = cudaStreamQuery(s);
    return e ? emu_error(e) : cudaMemcpy2D(dst, dpitch, src, spitch, width, height, kind);
}

cudaError_t cudaMemset(void *dst, int value, size_t n) {
    if (emu_sticky()) return emu_sticky();
    if (emu_capture_prohibits("a synchronous cudaMemset")) return emu_error(cudaErrorStreamCaptureUnsupported);
    if (n == 0) return cudaSuccess;
    if (!emu_mem_check(dst, n, 0, "cudaMemset")) return emu_error(cudaErrorInvalidValue);
    memset(dst, value, n);
    return cudaSuccess;
}

static cudaError_t set_now(void *dst, int value, size_t n) {
    if (emu_sticky()) return emu_sticky();
    if (n == 0) return cudaSuccess;
    if (!emu_mem_check(dst, n, 0, "cudaMemsetAsync")) return emu_error(cudaErrorInvalidValue);
    memset(dst, value, n);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t s) {
    cudaError_t e = cudaStreamQuery(s);
    if (e) return emu_error(e);
    if (cuda_emu_stream_capturing(s)) {
        cuda_emu_capture_node(s, "cudaMemsetAsync", [=](cudaStream_t) { set_now(dst, value, n); });
        return cudaSuccess;
    }
    return set_now(dst, value, n);
}

cudaError_t cuda_emu_symbol_copy(void *sym, size_t sym_size, void *host, size_t n, size_t off, int to_symbol) {
    if (emu_sticky()) return emu_sticky();
    if (off > sym_size || n > sym_size - off) {
        emu_violation(cudaSuccess, "cudaMemcpy%sSymbol: %zu bytes at offset %zu overrun the %zu-byte symbol", to_symbol ? "To" : "From",
                      n, off, sym_size);
        return emu_error(cudaErrorInvalidValue);
    }
    if (to_symbol) memcpy((char *)sym + off, host, n);
    else memcpy(host, (char *)sym + off, n);
    return cudaSuccess;
}
