/*
 * gemm_lowp_avx2.c — int8 micro-kernel for AVX2 CPUs without VNNI (AMD Zen 2
 * and Zen 3, Intel Haswell to Ice Lake client): a 6 x 8 tile of y, the same
 * packed W as the VNNI kernels (4 unsigned bytes u = w_q + 128 of K per
 * column word) and the same arithmetic, so the same bits:
 *
 *   vpdpbusd (u8 x s8, 4 products into int32) has no AVX2 form, and
 *   vpmaddubsw (u8 x s8 pairs into int16) saturates at 2 * 255 * 127; so W's
 *   bytes are widened to int16 as they are loaded (vpmovzxbw: 4 columns x 4
 *   K per register), x arrives already widened (its prep writes int16: 4 K
 *   per 64-bit step), and vpmaddwd sums exact int16 pairs into int32 lanes,
 *   two lanes per column, added by vpaddd.  The two partial sums of a column
 *   are added at the end (vphaddd): integer sums, exact, so the total is the
 *   VNNI kernels' to the bit.
 *
 * The FFN's GELU (miles_gelu_fast8) is applied on the tile before it is
 * stored, as in the AVX-512 kernels.
 *
 * Registers: rows i < m accumulate columns 0-3 in ymm i and 4-7 in ymm 6+i
 * (two int32 lanes per column); W in ymm12/13; row i's step broadcast into
 * ymm14; ymm15 the product.  Per step (4 K): 12 vpmaddwd + 12 vpaddd for
 * 6 x 8 x 4 multiply-adds, twice the fp32 kernel's 6 x 16 x 1 per 12 FMAs.
 */
#include "gemm_lowp.h"
#include "gemm_lowp_asm.h"
#include "avx2_internal.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <stdint.h>

#define MR 6
#define NR 8

/* inline asm as in gemm_lowp_avxvnni.c (GCC 12 spills intrinsics'
 * accumulators; the rows' addressing in gemm_lowp_asm.h).  vbroadcastsd: a load-port broadcast of the row's 4 int16 (vpbroadcastq
 * may cost a shuffle on some cores) */
#define SF_(lo, hi)                                                                       \
    "vbroadcastsd " A_##lo ", %%ymm14\n\t"                                                \
    "vpmaddwd %%ymm14, %%ymm12, %%ymm15\n\t"                                              \
    "vpaddd %%ymm15, %%ymm" #lo ", %%ymm" #lo "\n\t"                                      \
    "vpmaddwd %%ymm14, %%ymm13, %%ymm15\n\t"                                              \
    "vpaddd %%ymm15, %%ymm" #hi ", %%ymm" #hi "\n\t"
/* W: 8 columns of the 16-column group, 32 bytes per step, group stride 64 */
#define INT8_LOOP(M)                                                                      \
    __asm__ volatile(ROW##M(ZF_) "1:\n\t"                                                 \
                     "vpmovzxbw (%[w]), %%ymm12\n\t"                                      \
                     "vpmovzxbw 16(%[w]), %%ymm13\n\t"                                    \
                     "prefetcht0 1024(%[w])\n\t" ROW##M(SF_)                              \
                     LOWP_ASM_TAIL(M, 8))

static inline __attribute__((always_inline)) void
int8_tile(const int m, int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, int n,
          const float *sx, const int32_t *cx, const float *sw, const float *bias, const int gelu) {
    int32_t acc[2 * MR][8] __attribute__((aligned(32)));
    LOWP_RUN_ROWS6(m, x, x_rs, w, kq);
    const __m256i k0 = miles_lanes_below(n);
    const __m256 s0 = _mm256_loadu_ps(sw);
    const __m256 bias0 = bias ? _mm256_maskload_ps(bias, k0) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) {
        /* lanes (c0 c0 c1 c1 | c2 c2 c3 c3) and (c4 c4 c5 c5 | c6 c6 c7 c7):
         * hadd gives (c0 c1 c4 c5 | c2 c3 c6 c7), the permute c0..c7 */
        __m256i lo = _mm256_load_si256((const __m256i *)acc[i]);
        __m256i hi = _mm256_load_si256((const __m256i *)acc[MR + i]);
        __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
        __m256 r = _mm256_set1_ps(sx[i]);
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(s, _mm256_set1_epi32(cx[i]))),
                                 _mm256_mul_ps(r, s0));
        v = _mm256_add_ps(v, bias0);
        /* the FFN's GELU before the store: the bits of the row pass after it */
        _mm256_maskstore_ps(y + i * ldy, k0, gelu ? miles_gelu_fast8(v) : v);
    }
}

