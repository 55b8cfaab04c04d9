/*
 * train_step.c — one optimizer step: the epoch's deterministic example order,
 * rows -> batches, gradient accumulation over micro-batches (each rank its
 * share of every global micro-batch), the learning-rate schedule, and the CPU
 * implementation of the trainer's model/optimizer operations (MilesTrainOps).
 *
 * Determinism: the order is a pure function of (seed, epoch), the dropout
 * masks of (seed, epoch << 32 | micro-batch), both stored in the checkpoint's
 * state, so "N steps straight" and "N/2, stop, resume, N/2" do exactly the
 * same arithmetic.
 */
#include "internal.h"
#include "train_internal.h"

#include <math.h>

/* ---------------------------------------------------------------- order */

static int by_length(const void *a, const void *b, void *ctx) {
    const MilesDataset *d = ctx;
    int64_t ia = *(const int64_t *)a, ib = *(const int64_t *)b;
    int la = d->lengths[ia], lb = d->lengths[ib];
    return la != lb ? (la > lb) - (la < lb) : (ia > ib) - (ia < ib);
}

/* Example order for one epoch: a seeded permutation; with bucketing, chunks of
 * 50 batches are sorted by length (less padding) and the batches inside a
 * chunk are shuffled again, so batches stay random but near-uniform in T.
 * MILES_ENOMEM when bucketing's scratch cannot be had: never a silent plain
 * order, which would change the run (and, under MPI, on one rank only). */
int miles_train_epoch_order(int64_t *order, const MilesDataset *d, uint64_t seed, int epoch, int batch,
                            int bucket) {
    uint64_t s = seed ^ (0xA24BAED4963EE407ull * (uint64_t)(epoch + 1));
    for (int64_t i = 0; i < d->n; i++) order[i] = i;
    miles_shuffle(order, (size_t)d->n, sizeof *order, &s);
    if (!bucket || !d->lengths) return MILES_OK;
    const int64_t chunk = (int64_t)batch * 50;
    int64_t *tmp = miles_malloc(sizeof(int64_t) * (size_t)chunk);
    int *bidx = miles_malloc(sizeof(int) * 50);
    int st = tmp && bidx ? MILES_OK : miles_error(MILES_ENOMEM, "length bucketing: out of memory for the epoch order");
    for (int64_t c0 = 0; st == MILES_OK && c0 < d->n; c0 += chunk) {
        int64_t cn = d->n - c0 < chunk ? d->n - c0 : chunk;
        st = miles_sort_r(order + c0, (size_t)cn, sizeof *order, by_length, (void *)d);
        if (st != MILES_OK) break;
        int nb = (int)((cn + batch - 1) / batch);
        /* keep a possibly short last batch last so batch sizes match the plain order */
        int full = cn % batch ? nb - 1 : nb;
        for (int i = 0; i < full; i++) bidx[i] = i;
        miles_shuffle(bidx, (size_t)full, sizeof *bidx, &s);
        memcpy(tmp, order + c0, sizeof(int64_t) * (size_t)cn);
        for (int i = 0; i < full; i++)
            memcpy(order + c0 + (int64_t)i * batch, tmp + (int64_t)bidx[i] * batch, sizeof(int64_t) * (size_t)batch);
    }
    free(tmp);
    free(bidx);
    return st;
}

/* ---------------------------------------------------------------- batches */

