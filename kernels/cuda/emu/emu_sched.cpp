/* emu_sched.cpp — the emulator's scheduler: one fiber per CUDA thread, blocks run one after another in
 * schedule order, __syncthreads and warp collectives as parking points with misuse checks, shared
 * memory poisoning, launch checks, and the SIGSEGV handler that turns a guard-page fault into a
 * recorded launch failure naming kernel, block and thread. */
#include "emu_internal.h"

#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vector>
#include <unordered_map>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if !defined(__x86_64__) && !defined(CUDA_EMU_UCONTEXT)
#define CUDA_EMU_UCONTEXT 1
#endif
#ifdef CUDA_EMU_UCONTEXT
#include <ucontext.h>
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
unsigned char *cuda_emu_dynamic_smem;

/* ---- context switch ---------------------------------------------------------------------------------
 * x86-64: push the callee-saved registers on the old stack, swap stack pointers, pop. More than 10x
 * cheaper than swapcontext, which makes a sigprocmask syscall each time. MXCSR and the x87 control word are not
 * switched: device code cannot change the rounding mode, so every fiber runs with the launching thread's. */
#ifndef CUDA_EMU_UCONTEXT
extern "C" void cuda_emu_ctx_switch(void **save_sp, void *new_sp);
__asm__(".text\n"
        ".globl cuda_emu_ctx_switch\n"
        ".hidden cuda_emu_ctx_switch\n"
        ".type cuda_emu_ctx_switch,@function\n"
        "cuda_emu_ctx_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size cuda_emu_ctx_switch, .-cuda_emu_ctx_switch\n");
#endif

namespace {

enum { F_RUNNABLE, F_BARRIER, F_WARP, F_EXITED };
enum { BAR_SYNC, BAR_COUNT, BAR_AND, BAR_OR };

struct Fiber {
    void *sp;
    char *map, *lo, *hi;   /* mapping (guard page first), usable stack [lo, hi) */
    unsigned linear;
    uint3 tid;
    int state, result;
    const char *file;      /* where it waits */
    int line;
    const char *op;
#ifdef EMU_ASAN
    void *fake_stack;
#endif
#ifdef CUDA_EMU_UCONTEXT
    ucontext_t uc;
#endif
};

struct Group {           /* one pending warp collective */
    const char *op, *file;
    int line;
    unsigned mask, need, arrived;   /* mask as called; need: lanes of the mask that exist */
    cuda_emu_warp_fn fn;
    void *data[32];
};

struct Warp {
    unsigned exists, exited;
    int ngroups;
    Group g[8];
};

const int kMaxThreads = 1024;

struct Sched {
    bool inited;
    int mode;
    unsigned seed;
    uint64_t rng;
    size_t stack_size, page;
    /* launch */
    const cuda_emu_launch_desc *desc;
    bool in_kernel, abort;
    unsigned nthreads, pos;  /* pos: next index into order in the current round */
    int live, ran;           /* ran: fibers picked in the current round */
    Fiber *cur;
    void *sched_sp;
#ifdef CUDA_EMU_UCONTEXT
    ucontext_t sched_uc;
#endif
#ifdef EMU_ASAN
    void *sched_fake;
    const void *main_bottom;
    size_t main_size;
    bool from_sched;  /* the switch in progress started on the scheduler's stack */
#endif
    int bar_count, bar_kind, bar_acc;
    const char *bar_file;
    int bar_line;
    Warp warps[kMaxThreads / 32];
    /* dynamic shared memory: one mapping ending at a guard page */
    unsigned char *smem_map, *smem_guard;
    size_t smem_size;
    /* TLS block of the executable (all __shared__ variables live there) */
    unsigned char *tls;
    size_t tls_size;
    pthread_t tls_thread;
    std::vector<unsigned char> tls_save;
    size_t dirty_lo, dirty_hi;  /* the part of the TLS block the running kernel writes (its __shared__) */
    std::unordered_map<const void *, std::pair<size_t, size_t>> kernel_dirty;
    std::vector<unsigned> order, block_order;
    std::unordered_map<const void *, int> func_smem;
    unsigned long long launches, blocks, threads, switches;
};

Sched S;
Fiber g_fibers[kMaxThreads];
std::vector<std::pair<const char *, unsigned long long>> g_kernel_counts; /* by CUDA_LAUNCH's name, first use first */
pthread_mutex_t g_launch_lock = PTHREAD_MUTEX_INITIALIZER;
struct sigaction g_old_segv, g_old_bus;

uint64_t rng_next(void) { /* xorshift64* */
    S.rng ^= S.rng >> 12;
    S.rng ^= S.rng << 25;
    S.rng ^= S.rng >> 27;
    return S.rng * 0x2545f4914f6cdd1dull;
}
void rng_seed(unsigned seed) { S.rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed * 0xbf58476d1ce4e5b9ull); if (!S.rng) S.rng = 1; rng_next(); }

