/*
 * ops.c — CPU fp32 reference ops (see ops.h for the specification).
 * Attention lives in ops_attention.c, dropout in dropout.c, GEMM in gemm.c.
 *
 * Every backward ACCUMULATES into its gradient outputs and skips NULL ones.
 * Reductions that several rows feed (dw, db, embedding tables) are split
 * over channels, never over rows, so each gradient element is summed by one
 * thread in a fixed order: results are bitwise reproducible for any thread
 * count and need no atomics or per-thread buffers.
 */
#include "ops_internal.h"
#include "gemm_internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define OMP_IF(work) if ((double)(work) >= MILES_OMP_MIN_WORK)

/* The store of the backward ops that either accumulate (set 0: *dst += v)
 * or write into a buffer nobody zeroed (set 1: *dst = 0 + v, the bits that
 * += gives on a zeroed buffer, a v of -0 included; *dst is not read). */
static inline __attribute__((always_inline)) void store_add(int set, float *dst, float v) {
    *dst = (set ? 0.0f : *dst) + v;
}

/* ---------------------------------------------------------- embeddings */

void embedding_forward(float *out, const int32_t *ids, const int32_t *tt,
                       const float *wte, const float *wpe, const float *wtt,
                       int B, int T, int C) {
#pragma omp parallel for schedule(static) OMP_IF((double)B * T * C)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        float *o = out + (size_t)bt * C;
        const float *e = wte + (size_t)ids[bt] * C;
        const float *p = wpe + (size_t)t * C;
        const float *y = wtt + (size_t)(tt ? tt[bt] : 0) * C;
        for (int c = 0; c < C; c++) o[c] = e[c] + p[c] + y[c];
    }
}

void embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                        const int32_t *ids, const int32_t *tt, int B, int T, int C) {
    /* Scatter-add: several tokens may share an id, so threads own channel
     * ranges (chunks of 16) rather than rows. */
    const int CH = 16;
    const int nchunks = (C + CH - 1) / CH;
#pragma omp parallel for schedule(static) OMP_IF((double)B * T * C)
    for (int ch = 0; ch < nchunks; ch++) {
        int c0 = ch * CH, c1 = c0 + CH < C ? c0 + CH : C;
        for (int bt = 0; bt < B * T; bt++) {
            const float *d = dout + (size_t)bt * C;
            int t = bt % T;
            if (dwte) {
                float *g = dwte + (size_t)ids[bt] * C;
                for (int c = c0; c < c1; c++) g[c] += d[c];
            }
            if (dwpe) {
                float *g = dwpe + (size_t)t * C;
                for (int c = c0; c < c1; c++) g[c] += d[c];
            }
            if (dwtt) {
                float *g = dwtt + (size_t)(tt ? tt[bt] : 0) * C;
                for (int c = c0; c < c1; c++) g[c] += d[c];
            }
        }
    }
}

/* ------------------------------------------------ AVX-512 versions */

/* ops_avx512.c's kernels, each with the bits of the plain C it replaces,
 * picked once where the build has them and the CPU runs AVX-512F; erf and
 * GELU and the softmax exp from ops_avx2.c on AVX2 + FMA CPUs without it;
 * NULL: the plain C (the definition) runs. */
static MilesEltFn g_erf_vec, g_gelu_vec, g_gelu_fast_vec;
static MilesExpShiftFn g_exp_shift_vec;
static MilesLnStatsFn g_ln_stats16;
static pthread_once_t g_ops_once = PTHREAD_ONCE_INIT;

static void ops_isa_init(void) {
    if (!miles_gemm_isa_available("avx512")) { /* the GEMM's CPU checks: AVX-512F, AVX2 + FMA */
        if (miles_gemm_isa_available("avx2")) {
            g_erf_vec = miles_erf_avx2();
            g_gelu_vec = miles_gelu_avx2();
            g_gelu_fast_vec = miles_gelu_fast_avx2();
            g_exp_shift_vec = miles_softmax_exp_avx2();
        }
        return;
    }
    g_erf_vec = miles_erf_avx512();
    g_gelu_vec = miles_gelu_avx512();
    g_gelu_fast_vec = miles_gelu_fast_avx512();
    g_ln_stats16 = miles_ln_stats16_avx512();
}

