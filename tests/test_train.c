/*
 * test_train.c — end to end on a small synthetic set: the trainer lowers the
 * loss, learns the planted title signal (beats the numeric-only baseline on
 * validation AUROC), resumes bit-identically, survives SIGKILL in the middle
 * of a checkpoint write, reproduces the LR schedules (the original project's
 * against torch's trace, tests/gen_sched_original.py), orders epochs with
 * length bucketing (and resumes on the same bits), reports through its
 * event callback without printing anything itself, writes checkpoints
 * that carry the whole serving contract, cuts batches below the prepared
 * length as the tokenizer truncates, and stops on a non-finite loss.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "miles.h"
#include "train_internal.h"
#include "ops.h" /* miles_gemm_use_blas */
#include "helpers.h"

#define VOCAB_PATH "tests/fixtures/tokenizer_vocab.txt"

static char g_dir[64];
static char g_prepared[256];
static MilesPrepared *g_prep;
static int g_vocab_size;


static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/miles_train_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char csv[256];
    snprintf(csv, sizeof csv, "%s/synth.csv", g_dir);
    snprintf(g_prepared, sizeof g_prepared, "%s/data.milesdat", g_dir);
    if (miles_synth_write_csv(csv, 8000, 7) != MILES_OK) { fprintf(stderr, "%s\n", miles_last_error()); return -1; }
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = VOCAB_PATH;
    po.max_len = 32;
    MilesPrepareReport rep;
    if (miles_data_prepare(csv, g_prepared, &po, &rep) != MILES_OK) { fprintf(stderr, "%s\n", miles_last_error()); return -1; }
    if (miles_prepared_open(&g_prep, g_prepared) != MILES_OK) return -1;
    MilesTokenizer *tok = NULL;
    if (miles_tokenizer_load(&tok, VOCAB_PATH) != MILES_OK) return -1;
    g_vocab_size = miles_tokenizer_vocab_size(tok);
    miles_tokenizer_free(tok);
    printf("synthetic: train %lld, val %lld, test %lld English rows\n", (long long)rep.n[0], (long long)rep.n[1],
           (long long)rep.n[2]);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    miles_prepared_free(g_prep);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void view_data(int split, MilesDataset *d) { OK(miles_prepared_split(g_prep, split, d)); }

/* Validation loss (the trainer's definition) and AUROC of m on d, through the
 * public prediction and metrics calls. */
static void eval_model(MilesModel *m, const MilesDataset *d, const MilesLossConfig *lc, double *loss, double *auroc) {
    double *p = malloc(sizeof(double) * d->n), *v = malloc(sizeof(double) * d->n), *t = malloc(sizeof(double) * d->n);
    OK(miles_predict_dataset(m, d, 64, 32, p, v));
    for (int64_t i = 0; i < d->n; i++) t[i] = d->velocity[i];
    MilesMetricsOptions mo;
    miles_metrics_options_default(&mo);
    mo.n_bootstrap = 0;
    mo.class_weight[0] = lc->class_weight[0];
    mo.class_weight[1] = lc->class_weight[1];
    MilesMetrics mm;
    OK(miles_metrics_compute(&mm, p, d->labels, (int)d->n, v, t, &mo));
    *loss = lc->w_cls * mm.log_loss + lc->w_reg * mm.velocity.mse;
    *auroc = mm.auroc;
    free(p); free(v); free(t);
}

/* The "step" of a checkpoint's training state. */
static long long state_step(const char *path) {
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, path));
    MilesTrainState st;
    OK(miles_ckpt_parse_state(miles_checkpoint_meta(c, MILES_META_STATE), &st, NULL));
    miles_checkpoint_close(c);
    return (long long)st.step;
}

/* The fp16 loss scaler in the state JSON: read back, absent = 0 (the resume
 * keeps the backend's default 65536), out-of-range values refused. */
static void test_state_loss_scale(void **unused) {
    (void)unused;
    MilesTrainState st;
    OK(miles_ckpt_parse_state("{\"step\":3,\"loss_scale\":1024,\"loss_scale_growth_tracker\":5}", &st, NULL));
    assert_true(st.step == 3 && st.loss_scale == 1024.0 && st.loss_scale_growth == 5);
    OK(miles_ckpt_parse_state("{\"step\":3}", &st, NULL));
    assert_true(st.loss_scale == 0.0 && st.loss_scale_growth == 0);
    assert_int_equal(miles_ckpt_parse_state("{\"loss_scale\":-2}", &st, NULL), MILES_EFORMAT);
    assert_int_equal(miles_ckpt_parse_state("{\"loss_scale\":8,\"loss_scale_growth_tracker\":-1}", &st, NULL),
                     MILES_EFORMAT);
}

/* A small random-init model on the real vocabulary. */
static MilesModel *small_model(uint64_t seed) {
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "tiny"));
    cfg.vocab_size = g_vocab_size;
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.1f;
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, seed, 0.02f));
    return m;
}

static void small_train_cfg(MilesTrainConfig *tc, const char *out, int64_t max_steps) {
    miles_train_config_default(tc);
    tc->batch_size = 32;
    tc->max_len = 32;
    tc->epochs = 3;
    tc->lr = 1e-3f;
    tc->warmup_steps = 20;
    tc->out_dir = out;
    tc->vocab_dir = VOCAB_PATH;
    tc->max_steps = max_steps;
    tc->eval_every = 25;
    tc->patience = 100;
}

static void params_of(MilesModel *m, float **out, size_t *n) {
    *n = miles_model_num_params(m);
    MilesTensorInfo ti;
    OK(miles_model_tensor(m, 0, &ti));
    *out = ti.data; /* parameters are one contiguous block starting at tensor 0 */
}

static void test_learns_title_signal(void **state) {
    (void)state;
    MilesDataset tr, va;
    view_data(MILES_SPLIT_TRAIN, &tr);
    view_data(MILES_SPLIT_VAL, &va);
    MilesModel *m = small_model(1);
    char out[256];
    snprintf(out, sizeof out, "%s/learn", g_dir);
    MilesTrainConfig tc;
    small_train_cfg(&tc, out, 0);
    tc.eval_every = 0;
    /* loss before */
    struct { double loss, auroc; } e0, e1;
    eval_model(m, &va, &tc.loss, &e0.loss, &e0.auroc);
    MilesTrainResult res;
    OK(miles_train_run(m, g_prep, &tc, &res));
    MilesModel *best = NULL;
    char best_path[300];
    snprintf(best_path, sizeof best_path, "%s/best.safetensors", out);
    OK(miles_checkpoint_load_model(&best, best_path));
    eval_model(best, &va, &tc.loss, &e1.loss, &e1.auroc);
    /* numeric-only baseline on the same split */
    MilesLogRegConfig lc;
    miles_logreg_config_default(&lc);
    MilesBaseline *b = NULL;
    OK(miles_baseline_fit_numeric(&b, tr.features, tr.n, MILES_NUM_FEATURES, tr.labels, &lc));
    double *p = malloc(sizeof(double) * va.n), base_auc;
    OK(miles_baseline_predict_proba(b, NULL, va.features, va.n, MILES_NUM_FEATURES, p));
    MilesMetricsOptions mo;
    miles_metrics_options_default(&mo);
    mo.n_bootstrap = 0;
    MilesMetrics bm;
    OK(miles_metrics_compute(&bm, p, va.labels, (int)va.n, NULL, NULL, &mo));
    base_auc = bm.auroc;
    printf("val loss %.4f -> %.4f; val AUROC model %.4f (best %.4f at step %lld) vs numeric LR %.4f; %lld steps in %.1f s\n",
           e0.loss, e1.loss, e1.auroc, res.best_val_auroc, (long long)res.best_step, base_auc,
           (long long)res.steps, res.seconds);
    assert_true(e1.loss < e0.loss);
    assert_true(fabs(e1.auroc - res.best_val_auroc) < 1e-9); /* best checkpoint reloads to the same score */
    assert_true(e1.auroc > base_auc);
    assert_true(res.decision_threshold > 0 && res.decision_threshold < 1);
    free(p);
    miles_baseline_free(b);
    miles_model_free(best);
    miles_model_free(m);
}

/* N steps straight vs stop after `stop` steps, then a fresh model object
 * (another init: everything must come from the checkpoint) resumed to N:
 * the same parameters bit for bit, in memory and in the last checkpoints. */
static void resume_cfg(MilesTrainConfig *tc, const char *out, int64_t max_steps, int bucket, int accum) {
    small_train_cfg(tc, out, max_steps);
    tc->grad_accum = accum;
    tc->bucket = bucket;
}

/* The straight run is also pinned: its parameters, best validation AUROC,
 * best step and decision threshold hashed (FNV-1a 64) against the constant
 * the caller gives, the same on every machine, thread count and build (the
 * trainer's batch order, bucketing, accumulation, schedule, evaluation and
 * threshold on top of test_model.c's pinned steps).  A deliberate change of
 * any of them updates the constant and says why. */
