/*
 * train.c — the training loop: deterministic batching, gradient accumulation,
 * clipping, AdamW with a schedule advanced every optimizer step, evaluation
 * with early stopping on validation AUROC, JSONL + TensorBoard logs, atomic
 * checkpoints and bit-identical resume.
 *
 * Determinism: everything random is a pure function of counters that are
 * stored in the checkpoint — the epoch's example order of (seed, epoch), the
 * dropout masks of (seed, epoch<<32 | micro-batch) — so "N steps straight" and
 * "N/2, stop, resume, N/2" do exactly the same arithmetic.
 */
#include "internal.h"
#include "train_internal.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void miles_train_config_default(MilesTrainConfig *c) {
    memset(c, 0, sizeof *c);
    c->batch_size = 32;
    c->max_len = 128;
    c->epochs = 15;
    c->grad_accum = 1;
    c->lr = 2e-5f;
    c->weight_decay = 0.01f;
    c->warmup_steps = 500;
    c->schedule = MILES_SCHED_COSINE;
    c->eta_min = 1e-7f;
    c->clip = 1.0f;
    c->loss.w_cls = 0.95f;
    c->loss.w_reg = 0.05f;
    c->loss.class_weight[0] = c->loss.class_weight[1] = 1.0f;
    c->patience = 3;
    c->min_delta = 0.001f;
    c->seed = 42;
    c->out_dir = "checkpoints/run";
    c->progress = 1;
}

/* ---------------------------------------------------------------- order */

static int by_length(const void *a, const void *b, void *ctx) {
    const MilesTrainData *d = ctx;
    int ia = *(const int *)a, ib = *(const int *)b;
    int la = d->lengths[ia], lb = d->lengths[ib];
    return la != lb ? la - lb : ia - ib;
}

/* Example order for one epoch: a seeded permutation; with bucketing, chunks of
 * 50 batches are sorted by length (less padding) and the batches inside a
 * chunk are shuffled again, so batches stay random but near-uniform in T. */
void miles_train_epoch_order(int *order, const MilesTrainData *d, uint64_t seed, int epoch,
                             int batch, int bucket) {
    uint64_t s = seed ^ (0xA24BAED4963EE407ull * (uint64_t)(epoch + 1));
    for (int i = 0; i < d->n; i++) order[i] = i;
    miles_shuffle(order, (size_t)d->n, sizeof *order, &s);
    if (!bucket || !d->lengths) return;
    int chunk = batch * 50;
    int nbatch_total = (d->n + batch - 1) / batch;
    int *tmp = malloc(sizeof(int) * (size_t)chunk);
    int *bidx = malloc(sizeof(int) * 50);
    if (!tmp || !bidx) { free(tmp); free(bidx); return; } /* falls back to plain shuffle */
    (void)nbatch_total;
    for (int c0 = 0; c0 < d->n; c0 += chunk) {
        int cn = d->n - c0 < chunk ? d->n - c0 : chunk;
        if (miles_sort_r(order + c0, (size_t)cn, sizeof(int), by_length, (void *)d) != MILES_OK) break;
        int nb = (cn + batch - 1) / batch;
        /* keep a possibly short last batch last so batch sizes match the plain order */
        int full = cn % batch ? nb - 1 : nb;
        for (int i = 0; i < full; i++) bidx[i] = i;
        miles_shuffle(bidx, (size_t)full, sizeof *bidx, &s);
        memcpy(tmp, order + c0, sizeof(int) * (size_t)cn);
        for (int i = 0; i < full; i++)
            memcpy(order + c0 + i * batch, tmp + bidx[i] * batch, sizeof(int) * (size_t)batch);
    }
    free(tmp);
    free(bidx);
}

/* ---------------------------------------------------------------- batches */

