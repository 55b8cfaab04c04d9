/*
 * gemm_lowp.c — bf16 and int8 inference GEMM with pre-packed weights
 * (gemm_lowp.h): conversion, dynamic per-row quantization of x, the packed
 * layout, CPU-feature checks and the threaded loop over micro-tiles; the
 * kernels are in gemm_lowp_avx512.c / gemm_lowp_avxvnni.c / gemm_lowp_avx2.c.
 *
 * Packed W: 16-column groups; in group g, step q (2 bf16 or 4 int8 values of
 * K) of column g*16 + l is the 32-bit word w[(g*kq + q)*16 + l], so one
 * 64-byte load feeds one vdpbf16ps / vpdpbusd for 16 columns.  N is padded
 * to a multiple of the kernel's NR and of 16 with zero columns, K to a multiple of the step
 * (x's padding is zero, so those terms add exact zeros).
 *
 * x is converted per call into rows of kq words, kq * xw for a kernel that
 * takes x widened (gemm_lowp.h).
 *
 * int8: vpdpbusd multiplies unsigned by signed bytes.  W is stored unsigned,
 * u = w_q + 128, and x signed, so x's word can be the instruction's memory
 * (broadcast) operand; the 128 * sum_k x_q it adds is subtracted per row
 * (cx[i], exact int32 arithmetic, computed while quantizing the row).
 */
#include "gemm_lowp.h"
#include "ops_internal.h"
#include "internal.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct MilesPackedWeights {
    MilesGemmPrecision prec;
    const MilesLowpIsa *isa;
    int N, K, kq, npad;
    uint32_t *w;   /* npad/16 groups x kq x 16 words */
    float *sw;     /* int8: per-column scale (npad) */
};

#define LOWP_MC 96  /* rows per task (a multiple of every kernel's MR: 12, 8, 6) */
#define LOWP_NC 256 /* columns per task (rounded down to the kernel's NR) */