static void check_resume(const char *tag, int64_t N, int64_t stop, int bucket, int accum, uint64_t pin) {
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/%s_straight", g_dir, tag);
    snprintf(b, sizeof b, "%s/%s_resumed", g_dir, tag);
    MilesTrainConfig tc;
    MilesModel *m1 = small_model(3);
    resume_cfg(&tc, a, N, bucket, accum);
    MilesTrainResult res;
    OK(miles_train_run(m1, g_prep, &tc, &res));
    assert_int_equal(res.steps, N);
    {
        uint64_t h = test_hash_params(TEST_FNV_BASIS, m1);
        h = test_fnv1a(h, &res.best_val_auroc, sizeof res.best_val_auroc);
        h = test_fnv1a(h, &res.best_step, sizeof res.best_step);
        h = test_fnv1a(h, &res.decision_threshold, sizeof res.decision_threshold);
        printf("%s: pin of %lld steps: 0x%016llx (pinned 0x%016llx), best val AUROC %.9g at step %lld\n", tag,
               (long long)N, (unsigned long long)h, (unsigned long long)pin, res.best_val_auroc,
               (long long)res.best_step);
        if (h != pin) fail_msg("%s: the pinned run gives 0x%016llx, pinned 0x%016llx", tag, (unsigned long long)h,
                               (unsigned long long)pin);
    }
    MilesModel *m2 = small_model(3);
    resume_cfg(&tc, b, stop, bucket, accum);
    OK(miles_train_run(m2, g_prep, &tc, NULL));
    miles_model_free(m2);
    MilesModel *m3 = small_model(99);
    resume_cfg(&tc, b, N, bucket, accum);
    tc.resume = 1;
    OK(miles_train_run(m3, g_prep, &tc, &res));
    assert_int_equal(res.steps, N);
    float *p1, *p3;
    size_t n1, n3;
    params_of(m1, &p1, &n1);
    params_of(m3, &p3, &n3);
    assert_int_equal(n1, n3);
    size_t diff = 0, bad = 0;
    for (size_t i = 0; i < n1; i++) {
        diff += memcmp(&p1[i], &p3[i], sizeof(float)) != 0;
        bad += !isfinite(p1[i]);
    }
    printf("%s: straight %lld steps vs %lld + resume: %zu of %zu parameters differ (bitwise)\n", tag, (long long)N,
           (long long)stop, diff, n1);
    assert_int_equal(bad, 0);
    assert_int_equal(diff, 0);
    /* the checkpoints on disk agree too */
    MilesModel *c1 = NULL, *c3 = NULL;
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/last.safetensors", a);
    snprintf(pb, sizeof pb, "%s/last.safetensors", b);
    OK(miles_checkpoint_load_model(&c1, pa));
    OK(miles_checkpoint_load_model(&c3, pb));
    params_of(c1, &p1, &n1);
    params_of(c3, &p3, &n3);
    assert_memory_equal(p1, p3, n1 * sizeof(float));
    miles_model_free(c1);
    miles_model_free(c3);
    miles_model_free(m1);
    miles_model_free(m3);
}

static void test_resume_bit_identical(void **state) {
    (void)state;
    /* N < 3 epochs x 16 steps, so max_steps is what stops both runs; the stop
     * is mid-epoch, off the eval grid; 2 micro-batches per step */
    check_resume("resume", 40, 40 / 2 + 7, 0, 2, 0x48afb46a1b6f5943ULL);
}

/* SIGKILL at random moments while a process rewrites a checkpoint in a loop:
 * the file on disk must always load and hold one complete generation. */
static void test_kill_during_checkpoint_write(void **state) {
    (void)state;
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/kill", g_dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "minilm-l6")); /* ~90 MB: writes take a while */
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    float *p;
    size_t n;
    params_of(m, &p, &n);
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    MilesTrainState st = {0};
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    MilesAdamW *opt = NULL;
    OK(miles_adamw_build(&opt, m, &oc));
    /* generation 0 on disk: all parameters 0 */
    for (size_t i = 0; i < n; i++) p[i] = 0.0f;
    OK(miles_ckpt_save(path, m, opt, &st, &tc, NULL, NULL));
    srand(12345);
    int kills_mid_write = 0;
    for (int round = 0; round < 6; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* child: rewrite with generations g = 1, 2, ... (all params = g) */
            for (int g = 1;; g++) {
                for (size_t i = 0; i < n; i++) p[i] = (float)g;
                st.step = g;
                if (miles_ckpt_save(path, m, opt, &st, &tc, NULL, NULL) != MILES_OK) _exit(3);
            }
        }
        usleep(150000 + rand() % 400000);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        /* a temp file left behind means the kill landed inside a write */
        char cmd[400];
        snprintf(cmd, sizeof cmd, "ls %s | grep -q '\\.tmp\\.'", dir);
        if (system(cmd) == 0) kills_mid_write++;
        MilesModel *back = NULL;
        OK(miles_checkpoint_load_model(&back, path));
        float *q;
        size_t nq;
        params_of(back, &q, &nq);
        float g = q[0];
        size_t bad = 0;
        for (size_t i = 0; i < nq; i++) bad += q[i] != g;
        assert_int_equal(bad, 0); /* one complete generation, never a mix */
        miles_model_free(back);
        snprintf(cmd, sizeof cmd, "rm -f %s/*.tmp.*", dir);
        if (system(cmd) != 0) fail_msg("cleanup failed");
    }
    printf("6 SIGKILLs, %d of them during a checkpoint write; the checkpoint always loaded whole\n", kills_mid_write);
    assert_true(kills_mid_write >= 1);
    miles_adamw_free(opt);
    miles_model_free(m);
}

/* Ctrl-C through the real CLI: miles-train saves last.safetensors, exits 130,
 * and --resume continues from it to completion. */
static void test_sigint_cli(void **state) {
    (void)state;
    char exe[512], out[256];
    test_tool(exe, sizeof exe, "miles-train");
    snprintf(out, sizeof out, "%s/sigint", g_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(exe, exe, "--data", g_prepared, "--init", "random", "--size", "tiny", "--vocab", VOCAB_PATH,
              "--epochs", "50", "--lr", "1e-3", "--warmup", "10", "--max-len", "32", "--out", out, "--quiet",
              (char *)NULL);
        _exit(127);
    }
    /* wait until training is under way (the log has steps), then interrupt */
    char log[300];
    snprintf(log, sizeof log, "%s/log.jsonl", out);
    for (int i = 0; i < 600; i++) {
        struct stat sb;
        if (stat(log, &sb) == 0 && sb.st_size > 2000) break;
        usleep(50000);
    }
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    char last[300];
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    long long step = state_step(last);
    assert_true(step > 0);
    /* resume to a few steps past the interruption */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --data %s --init random --size tiny --vocab %s --epochs 50 --lr 1e-3 --warmup 10 "
                              "--max-len 32 --out %s --quiet --resume --max-steps %lld > /dev/null 2>&1",
             exe, g_prepared, VOCAB_PATH, out, step + 5);
    assert_int_equal(system(cmd), 0);
    long long step2 = state_step(last);
    printf("SIGINT at step %lld -> exit 130 with last.safetensors; --resume reached step %lld\n", step, step2);
    assert_int_equal(step2, step + 5);
}

/* After a kill -9 (simulated: log lines past the checkpoint, a torn last
 * line, interrupted checkpoint writes), --resume cuts log.jsonl back to the
 * checkpoint's step and removes the stale temp files (issue 18). */
