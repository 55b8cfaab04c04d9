/*
 * test_ops.c — the CPU reference ops of libmiles/ops.h (except attention and
 * dropout, see test_attention.c and test_dropout.c): forward values against
 * naive double-precision references, and every backward against central
 * finite differences.
 *
 * Gradient check: L = sum(out * R) with random R (for the losses L = loss * R,
 * R a scalar), so dL/dout = R is fed to the backward.  Gradients are first
 * filled with random values G0 and the check uses (grad - G0): this verifies
 * the "+=" (accumulate) convention at the same time.  The finite difference
 * is taken in fp32 with eps = 1e-2 and the actual float step (x+eps)-(x-eps):
 * truncation error ~ eps^2 |f'''| / 6 ~ 2e-5, rounding error ~ 2^-24 |out|
 * sqrt(#outputs) / eps ~ 1e-5..1e-4 for these shapes.  The reported error is
 *   rel = max_i |g_i - fd_i| / max(max_i |fd_i|, 1e-2)
 * with tolerance 5e-3: 20-50x above that noise, while a wrong gradient
 * (missing term, wrong index, overwrite instead of accumulate) gives rel ~ 1.
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
#define FWD_TOL 2e-6 /* forward vs double: a few fp32 roundings of O(1) values */

/* ------------------------------------------------------------ harness */

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * 0.5f * (frand() + 1.0f);
}
static float *fbuf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}
static float *fdup(const float *x, size_t n) {
    float *p = fbuf(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

typedef void (*FwdFn)(void *ctx);

static double g_worst_grad = 0, g_worst_fwd = 0;

static double dot_loss(const float *out, const float *R, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * R[i];
    return s;
}

/* Compare the accumulated gradient (grad - g0) of parameter x[nx] with
 * central differences of L = sum(out*R).  Runs fwd once more at the end so
 * out is left as for the unperturbed x. */
static void gradcheck(const char *what, FwdFn fwd, void *ctx, float *x, size_t nx,
                      const float *grad, const float *g0, const float *out, const float *R,
                      size_t nout) {
    double maxdiff = 0, maxfd = 0;
    size_t stride = nx > 400 ? nx / 400 : 1;
    for (size_t i = 0; i < nx; i += stride) {
        float x0 = x[i];
        x[i] = x0 + GRAD_EPS;
        float xp = x[i];
        fwd(ctx);
        double lp = dot_loss(out, R, nout);
        x[i] = x0 - GRAD_EPS;
        float xm = x[i];
        fwd(ctx);
        double lm = dot_loss(out, R, nout);
        x[i] = x0;
        double fd = (lp - lm) / ((double)xp - (double)xm);
        double a = (double)grad[i] - (g0 ? g0[i] : 0.0);
        maxdiff = test_max_err(maxdiff, fabs(a - fd));
        maxfd = test_max_err(maxfd, fabs(fd));
    }
    fwd(ctx);
    double rel = maxdiff / fmax(maxfd, 1e-2);
    printf("  gradcheck %-30s n=%-5zu max|fd|=%-9.3g max|diff|=%-9.3g rel=%.3g\n", what, nx,
           maxfd, maxdiff, rel);
    g_worst_grad = test_max_err(g_worst_grad, rel);
    if (!(rel <= GRAD_TOL)) fail_msg("%s: gradient mismatch rel %.3g > %.1e", what, rel, GRAD_TOL);
    /* guard against a vacuous check: the gradient must be non-trivial */
    if (!(maxfd > 1e-2)) fail_msg("%s: finite-difference gradient is ~0 (%.3g)", what, maxfd);
}

/* a result against its double-precision reference ("forward" or "backward") */
static void report_vs_double(const char *pass, const char *what, double err) {
    printf("  %-9s %-30s max|err| vs double = %.3g\n", pass, what, err);
    g_worst_fwd = test_max_err(g_worst_fwd, err);
    if (!(err <= FWD_TOL)) fail_msg("%s: forward error %.3g > %.1e", what, err, FWD_TOL);
}

/* ------------------------------------------------------------- linear */

typedef struct { float *out, *inp, *w, *b; int N, C, OC; } LinCtx;
static void lin_fwd(void *p) {
    LinCtx *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
}

static void check_linear(int backend, int with_bias, int N, int C, int OC) {
    int prev = miles_gemm_use_blas(backend);
    LinCtx c = {fbuf((size_t)N * OC), fbuf((size_t)N * C), fbuf((size_t)OC * C),
                with_bias ? fbuf(OC) : NULL, N, C, OC};
    fill(c.inp, (size_t)N * C, -1, 1);
    fill(c.w, (size_t)OC * C, -1, 1);
    if (c.b) fill(c.b, OC, -1, 1);
    for (size_t i = 0; i < (size_t)N * OC; i++) c.out[i] = NAN; /* must be overwritten */
    lin_fwd(&c);
    double err = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = c.b ? c.b[o] : 0.0;
            for (int k = 0; k < C; k++) s += (double)c.inp[n * C + k] * c.w[o * C + k];
            err = test_max_err(err, fabs(s - c.out[n * OC + o]) / fmax(1.0, fabs(s)));
        }
    char name[96];
    snprintf(name, sizeof name, "linear %s%s %dx%dx%d", backend ? "cblas" : "own",
             with_bias ? "+b" : "", N, C, OC);
    report_vs_double("forward", name, err); /* relative for |out| > 1 */

    float *R = fbuf((size_t)N * OC);
    fill(R, (size_t)N * OC, -1, 1);
    float *g0i = fbuf((size_t)N * C), *g0w = fbuf((size_t)OC * C), *g0b = fbuf(OC);
    fill(g0i, (size_t)N * C, -1, 1);
    fill(g0w, (size_t)OC * C, -1, 1);
    fill(g0b, OC, -1, 1);
    float *di = fdup(g0i, (size_t)N * C), *dw = fdup(g0w, (size_t)OC * C), *db = fdup(g0b, OC);
    linear_backward(di, dw, c.b ? db : NULL, R, c.inp, c.w, N, C, OC);
    snprintf(name, sizeof name, "linear dinp (%s%s)", backend ? "cblas" : "own", with_bias ? ",b" : "");
    gradcheck(name, lin_fwd, &c, c.inp, (size_t)N * C, di, g0i, c.out, R, (size_t)N * OC);
    snprintf(name, sizeof name, "linear dw (%s%s)", backend ? "cblas" : "own", with_bias ? ",b" : "");
    gradcheck(name, lin_fwd, &c, c.w, (size_t)OC * C, dw, g0w, c.out, R, (size_t)N * OC);
    if (c.b) {
        snprintf(name, sizeof name, "linear db (%s)", backend ? "cblas" : "own");
        gradcheck(name, lin_fwd, &c, c.b, OC, db, g0b, c.out, R, (size_t)N * OC);
    } else {
        for (int o = 0; o < OC; o++) assert_true(db[o] == g0b[o]); /* NULL db untouched */
    }
    /* NULL gradient outputs are skipped */
    linear_backward(NULL, NULL, NULL, R, c.inp, c.w, N, C, OC);
    free(R); free(g0i); free(g0w); free(g0b); free(di); free(dw); free(db);
    free(c.out); free(c.inp); free(c.w); free(c.b);
    miles_gemm_use_blas(prev);
}

/* linear_backward_set == linear_backward into a zeroed dinp, bit for bit
 * (dw and db accumulate in both), on the serial and the parallel GEMM paths,
 * with exact zeros in dout (products of -0) */
static void check_linear_set(int N, int C, int OC) {
    float *dout = fbuf((size_t)N * OC), *inp = fbuf((size_t)N * C), *w = fbuf((size_t)OC * C);
    fill(dout, (size_t)N * OC, -1, 1);
    for (size_t i = 0; i < (size_t)N * OC; i += 5) dout[i] = i % 2 ? -0.0f : 0.0f;
    fill(inp, (size_t)N * C, -1, 1);
    fill(w, (size_t)OC * C, -1, 1);
    float *a = fbuf((size_t)N * C), *b = fbuf((size_t)N * C);
    float *dwa = fbuf((size_t)OC * C), *dba = fbuf(OC);
    fill(dwa, (size_t)OC * C, -1, 1);
    fill(dba, OC, -1, 1);
    float *dwb = fdup(dwa, (size_t)OC * C), *dbb = fdup(dba, OC);
    memset(a, 0, (size_t)N * C * sizeof(float));
    linear_backward(a, dwa, dba, dout, inp, w, N, C, OC);
    for (size_t i = 0; i < (size_t)N * C; i++) b[i] = NAN; /* never read */
    linear_backward_set(b, dwb, dbb, dout, inp, w, N, C, OC);
    assert_memory_equal(a, b, (size_t)N * C * sizeof(float));
    assert_memory_equal(dwa, dwb, (size_t)OC * C * sizeof(float));
    assert_memory_equal(dba, dbb, (size_t)OC * sizeof(float));
    printf("  linear_backward_set %dx%dx%d: bitwise equal to the accumulate into zeros\n", N, C, OC);
    free(dout), free(inp), free(w), free(a), free(b), free(dwa), free(dba), free(dwb), free(dbb);
}

static void test_linear(void **state) {
    (void)state;
    check_linear_set(5, 7, 4);
    check_linear_set(300, 96, 520); /* K > one GEMM slice, parallel path */
    for (int backend = 0; backend <= miles_gemm_has_blas(); backend++)
        for (int bias = 0; bias < 2; bias++) {
            check_linear(backend, bias, 5, 7, 4);
            check_linear(backend, bias, 70, 33, 19); /* own GEMM's parallel path */
        }
}

/* linear_forward / linear_backward(_set) run the own GEMM's parallel path
 * (ops.c linear_gemm: even row blocks, the bias as the kernel's C input):
 * their results must keep the bits of 1 thread on 2 and 3 threads, row
 * counts not a multiple of the split (1003), bias on. */
static void test_linear_thread_bits(void **state) {
    (void)state;
#ifdef _OPENMP
    const int N = 1003, C = 200, OC = 168;
    float *inp = fbuf((size_t)N * C), *w = fbuf((size_t)OC * C), *b = fbuf(OC), *dout = fbuf((size_t)N * OC);
    fill(inp, (size_t)N * C, -1, 1);
    fill(w, (size_t)OC * C, -1, 1);
    fill(b, OC, -1, 1);
    fill(dout, (size_t)N * OC, -1, 1);
    float *ref[3] = {0}, *got[3] = {0};
    const size_t len[3] = {(size_t)N * OC, (size_t)N * C, (size_t)N * C};
    float *init = fbuf((size_t)N * C); /* what the accumulate case adds into */
    fill(init, (size_t)N * C, -1, 1);
    const int saved = omp_get_max_threads();
    for (int nt = 1; nt <= 3; nt++) {
        omp_set_num_threads(nt);
        float **o = nt == 1 ? ref : got;
        for (int k = 0; k < 3; k++) {
            if (!o[k]) o[k] = fbuf(len[k]);
            memcpy(o[k], init, len[k] * sizeof(float));
        }
        linear_forward(o[0], inp, w, b, N, C, OC);
        linear_backward(o[1], NULL, NULL, dout, inp, w, N, C, OC);
        linear_backward_set(o[2], NULL, NULL, dout, inp, w, N, C, OC);
        if (nt == 1) continue;
        for (int k = 0; k < 3; k++) {
            size_t diff = 0;
            for (size_t i = 0; i < len[k]; i++) diff += memcmp(&o[k][i], &ref[k][i], 4) != 0;
            printf("  linear %s %dx%dx%d, %d threads: %zu of %zu differ from 1 thread\n",
                   k == 0 ? "forward" : k == 1 ? "backward dinp" : "backward_set dinp", N, C, OC, nt, diff, len[k]);
            assert_int_equal(diff, 0);
        }
    }
    omp_set_num_threads(saved);
    for (int k = 0; k < 3; k++) free(ref[k]), free(got[k]);
    free(inp), free(w), free(b), free(dout), free(init);
#else
    skip();
#endif
}

/* ---------------------------------------------------------- layernorm */

typedef struct { float *out, *mean, *rstd, *inp, *w, *b; int N, C; float eps; } LnCtx;
static void ln_fwd(void *p) {
    LnCtx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, c->eps);
}

