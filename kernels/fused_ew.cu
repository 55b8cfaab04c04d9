/*
 * fused_ew.cu — element-wise and column kernels of the 16-bit path:
 *
 *   gelu_forward_h     out = GELU(inp) (exact erf, the CPU formula)
 *   gelu_backward_h    dinp = dout * GELU'(inp), in place over dout, fused
 *                      with the bias gradient of the layer that made inp
 *                      (column sums of dinp)
 *   colsum_h           column sums of a 16-bit matrix (the fused QKV bias
 *                      gradient), written through a segment mapping
 *   bias_fill          D[n, c] = bias[c] (the cuBLASLt bias-epilogue fallback:
 *                      then D = A B + 1 * D)
 *   pool_forward_h     [CLS] row or masked mean of the 16-bit last hidden
 *                      state, in fp32 (the heads run in fp32)
 *   scale_device       x *= s1[0] (* s2[0]): scalars that live on the device
 *
 * Column sums are two-stage and deterministic: blocks of 256 threads own
 * 256 * VEC columns of a chunk of FEW_ROWS rows and write one partial row,
 * then miles_partial_reduce_cuda adds the chunks in order.
 */
#include "fast.cuh"

#define FEW_THREADS 256
#define FEW_ROWS 32 /* rows per column-sum chunk */

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

template <int DT, int VEC> __global__ void gelu_forward_h_kernel(uint16_t *out, const uint16_t *inp, size_t n) {
    const size_t nv = n / VEC;
    MILES_GRID_STRIDE(i, nv) {
        float x[VEC], y[VEC];
        miles_load_h<DT, VEC>(x, inp + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) y[k] = 0.5f * x[k] * (1.0f + erff(x[k] * INV_SQRT2));
        miles_store_h<DT, VEC>(out + i * VEC, y);
    }
}

/* grid (ceil(C / (256 VEC)), ceil(N / FEW_ROWS)); partial [gridDim.y][C] */
template <int DT, int VEC>
__global__ void gelu_backward_h_kernel(uint16_t *dinp, float *partial, const uint16_t *inp, int N, int C,
                                       int32_t *overflow) {
    const int c0 = (blockIdx.x * FEW_THREADS + threadIdx.x) * VEC;
    if (c0 >= C) return;
    const int r0 = blockIdx.y * FEW_ROWS, r1 = min(N, r0 + FEW_ROWS);
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; k++) acc[k] = 0.0f;
    int bad = 0;
    for (int r = r0; r < r1; r++) {
        const size_t off = (size_t)r * C + c0;
        float g[VEC], x[VEC], d[VEC];
        miles_load_h<DT, VEC>(g, dinp + off);
        miles_load_h<DT, VEC>(x, inp + off);
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            bad |= !(fabsf(g[k]) < 65504.0f);
            float cdf = 0.5f * (1.0f + erff(x[k] * INV_SQRT2));
            float pdf = INV_SQRT_2PI * expf(-0.5f * x[k] * x[k]);
            d[k] = g[k] * (cdf + x[k] * pdf);
            acc[k] += d[k];
        }
        miles_store_h<DT, VEC>(dinp + off, d);
    }
    if (overflow && bad) *overflow = 1; /* a clamped fp16 GEMM output reads as 65504 */
    miles_store_f<VEC>(partial + (size_t)blockIdx.y * C + c0, acc);
}

template <int DT, int VEC> __global__ void colsum_h_kernel(float *partial, const uint16_t *x, int N, int C) {
    const int c0 = (blockIdx.x * FEW_THREADS + threadIdx.x) * VEC;
    if (c0 >= C) return;
    const int r0 = blockIdx.y * FEW_ROWS, r1 = min(N, r0 + FEW_ROWS);
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; k++) acc[k] = 0.0f;
    for (int r = r0; r < r1; r++) {
        float v[VEC];
        miles_load_h<DT, VEC>(v, x + (size_t)r * C + c0);
#pragma unroll
        for (int k = 0; k < VEC; k++) acc[k] += v[k];
    }
    miles_store_f<VEC>(partial + (size_t)blockIdx.y * C + c0, acc);
}

/* D[r, c] = bias[c], rows of ldd, of type DT (F32, F16, BF16) */
template <int DT> __global__ void bias_fill_kernel(void *D, int ldd, const void *bias, int M, int N) {
    MILES_GRID_STRIDE(i, (size_t)M * N) {
        const size_t r = i / N, c = i % N;
        if (DT == MILES_CUDA_F32) ((float *)D)[r * ldd + c] = ((const float *)bias)[c];
        else ((uint16_t *)D)[r * ldd + c] = ((const uint16_t *)bias)[c];
    }
}

