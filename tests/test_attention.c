/*
 * test_attention.c — attention_forward/backward (libmiles/ops_attention.c):
 * forward against a naive double-precision HF-BERT attention (padding mask,
 * softmax over real keys, probs @ v), masked probabilities exactly 0, rows
 * summing to 1, a batch row with no real key, attention-probability dropout
 * following the RNG contract, and finite-difference gradient checks of q, k
 * and v with and without dropout (method and tolerance as in test_ops.c:
 * L = sum(out*R), fp32 central differences, eps 1e-2, rel tol 5e-3).
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
#include "helpers.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define GRAD_EPS 1e-2f
#define GRAD_TOL 5e-3

static uint64_t g_rng = 0xD1B54A32D192ED03ull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *fbuf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}
static float *frandbuf(size_t n, float scale) {
    float *p = fbuf(n);
    for (size_t i = 0; i < n; i++) p[i] = scale * frand();
    return p;
}

typedef struct {
    float *out, *att, *attd, *q, *k, *v;
    const int32_t *mask;
    int B, T, C, NH;
    MilesDropoutKey key;
} AttCtx;

static void att_fwd(void *p) {
    AttCtx *c = p;
    attention_forward(c->out, c->att, c->attd, c->q, c->k, c->v, c->mask, c->B, c->T, c->C,
                      c->NH, c->key);
}

static AttCtx att_make(int B, int T, int C, int NH, const int32_t *mask, float p) {
    AttCtx c = {fbuf((size_t)B * T * C), fbuf((size_t)B * NH * T * T),
                p > 0 ? fbuf((size_t)B * NH * T * T) : NULL,
                frandbuf((size_t)B * T * C, 1.5f), frandbuf((size_t)B * T * C, 1.5f),
                frandbuf((size_t)B * T * C, 1.0f), mask, B, T, C, NH,
                (MilesDropoutKey){p, 0xABCDEF12345ull, 77, 9}};
    return c;
}
static void att_free(AttCtx *c) {
    free(c->out); free(c->att); free(c->attd); free(c->q); free(c->k); free(c->v);
}

static double g_worst_fwd = 0, g_worst_grad = 0;

/* Naive double HF attention; with dropout the mask comes from the contract
 * (flat index into [B,NH,T,T]).  Returns max |out - ref| and checks att. */
static double check_forward(const AttCtx *c, const char *what) {
    int B = c->B, T = c->T, C = c->C, NH = c->NH, hs = C / NH;
    double scale = 1.0 / sqrt((double)hs), maxe = 0, maxpe = 0;
    double *p = malloc((size_t)T * sizeof(double));
    assert_non_null(p);
    float s = 1.0f / (1.0f - c->key.p);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                int any = 0;
                for (int j = 0; j < T; j++) {
                    if (c->mask && !c->mask[b * T + j]) { p[j] = -INFINITY; continue; }
                    double d = 0;
                    for (int e = 0; e < hs; e++)
                        d += (double)c->q[(b * T + i) * C + h * hs + e] * c->k[(b * T + j) * C + h * hs + e];
                    p[j] = d * scale;
                    if (p[j] > mx) mx = p[j];
                    any = 1;
                }
                for (int j = 0; j < T; j++) {
                    p[j] = any && p[j] != -INFINITY ? exp(p[j] - mx) : 0.0;
                    sum += p[j];
                }
                size_t row = (((size_t)b * NH + h) * T + i) * T;
                double rowsum = 0;
                for (int j = 0; j < T; j++) {
                    if (any) p[j] /= sum;
                    float a = c->att[row + j];
                    rowsum += a;
                    if (p[j] == 0.0 && a != 0.0f) fail_msg("%s: masked prob %g != 0", what, a);
                    maxpe = test_max_err(maxpe, fabs(a - p[j]));
                    if (c->attd) {
                        int keep = miles_dropout_uniform(c->key.seed, c->key.step,
                                                         c->key.tensor_id, row + j) >= c->key.p;
                        float want = keep ? a * s : 0.0f;
                        if (c->attd[row + j] != want)
                            fail_msg("%s: attd[%zu] = %g, contract says %g", what, row + j,
                                     c->attd[row + j], want);
                        p[j] = want; /* out uses the dropped probabilities */
                    }
                }
                if (any && !(fabs(rowsum - 1.0) <= 1e-5)) fail_msg("%s: row sums to %.9g", what, rowsum);
                if (!any && rowsum != 0.0) fail_msg("%s: empty row has mass %g", what, rowsum);
                for (int e = 0; e < hs; e++) {
                    double o = 0;
                    for (int j = 0; j < T; j++) o += p[j] * c->v[(b * T + j) * C + h * hs + e];
                    maxe = test_max_err(maxe, fabs(o - c->out[(b * T + i) * C + h * hs + e]));
                }
            }
    free(p);
    printf("  forward %-34s max|out err| %.3g, max|prob err| %.3g\n", what, maxe, maxpe);
    g_worst_fwd = test_max_err(g_worst_fwd, maxe);
    if (!(maxe < 2e-6 && maxpe < 1e-6)) fail_msg("%s: forward error out %.3g prob %.3g", what, maxe, maxpe);
    return maxe;
}

