/*
 * gemm.c — row-major SGEMM: C[M,N] = alpha * op(A) @ op(B) + beta * C.
 *
 * Two backends with one contract (tests/test_gemm.c checks they agree):
 *   - CBLAS (OpenBLAS) when built with -DMILES_USE_BLAS and enabled (default);
 *   - an own OpenMP GEMM in the BLIS layout: C is cut into NC-wide column
 *     blocks and KC-deep slices of K; each slice of B is packed once into
 *     NR-wide micro-panels shared by all threads, each thread packs its own
 *     MC x KC block of A into MR-tall micro-panels and runs an MR x NR
 *     register-blocked micro-kernel over them.  The packed panels are read
 *     with unit stride, so the micro-kernel vectorizes and transposed operands
 *     cost nothing extra.  Threads split the rows of C (MC blocks).  For
 *     narrow C (N <= 64, e.g. attention's probs @ v) A is read in place
 *     instead of packed: there packing would cost as much as the arithmetic.
 *   miles_gemm_serial is the same own GEMM on the calling thread, for use
 *   inside parallel regions (attention runs one per (batch, head)).
 *
 * beta == 0 overwrites C without reading it (NaN garbage in C is ignored,
 * as BLAS does).  M, N <= 0 is a no-op; K <= 0 or alpha == 0 only scales C.
 */
#include "ops_internal.h"
#include "internal.h"

#include <math.h>

#ifdef MILES_USE_BLAS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* Micro-kernel tile: MR rows x NR columns of C held in registers.  Enough
 * independent accumulators must be in flight to hide the FMA latency:
 * AVX-512 (32 registers): 12 x 16 floats = 12 zmm (95 GFLOP/s/core measured
 * vs 100 for OpenBLAS on the dev EPYC); AVX2 (16 registers): 6 x 16 = 12 ymm. */
#ifdef __AVX512F__
#define MR 12
#else
#define MR 6
#endif
#define NR 16
#define KC 256     /* K slice: an NR x KC panel of B (16 KiB) stays in L1 */
#define MC_MAX 144 /* rows per A block (multiple of MR): MC x KC (144 KiB) in L2 */
#define NC_MAX 3072

/* Without hardware FMA, fmaf() would be a slow libm call: use a*b+c there.
 * (-std=c11 turns off GCC's automatic contraction, so FMA must be explicit.) */
#ifdef __FMA__
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif
/* vector x scalar + vector; fused where the target has FMA (see below) */
#define VFMA(v, s, c) ((v) * (s) + (c))

static int g_use_blas = 1;

int miles_gemm_has_blas(void) {
#ifdef MILES_USE_BLAS
    return 1;
#else
    return 0;
#endif
}

int miles_gemm_use_blas(int on) {
    int prev = g_use_blas;
    g_use_blas = on ? 1 : 0;
    return prev;
}

static inline int imin(int a, int b) { return a < b ? a : b; }

/* C[M,N] *= beta; beta == 0 stores zeros without reading C. */
static void scale_rows(int i0, int i1, int N, float beta, float *C, int ldc) {
    if (beta == 1.0f) return;
    for (int i = i0; i < i1; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < N; j++) c[j] = 0.0f;
        else
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* Pack rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into MR-tall micro-panels:
 * panel r holds Ap[r*MR*kc + p*MR + i]; rows past mc are zero. */
static void pack_a(float *restrict Ap, const float *A, int lda, int transA,
                   int i0, int mc, int p0, int kc) {
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = imin(MR, mc - ir);
        float *dst = Ap + (size_t)ir * kc;
        if (!transA) { /* A is [M,K]: element (i,p) at A[i*lda + p] */
            for (int i = 0; i < MR; i++) {
                if (i < mr) {
                    const float *src = A + (size_t)(i0 + ir + i) * lda + p0;
                    for (int p = 0; p < kc; p++) dst[p * MR + i] = src[p];
                } else {
                    for (int p = 0; p < kc; p++) dst[p * MR + i] = 0.0f;
                }
            }
        } else if (mr == MR) { /* A is [K,M]: element (i,p) at A[p*lda + i] */
            for (int p = 0; p < kc; p++) /* fixed size: inlined copy */
                memcpy(dst + (size_t)p * MR, A + (size_t)(p0 + p) * lda + i0 + ir, MR * sizeof(float));
        } else {
            for (int p = 0; p < kc; p++) {
                const float *src = A + (size_t)(p0 + p) * lda + i0 + ir;
                int i = 0;
                for (; i < mr; i++) dst[p * MR + i] = src[i];
                for (; i < MR; i++) dst[p * MR + i] = 0.0f;
            }
        }
    }
}