static void test_layernorm(void **state) {
    (void)state;
    const int N = 4, C = 9;
    LnCtx c = {fbuf(N * C), fbuf(N), fbuf(N), fbuf(N * C), fbuf(C), fbuf(C), N, C, 1e-5f};
    fill(c.inp, N * C, -1, 1);
    for (int i = 0; i < C; i++) c.inp[2 * C + i] += 100.0f; /* large mean: two-pass stability */
    fill(c.w, C, 0.5f, 1.5f);
    fill(c.b, C, -1, 1);
    ln_fwd(&c);
    double err = 0;
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += c.inp[n * C + i];
        m /= C;
        for (int i = 0; i < C; i++) v += (c.inp[n * C + i] - m) * (c.inp[n * C + i] - m);
        v /= C;
        double r = 1.0 / sqrt(v + 1e-5);
        err = test_max_err(err, fabs(c.mean[n] - m) / (1 + fabs(m)));
        err = test_max_err(err, fabs(c.rstd[n] - r) / r);
        for (int i = 0; i < C; i++) {
            /* fp32 cannot hold the mean closer than ulp(|m|)/2, which moves
             * every output by up to that * rstd * w: measure in those units
             * (a one-pass E[x^2]-E[x]^2 variance still fails this by 5x) */
            double o = (c.inp[n * C + i] - m) * r * c.w[i] + c.b[i];
            err = test_max_err(err, fabs(o - c.out[n * C + i]) / (1.0 + fabs(m) * r));
        }
    }
    report_vs_double("forward", "layernorm 4x9 (one row mean 100)", err);

    float *R = fbuf(N * C), *g0i = fbuf(N * C), *g0w = fbuf(C), *g0b = fbuf(C);
    fill(R, N * C, -1, 1);
    fill(g0i, N * C, -1, 1);
    fill(g0w, C, -1, 1);
    fill(g0b, C, -1, 1);
    float *di = fdup(g0i, N * C), *dw = fdup(g0w, C), *db = fdup(g0b, C);
    layernorm_backward(di, dw, db, R, c.inp, c.w, c.mean, c.rstd, N, C);
    gradcheck("layernorm dinp", ln_fwd, &c, c.inp, N * C, di, g0i, c.out, R, N * C);
    gradcheck("layernorm dw", ln_fwd, &c, c.w, C, dw, g0w, c.out, R, N * C);
    gradcheck("layernorm db", ln_fwd, &c, c.b, C, db, g0b, c.out, R, N * C);
    free(R); free(g0i); free(g0w); free(g0b); free(di); free(dw); free(db);
    free(c.out); free(c.mean); free(c.rstd); free(c.inp); free(c.w); free(c.b);
}