void segv_handler(int sig, siginfo_t *si, void *uc);

/* Faults in a fiber (stack overflow above all) need an alternate signal stack; one per thread, kept. */
void install_altstack(void) {
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return;
    const size_t sz = 256 * 1024;
    void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    stack_t ss;
    ss.ss_sp = m;
    ss.ss_size = sz;
    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);
}

void init(void) {
    if (S.inited) return;
    S.inited = true;
    S.page = (size_t)sysconf(_SC_PAGESIZE);
    const char *m = getenv("CUDA_EMU_SCHED");
    S.mode = CUDA_EMU_INORDER;
    if (m && !strcmp(m, "reverse")) S.mode = CUDA_EMU_REVERSE;
    else if (m && !strcmp(m, "random")) S.mode = CUDA_EMU_RANDOM;
    else if (m && !strcmp(m, "greedy")) S.mode = CUDA_EMU_GREEDY;
    else if (m && *m && strcmp(m, "inorder")) fprintf(stderr, "cuda_emu: unknown CUDA_EMU_SCHED=%s, using inorder\n", m);
    const char *sd = getenv("CUDA_EMU_SEED");
    S.seed = sd ? (unsigned)strtoul(sd, NULL, 0) : 1;
    rng_seed(S.seed);
#ifdef EMU_ASAN
    size_t kb = 256; /* instrumented frames are several times larger */
#else
    size_t kb = 64;
#endif
    if (const char *st = getenv("CUDA_EMU_STACK_KB")) kb = strtoul(st, NULL, 0) ? strtoul(st, NULL, 0) : kb;
    S.stack_size = (kb * 1024 + S.page - 1) / S.page * S.page;
    /* dynamic shared memory: the sm_90 opt-in maximum, then a guard page */
    S.smem_size = (232448 + S.page - 1) / S.page * S.page;
    S.smem_map = (unsigned char *)mmap(NULL, S.smem_size + S.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (S.smem_map == MAP_FAILED) { perror("cuda_emu: mmap"); abort(); }
    S.smem_guard = S.smem_map + S.smem_size;
    mprotect(S.smem_guard, S.page, PROT_NONE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
}

/* ---- fibers ---------------------------------------------------------------------------------------- */
void fiber_main(void);

bool fiber_alloc(Fiber *f) {
    if (f->map) return true;
    void *m = mmap(NULL, S.stack_size + 2 * S.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) return false;
    f->map = (char *)m;
    mprotect(f->map, S.page, PROT_NONE);
    f->lo = f->map + S.page;
    /* Stacks are a multiple of the page size apart, so their tops would all map to the same cache sets;
     * start each one a different number of cache lines below the top (the colour page is extra). */
    f->hi = f->map + S.page + S.stack_size + S.page - (size_t)((f - g_fibers) % 64) * 64;
    return true;
}

void fiber_prepare(Fiber *f) {
#ifdef EMU_ASAN
    f->fake_stack = NULL;
    /* the frames a fiber leaves behind when it switches away for good (fiber_main, the last switch)
     * keep their redzones poisoned; clear the top of the stack for the next thread that uses it */
    const size_t top = (size_t)(f->hi - f->lo) < 16384 ? (size_t)(f->hi - f->lo) : 16384;
    __asan_unpoison_memory_region(f->hi - top, top);
#endif
#ifdef CUDA_EMU_UCONTEXT
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->lo;
    f->uc.uc_stack.ss_size = (size_t)(f->hi - f->lo);
    f->uc.uc_link = NULL;
    makecontext(&f->uc, fiber_main, 0);
#else
    uint64_t *sp = (uint64_t *)f->hi;
    *--sp = 0;                          /* fiber_main's return address: it never returns */
    *--sp = (uint64_t)(uintptr_t)fiber_main;
    for (int i = 0; i < 6; i++) *--sp = 0; /* rbp rbx r12 r13 r14 r15 */
    f->sp = sp;
#endif
}

/* Switch from the running context (a fiber, or the scheduler when from is NULL) to another (to NULL:
 * the scheduler). A fiber that will never run again passes final_switch so ASan drops its fake stack. */
inline void switch_ctx(Fiber *from, Fiber *to, bool final_switch) {
    S.cur = to;
    if (to) threadIdx = to->tid;
    S.switches++;
#ifdef EMU_ASAN
    S.from_sched = from == NULL;
    void **fake = final_switch ? NULL : from ? &from->fake_stack : &S.sched_fake;
    if (to) __sanitizer_start_switch_fiber(fake, to->lo, (size_t)(to->hi - to->lo));
    else __sanitizer_start_switch_fiber(fake, S.main_bottom, S.main_size);
#else
    (void)final_switch;
#endif
#ifdef CUDA_EMU_UCONTEXT
    swapcontext(from ? &from->uc : &S.sched_uc, to ? &to->uc : &S.sched_uc);
#else
    cuda_emu_ctx_switch(from ? &from->sp : &S.sched_sp, to ? to->sp : S.sched_sp);
#endif
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(from ? from->fake_stack : S.sched_fake, NULL, NULL);
#endif
}

/* The next fiber to run in schedule order: the rest of the current round, then new rounds (reshuffled
 * under the random schedule). NULL when the block is done or no fiber can run (deadlock). */
Fiber *pick_next(void) {
    if (S.mode == CUDA_EMU_GREEDY) { /* the lowest-numbered runnable thread, always */
        for (unsigned i = 0; i < S.nthreads; i++)
            if (g_fibers[i].state == F_RUNNABLE) return &g_fibers[i];
        return NULL;
    }
    for (;;) {
        while (S.pos < S.nthreads) {
            Fiber *f = &g_fibers[S.order[S.pos++]];
            if (f->state == F_RUNNABLE) { S.ran++; return f; }
        }
        if (S.live == 0 || S.ran == 0) return NULL;
        S.ran = 0;
        S.pos = 0;
        if (S.mode == CUDA_EMU_RANDOM)
            for (unsigned i = S.nthreads - 1; i > 0; i--) std::swap(S.order[i], S.order[rng_next() % (i + 1)]);
    }
}

/* The running fiber gives way: straight to the next runnable fiber (no trip through the scheduler),
 * or nowhere if that is itself; returns when it is resumed. */
void yield_fiber(bool final_switch) {
    Fiber *f = S.cur, *next = pick_next();
    if (next == f && !final_switch) return;
    switch_ctx(f, next, final_switch);
}

void barrier_check_open(void);
void group_check_complete(Warp *w, int gi);

void fiber_exit(void) __attribute__((noreturn));
void fiber_exit(void) {
    Fiber *f = S.cur;
    f->state = F_EXITED;
    S.live--;
    emu_tc_thread_exit(f->linear);
    Warp *w = &S.warps[f->linear >> 5];
    w->exited |= 1u << (f->linear & 31);
    for (int gi = w->ngroups - 1; gi >= 0; gi--) group_check_complete(w, gi);
    barrier_check_open();
    yield_fiber(true);
    __builtin_unreachable();
}

void fiber_main(void) {
#ifdef EMU_ASAN
    /* ASan tells a new fiber the stack it came from; only the scheduler's is worth keeping */
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(NULL, &bottom, &size);
    if (S.from_sched) { S.main_bottom = bottom; S.main_size = size; }
#endif
    S.desc->thunk(S.desc->ctx);
    fiber_exit();
}

/* ---- blocking points ---------------------------------------------------------------------------------- */
Fiber *require_fiber(const char *what, const char *file, int line) {
    if (S.cur) return S.cur;
    emu_violation(cudaSuccess, "%s called outside a kernel at %s:%d", what, file, line);
    return NULL;
}

void park(Fiber *f, int state, const char *op, const char *file, int line) {
    f->state = state;
    f->op = op;
    f->file = file;
    f->line = line;
    yield_fiber(false);
}

/* names and files are string literals: usually the same pointer */
inline bool same_str(const char *a, const char *b) { return a == b || !strcmp(a, b); }

const char *bar_name(int kind) {
    static const char *n[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and", "__syncthreads_or"};
    return n[kind];
}

void barrier_check_open(void) {
    if (S.bar_count == 0 || S.bar_count < S.live) return;
    const int exited = (int)S.nthreads - S.live;
    if (exited > 0)
        cuda_emu_fail("%s at %s:%d: %d threads wait there but %d threads of the block have exited "
                      "(a barrier after an early return?)", bar_name(S.bar_kind), S.bar_file, S.bar_line, S.bar_count, exited);
    const int result = S.bar_acc;
    for (unsigned i = 0; i < S.nthreads; i++)
        if (g_fibers[i].state == F_BARRIER) { g_fibers[i].state = F_RUNNABLE; g_fibers[i].result = result; }
    S.bar_count = 0;
}

int barrier(int kind, int pred, const char *file, int line) {
    Fiber *f = require_fiber(bar_name(kind), file, line);
    if (!f) return pred;
    if (S.bar_count == 0) {
        S.bar_kind = kind;
        S.bar_file = file;
        S.bar_line = line;
        S.bar_acc = kind == BAR_AND ? 1 : 0;
    } else if (S.bar_kind != kind || S.bar_line != line || !same_str(S.bar_file, file)) {
        cuda_emu_fail("threads wait at different barriers: %s at %s:%d and %s at %s:%d (divergent __syncthreads)",
                      bar_name(S.bar_kind), S.bar_file, S.bar_line, bar_name(kind), file, line);
    }
    S.bar_count++;
    if (kind == BAR_COUNT) S.bar_acc += pred != 0;
    else if (kind == BAR_AND) S.bar_acc &= pred != 0;
    else if (kind == BAR_OR) S.bar_acc |= pred != 0;
    f->state = F_BARRIER;  /* before the check: opening the barrier releases this thread too */
    barrier_check_open();
    park(f, f->state, bar_name(kind), file, line);
    return f->result;
}

void group_remove(Warp *w, int gi) {
    w->g[gi] = w->g[w->ngroups - 1];
    w->ngroups--;
}

void group_check_complete(Warp *w, int gi) {
    Group *g = &w->g[gi];
    const unsigned need = g->need & ~w->exited;
    if ((g->arrived & need) != need) return;
    Group done = *g;
    group_remove(w, gi);
    void *data[32];
    for (int l = 0; l < 32; l++) data[l] = (done.arrived >> l & 1) ? done.data[l] : NULL;
    if (done.fn) done.fn(data, done.arrived);
    const unsigned base = (unsigned)(w - S.warps) * 32;
    for (int l = 0; l < 32; l++)
        if (done.arrived >> l & 1) g_fibers[base + l].state = F_RUNNABLE;
}

void warp_collective(const char *op, unsigned mask, void *data, cuda_emu_warp_fn fn, const char *file, int line) {
    Fiber *f = require_fiber(op, file, line);
    if (!f) return;
    const int lane = (int)(f->linear & 31);
    const unsigned bit = 1u << lane;
    Warp *w = &S.warps[f->linear >> 5];
    if (!(mask & bit)) cuda_emu_fail("%s at %s:%d: the calling lane %d is not in the mask %#x", op, file, line, lane, mask);
    const bool strict_site = fn != NULL; /* only __syncwarp has no fn: sm_70+ lets different __syncwarp()s meet */
    int gi = -1;
    for (int i = 0; i < w->ngroups; i++)
        if (w->g[i].mask & bit) { gi = i; break; }
    if (gi >= 0) {
        Group *g = &w->g[gi];
        if (g->mask != mask || !same_str(g->op, op) || (strict_site && (g->line != line || !same_str(g->file, file))))
            cuda_emu_fail("warp collectives do not match: lane %d called %s at %s:%d with mask %#x while lanes %#x wait in "
                          "%s at %s:%d with mask %#x", lane, op, file, line, mask, g->arrived, g->op, g->file, g->line, g->mask);
    } else {
        for (int i = 0; i < w->ngroups; i++)
            if (w->g[i].mask & mask)
                cuda_emu_fail("warp collectives with overlapping masks: lane %d called %s at %s:%d with mask %#x while "
                              "lanes %#x wait in %s at %s:%d with mask %#x", lane, op, file, line, mask, w->g[i].arrived,
                              w->g[i].op, w->g[i].file, w->g[i].line, w->g[i].mask);
        if (w->ngroups == 8) cuda_emu_fail("%s at %s:%d: more than 8 concurrent warp collectives in one warp", op, file, line);
        gi = w->ngroups++;
        Group *g = &w->g[gi];
        g->op = op; g->file = file; g->line = line; g->mask = mask; g->need = mask & w->exists;
        g->arrived = 0; g->fn = fn;
    }
    Group *g = &w->g[gi];
    g->arrived |= bit;
    g->data[lane] = data;
    f->state = F_WARP;
    group_check_complete(w, gi);
    park(f, f->state, op, file, line);
}

/* ---- the scheduler ------------------------------------------------------------------------------------ */
int tls_cb(struct dl_phdr_info *info, size_t, void *) {
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            S.tls = (unsigned char *)info->dlpi_tls_data;
            S.tls_size = S.tls ? info->dlpi_phdr[i].p_memsz : 0;
        }
    return 1; /* the first object is the executable */
}

/* [lo, hi) of the bytes of the TLS block that are no longer poison; lo == hi if none */
void tls_dirty_range(size_t *lo, size_t *hi) {
    size_t a = 0, b = S.tls_size;
    while (a < b && S.tls[a] == 0xff) a++;
    while (b > a && S.tls[b - 1] == 0xff) b--;
    *lo = a;
    *hi = b;
}

/* Before each block every __shared__ byte must be poison again. Re-poisoning the whole TLS block costs
 * its size per block, and it holds the shared arrays of every kernel of the program; so each kernel's
 * own footprint is learnt (after its first block, and at the end of each launch) and only that range is
 * re-poisoned. A later block that writes shared memory its first block never touched would leave that
 * stale for the next block instead of NaN: a small loss of detection, no false alarm. */
void poison_shared(unsigned long long block_index) {
    if (!S.tls_size) return;
    if (block_index == 0) memset(S.tls, 0xff, S.tls_size);
    else if (S.dirty_hi > S.dirty_lo) memset(S.tls + S.dirty_lo, 0xff, S.dirty_hi - S.dirty_lo);
}

void learn_shared(void) {
    size_t lo, hi;
    tls_dirty_range(&lo, &hi);
    if (hi <= lo) return;
    if (S.dirty_hi <= S.dirty_lo) { S.dirty_lo = lo; S.dirty_hi = hi; }
    else { S.dirty_lo = lo < S.dirty_lo ? lo : S.dirty_lo; S.dirty_hi = hi > S.dirty_hi ? hi : S.dirty_hi; }
}

void find_tls(void) {
    if (S.tls_thread == pthread_self() && S.tls_size) return;
    S.tls = NULL;
    S.tls_size = 0;
    dl_iterate_phdr(tls_cb, NULL);
    S.tls_thread = pthread_self();
}

void describe_deadlock(char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "deadlock: no thread can proceed;");
    if (S.bar_count && o < n)
        o += (size_t)snprintf(buf + o, n - o, " %d threads wait at %s at %s:%d;", S.bar_count, bar_name(S.bar_kind), S.bar_file, S.bar_line);
    for (unsigned wi = 0; wi < (S.nthreads + 31) / 32 && o < n; wi++) {
        Warp *w = &S.warps[wi];
        for (int gi = 0; gi < w->ngroups && o < n; gi++) {
            Group *g = &w->g[gi];
            const unsigned missing = g->need & ~w->exited & ~g->arrived;
            o += (size_t)snprintf(buf + o, n - o, " warp %u: %s at %s:%d (mask %#x) waits for lanes %#x", wi, g->op, g->file,
                                  g->line, g->mask, missing);
            int l = __builtin_ctz(missing);
            Fiber *m = &g_fibers[wi * 32 + l];
            if (o < n && m->state != F_RUNNABLE)
                o += (size_t)snprintf(buf + o, n - o, " (lane %d is in %s at %s:%d)", l, m->op, m->file, m->line);
            if (o < n) o += (size_t)snprintf(buf + o, n - o, ";");
        }
    }
}

void run_block(unsigned long long b, const dim3 &grid, unsigned long long index) {
    blockIdx.x = (unsigned)(b % grid.x);
    blockIdx.y = (unsigned)(b / grid.x % grid.y);
    blockIdx.z = (unsigned)(b / ((unsigned long long)grid.x * grid.y));
    poison_shared(index);
    if (S.desc->smem) memset(cuda_emu_dynamic_smem, 0xff, S.desc->smem);
    const unsigned n = S.nthreads;
    for (unsigned i = 0; i < n; i++) {
        Fiber *f = &g_fibers[i];
        f->linear = i;
        f->tid.x = i % blockDim.x;
        f->tid.y = i / blockDim.x % blockDim.y;
        f->tid.z = i / (blockDim.x * blockDim.y);
        f->state = F_RUNNABLE;
        f->op = NULL;
        fiber_prepare(f);
    }
    for (unsigned wi = 0; wi < (n + 31) / 32; wi++) {
        Warp *w = &S.warps[wi];
        w->exists = n - wi * 32 >= 32 ? 0xffffffffu : (1u << (n - wi * 32)) - 1;
        w->exited = 0;
        w->ngroups = 0;
    }
    S.live = (int)n;
    S.bar_count = 0;
    emu_tc_reset(n);
    S.blocks++;
    S.threads += n;
    /* the fibers pass control among themselves (yield_fiber) and come back here when the block is done,
     * stuck, or aborted */
    S.pos = n;
    S.ran = 1;
    Fiber *first = pick_next();
    switch_ctx(NULL, first, false);
    S.cur = NULL;
    if (S.abort || S.live == 0) return;
    char msg[1024];
    describe_deadlock(msg, sizeof msg);
    emu_violation(cudaErrorLaunchFailure, "%s", msg);
    S.abort = true;
}

bool check_launch(const cuda_emu_launch_desc *d) {
    const dim3 g = d->grid, b = d->block;
    const unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
    const char *bad = NULL;
    char why[160];
    if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z) bad = "a grid or block dimension is 0";
    else if (nt > 1024) { snprintf(why, sizeof why, "%llu threads per block exceed 1024", nt); bad = why; }
    else if (b.x > 1024 || b.y > 1024 || b.z > 64) bad = "block dimensions exceed (1024, 1024, 64)";
    else if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) bad = "grid dimensions exceed (2^31-1, 65535, 65535)";
    else {
        auto it = S.func_smem.find(d->func);
        const size_t lim = it != S.func_smem.end() && it->second > 49152 ? (size_t)it->second : 49152;
        if (d->smem > lim) {
            snprintf(why, sizeof why, "%zu bytes of dynamic shared memory exceed the limit of %zu (raise it with "
                     "cudaFuncSetAttribute(MaxDynamicSharedMemorySize))", d->smem, lim);
            bad = why;
        }
    }
    if (bad) {
        emu_violation(cudaSuccess, "launch of %s (%s:%d) with grid (%u,%u,%u) block (%u,%u,%u): %s", d->name, d->file, d->line,
                      g.x, g.y, g.z, b.x, b.y, b.z, bad);
        emu_error(cudaErrorInvalidConfiguration);
        return false;
    }
    for (int i = 0; i < d->nptr; i++) {
        const void *p = d->ptr_value[i];
        if (!p) continue;
        char desc[256];
        int fits = 0;
        emu_mem_kind k = emu_mem_lookup(p, 0, &fits, desc, sizeof desc);
        if (k == EMU_MEM_DEVICE || k == EMU_MEM_PINNED || k == EMU_MEM_SYMBOL) continue;
        emu_violation(cudaErrorIllegalAddress, "launch of %s (%s:%d): argument %d is %s %p, not device memory%s%s", d->name,
                      d->file, d->line, d->ptr_index[i], k == EMU_MEM_FREED ? "a freed pointer" : "the host pointer", p,
                      desc[0] ? ": " : "", desc);
        return false;
    }
    return true;
}

