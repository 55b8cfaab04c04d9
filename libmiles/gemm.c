/*
 * gemm.c — row-major SGEMM: C[M,N] = alpha * op(A) @ op(B) + beta * C.
 *
 * The default engine is the own GEMM below; its bits depend only on the
 * call's shape and values (gemm_internal.h states the contract): not on the
 * thread count, the rows computed together (batch composition), the CPU's
 * vector ISA or the build host.  It is the BLIS layout:
 *   - op(B) is packed once per call into NR-wide micro-panels per KC slice
 *     of K, shared by all threads (one barrier);
 *   - C is cut into tasks (an MC-row block x a column chunk); each task is
 *     computed by one thread from start to end: it packs its MC x KC block of
 *     op(A) per slice and runs the MR x NR micro-kernel over it, the B
 *     micro-panel staying in L1 while the A block streams from L2 (a task
 *     wider than 768 columns, whose B slice outgrows L2, runs 256-column
 *     sub-chunks instead: B from L2, each A micro-panel staying in L1);
 *   - a large product on several threads is first split statically, one
 *     share of C's rows or columns per thread, each running the above
 *     serially with its own packs (gemm_own: it held its speed where the
 *     shared pack lost up to 20% to cache contention);
 *   - the micro-kernel is chosen once, by CPU features (cpuid), from
 *     gemm_avx512.c / gemm_avx2.c / gemm_generic.c; MILES_GEMM_ISA or
 *     miles_gemm_force_isa picks a lower one (tests, benchmarks).
 * Where packing costs as much as it saves it is skipped: op(A) is read in
 * place for narrow C (N <= 64: attention's P @ v), B in place when it is
 * not transposed and C has few rows (batch-1 inference).
 *
 * OpenBLAS stays available as an opt-in (MILES_GEMM=blas, or
 * miles_gemm_use_blas(1)): it is then run single-threaded (set once, when
 * selected) inside a static split of C over the OpenMP threads decided by
 * the shape and the thread count.  Its results are reproducible for a given
 * thread count and batch shape only (its kernels' K order depends on the
 * sub-shape), which is why it is not the default.
 *
 * beta == 0 overwrites C without reading it (NaN garbage in C is ignored,
 * as BLAS does).  M, N <= 0 is a no-op; K <= 0 or alpha == 0 only scales C.
 */
#include "ops_internal.h"
#include "gemm_internal.h"
#include "internal.h"

#include <math.h>
#include <pthread.h>

#ifdef MILES_USE_BLAS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#define KC MILES_GEMM_KC
#define MC_MAX 192             /* rows per A block: a multiple of every MR (24, 12, 6, 4) */
#define BPACK_MAX (4u << 20)   /* floats of packed B per pass (16 MiB); wider B goes in column blocks */
#define SWAP_MAX_M MILES_GEMM_SWAP_MAX_M
#define SUB_NC 256             /* columns of a sub-chunk when a task's packed B slice outgrows L2 */
#define SUB_MIN 768            /* ... i.e. the task is wider than this (768 KiB of B per K slice) */

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax_int(int a, int b) { return a > b ? a : b; }
static inline int round_up(int a, int m) { return (a + m - 1) / m * m; }

/* ------------------------------------------------------------ selection */

