/* gemm.cu — the cuBLAS wrapper (f16/bf16/f32 storage in, f32 compute) and linear layers: on the tensor-core GEMM
 * of igemm.cu when it takes the shape, else on cuBLAS (a 1x1 convolution is the same call: conv.cu).
 *
 * Row-major [rows, in] activations are column-major [in, rows] matrices to cuBLAS, so y = x·Wᵀ (row-major) is
 * yᵀ = W·xᵀ (column-major): gemm(transa = T on the row-major weight [out][in], transb = N on x). */
#include "cuda_internal.h"

static cudaDataType blas_type(be_dtype t) { return t == BE_F16 ? CUDA_R_16F : t == BE_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

sd_status cuda_gemm(be *b, int trans_a, int trans_b, int m, int n, int k, float alpha, const void *A, int lda, long long sa,
                    const void *B, int ldb, long long sb, float beta, void *C, be_dtype c_type, int ldc, long long sc, int batch) {
    cuda_impl *c = cuda_of(b);
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cudaDataType ab = blas_type(c->dt), ct = blas_type(c_type);
    /* f32 accumulation always; with f32 storage no TF32 either (the f32 mode is the accurate one) */
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    if (batch == 1)
        CUBLAS_CHECK(cublasGemmEx(c->blas, ta, tb, m, n, k, &alpha, A, ab, lda, B, ab, ldb, &beta, C, ct, ldc, compute, CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(c->blas, ta, tb, m, n, k, &alpha, A, ab, lda, sa, B, ab, ldb, sb, &beta, C, ct, ldc, sc, batch,
                                                compute, CUBLAS_GEMM_DEFAULT));
    return SD_OK;
}

static sd_status linear_run(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y) {
    size_t rows = (size_t)x->n * x->h * x->w;
    if (rows > 0x7fffffff) return err_fail(SD_ERR_ARG, "cuda linear: %zu rows exceed cuBLAS's int range", rows);
    /* y[rows, out] = x[rows, in] · W[out, in]ᵀ */
    sd_status st = cuda_gemm(b, 1, 0, w->out, (int)rows, w->in, 1.0f, w->data, w->in, 0, x->data, w->in, 0, 0.0f, y->data, cuda_of(b)->dt,
                             w->out, 0, 1);
    if (st != SD_OK) return st;
    return cuda_bias_act(b, y->data, rows, w->out, bias ? (const float *)bias->data : NULL, act);
}

void cuda_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y) {
    sd_status st = cuda_linear_igemm(b, x, w, bias, act, y);
    cuda_report(b, st == SD_ERR_UNSUPPORTED ? linear_run(b, x, w, bias, act, y) : st);
}