void segv_chain(struct sigaction *old, int sig, siginfo_t *si, void *uc) {
    if (old->sa_flags & SA_SIGINFO) { if (old->sa_sigaction) { old->sa_sigaction(sig, si, uc); return; } }
    else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) { old->sa_handler(sig); return; }
    signal(sig, SIG_DFL); /* the faulting instruction runs again and the default action ends the process */
}

void segv_handler(int sig, siginfo_t *si, void *uc) {
    static volatile sig_atomic_t busy; /* a fault while describing a fault: leave it to the old handler */
    if (S.in_kernel && S.cur && !busy) {
        busy = 1;
        char why[512];
        const void *a = si->si_addr;
        if (!emu_sched_describe_fault(a, why, sizeof why) && !emu_mem_describe_fault(a, why, sizeof why))
            snprintf(why, sizeof why, "%s at address %p, which is not device memory", (uintptr_t)a < 65536 ? "null pointer access" : "invalid access", a);
        emu_violation(cudaErrorIllegalAddress, "%s %s", sig == SIGBUS ? "bus error:" : "memory fault:", why);
        S.abort = true;
        busy = 0;
        switch_ctx(S.cur, NULL, true); /* abandon the fiber; the alternate signal stack is free again once we leave it */
    }
    segv_chain(sig == SIGBUS ? &g_old_bus : &g_old_segv, sig, si, uc);
}

} // namespace

