/*
 * gemm_lowp_avxvnni.c — int8 micro-kernel for CPUs with AVX-VNNI but no
 * AVX-512 (Alder Lake and later client cores): 6 x 16 tile of y in 12 ymm
 * int32 accumulators, VEX vpdpbusd (unsigned W, signed x broadcast per row).
 * Same packed layout and arithmetic as the AVX-512 kernel
 * (gemm_lowp_avx512.c), so the same results; x is converted by the portable
 * prep of gemm_lowp.c.
 */
#include "gemm_lowp.h"

#if defined(__x86_64__) && defined(__AVXVNNI__) && defined(__AVX2__)
#include <immintrin.h>

#define MR 6
#define NR 16

static inline __attribute__((always_inline)) void
int8_tile(const int m, int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, int n,
          const float *sx, const int32_t *cx, const float *sw, const float *bias) {
    __m256i lo[MR], hi[MR];
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) lo[i] = hi[i] = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int q = 0; q < kq; q++, x++, w += 16) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)w);
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + 8));
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            __m256i a = _mm256_set1_epi32((int)x[i * x_rs]);
            lo[i] = _mm256_dpbusd_avx_epi32(lo[i], b0, a);
            hi[i] = _mm256_dpbusd_avx_epi32(hi[i], b1, a);
        }
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i k0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    const __m256i k1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lane);
    const __m256 s0 = _mm256_loadu_ps(sw), s1 = _mm256_loadu_ps(sw + 8);
    const __m256 bias0 = bias ? _mm256_maskload_ps(bias, k0) : _mm256_setzero_ps();
    const __m256 bias1 = bias ? _mm256_maskload_ps(bias + 8, k1) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) {
        __m256 r = _mm256_set1_ps(sx[i]);
        __m256i c = _mm256_set1_epi32(cx[i]);
        __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(lo[i], c)), _mm256_mul_ps(r, s0));
        __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(hi[i], c)), _mm256_mul_ps(r, s1));
        _mm256_maskstore_ps(y + i * ldy, k0, _mm256_add_ps(v0, bias0));
        _mm256_maskstore_ps(y + i * ldy + 8, k1, _mm256_add_ps(v1, bias1));
    }
}

#define INT8_CASE(M) case M: int8_tile(M, kq, x, x_rs, w, y, ldy, n, sx, cx, sw, bias); break;
static void int8_kernel(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, int m,
                        int n, const float *sx, const int32_t *cx, const float *sw, const float *bias) {
    switch (m) {
        INT8_CASE(6) INT8_CASE(5) INT8_CASE(4) INT8_CASE(3) INT8_CASE(2) INT8_CASE(1)
    default: break;
    }
}

static const MilesLowpIsa int8_isa = {"avx_vnni", MR, NR, int8_kernel, NULL};
const MilesLowpIsa *miles_lowp_isa_int8_avxvnni(void) { return &int8_isa; }
#else
const MilesLowpIsa *miles_lowp_isa_int8_avxvnni(void) { return 0; }
#endif
