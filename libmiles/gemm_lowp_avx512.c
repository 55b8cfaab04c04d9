/*
 * gemm_lowp_avx512.c — bf16 (AVX512_BF16 vdpbf16ps) and int8 (AVX512_VNNI
 * vpdpbusd) micro-kernels for gemm_lowp.c, 24 zmm accumulators each:
 * bf16 a 12 x 32 tile (intrinsics: GCC's code runs at the instruction's
 * ceiling), int8 an 8 x 48 tile whose inner loop is inline asm (GCC's code
 * for the intrinsics ran at ~40% of the ceiling).  Also the vectorized int8
 * conversion of x (per-row absmax, quantization and the row correction).
 * Compiled with the AVX-512 BF16/VNNI flags (Makefile) and called only where
 * cpuid reports them.
 */
#include "gemm_lowp.h"
#include "avx512_internal.h"

#if defined(__x86_64__) && defined(__AVX512BF16__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#include <stdint.h>

#define MR 12
#define NR 32

static inline __mmask16 mask_lo(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }
static inline __mmask16 mask_hi(int n) {
    return n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
}

/* The int8 kernel: an 8 x 48 tile (IMR x INR) in 24 zmm accumulators.  Its
 * inner loop is inline asm: GCC 12 kept neither the accumulators of
 * vpdpbusd in registers (it copied and spilled them every step) nor the loads
 * it could fold, which halved the rate.  Per step (4 bytes of K): W's three
 * 16-column groups into zmm24-26 (unsigned), each row's word of x broadcast
 * into zmm27-30 (vpbroadcastd from memory: a load, no vector ALU slot), 24
 * vpdpbusd: 11 loads per 24 dot products (a 12 x 32 tile with x as the
 * {1to16} operand needs 26 and ran ~20% slower).  Rows i < m accumulate
 * columns 0-15 / 16-31 / 32-47 in zmm i / 8+i / 16+i; rows 3j..3j+2 are
 * addressed as p_j, p_j + rs, p_j + 2 rs.  The sums go to acc[24][16] for
 * the C epilogue. */
#define IMR 8
#define INR 48
#define A_0 "(%[p0])"
#define A_1 "(%[p0],%[rs],1)"
#define A_2 "(%[p0],%[rs],2)"
#define A_3 "(%[p1])"
#define A_4 "(%[p1],%[rs],1)"
#define A_5 "(%[p1],%[rs],2)"
#define A_6 "(%[p2])"
#define A_7 "(%[p2],%[rs],1)"
#define B_0 "27"
#define B_1 "28"
#define B_2 "29"
#define B_3 "30"
#define B_4 "27"
#define B_5 "28"
#define B_6 "29"
#define B_7 "30"
#define Z_(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
#define ZF_(a, b, c) Z_(a) Z_(b) Z_(c)
#define SF_(a, b, c)                                                                      \
    "vpbroadcastd " A_##a ", %%zmm" B_##a "\n\t"                                          \
    "vpdpbusd %%zmm" B_##a ", %%zmm24, %%zmm" #a "\n\t"                                   \
    "vpdpbusd %%zmm" B_##a ", %%zmm25, %%zmm" #b "\n\t"                                   \
    "vpdpbusd %%zmm" B_##a ", %%zmm26, %%zmm" #c "\n\t"
#define TF_(a, b, c)                                                                      \
    "vmovdqu64 %%zmm" #a ", " #a "*64(%[acc])\n\t"                                        \
    "vmovdqu64 %%zmm" #b ", " #b "*64(%[acc])\n\t"                                        \
    "vmovdqu64 %%zmm" #c ", " #c "*64(%[acc])\n\t"
