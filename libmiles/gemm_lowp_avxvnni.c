/*
 * gemm_lowp_avxvnni.c — int8 micro-kernel for CPUs with AVX-VNNI but no
 * AVX-512 (Alder Lake and later client cores): 6 x 16 tile of y in 12 ymm
 * int32 accumulators, VEX vpdpbusd (unsigned W, signed x broadcast per row).
 * Same packed layout and arithmetic as the AVX-512 kernel
 * (gemm_lowp_avx512.c), so the same results; x is converted by the portable
 * prep of gemm_lowp.c.
 */
#include "gemm_lowp.h"
#include "gemm_lowp_asm.h"
#include "avx2_internal.h"

#if defined(__x86_64__) && defined(__AVXVNNI__) && defined(__AVX2__)
#include <immintrin.h>
#include <stdint.h>

#define MR 6
#define NR 16

/* The inner loop in inline asm, as in gemm_lowp_avx512.c: GCC 12 copied and
 * spilled the vpdpbusd accumulators every step (~1/2 of the possible rate).
 * Rows i < m accumulate columns 0-7 in ymm i and 8-15 in ymm 6+i; W in
 * ymm12/13; row i's word broadcast into ymm14 (VEX has no embedded
 * broadcast); rows 3j..3j+2 at p_j, p_j + rs, p_j + 2 rs. */
#define SF_(lo, hi)                                                                       \
    "vpbroadcastd " A_##lo ", %%ymm14\n\t"                                                \
    "%{vex%} vpdpbusd %%ymm14, %%ymm12, %%ymm" #lo "\n\t"                                 \
    "%{vex%} vpdpbusd %%ymm14, %%ymm13, %%ymm" #hi "\n\t"
#define INT8_LOOP(M)                                                                      \
    __asm__ volatile(ROW##M(ZF_) "1:\n\t"                                                 \
                     "vmovdqu (%[w]), %%ymm12\n\t"                                        \
                     "vmovdqu 32(%[w]), %%ymm13\n\t"                                      \
                     "prefetcht0 1024(%[w])\n\t" ROW##M(SF_)                              \
                     LOWP_ASM_TAIL(M, 4))

static inline __attribute__((always_inline)) void
int8_tile(const int m, int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, int n,
          const float *sx, const int32_t *cx, const float *sw, const float *bias) {
    int32_t acc[2 * MR][8] __attribute__((aligned(32)));
    LOWP_RUN_ROWS6(m, x, x_rs, w, kq);
    const __m256i k0 = miles_lanes_below(n), k1 = miles_lanes_below(n - 8);
    const __m256 s0 = _mm256_loadu_ps(sw), s1 = _mm256_loadu_ps(sw + 8);
    const __m256 bias0 = bias ? _mm256_maskload_ps(bias, k0) : _mm256_setzero_ps();
    const __m256 bias1 = bias ? _mm256_maskload_ps(bias + 8, k1) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) {
        __m256 r = _mm256_set1_ps(sx[i]);
        __m256i c = _mm256_set1_epi32(cx[i]);
        __m256i lo = _mm256_load_si256((const __m256i *)acc[i]);
        __m256i hi = _mm256_load_si256((const __m256i *)acc[MR + i]);
        __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(lo, c)), _mm256_mul_ps(r, s0));
        __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(hi, c)), _mm256_mul_ps(r, s1));
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

static const MilesLowpIsa int8_isa = {"avx_vnni", MR, NR, int8_kernel, NULL, NULL, 1};
const MilesLowpIsa *miles_lowp_isa_int8_avxvnni(void) { return &int8_isa; }
#else
const MilesLowpIsa *miles_lowp_isa_int8_avxvnni(void) { return 0; }
#endif
