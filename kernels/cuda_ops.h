/*
 * cuda_ops.h — the CUDA backend ops (internal).  Plain C header: libmiles C
 * code and the CUDA test program both include it.
 *
 * Every op mirrors the CPU reference function of the same name in
 * libmiles/ops.h (name + "_cuda", same argument order), with these rules:
 *   - all tensor pointers are DEVICE pointers (ids, masks, labels and class
 *     weights included); scalars (sizes, p, eps, scale, ...) are host values;
 *   - a cudaStream_t is the last argument (miles_cuda_stream below);
 *   - every function returns a MILES_* status (launch errors are checked and
 *     reported through miles_last_error() as "file:line: call: reason");
 *     nothing synchronizes the device, nothing allocates device memory after
 *     miles_cuda_init() (ops that need scratch take a workspace pointer);
 *   - *_backward ACCUMULATES (+=) into gradient outputs, and gradient outputs
 *     may be NULL, exactly as on the CPU;
 *   - ops whose CPU version returns a value (the losses) write it to a device
 *     scalar given as an extra FIRST argument instead of returning it.
 * Differences from the CPU are listed with each op.
 */
#ifndef MILES_CUDA_OPS_H
#define MILES_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "ops.h" /* MilesDropoutKey; ops.h has no C++ guards of its own */

/* Exactly cudaStream_t's type (driver_types.h), declared here so C callers
 * need no CUDA include; NULL = the legacy default stream. */
struct CUstream_st;
typedef struct CUstream_st *miles_cuda_stream;

/* ------------------------------------------------------------- context */
/* Select `device`, create this thread's cuBLAS handle (the only allocation
 * the ops make; also done lazily by the first GEMM).  MILES_EUNSUPPORTED when
 * there is no usable device. */
int miles_cuda_init(int device);
/* Destroy this thread's cuBLAS handles and free its per-stream cuBLAS
 * workspaces (safe to call twice); a thread that ran GEMMs calls it before
 * it ends. */
void miles_cuda_shutdown(void);
/* Number of CUDA devices, 0 when none or no driver (never fails). */
int miles_cuda_device_count(void);
/* Compute capability of the current device as 10*major+minor (e.g. 90), or a
 * negative MILES_* status. */
int miles_cuda_compute_capability(void);

/* Math mode of the fp32 GEMMs (miles_gemm_cuda and every op built on it):
 * storage stays fp32, cuBLAS may round inputs internally.  Process-wide. */
enum {
    MILES_CUDA_MATH_FP32 = 0, /* CUBLAS_COMPUTE_32F: true fp32 (the default) */
    MILES_CUDA_MATH_TF32 = 1, /* CUBLAS_COMPUTE_32F_FAST_TF32 (sm80+ tensor cores) */
    MILES_CUDA_MATH_FP16 = 2, /* CUBLAS_COMPUTE_32F_FAST_16F: fp16 inputs, fp32 accumulate */
    MILES_CUDA_MATH_BF16 = 3  /* CUBLAS_COMPUTE_32F_FAST_16BF: bf16 inputs (sm80+) */
};
/* Returns the previous mode, or MILES_EINVAL / MILES_EUNSUPPORTED (bf16 on a
 * device below sm80, with a message). */
int miles_cuda_set_math(int mode);
int miles_cuda_get_math(void);

/* ---------------------------------------------------------------- GEMM */
/* Row-major C[M,N] = alpha op(A) op(B) + beta C, same contract as miles_gemm
 * (transA: A stored [K,M]).  Uses the math mode above. */
int miles_gemm_cuda(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc, miles_cuda_stream stream);
/* Strided-batched variant: batch i uses A + i*strideA etc. */
int miles_gemm_strided_batched_cuda(int transA, int transB, int M, int N, int K,
                                    float alpha, const float *A, int lda, long long strideA,
                                    const float *B, int ldb, long long strideB, float beta,
                                    float *C, int ldc, long long strideC, int batch,
                                    miles_cuda_stream stream);
