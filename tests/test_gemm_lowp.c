/*
 * test_gemm_lowp.c — bf16 and int8 inference GEMM (libmiles/gemm_lowp.h)
 * against the fp32 GEMM, on the CPUs that have the instructions; a clear
 * MILES_EUNSUPPORTED refusal on those that do not (make portability-check
 * runs this under qemu on CPUs without AVX-512).
 *
 * Tolerances (per element, y_ref = fp32 x @ W^T + bias):
 *   bf16: |y - y_ref| / (sum_k |x_ik| |w_jk|) <= 2^-7: each operand is rounded
 *         to 8 significant bits (relative error <= 2^-9, a product <= 2^-8);
 *   int8: |y - y_ref| / (K max|x_i| max|w_j|) <= 1/127: each operand is off by
 *         at most half a step of its row/channel scale (max/254), so a product
 *         by at most (max|x| max|w|) / 127.
 * Also: bit-identical results on 1 and 2 threads and for rows computed in two
 * calls, the AVX-VNNI and AVX-512 VNNI int8 kernels (and so the portable and
 * AVX-512 int8 conversions of x) bit-identical, every tile height (M = 1..26
 * in one call = row by row), the fused GELU epilogue (miles_gemm_packed_ws_gelu)
 * equal to miles_gelu_fast_range after the GEMM, and bad arguments refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"
#include "ops.h"
#include "gemm_lowp.h"
#include "ops_internal.h"
#include "helpers.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

typedef struct { int M, N, K; } Shape;
static const Shape g_shapes[] = {{1, 1, 1}, {3, 17, 5}, {13, 33, 7}, {32, 384, 384},
                                 {29, 100, 130}, {100, 70, 1537}, {257, 300, 64}};
#define NSHAPES ((int)(sizeof g_shapes / sizeof g_shapes[0]))

static double g_err[3];

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static void check_precision(MilesGemmPrecision prec) {
    const char *why = NULL, *name = prec == MILES_GEMM_BF16 ? "bf16" : "int8";
    if (!miles_gemm_lowp_available(prec, &why)) {
        MilesPackedWeights *p = (MilesPackedWeights *)1;
        float w[4] = {1, 2, 3, 4};
        assert_int_equal(miles_gemm_pack(&p, prec, w, 2, 2, 2), MILES_EUNSUPPORTED);
        assert_null(p);
        assert_true(strstr(miles_last_error(), name) != NULL);
        printf("%s: refused on this CPU: %s\n", name, miles_last_error());
        skip();
    }
    double worst = 0;
    for (int s = 0; s < NSHAPES; s++) {
        const int M = g_shapes[s].M, N = g_shapes[s].N, K = g_shapes[s].K;
        const int ldx = K + 3, ldw = K + 1, ldy = N + 2;
        float *x = malloc((size_t)M * ldx * sizeof(float)), *W = malloc((size_t)N * ldw * sizeof(float));
        float *bias = malloc((size_t)N * sizeof(float)), *ref = malloc((size_t)M * ldy * sizeof(float));
        float *y = malloc((size_t)M * ldy * sizeof(float)), *y2 = malloc((size_t)M * ldy * sizeof(float));
        assert_true(x && W && bias && ref && y && y2);
        for (size_t i = 0; i < (size_t)M * ldx; i++) x[i] = frand() * (i % 7 == 0 ? 3.0f : 1.0f);
        for (size_t i = 0; i < (size_t)N * ldw; i++) W[i] = 0.05f * frand();
        for (int j = 0; j < N; j++) bias[j] = 0.1f * frand();
        for (int i = 0; i < M; i++) memcpy(ref + (size_t)i * ldy, bias, (size_t)N * sizeof(float));
        miles_gemm(0, 1, M, N, K, 1.0f, x, ldx, W, ldw, 1.0f, ref, ldy);

        MilesPackedWeights *p = NULL;
        assert_int_equal(miles_gemm_pack(&p, prec, W, N, K, ldw), MILES_OK);
        assert_int_equal(miles_gemm_packed_n(p), N);
        assert_int_equal(miles_gemm_packed_k(p), K);
        for (size_t i = 0; i < (size_t)M * ldy; i++) y[i] = y2[i] = NAN; /* padding must stay */
        set_threads(2);
        assert_int_equal(miles_gemm_packed(p, M, x, ldx, bias, y, ldy), MILES_OK);
        for (int i = 0; i < M; i++) {
            double mx = 0;
            for (int k = 0; k < K; k++) mx = test_max_err(mx, fabs(x[(size_t)i * ldx + k]));
            for (int j = 0; j < N; j++) {
                double got = y[(size_t)i * ldy + j], want = ref[(size_t)i * ldy + j], den;
                if (prec == MILES_GEMM_BF16) {
                    den = 0;
                    for (int k = 0; k < K; k++)
                        den += fabs((double)x[(size_t)i * ldx + k] * W[(size_t)j * ldw + k]);
                } else {
                    double mw = 0;
                    for (int k = 0; k < K; k++) mw = test_max_err(mw, fabs(W[(size_t)j * ldw + k]));
                    den = K * mx * mw;
                }
                double e = fabs(got - want) / (den + 1e-30);
                assert_true(isfinite(got));
                worst = test_max_err(worst, e);
            }
            for (int j = N; j < ldy; j++) assert_true(isnan(y[(size_t)i * ldy + j]));
        }
        /* 1 thread, and rows in two calls: the same bits */
        set_threads(1);
        assert_int_equal(miles_gemm_packed(p, M, x, ldx, bias, y2, ldy), MILES_OK);
        assert_memory_equal(y, y2, (size_t)M * ldy * sizeof(float));
        if (M > 1) {
            int m = M / 3 + 1;
            set_threads(2);
            assert_int_equal(miles_gemm_packed(p, m, x, ldx, bias, y2, ldy), MILES_OK);
            assert_int_equal(miles_gemm_packed(p, M - m, x + (size_t)m * ldx, ldx, bias,
                                               y2 + (size_t)m * ldy, ldy), MILES_OK);
            assert_memory_equal(y, y2, (size_t)M * ldy * sizeof(float));
        }
        /* the fused GELU epilogue (the engine's FFN): miles_gelu_fast_range's
         * bits over the same y, 1 and 2 threads */
        float *g_gelu = malloc((size_t)M * ldy * sizeof(float));
        assert_non_null(g_gelu);
        memcpy(g_gelu, y, (size_t)M * ldy * sizeof(float));
        for (int i = 0; i < M; i++)
            miles_gelu_fast_range(g_gelu + (size_t)i * ldy, g_gelu + (size_t)i * ldy, (size_t)N);
        for (int th = 1; th <= 2; th++) {
            set_threads(th);
            memcpy(y2, y, (size_t)M * ldy * sizeof(float)); /* NaN padding columns stay */
            assert_int_equal(miles_gemm_packed_ws_gelu(p, M, x, ldx, bias, y2, ldy, NULL, 1), MILES_OK);
            assert_memory_equal(g_gelu, y2, (size_t)M * ldy * sizeof(float));
        }
        /* int8: every lesser kernel this CPU also runs (AVX-VNNI, AVX2)
         * gives the best one's bits, with and without the GELU epilogue */
        for (int lv = MILES_LOWP_INT8_AVXVNNI; prec == MILES_GEMM_INT8 && lv <= MILES_LOWP_INT8_AVX2; lv++) {
            int prev = miles_gemm_lowp_prefer_int8(lv);
            MilesPackedWeights *q = NULL;
            /* AVX-512 VNNI without AVX-VNNI (AMD Zen 4, Intel Ice Lake /
             * Sapphire Rapids servers): the 256-bit VNNI kernel is skipped */
            if (miles_gemm_lowp_available(prec, NULL))
                assert_int_equal(miles_gemm_pack(&q, prec, W, N, K, ldw), MILES_OK);
            if (q && strcmp(miles_gemm_packed_isa(q), miles_gemm_packed_isa(p)) != 0) {
                for (int th = 1; th <= 2; th++) {
                    set_threads(th);
                    for (size_t i = 0; i < (size_t)M * ldy; i++) y2[i] = NAN;
                    assert_int_equal(miles_gemm_packed(q, M, x, ldx, bias, y2, ldy), MILES_OK);
                    assert_memory_equal(y, y2, (size_t)M * ldy * sizeof(float));
                    assert_int_equal(miles_gemm_packed_ws_gelu(q, M, x, ldx, bias, y2, ldy, NULL, 1), MILES_OK);
                    assert_memory_equal(g_gelu, y2, (size_t)M * ldy * sizeof(float));
                }
                if (s == 0) printf("int8: %s and %s kernels bit-identical\n", miles_gemm_packed_isa(p), miles_gemm_packed_isa(q));
            } else if (s == 0) {
                printf("int8: below %s this CPU has %s: nothing more to compare\n",
                       lv == MILES_LOWP_INT8_AVXVNNI ? "AVX-512 VNNI" : "the VNNI kernels",
                       q ? miles_gemm_packed_isa(q) : "no int8 kernel");
            }
            miles_gemm_packed_free(q);
            miles_gemm_lowp_prefer_int8(prev);
        }
        miles_gemm_packed_free(p);
        free(g_gelu), free(x), free(W), free(bias), free(ref), free(y), free(y2);
    }
    set_threads(2);
    g_err[prec] = worst;
    double tol = prec == MILES_GEMM_BF16 ? 1.0 / 128 : 1.0 / 127;
    printf("%s: max error %.3g (tolerance %.3g), %d shapes, 1/2 threads and row splits bit-identical\n",
           name, worst, tol, NSHAPES);
    assert_true(worst <= tol);
}

