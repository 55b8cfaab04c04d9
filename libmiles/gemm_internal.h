/*
 * gemm_internal.h — the own GEMM's micro-kernel interface, shared by the
 * driver (gemm.c) and the per-ISA kernel files (gemm_avx512.c, gemm_avx2.c,
 * gemm_generic.c), each compiled with its own -m flags and chosen at run time
 * by CPU features (gemm.c: gemm_select).  Not installed; not part of ops.h.
 *
 * NUMERICAL CONTRACT (why the bits of C depend only on the call's shape and
 * values, never on thread count, ISA, build host or which rows are computed
 * together):
 *   - K is cut into slices [0,KC), [KC,2KC), ... anchored at 0 (MILES_GEMM_KC
 *     below is part of the contract: changing it changes results);
 *   - for each slice, every element of C gets acc = 0; acc = fma(a_ip, b_pj,
 *     acc) for p in increasing order; then C = fma(alpha, acc, C) — one
 *     correctly rounded fused multiply-add per step, in every kernel (vector
 *     width only changes how many elements run side by side);
 *   - before the first slice C = beta * C (beta == 0: C = 0, C is not read).
 * Threads and tiles only decide which element is computed where, never how.
 */
#ifndef MILES_GEMM_INTERNAL_H
#define MILES_GEMM_INTERNAL_H

#include <stddef.h>

#define MILES_GEMM_KC 256

/* C[m, n] = fma(alpha, A[m, kc] @ B[kc, NR], C) for the valid m <= MR rows and
 * n <= NR columns of one micro-tile.  Element (i, p) of A is a[i*a_rs + p*a_cs]:
 * the packed layouts (a_rs, a_cs) = (1, MR) (p-major micro-panel) and
 * (MILES_GEMM_KC, 1) (rows copied to a fixed stride) get specialized code,
 * anything else (A read in place) a generic one.  Row p of B is
 * b[p*b_rs .. p*b_rs + NR) (all NR columns readable; columns past n are
 * computed and dropped); C element (i, j) at c[i*c_rs + j*c_cs] (c_cs == 1: C
 * row-major; c_rs == 1: C transposed).  Only rows < m of A are read.
 * c_zero: C holds nothing yet and is not read: C = fma(alpha, acc, +0), the
 * same bits as zeroing C first.  c_row (c_cs == 1 only; NULL otherwise): C
 * is not read either, its old value is c_row[j] in every row: C = fma(alpha,
 * acc, c_row[j]), the same bits as copying c_row into each row first (a
 * linear layer's bias before its first K slice, without a pass over C). */
typedef void (*MilesGemmKernel)(int kc, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
                                const float *b, ptrdiff_t b_rs, float *c, ptrdiff_t c_rs,
                                ptrdiff_t c_cs, int m, int n, float alpha, int c_zero,
                                const float *c_row);

typedef struct MilesGemmIsa {
    const char *name;     /* "avx512", "avx2", "generic" */
    int mr, nr;           /* micro-tile */
    MilesGemmKernel kernel;
    int mr16;             /* optional taller tile with nr = 16, for C at most */
    MilesGemmKernel kernel16; /* 16 columns wide (short titles x W^T); NULL if none */
    /* dst[j*ldd + i] = src[i*ld + j] for i < rows, j < cols (the few-rows
     * path's staged C^T into C); NULL: gemm.c's scalar loop */
    void (*transpose)(const float *src, ptrdiff_t ld, int rows, int cols, float *dst, ptrdiff_t ldd);
    /* dst[i*MILES_GEMM_KC + p] = src[i*lda + p], i < rows, p < kc (packing
     * rows of A); NULL: memcpy per row */
    void (*copy_rows)(float *dst, const float *src, ptrdiff_t lda, int rows, int kc);
} MilesGemmIsa;

/* Each returns its descriptor, or NULL when not compiled in (non-x86 build). */
const MilesGemmIsa *miles_gemm_isa_avx512(void);
const MilesGemmIsa *miles_gemm_isa_avx2(void);
const MilesGemmIsa *miles_gemm_isa_generic(void);
/* The kernel miles_gemm runs (CPU features, MILES_GEMM_ISA, miles_gemm_force_isa). */
const MilesGemmIsa *miles_gemm_isa_selected(void);