MilesExpShiftFn miles_softmax_exp_fn(void) {
    pthread_once(&g_ops_once, ops_isa_init);
    return g_exp_shift_vec;
}

/* ----------------------------------------------------------- layernorm */

/* LayerNorm rows are reduced in groups of LN_G rows: each row's sums are
 * still one sequential float loop over its channels (the order that defines
 * the result), but the LN_G rows' loops are interleaved, so LN_G independent
 * add chains run at the adds' throughput instead of one dependent add (3-4
 * cycles) per element.  Same bits as a row at a time; ~1.5% of a bert-base
 * T128 train step was these latency-bound sums. */
#define LN_G 8

/* mean and rstd of `G` rows (G = LN_G, or 1 for the tail) */
static inline __attribute__((always_inline)) void ln_stats(const float *inp, int G, int C, float eps,
                                                          float *m, float *r) {
    float s[LN_G] = {0}, v[LN_G] = {0};
    for (int c = 0; c < C; c++)
        for (int g = 0; g < G; g++) s[g] += inp[(size_t)g * C + c];
    for (int g = 0; g < G; g++) m[g] = s[g] / C;
    /* two passes: the mean first, then the centred sum of squares, which
     * has no cancellation (E[x^2] - E[x]^2 would lose digits when
     * |mean| >> std) */
    for (int c = 0; c < C; c++)
        for (int g = 0; g < G; g++) {
            float d = inp[(size_t)g * C + c] - m[g];
            v[g] += d * d;
        }
    for (int g = 0; g < G; g++) r[g] = 1.0f / sqrtf(v[g] / C + eps); /* biased variance, as PyTorch */
}

/* The forward's row groups: 16 rows, the AVX-512 stats' width (which
 * rows are grouped never changes a row's bits) */
#define LN_FG 16

MILES_HOT_CLONES
static void ln_fwd_rows(float *out, float *mean, float *rstd, const float *inp, const float *w,
                        const float *b, int n0, int G, int C, float eps, MilesLnStatsFn stats16) {
    float m[LN_FG], r[LN_FG];
    const float *x0 = inp + (size_t)n0 * C;
    if (G == LN_FG && stats16) {
        stats16(x0, C, eps, m, r);
    } else {
        int g = 0;
        for (; g + LN_G <= G; g += LN_G) ln_stats(x0 + (size_t)g * C, LN_G, C, eps, m + g, r + g);
        for (; g < G; g++) ln_stats(x0 + (size_t)g * C, 1, C, eps, m + g, r + g);
    }
    for (int g = 0; g < G; g++) {
        const float *x = x0 + (size_t)g * C;
        float *o = out + (size_t)(n0 + g) * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - m[g]) * r[g] * w[c] + b[c];
        if (mean) mean[n0 + g] = m[g];
        if (rstd) rstd[n0 + g] = r[g];
    }
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int N, int C, float eps) {
    pthread_once(&g_ops_once, ops_isa_init);
    const MilesLnStatsFn stats16 = g_ln_stats16;
    const int ng = (N + LN_FG - 1) / LN_FG;
#pragma omp parallel for schedule(static) OMP_IF((double)N * C)
    for (int gi = 0; gi < ng; gi++) {
        int n0 = gi * LN_FG, G = N - n0 < LN_FG ? N - n0 : LN_FG;
        ln_fwd_rows(out, mean, rstd, inp, w, b, n0, G, C, eps, stats16);
    }
}

/* sums of g = dout*w and of g*xhat for G rows, interleaved as ln_stats */
static inline __attribute__((always_inline)) void ln_bwd_sums(const float *x, const float *d, const float *w,
                                                             const float *m, const float *r, int G, int C,
                                                             float *sg, float *sgx) {
    float a[LN_G] = {0}, b[LN_G] = {0};
    for (int c = 0; c < C; c++)
        for (int k = 0; k < G; k++) {
            float g = d[(size_t)k * C + c] * w[c];
            a[k] += g;
            b[k] += g * (x[(size_t)k * C + c] - m[k]) * r[k];
        }
    for (int k = 0; k < G; k++) sg[k] = a[k] / C, sgx[k] = b[k] / C;
}