/* thread per (b, c): [CLS] row (mean_pool 0) or the mean over real tokens */
template <int DT>
__global__ void pool_forward_h_kernel(float *out, const uint16_t *hid, const int32_t *mask, int B, int T, int C,
                                      int mean_pool) {
    MILES_GRID_STRIDE(i, (size_t)B * C) {
        const size_t b = i / C, c = i % C;
        if (!mean_pool) {
            out[i] = miles_h2f<DT>(hid[b * T * C + c]);
            continue;
        }
        float acc = 0.0f, cnt = 0.0f;
        for (int t = 0; t < T; t++) {
            if (mask && !mask[b * T + t]) continue;
            acc += miles_h2f<DT>(hid[(b * T + t) * C + c]);
            cnt += 1.0f;
        }
        out[i] = acc * (1.0f / fmaxf(cnt, 1e-9f));
    }
}

__global__ void scale_device_kernel(float *x, size_t n, const float *s1, const float *s2) {
    const float s = s1[0] * (s2 ? s2[0] : 1.0f);
    MILES_GRID_STRIDE(i, n) x[i] *= s;
}

/* ------------------------------------------------------------- host */

static int dt_check(const char *fn, int dtype) {
    if (dtype != MILES_CUDA_F16 && dtype != MILES_CUDA_BF16)
        return miles_error(MILES_EINVAL, "%s: dtype %d is neither fp16 nor bf16", fn, dtype);
    if (dtype == MILES_CUDA_BF16) MILES_TRY(miles_cuda_require_bf16());
    return MILES_OK;
}
static int al16(const void *p) { return ((uintptr_t)p & 15) == 0; }
static unsigned col_chunks(int N) { return (unsigned)((N + FEW_ROWS - 1) / FEW_ROWS); }

extern "C" size_t colsum_workspace(int N, int C) { return (size_t)col_chunks(N) * (size_t)C; }

#define DISPATCH_DT(dtype, F) ((dtype) == MILES_CUDA_BF16 ? F(MILES_CUDA_BF16) : F(MILES_CUDA_F16))

extern "C" int gelu_forward_h_cuda(void *out_h, const void *inp_h, size_t n, int dtype, miles_cuda_stream stream) {
    MILES_TRY(dt_check("gelu_forward_h_cuda", dtype));
    if (n == 0) return MILES_OK;
    const int v8 = n % 8 == 0 && al16(out_h) && al16(inp_h);
    cudaStream_t s = miles_stream(stream);
#define L(DT)                                                                                                     \
    ([&]() -> int {                                                                                               \
        auto fn = v8 ? gelu_forward_h_kernel<DT, 8> : gelu_forward_h_kernel<DT, 1>;                               \
        MILES_LAUNCH_FN(v8 ? "gelu_forward_h_kernel<DT,8>" : "gelu_forward_h_kernel<DT,1>", fn,                   \
                        miles_grid(v8 ? n / 8 : n), MILES_CUDA_THREADS, 0, s, (uint16_t *)out_h,                  \
                        (const uint16_t *)inp_h, n);                                                              \
        return MILES_OK;                                                                                          \
    }())
    return DISPATCH_DT(dtype, L);
#undef L
}

extern "C" int gelu_backward_h_cuda(void *dinp_h, float *dbias, int accumulate, const void *inp_h, int N, int C,
                                    float *ws, size_t ws_floats, int32_t *overflow, int dtype,
                                    miles_cuda_stream stream) {
    MILES_TRY(dt_check("gelu_backward_h_cuda", dtype));
    if (N < 0 || C <= 0) return miles_error(MILES_EINVAL, "gelu_backward_h_cuda: bad shape N=%d C=%d", N, C);
    if (N == 0) return MILES_OK;
    if (ws_floats < colsum_workspace(N, C))
        return miles_error(MILES_EINVAL, "gelu_backward_h_cuda: workspace of %zu floats < %zu", ws_floats,
                           colsum_workspace(N, C));
    const int v8 = C % 8 == 0 && al16(dinp_h) && al16(inp_h) && al16(ws);
    const int vec = v8 ? 8 : 1;
    dim3 grid((unsigned)((C + FEW_THREADS * vec - 1) / (FEW_THREADS * vec)), col_chunks(N));
    cudaStream_t s = miles_stream(stream);
#define L(DT)                                                                                                     \
    ([&]() -> int {                                                                                               \
        auto fn = v8 ? gelu_backward_h_kernel<DT, 8> : gelu_backward_h_kernel<DT, 1>;                             \
        MILES_LAUNCH_FN(v8 ? "gelu_backward_h_kernel<DT,8>" : "gelu_backward_h_kernel<DT,1>", fn, grid,           \
                        FEW_THREADS, 0, s, (uint16_t *)dinp_h, ws, (const uint16_t *)inp_h, N, C, overflow);      \
        return MILES_OK;                                                                                          \
    }())
    MILES_TRY(DISPATCH_DT(dtype, L));
#undef L
    if (dbias) MILES_TRY(miles_partial_reduce_cuda(dbias, NULL, NULL, ws, (int)grid.y, C, 1, accumulate, C, 0, stream));
    return MILES_OK;
}

