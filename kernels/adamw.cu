/*
 * adamw.cu — optimizer-side kernels over the contiguous parameter buffers:
 * global gradient norm (two-stage, deterministic), clipping, the non-finite
 * check, multi-tensor AdamW (one launch over all tensors, per-element decay
 * mask, fp32 master weights) and a dynamic loss scaler with
 * torch.cuda.amp.GradScaler semantics.  The device-side flags (found_inf) and
 * scalars (norm, grad scale, loss scale) let a training step run without a
 * host round trip; reading them back is the caller's choice.
 *
 * AdamW matches libmiles/optim.c (torch 1.13 _single_tensor_adamw): scalars
 * are computed in double on the host and rounded to float once.
 */
#include "fast.cuh"

#include <math.h>

/* Stage 1: block i writes sum of squares of its grid-stride slice to ws[i].
 * The grid is always MILES_CUDA_REDUCE_BLOCKS blocks, so the partition (and
 * the result) depends only on n: deterministic. */
__global__ void sumsq_partial_kernel(double *ws, const float *x, size_t n) {
    __shared__ double sh[32];
    double acc = 0.0;
    MILES_GRID_STRIDE(i, n) {
        double v = x[i];
        acc += v * v;
    }
    acc = miles_block_sum_d(acc, sh);
    if (threadIdx.x == 0) ws[blockIdx.x] = acc;
}

/* Stage 2 (one block): norm = (float)sqrt(sum ws), as the CPU. */
__global__ void sumsq_final_kernel(float *norm, const double *ws, int nws) {
    __shared__ double sh[32];
    double acc = 0.0;
    for (int i = threadIdx.x; i < nws; i += blockDim.x) acc += ws[i];
    acc = miles_block_sum_d(acc, sh);
    if (threadIdx.x == 0) norm[0] = (float)sqrt(acc);
}

__global__ void clip_kernel(float *g, size_t n, const float *norm, float max_norm) {
    float coef = max_norm / (norm[0] + 1e-6f);
    if (!(coef < 1.0f)) return; /* also NaN norm: leave the grads (CPU: coef < 1 false) */
    MILES_GRID_STRIDE(i, n) g[i] *= coef;
}

__global__ void nonfinite_kernel(int32_t *found, const float *x, size_t n) {
    int bad = 0;
    MILES_GRID_STRIDE(i, n) bad |= !isfinite(x[i]);
    /* one store per warp at most; all writers store the same value */
    if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) *found = 1;
}

extern "C" int grad_norm_cuda(float *norm, const float *x, size_t n, float *workspace,
                              miles_cuda_stream stream) {
    cudaStream_t s = miles_stream(stream);
    if (((uintptr_t)workspace & 7) != 0)
        return miles_error(MILES_EINVAL, "grad_norm_cuda: workspace must be 8-byte aligned");
    double *ws = (double *)workspace;
    MILES_LAUNCH(sumsq_partial_kernel, MILES_CUDA_REDUCE_BLOCKS, MILES_CUDA_THREADS, 0, s, ws, x, n);
    MILES_LAUNCH(sumsq_final_kernel, 1, MILES_CUDA_REDUCE_BLOCKS, 0, s, norm, ws, MILES_CUDA_REDUCE_BLOCKS);
    return MILES_OK;
}

extern "C" int clip_grad_norm_cuda(float *grad, size_t n, float max_norm, float *norm,
                                   float *workspace, miles_cuda_stream stream) {
    MILES_TRY(grad_norm_cuda(norm, grad, n, workspace, stream));
    if (n == 0) return MILES_OK;
    MILES_LAUNCH(clip_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), grad, n, norm,
                 max_norm);
    return MILES_OK;
}

extern "C" int nonfinite_check_cuda(int32_t *found, const float *x, size_t n,
                                    miles_cuda_stream stream) {
    if (n == 0) return MILES_OK;
    MILES_LAUNCH(nonfinite_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), found, x, n);
    return MILES_OK;
}

/* ---------------------------------------------------------------- AdamW */

struct AdamWScalars {
    float b1, b2, omb1, omb2, step_size, bc2_sqrt, eps, decay_mul, lr;
};

/* step_dev (non-NULL): the step is *step_dev + 1, read on the device (the
 * fp32-master path's counter, which advances only on taken fp16 steps); the
 * bias corrections then come from it with the host's arithmetic (double pow,
 * rounded to float once), computed by every thread (a few flops per thread) */
