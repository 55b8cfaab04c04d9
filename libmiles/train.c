/*
 * train.c — the training loop: epochs of optimizer steps (train_step.c),
 * evaluation with early stopping and best.safetensors (train_eval.c),
 * last.safetensors at evaluations and stops, bit-identical resume, data
 * parallelism; and miles_train_run, the loop on a prepared file with the
 * serving contract (scaler, tokenizer, text cleaning) put into every
 * checkpoint.  Nothing here prints: events go to cfg->callback.
 */
#include "internal.h"
#include "train_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <dirent.h>
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
    c->recipe = "default";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- events */

void miles_train_event_init(const MilesTrainer *t, int type, MilesTrainEvent *ev) {
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->step = t->st.step;
    ev->total_steps = t->total_steps;
    if (t->cfg->max_steps > 0 && t->cfg->max_steps < ev->total_steps) ev->total_steps = t->cfg->max_steps;
    ev->epoch = t->st.epoch;
    ev->epochs = t->cfg->epochs;
    ev->batch = t->st.cursor;
    ev->batches = t->nbatch;
    ev->examples = t->examples;
    ev->elapsed_s = now_s() - t->t0;
    ev->ranks = t->nrank;
    ev->zero1 = t->zero != NULL;
    ev->val_auroc = ev->val_loss = ev->val_velocity_mae = NAN;
    /* as of the last read: an event never touches the device */
    ev->loss_scale = t->loss_scale;
    ev->skipped_steps = t->skipped;
}

int miles_train_emit(MilesTrainer *t, MilesTrainEvent *ev) {
    if (t->rank != 0 || !t->cfg->callback) return MILES_OK;
    miles_clear_error();
    int s = t->cfg->callback(ev, t->cfg->callback_arg);
    if (s != MILES_OK && !miles_last_error()[0])
        miles_error(s, "training stopped by the event callback (%s)", miles_status_name(s));
    return s;
}

/* ---------------------------------------------------------------- checks */

/* The temp files of checkpoint writes a kill -9 interrupted ("last.safetensors.tmp.XXXXXX",
 * 276 MB each for MiniLM): only this trainer writes checkpoints in out_dir, so
 * any found at the start are stale.  Exactly the miles_atomic_open names of the
 * two checkpoints; nothing else is touched. */
static void remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        int ours = (!strncmp(nm, "last.safetensors.tmp.", 21) || !strncmp(nm, "best.safetensors.tmp.", 21)) && l == 27;
        char p[4200];
        if (ours && miles_path_join(p, sizeof p, dir, nm) == MILES_OK) unlink(p);
    }
    closedir(d);
}

static int ensure_dir(const char *dir) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return miles_error(MILES_EINVAL, "output directory path too long");
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

static int validate_cfg(const MilesTrainConfig *c, const MilesDataset *train, const MilesDataset *val) {
    if (c->batch_size < 1) return miles_error(MILES_EINVAL, "batch size must be >= 1 (got %d)", c->batch_size);
    if (c->grad_accum < 1) return miles_error(MILES_EINVAL, "gradient accumulation must be >= 1 (got %d)", c->grad_accum);
    if (c->epochs < 1) return miles_error(MILES_EINVAL, "epochs must be >= 1 (got %d)", c->epochs);
    if (c->log_every < 0) return miles_error(MILES_EINVAL, "log_every must be >= 0 (got %d)", c->log_every);
    if (c->max_len < 2) return miles_error(MILES_EINVAL, "max_len must be >= 2 (got %d)", c->max_len);
    if (!(c->lr > 0) || !isfinite(c->lr)) return miles_error(MILES_EINVAL, "learning rate must be > 0 (got %g)", c->lr);
    if (!c->out_dir || !*c->out_dir) return miles_error(MILES_EINVAL, "no output directory");
    if (!train || train->n < 1) return miles_error(MILES_EINVAL, "training split is empty");
    if ((double)train->n / c->batch_size > INT_MAX)
        return miles_error(MILES_EINVAL, "training split too large (%lld examples)", (long long)train->n);
    if (!train->labels || !train->velocity || !train->features || !train->input_ids || !train->attention_mask)
        return miles_error(MILES_EINVAL, "training data lacks ids, mask, features, labels or velocity");
    if (val && val->n > 0 && (!val->labels || !val->velocity || !val->features || !val->input_ids ||
                              !val->attention_mask))
        return miles_error(MILES_EINVAL, "validation data lacks ids, mask, features, labels or velocity");
    if (val && val->n > INT_MAX) return miles_error(MILES_EINVAL, "validation split too large");
    return MILES_OK;
}

