/*
 * ops_internal.h — private helpers shared by the op sources (gemm.c,
 * ops*.c, dropout.c).  Not part of the op specification in ops.h and not
 * mirrored by the CUDA backend.
 */
#ifndef MILES_OPS_INTERNAL_H
#define MILES_OPS_INTERNAL_H

#include "ops.h"

/* Built without OpenMP (make NO_OMP=1) the "#pragma omp" lines are meant to
 * be ignored: keep -Wall quiet about them. */
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

/* The own (non-BLAS) GEMM, same contract as miles_gemm, but run on the
 * calling thread only.  Safe to call from inside an OpenMP parallel region
 * (attention calls it once per (batch, head)); calling CBLAS from several
 * OpenMP threads at once would oversubscribe OpenBLAS's own thread pool. */
void miles_gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc);

/* The own GEMM on the OpenMP threads: C = A @ op(B) + beta * C, or with a
 * bias (not NULL) C's rows = bias then accumulated (beta ignored): the bits
 * of seeding C with the bias and calling miles_gemm with beta 1.  The bias
 * is the kernel's C input in the first K slice (no pass over C first). */
void miles_gemm_bias(int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     const float *bias, float beta, float *C, int ldc);

/* The own GEMM's micro-kernel ISA ("avx512", "avx2", "generic"), chosen once
 * by CPU features (MILES_GEMM_ISA=name picks a lower one).  All give the same
 * bits (gemm_internal.h).  force_isa: tests and benchmarks only, not
 * thread-safe; returns -1 when the name is unknown or the CPU lacks it. */
const char *miles_gemm_isa_name(void);
int miles_gemm_force_isa(const char *name);
int miles_gemm_isa_available(const char *name);
/* Tests: on != 0 makes every GEMM find no packing scratch, as when that
 * allocation fails, so the plain-loop fallbacks run (they keep the bits);
 * not thread-safe, set it between calls. */
void miles_gemm_scratch_fail(int on);

/* gelu_forward on the calling thread, no OpenMP (GEMM epilogues); same bits. */
void miles_gelu_range(float *out, const float *inp, size_t n);
/* out[i] = miles_gelu_fast_elem(inp[i]) on the calling thread (the bf16/int8
 * GEMM epilogue); the same bits on every CPU; out may equal inp. */
void miles_gelu_fast_range(float *out, const float *inp, size_t n);
/* The same in place over a block of C: c[i*rs + j], i < rows, j < cols
 * (rows of cols contiguous floats).  One dispatch per block: the epilogues
 * of a GEMM task called the row functions above once per row of 256
 * columns (pthread_once and the test per call showed in perf as ~20% of the
 * GELU's own time; interleaved timings did not resolve the difference). */
void miles_gelu_rows(float *c, size_t rs, int rows, int cols);
void miles_gelu_fast_rows(float *c, size_t rs, int rows, int cols);

/* erf_forward's and gelu_forward's per-thread loops for AVX-512F
 * (ops_avx512.c): out[i] = miles_erf(inp[i]) or gelu_elem(inp[i]) (ops.c),
 * the same bits for every input float; out may equal inp.  The getters
 * return NULL where the compiler could not build them; call the functions
 * only on a CPU with AVX-512F. */
typedef void (*MilesEltFn)(float *out, const float *inp, size_t n);
MilesEltFn miles_erf_avx512(void);
MilesEltFn miles_gelu_avx512(void);
/* the same two for AVX2 + FMA (ops_avx2.c: the pieces a vector needs) */
MilesEltFn miles_erf_avx2(void);
MilesEltFn miles_gelu_avx2(void);
MilesEltFn miles_gelu_fast_avx2(void);
/* miles_gelu_fast_range's loop for AVX-512F, the bits of miles_gelu_fast_elem */
MilesEltFn miles_gelu_fast_avx512(void);
/* row[j] = softmax_exp(row[j] - mx), j < n, in place: the attention
 * softmax's exp loop for AVX2 + FMA CPUs without AVX-512F (ops_avx2.c).
 * miles_softmax_exp_fn() returns it where the CPU should run it, else NULL:
 * the C loop (its AVX-512 clone vectorizes; the AVX2 one does not, its
 * selects being possibly trapping compares under -ftrapping-math). */