/* ---- public entry points ---------------------------------------------------------------------------------- */
void cuda_emu_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emu_vviolation(cudaErrorLaunchFailure, fmt, ap);
    va_end(ap);
    if (S.in_kernel && S.cur) emu_abort_launch();
}

void emu_abort_launch(void) {
    S.abort = true;
    switch_ctx(S.cur, NULL, true);
    __builtin_unreachable();
}

int emu_in_kernel(void) { return S.in_kernel && S.cur; }

const char *emu_context(char *buf, size_t n) {
    buf[0] = 0;
    if (S.in_kernel && S.desc) {
        int o = snprintf(buf, n, "kernel %s (%s:%d), block (%u,%u,%u)", S.desc->name, S.desc->file, S.desc->line, blockIdx.x,
                         blockIdx.y, blockIdx.z);
        if (S.cur && o > 0 && (size_t)o < n)
            snprintf(buf + o, n - (size_t)o, ", thread (%u,%u,%u)", S.cur->tid.x, S.cur->tid.y, S.cur->tid.z);
    }
    return buf;
}

int emu_sched_describe_fault(const void *addr, char *buf, size_t n) {
    const unsigned char *a = (const unsigned char *)addr;
    if (S.smem_guard && a >= S.smem_guard && a < S.smem_guard + S.page) {
        snprintf(buf, n, "dynamic shared memory overrun: byte %zu of a %zu-byte allocation", (size_t)(a - cuda_emu_dynamic_smem),
                 S.desc ? S.desc->smem : 0);
        return 1;
    }
    for (int i = 0; i < kMaxThreads && g_fibers[i].map; i++)
        if ((const char *)a >= g_fibers[i].map - 16 * S.page && (const char *)a < g_fibers[i].lo) {
            snprintf(buf, n, "stack overflow of a CUDA thread (the fiber stack has %zu KiB; set CUDA_EMU_STACK_KB)", S.stack_size / 1024);
            return 1;
        }
    return 0;
}

