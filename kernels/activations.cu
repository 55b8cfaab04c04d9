/*
 * activations.cu — elementwise GELU (exact erf), ReLU, tanh, sigmoid and the
 * residual add, forward and backward, with the CPU's formulas verbatim
 * (libmiles/ops.c) so results agree to the last few ulps of erff/expf/tanhf.
 */
#include "common.cuh"

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    MILES_GRID_STRIDE(i, n) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    }
}
__global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t n) {
    MILES_GRID_STRIDE(i, n) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}
__global__ void relu_forward_kernel(float *out, const float *inp, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
/* uses the saved OUTPUT, like the CPU (in-place forward friendly) */
__global__ void relu_backward_kernel(float *dinp, const float *out, const float *dout, size_t n) {
    MILES_GRID_STRIDE(i, n) if (out[i] > 0.0f) dinp[i] += dout[i];
}
__global__ void tanh_forward_kernel(float *out, const float *inp, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] = tanhf(inp[i]);
}
__global__ void tanh_backward_kernel(float *dinp, const float *out, const float *dout, size_t n) {
    MILES_GRID_STRIDE(i, n) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}
__global__ void sigmoid_forward_kernel(float *out, const float *inp, size_t n) {
    /* exp overflow for very negative x gives 1/inf = 0, never NaN */
    MILES_GRID_STRIDE(i, n) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}
__global__ void sigmoid_backward_kernel(float *dinp, const float *out, const float *dout, size_t n) {
    MILES_GRID_STRIDE(i, n) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}
__global__ void residual_forward_kernel(float *out, const float *a, const float *b, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}
__global__ void residual_backward_kernel(float *da, float *db, const float *dout, size_t n) {
    MILES_GRID_STRIDE(i, n) {
        float d = dout[i];
        if (da) da[i] += d;
        if (db) db[i] += d;
    }
}

#define LAUNCH_EW(kernel, n, stream, ...)                                           \
    do {                                                                            \
        if ((n) == 0) return MILES_OK;                                              \
        MILES_LAUNCH(kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), __VA_ARGS__); \
        return MILES_OK;                                                            \
    } while (0)

extern "C" int gelu_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream s) {
    LAUNCH_EW(gelu_forward_kernel, n, s, out, inp, n);
}
extern "C" int gelu_backward_cuda(float *dinp, const float *inp, const float *dout, size_t n,
                                  miles_cuda_stream s) {
    if (!dinp) return MILES_OK;
    LAUNCH_EW(gelu_backward_kernel, n, s, dinp, inp, dout, n);
}
extern "C" int relu_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream s) {
    LAUNCH_EW(relu_forward_kernel, n, s, out, inp, n);
}
extern "C" int relu_backward_cuda(float *dinp, const float *out, const float *dout, size_t n,
                                  miles_cuda_stream s) {
    if (!dinp) return MILES_OK;
    LAUNCH_EW(relu_backward_kernel, n, s, dinp, out, dout, n);
}
extern "C" int tanh_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream s) {
    LAUNCH_EW(tanh_forward_kernel, n, s, out, inp, n);
}
extern "C" int tanh_backward_cuda(float *dinp, const float *out, const float *dout, size_t n,
                                  miles_cuda_stream s) {
    if (!dinp) return MILES_OK;
    LAUNCH_EW(tanh_backward_kernel, n, s, dinp, out, dout, n);
}
extern "C" int sigmoid_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream s) {
    LAUNCH_EW(sigmoid_forward_kernel, n, s, out, inp, n);
}
extern "C" int sigmoid_backward_cuda(float *dinp, const float *out, const float *dout, size_t n,
                                     miles_cuda_stream s) {
    if (!dinp) return MILES_OK;
    LAUNCH_EW(sigmoid_backward_kernel, n, s, dinp, out, dout, n);
}
extern "C" int residual_forward_cuda(float *out, const float *a, const float *b, size_t n,
                                     miles_cuda_stream s) {
    LAUNCH_EW(residual_forward_kernel, n, s, out, a, b, n);
}
extern "C" int residual_backward_cuda(float *da, float *db, const float *dout, size_t n,
                                      miles_cuda_stream s) {
    if (!da && !db) return MILES_OK;
    LAUNCH_EW(residual_backward_kernel, n, s, da, db, dout, n);
}
