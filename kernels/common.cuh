/*
 * common.cuh — shared by the kernels/ sources: error macros, launch
 * helpers, warp/block reductions.
 *
 * Kernels are launched only through MILES_LAUNCH (below), so the same
 * sources build with nvcc and run in the SIMT emulator (tests/sim).
 *
 * Two families of error macros:
 *   MILES_CUDA_TRY / MILES_CUBLAS_TRY / MILES_LAUNCH_CHECK — library code:
 *     set miles_error("file:line: call: reason") and RETURN a MILES_* code;
 *   CUDA_CHECK / CUBLAS_CHECK — test programs only: print file:line and abort.
 */
#ifndef MILES_CUDA_COMMON_CUH
#define MILES_CUDA_COMMON_CUH

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "internal.h"
}
#include "cuda_ops.h"

/* ------------------------------------------------------ library errors */
static inline int miles_cuda_status_code(cudaError_t e) {
    switch (e) {
    case cudaErrorMemoryAllocation: return MILES_ENOMEM;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorInvalidDevice: return MILES_EUNSUPPORTED;
    default: return MILES_EINTERNAL;
    }
}

static inline int miles_cuda_fail(cudaError_t e, const char *file, int line, const char *what) {
    return miles_error(miles_cuda_status_code(e), "%s:%d: %s: %s (%s)", file, line, what,
                       cudaGetErrorString(e), cudaGetErrorName(e));
}

static inline int miles_cublas_fail(cublasStatus_t s, const char *file, int line, const char *what) {
    int code = s == CUBLAS_STATUS_ALLOC_FAILED ? MILES_ENOMEM
             : s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_ARCH_MISMATCH ? MILES_EUNSUPPORTED
             : s == CUBLAS_STATUS_INVALID_VALUE ? MILES_EINVAL
             : MILES_EINTERNAL;
    return miles_error(code, "%s:%d: %s: %s", file, line, what, cublasGetStatusString(s));
}

