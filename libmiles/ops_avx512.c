/*
 * ops_avx512.c — erf_chunk and gelu_chunk (ops.c) for AVX-512F, with the
 * bits of miles_erf / gelu_elem for every input float.
 *
 * The vectorized miles_erf computes its three pieces (|x| < 0.8, < 1.3, the
 * tail) for every element and selects one: ~85 zmm operations per 16
 * elements, throughput bound.  Here, per block of up to BLK elements, the
 * first piece (the one most GELU inputs take) is computed for every lane,
 * and the inputs of the two others are sorted out (vcompressps into a
 * register and a plain store: the memory form is microcoded and slow on
 * Zen 4), run through their own piece only, and put back in their lanes with
 * vexpandps.  Zen 4, one thread, x ~ N(0, 1): 1.0 -> 0.57 ns per GELU
 * element (N(0, 0.5^2): 0.48, N(0, 2^2): 0.77; compress/expand and the
 * buffer traffic are the floor, ~0.35 ns).
 *
 * Same bits: each piece is miles_erf's operation sequence, an fmaf one
 * _mm512_fmadd_ps, a separate * and + (no contraction under -std=c11) a
 * separate mul and add, in miles_erf's operand order; the compare/select forms
 * keep its NaN and signed-zero behaviour (see erf_b).  Element-wise, so the
 * block split cannot change a result.  Compiled with -mavx512f (Makefile);
 * ops.c calls it only when the CPU has AVX-512F.  Also the bf16/int8
 * engine's GELU (miles_gelu_fast_elem, one branch-free sequence: no sorting).
 */
#include "ops_internal.h"
#include "avx512_internal.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

#define BLK 512 /* elements per block: its two class buffers (2 KiB each) stay in L1 */

#define INV_SQRT2 0.70710678118654752440f /* as ops.c */

static inline __m512 set1(float v) { return _mm512_set1_ps(v); }

/* r with its sign flipped in the lanes of neg (C's -r, not 0 - r) */
static inline __m512 flip_sign(__m512 r, __mmask16 neg) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    return _mm512_castsi512_ps(_mm512_mask_xor_epi32(_mm512_castps_si512(r), neg, _mm512_castps_si512(r), sign));
}

/* miles_erf for |x| < 0.8: x + x P(x^2) */
static inline __m512 erf_a(__m512 x) {
    const __m512 s = _mm512_mul_ps(x, x);
    __m512 pa = _mm512_fmadd_ps(set1(-6.535350112e-04f), s, set1(5.085150711e-03f));
    pa = _mm512_fmadd_ps(pa, s, set1(-2.682081982e-02f));
    pa = _mm512_fmadd_ps(pa, s, set1(1.128311306e-01f));
    pa = _mm512_fmadd_ps(pa, s, set1(-3.761260211e-01f));
    pa = _mm512_fmadd_ps(pa, s, set1(1.283791661e-01f));
    return _mm512_fmadd_ps(x, pa, x);
}

/* miles_erf for 0.8 <= |x| < 1.3: +-(erf(1) + M(|x| - 1)) */
static inline __m512 erf_m(__m512 x) {
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 t = flip_sign(x, neg);
    const __m512 u = _mm512_sub_ps(t, set1(1.0f));
    __m512 pm = _mm512_fmadd_ps(set1(1.289473195e-02f), u, set1(4.378802143e-03f));
    pm = _mm512_fmadd_ps(pm, u, set1(-6.902019680e-02f));
    pm = _mm512_fmadd_ps(pm, u, set1(6.918602437e-02f));
    pm = _mm512_fmadd_ps(pm, u, set1(1.383655518e-01f));
    pm = _mm512_fmadd_ps(pm, u, set1(-4.151074588e-01f));
    pm = _mm512_fmadd_ps(pm, u, set1(4.151075184e-01f));
    pm = _mm512_fmadd_ps(pm, u, set1(1.344769096e-08f));
    return flip_sign(_mm512_add_ps(set1(8.427007794e-01f), pm), neg);
}

