/*
 * fused_ln.cu — the LayerNorm family of the 16-bit path, each one kernel:
 *
 *   emb_ln_forward      out = dropout(LayerNorm(wte[id] + wpe[t] + wtt[tt]))
 *   residual_ln_forward res = x + dropout(proj);  out = LayerNorm(res)
 *   ln_backward         dres = LayerNorm backward;  dproj = dropout backward of dres
 *   emb_ln_backward     demb = LayerNorm backward of dropout backward of dout
 *
 * One warp per row (8 rows per block), the row in registers (C <= 1024),
 * 128-bit loads: C % 8 == 0 and 16-byte aligned rows are required (every
 * BERT width is a multiple of 8; the model falls back to fp32 activations
 * otherwise).
 * Statistics are fp32, two-pass (mean, then centred variance) like the CPU;
 * LayerNorm runs on the 16-bit rounded res that the backward reads again, so
 * the backward is the exact derivative of what the forward computed.
 * Dropout uses the CPU's Philox mapping (element index = row * C + column of
 * the site's tensor), so the masks are the CPU's bit for bit.
 *
 * The backward kernels also reduce the parameter gradients: every block sums
 * its rows' dw = sum dout*xhat, db = sum dout and the bias gradient of the
 * linear layer below (sum of dproj) in registers, adds its warps in a fixed
 * order in shared memory, and writes one partial row per block; the partial
 * rows are then summed in block order (miles_partial_reduce_cuda).  No
 * atomics: bitwise reproducible on a given GPU (the block count depends only
 * on N and the number of multiprocessors).
 */
#include "fast.cuh"

#define FLN_WARPS 8
#define FLN_THREADS (32 * FLN_WARPS)

/* Chunks of VEC columns per lane for C <= MILES_CUDA_FAST_MAX_C. */
#define FLN_K(VEC) (MILES_CUDA_FAST_MAX_C / (32 * (VEC)))

/* mean and 1/sqrt(var + eps) of the warp's row held in v (two passes, as
 * the CPU) */
template <int VEC>
__device__ __forceinline__ void fln_stats(const float (&v)[FLN_K(VEC)][VEC], int C, float eps, float *mean,
                                          float *rstd) {
    const int lane = threadIdx.x & 31;
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < FLN_K(VEC); k++) {
        if ((k * 32 + lane) * VEC >= C) continue;
#pragma unroll
        for (int i = 0; i < VEC; i++) s += v[k][i];
    }
    const float m = miles_warp_sum(s) / C;
    float q = 0.0f;
#pragma unroll
    for (int k = 0; k < FLN_K(VEC); k++) {
        if ((k * 32 + lane) * VEC >= C) continue;
#pragma unroll
        for (int i = 0; i < VEC; i++) {
            float dd = v[k][i] - m;
            q += dd * dd;
        }
    }
    *mean = m;
    *rstd = 1.0f / sqrtf(miles_warp_sum(q) / C + eps);
}

/* out = (v - mean) * rstd * w + b (then dropout when use_drop), stored */
template <int DT, int VEC>
__device__ __forceinline__ void fln_normalize_store(uint16_t *out, const float (&v)[FLN_K(VEC)][VEC], const float *w,
                                                    const float *b, int C, float m, float r, const MilesDropDev &d,
                                                    bool use_drop, size_t off) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int k = 0; k < FLN_K(VEC); k++) {
        const int c0 = (k * 32 + lane) * VEC;
        if (c0 >= C) continue;
        float o[VEC], wv[VEC], bv[VEC];
        bool keep[VEC] = {};
        miles_load_f<VEC>(wv, w + c0);
        miles_load_f<VEC>(bv, b + c0);
        if (use_drop) miles_keep_vec<VEC>(keep, d, off + c0);
#pragma unroll
        for (int i = 0; i < VEC; i++) {
            float y = (v[k][i] - m) * r * wv[i] + bv[i];
            o[i] = use_drop ? miles_dropout_apply(d, keep[i], y) : y;
        }
        miles_store_h<DT, VEC>(out + off + c0, o);
    }
}

