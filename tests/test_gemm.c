/*
 * test_gemm.c — miles_gemm: the CBLAS backend and the own OpenMP GEMM agree
 * with each other and with a naive double-precision triple loop, for all four
 * transpose combinations, odd sizes, alpha/beta variants, leading dimensions
 * larger than the width, beta == 0 over NaN garbage, and K == 0.
 *
 * Error metric (the standard GEMM backward-error bound): for each element
 *   err = |C - C_ref| / (|alpha| * sum_p |op(A)_ip| |op(B)_pj| + |beta| |C0| + tiny)
 * fp32 accumulation of K products is bounded by about K * 2^-24 (7.7e-6 for
 * K = 129); random-sign errors are far smaller.  Tolerance: 1e-5.
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

#include "ops.h"

#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#define TOL 1e-5

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static double g_max_err_own = 0, g_max_err_blas = 0, g_max_err_pair = 0;

/* Run one case on the selected backend and return the max bound-relative
 * error against the double reference; checks the ld padding is untouched. */
static double run_case(int backend, int ta, int tb, int M, int N, int K, float alpha,
                       float beta, int pad, int nan_c, float *out_c) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int arows = ta ? K : M, brows = tb ? N : K;
    size_t na = (size_t)arows * (lda > 0 ? lda : 1), nb = (size_t)brows * (ldb > 0 ? ldb : 1);
    float *A = malloc((na + 1) * sizeof(float));
    float *B = malloc((nb + 1) * sizeof(float));
    float *C = malloc(((size_t)M * ldc + 1) * sizeof(float));
    float *C0 = malloc(((size_t)M * ldc + 1) * sizeof(float));
    assert_non_null(A);
    assert_non_null(B);
    assert_non_null(C);
    assert_non_null(C0);
    uint64_t save = g_rng;
    for (size_t i = 0; i < na; i++) A[i] = frand();
    for (size_t i = 0; i < nb; i++) B[i] = frand();
    for (size_t i = 0; i < (size_t)M * ldc; i++) C0[i] = nan_c ? NAN : frand();
    g_rng = save; /* both backends see identical inputs */
    memcpy(C, C0, (size_t)M * ldc * sizeof(float));

    int prev = miles_gemm_use_blas(backend);
    miles_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    miles_gemm_use_blas(prev);

    double maxe = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, bound = 0;
            for (int p = 0; p < K; p++) {
                double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b;
                bound += fabs(a * b);
            }
            double c0 = C0[(size_t)i * ldc + j];
            double ref = alpha * s + (beta != 0.0f ? beta * c0 : 0.0);
            bound = fabs(alpha) * bound + (beta != 0.0f ? fabs(beta * c0) : 0.0) + 1e-30;
            double got = C[(size_t)i * ldc + j];
            assert_true(isfinite(got));
            double e = fabs(got - ref) / bound;
            if (e > maxe) maxe = e;
            if (out_c) out_c[(size_t)i * N + j] = (float)got;
        }
        /* columns past N inside the row stride must not be written */
        for (int j = N; j < ldc; j++) {
            float c = C[(size_t)i * ldc + j], c0 = C0[(size_t)i * ldc + j];
            assert_true(memcmp(&c, &c0, sizeof c) == 0);
        }
    }
    free(A);
    free(B);
    free(C);
    free(C0);
    return maxe;
}