#define INT8_CASE(M) case M: int8_tile(M, kq, x, x_rs, w, y, ldy, n, sx, cx, sw, bias, gelu); break;
static inline __attribute__((always_inline)) void
int8_any(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, int m, int n,
         const float *sx, const int32_t *cx, const float *sw, const float *bias, const int gelu) {
    switch (m) {
        INT8_CASE(6) INT8_CASE(5) INT8_CASE(4) INT8_CASE(3) INT8_CASE(2) INT8_CASE(1)
    default: break;
    }
}

static void int8_kernel(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, int m,
                        int n, const float *sx, const int32_t *cx, const float *sw, const float *bias) {
    int8_any(kq, x, x_rs, w, y, ldy, m, n, sx, cx, sw, bias, 0);
}

static void int8_kernel_gelu(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy,
                             int m, int n, const float *sx, const int32_t *cx, const float *sw, const float *bias) {
    int8_any(kq, x, x_rs, w, y, ldy, m, n, sx, cx, sw, bias, 1);
}

/* gemm_lowp.c's prep_int16 (row scale max|v| / 127 over the non-NaN values,
 * v * inv rounded by the 1.5 * 2^23 shifter, clamped to [-127, 127], int16)
 * in 8 lanes: GCC left the C loops scalar on AVX2, their selects being
 * possibly trapping float compares (7% of a MiniLM int8 B32 forward).  The
 * clamp in integers after the conversion (a NaN or inf lane: INT_MIN, then
 * -127, as quantize and the AVX-512 prep), the int16 as the low half of each
 * int32, the sum modulo 2^32.  The row's
 * last K % 8 values go through a zero-padded vector (zeros do not change
 * the max; its padding lanes are masked out of the sum).  test_gemm_lowp
 * compares it with prep_int16. */
static inline __m256i quant8(__m256 v, __m256 inv) {
    const __m256 sh = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23 */
    const __m256 r = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(v, inv), sh), sh);
    /* r is integral or NaN / inf: exact, or INT_MIN, which the clamp makes -127 */
    const __m256i q = _mm256_cvttps_epi32(r);
    return _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
}

static inline void store8_int16(int16_t *d, __m256i q) { /* q in [-127, 127] */
    _mm_storeu_si128((__m128i *)d, _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
}

static void prep_int16_avx2(int int8, const float *x, size_t ldx, int m, int K, int kq, uint32_t *xp, float *sx,
                            int32_t *cx) {
    (void)int8;
    const int K8 = K / 8 * 8, rest = K - K8;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int i = 0; i < m; i++) {
        const float *row = x + (size_t)i * ldx;
        float tail[8] = {0};
        for (int k = 0; k < rest; k++) tail[k] = row[K8 + k];
        /* tail lanes: max(|v|, 0), NaN -> 0, as the C's max skips a NaN */
        __m256 mv = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(tail), absm), _mm256_setzero_ps());
        for (int k = 0; k < K8; k += 8) /* a > mx ? a : mx */
            mv = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(row + k), absm), mv);
        float l[8], mx = 0.0f;
        _mm256_storeu_ps(l, mv);
        for (int j = 0; j < 8; j++) mx = l[j] > mx ? l[j] : mx;
        sx[i] = mx / 127.0f;
        const __m256 inv = _mm256_set1_ps(sx[i] > 0.0f ? 1.0f / sx[i] : 0.0f);
        int16_t *d = (int16_t *)(xp + (size_t)i * 2 * kq);
        __m256i sum = _mm256_setzero_si256();
        for (int k = 0; k < K8; k += 8) {
            const __m256i q = quant8(_mm256_loadu_ps(row + k), inv);
            sum = _mm256_add_epi32(sum, q);
            store8_int16(d + k, q);
        }
        if (rest) { /* the padding lanes left out of the sum (0 * inv is NaN when inv is inf) */
            const __m256i q = quant8(_mm256_loadu_ps(tail), inv);
            sum = _mm256_add_epi32(sum, _mm256_and_si256(q, miles_lanes_below(rest)));
            int16_t t16[8];
            store8_int16(t16, q);
            for (int k = 0; k < rest; k++) d[K8 + k] = t16[k];
        }
        for (int k = K; k < 4 * kq; k++) d[k] = 0;
        uint32_t s[8], total = 0;
        _mm256_storeu_si256((__m256i *)s, sum);
        for (int j = 0; j < 8; j++) total += s[j];
        cx[i] = (int32_t)(128u * total);
    }
}

/* x as int16 (xw = 2 words per step) */
static const MilesLowpIsa int8_isa = {"avx2", MR, NR, int8_kernel, prep_int16_avx2, int8_kernel_gelu, 2};
const MilesLowpIsa *miles_lowp_isa_int8_avx2(void) { return &int8_isa; }
#else
const MilesLowpIsa *miles_lowp_isa_int8_avx2(void) { return 0; }
#endif