template <int DT, int VEC>
__global__ void residual_ln_forward_kernel(uint16_t *res, uint16_t *out, float *mean, float *rstd,
                                           const uint16_t *x, const uint16_t *proj, const float *w, const float *b,
                                           int N, int C, float eps, MilesDropDev drop, const uint64_t *rng) {
    constexpr int K = FLN_K(VEC);
    const int lane = threadIdx.x & 31, row = blockIdx.x * FLN_WARPS + (threadIdx.x >> 5);
    if (row >= N) return;
    const MilesDropDev d = miles_drop_resolve(drop, rng);
    const bool use_drop = d.p > 0.0f;
    const size_t off = (size_t)row * C;
    float v[K][VEC];
#pragma unroll
    for (int k = 0; k < K; k++) {
        const int c0 = (k * 32 + lane) * VEC;
        if (c0 >= C) continue;
        float a[VEC], p[VEC];
        bool keep[VEC] = {};
        miles_load_h<DT, VEC>(a, x + off + c0);
        miles_load_h<DT, VEC>(p, proj + off + c0);
        if (use_drop) miles_keep_vec<VEC>(keep, d, off + c0);
#pragma unroll
        for (int i = 0; i < VEC; i++) {
            float y = use_drop ? miles_dropout_apply(d, keep[i], p[i]) : p[i];
            v[k][i] = miles_h2f<DT>(miles_f2h<DT>(a[i] + y)); /* res as stored */
        }
        miles_store_h<DT, VEC>(res + off + c0, v[k]);
    }
    float m, r;
    fln_stats<VEC>(v, C, eps, &m, &r);
    fln_normalize_store<DT, VEC>(out, v, w, b, C, m, r, d, false, off); /* no dropout after this LayerNorm */
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/* Row r of the embedding sum wte[id] + wpe[t] + wtt[type] (the CPU's order). */
template <int VEC>
__device__ __forceinline__ void emb_row(float *x, const int32_t *ids, const int32_t *tt, const float *wte,
                                        const float *wpe, const float *wtt, int T, int C, int row, int c0) {
    float e[VEC], p[VEC], y[VEC];
    const size_t id = (size_t)ids[row], t = (size_t)(row % T), ty = tt ? (size_t)tt[row] : 0;
    miles_load_f<VEC>(e, wte + id * C + c0);
    miles_load_f<VEC>(p, wpe + t * C + c0);
    miles_load_f<VEC>(y, wtt + ty * C + c0);
#pragma unroll
    for (int i = 0; i < VEC; i++) x[i] = e[i] + p[i] + y[i];
}

template <int DT, int VEC>
__global__ void emb_ln_forward_kernel(uint16_t *out, float *mean, float *rstd, const int32_t *ids,
                                      const int32_t *tt, const float *wte, const float *wpe, const float *wtt,
                                      const float *w, const float *b, int N, int T, int C, float eps,
                                      MilesDropDev drop, const uint64_t *rng) {
    constexpr int K = FLN_K(VEC);
    const int lane = threadIdx.x & 31, row = blockIdx.x * FLN_WARPS + (threadIdx.x >> 5);
    if (row >= N) return;
    const MilesDropDev d = miles_drop_resolve(drop, rng);
    const bool use_drop = d.p > 0.0f;
    const size_t off = (size_t)row * C;
    float v[K][VEC];
#pragma unroll
    for (int k = 0; k < K; k++) {
        const int c0 = (k * 32 + lane) * VEC;
        if (c0 >= C) continue;
        emb_row<VEC>(v[k], ids, tt, wte, wpe, wtt, T, C, row, c0);
    }
    float m, r;
    fln_stats<VEC>(v, C, eps, &m, &r);
    fln_normalize_store<DT, VEC>(out, v, w, b, C, m, r, d, use_drop, off); /* dropout after the LayerNorm */
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/* MODE 0 (residual block): g = dout; x = res (16-bit); writes dres (fp32)
 *   and dproj = dropout backward of dres (16-bit, when given); partials
 *   {dw, db, dbias = sum dproj}.
 * MODE 1 (embeddings): g = dropout backward of dout; x = the embedding sum,
 *   recomputed from the tables; writes dres = d(embedding sum); partials
 *   {dw, db, unused}.
 * partial: [gridDim.x][3][C]. */
template <int DT, int VEC, int MODE>
__global__ void ln_backward_kernel(float *dres, uint16_t *dproj, float *partial, const float *dout,
                                   const uint16_t *res, const int32_t *ids, const int32_t *tt, const float *wte,
                                   const float *wpe, const float *wtt, int T, const float *w, const float *mean,
                                   const float *rstd, int N, int C, MilesDropDev drop, const uint64_t *rng) {
    constexpr int K = FLN_K(VEC);
    __shared__ float red[3 * MILES_CUDA_FAST_MAX_C];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const MilesDropDev d = miles_drop_resolve(drop, rng);
    const bool use_drop = d.p > 0.0f;
    float aw[K][VEC], ab[K][VEC], abias[K][VEC];
#pragma unroll
    for (int k = 0; k < K; k++)
#pragma unroll
        for (int i = 0; i < VEC; i++) aw[k][i] = ab[k][i] = abias[k][i] = 0.0f;

    for (int row = blockIdx.x * FLN_WARPS + warp; row < N; row += gridDim.x * FLN_WARPS) {
        const size_t off = (size_t)row * C;
        const float m = mean[row], r = rstd[row];
        float xh[K][VEC], dn[K][VEC];
        float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int c0 = (k * 32 + lane) * VEC;
            if (c0 >= C) continue;
            float g[VEC], x[VEC], wv[VEC];
            miles_load_f<VEC>(g, dout + off + c0);
            miles_load_f<VEC>(wv, w + c0);
            if (MODE == 1) {
                emb_row<VEC>(x, ids, tt, wte, wpe, wtt, T, C, row, c0);
                if (use_drop) {
                    bool keep[VEC] = {};
                    miles_keep_vec<VEC>(keep, d, off + c0);
#pragma unroll
                    for (int i = 0; i < VEC; i++) g[i] = miles_dropout_apply(d, keep[i], g[i]);
                }
            } else {
                miles_load_h<DT, VEC>(x, res + off + c0);
            }
#pragma unroll
            for (int i = 0; i < VEC; i++) {
                xh[k][i] = (x[i] - m) * r;
                dn[k][i] = g[i] * wv[i];
                s1 += dn[k][i];
                s2 += dn[k][i] * xh[k][i];
                aw[k][i] += g[i] * xh[k][i];
                ab[k][i] += g[i];
            }
        }
        s1 = miles_warp_sum(s1) / C;
        s2 = miles_warp_sum(s2) / C;
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int c0 = (k * 32 + lane) * VEC;
            if (c0 >= C) continue;
            float dx[VEC];
#pragma unroll
            for (int i = 0; i < VEC; i++) dx[i] = (dn[k][i] - s1 - xh[k][i] * s2) * r;
            miles_store_f<VEC>(dres + off + c0, dx);
            if (MODE == 0) {
                bool keep[VEC] = {};
                if (use_drop) miles_keep_vec<VEC>(keep, d, off + c0);
                float dp[VEC];
#pragma unroll
                for (int i = 0; i < VEC; i++) {
                    dp[i] = use_drop ? miles_dropout_apply(d, keep[i], dx[i]) : dx[i];
                    abias[k][i] += dp[i];
                }
                if (dproj) miles_store_h<DT, VEC>(dproj + off + c0, dp);
            }
        }
    }
    /* the block's partial sums: warps add in order (deterministic) */
    for (int wi = 0; wi < FLN_WARPS; wi++) {
        if (warp == wi) {
#pragma unroll
            for (int k = 0; k < K; k++) {
                const int c0 = (k * 32 + lane) * VEC;
                if (c0 >= C) continue;
#pragma unroll
                for (int i = 0; i < VEC; i++) {
                    const int c = c0 + i;
                    red[c] = (wi ? red[c] : 0.0f) + aw[k][i];
                    red[C + c] = (wi ? red[C + c] : 0.0f) + ab[k][i];
                    red[2 * C + c] = (wi ? red[2 * C + c] : 0.0f) + abias[k][i];
                }
            }
        }
        __syncthreads();
    }
    float *pb = partial + (size_t)blockIdx.x * 3 * C;
    for (int i = threadIdx.x; i < 3 * C; i += blockDim.x) pb[i] = red[i];
}