static const MilesGemmIsa *g_isa;
static int g_use_blas;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int isa_supported(const MilesGemmIsa *isa) {
    if (!isa) return 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(isa->name, "avx512") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(isa->name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(isa->name, "generic") == 0;
}

/* Best first. */
static const MilesGemmIsa *isa_list(int i) {
    switch (i) {
    case 0: return miles_gemm_isa_avx512();
    case 1: return miles_gemm_isa_avx2();
    case 2: return miles_gemm_isa_generic();
    default: return NULL;
    }
}

static const MilesGemmIsa *isa_by_name(const char *name) {
    for (int i = 0; i < 3; i++) {
        const MilesGemmIsa *isa = isa_list(i);
        if (isa && strcmp(isa->name, name) == 0) return isa;
    }
    return NULL;
}

#ifdef MILES_USE_BLAS
/* OpenBLAS' thread-count setter; weak so other CBLAS implementations link too. */
extern void openblas_set_num_threads(int n) __attribute__((weak));
static void blas_policy(void) {
    /* Decided once when BLAS is selected, never later by what ran before:
     * OpenBLAS runs on one thread inside our static split (one thread pool,
     * not two; its own threading gives different bits for 1 vs 2 threads). */
    if (openblas_set_num_threads) openblas_set_num_threads(1);
}
#endif

static void gemm_init(void) {
    for (int i = 0; i < 3 && !g_isa; i++)
        if (isa_supported(isa_list(i))) g_isa = isa_list(i);
    const char *e = getenv("MILES_GEMM_ISA");
    if (e && *e && strcmp(e, "auto") != 0) {
        const MilesGemmIsa *want = isa_by_name(e);
        if (want && isa_supported(want)) g_isa = want;
        else fprintf(stderr, "miles: MILES_GEMM_ISA=%s is %s; using %s\n", e,
                     want ? "not supported by this CPU" : "unknown (avx512, avx2, generic)",
                     g_isa->name);
    }
    e = getenv("MILES_GEMM");
    if (e && strcmp(e, "blas") == 0) {
#ifdef MILES_USE_BLAS
        g_use_blas = 1;
        blas_policy();
#else
        fprintf(stderr, "miles: MILES_GEMM=blas but this build has no BLAS; using the own GEMM\n");
#endif
    } else if (e && *e && strcmp(e, "own") != 0) {
        fprintf(stderr, "miles: MILES_GEMM=%s is unknown (own, blas); using own\n", e);
    }
}

static const MilesGemmIsa *gemm_isa(void) {
    pthread_once(&g_once, gemm_init);
    return g_isa;
}

int miles_gemm_has_blas(void) {
#ifdef MILES_USE_BLAS
    return 1;
#else
    return 0;
#endif
}

int miles_gemm_use_blas(int on) {
    gemm_isa();
    int prev = g_use_blas;
#ifdef MILES_USE_BLAS
    g_use_blas = on ? 1 : 0;
    if (on) blas_policy();
#endif
    return prev;
}

int miles_gemm_blas_active(void) {
    gemm_isa();
    return g_use_blas;
}

const char *miles_gemm_isa_name(void) { return gemm_isa()->name; }
const MilesGemmIsa *miles_gemm_isa_selected(void) { return gemm_isa(); }

int miles_gemm_force_isa(const char *name) {
    gemm_isa();
    const MilesGemmIsa *isa = name ? isa_by_name(name) : NULL;
    if (!isa || !isa_supported(isa)) return -1;
    g_isa = isa;
    return 0;
}

int miles_gemm_isa_available(const char *name) { return isa_supported(isa_by_name(name)); }

/* The ISA's 16-column tile as an ISA of its own (rows mr: its own mr16, or
 * the MR of W's pre-packed panels); everything else as the ISA's. */
static MilesGemmIsa isa_narrow(const MilesGemmIsa *isa, int mr) {
    MilesGemmIsa n = *isa;
    n.mr = mr, n.nr = 16, n.kernel = isa->kernel16, n.mr16 = 0, n.kernel16 = NULL;
    return n;
}

/* ------------------------------------------------------------- packing */

/* C[i0:i1, j0:j1] *= beta (element (i,j) at C[i*c_rs + j*c_cs]); beta == 0
 * stores zeros without reading C. */
static void scale_block(int i0, int i1, int j0, int j1, float beta, float *C, size_t c_rs,
                        size_t c_cs) {
    if (beta == 1.0f) return;
    for (int i = i0; i < i1; i++) {
        float *c = C + i * c_rs;
        if (beta == 0.0f)
            for (int j = j0; j < j1; j++) c[j * c_cs] = 0.0f;
        else
            for (int j = j0; j < j1; j++) c[j * c_cs] *= beta;
    }
}

/* Rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into MR-row panels, panel r
 * at Ap + r*MR*KC, in the layout that is a plain copy for the operand:
 *   A [M,K] (not transposed): row i of the panel at + i*KC (kernel strides
 *     a_rs = KC, a_cs = 1) — a row copy, no transposition;
 *   A [K,M] (transposed): step p at + p*MR (a_rs = 1, a_cs = MR).
 * The last panel's rows past mc are left unset: the kernel reads only the
 * rows it computes. */
static void pack_a(const MilesGemmIsa *isa, float *restrict Ap, int MR, const float *A, int lda, int transA,
                   int i0, int mc, int p0, int kc) {
    if (!transA && isa->copy_rows) { /* the row copies of the whole block at once */
        isa->copy_rows(Ap, A + (size_t)i0 * lda + p0, lda, mc, kc);
        return;
    }
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = imin(MR, mc - ir);
        float *dst = Ap + (size_t)ir * KC;
        if (!transA) {
            for (int i = 0; i < mr; i++)
                memcpy(dst + (size_t)i * KC, A + (size_t)(i0 + ir + i) * lda + p0,
                       (size_t)kc * sizeof(float));
        } else {
            const float *src = A + (size_t)p0 * lda + i0 + ir;
            /* constant-size copies are inlined (no libc call per step) */
            if (mr == 12 && MR == 12)
                for (int p = 0; p < kc; p++) memcpy(dst + (size_t)p * 12, src + (size_t)p * lda, 48);
            else if (mr == 6 && MR == 6)
                for (int p = 0; p < kc; p++) memcpy(dst + (size_t)p * 6, src + (size_t)p * lda, 24);
            else
                for (int p = 0; p < kc; p++)
                    for (int i = 0; i < mr; i++) dst[(size_t)p * MR + i] = src[(size_t)p * lda + i];
        }
    }
}

/* One NR-wide micro-panel: cols [j0, j0+nr) x rows [p0, p0+kc) of op(B)
 * into dst[p*NR + j]; columns past nr are zero.  A transposed B goes through
 * the ISA's in-register transpose when it has one (the attention's K^T per
 * head and the training forward's W^T: the scalar gather below cost ~1% of
 * an fp32 inference forward in the attention alone). */
static void pack_b(const MilesGemmIsa *isa, float *restrict dst, int NR, const float *B, int ldb, int transB,
                   int j0, int nr, int p0, int kc) {
    if (transB && isa->transpose) {
        /* a narrow panel's pad lanes (the attention's K^T of a sequence
         * shorter than its bucket): the whole panel zeroed in one call, then
         * the real lanes written, instead of a libc memset per step of k */
        if (nr < NR) memset(dst, 0, (size_t)kc * NR * sizeof(float));
        isa->transpose(B + (size_t)j0 * ldb + p0, ldb, nr, kc, dst, NR);
        return;
    }
    if (!transB) { /* B is [K,N]: element (p,j) at B[p*ldb + j] */
        /* full panels as constant-size copies, inlined: a libc memcpy call
         * per 128-byte row was ~2% of a bert-base train step (dX = dY W) */
        if (nr == 32 && NR == 32) {
            for (int p = 0; p < kc; p++) memcpy(dst + (size_t)p * 32, B + (size_t)(p0 + p) * ldb + j0, 128);
            return;
        }
        if (nr == 16 && NR == 16) {
            for (int p = 0; p < kc; p++) memcpy(dst + (size_t)p * 16, B + (size_t)(p0 + p) * ldb + j0, 64);
            return;
        }
        for (int p = 0; p < kc; p++) {
            const float *src = B + (size_t)(p0 + p) * ldb + j0;
            float *d = dst + (size_t)p * NR;
            memcpy(d, src, (size_t)nr * sizeof(float));
            for (int j = nr; j < NR; j++) d[j] = 0.0f;
        }
    } else { /* B is [N,K]: element (p,j) at B[j*ldb + p]; 4 rows at a time */
        int j = 0;
        for (; j + 4 <= nr; j += 4) {
            const float *s0 = B + (size_t)(j0 + j) * ldb + p0, *s1 = s0 + ldb, *s2 = s1 + ldb,
                        *s3 = s2 + ldb;
            float *d = dst + j;
            for (int p = 0; p < kc; p++, d += NR) {
                d[0] = s0[p];
                d[1] = s1[p];
                d[2] = s2[p];
                d[3] = s3[p];
            }
        }
        for (; j < nr; j++) {
            const float *src = B + (size_t)(j0 + j) * ldb + p0;
            for (int p = 0; p < kc; p++) dst[(size_t)p * NR + j] = src[p];
        }
        for (; j < NR; j++)
            for (int p = 0; p < kc; p++) dst[(size_t)p * NR + j] = 0.0f;
    }
}

/* ------------------------------------------------------------- scratch */

