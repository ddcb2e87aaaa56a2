// emu_graph.cu — a kernel with an explicit stream for the graph-capture tests (test_emu_graph.cpp). Built by nvcc in
// `make cuda-check` too.
#include "kernels/cuda/cuda_portable.h"
#include "tests/emu/emu_graph_kernels.h"

__global__ void axpb_kernel(const float *x, float *y, float a, float b, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + b;
}

cudaError_t emu_graph_axpb(const float *x, float *y, float a, float b, int n, cudaStream_t s) {
    CUDA_LAUNCH(axpb_kernel, (n + 127) / 128, 128, 0, s, x, y, a, b, n);
    return cudaGetLastError();
}