/* The specification of layernorm_forward/backward's bits: one row at a time,
 * each sum one sequential float loop (ops.c interleaves 8 rows' loops, or
 * 16 rows' in AVX-512 lanes, for speed and must give exactly these bits). */
static void ln_fwd_spec(float *out, float *mean, float *rstd, const float *inp, const float *w,
                        const float *b, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float s = 0.0f;
        for (int c = 0; c < C; c++) s += x[c];
        float m = s / C, v = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        v /= C;
        float r = 1.0f / sqrtf(v + eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] - m) * r * w[c] + b[c];
        mean[n] = m;
        rstd[n] = r;
    }
}
static void ln_bwd_spec(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                        const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float m = mean[n], r = rstd[n], sg = 0.0f, sgx = 0.0f;
        for (int c = 0; c < C; c++) {
            float g = d[c] * w[c];
            sg += g;
            sgx += g * (x[c] - m) * r;
        }
        sg /= C;
        sgx /= C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * r;
            dinp[(size_t)n * C + c] += r * (d[c] * w[c] - sg - xhat * sgx);
        }
    }
}

static void test_layernorm_bits(void **state) {
    (void)state;
    /* 16-row groups (the AVX-512 stats' width) with and without a tail of
     * rows, C with and without a tail of columns and below 16 */
    const int shapes[][2] = {{37, 768}, {8, 9}, {5, 64}, {16, 384}, {33, 100}, {48, 16}, {17, 7}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const int N = shapes[k][0], C = shapes[k][1];
        float *x = fbuf(N * C), *w = fbuf(C), *b = fbuf(C), *o = fbuf(N * C), *ro = fbuf(N * C);
        float *m = fbuf(N), *r = fbuf(N), *rm = fbuf(N), *rr = fbuf(N), *d = fbuf(N * C);
        fill(x, N * C, -2, 2);
        for (int n = 0; n < N; n += 3)
            for (int c = 0; c < C; c++) x[(size_t)n * C + c] += 50.0f; /* large means */
        if (N > 16) /* a row of -0 (its sums stay -0) and one with an infinity */
            for (int c = 0; c < C; c++) x[(size_t)4 * C + c] = -0.0f, x[(size_t)13 * C + c] = c == C / 2 ? INFINITY : 1.0f;
        fill(w, C, 0.5f, 1.5f);
        fill(b, C, -1, 1);
        fill(d, N * C, -1, 1);
        layernorm_forward(o, m, r, x, w, b, N, C, 1e-12f);
        ln_fwd_spec(ro, rm, rr, x, w, b, N, C, 1e-12f);
        assert_memory_equal(o, ro, (size_t)N * C * sizeof(float));
        assert_memory_equal(m, rm, (size_t)N * sizeof(float));
        assert_memory_equal(r, rr, (size_t)N * sizeof(float));
        float *di = fbuf(N * C), *rdi = fbuf(N * C);
        fill(di, N * C, -1, 1); /* accumulates */
        memcpy(rdi, di, (size_t)N * C * sizeof(float));
        layernorm_backward(di, NULL, NULL, d, x, w, m, r, N, C);
        ln_bwd_spec(rdi, d, x, w, m, r, N, C);
        assert_memory_equal(di, rdi, (size_t)N * C * sizeof(float));
        /* the _set form: the spec into zeros, dinp not read (NaN there) */
        for (size_t i = 0; i < (size_t)N * C; i++) di[i] = NAN, rdi[i] = 0.0f;
        layernorm_backward_set(di, NULL, NULL, d, x, w, m, r, N, C);
        ln_bwd_spec(rdi, d, x, w, m, r, N, C);
        assert_memory_equal(di, rdi, (size_t)N * C * sizeof(float));
        printf("  layernorm %dx%d: forward (out, mean, rstd) and backward dinp (also the _set form) bitwise equal to the row-at-a-time spec\n",
               N, C);
        free(x), free(w), free(b), free(o), free(ro), free(m), free(r), free(rm), free(rr), free(d), free(di),
            free(rdi);
    }
}

