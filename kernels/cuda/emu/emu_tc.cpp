/* emu_tc.cpp — the runtime of the tensor-core twins (emu_tc.h): mma.sync and ldmatrix as warp collectives that
 * follow the PTX ISA fragment layouts, and cp.async with per-thread groups that land only at wait_group. */
#include "emu_internal.h"
#include "emu_tc.h"

#include <deque>
#include <vector>

namespace {

/* ---- mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.f32 ---- */

struct MmaLane { float *d; const uint32_t *a, *b; };

/* f16 -> f32 of every bit pattern (exact): the software conversion per element would dominate an mma */
float g_f16[65536];
struct F16Init {
    F16Init() {
        for (unsigned i = 0; i < 65536; i++) g_f16[i] = cuda_emu_h2f_bits((uint16_t)i);
    }
} g_f16_init;
inline float lo16(uint32_t r, int bf) {
    if (bf) {
        const uint32_t u = (r & 0xffffu) << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return g_f16[r & 0xffffu];
}
inline float hi16(uint32_t r, int bf) { return lo16(r >> 16, bf); }

template <int BF> void mma_fn(void *const *data, unsigned present) {
    if (present != 0xffffffffu) cuda_emu_fail("mma.sync: lanes %#x of the warp did not take part (.aligned needs all 32)", ~present);
    float A[16][16], B[16][8], C[16][8], Bt[8][16];
    for (int l = 0; l < 32; l++) {
        const MmaLane *m = (const MmaLane *)data[l];
        const int g = l >> 2, t = l & 3;
        /* A: regs 0..3 = rows g, g+8, g, g+8 at columns 2t (+8 for regs 2, 3), low half first */
        for (int r = 0; r < 4; r++) {
            const int row = g + (r & 1) * 8, col = 2 * t + (r >> 1) * 8;
            A[row][col] = lo16(m->a[r], BF);
            A[row][col + 1] = hi16(m->a[r], BF);
        }
        /* B (k x n): regs 0..1 = k rows 2t..2t+1 and 2t+8..2t+9 of column g */
        for (int r = 0; r < 2; r++) {
            B[2 * t + 8 * r][g] = lo16(m->b[r], BF);
            B[2 * t + 8 * r + 1][g] = hi16(m->b[r], BF);
        }
        /* C: (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1) */
        for (int i = 0; i < 4; i++) C[g + (i >> 1) * 8][2 * t + (i & 1)] = m->d[i];
    }
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 8; j++) Bt[j][k] = B[k][j];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++) {
            float s = C[i][j];
            for (int k = 0; k < 16; k++) s += A[i][k] * Bt[j][k]; /* the products are exact in f32; summed in k order */
            C[i][j] = s;
        }
    for (int l = 0; l < 32; l++) { /* after every read: a lane's d is also its c */
        const int g = l >> 2, t = l & 3;
        float *d = ((const MmaLane *)data[l])->d;
        for (int i = 0; i < 4; i++) d[i] = C[g + (i >> 1) * 8][2 * t + (i & 1)];
    }
}

/* ---- ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared.b16 ---- */

struct LdmLane { uint32_t *r; const unsigned char *p; int num, trans; };

void ldmatrix_fn(void *const *data, unsigned present) {
    if (present != 0xffffffffu) cuda_emu_fail("ldmatrix: lanes %#x of the warp did not take part (.aligned needs all 32)", ~present);
    const LdmLane *l0 = (const LdmLane *)data[0];
    for (int l = 1; l < 32; l++) {
        const LdmLane *x = (const LdmLane *)data[l];
        if (x->num != l0->num || x->trans != l0->trans) cuda_emu_fail("ldmatrix: lanes 0 and %d use different shapes", l);
    }
    const int num = l0->num;
    for (int l = 0; l < 8 * num; l++) { /* the lanes that supply row addresses */
        const unsigned char *p = ((const LdmLane *)data[l])->p;
        if ((uintptr_t)p & 15) cuda_emu_fail("ldmatrix: lane %d's row address %p is not 16-byte aligned", l, (const void *)p);
        if (!emu_sched_is_shared(p, 16)) cuda_emu_fail("ldmatrix: lane %d's row address %p is not in shared memory", l, (const void *)p);
    }
    uint16_t M[4][8][8];
    for (int m = 0; m < num; m++)
        for (int row = 0; row < 8; row++) memcpy(M[m][row], ((const LdmLane *)data[8 * m + row])->p, 16);
    for (int l = 0; l < 32; l++) {
        uint32_t *r = ((const LdmLane *)data[l])->r;
        for (int m = 0; m < num; m++) {
            uint16_t a, b;
            if (l0->trans) { a = M[m][2 * (l & 3)][l >> 2]; b = M[m][2 * (l & 3) + 1][l >> 2]; }
            else { a = M[m][l >> 2][2 * (l & 3)]; b = M[m][l >> 2][2 * (l & 3) + 1]; }
            r[m] = (uint32_t)a | (uint32_t)b << 16;
        }
    }
}