__global__ void adamw_kernel(float *P, const float *G, float *M, float *V, const uint8_t *decay,
                             size_t n, AdamWScalars k, const float *grad_scale,
                             const int32_t *found_inf, const int64_t *step_dev) {
    if (found_inf && *found_inf) return; /* skipped step (GradScaler) */
    if (step_dev) {
        const double t = (double)(*step_dev + 1);
        k.step_size = (float)((double)k.lr / (1.0 - pow((double)k.b1, t)));
        k.bc2_sqrt = (float)sqrt(1.0 - pow((double)k.b2, t));
    }
    float gs = grad_scale ? *grad_scale : 1.0f;
    MILES_GRID_STRIDE(i, n) {
        float g = grad_scale ? G[i] * gs : G[i];
        float dm = (!decay || decay[i]) ? k.decay_mul : 1.0f;
        float p = P[i] * dm;
        float mi = M[i] * k.b1 + k.omb1 * g;
        float vi = V[i] * k.b2 + k.omb2 * (g * g);
        M[i] = mi;
        V[i] = vi;
        float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
        P[i] = p - k.step_size * (mi / denom);
    }
}

static int adamw_launch(float *param, const float *grad, float *m, float *v, const uint8_t *decay, size_t n,
                        MilesCudaAdamW hp, const float *grad_scale, const int32_t *found_inf,
                        const int64_t *step_dev, miles_cuda_stream stream) {
    if (!(hp.lr >= 0.0f) || !isfinite(hp.lr) || !(hp.beta1 >= 0.0f && hp.beta1 < 1.0f) ||
        !(hp.beta2 >= 0.0f && hp.beta2 < 1.0f) || !(hp.eps >= 0.0f) || !(hp.weight_decay >= 0.0f) ||
        hp.step < 1)
        return miles_error(MILES_EINVAL,
                           "adamw_step_cuda: invalid hyper-parameters (lr %g, betas %g/%g, eps %g,"
                           " weight decay %g, step %lld)",
                           (double)hp.lr, (double)hp.beta1, (double)hp.beta2, (double)hp.eps,
                           (double)hp.weight_decay, (long long)hp.step);
    if (n == 0) return MILES_OK;
    /* the same host arithmetic as miles_adamw_step */
    const double b1 = hp.beta1, b2 = hp.beta2;
    const double bc1 = 1.0 - pow(b1, (double)hp.step), bc2 = 1.0 - pow(b2, (double)hp.step);
    AdamWScalars k;
    k.b1 = (float)b1;
    k.b2 = (float)b2;
    k.omb1 = (float)(1.0 - b1);
    k.omb2 = (float)(1.0 - b2);
    k.step_size = (float)((double)hp.lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.eps = hp.eps;
    k.decay_mul = (float)(1.0 - (double)hp.lr * (double)hp.weight_decay);
    k.lr = hp.lr;
    MILES_LAUNCH(adamw_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), param, grad, m, v,
                 decay, n, k, grad_scale, found_inf, step_dev);
    return MILES_OK;
}

extern "C" int adamw_step_cuda(float *param, const float *grad, float *m, float *v,
                               const uint8_t *decay, size_t n, MilesCudaAdamW hp,
                               const float *grad_scale, const int32_t *found_inf,
                               miles_cuda_stream stream) {
    return adamw_launch(param, grad, m, v, decay, n, hp, grad_scale, found_inf, NULL, stream);
}

extern "C" int adamw_step_dev_cuda(float *param, const float *grad, float *m, float *v, const uint8_t *decay,
                                   size_t n, MilesCudaAdamW hp, const int64_t *step_dev, const int32_t *found_inf,
                                   miles_cuda_stream stream) {
    if (!step_dev) return miles_error(MILES_EINVAL, "adamw_step_dev_cuda: no device step counter");
    hp.step = 1; /* validated as such; the kernel takes *step_dev + 1 */
    return adamw_launch(param, grad, m, v, decay, n, hp, NULL, found_inf, step_dev, stream);
}

/* ---------------------------------------------------------- loss scaler */

__global__ void scaler_init_kernel(MilesLossScalerState *st, float init_scale) {
    st->scale = init_scale;
    st->inv_scale = (float)(1.0 / (double)init_scale);
    st->growth_tracker = 0;
    st->found_inf = 0;
}