static void test_resume_cleans_log_and_temps(void **state) {
    (void)state;
    char exe[512], out[256];
    test_tool(exe, sizeof exe, "miles-train");
    snprintf(out, sizeof out, "%s/resume_clean", g_dir);
    char cmd[2048];
    const char *args = "--init random --size tiny --epochs 50 --lr 1e-3 --warmup 10 --max-len 32 --quiet";
    snprintf(cmd, sizeof cmd, "%s --data %s --vocab %s %s --out %s --max-steps 12 > /dev/null 2>&1", exe, g_prepared,
             VOCAB_PATH, args, out);
    assert_int_equal(system(cmd), 0);
    char last[300], log[300], t1[300], t2[300], keep[300];
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    assert_int_equal(state_step(last), 12);
    snprintf(log, sizeof log, "%s/log.jsonl", out);
    FILE *f = fopen(log, "ab");
    for (int s = 13; s <= 17; s++)   /* logged after the checkpoint, then killed */
        fprintf(f, "{\"type\":\"step\",\"step\":%d,\"epoch\":1,\"batch\":%d,\"loss\":0.5}\n", s, s);
    fputs("{\"type\":\"step\",\"step\":18,\"ep", f);   /* torn */
    fclose(f);
    snprintf(t1, sizeof t1, "%s/last.safetensors.tmp.Ab3dE9", out);
    snprintf(t2, sizeof t2, "%s/best.safetensors.tmp.zz0011", out);
    snprintf(keep, sizeof keep, "%s/notes.safetensors.tmp.keep", out);
    const char *files[3] = {t1, t2, keep};
    for (int i = 0; i < 3; i++) {
        f = fopen(files[i], "wb");
        fputs("partial checkpoint bytes", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "%s --data %s --vocab %s %s --out %s --resume --max-steps 20 > /dev/null 2>&1", exe,
             g_prepared, VOCAB_PATH, args, out);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(state_step(last), 20);
    assert_int_not_equal(access(t1, F_OK), 0);
    assert_int_not_equal(access(t2, F_OK), 0);
    assert_int_equal(access(keep, F_OK), 0);   /* not a checkpoint temp: untouched */
    unlink(keep);
    /* every line whole JSON; the step lines exactly 1..20, once each */
    char *text = test_slurp(log, NULL);
    assert_non_null(text);
    int seen[21] = {0}, lines = 0, bad = 0;
    for (char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) { bad++; break; }
        *nl = '\0';
        lines++;
        long long s = -1;
        if (p[0] != '{' || p[nl - p - 1] != '}') bad++;
        if (strstr(p, "\"type\":\"step\"") && sscanf(strstr(p, "\"step\":") + 7, "%lld", &s) == 1) {
            if (s < 1 || s > 20) bad++;
            else seen[s]++;
        }
    }
    free(text);
    int dup = 0, missing = 0;
    for (int s = 1; s <= 20; s++) { dup += seen[s] > 1; missing += seen[s] == 0; }
    printf("resumed log: %d lines, %d torn/bad, %d duplicated steps, %d missing\n", lines, bad, dup, missing);
    assert_int_equal(bad, 0);
    assert_int_equal(dup, 0);
    assert_int_equal(missing, 0);
}

/* ---------------------------------------------------------------- events */

typedef struct {
    int n[6];
    int64_t last_step;
    int64_t stop_at;   /* > 0: the callback stops training at this step */
    int bad_order;
    int64_t total;     /* START's total_steps (every event must say the same) */
    int ranks, zero1;  /* START's */
    double elapsed;    /* the last event's elapsed_s (never decreasing, minutes at most) */
} EvCount;

static int count_events(const MilesTrainEvent *e, void *arg) {
    EvCount *c = arg;
    if (e->type < 0 || e->type > 5) { c->bad_order++; return MILES_OK; }
    c->n[e->type]++;
    if (e->type == MILES_EVENT_START) {
        c->total = e->total_steps;
        c->ranks = e->ranks;
        c->zero1 = e->zero1;
    } else if (e->total_steps != c->total) {
        c->bad_order++;
    }
    if (!(e->elapsed_s >= c->elapsed && e->elapsed_s < 600)) c->bad_order++;
    c->elapsed = e->elapsed_s;
    if (e->type == MILES_EVENT_STEP) {
        if (e->step != c->last_step + 1 || !(e->loss > 0) || !(e->lr >= 0) || e->total_steps < e->step) c->bad_order++;
        c->last_step = e->step;
        if (c->stop_at && e->step == c->stop_at)
            return miles_set_error(MILES_EINVAL, "stop requested by the test at step %lld", (long long)e->step);
    }
    if (e->type == MILES_EVENT_EVAL && !(e->val_auroc > 0 && e->val_auroc < 1)) c->bad_order++;
    if (e->type == MILES_EVENT_CHECKPOINT && (!e->path || !strstr(e->path, ".safetensors"))) c->bad_order++;
    return MILES_OK;
}

/* A callback that stops the run with a bare status: the run returns it, and
 * the message says who stopped it. */
static int stop_bare(const MilesTrainEvent *e, void *arg) {
    (void)arg;
    return e->type == MILES_EVENT_STEP && e->step == 2 ? MILES_EIO : MILES_OK;
}
static void test_callback_bare_status(void **state) {
    (void)state;
    char out[256];
    snprintf(out, sizeof out, "%s/cbstop", g_dir);
    MilesModel *m = small_model(4);
    MilesTrainConfig tc;
    small_train_cfg(&tc, out, 5);
    tc.callback = stop_bare;
    MilesTrainResult res;
    assert_int_equal(miles_train_run(m, g_prep, &tc, &res), MILES_EIO);
    printf("bare callback status: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "training stopped by the event callback (MILES_EIO)"));
    miles_model_free(m);
}

/* The library never prints: everything reaches the caller as events. */
static void test_events_and_silence(void **state) {
    (void)state;
    char out[256], cap[300];
    snprintf(out, sizeof out, "%s/events", g_dir);
    snprintf(cap, sizeof cap, "%s/captured.txt", g_dir);
    MilesModel *m = small_model(4);
    MilesTrainConfig tc;
    small_train_cfg(&tc, out, 30);
    tc.eval_every = 10;
    EvCount ec = {{0}, 0, 0, 0, 0, 0, 0, 0};
    tc.callback = count_events;
    tc.callback_arg = &ec;
    /* stdout and stderr go to a file during the run */
    fflush(stdout);
    fflush(stderr);
    int save1 = dup(1), save2 = dup(2), fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0 && save1 >= 0 && save2 >= 0);
    dup2(fd, 1);
    dup2(fd, 2);
    MilesTrainResult res;
    int s = miles_train_run(m, g_prep, &tc, &res);
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(fd); close(save1); close(save2);
    OK(s);
    struct stat sb;
    assert_int_equal(stat(cap, &sb), 0);
    printf("events: %d start, %d steps, %d evaluations, %d checkpoints, %d early stops, %d end; %lld bytes printed "
           "by the library\n", ec.n[0], ec.n[1], ec.n[2], ec.n[3], ec.n[4], ec.n[5], (long long)sb.st_size);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(ec.bad_order, 0);
    assert_int_equal(ec.n[MILES_EVENT_START], 1);
    assert_int_equal(ec.total, 30);   /* 3 epochs, capped by max_steps */
    assert_int_equal(ec.ranks, 1);
    assert_int_equal(ec.zero1, 0);
    assert_int_equal(ec.n[MILES_EVENT_STEP], 30);
    assert_int_equal(ec.n[MILES_EVENT_EVAL], 3);
    assert_true(ec.n[MILES_EVENT_CHECKPOINT] >= 4); /* last x3 + at least one best */
    assert_int_equal(ec.n[MILES_EVENT_END], 1);
    /* a callback's error stops training with that status and message */
    EvCount stop = {{0}, 0, 5, 0, 0, 0, 0, 0};
    small_train_cfg(&tc, out, 30);
    tc.callback = count_events;
    tc.callback_arg = &stop;
    MilesModel *m2 = small_model(4);
    assert_int_equal(miles_train_run(m2, g_prep, &tc, &res), MILES_EINVAL);
    printf("callback stop: %s; %lld steps\n", miles_last_error(), (long long)res.steps);
    assert_non_null(strstr(miles_last_error(), "stop requested by the test at step 5"));
    assert_int_equal(res.steps, 5);
    assert_int_equal(stop.n[MILES_EVENT_END], 1);
    miles_model_free(m2);
    /* no max_steps: one epoch planned and done (ceil(train rows / batch)); max_steps 1: one step */
    MilesDataset tr;
    view_data(MILES_SPLIT_TRAIN, &tr);
    const int64_t per_epoch = (tr.n + 31) / 32;
    for (int k = 0; k < 2; k++) {
        EvCount one = {{0}, 0, 0, 0, 0, 0, 0, 0};
        small_train_cfg(&tc, out, k ? 1 : 0);
        tc.epochs = 1;
        tc.eval_every = 0;
        tc.callback = count_events;
        tc.callback_arg = &one;
        m2 = small_model(4);
        OK(miles_train_run(m2, g_prep, &tc, &res));
        printf("epochs 1, max_steps %d: %lld steps planned, %lld done\n", k, (long long)one.total, (long long)res.steps);
        assert_int_equal(one.bad_order, 0);
        assert_int_equal(one.total, k ? 1 : per_epoch);
        assert_int_equal(res.steps, one.total);
        miles_model_free(m2);
    }
    miles_model_free(m);
}

/* miles_data_prepare_for: the training CSV prepared for checkpoint c (its
 * scaler, threshold, tokenizer, max_len) holds every row of the training
 * file g_prep in its test split, each with the same label, standardized
 * features, velocities and token ids (bits), and the same scores; the file
 * passes the checkpoint's data check.  Options that are the checkpoint's are
 * not read (a different percentile, vocabulary and text cleaning given). */