/* fp16 overflow guard of MILES_CUDA_MATH_FP16.  Under CUBLAS_COMPUTE_32F_FAST_16F
 * cuBLAS converts the fp32 inputs to fp16 inside the GEMM; NVIDIA does not
 * document what a value beyond the fp16 range becomes.  With round-to-nearest
 * (cvt.rn.f16.f32, CUTLASS's default converter) it becomes +-Inf, the GEMM
 * output is Inf/NaN and the loss scaler sees the overflow; if it were clamped
 * to +-65504 (or kept in fp32) the gradients would be wrong but finite.
 * miles_cuda_f16_overflow_probe() measures this on the current device (one
 * 64x64x64 GEMM holding one input of 1e5; synchronizes): 1 = Inf, 0 = not Inf,
 * or a negative MILES_* status.  While miles_cuda_set_f16_overflow_flag() holds
 * a device int32 flag, every FAST_16F GEMM first checks the span of its A and B
 * and sets *flag when a value would overflow fp16 (|x| >= 65520) or is not
 * finite; NULL turns the checks off.  The GPU model sets it only when the probe
 * said 0.  Process-wide, like the math mode. */
int miles_cuda_f16_overflow_probe(void);
/* The same question for an fp16 GEMM OUTPUT beyond 65504 (cublasGemmEx, fp16
 * A, B and C, fp32 accumulation): 1 = Inf, 0 = not Inf (then the 16-bit
 * path's backward checks the fp16 GEMM outputs it reads), or a negative
 * MILES_* status.  Synchronizes. */
int miles_cuda_f16_output_overflow_probe(void);
void miles_cuda_set_f16_overflow_flag(int32_t *dev_flag);
/* found[0] = 1 if any x[i] would overflow fp16 (|x| >= 65520) or is Inf/NaN
 * (found is only ever set, never cleared). */
int f16_range_check_cuda(int32_t *found, const float *x, size_t n, miles_cuda_stream stream);

/* Storage types for the mixed-precision GEMM and the casts. */
enum { MILES_CUDA_F32 = 0, MILES_CUDA_F16 = 1, MILES_CUDA_BF16 = 2 };
/* Row-major GEMM with A and B stored as a_type/b_type (F32, F16 or BF16, both
 * the same 16-bit type or both F32) and C fp32; fp32 accumulation
 * (cublasGemmEx, CUBLAS_COMPUTE_32F).  BF16 needs sm80+. */
int miles_gemm_ex_cuda(int transA, int transB, int M, int N, int K, float alpha,
                       const void *A, int a_type, int lda, const void *B, int b_type,
                       int ldb, float beta, float *C, int ldc, miles_cuda_stream stream);

/* ------------------------------------------------------------- dropout */
/* Same masks as the CPU, bit for bit (RNG CONTRACT in libmiles/dropout.c). */
int dropout_forward_cuda(float *out, const float *inp, size_t n, MilesDropoutKey key,
                         miles_cuda_stream stream);
int dropout_backward_cuda(float *dinp, const float *dout, size_t n, MilesDropoutKey key,
                          miles_cuda_stream stream);
/* The same with the (seed, step) read from the device when the kernel runs
 * (rng: device uint64_t[2], or NULL = key's): what a CUDA graph replays. */
int dropout_forward_rng_cuda(float *out, const float *inp, size_t n, MilesDropoutKey key, const uint64_t *rng,
                             miles_cuda_stream stream);
int dropout_backward_rng_cuda(float *dinp, const float *dout, size_t n, MilesDropoutKey key, const uint64_t *rng,
                              miles_cuda_stream stream);

/* ---------------------------------------------------------- embeddings */
/* ids out of [0,V) are not checked here (the CPU batch builder checks them).
 * The backward scatters with atomicAdd: the summation order of repeated ids
 * differs from the CPU (fp32 rounding only). */
int embedding_forward_cuda(float *out, const int32_t *ids, const int32_t *tt,
                           const float *wte, const float *wpe, const float *wtt,
                           int B, int T, int C, miles_cuda_stream stream);
int embedding_backward_cuda(float *dwte, float *dwpe, float *dwtt, const float *dout,
                            const int32_t *ids, const int32_t *tt, int B, int T, int C,
                            miles_cuda_stream stream);

/* ----------------------------------------------------------- layernorm */
/* Two-pass mean/variance per row like the CPU; dw/db reduced over rows
 * deterministically (no atomics). */
int layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int N, int C, float eps,
                           miles_cuda_stream stream);
int layernorm_backward_cuda(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int N, int C, miles_cuda_stream stream);
/* Fused post-LN residual: res = a + b (saved, [N,C]); out = LayerNorm(res).
 * Equal to residual_forward then layernorm_forward. */
int residual_layernorm_forward_cuda(float *res, float *out, float *mean, float *rstd,
                                    const float *a, const float *b, const float *w,
                                    const float *bias, int N, int C, float eps,
                                    miles_cuda_stream stream);