/* Packing buffers are kept per calling thread and reused: a fresh multi-MiB
 * allocation per call costs page faults and zeroing (~8% of a bert-base
 * GEMM).  Freed when the thread exits; buffers above SCRATCH_KEEP are not
 * kept. */
#define SCRATCH_KEEP ((size_t)64 << 20)
typedef struct Scratch {
    float *p;
    size_t cap; /* floats */
} Scratch;
static _Thread_local Scratch tl_scratch;
static _Thread_local float *tl_big; /* one oversized buffer, freed by the next call */
static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) { free(p); }
static void scratch_key_init(void) { (void)pthread_key_create(&g_scratch_key, scratch_free); }

/* 64-byte aligned scratch of n floats (not zeroed), valid until this
 * thread's next call; NULL when it cannot be allocated. */
static int g_scratch_fail; /* miles_gemm_scratch_fail: tests of the fallbacks */

void miles_gemm_scratch_fail(int on) { g_scratch_fail = on; }

static float *scratch_get(size_t n) {
    free(tl_big);
    tl_big = NULL;
    if (g_scratch_fail) return NULL;
    if (n <= tl_scratch.cap) return tl_scratch.p;
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float)) != 0) return NULL;
    if (n * sizeof(float) > SCRATCH_KEEP) return tl_big = p;
    pthread_once(&g_scratch_once, scratch_key_init);
    free(tl_scratch.p);
    tl_scratch = (Scratch){p, n};
    pthread_setspecific(g_scratch_key, p); /* the key's destructor frees it at thread exit */
    return p;
}

/* ------------------------------------------------------------- driver */

typedef struct GemmPlan {
    const MilesGemmIsa *isa;
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb;
    float *C;
    size_t c_rs, c_cs;       /* C element (i,j) at C[i*c_rs + j*c_cs] */
    int pack_a, pack_b;
    int mc, nchunk, mb, nb;  /* task grid: mb row blocks x nb column chunks */
    int jc, nc;              /* current column block [jc, jc+nc) of C */
    size_t ncpad;            /* nc rounded up to NR */
    float *Bp;               /* packed B of the column block: slice at pc*ncpad */
    const float *Apre;       /* A pre-packed (MilesGemmF32Packed.pa): slice at pc*apad */
    size_t apad;
    int gelu;                /* epilogue: C = gelu(C) on each finished task block */
    const float *bias;       /* prologue instead of beta: C = bias (index jc + j) in every row */
    int even_rows;           /* row blocks: the MR-row tiles spread evenly over mb blocks (at most
                                mc rows each) instead of mc-row blocks and a short last one */
    const MilesGemmRowsDone *done; /* epilogue per finished row block (nb == 1 only) */
} GemmPlan;

/* Row blocks of M rows for nt threads: at most MC_MAX rows each; with
 * several threads and at least one block each, a multiple of nt blocks of
 * (nearly) equal MR-row tiles (even_rows).  M = 1024 (B32 T32) as 6 blocks
 * of 192 and 64 rows gave one of 2 threads 576 rows, the other 448.  Same
 * bits: an element's result does not depend on its block. */
static void plan_row_blocks(GemmPlan *pl, int M, int nt) {
    const int MR = pl->isa->mr;
    pl->mc = imin(MC_MAX, round_up(M, MR));
    pl->mb = (M + pl->mc - 1) / pl->mc;
    if (nt > 1 && pl->mb >= nt) {
        const int tiles = (M + MR - 1) / MR;
        pl->mb = imin(tiles, round_up(pl->mb, nt));
        pl->mc = (tiles + pl->mb - 1) / pl->mb * MR; /* the largest block, <= MC_MAX */
        pl->even_rows = 1;
    }
}

/* Pack micro-panel `idx` (slice-major) of the current column block. */
static void plan_pack_b(const GemmPlan *pl, int idx) {
    int NR = pl->isa->nr, npanels = (int)(pl->ncpad / NR);
    int pc = idx / npanels * KC, jr = idx % npanels * NR;
    int kc = imin(KC, pl->K - pc);
    pack_b(pl->isa, pl->Bp + (size_t)pc * pl->ncpad + (size_t)jr * kc, NR, pl->B, pl->ldb, pl->tb,
           pl->jc + jr, imin(NR, pl->nc - jr), pc, kc);
}

/* One micro-tile of a task: rows [ir, ir+m) x columns [jr, jr+n) of the
 * column block, K slice [pc, pc+kc), A and B from wherever the plan keeps
 * them (the same kernel call in either loop order of plan_task).  bt: B's
 * last narrow panel, packed by the caller (B read in place); else NULL. */
static inline void plan_tile(const GemmPlan *pl, int pc, int kc, int i0, int ir, int m, int jr, int n,
                             const float *Ap, float *C, const float *bt) {
    const MilesGemmIsa *isa = pl->isa;
    const int MR = isa->mr, NR = isa->nr;
    const float *b;
    ptrdiff_t b_rs = NR;
    if (pl->pack_b) {
        b = pl->Bp + (size_t)pc * pl->ncpad + (size_t)jr * kc;
    } else if (!bt) { /* B [K,N] read in place */
        b = pl->B + (size_t)pc * pl->ldb + pl->jc + jr;
        b_rs = pl->ldb;
    } else { /* the last, narrow panel: reading NR columns would overrun */
        b = bt;
    }
    const float *a;
    ptrdiff_t a_rs, a_cs;
    if (pl->Apre) { /* MR-row micro-panels, p-major, packed at load */
        a = pl->Apre + (size_t)pc * pl->apad + (size_t)ir * kc, a_rs = 1, a_cs = MR;
    } else if (pl->pack_a) {
        a = Ap + (size_t)(ir - i0) * KC;
        a_rs = pl->ta ? 1 : KC;
        a_cs = pl->ta ? MR : 1;
    } else if (!pl->ta) {
        a = pl->A + (size_t)ir * pl->lda + pc, a_rs = pl->lda, a_cs = 1;
    } else {
        a = pl->A + (size_t)pc * pl->lda + ir, a_rs = 1, a_cs = pl->lda;
    }
    /* W's pre-packed panels times a last panel of at most 16 tokens: the
     * 16-wide tile (the full one would run half its lanes on padding) */
    MilesGemmKernel kern = pl->Apre && n <= 16 && isa->kernel16 ? isa->kernel16 : isa->kernel;
    /* a bias (c_cs == 1: the engine's linear layers) is C's old value in the
     * first slice, read by the kernel itself */
    kern(kc, a, a_rs, a_cs, b, b_rs, C + ir * pl->c_rs + jr * pl->c_cs, pl->c_rs, pl->c_cs, m, n,
         pl->alpha, pc == 0 && pl->beta == 0.0f, pl->bias && pc == 0 ? pl->bias + pl->jc + jr : NULL);
}

