/*
 * model_cuda.h — the whole Miles model (forward, backward, clipping, AdamW)
 * on one CUDA GPU.  Plain C header (extern "C", plain C types): C code and the
 * CUDA test/bench programs include it.
 *
 * Two paths (docs/gpu.md):
 *   the fp32 path (precision fp32, tf32): mirrors the CPU model
 *     (libmiles/model_forward.c, model_backward.c, optim.c) op by op with the
 *     kernels of cuda_ops.h, fp32 activations; the CPU fp32 path is the
 *     specification and fp32 is its bit-comparable twin;
 *   the 16-bit path (precision fp16, bf16, the default for them): 16-bit
 *     activations and a 16-bit copy of the encoder's GEMM weights, fused
 *     LayerNorm / dropout / residual kernels, flash attention, cuBLASLt bias
 *     epilogues, a fused two-pass optimizer with the step counter on the
 *     device, CUDA graphs (miles_cuda_model_train_step, inference forwards).
 * A MilesCudaModel is built FROM a CPU MilesModel: it copies the
 * configuration, the loss settings, the dropout key, the parameter table
 * (names, offsets, decay flags) and the weights, so the fp32 parameter block
 * on the device has exactly the CPU layout (the same offsets), and
 * download/upload are single copies.
 *
 * Memory: parameters, gradients and the AdamW moments are fp32 blocks of
 * num_params floats.  Activations live in one device arena sized from (B,T)
 * and grown only when a batch needs more; backward buffers likewise.  The
 * batch is packed into a pinned host buffer and copied with one
 * cudaMemcpyAsync on the model's stream.  Nothing is allocated per step once
 * the largest (B,T) has been seen.
 *
 * Synchronization: forward/backward/zero_grad/clip/adamw_step/train_step only
 * enqueue work.  A host copy of outputs (logits, velocity, loss), a requested
 * clipping norm, and on the fp32 path the fp16 optimizer step (which reads
 * back the overflow flag, as torch.cuda.amp.GradScaler does) synchronize the
 * stream; on the 16-bit path the fp16 skip decision and the step counter stay
 * on the device until asked for (adamw_steps, loss_scale, a `skipped` output).
 * A trainer sums the losses on the device (add_loss) and reads them with the
 * norm, the scale and the skip count in one sync (read_stats) when it logs.
 *
 * Precision (MILES_CUDA_PREC_*):
 *   FP32  cuBLAS CUBLAS_COMPUTE_32F: the CPU's twin (tests: forward <= 1e-5).
 *   TF32  GEMM inputs rounded to 10 mantissa bits on tensor cores (sm80+).
 *   FP16  the 16-bit path in fp16; fp32 master weights and optimizer state,
 *         LayerNorm statistics, softmax and losses accumulate in fp32;
 *         dynamic loss scaling with GradScaler semantics (65536, x2 after
 *         2000 clean steps, x0.5 and a skipped step on Inf/NaN).
 *   BF16  as FP16 in bf16, no loss scaling (as in PyTorch); needs compute
 *         capability >= 8.0 (refused with a message otherwise).
 *   With MilesCudaOptions.fast = 0, FP16 and BF16 keep fp32 activations and
 *   round only the GEMM inputs (the earlier mixed mode).
 *
 * Determinism: with the same weights, batches, dropout key and precision the
 * results are bitwise identical from run to run on the same GPU: every
 * reduction has a fixed order (no atomics), the word / token-type embedding
 * gradients are summed per id in token order (fp32 path) or in fixed
 * segments (16-bit path).
 */
#ifndef MILES_MODEL_CUDA_H
#define MILES_MODEL_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "miles.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    MILES_CUDA_PREC_FP32 = 0,
    MILES_CUDA_PREC_TF32 = 1,
    MILES_CUDA_PREC_FP16 = 2,
    MILES_CUDA_PREC_BF16 = 3
};
/* "fp32" | "tf32" | "fp16" | "bf16" -> MILES_CUDA_PREC_*, or MILES_EINVAL. */
int miles_cuda_precision_parse(const char *name);
const char *miles_cuda_precision_name(int precision);

typedef struct MilesCudaModel MilesCudaModel;

/* Build on the current CUDA device from a CPU model (weights, config, loss,
 * dropout key copied; the CPU model may be freed afterwards).
 * MILES_EUNSUPPORTED: no CUDA device, or bf16 below sm80 (with a message). */
int miles_cuda_model_build(MilesCudaModel **out, const MilesModel *cpu_model, int precision);