/* Backward of the above: da += dres, db += dres where dres is LayerNorm's
 * input gradient; dw/dbias += as layernorm_backward.  da/db may be NULL. */
int residual_layernorm_backward_cuda(float *da, float *db, float *dw, float *dbias,
                                     const float *dout, const float *res, const float *w,
                                     const float *mean, const float *rstd, int N, int C,
                                     miles_cuda_stream stream);

/* -------------------------------------------------------------- linear */
int linear_forward_cuda(float *out, const float *inp, const float *w, const float *b,
                        int N, int C, int OC, miles_cuda_stream stream);
int linear_backward_cuda(float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC,
                         miles_cuda_stream stream);

/* ----------------------------------------------------------- attention */
/* Same layout and semantics as the CPU (q,k,v,out [B,T,C] heads interleaved,
 * att/attd/scratch [B,NH,T,T], padding keys get probability exactly 0).  The
 * per-head GEMMs are strided-batched cuBLAS calls straight on the interleaved
 * layout (no permute copies, no workspace beyond the CPU's scratch). */
int attention_forward_cuda(float *out, float *att, float *attd, const float *q,
                           const float *k, const float *v, const int32_t *mask,
                           int B, int T, int C, int NH, MilesDropoutKey key,
                           miles_cuda_stream stream);
int attention_backward_cuda(float *dq, float *dk, float *dv, float *scratch,
                            const float *dout, const float *att, const float *attd,
                            const float *q, const float *k, const float *v,
                            int B, int T, int C, int NH, MilesDropoutKey key,
                            miles_cuda_stream stream);

/* --------------------------------------------------------- activations */
int gelu_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream stream);
int gelu_backward_cuda(float *dinp, const float *inp, const float *dout, size_t n,
                       miles_cuda_stream stream);
int relu_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream stream);
int relu_backward_cuda(float *dinp, const float *out, const float *dout, size_t n,
                       miles_cuda_stream stream);
int tanh_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream stream);
int tanh_backward_cuda(float *dinp, const float *out, const float *dout, size_t n,
                       miles_cuda_stream stream);
int sigmoid_forward_cuda(float *out, const float *inp, size_t n, miles_cuda_stream stream);
int sigmoid_backward_cuda(float *dinp, const float *out, const float *dout, size_t n,
                          miles_cuda_stream stream);
int residual_forward_cuda(float *out, const float *a, const float *b, size_t n,
                          miles_cuda_stream stream);
int residual_backward_cuda(float *da, float *db, const float *dout, size_t n,
                           miles_cuda_stream stream);

/* ------------------------------------------------------------- pooling */
int cls_pool_forward_cuda(float *out, const float *inp, int B, int T, int C,
                          miles_cuda_stream stream);
int cls_pool_backward_cuda(float *dinp, const float *dout, int B, int T, int C,
                           miles_cuda_stream stream);
int mean_pool_forward_cuda(float *out, const float *inp, const int32_t *mask, int B, int T,
                           int C, miles_cuda_stream stream);
int mean_pool_backward_cuda(float *dinp, const float *dout, const int32_t *mask, int B,
                            int T, int C, miles_cuda_stream stream);
int concat_forward_cuda(float *out, const float *a, const float *b, int B, int C1, int C2,
                        miles_cuda_stream stream);
int concat_backward_cuda(float *da, float *db, const float *dout, int B, int C1, int C2,
                         miles_cuda_stream stream);

/* -------------------------------------------------------------- losses */
/* loss: device float[1], overwritten.  class_weight: device [K] or NULL (all
 * 1).  A label outside [0,K) makes the loss NaN (caught by the non-finite
 * check) instead of reading out of bounds. */
int crossentropy_forward_cuda(float *loss, float *probs, const float *logits,
                              const int32_t *labels, const float *class_weight, int B, int K,
                              miles_cuda_stream stream);
int crossentropy_backward_cuda(float *dlogits, const float *probs, const int32_t *labels,
                               const float *class_weight, int B, int K, float scale,
                               miles_cuda_stream stream);
int mse_forward_cuda(float *loss, const float *pred, const float *target, int B,
                     miles_cuda_stream stream);
int mse_backward_cuda(float *dpred, const float *pred, const float *target, int B,
                      float scale, miles_cuda_stream stream);