static void gradcheck(const char *what, AttCtx *c, float *x, const float *grad, const float *g0,
                      const float *R, int expect_nonzero) {
    size_t nx = (size_t)c->B * c->T * c->C, nout = nx;
    size_t stride = nx > 300 ? nx / 300 : 1;
    double maxdiff = 0, maxfd = 0;
    for (size_t i = 0; i < nx; i += stride) {
        float x0 = x[i];
        double l[2];
        float xs[2];
        for (int side = 0; side < 2; side++) {
            x[i] = side ? x0 - GRAD_EPS : x0 + GRAD_EPS;
            xs[side] = x[i];
            att_fwd(c);
            double s = 0;
            for (size_t o = 0; o < nout; o++) s += (double)c->out[o] * R[o];
            l[side] = s;
        }
        x[i] = x0;
        double fd = (l[0] - l[1]) / ((double)xs[0] - xs[1]);
        double a = (double)grad[i] - g0[i];
        maxdiff = test_max_err(maxdiff, fabs(a - fd));
        maxfd = test_max_err(maxfd, fabs(fd));
    }
    att_fwd(c);
    double rel = maxdiff / fmax(maxfd, 1e-2);
    printf("  gradcheck %-30s n=%-5zu max|fd|=%-9.3g max|diff|=%-9.3g rel=%.3g\n", what, nx,
           maxfd, maxdiff, rel);
    g_worst_grad = test_max_err(g_worst_grad, rel);
    if (!(rel <= GRAD_TOL)) fail_msg("%s: gradient mismatch rel %.3g", what, rel);
    if (expect_nonzero && !(maxfd > 1e-2)) fail_msg("%s: vacuous gradient check", what);
}

/* Backward with random pre-filled gradients; checks dq, dk, dv. */
static void check_backward(AttCtx *c, const char *what) {
    size_t n = (size_t)c->B * c->T * c->C, nt = (size_t)c->B * c->NH * c->T * c->T;
    float *R = frandbuf(n, 1.0f);
    float *g0q = frandbuf(n, 1.0f), *g0k = frandbuf(n, 1.0f), *g0v = frandbuf(n, 1.0f);
    float *dq = fbuf(n), *dk = fbuf(n), *dv = fbuf(n), *scratch = fbuf(nt);
    memcpy(dq, g0q, n * sizeof(float));
    memcpy(dk, g0k, n * sizeof(float));
    memcpy(dv, g0v, n * sizeof(float));
    for (size_t i = 0; i < nt; i++) scratch[i] = NAN; /* workspace content must not matter */
    att_fwd(c);
    attention_backward(dq, dk, dv, scratch, R, c->att, c->attd, c->q, c->k, c->v, c->B, c->T,
                       c->C, c->NH, c->key);
    char name[96];
    snprintf(name, sizeof name, "%s dq", what);
    gradcheck(name, c, c->q, dq, g0q, R, 1);
    snprintf(name, sizeof name, "%s dk", what);
    gradcheck(name, c, c->k, dk, g0k, R, 1);
    snprintf(name, sizeof name, "%s dv", what);
    gradcheck(name, c, c->v, dv, g0v, R, 1);

    /* masked keys get no gradient in k and v (exactly) */
    if (c->mask)
        for (int b = 0; b < c->B; b++)
            for (int t = 0; t < c->T; t++)
                if (!c->mask[b * c->T + t])
                    for (int e = 0; e < c->C; e++) {
                        size_t i = ((size_t)b * c->T + t) * c->C + e;
                        assert_true(dk[i] == g0k[i] && dv[i] == g0v[i]);
                    }
    /* NULL gradient outputs are skipped; each output alone gives the same */
    float *dq2 = fbuf(n);
    memcpy(dq2, g0q, n * sizeof(float));
    attention_backward(dq2, NULL, NULL, scratch, R, c->att, c->attd, c->q, c->k, c->v, c->B,
                       c->T, c->C, c->NH, c->key);
    assert_memory_equal(dq2, dq, n * sizeof(float));
    free(dq2);
    free(R); free(g0q); free(g0k); free(g0v); free(dq); free(dk); free(dv); free(scratch);
}