/* --------------------------------------------------------- embeddings */

typedef struct { float *out; int32_t *ids, *tt; float *wte, *wpe, *wtt; int B, T, C; } EmbCtx;
static void emb_fwd(void *p) {
    EmbCtx *c = p;
    embedding_forward(c->out, c->ids, c->tt, c->wte, c->wpe, c->wtt, c->B, c->T, c->C);
}

static void check_embedding(int with_tt) {
    enum { B = 2, T = 5, C = 6, V = 11, P = 8, NTT = 2 };
    int32_t ids[B * T] = {3, 7, 3, 10, 0, 7, 7, 1, 3, 2}; /* repeats: scatter-add */
    int32_t tt[B * T] = {0, 0, 1, 1, 1, 0, 1, 0, 1, 0};
    EmbCtx c = {fbuf(B * T * C), ids, with_tt ? tt : NULL, fbuf(V * C), fbuf(P * C),
                fbuf(NTT * C), B, T, C};
    fill(c.wte, V * C, -1, 1);
    fill(c.wpe, P * C, -1, 1);
    fill(c.wtt, NTT * C, -1, 1);
    emb_fwd(&c);
    double err = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++) {
                int bt = b * T + t, y = with_tt ? tt[bt] : 0;
                double e = (double)c.wte[ids[bt] * C + i] + c.wpe[t * C + i] + c.wtt[y * C + i];
                err = test_max_err(err, fabs(e - c.out[bt * C + i]));
            }
    report_vs_double("forward", with_tt ? "embedding (token types)" : "embedding (tt NULL)", err);

    float *R = fbuf(B * T * C), *g0e = fbuf(V * C), *g0p = fbuf(P * C), *g0t = fbuf(NTT * C);
    fill(R, B * T * C, -1, 1);
    fill(g0e, V * C, -1, 1);
    fill(g0p, P * C, -1, 1);
    fill(g0t, NTT * C, -1, 1);
    float *de = fdup(g0e, V * C), *dp = fdup(g0p, P * C), *dt = fdup(g0t, NTT * C);
    embedding_backward(de, dp, dt, R, ids, c.tt, B, T, C);
    /* rows of wte never looked up (4,5,6,8,9) and positions >= T get no gradient */
    for (int i = 0; i < C; i++) {
        assert_true(de[5 * C + i] == g0e[5 * C + i]);
        assert_true(dp[(P - 1) * C + i] == g0p[(P - 1) * C + i]);
    }
    gradcheck(with_tt ? "embedding dwte (tt)" : "embedding dwte", emb_fwd, &c, c.wte, V * C, de,
              g0e, c.out, R, B * T * C);
    gradcheck(with_tt ? "embedding dwpe (tt)" : "embedding dwpe", emb_fwd, &c, c.wpe, T * C, dp,
              g0p, c.out, R, B * T * C);
    /* with tt NULL only row 0 of wtt is used; its gradient must still match */
    gradcheck(with_tt ? "embedding dwtt (tt)" : "embedding dwtt row0", emb_fwd, &c, c.wtt,
              with_tt ? NTT * C : C, dt, g0t, c.out, R, B * T * C);
    if (!with_tt)
        for (int i = 0; i < C; i++) assert_true(dt[C + i] == g0t[C + i]);
    free(R); free(g0e); free(g0p); free(g0t); free(de); free(dp); free(dt);
    free(c.out); free(c.wte); free(c.wpe); free(c.wtt);
}