/* Fused Miles loss in one launch: loss[3] = {w_cls*CE + w_reg*MSE, CE, MSE}.
 * labels NULL: no CE term (CE = 0); target NULL: no MSE term.  probs [B,K]
 * is written when labels are given.  Equal to the CPU composition
 * w_cls*crossentropy_forward + w_reg*mse_forward. */
int miles_loss_forward_cuda(float *loss, float *probs, const float *logits,
                            const int32_t *labels, const float *class_weight,
                            const float *pred, const float *target, int B, int K,
                            float w_cls, float w_reg, miles_cuda_stream stream);
/* dlogits += scale*w_cls*dCE/dlogits; dpred += scale*w_reg*dMSE/dpred. */
int miles_loss_backward_cuda(float *dlogits, float *dpred, const float *probs,
                             const int32_t *labels, const float *class_weight,
                             const float *pred, const float *target, int B, int K,
                             float w_cls, float w_reg, float scale,
                             miles_cuda_stream stream);

/* ---------------------------------------------- optimizer, norms, AMP */
/* Blocks of the first reduction stage, and the workspace the reductions
 * below need: MILES_CUDA_REDUCE_WORKSPACE floats, 8-byte aligned (it holds
 * one double per block). */
#define MILES_CUDA_REDUCE_BLOCKS 512
#define MILES_CUDA_REDUCE_WORKSPACE (2 * MILES_CUDA_REDUCE_BLOCKS)
/* norm[0] = sqrt(sum x^2) over x[n], accumulated in double like the CPU
 * (two-stage: per-block partials in the workspace, then one block; the
 * partition depends only on n, so the result is deterministic). */
int grad_norm_cuda(float *norm, const float *x, size_t n, float *workspace,
                   miles_cuda_stream stream);
/* torch.nn.utils.clip_grad_norm_: norm[0] = total norm before clipping; when
 * norm > max_norm, grad *= max_norm/(norm+1e-6) (decided on the device). */
int clip_grad_norm_cuda(float *grad, size_t n, float max_norm, float *norm,
                        float *workspace, miles_cuda_stream stream);
/* found[0] = 1 if any x[i] is Inf/NaN (found is only ever set, never cleared). */
int nonfinite_check_cuda(int32_t *found, const float *x, size_t n, miles_cuda_stream stream);

/* AdamW over contiguous buffers (fp32 master weights), torch.optim.AdamW:
 *   p -= lr*wd*p   (only where decay[i] != 0; decay NULL = everywhere)
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * t = step (1-based, host).  grad_scale: device scalar multiplying g (unscale
 * and/or clip coefficient), NULL = 1.  found_inf: device flag, when non-NULL
 * and set the kernel leaves p, m, v untouched (skipped step). */
typedef struct MilesCudaAdamW {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;
} MilesCudaAdamW;
/* The same with the step taken from the device: t = *step_dev + 1 (the
 * steps taken so far, MilesCudaTrainStats.steps; hp.step is not used), so
 * that a skipped fp16 step needs no host round trip. */
int adamw_step_dev_cuda(float *param, const float *grad, float *m, float *v, const uint8_t *decay, size_t n,
                        MilesCudaAdamW hp, const int64_t *step_dev, const int32_t *found_inf,
                        miles_cuda_stream stream);
int adamw_step_cuda(float *param, const float *grad, float *m, float *v,
                    const uint8_t *decay, size_t n, MilesCudaAdamW hp,
                    const float *grad_scale, const int32_t *found_inf,
                    miles_cuda_stream stream);

/* Dynamic loss scaler with torch.cuda.amp.GradScaler semantics, state kept on
 * the device so no step needs a host round trip. */
typedef struct MilesLossScalerState {
    float scale;            /* multiply the loss (backward's loss_scale) by this */
    float inv_scale;        /* 1/scale, used to unscale the gradients */
    int32_t growth_tracker; /* clean steps since the last change */
    int32_t found_inf;      /* set by amp_unscale_check_cuda this step */
} MilesLossScalerState;
/* state (device) = {init_scale, 1/init_scale, 0, 0}; GradScaler init is 65536. */
int loss_scaler_init_cuda(MilesLossScalerState *state, float init_scale,
                          miles_cuda_stream stream);
/* grad *= state->inv_scale in place, state->found_inf |= any non-finite
 * (torch._amp_foreach_non_finite_check_and_unscale_). */
int amp_unscale_check_cuda(float *grad, size_t n, MilesLossScalerState *state,
                           miles_cuda_stream stream);
