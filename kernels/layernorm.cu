/*
 * layernorm.cu — LayerNorm forward/backward (one warp per row, two-pass
 * mean/variance like the CPU), the fused residual-add + LayerNorm, and the
 * deterministic column reduction used for dw/db here and for the linear bias
 * gradient.
 */
#include "common.cuh"

#define LN_WARPS 8 /* rows per block in the row kernels */

/* Row statistics of x[C] by one warp: two passes (mean, then the mean of
 * squared deviations), biased variance, rstd = 1/sqrt(var + eps). */
__device__ __forceinline__ void ln_row_stats(const float *x, int C, float eps, float *mean_out,
                                             float *rstd_out) {
    int lane = threadIdx.x & 31;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    float m = miles_warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = x[c] - m;
        v += d * d;
    }
    v = miles_warp_sum(v) / C;
    *mean_out = m;
    *rstd_out = 1.0f / sqrtf(v + eps);
}

__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                         const float *w, const float *b, int N, int C,
                                         float eps) {
    int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= N) return;
    int lane = threadIdx.x & 31;
    const float *x = inp + (size_t)row * C;
    float m, r;
    ln_row_stats(x, C, eps, &m, &r);
    float *o = out + (size_t)row * C;
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * w[c] + b[c];
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = r;
    }
}

__global__ void residual_layernorm_forward_kernel(float *res, float *out, float *mean,
                                                  float *rstd, const float *a, const float *b,
                                                  const float *w, const float *bias, int N,
                                                  int C, float eps) {
    int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= N) return;
    int lane = threadIdx.x & 31;
    size_t off = (size_t)row * C;
    /* each lane re-reads only the elements it wrote itself: no sync needed */
    for (int c = lane; c < C; c += 32) res[off + c] = a[off + c] + b[off + c];
    __syncwarp();
    const float *x = res + off;
    float m, r;
    ln_row_stats(x, C, eps, &m, &r);
    for (int c = lane; c < C; c += 32) out[off + c] = (x[c] - m) * r * w[c] + bias[c];
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = r;
    }
}

/* dx = rstd * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)), dnorm = dout*w,
 * accumulated into dx1 and (when given) dx2. */
__global__ void layernorm_backward_dinp_kernel(float *dx1, float *dx2, const float *dout,
                                               const float *inp, const float *w,
                                               const float *mean, const float *rstd, int N,
                                               int C) {
    int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= N) return;
    int lane = threadIdx.x & 31;
    size_t off = (size_t)row * C;
    float m = mean[row], r = rstd[row];
    float s1 = 0.0f, s2 = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float dn = dout[off + c] * w[c];
        float xh = (inp[off + c] - m) * r;
        s1 += dn;
        s2 += dn * xh;
    }
    s1 = miles_warp_sum(s1) / C;
    s2 = miles_warp_sum(s2) / C;
    for (int c = lane; c < C; c += 32) {
        float dn = dout[off + c] * w[c];
        float xh = (inp[off + c] - m) * r;
        float d = (dn - s1 - xh * s2) * r;
        if (dx1) dx1[off + c] += d;
        if (dx2) dx2[off + c] += d;
    }
}

/* Column reductions: block (32, COL_ROWS) owns 32 columns; thread (tx, ty)
 * sums rows ty, ty+COL_ROWS, ...; then a fixed-order tree over ty.  Same
 * order every run (deterministic), no atomics, no workspace. */
#define COL_ROWS 16

/* mode 0: out1[c] += sum_n x[n,c]
 * mode 1: out1[c] += sum_n dout[n,c]*xhat[n,c] (dw), out2[c] += sum_n dout[n,c] (db) */
