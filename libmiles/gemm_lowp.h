/*
 * gemm_lowp.h — reduced-precision inference GEMM with pre-packed weights
 * (internal; for the model's forward and the tools' --precision flag).
 *
 *   y[M,N] = x[M,K] @ W[N,K]^T (+ bias[N]), fp32 in and out, W converted once:
 *   - bf16:  W and x rounded to bfloat16 (nearest even), products summed in
 *            fp32 by AVX512_BF16 vdpbf16ps (two K steps per instruction);
 *   - int8:  W quantized per output channel (row of W) to [-127, 127] with
 *            scale max|W_j| / 127; x quantized per row at each call (dynamic)
 *            the same way; exact int32 sums by VNNI vpdpbusd (AVX512_VNNI,
 *            or AVX_VNNI on AVX2-only CPUs), or on AVX2 CPUs without VNNI by
 *            vpmaddwd on operands widened to int16 (the same sums, so the
 *            same bits); y = sum * sx_i * sw_j (+ bias).
 * Each element is summed over K in a fixed order by one thread, so results
 * do not depend on the thread count or on which rows are computed together.
 * Where the CPU lacks the instructions, packing is refused with
 * MILES_EUNSUPPORTED and a message naming the missing feature.
 * Accuracy (tests/test_gemm_lowp.c): bf16 ~2^-8 relative per product, int8
 * ~1/127 of the row/channel range per operand.
 */
#ifndef MILES_GEMM_LOWP_H
#define MILES_GEMM_LOWP_H

#include <stddef.h>
#include <stdint.h>

typedef enum { MILES_GEMM_BF16 = 1, MILES_GEMM_INT8 = 2 } MilesGemmPrecision;

typedef struct MilesPackedWeights MilesPackedWeights;

/* 1 if this CPU (and OS) can run the precision; else 0 and, when why is not
 * NULL, a sentence naming the missing instructions. */
int miles_gemm_lowp_available(MilesGemmPrecision prec, const char **why);

/* Convert W [N, K] (row stride ldw >= K) once.  MILES_EUNSUPPORTED where the
 * CPU lacks the instructions, MILES_EINVAL for bad sizes, MILES_ENOMEM. */
int miles_gemm_pack(MilesPackedWeights **out, MilesGemmPrecision prec, const float *W, int N,
                    int K, int ldw);
void miles_gemm_packed_free(MilesPackedWeights *w);
int miles_gemm_packed_n(const MilesPackedWeights *w);
int miles_gemm_packed_k(const MilesPackedWeights *w);
/* The kernel the weights were packed for: "avx512_bf16", "avx512_vnni",
 * "avx_vnni", "avx2". */
const char *miles_gemm_packed_isa(const MilesPackedWeights *w);
/* Tests and benches: pack int8 for a lesser kernel than the best this CPU has
 * (every one must give the same bits): MILES_LOWP_INT8_AVXVNNI skips
 * AVX-512 VNNI, MILES_LOWP_INT8_AVX2 skips both VNNI kernels; returns the
 * previous setting. */
enum { MILES_LOWP_INT8_BEST = 0, MILES_LOWP_INT8_AVXVNNI = 1, MILES_LOWP_INT8_AVX2 = 2 };
int miles_gemm_lowp_prefer_int8(int level);

/* y[M,N] (row stride ldy >= N) = x[M,K] (row stride ldx >= K) @ W^T + bias
 * (bias may be NULL).  Uses the OpenMP threads; MILES_ENOMEM if the scratch
 * for the converted x cannot be allocated. */
int miles_gemm_packed(const MilesPackedWeights *w, int M, const float *x, int ldx,
                      const float *bias, float *y, int ldy);
/* The same with caller-provided scratch of miles_gemm_packed_scratch(w, M)
 * bytes (NULL: allocated per call), so an inference loop allocates nothing
 * per call.  Same bits as miles_gemm_packed. */
size_t miles_gemm_packed_scratch(const MilesPackedWeights *w, int M);
int miles_gemm_packed_ws(const MilesPackedWeights *w, int M, const float *x, int ldx,
                         const float *bias, float *y, int ldy, void *scratch);
/* The same, then y = GELU(y) on each finished block inside the GEMM's
 * region when gelu != 0: the engine's FFN, without a separate pass and
 * OpenMP region (a futex wake-up per sync at batch 1).  The GELU is
 * miles_gelu_fast_range's (rational erf, within 3e-7 (1 + |x|) of the exact
 * GELU; ops_internal.h), not gelu_forward's: these results are rounded to
 * bf16 or int8 by the next GEMM, and it costs a third as much. */
int miles_gemm_packed_ws_gelu(const MilesPackedWeights *w, int M, const float *x, int ldx,
                              const float *bias, float *y, int ldy, void *scratch, int gelu);

/* Kernels (gemm_lowp_avx512.c, gemm_lowp_avxvnni.c, gemm_lowp_avx2.c).
 * x: converted rows of 32-bit words (2 bf16 or 4 int8 values of K per word;
 * the AVX2 int8 kernel: 4 int16 per two words), row i at x + i*x_rs; w:
 * 16-column groups of kq words per lane (group stride kq*16 words; a kernel
 * with NR = 8 gets w offset to its half of a group); m <= MR rows, n <= NR
 * cols.
 * bf16: y = acc (+ bias[j]);
 * int8: W is stored as unsigned u = w_q + 128 and x as signed x_q (vpdpbusd
 * multiplies u8 by s8, and x's word is the broadcast operand), so
 * acc = sum x_q w_q + 128 sum_k x_q and y = (acc - cx[i]) * (sx[i] * sw[j])
 * (+ bias[j]) with cx[i] = 128 sum_k x_q. */
typedef void (*MilesLowpKernel)(int kq, const uint32_t *x, size_t x_rs, const uint32_t *w,
                                float *y, size_t ldy, int m, int n, const float *sx,
                                const int32_t *cx, const float *sw, const float *bias);
/* Converts rows [0, m) of x (row stride ldx, K values) into kq words each at
 * xp + i*kq (padding zero; with xw = 2 below, gemm_lowp.c's int16 prep: 2kq
 * words at xp + i*2kq), and for int8 the row scales sx and corrections cx.
 * Every implementation gives the same values as the portable one in
 * gemm_lowp.c. */
typedef void (*MilesLowpPrep)(int int8, const float *x, size_t ldx, int m, int K, int kq,
                              uint32_t *xp, float *sx, int32_t *cx);
typedef struct {
    const char *name;
    int mr, nr;
    MilesLowpKernel kernel;
    MilesLowpPrep prep; /* NULL: the portable C conversion */
    /* kernel, then y = miles_gelu_fast_elem(y) on the tile before it is
     * stored (the same bits as the row pass after it); NULL: that pass */
    MilesLowpKernel kernel_gelu;
    /* 32-bit words of converted x per step q: 1 (bf16 pairs, int8 quads),
     * 2 for the AVX2 int8 kernel (x_q widened to int16, gemm_lowp.c's
     * prep_int16, or a prep with its values) */
    int xw;
} MilesLowpIsa;
/* gemm_lowp.c's C prep for xw words per step (1: prep_portable, 2:
 * prep_int16): the definition an ISA's own prep must match (tests) */
MilesLowpPrep miles_lowp_prep_ref(int xw);
const MilesLowpIsa *miles_lowp_isa_bf16_avx512(void);
const MilesLowpIsa *miles_lowp_isa_int8_avx512(void);
const MilesLowpIsa *miles_lowp_isa_int8_avxvnni(void);
const MilesLowpIsa *miles_lowp_isa_int8_avx2(void);

#endif
