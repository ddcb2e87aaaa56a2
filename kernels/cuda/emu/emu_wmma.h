/* emu_wmma.h — nvcuda::wmma for the CUDA emulator: fragments are per-lane arrays, and every load, store
 * and mma is a warp collective, so a tensor-core kernel written with wmma runs (and diverging lanes are
 * caught). CUDA leaves the fragment layout unspecified; here element e of lane l is element e*32+l of
 * the tile in row-major order. mma accumulates exact products in f32 in k order. */
#ifndef CUDA_EMU_WMMA_H
#define CUDA_EMU_WMMA_H

#include "cuda_emu.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision { struct tf32 {}; }

namespace detail {
template <typename Use, int M, int N, int K> struct dims;
template <int M, int N, int K> struct dims<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct dims<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct dims<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };
template <typename T> struct storage { typedef T type; };
template <> struct storage<precision::tf32> { typedef float type; };
template <int M, int N, int K, typename T> constexpr bool valid_shape() {
    return std::is_same<T, precision::tf32>::value ? (M == 16 && N == 16 && K == 8)
                                                   : ((M == 16 && N == 16 && K == 16) || (M == 32 && N == 8 && K == 16) ||
                                                      (M == 8 && N == 32 && K == 16) || (M == 16 && N == 16 && K == 8));
}
} // namespace detail

template <typename Use, int M, int N, int K, typename T, typename Layout = void> class fragment {
  public:
    static_assert(detail::valid_shape<M, N, K, T>(), "wmma: unsupported fragment shape");
    typedef typename detail::storage<T>::type element_type;
    typedef element_type storage_element_type;
    static constexpr int rows = detail::dims<Use, M, N, K>::rows, cols = detail::dims<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols / 32;
    element_type x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename L, typename V>
static inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, const V &v) {
    for (int e = 0; e < f.num_elements; e++) f.x[e] = v;
}

namespace detail {
/* One lane's part of a load or store: the fragment and the memory it names. */
struct xfer { void *frag; void *mem; unsigned ldm; int row_major; };

template <typename Frag, typename MemT, int Load> static void xfer_fn(void *const *data, unsigned present) {
    if (present != 0xffffffffu) cuda_emu_fail("wmma %s: lanes %#x of the warp did not take part", Load ? "load" : "store", ~present);
    const xfer *x0 = (const xfer *)data[0];
    for (int l = 0; l < 32; l++) {
        const xfer *x = (const xfer *)data[l];
        if (x->mem != x0->mem || x->ldm != x0->ldm || x->row_major != x0->row_major)
            cuda_emu_fail("wmma %s: lanes 0 and %d passed different pointers, strides or layouts", Load ? "load" : "store", l);
        Frag *f = (Frag *)x->frag;
        MemT *mem = (MemT *)x->mem;
        for (int e = 0; e < Frag::num_elements; e++) {
            const int i = e * 32 + l, r = i / Frag::cols, c = i % Frag::cols;
            MemT *p = x->row_major ? mem + (size_t)r * x->ldm + c : mem + (size_t)c * x->ldm + r;
            if constexpr (Load) f->x[e] = *p;
            else *p = (MemT)f->x[e];
        }
    }
}
template <typename Frag, typename MemT, int Load>
static inline void xfer_sync(Frag &f, MemT *p, unsigned ldm, int row_major, const char *file, int line) {
    if ((uintptr_t)p % 32) cuda_emu_fail("wmma %s: pointer %p is not 256-bit aligned", Load ? "load" : "store", (void *)p);
    if ((ldm * sizeof(MemT)) % 16) cuda_emu_fail("wmma %s: ldm %u is not a multiple of 16 bytes", Load ? "load" : "store", ldm);
    xfer x = {(void *)&f, (void *)p, ldm, row_major};
    cuda_emu_warp_collective(Load ? "wmma::load_matrix_sync" : "wmma::store_matrix_sync", 0xffffffffu, &x,
                             xfer_fn<Frag, MemT, Load>, file, line);
}
template <typename L> constexpr int is_row() { return std::is_same<L, row_major>::value; }
} // namespace detail