/* Pack one NR-wide micro-panel: cols [j0, j0+nr) x rows [p0, p0+kc) of op(B)
 * into dst[p*NR + j]; columns past nr are zero. */
static void pack_b(float *restrict dst, const float *B, int ldb, int transB,
                   int j0, int nr, int p0, int kc) {
    if (!transB) { /* B is [K,N]: element (p,j) at B[p*ldb + j] */
        if (nr == NR) { /* fixed-size copy: inlined, no memcpy call per row */
            for (int p = 0; p < kc; p++)
                memcpy(dst + (size_t)p * NR, B + (size_t)(p0 + p) * ldb + j0, NR * sizeof(float));
            return;
        }
        for (int p = 0; p < kc; p++) {
            const float *src = B + (size_t)(p0 + p) * ldb + j0;
            int j = 0;
            for (; j < nr; j++) dst[p * NR + j] = src[j];
            for (; j < NR; j++) dst[p * NR + j] = 0.0f;
        }
    } else {       /* B is [N,K]: element (p,j) at B[j*ldb + p] */
        for (int j = 0; j < NR; j++) {
            if (j < nr) {
                const float *src = B + (size_t)(j0 + j) * ldb + p0;
                for (int p = 0; p < kc; p++) dst[p * NR + j] = src[p];
            } else {
                for (int p = 0; p < kc; p++) dst[p * NR + j] = 0.0f;
            }
        }
    }
}

/* C[mr,nr] += alpha * Ap[MR,kc] @ Bp[kc,NR] (the valid mr x nr corner).
 * The accumulator is MR vectors of NR floats (GCC vector extension: one
 * AVX-512 register per row, two AVX2 registers, or four SSE registers; the
 * compiler picks the widest the target has).  Plain scalar loops were not
 * kept in registers by GCC 12 (8 GFLOP/s instead of ~100). */
typedef float vnr __attribute__((vector_size(NR * sizeof(float))));

/* C[mr,nr] += alpha * A[mr,kc] @ Bp[kc,NR] (the valid mr x nr corner), where
 * element (i,p) of A is a[i*a_rs + p*a_cs]: a packed micro-panel (a_rs = 1,
 * a_cs = MR) or A read in place (non-transposed: a_rs = lda, a_cs = 1;
 * transposed: a_rs = 1, a_cs = lda).  With clamp, rows past mr re-read row
 * mr-1 (in-place A has no zero padding; those results are not stored).
 * Always inlined with constant strides/clamp so each caller is specialized.
 * -std=c11 disables GCC's FMA contraction; re-enable it here (one rounding
 * per multiply-add, as BLAS kernels do). */
#if defined(__GNUC__) && !defined(__clang__)
#define KERNEL_ATTR __attribute__((always_inline, optimize("fp-contract=fast")))
#else
#define KERNEL_ATTR __attribute__((always_inline))
#endif
static inline KERNEL_ATTR void kernel_body(int kc, const float *a, size_t a_rs, size_t a_cs,
                                           int clamp, const float *restrict b, float *C,
                                           int ldc, int mr, int nr, float alpha) {
    size_t roff[MR];
    for (int i = 0; i < MR; i++) roff[i] = (size_t)(clamp && i >= mr ? mr - 1 : i) * a_rs;
    vnr acc[MR];
    for (int i = 0; i < MR; i++) acc[i] = (vnr){0};
    for (int p = 0; p < kc; p++) {
        vnr bv;
        memcpy(&bv, b + (size_t)p * NR, sizeof bv); /* Bp is 64-byte aligned */
        const float *ap = a + (size_t)p * a_cs;
        for (int i = 0; i < MR; i++) acc[i] = VFMA(bv, ap[roff[i]], acc[i]);
    }
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            vnr c;
            memcpy(&c, C + (size_t)i * ldc, sizeof c);
            c = VFMA(acc[i], alpha, c);
            memcpy(C + (size_t)i * ldc, &c, sizeof c);
        }
    } else {
        for (int i = 0; i < mr; i++) {
            float *c = C + (size_t)i * ldc;
            for (int j = 0; j < nr; j++) c[j] = MADD(alpha, acc[i][j], c[j]);
        }
    }
}

