/*
 * test_gemm.c — miles_gemm: the CBLAS backend and the own OpenMP GEMM agree
 * with each other and with a naive double-precision triple loop, for all four
 * transpose combinations, odd sizes, alpha/beta variants, leading dimensions
 * larger than the width, beta == 0 over NaN garbage, and K == 0.
 *
 * Determinism (the own GEMM's contract, libmiles/gemm_internal.h): its bits
 * equal a scalar fmaf reference of the contract exactly, and so are the same
 * for 1, 2 and 3 threads, for rows computed together or in two calls (batch
 * composition), for every micro-kernel ISA this CPU can run (AVX-512, AVX2,
 * generic with exact FMA emulation), and for miles_gemm_serial.  Negative
 * controls show the bit comparison does catch a different summation order
 * and an unfused multiply-add.
 *
 * `test_gemm --hash` prints one hash of the own GEMM's outputs over shapes
 * that take every code path (make portability-check compares it across
 * emulated CPUs).
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
#include "ops_internal.h"
#include "gemm_internal.h"
#include "helpers.h"
#ifdef _OPENMP
#include <omp.h>
#endif

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
            maxe = test_max_err(maxe, e);
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
                    g_max_err_own = test_max_err(g_max_err_own, e_own);
                    if (!(e_own <= TOL)) /* NaN fails */
                        fail_msg("own gemm %dx%dx%d ta=%d tb=%d alpha=%g beta=%g pad=%d err %.3g",
                                 M, N, K, ta, tb, alpha, beta, pad, e_own);
                    if (miles_gemm_has_blas()) {
                        double e_blas = run_case(1, ta, tb, M, N, K, alpha, beta, pad, nan_c, c_blas);
                        g_max_err_blas = test_max_err(g_max_err_blas, e_blas);
                        if (!(e_blas <= TOL))
                            fail_msg("cblas %dx%dx%d ta=%d tb=%d err %.3g", M, N, K, ta, tb, e_blas);
                        /* own vs BLAS, relative to the result scale */
                        double scale = 1e-30, d = 0;
                        for (size_t i = 0; i < (size_t)M * N; i++) {
                            scale = test_max_err(scale, fabs(c_blas[i]));
                            double e = fabs((double)c_own[i] - c_blas[i]);
                            d = test_max_err(d, e);
                        }
                        double rel = (scale > 1e-30 ? d / scale : d);
                        g_max_err_pair = test_max_err(g_max_err_pair, rel);
                        if (!(rel <= TOL))
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
            maxd = test_max_err(maxd, d);
        }
    printf("gemm inside parallel region: max diff %.3g\n", maxd);
    assert_true(maxd <= TOL);
}

/* ------------------------------------------------------ determinism */

typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
} Shape;

/* Shapes that take every path of the own GEMM: small-M x W^T (computed
 * transposed), B read in place (few rows, B not transposed), A read in place
 * (N <= 64), the 16-wide tile (C at most 16 columns), several K slices
 * with a partial last one, ragged tiles, K large enough for column blocks of
 * packed B (K * N > 4M floats); and the static split of large products over
 * threads (the larger side >= 256 per thread): by rows and by columns, with
 * A or B transposed, sides that are not a multiple of the split's unit. */
