/* cuda_portable.h — the only spellings that differ between the nvcc build and the emulated (g++) build of a
 * .cu file, and the error-check macros. CI rejects raw triple-chevron launches and `extern __shared__`
 * anywhere else, so every .cu file compiles unchanged in both builds.
 *
 *   CUDA_LAUNCH(kernel, grid, block, smem_bytes, stream, args...);   // a template kernel goes in
 *   CUDA_LAUNCH((reduce<256>), grid, 256, 0, stream, x, y, n);        //   parentheses
 *   CUDA_DYNAMIC_SHARED(float, buf);   // in a kernel: float *buf = the block's dynamic shared memory
 *   CUDA_CHECK(cudaMemcpy(...));       // in a function returning sd_status: fails with SD_ERR_BACKEND
 *   CUBLAS_CHECK(cublasGemmEx(...));   //   and a message naming file, line, call and error
 */
#ifndef KERNELS_CUDA_PORTABLE_H
#define KERNELS_CUDA_PORTABLE_H

#include <cuda_runtime.h>

#ifdef CUDA_EMU
#define CUDA_LAUNCH(kernel, grid, block, smem, stream, ...) \
    cuda_emu_launch(#kernel, __FILE__, __LINE__, kernel, grid, block, smem, stream, ##__VA_ARGS__)
#define CUDA_DYNAMIC_SHARED(T, name) T *name = reinterpret_cast<T *>(cuda_emu_dynamic_smem)
#else
#define CUDA_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define CUDA_DYNAMIC_SHARED(T, name)                                   \
    extern __shared__ __align__(16) unsigned char cuda_dynamic_smem_[]; \
    T *name = reinterpret_cast<T *>(cuda_dynamic_smem_)
#endif

/* The error macros report through core/error.h, a C header (hence the C linkage). */
extern "C" {
#include "../../core/error.h"
}
#define CUDA_CHECK(call)                                                                              \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        if (e_ != cudaSuccess)                                                                        \
            return err_fail(SD_ERR_BACKEND, "%s:%d: %s: %s (%s)", __FILE__, __LINE__, #call,           \
                           cudaGetErrorString(e_), cudaGetErrorName(e_));                             \
    } while (0)
#define CUBLAS_CHECK(call)                                                                            \
    do {                                                                                              \
        cublasStatus_t s_ = (call);                                                                   \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                              \
            return err_fail(SD_ERR_BACKEND, "%s:%d: %s: %s", __FILE__, __LINE__, #call,                \
                           cublasGetStatusString(s_));                                                \
    } while (0)

#endif