/* out_k[(c / seg) * seg_stride + c % seg] (+)= sum over g of ws[g][k][c]
 * (k < nvec; outputs may be NULL), g in order. */
__global__ void partial_reduce_kernel(float *o0, float *o1, float *o2, const float *ws, int G, int C, int nvec,
                                      int accumulate, int seg, long long seg_stride) {
    MILES_GRID_STRIDE(i, (size_t)nvec * C) {
        const int k = (int)(i / C), c = (int)(i % C);
        float *o = k == 0 ? o0 : k == 1 ? o1 : o2;
        if (!o) continue;
        float s = 0.0f;
        for (int g = 0; g < G; g++) s += ws[((size_t)g * nvec + k) * C + c];
        const size_t oi = (size_t)(c / seg) * (size_t)seg_stride + (size_t)(c % seg);
        o[oi] = accumulate ? o[oi] + s : s;
    }
}

/* ------------------------------------------------------------- host */

static int fast_check(const char *fn, int N, int C, int dtype) {
    if (N < 0 || C <= 0 || C > MILES_CUDA_FAST_MAX_C)
        return miles_error(MILES_EINVAL, "%s: bad shape N=%d C=%d (1 <= C <= %d)", fn, N, C, MILES_CUDA_FAST_MAX_C);
    if (dtype != MILES_CUDA_F16 && dtype != MILES_CUDA_BF16)
        return miles_error(MILES_EINVAL, "%s: dtype %d is neither fp16 nor bf16", fn, dtype);
    if (dtype == MILES_CUDA_BF16) MILES_TRY(miles_cuda_require_bf16());
    return MILES_OK;
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* The 128-bit loads need every row 16-byte aligned. */
static int vec8_check(const char *fn, int C, const void *a, const void *b = NULL, const void *c = NULL,
                      const void *d = NULL, const void *e = NULL, const void *f = NULL) {
    if (C % 8 == 0 && aligned16(a) && aligned16(b) && aligned16(c) && aligned16(d) && aligned16(e) && aligned16(f))
        return MILES_OK;
    return miles_error(MILES_EUNSUPPORTED, "%s: width %d must be a multiple of 8 and every pointer 16-byte aligned",
                       fn, C);
}

extern "C" int miles_partial_reduce_cuda(float *o0, float *o1, float *o2, const float *ws, int G, int C, int nvec,
                                         int accumulate, int seg, long long seg_stride, miles_cuda_stream stream) {
    if (C <= 0 || G <= 0 || nvec < 1 || nvec > 3 || seg <= 0)
        return miles_error(MILES_EINVAL, "miles_partial_reduce_cuda: bad arguments");
    size_t n = (size_t)nvec * C;
    MILES_LAUNCH(partial_reduce_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), o0, o1, o2, ws,
                 G, C, nvec, accumulate, seg, seg_stride);
    return MILES_OK;
}

