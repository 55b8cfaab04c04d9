/*
 * attention.cu — multi-head self-attention core mirroring
 * libmiles/ops_attention.c (HF BertSelfAttention after the projections):
 *
 *   att  = softmax over real keys of scale * q_h k_h^T   [B,NH,T,T]
 *   attd = dropout(att)  (only when attd != NULL and key.p > 0)
 *   out_h = (attd or att) @ v_h
 *
 * GEMMs: cuBLAS strided-batched calls straight on the interleaved [B,T,C]
 * layout.  Head h of batch b starts at b*T*C + h*hs with leading dimension C,
 * so with b fixed the heads are a batch of stride hs, and with h fixed the
 * batch rows are a batch of stride T*C.  We loop over the smaller of B and NH
 * and batch over the other: no permute copies and no workspace.
 *
 * Softmax: one warp per score row, fused with the padding mask (masked keys
 * get exactly 0, a batch row without any real key gets an all-zero row) and
 * the attention dropout (the CPU's counter mapping: flat index into att).
 */
#include "common.cuh"
#include "philox.cuh"

#include <math.h>

#define SM_WARPS 8 /* rows per block */

/* rows = B*NH*T; row r belongs to batch b = r / (NH*T). */
__global__ void attention_softmax_kernel(float *att, float *attd, const int32_t *mask, int B,
                                         int NH, int T, int use_drop, MilesDropDev drop) {
    size_t row = (size_t)blockIdx.x * SM_WARPS + (threadIdx.x >> 5);
    size_t rows = (size_t)B * NH * T;
    if (row >= rows) return;
    int lane = threadIdx.x & 31;
    size_t b = row / ((size_t)NH * T);
    const int32_t *m = mask ? mask + b * T : NULL;
    float *a = att + row * T;
    float *d = use_drop ? attd + row * T : NULL;
    uint64_t base = (uint64_t)row * T; /* flat index of a[0] in att */

    int nreal = 0;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += 32) {
        if (!m || m[j]) {
            nreal++;
            mx = fmaxf(mx, a[j]);
        }
    }
    for (int o = 16; o > 0; o >>= 1) nreal += __shfl_xor_sync(0xffffffffu, nreal, o);
    if (nreal == 0) { /* no real key in this batch row: att = 0 (and out = 0) */
        for (int j = lane; j < T; j += 32) {
            a[j] = 0.0f;
            if (d) d[j] = 0.0f;
        }
        return;
    }
    mx = miles_warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float e = (!m || m[j]) ? expf(a[j] - mx) : 0.0f;
        a[j] = e;
        sum += e;
    }
    float inv = 1.0f / miles_warp_sum(sum); /* sum >= 1: the max term is exp(0) */
    for (int j = lane; j < T; j += 32) {
        float p = a[j] * inv;
        a[j] = p;
        if (d) d[j] = miles_dropout_apply(drop, miles_dropout_keep(drop, base + j), p);
    }
}

/* In place on S = dL/dP (one warp per row): through the dropout (same
 * mask), then the softmax Jacobian  S = att * (S - sum_j att*S). */
__global__ void attention_softmax_backward_kernel(float *S, const float *att, int rows, int T,
                                                  int use_drop, MilesDropDev drop) {
    size_t row = (size_t)blockIdx.x * SM_WARPS + (threadIdx.x >> 5);
    if (row >= (size_t)rows) return;
    int lane = threadIdx.x & 31;
    float *s = S + row * T;
    const float *a = att + row * T;
    uint64_t base = (uint64_t)row * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float g = s[j];
        if (use_drop) g = miles_dropout_apply(drop, miles_dropout_keep(drop, base + j), g);
        s[j] = g;
        dot += a[j] * g;
    }
    dot = miles_warp_sum(dot);
    for (int j = lane; j < T; j += 32) s[j] = a[j] * (s[j] - dot);
}

/* Offsets/strides of one batched GEMM group (see the header comment). */
struct HeadBatch {
    int outer, inner;          /* loop count, batch count */
    long long x_outer, x_inner; /* [B,T,C] tensors: offset per outer / inner index */
    long long a_outer, a_inner; /* [B,NH,T,T] tensors */
};

static HeadBatch head_batch(int B, int T, int C, int NH) {
    HeadBatch hb;
    long long TT = (long long)T * T, hs = C / NH;
    if (B <= NH) { /* loop over b, batch over heads */
        hb.outer = B;
        hb.inner = NH;
        hb.x_outer = (long long)T * C;
        hb.x_inner = hs;
        hb.a_outer = NH * TT;
        hb.a_inner = TT;
    } else { /* loop over heads, batch over b */
        hb.outer = NH;
        hb.inner = B;
        hb.x_outer = hs;
        hb.x_inner = (long long)T * C;
        hb.a_outer = TT;
        hb.a_inner = NH * TT;
    }
    return hb;
}

