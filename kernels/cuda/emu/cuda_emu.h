/* cuda_emu.h — runs unchanged CUDA kernel sources on the CPU, so the GPU code is executed in `make test`.
 *
 * How a .cu file is built (details and rules: README.md in this folder)
 *   GPU build (nvcc):   nvcc -std=c++17 -I. -gencode arch=compute_90,code=sm_90 -c ops.cu
 *   Emulated build:     $(CXX) $(EMU_CXXFLAGS) -x c++ -c ops.cu      (Makefile variable), i.e.
 *                       g++ -std=c++17 -I. -Ikernels/cuda/emu -Ikernels/cuda/emu/include -include cuda_emu.h
 *                           -fstack-clash-protection -Wno-unknown-pragmas -x c++ -c ops.cu
 *   and link with $(EMU_LIB) (the runtime: emu_*.cpp) and $(LDLIBS).
 * The .cu file includes the real header names (<cuda_runtime.h>, <cuda_fp16.h>, <cuda_bf16.h>,
 * <cublas_v2.h>, <mma.h>); in the emulated build they resolve to kernels/cuda/emu/include/. Launches and
 * dynamic shared memory go through kernels/cuda/cuda_portable.h (CUDA_LAUNCH, CUDA_DYNAMIC_SHARED), the
 * only spellings that differ between the builds. Code that must differ tests `#ifdef CUDA_EMU` (inline
 * PTX such as mma.sync, ldmatrix, cp.async needs a twin written from the documented layout);
 * __CUDA_ARCH__ is not defined, because one g++ pass compiles host and device code together.
 *
 * Execution model
 *   One OS thread runs the blocks of a grid one after another (order: the schedule). Each CUDA thread
 *   of the running block is a fiber with its own stack (CUDA_EMU_STACK_KB, default 64, guard page
 *   below). A fiber runs until it blocks (__syncthreads, a warp collective, exit) and then hands the
 *   CPU straight to the next runnable fiber in schedule order: in-order, reverse, or seeded random
 *   (CUDA_EMU_SCHED, CUDA_EMU_SEED). threadIdx/blockIdx/blockDim/gridDim are globals it rewrites.
 *   __shared__ variables are `static thread_local`: one object per block, poisoned with 0xFF (NaN in
 *   every float format) before each block; dynamic shared memory ends at a guard page and is poisoned
 *   too. Warp collectives complete when every lane named in the mask has arrived (or exited); the
 *   last lane computes every result by the PTX rules. Memory from cudaMalloc sits between guard pages
 *   (within its 256-byte alignment of the rear one), is filled with 0xFF, and is kept inaccessible
 *   for a while after cudaFree.
 *   A fault in a guard page, a divergent or early-exit barrier, a mask mismatch, a deadlock, a host
 *   pointer argument or a bad launch is a *violation*: logged with kernel, block and thread, printed
 *   (unless cuda_emu_set_quiet), and the launch stops with a sticky error as on a GPU.
 *
 * What it cannot see: races between blocks (blocks run one at a time), lost updates of a shared
 * variable without atomics (a fiber is never interrupted between two blocking calls), memory-model
 * and stream-concurrency bugs, host pointers stored inside structs, accesses that land in another
 * live allocation, and reads of uninitialised registers. Run the same tests on a GPU under
 * compute-sanitizer for those.
 *
 * Pitfalls: __device__ functions in headers must be inline or static; host code in the same binary
 * must not rely on the contents of its own thread_local variables across a launch being untouched
 * *during* the launch (they are saved, poisoned, and restored when the launch returns). */
#ifndef CUDA_EMU_H
#define CUDA_EMU_H

#define CUDA_EMU 1

#include "emu_device.h"
#include "emu_fp16.h"
#include "emu_runtime.h"

#endif