/* One task: rows of block ib x columns of chunk jb (within the column block),
 * all of K, on the calling thread.  Ap: MC_MAX x KC scratch; Bt: KC x NR. */
static void plan_task(const GemmPlan *pl, int ib, int jb, float *Ap, float *Bt) {
    const MilesGemmIsa *isa = pl->isa;
    const int MR = isa->mr, NR = isa->nr;
    int i0 = ib * pl->mc, i1 = imin(pl->M, i0 + pl->mc);
    if (pl->even_rows) {
        const long tiles = (pl->M + MR - 1) / MR;
        i0 = (int)(tiles * ib / pl->mb) * MR;
        i1 = imin(pl->M, (int)(tiles * (ib + 1) / pl->mb) * MR);
    }
    int j0 = jb * pl->nchunk, j1 = imin(pl->nc, j0 + pl->nchunk); /* relative to jc */
    if (i0 >= i1 || j0 >= j1) return;
    float *C = pl->C + pl->jc * pl->c_cs;
    /* beta == 0: the first slice writes C without reading it (same bits as
     * zeroing it first: the kernel adds +0) */
    /* with a bias, the kernel takes it as C's old value in the first K
     * slice (below): a pass over the block first sent C out of L1/L2 and
     * back (~2% of an fp32 forward), a copy per micro-tile cost as much in
     * stores to lines not yet in cache */
    if (!pl->bias && pl->beta != 0.0f) scale_block(i0, i1, j0, j1, pl->beta, C, pl->c_rs, pl->c_cs);
    for (int pc = 0; pc < pl->K; pc += KC) {
        int kc = imin(KC, pl->K - pc);
        if (pl->pack_a) pack_a(isa, Ap, MR, pl->A, pl->lda, pl->ta, i0, i1 - i0, pc, kc);
        if (pl->pack_b && !pl->Apre && j1 - j0 > SUB_MIN) {
            /* A wide task: its B slice (kc x the task's columns) is larger
             * than L2, so a B micro-panel kept in L1 over the A panels (the
             * order below) came from L3 and shared L1 with the A stream.
             * Here a sub-chunk of SUB_NC columns (256 KiB of B) stays in L2
             * while each A micro-panel (12 KiB) stays in L1 over it: +5-6%
             * on bert-base's 4096 x 3072 products on Zen 4 (the forward's FFN
             * up, the backward's input gradient through FFN down) */
            for (int jj = j0; jj < j1; jj += SUB_NC)
                for (int ir = i0; ir < i1; ir += MR)
                    for (int jr = jj; jr < imin(j1, jj + SUB_NC); jr += NR)
                        plan_tile(pl, pc, kc, i0, ir, imin(MR, i1 - ir), jr, imin(NR, j1 - jr), Ap, C, NULL);
            continue;
        }
        for (int jr = j0; jr < j1; jr += NR) {
            int n = imin(NR, j1 - jr);
            /* the next B micro-panel, fetched into L2 a slice per tile
             * while this one is in use (it may come from L3 otherwise) */
            const char *bnext = pl->pack_b && jr + NR < j1
                                    ? (const char *)(pl->Bp + (size_t)pc * pl->ncpad + (size_t)(jr + NR) * kc)
                                    : NULL;
            size_t bbytes = (size_t)kc * NR * sizeof(float);
            size_t bstep = bbytes / (size_t)((i1 - i0 + MR - 1) / MR) + 64;
            const float *bt = NULL; /* B in place, its last narrow panel: packed once per slice */
            if (!pl->pack_b && pl->jc + jr + NR > pl->N) {
                pack_b(pl->isa, Bt, NR, pl->B, pl->ldb, 0, pl->jc + jr, n, pc, kc);
                bt = Bt;
            }
            for (int ir = i0; ir < i1; ir += MR) {
                if (bnext) {
                    size_t off = (size_t)((ir - i0) / MR) * bstep;
                    for (size_t o = off; o < off + bstep && o < bbytes; o += 64)
                        __builtin_prefetch(bnext + o, 0, 2);
                }
                plan_tile(pl, pc, kc, i0, ir, imin(MR, i1 - ir), jr, n, Ap, C, bt);
            }
        }
    }
    /* the block is final: GELU while it is still in cache (element-wise,
     * the bits of gelu_forward over the whole C afterwards) */
    if (pl->gelu) {
        if (pl->c_cs == 1)
            miles_gelu_rows(C + i0 * pl->c_rs + j0, pl->c_rs, i1 - i0, j1 - j0);
        else /* C transposed: c_rs == 1, tile rows run along C's rows */
            miles_gelu_rows(C + j0 * pl->c_cs + i0, pl->c_cs, j1 - j0, i1 - i0);
    }
    /* rows [i0, i1) are final in every column when the task spans them all */
    if (pl->done && pl->nb == 1 && pl->nc == pl->N) pl->done->fn(pl->done->ctx, i0, i1);
}

/* `done` over rows [0, M) in 64-row blocks, in parallel: for the paths
 * whose tasks do not own whole rows. */
static void rows_done_after(const MilesGemmRowsDone *done, int M, int N) {
    if (!done) return;
    const int nblk = (M + 63) / 64;
#pragma omp parallel for schedule(static) if ((double)M * N >= MILES_OMP_MIN_WORK && nblk > 1)
    for (int b = 0; b < nblk; b++) done->fn(done->ctx, b * 64, imin(M, b * 64 + 64));
}

/* Same contract without packing or micro-kernel: only when the scratch
 * cannot be allocated (the op API has no status return).  Slow, same bits. */
static void gemm_reference(const GemmPlan *pl) {
    for (int i = 0; i < pl->M; i++) {
        scale_block(i, i + 1, 0, pl->N, pl->beta, pl->C, pl->c_rs, pl->c_cs);
        for (int j = 0; j < pl->N; j++) {
            float *c = pl->C + i * pl->c_rs + j * pl->c_cs;
            for (int pc = 0; pc < pl->K; pc += KC) {
                float acc = 0.0f;
                for (int p = pc; p < imin(pl->K, pc + KC); p++) {
                    float a = pl->ta ? pl->A[(size_t)p * pl->lda + i] : pl->A[(size_t)i * pl->lda + p];
                    float b = pl->tb ? pl->B[(size_t)j * pl->ldb + p] : pl->B[(size_t)p * pl->ldb + j];
                    acc = fmaf(a, b, acc);
                }
                *c = fmaf(pl->alpha, acc, *c);
            }
        }
    }
}

