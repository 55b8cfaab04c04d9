/*
 * pool.cu — [CLS] pooling, masked mean pooling (sentence-transformers), and
 * concat, forward and backward.  Mean pooling sums tokens in t order per
 * (b, c), the CPU's order, so it matches to the bit in practice.
 */
#include "common.cuh"

__global__ void cls_pool_forward_kernel(float *out, const float *inp, int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        out[i] = inp[b * T * C + c];
    }
}
__global__ void cls_pool_backward_kernel(float *dinp, const float *dout, int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        dinp[b * T * C + c] += dout[i];
    }
}

/* 1 / max(count of real tokens, 1e-9); NULL mask = all real (as the CPU) */
__device__ __forceinline__ float mean_pool_inv(const int32_t *mask, size_t b, int T) {
    float cnt = 0.0f;
    for (int t = 0; t < T; t++) cnt += mask ? (float)(mask[b * T + t] != 0) : 1.0f;
    return 1.0f / fmaxf(cnt, 1e-9f);
}

__global__ void mean_pool_forward_kernel(float *out, const float *inp, const int32_t *mask, int B,
                                         int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        float acc = 0.0f;
        for (int t = 0; t < T; t++) {
            if (mask && !mask[b * T + t]) continue;
            acc += inp[(b * T + t) * C + c];
        }
        out[i] = acc * mean_pool_inv(mask, b, T);
    }
}
/* thread per (b, c): the count is taken once, then the T rows of that
 * channel (coalesced across c) */
__global__ void mean_pool_backward_kernel(float *dinp, const float *dout, const int32_t *mask,
                                          int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        float g = dout[i] * mean_pool_inv(mask, b, T);
        for (int t = 0; t < T; t++) {
            if (mask && !mask[b * T + t]) continue;
            dinp[(b * T + t) * C + c] += g;
        }
    }
}

__global__ void concat_forward_kernel(float *out, const float *a, const float *b, int B, int C1,
                                      int C2) {
    int W = C1 + C2;
    MILES_GRID_STRIDE(i, (size_t)B * W) {
        size_t r = i / W;
        int c = (int)(i % W);
        out[i] = c < C1 ? a[r * C1 + c] : b[r * C2 + (c - C1)];
    }
}
__global__ void concat_backward_kernel(float *da, float *db, const float *dout, int B, int C1,
                                       int C2) {
    int W = C1 + C2;
    MILES_GRID_STRIDE(i, (size_t)B * W) {
        size_t r = i / W;
        int c = (int)(i % W);
        if (c < C1) {
            if (da) da[r * C1 + c] += dout[i];
        } else if (db) {
            db[r * C2 + (c - C1)] += dout[i];
        }
    }
}

static int pool_check(const char *fn, int B, int T, int C) {
    if (B < 0 || T <= 0 || C < 0)
        return miles_error(MILES_EINVAL, "%s: bad shape B=%d T=%d C=%d", fn, B, T, C);
    return MILES_OK;
}

#define LAUNCH(kernel, n, stream, ...)                                              \
    do {                                                                            \
        if ((n) == 0) return MILES_OK;                                              \
        MILES_LAUNCH(kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), __VA_ARGS__); \
        return MILES_OK;                                                            \
    } while (0)

extern "C" int cls_pool_forward_cuda(float *out, const float *inp, int B, int T, int C,
                                     miles_cuda_stream s) {
    MILES_TRY(pool_check("cls_pool_forward_cuda", B, T, C));
    LAUNCH(cls_pool_forward_kernel, (size_t)B * C, s, out, inp, B, T, C);
}
extern "C" int cls_pool_backward_cuda(float *dinp, const float *dout, int B, int T, int C,
                                      miles_cuda_stream s) {
    MILES_TRY(pool_check("cls_pool_backward_cuda", B, T, C));
    if (!dinp) return MILES_OK;
    LAUNCH(cls_pool_backward_kernel, (size_t)B * C, s, dinp, dout, B, T, C);
}
extern "C" int mean_pool_forward_cuda(float *out, const float *inp, const int32_t *mask, int B,
                                      int T, int C, miles_cuda_stream s) {
    MILES_TRY(pool_check("mean_pool_forward_cuda", B, T, C));
    LAUNCH(mean_pool_forward_kernel, (size_t)B * C, s, out, inp, mask, B, T, C);
}
extern "C" int mean_pool_backward_cuda(float *dinp, const float *dout, const int32_t *mask, int B,
                                       int T, int C, miles_cuda_stream s) {
    MILES_TRY(pool_check("mean_pool_backward_cuda", B, T, C));
    if (!dinp) return MILES_OK;
    LAUNCH(mean_pool_backward_kernel, (size_t)B * C, s, dinp, dout, mask, B, T, C);
}
extern "C" int concat_forward_cuda(float *out, const float *a, const float *b, int B, int C1,
                                   int C2, miles_cuda_stream s) {
    MILES_CUDA_REQUIRE(B >= 0 && C1 >= 0 && C2 >= 0, "concat_forward_cuda: bad shape B=%d C1=%d C2=%d", B, C1, C2);
    LAUNCH(concat_forward_kernel, (size_t)B * (C1 + C2), s, out, a, b, B, C1, C2);
}
extern "C" int concat_backward_cuda(float *da, float *db, const float *dout, int B, int C1, int C2,
                                    miles_cuda_stream s) {
    MILES_CUDA_REQUIRE(B >= 0 && C1 >= 0 && C2 >= 0, "concat_backward_cuda: bad shape B=%d C1=%d C2=%d", B, C1, C2);
    if (!da && !db) return MILES_OK;
    LAUNCH(concat_backward_kernel, (size_t)B * (C1 + C2), s, da, db, dout, B, C1, C2);
}
