/*
 * simt_internal.h — shared by the emulator's sources (simt_core.cpp: fibers
 * and the scheduler; simt_runtime.cpp: memory, streams, events; simt_blas.cpp:
 * the cuBLAS / cuBLASLt shim; simt_nccl.cpp).  Not for test programs.
 */
#ifndef SIMT_INTERNAL_H
#define SIMT_INTERNAL_H

#include "cuda_runtime.h"

#include <functional>
#include <mutex>

namespace simt {

/* One lock around the whole emulated device: runtime calls, stream
 * flushes and kernel execution (static __shared__ storage is shared). */
std::recursive_mutex &device_lock();
typedef std::lock_guard<std::recursive_mutex> Guard;

/* ------------------------------------------------------------- errors */
/* Every runtime entry point starts with this: a sticky error (a failed
 * kernel) is returned by every later call, as on the GPU. */
cudaError_t sticky_error();
void set_sticky_error(cudaError_t e);
cudaError_t set_last_error(cudaError_t e); /* records it for cudaGetLastError, returns e */

/* Undefined behaviour / misuse report: printed (first 20) and counted. */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool diag_printing(); /* simt_print_diagnostics() */

/* ---------------------------------------------------------- device */
struct Config {
    int cc;          /* 10*major + minor */
    int devices;     /* 0: no device */
    int random;      /* random schedule inside blocks and of blocks */
    uint64_t seed;
    int eager;       /* run stream work at enqueue time */
    int diag_abort;
    int f16_saturate;
};
Config &config();
size_t max_shared_optin(); /* per block, bytes, for the configured cc */

/* ---------------------------------------------------------- memory */
enum AllocKind { A_NONE = 0, A_DEVICE, A_PINNED, A_MANAGED, A_REGISTERED };
/* Kind of the allocation holding [p, p+n) (A_NONE: not inside one). */
AllocKind find_alloc(const void *p, size_t n);
static inline bool device_accessible(AllocKind k) { return k != A_NONE; }

/* ---------------------------------------------------------- streams */
struct Stream;
/* Resolves NULL / cudaStreamLegacy / cudaStreamPerThread / a created stream;
 * NULL with *err = cudaErrorInvalidResourceHandle for anything else. */
Stream *resolve_stream(cudaStream_t s, cudaError_t *err);
/* Appends work (run at the next synchronization that covers the stream, or
 * at once with SIMT_EAGER=1). */
void enqueue(Stream *s, std::function<void()> op);
/* Runs everything enqueued on s so far. */
void flush(Stream *s);
void flush_all();

/* ---------------------------------------------------------- kernels */
void run_grid(const LaunchDesc &d);
void note_kernel_run(const char *name);
int max_dynamic_smem(const void *func);

} // namespace simt

#endif