typedef void (*MilesExpShiftFn)(float *row, int n, float mx);
MilesExpShiftFn miles_softmax_exp_avx2(void);
MilesExpShiftFn miles_softmax_exp_fn(void);
/* mean[g], rstd[g] of the 16 rows x + g*C, g < 16, with ln_stats' bits
 * (ops.c: sequential float sums per row); NULL when not built in */
typedef void (*MilesLnStatsFn)(const float *x, int C, float eps, float *mean, float *rstd);
MilesLnStatsFn miles_ln_stats16_avx512(void);

/* Dropout over the slice [base, base+n) of a larger tensor, on the calling
 * thread (see "RNG CONTRACT" in dropout.c): out[i] = keep(base+i) ? in[i]*s
 * : 0, or out[i] += that when accumulate == 1, or out[i] = 0 + that when
 * accumulate == 2 (the += on a zeroed out, bit for bit).  in == out is allowed. */
void miles_dropout_range(float *out, const float *in, size_t n, uint64_t base,
                         const MilesDropoutKey *key, int accumulate);
/* For tests: run the Philox batch generator `which` (0 the portable loop,
 * 1 AVX2, 2 AVX-512) in miles_dropout_range(2) instead of the widest one the
 * CPU has, so one machine checks every implementation it can run against
 * the contract; -1 restores the CPU's choice.  Returns 0, or -1 where the
 * CPU (or the build) lacks it.  Not thread-safe: set it between calls. */
int miles_dropout_force_philox(int which);
/* Two tensors under the same mask (one draw): out = dropout(in) and out2 =
 * dropout(in2), element i of each at flat index base + i, accumulate 0;
 * each the bits of its own miles_dropout_range call (in place allowed). */
void miles_dropout_range2(float *out, const float *in, float *out2, const float *in2, size_t n,
                          uint64_t base, const MilesDropoutKey *key);

/* Hot loops outside the GEMM are compiled for the portable baseline
 * (x86-64-v2) plus AVX2 and AVX-512 clones, one picked at load time by cpuid
 * (GCC target_clones), since the default build has no -march=native.  Only
 * for code whose results cannot depend on the vector ISA: element-wise
 * arithmetic and integer hashing (-std=c11 keeps FP contraction off, and no
 * reduction is reordered without -ffast-math). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MILES_HOT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MILES_HOT_CLONES
#endif
/* Clones for code with explicit fmaf() (miles_erf): "avx2" alone lacks FMA,
 * where fmaf would be a libm call per element; x86-64-v3 = AVX2 + FMA,
 * x86-64-v4 = AVX-512 F/BW/CD/DQ/VL.  Same bits in each (fmaf is exact). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MILES_FMA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MILES_FMA_CLONES
#endif

/* Below this many multiply-adds an op runs on one thread: forking an OpenMP
 * team costs a few microseconds, more than tiny ops take. */
#define MILES_OMP_MIN_WORK 32768

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for the attention softmax (ops_attention.c and the inference engine
 * model_infer.c, which must give the same bits), where x = score - max <= 0 (or -inf for a padded
 * key).  Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and the Cephes
 * expf polynomial; n is rounded with the 1.5*2^23 shifter (no float->int
 * conversion, which kept GCC from vectorizing the loop).  Measured max
 * relative error vs double exp over [-87, 0]: 8.3e-8 (libm expf is ~6e-8).
 * Plain arithmetic the compiler vectorizes, where a libm expf call per
 * element was the largest cost of the forward (T*T per head).  Results
 * below exp(-87) (< 1.7e-38, the subnormal range) are flushed to 0. */