static void test_embedding(void **state) {
    (void)state;
    check_embedding(1);
    check_embedding(0);
}

/* -------------------------------------------------------- activations */

enum { ACT_GELU, ACT_RELU, ACT_TANH, ACT_SIGMOID };
typedef struct { float *out, *inp; size_t n; int kind; } ActCtx;
static void act_fwd(void *p) {
    ActCtx *c = p;
    switch (c->kind) {
    case ACT_GELU: gelu_forward(c->out, c->inp, c->n); break;
    case ACT_RELU: relu_forward(c->out, c->inp, c->n); break;
    case ACT_TANH: tanh_forward(c->out, c->inp, c->n); break;
    default: sigmoid_forward(c->out, c->inp, c->n); break;
    }
}
static double act_ref(int kind, double x) {
    switch (kind) {
    case ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_TANH: return tanh(x);
    default: return 1.0 / (1.0 + exp(-x));
    }
}

/* d/dx of act_ref, in double */
static double act_deriv(int kind, double x) {
    switch (kind) {
    case ACT_GELU: return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    case ACT_RELU: return x > 0 ? 1.0 : 0.0;
    case ACT_TANH: return 1.0 - tanh(x) * tanh(x);
    default: { double s = 1.0 / (1.0 + exp(-x)); return s * (1.0 - s); }
    }
}