/* Build options (NULL = defaults). */
typedef struct MilesCudaOptions {
    /* -1 (default): fp16 and bf16 run the 16-bit path (activations and a
     *   weight copy in 16 bits, fused kernels, flash attention, cuBLASLt;
     *   docs/gpu.md "The 16-bit path") when the shape allows it (hidden
     *   size a multiple of 8, <= 1024, head size <= 64: every BERT size),
     *   else fp32 activations; fp32 and tf32 the fp32 path;
     *  0: fp32 activations in every precision (16-bit math inside the GEMMs
     *   only: the earlier mixed mode, kept for comparison and the emulation);
     *  1: the 16-bit path (fp16/bf16 only, MILES_EINVAL otherwise;
     *   MILES_EUNSUPPORTED with a message for a shape it cannot run). */
    int fast;
    /* -1 / 1 (default): miles_cuda_model_train_step and inference forwards of
     * the 16-bit path replay CUDA graphs (one per batch shape); 0: never. */
    int graphs;
} MilesCudaOptions;
int miles_cuda_model_build_ex(MilesCudaModel **out, const MilesModel *cpu_model, int precision,
                              const MilesCudaOptions *opts);
/* 1 when the model runs the 16-bit path. */
int miles_cuda_model_is_fast(const MilesCudaModel *cm);
void miles_cuda_model_free(MilesCudaModel *cm);
int miles_cuda_model_precision(const MilesCudaModel *cm);
size_t miles_cuda_model_num_params(const MilesCudaModel *cm);

/* Loss weights and class weights (copied to the device; synchronizes, unless
 * they equal the current ones: then nothing happens).  On an error the model
 * keeps its previous loss settings. */
int miles_cuda_model_set_loss(MilesCudaModel *cm, const MilesLossConfig *loss);
/* Same meaning as miles_model_set_dropout_key: same key -> same masks as the CPU. */
void miles_cuda_model_set_dropout_key(MilesCudaModel *cm, uint64_t seed, uint64_t step);

/* Forward of a host batch (validated like miles_model_forward, same errors).
 * logits [B,2], velocity [B], *loss: host outputs, each may be NULL (then
 * the call does not synchronize). */
int miles_cuda_model_forward(MilesCudaModel *cm, const MilesBatch *batch, int training,
                             float *logits, float *velocity, float *loss);
/* Loss of the last forward (synchronizes). */
int miles_cuda_model_last_loss(MilesCudaModel *cm, float *loss);
/* Host copies of the last forward's pooled vector [B,H] and last hidden
 * state [B,T,H] (synchronize). */
int miles_cuda_model_download_pooled(MilesCudaModel *cm, float *out);
int miles_cuda_model_download_last_hidden(MilesCudaModel *cm, float *out);

/* Accumulates d(loss_scale * loss)/dtheta into the gradients (fp16: the
 * dynamic loss scale is applied on top of loss_scale). */
int miles_cuda_model_backward(MilesCudaModel *cm, float loss_scale);
/* The same backward, calling ready(ctx, offset) on the host each time the
 * gradients [offset, num_params) are final in the model stream's order: after
 * the heads, after each encoder layer (last to first), after the embeddings
 * (offset 0).  Data parallelism (kernels/dist_nccl.h) queues their reduction
 * there, so it overlaps the rest of the backward.  A non-OK return of ready
 * stops the backward with that status. */
typedef int (*MilesCudaGradReady)(void *ctx, size_t offset);
int miles_cuda_model_backward_hooked(MilesCudaModel *cm, float loss_scale, MilesCudaGradReady ready, void *ctx);
/* The fp16 overflow flag on the device (int32, the loss scaler's found_inf,
 * read by clip / adamw_step), or NULL when the mode has no loss scaling. */
int32_t *miles_cuda_model_device_found_inf(MilesCudaModel *cm);
/* Enqueue the zeroing that zero_grad deferred (the 16-bit path clears the
 * gradients in the next backward), so the gradient block holds its values
 * even when no backward ran since zero_grad. */
int miles_cuda_model_materialize_grads(MilesCudaModel *cm);
/* Allocate now what training micro-batches of up to B rows x T tokens need
 * (activations, backward buffers, pinned staging), so that no later step
 * grows them: growing synchronizes the host (data parallelism: one rank
 * alone would then wait, see libmiles/train_dp_device.c). */
int miles_cuda_model_reserve(MilesCudaModel *cm, int B, int T);
int miles_cuda_model_zero_grad(MilesCudaModel *cm);
/* torch.nn.utils.clip_grad_norm_: *norm = total L2 norm before clipping
 * (synchronizes; fp16: the gradients are unscaled first, as
 * GradScaler.unscale_ then clip).  norm may be NULL. */
int miles_cuda_model_clip_grad_norm(MilesCudaModel *cm, float max_norm, float *norm);
/* One AdamW step (torch.optim.AdamW, decay groups from the CPU model's tensor
 * table or everything with cfg->decay_all).  fp16: unscale (unless clip
 * did), skip the step when a gradient is Inf/NaN (step count unchanged),
 * update the loss scale.  *skipped (may be NULL) = 1 for a skipped step. */
int miles_cuda_model_adamw_step(MilesCudaModel *cm, float lr, const MilesAdamWConfig *cfg,
                                int *skipped);
int64_t miles_cuda_model_adamw_steps(const MilesCudaModel *cm);
/* AdamW state for checkpoints: m, v [num_params] host arrays (either may be
 * NULL), t = steps taken.  set() also allocates the moments if needed. */
int miles_cuda_model_get_adamw_state(MilesCudaModel *cm, float *m, float *v, int64_t *t);
int miles_cuda_model_set_adamw_state(MilesCudaModel *cm, const float *m, const float *v, int64_t t);