static const Shape g_shapes[] = {
    {0, 1, 1, 300, 70, 1.0f, 0.0f},    {0, 1, 13, 129, 300, 1.0f, 1.0f},
    {1, 1, 37, 65, 257, 0.5f, 0.25f},  {0, 1, 64, 200, 513, 1.0f, 0.0f},
    {0, 0, 5, 77, 300, 1.0f, 1.0f},    {1, 0, 20, 45, 600, -1.5f, 0.0f},
    {0, 0, 150, 64, 129, 1.0f, 0.0f},  {1, 0, 97, 33, 256, 1.0f, 1.0f},
    {0, 1, 301, 47, 300, 1.0f, 0.5f},  {1, 1, 130, 250, 700, 0.7f, 0.0f},
    {0, 0, 200, 300, 17, 1.0f, -1.0f}, {1, 0, 77, 1030, 4100, 1.0f, 0.0f},
    {1, 0, 50, 16, 300, 1.0f, 0.5f},   {0, 0, 40, 9, 513, 2.0f, 0.0f}, /* C <= 16 wide */
    {1, 1, 800, 40, 300, 1.0f, 0.5f},  {0, 1, 1100, 530, 70, 1.0f, 0.0f}, /* split by rows */
    {0, 0, 33, 900, 100, 1.0f, 1.0f},  {0, 1, 20, 1601, 96, -1.0f, 0.0f}, /* by columns */
    /* tasks wider than 768 columns: the sub-chunk order (ragged last sub-chunk and panel) */
    {1, 0, 200, 1700, 300, 1.0f, 0.5f}, {0, 1, 250, 1000, 257, 0.5f, 0.0f},
};
#define NSHAPES ((int)(sizeof g_shapes / sizeof g_shapes[0]))

typedef struct {
    Shape s;
    int lda, ldb, ldc;
    float *A, *B, *C0;
} Problem;

static Problem problem_make(Shape s, uint64_t seed) {
    Problem p = {.s = s};
    p.lda = (s.ta ? s.M : s.K) + 1;
    p.ldb = (s.tb ? s.K : s.N) + 2;
    p.ldc = s.N + 3;
    size_t na = (size_t)(s.ta ? s.K : s.M) * p.lda, nb = (size_t)(s.tb ? s.N : s.K) * p.ldb;
    size_t nc = (size_t)s.M * p.ldc;
    p.A = malloc(na * sizeof(float));
    p.B = malloc(nb * sizeof(float));
    p.C0 = malloc(nc * sizeof(float));
    assert_non_null(p.A);
    assert_non_null(p.B);
    assert_non_null(p.C0);
    uint64_t save = g_rng;
    g_rng = seed | 1;
    for (size_t i = 0; i < na; i++) p.A[i] = frand();
    for (size_t i = 0; i < nb; i++) p.B[i] = frand();
    for (size_t i = 0; i < nc; i++) p.C0[i] = frand();
    g_rng = save;
    return p;
}

static void problem_free(Problem *p) {
    free(p->A);
    free(p->B);
    free(p->C0);
}

/* C (M x ldc, fresh copy of C0) after rows [i0, i1) were computed by `fn`. */
typedef void (*GemmFn)(int, int, int, int, int, float, const float *, int, const float *, int,
                       float, float *, int);

static void run_rows(const Problem *p, GemmFn fn, int i0, int i1, float *C) {
    const Shape *s = &p->s;
    const float *a = s->ta ? p->A + i0 : p->A + (size_t)i0 * p->lda;
    fn(s->ta, s->tb, i1 - i0, s->N, s->K, s->alpha, a, p->lda, p->B, p->ldb, s->beta,
       C + (size_t)i0 * p->ldc, p->ldc);
}

static float *run_full(const Problem *p, GemmFn fn) {
    size_t nc = (size_t)p->s.M * p->ldc;
    float *C = malloc(nc * sizeof(float));
    assert_non_null(C);
    memcpy(C, p->C0, nc * sizeof(float));
    run_rows(p, fn, 0, p->s.M, C);
    return C;
}

/* The contract, element by element, written independently of gemm.c:
 * C = beta*C; per KC slice of K: acc = fma chain in p order; C = fma(alpha, acc, C).
 * fused: 0 replaces every fma by a*b + c (negative control). */