static void test_bf16(void **state) {
    (void)state;
    check_precision(MILES_GEMM_BF16);
}

static void test_int8(void **state) {
    (void)state;
    check_precision(MILES_GEMM_INT8);
}

/* Every tile height (1..MR rows, both int8 kernels' MR) and a partial column
 * group: M rows in one call give the bits of M one-row calls, within the
 * tolerance of fp32.  Catches a wrong row address or accumulator in the
 * kernels' per-height code. */
static void check_row_counts(MilesGemmPrecision prec, int level) {
    enum { N = 40, K = 37, MMAX = 26 };
    float W[N * K], x[MMAX * K], y[MMAX * N], y1[N], bias[N];
    for (int i = 0; i < N * K; i++) W[i] = 0.05f * frand();
    for (int i = 0; i < MMAX * K; i++) x[i] = frand();
    for (int j = 0; j < N; j++) bias[j] = 0.1f * frand();
    int prev = miles_gemm_lowp_prefer_int8(level);
    if (!miles_gemm_lowp_available(prec, NULL)) {
        printf("int8: kernel level %d: none on this CPU, not tested here\n", level);
        miles_gemm_lowp_prefer_int8(prev);
        return;
    }
    MilesPackedWeights *p = NULL;
    assert_int_equal(miles_gemm_pack(&p, prec, W, N, K, K), MILES_OK);
    double worst = 0;
    for (int M = 1; M <= MMAX; M++) {
        assert_int_equal(miles_gemm_packed(p, M, x, K, bias, y, N), MILES_OK);
        for (int i = 0; i < M; i++) {
            assert_int_equal(miles_gemm_packed(p, 1, x + i * K, K, bias, y1, N), MILES_OK);
            assert_memory_equal(y + i * N, y1, sizeof y1);
            for (int j = 0; j < N; j++) {
                double ref = bias[j], den = 0;
                for (int k = 0; k < K; k++) {
                    ref += (double)x[i * K + k] * W[j * K + k];
                    den += fabs((double)x[i * K + k] * W[j * K + k]);
                }
                double e = fabs(y[i * N + j] - ref) / den;
                worst = test_max_err(worst, e);
            }
        }
    }
    printf("%s (%s): M = 1..%d, N %d, K %d: one call = row by row, max error %.3g of sum |x w|\n",
           prec == MILES_GEMM_BF16 ? "bf16" : "int8", miles_gemm_packed_isa(p), MMAX, N, K, worst);
    /* bf16: 2^-7 (above); int8: K * max|x| max|w| / 127 <= 1/127 of K max max; the sum of
     * |x w| of random data is ~K max max / 4, so allow 4/127 of it */
    assert_true(worst <= (prec == MILES_GEMM_BF16 ? 1.0 / 128 : 4.0 / 127));
    miles_gemm_packed_free(p);
    miles_gemm_lowp_prefer_int8(prev);
}