static void test_activations(void **state) {
    (void)state;
    const char *names[] = {"gelu", "relu", "tanh", "sigmoid"};
    const size_t n = 64;
    for (int kind = 0; kind < 4; kind++) {
        ActCtx c = {fbuf(n), fbuf(n), n, kind};
        fill(c.inp, n, -4, 4);
        /* keep ReLU inputs away from the kink so central differences are valid */
        for (size_t i = 0; i < n; i++)
            if (fabsf(c.inp[i]) < 0.1f) c.inp[i] = c.inp[i] < 0 ? -0.5f : 0.5f;
        act_fwd(&c);
        double err = 0;
        for (size_t i = 0; i < n; i++) err = test_max_err(err, fabs(act_ref(kind, c.inp[i]) - c.out[i]));
        char name[64];
        snprintf(name, sizeof name, "%s", names[kind]);
        report_vs_double("forward", name, err);
        float *R = fbuf(n), *g0 = fbuf(n);
        fill(R, n, -1, 1);
        fill(g0, n, -1, 1);
        float *d = fdup(g0, n);
        if (kind == ACT_GELU) gelu_backward(d, c.inp, R, n);
        else if (kind == ACT_RELU) relu_backward(d, c.out, R, n);
        else if (kind == ACT_TANH) tanh_backward(d, c.out, R, n);
        else sigmoid_backward(d, c.out, R, n);
        /* against the derivative in double: the finite differences above
         * allow 5e-3, which a slightly wrong formula (a 1% error in GELU's
         * pdf term) passes */
        double eb = 0;
        for (size_t i = 0; i < n; i++)
            eb = test_max_err(eb, fabs((double)d[i] - (g0[i] + (double)R[i] * act_deriv(kind, c.inp[i]))));
        report_vs_double("backward", name, eb);
        snprintf(name, sizeof name, "%s dinp", names[kind]);
        gradcheck(name, act_fwd, &c, c.inp, n, d, g0, c.out, R, n);
        free(R); free(g0); free(d); free(c.out); free(c.inp);
    }
    /* extremes stay finite and saturate correctly */
    float x[4] = {-100.0f, 100.0f, -1e30f, 1e30f}, y[4];
    sigmoid_forward(y, x, 4);
    assert_true(y[0] == 0.0f || y[0] < 1e-40f);
    assert_true(y[1] == 1.0f && y[2] == 0.0f && y[3] == 1.0f);
    gelu_forward(y, x, 4);
    assert_true(y[0] == 0.0f && y[1] == 100.0f);
    tanh_forward(y, x, 4);
    assert_true(y[0] == -1.0f && y[1] == 1.0f);
    /* in place is allowed for the forwards */
    float z[3] = {-1.0f, 0.5f, 2.0f};
    relu_forward(z, z, 3);
    assert_true(z[0] == 0.0f && z[1] == 0.5f && z[2] == 2.0f);
}

/* ----------------------------------------------------------- residual */

typedef struct { float *out, *a, *b; size_t n; } ResCtx;
static void res_fwd(void *p) {
    ResCtx *c = p;
    residual_forward(c->out, c->a, c->b, c->n);
}

static void test_residual(void **state) {
    (void)state;
    const size_t n = 37;
    ResCtx c = {fbuf(n), fbuf(n), fbuf(n), n};
    fill(c.a, n, -1, 1);
    fill(c.b, n, -1, 1);
    res_fwd(&c);
    double err = 0;
    for (size_t i = 0; i < n; i++) err = test_max_err(err, fabs((double)c.a[i] + c.b[i] - c.out[i]));
    report_vs_double("forward", "residual", err);
    float *R = fbuf(n), *g0a = fbuf(n), *g0b = fbuf(n);
    fill(R, n, -1, 1);
    fill(g0a, n, -1, 1);
    fill(g0b, n, -1, 1);
    float *da = fdup(g0a, n), *db = fdup(g0b, n);
    residual_backward(da, db, R, n);
    gradcheck("residual da", res_fwd, &c, c.a, n, da, g0a, c.out, R, n);
    gradcheck("residual db", res_fwd, &c, c.b, n, db, g0b, c.out, R, n);
    free(R); free(g0a); free(g0b); free(da); free(db); free(c.out); free(c.a); free(c.b);
}