/* After the (possibly skipped) optimizer step: on found_inf scale *= backoff
 * and tracker = 0; else tracker+1, and when it reaches growth_interval scale
 * *= growth (if finite) and tracker = 0 (torch._amp_update_scale_).  Clears
 * found_inf for the next step.  GradScaler: growth 2, backoff 0.5, 2000. */
int loss_scaler_update_cuda(MilesLossScalerState *state, float growth_factor,
                            float backoff_factor, int growth_interval,
                            miles_cuda_stream stream);
/* The same, counting the step on the device first: found_inf ->
 * stats->skipped += 1, else stats->steps += 1 (the fp32-master path's step
 * counter, read by adamw_step_dev_cuda). */
int loss_scaler_update_count_cuda(MilesLossScalerState *state, float growth_factor, float backoff_factor,
                                  int growth_interval, struct MilesCudaTrainStats *stats, miles_cuda_stream stream);

/* ----------------------------------------------------------- precision */
/* fp32 <-> fp16 (IEEE binary16, round to nearest even) and bf16 (round to
 * nearest even; NaN stays NaN).  The bf16 casts need sm80+ and return
 * MILES_EUNSUPPORTED with a message on older devices. */
int cast_f32_to_f16_cuda(uint16_t *out, const float *inp, size_t n, miles_cuda_stream stream);
int cast_f16_to_f32_cuda(float *out, const uint16_t *inp, size_t n, miles_cuda_stream stream);
int cast_f32_to_bf16_cuda(uint16_t *out, const float *inp, size_t n, miles_cuda_stream stream);
int cast_bf16_to_f32_cuda(float *out, const uint16_t *inp, size_t n, miles_cuda_stream stream);
/* MILES_OK when the current device can run bf16 kernels, else
 * MILES_EUNSUPPORTED with "bf16 needs compute capability >= 8.0 (sm_XY)". */
int miles_cuda_require_bf16(void);

/* ================================================================ *
 * The 16-bit path (precision fp16 / bf16): activations stored in 16 bits,
 * math in fp32.  Conventions beyond the ones at the top of this file:
 *   - tensors named *_h are fp16 or bf16 as uint16_t bits, `dtype` says which
 *     (MILES_CUDA_F16 or MILES_CUDA_BF16; bf16 needs sm80+); LayerNorm
 *     statistics, softmax, reductions and losses accumulate in fp32, and each
 *     16-bit output is its fp32 value rounded once (nearest even);
 *   - a fused op equals the composition of the CPU ops named with it;
 *   - `rng`: NULL, or a device uint64_t[2] {seed, step} that replaces
 *     key.seed / key.step when the kernel runs (so a captured CUDA graph
 *     replays with the current step); dropout masks are the CPU's bit for bit;
 *   - the backward ops WRITE their activation gradients (no memset needed)
 *     and write (accumulate = 0) or add (1) their parameter gradients;
 *   - widths (hidden sizes) multiples of 8 up to MILES_CUDA_FAST_MAX_C, rows
 *     16-byte aligned (the LayerNorm kernels); head sizes up to 64.
 * ================================================================ */
#define MILES_CUDA_FAST_MAX_C 1024

/* out_h[B*T,C] = dropout(LayerNorm(wte[ids] + wpe[t] + wtt[tt]))
 *   = embedding_forward + layernorm_forward + dropout_forward.  mean/rstd [N]
 *   are saved; the embedding sum is recomputed by the backward. */
int emb_ln_forward_cuda(void *out_h, float *mean, float *rstd, const int32_t *ids, const int32_t *tt,
                        const float *wte, const float *wpe, const float *wtt, const float *w, const float *b,
                        int B, int T, int C, float eps, MilesDropoutKey key, const uint64_t *rng, int dtype,
                        miles_cuda_stream stream);
/* res_h = x_h + dropout(proj_h) (rounded to 16 bits); out_h = LayerNorm(res_h)
 *   = dropout_forward + residual_forward + layernorm_forward (post-LN BERT). */
int residual_ln_forward_cuda(void *res_h, void *out_h, float *mean, float *rstd, const void *x_h,
                             const void *proj_h, const float *w, const float *b, int N, int C, float eps,
                             MilesDropoutKey key, const uint64_t *rng, int dtype, miles_cuda_stream stream);
