/*
 * avx512_internal.h — small AVX-512F helpers shared by the files compiled
 * with -mavx512f (gemm_avx512.c, gemm_lowp_avx512.c, ops_avx512.c).  Include
 * only from those.
 */
#ifndef MILES_AVX512_INTERNAL_H
#define MILES_AVX512_INTERNAL_H

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

/* 16 x 16 transpose in registers: 2-lane interleaves, then 4-lane, then
 * 128-bit blocks twice (64 shuffles where 16 gathers cost several times
 * more on AMD cores).  r[i] lane j <- r[j] lane i. */
static inline void miles_tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 2; i++)
        for (int q = 0; q < 4; q++) {
            t[8 * i + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0x88);
            t[8 * i + 4 + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0xDD);
        }
    for (int q = 0; q < 8; q++) {
        r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);
        r[q + 8] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xDD);
    }
}

static inline __m512 miles_s1(float v) { return _mm512_set1_ps(v); }

/* miles_gelu_fast_elem (ops_internal.h), op for op, 16 lanes: ops_avx512.c's
 * loop and the bf16/int8 GEMM epilogues of gemm_lowp_avx512.c (the same bits
 * as that loop over their output).  The clamps as vmaxps/vminps with the
 * bound first (they return the second operand, z, when it is NaN, as the C's
 * compares do), the true division, the saturation as masked moves. */
static inline __m512 miles_gelu_fast16(__m512 x) {
    const __m512 z = _mm512_mul_ps(x, miles_s1(0.70710678118654752440f)); /* 1/sqrt(2), as ops.c */
    const __m512 c = _mm512_min_ps(miles_s1(4.0f), _mm512_max_ps(miles_s1(-4.0f), z));
    const __m512 s = _mm512_mul_ps(c, c);
    __m512 p = _mm512_fmadd_ps(miles_s1(-2.72614225801306e-10f), s, miles_s1(2.77068142495902e-08f));
    __m512 q = _mm512_fmadd_ps(miles_s1(-1.45660718464996e-05f), s, miles_s1(-2.13374055278905e-04f));
    p = _mm512_fmadd_ps(p, s, miles_s1(-2.10102402082508e-06f));
    q = _mm512_fmadd_ps(q, s, miles_s1(-1.68282697438203e-03f));
    p = _mm512_fmadd_ps(p, s, miles_s1(-5.69250639462346e-05f));
    q = _mm512_fmadd_ps(q, s, miles_s1(-7.37332916720468e-03f));
    p = _mm512_fmadd_ps(p, s, miles_s1(-7.34990630326855e-04f));
    q = _mm512_fmadd_ps(q, s, miles_s1(-1.42647390514189e-02f));
    p = _mm512_fmadd_ps(p, s, miles_s1(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, s, miles_s1(-1.60960333262415e-02f));
    __m512 e = _mm512_div_ps(_mm512_mul_ps(c, p), q);
    e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(z, miles_s1(3.92f), _CMP_GE_OQ), miles_s1(1.0f));
    e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(z, miles_s1(-3.92f), _CMP_LE_OQ), miles_s1(-1.0f));
    return _mm512_mul_ps(_mm512_mul_ps(miles_s1(0.5f), x), _mm512_add_ps(miles_s1(1.0f), e));
}
#endif

#endif