static void check_prepare_for(const MilesCheckpoint *c, const char *csv) {
    char path[300];
    snprintf(path, sizeof path, "%s/for_ckpt.milesdat", g_dir);
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.max_len = 0;       /* the checkpoint's (32) */
    po.percentile = 50;   /* the checkpoint's threshold is used */
    po.vocab_dir = "tests/fixtures/export_vocab";
    po.text_clean = MILES_TEXT_CLEAN_SEED;
    MilesPrepareReport rep;
    OK(miles_data_prepare_for(csv, path, c, &po, &rep));
    MilesPrepared *np = NULL;
    OK(miles_prepared_open(&np, path));
    OK(miles_checkpoint_check_data(c, np));
    assert_string_equal(miles_prepared_scaler_json(np), miles_prepared_scaler_json(g_prep));
    assert_true(rep.applied);
    MilesPreparedProvenance pv;   /* its split record says no split was made */
    assert_int_equal(miles_prepared_provenance(np, &pv), 1);
    assert_int_equal(pv.split_by, MILES_SPLIT_BY_CHECKPOINT);
    assert_string_equal(miles_split_by_name(pv.split_by), "checkpoint");
    MilesDataset nt, nx;
    OK(miles_prepared_split(np, MILES_SPLIT_TRAIN, &nx));
    assert_int_equal(nx.n, 0);
    OK(miles_prepared_split(np, MILES_SPLIT_TEST, &nt));
    assert_int_equal(nt.max_len, 32);
    MilesModel *m = NULL;
    OK(miles_checkpoint_model(c, &m));
    double *np_p = malloc(sizeof(double) * (size_t)nt.n), *np_v = malloc(sizeof(double) * (size_t)nt.n);
    OK(miles_predict_dataset(m, &nt, 64, 32, np_p, np_v));
    int64_t total = 0, same = 0;
    for (int sp = 0; sp < 3; sp++) {
        MilesDataset d;
        OK(miles_prepared_split(g_prep, sp, &d));
        double *p = malloc(sizeof(double) * (size_t)(d.n ? d.n : 1)), *v = malloc(sizeof(double) * (size_t)(d.n ? d.n : 1));
        OK(miles_predict_dataset(m, &d, 64, 32, p, v));
        for (int64_t i = 0; i < d.n; i++) {
            const char *id = miles_prepared_row_id(g_prep, sp, i);
            int64_t j = 0;
            while (j < nt.n && strcmp(miles_prepared_row_id(np, MILES_SPLIT_TEST, j), id)) j++;
            assert_true(j < nt.n);
            total++;
            same += d.labels[i] == nt.labels[j] && d.velocity[i] == nt.velocity[j] && d.lengths[i] == nt.lengths[j] &&
                    !memcmp(d.features + i * MILES_NUM_FEATURES, nt.features + j * MILES_NUM_FEATURES,
                            sizeof(float) * MILES_NUM_FEATURES) &&
                    !memcmp(d.input_ids + i * d.max_len, nt.input_ids + j * nt.max_len, sizeof(int32_t) * 32) &&
                    p[i] == np_p[j] && v[i] == np_v[j];
        }
        free(p);
        free(v);
    }
    printf("prepared for the checkpoint: %lld rows in its test split, %lld of the training file's %lld identical "
           "(label, features, velocity, ids, scores)\n", (long long)nt.n, (long long)same, (long long)total);
    assert_int_equal(total, nt.n);
    assert_int_equal(same, total);
    /* it is for evaluation: training on it is refused, saying why */
    MilesTrainConfig tc;
    small_train_cfg(&tc, g_dir, 1);
    assert_int_equal(miles_train_run(m, np, &tc, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "no training rows (a file prepared for a checkpoint"));
    free(np_p);
    free(np_v);
    miles_model_free(m);
    miles_prepared_free(np);
}

/* A checkpoint carries the serving contract under the named keys, with the
 * vocabulary inside, and checks data and tokenizers against it. */
static void test_checkpoint_contract(void **state) {
    (void)state;
    char out[256], last[300];
    snprintf(out, sizeof out, "%s/contract", g_dir);
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    MilesModel *m = small_model(6);
    MilesTrainConfig tc;
    small_train_cfg(&tc, out, 4);
    tc.auto_class_weight = 1;
    tc.recipe = "test-recipe";
    MilesTrainResult res;
    OK(miles_train_run(m, g_prep, &tc, &res));
    printf("auto class weights: %.4f %.4f\n", res.class_weight[0], res.class_weight[1]);
    assert_true(res.class_weight[0] > 0.5f && res.class_weight[0] < 1.0f && res.class_weight[1] > 1.0f);
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, last));
    assert_string_equal(miles_checkpoint_meta(c, MILES_META_FORMAT), MILES_CHECKPOINT_FORMAT);
    assert_string_equal(miles_checkpoint_meta(c, MILES_META_SCALER), miles_prepared_scaler_json(g_prep));
    assert_string_equal(miles_checkpoint_meta(c, MILES_META_TOKENIZER_HASH), miles_prepared_vocab_hash(g_prep));
    assert_string_equal(miles_checkpoint_meta(c, MILES_META_TEXT_CLEAN), "none");
    assert_string_equal(miles_checkpoint_meta(c, MILES_META_RECIPE), "test-recipe");
    assert_true(miles_checkpoint_meta(c, MILES_META_VOCAB_DIR)[0] == '/');
    assert_non_null(miles_checkpoint_meta(c, MILES_META_CONFIG));
    assert_non_null(miles_checkpoint_meta(c, MILES_META_STATE));
    assert_non_null(strstr(miles_checkpoint_meta(c, MILES_META_TRAIN_CONFIG), "\"auto_class_weight\":true"));
    assert_int_equal(miles_checkpoint_max_len(c), 32);
    assert_int_equal(miles_checkpoint_has_tokenizer(c), 1);
    OK(miles_checkpoint_check_data(c, g_prep));
    MilesTokenizer *tok = NULL;
    OK(miles_checkpoint_tokenizer(c, NULL, &tok)); /* the embedded copy */
    char h[17];
    OK(miles_tokenizer_hash(tok, h));
    assert_string_equal(h, miles_prepared_vocab_hash(g_prep));
    miles_tokenizer_free(tok);
    assert_int_equal(miles_checkpoint_tokenizer(c, "tests/fixtures/export_vocab", &tok), MILES_EINVAL);
    printf("other vocabulary: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "tokenizer hash"));
    assert_null(tok);
    /* data prepared with another label threshold: refused, saying why */
    char csv[300], other[300];
    snprintf(csv, sizeof csv, "%s/synth.csv", g_dir);
    snprintf(other, sizeof other, "%s/other.milesdat", g_dir);
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = VOCAB_PATH;
    po.max_len = 32;
    po.percentile = 70;
    OK(miles_data_prepare(csv, other, &po, NULL));
    MilesPrepared *op = NULL;
    OK(miles_prepared_open(&op, other));
    assert_int_equal(miles_checkpoint_check_data(c, op), MILES_EINVAL);
    printf("other data: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "scaler"));
    miles_prepared_free(op);
    /* the same rows and scaler, tokenized with another vocabulary: refused */
    miles_prepare_options_default(&po);
    po.max_len = 32;
    po.vocab_dir = "tests/fixtures/export_vocab";
    OK(miles_data_prepare(csv, other, &po, NULL));
    OK(miles_prepared_open(&op, other));
    assert_string_equal(miles_prepared_scaler_json(op), miles_prepared_scaler_json(g_prep));
    assert_int_equal(miles_checkpoint_check_data(c, op), MILES_EINVAL);
    printf("other data vocabulary: %s\n", miles_last_error());
    char want[512];
    snprintf(want, sizeof want, "tokenized with vocabulary %s, %s was trained with %s", miles_prepared_vocab_hash(op),
             last, miles_prepared_vocab_hash(g_prep));
    if (!strstr(miles_last_error(), want)) fail_msg("error does not say \"%s\": %s", want, miles_last_error());
    miles_prepared_free(op);
    check_prepare_for(c, csv);
    miles_checkpoint_close(c);
    /* a checkpoint saved without the data contract cannot vouch for any data */
    char bare[300];
    snprintf(bare, sizeof bare, "%s/bare.safetensors", g_dir);
    MilesTrainConfig btc;
    miles_train_config_default(&btc);
    MilesTrainState bst = {0};
    OK(miles_ckpt_save(bare, m, NULL, &bst, &btc, NULL, NULL));
    OK(miles_checkpoint_open(&c, bare));
    assert_int_equal(miles_checkpoint_check_data(c, g_prep), MILES_EMISSING);
    printf("no contract: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "metadata \"data\" (feature scalers) missing"));
    assert_int_equal(miles_data_prepare_for(csv, other, c, NULL, NULL), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "cannot prepare data"));
    miles_checkpoint_close(c);
    miles_model_free(m);
}

/* miles-eval through the CLI on a checkpoint whose outputs are all huge: every
 * test row is clamped (JSON velocity_clamp.n_clamped == n) and the views/day
 * metrics are finite.  Skipped when the tool is not built. */