#define ROW1(F) F(0, 8, 16)
#define ROW2(F) ROW1(F) F(1, 9, 17)
#define ROW3(F) ROW2(F) F(2, 10, 18)
#define ROW4(F) ROW3(F) F(3, 11, 19)
#define ROW5(F) ROW4(F) F(4, 12, 20)
#define ROW6(F) ROW5(F) F(5, 13, 21)
#define ROW7(F) ROW6(F) F(6, 14, 22)
#define ROW8(F) ROW7(F) F(7, 15, 23)
#ifndef LOWP_PF
#define LOWP_PF "1024"
#endif
#define INT8_LOOP(M)                                                                      \
    __asm__ volatile(ROW##M(ZF_) "1:\n\t"                                                 \
                     "vmovdqu64 (%[w]), %%zmm24\n\t"                                      \
                     "vmovdqu64 (%[w],%[g],1), %%zmm25\n\t"                               \
                     "vmovdqu64 (%[w],%[g],2), %%zmm26\n\t"                               \
                     "prefetcht0 " LOWP_PF "(%[w])\n\t"                                   \
                     "prefetcht0 " LOWP_PF "(%[w],%[g],1)\n\t"                            \
                     "prefetcht0 " LOWP_PF "(%[w],%[g],2)\n\t" ROW##M(SF_)                \
                     "add $4, %[p0]\n\t"                                                  \
                     "add $4, %[p1]\n\t"                                                  \
                     "add $4, %[p2]\n\t"                                                  \
                     "add $64, %[w]\n\t"                                                  \
                     "dec %[k]\n\t"                                                       \
                     "jnz 1b\n\t" ROW##M(TF_)                                             \
                     : [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [w] "+r"(wp),         \
                       [k] "+r"(kk)                                                       \
                     : [rs] "r"(rs), [g] "r"(g), [acc] "r"(acc)                           \
                     : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7",    \
                       "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14",       \
                       "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21",     \
                       "zmm22", "zmm23", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28",     \
                       "zmm29", "zmm30", "memory", "cc")

static inline __mmask16 mask_part(int n, int j0) {
    return n >= j0 + 16 ? 0xFFFF : n <= j0 ? 0 : (__mmask16)((1u << (n - j0)) - 1);
}

static inline __attribute__((always_inline)) void
int8_body(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, int m, int n,
          const float *sx, const int32_t *cx, const float *sw, const float *bias, const int gelu) {
    int32_t acc[3 * IMR][16] __attribute__((aligned(64)));
    {
        /* integer addresses: rows >= m are never read, their pointers may lie past x */
        const long rs = (long)(x_rs * sizeof(uint32_t)), g = (long)kq * 64;
        uintptr_t p0 = (uintptr_t)x, p1 = p0 + 3 * rs, p2 = p0 + 6 * rs;
        const uint32_t *wp = w;
        long kk = kq;
        switch (m) {
        case 8: INT8_LOOP(8); break;
        case 7: INT8_LOOP(7); break;
        case 6: INT8_LOOP(6); break;
        case 5: INT8_LOOP(5); break;
        case 4: INT8_LOOP(4); break;
        case 3: INT8_LOOP(3); break;
        case 2: INT8_LOOP(2); break;
        default: INT8_LOOP(1); break;
        }
    }
    /* acc = sum (w_q + 128) x_q: unsigned W, signed x */
    __mmask16 km[3];
    __m512 s[3], bv[3];
    for (int c = 0; c < 3; c++) {
        km[c] = mask_part(n, 16 * c);
        s[c] = _mm512_loadu_ps(sw + 16 * c); /* padded to INR: plain loads */
        bv[c] = bias ? _mm512_maskz_loadu_ps(km[c], bias + 16 * c) : _mm512_setzero_ps();
    }
    for (int i = 0; i < m; i++) {
        const __m512 r = _mm512_set1_ps(sx[i]);
        const __m512i cc = _mm512_set1_epi32(cx[i]);
        for (int c = 0; c < 3; c++) {
            __m512i a = _mm512_load_si512(acc[c * IMR + i]);
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a, cc)), _mm512_mul_ps(r, s[c]));
            v = _mm512_add_ps(v, bv[c]);
            _mm512_mask_storeu_ps(y + i * ldy + 16 * c, km[c], gelu ? miles_gelu_fast16(v) : v);
        }
    }
}

static void int8_kernel(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y,
                        size_t ldy, int m, int n, const float *sx, const int32_t *cx,
                        const float *sw, const float *bias) {
    int8_body(kq, x, x_rs, w, y, ldy, m, n, sx, cx, sw, bias, 0);
}

/* y = gelu_fast(y) before the store: the FFN's first GEMM without a pass
 * over y after it (in the host's slow state that pass cost 2.5x its cycles) */
static void int8_kernel_gelu(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y,
                             size_t ldy, int m, int n, const float *sx, const int32_t *cx,
                             const float *sw, const float *bias) {
    int8_body(kq, x, x_rs, w, y, ldy, m, n, sx, cx, sw, bias, 1);
}

/* bf16 stays in intrinsics: GCC's code (a vpbroadcastd per row into a
 * register) runs vdpbf16ps at ~97% of its measured peak here, while an asm
 * loop with vdpbf16ps' {1to16} memory operand ran ~25% slower on Zen 5. */
