/*
 * train_eval.c — scoring a dataset (the one batching loop shared by the
 * trainer's validation, miles_predict_dataset and the predictor), and the
 * trainer's evaluate-and-maybe-save: validation metrics through
 * miles_metrics_compute, early stopping on validation AUROC, best.safetensors.
 */
#include "internal.h"
#include "train_internal.h"

#include <math.h>

/* ---------------------------------------------------------------- prediction */

int miles_predict_batches(MilesForwardFn fwd, void *ctx, const MilesDataset *d, int batch_size, int max_len,
                          double *p_viral, double *velocity, MilesProgressFn progress, void *user) {
    if (batch_size < 1) return miles_error(MILES_EINVAL, "predict: batch size must be >= 1");
    if (!d || d->n < 0 || (d->n > 0 && (!d->input_ids || !d->attention_mask || !d->features)))
        return miles_error(MILES_EINVAL, "predict: the dataset lacks ids, mask or features");
    MilesBatchBuf bb = {0};
    int64_t *rows = miles_malloc(sizeof(int64_t) * (size_t)batch_size);
    float *logits = miles_malloc(sizeof(float) * 2 * (size_t)batch_size);
    float *vel = miles_malloc(sizeof(float) * (size_t)batch_size);
    int s = (rows && logits && vel) ? MILES_OK : MILES_ENOMEM;
    for (int64_t b0 = 0; s == MILES_OK && b0 < d->n; b0 += batch_size) {
        int nb = (int)(d->n - b0 < batch_size ? d->n - b0 : batch_size);
        for (int i = 0; i < nb; i++) rows[i] = b0 + i;
        MilesBatch batch;
        s = miles_batchbuf_fill(&bb, d, rows, nb, max_len, &batch);
        if (s != MILES_OK) break;
        batch.labels = NULL;   /* eval mode: outputs only */
        batch.velocity = NULL;
        s = fwd(ctx, &batch, logits, vel);
        if (s != MILES_OK) break;
        for (int i = 0; i < nb; i++) {
            /* softmax over 2 logits = logistic of their difference (stable), in
             * double, rounded to fp32: the model's precision */
            double z = (double)logits[2 * i + 1] - logits[2 * i];
            if (p_viral) p_viral[b0 + i] = (float)(1.0 / (1.0 + exp(-z)));
            if (velocity) velocity[b0 + i] = vel[i];
        }
        if (progress) progress(user, b0 + nb, d->n);
    }
    free(rows);
    free(logits);
    free(vel);
    miles_batchbuf_free(&bb);
    return s;
}

static int backend_forward(void *ctx, const MilesBatch *b, float *logits, float *velocity) {
    MilesBackend *be = ctx;
    return miles_backend_status(be->ops, be->ops->forward(be->state, b, 0, logits, velocity, NULL));
}

int miles_predict_dataset_progress(MilesModel *m, const char *device, MilesPrecision precision, const MilesDataset *d,
                                   int batch_size, int max_len, double *p_viral, double *velocity,
                                   MilesProgressFn progress, void *user) {
    if (!m) return miles_error(MILES_EINVAL, "miles_predict_dataset: model is NULL");
    MilesBackend be;
    MILES_TRY(miles_backend_open(&be, device, precision, m, NULL));
    int s = miles_predict_batches(backend_forward, &be, d, batch_size, max_len, p_viral, velocity, progress, user);
    miles_backend_close(&be);
    return s;
}

int miles_predict_dataset_on(MilesModel *m, const char *device, MilesPrecision precision, const MilesDataset *d,
                             int batch_size, int max_len, double *p_viral, double *velocity) {
    return miles_predict_dataset_progress(m, device, precision, d, batch_size, max_len, p_viral, velocity, NULL, NULL);
}

int miles_predict_dataset(MilesModel *m, const MilesDataset *d, int batch_size, int max_len, double *p_viral,
                          double *velocity) {
    return miles_predict_dataset_on(m, NULL, MILES_PRECISION_FP32, d, batch_size, max_len, p_viral, velocity);
}

/* ---------------------------------------------------------------- validation */

