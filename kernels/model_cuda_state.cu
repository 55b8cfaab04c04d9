/*
 * model_cuda_state.cu — the GPU model's state: build/free from a CPU model,
 * gradient clipping, AdamW (optim.c's torch semantics, decay groups from the
 * CPU tensor table), the fp16 dynamic loss scaler (GradScaler semantics),
 * AdamW state and weight copies for checkpoints.  Forward/backward are in
 * model_cuda.cu.
 */
#include "model_cuda_internal.h"
extern "C" {
#include "optim_internal.h" /* miles_adamw_lr_scale: the one parameter-group rule */
}

/* ------------------------------------------------------- precision names */

extern "C" int miles_cuda_precision_parse(const char *name) {
    if (!name) return miles_error(MILES_EINVAL, "precision: NULL name");
    if (!strcmp(name, "fp32")) return MILES_CUDA_PREC_FP32;
    if (!strcmp(name, "tf32")) return MILES_CUDA_PREC_TF32;
    if (!strcmp(name, "fp16")) return MILES_CUDA_PREC_FP16;
    if (!strcmp(name, "bf16")) return MILES_CUDA_PREC_BF16;
    return miles_error(MILES_EINVAL, "precision \"%s\" is not one of fp32, tf32, fp16, bf16", name);
}

extern "C" const char *miles_cuda_precision_name(int p) {
    switch (p) {
    case MILES_CUDA_PREC_FP32: return "fp32";
    case MILES_CUDA_PREC_TF32: return "tf32";
    case MILES_CUDA_PREC_FP16: return "fp16";
    case MILES_CUDA_PREC_BF16: return "bf16";
    default: return "?";
    }
}

/* ---------------------------------------------------------- optimizer */

/* fp16 on the fp32 path: the loss scale and the AdamW step counter advance
 * on the device (skips decided there); the host mirrors cm->scale / cm->t
 * catch up here, one synchronization, only when someone asks. */