MILES_HOT_CLONES
static void ln_bwd_rows(float *dinp, const float *dout, const float *inp, const float *w,
                        const float *mean, const float *rstd, int n0, int G, int C, int set) {
    float sg[LN_G], sgx[LN_G];
    const float *x0 = inp + (size_t)n0 * C, *d0 = dout + (size_t)n0 * C;
    const float *m = mean + n0, *r = rstd + n0;
    if (G == LN_G) ln_bwd_sums(x0, d0, w, m, r, LN_G, C, sg, sgx);
    else
        for (int k = 0; k < G; k++)
            ln_bwd_sums(x0 + (size_t)k * C, d0 + (size_t)k * C, w, m + k, r + k, 1, C, sg + k, sgx + k);
    for (int k = 0; k < G; k++) {
        const float *x = x0 + (size_t)k * C, *d = d0 + (size_t)k * C;
        float *dx = dinp + (size_t)(n0 + k) * C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m[k]) * r[k];
            float v = r[k] * (d[c] * w[c] - sg[k] - xhat * sgx[k]);
            store_add(set, &dx[c], v);
        }
    }
}

static void layernorm_backward_apply(float *dinp, float *dw, float *db, const float *dout,
                                     const float *inp, const float *w, const float *mean,
                                     const float *rstd, int N, int C, int set) {
    if (dinp) {
        /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dout * w */
        const int ng = (N + LN_G - 1) / LN_G;
#pragma omp parallel for schedule(static) OMP_IF((double)N * C)
        for (int gi = 0; gi < ng; gi++) {
            int n0 = gi * LN_G, G = N - n0 < LN_G ? N - n0 : LN_G;
            ln_bwd_rows(dinp, dout, inp, w, mean, rstd, n0, G, C, set);
        }
    }
    if (dw || db) {
        const int CH = 16;
        const int nchunks = (C + CH - 1) / CH;
#pragma omp parallel for schedule(static) OMP_IF((double)N * C)
        for (int ch = 0; ch < nchunks; ch++) {
            int c0 = ch * CH, c1 = c0 + CH < C ? c0 + CH : C;
            float aw[16] = {0}, ab[16] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C;
                const float *d = dout + (size_t)n * C;
                float m = mean[n], r = rstd[n];
                for (int c = c0; c < c1; c++) {
                    aw[c - c0] += d[c] * (x[c] - m) * r;
                    ab[c - c0] += d[c];
                }
            }
            for (int c = c0; c < c1; c++) {
                if (dw) dw[c] += aw[c - c0];
                if (db) db[c] += ab[c - c0];
            }
        }
    }
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int N, int C) {
    layernorm_backward_apply(dinp, dw, db, dout, inp, w, mean, rstd, N, C, 0);
}

void layernorm_backward_set(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int N, int C) {
    layernorm_backward_apply(dinp, dw, db, dout, inp, w, mean, rstd, N, C, 1);
}

/* -------------------------------------------------------------- linear */

/* C[M,N] = A[M,K] @ op(B) + beta * C for the activation products of the
 * linear layers (M = tokens), or with a bias (not NULL) C's rows seeded
 * with it and accumulated into (beta 1), as linear_forward always did.  The
 * own GEMM packs op(B) once, shared by the threads, and cuts the rows into
 * nearly equal blocks, a multiple of the thread count, handed out
 * dynamically (gemm.c), with the bias as the kernel's C input.  It replaced
 * one static half of the rows per thread, each thread packing all of op(B)
 * itself: both threads packed the same W, and a thread slowed by a
 * neighbour on the host left the other waiting (libgomp spin 2.5% of a
 * BERT-base train step).  Same bits either way: an element's result depends
 * only on K and the values (gemm.c; test_gemm's thread bits).  BLAS (opt-in)
 * keeps the seeding pass and miles_gemm. */