int miles_batchbuf_fill(MilesBatchBuf *bb, const MilesDataset *d, const int64_t *rows, int nb, int max_len,
                        MilesBatch *out) {
    int T = 1;
    for (int i = 0; i < nb; i++) {
        int L = d->lengths ? d->lengths[rows[i]] : d->max_len;
        if (L > T) T = L;
    }
    if (max_len > 0 && T > max_len) T = max_len;
    if (T > d->max_len) T = d->max_len;
    size_t need = (size_t)nb * T;
    if (need > bb->cap_tok) {
        free(bb->ids); free(bb->mask); free(bb->tt);
        bb->ids = miles_malloc(need * sizeof(int32_t));
        bb->mask = miles_malloc(need * sizeof(int32_t));
        bb->tt = miles_malloc(need * sizeof(int32_t));
        bb->cap_tok = (bb->ids && bb->mask && bb->tt) ? need : 0;
        if (!bb->cap_tok) return MILES_ENOMEM;
    }
    if (nb > bb->cap_rows) {
        free(bb->feat); free(bb->lab); free(bb->vel);
        bb->feat = miles_malloc((size_t)nb * MILES_NUM_FEATURES * sizeof(float));
        bb->lab = miles_malloc((size_t)nb * sizeof(int32_t));
        bb->vel = miles_malloc((size_t)nb * sizeof(float));
        bb->cap_rows = (bb->feat && bb->lab && bb->vel) ? nb : 0;
        if (!bb->cap_rows) return MILES_ENOMEM;
    }
    const size_t S = (size_t)d->max_len;
    for (int i = 0; i < nb; i++) {
        const int64_t r = rows[i];
        const int32_t *src = d->input_ids + (size_t)r * S;
        memcpy(bb->ids + (size_t)i * T, src, sizeof(int32_t) * T);
        memcpy(bb->mask + (size_t)i * T, d->attention_mask + (size_t)r * S, sizeof(int32_t) * T);
        if (d->token_type_ids) memcpy(bb->tt + (size_t)i * T, d->token_type_ids + (size_t)r * S, sizeof(int32_t) * T);
        else memset(bb->tt + (size_t)i * T, 0, sizeof(int32_t) * T);
        int L = d->lengths ? d->lengths[r] : T;
        if (L > T) /* truncated: keep the closing [SEP], as HF truncation does */
            bb->ids[(size_t)i * T + T - 1] = src[L - 1];
        memcpy(bb->feat + (size_t)i * MILES_NUM_FEATURES, d->features + (size_t)r * MILES_NUM_FEATURES,
               sizeof(float) * MILES_NUM_FEATURES);
        bb->lab[i] = d->labels ? d->labels[r] : 0;
        bb->vel[i] = d->velocity ? d->velocity[r] : 0.0f;
    }
    out->B = nb;
    out->T = T;
    out->input_ids = bb->ids;
    out->attention_mask = bb->mask;
    out->token_type_ids = bb->tt;
    out->features = bb->feat;
    out->labels = d->labels ? bb->lab : NULL;
    out->velocity = d->velocity ? bb->vel : NULL;
    return MILES_OK;
}

void miles_batchbuf_free(MilesBatchBuf *bb) {
    free(bb->ids); free(bb->mask); free(bb->tt);
    free(bb->feat); free(bb->lab); free(bb->vel);
    memset(bb, 0, sizeof *bb);
}

/* ---------------------------------------------------------------- schedule */

double miles_train_lr(const MilesTrainConfig *c, int64_t step, int epoch, int64_t total_steps) {
    /* The original project stepped its per-step scheduler once per epoch, so
     * its "step" counter was the epoch index: reproduce that when asked. */
    int64_t s = c->schedule_per_epoch ? epoch : step;
    if (c->schedule == MILES_SCHED_ORIGINAL) {
        /* SequentialLR([LinearLR(0.1 -> 1.0, total_iters=warmup),
         *               CosineAnnealingLR(T_max = total - warmup, eta_min)], [warmup]) */
        if (s < c->warmup_steps)
            return c->lr * (0.1 + 0.9 * (double)s / (c->warmup_steps > 0 ? c->warmup_steps : 1));
        double tmax = (double)(total_steps - c->warmup_steps);
        if (tmax < 1) tmax = 1;
        double e = (double)(s - c->warmup_steps);
        /* lr - eta_min in double, as torch: in float it lost up to half an ulp of lr */
        return (double)c->eta_min + ((double)c->lr - (double)c->eta_min) * (1 + cos(M_PI * e / tmax)) / 2;
    }
    return c->lr * miles_lr_lambda(c->schedule, s, c->warmup_steps, total_steps);
}

/* ---------------------------------------------------------------- one step */

/* This rank's share of the GLOBAL micro-batch loss.  The model's loss is
 * w_cls * sum_b w[y_b] CE_b / sum_b w[y_b] + w_reg * sum_b MSE_b / B; a rank
 * holding rows [lo,hi) of the nb rows reproduces its part of the single-process
 * gradient exactly (in real arithmetic) when its weights are scaled by its
 * share of each normalizer: w_cls * W_local / W_global and w_reg * n_local / nb.
 * The sum-all-reduce of the ranks' gradients is then the global gradient.
 * Every rank holds the whole epoch order, so no communication is needed. */
static MilesLossConfig shard_loss(const MilesLossConfig *lc, const MilesDataset *d, const int64_t *rows, int nb,
                                  int lo, int hi) {
    double wg = 0, wl = 0;
    for (int i = 0; i < nb; i++) {
        double w = lc->class_weight[d->labels[rows[i]] ? 1 : 0];
        wg += w;
        if (i >= lo && i < hi) wl += w;
    }
    MilesLossConfig sl = *lc;
    sl.w_cls = (float)(lc->w_cls * (wg > 0 ? wl / wg : 0.0));
    sl.w_reg = (float)(lc->w_reg * (double)(hi - lo) / nb);
    return sl;
}

