/* emu_runtime.cpp — CUDA error semantics (last error, sticky launch failures), the violation log, device
 * queries describing an sm_90 part, and streams/events, which exist but are synchronous. */
#include "emu_internal.h"

#include <time.h>

#include <set>

namespace {

cudaError_t g_last = cudaSuccess, g_sticky = cudaSuccess;
int g_nviol, g_nwarn, g_quiet;
char g_last_viol[2048], g_last_warn[1200];

struct EmuStream { unsigned flags; };
struct EmuEvent { double t; bool recorded; unsigned flags; };
std::set<const void *> g_streams, g_events;

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool valid_stream(cudaStream_t s) {
    return !s || s == cudaStreamLegacy || s == cudaStreamPerThread || g_streams.count((const void *)s);
}

} // namespace

unsigned long long emu_count_mallocs, emu_count_syncs;

/* ---- errors and the violation log ----------------------------------------------------------------------- */
cudaError_t emu_error(cudaError_t e) {
    if (e != cudaSuccess) g_last = e;
    return e;
}
cudaError_t emu_sticky(void) { return g_sticky; }
void emu_set_sticky(cudaError_t e) { if (!g_sticky) g_sticky = e; }
void emu_reset_errors(void) { g_last = g_sticky = cudaSuccess; }

void emu_vviolation(cudaError_t sticky, const char *fmt, va_list ap) {
    char ctx[512], msg[1400];
    emu_context(ctx, sizeof ctx);
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(g_last_viol, sizeof g_last_viol, "%s%s%s", ctx, ctx[0] ? ": " : "", msg);
    g_nviol++;
    if (!g_quiet) fprintf(stderr, "cuda_emu: violation: %s\n", g_last_viol);
    if (sticky != cudaSuccess) {
        emu_set_sticky(sticky);
        emu_error(sticky);
    }
}

void emu_violation(cudaError_t sticky, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emu_vviolation(sticky, fmt, ap);
    va_end(ap);
}

void emu_warning(const char *fmt, ...) {
    char ctx[512], msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emu_context(ctx, sizeof ctx);
    snprintf(g_last_warn, sizeof g_last_warn, "%s%s%s", ctx, ctx[0] ? ": " : "", msg);
    if (!g_quiet && g_nwarn < 10) fprintf(stderr, "cuda_emu: warning: %s\n", g_last_warn);
    g_nwarn++;
}

int cuda_emu_violation_count(void) { return g_nviol; }
const char *cuda_emu_last_violation(void) { return g_last_viol; }
int cuda_emu_warning_count(void) { return g_nwarn; }
const char *cuda_emu_last_warning(void) { return g_last_warn; }
void cuda_emu_clear_log(void) { g_nviol = g_nwarn = 0; g_last_viol[0] = g_last_warn[0] = 0; }
void cuda_emu_clear_error(void) { emu_reset_errors(); }
void cuda_emu_set_quiet(int quiet) { g_quiet = quiet; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define E(x) case x: return #x;
        E(cudaSuccess) E(cudaErrorInvalidValue) E(cudaErrorMemoryAllocation) E(cudaErrorInitializationError)
        E(cudaErrorInvalidConfiguration) E(cudaErrorInvalidPitchValue) E(cudaErrorInvalidSymbol)
        E(cudaErrorInvalidDevicePointer) E(cudaErrorInvalidMemcpyDirection) E(cudaErrorInvalidDeviceFunction)
        E(cudaErrorNoDevice) E(cudaErrorInvalidDevice) E(cudaErrorInvalidResourceHandle) E(cudaErrorIllegalState)
        E(cudaErrorNotReady) E(cudaErrorIllegalAddress) E(cudaErrorLaunchOutOfResources) E(cudaErrorAssert)
        E(cudaErrorMisalignedAddress) E(cudaErrorLaunchFailure) E(cudaErrorNotSupported)
        E(cudaErrorStreamCaptureUnsupported) E(cudaErrorStreamCaptureInvalidated) E(cudaErrorUnknown)
#undef E
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return cudaGetErrorName(e);
    }
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = g_sticky;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_last; }
cudaError_t cudaDeviceSynchronize(void) {
    if (emu_capture_prohibits("cudaDeviceSynchronize")) return emu_error(cudaErrorStreamCaptureUnsupported);
    emu_count_syncs++;
    return g_sticky;
}

cudaError_t cudaDeviceReset(void) {
    emu_mem_free_all();
    emu_reset_errors();
    return cudaSuccess;
}

