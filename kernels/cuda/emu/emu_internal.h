/* emu_internal.h — what the emulator's runtime files share: error state, the violation log, the memory
 * registry and the scheduler's fault hooks. Not for kernel code. */
#ifndef CUDA_EMU_INTERNAL_H
#define CUDA_EMU_INTERNAL_H

#include "cuda_emu.h"

#include <stdarg.h>

/* ---- errors (emu_runtime.cpp) ----------------------------------------------------------------------
 * CUDA keeps a "last error" (returned and cleared by cudaGetLastError) and, after a failed launch, a
 * sticky error that every later call returns until cudaDeviceReset. */
cudaError_t emu_error(cudaError_t e);   /* record as last error (unless success) and return it */
cudaError_t emu_sticky(void);           /* the sticky error, or cudaSuccess */
void emu_set_sticky(cudaError_t e);
/* Log a violation ("what went wrong" is fmt; the running kernel, block and thread are prefixed). A
 * non-success `sticky` makes it a launch failure. */
void emu_violation(cudaError_t sticky, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void emu_vviolation(cudaError_t sticky, const char *fmt, va_list ap);
void emu_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void emu_reset_errors(void);

/* ---- scheduler (emu_sched.cpp) ----------------------------------------------------------------------- */
/* "kernel k (a.cu:12), block (1,0,0), thread (5,0,0)", or "" outside a kernel; returns buf. */
const char *emu_context(char *buf, size_t n);
int emu_in_kernel(void);
/* Stop the running launch from inside a fiber after a violation (sticky error already set). */
void emu_abort_launch(void) __attribute__((noreturn));
/* Describe an address inside a fiber stack guard or the dynamic-shared-memory guard; 0 if neither. */
int emu_sched_describe_fault(const void *addr, char *buf, size_t n);
void emu_sched_set_func_smem(const void *func, int bytes);
/* 1 if [p, p+n) lies in the running block's shared memory (its dynamic shared memory or the __shared__ variables). */
int emu_sched_is_shared(const void *p, size_t n);

/* ---- tensor-core twins (emu_tc.cpp) ------------------------------------------------------------------ */
/* A thread exits: copies it never waited for are reported (warning) and dropped. */
void emu_tc_thread_exit(unsigned linear);
/* A block starts: no thread has copies in flight. */
void emu_tc_reset(unsigned nthreads);

/* ---- graphs (emu_graph.cpp) ------------------------------------------------------------------------------ */
/* Marks the capture of stream s invalid (cudaStreamEndCapture will fail) and logs why as a warning. */
void emu_capture_invalidate(cudaStream_t s, const char *why);
/* A potentially unsafe call (allocation, free, synchronous copy or wait): invalidates every capture in global
 * mode; returns 1 if there was one (the call then fails with cudaErrorStreamCaptureUnsupported). */
int emu_capture_prohibits(const char *what);
unsigned long long emu_graph_launches(void);
/* counters of cuda_emu_stats kept by the runtime */
extern unsigned long long emu_count_mallocs, emu_count_syncs;

/* ---- memory (emu_memory.cpp) ------------------------------------------------------------------------- */
enum emu_mem_kind { EMU_MEM_NONE, EMU_MEM_DEVICE, EMU_MEM_PINNED, EMU_MEM_SYMBOL, EMU_MEM_FREED };
/* Classify [p, p+n): the kind of the allocation holding p (NONE if no allocation does). For DEVICE,
 * PINNED and SYMBOL, *fits says whether the whole range lies inside it; *desc gets a description. */
emu_mem_kind emu_mem_lookup(const void *p, size_t n, int *fits, char *desc, size_t desc_n);
/* Check a device range used by the runtime or cuBLAS: 1 if it lies in one live device allocation
 * (pinned host memory too when allow_pinned); else logs a violation naming `what` and returns 0. */
int emu_mem_check(const void *p, size_t n, int allow_pinned, const char *what);
int emu_mem_describe_fault(const void *addr, char *buf, size_t n);
/* After a launch: the slack bytes between an allocation's end and its guard page must still be poison. */
void emu_mem_check_tails(const void *const *ptrs, int n, const char *kernel);
void emu_mem_free_all(void);
size_t emu_mem_in_use(void);

#endif