static void test_row_counts(void **state) {
    (void)state;
    int any = 0;
    for (int prec = MILES_GEMM_BF16; prec <= MILES_GEMM_INT8; prec++) {
        if (!miles_gemm_lowp_available((MilesGemmPrecision)prec, NULL)) continue;
        check_row_counts((MilesGemmPrecision)prec, MILES_LOWP_INT8_BEST);
        /* int8: the lesser kernels too (AVX-VNNI, AVX2), where the CPU runs them */
        for (int lv = MILES_LOWP_INT8_AVXVNNI; prec == MILES_GEMM_INT8 && lv <= MILES_LOWP_INT8_AVX2; lv++)
            check_row_counts((MilesGemmPrecision)prec, lv);
        any = 1;
    }
    if (!any) skip();
}

/* Each ISA's own conversion of x (MilesLowpIsa.prep: the AVX2 int8 one, the
 * AVX-512 ones) against gemm_lowp.c's C definition for its layout, bit for
 * bit: converted words, row scales, corrections, over row lengths around
 * the vector widths and rows of special values (zeros, NaN, +-inf, -0,
 * subnormals, exact rounding ties, a NaN in a row's last lanes). */
static void test_prep_matches_c(void **state) {
    (void)state;
    struct { const MilesLowpIsa *isa; const char *feat; int int8; } isas[3] = {
        {miles_lowp_isa_int8_avx2(), "avx2", 1},
        {miles_lowp_isa_int8_avx512(), "avx512vnni", 1},
        {miles_lowp_isa_bf16_avx512(), "avx512bf16", 0},
    };
    static const int Ks[] = {1, 3, 7, 8, 9, 15, 16, 17, 37, 384, 1537};
    enum { M = 10 };
    int ran = 0;
    for (int t = 0; t < 3; t++) {
        const MilesLowpIsa *isa = isas[t].isa;
        if (!isa || !isa->prep) continue;
#if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        int have = 0;
        if (!strcmp(isas[t].feat, "avx2")) have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        else if (!strcmp(isas[t].feat, "avx512vnni")) have = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
        else have = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
        if (!have) continue;
#else
        continue;
#endif
        const MilesLowpPrep ref = miles_lowp_prep_ref(isa->xw);
        size_t bad = 0;
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
            const int K = Ks[ki], kq = isas[t].int8 ? (K + 3) / 4 : (K + 1) / 2, ldx = K + 5;
            const size_t words = (size_t)isa->xw * kq;
            float *x = malloc((size_t)M * ldx * sizeof(float));
            uint32_t *a = malloc(M * words * 4), *b = malloc(M * words * 4);
            float sa[M], sb[M];
            int32_t ca[M], cb[M];
            assert_true(x && a && b);
            for (int i = 0; i < M; i++)
                for (int k = 0; k < ldx; k++) {
                    float v = frand();
                    switch (i) {
                    case 1: v = 0.0f; break;                                    /* scale 0 */
                    case 2: v = k % 5 == 1 ? NAN : k % 5 == 3 ? INFINITY : v; break;
                    case 3: v = k % 2 ? -0.0f : 1e-40f * (float)(k % 7); break; /* subnormals */
                    case 4: v = k == 0 ? 127.0f : (float)(k % 254 - 127) + 0.5f; break; /* scale 1: ties */
                    case 5: v = NAN; break;
                    case 6: v = 1e30f * v; break;
                    case 7: v = k == K / 2 ? -INFINITY : v; break;
                    case 8: /* a NaN in the tail's lane that also holds the row's max */
                        v = k == K - 1 ? NAN : k == (K - 1) % 8 ? 4.0f : 3.0f * v;
                        break;
                    default: break;
                    }
                    x[(size_t)i * ldx + k] = v;
                }
            memset(a, 0xAB, M * words * 4);
            memset(b, 0xCD, M * words * 4);
            ref(isas[t].int8, x, (size_t)ldx, M, K, kq, a, sa, ca);
            isa->prep(isas[t].int8, x, (size_t)ldx, M, K, kq, b, sb, cb);
            for (size_t w = 0; w < M * words; w++) bad += a[w] != b[w];
            if (isas[t].int8)
                for (int i = 0; i < M; i++) bad += memcmp(&sa[i], &sb[i], 4) != 0 || ca[i] != cb[i];
            free(x); free(a); free(b);
        }
        printf("prep %s (%s): %zu words / scales / corrections differ from the C\n", isa->name,
               isas[t].int8 ? "int8" : "bf16", bad);
        assert_int_equal(bad, 0);
        ran = 1;
    }
    if (!ran) skip();
}

