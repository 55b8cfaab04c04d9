/*
 * dp_worker.c — one training run for tests/test_dp_device.sh (data parallel on
 * a device backend): the configuration of tests/test_dist.c (tiny model
 * WITHOUT dropout, whose masks depend on the shard; unequal class weights,
 * gradient accumulation, a partial last batch, ranks > 0 start from another
 * init that rank 0's must replace), on the device given, alone or as one rank
 * of `mpirun -np N`.  Rank 0 writes OUT/steps.txt: "step loss grad_norm
 * loss_scale skipped" per STEP event, and on a device whose backend counts
 * its host synchronizations (the SIMT emulator's) OUT/syncs.txt: "step
 * syncs other" = the host syncs since the previous STEP event (-1 at the
 * first) and whether another event (evaluation, checkpoint) came between;
 * the trainer writes OUT/last.safetensors.
 *
 *   dp_worker PREPARED OUT DEVICE [key=value...]   keys: steps accum batch
 *       precision (0 fp32, 2 fp16, 3 bf16) lr log (log_every, default 1)
 *       resume (1: continue OUT/last.safetensors; steps.txt is appended to)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"
#include "backend_internal.h" /* the backend's host_syncs (tests link libmiles.a) */
#ifdef MILES_HAVE_MPI
#include "miles_mpi.h"
#define JOIN_JOB(d, argc, argv) miles_mpi_init(d, argc, argv)
#else
#define JOIN_JOB(d, argc, argv) miles_dist_init(d, argc, argv)
#endif

static FILE *g_steps, *g_syncs;
static const MilesBackendOps *g_cuda; /* counts host syncs (NULL: not counted) */
static long g_last_syncs = -1;
static int g_other;

static int on_event(const MilesTrainEvent *e, void *arg) {
    (void)arg;
    if (e->type != MILES_EVENT_STEP) {
        if (e->type != MILES_EVENT_START) g_other = 1;
        return MILES_OK;
    }
    if (g_steps)
        fprintf(g_steps, "%lld %.9g %.9g %.9g %lld\n", (long long)e->step, e->loss, e->grad_norm, e->loss_scale,
                (long long)e->skipped_steps);
    if (g_syncs) {
        long now = g_cuda->host_syncs(NULL);
        fprintf(g_syncs, "%lld %ld %d\n", (long long)e->step, g_last_syncs < 0 ? -1 : now - g_last_syncs, g_other);
        g_last_syncs = now;
        g_other = 0;
    }
    return MILES_OK;
}