static void linear_gemm(int transB, int M, int N, int K, const float *A, int lda, const float *B,
                           int ldb, const float *bias, float beta, float *C, int ldc) {
    if (miles_gemm_blas_active()) {
        if (bias) {
#pragma omp parallel for schedule(static) OMP_IF((double)M * N)
            for (int n = 0; n < M; n++) memcpy(C + (size_t)n * ldc, bias, (size_t)N * sizeof(float));
            beta = 1.0f;
        }
        miles_gemm(0, transB, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    miles_gemm_bias(transB, M, N, K, A, lda, B, ldb, bias, beta, C, ldc);
}

void linear_forward_rows(float *out, int ldo, const float *inp, int ldi, const float *w,
                         const float *b, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    linear_gemm(1, N, OC, C, inp, ldi, w, C, b, 0.0f, out, ldo);
}

void linear_forward(float *out, const float *inp, const float *w, const float *b,
                    int N, int C, int OC) {
    /* out[N,OC] = (b, seeded into out) + inp[N,C] @ w[OC,C]^T */
    linear_forward_rows(out, OC, inp, C, w, b, N, C, OC);
}

/* db[o0:o1] += column sums of dout over the N rows, each in row order (a
 * channel's sum is one thread's sequential loop: the bits do not depend on
 * the threads or on the vector width of the clone). */
MILES_HOT_CLONES
static void bias_grad_chunk(float *db, const float *dout, int N, int OC, int o0, int o1) {
    float acc[64] = {0};
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
    }
    for (int o = o0; o < o1; o++) db[o] += acc[o - o0];
}

void linear_backward(float *dinp, float *dw, float *db, const float *dout,
                     const float *inp, const float *w, int N, int C, int OC) {
    /* dinp[N,C] += dout[N,OC] @ w[OC,C] */
    if (dinp) linear_gemm(0, N, C, OC, dout, OC, w, C, NULL, 1.0f, dinp, C);
    /* dw[OC,C] += dout^T @ inp */
    if (dw) miles_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db) {
        const int CH = 64;
        const int nchunks = (OC + CH - 1) / CH;
#pragma omp parallel for schedule(static) OMP_IF((double)N * OC)
        for (int ch = 0; ch < nchunks; ch++) {
            int o0 = ch * CH, o1 = o0 + CH < OC ? o0 + CH : OC;
            bias_grad_chunk(db, dout, N, OC, o0, o1);
        }
    }
}

void linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC) {
    /* beta 0: the GEMM's first K slice stores alpha*acc + 0 (gemm.c), the
     * value a zeroed dinp with beta 1 gets */
    if (dinp) linear_gemm(0, N, C, OC, dout, OC, w, C, NULL, 0.0f, dinp, C);
    linear_backward(NULL, dw, db, dout, inp, w, N, C, OC);
}

void linear_backward_rows(float *dinp, int ldo, float *dw, float *db, const float *dout,
                          const float *inp, int ldi, const float *w, int N, int stride, int C,
                          int OC, int set) {
    if (N <= 0) return;
    if (dinp) linear_gemm(0, N, C, OC, dout, OC, w, C, NULL, set ? 0.0f : 1.0f, dinp, ldo);
    /* dw[OC,C] += dout^T @ inp: the full product (K = N*stride tokens) sums
     * each K slice from 0 and adds it to dw; its zero rows add nothing, so
     * one GEMM per slice over the rows that fall in it has its bits */
    if (dw)
        for (int n0 = 0; n0 < N;) {
            long slice = (long)n0 * stride / MILES_GEMM_KC;
            int n1 = n0 + 1;
            while (n1 < N && (long)n1 * stride / MILES_GEMM_KC == slice) n1++;
            miles_gemm(1, 0, OC, C, n1 - n0, 1.0f, dout + (size_t)n0 * OC, OC, inp + (size_t)n0 * ldi, ldi,
                       1.0f, dw, C);
            n0 = n1;
        }
    /* db: a column's sum in row order (bias_grad_chunk), zero rows add nothing */
    if (db) linear_backward(NULL, NULL, db, dout, NULL, NULL, N, C, OC);
}

/* --------------------------------------------------------- activations */

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