/* torch._amp_foreach_non_finite_check_and_unscale_: the check is on the
 * incoming (scaled) value. */
__global__ void unscale_check_kernel(float *g, size_t n, MilesLossScalerState *st) {
    float inv = st->inv_scale;
    int bad = 0;
    MILES_GRID_STRIDE(i, n) {
        float x = g[i];
        bad |= !isfinite(x);
        g[i] = inv == 1.0f ? x : x * inv;
    }
    if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) st->found_inf = 1;
}

/* torch._amp_update_scale_ (amp_update_scale_cuda_kernel) */
__global__ void scaler_update_kernel(MilesLossScalerState *st, float growth, float backoff,
                                     int interval, MilesCudaTrainStats *stats) {
    if (stats) { /* the fp32-master path's step counter and skip count */
        if (st->found_inf) stats->skipped += 1;
        else stats->steps += 1;
    }
    if (st->found_inf) {
        st->scale = st->scale * backoff;
        st->growth_tracker = 0;
    } else {
        int successful = st->growth_tracker + 1;
        if (successful == interval) {
            float ns = st->scale * growth;
            if (isfinite(ns)) st->scale = ns;
            st->growth_tracker = 0;
        } else {
            st->growth_tracker = successful;
        }
    }
    /* GradScaler.unscale_: inv_scale = scale.double().reciprocal().float() */
    st->inv_scale = (float)(1.0 / (double)st->scale);
    st->found_inf = 0;
}

extern "C" int loss_scaler_init_cuda(MilesLossScalerState *state, float init_scale,
                                     miles_cuda_stream stream) {
    if (!(init_scale > 0.0f) || !isfinite(init_scale))
        return miles_error(MILES_EINVAL, "loss_scaler_init_cuda: initial scale %g must be a"
                           " positive finite number", (double)init_scale);
    MILES_LAUNCH(scaler_init_kernel, 1, 1, 0, miles_stream(stream), state, init_scale);
    return MILES_OK;
}

extern "C" int amp_unscale_check_cuda(float *grad, size_t n, MilesLossScalerState *state,
                                      miles_cuda_stream stream) {
    if (n == 0) return MILES_OK;
    MILES_LAUNCH(unscale_check_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), grad, n,
                 state);
    return MILES_OK;
}

extern "C" int loss_scaler_update_cuda(MilesLossScalerState *state, float growth_factor,
                                       float backoff_factor, int growth_interval,
                                       miles_cuda_stream stream) {
    if (!(growth_factor > 1.0f) || !(backoff_factor > 0.0f && backoff_factor < 1.0f) ||
        growth_interval < 1)
        return miles_error(MILES_EINVAL, "loss_scaler_update_cuda: growth %g must be > 1,"
                           " backoff %g in (0,1), interval %d >= 1", (double)growth_factor,
                           (double)backoff_factor, growth_interval);
    MILES_LAUNCH(scaler_update_kernel, 1, 1, 0, miles_stream(stream), state, growth_factor, backoff_factor,
                 growth_interval, (MilesCudaTrainStats *)NULL);
    return MILES_OK;
}

extern "C" int loss_scaler_update_count_cuda(MilesLossScalerState *state, float growth_factor, float backoff_factor,
                                             int growth_interval, MilesCudaTrainStats *stats,
                                             miles_cuda_stream stream) {
    if (!stats) return miles_error(MILES_EINVAL, "loss_scaler_update_count_cuda: no statistics block");
    if (!(growth_factor > 1.0f) || !(backoff_factor > 0.0f && backoff_factor < 1.0f) || growth_interval < 1)
        return miles_error(MILES_EINVAL, "loss_scaler_update_count_cuda: growth %g must be > 1, backoff %g in "
                           "(0,1), interval %d >= 1", (double)growth_factor, (double)backoff_factor, growth_interval);
    MILES_LAUNCH(scaler_update_kernel, 1, 1, 0, miles_stream(stream), state, growth_factor, backoff_factor,
                 growth_interval, stats);
    return MILES_OK;
}

/* ============================================ fused optimizer (fast path) */

/* Pass 1: per block, sum of (g * inv_scale)^2 in double and any non-finite
 * g; the grid is always MILES_CUDA_REDUCE_BLOCKS blocks (deterministic). */