/* B=3, T=5: row 0 all real, row 1 three real keys, row 2 non-contiguous */
static const int32_t MASK_3x5[15] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0};

static void test_forward_mask(void **state) {
    (void)state;
    AttCtx c = att_make(3, 5, 8, 2, MASK_3x5, 0.0f);
    /* padded keys of batch row 1 score ~150 for query 0: if they entered the
     * softmax max, every real key's exp would underflow (0/0 = NaN) */
    for (int t = 3; t < 5; t++)
        for (int e = 0; e < 8; e++) c.k[(5 + t) * 8 + e] = 100.0f * c.q[(5 + 0) * 8 + e];
    att_fwd(&c);
    check_forward(&c, "B3 T5 C8 NH2 mask");
    att_free(&c);
    AttCtx c2 = att_make(2, 7, 12, 3, NULL, 0.0f);
    att_fwd(&c2);
    check_forward(&c2, "B2 T7 C12 NH3 no mask");
    att_free(&c2);
}

static void test_forward_large(void **state) {
    (void)state;
    /* BERT-like head size 32, T beyond one GEMM micro-tile, ragged T */
    int T = 67;
    int32_t *mask = calloc(2 * T, sizeof(int32_t));
    assert_non_null(mask);
    for (int t = 0; t < T; t++) {
        mask[t] = 1;
        mask[T + t] = t < 40;
    }
    for (int backend = 0; backend <= miles_gemm_has_blas(); backend++) {
        int prev = miles_gemm_use_blas(backend);
        AttCtx c = att_make(2, T, 128, 4, mask, 0.0f);
        att_fwd(&c);
        check_forward(&c, backend ? "B2 T67 C128 NH4 (blas on)" : "B2 T67 C128 NH4 (blas off)");
        att_free(&c);
        miles_gemm_use_blas(prev);
    }
    free(mask);
}

static void test_backward_mask(void **state) {
    (void)state;
    AttCtx c = att_make(3, 5, 8, 2, MASK_3x5, 0.0f);
    check_backward(&c, "attn mask");
    att_free(&c);
}

static void test_backward_larger(void **state) {
    (void)state;
    int T = 19;
    int32_t mask[2 * 19];
    for (int t = 0; t < T; t++) {
        mask[t] = t < 11;
        mask[T + t] = 1;
    }
    AttCtx c = att_make(2, T, 32, 2, mask, 0.0f);
    check_backward(&c, "attn T19 hs16");
    att_free(&c);
}

static void test_dropout(void **state) {
    (void)state;
    /* T = 5: per-head offsets b*NH*25 are not multiples of 4, so Philox
     * blocks straddle heads */
    AttCtx c = att_make(3, 5, 8, 2, MASK_3x5, 0.3f);
    att_fwd(&c);
    check_forward(&c, "B3 T5 mask dropout p=0.3");
    size_t nt = 3 * 2 * 25, dropped = 0, real = 0;
    for (size_t i = 0; i < nt; i++)
        if (c.att[i] != 0.0f) {
            real++;
            dropped += c.attd[i] == 0.0f;
        }
    printf("  dropout: %zu of %zu nonzero probabilities dropped\n", dropped, real);
    assert_true(dropped > 0 && dropped < real);
    check_backward(&c, "attn dropout");
    att_free(&c);
}