/* GradScaler settings (fp16 only; defaults 65536, 2.0, 0.5, 2000); resets the
 * scale and the growth tracker. */
int miles_cuda_model_set_loss_scaler(MilesCudaModel *cm, float init_scale, float growth,
                                     float backoff, int growth_interval);
/* Current loss scale (1 when the mode has no loss scaling). */
float miles_cuda_model_loss_scale(const MilesCudaModel *cm);
/* The dynamic loss scaler's state for checkpoints (synchronizes): *scale = 0
 * when the mode has no loss scaling.  set: restore a saved scale (> 0, finite)
 * and growth tracker (>= 0); growth, backoff and interval stay. */
int miles_cuda_model_get_loss_scaler_state(MilesCudaModel *cm, float *scale, int32_t *growth_tracker);
int miles_cuda_model_set_loss_scaler_state(MilesCudaModel *cm, float scale, int32_t growth_tracker);

/* Deferred statistics for a trainer that reads them only at its log
 * intervals (docs/gpu.md "No host syncs in the step").  add_loss: after a
 * training forward, a device-side sum += (w_cls * CE + w_reg * MSE of that
 * forward, rounded as miles_cuda_model_forward's *loss) / divisor; enqueued
 * only.  read_stats: one synchronization; the sum since the last read (then
 * reset), the last clip's norm (0 before any), the loss scale, the fp16
 * steps skipped since build and the AdamW steps taken. */
typedef struct MilesCudaStats {
    double loss_sum;
    float grad_norm, loss_scale;
    int64_t skipped, steps;
} MilesCudaStats;
int miles_cuda_model_add_loss(MilesCudaModel *cm, float divisor);
int miles_cuda_model_read_stats(MilesCudaModel *cm, MilesCudaStats *out);

/* Input gradients for explanations (integrated gradients, libmiles/explain.c),
 * the CPU's miles_model_forward_embeds / backward_from_outputs /
 * input_grads on the fp32 path (MILES_EUNSUPPORTED on the 16-bit path):
 * an eval-mode forward with word_emb [B,T,H] in place of wte[input_ids]
 * (logits [B,2], velocity [B] host outputs, may be NULL; synchronizes), and
 * its backward from d target / d logits [B,2] and d target / d velocity [B]
 * (either NULL = 0) to dword [B,T,H] and dfeatures [B,F] (may be NULL;
 * synchronizes).  The backward also adds to the parameter gradients (a
 * training model: zero_grad before its next step). */
int miles_cuda_model_forward_embeds(MilesCudaModel *cm, const MilesBatch *batch, const float *word_emb,
                                    float *logits, float *velocity);
int miles_cuda_model_backward_inputs(MilesCudaModel *cm, const float *dlogits, const float *dvelocity,
                                     float *dword, float *dfeatures);

/* Copy the weights device -> CPU model (for checkpoints) or CPU -> device.
 * The models must have the same configuration (MILES_ESHAPE otherwise). */
int miles_cuda_model_download_params(MilesCudaModel *cm, MilesModel *cpu_model);
int miles_cuda_model_upload_params(MilesCudaModel *cm, const MilesModel *cpu_model);
/* Host copy of the gradient block [num_params] (CPU layout). */
int miles_cuda_model_download_grads(MilesCudaModel *cm, float *grads);

/* One training step, equal to zero_grad, forward(batch, training 1),
 * backward(loss_scale), clip_grad_norm(max_norm) when max_norm > 0, and
 * adamw_step(lr, cfg).  On the 16-bit path it runs without a host round trip
 * (the fp16 skip decision and the step counter stay on the device) and, once
 * a batch shape (B, T, which targets, optimizer settings) repeats, as one
 * CUDA graph launch after the batch copy.  loss, norm (the total norm before
 * clipping) and skipped are host outputs; each given one synchronizes. */
int miles_cuda_model_train_step(MilesCudaModel *cm, const MilesBatch *batch, float loss_scale, float max_norm,
                                float lr, const MilesAdamWConfig *cfg, float *loss, float *norm, int *skipped);
/* CUDA graphs held (the return value), launched and captured so far. */
int miles_cuda_model_graphs(const MilesCudaModel *cm, long *launches, long *captures);

/* Wait for everything enqueued on the model's stream. */
int miles_cuda_model_sync(MilesCudaModel *cm);
/* Device pointers to the parameter / gradient blocks [num_params] and the
 * model's stream (a cudaStream_t, created non-blocking: synchronize it, e.g.
 * with miles_cuda_model_sync, before touching these from another stream),
 * for tests and advanced callers. */
float *miles_cuda_model_device_params(MilesCudaModel *cm);
float *miles_cuda_model_device_grads(MilesCudaModel *cm);
void *miles_cuda_model_stream(MilesCudaModel *cm);
/* Bytes of device memory held (params, grads, moments, arena, scratch). */
size_t miles_cuda_model_device_bytes(const MilesCudaModel *cm);

#ifdef __cplusplus
}
#endif
#endif