int miles_train_step(MilesTrainer *t, const MilesTrainOps *ops, int epoch, double *loss, double *lr,
                     float *grad_norm, int *stop_any) {
    const MilesTrainConfig *c = t->cfg;
    const MilesDataset *tr = t->train;
    const int B = c->batch_size, A = c->grad_accum, dp = t->nrank > 1;
    int s = MILES_OK;
    double step_loss = 0;
    ops->zero_grad(t);
    for (int micro = 0; micro < A && t->st.cursor < t->nbatch; micro++) {
        const int bi = t->st.cursor++;
        const int64_t b0 = (int64_t)bi * B;
        const int nb = (int)(tr->n - b0 < B ? tr->n - b0 : B);
        const int64_t *rows = t->order + b0;
        /* this rank's contiguous share of the global micro-batch */
        int lo = (int)((int64_t)nb * t->rank / t->nrank), hi = (int)((int64_t)nb * (t->rank + 1) / t->nrank);
        t->examples += nb;
        if (hi <= lo) continue; /* fewer rows than ranks: contribute zero gradient */
        MilesLossConfig lc = dp ? shard_loss(&t->loss, tr, rows, nb, lo, hi) : t->loss;
        MilesBatch batch;
        s = miles_batchbuf_fill(&t->bb, tr, rows + lo, hi - lo, c->max_len, &batch);
        if (s != MILES_OK) break;
        float l = 0;
        /* deferred: the loss is summed on the device (read at the STEP event) */
        s = ops->forward_backward(t, &batch, &lc, ((uint64_t)epoch << 32) | (uint64_t)bi, 1.0f / A,
                                  t->deferred ? NULL : &l);
        if (s != MILES_OK) break;
        if (t->deferred) continue;
        if (!isfinite(l)) {
            s = miles_error(MILES_ENAN, "training loss is %g at step %lld (epoch %d, batch %d)%s", l,
                            (long long)t->st.step, epoch + 1, bi, dp ? " on this rank" : "");
            break;
        }
        step_loss += l / A;
    }
    int stop = c->stop_flag && *c->stop_flag;
    if (dp) {
        /* agree on errors, sum the loss shares, hear any rank's stop request */
        double v[2] = {step_loss, stop};
        s = miles_dist_agree(t->dist, s);
        if (s == MILES_OK) s = miles_dist_allreduce_f64(t->dist, v, 2);
        step_loss = v[0];
        stop = v[1] > 0;
    }
    if (s != MILES_OK) return s;
    *lr = miles_train_lr(c, t->st.step, epoch, t->total_steps);
    MILES_TRY(ops->update(t, (float)*lr, c->clip > 0 ? c->clip : INFINITY, t->deferred ? NULL : grad_norm));
    t->st.step++;
    *loss = t->deferred ? NAN : step_loss;
    if (t->deferred) *grad_norm = NAN;
    *stop_any = stop;
    return MILES_OK;
}

/* ---------------------------------------------------------------- CPU ops */

static int cpu_init(MilesTrainer *t) {
    /* the loss reads only the pooled rows: the last layer's [CLS] rows alone
     * (same bits, 7% less work for bert-base); undone by cpu_free */
    t->prev_pooled_only = miles_model_set_pooled_only(t->m, 1);
    if (t->nrank > 1 && t->cfg->zero1) return miles_zero1_build(&t->zero, t->dist, t->m, &t->adamw);
    return miles_adamw_build(&t->opt, t->m, &t->adamw);
}

static void cpu_free(MilesTrainer *t) {
    miles_model_set_pooled_only(t->m, t->prev_pooled_only);
    miles_adamw_free(t->opt);
    miles_zero1_free(t->zero);
    t->opt = NULL;
    t->zero = NULL;
}

static void cpu_zero_grad(MilesTrainer *t) { miles_model_zero_grad(t->m); }

static int cpu_forward_backward(MilesTrainer *t, const MilesBatch *b, const MilesLossConfig *loss,
                                uint64_t drop_step, float loss_scale, float *loss_out) {
    miles_model_set_loss(t->m, loss);
    miles_model_set_dropout_key(t->m, t->drop_seed, drop_step);
    MILES_TRY(miles_model_forward(t->m, b, 1, NULL, NULL, loss_out));
    if (!isfinite(*loss_out)) return MILES_OK; /* the caller names the step */
    return miles_model_backward(t->m, loss_scale);
}