/* C's rows = bias (C = bias, then accumulated with beta 1: linear_forward's
 * seeding), for the paths that cannot take it as the kernel's C input */
static void seed_rows(const float *bias, int M, int N, float *C, int ldc) {
    for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)N * sizeof(float));
}

/* Thread t's share [*b0, *b1) of len items cut in T contiguous shares of
 * whole units (the last unit may be partial), the remainder spread over the
 * first shares: the static splits of gemm_own and gemm_blas. */
static void static_share(int len, int unit, int t, int T, int *b0, int *b1) {
    const int units = (len + unit - 1) / unit, q = units / T, r = units % T;
    *b0 = imin(len, (t * q + imin(t, r)) * unit);
    *b1 = imin(len, *b0 + (q + (t < r)) * unit);
}

/* One plan over all of C: on nt threads, one shared pack of op(B) and
 * dynamic tasks (gemm_own below decides when). */
static void gemm_own_tasks(int parallel, int transA, int transB, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C,
                           int ldc, const float *bias) {
    if (M <= 0 || N <= 0) return;
    if (bias) beta = 1.0f;
    if (K <= 0 || alpha == 0.0f) {
        if (bias) seed_rows(bias, M, N, C, ldc);
        else scale_block(0, M, 0, N, beta, C, (size_t)ldc, 1);
        return;
    }
    GemmPlan pl = {.isa = gemm_isa(), .ta = transA, .tb = transB, .M = M, .N = N, .K = K,
                   .alpha = alpha, .beta = beta, .A = A, .B = B, .lda = lda, .ldb = ldb,
                   .C = C, .c_rs = (size_t)ldc, .c_cs = 1};
    /* Everything below picks only who computes what and where operands are
     * read from, by shape and thread count: none of it changes a bit of C
     * (fma(a, b, c) == fma(b, a, c), so even swapping the operands does not).
     * Few rows times a transposed B (inference: x @ W^T for one short
     * title): packing W would cost as much as the arithmetic, so compute
     * C^T = W @ x^T instead: W's rows are read in place, once, and only the
     * small x is packed. */
    if (transB && M <= SWAP_MAX_M && N > M) {
        if (bias) seed_rows(bias, M, N, C, ldc); /* C^T: the kernel's C input runs along rows */
        bias = NULL;
        pl = (GemmPlan){.isa = pl.isa, .ta = 0, .tb = !transA, .M = N, .N = M, .K = K,
                        .alpha = alpha, .beta = beta, .A = B, .B = A, .lda = ldb, .ldb = lda,
                        .C = C, .c_rs = 1, .c_cs = (size_t)ldc};
        M = pl.M, N = pl.N, transB = pl.tb;
    }
    MilesGemmIsa narrow; /* C at most 16 wide: the ISA's 16-column tile, if it has one */
    if (N <= 16 && pl.isa->kernel16) {
        narrow = isa_narrow(pl.isa, pl.isa->mr16);
        pl.isa = &narrow;
    }
    const int MR = pl.isa->mr, NR = pl.isa->nr;
    /* A in place only for narrow C, and not when more than 12 of its rows
     * (an L1 set's ways) are a multiple of 4 KiB apart: the 24-row tile at
     * K = 3072 ran at half speed in place, the 12-row one at full speed */
    pl.pack_a = N > 64 || (!pl.ta && pl.lda % 1024 == 0 && MR > 12);
    pl.pack_b = transB || M > 2 * MR;
    int nt = 1;
#ifdef _OPENMP
    if (parallel && !omp_in_parallel() && (double)M * N * K >= 4.0 * MILES_OMP_MIN_WORK)
        nt = omp_get_max_threads();
#endif
    plan_row_blocks(&pl, M, nt);
    int ncmax = N;
    if (pl.pack_b && (size_t)K * round_up(N, NR) > BPACK_MAX)
        ncmax = imax_int(NR, (int)(BPACK_MAX / (size_t)K) / NR * NR);
    /* fewer row blocks than 2 per thread: also cut the columns */
    int nb = pl.mb >= 2 * nt ? 1 : (2 * nt + pl.mb - 1) / pl.mb;
    pl.nchunk = round_up((imin(ncmax, N) + nb - 1) / nb, NR);
    if (nt > 1 && pl.mb * ((imin(ncmax, N) + pl.nchunk - 1) / pl.nchunk) < 2) nt = 1;

    size_t bp_n = pl.pack_b ? (size_t)K * round_up(imin(ncmax, N), NR) : 0;
    size_t per_thread = (size_t)pl.mc * KC + (size_t)KC * NR;
    float *buf = scratch_get(bp_n + (size_t)nt * per_thread);
    if (!buf) {
        if (bias) seed_rows(bias, M, N, C, ldc);
        gemm_reference(&pl);
        return;
    }
    pl.Bp = buf;
    pl.bias = bias; /* C's old value in the first K slice, read by the kernel (c_cs == 1 here) */

    for (pl.jc = 0; pl.jc < N; pl.jc += ncmax) {
        pl.nc = imin(ncmax, N - pl.jc);
        pl.ncpad = (size_t)round_up(pl.nc, NR);
        pl.nb = (pl.nc + pl.nchunk - 1) / pl.nchunk;
        int npack = pl.pack_b ? (K + KC - 1) / KC * (int)(pl.ncpad / NR) : 0;
        int ntasks = pl.mb * pl.nb;
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            float *Ap = buf + bp_n + (size_t)tid * per_thread, *Bt = Ap + (size_t)pl.mc * KC;
#pragma omp for schedule(static)
            for (int i = 0; i < npack; i++) plan_pack_b(&pl, i);
            /* implicit barrier: B is packed before any task reads it */
#pragma omp for schedule(dynamic, 1)
            for (int t = 0; t < ntasks; t++) plan_task(&pl, t / pl.nb, t % pl.nb, Ap, Bt);
        }
    }
}