static inline float softmax_exp(float x) {
    /* NaN propagates as expf's does (it used to become 0, hiding a NaN score,
     * after shifting a negative int: undefined behaviour) */
    if (x != x) return x;
    const float LOG2E = 1.44269504088896341f, SHIFTER = 12582912.0f; /* 1.5 * 2^23 */
    const float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    float xc = x < -87.0f ? -87.0f : x;
    float kf = xc * LOG2E + SHIFTER; /* round(x / ln2) in the low mantissa bits */
    int32_t ki;
    memcpy(&ki, &kf, sizeof ki);
    ki -= 0x4B400000; /* bits of SHIFTER: ki = n, in [-126, 0] */
    float n = kf - SHIFTER;
    float r = xc - n * LN2_HI - n * LN2_LO;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)(ki + 127) << 23; /* 2^n; unsigned: defined for x > 0 too */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x >= -87.0f ? y * scale : 0.0f;
}

/* row[j] = softmax_exp(row[j] - mx), j < n, in place: through exp_vec
 * (miles_softmax_exp_fn(), the AVX2 loop) where set, else the C loop.
 * Always inline: the C loop vectorizes inside a caller's AVX-512 clone. */
static inline __attribute__((always_inline)) void softmax_exp_shift(float *row, int n, float mx,
                                                                    MilesExpShiftFn exp_vec) {
    if (exp_vec) exp_vec(row, n, mx);
    else
        for (int j = 0; j < n; j++) row[j] = softmax_exp(row[j] - mx);
}

/* exp(x) for miles_erf's tail, x = log erfc in [-17.7, -3.2]: softmax_exp's
 * reduction and polynomial without its clamp and NaN test (not needed in
 * that range; a NaN x still gives NaN through the arithmetic), with fmaf. */