/* ---- device ----------------------------------------------------------------------------------------------- */
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return g_sticky; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? g_sticky : emu_error(cudaErrorInvalidDevice); }
cudaError_t cudaRuntimeGetVersion(int *v) { *v = 13000; return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int *v) { *v = 13000; return cudaSuccess; }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d != 0) return emu_error(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator on the CPU (sm_90 limits)");
    p->totalGlobalMem = (size_t)8 << 30;
    p->sharedMemPerBlock = 49152;
    p->sharedMemPerBlockOptin = 232448;
    p->sharedMemPerMultiprocessor = 233472;
    p->totalConstMem = 65536;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
    p->clockRate = 1980000;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->maxThreadsPerMultiProcessor = 2048;
    p->l2CacheSize = 50 << 20;
    p->memoryBusWidth = 5120;
    p->concurrentKernels = 1;
    p->unifiedAddressing = 1;
    p->canMapHostMemory = 1;
    return g_sticky;
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
    if (d != 0) return emu_error(cudaErrorInvalidDevice);
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *v = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *v = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *v = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *v = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *v = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *v = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrClockRate: *v = p.clockRate; break;
    case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
    case cudaDevAttrL2CacheSize: *v = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *v = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *v = (int)p.sharedMemPerMultiprocessor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = (int)p.sharedMemPerBlockOptin; break;
    default: return emu_error(cudaErrorInvalidValue);
    }
    return g_sticky;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    const size_t total = (size_t)8 << 30, used = emu_mem_in_use();
    *total_bytes = total;
    *free_bytes = used < total ? total - used : 0;
    return g_sticky;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    if (g_sticky) return g_sticky;
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || value > 232448) {
            emu_violation(cudaSuccess, "cudaFuncSetAttribute: %d bytes of dynamic shared memory exceed the sm_90 maximum of 232448", value);
            return emu_error(cudaErrorInvalidValue);
        }
        emu_sched_set_func_smem(func, value);
        return cudaSuccess;
    }
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return value >= -1 && value <= 100 ? cudaSuccess : emu_error(cudaErrorInvalidValue);
    return emu_error(cudaErrorInvalidValue);
}

/* ---- streams and events: everything runs at the call, so they only keep their identity and timestamps */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    if (g_sticky) return g_sticky;
    EmuStream *x = new EmuStream{flags};
    g_streams.insert(x);
    *s = (cudaStream_t)x;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s || !g_streams.count((const void *)s)) return emu_error(cudaErrorInvalidResourceHandle);
    g_streams.erase((const void *)s);
    delete (EmuStream *)s;
    return g_sticky;
}
cudaError_t cudaStreamQuery(cudaStream_t s) { return valid_stream(s) ? g_sticky : emu_error(cudaErrorInvalidResourceHandle); }
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (cuda_emu_stream_capturing(s)) {
        emu_capture_invalidate(s, "cudaStreamSynchronize of the capturing stream");
        return emu_error(cudaErrorStreamCaptureUnsupported);
    }
    if (emu_capture_prohibits("cudaStreamSynchronize")) return emu_error(cudaErrorStreamCaptureUnsupported);
    emu_count_syncs++;
    return cudaStreamQuery(s);
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
    if (!valid_stream(s) || !g_events.count((const void *)e)) return emu_error(cudaErrorInvalidResourceHandle);
    return g_sticky;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    if (g_sticky) return g_sticky;
    EmuEvent *x = new EmuEvent{0, false, flags};
    g_events.insert(x);
    *e = (cudaEvent_t)x;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!g_events.count((const void *)e)) return emu_error(cudaErrorInvalidResourceHandle);
    g_events.erase((const void *)e);
    delete (EmuEvent *)e;
    return g_sticky;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (!g_events.count((const void *)e) || !valid_stream(s)) return emu_error(cudaErrorInvalidResourceHandle);
    ((EmuEvent *)e)->t = now_s();
    ((EmuEvent *)e)->recorded = true;
    return g_sticky;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    emu_count_syncs++;
    return g_events.count((const void *)e) ? g_sticky : emu_error(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return g_events.count((const void *)e) ? g_sticky : emu_error(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!g_events.count((const void *)a) || !g_events.count((const void *)b)) return emu_error(cudaErrorInvalidResourceHandle);
    const EmuEvent *x = (const EmuEvent *)a, *y = (const EmuEvent *)b;
    if ((x->flags | y->flags) & cudaEventDisableTiming) return emu_error(cudaErrorInvalidResourceHandle);
    if (!x->recorded || !y->recorded) return emu_error(cudaErrorInvalidResourceHandle);
    *ms = (float)((y->t - x->t) * 1e3);
    return g_sticky;
}