/* erf and the GELU pair: miles_erf (ops_internal.h) instead of libm erff,
 * and softmax_exp instead of expf, so the loops vectorize; the same bits in
 * every ISA clone (see miles_erf).  This moved the fp32 training trajectory
 * once (PyTorch goldens unchanged; see test_dist's killed-rank tolerance);
 * the fp32 engine fuses the same GELU into its GEMMs (the bf16/int8 one the
 * cheaper miles_gelu_fast_elem).  The clones (MILES_FMA_CLONES, for
 * miles_erf's fmaf) are file-local helpers (an exported target_clones
 * function exports its resolver too); each thread runs one contiguous range
 * (element-wise: any split gives the same bits). */
static inline float gelu_elem(float x) { return 0.5f * x * (1.0f + miles_erf(x * INV_SQRT2)); }

MILES_FMA_CLONES
static void erf_chunk_generic(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = miles_erf(inp[i]);
}

MILES_FMA_CLONES
static void gelu_chunk_generic(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gelu_elem(inp[i]);
}

/* The loops above compute all three pieces of miles_erf for every element
 * (~85 zmm operations per 16); ops_avx512.c computes each element's piece
 * only, with the same bits: 1.0 -> 0.57 ns per GELU element on Zen 4 for
 * x ~ N(0, 1); ops_avx2.c each vector's pieces only (Zen 3: the bert-base
 * train step +4-6%).  Used where the build has them and the CPU runs them
 * (see ops_isa_init); the loops above stay the definition and the fallback. */
static void erf_chunk(float *out, const float *inp, size_t n) {
    pthread_once(&g_ops_once, ops_isa_init);
    if (g_erf_vec) g_erf_vec(out, inp, n);
    else erf_chunk_generic(out, inp, n);
}

/* the GELU loop this CPU runs (one choice for gelu_forward and the GEMM
 * epilogues: the same bits either way) */
static MilesEltFn gelu_fn(void) {
    pthread_once(&g_ops_once, ops_isa_init);
    return g_gelu_vec ? g_gelu_vec : gelu_chunk_generic;
}

static void gelu_chunk(float *out, const float *inp, size_t n) { gelu_fn()(out, inp, n); }

/* set: dinp = 0 + v instead of dinp += v (the += on a zeroed dinp, bit for
 * bit, without reading it; dinp may be dout then) */
MILES_FMA_CLONES
static void gelu_backward_chunk_generic(float *dinp, const float *inp, const float *dout, size_t n, int set) {
    /* d/dx [x Phi(x)] = Phi(x) + x phi(x); phi's exp underflows to 0 past
     * |x| ~ 13, where x phi(x) < 1e-36 */
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + miles_erf(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * softmax_exp(-0.5f * x * x);
        float v = dout[i] * (cdf + x * pdf);
        store_add(set, &dinp[i], v);
    }
}

/* q[i] = softmax_exp(-0.5f * x * x), phi's exp: the AVX2 exp (x - 0 is x)
 * where picked, else the C loop (its AVX-512 clone vectorizes; the
 * x86-64-v3 one ran it scalar: 3% of a bert-base T128 train step). */
MILES_FMA_CLONES
static void gelu_pdf_exp(float *q, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) q[i] = -0.5f * inp[i] * inp[i];
    softmax_exp_shift(q, (int)n, 0.0f, g_exp_shift_vec);
}

/* The generic loop with its erf and exp already computed: e[i] =
 * miles_erf(inp[i] * INV_SQRT2), q[i] as above.  Same expression, same
 * bits; plain arithmetic: it vectorizes in every clone. */
MILES_FMA_CLONES
static void gelu_backward_with_erf_exp(float *dinp, const float *inp, const float *dout, const float *e,
                                       const float *q, size_t n, int set) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + e[i]);
        float pdf = INV_SQRT_2PI * q[i];
        float v = dout[i] * (cdf + x * pdf);
        store_add(set, &dinp[i], v);
    }
}

/* With the AVX-512 or AVX2 erf (each element's or vector's pieces only) on
 * blocks of 512: the generic loop's all-three-pieces erf was most of its
 * cost (~1% of a BERT-base train step on Zen 4, ~3% on Zen 3). */