/* ---- cp.async ---- */

struct Copy { unsigned char *dst; const unsigned char *src; int bytes, src_bytes; };
struct Queue {
    std::vector<Copy> open;                 /* issued since the last commit */
    std::deque<std::vector<Copy>> groups;   /* committed, oldest first */
    bool used;                              /* anything issued or committed since the last reset */
    size_t pending(void) const {
        size_t n = open.size();
        for (const auto &g : groups) n += g.size();
        return n;
    }
    void reset(void) {
        if (!used) return;
        open.clear();
        groups.clear();
        used = false;
    }
};
Queue g_q[1024];

Queue &my_queue(const char *what) {
    if (!emu_in_kernel()) cuda_emu_fail("%s called outside a kernel", what);
    return g_q[cuda_emu_linear_tid()];
}

void land(const std::vector<Copy> &g) {
    for (const Copy &c : g) {
        if (c.src_bytes) memcpy(c.dst, c.src, (size_t)c.src_bytes);
        memset(c.dst + c.src_bytes, 0, (size_t)(c.bytes - c.src_bytes));
    }
}

} // namespace

void cuda_emu_mma16816(float *d, const uint32_t *a, const uint32_t *b, int bf16, const char *file, int line) {
    MmaLane m = {d, a, b};
    cuda_emu_warp_collective(bf16 ? "mma.sync.m16n8k16.bf16" : "mma.sync.m16n8k16.f16", 0xffffffffu, &m, bf16 ? mma_fn<1> : mma_fn<0>, file, line);
}

void cuda_emu_ldmatrix(uint32_t *r, const void *p, int num, int trans, const char *file, int line) {
    LdmLane x = {r, (const unsigned char *)p, num, trans};
    cuda_emu_warp_collective(trans ? "ldmatrix.trans" : "ldmatrix", 0xffffffffu, &x, ldmatrix_fn, file, line);
}

void cuda_emu_cp_async(void *smem, const void *gmem, int bytes, int src_bytes, const char *file, int line) {
    Queue &q = my_queue("cp.async");
    if (src_bytes < 0 || src_bytes > bytes) cuda_emu_fail("cp.async at %s:%d: source size %d outside [0, %d]", file, line, src_bytes, bytes);
    if ((uintptr_t)smem % (unsigned)bytes || (src_bytes && (uintptr_t)gmem % (unsigned)bytes))
        cuda_emu_fail("cp.async at %s:%d: addresses %p <- %p are not %d-byte aligned", file, line, smem, gmem, bytes);
    if (!emu_sched_is_shared(smem, (size_t)bytes)) cuda_emu_fail("cp.async at %s:%d: destination %p is not shared memory", file, line, smem);
    if (src_bytes) {
        int fits = 0;
        emu_mem_kind k = emu_mem_lookup(gmem, (size_t)src_bytes, &fits, NULL, 0);
        if (k != EMU_MEM_DEVICE || !fits)
            cuda_emu_fail("cp.async at %s:%d: source %p (%d bytes) is not inside one device allocation", file, line, gmem, src_bytes);
    }
    memset(smem, 0xff, (size_t)bytes); /* in flight: undefined until the wait */
    q.used = true;
    q.open.push_back(Copy{(unsigned char *)smem, (const unsigned char *)gmem, bytes, src_bytes});
}

void cuda_emu_cp_async_commit(void) {
    Queue &q = my_queue("cp.async.commit_group");
    q.used = true;
    q.groups.push_back(std::move(q.open));
    q.open.clear();
}

void cuda_emu_cp_async_wait(int n) {
    Queue &q = my_queue("cp.async.wait_group");
    while (q.groups.size() > (size_t)n) {
        land(q.groups.front());
        q.groups.pop_front();
    }
}

void cuda_emu_misaligned(const char *what, const void *p, int align, const char *file, int line) {
    cuda_emu_fail("%s at %s:%d: address %p is not %d-byte aligned", what, file, line, p, align);
}

void emu_tc_thread_exit(unsigned linear) {
    Queue &q = g_q[linear];
    if (!q.used) return;
    const size_t n = q.pending();
    if (n) emu_warning("a thread exited with %zu cp.async copies never waited for (their data may land after the kernel reads it)", n);
    q.reset();
}

void emu_tc_reset(unsigned nthreads) {
    for (unsigned i = 0; i < nthreads && i < 1024; i++) g_q[i].reset();
}