static int cpu_update(MilesTrainer *t, float lr, float max_norm, float *grad_norm) {
    if (t->zero) return miles_zero1_step(t->zero, lr, max_norm, grad_norm);
    MILES_TRY(miles_dist_reduce_grads(t->dist, t->m));
    *grad_norm = miles_clip_grad_norm(t->m, max_norm);
    return miles_adamw_step(t->opt, lr);
}

static int cpu_forward(void *ctx, const MilesBatch *b, float *logits, float *velocity) {
    MilesTrainer *t = ctx;
    return miles_model_forward(t->m, b, 0, logits, velocity, NULL);
}

static int cpu_save(MilesTrainer *t, const char *path, int with_optimizer) {
    int s = MILES_OK;
    MilesAdamW *ck = with_optimizer ? t->opt : NULL;
    if (with_optimizer && t->zero) s = miles_zero1_gather(t->zero, &ck); /* collective */
    if (s == MILES_OK && t->rank == 0)
        s = miles_ckpt_save(path, t->m, ck, &t->st, t->cfg, &t->loss, t->contract);
    if (t->zero && ck != t->opt) miles_adamw_free(ck);
    return s;
}

static int cpu_load(MilesTrainer *t, const char *path) {
    /* rank 0 reads the checkpoint (the only one that needs the file system),
     * then everything is broadcast: any N resumes any checkpoint */
    int s = MILES_OK;
    MilesAdamW *full = t->opt;
    if (t->rank == 0 && t->zero) s = miles_adamw_build(&full, t->m, &t->adamw);
    if (t->rank == 0 && s == MILES_OK) s = miles_ckpt_load_state(path, t->m, full, &t->st);
    s = miles_dist_agree(t->dist, s);
    if (s == MILES_OK && t->zero) s = miles_zero1_scatter(t->zero, t->rank == 0 ? full : NULL);
    if (t->zero && t->rank == 0) miles_adamw_free(full);
    return s;
}

static int cpu_sync(MilesTrainer *t) { return miles_dist_sync_train(t->dist, t->m, t->opt, &t->st); }

static int cpu_check_replicas(MilesTrainer *t) { return miles_dist_check_same_params(t->dist, t->m, t->st.step); }

const MilesTrainOps miles_train_ops_cpu = {
    .init = cpu_init,
    .free = cpu_free,
    .zero_grad = cpu_zero_grad,
    .forward_backward = cpu_forward_backward,
    .update = cpu_update,
    .forward = cpu_forward,
    .save = cpu_save,
    .load = cpu_load,
    .sync = cpu_sync,
    .check_replicas = cpu_check_replicas,
};

/* ---------------------------------------------------------------- backend ops
 * One process on any backend (backend_internal.h).  The CPU backend computes
 * in t->m with its own AdamW, so checkpoints read them in place; a device
 * backend's parameters and moments are copied into t->m and a host AdamW
 * (t->opt, built on first use) for checkpoints, and out of them on resume. */

static int be_init(MilesTrainer *t) {
    MILES_TRY(miles_backend_open(&t->be, t->cfg->device, t->cfg->precision, t->m, &t->adamw));
    /* a backend with device-side statistics is read only at STEP events */
    t->deferred = t->be.ops->add_loss && t->be.ops->read_stats;
    t->loss_scale = t->be.ops->loss_scale(t->be.state);
    return MILES_OK;
}

static void be_free(MilesTrainer *t) {
    miles_backend_close(&t->be);
    miles_adamw_free(t->opt);
    t->opt = NULL;
}

static int be_st(MilesTrainer *t, int s) { return miles_backend_status(t->be.ops, s); }

static void be_zero_grad(MilesTrainer *t) { t->be.ops->zero_grad(t->be.state); }

int miles_train_be_forward_backward(MilesTrainer *t, const MilesBatch *b, const MilesLossConfig *loss,
                                    uint64_t drop_step, float loss_scale, float *loss_out, int dist) {
    const MilesBackendOps *o = t->be.ops;
    MILES_TRY(be_st(t, o->set_loss(t->be.state, loss)));
    o->set_dropout_key(t->be.state, t->drop_seed, drop_step);
    MILES_TRY(be_st(t, o->forward(t->be.state, b, 1, NULL, NULL, loss_out)));
    if (!loss_out) /* deferred: the device sums loss / grad_accum, as miles_train_step does on the host */
        MILES_TRY(be_st(t, o->add_loss(t->be.state, (float)t->cfg->grad_accum)));
    else if (!isfinite(*loss_out))
        return MILES_OK; /* the caller names the step */
    return be_st(t, dist ? o->dist_backward(t->be.state, loss_scale) : o->backward(t->be.state, loss_scale));
}