static inline __attribute__((always_inline)) void
bf16_tile(const int m, int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y,
          size_t ldy, int n, const float *bias, const int gelu) {
    __m512 lo[MR], hi[MR];
    const uint32_t *w0 = w, *w1 = w + (size_t)kq * 16;
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) lo[i] = hi[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int q = 0; q < kq; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(w0 + (size_t)q * 16);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(w1 + (size_t)q * 16);
        _mm_prefetch((const char *)(w0 + (size_t)q * 16) + 1024, _MM_HINT_T0); /* as the int8 loop */
        _mm_prefetch((const char *)(w1 + (size_t)q * 16) + 1024, _MM_HINT_T0);
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
        __m512 v0 = _mm512_add_ps(lo[i], bias0), v1 = _mm512_add_ps(hi[i], bias1);
        if (gelu) v0 = miles_gelu_fast16(v0), v1 = miles_gelu_fast16(v1);
        _mm512_mask_storeu_ps(y + i * ldy, k0, v0);
        _mm512_mask_storeu_ps(y + i * ldy + 16, k1, v1);
    }
}

#define BF16_CASE(M, G) case M: bf16_tile(M, kq, x, x_rs, w, y, ldy, n, bias, G); break;
#define BF16_KERNEL(NAME, G)                                                                       \
    static void NAME(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w, float *y, size_t ldy, \
                     int m, int n, const float *sx, const int32_t *cx, const float *sw,            \
                     const float *bias) {                                                          \
        (void)sx, (void)cx, (void)sw;                                                              \
        switch (m) {                                                                               \
            BF16_CASE(12, G) BF16_CASE(11, G) BF16_CASE(10, G) BF16_CASE(9, G) BF16_CASE(8, G)     \
            BF16_CASE(7, G) BF16_CASE(6, G) BF16_CASE(5, G) BF16_CASE(4, G) BF16_CASE(3, G)        \
            BF16_CASE(2, G) BF16_CASE(1, G)                                                        \
        default: break;                                                                            \
        }                                                                                          \
    }
BF16_KERNEL(bf16_kernel, 0)
BF16_KERNEL(bf16_kernel_gelu, 1) /* y = gelu_fast(y) before the store, as int8_kernel_gelu */


/* gemm_lowp.c's prep_portable for int8, vectorized; same bytes: scale =
 * max|x| / 127 (max is exact in any order), x * (1 / scale) rounded to
 * nearest even (vcvtps2dq in the default MXCSR mode, as the portable
 * 1.5 * 2^23 trick), clamped to [-127, 127] (a NaN or inf product converts
 * to INT_MIN, so -127, quantize's definition), stored as bytes (vpmovdb).
 * bf16 uses the portable conversion (the compiler vectorizes it well). */
static void prep_int8_avx512(int int8, const float *x, size_t ldx, int m, int K, int kq,
                             uint32_t *xp, float *sx, int32_t *cx) {
    (void)int8;
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (int i = 0; i < m; i++) {
        const float *row = x + (size_t)i * ldx;
        int8_t *d = (int8_t *)(xp + (size_t)i * kq);
        __m512 mx = _mm512_setzero_ps();
        for (int k = 0; k < K; k += 16) {
            __mmask16 km = K - k >= 16 ? 0xFFFF : (__mmask16)((1u << (K - k)) - 1);
            __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(km, row + k));
            mx = _mm512_max_ps(a, mx); /* a NaN keeps mx, as the portable a > mx ? a : mx */
        }
        const float s = _mm512_reduce_max_ps(mx) / 127.0f;
        const __m512 inv = _mm512_set1_ps(s > 0.0f ? 1.0f / s : 0.0f);
        __m512i sum = _mm512_setzero_si512();
        for (int k = 0; k < K; k += 16) {
            __mmask16 km = K - k >= 16 ? 0xFFFF : (__mmask16)((1u << (K - k)) - 1);
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(km, row + k), inv));
            v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
            sum = _mm512_mask_add_epi32(sum, km, sum, v); /* real lanes only: 0 * inv is NaN when inv is inf */
            _mm512_mask_cvtepi32_storeu_epi8(d + k, km, v);
        }
        for (int k = K; k < 4 * kq; k++) d[k] = 0;
        sx[i] = s;
        cx[i] = (int32_t)(128u * (uint32_t)_mm512_reduce_add_epi32(sum)); /* modulo 2^32 */
    }
}

static const MilesLowpIsa bf16_isa = {"avx512_bf16", MR, NR, bf16_kernel, NULL, bf16_kernel_gelu, 1};
static const MilesLowpIsa int8_isa = {"avx512_vnni", IMR, INR, int8_kernel, prep_int8_avx512, int8_kernel_gelu, 1};
const MilesLowpIsa *miles_lowp_isa_bf16_avx512(void) { return &bf16_isa; }
const MilesLowpIsa *miles_lowp_isa_int8_avx512(void) { return &int8_isa; }
#else
const MilesLowpIsa *miles_lowp_isa_bf16_avx512(void) { return 0; }
const MilesLowpIsa *miles_lowp_isa_int8_avx512(void) { return 0; }
#endif