static void gelu_backward_chunk(float *dinp, const float *inp, const float *dout, size_t n, int set) {
    pthread_once(&g_ops_once, ops_isa_init);
    if (!g_erf_vec) {
        gelu_backward_chunk_generic(dinp, inp, dout, n, set);
        return;
    }
    float e[512], q[512];
    for (size_t i = 0; i < n; i += 512) {
        const size_t m = n - i < 512 ? n - i : 512;
        for (size_t j = 0; j < m; j++) e[j] = inp[i + j] * INV_SQRT2;
        g_erf_vec(e, e, m);
        gelu_pdf_exp(q, inp + i, m);
        gelu_backward_with_erf_exp(dinp + i, inp + i, dout + i, e, q, m, set);
    }
}

/* This thread's share [lo, hi) of n elements, in 16-element multiples. */
static void thread_range(size_t n, size_t *lo, size_t *hi) {
    size_t t = 0, T = 1;
#ifdef _OPENMP
    t = (size_t)omp_get_thread_num();
    T = (size_t)omp_get_num_threads();
#endif
    size_t per = (n + T - 1) / T;
    per = (per + 15) / 16 * 16;
    *lo = t * per < n ? t * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

void erf_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel OMP_IF(n * 8)
    {
        size_t lo, hi;
        thread_range(n, &lo, &hi);
        erf_chunk(out + lo, inp + lo, hi - lo);
    }
}

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel OMP_IF(n * 8)
    {
        size_t lo, hi;
        thread_range(n, &lo, &hi);
        gelu_chunk(out + lo, inp + lo, hi - lo);
    }
}

void miles_gelu_range(float *out, const float *inp, size_t n) { gelu_chunk(out, inp, n); }

MILES_FMA_CLONES
static void gelu_fast_chunk_generic(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = miles_gelu_fast_elem(inp[i]);
}

static MilesEltFn gelu_fast_fn(void) {
    pthread_once(&g_ops_once, ops_isa_init);
    return g_gelu_fast_vec ? g_gelu_fast_vec : gelu_fast_chunk_generic;
}

void miles_gelu_fast_range(float *out, const float *inp, size_t n) { gelu_fast_fn()(out, inp, n); }

/* f in place on each of the rows (the dispatch once per block) */
static void rows_apply(MilesEltFn f, float *c, size_t rs, int rows, int cols) {
    for (int i = 0; i < rows; i++) f(c + i * rs, c + i * rs, (size_t)cols);
}

void miles_gelu_rows(float *c, size_t rs, int rows, int cols) { rows_apply(gelu_fn(), c, rs, rows, cols); }

void miles_gelu_fast_rows(float *c, size_t rs, int rows, int cols) {
    rows_apply(gelu_fast_fn(), c, rs, rows, cols);
}

static void gelu_backward_apply(float *dinp, const float *inp, const float *dout, size_t n, int set) {
#pragma omp parallel OMP_IF(n * 8)
    {
        size_t lo, hi;
        thread_range(n, &lo, &hi);
        gelu_backward_chunk(dinp + lo, inp + lo, dout + lo, hi - lo, set);
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    gelu_backward_apply(dinp, inp, dout, n, 0);
}

void gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t n) {
    gelu_backward_apply(dinp, inp, dout, n, 1);
}

void relu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *out, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (out[i] > 0.0f) dinp[i] += dout[i];
}