/* Floats of workspace the two LayerNorm backward ops need (per-block partials). */
size_t ln_backward_workspace(int N, int C);
/* Backward of residual_ln_forward_cuda, given dout = d out (fp32):
 *   dres (fp32 [N,C], written) = layernorm_backward's input gradient = the
 *     gradient of x_h and, through the dropout, of proj_h;
 *   dproj_h (written, NULL = skip) = dropout_backward(dres);
 *   dw, db (LayerNorm) and dbias = column sums of dproj (the bias gradient of
 *   the linear layer that produced proj), each written or added, NULL = skip. */
int ln_backward_cuda(float *dres, void *dproj_h, float *dw, float *db, float *dbias, int accumulate,
                     const float *dout, const void *res_h, const float *w, const float *mean, const float *rstd,
                     int N, int C, MilesDropoutKey key, const uint64_t *rng, float *ws, size_t ws_floats, int dtype,
                     miles_cuda_stream stream);
/* Backward of emb_ln_forward_cuda: demb (fp32 [N,C], written) = layernorm
 *   backward of dropout_backward(dout); dw, db written or added.  Then
 *   embedding_backward_seg_cuda takes demb to the tables. */
int emb_ln_backward_cuda(float *demb, float *dw, float *db, int accumulate, const float *dout, const int32_t *ids,
                         const int32_t *tt, const float *wte, const float *wpe, const float *wtt, const float *w,
                         const float *mean, const float *rstd, int B, int T, int C, MilesDropoutKey key,
                         const uint64_t *rng, float *ws, size_t ws_floats, miles_cuda_stream stream);
/* out_k[(c / seg) * seg_stride + c % seg] (+)= sum over g of ws[(g * nvec + k) * C + c], k < nvec <= 3,
 * g in order (the second stage of every deterministic column reduction). */
int miles_partial_reduce_cuda(float *o0, float *o1, float *o2, const float *ws, int G, int C, int nvec,
                              int accumulate, int seg, long long seg_stride, miles_cuda_stream stream);

/* gelu_forward on 16-bit storage. */
int gelu_forward_h_cuda(void *out_h, const void *inp_h, size_t n, int dtype, miles_cuda_stream stream);
/* Floats of workspace of the column-sum ops below for an [N,C] input. */
size_t colsum_workspace(int N, int C);
/* In place: dinp_h (holding dout on entry) = dout * GELU'(inp) = gelu_backward
 *   into a zero gradient; dbias (NULL = skip) written/added with its column
 *   sums (the bias gradient of the layer whose output was inp).  overflow
 *   (fp16, may be NULL): set to 1 if |dout| >= 65504 or not finite. */
int gelu_backward_h_cuda(void *dinp_h, float *dbias, int accumulate, const void *inp_h, int N, int C, float *ws,
                         size_t ws_floats, int32_t *overflow, int dtype, miles_cuda_stream stream);
/* out[(c / seg) * seg_stride + c % seg] (+)= sum_n x_h[n,c] (the fused QKV bias
 *   gradient lands in three separate CPU tensors this way). */
int colsum_h_cuda(float *out, int seg, long long seg_stride, int accumulate, const void *x_h, int N, int C,
                  float *ws, size_t ws_floats, int dtype, miles_cuda_stream stream);
/* D[m, n] = bias[n], rows of ldd, D and bias of `type` (F32, F16, BF16). */
int miles_bias_fill_cuda(void *D, int ldd, const void *bias, int M, int N, int type, miles_cuda_stream stream);
/* out[B,C] (fp32) = the [CLS] rows (mean_pool 0, = cls_pool_forward) or the
 *   masked mean (1, = mean_pool_forward) of the 16-bit hidden state. */
int pool_forward_h_cuda(float *out, const void *hid_h, const int32_t *mask, int B, int T, int C, int mean_pool,
                        int dtype, miles_cuda_stream stream);
/* x[i] *= s1[0] * (s2 ? s2[0] : 1), scalars on the device. */
int scale_device_cuda(float *x, size_t n, const float *s1, const float *s2, miles_cuda_stream stream);

/* Fused attention (kernels/flash_attn.cu): attention_forward's output without
 * the [B,NH,T,T] probabilities.  q/k/v_h and out_h are [B*T] rows with row
 * strides ld / ldo (elements), head h at column h * C/NH, so q/k/v can be
 * the three thirds of the fused QKV projection.  lse [B,NH,T] (fp32) is saved
 * for the backward.  Same mask and dropout semantics as the CPU. */