/* Blocks of the backward kernels: enough to fill the GPU twice, at most
 * one per 8 rows. */
static int ln_blocks(int N) {
    int g = 2 * miles_cuda_sm_count();
    int rows = (N + FLN_WARPS - 1) / FLN_WARPS;
    return rows < g ? (rows > 0 ? rows : 1) : g;
}

extern "C" size_t ln_backward_workspace(int N, int C) { return (size_t)ln_blocks(N) * 3 * (size_t)C; }

#define DISPATCH_DT(dtype, F) ((dtype) == MILES_CUDA_BF16 ? F(MILES_CUDA_BF16) : F(MILES_CUDA_F16))

extern "C" int residual_ln_forward_cuda(void *res_h, void *out_h, float *mean, float *rstd, const void *x_h,
                                        const void *proj_h, const float *w, const float *b, int N, int C, float eps,
                                        MilesDropoutKey key, const uint64_t *rng, int dtype, miles_cuda_stream stream) {
    MILES_TRY(fast_check("residual_ln_forward_cuda", N, C, dtype));
    if (N == 0) return MILES_OK;
    MILES_TRY(vec8_check("residual_ln_forward_cuda", C, res_h, out_h, x_h, proj_h, w, b));
    const unsigned grid = (unsigned)((N + FLN_WARPS - 1) / FLN_WARPS);
    cudaStream_t s = miles_stream(stream);
    MilesDropDev dd = miles_drop_dev(key);
#define L(DT)                                                                                                     \
    ([&]() -> int {                                                                                               \
        auto fn = residual_ln_forward_kernel<DT, 8>;                                                              \
        MILES_LAUNCH_FN("residual_ln_forward_kernel<DT,8>", fn, grid,                                              \
                        FLN_THREADS, 0, s, (uint16_t *)res_h, (uint16_t *)out_h, mean, rstd, (const uint16_t *)x_h, \
                        (const uint16_t *)proj_h, w, b, N, C, eps, dd, rng);                                     \
        return MILES_OK;                                                                                          \
    }())
    return DISPATCH_DT(dtype, L);
#undef L
}

