/*
 * gemm_avx2.c — fp32 GEMM micro-kernel for AVX2 + FMA3 (x86-64-v3): a 6 x 16
 * tile of C in 12 ymm accumulators (two per row), the classic register
 * budget of 16 ymm registers (12 + 2 for B + 1 broadcast of A).
 * Compiled with -mavx2 -mfma (Makefile) and called only when the CPU has both
 * (gemm.c); the arithmetic per element is the contract in gemm_internal.h, so
 * it gives the same bits as the AVX-512 and generic kernels.
 */
#include "gemm_internal.h"
#include "avx2_internal.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define MR 6
#define NR 16

static inline __attribute__((always_inline)) void
tile(const int m, int kc, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
     ptrdiff_t b_rs, float *c, ptrdiff_t c_rs, ptrdiff_t c_cs, int n, float alpha, int c_zero,
     const float *c_row) {
    __m256 lo[MR], hi[MR];
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) lo[i] = hi[i] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int p = 0; p < kc; p++) {
        /* pre-packed A panels stream from memory (see gemm_avx512.c) */
        if (a_rs == 1 && a_cs == MR) _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0);
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * a_rs);
            lo[i] = _mm256_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm256_fmadd_ps(ai, b1, hi[i]);
        }
        a += a_cs;
        b += b_rs;
    }
    const __m256 va = _mm256_set1_ps(alpha);
    if (c_cs == 1) {
        const __m256i k0 = miles_lanes_below(n), k1 = miles_lanes_below(n - 8);
        const __m256 r0 = c_row ? _mm256_maskload_ps(c_row, k0) : _mm256_setzero_ps();
        const __m256 r1 = c_row ? _mm256_maskload_ps(c_row + 8, k1) : _mm256_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            float *ci = c + i * c_rs;
            if (n == NR) {
                __m256 c0 = c_zero || c_row ? r0 : _mm256_loadu_ps(ci);
                __m256 c1 = c_zero || c_row ? r1 : _mm256_loadu_ps(ci + 8);
                _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, lo[i], c0));
                _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, hi[i], c1));
            } else {
                __m256 c0 = c_zero || c_row ? r0 : _mm256_maskload_ps(ci, k0);
                __m256 c1 = c_zero || c_row ? r1 : _mm256_maskload_ps(ci + 8, k1);
                _mm256_maskstore_ps(ci, k0, _mm256_fmadd_ps(va, lo[i], c0));
                _mm256_maskstore_ps(ci + 8, k1, _mm256_fmadd_ps(va, hi[i], c1));
            }
        }
    } else { /* C transposed: element by element, scalar FMA (same rounding) */
        float t[MR * NR];
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            _mm256_storeu_ps(t + i * NR, lo[i]);
            _mm256_storeu_ps(t + i * NR + 8, hi[i]);
        }
        const __m128 sa = _mm_set_ss(alpha);
#pragma GCC unroll 16
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float *cij = c + i * c_rs + j * c_cs;
                __m128 c0 = c_zero ? _mm_setzero_ps() : _mm_set_ss(*cij);
                *cij = _mm_cvtss_f32(_mm_fmadd_ss(sa, _mm_set_ss(t[i * NR + j]), c0));
            }
    }
}

#define CASE(M)                                                                          \
    case M:                                                                              \
        if (a_rs == 1 && a_cs == MR)                                                     \
            tile(M, kc, a, 1, MR, b, b_rs, c, c_rs, c_cs, n, alpha, c_zero, c_row);             \
        else if (a_rs == MILES_GEMM_KC && a_cs == 1)                                     \
            tile(M, kc, a, MILES_GEMM_KC, 1, b, b_rs, c, c_rs, c_cs, n, alpha, c_zero, c_row);  \
        else                                                                             \
            tile(M, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, n, alpha, c_zero, c_row);        \
        break;

static void kernel(int kc, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                   ptrdiff_t b_rs, float *c, ptrdiff_t c_rs, ptrdiff_t c_cs, int m, int n,
                   float alpha, int c_zero, const float *c_row) {
    switch (m) {
        CASE(6) CASE(5) CASE(4) CASE(3) CASE(2) CASE(1)
    default: break;
    }
}

static const MilesGemmIsa isa = {"avx2", MR, NR, kernel};
const MilesGemmIsa *miles_gemm_isa_avx2(void) { return &isa; }
#else
const MilesGemmIsa *miles_gemm_isa_avx2(void) { return 0; }
#endif