void tanh_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) OMP_IF(n * 8)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void tanh_backward(float *dinp, const float *out, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void sigmoid_forward(float *out, const float *inp, size_t n) {
    /* 1/(1+exp(-x)); for very negative x exp overflows to inf and the result
     * is the correct 0, never NaN */
#pragma omp parallel for schedule(static) OMP_IF(n * 8)
    for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}

void sigmoid_backward(float *dinp, const float *out, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void residual_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void residual_backward(float *da, float *db, const float *dout, size_t n) {
    if (da)
        for (size_t i = 0; i < n; i++) da[i] += dout[i];
    if (db)
        for (size_t i = 0; i < n; i++) db[i] += dout[i];
}

/* ------------------------------------------------------------- pooling */

void cls_pool_forward(float *out, const float *inp, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * C, inp + (size_t)b * T * C, (size_t)C * sizeof(float));
}

void cls_pool_backward(float *dinp, const float *dout, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        float *d = dinp + (size_t)b * T * C;
        const float *g = dout + (size_t)b * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}

/* 1 / max(sum_t mask, 1e-9) for row b; a NULL mask means every token is real */
static float mean_pool_inv(const int32_t *mask, int b, int T) {
    float cnt = 0.0f;
    for (int t = 0; t < T; t++) cnt += mask ? (float)(mask[(size_t)b * T + t] != 0) : 1.0f;
    return 1.0f / fmaxf(cnt, 1e-9f);
}

void mean_pool_forward(float *out, const float *inp, const int32_t *mask, int B, int T, int C) {
#pragma omp parallel for schedule(static) OMP_IF((double)B * T * C)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        for (int c = 0; c < C; c++) o[c] = 0.0f;
        for (int t = 0; t < T; t++) {
            if (mask && !mask[(size_t)b * T + t]) continue;
            const float *x = inp + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) o[c] += x[c];
        }
        float inv = mean_pool_inv(mask, b, T);
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void mean_pool_backward(float *dinp, const float *dout, const int32_t *mask, int B, int T, int C) {
#pragma omp parallel for schedule(static) OMP_IF((double)B * T * C)
    for (int b = 0; b < B; b++) {
        float inv = mean_pool_inv(mask, b, T);
        const float *g = dout + (size_t)b * C;
        for (int t = 0; t < T; t++) {
            if (mask && !mask[(size_t)b * T + t]) continue;
            float *d = dinp + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) d[c] += g[c] * inv;
        }
    }
}

/* -------------------------------------------------------------- concat */

void concat_forward(float *out, const float *a, const float *b, int B, int C1, int C2) {
    for (int r = 0; r < B; r++) {
        float *o = out + (size_t)r * (C1 + C2);
        memcpy(o, a + (size_t)r * C1, (size_t)C1 * sizeof(float));
        memcpy(o + C1, b + (size_t)r * C2, (size_t)C2 * sizeof(float));
    }
}

void concat_backward(float *da, float *db, const float *dout, int B, int C1, int C2) {
    for (int r = 0; r < B; r++) {
        const float *d = dout + (size_t)r * (C1 + C2);
        if (da)
            for (int c = 0; c < C1; c++) da[(size_t)r * C1 + c] += d[c];
        if (db)
            for (int c = 0; c < C2; c++) db[(size_t)r * C2 + c] += d[C1 + c];
    }
}

/* -------------------------------------------------------------- losses */

float crossentropy_forward(float *probs, const float *logits, const int32_t *labels,
                           const float *class_weight, int B, int K) {
    double num = 0.0, den = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (int k = 0; k < K; k++) {
            p[k] = expf(z[k] - mx);
            s += p[k];
        }
        float inv = (float)(1.0 / s);
        for (int k = 0; k < K; k++) p[k] *= inv;
        int y = labels[b];
        double w = class_weight ? class_weight[y] : 1.0;
        /* -log softmax[y] = logsumexp - z[y], without log(p) underflow */
        num += w * (mx + log(s) - z[y]);
        den += w;
    }
    /* PyTorch semantics: the weighted mean divides by sum_b w[y_b]; an empty
     * batch or all-zero weights give NaN there too (0/0). */
    return (float)(num / den);
}

void crossentropy_backward(float *dlogits, const float *probs, const int32_t *labels,
                           const float *class_weight, int B, int K, float scale) {
    double den = 0.0;
    for (int b = 0; b < B; b++) den += class_weight ? class_weight[labels[b]] : 1.0;
    for (int b = 0; b < B; b++) {
        int y = labels[b];
        float w = class_weight ? class_weight[y] : 1.0f;
        float g = (float)(scale * w / den);
        const float *p = probs + (size_t)b * K;
        float *d = dlogits + (size_t)b * K;
        for (int k = 0; k < K; k++) d[k] += g * (p[k] - (k == y ? 1.0f : 0.0f));
    }
}

float mse_forward(const float *pred, const float *target, int B) {
    double s = 0.0;
    for (int b = 0; b < B; b++) {
        double d = (double)pred[b] - target[b];
        s += d * d;
    }
    return (float)(s / B);
}

void mse_backward(float *dpred, const float *pred, const float *target, int B, float scale) {
    float g = 2.0f * scale / B;
    for (int b = 0; b < B; b++) dpred[b] += g * (pred[b] - target[b]);
}