__global__ void grad_prep_partial_kernel(double *ws, int32_t *flags, const float *g, size_t n,
                                         const MilesLossScalerState *scaler) {
    __shared__ double sh[32];
    const float inv = scaler ? scaler->inv_scale : 1.0f;
    double acc = 0.0;
    int bad = 0;
    MILES_GRID_STRIDE(i, n) {
        const float x = g[i];
        bad |= !isfinite(x);
        const double u = (double)(x * inv);
        acc += u * u;
    }
    acc = miles_block_sum_d(acc, sh);
    bad = __syncthreads_or(bad);
    if (threadIdx.x == 0) {
        ws[blockIdx.x] = acc;
        flags[blockIdx.x] = bad;
    }
}

/* One block: the norm of the unscaled gradients, the overflow flag, and the
 * one coefficient AdamW multiplies every gradient by: inv_scale * clip. */
__global__ void grad_prep_final_kernel(MilesCudaOptState *st, MilesLossScalerState *scaler, const double *ws,
                                       const int32_t *flags, int nws, float max_norm) {
    __shared__ double sh[32];
    double acc = 0.0;
    int bad = 0;
    for (int i = threadIdx.x; i < nws; i += blockDim.x) {
        acc += ws[i];
        bad |= flags[i];
    }
    acc = miles_block_sum_d(acc, sh);
    bad = __syncthreads_or(bad);
    if (threadIdx.x == 0) {
        /* an overflow the backward flagged itself (fp16 range checks) counts too */
        if (scaler && scaler->found_inf) bad = 1;
        const float norm = (float)sqrt(acc);
        const float inv = scaler ? scaler->inv_scale : 1.0f;
        float coef = inv;
        if (max_norm > 0.0f) {
            const float c = max_norm / (norm + 1e-6f); /* torch clip_grad_norm_ (NaN: no clipping) */
            if (c < 1.0f) coef = inv * c;
        }
        st->norm = norm;
        st->coef = coef;
        /* an overflow skips the step only under a loss scaler (fp16, GradScaler);
         * without one (bf16, fp32) the step is taken, as in PyTorch */
        st->found_inf = scaler ? bad : 0;
        if (scaler && bad) scaler->found_inf = 1;
    }
}

/* One block per chunk of one tensor: AdamW (optim.c's arithmetic) at the
 * chunk's group lr (step lr * lr_scale) on g * coef, the bias corrections from the device step counter, and the
 * 16-bit copy of the new weight when the tensor has one.  A step with
 * found_inf set changes nothing. */