static void test_empty_row(void **state) {
    (void)state;
    /* batch row 1 has no real key: att and out are 0, and no gradient */
    int32_t mask[8] = {1, 1, 0, 1, 0, 0, 0, 0};
    AttCtx c = att_make(2, 4, 6, 2, mask, 0.0f);
    att_fwd(&c);
    check_forward(&c, "empty batch row");
    for (int t = 0; t < 4; t++)
        for (int e = 0; e < 6; e++) assert_true(c.out[(4 + t) * 6 + e] == 0.0f);
    size_t n = 2 * 4 * 6;
    float *R = frandbuf(n, 1.0f), *dq = fbuf(n), *dk = fbuf(n), *dv = fbuf(n), *scr = fbuf(2 * 2 * 16);
    attention_backward(dq, dk, dv, scr, R, c.att, NULL, c.q, c.k, c.v, 2, 4, 6, 2, c.key);
    for (size_t i = 24; i < n; i++) assert_true(dq[i] == 0.0f && dk[i] == 0.0f && dv[i] == 0.0f);
    free(R); free(dq); free(dk); free(dv); free(scr);
    att_free(&c);
}

/* A NaN score must come out NaN (as expf would give), not silently become a
 * probability of 0: softmax_exp used to return 0 for NaN after shifting a
 * negative int (undefined behaviour, UBSan). */
static void test_nan_score(void **state) {
    (void)state;
    AttCtx c = att_make(1, 4, 4, 1, NULL, 0.0f);
    c.k[2 * 4 + 1] = NAN;   /* key 2: every query's score for it is NaN */
    att_fwd(&c);
    for (int i = 0; i < 4; i++) {
        if (!isnan(c.att[i * 4 + 2])) fail_msg("query %d: NaN score gave probability %g", i, (double)c.att[i * 4 + 2]);
        assert_true(isnan(c.out[i * 4]));
    }
    att_free(&c);
}

/* attention_forward_ws / attention_backward_ws (training without the
 * [B,NH,R,T] dropped probabilities: per-thread slots, drawn again in the
 * backward) give the bits of attention_forward / attention_backward (and
 * the _cls forms) with attd kept and zeroed gradients (the _ws backward
 * sets them), for 1 slot and one per thread, on 1 to 5 threads; the
 * backward's slots too: 1, one per thread and attention_ws_slots' count
 * (two per thread when the pairs allow), with a guard after the slots that
 * must stay untouched; and the kept-attd backward on more threads than
 * (batch, head) pairs (one slot per pair).  Workspaces and the gradient
 * outputs start as NaN: their content must not matter. */