static void eval_cli_clamp(const char *ckpt, const char *dir, double bound) {
    char exe[512], cmd[2048], rep[400];
    test_tool(exe, sizeof exe, "miles-eval");
    snprintf(rep, sizeof rep, "%s/eval_big", dir);
    snprintf(cmd, sizeof cmd, "%s --checkpoint %s --data %s --out %s --bootstrap 0 --no-plots >/dev/null", exe, ckpt,
             g_prepared, rep);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && (WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 3));
    char path[450];
    snprintf(path, sizeof path, "%s/eval_test.json", rep);
    cJSON *j = test_read_json(path);
    assert_non_null(j);
    const cJSON *cl = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "run"), "velocity_clamp");
    const cJSON *vr = cJSON_GetObjectItem(j, "velocity_report");
    double n = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "n"));
    double nc = cJSON_GetNumberValue(cJSON_GetObjectItem(cl, "n_clamped"));
    double mae_t = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(vr, "target_space"), "mae"));
    const cJSON *vpd = cJSON_GetObjectItem(cJSON_GetObjectItem(vr, "views_per_day"), "mae");
    printf("miles-eval, bias 1e30: %g of %g rows clamped, views/day MAE %g, target MAE %g\n", nc, n,
           cJSON_GetNumberValue(vpd), mae_t);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cl, "applied")));
    assert_true(n > 0 && nc == n);
    assert_true(cJSON_IsNumber(vpd) && isfinite(cJSON_GetNumberValue(vpd)));
    assert_true(isfinite(mae_t) && mae_t < 2.0 * bound + 100.0); /* the clamped, not the 1e30, outputs */
    cJSON_Delete(j);
}

/* Copy checkpoint src to dst with every element of regressor.bias set to
 * `bias`, keeping the metadata (the known MILES_META_* keys), optionally
 * without the velocity range keys (what a checkpoint before them looks like). */
static void copy_ckpt_bias(const char *src, const char *dst, float bias, int keep_range) {
    MilesSafetensors *st = NULL;
    OK(miles_safetensors_open(&st, src));
    MilesSafetensorsWriter *w = NULL;
    OK(miles_safetensors_writer_open(&w, dst));
    miles_safetensors_writer_crc(w); /* format 3 checkpoints carry tensor checksums (recomputed) */
    int n = miles_safetensors_count(st);
    float *bias_buf = NULL;
    for (int i = 0; i < n; i++) {
        int dt, nd;
        int64_t shape[8];
        size_t numel, nb;
        OK(miles_safetensors_info(st, i, &dt, &nd, shape, &numel));
        const void *data = miles_safetensors_data(st, i, &nb);
        if (!strcmp(miles_safetensors_name(st, i), "regressor.bias")) {
            assert_int_equal(dt, MILES_DT_F32);
            bias_buf = malloc(sizeof(float) * numel);
            for (size_t k = 0; k < numel; k++) bias_buf[k] = bias;
            data = bias_buf;
        }
        OK(miles_safetensors_writer_add(w, miles_safetensors_name(st, i), dt, nd, shape, data));
    }
    assert_non_null(bias_buf);
    const char *keys[] = {MILES_META_FORMAT, MILES_META_CONFIG, MILES_META_STATE, MILES_META_TRAIN_CONFIG,
                          MILES_META_THRESHOLD, MILES_META_SCALER, MILES_META_TOKENIZER_HASH, MILES_META_TEXT_CLEAN,
                          MILES_META_VOCAB_DIR, MILES_META_RECIPE, MILES_META_VELOCITY_TARGET,
                          MILES_META_VELOCITY_MEAN, MILES_META_VELOCITY_STD, MILES_META_VELOCITY_MIN,
                          MILES_META_VELOCITY_MAX};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *v = miles_safetensors_metadata(st, keys[k]);
        if (!keep_range && (!strcmp(keys[k], MILES_META_VELOCITY_MIN) || !strcmp(keys[k], MILES_META_VELOCITY_MAX)))
            continue;
        if (v) OK(miles_safetensors_writer_metadata(w, keys[k], v));
    }
    OK(miles_safetensors_writer_finish(w));
    free(bias_buf);
    miles_safetensors_close(st);
}

/* The log1p_z velocity target: fit, transform/inverse round trip, metadata
 * round trip (absent key = min-max), training with it end to end, and the
 * predictor answering in views/day. */
