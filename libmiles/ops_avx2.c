/*
 * ops_avx2.c — erf_chunk and gelu_chunk (ops.c) for AVX2 + FMA CPUs without
 * AVX-512 (Zen 2/3, Haswell to Ice Lake client), with the bits of miles_erf /
 * gelu_elem for every input float.
 *
 * The generic loop computes all three pieces of miles_erf (|x| < 0.8, < 1.3,
 * the tail) for every element and selects one.  AVX2 has no compress/expand
 * (ops_avx512.c sorts elements by piece), so here each 8-lane vector
 * computes the first piece, and the middle piece and the tail only when one
 * of its lanes needs them: for GELU inputs of unit scale about a fifth of the
 * vectors skip the middle piece and over half skip the tail, the costliest
 * (a polynomial and an exp).
 *
 * Same bits: each piece is ops_avx512.c's (miles_erf's operation sequence,
 * an fmaf one _mm256_fmadd_ps, a separate * and + a separate mul and add, in
 * miles_erf's operand order), selected per lane by miles_erf's comparisons
 * (a NaN takes the tail, as in the C).  Element-wise: no split or tail
 * handling can change a result.  Compiled with -mavx2 -mfma (Makefile);
 * ops.c calls it only when the CPU has both and no AVX-512F.  Also the int8
 * engine's fast GELU (miles_gelu_fast_elem: branch-free, avx2_internal.h)
 * and the attention softmax's exp loop (softmax_exp, ops_internal.h; also
 * the GELU backward's exp), whose C the AVX2 clones left scalar.
 */
#include "ops_internal.h"
#include "avx2_internal.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <string.h>

#define INV_SQRT2 0.70710678118654752440f /* as ops.c */

static inline __m256 set1(float v) { return _mm256_set1_ps(v); }

/* r with its sign flipped in the lanes where neg is all ones (C's -r) */
static inline __m256 flip_sign(__m256 r, __m256 neg) {
    return _mm256_xor_ps(r, _mm256_and_ps(neg, set1(-0.0f)));
}

/* miles_erf for |x| < 0.8: x + x P(x^2) */
static inline __m256 erf_a(__m256 x) {
    const __m256 s = _mm256_mul_ps(x, x);
    __m256 pa = _mm256_fmadd_ps(set1(-6.535350112e-04f), s, set1(5.085150711e-03f));
    pa = _mm256_fmadd_ps(pa, s, set1(-2.682081982e-02f));
    pa = _mm256_fmadd_ps(pa, s, set1(1.128311306e-01f));
    pa = _mm256_fmadd_ps(pa, s, set1(-3.761260211e-01f));
    pa = _mm256_fmadd_ps(pa, s, set1(1.283791661e-01f));
    return _mm256_fmadd_ps(x, pa, x);
}

/* miles_erf for 0.8 <= |x| < 1.3: +-(erf(1) + M(|x| - 1)) */
static inline __m256 erf_m(__m256 x, __m256 neg) {
    const __m256 t = flip_sign(x, neg);
    const __m256 u = _mm256_sub_ps(t, set1(1.0f));
    __m256 pm = _mm256_fmadd_ps(set1(1.289473195e-02f), u, set1(4.378802143e-03f));
    pm = _mm256_fmadd_ps(pm, u, set1(-6.902019680e-02f));
    pm = _mm256_fmadd_ps(pm, u, set1(6.918602437e-02f));
    pm = _mm256_fmadd_ps(pm, u, set1(1.383655518e-01f));
    pm = _mm256_fmadd_ps(pm, u, set1(-4.151074588e-01f));
    pm = _mm256_fmadd_ps(pm, u, set1(4.151075184e-01f));
    pm = _mm256_fmadd_ps(pm, u, set1(1.344769096e-08f));
    return flip_sign(_mm256_add_ps(set1(8.427007794e-01f), pm), neg);
}