/* The own GEMM.  On several threads a large product is split statically:
 * each thread runs the serial plan on one contiguous share of C (rows when
 * M >= N, else columns: the operand packed again by every thread is then the
 * smaller one), with its own packs in its own core's caches.  On the Zen 4
 * machine that beat one shared pack of op(B) and dynamic tasks by 4-15% on
 * the bert-base T128 training shapes, and it holds its speed when the
 * host's caches are contended, where the shared form lost up to 20% per
 * product and ~10% of a train step (docs/performance-history.md, stop 33).
 * The shared form stays where the larger side has under 256 rows or columns
 * per thread (MiniLM's 384 x 384
 * weight gradient: packing B twice cost more than it saved) and where the
 * threads would get too little work.  Same bits either way: an element's
 * result depends on neither the rows nor the columns computed with it. */
static void gemm_own(int parallel, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc, const float *bias) {
    int nt = 1;
#ifdef _OPENMP
    if (parallel && !omp_in_parallel() && M > 0 && N > 0 && K > 0 &&
        (double)M * N * K >= 4.0 * MILES_OMP_MIN_WORK)
        nt = omp_get_max_threads();
#endif
    const int split_m = M >= N, len = split_m ? M : N;
    const int unit = split_m ? 24 : 32; /* a multiple of every tile's rows / columns */
    if (nt < 2 || len < 256 * nt || alpha == 0.0f) {
        gemm_own_tasks(parallel, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), T = omp_get_num_threads();
#endif
        int b0, b1;
        static_share(len, unit, t, T, &b0, &b1);
        if (b1 > b0) {
            if (split_m)
                gemm_own_tasks(0, transA, transB, b1 - b0, N, K, alpha,
                               transA ? A + b0 : A + (size_t)b0 * lda, lda, B, ldb, beta,
                               C + (size_t)b0 * ldc, ldc, bias);
            else
                gemm_own_tasks(0, transA, transB, M, b1 - b0, K, alpha, A, lda,
                               transB ? B + (size_t)b0 * ldb : B + b0, ldb, beta, C + b0, ldc,
                               bias ? bias + b0 : NULL);
        }
    }
}

/* ------------------------------------------------------- tiny products */

void miles_gemm_tiny(int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const MilesGemmIsa *isa = gemm_isa();
    MilesGemmIsa narrow; /* the same tile choice as gemm_own: same bits either way */
    if (N <= 16 && isa->kernel16) {
        narrow = isa_narrow(isa, isa->mr16);
        isa = &narrow;
    }
    const int MR = isa->mr, NR = isa->nr;
    float *Bp = K > 0 && K <= KC && alpha != 0.0f ? scratch_get((size_t)K * round_up(N, NR)) : NULL;
    if (!Bp) {
        miles_gemm_serial(0, transB, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
        return;
    }
    for (int jr = 0; jr < N; jr += NR) pack_b(isa, Bp + (size_t)jr * K, NR, B, ldb, transB, jr, imin(NR, N - jr), 0, K);
    for (int jr = 0; jr < N; jr += NR)
        for (int ir = 0; ir < M; ir += MR)
            isa->kernel(K, A + (size_t)ir * lda, lda, 1, Bp + (size_t)jr * K, NR, C + (size_t)ir * ldc + jr,
                        ldc, 1, imin(MR, M - ir), imin(NR, N - jr), alpha, 1, NULL);
}

/* ------------------------------------------------------ pre-packed W */

MilesGemmF32Packed *miles_gemm_f32_pack(const float *W, int N, int K, int ldw) {
    if (N <= 0 || K <= 0) return NULL;
    MilesGemmF32Packed *pw = calloc(1, sizeof *pw);
    if (!pw) return NULL;
    const MilesGemmIsa *isa = gemm_isa();
    const int NR = isa->nr;
    *pw = (MilesGemmF32Packed){.isa = isa, .N = N, .K = K, .npad = round_up(N, NR)};
    void *p = NULL;
    if (posix_memalign(&p, 64, (size_t)K * pw->npad * sizeof(float)) != 0) {
        free(pw);
        return NULL;
    }
    pw->p = p;
    const int MR = isa->mr;
    pw->apad = round_up(N, MR);
    if (posix_memalign(&p, 64, (size_t)K * pw->apad * sizeof(float)) != 0) {
        free(pw->p);
        free(pw);
        return NULL;
    }
    pw->pa = p;
    const int npanels = pw->npad / NR, nslices = (K + KC - 1) / KC, napanels = pw->apad / MR;
#pragma omp parallel for schedule(static) if ((double)N * K >= 4.0 * MILES_OMP_MIN_WORK)
    for (int idx = 0; idx < nslices * npanels; idx++) {
        int pc = idx / npanels * KC, jr = idx % npanels * NR, kc = imin(KC, K - pc);
        pack_b(isa, pw->p + (size_t)pc * pw->npad + (size_t)jr * kc, NR, W, ldw, 1, jr, imin(NR, N - jr),
               pc, kc);
    }
    /* A panels: W's rows r*MR.. as a p-major micro-panel (the transposed
     * packing of pack_a); rows past N are zero */
#pragma omp parallel for schedule(static) if ((double)N * K >= 4.0 * MILES_OMP_MIN_WORK)
    for (int idx = 0; idx < nslices * napanels; idx++) {
        int pc = idx / napanels * KC, ir = idx % napanels * MR, kc = imin(KC, K - pc);
        float *dst = pw->pa + (size_t)pc * pw->apad + (size_t)ir * kc;
        for (int i = 0; i < MR; i++)
            for (int q = 0; q < kc; q++)
                dst[(size_t)q * MR + i] = ir + i < N ? W[(size_t)(ir + i) * ldw + pc + q] : 0.0f;
    }
    return pw;
}

void miles_gemm_f32_packed_free(MilesGemmF32Packed *pw) {
    if (!pw) return;
    free(pw->p);
    free(pw->pa);
    free(pw);
}

/* No scratch: the contract element by element (same bits, slow), for both
 * packed paths: C = bias rows (or beta * C), then per K slice C += the
 * slice's fma chain over W's B panels (an fma's product is commutative, so
 * the few-rows path's W @ x^T order gives these bits too), then GELU. */
static void packed_slow(const MilesGemmF32Packed *pw, int M, const float *A, int lda, float beta,
                        const float *bias, float *C, int ldc, int gelu) {
    const int N = pw->N, K = pw->K, NR = pw->isa->nr;
    if (!bias) scale_block(0, M, 0, N, beta, C, (size_t)ldc, 1);
    else
        for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)N * sizeof(float));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            for (int pc = 0; pc < K; pc += KC) {
                const int kc = imin(KC, K - pc);
                const float *b = pw->p + (size_t)pc * pw->npad + (size_t)(j / NR * NR) * kc + j % NR;
                float acc = 0.0f;
                for (int p = 0; p < kc; p++) acc = fmaf(A[(size_t)i * lda + pc + p], b[(size_t)p * NR], acc);
                C[(size_t)i * ldc + j] += acc; /* fma(1, acc, C) is acc + C rounded once */
            }
    if (gelu) miles_gelu_rows(C, (size_t)ldc, M, N);
}