int flash_attention_forward_cuda(void *out_h, int ldo, float *lse, const void *q_h, const void *k_h,
                                 const void *v_h, int ld, const int32_t *mask, int B, int T, int C, int NH,
                                 MilesDropoutKey key, const uint64_t *rng, int dtype, miles_cuda_stream stream);
/* attention_backward from dout_h (row stride lddo), the forward's out_h and
 *   lse: dq/dk/dv_h (row stride ldd) WRITTEN; dsum [B,NH,T] fp32 scratch.
 *   overflow (fp16, may be NULL): set to 1 if |dout| >= 65504 or not finite. */
int flash_attention_backward_cuda(void *dq_h, void *dk_h, void *dv_h, int ldd, float *dsum, const void *dout_h,
                                  int lddo, const void *out_h, int ldo, const float *lse, const void *q_h,
                                  const void *k_h, const void *v_h, int ld, const int32_t *mask, int B, int T, int C,
                                  int NH, MilesDropoutKey key, const uint64_t *rng, int32_t *overflow, int dtype,
                                  miles_cuda_stream stream);

/* GEMMs with 16-bit inputs, fp32 accumulation (CUBLAS_COMPUTE_32F), row-major
 * like miles_gemm_cuda.  miles_gemm_h_cuda: C (F32 or ab_type) = alpha
 * op(A) op(B) + beta C, strided batches (batch >= 1; a stride may be 0).
 * miles_gemm_lt_cuda: cuBLASLt, D = alpha op(A) op(B) + beta C (+ bias[N] of
 * cd_type, the BIAS epilogue, with beta 0; C may be NULL (= D)); if the
 * library refuses the epilogue for a shape, D is first filled with the bias
 * (miles_bias_fill_cuda) and the GEMM adds to it with beta = 1, still one
 * rounding (MILES_CUDA_LT_NO_EPILOGUE=1 forces that fallback).
 * Plans (descriptors + heuristic) are cached per shape and thread. */
int miles_gemm_h_cuda(int transA, int transB, int M, int N, int K, float alpha, const void *A, int lda,
                      long long strideA, const void *B, int ldb, long long strideB, float beta, void *C, int ldc,
                      long long strideC, int batch, int ab_type, int c_type, miles_cuda_stream stream);
int miles_gemm_lt_cuda(int transA, int transB, int M, int N, int K, float alpha, const void *A, int lda,
                       const void *B, int ldb, float beta, const void *C, int ldc, void *D, int ldd, int ab_type,
                       int cd_type, const void *bias, miles_cuda_stream stream);
/* 1: the cached plan of that shape (with a bias) uses the cuBLASLt epilogue,
 * 0: the fallback, -1: no such plan (for tests and the benchmark). */
int miles_cuda_lt_uses_epilogue(int M, int N, int K, int ab_type);

/* Word-id and token-type embedding gradients of the 16-bit path, deterministic
 * and parallel (kernels/embedding.cu): segments of at most
 * MILES_CUDA_EMB_SEGMENT tokens of one row (virtual table: rows < V are wte,
 * V + y is wtt row y) with seg_beg [S+1] into pos (token indices, the word
 * lists then the type lists), seg_multi[s] = 0 (the row's only segment) or
 * the partial slot + 1; multi_row/beg/end: rows with several segments and
 * their segment range.  counts (device) = {S, M}; max_* size the grids.
 * dwpe (may be NULL) += the position gradient.  ws: (slots) x C floats. */
#define MILES_CUDA_EMB_SEGMENT 32
/* Host-built lists (arrays of the bounds below), counts = {S, M}, slots used. */
typedef struct MilesEmbSegments {
    int32_t *pos;                            /* [2N] */
    int32_t *seg_row, *seg_beg, *seg_multi;  /* [S_max], [S_max + 1], [S_max] */
    int32_t *multi_row, *multi_beg, *multi_end; /* [M_max] */
    int32_t *counts;                         /* [2] */
    int slots;
} MilesEmbSegments;
#define MILES_EMB_SEG_MAX(N) (2 * (N))
#define MILES_EMB_MULTI_MAX(N, TV) ((N) + (TV))
#define MILES_EMB_SLOTS_MAX(N) (4 * (N) / MILES_CUDA_EMB_SEGMENT + 2)
void miles_emb_segments_build(MilesEmbSegments *sg, const int32_t *ids, const int32_t *tt, int N, int V, int TV,
                              int32_t *slot, int32_t *uniq, int32_t *cnt);