static void check_all(int M, int N, int K) {
    const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.3f, 0.7f}, {2.0f, 0.0f}, {0.0f, 0.5f}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t v = 0; v < sizeof ab / sizeof ab[0]; v++)
                for (int pad = 0; pad <= 3; pad += 3) {
                    float alpha = ab[v][0], beta = ab[v][1];
                    int nan_c = beta == 0.0f && v == 3; /* garbage C must be ignored */
                    float *c_own = malloc((size_t)M * N * sizeof(float));
                    float *c_blas = malloc((size_t)M * N * sizeof(float));
                    assert_non_null(c_own);
                    assert_non_null(c_blas);
                    double e_own = run_case(0, ta, tb, M, N, K, alpha, beta, pad, nan_c, c_own);
                    if (e_own > g_max_err_own) g_max_err_own = e_own;
                    if (e_own > TOL)
                        fail_msg("own gemm %dx%dx%d ta=%d tb=%d alpha=%g beta=%g pad=%d err %.3g",
                                 M, N, K, ta, tb, alpha, beta, pad, e_own);
                    if (miles_gemm_has_blas()) {
                        double e_blas = run_case(1, ta, tb, M, N, K, alpha, beta, pad, nan_c, c_blas);
                        if (e_blas > g_max_err_blas) g_max_err_blas = e_blas;
                        if (e_blas > TOL)
                            fail_msg("cblas %dx%dx%d ta=%d tb=%d err %.3g", M, N, K, ta, tb, e_blas);
                        /* own vs BLAS, relative to the result scale */
                        double scale = 1e-30, d = 0;
                        for (size_t i = 0; i < (size_t)M * N; i++) {
                            if (fabs(c_blas[i]) > scale) scale = fabs(c_blas[i]);
                            double e = fabs((double)c_own[i] - c_blas[i]);
                            if (e > d) d = e;
                        }
                        double rel = (scale > 1e-30 ? d / scale : d);
                        if (rel > g_max_err_pair) g_max_err_pair = rel;
                        if (rel > TOL)
                            fail_msg("own vs cblas %dx%dx%d ta=%d tb=%d rel %.3g", M, N, K, ta, tb, rel);
                    }
                    free(c_own);
                    free(c_blas);
                }
}

static void test_small_odd(void **state) {
    (void)state;
    check_all(1, 1, 1);
    check_all(7, 13, 5);
    check_all(3, 17, 2);
    check_all(16, 16, 16);
}

static void test_medium(void **state) {
    (void)state;
    check_all(65, 33, 129);  /* parallel path, ragged MR/NR edges */
    check_all(2, 300, 17);   /* fewer rows than one micro-tile */
    check_all(150, 70, 300); /* K > KC: several K slices accumulate */
    check_all(13, 3100, 3);  /* N > NC: several column blocks */
    check_all(37, 40, 300);  /* N <= 64: A read in place, over two K slices */
    /* CBLAS split across OpenMP threads (>= 4e6 multiply-adds): by rows, then by columns */
    check_all(301, 47, 300);
    check_all(40, 500, 257);
}

static void test_k_zero_scales_c(void **state) {
    (void)state;
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
    for (int backend = 0; backend < 2; backend++) {
        float c[6];
        memcpy(c, C, sizeof c);
        int prev = miles_gemm_use_blas(backend);
        miles_gemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, c, 3);
        for (int i = 0; i < 6; i++) assert_true(c[i] == 0.5f * C[i]);
        for (int i = 0; i < 6; i++) c[i] = NAN;
        miles_gemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, c, 3);
        for (int i = 0; i < 6; i++) assert_true(c[i] == 0.0f);
        miles_gemm_use_blas(prev);
    }
}

/* Calls from inside an OpenMP parallel region (the attention path) must give
 * the same result as a call from outside. */
static void test_inside_parallel_region(void **state) {
    (void)state;
    enum { M = 37, N = 29, K = 41, R = 8 };
    static float A[M * K], B[K * N], Cref[M * N], Cpar[R][M * N];
    for (int i = 0; i < M * K; i++) A[i] = frand();
    for (int i = 0; i < K * N; i++) B[i] = frand();
    miles_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, Cref, N);
#pragma omp parallel for
    for (int r = 0; r < R; r++) miles_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, Cpar[r], N);
    double maxd = 0;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < M * N; i++) {
            double d = fabs((double)Cpar[r][i] - Cref[i]) / (fabs(Cref[i]) + 1.0);
            if (d > maxd) maxd = d;
        }
    printf("gemm inside parallel region: max diff %.3g\n", maxd);
    assert_true(maxd <= TOL);
}

static int report(void **state) {
    (void)state;
    printf("gemm max bound-relative error vs double: own %.3g, cblas %.3g (has_blas=%d); "
           "own vs cblas max rel diff %.3g; tolerance %.0e\n",
           g_max_err_own, g_max_err_blas, miles_gemm_has_blas(), g_max_err_pair, TOL);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_odd),
        cmocka_unit_test(test_medium),
        cmocka_unit_test(test_k_zero_scales_c),
        cmocka_unit_test(test_inside_parallel_region),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