/* One row block of W (rows [i0, i1) = output columns) of the few-rows
 * product, computed into Ct = that block of C^T (row stride ld = the token
 * panel width) and transposed into C once at the end.  Writing C^T straight
 * into the row-major C made every tile gather its columns once per K slice
 * (2 slices at K = 384, 6 at 1536); the staged tile updates are plain
 * vector loads and stores.  Same bits: C = bias (or beta * C), then each
 * slice's fma(alpha, acc, C), then GELU, per element, only in another
 * place. */
static void few_rows_task(const GemmPlan *pl, int ib, int M, const float *bias, float *C, int ldc,
                          float *Ct, float *Bt) {
    const int i0 = ib * pl->mc, i1 = imin(pl->M, i0 + pl->mc);
    if (i0 >= i1) return;
    const size_t ld = pl->ncpad;
    GemmPlan my = *pl;
    my.C = Ct - (size_t)i0 * ld; /* row i of the block at Ct + (i - i0) * ld */
    my.c_rs = ld, my.c_cs = 1, my.bias = NULL, my.gelu = 0;
    if (bias) { /* (beta is 1 with a bias: packed_run) */
        for (int i = i0; i < i1; i++)
            for (int j = 0; j < M; j++) Ct[(size_t)(i - i0) * ld + j] = bias[i];
    } else if (pl->beta != 0.0f) { /* plan_task scales the staged copy */
        for (int i = i0; i < i1; i++)
            for (int j = 0; j < M; j++) Ct[(size_t)(i - i0) * ld + j] = C[(size_t)j * ldc + i];
    }
    plan_task(&my, ib, 0, NULL, Bt);
    /* C[j, i0:i1] = Ct[:, j]; the portable loop takes 8 output columns at
     * a time: the writes to C in runs, the reads of Ct in a few lines */
    if (pl->isa->transpose) {
        pl->isa->transpose(Ct, (ptrdiff_t)ld, i1 - i0, M, C + i0, ldc);
    } else {
        for (int ic = i0; ic < i1; ic += 8) {
            const int ie = imin(i1, ic + 8);
            for (int j = 0; j < M; j++)
                for (int i = ic; i < ie; i++) C[(size_t)j * ldc + i] = Ct[(size_t)(i - i0) * ld + j];
        }
    }
    /* GELU on C's runs of i1 - i0 (long vectors; a C^T row is only M) */
    if (pl->gelu) miles_gelu_rows(C + i0, (size_t)ldc, M, i1 - i0);
}

/* Few rows (M <= SWAP_MAX_M): C^T = W @ x^T on W's pre-packed A panels,
 * x^T packed per call as the B panel (small); the bits of the same contract. */
static void packed_few_rows(const MilesGemmF32Packed *pw, int M, const float *x, int lda, float beta,
                            const float *bias, float *C, int ldc, int gelu) {
    const int K = pw->K;
    GemmPlan pl = {.isa = pw->isa, .ta = 0, .tb = 1, .M = pw->N, .N = M, .K = K, .alpha = 1.0f,
                   .beta = beta, .A = NULL, .B = x, .lda = K, .ldb = lda, .C = NULL,
                   .pack_a = 0, .pack_b = 1, .Apre = pw->pa, .apad = (size_t)pw->apad, .gelu = gelu};
    MilesGemmIsa narrow; /* at most 16 tokens: the 16-wide tile on the same W panels, x^T
                            packed 16 wide (a 32-wide panel would fill L1 with padding) */
    if (M <= 16 && pl.isa->kernel16) {
        narrow = isa_narrow(pl.isa, pl.isa->mr);
        pl.isa = &narrow;
    }
    const int MR = pl.isa->mr, NR = pl.isa->nr;
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)M * pw->N * K >= 4.0 * MILES_OMP_MIN_WORK) nt = omp_get_max_threads();
#endif
    /* row blocks of W: at least 4 per thread (W streams once; the x panel
     * stays in L1), at most MC_MAX rows */
    pl.mc = imin(MC_MAX, imax_int(MR, round_up((pl.M + 4 * nt - 1) / (4 * nt), MR)));
    pl.mb = (pl.M + pl.mc - 1) / pl.mc;
    pl.nchunk = round_up(M, NR);
    pl.nb = 1;
    pl.jc = 0;
    pl.nc = M;
    pl.ncpad = (size_t)round_up(M, NR);
    if (nt > 1 && pl.mb < 2) nt = 1;
    /* every thread packs all of x^T for itself (K x 32 floats: cheaper than
     * the barrier a shared copy needs), so the region's only sync is its end;
     * + the staged C^T block (mc x ncpad) */
    const size_t bp_n = (size_t)K * pl.ncpad, per_thread = bp_n + (size_t)KC * NR + (size_t)pl.mc * pl.ncpad;
    float *buf = scratch_get((size_t)nt * per_thread);
    if (!buf) {
        packed_slow(pw, M, x, lda, beta, bias, C, ldc, gelu);
        return;
    }
    const int npack = (K + KC - 1) / KC * (int)(pl.ncpad / NR);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        GemmPlan my = pl;
        my.Bp = buf + (size_t)tid * per_thread;
        float *Bt = my.Bp + bp_n, *Ct = Bt + (size_t)KC * NR;
        for (int i = 0; i < npack; i++) plan_pack_b(&my, i);
#pragma omp for schedule(dynamic, 1) nowait
        for (int t = 0; t < pl.mb; t++) few_rows_task(&my, t, M, bias, C, ldc, Ct, Bt);
    }
}