/* class_weight = n / (2 n_c) of the training labels (sklearn "balanced"). */
static int balanced_weights(const MilesDataset *d, float w[2]) {
    int64_t n1 = 0;
    for (int64_t i = 0; i < d->n; i++) n1 += d->labels[i] != 0;
    int64_t n0 = d->n - n1;
    if (n0 == 0 || n1 == 0)
        return miles_error(MILES_EINVAL, "the training split has a single class (%lld examples, all %s): "
                                         "automatic class weights are undefined", (long long)d->n,
                           n1 ? "viral" : "not viral");
    w[0] = (float)((double)d->n / (2.0 * n0));
    w[1] = (float)((double)d->n / (2.0 * n1));
    return MILES_OK;
}

/* ---------------------------------------------------------------- the loop */

/* "last" and the early-stopping verdict at an evaluation, a stop or (without
 * validation) an epoch end: every rank takes part (ZeRO-1 gathers moments). */
static int save_last(MilesTrainer *t, const MilesTrainOps *ops, int s, int *done, int *stopped_early) {
    s = miles_dist_agree(t->dist, s); /* rank 0's evaluation */
    if (s == MILES_OK) s = ops->check_replicas(t);
    if (s == MILES_OK) s = ops->save(t, t->last_path, 1);
    s = miles_dist_agree(t->dist, s);
    if (s == MILES_OK) {
        MilesTrainEvent e;
        miles_train_event_init(t, MILES_EVENT_CHECKPOINT, &e);
        e.path = t->last_path;
        s = miles_train_emit(t, &e);
        s = miles_dist_agree(t->dist, s);
    }
    if (s == MILES_OK && t->nrank > 1) {
        int fl[2] = {*done, *stopped_early};
        s = miles_dist_bcast(t->dist, fl, sizeof fl, 0);
        *done = fl[0];
        *stopped_early = fl[1];
    }
    return s;
}

/* The STEP event: the mean loss of the steps since the last one (deferred:
 * read from the device now, the one host sync of the interval). */
static int log_step(MilesTrainer *t, const MilesTrainOps *ops, double lr) {
    int s = ops->read_stats ? ops->read_stats(t) : MILES_OK;
    /* deferred with several ranks: each device summed its shares of the losses */
    if (t->deferred && t->nrank > 1) {
        s = miles_dist_agree(t->dist, s);
        if (s == MILES_OK) s = miles_dist_allreduce_f64(t->dist, &t->log_loss, 1);
    }
    double loss = t->log_loss / (double)t->log_steps;
    if (s == MILES_OK && t->deferred && !isfinite(loss))
        s = miles_error(MILES_ENAN, "training loss is %g in steps %lld..%lld (epoch %d; on %s the loss is checked "
                        "at log intervals: --log-every 1 names the step)", loss,
                        (long long)(t->st.step - t->log_steps + 1), (long long)t->st.step, t->st.epoch + 1,
                        t->cfg->device ? t->cfg->device : "cpu");
    if (s == MILES_OK) {
        MilesTrainEvent e;
        miles_train_event_init(t, MILES_EVENT_STEP, &e);
        e.loss = loss;
        e.lr = lr;
        e.grad_norm = t->log_norm;
        s = miles_train_emit(t, &e);
    }
    t->log_loss = 0;
    t->log_steps = 0;
    return miles_dist_agree(t->dist, s);
}