/* ------------------------------------------------------------ pooling */

typedef struct { float *out, *inp; int32_t *mask; int B, T, C, mean; } PoolCtx;
static void pool_fwd(void *p) {
    PoolCtx *c = p;
    if (c->mean) mean_pool_forward(c->out, c->inp, c->mask, c->B, c->T, c->C);
    else cls_pool_forward(c->out, c->inp, c->B, c->T, c->C);
}

static void check_pool(int mean, int with_mask) {
    enum { B = 3, T = 4, C = 5 };
    /* row 1 has one real token, row 2 none: sum clamps to 1e-9, output 0 */
    int32_t mask[B * T] = {1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    PoolCtx c = {fbuf(B * C), fbuf(B * T * C), with_mask ? mask : NULL, B, T, C, mean};
    fill(c.inp, B * T * C, -1, 1);
    pool_fwd(&c);
    double err = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < C; i++) {
            double ref;
            if (!mean) {
                ref = c.inp[b * T * C + i];
            } else {
                double s = 0, cnt = 0;
                for (int t = 0; t < T; t++) {
                    int m = with_mask ? mask[b * T + t] : 1;
                    s += m * (double)c.inp[(b * T + t) * C + i];
                    cnt += m;
                }
                ref = s / fmax(cnt, 1e-9);
            }
            err = test_max_err(err, fabs(ref - c.out[b * C + i]));
        }
    const char *nm = !mean ? "cls_pool" : with_mask ? "mean_pool (mask)" : "mean_pool (no mask)";
    report_vs_double("forward", nm, err);
    if (mean && with_mask)
        for (int i = 0; i < C; i++) assert_true(c.out[2 * C + i] == 0.0f);
    float *R = fbuf(B * C), *g0 = fbuf(B * T * C);
    fill(R, B * C, -1, 1);
    fill(g0, B * T * C, -1, 1);
    float *d = fdup(g0, B * T * C);
    if (mean) mean_pool_backward(d, R, c.mask, B, T, C);
    else cls_pool_backward(d, R, B, T, C);
    char name[64];
    snprintf(name, sizeof name, "%s dinp", nm);
    gradcheck(name, pool_fwd, &c, c.inp, B * T * C, d, g0, c.out, R, B * C);
    free(R); free(g0); free(d); free(c.out); free(c.inp);
}

static void test_pooling(void **state) {
    (void)state;
    check_pool(0, 0);
    check_pool(1, 1);
    check_pool(1, 0);
}

/* ------------------------------------------------------------- concat */

typedef struct { float *out, *a, *b; int B, C1, C2; } CatCtx;
static void cat_fwd(void *p) {
    CatCtx *c = p;
    concat_forward(c->out, c->a, c->b, c->B, c->C1, c->C2);
}

static void test_concat(void **state) {
    (void)state;
    enum { B = 3, C1 = 4, C2 = 5 };
    CatCtx c = {fbuf(B * (C1 + C2)), fbuf(B * C1), fbuf(B * C2), B, C1, C2};
    fill(c.a, B * C1, -1, 1);
    fill(c.b, B * C2, -1, 1);
    cat_fwd(&c);
    for (int r = 0; r < B; r++) {
        for (int i = 0; i < C1; i++) assert_true(c.out[r * (C1 + C2) + i] == c.a[r * C1 + i]);
        for (int i = 0; i < C2; i++) assert_true(c.out[r * (C1 + C2) + C1 + i] == c.b[r * C2 + i]);
    }
    float *R = fbuf(B * (C1 + C2)), *g0a = fbuf(B * C1), *g0b = fbuf(B * C2);
    fill(R, B * (C1 + C2), -1, 1);
    fill(g0a, B * C1, -1, 1);
    fill(g0b, B * C2, -1, 1);
    float *da = fdup(g0a, B * C1), *db = fdup(g0b, B * C2);
    concat_backward(da, db, R, B, C1, C2);
    gradcheck("concat da", cat_fwd, &c, c.a, B * C1, da, g0a, c.out, R, B * (C1 + C2));
    gradcheck("concat db", cat_fwd, &c, c.b, B * C2, db, g0b, c.out, R, B * (C1 + C2));
    free(R); free(g0a); free(g0b); free(da); free(db); free(c.out); free(c.a); free(c.b);
}

/* ------------------------------------------------------------- losses */

typedef struct { float *probs, *logits; int32_t *labels; const float *cw; int B, K; float loss; } CeCtx;
static void ce_fwd(void *p) {
    CeCtx *c = p;
    c->loss = crossentropy_forward(c->probs, c->logits, c->labels, c->cw, c->B, c->K);
}