int embedding_backward_seg_cuda(float *dwte, float *dwpe, float *dwtt, int V, const float *dout,
                                const int32_t *counts, const int32_t *seg_row, const int32_t *seg_beg,
                                const int32_t *seg_multi, const int32_t *multi_row, const int32_t *multi_beg,
                                const int32_t *multi_end, const int32_t *pos, int max_segments, int max_multi, int B,
                                int T, int C, float *ws, miles_cuda_stream stream);

/* Fused optimizer.  State on the device, so a step needs no host round trip:
 * grad_prepare_cuda makes ONE pass over the gradients: the norm of the
 * unscaled gradients (double accumulation, deterministic), the Inf/NaN check
 * (into st and scaler->found_inf, which may already hold an overflow a
 * range check of the backward found; with a scaler only: without one the
 * step is taken, as PyTorch does), and st->coef = inv_scale x the clipping
 * factor (max_norm <= 0: no clipping).  The gradients are not rewritten.
 * adamw_fused_cuda makes ONE pass: AdamW on grad * st->coef with the bias
 * corrections of the device step counter st->step + 1, the learning rate
 * from lr_dev (device float, or hp.lr when NULL), the per-chunk decay flag,
 * and writes the 16-bit copy of each updated weight that has one; nothing
 * changes when st->found_inf; then the step counter advances on taken steps
 * (st->last_skipped says which).  Workspace: MILES_CUDA_PREP_WORKSPACE floats. */
#define MILES_CUDA_PREP_WORKSPACE (3 * MILES_CUDA_REDUCE_BLOCKS)
typedef struct MilesCudaOptState {
    float norm, coef;
    int32_t found_inf, last_skipped;
    int64_t step;
} MilesCudaOptState;
/* A piece of one parameter tensor: master floats [off, off + n), 16-bit copy
 * at half (-1: none), weight decay on or off, and the tensor's parameter-group
 * lr multiplier (miles_adamw_lr_scale; 1.0 = the step lr as is): the chunk
 * steps at (float)(lr * lr_scale) in double, miles_adamw_group_lr's rounding. */
typedef struct MilesCudaChunk {
    int64_t off, half;
    int32_t n, decay;
    double lr_scale;
} MilesCudaChunk;
#define MILES_CUDA_CHUNK 16384
int grad_prepare_cuda(MilesCudaOptState *st, MilesLossScalerState *scaler, const float *grad, size_t n,
                      float max_norm, float *workspace, miles_cuda_stream stream);
int adamw_fused_cuda(float *param, const float *grad, float *m, float *v, void *half, int dtype,
                     const MilesCudaChunk *chunks, int nchunks, MilesCudaAdamW hp, const float *lr_dev,
                     MilesCudaOptState *st, miles_cuda_stream stream);
/* half[chunk.half + i] = param[chunk.off + i] rounded, for chunks with a copy. */
int params_to_half_cuda(void *half, const float *param, const MilesCudaChunk *chunks, int nchunks, int dtype,
                        miles_cuda_stream stream);

/* ============================ trainer statistics (train_stats.cu) */
/* What the trainer reads only at its log intervals (docs/gpu.md "No host
 * syncs in the step"): the running loss sum and the skipped fp16 steps. */
typedef struct MilesCudaTrainStats {
    double loss_sum;
    int64_t skipped;
    /* AdamW steps taken on the fp32-master path with a loss scaler (fp16
     * with fast = 0): the step counter lives on the device there too
     * (loss_scaler_update_count_cuda advances it; the fused path counts in
     * MilesCudaOptState.step) */
    int64_t steps;
} MilesCudaTrainStats;
/* st->loss_sum += (float)((w_cls * l[0] if have_cls) + (w_reg * l[1] if
 * have_reg)) / divisor, rounded as the host would (no FMA); loss2 = the
 * model's [cross-entropy, MSE] on the device. */
int train_stats_add_loss_cuda(MilesCudaTrainStats *st, const float *loss2, float w_cls, float w_reg, int have_cls,
                              int have_reg, float divisor, miles_cuda_stream stream);
/* st->skipped += opt->last_skipped != 0 (after adamw_fused_cuda). */
int train_stats_count_skip_cuda(MilesCudaTrainStats *st, const MilesCudaOptState *opt, miles_cuda_stream stream);

#ifdef __cplusplus
}
#endif
#endif
