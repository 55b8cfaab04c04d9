/*
 * cuda_emu.h — host emulation of the few CUDA runtime calls that
 * kernels/model_cuda.cu makes, for tests/cuda/test_cuda_model_emu.cpp.
 *
 * With -DMILES_CUDA_HOST_EMULATION, model_cuda.cu includes this header instead
 * of common.cuh and is compiled by the host C++ compiler: "device" memory is
 * host memory (filled with NaN bytes on allocation, so a read of anything
 * never written shows up), copies are memcpy, streams and events do nothing,
 * and the *_cuda ops of cuda_ops.h are provided by the test program, which
 * implements them with the CPU reference ops.  This checks the driver's own
 * logic (arena layout, buffer rotation, batch packing and the embedding token
 * lists, the loss composition, the loss scaler flow, AdamW plumbing, errors)
 * on a machine without a GPU.  It does not check any kernel.
 *
 * tests/cuda/test_cuda_model.cu compiles against it too (the same flag), so
 * the GPU test's own logic (harness, expectations, tolerances) runs here
 * end to end; every precision then computes in fp32 on the CPU.
 */
#ifndef MILES_CUDA_EMU_H
#define MILES_CUDA_EMU_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "internal.h"
}
#include "cuda_ops.h"

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef enum cudaError { cudaSuccess = 0, cudaErrorMemoryAllocation = 2 } cudaError_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
};
#define cudaStreamNonBlocking 1
#define cudaEventDisableTiming 2

/* live "device" + pinned allocations, checked by the test for leaks */
extern long g_emu_live_allocs;

static inline cudaError_t emu_alloc(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xff, n); /* NaN floats, -1 ints */
    g_emu_live_allocs++;
    return cudaSuccess;
}
template <class T> static inline cudaError_t cudaMalloc(T **p, size_t n) { return emu_alloc((void **)p, n); }
template <class T> static inline cudaError_t cudaMallocHost(T **p, size_t n) { return emu_alloc((void **)p, n); }
static inline cudaError_t cudaFree(void *p) {
    if (p) g_emu_live_allocs--, free(p);
    return cudaSuccess;
}
static inline cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
    memmove(d, s, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    memmove(d, s, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) {
    memset(d, v, n);
    return cudaSuccess;
}
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = (cudaStream_t)(uintptr_t)0x5717ea;
    return cudaSuccess;
}
static inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    *e = (cudaEvent_t)(uintptr_t)0xe7e47;
    return cudaSuccess;
}
static inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaGetDevice(int *d) {
    *d = 0;
    return cudaSuccess;
}
static inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }
static inline const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }

static inline int miles_cuda_fail(cudaError_t e, const char *file, int line, const char *what) {
    return miles_error(e == cudaErrorMemoryAllocation ? MILES_ENOMEM : MILES_EINTERNAL, "%s:%d: %s: %s", file,
                       line, what, cudaGetErrorString(e));
}

#define MILES_CUDA_TRY(expr)                                                        \
    do {                                                                            \
        cudaError_t _e = (expr);                                                    \
        if (_e != cudaSuccess) return miles_cuda_fail(_e, __FILE__, __LINE__, #expr); \
    } while (0)

/* for tests/cuda/test_cuda_model.cu compiled in emulation: one "device" */
typedef struct {
    char name[256];
    size_t totalGlobalMem;
} cudaDeviceProp;
static inline cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
static inline int miles_cuda_no_device_exit(int host_status) { return host_status; } /* never: one device */
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    snprintf(p->name, sizeof p->name, "host emulation (CPU ops)");
    p->totalGlobalMem = 0;
    return cudaSuccess;
}
static inline cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
#define CUDA_CHECK(expr)                                                            \
    do {                                                                            \
        cudaError_t _e = (expr);                                                    \
        if (_e != cudaSuccess) {                                                    \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,           \
                    cudaGetErrorString(_e));                                        \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* model_cuda.cu's deterministic embedding backward, emulated by the test */
int miles_cuda_embedding_backward_csr(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                      const int32_t *uniq, int U, const int32_t *offs, const int32_t *pos,
                                      const int32_t *tt_offs, const int32_t *tt_pos, int TV, int B, int T,
                                      int C, cudaStream_t s);

#endif
