/* emu_runtime.h — the CUDA runtime API of the emulator (memory, errors, streams, events, launches) and
 * the emulator's own controls for tests (schedules, violation log, statistics). Included via cuda_emu.h. */
#ifndef CUDA_EMU_RUNTIME_H
#define CUDA_EMU_RUNTIME_H

#include "emu_device.h"

#include <functional>
#include <memory>
#include <tuple>
#include <utility>

/* ---- types (values as in the CUDA 13 headers) ---------------------------------------------------- */
enum cudaError {
    cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9, cudaErrorInvalidPitchValue = 12, cudaErrorInvalidSymbol = 13,
    cudaErrorInvalidDevicePointer = 17, cudaErrorInvalidMemcpyDirection = 21, cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100, cudaErrorInvalidDevice = 101, cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalState = 401, cudaErrorNotReady = 600, cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701, cudaErrorAssert = 710, cudaErrorMisalignedAddress = 716,
    cudaErrorLaunchFailure = 719, cudaErrorNotSupported = 801, cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901, cudaErrorUnknown = 999
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3, cudaMemcpyDefault = 4
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8, cudaFuncAttributePreferredSharedMemoryCarveout = 9 };
enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1, cudaDevAttrMaxBlockDimX = 2, cudaDevAttrMaxBlockDimY = 3,
    cudaDevAttrMaxBlockDimZ = 4, cudaDevAttrMaxGridDimX = 5, cudaDevAttrMaxGridDimY = 6, cudaDevAttrMaxGridDimZ = 7,
    cudaDevAttrMaxSharedMemoryPerBlock = 8, cudaDevAttrWarpSize = 10, cudaDevAttrClockRate = 13,
    cudaDevAttrMultiProcessorCount = 16, cudaDevAttrL2CacheSize = 38, cudaDevAttrMaxThreadsPerMultiProcessor = 39,
    cudaDevAttrComputeCapabilityMajor = 75, cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};
/* library_types.h */
enum cudaDataType_t {
    CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_8I = 3, CUDA_R_8U = 8, CUDA_R_32I = 10, CUDA_R_16BF = 14
};
typedef enum cudaDataType_t cudaDataType;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)

/* The fields the project reads; the values describe an sm_90 part (H100). */
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin, sharedMemPerMultiprocessor, totalConstMem;
    int regsPerBlock, warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3], clockRate;
    int major, minor, multiProcessorCount, maxThreadsPerMultiProcessor, l2CacheSize, memoryBusWidth;
    int concurrentKernels, unifiedAddressing, integrated, canMapHostMemory;
};

/* ---- runtime API --------------------------------------------------------------------------------- */
#define CUDA_EMU_CALLER const char *file_ = __builtin_FILE(), int line_ = __builtin_LINE()
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaDriverGetVersion(int *v);

cudaError_t cudaMalloc(void **p, size_t n, CUDA_EMU_CALLER);
template <typename T> static inline cudaError_t cudaMalloc(T **p, size_t n, CUDA_EMU_CALLER) {
    return cudaMalloc((void **)p, n, file_, line_);
}
cudaError_t cudaFree(void *p);
/* stream-ordered allocation: synchronous here, so the same as cudaMalloc / cudaFree */
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s, CUDA_EMU_CALLER);
template <typename T> static inline cudaError_t cudaMallocAsync(T **p, size_t n, cudaStream_t s, CUDA_EMU_CALLER) {
    return cudaMallocAsync((void **)p, n, s, file_, line_);
}
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);
cudaError_t cudaMallocHost(void **p, size_t n);
template <typename T> static inline cudaError_t cudaMallocHost(T **p, size_t n) { return cudaMallocHost((void **)p, n); }
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void *dst, int value, size_t n);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t s = 0);
cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height, cudaMemcpyKind kind);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s = 0);