void emu_sched_set_func_smem(const void *func, int bytes) { init(); S.func_smem[func] = bytes; }

int emu_sched_is_shared(const void *p, size_t n) {
    const unsigned char *a = (const unsigned char *)p;
    if (!S.in_kernel || !S.desc) return 0;
    if (S.desc->smem && a >= cuda_emu_dynamic_smem && a + n <= cuda_emu_dynamic_smem + S.desc->smem) return 1;
    return S.tls_size && a >= S.tls && a + n <= S.tls + S.tls_size;
}

void cuda_emu_launch_run(const cuda_emu_launch_desc *d) {
    init();
    if (S.in_kernel) {
        cuda_emu_fail("kernel %s launched from inside a kernel (dynamic parallelism is not emulated)", d->name);
        return;
    }
    if (emu_sticky()) { emu_error(emu_sticky()); return; }
    if (d->stream && d->stream != cudaStreamLegacy && d->stream != cudaStreamPerThread && cudaStreamQuery(d->stream) != cudaSuccess) {
        emu_violation(cudaSuccess, "launch of %s (%s:%d) on an invalid stream %p", d->name, d->file, d->line, (void *)d->stream);
        emu_error(cudaErrorInvalidResourceHandle);
        return;
    }
    if (!check_launch(d)) return;
    pthread_mutex_lock(&g_launch_lock);
    install_altstack();
    const unsigned n = d->block.x * d->block.y * d->block.z;
    for (unsigned i = 0; i < n; i++)
        if (!fiber_alloc(&g_fibers[i])) {
            pthread_mutex_unlock(&g_launch_lock);
            emu_violation(cudaErrorLaunchOutOfResources, "launch of %s: cannot map %u fiber stacks", d->name, n);
            return;
        }
    find_tls();
    S.tls_save.assign(S.tls, S.tls + S.tls_size);
    {
        auto it = S.kernel_dirty.find(d->func);
        S.dirty_lo = it != S.kernel_dirty.end() ? it->second.first : 0;
        S.dirty_hi = it != S.kernel_dirty.end() ? it->second.second : 0;
    }
    S.desc = d;
    S.nthreads = n;
    S.abort = false;
    S.launches++;
    {
        auto it = g_kernel_counts.begin();
        while (it != g_kernel_counts.end() && it->first != d->name && strcmp(it->first, d->name)) ++it;
        if (it == g_kernel_counts.end()) g_kernel_counts.emplace_back(d->name, 1);
        else it->second++;
    }
    blockDim = d->block;
    gridDim = d->grid;
    cuda_emu_dynamic_smem = S.smem_guard - ((d->smem + 15) & ~(size_t)15);
    S.order.resize(n);
    for (unsigned i = 0; i < n; i++) S.order[i] = S.mode == CUDA_EMU_REVERSE ? n - 1 - i : i;
    const unsigned long long nb = (unsigned long long)d->grid.x * d->grid.y * d->grid.z;
    const bool permute = S.mode == CUDA_EMU_RANDOM && nb <= (1ull << 24);
    if (permute) {
        S.block_order.resize(nb);
        for (unsigned long long i = 0; i < nb; i++) S.block_order[i] = (unsigned)i;
        for (unsigned long long i = nb - 1; i > 0; i--) std::swap(S.block_order[i], S.block_order[rng_next() % (i + 1)]);
    }
    S.in_kernel = true;
    for (unsigned long long i = 0; i < nb && !S.abort; i++) {
        unsigned long long b = permute ? S.block_order[i] : S.mode == CUDA_EMU_REVERSE ? nb - 1 - i : i;
        run_block(b, d->grid, i);
        if (i == 0 && S.tls_size) learn_shared();
    }
    S.in_kernel = false;
    S.cur = NULL;
    if (S.abort) {
#ifdef EMU_ASAN
        for (unsigned i = 0; i < n; i++) __asan_unpoison_memory_region(g_fibers[i].lo, (size_t)(g_fibers[i].hi - g_fibers[i].lo));
#endif
    }
    if (S.tls_size) {
        if (nb > 1 && !S.abort) learn_shared(); /* for the next launch of this kernel */
        S.kernel_dirty[d->func] = std::make_pair(S.dirty_lo, S.dirty_hi);
        memcpy(S.tls, S.tls_save.data(), S.tls_size);
    }
    S.desc = NULL;
    pthread_mutex_unlock(&g_launch_lock);
    if (!S.abort) emu_mem_check_tails(d->ptr_value, d->nptr, d->name);
}