/* int8 keeps a zero row exactly zero (scale 0) and handles a constant row. */
static void test_int8_special_rows(void **state) {
    (void)state;
    if (!miles_gemm_lowp_available(MILES_GEMM_INT8, NULL)) skip();
    enum { N = 5, K = 9 };
    float W[N * K], x[2 * K], y[2 * N];
    for (int i = 0; i < N * K; i++) W[i] = (i % 3) - 1.0f;
    for (int k = 0; k < K; k++) x[k] = 0.0f, x[K + k] = 2.5f;
    MilesPackedWeights *p = NULL;
    assert_int_equal(miles_gemm_pack(&p, MILES_GEMM_INT8, W, N, K, K), MILES_OK);
    assert_int_equal(miles_gemm_packed(p, 2, x, K, NULL, y, N), MILES_OK);
    for (int j = 0; j < N; j++) {
        float want = 0;
        for (int k = 0; k < K; k++) want += 2.5f * W[j * K + k];
        assert_true(y[j] == 0.0f);
        assert_true(fabsf(y[N + j] - want) <= 1e-5f); /* exactly representable steps */
    }
    miles_gemm_packed_free(p);
}

static void test_bad_arguments(void **state) {
    (void)state;
    float w[4] = {0};
    MilesPackedWeights *p = NULL;
    assert_int_equal(miles_gemm_pack(&p, (MilesGemmPrecision)7, w, 2, 2, 2), MILES_EUNSUPPORTED);
    assert_null(p);
    for (int prec = MILES_GEMM_BF16; prec <= MILES_GEMM_INT8; prec++) {
        if (!miles_gemm_lowp_available((MilesGemmPrecision)prec, NULL)) continue;
        assert_int_equal(miles_gemm_pack(&p, (MilesGemmPrecision)prec, w, 2, 2, 1), MILES_EINVAL);
        assert_int_equal(miles_gemm_pack(&p, (MilesGemmPrecision)prec, w, 0, 2, 2), MILES_EINVAL);
        assert_int_equal(miles_gemm_pack(&p, (MilesGemmPrecision)prec, w, 2, 2, 2), MILES_OK);
        float y[4];
        assert_int_equal(miles_gemm_packed(p, 2, w, 1, NULL, y, 2), MILES_EINVAL); /* ldx < K */
        assert_int_equal(miles_gemm_packed(p, 0, NULL, 2, NULL, NULL, 2), MILES_OK);
        miles_gemm_packed_free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_int8),
        cmocka_unit_test(test_row_counts),
        cmocka_unit_test(test_int8_special_rows),
        cmocka_unit_test(test_prep_matches_c),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
