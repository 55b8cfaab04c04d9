/*
 * avx2_internal.h — small AVX2 + FMA helpers shared by the files compiled
 * with -mavx2 -mfma (ops_avx2.c, gemm_avx2.c, gemm_lowp_avx2.c,
 * gemm_lowp_avxvnni.c).  Include only from those.
 */
#ifndef MILES_AVX2_INTERNAL_H
#define MILES_AVX2_INTERNAL_H

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* Lane i all ones where i < n, for maskload / maskstore / and on a tile's
 * last columns (n <= 0 gives no lane, n >= 8 every lane). */
static inline __m256i miles_lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* miles_gelu_fast_elem (ops_internal.h), op for op, 8 lanes: ops_avx2.c's
 * loop and the int8 GEMM epilogue of gemm_lowp_avx2.c; avx512_internal.h's
 * miles_gelu_fast16 in ymm (clamps bound first, so a NaN z passes through
 * as in the C's compares; the true division; the saturation as blends). */
static inline __m256 miles_gelu_fast8(__m256 x) {
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f)); /* 1/sqrt(2), as ops.c */
    const __m256 c = _mm256_min_ps(_mm256_set1_ps(4.0f), _mm256_max_ps(_mm256_set1_ps(-4.0f), z));
    const __m256 s = _mm256_mul_ps(c, c);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(-2.72614225801306e-10f), s, _mm256_set1_ps(2.77068142495902e-08f));
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(-1.45660718464996e-05f), s, _mm256_set1_ps(-2.13374055278905e-04f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-2.10102402082508e-06f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-1.68282697438203e-03f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-5.69250639462346e-05f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-7.37332916720468e-03f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-7.34990630326855e-04f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-1.42647390514189e-02f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-1.60960333262415e-02f));
    __m256 e = _mm256_div_ps(_mm256_mul_ps(c, p), q);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(1.0f), _mm256_cmp_ps(z, _mm256_set1_ps(3.92f), _CMP_GE_OQ));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(-1.0f), _mm256_cmp_ps(z, _mm256_set1_ps(-3.92f), _CMP_LE_OQ));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
#endif

#endif