void __syncthreads(const char *file, int line) { barrier(BAR_SYNC, 0, file, line); }
int __syncthreads_count(int pred, const char *file, int line) { return barrier(BAR_COUNT, pred, file, line); }
int __syncthreads_and(int pred, const char *file, int line) { return barrier(BAR_AND, pred, file, line); }
int __syncthreads_or(int pred, const char *file, int line) { return barrier(BAR_OR, pred, file, line); }
void __syncwarp(unsigned mask, const char *file, int line) { warp_collective("__syncwarp", mask, NULL, NULL, file, line); }
void __trap(const char *file, int line) { cuda_emu_fail("__trap() at %s:%d", file, line); }
long long clock64(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}
unsigned __activemask(void) {
    if (!S.cur) return 1;
    const Warp *w = &S.warps[S.cur->linear >> 5];
    return w->exists & ~w->exited;
}

void cuda_emu_warp_collective(const char *op, unsigned mask, void *lane_data, cuda_emu_warp_fn fn, const char *file, int line) {
    warp_collective(op, mask, lane_data, fn, file, line);
}

void cuda_emu_warn_inactive_lane(const char *op, int reader, int source) {
    emu_warning("%s: lane %d read lane %d, which did not take part; it got poison (all bits set)", op, reader, source);
}