/* miles_erf_exp, op for op (its 2^n built from kf's low bits) */
static inline __m256 erf_exp(__m256 x) {
    const __m256 SHIFTER = set1(12582912.0f); /* 1.5 * 2^23 */
    const __m256 kf = _mm256_fmadd_ps(x, set1(1.44269504088896341f), SHIFTER);
    const __m256 n = _mm256_sub_ps(kf, SHIFTER);
    __m256 r = _mm256_fmadd_ps(n, set1(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, set1(2.12194440e-4f), r); /* -LN2_LO */
    __m256 p = _mm256_fmadd_ps(set1(1.9875691500e-4f), r, set1(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, set1(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, set1(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, set1(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, set1(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), set1(1.0f));
    /* (ki - 0x4B400000 + 127) << 23, modulo 2^32 as miles_erf_exp's uint32_t */
    const __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_castps_si256(kf), _mm256_set1_epi32((int)(127u - 0x4B400000u))), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

/* miles_erf for |x| >= 1.3 and NaN: +-(1 - exp(Q(min(|x|, 4)))); t keeps a
 * NaN's sign as miles_erf's x < 0 ? -x : x does (see ops_avx512.c) */
static inline __m256 erf_b(__m256 x, __m256 neg) {
    const __m256 t = flip_sign(x, neg);
    /* t > 4 ? 4 : (t < 1.3 ? 1.3 : t): vmaxps/vminps return their second
     * operand on NaN, so a NaN t stays NaN as in the C */
    const __m256 tb = _mm256_min_ps(set1(4.0f), _mm256_max_ps(set1(1.3f), t));
    __m256 pb = _mm256_sub_ps(_mm256_mul_ps(set1(1.645554221e-06f), tb), set1(4.663247091e-05f));
    pb = _mm256_add_ps(_mm256_mul_ps(pb, tb), set1(6.041497109e-04f));
    pb = _mm256_sub_ps(_mm256_mul_ps(pb, tb), set1(4.802455660e-03f));
    pb = _mm256_add_ps(_mm256_mul_ps(pb, tb), set1(2.656028047e-02f));
    pb = _mm256_sub_ps(_mm256_mul_ps(pb, tb), set1(1.103477255e-01f));
    pb = _mm256_sub_ps(_mm256_mul_ps(pb, tb), set1(6.315224767e-01f));
    pb = _mm256_sub_ps(_mm256_mul_ps(pb, tb), set1(1.130421042e+00f));
    pb = _mm256_add_ps(_mm256_mul_ps(pb, tb), set1(3.689013829e-04f));
    return flip_sign(_mm256_sub_ps(set1(1.0f), erf_exp(pb)), neg);
}

/* miles_erf of 8 lanes: the first piece, then the others where a lane
 * needs them (t < c is false for NaN: a NaN lane takes the tail) */
static inline __attribute__((always_inline)) __m256 erf8(__m256 x) {
    __m256 r = erf_a(x);
    const __m256 t = _mm256_andnot_ps(set1(-0.0f), x);
    const __m256 not_a = _mm256_cmp_ps(t, set1(0.8f), _CMP_NLT_UQ);
    if (_mm256_movemask_ps(not_a) == 0) return r;
    const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 km = _mm256_and_ps(not_a, _mm256_cmp_ps(t, set1(1.3f), _CMP_LT_OQ));
    const __m256 kb = _mm256_andnot_ps(km, not_a);
    if (_mm256_movemask_ps(km)) r = _mm256_blendv_ps(r, erf_m(x, neg), km);
    if (_mm256_movemask_ps(kb)) r = _mm256_blendv_ps(r, erf_b(x, neg), kb);
    return r;
}

/* softmax_exp (ops_internal.h) op for op, 8 lanes: no FMA (the C has a
 * separate * and + everywhere), the clamp as max_ps (x > -87 ? x : -87: the
 * C's clamp for every non-NaN x), the integer steps as epi32, and the C's
 * final choice per lane: e where x >= -87, x itself where x is NaN, else 0. */
static inline __attribute__((always_inline)) __m256 softmax_exp8(__m256 x) {
    const __m256 xc = _mm256_max_ps(x, set1(-87.0f));
    const __m256 kf = _mm256_add_ps(_mm256_mul_ps(xc, set1(1.44269504088896341f)), set1(12582912.0f));
    const __m256i ki = _mm256_sub_epi32(_mm256_castps_si256(kf), _mm256_set1_epi32(0x4B400000));
    const __m256 n = _mm256_sub_ps(kf, set1(12582912.0f));
    const __m256 r = _mm256_sub_ps(_mm256_sub_ps(xc, _mm256_mul_ps(n, set1(0.693359375f))),
                                   _mm256_mul_ps(n, set1(-2.12194440e-4f)));
    __m256 p = set1(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), set1(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), set1(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), set1(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), set1(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), set1(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), set1(1.0f));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ki, _mm256_set1_epi32(127)), 23));
    const __m256 e = _mm256_mul_ps(y, scale);
    const __m256 low = _mm256_and_ps(x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); /* NaN: x; else +0 */
    return _mm256_blendv_ps(low, e, _mm256_cmp_ps(x, set1(-87.0f), _CMP_GE_OQ));
}

/* The element-wise ops of this file on 8 lanes: erf of v; GELU, 0.5f * v *
 * (1.0f + erf(v / sqrt 2)) rounded as gelu_elem rounds it; the int8
 * engine's fast GELU; the softmax exp of v - m */
enum { OP_ERF, OP_GELU, OP_GELU_FAST, OP_EXP_SHIFT };
static inline __attribute__((always_inline)) __m256 op8(__m256 v, int op, __m256 m) {
    switch (op) {
    case OP_ERF: return erf8(v);
    case OP_GELU: {
        const __m256 e = erf8(_mm256_mul_ps(v, set1(INV_SQRT2)));
        return _mm256_mul_ps(_mm256_mul_ps(set1(0.5f), v), _mm256_add_ps(set1(1.0f), e));
    }
    case OP_GELU_FAST: return miles_gelu_fast8(v);
    default: return softmax_exp8(_mm256_sub_ps(v, m));
    }
}

/* out[i] = op(inp[i]), i < n (out may be inp); the last n % 8 through a
 * zero-padded vector whose extra lanes are dropped */
static inline __attribute__((always_inline)) void run(float *out, const float *inp, size_t n, int op, __m256 m) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, op8(_mm256_loadu_ps(inp + i), op, m));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, inp + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(t, op8(_mm256_loadu_ps(t), op, m));
        memcpy(out + i, t, (n - i) * sizeof(float));
    }
}