template <typename Use, int M, int N, int K, typename T, typename L, typename MemT>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const MemT *p, unsigned ldm, CUDA_EMU_SITE) {
    static_assert(!std::is_same<Use, accumulator>::value, "wmma: an accumulator load needs a layout_t");
    detail::xfer_sync<fragment<Use, M, N, K, T, L>, const MemT, 1>(f, p, ldm, detail::is_row<L>(), file_, line_);
}
template <int M, int N, int K, typename T, typename MemT>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void> &f, const MemT *p, unsigned ldm, layout_t layout, CUDA_EMU_SITE) {
    detail::xfer_sync<fragment<accumulator, M, N, K, T, void>, const MemT, 1>(f, p, ldm, layout == mem_row_major, file_, line_);
}
template <int M, int N, int K, typename T, typename MemT>
static inline void store_matrix_sync(MemT *p, const fragment<accumulator, M, N, K, T, void> &f, unsigned ldm, layout_t layout, CUDA_EMU_SITE) {
    detail::xfer_sync<const fragment<accumulator, M, N, K, T, void>, MemT, 0>(f, p, ldm, layout == mem_row_major, file_, line_);
}

namespace detail {
struct mma_lane { void *d; const void *a, *b, *c; };
template <typename FD, typename FA, typename FB, typename FC> static void mma_fn(void *const *data, unsigned present) {
    if (present != 0xffffffffu) cuda_emu_fail("wmma::mma_sync: lanes %#x of the warp did not take part", ~present);
    enum { M = FA::rows, K = FA::cols, N = FB::cols };
    float A[M][K], B[K][N], C[M][N];
    for (int l = 0; l < 32; l++) {
        const mma_lane *m = (const mma_lane *)data[l];
        const FA *a = (const FA *)m->a;
        const FB *b = (const FB *)m->b;
        const FC *c = (const FC *)m->c;
        for (int e = 0; e < FA::num_elements; e++) { int i = e * 32 + l; A[i / K][i % K] = (float)a->x[e]; }
        for (int e = 0; e < FB::num_elements; e++) { int i = e * 32 + l; B[i / N][i % N] = (float)b->x[e]; }
        for (int e = 0; e < FC::num_elements; e++) { int i = e * 32 + l; C[i / N][i % N] = (float)c->x[e]; }
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = C[i][j];
            for (int k = 0; k < K; k++) s += A[i][k] * B[k][j];
            C[i][j] = s;
        }
    for (int l = 0; l < 32; l++) { /* after every read: d may be the same fragment as c */
        FD *d = (FD *)((const mma_lane *)data[l])->d;
        for (int e = 0; e < FD::num_elements; e++) { int i = e * 32 + l; d->x[e] = C[i / N][i % N]; }
    }
}
} // namespace detail

template <int M, int N, int K, typename TA, typename LA, typename LB, typename TD, typename TC>
static inline void mma_sync(fragment<accumulator, M, N, K, TD, void> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
                            const fragment<matrix_b, M, N, K, TA, LB> &b, const fragment<accumulator, M, N, K, TC, void> &c,
                            bool satf = false, CUDA_EMU_SITE) {
    (void)satf;
    detail::mma_lane m = {(void *)&d, &a, &b, &c};
    cuda_emu_warp_collective("wmma::mma_sync", 0xffffffffu, &m,
                             detail::mma_fn<fragment<accumulator, M, N, K, TD, void>, fragment<matrix_a, M, N, K, TA, LA>,
                                            fragment<matrix_b, M, N, K, TA, LB>, fragment<accumulator, M, N, K, TC, void>>,
                             file_, line_);
}

static inline float __float_to_tf32(float f) { /* cvt.rna.tf32.f32: 10 mantissa bits, ties away from zero */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&f, &u, 4);
    return f;
}

} // namespace wmma
} // namespace nvcuda

#endif