/* __device__ / __constant__ variables are ordinary globals here; the symbol calls copy into them and
 * register their range so a pointer from cudaGetSymbolAddress may be passed to a kernel. */
cudaError_t cuda_emu_symbol_copy(void *sym, size_t sym_size, void *host, size_t n, size_t off, int to_symbol);
void cuda_emu_register_symbol(const void *p, size_t n);
template <typename T> static inline cudaError_t cudaMemcpyToSymbol(const T &sym, const void *src, size_t n, size_t off = 0,
                                                                   cudaMemcpyKind = cudaMemcpyHostToDevice) {
    return cuda_emu_symbol_copy((void *)&sym, sizeof(T), (void *)src, n, off, 1);
}
template <typename T> static inline cudaError_t cudaMemcpyFromSymbol(void *dst, const T &sym, size_t n, size_t off = 0,
                                                                     cudaMemcpyKind = cudaMemcpyDeviceToHost) {
    return cuda_emu_symbol_copy((void *)&sym, sizeof(T), dst, n, off, 0);
}
template <typename T> static inline cudaError_t cudaGetSymbolAddress(void **p, const T &sym) {
    cuda_emu_register_symbol(&sym, sizeof(T));
    *p = (void *)&sym;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);

/* CUDA graphs by stream capture (emu_graph.cpp): a capturing stream records its work as nodes; cudaGraphLaunch runs
 * them in order. Capture rules as CUDA's (see there). */
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
/* emulator side: a node runs on the stream the graph is launched on */
typedef std::function<void(cudaStream_t)> cuda_emu_node;
int cuda_emu_stream_capturing(cudaStream_t s);
void cuda_emu_capture_node(cudaStream_t s, const char *what, cuda_emu_node fn);
size_t cuda_emu_graph_nodes(cudaGraphExec_t exec);  /* for tests */

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value);
template <typename... P> static inline cudaError_t cudaFuncSetAttribute(void (*func)(P...), cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)func, attr, value);
}

/* ---- launches --------------------------------------------------------------------------------------
 * CUDA_LAUNCH (cuda_portable.h) expands to cuda_emu_launch(): the arguments are converted to the
 * kernel's parameter types once (as the triple-chevron launch does), pointer parameters are checked
 * against device memory, and every CUDA thread calls the kernel with its own copy of the parameters. */
struct cuda_emu_launch_desc {
    const char *name, *file;
    int line;
    const void *func;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    void (*thunk)(void *ctx);
    void *ctx;
    int nptr;                  /* pointer parameters: their positions and values */
    const int *ptr_index;
    const void *const *ptr_value;
};
void cuda_emu_launch_run(const cuda_emu_launch_desc *d);
extern unsigned char *cuda_emu_dynamic_smem; /* base of the running block's dynamic shared memory */

namespace cuda_emu_detail {
template <typename T> constexpr bool is_data_ptr = std::is_pointer<T>::value && !std::is_function<std::remove_pointer_t<T>>::value;
template <typename Tup, size_t... I>
static inline int collect_ptrs(const Tup &t, int *idx, const void **val, std::index_sequence<I...>) {
    int n = 0;
    (void)idx;
    (void)val;
    (void)std::initializer_list<int>{([&] {
        using E = std::tuple_element_t<I, Tup>;
        if constexpr (is_data_ptr<E>) { idx[n] = (int)I; val[n] = (const void *)std::get<I>(t); n++; }
    }(), 0)...};
    return n;
}
} // namespace cuda_emu_detail