static void test_velocity_target(void **state) {
    (void)state;
    const double e = exp(1.0);
    const double v4[4] = {0.0, e - 1, e * e - 1, e * e * e - 1}; /* log1p = 0,1,2,3 */
    MilesVelocityTarget t;
    OK(miles_velocity_target_fit(&t, MILES_VTARGET_LOG1P_Z, v4, 4));
    printf("log1p_z fit: mean %.17g std %.17g (want 1.5, sqrt(1.25))\n", t.mean, t.std);
    assert_true(fabs(t.mean - 1.5) < 1e-15 && fabs(t.std - sqrt(1.25)) < 1e-15);
    assert_true(fabs(miles_velocity_target_transform(&t, NULL, e * e - 1) - 0.5 / sqrt(1.25)) < 1e-15);
    /* the fit records the train range in target space (the clamp's bounds) */
    printf("log1p_z range: [%.17g, %.17g] (want -/+1.5/sqrt(1.25))\n", t.lo, t.hi);
    assert_true(t.has_range && fabs(t.lo + 1.5 / sqrt(1.25)) < 1e-15 && fabs(t.hi - 1.5 / sqrt(1.25)) < 1e-15);
    MilesVelocityTarget tgc = t;
    t.has_range = 0; /* the unclamped transform: exact round trip far beyond the train range */
    double worst = 0;
    for (double v = 0.0; v < 1e7; v = v * 1.7 + 0.013) {
        double r = miles_velocity_target_inverse(&t, NULL, miles_velocity_target_transform(&t, NULL, v));
        worst = test_max_err(worst, fabs(r - v) / fmax(1.0, v));
    }
    printf("log1p_z transform/inverse round trip on [0, 1e7): max rel err %.2e\n", worst);
    assert_true(worst < 1e-12);
    assert_true(miles_velocity_target_transform(&t, NULL, -5.0) == miles_velocity_target_transform(&t, NULL, 0.0));
    assert_true(miles_velocity_target_inverse(&t, NULL, -50.0) == 0.0);
    /* the clamp: an extreme output gives the finite views/day of the bound
     * (range widened by the margin); without a range it overflows, as before */
    const double mg = MILES_VTARGET_CLAMP_MARGIN * (tgc.hi - tgc.lo);
    const double top = expm1((tgc.hi + mg) * tgc.std + tgc.mean), bottom = fmax(0.0, expm1((tgc.lo - mg) * tgc.std + tgc.mean));
    const double extremes[] = {1e6, 1e300, INFINITY};
    for (int i = 0; i < 3; i++) {
        double v = miles_velocity_target_inverse(&tgc, NULL, extremes[i]);
        printf("clamp: output %g -> %.17g views/day (bound %.17g)\n", extremes[i], v, top);
        assert_true(isfinite(v) && v == top);
        assert_true(miles_velocity_target_clamp(&tgc, extremes[i]) == tgc.hi + mg);
        assert_true(miles_velocity_target_clamped(&tgc, extremes[i]));
        assert_true(miles_velocity_target_inverse(&tgc, NULL, -extremes[i]) == bottom);
    }
    assert_true(!isfinite(miles_velocity_target_inverse(&t, NULL, 1e6))); /* no range: unchanged (inf) */
    assert_true(miles_velocity_target_clamp(&t, 1e6) == 1e6 && !miles_velocity_target_clamped(&t, 1e6));
    /* inside the range (and inside the margin) nothing changes */
    assert_true(miles_velocity_target_clamp(&tgc, tgc.hi + 0.5 * mg) == tgc.hi + 0.5 * mg);
    assert_true(!miles_velocity_target_clamped(&tgc, 0.3));
    assert_true(miles_velocity_target_inverse(&tgc, NULL, 0.3) == miles_velocity_target_inverse(&t, NULL, 0.3));
    assert_true(isnan(miles_velocity_target_clamp(&tgc, NAN))); /* a broken model is not hidden */
    /* metadata round trip of the range; one key alone or lo > hi is refused */
    char sm[32], ss[32], sl[32], sh[32];
    OK(miles_velocity_target_to_meta(&tgc, sm, ss, sl, sh));
    MilesVelocityTarget rt;
    OK(miles_velocity_target_from_meta(&rt, "log1p_z", sm, ss, sl, sh));
    assert_true(rt.has_range && rt.lo == tgc.lo && rt.hi == tgc.hi && rt.mean == tgc.mean && rt.std == tgc.std);
    OK(miles_velocity_target_from_meta(&rt, "log1p_z", sm, ss, NULL, NULL));
    assert_true(!rt.has_range);
    assert_int_equal(miles_velocity_target_from_meta(&rt, "log1p_z", sm, ss, sl, NULL), MILES_EFORMAT);
    assert_int_equal(miles_velocity_target_from_meta(&rt, "log1p_z", sm, ss, NULL, sh), MILES_EFORMAT);
    OK(miles_velocity_target_from_meta(&rt, "log1p_z", sm, ss, sh, sh)); /* min == max: a one-point range */
    assert_true(rt.has_range && rt.lo == rt.hi && miles_velocity_target_clamp(&rt, -1e9) == rt.hi);
    assert_int_equal(miles_velocity_target_from_meta(&rt, "log1p_z", sm, ss, sh, sl), MILES_EFORMAT);
    assert_int_equal(miles_velocity_target_from_meta(&rt, "log1p_z", sm, ss, "-inf", sh), MILES_EFORMAT);
    const double c3[3] = {7, 7, 7};
    OK(miles_velocity_target_fit(&t, MILES_VTARGET_MINMAX, NULL, 0)); /* min-max needs no fit */
    assert_true(t.kind == MILES_VTARGET_MINMAX && t.std == 1.0 && !t.has_range);
    OK(miles_velocity_target_fit(&t, MILES_VTARGET_LOG1P_Z, c3, 3));
    assert_true(t.std == 1.0); /* a constant target divides by 1 */
    const double bad[2] = {1, NAN};
    assert_int_equal(miles_velocity_target_fit(&t, MILES_VTARGET_LOG1P_Z, bad, 2), MILES_EINVAL);
    int kind = -1;
    OK(miles_velocity_target_parse("log1p_z", &kind));
    assert_int_equal(kind, MILES_VTARGET_LOG1P_Z);
    assert_int_equal(miles_velocity_target_parse("zscore", &kind), MILES_EINVAL);
    OK(miles_velocity_target_from_meta(&t, NULL, NULL, NULL, NULL, NULL));
    assert_int_equal(t.kind, MILES_VTARGET_MINMAX);
    assert_true(!t.has_range);
    assert_int_equal(miles_velocity_target_from_meta(&t, "log1p_z", "1.5", "0", NULL, NULL), MILES_EFORMAT);
    assert_int_equal(miles_velocity_target_from_meta(&t, "log1p_z", "x", "1", NULL, NULL), MILES_EFORMAT);

    /* training with it: a sigmoid head is refused; a linear one trains, and
     * the checkpoint carries the train split's mean/std exactly */
    char out[256], last[300];
    snprintf(out, sizeof out, "%s/vtarget", g_dir);
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    MilesModel *m = small_model(8);
    MilesTrainConfig tc;
    small_train_cfg(&tc, out, 3);
    tc.velocity_target = MILES_VTARGET_LOG1P_Z;
    assert_int_equal(miles_train_run(m, g_prep, &tc, NULL), MILES_EINVAL); /* the miles preset's sigmoid */
    printf("sigmoid head: %s\n", miles_last_error());
    miles_model_free(m);
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "tiny"));
    cfg.vocab_size = g_vocab_size;
    cfg.velocity_activation = MILES_VEL_LINEAR;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, 8, 0.02f));
    OK(miles_train_run(m, g_prep, &tc, NULL));
    MilesDataset tr;
    view_data(MILES_SPLIT_TRAIN, &tr);
    MilesVelocityTarget want, got;
    OK(miles_velocity_target_fit(&want, MILES_VTARGET_LOG1P_Z, tr.velocity_raw, tr.n));
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, last));
    assert_string_equal(miles_checkpoint_meta(c, MILES_META_VELOCITY_TARGET), "log1p_z");
    OK(miles_checkpoint_velocity_target(c, &got));
    printf("checkpoint target: %s mean %.17g std %.17g\n", miles_velocity_target_name(got.kind), got.mean, got.std);
    assert_int_equal(got.kind, MILES_VTARGET_LOG1P_Z);
    assert_true(got.mean == want.mean && got.std == want.std); /* %.17g round-trips doubles */
    printf("checkpoint range: [%.17g, %.17g]\n", got.lo, got.hi);
    assert_non_null(miles_checkpoint_meta(c, MILES_META_VELOCITY_MIN));
    assert_true(got.has_range && got.lo == want.lo && got.hi == want.hi && got.lo < got.hi);
    miles_checkpoint_close(c);

    /* the predictor returns views/day = expm1(output * std + mean) */
    MilesPredictorOptions po;
    miles_predictor_options_default(&po);
    MilesPredictor *p = NULL;
    OK(miles_predictor_open(&p, last, &po));
    const char *names[] = {"title", "views", "likes", "comments", "duration_sec"};
    const char *vals[] = {"a quick test title", "1000", "50", "5", "60"};
    MilesRecord rec = {5, names, vals, NULL};
    MilesPrediction pr;
    OK(miles_predictor_predict(p, &rec, 1, &pr));
    double expect = expm1(pr.velocity_scaled * want.std + want.mean);
    printf("predictor: output %.6g -> %.6g views/day (expm1 formula %.6g)\n", pr.velocity_scaled,
           pr.predicted_velocity, expect);
    assert_true(fabs(pr.predicted_velocity - fmax(expect, 0.0)) <= 1e-9 * fmax(1.0, fabs(expect)));
    miles_predictor_free(p);

    /* an extreme output through the predictor: the same checkpoint with the
     * regressor bias at 1e30 answers the clamp's views/day (finite); a copy
     * without the range keys (an older checkpoint) overflows as before */
    char big[300], old_ck[300];
    snprintf(big, sizeof big, "%s/big.safetensors", out);
    snprintf(old_ck, sizeof old_ck, "%s/norange.safetensors", out);
    copy_ckpt_bias(last, big, 1e30f, 1);
    copy_ckpt_bias(last, old_ck, 1e30f, 0);
    const double gm = MILES_VTARGET_CLAMP_MARGIN * (got.hi - got.lo);
    const double want_top = expm1((got.hi + gm) * got.std + got.mean);
    OK(miles_predictor_open(&p, big, &po));
    OK(miles_predictor_predict(p, &rec, 1, &pr));
    printf("predictor, bias 1e30: output %.17g -> %.17g views/day (clamp %.17g)\n", pr.velocity_scaled,
           pr.predicted_velocity, want_top);
    assert_true(isfinite(pr.predicted_velocity) && pr.predicted_velocity == want_top);
    assert_true(pr.velocity_scaled == got.hi + gm);
    miles_predictor_free(p);
    OK(miles_predictor_open(&p, old_ck, &po));
    OK(miles_predictor_predict(p, &rec, 1, &pr));
    printf("predictor, bias 1e30, no range keys: %g views/day\n", pr.predicted_velocity);
    assert_true(isinf(pr.predicted_velocity) && pr.velocity_scaled > 1e29);
    miles_predictor_free(p);
    eval_cli_clamp(big, out, got.hi + gm);
    miles_model_free(m);

    /* a checkpoint trained with the min-max target has no key: min-max */
    snprintf(out, sizeof out, "%s/vtarget_mm", g_dir);
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    m = small_model(9);
    small_train_cfg(&tc, out, 1);
    OK(miles_train_run(m, g_prep, &tc, NULL));
    OK(miles_checkpoint_open(&c, last));
    assert_null(miles_checkpoint_meta(c, MILES_META_VELOCITY_TARGET));
    OK(miles_checkpoint_velocity_target(c, &got));
    assert_int_equal(got.kind, MILES_VTARGET_MINMAX);
    miles_checkpoint_close(c);
    miles_model_free(m);
}

static void test_schedules(void **state) {
    (void)state;
    MilesTrainConfig c;
    miles_train_config_default(&c);
    c.lr = 2e-5f;
    c.warmup_steps = 500;
    const int64_t total = 15 * 209;
    /* HF cosine with warmup: 0 at step 0, peak at warmup, half-way down at the middle */
    assert_true(miles_train_lr(&c, 0, 0, total) == 0.0);
    assert_true(fabs(miles_train_lr(&c, 500, 2, total) - 2e-5) < 1e-12);
    assert_true(fabs(miles_train_lr(&c, 500 + (total - 500) / 2, 8, total) - 1e-5) < 1e-8);
    /* the original: SequentialLR stepped once per epoch -> LR 2.0e-6 .. ~2.25e-6 over 15 epochs */
    c.schedule = MILES_SCHED_ORIGINAL;
    c.schedule_per_epoch = 1;
    c.eta_min = 1e-7f;
    double lr0 = miles_train_lr(&c, 1234, 0, total), lr14 = miles_train_lr(&c, 3000, 14, total);
    printf("original recipe LR: epoch 1 %.4g, epoch 15 %.4g\n", lr0, lr14);
    assert_true(fabs(lr0 - 2e-6) < 1e-12);
    assert_true(fabs(lr14 - 2e-5 * (0.1 + 0.9 * 14.0 / 500)) < 1e-12);
}

/* The original project's schedule (MILES_SCHED_ORIGINAL) stepped per step,
 * warmup and cosine, against torch's SequentialLR(LinearLR, CosineAnnealingLR)
 * traced by tests/gen_sched_original.py (relative error <= 1e-12: torch
 * chains its factors step by step, libmiles uses the closed forms). */