template <int DT>
__global__ void adamw_fused_kernel(float *P, const float *G, float *M, float *V, uint16_t *half,
                                   const MilesCudaChunk *chunks, MilesCudaAdamW hp, const float *lr_dev,
                                   const MilesCudaOptState *st) {
    if (st->found_inf) return;
    const MilesCudaChunk ch = chunks[blockIdx.x];
    const double t = (double)(st->step + 1);
    const double lr0 = lr_dev ? (double)lr_dev[0] : (double)hp.lr;
    /* the group lr, rounded to float once as the CPU's miles_adamw_group_lr */
    const double lr = ch.lr_scale == 1.0 ? lr0 : (double)(float)(lr0 * ch.lr_scale);
    const double b1 = hp.beta1, b2 = hp.beta2;
    const float step_size = (float)(lr / (1.0 - pow(b1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(b2, t));
    const float fb1 = (float)b1, fb2 = (float)b2, omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
    const float dm = ch.decay ? (float)(1.0 - lr * (double)hp.weight_decay) : 1.0f;
    const float coef = st->coef;
    for (int i = threadIdx.x; i < ch.n; i += blockDim.x) {
        const size_t idx = (size_t)ch.off + (size_t)i;
        const float g = G[idx] * coef;
        const float p = P[idx] * dm;
        const float mi = M[idx] * fb1 + omb1 * g;
        const float vi = V[idx] * fb2 + omb2 * (g * g);
        M[idx] = mi;
        V[idx] = vi;
        const float np = p - step_size * (mi / (sqrtf(vi) / bc2_sqrt + hp.eps));
        P[idx] = np;
        if (ch.half >= 0) half[(size_t)ch.half + (size_t)i] = miles_f2h<DT>(np);
    }
}

/* After the step: the step counter counts taken steps only (GradScaler). */
__global__ void opt_finish_kernel(MilesCudaOptState *st) {
    st->last_skipped = st->found_inf;
    if (!st->found_inf) st->step++;
    st->found_inf = 0;
}

template <int DT>
__global__ void params_to_half_kernel(uint16_t *half, const float *P, const MilesCudaChunk *chunks) {
    const MilesCudaChunk ch = chunks[blockIdx.x];
    if (ch.half < 0) return;
    for (int i = threadIdx.x; i < ch.n; i += blockDim.x)
        half[(size_t)ch.half + (size_t)i] = miles_f2h<DT>(P[(size_t)ch.off + (size_t)i]);
}

extern "C" int grad_prepare_cuda(MilesCudaOptState *st, MilesLossScalerState *scaler, const float *grad, size_t n,
                                 float max_norm, float *workspace, miles_cuda_stream stream) {
    if (((uintptr_t)workspace & 7) != 0)
        return miles_error(MILES_EINVAL, "grad_prepare_cuda: workspace must be 8-byte aligned");
    cudaStream_t s = miles_stream(stream);
    double *ws = (double *)workspace;
    int32_t *flags = (int32_t *)(ws + MILES_CUDA_REDUCE_BLOCKS);
    MILES_LAUNCH(grad_prep_partial_kernel, MILES_CUDA_REDUCE_BLOCKS, MILES_CUDA_THREADS, 0, s, ws, flags, grad, n,
                 (const MilesLossScalerState *)scaler);
    MILES_LAUNCH(grad_prep_final_kernel, 1, MILES_CUDA_REDUCE_BLOCKS, 0, s, st, scaler, (const double *)ws,
                 (const int32_t *)flags, MILES_CUDA_REDUCE_BLOCKS, max_norm);
    return MILES_OK;
}

extern "C" int adamw_fused_cuda(float *param, const float *grad, float *m, float *v, void *half, int dtype,
                                const MilesCudaChunk *chunks, int nchunks, MilesCudaAdamW hp, const float *lr_dev,
                                MilesCudaOptState *st, miles_cuda_stream stream) {
    if (!(hp.beta1 >= 0.0f && hp.beta1 < 1.0f) || !(hp.beta2 >= 0.0f && hp.beta2 < 1.0f) || !(hp.eps >= 0.0f) ||
        !(hp.weight_decay >= 0.0f) || (!lr_dev && (!(hp.lr >= 0.0f) || !isfinite(hp.lr))))
        return miles_error(MILES_EINVAL, "adamw_fused_cuda: invalid hyper-parameters (lr %g, betas %g/%g, eps %g,"
                           " weight decay %g)", (double)hp.lr, (double)hp.beta1, (double)hp.beta2, (double)hp.eps,
                           (double)hp.weight_decay);
    if (dtype != MILES_CUDA_F16 && dtype != MILES_CUDA_BF16)
        return miles_error(MILES_EINVAL, "adamw_fused_cuda: dtype %d is neither fp16 nor bf16", dtype);
    cudaStream_t s = miles_stream(stream);
    if (nchunks > 0) {
        if (dtype == MILES_CUDA_BF16)
            MILES_LAUNCH(adamw_fused_kernel<MILES_CUDA_BF16>, (unsigned)nchunks, MILES_CUDA_THREADS, 0, s, param, grad,
                         m, v, (uint16_t *)half, chunks, hp, lr_dev, (const MilesCudaOptState *)st);
        else
            MILES_LAUNCH(adamw_fused_kernel<MILES_CUDA_F16>, (unsigned)nchunks, MILES_CUDA_THREADS, 0, s, param, grad,
                         m, v, (uint16_t *)half, chunks, hp, lr_dev, (const MilesCudaOptState *)st);
    }
    MILES_LAUNCH(opt_finish_kernel, 1, 1, 0, s, st);
    return MILES_OK;
}

extern "C" int params_to_half_cuda(void *half, const float *param, const MilesCudaChunk *chunks, int nchunks,
                                   int dtype, miles_cuda_stream stream) {
    if (nchunks <= 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    if (dtype == MILES_CUDA_BF16)
        MILES_LAUNCH(params_to_half_kernel<MILES_CUDA_BF16>, (unsigned)nchunks, MILES_CUDA_THREADS, 0, s,
                     (uint16_t *)half, param, chunks);
    else
        MILES_LAUNCH(params_to_half_kernel<MILES_CUDA_F16>, (unsigned)nchunks, MILES_CUDA_THREADS, 0, s,
                     (uint16_t *)half, param, chunks);
    return MILES_OK;
}