/* fp32 weights packed once (the inference engine, model_infer.c): W [N,K]
 * row-major, used as op(B) = W^T, stored in the B micro-panel layout of the
 * ISA chosen at pack time (its NR), all of K and N: slice pc (KC rows of
 * op(B)) at p + pc*npad, panel jr inside it at + jr*kc.  The product runs the
 * same micro-kernel on the same K slices in the same order as miles_gemm(0, 1,
 * ...) on W, so C has the same bits; only the per-call packing of W is gone. */
typedef struct MilesGemmF32Packed {
    const MilesGemmIsa *isa; /* the kernel the panels were laid out for */
    int N, K, npad;          /* npad: N rounded up to isa->nr */
    float *p;
    /* the same W as A micro-panels (rows of W, MR at a time, p-major) for
     * few rows of x, where C^T = W @ x^T: slice pc at pa + pc*apad, panel of
     * rows ir.. at + ir*kc; apad = N rounded up to isa->mr */
    int apad;
    float *pa;
} MilesGemmF32Packed;

/* Pack W [N,K] (row stride ldw); NULL when out of memory. */
MilesGemmF32Packed *miles_gemm_f32_pack(const float *W, int N, int K, int ldw);
void miles_gemm_f32_packed_free(MilesGemmF32Packed *pw);
/* C[M, N] = A[M, K] @ W^T + beta * C (row strides lda, ldc): the bits of
 * miles_gemm(0, 1, M, N, K, 1, A, lda, W, ldw, beta, C, ldc) for any M (the
 * contract: same per-element arithmetic whatever the tiling).  OpenMP threads
 * split C unless called inside a parallel region (one region, one sync: its
 * end).  gelu: then C = gelu_forward(C), applied per finished block inside
 * the same region (the FFN's first GEMM; same bits as a separate call). */
void miles_gemm_f32_packed(const MilesGemmF32Packed *pw, int M, const float *A, int lda, float beta,
                           float *C, int ldc, int gelu);
/* C[M, N] = bias (each row) + A @ W^T, gelu as above: the bits of copying
 * bias into every row of C and miles_gemm_f32_packed with beta 1 (the
 * inference engine's linear layers), the bias written per task block inside
 * the GEMM's region instead of in a pass before it. */
void miles_gemm_f32_packed_bias(const MilesGemmF32Packed *pw, int M, const float *A, int lda, const float *bias,
                                float *C, int ldc, int gelu);
/* A row epilogue: fn(ctx, i0, i1) once for every row block [i0, i1) of C
 * whose N columns are final (GELU included), each row in exactly one call.
 * Inside the GEMM's region where a task owns whole rows (the engine's
 * residual + LayerNorm then runs on rows still in L2, and without a region
 * and barrier of its own); otherwise in a parallel loop right after it.
 * fn may run on any thread, concurrently for disjoint rows; an OpenMP region
 * inside it runs on the calling thread. */
typedef struct MilesGemmRowsDone {
    void (*fn)(void *ctx, int i0, int i1);
    void *ctx;
} MilesGemmRowsDone;
/* miles_gemm_f32_packed_bias, then `done` over C's rows (NULL: none) */
void miles_gemm_f32_packed_bias_rows(const MilesGemmF32Packed *pw, int M, const float *A, int lda,
                                     const float *bias, float *C, int ldc, int gelu, const MilesGemmRowsDone *done);

/* C[M,N] = alpha * A[M,K] @ op(B) (beta = 0, C not read) on the calling
 * thread with no plan, task loop or OpenMP calls: the attention's per-head
 * products (T x T x head size), where miles_gemm_serial's setup cost ~1 us
 * per call against ~0.3 us of arithmetic.  The same kernel and tile choice,
 * one K slice (K <= MILES_GEMM_KC; larger K goes to miles_gemm_serial): the
 * bits of miles_gemm(0, transB, ...). */
void miles_gemm_tiny(int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc);

/* 1 when miles_gemm runs on BLAS (MILES_GEMM=blas, miles_gemm_use_blas) */
int miles_gemm_blas_active(void);

/* x @ W^T with at most this many rows runs as (W @ x^T)^T (gemm.c) */
#define MILES_GEMM_SWAP_MAX_M 64

#endif