enum cuda_emu_sched cuda_emu_schedule(void) { init(); return (enum cuda_emu_sched)S.mode; }
const char *cuda_emu_schedule_name(void) {
    init();
    return S.mode == CUDA_EMU_REVERSE ? "reverse" : S.mode == CUDA_EMU_RANDOM ? "random" : S.mode == CUDA_EMU_GREEDY ? "greedy" : "inorder";
}
unsigned cuda_emu_seed(void) { init(); return S.seed; }
void cuda_emu_set_schedule(enum cuda_emu_sched s, unsigned seed) {
    init();
    S.mode = s;
    S.seed = seed;
    rng_seed(seed);
}
int cuda_emu_launch_counts(const char **names, unsigned long long *counts, int cap, int reset) {
    const int n = (int)g_kernel_counts.size();
    for (int i = 0; i < n && i < cap; i++) {
        names[i] = g_kernel_counts[i].first;
        counts[i] = g_kernel_counts[i].second;
    }
    if (reset) g_kernel_counts.clear();
    return n;
}

void cuda_emu_get_stats(struct cuda_emu_stats *s) {
    s->launches = S.launches;
    s->blocks = S.blocks;
    s->threads = S.threads;
    s->switches = S.switches;
    s->graph_launches = emu_graph_launches();
    s->mallocs = emu_count_mallocs;
    s->syncs = emu_count_syncs;
}