int miles_train_evaluate(MilesTrainer *t, const MilesTrainOps *ops, MilesEvalResult *r) {
    const MilesDataset *val = t->val;
    memset(r, 0, sizeof *r);
    r->auroc = r->loss = r->vel_mae = NAN;
    r->threshold = 0.5;
    const size_t n = (size_t)val->n;
    double *p = miles_malloc(sizeof(double) * n), *v = miles_malloc(sizeof(double) * n);
    double *vt = miles_malloc(sizeof(double) * n);
    int s = (p && v && vt) ? MILES_OK : MILES_ENOMEM;
    if (s == MILES_OK) s = miles_predict_batches(ops->forward, t, val, 64, t->cfg->max_len, p, v, NULL, NULL);
    if (s == MILES_OK) {
        for (size_t i = 0; i < n; i++) vt[i] = val->velocity[i];
        MilesMetricsOptions mo;
        miles_metrics_options_default(&mo);
        mo.n_bootstrap = 0;
        mo.class_weight[0] = t->loss.class_weight[0];
        mo.class_weight[1] = t->loss.class_weight[1];
        MilesMetrics mm;
        /* a single-class or diverged split still reports what is defined (NaN otherwise) */
        miles_metrics_compute(&mm, p, val->labels, (int)n, v, vt, &mo);
        miles_clear_error();
        if (mm.valid & MILES_M_AUROC) r->auroc = mm.auroc;
        if (mm.valid & MILES_M_BEST_F1) {
            r->threshold = mm.best_f1_threshold;
            r->f1 = mm.best_f1;
        }
        if (mm.valid & MILES_M_VELOCITY) r->vel_mae = mm.velocity.mae;
        if ((mm.valid & MILES_M_VELOCITY) && (mm.valid & MILES_M_LOG_LOSS))
            r->loss = t->loss.w_cls * mm.log_loss + t->loss.w_reg * mm.velocity.mse;
    }
    free(p);
    free(v);
    free(vt);
    return s;
}

int miles_train_es_update(MilesTrainState *st, int patience, double min_delta, double auroc, int *stop) {
    const int improved_best = auroc > st->best_auroc;
    if (st->n_evals == 0 || auroc > st->best_es + min_delta) {
        st->best_es = auroc;
        st->bad_evals = 0;
    } else {
        st->bad_evals++;
    }
    st->n_evals++;
    if (improved_best) st->best_auroc = auroc;
    *stop = patience > 0 && st->bad_evals >= patience;
    return improved_best;
}

int miles_train_evaluate_and_save(MilesTrainer *t, const MilesTrainOps *ops, int *stop) {
    const MilesTrainConfig *c = t->cfg;
    MilesTrainState *st = &t->st;
    *stop = 0;
    MilesEvalResult ev;
    MILES_TRY(miles_train_evaluate(t, ops, &ev));
    int es_stop = 0;
    const int improved_best = miles_train_es_update(st, c->patience, c->min_delta, ev.auroc, &es_stop);
    if (improved_best) {
        st->best_step = st->step;
        st->threshold = ev.threshold;
        st->best_f1 = ev.f1;
    }
    MilesTrainEvent e;
    miles_train_event_init(t, MILES_EVENT_EVAL, &e);
    e.val_auroc = ev.auroc;
    e.val_loss = ev.loss;
    e.val_velocity_mae = ev.vel_mae;
    e.val_best_f1 = ev.f1;
    e.val_f1_threshold = ev.threshold;
    e.best = improved_best;
    MILES_TRY(miles_train_emit(t, &e));
    if (improved_best) {
        MILES_TRY(ops->save(t, t->best_path, 0));
        miles_train_event_init(t, MILES_EVENT_CHECKPOINT, &e);
        e.path = t->best_path;
        MILES_TRY(miles_train_emit(t, &e));
    }
    if (es_stop) {
        *stop = 1;
        miles_train_event_init(t, MILES_EVENT_EARLY_STOP, &e);
        e.patience = c->patience;
        e.min_delta = c->min_delta;
        MILES_TRY(miles_train_emit(t, &e));
    }
    return MILES_OK;
}