static void erf_avx2(float *out, const float *inp, size_t n) { run(out, inp, n, OP_ERF, set1(0.0f)); }
static void gelu_avx2(float *out, const float *inp, size_t n) { run(out, inp, n, OP_GELU, set1(0.0f)); }
/* miles_gelu_fast_range's loop (the int8 engine's GELU) */
static void gelu_fast_avx2(float *out, const float *inp, size_t n) {
    run(out, inp, n, OP_GELU_FAST, set1(0.0f));
}

static void softmax_exp_avx2(float *row, int n, float mx) { run(row, row, (size_t)n, OP_EXP_SHIFT, set1(mx)); }

MilesEltFn miles_erf_avx2(void) { return erf_avx2; }
MilesEltFn miles_gelu_avx2(void) { return gelu_avx2; }
MilesEltFn miles_gelu_fast_avx2(void) { return gelu_fast_avx2; }
MilesExpShiftFn miles_softmax_exp_avx2(void) { return softmax_exp_avx2; }
#else
MilesEltFn miles_erf_avx2(void) { return 0; }
MilesEltFn miles_gelu_avx2(void) { return 0; }
MilesEltFn miles_gelu_fast_avx2(void) { return 0; }
MilesExpShiftFn miles_softmax_exp_avx2(void) { return 0; }
#endif
