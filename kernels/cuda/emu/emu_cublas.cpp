/* emu_cublas.cpp — cuBLAS GEMM entry points as a column-major reference (double accumulation, one rounding
 * to the output type), with cuBLAS's argument rules, device-memory bounds checks on every operand of every
 * batch, and C left unread when beta == 0 (so poison in C must not leak). */
#include "emu_internal.h"
#include "emu_cublas.h"

#include <vector>

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
    cublasPointerMode_t pmode;
};

namespace {

size_t type_size(cudaDataType t) { return t == CUDA_R_32F ? 4 : t == CUDA_R_16F || t == CUDA_R_16BF ? 2 : t == CUDA_R_64F ? 8 : 0; }

double load(const void *p, cudaDataType t, size_t i) {
    switch (t) {
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_64F: return ((const double *)p)[i];
    case CUDA_R_16F: return __half2float(((const __half *)p)[i]);
    default: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    }
}

void store(void *p, cudaDataType t, size_t i, double v) {
    switch (t) {
    case CUDA_R_32F: ((float *)p)[i] = (float)v; break;
    case CUDA_R_64F: ((double *)p)[i] = v; break;
    case CUDA_R_16F: ((__half *)p)[i] = __double2half(v); break;
    default: ((__nv_bfloat16 *)p)[i] = __double2bfloat16(v); break;
    }
}

struct Gemm {
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc;
    cudaDataType at, bt, ct;
    double alpha, beta;
};

/* Extent in elements of a column-major rows x cols operand with leading dimension ld. */
size_t extent(int rows, int cols, int ld) { return rows && cols ? (size_t)ld * (size_t)(cols - 1) + (size_t)rows : 0; }

bool check_operand(const void *p, cudaDataType t, int rows, int cols, int ld, const char *fn, const char *name, int batch) {
    const size_t bytes = extent(rows, cols, ld) * type_size(t);
    if (!bytes) return true;
    char what[160];
    snprintf(what, sizeof what, "%s: matrix %s (%d x %d, ld %d) of batch %d", fn, name, rows, cols, ld, batch);
    return emu_mem_check(p, bytes, 0, what);
}

/* One GEMM: C = alpha op(A) op(B) + beta C. op(A) is gathered into rows of k values, op(B) into columns. */
void gemm_one(const Gemm &g, const void *A, const void *B, void *C, std::vector<double> &ra, std::vector<double> &cb) {
    ra.resize((size_t)g.m * g.k);
    cb.resize((size_t)g.n * g.k);
    for (int i = 0; i < g.m; i++)
        for (int p = 0; p < g.k; p++)
            ra[(size_t)i * g.k + p] = load(A, g.at, g.ta == CUBLAS_OP_N ? (size_t)i + (size_t)p * g.lda : (size_t)p + (size_t)i * g.lda);
    for (int j = 0; j < g.n; j++)
        for (int p = 0; p < g.k; p++)
            cb[(size_t)j * g.k + p] = load(B, g.bt, g.tb == CUBLAS_OP_N ? (size_t)p + (size_t)j * g.ldb : (size_t)j + (size_t)p * g.ldb);
    for (int j = 0; j < g.n; j++)
        for (int i = 0; i < g.m; i++) {
            const double *a = ra.data() + (size_t)i * g.k, *b = cb.data() + (size_t)j * g.k; /* k may be 0 */
            double s = 0;
            for (int p = 0; p < g.k; p++) s += a[p] * b[p];
            const size_t ci = (size_t)i + (size_t)j * g.ldc;
            double v = g.alpha * s;
            if (g.beta != 0) v += g.beta * load(C, g.ct, ci);
            store(C, g.ct, ci, v);
        }
}

bool supported(cudaDataType at, cudaDataType bt, cudaDataType ct, cublasComputeType_t compute) {
    if (at != bt) return false;
    switch (compute) {
    case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: return at == CUDA_R_16F && ct == CUDA_R_16F;
    case CUBLAS_COMPUTE_32F: case CUBLAS_COMPUTE_32F_PEDANTIC:
        return (at == CUDA_R_32F && ct == CUDA_R_32F) || ((at == CUDA_R_16F || at == CUDA_R_16BF) && (ct == at || ct == CUDA_R_32F));
    case CUBLAS_COMPUTE_32F_FAST_16F: case CUBLAS_COMPUTE_32F_FAST_16BF: case CUBLAS_COMPUTE_32F_FAST_TF32:
        return at == CUDA_R_32F && ct == CUDA_R_32F;
    case CUBLAS_COMPUTE_64F: case CUBLAS_COMPUTE_64F_PEDANTIC: return at == CUDA_R_64F && ct == CUDA_R_64F;
    default: return false;
    }
}

/* alpha/beta: float for the 32F compute types, __half for 16F, double for 64F; read from device memory
 * in CUBLAS_POINTER_MODE_DEVICE. */
bool read_scalar(cublasHandle_t h, const void *p, cublasComputeType_t compute, double *out, const char *fn) {
    const size_t sz = compute == CUBLAS_COMPUTE_16F || compute == CUBLAS_COMPUTE_16F_PEDANTIC ? 2
                      : compute == CUBLAS_COMPUTE_64F || compute == CUBLAS_COMPUTE_64F_PEDANTIC ? 8 : 4;
    if (!p) return false;
    if (h->pmode == CUBLAS_POINTER_MODE_DEVICE && !emu_mem_check(p, sz, 0, fn)) return false;
    *out = sz == 2 ? (double)__half2float(*(const __half *)p) : sz == 8 ? *(const double *)p : (double)*(const float *)p;
    return true;
}

/* Shared by every entry point: checks, then one GEMM per batch. Pointers come either strided from A/B/C
 * or from the arrays Aa/Ba/Ca (the Batched variants; the arrays themselves live in device memory). */
cublasStatus_t gemm(cublasHandle_t h, const char *fn, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    const void *alpha, const void *A, cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt,
                    int ldb, long long sb, const void *beta, void *C, cudaDataType ct, int ldc, long long sc, int batch,
                    cublasComputeType_t compute, const void *const *Aa, const void *const *Ba, void *const *Ca) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (emu_sticky()) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (cuda_emu_stream_capturing(h->stream)) {
        /* a graph node: the scalars are read now (host pointer mode reads them at the call), the rest when it runs */
        unsigned char al[8] = {0}, be[8] = {0};
        const size_t ss = h->pmode == CUBLAS_POINTER_MODE_HOST ? (compute == CUBLAS_COMPUTE_64F ? 8 : compute == CUBLAS_COMPUTE_16F ? 2 : 4) : 0;
        if (ss) {
            if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
            memcpy(al, alpha, ss);
            memcpy(be, beta, ss);
        }
        cublasContext hc = *h;
        cuda_emu_capture_node(h->stream, fn, [=](cudaStream_t s) mutable {
            cublasContext hr = hc;
            hr.stream = s;
            gemm(&hr, fn, ta, tb, m, n, k, ss ? (const void *)al : alpha, A, at, lda, sa, B, bt, ldb, sb, ss ? (const void *)be : beta, C, ct,
                 ldc, sc, batch, compute, Aa, Ba, Ca);
        });
        return CUBLAS_STATUS_SUCCESS;
    }
    if (!supported(at, bt, ct, compute)) {
        emu_violation(cudaSuccess, "%s: types A %d, B %d, C %d with compute type %d are not a supported combination", fn, at, bt, ct, compute);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    const int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
    const int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
    const char *bad = NULL;
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T && ta != CUBLAS_OP_C) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T && tb != CUBLAS_OP_C)) bad = "invalid transpose";
    else if (m < 0 || n < 0 || k < 0 || batch < 0) bad = "negative m, n, k or batch count";
    else if (lda < (arows > 1 ? arows : 1)) bad = "lda smaller than the rows of A";
    else if (ldb < (brows > 1 ? brows : 1)) bad = "ldb smaller than the rows of B";
    else if (ldc < (m > 1 ? m : 1)) bad = "ldc smaller than m";
    if (bad) {
        emu_violation(cudaSuccess, "%s(m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d): %s", fn, m, n, k, lda, ldb, ldc, bad);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    Gemm g = {ta, tb, m, n, k, lda, ldb, ldc, at, bt, ct, 0, 0};
    if (!read_scalar(h, alpha, compute, &g.alpha, fn) || !read_scalar(h, beta, compute, &g.beta, fn)) {
        if (!alpha || !beta) emu_violation(cudaSuccess, "%s: alpha or beta is NULL", fn);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (g.alpha == 0) g.k = 0; /* cuBLAS does not read A and B then */
    if (Aa && (!emu_mem_check(Aa, sizeof(void *) * (size_t)batch, 0, fn) || !emu_mem_check(Ba, sizeof(void *) * (size_t)batch, 0, fn) ||
               !emu_mem_check(Ca, sizeof(void *) * (size_t)batch, 0, fn))) {
        emu_set_sticky(cudaErrorIllegalAddress);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    const size_t as = type_size(at), bs = type_size(bt), cs = type_size(ct);
    std::vector<double> ra, cb;
    for (int b = 0; b < batch; b++) {
        const void *pa = Aa ? Aa[b] : (const char *)A + (ptrdiff_t)(sa * b) * (ptrdiff_t)as;
        const void *pb = Ba ? Ba[b] : (const char *)B + (ptrdiff_t)(sb * b) * (ptrdiff_t)bs;
        void *pc = Ca ? Ca[b] : (char *)C + (ptrdiff_t)(sc * b) * (ptrdiff_t)cs;
        if ((g.k && (!check_operand(pa, at, arows, acols, lda, fn, "A", b) || !check_operand(pb, bt, brows, bcols, ldb, fn, "B", b))) ||
            !check_operand(pc, ct, m, n, ldc, fn, "C", b)) {
            emu_set_sticky(cudaErrorIllegalAddress); /* on a GPU the GEMM kernel would fault */
            return CUBLAS_STATUS_EXECUTION_FAILED;
        }
        gemm_one(g, pa, pb, pc, ra, cb);
    }
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    *h = new cublasContext{0, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (cudaStreamQuery(s) == cudaErrorInvalidResourceHandle) return CUBLAS_STATUS_INVALID_VALUE;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s) { if (!h) return CUBLAS_STATUS_NOT_INITIALIZED; *s = h->stream; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) { if (!h) return CUBLAS_STATUS_NOT_INITIALIZED; h->math = m; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *m) { if (!h) return CUBLAS_STATUS_NOT_INITIALIZED; *m = h->math; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m) { if (!h) return CUBLAS_STATUS_NOT_INITIALIZED; h->pmode = m; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasGetPointerMode(cublasHandle_t h, cublasPointerMode_t *m) { if (!h) return CUBLAS_STATUS_NOT_INITIALIZED; *m = h->pmode; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *, size_t) { return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED; }

const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
#define S(x) case x: return #x;
        S(CUBLAS_STATUS_SUCCESS) S(CUBLAS_STATUS_NOT_INITIALIZED) S(CUBLAS_STATUS_ALLOC_FAILED) S(CUBLAS_STATUS_INVALID_VALUE)
        S(CUBLAS_STATUS_ARCH_MISMATCH) S(CUBLAS_STATUS_MAPPING_ERROR) S(CUBLAS_STATUS_EXECUTION_FAILED)
        S(CUBLAS_STATUS_INTERNAL_ERROR) S(CUBLAS_STATUS_NOT_SUPPORTED) S(CUBLAS_STATUS_LICENSE_ERROR)
#undef S
    }
    return "CUBLAS_STATUS_UNKNOWN";
}
const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc) {
    return gemm(h, "cublasSgemm", ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0, beta, C, CUDA_R_32F, ldc, 0, 1,
                CUBLAS_COMPUTE_32F, NULL, NULL, NULL);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda, long long sa, const float *B, int ldb,
                                         long long sb, const float *beta, float *C, int ldc, long long sc, int batch) {
    return gemm(h, "cublasSgemmStridedBatched", ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, sa, B, CUDA_R_32F, ldb, sb, beta, C,
                CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F, NULL, NULL, NULL);
}
cublasStatus_t cublasSgemmBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float *alpha, const float *const A[], int lda, const float *const B[], int ldb,
                                  const float *beta, float *const C[], int ldc, int batch) {
    return gemm(h, "cublasSgemmBatched", ta, tb, m, n, k, alpha, NULL, CUDA_R_32F, lda, 0, NULL, CUDA_R_32F, ldb, 0, beta, NULL,
                CUDA_R_32F, ldc, 0, batch, CUBLAS_COMPUTE_32F, (const void *const *)A, (const void *const *)B, (void *const *)C);
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t) {
    return gemm(h, "cublasGemmEx", ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1, compute, NULL, NULL, NULL);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at, int lda, long long sa, const void *B,
                                          cudaDataType bt, int ldb, long long sb, const void *beta, void *C, cudaDataType ct, int ldc,
                                          long long sc, int batch, cublasComputeType_t compute, cublasGemmAlgo_t) {
    return gemm(h, "cublasGemmStridedBatchedEx", ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc, batch,
                compute, NULL, NULL, NULL);
}
cublasStatus_t cublasGemmBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *const A[], cudaDataType at, int lda, const void *const B[],
                                   cudaDataType bt, int ldb, const void *beta, void *const C[], cudaDataType ct, int ldc, int batch,
                                   cublasComputeType_t compute, cublasGemmAlgo_t) {
    return gemm(h, "cublasGemmBatchedEx", ta, tb, m, n, k, alpha, NULL, at, lda, 0, NULL, bt, ldb, 0, beta, NULL, ct, ldc, 0, batch,
                compute, A, B, C);
}