static int run_loop(MilesTrainer *t, const MilesTrainOps *ops, MilesTrainResult *res) {
    const MilesTrainConfig *c = t->cfg;
    MilesTrainState *st = &t->st;
    int s = MILES_OK, done = 0;
    for (int epoch = st->epoch; s == MILES_OK && !done && epoch < c->epochs; epoch++) {
        s = miles_dist_agree(t->dist, miles_train_epoch_order(t->order, t->train, c->seed, epoch, c->batch_size,
                                                              c->bucket));
        if (s != MILES_OK) break;
        if (epoch != st->epoch) st->cursor = 0;
        st->epoch = epoch;
        while (s == MILES_OK && st->cursor < t->nbatch) {
            double loss = 0, lr = 0;
            float gnorm = 0;
            int stop_any = 0;
            s = miles_train_step(t, ops, epoch, &loss, &lr, &gnorm, &stop_any);
            if (s != MILES_OK) break;
            int epoch_end = st->cursor == t->nbatch;
            int at_eval = c->eval_every > 0 ? (st->step % c->eval_every == 0) : epoch_end;
            int stop_now = stop_any || (c->max_steps > 0 && st->step >= c->max_steps);

            /* a STEP event every log_every steps and before anything that
             * reads the model (evaluation, checkpoint, the end) */
            t->log_steps++;
            if (!t->deferred) {
                t->log_loss += loss;
                t->log_norm = gnorm;
            }
            if (st->step % t->log_every == 0 || epoch_end || at_eval || stop_now) {
                s = log_step(t, ops, lr);
                if (s != MILES_OK) break;
            }
            if (epoch_end) { st->epoch = epoch + 1; st->cursor = 0; }
            if (at_eval && t->val && t->rank == 0) s = miles_train_evaluate_and_save(t, ops, &done);
            if (done) res->stopped_early = 1;
            /* "last" is kept current at evaluations, stops and (without validation) epoch ends */
            if (at_eval || stop_now || (epoch_end && !t->val)) s = save_last(t, ops, s, &done, &res->stopped_early);
            if (s != MILES_OK) break;
            if (stop_now) {
                if (stop_any) res->interrupted = 1;
                done = 1;
            }
            if (done || epoch_end) break;
        }
    }
    return s;
}

int miles_train_datasets(MilesModel *m, const MilesDataset *train, const MilesDataset *val,
                         const MilesCkptContract *contract, const MilesTrainConfig *cfg, MilesTrainResult *res) {
    MilesTrainResult dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->best_val_auroc = NAN;
    res->decision_threshold = 0.5;
    if (!m || !cfg) return miles_error(MILES_EINVAL, "miles_train_run: model and config are required");
    /* one process: the backend cfg->device names (the CPU reference or
     * CUDA); data parallelism: the CPU ops with collectives */
    const int nrank = miles_dist_size(cfg->dist);
    const MilesTrainOps *ops = nrank > 1 ? &miles_train_ops_cpu : &miles_train_ops_backend;
    if (nrank > 1) {
        /* a device: one per rank, gradients over the backend's collectives
         * (NCCL for CUDA; train_dp_device.c) */
        int is_cuda = 0, idx = 0;
        MILES_TRY(miles_device_parse(cfg->device, &is_cuda, &idx));
        if (is_cuda) ops = &miles_train_ops_backend_dp;
    }

    MilesTrainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.m = m;
    t.dist = cfg->dist;
    t.nrank = miles_dist_size(t.dist);
    t.rank = miles_dist_rank(t.dist);
    t.contract = contract;
    t.t0 = now_s();
    MILES_TRY(validate_cfg(cfg, train, val)); /* same verdict on every rank */
    t.train = train;
    t.val = val && val->n > 0 ? val : NULL;
    t.loss = cfg->loss;
    if (cfg->auto_class_weight) MILES_TRY(balanced_weights(train, t.loss.class_weight));
    res->class_weight[0] = t.loss.class_weight[0];
    res->class_weight[1] = t.loss.class_weight[1];
    MILES_TRY(miles_dist_agree(t.dist, t.rank == 0 ? ensure_dir(cfg->out_dir) : MILES_OK));
    if (t.rank == 0) remove_stale_temps(cfg->out_dir);
    if (miles_path_join(t.last_path, sizeof t.last_path, cfg->out_dir, "last.safetensors") != MILES_OK ||
        miles_path_join(t.best_path, sizeof t.best_path, cfg->out_dir, "best.safetensors") != MILES_OK)
        return MILES_EINVAL;

    const int B = cfg->batch_size, A = cfg->grad_accum;
    t.nbatch = (int)((train->n + B - 1) / B);
    t.steps_per_epoch = (t.nbatch + A - 1) / A;
    t.total_steps = t.steps_per_epoch * cfg->epochs;
    t.st.best_auroc = -INFINITY;
    t.st.best_es = -INFINITY;
    t.st.threshold = 0.5;
    /* rank 0 keeps the single-process dropout masks; other ranks draw their own */
    t.drop_seed = cfg->seed + (uint64_t)t.rank * 0x9E3779B97F4A7C15ull;
    MilesAdamWConfig oc = {cfg->lr, 0.9f, 0.999f, 1e-8f, cfg->weight_decay, cfg->decay_all, cfg->head_lr,
                           cfg->layer_decay};
    t.adamw = oc;

    t.loss_scale = 1.0;
    int s = miles_dist_agree(t.dist, ops->init(&t));
    if (s == MILES_OK && cfg->resume) s = ops->load(&t, t.last_path);
    t.log_every = cfg->log_every > 0 ? cfg->log_every : t.deferred ? 10 : 1;
    /* the (resumed) loss scale for the START event; the device's loss sum from 0 */
    if (s == MILES_OK && ops->read_stats) s = ops->read_stats(&t);
    t.log_loss = 0;
    /* every rank starts from rank 0's parameters, moments and state */
    if (s == MILES_OK) s = ops->sync(&t);
    t.order = miles_malloc(sizeof(int64_t) * (size_t)train->n);
    s = miles_dist_agree(t.dist, s == MILES_OK && !t.order ? MILES_ENOMEM : s);
    const int64_t step0 = t.st.step;
    if (s == MILES_OK) {
        MilesTrainEvent e;
        miles_train_event_init(&t, MILES_EVENT_START, &e);
        e.resumed = cfg->resume;
        e.start_step = step0;
        s = miles_dist_agree(t.dist, miles_train_emit(&t, &e));
    }
    if (s == MILES_OK) s = run_loop(&t, ops, res);
    if (s == MILES_OK && ops->finish) s = ops->finish(&t); /* the trained weights in m */
    miles_model_set_loss(m, &t.loss); /* the last data-parallel shard's scaling undone */
    /* rank 0 holds the evaluation history: every rank reports the same result */
    if (s == MILES_OK && t.nrank > 1) s = miles_dist_bcast(t.dist, &t.st, sizeof t.st, 0);

    res->steps = t.st.step;
    res->epochs_done = t.st.epoch;
    res->best_val_auroc = t.st.n_evals ? t.st.best_auroc : NAN;
    res->best_step = t.st.best_step;
    res->decision_threshold = t.st.threshold;
    res->seconds = now_s() - t.t0;
    {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", miles_last_error());
        MilesTrainEvent e;
        miles_train_event_init(&t, MILES_EVENT_END, &e);
        e.status = s;
        e.start_step = step0;
        miles_train_emit(&t, &e); /* the status of END is not used */
        if (s != MILES_OK) miles_error(s, "%s", msg);
    }
    free(t.order);
    miles_batchbuf_free(&t.bb);
    ops->free(&t);
    return s;
}

