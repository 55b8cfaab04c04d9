/*
 * precision.cu — fp32 <-> fp16 / bf16 casts for mixed precision (fp32 master
 * weights, 16-bit copies for the GEMM inputs), and the run-time bf16 guard:
 * bf16 arithmetic needs sm80+ (Ampere); on a V100 (sm70) or T4 (sm75) the
 * bf16 paths refuse with a message instead of running slow emulation.
 */
#include "common.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

extern "C" int miles_cuda_require_bf16(void) {
    int cc = miles_cuda_compute_capability();
    if (cc < 0) return cc;
    if (cc < 80)
        return miles_error(MILES_EUNSUPPORTED,
                           "bf16 needs compute capability >= 8.0 (Ampere or newer); this device is"
                           " sm_%d: use fp16 (MILES_CUDA_MATH_FP16) or fp32", cc);
    return MILES_OK;
}

__global__ void f32_to_f16_kernel(__half *out, const float *in, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] = __float2half_rn(in[i]);
}
__global__ void f16_to_f32_kernel(float *out, const __half *in, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] = __half2float(in[i]);
}
__global__ void f32_to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(in[i]);
}
__global__ void bf16_to_f32_kernel(float *out, const __nv_bfloat16 *in, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] = __bfloat162float(in[i]);
}

#define LAUNCH_CAST(kernel, out, in, n, stream)                                     \
    do {                                                                            \
        if ((n) == 0) return MILES_OK;                                              \
        MILES_LAUNCH(kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), out, in, n); \
        return MILES_OK;                                                            \
    } while (0)

extern "C" int cast_f32_to_f16_cuda(uint16_t *out, const float *inp, size_t n,
                                    miles_cuda_stream stream) {
    LAUNCH_CAST(f32_to_f16_kernel, (__half *)out, inp, n, stream);
}
extern "C" int cast_f16_to_f32_cuda(float *out, const uint16_t *inp, size_t n,
                                    miles_cuda_stream stream) {
    LAUNCH_CAST(f16_to_f32_kernel, out, (const __half *)inp, n, stream);
}
extern "C" int cast_f32_to_bf16_cuda(uint16_t *out, const float *inp, size_t n,
                                     miles_cuda_stream stream) {
    MILES_TRY(miles_cuda_require_bf16());
    LAUNCH_CAST(f32_to_bf16_kernel, (__nv_bfloat16 *)out, inp, n, stream);
}
extern "C" int cast_bf16_to_f32_cuda(float *out, const uint16_t *inp, size_t n,
                                     miles_cuda_stream stream) {
    MILES_TRY(miles_cuda_require_bf16());
    LAUNCH_CAST(bf16_to_f32_kernel, out, (const __nv_bfloat16 *)inp, n, stream);
}