static int cpu_has(const char *f) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!strcmp(f, "avx512bf16")) return __builtin_cpu_supports("avx512bf16");
    if (!strcmp(f, "avx512vnni")) return __builtin_cpu_supports("avx512vnni");
    if (!strcmp(f, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#if defined(__clang__) && __clang_major__ < 16
    if (!strcmp(f, "avxvnni")) return 0; /* clang < 16 (make fuzz) has no "avxvnni" here: the VNNI-256 path unused */
#else
    if (!strcmp(f, "avxvnni")) return __builtin_cpu_supports("avxvnni") && __builtin_cpu_supports("avx2");
#endif
#endif
    (void)f;
    return 0;
}

static int g_int8_level; /* MILES_LOWP_INT8_*: tests skip the better kernels */

int miles_gemm_lowp_prefer_int8(int level) {
    int prev = g_int8_level;
    g_int8_level = level;
    return prev;
}

static const MilesLowpIsa *lowp_isa(MilesGemmPrecision prec, const char **why) {
    const MilesLowpIsa *isa = NULL;
    const char *w = NULL;
    if (prec == MILES_GEMM_BF16) {
        if (cpu_has("avx512bf16")) isa = miles_lowp_isa_bf16_avx512();
        w = "bf16 inference needs a CPU with AVX512_BF16 (vdpbf16ps: AMD Zen 4 or later, "
            "Intel Cooper Lake / Sapphire Rapids or later); this one lacks it";
    } else if (prec == MILES_GEMM_INT8) {
        if (cpu_has("avx512vnni") && g_int8_level < MILES_LOWP_INT8_AVXVNNI)
            isa = miles_lowp_isa_int8_avx512();
        if (!isa && cpu_has("avxvnni") && g_int8_level < MILES_LOWP_INT8_AVX2)
            isa = miles_lowp_isa_int8_avxvnni();
        if (!isa && cpu_has("avx2")) isa = miles_lowp_isa_int8_avx2();
        w = "int8 inference needs a CPU with AVX2 and FMA (x86-64-v3: Intel Haswell, AMD Zen "
            "or later; VNNI is used where present); this one lacks them";
    } else {
        w = "unknown precision";
    }
    if (!isa && why) *why = w;
    return isa;
}

int miles_gemm_lowp_available(MilesGemmPrecision prec, const char **why) {
    return lowp_isa(prec, why) != NULL;
}

/* fp32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Symmetric int8 scale of a row: max|v| / 127 (0 for an all-zero row). */
static float row_scale(const float *v, int K) {
    float mx = 0.0f;
    for (int k = 0; k < K; k++) {
        float a = fabsf(v[k]);
        mx = a > mx ? a : mx; /* vectorizes (fmaxf's NaN rules would not) */
    }
    return mx / 127.0f;
}

/* round(v * inv) to nearest even, clamped to [-127, 127]: adding 1.5 * 2^23
 * rounds in the FPU's default mode (|v * inv| <= 127.5 here), no libm call.
 * A NaN or infinite v * inv (a NaN or inf in the row, or an inv overflowed
 * by a subnormal row maximum) gives -127: what the vector preps give, whose
 * float-to-int conversions return INT_MIN there before the integer clamp
 * (and converting it in C would be undefined behaviour). */
static inline int quantize(float v, float inv) {
    float t = v * inv, r = (t + 12582912.0f) - 12582912.0f;
    if (!(r > -2147483648.0f && r < 2147483648.0f)) return -127;
    int q = (int)r;
    return q > 127 ? 127 : q < -127 ? -127 : q;
}

/* One row of K values into kq 32-bit words (little-endian: value k is byte or
 * half-word k of its word): bf16, or int8 + offset (128 for the unsigned W, 0
 * for x); padding k >= K is 0 (+ offset).  stride 1: contiguous, written as
 * bytes / half-words (vectorizes).  Returns the sum of the quantized values
 * (int8). */
MILES_HOT_CLONES
static int32_t pack_row(MilesGemmPrecision prec, const float *v, int K, int kq, float inv,
                        int offset, uint32_t *dst, size_t stride) {
    int32_t sum = 0;
    if (stride == 1) {
        if (prec == MILES_GEMM_BF16) {
            uint16_t *d = (uint16_t *)dst;
            for (int k = 0; k < K; k++) d[k] = to_bf16(v[k]);
            for (int k = K; k < 2 * kq; k++) d[k] = 0;
        } else {
            uint8_t *d = (uint8_t *)dst;
            for (int k = 0; k < K; k++) {
                int xq = quantize(v[k], inv);
                sum += xq;
                d[k] = (uint8_t)(xq + offset);
            }
            for (int k = K; k < 4 * kq; k++) d[k] = (uint8_t)offset;
        }
        return sum;
    }
    for (int q = 0; q < kq; q++) {
        uint32_t word = 0;
        if (prec == MILES_GEMM_BF16) {
            for (int t = 0; t < 2; t++) {
                int k = 2 * q + t;
                word |= (uint32_t)(k < K ? to_bf16(v[k]) : 0) << (16 * t);
            }
        } else {
            for (int t = 0; t < 4; t++) {
                int k = 4 * q + t, xq = k < K ? quantize(v[k], inv) : 0;
                sum += xq;
                word |= (uint32_t)(uint8_t)(xq + offset) << (8 * t);
            }
        }
        dst[(size_t)q * stride] = word;
    }
    return sum;
}

/* The portable MilesLowpPrep (gemm_lowp.h); the AVX-512 one must give the
 * same bytes. */
static void prep_portable(int int8, const float *x, size_t ldx, int m, int K, int kq,
                          uint32_t *xp, float *sx, int32_t *cx) {
    for (int i = 0; i < m; i++) {
        const float *row = x + (size_t)i * ldx;
        float inv = 0.0f;
        if (int8) {
            sx[i] = row_scale(row, K);
            inv = sx[i] > 0.0f ? 1.0f / sx[i] : 0.0f;
        }
        int32_t sum = pack_row(int8 ? MILES_GEMM_INT8 : MILES_GEMM_BF16, row, K, kq, inv, 0,
                               xp + (size_t)i * kq, 1);
        if (int8) cx[i] = (int32_t)(128u * (uint32_t)sum); /* modulo 2^32, as the kernel's sums */
    }
}

/* The AVX2 int8 kernel's x (xw = 2): prep_portable's int8 values, scales and
 * corrections, each value widened to int16 (4 per step q, in two words). */
MILES_HOT_CLONES
static void prep_int16(int int8, const float *x, size_t ldx, int m, int K, int kq, uint32_t *xp,
                       float *sx, int32_t *cx) {
    (void)int8;
    for (int i = 0; i < m; i++) {
        const float *row = x + (size_t)i * ldx;
        sx[i] = row_scale(row, K);
        const float inv = sx[i] > 0.0f ? 1.0f / sx[i] : 0.0f;
        int16_t *d = (int16_t *)(xp + (size_t)i * 2 * kq);
        int32_t sum = 0;
        for (int k = 0; k < K; k++) {
            int xq = quantize(row[k], inv);
            sum += xq;
            d[k] = (int16_t)xq;
        }
        for (int k = K; k < 4 * kq; k++) d[k] = 0;
        cx[i] = (int32_t)(128u * (uint32_t)sum);
    }
}

MilesLowpPrep miles_lowp_prep_ref(int xw) { return xw > 1 ? prep_int16 : prep_portable; }

int miles_gemm_pack(MilesPackedWeights **out, MilesGemmPrecision prec, const float *W, int N,
                    int K, int ldw) {
    *out = NULL;
    const char *why = NULL;
    const MilesLowpIsa *isa = lowp_isa(prec, &why);
    if (!isa) return miles_error(MILES_EUNSUPPORTED, "%s", why);
    if (!W || N <= 0 || K <= 0 || ldw < K)
        return miles_error(MILES_EINVAL, "gemm pack: bad weight matrix (N %d, K %d, ldw %d)", N, K, ldw);
    MilesPackedWeights *p = miles_calloc(1, sizeof *p);
    if (!p) return miles_error(MILES_ENOMEM, "gemm pack: out of memory");
    p->prec = prec;
    p->isa = isa;
    p->N = N, p->K = K;
    p->kq = prec == MILES_GEMM_BF16 ? (K + 1) / 2 : (K + 3) / 4;
    /* the kernels read whole NR-column tiles, the layout has whole 16-column groups */
    p->npad = ((N + isa->nr - 1) / isa->nr * isa->nr + 15) / 16 * 16;
    p->w = miles_aligned_alloc((size_t)p->npad * p->kq * sizeof(uint32_t));
    if (prec == MILES_GEMM_INT8) {
        p->sw = miles_aligned_alloc((size_t)p->npad * sizeof(float));
    }
    if (!p->w || (prec == MILES_GEMM_INT8 && !p->sw)) {
        miles_gemm_packed_free(p);
        return miles_error(MILES_ENOMEM, "gemm pack: out of memory for %d x %d weights", N, K);
    }
    for (int j = 0; j < N; j++) { /* padded columns stay zero (aligned_alloc zeroes) */
        const float *row = W + (size_t)j * ldw;
        uint32_t *dst = p->w + ((size_t)(j / 16) * p->kq) * 16 + j % 16;
        float inv = 0.0f;
        if (prec == MILES_GEMM_INT8) {
            float s = row_scale(row, K);
            inv = s > 0.0f ? 1.0f / s : 0.0f;
            p->sw[j] = s;
        }
        pack_row(prec, row, K, p->kq, inv, prec == MILES_GEMM_INT8 ? 128 : 0, dst, 16);
    }
    *out = p;
    return MILES_OK;
}

void miles_gemm_packed_free(MilesPackedWeights *w) {
    if (!w) return;
    free(w->w);
    free(w->sw);
    free(w);
}

int miles_gemm_packed_n(const MilesPackedWeights *w) { return w->N; }
const char *miles_gemm_packed_isa(const MilesPackedWeights *w) { return w->isa->name; }
int miles_gemm_packed_k(const MilesPackedWeights *w) { return w->K; }

/* Words of one converted x row. */
static size_t xrow_words(const MilesPackedWeights *w) {
    return (size_t)w->kq * (w->isa->xw > 1 ? (size_t)w->isa->xw : 1);
}

/* Scratch: the converted x rows (+1 word: the kernels may read one past the
 * end), then for int8 the row scales and corrections, each 64-byte aligned. */
static size_t xrows_bytes(const MilesPackedWeights *w, int M) {
    return (((size_t)M * xrow_words(w) + 1) * sizeof(uint32_t) + 63) / 64 * 64;
}

size_t miles_gemm_packed_scratch(const MilesPackedWeights *w, int M) {
    if (!w || M <= 0) return 0;
    size_t v = ((size_t)M * sizeof(float) + 63) / 64 * 64;
    return xrows_bytes(w, M) + (w->prec == MILES_GEMM_INT8 ? 2 * v : 0);
}

int miles_gemm_packed(const MilesPackedWeights *w, int M, const float *x, int ldx,
                      const float *bias, float *y, int ldy) {
    return miles_gemm_packed_ws(w, M, x, ldx, bias, y, ldy, NULL);
}

int miles_gemm_packed_ws(const MilesPackedWeights *w, int M, const float *x, int ldx,
                         const float *bias, float *y, int ldy, void *scratch) {
    return miles_gemm_packed_ws_gelu(w, M, x, ldx, bias, y, ldy, scratch, 0);
}

int miles_gemm_packed_ws_gelu(const MilesPackedWeights *w, int M, const float *x, int ldx,
                              const float *bias, float *y, int ldy, void *scratch, int gelu) {
    if (!w || (M > 0 && (!x || !y)) || ldx < w->K || ldy < w->N)
        return miles_error(MILES_EINVAL, "gemm packed: bad arguments (M %d, ldx %d, ldy %d)", M, ldx, ldy);
    if (M <= 0) return MILES_OK;
    const int kq = w->kq, N = w->N, int8 = w->prec == MILES_GEMM_INT8;
    const MilesLowpIsa *isa = w->isa;
    const int mr = isa->mr;
    void *own = NULL;
    if (!scratch && !(scratch = own = malloc(miles_gemm_packed_scratch(w, M))))
        return miles_error(MILES_ENOMEM, "gemm packed: out of memory for %d rows", M);
    uint32_t *xp = scratch;
    const size_t pb = xrows_bytes(w, M), v = ((size_t)M * sizeof(float) + 63) / 64 * 64;
    float *sx = int8 ? (float *)((char *)scratch + pb) : NULL;
    int32_t *cx = int8 ? (int32_t *)((char *)scratch + pb + v) : NULL;
    const size_t xr = xrow_words(w); /* x row stride in words */
    const MilesLowpPrep prep = isa->prep ? isa->prep : miles_lowp_prep_ref(isa->xw);
    const int gelu_pass = gelu && !isa->kernel_gelu; /* else the kernel applies it before its stores */
    const MilesLowpKernel kern = gelu && !gelu_pass ? isa->kernel_gelu : isa->kernel;
    const int np = (M + 15) / 16, mb = (M + LOWP_MC - 1) / LOWP_MC; /* x converted 16 rows per task */
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)M * N * w->K >= 4.0 * MILES_OMP_MIN_WORK)
        nt = omp_get_max_threads();