/* ---------------------------------------------------------------- prepared data */

int miles_train_run(MilesModel *m, const MilesPrepared *data, const MilesTrainConfig *cfg, MilesTrainResult *res) {
    if (!data) return miles_error(MILES_EINVAL, "miles_train_run: no prepared data");
    if (cfg) MILES_TRY(miles_backend_check(cfg->device, cfg->precision, 1));
    MilesDataset train, val;
    MILES_TRY(miles_prepared_split(data, MILES_SPLIT_TRAIN, &train));
    MILES_TRY(miles_prepared_split(data, MILES_SPLIT_VAL, &val));
    if (train.n == 0)
        return miles_error(MILES_EINVAL, "the prepared data has no training rows (a file prepared for a checkpoint, "
                                         "miles-data prepare --checkpoint, holds test rows only: it is for miles-eval)");
    MilesCkptContract k;
    memset(&k, 0, sizeof k);
    k.scaler_json = miles_prepared_scaler_json(data);
    k.tokenizer_hash = miles_prepared_vocab_hash(data);
    k.text_clean = miles_prepared_text_clean(data) == MILES_TEXT_CLEAN_SEED ? "seed" : "none";
    k.recipe = cfg && cfg->recipe ? cfg->recipe : "default";
    char *split_json = NULL;   /* how the file's rows were split: the model's provenance */
    MILES_TRY(miles_prepared_provenance_json(data, &split_json));
    k.data_split = split_json;
    MilesTokFiles files;
    memset(&files, 0, sizeof files);
    char vocab_abs[4096] = "";
    int s = MILES_OK;
    if (cfg && cfg->vocab_dir) {
        /* the ids in the file must come from this vocabulary: check, then embed it */
        MilesTokenizer *tok = NULL;
        char hash[17];
        s = miles_tokfiles_read(&files, cfg->vocab_dir);
        if (s == MILES_OK) s = miles_tokenizer_load_files(&tok, &files, cfg->vocab_dir);
        if (s == MILES_OK) s = miles_tokenizer_hash(tok, hash);
        if (s == MILES_OK && strcmp(hash, k.tokenizer_hash) != 0)
            s = miles_error(MILES_EINVAL, "the data was tokenized with vocabulary %s but %s has vocabulary %s: "
                                          "prepare the data with --vocab %s (or train with its vocabulary)",
                            k.tokenizer_hash, cfg->vocab_dir, hash, cfg->vocab_dir);
        if (s == MILES_OK && miles_tokenizer_vocab_size(tok) > miles_model_config(m)->vocab_size)
            s = miles_error(MILES_ESHAPE, "tokenizer %s has %d tokens but the model's vocab_size is %d",
                            cfg->vocab_dir, miles_tokenizer_vocab_size(tok), miles_model_config(m)->vocab_size);
        miles_tokenizer_free(tok);
        if (!realpath(cfg->vocab_dir, vocab_abs)) snprintf(vocab_abs, sizeof vocab_abs, "%s", cfg->vocab_dir);
        k.vocab_dir = vocab_abs;
        k.tokenizer = &files;
    }
    /* the velocity target: the prepared file holds min-max targets; the
     * log1p_z ones are derived here from the raw velocities of each split,
     * with mean/std of the training split (stored in every checkpoint) */
    MilesVelocityTarget vt;
    char vmean[32], vstd[32], vlo[32], vhi[32];
    float *tv = NULL, *vv = NULL;
    if (s == MILES_OK && cfg && cfg->velocity_target == MILES_VTARGET_LOG1P_Z) {
        if (miles_model_config(m)->velocity_activation != MILES_VEL_LINEAR)
            s = miles_error(MILES_EINVAL, "velocity target log1p_z needs a linear velocity head (the %s preset's is a "
                            "sigmoid): set velocity_activation = MILES_VEL_LINEAR", miles_model_config(m)->preset);
        else if (!train.velocity_raw || (val.n > 0 && !val.velocity_raw))
            s = miles_error(MILES_EINVAL, "velocity target log1p_z: the prepared data has no raw velocities");
        if (s == MILES_OK) s = miles_velocity_target_fit(&vt, MILES_VTARGET_LOG1P_Z, train.velocity_raw, train.n);
        if (s == MILES_OK) {
            tv = miles_malloc(sizeof(float) * (size_t)(train.n ? train.n : 1));
            vv = miles_malloc(sizeof(float) * (size_t)(val.n ? val.n : 1));
            if (!tv || !vv) s = MILES_ENOMEM;
        }
        if (s == MILES_OK) {
            for (int64_t i = 0; i < train.n; i++) tv[i] = (float)miles_velocity_target_transform(&vt, NULL, train.velocity_raw[i]);
            for (int64_t i = 0; i < val.n; i++) vv[i] = (float)miles_velocity_target_transform(&vt, NULL, val.velocity_raw[i]);
            train.velocity = tv;
            val.velocity = vv;
            miles_velocity_target_to_meta(&vt, vmean, vstd, vlo, vhi);
            k.velocity_target = miles_velocity_target_name(vt.kind);
            k.velocity_mean = vmean;
            k.velocity_std = vstd;
            k.velocity_min = vlo; /* the clamp range (train split, target space) */
            k.velocity_max = vhi;
            /* the linear head starts at the target mean: 0 after standardizing */
            int ri = miles_model_find_tensor(m, "regressor.bias");
            MilesTensorInfo ti;
            if (!cfg->resume && ri >= 0 && miles_model_tensor(m, ri, &ti) == MILES_OK)
                for (size_t i = 0; i < ti.numel; i++) ti.data[i] = 0.0f;
        }
    } else if (s == MILES_OK && cfg && cfg->velocity_target != MILES_VTARGET_MINMAX) {
        s = miles_error(MILES_EINVAL, "velocity_target %d is not a MILES_VTARGET_* value", cfg->velocity_target);
    }
    if (s == MILES_OK) s = miles_train_datasets(m, &train, &val, &k, cfg, res);
    free(tv);
    free(vv);
    free(split_json);
    miles_tokfiles_free(&files);
    return s;
}