extern "C" int colsum_h_cuda(float *out, int seg, long long seg_stride, int accumulate, const void *x_h, int N,
                             int C, float *ws, size_t ws_floats, int dtype, miles_cuda_stream stream) {
    MILES_TRY(dt_check("colsum_h_cuda", dtype));
    if (N < 0 || C <= 0 || seg <= 0) return miles_error(MILES_EINVAL, "colsum_h_cuda: bad shape N=%d C=%d", N, C);
    if (N == 0) return MILES_OK;
    if (ws_floats < colsum_workspace(N, C))
        return miles_error(MILES_EINVAL, "colsum_h_cuda: workspace of %zu floats < %zu", ws_floats,
                           colsum_workspace(N, C));
    const int v8 = C % 8 == 0 && al16(x_h) && al16(ws);
    const int vec = v8 ? 8 : 1;
    dim3 grid((unsigned)((C + FEW_THREADS * vec - 1) / (FEW_THREADS * vec)), col_chunks(N));
    cudaStream_t s = miles_stream(stream);
#define L(DT)                                                                                                     \
    ([&]() -> int {                                                                                               \
        auto fn = v8 ? colsum_h_kernel<DT, 8> : colsum_h_kernel<DT, 1>;                                           \
        MILES_LAUNCH_FN(v8 ? "colsum_h_kernel<DT,8>" : "colsum_h_kernel<DT,1>", fn, grid, FEW_THREADS, 0, s, ws,  \
                        (const uint16_t *)x_h, N, C);                                                             \
        return MILES_OK;                                                                                          \
    }())
    MILES_TRY(DISPATCH_DT(dtype, L));
#undef L
    return miles_partial_reduce_cuda(out, NULL, NULL, ws, (int)grid.y, C, 1, accumulate, seg, seg_stride, stream);
}

extern "C" int miles_bias_fill_cuda(void *D, int ldd, const void *bias, int M, int N, int type,
                                    miles_cuda_stream stream) {
    if (M <= 0 || N <= 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    size_t n = (size_t)M * N;
    if (type == MILES_CUDA_F32)
        MILES_LAUNCH(bias_fill_kernel<MILES_CUDA_F32>, miles_grid(n), MILES_CUDA_THREADS, 0, s, D, ldd, bias, M, N);
    else if (type == MILES_CUDA_F16 || type == MILES_CUDA_BF16) /* the same 16-bit copy */
        MILES_LAUNCH(bias_fill_kernel<MILES_CUDA_F16>, miles_grid(n), MILES_CUDA_THREADS, 0, s, D, ldd, bias, M, N);
    else
        return miles_error(MILES_EINVAL, "miles_bias_fill_cuda: type %d", type);
    return MILES_OK;
}

extern "C" int pool_forward_h_cuda(float *out, const void *hid_h, const int32_t *mask, int B, int T, int C,
                                   int mean_pool, int dtype, miles_cuda_stream stream) {
    MILES_TRY(dt_check("pool_forward_h_cuda", dtype));
    if (B < 0 || T <= 0 || C <= 0) return miles_error(MILES_EINVAL, "pool_forward_h_cuda: bad shape");
    if (B == 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    size_t n = (size_t)B * C;
    if (dtype == MILES_CUDA_BF16)
        MILES_LAUNCH(pool_forward_h_kernel<MILES_CUDA_BF16>, miles_grid(n), MILES_CUDA_THREADS, 0, s, out,
                     (const uint16_t *)hid_h, mask, B, T, C, mean_pool);
    else
        MILES_LAUNCH(pool_forward_h_kernel<MILES_CUDA_F16>, miles_grid(n), MILES_CUDA_THREADS, 0, s, out,
                     (const uint16_t *)hid_h, mask, B, T, C, mean_pool);
    return MILES_OK;
}

extern "C" int scale_device_cuda(float *x, size_t n, const float *s1, const float *s2, miles_cuda_stream stream) {
    if (n == 0) return MILES_OK;
    MILES_LAUNCH(scale_device_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), x, n, s1, s2);
    return MILES_OK;
}