static float *run_contract(const Problem *p, int fused, int reverse_k) {
    const Shape *s = &p->s;
    float *C = malloc((size_t)s->M * p->ldc * sizeof(float));
    assert_non_null(C);
    memcpy(C, p->C0, (size_t)s->M * p->ldc * sizeof(float));
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            float c = C[(size_t)i * p->ldc + j];
            c = s->beta == 0.0f ? 0.0f : s->beta == 1.0f ? c : c * s->beta;
            for (int pc = 0; pc < s->K; pc += MILES_GEMM_KC) {
                float acc = 0.0f;
                int pe = pc + MILES_GEMM_KC < s->K ? pc + MILES_GEMM_KC : s->K;
                for (int q = pc; q < pe; q++) {
                    int k = reverse_k ? pe - 1 - (q - pc) : q;
                    float a = s->ta ? p->A[(size_t)k * p->lda + i] : p->A[(size_t)i * p->lda + k];
                    float b = s->tb ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j];
                    acc = fused ? fmaf(a, b, acc) : a * b + acc;
                }
                c = fused ? fmaf(s->alpha, acc, c) : s->alpha * acc + c;
            }
            C[(size_t)i * p->ldc + j] = c;
        }
    return C;
}

static size_t count_diff(const Problem *p, const float *x, const float *y) {
    size_t d = 0;
    for (int i = 0; i < p->s.M; i++)
        d += memcmp(x + (size_t)i * p->ldc, y + (size_t)i * p->ldc, (size_t)p->ldc * sizeof(float)) != 0;
    return d;
}