extern "C" int emb_ln_forward_cuda(void *out_h, float *mean, float *rstd, const int32_t *ids, const int32_t *tt,
                                   const float *wte, const float *wpe, const float *wtt, const float *w,
                                   const float *b, int B, int T, int C, float eps, MilesDropoutKey key,
                                   const uint64_t *rng, int dtype, miles_cuda_stream stream) {
    MILES_TRY(fast_check("emb_ln_forward_cuda", B * T, C, dtype));
    const int N = B * T;
    if (N == 0) return MILES_OK;
    MILES_TRY(vec8_check("emb_ln_forward_cuda", C, out_h, wte, wpe, wtt, w, b));
    const unsigned grid = (unsigned)((N + FLN_WARPS - 1) / FLN_WARPS);
    cudaStream_t s = miles_stream(stream);
    MilesDropDev dd = miles_drop_dev(key);
#define L(DT)                                                                                                     \
    ([&]() -> int {                                                                                               \
        auto fn = emb_ln_forward_kernel<DT, 8>;                                                                   \
        MILES_LAUNCH_FN("emb_ln_forward_kernel<DT,8>", fn, grid, FLN_THREADS,                                      \
                        0, s, (uint16_t *)out_h, mean, rstd, ids, tt, wte, wpe, wtt, w, b, N, T, C, eps, dd, rng); \
        return MILES_OK;                                                                                          \
    }())
    return DISPATCH_DT(dtype, L);
#undef L
}

extern "C" int ln_backward_cuda(float *dres, void *dproj_h, float *dw, float *db, float *dbias, int accumulate,
                                const float *dout, const void *res_h, const float *w, const float *mean,
                                const float *rstd, int N, int C, MilesDropoutKey key, const uint64_t *rng, float *ws,
                                size_t ws_floats, int dtype, miles_cuda_stream stream) {
    MILES_TRY(fast_check("ln_backward_cuda", N, C, dtype));
    if (N == 0) return MILES_OK;
    const int G = ln_blocks(N);
    if (ws_floats < (size_t)G * 3 * C)
        return miles_error(MILES_EINVAL, "ln_backward_cuda: workspace of %zu floats < %zu", ws_floats,
                           (size_t)G * 3 * C);
    MILES_TRY(vec8_check("ln_backward_cuda", C, dres, dproj_h ? dproj_h : dres, dout, res_h, w));
    cudaStream_t s = miles_stream(stream);
    MilesDropDev dd = miles_drop_dev(key);
#define L(DT)                                                                                                     \
    ([&]() -> int {                                                                                               \
        auto fn = ln_backward_kernel<DT, 8, 0>;                                                                   \
        MILES_LAUNCH_FN("ln_backward_kernel<DT,8,0>", fn, (unsigned)G,                                             \
                        FLN_THREADS, 0, s, dres, (uint16_t *)dproj_h, ws, dout, (const uint16_t *)res_h,          \
                        (const int32_t *)NULL, (const int32_t *)NULL, (const float *)NULL, (const float *)NULL,   \
                        (const float *)NULL, 1, w, mean, rstd, N, C, dd, rng);                                    \
        return MILES_OK;                                                                                          \
    }())
    MILES_TRY(DISPATCH_DT(dtype, L));
#undef L
    if (dw || db || dbias) MILES_TRY(miles_partial_reduce_cuda(dw, db, dbias, ws, G, C, 3, accumulate, C, 0, stream));
    return MILES_OK;
}

extern "C" int emb_ln_backward_cuda(float *demb, float *dw, float *db, int accumulate, const float *dout,
                                    const int32_t *ids, const int32_t *tt, const float *wte, const float *wpe,
                                    const float *wtt, const float *w, const float *mean, const float *rstd, int B,
                                    int T, int C, MilesDropoutKey key, const uint64_t *rng, float *ws,
                                    size_t ws_floats, miles_cuda_stream stream) {
    const int N = B * T;
    MILES_TRY(fast_check("emb_ln_backward_cuda", N, C, MILES_CUDA_F16));
    if (N == 0) return MILES_OK;
    const int G = ln_blocks(N);
    if (ws_floats < (size_t)G * 3 * C)
        return miles_error(MILES_EINVAL, "emb_ln_backward_cuda: workspace of %zu floats < %zu", ws_floats,
                           (size_t)G * 3 * C);
    MILES_TRY(vec8_check("emb_ln_backward_cuda", C, demb, dout, wte, wpe, wtt, w));
    cudaStream_t s = miles_stream(stream);
    MilesDropDev dd = miles_drop_dev(key);
    /* nothing 16-bit is read or written: the fp16 instantiation serves both */
    auto fn = ln_backward_kernel<MILES_CUDA_F16, 8, 1>;
    MILES_LAUNCH_FN("ln_backward_kernel<F16,8,1>", fn, (unsigned)G, FLN_THREADS,
                    0, s, demb, (uint16_t *)NULL, ws, dout, (const uint16_t *)NULL, ids, tt, wte, wpe, wtt, T, w, mean,
                    rstd, N, C, dd, rng);
    if (dw || db) MILES_TRY(miles_partial_reduce_cuda(dw, db, NULL, ws, G, C, 2 + 1, accumulate, C, 0, stream));
    return MILES_OK;
}