/* packed A micro-panel */
static void micro_kernel(int kc, const float *restrict a, const float *restrict b,
                         float *C, int ldc, int mr, int nr, float alpha) {
    kernel_body(kc, a, 1, MR, 0, b, C, ldc, mr, nr, alpha);
}

/* A read in place: a points at element (0,0) of this micro-tile's rows */
static void micro_kernel_inplace(int transA, int kc, const float *a, int lda,
                                 const float *restrict b, float *C, int ldc, int mr, int nr,
                                 float alpha) {
    if (!transA) {
        if (mr == MR) kernel_body(kc, a, (size_t)lda, 1, 0, b, C, ldc, mr, nr, alpha);
        else kernel_body(kc, a, (size_t)lda, 1, 1, b, C, ldc, mr, nr, alpha);
    } else {
        if (mr == MR) kernel_body(kc, a, 1, (size_t)lda, 0, b, C, ldc, mr, nr, alpha);
        else kernel_body(kc, a, 1, (size_t)lda, 1, b, C, ldc, mr, nr, alpha);
    }
}

/* Unblocked fallback used only when the packing buffers cannot be allocated
 * (the op API has no status return, so it must still produce the result). */
static void gemm_unpacked(int transA, int transB, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb,
                          float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int p = 0; p < K; p++) {
            float a = alpha * (transA ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]);
            float *c = C + (size_t)i * ldc;
            if (!transB) {
                const float *b = B + (size_t)p * ldb;
                for (int j = 0; j < N; j++) c[j] = MADD(a, b[j], c[j]);
            } else {
                for (int j = 0; j < N; j++) c[j] = MADD(a, B[(size_t)j * ldb + p], c[j]);
            }
        }
}

/* 64-byte aligned scratch of n floats (not zeroed), NULL on failure. */
static float *gemm_buf(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
    return p;
}

static void gemm_own(int parallel, int transA, int transB, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_rows(0, M, N, beta, C, ldc);
        return;
    }
    int nt = 1;
#ifdef _OPENMP
    if (parallel && !omp_in_parallel() &&
        (double)M * N * K >= 4.0 * MILES_OMP_MIN_WORK && M >= 2 * MR)
        nt = omp_get_max_threads();
#endif
    /* With several threads, shrink MC so that every thread gets a block. */
    int mc_blk = MC_MAX;
    if (nt > 1) {
        int per = (M + nt - 1) / nt;
        per = (per + MR - 1) / MR * MR;
        if (per < mc_blk) mc_blk = per;
    }
    /* Packing A pays off when each packed panel serves many NR-wide column
     * panels.  With N <= 4*NR (attention's P@v and its backward, hs <= 64;
     * narrow MLP heads) packing would cost as much as the arithmetic: the
     * micro-kernel then reads A in place (its rows stay in L1/L2). */
    const int inplace_a = N <= 4 * NR;
    int kc_blk = imin(KC, K);
    int nc_blk = imin(NC_MAX, (N + NR - 1) / NR * NR);

    /* packing overwrites every element it later reads: no need to zero */
    float *Bp = gemm_buf((size_t)kc_blk * nc_blk);
    float *Ap_all = gemm_buf(inplace_a ? 1 : (size_t)nt * mc_blk * kc_blk);
    if (!Bp || !Ap_all) {
        free(Bp);
        free(Ap_all);
        scale_rows(0, M, N, beta, C, ldc);
        gemm_unpacked(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc);
        return;
    }

