/*
 * simt.h — control API of the SIMT emulator (tests/sim), the CPU stand-in for
 * an NVIDIA GPU that runs the real CUDA sources in kernels/ in CI.  Plain C.
 *
 * The emulator provides its own cuda_runtime.h, cuda_fp16.h, cuda_bf16.h,
 * cublas_v2.h, cublasLt.h and nccl.h (tests/sim/include): kernels are
 * compiled by the host C++ compiler and each block's threads run as fibers
 * (see docs/gpu.md "SIMT emulator" for what that proves and what it cannot).
 *
 * Environment (read at the first CUDA call):
 *   SIMT_CC=90        compute capability of the emulated device (70..90)
 *   SIMT_DEVICES=1    number of devices (0: cudaGetDeviceCount reports none)
 *   SIMT_SCHED=random thread order inside a block: random (seeded, default) or
 *                     fifo; blocks run in a random or in index order likewise
 *   SIMT_SEED=1       seed of the random schedules (reproducible)
 *   SIMT_EAGER=0      1: run work at enqueue time instead of at the next
 *                     synchronization (default: deferred, to expose missing syncs)
 *   SIMT_DIAG_ABORT=0 1: abort() at the first diagnostic (for a backtrace)
 *   SIMT_CUBLAS_F16_OVERFLOW=inf  fp32->fp16 conversion of the cuBLAS shim
 *                     (inputs in *_FAST_16F, fp16 outputs): "inf" (round to
 *                     nearest, overflow to +-Inf) or "saturate" (clamp to +-65504)
 *   SIMT_RECORD=file  append one line per (kernel, check) (simt_check_record)
 */
#ifndef SIMT_H
#define SIMT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Device model: compute capability as 10*major+minor.  Changing it resets
 * nothing else (allocations stay valid); used to test the 7.0 and 9.0 paths
 * in one process. */
void simt_set_compute_capability(int cc);
int simt_compute_capability(void);

/* Undefined-behaviour reports (shuffle from an inactive lane, divergent
 * barriers, deadlocks, bad launch pointers, ...): each is printed to stderr
 * (the first 20) and counted.  A test fails when this is not 0. */
long simt_diagnostics(void);
/* 0: count diagnostics without printing them (tests that provoke them on
 * purpose); returns the previous setting (1 = print, the default). */
int simt_print_diagnostics(int on);

/* Live allocations made through cudaMalloc / cudaMallocHost / cudaHostAlloc /
 * cudaMallocManaged (for leak checks). */
long simt_live_allocations(void);

/* Failure injection: the allocation after the next `after` ones (cudaMalloc,
 * cudaMallocHost, ...) fails with cudaErrorMemoryAllocation; -1 turns it
 * off.  Tests error paths such as a failed second allocation. */
void simt_inject_alloc_failure(long after);

/* Kernel bookkeeping for the per-kernel error table: the kernels that ran
 * since the last kernel launch that preceded a check are attributed this
 * check (its name, its error relative to the CPU reference, its tolerance,
 * pass/fail): consecutive checks of one op's outputs all count for its
 * kernels.  With SIMT_RECORD set, one line per kernel goes to that file. */
void simt_check_record(const char *check, double err, double tol, int pass);
/* Number of distinct kernels launched so far, and the launches of one. */
int simt_kernels_launched(void);
long simt_kernel_launches(const char *name);

/* Host synchronizations so far, the calls that drain the device's queue:
 * cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize on an
 * event with no work enqueued after it on its stream, blocking cudaMemcpy /
 * cudaMemset, cudaMemcpyAsync from the device to pageable host memory (it
 * returns when the copy is done), cudaMemcpy{To,From}Symbol,
 * cudaFree / cudaFreeHost of a live pointer; and the name of the last one.
 * The trainer's "no host sync between log intervals" test reads them
 * (through the backend's host_syncs).  simt_host_waits: cudaEventSynchronize
 * on an event with later work behind it (bounded waits, not drains). */
long simt_host_syncs(void);
const char *simt_host_sync_last(void);
long simt_host_waits(void);

/* fp32 -> fp16 conversion of the cuBLAS shim for *_FAST_16F compute types:
 * 0 = round to nearest, overflow to Inf (the default), 1 = saturate to
 * +-65504.  Returns the previous mode. */
int simt_cublas_f16_saturate(int on);

#ifdef __cplusplus
}
#endif
#endif
