/*
 * gemm_lowp_avx512.c — bf16 (AVX512_BF16 vdpbf16ps) and int8 (AVX512_VNNI
 * vpdpbusd) micro-kernels for gemm_lowp.c: a 12 x 32 tile of y in 24 zmm
 * accumulators, one broadcast 32-bit word of x (2 bf16 or 4 uint8) per row and
 * two 16-column groups of packed W per step.  Compiled with the AVX-512
 * BF16/VNNI flags (Makefile) and called only where cpuid reports them.
 */
#include "gemm_lowp.h"

#if defined(__x86_64__) && defined(__AVX512BF16__) && defined(__AVX512VNNI__)
#include <immintrin.h>

#define MR 12
#define NR 32

static inline __mmask16 mask_lo(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }
static inline __mmask16 mask_hi(int n) {
    return n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
}

static inline __attribute__((always_inline)) void
bf16_tile(const int m, int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y,
          size_t ldy, int n, const float *bias) {
    __m512 lo[MR], hi[MR];
    const uint32_t *w0 = w, *w1 = w + (size_t)kq * 16;
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) lo[i] = hi[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int q = 0; q < kq; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(w0 + (size_t)q * 16);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(w1 + (size_t)q * 16);
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)x[i * x_rs + q]);
            lo[i] = _mm512_dpbf16_ps(lo[i], a, b0);
            hi[i] = _mm512_dpbf16_ps(hi[i], a, b1);
        }
    }
    const __mmask16 k0 = mask_lo(n), k1 = mask_hi(n);
    const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(k0, bias) : _mm512_setzero_ps();
    const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(k1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, k0, _mm512_add_ps(lo[i], bias0));
        _mm512_mask_storeu_ps(y + i * ldy + 16, k1, _mm512_add_ps(hi[i], bias1));
    }
}

static inline __attribute__((always_inline)) void
int8_tile(const int m, int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y,
          size_t ldy, int n, const float *sx, const float *sw, const int32_t *corr,
          const float *bias) {
    __m512i lo[MR], hi[MR];
    const uint32_t *w0 = w, *w1 = w + (size_t)kq * 16;
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) lo[i] = hi[i] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int q = 0; q < kq; q++) {
        __m512i b0 = _mm512_loadu_si512(w0 + (size_t)q * 16);
        __m512i b1 = _mm512_loadu_si512(w1 + (size_t)q * 16);
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            __m512i a = _mm512_set1_epi32((int)x[i * x_rs + q]);
            lo[i] = _mm512_dpbusd_epi32(lo[i], a, b0);
            hi[i] = _mm512_dpbusd_epi32(hi[i], a, b1);
        }
    }
    const __mmask16 k0 = mask_lo(n), k1 = mask_hi(n);
    /* sw and corr are padded to whole groups: plain loads */
    const __m512i c0 = _mm512_loadu_si512(corr), c1 = _mm512_loadu_si512(corr + 16);
    const __m512 s0 = _mm512_loadu_ps(sw), s1 = _mm512_loadu_ps(sw + 16);
    const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(k0, bias) : _mm512_setzero_ps();
    const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(k1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) {
        __m512 r = _mm512_set1_ps(sx[i]);
        __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo[i], c0)), _mm512_mul_ps(r, s0));
        __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi[i], c1)), _mm512_mul_ps(r, s1));
        _mm512_mask_storeu_ps(y + i * ldy, k0, _mm512_add_ps(v0, bias0));
        _mm512_mask_storeu_ps(y + i * ldy + 16, k1, _mm512_add_ps(v1, bias1));
    }
}

#define BF16_CASE(M) case M: bf16_tile(M, kq, x, x_rs, w, y, ldy, n, bias); break;
static void bf16_kernel(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y,
                        size_t ldy, int m, int n, const float *sx, const float *sw,
                        const int32_t *corr, const float *bias) {
    (void)sx, (void)sw, (void)corr;
    switch (m) {
        BF16_CASE(12) BF16_CASE(11) BF16_CASE(10) BF16_CASE(9) BF16_CASE(8) BF16_CASE(7)
        BF16_CASE(6) BF16_CASE(5) BF16_CASE(4) BF16_CASE(3) BF16_CASE(2) BF16_CASE(1)
    default: break;
    }
}

#define INT8_CASE(M) case M: int8_tile(M, kq, x, x_rs, w, y, ldy, n, sx, sw, corr, bias); break;
static void int8_kernel(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y,
                        size_t ldy, int m, int n, const float *sx, const float *sw,
                        const int32_t *corr, const float *bias) {
    switch (m) {
        INT8_CASE(12) INT8_CASE(11) INT8_CASE(10) INT8_CASE(9) INT8_CASE(8) INT8_CASE(7)
        INT8_CASE(6) INT8_CASE(5) INT8_CASE(4) INT8_CASE(3) INT8_CASE(2) INT8_CASE(1)
    default: break;
    }
}

static const MilesLowpIsa bf16_isa = {"avx512_bf16", MR, NR, bf16_kernel};
static const MilesLowpIsa int8_isa = {"avx512_vnni", MR, NR, int8_kernel};
const MilesLowpIsa *miles_lowp_isa_bf16_avx512(void) { return &bf16_isa; }
const MilesLowpIsa *miles_lowp_isa_int8_avx512(void) { return &int8_isa; }
#else
const MilesLowpIsa *miles_lowp_isa_bf16_avx512(void) { return 0; }
const MilesLowpIsa *miles_lowp_isa_int8_avx512(void) { return 0; }
#endif
