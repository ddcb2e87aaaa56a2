/* emu_graph_kernels.h — the launcher of tests/emu/emu_graph.cu: y[i] = a x[i] + b on stream s (device pointers). */
#ifndef TESTS_EMU_GRAPH_KERNELS_H
#define TESTS_EMU_GRAPH_KERNELS_H

#include <cuda_runtime.h>

cudaError_t emu_graph_axpb(const float *x, float *y, float a, float b, int n, cudaStream_t s);

#endif