#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *Ap = Ap_all + (size_t)tid * mc_blk * kc_blk;
#pragma omp for schedule(static)
        for (int i = 0; i < M; i++) scale_rows(i, i + 1, N, beta, C, ldc);

        for (int jc = 0; jc < N; jc += nc_blk) {
            int nc = imin(nc_blk, N - jc);
            for (int pc = 0; pc < K; pc += kc_blk) {
                int kc = imin(kc_blk, K - pc);
                /* all threads pack the shared B slice; the implicit barrier
                 * makes it complete before anyone reads it */
#pragma omp for schedule(static)
                for (int jr = 0; jr < nc; jr += NR)
                    pack_b(Bp + (size_t)jr * kc, B, ldb, transB, jc + jr,
                           imin(NR, nc - jr), pc, kc);
                /* the implicit barrier here keeps Bp alive until all are done */
#pragma omp for schedule(dynamic, 1)
                for (int ic = 0; ic < M; ic += mc_blk) {
                    int mc = imin(mc_blk, M - ic);
                    if (!inplace_a) pack_a(Ap, A, lda, transA, ic, mc, pc, kc);
                    for (int jr = 0; jr < nc; jr += NR)
                        for (int ir = 0; ir < mc; ir += MR) {
                            float *c = C + (size_t)(ic + ir) * ldc + jc + jr;
                            int mr = imin(MR, mc - ir), nr = imin(NR, nc - jr);
                            if (inplace_a)
                                micro_kernel_inplace(
                                    transA, kc,
                                    transA ? A + (size_t)pc * lda + ic + ir
                                           : A + (size_t)(ic + ir) * lda + pc,
                                    lda, Bp + (size_t)jr * kc, c, ldc, mr, nr, alpha);
                            else
                                micro_kernel(kc, Ap + (size_t)ir * kc, Bp + (size_t)jr * kc, c,
                                             ldc, mr, nr, alpha);
                        }
                }
            }
        }
    }
    free(Bp);
    free(Ap_all);
}

void miles_gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc) {
    gemm_own(0, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#ifdef MILES_USE_BLAS
/* OpenBLAS' thread-count setter; weak so other CBLAS implementations link too. */
extern void openblas_set_num_threads(int n) __attribute__((weak));
/* MILES_BLAS_SPLIT=0 returns to OpenBLAS' own threading. */
static int g_blas_split = -1;
static void blas_single_threaded(void) {
    static int done;
    if (!done) {
        if (openblas_set_num_threads) openblas_set_num_threads(1);
        done = 1;
    }
}
static int blas_split_default(void) {
    const char *e = getenv("MILES_BLAS_SPLIT");
    return !(e && e[0] == '0') && openblas_set_num_threads != NULL;
}
#endif

void miles_gemm(int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta,
                float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef MILES_USE_BLAS
    /* K == 0 is handled by the own path (it only scales C): CBLAS would reject
     * the lda/ldb that are natural there.  Inside an OpenMP parallel region
     * CBLAS would oversubscribe its own thread pool: use the serial own GEMM. */
    int in_par = 0;
#ifdef _OPENMP
    in_par = omp_in_parallel();
#endif
    if (g_blas_split < 0) g_blas_split = blas_split_default(); /* benign race: same value */
    if (g_use_blas && K > 0 && !in_par) {
#ifdef _OPENMP
        /* One pool of threads, not two: OpenBLAS (pthread build) run single-threaded
         * inside our OpenMP threads, each on its own block of C.  Otherwise the BLAS
         * threads spin-yield against the sleeping OpenMP workers after every call
         * (measured: ~8% of a forward pass in sched_yield on 2 cores).  The split is
         * static, so results stay deterministic for a thread count. */
        int nt = omp_get_max_threads();
        if (g_blas_split && nt > 1 && (double)M * N * K >= 4e6) {
            blas_single_threaded();
            int split_m = M >= 64 * nt;
#pragma omp parallel num_threads(nt)
            {
                int t = omp_get_thread_num(), T = omp_get_num_threads();
                int len = split_m ? M : N;
                int q = len / T, r = len % T;
                int b0 = t * q + (t < r ? t : r), b1 = b0 + q + (t < r);
                if (b1 > b0) {
                    const float *a = A, *b = B;
                    float *c = C;
                    int m = M, n = N;
                    if (split_m) { a = transA ? A + b0 : A + (size_t)b0 * lda; c = C + (size_t)b0 * ldc; m = b1 - b0; }
                    else { b = transB ? B + (size_t)b0 * ldb : B + b0; c = C + b0; n = b1 - b0; }
                    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                                transB ? CblasTrans : CblasNoTrans, m, n, K, alpha, a, lda, b, ldb,
                                beta, c, ldc);
                }
            }
            return;
        }
#endif
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                    beta, C, ldc);
        return;
    }
#endif
    gemm_own(1, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