int main(int argc, char **argv) {
    MilesDist *d = NULL;
    if (JOIN_JOB(&d, &argc, &argv) != MILES_OK) {
        fprintf(stderr, "dp_worker: %s\n", miles_last_error());
        return 1;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: dp_worker PREPARED OUT DEVICE [key=value...]\n");
        return 2;
    }
    long steps = 8, accum = 2, batch = 30, prec = 0, resume = 0, log_every = 1;
    double lr = 1e-4;
    for (int i = 4; i < argc; i++) {
        char k[32];
        double v;
        if (sscanf(argv[i], "%31[^=]=%lf", k, &v) != 2) return 2;
        if (!strcmp(k, "steps")) steps = (long)v;
        else if (!strcmp(k, "accum")) accum = (long)v;
        else if (!strcmp(k, "batch")) batch = (long)v;
        else if (!strcmp(k, "precision")) prec = (long)v;
        else if (!strcmp(k, "lr")) lr = v;
        else if (!strcmp(k, "resume")) resume = (long)v;
        else if (!strcmp(k, "log")) log_every = (long)v;
        else { fprintf(stderr, "dp_worker: unknown key %s\n", k); return 2; }
    }
    const int rank = miles_dist_rank(d);
    MilesPrepared *p = NULL;
    MilesModel *m = NULL;
    MilesConfig cfg;
    int s = miles_prepared_open(&p, argv[1]);
    if (s == MILES_OK) s = miles_config_preset(&cfg, "miles", "tiny");
    if (s == MILES_OK) {
        MilesTokenizer *tok = NULL; /* the vocabulary the test data was prepared with */
        s = miles_tokenizer_load(&tok, "tests/fixtures/tokenizer_vocab.txt");
        if (s == MILES_OK) cfg.vocab_size = miles_tokenizer_vocab_size(tok);
        miles_tokenizer_free(tok);
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0f;
        cfg.text_dropout = 0.0f;
        for (int i = 0; i < MILES_MAX_MLP; i++) cfg.numeric_dropouts[i] = cfg.fusion_dropouts[i] = 0.0f;
        if (s == MILES_OK) s = miles_model_build(&m, &cfg);
    }
    if (s == MILES_OK) s = miles_model_init_random(m, 11 + (uint64_t)rank, 0.02f);
    char path[4200];
    snprintf(path, sizeof path, "%s/steps.txt", argv[2]);
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    tc.batch_size = (int)batch;
    tc.grad_accum = (int)accum;
    tc.max_len = 24;
    tc.epochs = 2;
    tc.lr = (float)lr;
    tc.warmup_steps = 2;
    tc.max_steps = steps;
    tc.eval_every = 4;
    tc.patience = 100;
    tc.out_dir = argv[2];
    tc.resume = (int)resume;
    tc.loss.class_weight[0] = 0.6f;
    tc.loss.class_weight[1] = 2.5f;
    tc.dist = d;
    tc.device = argv[3];
    tc.precision = prec == 2 ? MILES_PRECISION_FP16 : prec == 3 ? MILES_PRECISION_BF16 : MILES_PRECISION_FP32;
    tc.callback = on_event;
    tc.log_every = (int)log_every; /* default 1: a STEP event per step on every device (CUDA defaults to 10) */
    MilesTrainResult res;
    if (s == MILES_OK) {
        char mk[4300];
        snprintf(mk, sizeof mk, "mkdir -p '%s'", argv[2]);
        if (rank == 0 && system(mk) != 0) s = miles_set_error(MILES_EIO, "cannot create %s", argv[2]);
    }
    if (s == MILES_OK && rank == 0 && !(g_steps = fopen(path, resume ? "a" : "w")))
        s = miles_set_error(MILES_EIO, "cannot write %s", path);
    /* the backend's table (the one the trainer loads): its host sync counter */
    int idx = 0;
    if (s == MILES_OK && rank == 0 && strncmp(argv[3], "cuda", 4) == 0 &&
        miles_backend_find(argv[3], tc.precision, 1, &g_cuda, &idx) == MILES_OK && g_cuda->host_syncs &&
        g_cuda->host_syncs(NULL) >= 0) {
        snprintf(path, sizeof path, "%s/syncs.txt", argv[2]);
        if (!(g_syncs = fopen(path, resume ? "a" : "w"))) s = miles_set_error(MILES_EIO, "cannot write %s", path);
    }
    miles_clear_error();
    /* rank 0's initial weights: how far training moved them */
    char ipath[4200];
    snprintf(ipath, sizeof ipath, "%s/init.safetensors", argv[2]);
    if (s == MILES_OK && rank == 0 && !resume) s = miles_model_save(m, ipath, 0, NULL, NULL);
    if (s == MILES_OK) s = miles_train_run(m, p, &tc, &res);
    if (g_steps) fclose(g_steps);
    if (g_syncs) fclose(g_syncs);
    if (s != MILES_OK) {
        /* one line: the refusals are checked by their text */
        fprintf(stderr, "dp_worker rank %d: %s\n", rank, miles_last_error());
        miles_model_free(m);
        miles_prepared_free(p);
        miles_dist_finalize(d);
        return 1;
    }
    if (rank == 0)
        printf("dp_worker: %d rank(s) on %s, %lld steps, best val AUROC %.6f\n", miles_dist_size(d), argv[3],
               (long long)res.steps, res.best_val_auroc);
    miles_model_free(m);
    miles_prepared_free(p);
    miles_dist_finalize(d);
    return 0;
}