#define MILES_CUDA_TRY(expr)                                                        \
    do {                                                                            \
        cudaError_t _e = (expr);                                                    \
        if (_e != cudaSuccess) return miles_cuda_fail(_e, __FILE__, __LINE__, #expr); \
    } while (0)

#define MILES_CUBLAS_TRY(expr)                                                      \
    do {                                                                            \
        cublasStatus_t _s = (expr);                                                 \
        if (_s != CUBLAS_STATUS_SUCCESS)                                            \
            return miles_cublas_fail(_s, __FILE__, __LINE__, #expr);                \
    } while (0)

/* After a <<<>>> launch: reports configuration/launch errors (no sync). */
#define MILES_LAUNCH_CHECK(name)                                                    \
    do {                                                                            \
        cudaError_t _e = cudaGetLastError();                                        \
        if (_e != cudaSuccess) return miles_cuda_fail(_e, __FILE__, __LINE__, name); \
    } while (0)

/* Argument checks shared by the ops: negative sizes are caller bugs. */
#define MILES_CUDA_REQUIRE(cond, ...)                                               \
    do {                                                                            \
        if (!(cond)) return miles_error(MILES_EINVAL, __VA_ARGS__);                 \
    } while (0)

/* --------------------------------------------------- test-only aborts */
#define CUDA_CHECK(expr)                                                            \
    do {                                                                            \
        cudaError_t _e = (expr);                                                    \
        if (_e != cudaSuccess) {                                                    \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,           \
                    cudaGetErrorString(_e));                                        \
            abort();                                                                \
        }                                                                           \
    } while (0)

#define CUBLAS_CHECK(expr)                                                          \
    do {                                                                            \
        cublasStatus_t _s = (expr);                                                 \
        if (_s != CUBLAS_STATUS_SUCCESS) {                                          \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,           \
                    cublasGetStatusString(_s));                                     \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* ------------------------------------------------------- launch helpers */
#define MILES_CUDA_THREADS 256

/* The one way kernels are launched, for nvcc and for the SIMT emulator
 * (tests/sim, which compiles these same sources with the host compiler):
 *     MILES_LAUNCH(kernel, grid, block, smem, stream, args...);
 * runs kernel<<<grid, block, smem, stream>>>(args...) and, if the launch
 * fails, returns from the calling function with a MILES_* status whose
 * message names the kernel.  With the emulator's cuda_runtime.h
 * (SIMT_EMULATOR) the same line hands the kernel, its configuration and
 * its arguments to simt_launch().  A kernel written as a template with
 * several arguments needs parentheses or a typedef (the commas). */
#ifdef SIMT_EMULATOR
#define MILES_KERNEL_CALL(kernel, grid, block, smem, stream, ...)                  \
    simt_launch(#kernel, kernel, grid, block, smem, stream, ##__VA_ARGS__)
#else
#define MILES_KERNEL_CALL(kernel, grid, block, smem, stream, ...)                  \
    kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#endif
#define MILES_LAUNCH(kernel, grid, block, smem, stream, ...)                       \
    do {                                                                            \
        MILES_KERNEL_CALL(kernel, grid, block, smem, stream, ##__VA_ARGS__);        \
        MILES_LAUNCH_CHECK(#kernel);                                                \
    } while (0)
/* The same through a kernel function pointer `fn` (a template kernel with
 * several template arguments: `auto fn = k<A, B>;`), `name` naming it for
 * the error message and the emulator's per-kernel table ("k<A,B>"). */
#ifdef SIMT_EMULATOR
#define MILES_LAUNCH_FN(name, fn, grid, block, smem, stream, ...)                  \
    do {                                                                            \
        simt_launch(name, fn, grid, block, smem, stream, ##__VA_ARGS__);            \
        MILES_LAUNCH_CHECK(name);                                                   \
    } while (0)
#else
#define MILES_LAUNCH_FN(name, fn, grid, block, smem, stream, ...)                  \
    do {                                                                            \
        fn<<<grid, block, smem, stream>>>(__VA_ARGS__);                             \
        MILES_LAUNCH_CHECK(name);                                                   \
    } while (0)
#endif

/* Dynamic shared memory (the launch's smem bytes) as a T array:
 *     MILES_DYNAMIC_SHARED(float, tile);
 * `extern __shared__ T name[]` has no host-compiler spelling, so kernels use
 * this; all such arrays alias, as in CUDA. */
#ifdef SIMT_EMULATOR
#define MILES_DYNAMIC_SHARED(T, name) SIMT_DYNAMIC_SHARED(T, name)
#else
#define MILES_DYNAMIC_SHARED(T, name)                                               \
    extern __shared__ __align__(16) unsigned char miles_dynamic_smem_[];           \
    T *name = reinterpret_cast<T *>(miles_dynamic_smem_)
#endif

static inline cudaStream_t miles_stream(miles_cuda_stream s) { return (cudaStream_t)s; }

/* Tests and benchmarks on a machine the runtime sees no GPU on: they exit
 * with host_status ("no CUDA device": skipped), unless MILES_CUDA_REQUIRE_DEVICE=1
 * (tools/gpu-check sets it): then the missing device is a FAIL, exit 1. */
static inline int miles_cuda_no_device_exit(int host_status) {
    const char *r = getenv("MILES_CUDA_REQUIRE_DEVICE");
    if (r && r[0] == '1') {
        printf("FAIL no CUDA device, and MILES_CUDA_REQUIRE_DEVICE=1 (driver too old for this toolkit?)\n");
        return 1;
    }
    return host_status;
}

/* Blocks for a grid-stride loop over n elements (capped: the loop covers the
 * rest, and a fixed cap keeps tiny-launch overhead predictable). */
static inline unsigned miles_grid(size_t n, unsigned threads = MILES_CUDA_THREADS) {
    size_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return (unsigned)b;
}

#define MILES_GRID_STRIDE(i, n)                                                     \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n); \
         i += (size_t)gridDim.x * blockDim.x)

/* ---------------------------------------------------------- reductions */
__device__ __forceinline__ float miles_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float miles_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ double miles_warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the whole block (blockDim.x a multiple of 32, <= 1024); every
 * thread gets the result.  `shared` holds 32 floats. */
__device__ __forceinline__ float miles_block_sum(float v, float *shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int nwarps = (blockDim.x + 31) >> 5;
    v = miles_warp_sum(v);
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nwarps ? shared[lane] : 0.0f;
    return miles_warp_sum(v);
}
__device__ __forceinline__ double miles_block_sum_d(double v, double *shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int nwarps = (blockDim.x + 31) >> 5;
    v = miles_warp_sum_d(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nwarps ? shared[lane] : 0.0;
    return miles_warp_sum_d(v);
}

/* Column sums of a row-major [N,C] matrix accumulated into out[C]
 * (out[c] += sum_n x[n,c]), deterministic, defined in layernorm.cu and used
 * by linear_backward for the bias gradient. */
int miles_cuda_colsum_accumulate(float *out, const float *x, int N, int C, cudaStream_t s);

/* This thread's cuBLAS handle bound to `s` (gemm.cu); created on first use. */
int miles_cuda_cublas(cublasHandle_t *h, cudaStream_t s);

#endif