static double ce_naive(const float *logits, const int32_t *labels, const float *cw, int B, int K) {
    double num = 0, den = 0;
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += exp((double)logits[b * K + k]);
        double p = exp((double)logits[b * K + labels[b]]) / s;
        double w = cw ? cw[labels[b]] : 1.0;
        num += -w * log(p);
        den += w;
    }
    return num / den;
}

static void check_ce(int B, int K, const float *cw, const char *nm) {
    int32_t *labels = calloc(B, sizeof(int32_t));
    assert_non_null(labels);
    for (int b = 0; b < B; b++) labels[b] = (b * 7 + 1) % K;
    CeCtx c = {fbuf(B * K), fbuf(B * K), labels, cw, B, K, 0};
    fill(c.logits, B * K, -3, 3);
    ce_fwd(&c);
    double ref = ce_naive(c.logits, labels, cw, B, K);
    double err = fabs(ref - c.loss) / fmax(1.0, fabs(ref));
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += c.probs[b * K + k];
        err = test_max_err(err, fabs(s - 1.0));
    }
    char name[96];
    snprintf(name, sizeof name, "crossentropy %s (loss %.4f)", nm, c.loss);
    report_vs_double("forward", name, err);
    float R[1] = {0.7f};
    float *g0 = fbuf(B * K);
    fill(g0, B * K, -1, 1);
    float *d = fdup(g0, B * K);
    crossentropy_backward(d, c.probs, labels, cw, B, K, R[0]);
    snprintf(name, sizeof name, "crossentropy dlogits %s", nm);
    gradcheck(name, ce_fwd, &c, c.logits, B * K, d, g0, &c.loss, R, 1);
    free(g0); free(d); free(c.probs); free(c.logits); free(labels);
}

static void test_crossentropy(void **state) {
    (void)state;
    const float w3[3] = {0.5f, 2.0f, 1.3f}, w2[2] = {1.0f, 3.5f};
    check_ce(6, 3, w3, "K=3 weighted");
    check_ce(8, 2, w2, "K=2 weighted");
    check_ce(5, 2, NULL, "K=2 unweighted");
    /* the weighted mean divides by the sum of the targets' weights, not by B:
     * one example of class 1 with weight 3.5 alone gives the plain CE */
    float logits[2] = {0.3f, -0.2f}, probs[2];
    int32_t y = 1;
    float l = crossentropy_forward(probs, logits, &y, w2, 1, 2);
    assert_true(fabs(l - ce_naive(logits, &y, NULL, 1, 2)) < 1e-6);
    /* extreme logits: no overflow, loss = margin */
    float big[4] = {100.0f, -100.0f, -80.0f, 80.0f}, pb[4];
    int32_t yb[2] = {1, 0};
    l = crossentropy_forward(pb, big, yb, NULL, 2, 2);
    printf("  crossentropy extreme logits: loss %.6g (expected 180)\n", l);
    assert_true(isfinite(l) && fabs(l - 180.0f) < 1e-3);
}

typedef struct { float *pred, *target; int B; float loss; } MseCtx;
static void mse_fwd(void *p) {
    MseCtx *c = p;
    c->loss = mse_forward(c->pred, c->target, c->B);
}

static void test_mse(void **state) {
    (void)state;
    enum { B = 7 };
    MseCtx c = {fbuf(B), fbuf(B), B, 0};
    fill(c.pred, B, -1, 1);
    fill(c.target, B, -1, 1);
    mse_fwd(&c);
    double ref = 0;
    for (int b = 0; b < B; b++) ref += ((double)c.pred[b] - c.target[b]) * ((double)c.pred[b] - c.target[b]);
    ref /= B;
    report_vs_double("forward", "mse", fabs(ref - c.loss));
    float R[1] = {1.9f};
    float *g0 = fbuf(B);
    fill(g0, B, -1, 1);
    float *d = fdup(g0, B);
    mse_backward(d, c.pred, c.target, B, R[0]);
    gradcheck("mse dpred", mse_fwd, &c, c.pred, B, d, g0, &c.loss, R, 1);
    free(g0); free(d); free(c.pred); free(c.target);
}

static int report(void **state) {
    (void)state;
    printf("ops: worst gradcheck rel error %.3g (tol %.0e), worst forward error %.3g (tol %.0e)\n",
           g_worst_grad, GRAD_TOL, g_worst_fwd, FWD_TOL);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),     cmocka_unit_test(test_linear_thread_bits),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_bits),
        cmocka_unit_test(test_embedding),  cmocka_unit_test(test_activations),
        cmocka_unit_test(test_residual),   cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_concat),     cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_mse),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
