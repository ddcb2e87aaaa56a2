/* cublas_lazy.cu — the few cuBLAS entry points the backend calls, loaded with dlopen when a CUDA backend is
 * created instead of linked: libcublasLt alone is half a gigabyte, and mapping it made every start of `sd`
 * (even `sd --help` on a machine without a GPU) slower by up to a second. The functions below carry cuBLAS's
 * own names and signatures, so the rest of the backend calls cuBLAS as usual. The emulated build serves
 * cuBLAS from the emulator and needs none of this. */
#include "cuda_internal.h"

#ifdef CUDA_EMU

sd_status cuda_blas_load(void) { return SD_OK; }

#else

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#ifndef SD_CUDA_LIBDIR
#define SD_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

typedef cublasStatus_t (*create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*set_stream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*set_workspace_fn)(cublasHandle_t, void *, size_t);
typedef const char *(*status_string_fn)(cublasStatus_t);
typedef cublasStatus_t (*gemm_ex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *, const void *, cudaDataType,
                                     int, const void *, cudaDataType, int, const void *, void *, cudaDataType, int, cublasComputeType_t,
                                     cublasGemmAlgo_t);
typedef cublasStatus_t (*gemm_sb_ex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *, const void *,
                                        cudaDataType, int, long long, const void *, cudaDataType, int, long long, const void *, void *,
                                        cudaDataType, int, long long, int, cublasComputeType_t, cublasGemmAlgo_t);

static struct {
    create_fn create;
    destroy_fn destroy;
    set_stream_fn set_stream;
    set_workspace_fn set_workspace;
    status_string_fn status_string;
    gemm_ex_fn gemm_ex;
    gemm_sb_ex_fn gemm_sb_ex;
    char error[512];
} api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void api_load(void) {
    const char *names[2] = {"libcublas.so." STR(CUBLAS_VER_MAJOR), SD_CUDA_LIBDIR "/libcublas.so." STR(CUBLAS_VER_MAJOR)};
    void *h = NULL;
    for (int i = 0; i < 2 && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(api.error, sizeof api.error, "cannot load %s: %s", names[0], dlerror());
        return;
    }
    api.create = (create_fn)dlsym(h, "cublasCreate_v2");
    api.destroy = (destroy_fn)dlsym(h, "cublasDestroy_v2");
    api.set_stream = (set_stream_fn)dlsym(h, "cublasSetStream_v2");
    api.set_workspace = (set_workspace_fn)dlsym(h, "cublasSetWorkspace_v2");
    api.status_string = (status_string_fn)dlsym(h, "cublasGetStatusString");
    api.gemm_ex = (gemm_ex_fn)dlsym(h, "cublasGemmEx");
    api.gemm_sb_ex = (gemm_sb_ex_fn)dlsym(h, "cublasGemmStridedBatchedEx");
    if (!api.create || !api.destroy || !api.set_stream || !api.set_workspace || !api.status_string || !api.gemm_ex || !api.gemm_sb_ex) {
        snprintf(api.error, sizeof api.error, "%s lacks a function the CUDA backend needs", names[0]);
        api.create = NULL;
    }
}

sd_status cuda_blas_load(void) {
    pthread_once(&api_once, api_load);
    return api.create ? SD_OK : err_fail(SD_ERR_UNSUPPORTED, "cuda backend: %s", api.error);
}

/* Reached only after cuda_blas_load succeeded (be_cuda_new checks it first). */
extern "C" {
cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t *handle) { return api.create ? api.create(handle) : CUBLAS_STATUS_NOT_INITIALIZED; }
cublasStatus_t CUBLASWINAPI cublasDestroy_v2(cublasHandle_t handle) { return api.destroy(handle); }
cublasStatus_t CUBLASWINAPI cublasSetStream_v2(cublasHandle_t handle, cudaStream_t s) { return api.set_stream(handle, s); }
cublasStatus_t CUBLASWINAPI cublasSetWorkspace_v2(cublasHandle_t handle, void *ws, size_t bytes) { return api.set_workspace(handle, ws, bytes); }
const char *CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
    return api.status_string ? api.status_string(status) : "cuBLAS not loaded";
}
cublasStatus_t CUBLASWINAPI cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                                         const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B, cudaDataType Btype,
                                         int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                         cublasGemmAlgo_t algo) {
    return api.gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType, algo);
}
cublasStatus_t CUBLASWINAPI cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                                                       int k, const void *alpha, const void *A, cudaDataType Atype, int lda, long long strideA,
                                                       const void *B, cudaDataType Btype, int ldb, long long strideB, const void *beta, void *C,
                                                       cudaDataType Ctype, int ldc, long long strideC, int batchCount,
                                                       cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    return api.gemm_sb_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC,
                          batchCount, computeType, algo);
}
}

#endif