static inline float miles_erf_exp(float x) {
    const float LOG2E = 1.44269504088896341f, SHIFTER = 12582912.0f; /* 1.5 * 2^23 */
    const float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    float kf = fmaf(x, LOG2E, SHIFTER); /* round(x / ln2) in the low mantissa bits */
    uint32_t ki; /* unsigned: a NaN x makes it garbage, and the shift below must stay defined */
    memcpy(&ki, &kf, sizeof ki);
    float n = kf - SHIFTER;
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    float y = fmaf(p, r * r, r) + 1.0f;
    uint32_t bits = (ki - 0x4B400000u + 127u) << 23; /* 2^n, n in [-26, -4] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

/* erf(x) for the vectorized GELU pair (ops.c: the reference GELU, its
 * backward and the fused GEMM epilogues).  libm erff is a
 * call per element that no loop vectorizes (~16% of an fp32 inference
 * forward); this is plain
 * branch-free float arithmetic the compiler vectorizes, all three pieces
 * computed and one selected:
 *   |x| < 0.8:        x + x P(x^2)            (P degree 5)
 *   0.8 <= |x| < 1.3: erf(1) + M(|x| - 1)     (M degree 7)
 *   |x| >= 1.3:       1 - exp(Q(min(|x|, 4)))  (Q ~ log erfc, degree 8;
 *                     exp: miles_erf_exp; past 4 the result rounds to 1)
 * Coefficients: weighted least squares + Lawson iterations to near-minimax,
 * rounded to float (fit in double against scipy's erf/erfc).  Max error vs
 * double erf over every float tested by tests/test_infer.c
 * (test_erf_accuracy): 0.90 ulp (glibc erff: ~1 ulp); NaN propagates,
 * +-inf -> +-1, -0 -> -0, subnormals as x * 2/sqrt(pi) rounded.
 * Same bits everywhere: no FMA contraction under -std=c11 and no reduction;
 * the fused multiply-adds are explicit fmaf() (correctly rounded by C99:
 * one vfmadd in the FMA clones of MILES_FMA_CLONES, libm's fmaf in the
 * baseline one), so every ISA clone, vector or scalar, and any thread count
 * give the same bits.  The fmaf halve the dependency chains, which bound
 * the loop (1.35 -> 0.75 ns per GELU element on AVX-512).  Q keeps separate
 * multiply and add: its fmaf version (refit-free) reached 0.98 ulp. */
static inline float miles_erf(float x) {
    const float t = x < 0.0f ? -x : x, s = x * x;
    float pa = -6.535350112e-04f;
    pa = fmaf(pa, s, 5.085150711e-03f);
    pa = fmaf(pa, s, -2.682081982e-02f);
    pa = fmaf(pa, s, 1.128311306e-01f);
    pa = fmaf(pa, s, -3.761260211e-01f);
    pa = fmaf(pa, s, 1.283791661e-01f);
    const float ra = fmaf(x, pa, x);
    const float u = t - 1.0f;
    float pm = 1.289473195e-02f;
    pm = fmaf(pm, u, 4.378802143e-03f);
    pm = fmaf(pm, u, -6.902019680e-02f);
    pm = fmaf(pm, u, 6.918602437e-02f);
    pm = fmaf(pm, u, 1.383655518e-01f);
    pm = fmaf(pm, u, -4.151074588e-01f);
    pm = fmaf(pm, u, 4.151075184e-01f);
    pm = fmaf(pm, u, 1.344769096e-08f);
    const float rm = 8.427007794e-01f + pm;
    const float tb = t > 4.0f ? 4.0f : (t < 1.3f ? 1.3f : t); /* NaN stays NaN */
    float pb = 1.645554221e-06f;
    pb = pb * tb - 4.663247091e-05f;
    pb = pb * tb + 6.041497109e-04f;
    pb = pb * tb - 4.802455660e-03f;
    pb = pb * tb + 2.656028047e-02f;
    pb = pb * tb - 1.103477255e-01f;
    pb = pb * tb - 6.315224767e-01f;
    pb = pb * tb - 1.130421042e+00f;
    pb = pb * tb + 3.689013829e-04f;
    const float rb = 1.0f - miles_erf_exp(pb);
    float r = t < 1.3f ? rm : rb;
    r = x < 0.0f ? -r : r;
    return t < 0.8f ? ra : r;
}

/* The bf16/int8 engine's GELU, 0.5 x (1 + erf(x / sqrt 2)), with erf as the
 * odd rational z P(z^2) / Q(z^2) on z clamped to [-4, 4] (P degree 6, Q
 * degree 4: the float erf Eigen and XLA used), and +-1 exactly from
 * |z| >= 3.92 on (where float erf rounds to +-1; the rational is 4e-7
 * short of it, which made GELU(-1e4) -2e-3 instead of -0).  ~24 vector
 * operations per 16 elements and no per-element branch: the exact GELU
 * (miles_erf, three pieces) costs 0.6-1.1 ns per element on Zen 4 even
 * with its piece sorting, ~9% of an int8 BERT-base forward, where the
 * result is then quantized to 8 bits.  Error (tests/test_infer.c,
 * test_gelu_fast): |err| <= 3e-7 (1 + |x|) against the exact GELU, twice
 * miles_erf's GELU; NaN propagates, +inf -> +inf, -inf -> NaN as the exact
 * one.  Explicit fmaf and a true division: the same bits in every clone and
 * in the AVX-512 loop (ops_avx512.c). */
static inline float miles_gelu_fast_elem(float x) {
    const float z = x * 0.70710678118654752440f;
    const float c = z < -4.0f ? -4.0f : (z > 4.0f ? 4.0f : z); /* NaN stays NaN */
    const float s = c * c;
    float p = -2.72614225801306e-10f;
    p = fmaf(p, s, 2.77068142495902e-08f);
    p = fmaf(p, s, -2.10102402082508e-06f);
    p = fmaf(p, s, -5.69250639462346e-05f);
    p = fmaf(p, s, -7.34990630326855e-04f);
    p = fmaf(p, s, -2.95459980854025e-03f);
    p = fmaf(p, s, -1.60960333262415e-02f);
    float q = -1.45660718464996e-05f;
    q = fmaf(q, s, -2.13374055278905e-04f);
    q = fmaf(q, s, -1.68282697438203e-03f);
    q = fmaf(q, s, -7.37332916720468e-03f);
    q = fmaf(q, s, -1.42647390514189e-02f);
    float e = c * p / q;
    e = z >= 3.92f ? 1.0f : (z <= -3.92f ? -1.0f : e);
    return 0.5f * x * (1.0f + e);
}

#endif
