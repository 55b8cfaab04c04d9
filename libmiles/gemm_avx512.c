/*
 * gemm_avx512.c — fp32 GEMM micro-kernel for AVX-512F: a 12 x 32 tile of C
 * in 24 zmm accumulators (two per row), one broadcast of A per row and two
 * loads of B per step of k.  24 independent FMA chains cover the FMA latency
 * (4 cycles) times the FMA ports (2 on Zen 4/5 and Intel server cores).
 * Compiled with -mavx512f (Makefile) and called only when the CPU has it
 * (gemm.c); the arithmetic per element is the contract in gemm_internal.h.
 */
#include "gemm_internal.h"
#include "avx512_internal.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

#define MR 12
#define NR 32

/* One specialization per row count (m is a compile-time constant after
 * inlining), so an edge tile of m rows runs m rows, not MR. */
static inline __attribute__((always_inline)) void
tile(const int m, int kc, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
     ptrdiff_t b_rs, float *c, ptrdiff_t c_rs, ptrdiff_t c_cs, int n, float alpha, int c_zero,
     const float *c_row) {
    __m512 lo[MR], hi[MR];
    /* C is needed only at the end: start fetching it now (L2/L3 latency
     * would otherwise stall the update) */
    if (!c_zero && !c_row && c_cs == 1)
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            _mm_prefetch((const char *)(c + i * c_rs), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * c_rs + 31), _MM_HINT_T0);
        }
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) lo[i] = hi[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int p = 0; p < kc; p++) {
        /* p-major A panels stream from memory when pre-packed (few-rows
         * inference: W is the A operand): the hardware prefetcher alone left
         * the FMAs waiting on every new line; fetch ~32 steps ahead */
        if (a_rs == 1 && a_cs == MR) _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0);
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            __m512 ai = _mm512_set1_ps(a[i * a_rs]);
            lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
        }
        a += a_cs;
        b += b_rs;
    }
    const __m512 va = _mm512_set1_ps(alpha);
    if (c_cs == 1) { /* C rows along the tile rows: one masked vector per half row */
        __mmask16 k0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
        __mmask16 k1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
        const __m512 r0 = c_row ? _mm512_maskz_loadu_ps(k0, c_row) : _mm512_setzero_ps();
        const __m512 r1 = c_row ? _mm512_maskz_loadu_ps(k1, c_row + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            float *ci = c + i * c_rs;
            __m512 c0 = c_zero || c_row ? r0 : _mm512_maskz_loadu_ps(k0, ci);
            __m512 c1 = c_zero || c_row ? r1 : _mm512_maskz_loadu_ps(k1, ci + 16);
            _mm512_mask_storeu_ps(ci, k0, _mm512_fmadd_ps(va, lo[i], c0));
            _mm512_mask_storeu_ps(ci + 16, k1, _mm512_fmadd_ps(va, hi[i], c1));
        }
    } else { /* C transposed (c_rs == 1): tile column j is a run of C; gather it */
        float t[MR * NR];
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            _mm512_storeu_ps(t + i * NR, lo[i]);
            _mm512_storeu_ps(t + i * NR + 16, hi[i]);
        }
        const __m512i idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(NR));
        const __mmask16 km = (__mmask16)((1u << m) - 1);
        for (int j = 0; j < n; j++) {
            float *cj = c + j * c_cs;
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), km, idx, t + j, 4);
            __m512 c0 = c_zero ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(km, cj);
            _mm512_mask_storeu_ps(cj, km, _mm512_fmadd_ps(va, v, c0));
        }
    }
}

/* The packed layouts of A get constant strides: immediate offsets. */
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
        CASE(12) CASE(11) CASE(10) CASE(9) CASE(8) CASE(7)
        CASE(6) CASE(5) CASE(4) CASE(3) CASE(2) CASE(1)
    default: break;
    }
}

/* 24 x 16 tile for C at most 16 columns wide (a title of <= 16 tokens times
 * W^T, computed as W x^T): a 32-wide tile would leave half its lanes idle. */
#define MR16 24
static inline __attribute__((always_inline)) void
tile16(const int m, int kc, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
       ptrdiff_t b_rs, float *c, ptrdiff_t c_rs, ptrdiff_t c_cs, int n, float alpha, int c_zero,
       const float *c_row) {
    __m512 acc[MR16];
#pragma GCC unroll 32
    for (int i = 0; i < m; i++) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int p = 0; p < kc; p++) {
        /* W's few-rows panels stream from memory, as in tile() */
        if (a_rs == 1 && a_cs == MR) _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0);
        __m512 b0 = _mm512_loadu_ps(b);