int miles_batchbuf_fill(MilesBatchBuf *bb, const MilesTrainData *d, const int *rows, int nb,
                        int max_len, MilesBatch *out) {
    int T = 1;
    for (int i = 0; i < nb; i++) {
        int L = d->lengths ? d->lengths[rows[i]] : d->stride;
        if (L > T) T = L;
    }
    if (T > max_len) T = max_len;
    if (T > d->stride) T = d->stride;
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
    for (int i = 0; i < nb; i++) {
        int r = rows[i];
        const int32_t *src = d->ids + (size_t)r * d->stride;
        const int32_t *msk = d->mask + (size_t)r * d->stride;
        memcpy(bb->ids + (size_t)i * T, src, sizeof(int32_t) * T);
        memcpy(bb->mask + (size_t)i * T, msk, sizeof(int32_t) * T);
        if (d->type_ids) memcpy(bb->tt + (size_t)i * T, d->type_ids + (size_t)r * d->stride, sizeof(int32_t) * T);
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

/* ------------------------------------------------------------- prediction */

int miles_predict_data(MilesModel *m, const MilesTrainData *d, int batch_size, int max_len,
                       float *probs, float *velocity) {
    if (batch_size < 1) return miles_error(MILES_EINVAL, "predict: batch size must be >= 1");
    MilesBatchBuf bb = {0};
    int *rows = miles_malloc(sizeof(int) * (size_t)batch_size);
    float *logits = miles_malloc(sizeof(float) * 2 * (size_t)batch_size);
    float *vel = miles_malloc(sizeof(float) * (size_t)batch_size);
    int s = (rows && logits && vel) ? MILES_OK : MILES_ENOMEM;
    for (int b0 = 0; s == MILES_OK && b0 < d->n; b0 += batch_size) {
        int nb = d->n - b0 < batch_size ? d->n - b0 : batch_size;
        for (int i = 0; i < nb; i++) rows[i] = b0 + i;
        MilesBatch batch;
        s = miles_batchbuf_fill(&bb, d, rows, nb, max_len, &batch);
        if (s != MILES_OK) break;
        batch.labels = NULL;
        batch.velocity = NULL;
        s = miles_model_forward(m, &batch, 0, logits, vel, NULL);
        if (s != MILES_OK) break;
        for (int i = 0; i < nb; i++) {
            /* softmax over 2 logits = logistic of their difference (stable) */
            double z = (double)logits[2 * i + 1] - logits[2 * i];
            if (probs) probs[b0 + i] = (float)(1.0 / (1.0 + exp(-z)));
            if (velocity) velocity[b0 + i] = vel[i];
        }
    }
    free(rows); free(logits); free(vel);
    miles_batchbuf_free(&bb);
    return s;
}

/* ------------------------------------------------------------- schedule */

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
        return c->eta_min + (c->lr - c->eta_min) * (1 + cos(M_PI * e / tmax)) / 2;
    }
    return c->lr * miles_lr_lambda(c->schedule, s, c->warmup_steps, total_steps);
}