template <typename... P, typename... A>
static inline void cuda_emu_launch(const char *name, const char *file, int line, void (*kernel)(P...), dim3 grid,
                                   dim3 block, size_t smem, cudaStream_t stream, A &&...args) {
    static_assert(sizeof...(P) == sizeof...(A), "CUDA_LAUNCH: the number of arguments differs from the kernel's parameters");
    using Params = std::tuple<std::decay_t<P>...>;
    struct Ctx { void (*k)(P...); Params *p; };
    /* runs the launch with its converted parameters on stream s */
    auto run = [=](Params *params, cudaStream_t s) {
        Ctx ctx{kernel, params};
        int idx[sizeof...(P) + 1];
        const void *val[sizeof...(P) + 1];
        cuda_emu_launch_desc d;
        d.name = name; d.file = file; d.line = line; d.func = (const void *)kernel;
        d.grid = grid; d.block = block; d.smem = smem; d.stream = s;
        d.thunk = [](void *c) { Ctx *x = (Ctx *)c; std::apply(x->k, *x->p); };
        d.ctx = &ctx;
        d.nptr = cuda_emu_detail::collect_ptrs(*params, idx, val, std::index_sequence_for<P...>{});
        d.ptr_index = idx;
        d.ptr_value = val;
        cuda_emu_launch_run(&d);
    };
    if (cuda_emu_stream_capturing(stream)) { /* a graph node keeps its own copy of the parameters */
        auto held = std::make_shared<Params>(std::forward<A>(args)...);
        cuda_emu_capture_node(stream, name, [run, held](cudaStream_t s) { run(held.get(), s); });
        return;
    }
    Params params(std::forward<A>(args)...);
    run(&params, stream);
}

/* ---- emulator controls, for tests ---------------------------------------------------------------------
 * Schedules: CUDA_EMU_SCHED=inorder|reverse|random|greedy (default inorder), CUDA_EMU_SEED=<n> for random.
 * greedy: after every wake-up the lowest-numbered runnable thread runs, so warp 0 runs ahead of the others to
 * the next __syncthreads (maximal skew between warps: finds missing barriers between pipeline stages).
 * A violation (misuse the emulator detected: divergent barrier, mask mismatch, deadlock, fault in a guard
 * page, host pointer argument, bad launch ...) is logged, printed to stderr unless quiet, and stops the
 * launch with a sticky error; cudaDeviceReset() (or cuda_emu_clear_error) clears it. A warning is
 * logged but does not stop anything (a lane read from a lane that did not take part gets poison). */
int cuda_emu_violation_count(void);
const char *cuda_emu_last_violation(void);   /* "" if none */
int cuda_emu_warning_count(void);
const char *cuda_emu_last_warning(void);
void cuda_emu_clear_log(void);               /* counts and messages */
void cuda_emu_clear_error(void);             /* sticky and last error, keeping memory (unlike cudaDeviceReset) */
void cuda_emu_set_quiet(int quiet);          /* 1: do not print violations and warnings */
enum cuda_emu_sched { CUDA_EMU_INORDER, CUDA_EMU_REVERSE, CUDA_EMU_RANDOM, CUDA_EMU_GREEDY };
enum cuda_emu_sched cuda_emu_schedule(void);
const char *cuda_emu_schedule_name(void);    /* "inorder", "reverse", "random", "greedy" */
unsigned cuda_emu_seed(void);
void cuda_emu_set_schedule(enum cuda_emu_sched s, unsigned seed);
/* launches: kernels run (graph nodes included); graph_launches: cudaGraphLaunch calls; mallocs: cudaMalloc and
 * cudaMallocHost/HostAlloc calls; syncs: host waits (stream, device and event synchronisation, synchronous copies) */
struct cuda_emu_stats { unsigned long long launches, blocks, threads, switches, graph_launches, mallocs, syncs; };
void cuda_emu_get_stats(struct cuda_emu_stats *s);
/* Launches per kernel since the last reset, by the name CUDA_LAUNCH gave the kernel (launch-count tests): fills up
 * to cap entries, returns the number of distinct kernels; reset != 0 starts counting afresh. */
int cuda_emu_launch_counts(const char **names, unsigned long long *counts, int cap, int reset);
int cuda_emu_is_device_ptr(const void *p, size_t n); /* 1 if [p, p+n) lies in one live device allocation */

#endif
