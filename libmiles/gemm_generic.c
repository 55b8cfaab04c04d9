/*
 * gemm_generic.c — portable fp32 GEMM micro-kernel (4 x 16 tile), used where
 * the CPU has neither AVX-512F nor AVX2+FMA (x86-64 before 2013 and Intel's
 * low-power Atom/Celeron/Pentium lines) and on non-x86 builds.
 *
 * It keeps the numerical contract of gemm_internal.h — one correctly rounded
 * fused multiply-add per step — so it gives the same bits as the AVX kernels.
 * Where the compiler targets hardware FMA (__FP_FAST_FMAF: aarch64, or an
 * x86 build with -mfma) fmaf() is one instruction.  Otherwise a plain
 * a*b + c would round twice and differ from FMA machines in ~1 of 4 sums;
 * instead every step is computed in double, which is exact for the product
 * (24 + 24 bits < 53) and rounds the sum once to double, and then once to
 * float.  That second rounding equals the single rounding of the exact value
 * unless the double sum lands exactly on a float rounding boundary (a
 * midpoint between two floats, about 1 in 2^29 sums of random data) or in
 * the float subnormal range: those elements are redone with libm's fmaf,
 * which is correctly rounded with or without hardware FMA.  The common path
 * vectorizes with SSE2; it is several times slower than mul+add, a price
 * paid only on CPUs without FMA, for results identical on every machine.
 */
#include "gemm_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define MR 4
#define NR 16

#if defined(__FP_FAST_FMAF)
#define MADD(a, b, c, bad) fmaf((a), (b), (c))
#else
/* fused a*b + c via double; *bad |= nonzero when the result may be off */
static inline float madd_exact(float a, float b, float c, uint64_t *bad) {
    double s = (double)a * (double)b + (double)c; /* -std=c11: no contraction */
    uint64_t u;
    memcpy(&u, &s, sizeof u);
    uint64_t e = (u >> 52) & 0x7FF;
    /* midpoint: the 29 bits below float precision are exactly 100...0;
     * |s| in (0, 2^-126): float subnormal, coarser grid (e = 0 is s = 0,
     * exact: float products never give double subnormals) */
    *bad |= ((u & 0x1FFFFFFF) == 0x10000000) | (e - 1 < 896);
    return (float)s;
}
#define MADD(a, b, c, bad) madd_exact((a), (b), (c), (bad))
#endif

static void kernel(int kc, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                   ptrdiff_t b_rs, float *c, ptrdiff_t c_rs, ptrdiff_t c_cs, int m, int n,
                   float alpha, int c_zero, const float *c_row) {
    float acc[MR][NR];
    uint64_t bad[MR][NR]; /* per element: nonzero if a step may be off */
    memset(acc, 0, sizeof acc);
    memset(bad, 0, sizeof bad);
    const float *ap = a, *bp = b;
    for (int p = 0; p < kc; p++, ap += a_cs, bp += b_rs)
        for (int i = 0; i < m; i++) {
            float ai = ap[i * a_rs];
            for (int j = 0; j < NR; j++) acc[i][j] = MADD(ai, bp[j], acc[i][j], &bad[i][j]);
        }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
#if !defined(__FP_FAST_FMAF)
            if (bad[i][j]) { /* rare: redo this element with libm's exact fmaf */
                float r = 0.0f;
                for (int p = 0; p < kc; p++) r = fmaf(a[i * a_rs + p * a_cs], b[p * b_rs + j], r);
                acc[i][j] = r;
            }
#endif
            float *cij = c + i * c_rs + j * c_cs, c0 = c_row ? c_row[j] : c_zero ? 0.0f : *cij;
            uint64_t b1 = 0;
            float r = MADD(alpha, acc[i][j], c0, &b1);
            *cij = b1 ? fmaf(alpha, acc[i][j], c0) : r;
        }
}

static const MilesGemmIsa isa = {"generic", MR, NR, kernel};
const MilesGemmIsa *miles_gemm_isa_generic(void) { return &isa; }