/* ------------------------------------------------------------- progress */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_eta(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) { snprintf(buf, n, "--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

static void progress_line(int tty, int epoch, int epochs, int bi, int nb, double loss, double lr,
                          double exps, double eta) {
    char e[32];
    fmt_eta(e, sizeof e, eta);
    if (tty) {
        int w = 24, fill = nb ? (int)((double)bi * w / nb) : w;
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %d/%d loss %.4f lr %.2e %.1f ex/s ETA %s   ",
                epoch + 1, epochs, bar, bi, nb, loss, lr, exps, e);
    } else {
        fprintf(stderr, "epoch %d/%d batch %d/%d loss %.4f lr %.2e %.1f ex/s ETA %s\n",
                epoch + 1, epochs, bi, nb, loss, lr, exps, e);
    }
    fflush(stderr);
}

/* ------------------------------------------------------------- evaluation */

int miles_train_evaluate(MilesModel *m, const MilesTrainData *val, int max_len,
                         const MilesLossConfig *lc, MilesEvalResult *r) {
    memset(r, 0, sizeof *r);
    r->auroc = NAN;
    r->threshold = 0.5;
    int n = val->n;
    float *probs = miles_malloc(sizeof(float) * (size_t)n);
    float *vel = miles_malloc(sizeof(float) * (size_t)n);
    if (!probs || !vel) { free(probs); free(vel); return MILES_ENOMEM; }
    int s = miles_predict_data(m, val, 64, max_len, probs, vel);
    if (s == MILES_OK) {
        double mae = 0;
        for (int i = 0; i < n; i++) mae += fabs((double)vel[i] - val->velocity[i]);
        r->vel_mae = n ? mae / n : NAN;
        /* loss as the model defines it, mean over examples */
        double ll = 0;
        for (int i = 0; i < n; i++) {
            double p = val->labels[i] ? probs[i] : 1.0 - probs[i];
            double w = lc->class_weight[val->labels[i]];
            ll += w * -log(p > 1e-30 ? p : 1e-30);
        }
        double wsum = 0;
        for (int i = 0; i < n; i++) wsum += lc->class_weight[val->labels[i]];
        double mse = 0;
        for (int i = 0; i < n; i++) mse += ((double)vel[i] - val->velocity[i]) * ((double)vel[i] - val->velocity[i]);
        r->loss = lc->w_cls * (wsum > 0 ? ll / wsum : 0) + lc->w_reg * (n ? mse / n : 0);
        double auc;
        if (miles_train_auroc(probs, val->labels, n, &auc) == MILES_OK) r->auroc = auc;
        double thr, f1;
        if (miles_train_best_f1(probs, val->labels, n, &thr, &f1) == MILES_OK) {
            r->threshold = thr;
            r->f1 = f1;
        }
    }
    free(probs);
    free(vel);
    return s;
}

/* ------------------------------------------------------------- the loop */

static int ensure_dir(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return miles_error(MILES_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return miles_error(MILES_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
    return MILES_OK;
}

static int validate_cfg(const MilesTrainConfig *c, const MilesTrainData *train, const MilesTrainData *val) {
    if (c->batch_size < 1) return miles_error(MILES_EINVAL, "batch size must be >= 1 (got %d)", c->batch_size);
    if (c->grad_accum < 1) return miles_error(MILES_EINVAL, "gradient accumulation must be >= 1 (got %d)", c->grad_accum);
    if (c->epochs < 1) return miles_error(MILES_EINVAL, "epochs must be >= 1 (got %d)", c->epochs);
    if (c->max_len < 2) return miles_error(MILES_EINVAL, "max_len must be >= 2 (got %d)", c->max_len);
    if (!(c->lr > 0) || !isfinite(c->lr)) return miles_error(MILES_EINVAL, "learning rate must be > 0 (got %g)", c->lr);
    if (!train || train->n < 1) return miles_error(MILES_EINVAL, "training split is empty");
    if (!train->labels || !train->velocity || !train->features || !train->ids || !train->mask)
        return miles_error(MILES_EINVAL, "training data lacks ids, mask, features, labels or velocity");
    if (val && val->n > 0 && (!val->labels || !val->velocity))
        return miles_error(MILES_EINVAL, "validation data lacks labels or velocity");
    return MILES_OK;
}

/* This rank's share of the GLOBAL micro-batch loss.  The model's loss is
 * w_cls * sum_b w[y_b] CE_b / sum_b w[y_b] + w_reg * sum_b MSE_b / B; a rank
 * holding rows [lo,hi) of the nb rows reproduces its part of the single-process
 * gradient exactly (in real arithmetic) when its weights are scaled by its
 * share of each normalizer: w_cls * W_local / W_global and w_reg * n_local / nb.
 * The sum-all-reduce of the ranks' gradients is then the global gradient.
 * Every rank holds the whole epoch order, so no communication is needed. */
static void set_shard_loss(MilesModel *m, const MilesLossConfig *lc, const MilesTrainData *d, const int *rows,
                           int nb, int lo, int hi) {
    double wg = 0, wl = 0;
    for (int i = 0; i < nb; i++) {
        double w = lc->class_weight[d->labels[rows[i]] ? 1 : 0];
        wg += w;
        if (i >= lo && i < hi) wl += w;
    }
    MilesLossConfig sl = *lc;
    sl.w_cls = (float)(lc->w_cls * (wg > 0 ? wl / wg : 0.0));
    sl.w_reg = (float)(lc->w_reg * (double)(hi - lo) / nb);
    miles_model_set_loss(m, &sl);
}

int miles_train_run(MilesModel *m, const MilesTrainData *train, const MilesTrainData *val,
                    const MilesTrainConfig *cfg, MilesTrainResult *res) {
    MilesTrainResult dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->best_val_auroc = NAN;
    res->decision_threshold = 0.5;
    /* data parallelism: nrank ranks, each with the same data, model and config */
    MilesDist *dist = cfg->dist;
    const int nrank = miles_dist_size(dist), rank = miles_dist_rank(dist);
    const int root = rank == 0, dp = nrank > 1;
    MILES_TRY(validate_cfg(cfg, train, val)); /* same verdict on every rank */
    if (val && val->n == 0) val = NULL;
    MILES_TRY(miles_dist_agree(dist, root ? ensure_dir(cfg->out_dir) : MILES_OK));

    const int B = cfg->batch_size, A = cfg->grad_accum;
    const int nbatch = (train->n + B - 1) / B;
    const int64_t steps_per_epoch = (nbatch + A - 1) / A;
    const int64_t total_steps = steps_per_epoch * cfg->epochs;

    MilesTrainState st;
    memset(&st, 0, sizeof st);
    st.best_auroc = -INFINITY;
    st.best_es = -INFINITY;
    st.threshold = 0.5;

    MilesAdamWConfig oc = {cfg->lr, 0.9f, 0.999f, 1e-8f, cfg->weight_decay, cfg->decay_all};
    MilesAdamW *opt = NULL;    /* full moments (one process, or plain data parallelism) */
    MilesZero1 *zero = NULL;   /* this rank's shard of the moments (ZeRO-1) */
    int s = (dp && cfg->zero1) ? miles_zero1_build(&zero, dist, m, &oc) : miles_adamw_build(&opt, m, &oc);
    s = miles_dist_agree(dist, s);
    if (s != MILES_OK) { miles_adamw_free(opt); miles_zero1_free(zero); return s; }
    miles_model_set_loss(m, &cfg->loss);

    char last_path[4096], best_path[4096], log_path[4096], tb_dir[4096];
    snprintf(last_path, sizeof last_path, "%s/last.safetensors", cfg->out_dir);
    snprintf(best_path, sizeof best_path, "%s/best.safetensors", cfg->out_dir);
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", cfg->out_dir);
    snprintf(tb_dir, sizeof tb_dir, "%s/tb", cfg->out_dir);

    if (cfg->resume) {
        /* rank 0 reads the checkpoint (the only one that needs the file system),
         * then everything is broadcast: any N resumes any checkpoint */
        MilesAdamW *full = opt;
        if (root && zero) s = miles_adamw_build(&full, m, &oc);
        if (root && s == MILES_OK) s = miles_ckpt_load_state(last_path, m, full, &st);
        s = miles_dist_agree(dist, s);
        if (s == MILES_OK && zero) s = miles_zero1_scatter(zero, root ? full : NULL);
        if (zero) miles_adamw_free(root ? full : NULL);
        if (s != MILES_OK) { miles_adamw_free(opt); miles_zero1_free(zero); return s; }
        if (cfg->progress && root)
            fprintf(stderr, "resumed from %s at step %lld (epoch %d, batch %d)\n", last_path,
                    (long long)st.step, st.epoch + 1, st.cursor);
    }
    /* every rank starts from rank 0's parameters, moments and state */
    s = miles_dist_sync_train(dist, m, opt, &st);

    FILE *log = NULL;
    MilesTBWriter *tb = NULL;
    if (s == MILES_OK && root) {
        log = fopen(log_path, cfg->resume ? "a" : "w");
        if (!log) s = miles_error(MILES_EIO, "%s: cannot open: %s", log_path, strerror(errno));
        else if (ensure_dir(tb_dir) == MILES_OK && miles_tb_open(&tb, tb_dir) != MILES_OK) tb = NULL; /* logs are optional */
    }
    s = miles_dist_agree(dist, s);
    if (s != MILES_OK) { if (log) fclose(log); miles_adamw_free(opt); miles_zero1_free(zero); return s; }
    if (dp && cfg->progress && root)
        fprintf(stderr, "data parallel: %d ranks, global batch %d (%d per rank)%s\n", nrank, B,
                (B + nrank - 1) / nrank, zero ? ", ZeRO-1 sharded AdamW moments" : "");

    int *order = miles_malloc(sizeof(int) * (size_t)train->n);
    MilesBatchBuf bb = {0};
    if (!order) s = MILES_ENOMEM;
    s = miles_dist_agree(dist, s);
    const int tty = root && cfg->progress && isatty(2);
    const double t0 = now_s();
    const int64_t step0 = st.step;
    int64_t examples_done = 0;
    double ema_loss = NAN;
    int done = 0;
    /* rank 0 keeps the single-process dropout masks; other ranks draw their own */
    const uint64_t drop_seed = cfg->seed + (uint64_t)rank * 0x9E3779B97F4A7C15ull;

    for (int epoch = st.epoch; s == MILES_OK && !done && epoch < cfg->epochs; epoch++) {
        miles_train_epoch_order(order, train, cfg->seed, epoch, B, cfg->bucket);
        int bi = (epoch == st.epoch) ? st.cursor : 0;
        st.epoch = epoch;
        while (s == MILES_OK && bi < nbatch) {
            miles_model_zero_grad(m);
            double step_loss = 0;
            for (int micro = 0; micro < A && bi < nbatch; micro++, bi++) {
                int b0 = bi * B, nb = train->n - b0 < B ? train->n - b0 : B;
                const int *rows = order + b0;
                /* this rank's contiguous share of the global micro-batch */
                int lo = (int)((int64_t)nb * rank / nrank), hi = (int)((int64_t)nb * (rank + 1) / nrank);
                examples_done += nb;
                if (dp) set_shard_loss(m, &cfg->loss, train, rows, nb, lo, hi);
                if (hi <= lo) continue; /* fewer rows than ranks: contribute zero gradient */
                MilesBatch batch;
                s = miles_batchbuf_fill(&bb, train, rows + lo, hi - lo, cfg->max_len, &batch);
                if (s != MILES_OK) break;
                miles_model_set_dropout_key(m, drop_seed, ((uint64_t)epoch << 32) | (uint64_t)bi);
                float loss = 0;
                s = miles_model_forward(m, &batch, 1, NULL, NULL, &loss);
                if (s != MILES_OK) break;
                if (!isfinite(loss)) {
                    s = miles_error(MILES_ENAN, "training loss is %g at step %lld (epoch %d, batch %d)%s",
                                    loss, (long long)st.step, epoch + 1, bi, dp ? " on this rank" : "");
                    break;
                }
                s = miles_model_backward(m, 1.0f / A);
                if (s != MILES_OK) break;
                step_loss += loss / A;
            }
            int stop_any = cfg->stop_flag && *cfg->stop_flag;
            if (dp) {
                /* agree on errors, sum the loss shares, hear any rank's stop request */
                double v[2] = {step_loss, stop_any};
                s = miles_dist_agree(dist, s);
                if (s == MILES_OK) s = miles_dist_allreduce_f64(dist, v, 2);
                step_loss = v[0];
                stop_any = v[1] > 0;
            }
            if (s != MILES_OK) break;
            const float clip = cfg->clip > 0 ? cfg->clip : INFINITY;
            double lr = miles_train_lr(cfg, st.step, epoch, total_steps);
            float gnorm = 0;
            if (zero) {
                s = miles_zero1_step(zero, (float)lr, clip, &gnorm);
            } else {
                if (dp) s = miles_dist_reduce_grads(dist, m);
                if (s == MILES_OK) {
                    gnorm = miles_clip_grad_norm(m, clip);
                    s = miles_adamw_step(opt, (float)lr);
                }
            }
            if (s != MILES_OK) break;
            st.step++;
            st.cursor = bi;
            ema_loss = isnan(ema_loss) ? step_loss : 0.95 * ema_loss + 0.05 * step_loss;

            double el = now_s() - t0;
            double exps = examples_done / (el > 1e-9 ? el : 1e-9);
            int64_t left = total_steps - st.step;
            if (cfg->max_steps > 0 && cfg->max_steps - st.step < left) left = cfg->max_steps - st.step;
            double eta = (st.step > step0) ? el / (double)(st.step - step0) * (double)left : NAN;
            if (root) {
                fprintf(log, "{\"type\":\"step\",\"step\":%lld,\"epoch\":%d,\"batch\":%d,\"loss\":%.8g,"
                             "\"lr\":%.8g,\"grad_norm\":%.8g,\"examples_per_s\":%.4g,\"elapsed_s\":%.3f}\n",
                        (long long)st.step, epoch + 1, bi, step_loss, lr, gnorm, exps, el);
                if (tb) {
                    miles_tb_scalar(tb, "train/loss", st.step, (float)step_loss);
                    miles_tb_scalar(tb, "train/lr", st.step, (float)lr);
                    miles_tb_scalar(tb, "train/grad_norm", st.step, gnorm);
                }
                if (cfg->progress && (tty || st.step % 50 == 0 || bi == nbatch))
                    progress_line(tty, epoch, cfg->epochs, bi, nbatch, ema_loss, lr, exps, eta);
            }

            int at_eval = cfg->eval_every > 0 ? (st.step % cfg->eval_every == 0) : (bi == nbatch);
            int stop_now = stop_any || (cfg->max_steps > 0 && st.step >= cfg->max_steps);
            int epoch_end = bi == nbatch;
            if (epoch_end) { st.epoch = epoch + 1; st.cursor = 0; }
            if (at_eval && val && root) {
                /* rank 0 alone evaluates; the verdict (early stop) is broadcast below */
                if (tty) fputc('\n', stderr);
                MilesEvalResult ev;
                s = miles_train_evaluate(m, val, cfg->max_len, &cfg->loss, &ev);
                if (s == MILES_OK) {
                    int improved_best = ev.auroc > st.best_auroc;
                    /* early stopping as the original: the first evaluation sets the
                     * reference; later ones count only if they beat it by min_delta */
                    if (st.n_evals == 0 || ev.auroc > st.best_es + cfg->min_delta) {
                        st.best_es = ev.auroc;
                        st.bad_evals = 0;
                    } else {
                        st.bad_evals++;
                    }
                    st.n_evals++;
                    fprintf(log, "{\"type\":\"eval\",\"step\":%lld,\"epoch\":%d,\"val_auroc\":%.10g,"
                                 "\"val_loss\":%.8g,\"val_velocity_mae\":%.8g,\"val_best_f1\":%.8g,"
                                 "\"val_f1_threshold\":%.8g,\"improved\":%s}\n",
                            (long long)st.step, epoch + 1, ev.auroc, ev.loss, ev.vel_mae, ev.f1, ev.threshold,
                            improved_best ? "true" : "false");
                    if (tb) {
                        miles_tb_scalar(tb, "val/auroc", st.step, (float)ev.auroc);
                        miles_tb_scalar(tb, "val/loss", st.step, (float)ev.loss);
                        miles_tb_scalar(tb, "val/velocity_mae", st.step, (float)ev.vel_mae);
                    }
                    if (cfg->progress)
                        fprintf(stderr, "eval step %lld: val AUROC %.4f  loss %.4f  velocity MAE %.4f  best F1 %.4f @ %.3f%s\n",
                                (long long)st.step, ev.auroc, ev.loss, ev.vel_mae, ev.f1, ev.threshold,
                                improved_best ? "  (best)" : "");
                    if (improved_best) {
                        st.best_auroc = ev.auroc;
                        st.best_step = st.step;
                        st.threshold = ev.threshold;
                        st.best_f1 = ev.f1;
                        s = miles_ckpt_save(best_path, m, NULL, &st, cfg);
                    }
                    if (s == MILES_OK && st.bad_evals >= cfg->patience && cfg->patience > 0) {
                        res->stopped_early = 1;
                        done = 1;
                        if (cfg->progress)
                            fprintf(stderr, "early stopping: no val AUROC gain > %g for %d evaluations\n",
                                    cfg->min_delta, cfg->patience);
                    }
                }
            }
            /* "last" is kept current at evaluations, stops and (without validation) epoch ends */
            if (at_eval || stop_now || (epoch_end && !val)) {
                s = miles_dist_agree(dist, s); /* rank 0's evaluation */
                if (s == MILES_OK) s = miles_dist_check_same_params(dist, m, st.step);
                MilesAdamW *ck = opt;
                if (s == MILES_OK && zero) s = miles_zero1_gather(zero, &ck);
                if (s == MILES_OK && root) {
                    s = miles_ckpt_save(last_path, m, ck, &st, cfg);
                    fflush(log);
                    if (tb) miles_tb_flush(tb);
                }
                if (zero && ck != opt) miles_adamw_free(ck);
                s = miles_dist_agree(dist, s);
                if (s == MILES_OK && dp) {
                    int fl[2] = {done, res->stopped_early};
                    s = miles_dist_bcast(dist, fl, sizeof fl, 0);
                    done = fl[0];
                    res->stopped_early = fl[1];
                }
                if (s != MILES_OK) break;
            }
            if (stop_now) {
                if (stop_any) res->interrupted = 1;
                done = 1;
            }
            if (done) break;
        }
    }
    if (tty) fputc('\n', stderr);
    if (dp) miles_model_set_loss(m, &cfg->loss); /* undo the last shard's scaling */
    /* rank 0 holds the evaluation history: every rank reports the same result */
    if (s == MILES_OK && dp) s = miles_dist_bcast(dist, &st, sizeof st, 0);

    res->steps = st.step;
    res->epochs_done = st.epoch;
    res->best_val_auroc = st.n_evals ? st.best_auroc : NAN;
    res->best_step = st.best_step;
    res->decision_threshold = st.threshold;
    res->seconds = now_s() - t0;
    if (log) fclose(log);
    miles_tb_close(tb);
    free(order);
    miles_batchbuf_free(&bb);
    miles_adamw_free(opt);
    miles_zero1_free(zero);
    return s;
}

/* ------------------------------------------------------------- metric hooks */

static double *to_double(const float *p, int n) {
    double *d = miles_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (d) for (int i = 0; i < n; i++) d[i] = p[i];
    return d;
}

int miles_train_auroc(const float *probs, const int32_t *labels, int n, double *auroc) {
    double *d = to_double(probs, n);
    if (!d) return MILES_ENOMEM;
    int s = miles_metric_auroc(d, labels, n, auroc);
    free(d);
    return s;
}

int miles_train_best_f1(const float *probs, const int32_t *labels, int n, double *threshold, double *f1) {
    double *d = to_double(probs, n);
    if (!d) return MILES_ENOMEM;
    int s = miles_metric_best_f1_threshold(d, labels, n, threshold, f1);
    free(d);
    return s;
}