static int attn_check(const char *fn, int B, int T, int C, int NH) {
    if (B < 0 || T <= 0 || C <= 0 || NH <= 0 || C % NH != 0)
        return miles_error(MILES_EINVAL, "%s: bad shape B=%d T=%d C=%d NH=%d (C %% NH must be 0)",
                           fn, B, T, C, NH);
    return MILES_OK;
}

extern "C" int attention_forward_cuda(float *out, float *att, float *attd, const float *q,
                                      const float *k, const float *v, const int32_t *mask, int B,
                                      int T, int C, int NH, MilesDropoutKey key,
                                      miles_cuda_stream stream) {
    MILES_TRY(attn_check("attention_forward_cuda", B, T, C, NH));
    if (B == 0) return MILES_OK;
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int use_drop = attd != NULL && key.p > 0.0f;
    HeadBatch hb = head_batch(B, T, C, NH);
    cudaStream_t s = miles_stream(stream);

    /* att[T,T] = scale * q_h[T,hs] @ k_h[T,hs]^T */
    for (int o = 0; o < hb.outer; o++)
        MILES_TRY(miles_gemm_strided_batched_cuda(
            0, 1, T, T, hs, scale, q + o * hb.x_outer, C, hb.x_inner, k + o * hb.x_outer, C,
            hb.x_inner, 0.0f, att + o * hb.a_outer, T, hb.a_inner, hb.inner, stream));

    size_t rows = (size_t)B * NH * T;
    MILES_LAUNCH(attention_softmax_kernel, (unsigned)((rows + SM_WARPS - 1) / SM_WARPS), 32 * SM_WARPS, 0, s,
                 att, attd, mask, B, NH, T, use_drop, miles_drop_dev(key));

    /* out_h[T,hs] = P[T,T] @ v_h[T,hs] */
    const float *P = use_drop ? attd : att;
    for (int o = 0; o < hb.outer; o++)
        MILES_TRY(miles_gemm_strided_batched_cuda(
            0, 0, T, hs, T, 1.0f, P + o * hb.a_outer, T, hb.a_inner, v + o * hb.x_outer, C,
            hb.x_inner, 0.0f, out + o * hb.x_outer, C, hb.x_inner, hb.inner, stream));
    return MILES_OK;
}

extern "C" int attention_backward_cuda(float *dq, float *dk, float *dv, float *scratch,
                                       const float *dout, const float *att, const float *attd,
                                       const float *q, const float *k, const float *v, int B,
                                       int T, int C, int NH, MilesDropoutKey key,
                                       miles_cuda_stream stream) {
    MILES_TRY(attn_check("attention_backward_cuda", B, T, C, NH));
    if (B == 0) return MILES_OK;
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int use_drop = attd != NULL && key.p > 0.0f;
    const float *P = use_drop ? attd : att;
    HeadBatch hb = head_batch(B, T, C, NH);
    cudaStream_t s = miles_stream(stream);

    /* dv_h[T,hs] += P^T @ dout_h */
    if (dv)
        for (int o = 0; o < hb.outer; o++)
            MILES_TRY(miles_gemm_strided_batched_cuda(
                1, 0, T, hs, T, 1.0f, P + o * hb.a_outer, T, hb.a_inner, dout + o * hb.x_outer,
                C, hb.x_inner, 1.0f, dv + o * hb.x_outer, C, hb.x_inner, hb.inner, stream));
    if (!dq && !dk) return MILES_OK;

    /* S[T,T] = dout_h @ v_h^T = dL/dP */
    for (int o = 0; o < hb.outer; o++)
        MILES_TRY(miles_gemm_strided_batched_cuda(
            0, 1, T, T, hs, 1.0f, dout + o * hb.x_outer, C, hb.x_inner, v + o * hb.x_outer, C,
            hb.x_inner, 0.0f, scratch + o * hb.a_outer, T, hb.a_inner, hb.inner, stream));

    size_t rows = (size_t)B * NH * T;
    MILES_LAUNCH(attention_softmax_backward_kernel, (unsigned)((rows + SM_WARPS - 1) / SM_WARPS),
                 32 * SM_WARPS, 0, s, scratch, att, (int)rows, T, use_drop, miles_drop_dev(key));

    /* dq_h += scale * S @ k_h;  dk_h += scale * S^T @ q_h */
    for (int o = 0; o < hb.outer; o++) {
        if (dq)
            MILES_TRY(miles_gemm_strided_batched_cuda(
                0, 0, T, hs, T, scale, scratch + o * hb.a_outer, T, hb.a_inner,
                k + o * hb.x_outer, C, hb.x_inner, 1.0f, dq + o * hb.x_outer, C, hb.x_inner,
                hb.inner, stream));
        if (dk)
            MILES_TRY(miles_gemm_strided_batched_cuda(
                1, 0, T, hs, T, scale, scratch + o * hb.a_outer, T, hb.a_inner,
                q + o * hb.x_outer, C, hb.x_inner, 1.0f, dk + o * hb.x_outer, C, hb.x_inner,
                hb.inner, stream));
    }
    return MILES_OK;
}