static int be_forward_backward(MilesTrainer *t, const MilesBatch *b, const MilesLossConfig *loss,
                               uint64_t drop_step, float loss_scale, float *loss_out) {
    return miles_train_be_forward_backward(t, b, loss, drop_step, loss_scale, loss_out, 0);
}

static int be_update(MilesTrainer *t, float lr, float max_norm, float *grad_norm) {
    const MilesBackendOps *o = t->be.ops;
    int skipped = 0;
    /* deferred (grad_norm NULL): norm, skip decision and step counter stay on the device */
    MILES_TRY(be_st(t, o->clip(t->be.state, max_norm, grad_norm)));
    MILES_TRY(be_st(t, o->adamw_step(t->be.state, lr, t->deferred ? NULL : &skipped)));
    t->skipped += skipped != 0;
    return MILES_OK;
}

static int be_read_stats(MilesTrainer *t) {
    if (!t->deferred) return MILES_OK;
    MilesBackendStats st;
    MILES_TRY(be_st(t, t->be.ops->read_stats(t->be.state, &st)));
    t->log_loss = st.loss_sum;
    t->log_norm = st.grad_norm;
    t->skipped = st.skipped;
    t->loss_scale = st.loss_scale;
    return MILES_OK;
}

static int be_forward(void *ctx, const MilesBatch *b, float *logits, float *velocity) {
    MilesTrainer *t = ctx;
    return be_st(t, t->be.ops->forward(t->be.state, b, 0, logits, velocity, NULL));
}

/* The host AdamW holding the backend's moments (the CPU's own, or t->opt
 * filled from the device). */
static int be_host_opt(MilesTrainer *t, int fill, MilesAdamW **out) {
    if (t->be.ops == &miles_backend_cpu) {
        *out = miles_backend_cpu_adamw(t->be.state);
        return MILES_OK;
    }
    if (!t->opt) MILES_TRY(miles_adamw_build(&t->opt, t->m, &t->adamw));
    if (fill) {
        int64_t steps = 0;
        MILES_TRY(be_st(t, t->be.ops->read_optim(t->be.state, miles_adamw_m(t->opt), miles_adamw_v(t->opt),
                                                 &steps)));
        miles_adamw_set_steps(t->opt, steps);
    }
    *out = t->opt;
    return MILES_OK;
}

static int be_save(MilesTrainer *t, const char *path, int with_optimizer) {
    MilesAdamW *opt = NULL;
    MILES_TRY(be_st(t, t->be.ops->read_params(t->be.state, t->m)));
    if (with_optimizer) MILES_TRY(be_host_opt(t, 1, &opt));
    float scale = 0.0f;
    int32_t growth = 0;
    if (t->be.ops->read_scaler) MILES_TRY(be_st(t, t->be.ops->read_scaler(t->be.state, &scale, &growth)));
    t->st.loss_scale = scale;
    t->st.loss_scale_growth = growth;
    return miles_ckpt_save(path, t->m, opt, &t->st, t->cfg, &t->loss, t->contract);
}

static int be_load(MilesTrainer *t, const char *path) {
    MilesAdamW *opt = NULL;
    MILES_TRY(be_host_opt(t, 0, &opt));
    MILES_TRY(miles_ckpt_load_state(path, t->m, opt, &t->st));
    MILES_TRY(be_st(t, t->be.ops->write_params(t->be.state, t->m)));
    MILES_TRY(be_st(t, t->be.ops->write_optim(t->be.state, miles_adamw_m(opt), miles_adamw_v(opt),
                                              miles_adamw_steps(opt))));
    /* fp16: continue at the saved scale (absent, e.g. a CPU checkpoint: the default) */
    if (t->be.ops->write_scaler && t->st.loss_scale > 0)
        return be_st(t, t->be.ops->write_scaler(t->be.state, (float)t->st.loss_scale,
                                                (int32_t)t->st.loss_scale_growth));
    return MILES_OK;
}

static int be_nothing(MilesTrainer *t) { return MILES_OK; }

static int be_finish(MilesTrainer *t) { return be_st(t, t->be.ops->read_params(t->be.state, t->m)); }

const MilesTrainOps miles_train_ops_backend = {
    .init = be_init,
    .free = be_free,
    .zero_grad = be_zero_grad,
    .forward_backward = be_forward_backward,
    .update = be_update,
    .forward = be_forward,
    .save = be_save,
    .load = be_load,
    .sync = be_nothing,
    .check_replicas = be_nothing,
    .finish = be_finish,
    .read_stats = be_read_stats,
};