#endif
    /* Column chunks: LOWP_NC, or for few row blocks (batch-1 shapes: M = 16-32
     * tokens) narrower, so that every thread gets about two chunks: there the
     * work is reading W, split over N.  Each element is still one kernel call
     * over all of K: the split does not change any bits. */
    int nc = LOWP_NC / isa->nr * isa->nr;
    if (nt > 1 && mb < 2 * nt) {
        int want = (2 * nt + mb - 1) / mb;
        nc = ((N + want - 1) / want + isa->nr - 1) / isa->nr * isa->nr;
        if (nc > LOWP_NC / isa->nr * isa->nr) nc = LOWP_NC / isa->nr * isa->nr;
    }
    const int nb = (N + nc - 1) / nc;
    /* Few rows (batch-1 shapes): x is converted here, so the team meets once
     * (with OMP_WAIT_POLICY=PASSIVE every barrier is a futex wake-up, as long
     * as converting 32 rows) */
    const int par_prep = nt > 1 && M >= 64;
    if (!par_prep)
        for (int pi = 0; pi < np; pi++) {
            int i0 = pi * 16, m = M - i0 < 16 ? M - i0 : 16;
            prep(int8, x + (size_t)i0 * ldx, (size_t)ldx, m, w->K, kq, xp + (size_t)i0 * xr,
                 int8 ? sx + i0 : NULL, int8 ? cx + i0 : NULL);
        }
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        if (par_prep) {
#pragma omp for schedule(static)
            for (int pi = 0; pi < np; pi++) {
                int i0 = pi * 16, m = M - i0 < 16 ? M - i0 : 16;
                prep(int8, x + (size_t)i0 * ldx, (size_t)ldx, m, w->K, kq, xp + (size_t)i0 * xr,
                     int8 ? sx + i0 : NULL, int8 ? cx + i0 : NULL);
            }
            /* implicit barrier: x is converted before any tile reads it */
        }