/* miles_erf_exp, op for op (its 2^n built from kf's low bits) */
static inline __m512 erf_exp(__m512 x) {
    const __m512 SHIFTER = set1(12582912.0f); /* 1.5 * 2^23 */
    const __m512 kf = _mm512_fmadd_ps(x, set1(1.44269504088896341f), SHIFTER);
    const __m512 n = _mm512_sub_ps(kf, SHIFTER);
    __m512 r = _mm512_fmadd_ps(n, set1(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, set1(2.12194440e-4f), r); /* -LN2_LO */
    __m512 p = _mm512_fmadd_ps(set1(1.9875691500e-4f), r, set1(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, set1(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, set1(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, set1(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, set1(5.0000001201e-1f));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), set1(1.0f));
    /* (ki - 0x4B400000 + 127) << 23, modulo 2^32 as miles_erf_exp's uint32_t */
    const __m512i bits = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_castps_si512(kf), _mm512_set1_epi32((int)(127u - 0x4B400000u))), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(bits));
}

/* miles_erf for |x| >= 1.3 and NaN: +-(1 - exp(Q(min(|x|, 4)))).  t is
 * miles_erf's x < 0 ? -x : x, not fabs: a NaN keeps its sign through the
 * piece, so every NaN in the chain is the input's quieted NaN (GELU's final
 * product of two NaNs then does not depend on operand order). */
static inline __m512 erf_b(__m512 x) {
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 t = flip_sign(x, neg);
    /* t > 4 ? 4 : (t < 1.3 ? 1.3 : t): vmaxps/vminps return their second
     * operand on NaN, so a NaN t stays NaN as in the C */
    const __m512 tb = _mm512_min_ps(set1(4.0f), _mm512_max_ps(set1(1.3f), t));
    __m512 pb = _mm512_sub_ps(_mm512_mul_ps(set1(1.645554221e-06f), tb), set1(4.663247091e-05f));
    pb = _mm512_add_ps(_mm512_mul_ps(pb, tb), set1(6.041497109e-04f));
    pb = _mm512_sub_ps(_mm512_mul_ps(pb, tb), set1(4.802455660e-03f));
    pb = _mm512_add_ps(_mm512_mul_ps(pb, tb), set1(2.656028047e-02f));
    pb = _mm512_sub_ps(_mm512_mul_ps(pb, tb), set1(1.103477255e-01f));
    pb = _mm512_sub_ps(_mm512_mul_ps(pb, tb), set1(6.315224767e-01f));
    pb = _mm512_sub_ps(_mm512_mul_ps(pb, tb), set1(1.130421042e+00f));
    pb = _mm512_add_ps(_mm512_mul_ps(pb, tb), set1(3.689013829e-04f));
    return flip_sign(_mm512_sub_ps(set1(1.0f), erf_exp(pb)), neg);
}

/* The op on 16 elements v: erf with its argument v, or GELU, whose erf
 * argument is v / sqrt 2 and its result 0.5f * v * (1.0f + erf), rounded as
 * gelu_elem rounds it. */
static inline __attribute__((always_inline)) __m512
op16(__m512 v, int gelu, __m512 (*piece)(__m512)) {
    if (!gelu) return piece(v);
    const __m512 e = piece(_mm512_mul_ps(v, set1(INV_SQRT2)));
    return _mm512_mul_ps(_mm512_mul_ps(set1(0.5f), v), _mm512_add_ps(set1(1.0f), e));
}

/* out[0, n) = erf or GELU of inp[0, n), n a multiple of 16, n <= BLK; out
 * may equal inp (an element is read before its own result is written).
 *   pass 1: the |x| < 0.8 piece for every lane, stored to out (the piece
 *           most inputs of unit scale take: cheaper than moving them), and
 *           the inputs of the two other classes appended to their buffers;
 *   pass 2: each buffer through its own piece, in place;
 *   pass 3: those results expanded over out in their lanes. */
static inline __attribute__((always_inline)) void
block(float *out, const float *inp, size_t n, int gelu) {
    /* class buffers, inputs packed in element order; 16 spare floats for
     * the full-width store of the last append */
    float buf_m[BLK + 16] __attribute__((aligned(64)));
    float buf_b[BLK + 16] __attribute__((aligned(64)));
    __mmask16 mask_m[BLK / 16], mask_b[BLK / 16];
    size_t nm = 0, nb = 0;
    for (size_t j = 0; j < n / 16; j++) {
        const __m512 v = _mm512_loadu_ps(inp + 16 * j);
        /* |z| classifies as miles_erf's t does (t < c is false for NaN) */
        const __m512 t = _mm512_abs_ps(gelu ? _mm512_mul_ps(v, set1(INV_SQRT2)) : v);
        const __mmask16 not_a = _mm512_cmp_ps_mask(t, set1(0.8f), _CMP_NLT_UQ);
        const __mmask16 km = _mm512_mask_cmp_ps_mask(not_a, t, set1(1.3f), _CMP_LT_OQ);
        const __mmask16 kb = _kandn_mask16(km, not_a);
        _mm512_storeu_ps(out + 16 * j, op16(v, gelu, erf_a));
        _mm512_storeu_ps(buf_m + nm, _mm512_maskz_compress_ps(km, v));
        _mm512_storeu_ps(buf_b + nb, _mm512_maskz_compress_ps(kb, v));
        nm += (size_t)__builtin_popcount(km);
        nb += (size_t)__builtin_popcount(kb);
        mask_m[j] = km;
        mask_b[j] = kb;
    }
    /* defined (discarded) values up to the next multiple of 16 */
    _mm512_storeu_ps(buf_m + nm, _mm512_setzero_ps());
    _mm512_storeu_ps(buf_b + nb, _mm512_setzero_ps());
    for (size_t i = 0; i < nm; i += 16) _mm512_storeu_ps(buf_m + i, op16(_mm512_loadu_ps(buf_m + i), gelu, erf_m));
    for (size_t i = 0; i < nb; i += 16) _mm512_storeu_ps(buf_b + i, op16(_mm512_loadu_ps(buf_b + i), gelu, erf_b));
    nm = nb = 0;
    for (size_t j = 0; j < n / 16; j++) {
        const __mmask16 km = mask_m[j], kb = mask_b[j];
        __m512 r = _mm512_mask_expand_ps(_mm512_loadu_ps(out + 16 * j), km, _mm512_loadu_ps(buf_m + nm));
        r = _mm512_mask_expand_ps(r, kb, _mm512_loadu_ps(buf_b + nb));
        _mm512_storeu_ps(out + 16 * j, r);
        nm += (size_t)__builtin_popcount(km);
        nb += (size_t)__builtin_popcount(kb);
    }
}

/* Whole blocks, then the last n % 16 elements through a zero-padded vector. */
static inline __attribute__((always_inline)) void
run(float *out, const float *inp, size_t n, int gelu) {
    const size_t n16 = n & ~(size_t)15;
    for (size_t i = 0; i < n16; i += BLK) block(out + i, inp + i, n16 - i < BLK ? n16 - i : BLK, gelu);
    if (n16 < n) {
        float t[16] __attribute__((aligned(64))) = {0};
        memcpy(t, inp + n16, (n - n16) * sizeof(float));
        block(t, t, 16, gelu);
        memcpy(out + n16, t, (n - n16) * sizeof(float));
    }
}

static void gelu_fast_avx512(float *out, const float *inp, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, miles_gelu_fast16(_mm512_loadu_ps(inp + i)));
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, k, miles_gelu_fast16(_mm512_maskz_loadu_ps(k, inp + i)));
    }
}