/* Early stopping and the best checkpoint on a sequence of validation AUROCs,
 * the original's rules (ORIGINAL_SYSTEM.md: EarlyStopping(patience 3,
 * min_delta 0.001, mode 'max'); best_model saved on a strictly higher AUROC). */
static void test_early_stopping_rules(void **state) {
    (void)state;
    struct { double auroc; int best, bad, stop; } seq[] = {
        {0.8000, 1, 0, 0}, /* the first sets the reference */
        {0.8005, 1, 1, 0}, /* a new best, but not by more than min_delta */
        {0.8011, 1, 0, 0}, /* > 0.8 + 0.001: the reference moves */
        {0.8011, 0, 1, 0}, /* a tie is neither */
        {0.8021, 1, 2, 0}, /* 0.8021 is not > 0.8011 + 0.001 (as doubles) */
        {NAN, 0, 3, 1},    /* a single-class split: never better; the third in a row stops */
    };
    MilesTrainState st;
    memset(&st, 0, sizeof st);
    st.best_auroc = st.best_es = -INFINITY;
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) {
        int stop = -1;
        const int best = miles_train_es_update(&st, 3, 0.001, seq[i].auroc, &stop);
        if (best != seq[i].best || st.bad_evals != seq[i].bad || stop != seq[i].stop)
            fail_msg("evaluation %zu (AUROC %.4f): best %d bad %d stop %d, want %d %d %d", i, seq[i].auroc, best,
                     st.bad_evals, stop, seq[i].best, seq[i].bad, seq[i].stop);
    }
    assert_true(st.n_evals == 6 && st.best_auroc == 0.8021 && st.best_es == 0.8011);
    /* patience 0 never stops; patience 1 stops at the first evaluation that
     * does not improve, not at the first one */
    memset(&st, 0, sizeof st);
    st.best_auroc = st.best_es = -INFINITY;
    int stop = -1;
    for (int i = 0; i < 5; i++) {
        miles_train_es_update(&st, 0, 0.001, 0.5, &stop);
        assert_int_equal(stop, 0);
    }
    memset(&st, 0, sizeof st);
    st.best_auroc = st.best_es = -INFINITY;
    miles_train_es_update(&st, 1, 0.0, 0.7, &stop);
    assert_int_equal(stop, 0);
    miles_train_es_update(&st, 1, 0.0, 0.75, &stop);
    assert_int_equal(stop, 0);
    assert_int_equal(miles_train_es_update(&st, 1, 0.0, 0.74, &stop), 0);
    assert_int_equal(stop, 1);
}

static void test_schedule_original_golden(void **state) {
    (void)state;
    cJSON *j = test_read_json("tests/fixtures/sched_original.json");
    assert_non_null(j);
    const cJSON *cases = cJSON_GetObjectItem(j, "cases"), *cs;
    int ncase = 0;
    size_t npts = 0;
    double worst = 0.0;
    cJSON_ArrayForEach(cs, cases) {
        MilesTrainConfig c;
        miles_train_config_default(&c);
        c.schedule = MILES_SCHED_ORIGINAL;
        c.schedule_per_epoch = 0;
        c.lr = (float)cJSON_GetObjectItem(cs, "lr")->valuedouble;
        c.eta_min = (float)cJSON_GetObjectItem(cs, "eta_min")->valuedouble;
        c.warmup_steps = cJSON_GetObjectItem(cs, "warmup")->valueint;
        const int64_t total = cJSON_GetObjectItem(cs, "total")->valueint;
        const cJSON *lrs = cJSON_GetObjectItem(cs, "lrs"), *v;
        assert_int_equal(cJSON_GetArraySize(lrs), total + 1);
        int64_t step = 0;
        cJSON_ArrayForEach(v, lrs) {
            const double got = miles_train_lr(&c, step, 0, total), want = v->valuedouble;
            const double e = fabs(got - want) / c.lr;
            worst = test_max_err(worst, e);
            if (!(e <= 1e-12))
                fail_msg("warmup %d total %lld step %lld: %.17g, torch %.17g", c.warmup_steps, (long long)total,
                         (long long)step, got, want);
            step++;
            npts++;
        }
        ncase++;
    }
    printf("original schedule vs torch SequentialLR: %d traces, %zu steps, max error %.2e of lr\n", ncase, npts,
           worst);
    assert_true(ncase >= 4);
    cJSON_Delete(j);
}

/* Length bucketing (MilesTrainConfig.bucket, miles-train --bucket): the
 * epoch's order is still a permutation of the rows, a function of (seed,
 * epoch); each chunk of 50 batches holds the rows the plain shuffle put
 * there, its full batches are runs of the chunk sorted by (length, row) in a
 * shuffled order, and a short last batch stays last. */
static void test_bucket_order(void **state) {
    (void)state;
    const int64_t n = 3333; /* two full chunks of 50 x 32 rows and a part one with a short batch */
    const int batch = 32, chunk = 50 * batch;
    int32_t *len = malloc(sizeof(int32_t) * n);
    int64_t *plain = malloc(sizeof(int64_t) * n), *buck = malloc(sizeof(int64_t) * n),
            *again = malloc(sizeof(int64_t) * n), *sorted = malloc(sizeof(int64_t) * chunk);
    char *seen = calloc((size_t)n, 1);
    assert_true(len && plain && buck && again && sorted && seen);
    uint64_t r = 12345;
    for (int64_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        len[i] = 2 + (int32_t)((r >> 33) % 63);
    }
    MilesDataset d;
    memset(&d, 0, sizeof d);
    d.n = n;
    d.max_len = 64;
    d.lengths = len;
    OK(miles_train_epoch_order(plain, &d, 7, 3, batch, 0));
    OK(miles_train_epoch_order(buck, &d, 7, 3, batch, 1));
    OK(miles_train_epoch_order(again, &d, 7, 3, batch, 1));
    assert_memory_equal(buck, again, sizeof(int64_t) * n);
    OK(miles_train_epoch_order(again, &d, 7, 4, batch, 1));
    assert_true(memcmp(buck, again, sizeof(int64_t) * n) != 0);
    for (int64_t i = 0; i < n; i++) {
        assert_true(buck[i] >= 0 && buck[i] < n && !seen[buck[i]]);
        seen[buck[i]] = 1;
    }
    long pad_plain = 0, pad_buck = 0;
    int moved = 0;
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t cn = n - c0 < chunk ? n - c0 : chunk;
        /* the chunk's rows sorted by (length, row): the plain order's chunk */
        memcpy(sorted, plain + c0, sizeof(int64_t) * cn);
        for (int64_t a = 1; a < cn; a++) { /* insertion sort: small n, no shared comparator */
            int64_t x = sorted[a], b = a - 1;
            while (b >= 0 && (len[sorted[b]] > len[x] || (len[sorted[b]] == len[x] && sorted[b] > x))) {
                sorted[b + 1] = sorted[b];
                b--;
            }
            sorted[b + 1] = x;
        }
        const int nb = (int)((cn + batch - 1) / batch), full = cn % batch ? nb - 1 : nb;
        int used[50] = {0};
        for (int bi = 0; bi < nb; bi++) {
            const int64_t *got = buck + c0 + (int64_t)bi * batch;
            const int rows = bi < full ? batch : (int)(cn - (int64_t)full * batch);
            int at = -1;
            for (int j = 0; j < (bi < full ? full : 0) && at < 0; j++)
                if (!used[j] && !memcmp(got, sorted + (int64_t)j * batch, sizeof(int64_t) * batch)) at = j;
            if (bi < full) {
                assert_true(at >= 0); /* a run of the sorted chunk, each run once */
                used[at] = 1;
                moved += at != bi; /* the runs' order shuffled, not the sorted one */
            } else { /* the short batch: the sorted chunk's tail, last */
                assert_memory_equal(got, sorted + (int64_t)full * batch, sizeof(int64_t) * rows);
            }
            int mp = 0, mb = 0;
            for (int k = 0; k < rows; k++) {
                if (len[plain[c0 + (int64_t)bi * batch + k]] > mp) mp = len[plain[c0 + (int64_t)bi * batch + k]];
                if (len[got[k]] > mb) mb = len[got[k]];
            }
            pad_plain += (long)mp * rows;
            pad_buck += (long)mb * rows;
        }
    }
    printf("bucketing: %lld rows, padded tokens %ld -> %ld, %d batches away from their sorted place\n",
           (long long)n, pad_plain, pad_buck, moved);
    assert_true(pad_buck < pad_plain * 3 / 4);
    assert_true(moved > 50); /* of 2 x 50 + 4 full batches */
    free(len);
    free(plain);
    free(buck);
    free(again);
    free(sorted);
    free(seen);
}

/* A run with bucketing on (the order and the shorter batches it makes),
 * stopped and resumed, ends on the same bits */
static void test_bucket_train_resume(void **state) {
    (void)state;
    check_resume("bucket", 24, 24 / 2 + 5, 1, 1, 0xd1083ab5c1e71ff3ULL);
}