#pragma GCC unroll 32
        for (int i = 0; i < m; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * a_rs]), b0, acc[i]);
        a += a_cs;
        b += b_rs;
    }
    const __m512 va = _mm512_set1_ps(alpha);
    const __mmask16 kn = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
    if (c_cs == 1) {
        const __m512 r0 = c_row ? _mm512_maskz_loadu_ps(kn, c_row) : _mm512_setzero_ps();
#pragma GCC unroll 32
        for (int i = 0; i < m; i++) {
            float *ci = c + i * c_rs;
            __m512 c0 = c_zero || c_row ? r0 : _mm512_maskz_loadu_ps(kn, ci);
            _mm512_mask_storeu_ps(ci, kn, _mm512_fmadd_ps(va, acc[i], c0));
        }
    } else { /* C transposed (c_rs == 1): column j of the tile is a run of C */
        float t[MR16 * 16];
#pragma GCC unroll 32
        for (int i = 0; i < m; i++) _mm512_storeu_ps(t + i * 16, acc[i]);
        const __m512i idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(16));
        const __mmask16 k0 = m >= 16 ? 0xFFFF : (__mmask16)((1u << m) - 1);
        const __mmask16 k1 = m <= 16 ? 0 : (__mmask16)((1u << (m - 16)) - 1);
        for (int j = 0; j < n; j++) {
            float *cj = c + j * c_cs;
            __m512 v0 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k0, idx, t + j, 4);
            __m512 c0 = c_zero ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(k0, cj);
            _mm512_mask_storeu_ps(cj, k0, _mm512_fmadd_ps(va, v0, c0));
            if (k1) {
                __m512 v1 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k1, idx, t + 16 * 16 + j, 4);
                __m512 c1 = c_zero ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(k1, cj + 16);
                _mm512_mask_storeu_ps(cj + 16, k1, _mm512_fmadd_ps(va, v1, c1));
            }
        }
    }
}

#define CASE16(M)                                                                        \
    case M:                                                                              \
        if (a_rs == 1 && a_cs == MR16)                                                   \
            tile16(M, kc, a, 1, MR16, b, b_rs, c, c_rs, c_cs, n, alpha, c_zero, c_row);         \
        else if (a_rs == 1 && a_cs == MR && M <= MR) /* W's few-rows A panels */        \
            tile16(M, kc, a, 1, MR, b, b_rs, c, c_rs, c_cs, n, alpha, c_zero, c_row);           \
        else if (a_rs == MILES_GEMM_KC && a_cs == 1)                                     \
            tile16(M, kc, a, MILES_GEMM_KC, 1, b, b_rs, c, c_rs, c_cs, n, alpha, c_zero, c_row); \
        else                                                                             \
            tile16(M, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, n, alpha, c_zero, c_row);      \
        break;

static void kernel16(int kc, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                     ptrdiff_t b_rs, float *c, ptrdiff_t c_rs, ptrdiff_t c_cs, int m, int n,
                     float alpha, int c_zero, const float *c_row) {
    switch (m) {
        CASE16(24) CASE16(23) CASE16(22) CASE16(21) CASE16(20) CASE16(19) CASE16(18) CASE16(17)
        CASE16(16) CASE16(15) CASE16(14) CASE16(13) CASE16(12) CASE16(11) CASE16(10) CASE16(9)
        CASE16(8) CASE16(7) CASE16(6) CASE16(5) CASE16(4) CASE16(3) CASE16(2) CASE16(1)
    default: break;
    }
}

static void transpose(const float *src, ptrdiff_t ld, int rows, int cols, float *dst, ptrdiff_t ldd) {
    for (int i0 = 0; i0 < rows; i0 += 16) {
        const int ni = rows - i0 < 16 ? rows - i0 : 16;
        const __mmask16 ki = (__mmask16)(ni == 16 ? 0xFFFF : (1u << ni) - 1);
        for (int j0 = 0; j0 < cols; j0 += 16) {
            const int nj = cols - j0 < 16 ? cols - j0 : 16;
            const __mmask16 kj = (__mmask16)(nj == 16 ? 0xFFFF : (1u << nj) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < ni ? _mm512_maskz_loadu_ps(kj, src + (i0 + i) * ld + j0) : _mm512_setzero_ps();
            miles_tr16(r);
            for (int j = 0; j < nj; j++) _mm512_mask_storeu_ps(dst + (j0 + j) * ldd + i0, ki, r[j]);
        }
    }
}

/* pack_a's row copies in zmm moves: the compiler's inline `rep movsq` for
 * these 1 KiB rows cost ~5% of an fp32 inference forward */
static void copy_rows(float *dst, const float *src, ptrdiff_t lda, int rows, int kc) {
    const __mmask16 kt = (__mmask16)((1u << (kc & 15)) - 1);
    for (int i = 0; i < rows; i++) {
        const float *s = src + i * lda;
        float *d = dst + (size_t)i * MILES_GEMM_KC;
        int p = 0;
        for (; p + 64 <= kc; p += 64) {
            __m512 v0 = _mm512_loadu_ps(s + p), v1 = _mm512_loadu_ps(s + p + 16);
            __m512 v2 = _mm512_loadu_ps(s + p + 32), v3 = _mm512_loadu_ps(s + p + 48);
            _mm512_storeu_ps(d + p, v0);
            _mm512_storeu_ps(d + p + 16, v1);
            _mm512_storeu_ps(d + p + 32, v2);
            _mm512_storeu_ps(d + p + 48, v3);
        }
        for (; p + 16 <= kc; p += 16) _mm512_storeu_ps(d + p, _mm512_loadu_ps(s + p));
        if (p < kc) _mm512_mask_storeu_ps(d + p, kt, _mm512_maskz_loadu_ps(kt, s + p));
    }
}

static const MilesGemmIsa isa = {"avx512", MR, NR, kernel, MR16, kernel16, transpose, copy_rows};
const MilesGemmIsa *miles_gemm_isa_avx512(void) { return &isa; }
#else
const MilesGemmIsa *miles_gemm_isa_avx512(void) { return 0; }
#endif