static void assert_same_bits(const Problem *p, const float *x, const float *y, const char *what) {
    size_t d = count_diff(p, x, y);
    if (d)
        fail_msg("%s: %zu of %d rows differ, shape ta=%d tb=%d %dx%dx%d alpha=%g beta=%g", what,
                 d, p->s.M, p->s.ta, p->s.tb, p->s.M, p->s.N, p->s.K, p->s.alpha, p->s.beta);
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* The scalar kernels (the generic ISA: each multiply-add an exact fmaf by
 * way of double; the no-scratch fallback loops) take ~1 s per 1e8
 * multiply-adds: above 3e7 they are left to the other ISAs here.  The
 * generic kernel still computes every shape of g_shapes in make
 * portability-check, where the Nehalem run's --hash must equal the host's. */
#define SCALAR_MACS_MAX 3e7
static int too_big(double m, double n, double k) { return m * n * k > SCALAR_MACS_MAX; }
static int too_big_for_scalar(const char *isa, double m, double n, double k) {
    return !strcmp(isa, "generic") && too_big(m, n, k);
}

/* The own GEMM equals the contract reference bit for bit, on any thread
 * count, computed whole or in two row ranges, serial or parallel. */
static void test_bits_contract_threads_splits(void **state) {
    (void)state;
    int prev = miles_gemm_use_blas(0), nt0 = max_threads();
    for (int k = 0; k < NSHAPES; k++) {
        Problem p = problem_make(g_shapes[k], 1000 + k);
        float *ref = run_contract(&p, 1, 0);
        for (int nt = 1; nt <= 3; nt++) {
            set_threads(nt);
            float *c = run_full(&p, miles_gemm);
            assert_same_bits(&p, c, ref, nt == 1 ? "1 thread vs contract" : nt == 2 ? "2 threads vs contract" : "3 threads vs contract");
            free(c);
        }
        set_threads(nt0 > 1 ? nt0 : 2);
        float *c = run_full(&p, miles_gemm_serial);
        assert_same_bits(&p, c, ref, "miles_gemm_serial vs contract");
        free(c);
        /* batch composition: rows [0,m) and [m,M) in separate calls */
        const int splits[] = {1, 7, 12, 17, 64, p.s.M - 1};
        for (size_t q = 0; q < sizeof splits / sizeof splits[0]; q++) {
            int m = splits[q];
            if (m <= 0 || m >= p.s.M) continue;
            float *C = malloc((size_t)p.s.M * p.ldc * sizeof(float));
            assert_non_null(C);
            memcpy(C, p.C0, (size_t)p.s.M * p.ldc * sizeof(float));
            run_rows(&p, miles_gemm, 0, m, C);
            run_rows(&p, miles_gemm, m, p.s.M, C);
            assert_same_bits(&p, C, ref, "rows split in two calls vs contract");
            free(C);
        }
        free(ref);
        problem_free(&p);
    }
    set_threads(nt0);
    miles_gemm_use_blas(prev);
    printf("own gemm: %d shapes bit-identical to the contract on 1/2/3 threads, serial, "
           "and split by rows (ISA %s)\n", NSHAPES, miles_gemm_isa_name());
}

/* Every micro-kernel this CPU can run gives the same bits. */
static void test_bits_every_isa(void **state) {
    (void)state;
    static const char *isas[] = {"avx512", "avx2", "generic"};
    const char *orig = miles_gemm_isa_name();
    int prev = miles_gemm_use_blas(0), tested = 0, skipped = 0;
    for (size_t q = 0; q < sizeof isas / sizeof isas[0]; q++) {
        if (!miles_gemm_isa_available(isas[q])) {
            printf("ISA %s: not available on this CPU, skipped\n", isas[q]);
            continue;
        }
        assert_int_equal(miles_gemm_force_isa(isas[q]), 0);
        for (int k = 0; k < NSHAPES; k++) {
            if (too_big_for_scalar(isas[q], g_shapes[k].M, g_shapes[k].N, g_shapes[k].K)) {
                skipped++;
                continue;
            }
            Problem p = problem_make(g_shapes[k], 2000 + k);
            float *ref = run_contract(&p, 1, 0);
            float *c = run_full(&p, miles_gemm);
            assert_same_bits(&p, c, ref, isas[q]);
            free(c);
            free(ref);
            problem_free(&p);
        }
        tested++;
    }
    assert_int_equal(miles_gemm_force_isa(orig), 0);
    assert_int_equal(miles_gemm_force_isa("no-such-isa"), -1);
    miles_gemm_use_blas(prev);
    assert_true(tested >= 1); /* generic always runs */
    printf("own gemm: %d micro-kernel ISA(s) bit-identical to the contract (%d generic shape(s) over %.0e "
           "multiply-adds left to portability-check)\n", tested, skipped, SCALAR_MACS_MAX);
}

/* Without its packing scratch (the allocation failed) every GEMM entry
 * point falls back to plain loops (gemm.c gemm_reference, packed_slow) that
 * keep the contract's bits: miles_gemm on the shapes of g_shapes up to
 * SCALAR_MACS_MAX multiply-adds and 1 and 2 threads, miles_gemm_bias,
 * miles_gemm_tiny, and pre-packed W for few and many rows, with beta, bias
 * and the fused GELU. */
static void test_bits_without_scratch(void **state) {
    (void)state;
    int prev = miles_gemm_use_blas(0), nt0 = max_threads(), cases = 0;
    for (int k = 0; k < NSHAPES; k++) {
        if (too_big(g_shapes[k].M, g_shapes[k].N, g_shapes[k].K)) continue; /* the fallback is scalar */
        Problem p = problem_make(g_shapes[k], 7000 + k);
        float *ref = run_contract(&p, 1, 0);
        for (int nt = 1; nt <= 2; nt++) {
            set_threads(nt);
            float *c0 = run_full(&p, miles_gemm);
            miles_gemm_scratch_fail(1);
            float *c = run_full(&p, miles_gemm);
            miles_gemm_scratch_fail(0);
            assert_same_bits(&p, c0, ref, "with scratch");
            assert_same_bits(&p, c, ref, "no scratch: miles_gemm");
            free(c0);
            free(c);
            cases++;
        }
        if (p.s.ta == 0 && p.s.beta == 0.0f && p.s.K <= MILES_GEMM_KC && p.s.M <= 64 && p.s.N <= 64) {
            float *C = malloc((size_t)p.s.M * p.ldc * sizeof(float));
            assert_non_null(C);
            memcpy(C, p.C0, (size_t)p.s.M * p.ldc * sizeof(float));
            miles_gemm_scratch_fail(1);
            miles_gemm_tiny(p.s.tb, p.s.M, p.s.N, p.s.K, p.s.alpha, p.A, p.lda, p.B, p.ldb, C, p.ldc);
            miles_gemm_scratch_fail(0);
            assert_same_bits(&p, C, ref, "no scratch: miles_gemm_tiny");
            free(C);
            cases++;
        }
        free(ref);
        problem_free(&p);
    }
    /* bias and pre-packed W: few rows (the swapped / A-panel paths) and many */
    static const int Ms[] = {3, 40, 130};
    for (size_t b = 0; b < sizeof Ms / sizeof Ms[0]; b++) {
        const int M = Ms[b], N = 77, K = 300;
        Problem p = problem_make((Shape){0, 1, M, N, K, 1.0f, 1.0f}, 7100 + (int)b);
        const float *bias = p.C0; /* any values */
        float *want = malloc((size_t)M * p.ldc * sizeof(float)), *got = malloc((size_t)M * p.ldc * sizeof(float));
        assert_non_null(want);
        assert_non_null(got);
        for (int ge = 0; ge <= 1; ge++) {
            MilesGemmF32Packed *pw = miles_gemm_f32_pack(p.B, N, K, p.ldb);
            assert_non_null(pw);
            memcpy(want, p.C0, (size_t)M * p.ldc * sizeof(float));
            memcpy(got, p.C0, (size_t)M * p.ldc * sizeof(float));
            miles_gemm_f32_packed_bias(pw, M, p.A, p.lda, bias, want, p.ldc, ge);
            miles_gemm_scratch_fail(1);
            miles_gemm_f32_packed_bias(pw, M, p.A, p.lda, bias, got, p.ldc, ge);
            miles_gemm_scratch_fail(0);
            assert_same_bits(&p, got, want, ge ? "no scratch: packed + bias + GELU" : "no scratch: packed + bias");
            memcpy(want, p.C0, (size_t)M * p.ldc * sizeof(float));
            memcpy(got, p.C0, (size_t)M * p.ldc * sizeof(float));
            miles_gemm_f32_packed(pw, M, p.A, p.lda, -0.5f, want, p.ldc, ge);
            miles_gemm_scratch_fail(1);
            miles_gemm_f32_packed(pw, M, p.A, p.lda, -0.5f, got, p.ldc, ge);
            miles_gemm_scratch_fail(0);
            assert_same_bits(&p, got, want, "no scratch: packed, beta -0.5");
            miles_gemm_f32_packed_free(pw);
            cases += 2;
        }
        memcpy(want, p.C0, (size_t)M * p.ldc * sizeof(float));
        memcpy(got, p.C0, (size_t)M * p.ldc * sizeof(float));
        miles_gemm_bias(1, M, N, K, p.A, p.lda, p.B, p.ldb, bias, 0.0f, want, p.ldc);
        miles_gemm_scratch_fail(1);
        miles_gemm_bias(1, M, N, K, p.A, p.lda, p.B, p.ldb, bias, 0.0f, got, p.ldc);
        miles_gemm_scratch_fail(0);
        assert_same_bits(&p, got, want, "no scratch: miles_gemm_bias");
        cases++;
        free(want);
        free(got);
        problem_free(&p);
    }
    set_threads(nt0);
    miles_gemm_use_blas(prev);
    printf("no packing scratch: %d cases bit-identical to the contract (ISA %s)\n", cases, miles_gemm_isa_name());
}

/* W packed once (miles_gemm_f32_pack, the fp32 inference engine's weights):
 * C = A @ W^T + beta C equals the contract bit for bit, for few rows (the
 * pre-packed A-panel path, C^T = W @ x^T) and many (the B-panel path), on 1
 * and 2 threads, for every micro-kernel ISA this CPU can run (each packs
 * its own layout). */
static void test_bits_prepacked(void **state) {
    (void)state;
    static const char *isas[] = {"avx512", "avx2", "generic"};
    /* few rows (AVX-512): 13 the 16-wide tile; 30, 32 one 32-wide token
     * panel; 46 a 32-wide and a last 16-wide one; 64 the largest few-rows M;
     * 17, 40 fill their token panels poorly and take the row path, as 65
     * and 200 do (every ISA: the same bits either way) */
    static const int Ms[] = {1, 13, 17, 30, 32, 40, 46, 64, 65, 200};
    static const int NK[][2] = {{300, 70}, {129, 300}, {47, 257}, {1000, 513}, {16, 600}, {33, 256}};
    const char *orig = miles_gemm_isa_name();
    int prev = miles_gemm_use_blas(0), nt0 = max_threads(), tested = 0, cases = 0;
    for (size_t q = 0; q < sizeof isas / sizeof isas[0]; q++) {
        if (!miles_gemm_isa_available(isas[q])) continue;
        assert_int_equal(miles_gemm_force_isa(isas[q]), 0);
        for (size_t a = 0; a < sizeof NK / sizeof NK[0]; a++)
            for (size_t b = 0; b < sizeof Ms / sizeof Ms[0]; b++) {
                const int M = Ms[b], N = NK[a][0], K = NK[a][1];
                if (too_big(M, N, K)) continue; /* keep the scalar reference quick */
                const float beta = (a + b) % 3 == 0 ? 0.0f : (a + b) % 3 == 1 ? 1.0f : -0.75f;
                Problem p = problem_make((Shape){0, 1, M, N, K, 1.0f, beta}, 3000 + 16 * a + b);
                float *ref = run_contract(&p, 1, 0);
                MilesGemmF32Packed *pw = miles_gemm_f32_pack(p.B, N, K, p.ldb);
                assert_non_null(pw);
                for (int nt = 1; nt <= 2; nt++) {
                    set_threads(nt);
                    float *C = malloc((size_t)M * p.ldc * sizeof(float));
                    assert_non_null(C);
                    memcpy(C, p.C0, (size_t)M * p.ldc * sizeof(float));
                    miles_gemm_f32_packed(pw, M, p.A, p.lda, beta, C, p.ldc, 0);
                    assert_same_bits(&p, C, ref, isas[q]);
                    /* the fused GELU epilogue: gelu_forward of the same C */
                    memcpy(C, p.C0, (size_t)M * p.ldc * sizeof(float));
                    miles_gemm_f32_packed(pw, M, p.A, p.lda, beta, C, p.ldc, 1);
                    float *g = malloc((size_t)M * p.ldc * sizeof(float));
                    assert_non_null(g);
                    memcpy(g, ref, (size_t)M * p.ldc * sizeof(float));
                    for (int i = 0; i < M; i++) gelu_forward(g + (size_t)i * p.ldc, g + (size_t)i * p.ldc, (size_t)N);
                    assert_same_bits(&p, C, g, "packed + fused GELU");
                    /* the bias prologue (the engine's linear layers): the
                     * bits of bias rows copied in, then beta 1; with and
                     * without GELU */
                    const float *bias = p.C0 + (size_t)(M - 1) * p.ldc; /* any values */
                    for (int ge = 0; ge <= 1; ge++) {
                        for (int i = 0; i < M; i++) memcpy(g + (size_t)i * p.ldc, bias, (size_t)N * sizeof(float));
                        miles_gemm_f32_packed(pw, M, p.A, p.lda, 1.0f, g, p.ldc, ge);
                        memcpy(C, p.C0, (size_t)M * p.ldc * sizeof(float)); /* C's old values must not matter */
                        for (int i = 0; i < M; i++) memcpy(C + (size_t)i * p.ldc + N, g + (size_t)i * p.ldc + N,
                                                           (size_t)(p.ldc - N) * sizeof(float));
                        miles_gemm_f32_packed_bias(pw, M, p.A, p.lda, bias, C, p.ldc, ge);
                        assert_same_bits(&p, C, g, ge ? "packed + bias + GELU" : "packed + bias");
                    }
                    free(g);
                    free(C);
                    cases++;
                }
                miles_gemm_f32_packed_free(pw);
                free(ref);
                problem_free(&p);
            }
        tested++;
    }
    assert_int_equal(miles_gemm_force_isa(orig), 0);
    set_threads(nt0);
    miles_gemm_use_blas(prev);
    assert_true(tested >= 1);
    printf("pre-packed W: %d cases on %d ISA(s) bit-identical to the contract\n", cases, tested);
}

/* miles_gemm_tiny (the inference attention's per-head products): the
 * contract's bits for beta = 0, B transposed or not, narrow and wide C, one
 * K slice and the fallback past it, every ISA. */
static void test_bits_tiny(void **state) {
    (void)state;
    static const char *isas[] = {"avx512", "avx2", "generic"};
    static const int Ms[] = {1, 5, 16, 17, 32, 37};
    static const int Ks[] = {1, 32, 64, 256, 300};
    const char *orig = miles_gemm_isa_name();
    int cases = 0;
    for (size_t q = 0; q < sizeof isas / sizeof isas[0]; q++) {
        if (!miles_gemm_isa_available(isas[q])) continue;
        assert_int_equal(miles_gemm_force_isa(isas[q]), 0);
        for (int tb = 0; tb <= 1; tb++)
            for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
                for (size_t b = 0; b < sizeof Ms / sizeof Ms[0]; b++)
                    for (size_t c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
                        const int M = Ms[a], N = Ms[b], K = Ks[c];
                        const float alpha = c % 2 ? 0.125f : 1.0f;
                        Problem p = problem_make((Shape){0, tb, M, N, K, alpha, 0.0f}, 5000 + a * 64 + b * 8 + c);
                        float *ref = run_contract(&p, 1, 0);
                        float *C = malloc((size_t)M * p.ldc * sizeof(float));
                        assert_non_null(C);
                        memcpy(C, p.C0, (size_t)M * p.ldc * sizeof(float));
                        miles_gemm_tiny(tb, M, N, K, alpha, p.A, p.lda, p.B, p.ldb, C, p.ldc);
                        assert_same_bits(&p, C, ref, isas[q]);
                        free(C);
                        free(ref);
                        problem_free(&p);
                        cases++;
                    }
    }
    assert_int_equal(miles_gemm_force_isa(orig), 0);
    printf("miles_gemm_tiny: %d cases bit-identical to the contract\n", cases);
}

/* miles_gemm_bias (the linear layers): the bits of seeding C's rows with the
 * bias and calling miles_gemm with beta 1, on every ISA, 1 and 2 threads,
 * for the paths it takes: the swapped few-rows one (M <= 64, B transposed),
 * the 16-wide tile (N <= 16), column blocks, row counts that do not split
 * evenly (the generic ISA up to SCALAR_MACS_MAX); and with a NULL bias,
 * miles_gemm itself (beta 0 and 1). */
static void test_bits_bias(void **state) {
    (void)state;
#ifdef __SANITIZE_ADDRESS__ /* make asan runs ~10x slower: the selected ISA only */
    const char *isas[] = {miles_gemm_isa_name()};
#else
    const char *isas[] = {"avx512", "avx2", "generic"};
#endif
    static const int shapes[][3] = {{5, 40, 33}, {64, 200, 70}, {70, 13, 300}, {1003, 168, 200},
                                    {300, 700, 257}, {70, 3900, 1100}};
    const char *orig = miles_gemm_isa_name();
    const int saved = max_threads();
    int cases = 0;
    for (size_t q = 0; q < sizeof isas / sizeof isas[0]; q++) {
        if (!miles_gemm_isa_available(isas[q])) continue;
        assert_int_equal(miles_gemm_force_isa(isas[q]), 0);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int tb = 0; tb <= 1; tb++)
                for (int nt = 1; nt <= 2; nt++) {
                    const int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                    if (too_big_for_scalar(isas[q], M, N, K)) continue;
                    const int lda = K + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                    float *A = malloc((size_t)M * lda * sizeof(float));
                    float *B = malloc((size_t)(tb ? N : K) * ldb * sizeof(float));
                    float *bias = malloc((size_t)N * sizeof(float));
                    float *want = malloc((size_t)M * ldc * sizeof(float)), *got = malloc((size_t)M * ldc * sizeof(float));
                    assert_true(A && B && bias && want && got);
                    for (size_t i = 0; i < (size_t)M * lda; i++) A[i] = frand();
                    for (size_t i = 0; i < (size_t)(tb ? N : K) * ldb; i++) B[i] = frand();
                    for (int j = 0; j < N; j++) bias[j] = frand();
                    for (size_t i = 0; i < (size_t)M * ldc; i++) got[i] = want[i] = frand();
                    set_threads(nt);
                    for (int i = 0; i < M; i++) memcpy(want + (size_t)i * ldc, bias, (size_t)N * sizeof(float));
                    miles_gemm(0, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, want, ldc);
                    miles_gemm_bias(tb, M, N, K, A, lda, B, ldb, bias, 0.5f /* ignored */, got, ldc);
                    assert_memory_equal(want, got, (size_t)M * ldc * sizeof(float));
                    for (int beta = 0; beta <= 1; beta++) { /* no bias: miles_gemm's bits */
                        for (size_t i = 0; i < (size_t)M * ldc; i++) got[i] = want[i] = frand();
                        miles_gemm(0, tb, M, N, K, 1.0f, A, lda, B, ldb, (float)beta, want, ldc);
                        miles_gemm_bias(tb, M, N, K, A, lda, B, ldb, NULL, (float)beta, got, ldc);
                        assert_memory_equal(want, got, (size_t)M * ldc * sizeof(float));
                    }
                    free(A), free(B), free(bias), free(want), free(got);
                    cases++;
                }
    }
    set_threads(saved);
    assert_int_equal(miles_gemm_force_isa(orig), 0);
    printf("miles_gemm_bias: %d cases with the bits of bias rows + miles_gemm (beta 1)\n", cases);
}