/* A batch cut below its rows' length (--max-len under the prepared one) is
 * what the tokenizer gives at that max_len: the first max_len - 1 tokens and
 * the closing [SEP], as HF truncation; shorter rows are padded. */
static void test_batch_truncation(void **state) {
    (void)state;
    MilesDataset tr;
    view_data(MILES_SPLIT_TRAIN, &tr);
    MilesTokenizer *tok = NULL;
    OK(miles_tokenizer_load(&tok, VOCAB_PATH));
    enum { NB = 64, CUT = 10 };
    int64_t rows[NB];
    int longer = 0, shorter = 0;
    for (int i = 0; i < NB; i++) {
        rows[i] = 3 * i + 1;
        longer += tr.lengths[rows[i]] > CUT;
        shorter += tr.lengths[rows[i]] < CUT;
    }
    printf("batch truncation: %d of %d rows longer than %d tokens, %d shorter\n", longer, NB, CUT, shorter);
    assert_true(longer >= 8 && shorter >= 1); /* both kinds in the batch */
    MilesBatchBuf bb;
    memset(&bb, 0, sizeof bb);
    MilesBatch b;
    OK(miles_batchbuf_fill(&bb, &tr, rows, NB, CUT, &b));
    assert_int_equal(b.B, NB);
    assert_int_equal(b.T, CUT);
    int32_t ids[CUT], tt[CUT], mask[CUT];
    for (int i = 0; i < NB; i++) {
        const char *title = miles_prepared_title(g_prep, MILES_SPLIT_TRAIN, rows[i]);
        int len = 0;
        OK(miles_tokenizer_encode(tok, title, strlen(title), NULL, 0, CUT, 1, ids, tt, mask, &len));
        if (memcmp(b.input_ids + (size_t)i * CUT, ids, sizeof ids) || memcmp(b.attention_mask + (size_t)i * CUT, mask, sizeof mask))
            fail_msg("row %lld (%d tokens) \"%s\": the batch differs from encoding at max_len %d", (long long)rows[i],
                     tr.lengths[rows[i]], title, CUT);
    }
    miles_batchbuf_free(&bb);
    miles_tokenizer_free(tok);
}

/* A loss that is not finite stops the run with MILES_ENAN naming the step,
 * and writes no checkpoint. */
static void test_nonfinite_loss(void **state) {
    (void)state;
    MilesModel *m = small_model(5);
    MilesTensorInfo ti;
    OK(miles_model_tensor(m, miles_model_find_tensor(m, "classifier.bias"), &ti));
    ti.data[1] = INFINITY; /* logits inf - inf: the loss is NaN */
    MilesTrainConfig tc;
    char out[256], last[300];
    snprintf(out, sizeof out, "%s/nanloss", g_dir);
    small_train_cfg(&tc, out, 3);
    int rc = miles_train_run(m, g_prep, &tc, NULL);
    printf("non-finite loss: %s: %s\n", miles_status_name(rc), miles_last_error());
    assert_int_equal(rc, MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "training loss is"));
    assert_non_null(strstr(miles_last_error(), "at step 0 (epoch 1, batch 0)"));
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    assert_int_not_equal(access(last, F_OK), 0);
    miles_model_free(m);
}

static void test_bad_config(void **state) {
    (void)state;
    MilesDataset tr;
    view_data(MILES_SPLIT_TRAIN, &tr);
    MilesModel *m = small_model(5);
    MilesTrainConfig tc;
    char out[256];
    snprintf(out, sizeof out, "%s/bad", g_dir);
    small_train_cfg(&tc, out, 1);
    tc.batch_size = 0;
    assert_int_equal(miles_train_run(m, g_prep, &tc, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "batch size"));
    small_train_cfg(&tc, out, 1);
    MilesDataset empty = tr;
    empty.n = 0;
    assert_int_equal(miles_train_datasets(m, &empty, NULL, NULL, &tc, NULL), MILES_EINVAL);
    /* an output directory that cannot be made (a file in the way), at the top or deeper */
    char blocker[300], bad_out[400];
    snprintf(blocker, sizeof blocker, "%s/a_file", g_dir);
    FILE *bf = fopen(blocker, "w");
    assert_non_null(bf);
    fclose(bf);
    for (int k = 0; k < 2; k++) {
        snprintf(bad_out, sizeof bad_out, "%s%s", blocker, k ? "/run/deeper" : "/run");
        small_train_cfg(&tc, bad_out, 1);
        assert_int_equal(miles_train_run(m, g_prep, &tc, NULL), MILES_EIO);
        printf("output directory: %s\n", miles_last_error());
        assert_non_null(strstr(miles_last_error(), "/a_file/run: cannot create directory: Not a directory"));
    }
    unlink(blocker);
    /* nested directories that do not exist yet are made */
    snprintf(bad_out, sizeof bad_out, "%s/new/nested/run", g_dir);
    small_train_cfg(&tc, bad_out, 1);
    OK(miles_train_run(m, g_prep, &tc, NULL));
    snprintf(bad_out, sizeof bad_out, "%s/new/nested/run/last.safetensors", g_dir);
    assert_int_equal(access(bad_out, F_OK), 0);
    /* a vocabulary other than the data's: refused before any step */
    small_train_cfg(&tc, out, 1);
    tc.vocab_dir = "tests/fixtures/export_vocab";
    assert_int_equal(miles_train_run(m, g_prep, &tc, NULL), MILES_EINVAL);
    printf("other vocabulary: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "vocabulary"));
    /* the data's own vocabulary, but more tokens than the model's embedding
     * rows: refused before any step (ids past the table would be read) */
    {
        MilesConfig sc = *miles_model_config(m);
        sc.vocab_size = g_vocab_size - 1;
        MilesModel *sm = NULL;
        OK(miles_model_build(&sm, &sc));
        small_train_cfg(&tc, out, 1);
        assert_int_equal(miles_train_run(sm, g_prep, &tc, NULL), MILES_ESHAPE);
        printf("small vocabulary: %s\n", miles_last_error());
        char want[400];
        snprintf(want, sizeof want, "tokenizer %s has %d tokens but the model's vocab_size is %d", VOCAB_PATH,
                 g_vocab_size, g_vocab_size - 1);
        if (!strstr(miles_last_error(), want)) fail_msg("error does not say \"%s\": %s", want, miles_last_error());
        miles_model_free(sm);
    }
    /* automatic class weights on a single-class split: undefined, said so */
    MilesDataset one = tr;
    int32_t *ones = malloc(sizeof(int32_t) * tr.n);
    for (int64_t i = 0; i < tr.n; i++) ones[i] = 1;
    one.labels = ones;
    small_train_cfg(&tc, out, 1);
    tc.auto_class_weight = 1;
    assert_int_equal(miles_train_datasets(m, &one, NULL, NULL, &tc, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "single class"));
    free(ones);
    /* incomplete splits, an unknown velocity target */
    MilesDataset nolab = tr;
    nolab.labels = NULL;
    small_train_cfg(&tc, out, 1);
    assert_int_equal(miles_train_datasets(m, &nolab, NULL, NULL, &tc, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "training data lacks ids, mask, features, labels or velocity"));
    MilesDataset va;
    view_data(MILES_SPLIT_VAL, &va);
    va.features = NULL;
    assert_int_equal(miles_train_datasets(m, &tr, &va, NULL, &tc, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "validation data lacks"));
    tc.velocity_target = 7;
    assert_int_equal(miles_train_run(m, g_prep, &tc, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "velocity_target 7 is not a MILES_VTARGET_* value"));
    /* resume without a checkpoint: clear error naming the file */
    snprintf(out, sizeof out, "%s/nothing-here", g_dir);
    small_train_cfg(&tc, out, 1);
    tc.resume = 1;
    assert_int_not_equal(miles_train_run(m, g_prep, &tc, NULL), MILES_OK);
    assert_non_null(strstr(miles_last_error(), "last.safetensors"));
    miles_model_free(m);
}

int main(void) {
    miles_gemm_use_blas(0); /* the pinned runs are the own GEMM's bits (MILES_GEMM=blas gives others) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_schedule_original_golden),
        cmocka_unit_test(test_early_stopping_rules),
        cmocka_unit_test(test_bucket_order),
        cmocka_unit_test(test_bucket_train_resume),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_batch_truncation),
        cmocka_unit_test(test_nonfinite_loss),
        cmocka_unit_test(test_callback_bare_status),
        cmocka_unit_test(test_sigint_cli),
        cmocka_unit_test(test_resume_cleans_log_and_temps),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_kill_during_checkpoint_write),
        cmocka_unit_test(test_learns_title_signal),
        cmocka_unit_test(test_events_and_silence),
        cmocka_unit_test(test_checkpoint_contract),
        cmocka_unit_test(test_state_loss_scale),
        cmocka_unit_test(test_velocity_target),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
