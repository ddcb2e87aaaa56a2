/* cuda_none.c — the CUDA backend's entry points in a build without nvcc: no device, a clear error. */
#include "../backend.h"

#include "../../core/error.h"

int be_cuda_available(void) { return 0; }

be *be_cuda_new(int device, be_dtype act_dtype) {
    (void)device;
    (void)act_dtype;
    err_fail(SD_ERR_UNSUPPORTED, "this build has no CUDA backend (nvcc was not found when it was built)");
    return NULL;
}

const char *be_cuda_device_name(const be *b) {
    (void)b;
    return NULL;
}

void be_cuda_profile_print(be *b, FILE *f, double peak_tflops, double peak_gbs) {
    (void)b;
    (void)f;
    (void)peak_tflops;
    (void)peak_gbs;
}