#pragma omp for schedule(dynamic, 1) nowait
        for (int t = 0; t < mb * nb; t++) {
            int i0 = t / nb * LOWP_MC, i1 = i0 + LOWP_MC < M ? i0 + LOWP_MC : M;
            int j0 = t % nb * nc, j1 = j0 + nc < N ? j0 + nc : N;
            /* a row tile of x (mr rows x K: 6-24 KiB) stays in L1 across the
             * task's W panels, which stream from L2 with the kernels'
             * prefetch; W-panel-outer streamed both (1 thread, int8, M 1024:
             * BERT-base FFN up 406 -> 423 GOP/s) */
            for (int ir = i0; ir < i1; ir += mr) {
                int m = i1 - ir < mr ? i1 - ir : mr;
                for (int jr = j0; jr < j1; jr += isa->nr) {
                    const uint32_t *wg = w->w + (size_t)(jr / 16) * kq * 16 + jr % 16;
                    int n = j1 - jr < isa->nr ? j1 - jr : isa->nr;
                    kern(kq, xp + (size_t)ir * xr, xr, wg, y + (size_t)ir * ldy + jr, (size_t)ldy,
                         m, n, int8 ? sx + ir : NULL, int8 ? cx + ir : NULL,
                         int8 ? w->sw + jr : NULL, bias ? bias + jr : NULL);
                }
            }
            /* the block is final (one kernel call over all of K): GELU while
             * in cache, the fast one (its output is rounded to bf16 / int8
             * by the next GEMM anyway; ops_internal.h), where the kernel
             * has no GELU epilogue */
            if (gelu_pass)
                miles_gelu_fast_rows(y + (size_t)i0 * ldy + j0, (size_t)ldy, i1 - i0, j1 - j0);
        }
    }
    free(own);
    return MILES_OK;
}