static void erf_avx512(float *out, const float *inp, size_t n) { run(out, inp, n, 0); }
static void gelu_avx512(float *out, const float *inp, size_t n) { run(out, inp, n, 1); }

/* LayerNorm's mean and rstd of 16 rows (row stride C), lane g = row g:
 * each 16 x 16 block transposed in registers, then added one column at a
 * time, so every lane runs ln_stats' sequential per-row sums (same order,
 * same bits) while the 16 rows' chains run side by side.  The scalar form
 * (8 interleaved rows, mostly vaddss and shuffles) was ~2.8 cycles per
 * element on Zen 4. */
/* r[k] lane g = x[g*C + c + k], k < 16: the 16 x 16 block at column c of
 * 16 rows, transposed; columns past C (the last block) read as 0 */
static inline void block_t16(__m512 r[16], const float *x, int C, int c) {
    const int n = C - c < 16 ? C - c : 16;
    const __mmask16 k = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
    for (int g = 0; g < 16; g++) r[g] = _mm512_maskz_loadu_ps(k, x + (size_t)g * C + c);
    miles_tr16(r);
}

static void ln_stats16(const float *x, int C, float eps, float *mean, float *rstd) {
    __m512 r[16];
    __m512 s = _mm512_setzero_ps();
    for (int c = 0; c < C; c += 16) {
        block_t16(r, x, C, c);
        for (int k = 0; k < 16 && c + k < C; k++) s = _mm512_add_ps(s, r[k]);
    }
    const __m512 cf = set1((float)C), m = _mm512_div_ps(s, cf);
    /* the centred sum of squares, d * d rounded before the add as in C */
    __m512 v = _mm512_setzero_ps();
    for (int c = 0; c < C; c += 16) {
        block_t16(r, x, C, c);
        for (int k = 0; k < 16 && c + k < C; k++) {
            const __m512 d = _mm512_sub_ps(r[k], m);
            v = _mm512_add_ps(v, _mm512_mul_ps(d, d));
        }
    }
    const __m512 q = _mm512_add_ps(_mm512_div_ps(v, cf), set1(eps));
    _mm512_storeu_ps(mean, m);
    _mm512_storeu_ps(rstd, _mm512_div_ps(set1(1.0f), _mm512_sqrt_ps(q)));
}

MilesEltFn miles_erf_avx512(void) { return erf_avx512; }
MilesEltFn miles_gelu_avx512(void) { return gelu_avx512; }
MilesEltFn miles_gelu_fast_avx512(void) { return gelu_fast_avx512; }
MilesLnStatsFn miles_ln_stats16_avx512(void) { return ln_stats16; }
#else
MilesEltFn miles_erf_avx512(void) { return 0; }
MilesEltFn miles_gelu_avx512(void) { return 0; }
MilesEltFn miles_gelu_fast_avx512(void) { return 0; }
MilesLnStatsFn miles_ln_stats16_avx512(void) { return 0; }
#endif