static int scaler_sync_host(MilesCudaModel *cm) {
    if (!cm->scaler_stale) return MILES_OK;
    MILES_CUDA_TRY(cudaMemcpyAsync(&cm->hscaler[1], cm->dscaler, sizeof(MilesLossScalerState), cudaMemcpyDeviceToHost,
                                   cm->stream));
    MILES_CUDA_TRY(cudaMemcpyAsync(cm->hstats, cm->dstats, sizeof *cm->hstats, cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    cm->scale = cm->hscaler[1].scale;
    cm->t = cm->hstats->steps;
    cm->scaler_stale = 0;
    return MILES_OK;
}

static int unscale_if_needed(MilesCudaModel *cm) {
    if (!cm->use_scaler || cm->grads_unscaled) return MILES_OK;
    MILES_TRY(amp_unscale_check_cuda(cm->grads, cm->nparams, cm->dscaler, S(cm)));
    cm->grads_unscaled = 1;
    return MILES_OK;
}

extern "C" int miles_cuda_model_clip_grad_norm(MilesCudaModel *cm, float max_norm, float *norm) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_clip_grad_norm: model is NULL");
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) return fast_clip_grad_norm(cm, max_norm, norm);
#endif
    MILES_TRY(unscale_if_needed(cm));
    MILES_TRY(clip_grad_norm_cuda(cm->grads, cm->nparams, max_norm, cm->dnorm, cm->ws, S(cm)));
    if (norm) {
        MILES_CUDA_TRY(cudaMemcpyAsync(cm->hnorm, cm->dnorm, sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
        MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
        *norm = cm->hnorm[0];
    }
    return MILES_OK;
}

/* Both moments or neither: a failed second allocation frees the first, so a
 * later call starts again instead of finding m set and v NULL. */
static int ensure_moments(MilesCudaModel *cm) {
    if (cm->m && cm->v) return MILES_OK;
    const size_t bytes = cm->nparams * sizeof(float);
    float *m = NULL, *v = NULL;
    cudaError_t e = cudaMalloc(&m, bytes);
    if (e == cudaSuccess) e = cudaMalloc(&v, bytes);
    if (e == cudaSuccess) e = cudaMemsetAsync(m, 0, bytes, cm->stream);
    if (e == cudaSuccess) e = cudaMemsetAsync(v, 0, bytes, cm->stream);
    if (e != cudaSuccess) {
        cudaFree(m);
        cudaFree(v);
        cudaGetLastError();
        return miles_error(e == cudaErrorMemoryAllocation ? MILES_ENOMEM : MILES_EINTERNAL,
                           "cuda model: cannot allocate the AdamW moments (2 x %.1f MB): %s", bytes / 1e6,
                           cudaGetErrorString(e));
    }
    cm->m = m;
    cm->v = v;
    return MILES_OK;
}

/* Per-element decay flags from the tensor table (1 byte per parameter). */
static int ensure_decay_mask(MilesCudaModel *cm, int decay_all) {
    if (decay_all || cm->decay_mask_all == 0) return MILES_OK;
    if (!cm->decay_mask) MILES_CUDA_TRY(cudaMalloc(&cm->decay_mask, cm->nparams));
    uint8_t *h = (uint8_t *)malloc(cm->nparams);
    if (!h) return miles_error(MILES_ENOMEM, "cuda model: decay mask");
    for (int i = 0; i < cm->ntensors; i++)
        memset(h + cm->tensors[i].offset, cm->tensors[i].decay ? 1 : 0, cm->tensors[i].numel);
    /* on the model's stream (a plain cudaMemcpy runs on the legacy stream, which a
     * non-blocking stream does not wait for); h is freed once the copy is done */
    cudaError_t e = cudaMemcpyAsync(cm->decay_mask, h, cm->nparams, cudaMemcpyHostToDevice, cm->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(cm->stream);
    free(h);
    if (e != cudaSuccess) return miles_cuda_fail(e, __FILE__, __LINE__, "cudaMemcpyAsync(decay mask)");
    cm->decay_mask_all = 0;
    return MILES_OK;
}

extern "C" int miles_cuda_model_adamw_step(MilesCudaModel *cm, float lr, const MilesAdamWConfig *cfg,
                                           int *skipped) {
    if (!cm || !cfg) return miles_error(MILES_EINVAL, "miles_cuda_model_adamw_step: NULL argument");
    if (skipped) *skipped = 0;
    if (!(lr >= 0.0f) || !isfinite(lr))
        return miles_error(MILES_EINVAL, "adamw: learning rate %g is invalid", (double)lr);
    MILES_TRY(ensure_moments(cm));
    MILES_TRY(miles_adamw_check_groups(cfg));
    /* parameter groups (head lr, layer decay): per-tensor lr from the CPU's rule */
    const int nl = cm->cfg.num_hidden_layers;
    int grouped = 0;
    for (int i = 0; i < cm->ntensors && !grouped; i++)
        grouped = miles_adamw_lr_scale(cfg, cm->tensors[i].name, nl) != 1.0;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) /* the groups' lr multipliers live in the fused optimizer's chunk table */
        return fast_adamw_step(cm, lr, cfg, skipped);
#endif
    MILES_TRY(ensure_decay_mask(cm, cfg->decay_all));
    MILES_TRY(unscale_if_needed(cm));
    MilesCudaAdamW hp = adamw_hp(cfg, lr, cm->t + 1);
    const uint8_t *mask = cfg->decay_all ? NULL : cm->decay_mask;
    int32_t *found = cm->use_scaler ? &cm->dscaler->found_inf : NULL;
    /* fp16: the step counter lives on the device (advanced by the scaler
     * update on taken steps), so the skip decision needs no host round trip */
    const int64_t *dstep = cm->use_scaler ? &cm->dstats->steps : NULL;
    if (grouped) {
        /* one launch per tensor at its group's lr (torch: per-group step size
         * and decay factor); found_inf stays set for all of them until the
         * scaler update, so a skipped step skips every tensor */
        for (int i = 0; i < cm->ntensors; i++) {
            const MilesTensor *tn = &cm->tensors[i];
            MilesCudaAdamW h = hp;
            h.lr = miles_adamw_group_lr(lr, miles_adamw_lr_scale(cfg, tn->name, nl));
            if (dstep)
                MILES_TRY(adamw_step_dev_cuda(cm->params + tn->offset, cm->grads + tn->offset, cm->m + tn->offset,
                                              cm->v + tn->offset, mask ? mask + tn->offset : NULL, tn->numel, h, dstep,
                                              found, S(cm)));
            else
                MILES_TRY(adamw_step_cuda(cm->params + tn->offset, cm->grads + tn->offset, cm->m + tn->offset,
                                          cm->v + tn->offset, mask ? mask + tn->offset : NULL, tn->numel, h, NULL,
                                          found, S(cm)));
        }
    }
    if (!cm->use_scaler) {
        if (!grouped)
            MILES_TRY(adamw_step_cuda(cm->params, cm->grads, cm->m, cm->v, mask, cm->nparams, hp, NULL, NULL, S(cm)));
        cm->t++;
        return MILES_OK;
    }
    /* fp16: the kernel leaves everything untouched when found_inf is set;
     * the scaler update then counts the step (taken or skipped) on the
     * device and moves the scale there.  Only a caller that asks for
     * *skipped waits: the flag (before the update clears it) and the new
     * scale and step count come back in one sync, as GradScaler.step/update
     * do; the trainer asks for none (read_stats at its log intervals). */
    if (!grouped)
        MILES_TRY(adamw_step_dev_cuda(cm->params, cm->grads, cm->m, cm->v, mask, cm->nparams, hp, dstep, found, S(cm)));
    if (skipped)
        MILES_CUDA_TRY(cudaMemcpyAsync(&cm->hscaler[0], cm->dscaler, sizeof(MilesLossScalerState),
                                       cudaMemcpyDeviceToHost, cm->stream));
    MILES_TRY(loss_scaler_update_count_cuda(cm->dscaler, cm->growth, cm->backoff, cm->interval, cm->dstats, S(cm)));
    cm->scaler_stale = 1;
    if (skipped) {
        MILES_TRY(scaler_sync_host(cm));
        *skipped = cm->hscaler[0].found_inf != 0;
    }
    return MILES_OK;
}

extern "C" int64_t miles_cuda_model_adamw_steps(const MilesCudaModel *cm) {
    if (!cm) return 0;
#ifndef MILES_CUDA_HOST_EMULATION
    /* fp16 16-bit path: the step counter lives on the device (skips are decided there) */
    if (cm->fast && fast_sync_host((MilesCudaModel *)cm) != MILES_OK) return -1;
#endif
    if (scaler_sync_host((MilesCudaModel *)cm) != MILES_OK) return -1;
    return cm->t;
}

extern "C" int miles_cuda_model_get_adamw_state(MilesCudaModel *cm, float *m, float *v, int64_t *t) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_get_adamw_state: model is NULL");
    MILES_TRY(ensure_moments(cm));
    if (m) MILES_CUDA_TRY(cudaMemcpyAsync(m, cm->m, cm->nparams * sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
    if (v) MILES_CUDA_TRY(cudaMemcpyAsync(v, cm->v, cm->nparams * sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) MILES_TRY(fast_sync_host(cm));
#endif
    MILES_TRY(scaler_sync_host(cm));
    if (t) *t = cm->t;
    return MILES_OK;
}

extern "C" int miles_cuda_model_set_adamw_state(MilesCudaModel *cm, const float *m, const float *v, int64_t t) {
    if (!cm || t < 0) return miles_error(MILES_EINVAL, "miles_cuda_model_set_adamw_state: bad argument");
    MILES_TRY(ensure_moments(cm));
    if (m) MILES_CUDA_TRY(cudaMemcpyAsync(cm->m, m, cm->nparams * sizeof(float), cudaMemcpyHostToDevice, cm->stream));
    if (v) MILES_CUDA_TRY(cudaMemcpyAsync(cm->v, v, cm->nparams * sizeof(float), cudaMemcpyHostToDevice, cm->stream));
    /* the fp32 path's device step counter (fp16); pageable source: staged now */
    MILES_CUDA_TRY(cudaMemcpyAsync(&cm->dstats->steps, &t, sizeof t, cudaMemcpyHostToDevice, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) MILES_TRY(fast_set_step(cm, t));
#endif
    cm->t = t;
    return MILES_OK;
}

extern "C" int miles_cuda_model_set_loss_scaler(MilesCudaModel *cm, float init_scale, float growth, float backoff,
                                                int growth_interval) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_set_loss_scaler: model is NULL");
    if (!(init_scale > 0.0f) || !isfinite(init_scale) || !(growth > 1.0f) || !(backoff > 0.0f && backoff < 1.0f) ||
        growth_interval < 1)
        return miles_error(MILES_EINVAL, "loss scaler: init %g must be > 0, growth %g > 1, backoff %g in (0,1),"
                           " interval %d >= 1", (double)init_scale, (double)growth, (double)backoff, growth_interval);
    cm->growth = growth;
    cm->backoff = backoff;
    cm->interval = growth_interval;
    MILES_TRY(loss_scaler_init_cuda(cm->dscaler, init_scale, S(cm)));
    cm->scale = cm->use_scaler ? init_scale : 1.0f;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fs) { /* growth, backoff and interval are captured */
        fast_graphs_reset(cm);
        cm->fs->host_stale = 0;
    }
#endif
    return MILES_OK;
}

extern "C" int miles_cuda_model_get_loss_scaler_state(MilesCudaModel *cm, float *scale, int32_t *growth_tracker) {
    if (!cm || !scale || !growth_tracker)
        return miles_error(MILES_EINVAL, "miles_cuda_model_get_loss_scaler_state: NULL argument");
    *scale = 0.0f;
    *growth_tracker = 0;
    if (!cm->use_scaler) return MILES_OK;
    MilesLossScalerState h;
    MILES_CUDA_TRY(cudaMemcpyAsync(&h, cm->dscaler, sizeof h, cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    *scale = h.scale;
    *growth_tracker = h.growth_tracker;
    return MILES_OK;
}

extern "C" int miles_cuda_model_set_loss_scaler_state(MilesCudaModel *cm, float scale, int32_t growth_tracker) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_set_loss_scaler_state: model is NULL");
    if (!(scale > 0.0f) || !isfinite(scale) || growth_tracker < 0)
        return miles_error(MILES_EINVAL, "loss scaler state: scale %g must be > 0 and finite, growth tracker %d >= 0",
                           (double)scale, (int)growth_tracker);
    if (!cm->use_scaler) return MILES_OK; /* nothing to restore (fp32, tf32, bf16) */
    /* the device state is read at every step (graphs included): no re-capture */
    MILES_TRY(loss_scaler_init_cuda(cm->dscaler, scale, S(cm)));
    MILES_CUDA_TRY(cudaMemcpyAsync(&cm->dscaler->growth_tracker, &growth_tracker, sizeof growth_tracker,
                                   cudaMemcpyHostToDevice, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    cm->scale = scale;
    return MILES_OK;
}

extern "C" int miles_cuda_model_train_step(MilesCudaModel *cm, const MilesBatch *batch, float loss_scale,
                                           float max_norm, float lr, const MilesAdamWConfig *cfg, float *loss,
                                           float *norm, int *skipped) {
    if (!cm || !batch || !cfg) return miles_error(MILES_EINVAL, "miles_cuda_model_train_step: NULL argument");
    if (!(lr >= 0.0f) || !isfinite(lr))
        return miles_error(MILES_EINVAL, "adamw: learning rate %g is invalid", (double)lr);
    if (skipped) *skipped = 0;
    MILES_TRY(ensure_moments(cm));
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) {
        MILES_TRY(miles_adamw_check_groups(cfg));
        return fast_train_step(cm, batch, loss_scale, max_norm, lr, cfg, loss, norm, skipped);
    }
#endif
    /* the fp32 path: the same calls in order */
    MILES_TRY(miles_cuda_model_zero_grad(cm));
    MILES_TRY(miles_cuda_model_forward(cm, batch, 1, NULL, NULL, NULL));
    MILES_TRY(miles_cuda_model_backward(cm, loss_scale));
    if (max_norm > 0.0f) MILES_TRY(miles_cuda_model_clip_grad_norm(cm, max_norm, norm));
    else if (norm) *norm = 0.0f;
    MILES_TRY(miles_cuda_model_adamw_step(cm, lr, cfg, skipped));
    if (loss) MILES_TRY(miles_cuda_model_last_loss(cm, loss));
    return MILES_OK;
}

extern "C" int miles_cuda_model_graphs(const MilesCudaModel *cm, long *launches, long *captures) {
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm && cm->fs) {
        if (launches) *launches = cm->fs->graph_launches;
        if (captures) *captures = cm->fs->graph_captures;
        return fast_graph_count(cm);
    }
#endif
    if (launches) *launches = 0;
    if (captures) *captures = 0;
    return 0;
}

extern "C" float miles_cuda_model_loss_scale(const MilesCudaModel *cm) {
    if (!cm || !cm->use_scaler) return 1.0f;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) fast_sync_host((MilesCudaModel *)cm);
#endif
    scaler_sync_host((MilesCudaModel *)cm);
    return cm->scale;
}

/* ------------------------------------------------ deferred statistics */

extern "C" int miles_cuda_model_add_loss(MilesCudaModel *cm, float divisor) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_add_loss: model is NULL");
    if (!cm->fwd_valid) return miles_error(MILES_EINVAL, "miles_cuda_model_add_loss: no successful forward");
    if (!(divisor > 0.0f) || !isfinite(divisor))
        return miles_error(MILES_EINVAL, "miles_cuda_model_add_loss: divisor %g must be > 0", (double)divisor);
    return train_stats_add_loss_cuda(cm->dstats, cm->dloss, cm->loss.w_cls, cm->loss.w_reg, cm->have_labels,
                                     cm->have_vel, divisor, S(cm));
}

extern "C" int miles_cuda_model_read_stats(MilesCudaModel *cm, MilesCudaStats *out) {
    if (!cm || !out) return miles_error(MILES_EINVAL, "miles_cuda_model_read_stats: NULL argument");
    const float *norm = cm->dnorm;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) norm = &cm->fs->opt->norm;
#endif
    /* every value into the pinned block, then the one synchronization */
    MILES_CUDA_TRY(cudaMemcpyAsync(cm->hstats, cm->dstats, sizeof *cm->hstats, cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaMemcpyAsync(cm->hnorm, norm, sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
    if (cm->use_scaler)
        MILES_CUDA_TRY(cudaMemcpyAsync(&cm->hscaler[1], cm->dscaler, sizeof(MilesLossScalerState),
                                       cudaMemcpyDeviceToHost, cm->stream));
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast)
        MILES_CUDA_TRY(cudaMemcpyAsync(cm->hopt, cm->fs->opt, sizeof *cm->hopt, cudaMemcpyDeviceToHost, cm->stream));
#endif
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    /* the sum restarts (stream-ordered after the copy) */
    MILES_CUDA_TRY(cudaMemsetAsync(&cm->dstats->loss_sum, 0, sizeof(double), cm->stream));
    out->loss_sum = cm->hstats->loss_sum;
    out->grad_norm = cm->hnorm[0];
    out->skipped = cm->hstats->skipped;
    if (cm->use_scaler) cm->scale = cm->hscaler[1].scale;
    if (!cm->fast && cm->use_scaler) { /* the fp32 path's device step counter */
        cm->t = cm->hstats->steps;
        cm->scaler_stale = 0;
    }
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast && cm->use_scaler) { /* the device decided the skips: its counter is the truth */
        cm->t = cm->hopt->step;
        cm->fs->host_stale = 0;
    }
#endif
    out->loss_scale = cm->use_scaler ? cm->scale : 1.0f;
    out->steps = cm->t;
    return MILES_OK;
}

/* ------------------------------------------------------ build / params */

static float *tr(const MilesModel *cpu, float *base, const float *p) {
    return p ? base + (p - cpu->params) : NULL;
}

static void translate_params(MilesParams *D, const MilesModel *cpu, float *base) {
    const MilesParams *P = &cpu->P;
#define TRL(dst, src) ((dst).w = tr(cpu, base, (src).w), (dst).b = tr(cpu, base, (src).b))
    D->wte = tr(cpu, base, P->wte);
    D->wpe = tr(cpu, base, P->wpe);
    D->wtt = tr(cpu, base, P->wtt);
    TRL(D->emb_ln, P->emb_ln);
    for (int l = 0; l < cpu->cfg.num_hidden_layers; l++) {
        const MilesLayerP *s = &P->layers[l];
        MilesLayerP *d = &D->layers[l];
        TRL(d->q, s->q);
        TRL(d->k, s->k);
        TRL(d->v, s->v);
        TRL(d->attn_out, s->attn_out);
        TRL(d->ln1, s->ln1);
        TRL(d->inter, s->inter);
        TRL(d->out, s->out);
        TRL(d->ln2, s->ln2);
    }
    TRL(D->pooler, P->pooler);
    for (int i = 0; i < MILES_MAX_MLP; i++) {
        TRL(D->numeric[i], P->numeric[i]);
        TRL(D->fusion[i], P->fusion[i]);
    }
    TRL(D->cls, P->cls);
    TRL(D->reg, P->reg);
#undef TRL
}

static int same_layout(const MilesCudaModel *cm, const MilesModel *cpu) {
    if (cpu->nparams != cm->nparams || cpu->ntensors != cm->ntensors)
        return miles_error(MILES_ESHAPE, "cuda model: the CPU model has %zu parameters in %d tensors, the GPU"
                           " model %zu in %d", cpu->nparams, cpu->ntensors, cm->nparams, cm->ntensors);
    for (int i = 0; i < cm->ntensors; i++)
        if (cpu->tensors[i].numel != cm->tensors[i].numel || cpu->tensors[i].offset != cm->tensors[i].offset ||
            strcmp(cpu->tensors[i].name, cm->tensors[i].name))
            return miles_error(MILES_ESHAPE, "cuda model: tensor %d (%s) differs from the CPU model's (%s)", i,
                               cm->tensors[i].name, cpu->tensors[i].name);
    return MILES_OK;
}

extern "C" int miles_cuda_model_upload_params(MilesCudaModel *cm, const MilesModel *cpu) {
    if (!cm || !cpu) return miles_error(MILES_EINVAL, "miles_cuda_model_upload_params: NULL argument");
    MILES_TRY(same_layout(cm, cpu));
    MILES_CUDA_TRY(cudaMemcpyAsync(cm->params, cpu->params, cm->nparams * sizeof(float), cudaMemcpyHostToDevice,
                                   cm->stream));
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) MILES_TRY(fast_refresh_half(cm));
#endif
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_download_params(MilesCudaModel *cm, MilesModel *cpu) {
    if (!cm || !cpu) return miles_error(MILES_EINVAL, "miles_cuda_model_download_params: NULL argument");
    MILES_TRY(same_layout(cm, cpu));
    MILES_CUDA_TRY(cudaMemcpyAsync(cpu->params, cm->params, cm->nparams * sizeof(float), cudaMemcpyDeviceToHost,
                                   cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_download_grads(MilesCudaModel *cm, float *grads) {
    if (!cm || !grads) return miles_error(MILES_EINVAL, "miles_cuda_model_download_grads: NULL argument");
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) MILES_TRY(fast_materialize_zero(cm));
#endif
    MILES_CUDA_TRY(cudaMemcpyAsync(grads, cm->grads, cm->nparams * sizeof(float), cudaMemcpyDeviceToHost,
                                   cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_set_loss(MilesCudaModel *cm, const MilesLossConfig *loss) {
    if (!cm || !loss) return miles_error(MILES_EINVAL, "miles_cuda_model_set_loss: NULL argument");
    /* the trainer sets the loss before every micro-batch: the same settings
     * again cost nothing (no copy, no synchronization, graphs kept) */
    const int same_cw = cm->loss_set && loss->class_weight[0] == cm->loss.class_weight[0] &&
                        loss->class_weight[1] == cm->loss.class_weight[1];
    if (same_cw && loss->w_cls == cm->loss.w_cls && loss->w_reg == cm->loss.w_reg) return MILES_OK;
    /* Only the class weights live on the device; w_cls and w_reg are kernel
     * arguments (taken at launch), so a change of them alone, which data
     * parallelism makes at every micro-batch (each rank's share of the
     * global normalizers), needs no copy and no synchronization. */
    if (!same_cw) {
        /* pageable source: the copy is staged before the call returns; the host
         * copy changes only once the device has the new class weights */
        MILES_CUDA_TRY(cudaMemcpyAsync(cm->dcw, loss->class_weight, 2 * sizeof(float), cudaMemcpyHostToDevice,
                                       cm->stream));
        MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    }
    cm->loss = *loss;
    cm->shadow->loss = *loss;
    cm->loss_set = 1;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) fast_graphs_reset(cm); /* the loss weights are captured */
#endif
    return MILES_OK;
}

extern "C" void miles_cuda_model_set_dropout_key(MilesCudaModel *cm, uint64_t seed, uint64_t step) {
    if (!cm) return;
    cm->drop_seed = seed;
    cm->drop_step = step;
}

extern "C" void miles_cuda_model_free(MilesCudaModel *cm) {
    if (!cm) return;
    if (cm->stream) cudaStreamSynchronize(cm->stream);
    cudaFree(cm->params);
    cudaFree(cm->grads);
    cudaFree(cm->m);
    cudaFree(cm->v);
    cudaFree(cm->decay_mask);
    cudaFree(cm->arena);
    cudaFree(cm->scratch);
    cudaFree(cm->given);
    cudaFree(cm->small);
    cudaFreeHost(cm->pinned);
    cudaFreeHost(cm->hsmall);
    if (cm->staged) cudaEventDestroy(cm->staged);
    if (cm->stream) cudaStreamDestroy(cm->stream);
    free(cm->shadow);
    free(cm->tensors);
    free(cm->P.layers);
    free(cm->G.layers);
    free(cm->layer_acts);
    free(cm->slot);
    free(cm->cursor);
    free(cm->uniq);
#ifndef MILES_CUDA_HOST_EMULATION
    fast_free(cm);
#endif
    free(cm);
}

static int build_impl(MilesCudaModel *cm, const MilesModel *cpu) {
    const int L = cpu->cfg.num_hidden_layers;
    int dev = 0;
    MILES_CUDA_TRY(cudaGetDevice(&dev));
    MILES_TRY(miles_cuda_init(dev));
    if (cm->precision == MILES_CUDA_PREC_BF16) MILES_TRY(miles_cuda_require_bf16());
    MILES_CUDA_TRY(cudaStreamCreateWithFlags(&cm->stream, cudaStreamNonBlocking));
    MILES_CUDA_TRY(cudaEventCreateWithFlags(&cm->staged, cudaEventDisableTiming));

    cm->tensors = (MilesTensor *)malloc((size_t)cpu->ntensors * sizeof(MilesTensor));
    cm->P.layers = (MilesLayerP *)calloc((size_t)L, sizeof(MilesLayerP));
    cm->G.layers = (MilesLayerP *)calloc((size_t)L, sizeof(MilesLayerP));
    cm->layer_acts = (MilesLayerActs *)calloc((size_t)L, sizeof(MilesLayerActs));
    cm->slot = (int32_t *)malloc((size_t)cpu->cfg.vocab_size * sizeof(int32_t));
    cm->shadow = (MilesModel *)calloc(1, sizeof(MilesModel));
    if (!cm->tensors || !cm->P.layers || !cm->G.layers || !cm->layer_acts || !cm->slot || !cm->shadow)
        return miles_error(MILES_ENOMEM, "cuda model: host tables");
    cm->shadow->cfg = cpu->cfg;
    cm->shadow->loss = cpu->loss;
    memcpy(cm->tensors, cpu->tensors, (size_t)cpu->ntensors * sizeof(MilesTensor));
    for (int i = 0; i < cpu->cfg.vocab_size; i++) cm->slot[i] = -1;

    const size_t bytes = cm->nparams * sizeof(float);
    MILES_CUDA_TRY(cudaMalloc(&cm->params, bytes));
    MILES_CUDA_TRY(cudaMalloc(&cm->grads, bytes));
    /* stream-ordered (the stream is non-blocking: it does not wait for the legacy stream) */
    MILES_CUDA_TRY(cudaMemcpyAsync(cm->params, cpu->params, bytes, cudaMemcpyHostToDevice, cm->stream));
    MILES_CUDA_TRY(cudaMemsetAsync(cm->grads, 0, bytes, cm->stream));
    translate_params(&cm->P, cpu, cm->params);
    translate_params(&cm->G, cpu, cm->grads);

    /* small device block: workspace (8-byte aligned), loss[2], norm, class weights, scaler */
    size_t ws_bytes = (size_t)MILES_CUDA_PREP_WORKSPACE * sizeof(float); /* >= MILES_CUDA_REDUCE_WORKSPACE */
    MILES_CUDA_TRY(cudaMalloc(&cm->small, ws_bytes + 256 + sizeof(MilesLossScalerState)));
    char *sb = (char *)cm->small;
    cm->ws = (float *)sb;
    cm->dloss = (float *)(sb + ws_bytes);
    cm->dnorm = cm->dloss + 4;
    cm->dcw = cm->dloss + 8;
    cm->dstats = (MilesCudaTrainStats *)(sb + ws_bytes + 64);
    cm->dscaler = (MilesLossScalerState *)(sb + ws_bytes + 256);
    MILES_CUDA_TRY(cudaMallocHost(&cm->hsmall, 256 + 2 * sizeof(MilesLossScalerState)));
    cm->hloss = (float *)cm->hsmall;
    cm->hnorm = cm->hloss + 4;
    cm->hstats = (MilesCudaTrainStats *)((char *)cm->hsmall + 64);
    cm->hopt = (MilesCudaOptState *)((char *)cm->hsmall + 128);
    cm->hscaler = (MilesLossScalerState *)((char *)cm->hsmall + 256);
    MILES_CUDA_TRY(cudaMemsetAsync(cm->small, 0, ws_bytes + 256 + sizeof(MilesLossScalerState), cm->stream));

    cm->use_scaler = cm->precision == MILES_CUDA_PREC_FP16;
    MILES_TRY(miles_cuda_model_set_loss_scaler(cm, 65536.0f, 2.0f, 0.5f, 2000));
    MILES_TRY(miles_cuda_model_set_loss(cm, &cpu->loss));
    /* fp16: does cuBLAS make an input beyond fp16 Inf (the scaler sees it) or
     * not (then the backward's GEMM inputs are range-checked)? */
    if (cm->use_scaler) {
        int inf = miles_cuda_f16_overflow_probe();
        if (inf < 0) return inf;
        cm->f16_guard = !inf;
    }
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) MILES_TRY(fast_build(cm, cpu));
#endif
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_build(MilesCudaModel **out, const MilesModel *cpu, int precision) {
    return miles_cuda_model_build_ex(out, cpu, precision, NULL);
}

extern "C" int miles_cuda_model_build_ex(MilesCudaModel **out, const MilesModel *cpu, int precision,
                                         const MilesCudaOptions *opts) {
    if (!out || !cpu) return miles_error(MILES_EINVAL, "miles_cuda_model_build: NULL argument");
    *out = NULL;
    if (precision < MILES_CUDA_PREC_FP32 || precision > MILES_CUDA_PREC_BF16)
        return miles_error(MILES_EINVAL, "miles_cuda_model_build: unknown precision %d", precision);
    const int half = precision == MILES_CUDA_PREC_FP16 || precision == MILES_CUDA_PREC_BF16;
    int fast = opts ? opts->fast : -1;
    if (fast > 0 && !half)
        return miles_error(MILES_EINVAL, "miles_cuda_model_build: the 16-bit path needs precision fp16 or bf16");
    if (fast < 0) fast = half;
#ifdef MILES_CUDA_HOST_EMULATION
    fast = 0; /* the host emulation runs the fp32-activation path only */
#endif
    if (fast) {
        const MilesConfig *c = &cpu->cfg;
        const int ok = c->hidden_size <= MILES_CUDA_FAST_MAX_C && c->hidden_size % 8 == 0 &&
                       c->hidden_size % c->num_attention_heads == 0 && c->hidden_size / c->num_attention_heads <= 64;
        if (!ok && (!opts || opts->fast < 0)) fast = 0; /* the default: fp32 activations for such shapes */
        else if (!ok)
            return miles_error(MILES_EUNSUPPORTED,
                               "miles_cuda_model_build: the fp16/bf16 path needs a hidden size that is a multiple of 8,"
                               " at most %d, and a head size <= 64 (hidden %d, %d heads); build with fast = 0 for"
                               " fp32 activations", MILES_CUDA_FAST_MAX_C, c->hidden_size, c->num_attention_heads);
    }
    if (miles_cuda_device_count() <= 0)
        return miles_error(MILES_EUNSUPPORTED, "miles_cuda_model_build: no CUDA device");
    MilesCudaModel *cm = (MilesCudaModel *)calloc(1, sizeof *cm);
    if (!cm) return miles_error(MILES_ENOMEM, "miles_cuda_model_build: out of memory");
    cm->cfg = cpu->cfg;
    cm->loss = cpu->loss;
    cm->drop_seed = cpu->drop_seed;
    cm->drop_step = cpu->drop_step;
    cm->precision = precision;
    cm->math = precision; /* MILES_CUDA_PREC_* == MILES_CUDA_MATH_* */
    cm->ntensors = cpu->ntensors;
    cm->nparams = cpu->nparams;
    cm->num_w = cpu->num_w;
    cm->cat_w = cpu->cat_w;
    cm->feat_w = cpu->feat_w;
    cm->max_w = cpu->max_w;
    cm->decay_mask_all = -1;
    cm->fast = fast;
    cm->graphs_opt = opts ? opts->graphs : -1;
    int s = build_impl(cm, cpu);
    if (s != MILES_OK) {
        miles_cuda_model_free(cm);
        return s;
    }
    *out = cm;
    return MILES_OK;
}

extern "C" int miles_cuda_model_precision(const MilesCudaModel *cm) { return cm ? cm->precision : -1; }
extern "C" size_t miles_cuda_model_num_params(const MilesCudaModel *cm) { return cm ? cm->nparams : 0; }
extern "C" float *miles_cuda_model_device_params(MilesCudaModel *cm) { return cm ? cm->params : NULL; }
extern "C" float *miles_cuda_model_device_grads(MilesCudaModel *cm) { return cm ? cm->grads : NULL; }
extern "C" void *miles_cuda_model_stream(MilesCudaModel *cm) { return cm ? (void *)cm->stream : NULL; }

extern "C" int miles_cuda_model_sync(MilesCudaModel *cm) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_sync: model is NULL");
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" size_t miles_cuda_model_device_bytes(const MilesCudaModel *cm) {
    if (!cm) return 0;
    size_t b = cm->nparams * sizeof(float) * (cm->m ? 4 : 2) + cm->arena_cap + cm->scratch_cap;
    if (cm->decay_mask) b += cm->nparams;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) b += fast_device_bytes(cm);
#endif
    return b;
}

extern "C" int miles_cuda_model_is_fast(const MilesCudaModel *cm) { return cm ? cm->fast : 0; }