/* Whether the few-rows path's token panels (NR wide, a last one of at most
 * 16 in the 16-wide tile) are at least 85% tokens: past that, padding costs
 * more than the row path's re-reads of W's panels.  Zen 4, 1 thread, W from
 * memory, GFLOP/s few-rows / rows: M 20 65 / 71, 28 92 / 80, 36 79 / 86,
 * 40 88 / 88, 48 103 / 91, 56 93 / 96, 64 106 / 98 (bench_sgemm --set
 * packed).  At most 16 tokens always take it (one 16-wide panel; batch-1
 * latency).  Either path gives the same bits. */
static int few_rows_fills(const MilesGemmIsa *isa, int M) {
    const int NR = isa->nr, rem = M % NR;
    if (M <= 16 || !isa->kernel16) return 1;
    const int cols = M - rem + (rem == 0 ? 0 : rem <= 16 ? 16 : NR);
    return 100 * M >= 85 * cols;
}

static void packed_run(const MilesGemmF32Packed *pw, int M, const float *A, int lda, float beta,
                       const float *bias, float *C, int ldc, int gelu, const MilesGemmRowsDone *done) {
    if (M <= 0) return;
    if (bias) beta = 1.0f; /* C = bias, then accumulated as with beta 1 */
    if (M <= SWAP_MAX_M && pw->N > M && few_rows_fills(pw->isa, M)) {
        packed_few_rows(pw, M, A, lda, beta, bias, C, ldc, gelu);
        rows_done_after(done, M, pw->N);
        return;
    }
    const int N = pw->N, K = pw->K;
    /* gemm_own's plan for (0, 1, M, N, K) with B already packed: the same
     * kernel, K slices and order, so the same bits */
    GemmPlan pl = {.isa = pw->isa, .ta = 0, .tb = 1, .M = M, .N = N, .K = K, .alpha = 1.0f,
                   .beta = beta, .A = A, .B = NULL, .lda = lda, .ldb = K, .C = C,
                   .c_rs = (size_t)ldc, .c_cs = 1, .pack_b = 1, .jc = 0, .nc = N,
                   .ncpad = (size_t)pw->npad, .Bp = pw->p, .gelu = gelu, .bias = bias};
    const int MR = pl.isa->mr, NR = pl.isa->nr;
    pl.pack_a = N > 64 || (lda % 1024 == 0 && MR > 12);
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)M * N * K >= 4.0 * MILES_OMP_MIN_WORK) nt = omp_get_max_threads();
#endif
    plan_row_blocks(&pl, M, nt);
    int nb = pl.mb >= 2 * nt ? 1 : (2 * nt + pl.mb - 1) / pl.mb;
    pl.nchunk = round_up((N + nb - 1) / nb, NR);
    pl.nb = (N + pl.nchunk - 1) / pl.nchunk;
    if (nt > 1 && pl.mb * pl.nb < 2) nt = 1;
    const size_t per_thread = (size_t)pl.mc * KC + (size_t)KC * NR;
    float *buf = scratch_get((size_t)nt * per_thread);
    if (!buf) {
        packed_slow(pw, M, A, lda, beta, bias, C, ldc, gelu);
        rows_done_after(done, M, N);
        return;
    }
    pl.done = done;
    const int ntasks = pl.mb * pl.nb;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *Ap = buf + (size_t)tid * per_thread, *Bt = Ap + (size_t)pl.mc * KC;
        /* static: each thread a contiguous run of (nearly) equal blocks, the
         * same rows in every layer's GEMMs (their A rows, written by this
         * thread's epilogue, may still be in its L2); dynamic hand-out of
         * the 6 blocks of B32 T32 left one thread idle ~2% longer (libgomp
         * spin 6.5 -> 4% of a 2-thread forward's samples) */
#pragma omp for schedule(static) nowait
        for (int t = 0; t < ntasks; t++) plan_task(&pl, t / pl.nb, t % pl.nb, Ap, Bt);
    }
    if (pl.nb > 1) rows_done_after(done, M, N);
}

void miles_gemm_f32_packed(const MilesGemmF32Packed *pw, int M, const float *A, int lda, float beta,
                           float *C, int ldc, int gelu) {
    packed_run(pw, M, A, lda, beta, NULL, C, ldc, gelu, NULL);
}

void miles_gemm_f32_packed_bias(const MilesGemmF32Packed *pw, int M, const float *A, int lda, const float *bias,
                                float *C, int ldc, int gelu) {
    packed_run(pw, M, A, lda, 1.0f, bias, C, ldc, gelu, NULL);
}

void miles_gemm_f32_packed_bias_rows(const MilesGemmF32Packed *pw, int M, const float *A, int lda,
                                     const float *bias, float *C, int ldc, int gelu, const MilesGemmRowsDone *done) {
    packed_run(pw, M, A, lda, 1.0f, bias, C, ldc, gelu, done);
}

void miles_gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc) {
    gemm_own(0, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void miles_gemm_bias(int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     const float *bias, float beta, float *C, int ldc) {
    gemm_own(1, 0, transB, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, bias);
}

/* --------------------------------------------------------- BLAS (opt-in) */

#ifdef MILES_USE_BLAS
static void gemm_blas(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    if (nt < 2 || (double)M * N * K < 4e6) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                    ldc);
        return;
    }
    /* static split by shape and thread count: rows when tall, else columns */
    int split_m = M >= 64 * nt;
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
        int t = 0, T = 1; /* NO_OMP builds (make fuzz): nt is 1 and this is never reached */
#endif
        int b0, b1;
        static_share(split_m ? M : N, 1, t, T, &b0, &b1);
        if (b1 > b0) {
            const float *a = A, *b = B;
            float *c = C;
            int m = M, n = N;
            if (split_m) {
                a = transA ? A + b0 : A + (size_t)b0 * lda;
                c = C + (size_t)b0 * ldc;
                m = b1 - b0;
            } else {
                b = transB ? B + (size_t)b0 * ldb : B + b0;
                c = C + b0;
                n = b1 - b0;
            }
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                        transB ? CblasTrans : CblasNoTrans, m, n, K, alpha, a, lda, b, ldb,
                        beta, c, ldc);
        }
    }
}
#endif

void miles_gemm(int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta,
                float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    gemm_isa();
#ifdef MILES_USE_BLAS
    /* K == 0 is handled by the own path (it only scales C): CBLAS would reject
     * the lda/ldb that are natural there.  Inside an OpenMP parallel region
     * the serial own GEMM runs (no nested thread pools). */
    int in_par = 0;
#ifdef _OPENMP
    in_par = omp_in_parallel();
#endif
    if (g_use_blas && K > 0 && !in_par) {
        gemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    gemm_own(1, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}