template <int MODE>
__global__ void colsum_kernel(float *out1, float *out2, const float *x, const float *inp,
                              const float *mean, const float *rstd, int N, int C) {
    __shared__ float sh1[COL_ROWS][33];
    __shared__ float sh2[COL_ROWS][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    int c = blockIdx.x * 32 + tx;
    float a1 = 0.0f, a2 = 0.0f;
    if (c < C) {
        for (int n = ty; n < N; n += COL_ROWS) {
            size_t i = (size_t)n * C + c;
            float d = x[i];
            if (MODE == 1) {
                a1 += d * ((inp[i] - mean[n]) * rstd[n]);
                a2 += d;
            } else {
                a1 += d;
            }
        }
    }
    sh1[ty][tx] = a1;
    sh2[ty][tx] = a2;
    __syncthreads();
    for (int s = COL_ROWS / 2; s > 0; s >>= 1) {
        if (ty < s) {
            sh1[ty][tx] += sh1[ty + s][tx];
            sh2[ty][tx] += sh2[ty + s][tx];
        }
        __syncthreads();
    }
    if (ty == 0 && c < C) {
        if (MODE == 1) {
            if (out1) out1[c] += sh1[0][tx];
            if (out2) out2[c] += sh2[0][tx];
        } else {
            out1[c] += sh1[0][tx];
        }
    }
}

int miles_cuda_colsum_accumulate(float *out, const float *x, int N, int C, cudaStream_t s) {
    if (N <= 0 || C <= 0) return MILES_OK;
    dim3 block(32, COL_ROWS), grid((C + 31) / 32);
    MILES_LAUNCH(colsum_kernel<0>, grid, block, 0, s, out, NULL, x, NULL, NULL, NULL, N, C);
    return MILES_OK;
}

static int ln_check(const char *fn, int N, int C) {
    if (N < 0 || C <= 0) return miles_error(MILES_EINVAL, "%s: bad shape N=%d C=%d", fn, N, C);
    return MILES_OK;
}

extern "C" int layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp,
                                      const float *w, const float *b, int N, int C, float eps,
                                      miles_cuda_stream stream) {
    MILES_TRY(ln_check("layernorm_forward_cuda", N, C));
    if (N == 0) return MILES_OK;
    MILES_LAUNCH(layernorm_forward_kernel, (N + LN_WARPS - 1) / LN_WARPS, 32 * LN_WARPS, 0,
                 miles_stream(stream), out, mean, rstd, inp, w, b, N, C, eps);
    return MILES_OK;
}

static int ln_backward(float *dx1, float *dx2, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, const float *mean, const float *rstd,
                       int N, int C, cudaStream_t s) {
    if (dx1 || dx2) {
        MILES_LAUNCH(layernorm_backward_dinp_kernel, (N + LN_WARPS - 1) / LN_WARPS, 32 * LN_WARPS, 0, s, dx1,
                     dx2, dout, inp, w, mean, rstd, N, C);
    }
    if (dw || db) {
        dim3 block(32, COL_ROWS), grid((C + 31) / 32);
        MILES_LAUNCH(colsum_kernel<1>, grid, block, 0, s, dw, db, dout, inp, mean, rstd, N, C);
    }
    return MILES_OK;
}

extern "C" int layernorm_backward_cuda(float *dinp, float *dw, float *db, const float *dout,
                                       const float *inp, const float *w, const float *mean,
                                       const float *rstd, int N, int C,
                                       miles_cuda_stream stream) {
    MILES_TRY(ln_check("layernorm_backward_cuda", N, C));
    if (N == 0) return MILES_OK;
    return ln_backward(dinp, NULL, dw, db, dout, inp, w, mean, rstd, N, C, miles_stream(stream));
}

extern "C" int residual_layernorm_forward_cuda(float *res, float *out, float *mean, float *rstd,
                                               const float *a, const float *b, const float *w,
                                               const float *bias, int N, int C, float eps,
                                               miles_cuda_stream stream) {
    MILES_TRY(ln_check("residual_layernorm_forward_cuda", N, C));
    if (N == 0) return MILES_OK;
    MILES_LAUNCH(residual_layernorm_forward_kernel, (N + LN_WARPS - 1) / LN_WARPS, 32 * LN_WARPS, 0,
                 miles_stream(stream), res, out, mean, rstd, a, b, w, bias, N, C, eps);
    return MILES_OK;
}

extern "C" int residual_layernorm_backward_cuda(float *da, float *db, float *dw, float *dbias,
                                                const float *dout, const float *res,
                                                const float *w, const float *mean,
                                                const float *rstd, int N, int C,
                                                miles_cuda_stream stream) {
    MILES_TRY(ln_check("residual_layernorm_backward_cuda", N, C));
    if (N == 0) return MILES_OK;
    return ln_backward(da, db, dw, dbias, dout, res, w, mean, rstd, N, C, miles_stream(stream));
}