static void test_workspace_bits(void **state) {
    (void)state;
    /* B T C NH: 32 pairs (two slots per thread: S and the redrawn D, one
     * draw of the mask for both) and 2 pairs (1 thread: two slots; 2: one
     * slot per thread, two draws; 3 and 5: one slot per pair); both large
     * enough to run on the threads, the [CLS]-only forms too */
    const int cases[2][4] = {{8, 67, 256, 4}, {1, 130, 128, 2}};
    const int thread_counts[4] = {1, 2, 3, 5};
    int compared = 0;
    for (int ci = 0; ci < 2; ci++) {
        const int B = cases[ci][0], T = cases[ci][1], C = cases[ci][2], NH = cases[ci][3];
        int32_t *mask = calloc((size_t)B * T, sizeof(int32_t));
        assert_non_null(mask);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) mask[b * T + t] = t < T - 7 * b;
        for (int cls = 0; cls < 2; cls++) {
            const int R = cls ? 1 : T;
            const size_t n = (size_t)B * T * C, nt = (size_t)B * NH * R * T;
            AttCtx c = att_make(B, T, C, NH, mask, 0.2f);
            float *dout = frandbuf(n, 1.0f), *g0 = frandbuf(3 * n, 1.0f);
            enum { GUARD = 64 };
            const size_t nscr = (nt > (size_t)10 * R * T ? nt : (size_t)10 * R * T) + GUARD;
            float *ref = fbuf(3 * n), *got = fbuf(3 * n), *scratch = fbuf(nscr);
            float *out2 = fbuf(n), *att2 = fbuf(nt), *work = fbuf((size_t)5 * R * T);
            /* the reference: attd kept */
            (cls ? attention_forward_cls : attention_forward)(c.out, c.att, c.attd, c.q, c.k, c.v, mask, B,
                                                              T, C, NH, c.key);
            memset(ref, 0, 3 * n * sizeof(float)); /* the _ws form sets what this accumulates into zeros */
            (cls ? attention_backward_cls : attention_backward)(ref, ref + n, ref + 2 * n, scratch, dout, c.att,
                                                                c.attd, c.q, c.k, c.v, B, T, C, NH, c.key);
            for (int ti = 0; ti < 4; ti++) {
                const int threads = thread_counts[ti];
                int t0 = 1;
#ifdef _OPENMP
                t0 = omp_get_max_threads();
                omp_set_num_threads(threads);
#endif
                /* the kept-attd backward on these threads (3 and 5 on 2 pairs: one S slot per pair) */
                for (size_t i = 0; i < nt; i++) scratch[i] = NAN;
                memset(got, 0, 3 * n * sizeof(float));
                (cls ? attention_backward_cls : attention_backward)(got, got + n, got + 2 * n, scratch, dout, c.att,
                                                                    c.attd, c.q, c.k, c.v, B, T, C, NH, c.key);
                if (memcmp(got, ref, 3 * n * sizeof(float)))
                    fail_msg("B%d T%d cls %d: the kept-attd backward on %d threads differs from its run on %d",
                             B, T, cls, threads, t0);
                const int slot_counts[3] = {1, threads, attention_ws_slots(B, NH, threads)};
                for (int nwork = 1; nwork <= threads; nwork += threads > 1 ? threads - 1 : 1)
                    for (int si = 0; si < 3; si++) {
                        const int nslots = slot_counts[si];
                        const size_t used = (size_t)nslots * R * T;
                        for (size_t i = 0; i < (size_t)5 * R * T; i++) work[i] = NAN;
                        for (size_t i = 0; i < nscr; i++) scratch[i] = i < used ? NAN : 12345.0f;
                        attention_forward_ws(out2, att2, work, nwork, c.q, c.k, c.v, mask, B, T, C, NH, c.key, cls);
                        for (size_t i = 0; i < 3 * n; i++) got[i] = g0[i] * NAN; /* overwritten, never read */
                        attention_backward_ws(got, got + n, got + 2 * n, scratch, nslots, dout, att2, c.q, c.k, c.v,
                                              B, T, C, NH, c.key, cls);
                        const size_t nout = cls ? (size_t)B * C : n;
                        if (memcmp(out2, c.out, nout * sizeof(float)) || memcmp(att2, c.att, nt * sizeof(float)))
                            fail_msg("B%d T%d cls %d: forward_ws (%d slots, %d threads) differs from the kept-attd forward",
                                     B, T, cls, nwork, threads);
                        /* dq [B,C] alone with cls (the rest of its buffer is not written) */
                        if (memcmp(got, ref, nout * sizeof(float)) ||
                            memcmp(got + n, ref + n, 2 * n * sizeof(float)))
                            fail_msg("B%d T%d cls %d: backward_ws (%d slots, %d threads) differs from the kept-attd "
                                     "backward", B, T, cls, nslots, threads);
                        for (size_t i = used; i < nscr; i++)
                            if (scratch[i] != 12345.0f)
                                fail_msg("B%d T%d cls %d: backward_ws (%d slots, %d threads) wrote past its slots "
                                         "(float %zu)", B, T, cls, nslots, threads, i);
                        compared++;
                    }
#ifdef _OPENMP
                omp_set_num_threads(t0);
#endif
            }
            free(dout); free(g0); free(ref); free(got); free(scratch); free(out2); free(att2); free(work);
            att_free(&c);
        }
        free(mask);
    }
    printf("  workspace forms: %d (shape, cls, threads, slots) cases bitwise equal to the kept-attd forms\n",
           compared);
}

static int report(void **state) {
    (void)state;
    printf("attention: worst forward error %.3g, worst gradcheck rel %.3g (tol %.0e)\n",
           g_worst_fwd, g_worst_grad, GRAD_TOL);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_mask),   cmocka_unit_test(test_forward_large),
        cmocka_unit_test(test_backward_mask),  cmocka_unit_test(test_backward_larger),
        cmocka_unit_test(test_dropout),        cmocka_unit_test(test_empty_row),
        cmocka_unit_test(test_nan_score),      cmocka_unit_test(test_workspace_bits),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