/* Negative controls: the bit comparison is sensitive to what the contract
 * fixes.  Reversing K within each slice, or rounding the product before the
 * add, changes at least one element of a K = 600 product. */
static void test_bits_negative_control(void **state) {
    (void)state;
    Shape s = {0, 1, 40, 50, 600, 1.0f, 0.0f};
    Problem p = problem_make(s, 77);
    int prev = miles_gemm_use_blas(0);
    float *c = run_full(&p, miles_gemm);
    float *rev = run_contract(&p, 1, 1), *unfused = run_contract(&p, 0, 0);
    size_t d1 = count_diff(&p, c, rev), d2 = count_diff(&p, c, unfused);
    printf("negative controls: reversed K order differs in %zu/%d rows, unfused "
           "multiply-add in %zu/%d rows\n", d1, s.M, d2, s.M);
    assert_true(d1 > 0);
    assert_true(d2 > 0);
    free(c);
    free(rev);
    free(unfused);
    problem_free(&p);
    miles_gemm_use_blas(prev);
}

/* FNV-1a over the own GEMM's outputs for every shape (--hash). */
static int print_hash(void) {
    uint64_t h = 0xcbf29ce484222325ull;
    miles_gemm_use_blas(0);
    for (int k = 0; k < NSHAPES; k++) {
        Problem p = problem_make(g_shapes[k], 3000 + k);
        float *c = run_full(&p, miles_gemm);
        const unsigned char *b = (const unsigned char *)c;
        for (size_t i = 0; i < (size_t)p.s.M * p.ldc * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ull;
        free(c);
        problem_free(&p);
    }
    printf("own-gemm-hash %016llx (%d shapes, isa %s)\n", (unsigned long long)h, NSHAPES,
           miles_gemm_isa_name());
    return 0;
}

static int report(void **state) {
    (void)state;
    printf("gemm max bound-relative error vs double: own %.3g, cblas %.3g (has_blas=%d); "
           "own vs cblas max rel diff %.3g; tolerance %.0e\n",
           g_max_err_own, g_max_err_blas, miles_gemm_has_blas(), g_max_err_pair, TOL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--hash") == 0) return print_hash();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_odd),
        cmocka_unit_test(test_medium),
        cmocka_unit_test(test_k_zero_scales_c),
        cmocka_unit_test(test_inside_parallel_region),
        cmocka_unit_test(test_bits_contract_threads_splits),
        cmocka_unit_test(test_bits_every_isa),
        cmocka_unit_test(test_bits_prepacked),
        cmocka_unit_test(test_bits_tiny),
        cmocka_unit_test(test_bits_bias),
        cmocka_unit_test(test_bits_without_scratch),
        cmocka_unit_test(test_bits_negative_control),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
