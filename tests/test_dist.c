/*
 * test_dist.c — data-parallel training (docs/distributed.md).
 *
 *   - the 1-rank API (every build);
 *   - `mpirun -np 2` training gives the same weights as one process with the
 *     same global batch, seed and data (max |diff| <= 1e-6; not bitwise: the
 *     gradient of a batch is summed in two halves, see the doc), with unequal
 *     class weights, gradient accumulation and a partial last batch; the same
 *     with ZeRO-1 sharded moments, also stopped halfway and resumed (the
 *     moments scattered from the checkpoint); the 2-rank weights pinned (a
 *     constant hash, the same for all three);
 *   - a rank killed mid-run makes mpirun fail with a clear message, and the run
 *     resumes from last.safetensors with another number of ranks (2 -> 3) to
 *     the weights of an uninterrupted run;
 *   - `mpirun -np 2 miles-train` end to end (when MILES_BIN has the tool).
 *
 * The MPI parts run this same program as the MPI job: `test_dist --worker
 * PREPARED OUT key=value...` trains one configuration and exits.  Without
 * mpirun or without MPI in the build they are skipped with a message.
 * MILES_MPIRUN overrides the launcher command (default: mpirun with the
 * options a root container needs).
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
#include <time.h>
#include <unistd.h>

#include "miles.h"
#ifdef MILES_HAVE_MPI
#include "miles_mpi.h"
/* the MPI jobs of these tests join through libmiles-mpi */
#define JOIN_JOB(d, argc, argv) miles_mpi_init(d, argc, argv)
#define HAVE_MPI_BUILD 1
#else
#define JOIN_JOB(d, argc, argv) miles_dist_init(d, argc, argv)
#define HAVE_MPI_BUILD 0
#endif
#include "internal.h"
#include "train_internal.h"
#include "ops.h" /* miles_gemm_use_blas */
#include "helpers.h"

#define VOCAB_PATH "tests/fixtures/tokenizer_vocab.txt"
#define TOL 1e-6
/* the 60-step kill + resume test: see test_killed_rank_then_resume */
#define KILL_MAX_TOL 2.5e-5


static char g_dir[64];
static char g_prepared[256];
static char g_self[4096];
static char g_mpirun[1024];
static int g_have_mpi;

/* ------------------------------------------------------------ shared setup */

static volatile int g_stop; /* the worker's SIGINT/SIGUSR1 flag */
static void on_signal(int sig) { (void)sig; g_stop = 1; }

/* The STEP events' training losses and gradient norms, summed (rank 0 gets the
 * events): the reported numbers must be the global batch's, not one rank's. */
typedef struct { double loss, gnorm; int steps; } StepSums;
static int on_event(const MilesTrainEvent *e, void *arg) {
    StepSums *ss = arg;
    if (e->type == MILES_EVENT_STEP) {
        ss->loss += e->loss;
        ss->gnorm += e->grad_norm;
        ss->steps++;
    }
    return MILES_OK;
}
static StepSums g_sums;

typedef struct RunCfg {
    int64_t steps;
    int batch, accum, epochs, eval_every, zero1, resume;
    float cw0, cw1, lr, head_lr, layer_decay;
} RunCfg;

static void run_cfg_default(RunCfg *r) {
    r->steps = 24;
    r->batch = 30;      /* 1006 training rows: the last batch of an epoch has 16 rows */
    r->accum = 2;
    r->epochs = 2;
    r->eval_every = 8;
    r->zero1 = 0;
    r->resume = 0;
    r->cw0 = 0.6f;      /* unequal class weights: the CE normalizer differs per shard */
    r->cw1 = 2.5f;
    r->lr = 2e-5f;      /* the trainer's default; see test_two_ranks_match_one_process */
    r->head_lr = 1e-4f; /* parameter groups on every path (plain, data parallel, ZeRO-1) */
    r->layer_decay = 0.8f;
}

static int vocab_size(void) {
    MilesTokenizer *tok = NULL;
    if (miles_tokenizer_load(&tok, VOCAB_PATH) != MILES_OK) return -1;
    int n = miles_tokenizer_vocab_size(tok);
    miles_tokenizer_free(tok);
    return n;
}

/* A tiny random-init model without dropout (dropout masks depend on the shard:
 * see docs/distributed.md). */
static int build_model(MilesModel **m, uint64_t seed) {
    MilesConfig cfg;
    int s = miles_config_preset(&cfg, "miles", "tiny");
    if (s != MILES_OK) return s;
    cfg.vocab_size = vocab_size();
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0f;
    cfg.text_dropout = 0.0f;
    for (int i = 0; i < MILES_MAX_MLP; i++) cfg.numeric_dropouts[i] = cfg.fusion_dropouts[i] = 0.0f;
    s = miles_model_build(m, &cfg);
    if (s == MILES_OK) s = miles_model_init_random(*m, seed, 0.02f);
    return s;
}

/* Train one configuration (in this process, on `dist` or alone). */
static int train_once(const char *prepared, const char *out, const RunCfg *r, MilesDist *dist,
                      MilesTrainResult *res, MilesModel **model_out) {
    MilesPrepared *p = NULL;
    int s = miles_prepared_open(&p, prepared);
    if (s != MILES_OK) return s;
    MilesModel *m = NULL;
    /* ranks > 0 start from a different init: rank 0's must be broadcast */
    s = build_model(&m, 11 + (uint64_t)miles_dist_rank(dist));
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    tc.batch_size = r->batch;
    tc.grad_accum = r->accum;
    tc.max_len = 32;
    tc.epochs = r->epochs;
    tc.lr = r->lr;
    tc.head_lr = r->head_lr;
    tc.layer_decay = r->layer_decay;
    tc.warmup_steps = 5;
    tc.max_steps = r->steps;
    tc.eval_every = r->eval_every;
    tc.patience = 100;
    tc.out_dir = out;
    tc.resume = r->resume;
    tc.loss.class_weight[0] = r->cw0;
    tc.loss.class_weight[1] = r->cw1;
    tc.dist = dist;
    tc.zero1 = r->zero1;
    tc.stop_flag = &g_stop;
    tc.log_every = 1;
    tc.callback = on_event;
    tc.callback_arg = &g_sums;
    memset(&g_sums, 0, sizeof g_sums);
    if (s == MILES_OK) s = miles_train_run(m, p, &tc, res);
    if (model_out && s == MILES_OK) *model_out = m;
    else miles_model_free(m);
    miles_prepared_free(p);
    return s;
}

/* ------------------------------------------------------------ worker mode */

static int worker_main(int argc, char **argv) {
    /* test_dist --worker PREPARED OUT key=value... */
    MilesDist *d = NULL;
    int s = JOIN_JOB(&d, &argc, &argv);
    if (s != MILES_OK) { fprintf(stderr, "worker: %s\n", miles_last_error()); return 1; }
    if (argc < 4) { fprintf(stderr, "worker: usage: --worker PREPARED OUT key=value...\n"); return 2; }
    RunCfg r;
    run_cfg_default(&r);
    for (int i = 4; i < argc; i++) {
        char k[32];
        double v;
        if (sscanf(argv[i], "%31[^=]=%lf", k, &v) != 2) { fprintf(stderr, "worker: bad arg %s\n", argv[i]); return 2; }
        if (!strcmp(k, "steps")) r.steps = (int64_t)v;
        else if (!strcmp(k, "batch")) r.batch = (int)v;
        else if (!strcmp(k, "accum")) r.accum = (int)v;
        else if (!strcmp(k, "epochs")) r.epochs = (int)v;
        else if (!strcmp(k, "eval")) r.eval_every = (int)v;
        else if (!strcmp(k, "zero1")) r.zero1 = (int)v;
        else if (!strcmp(k, "resume")) r.resume = (int)v;
        else if (!strcmp(k, "lr")) r.lr = (float)v;
        else { fprintf(stderr, "worker: unknown key %s\n", k); return 2; }
    }
    /* the kill test needs the pids */
    char pidf[4200];
    snprintf(pidf, sizeof pidf, "%s.pid.%d", argv[3], miles_dist_rank(d));
    FILE *f = fopen(pidf, "w");
    if (f) { fprintf(f, "%d\n", (int)getpid()); fclose(f); }
    signal(SIGINT, on_signal);
    signal(SIGUSR1, on_signal);
    MilesTrainResult res;
    s = train_once(argv[2], argv[3], &r, d, &res, NULL);
    if (s != MILES_OK) {
        fprintf(stderr, "worker rank %d: %s (%s)\n", miles_dist_rank(d), miles_last_error(), miles_status_name(s));
        fflush(stderr);
        miles_dist_abort(d, 1);
        return 1;
    }
    if (miles_dist_rank(d) == 0)
        printf("worker: %d ranks, %lld steps in %.2f s, best val AUROC %.6f%s; step sums: %d steps, "
               "loss %.9e, grad norm %.9e\n", miles_dist_size(d), (long long)res.steps, res.seconds,
               res.best_val_auroc, res.interrupted ? ", interrupted" : "", g_sums.steps, g_sums.loss, g_sums.gnorm);
    miles_dist_finalize(d);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static int have_mpirun(void) {
    return system("command -v mpirun >/dev/null 2>&1") == 0;
}

/* mpirun -np N <self> --worker PREPARED OUT args; output to OUT.log.  Returns the exit status. */
static int mpirun_worker(int np, const char *out, const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 600 %s -np %d -x OMP_NUM_THREADS=1 %s --worker %s %s %s > %s.log 2>&1", g_mpirun,
             np, g_self, g_prepared, out, args, out);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void print_file(const char *path, const char *prefix) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) printf("%s%s", prefix, line);
    fclose(f);
}

static MilesModel *load_last(const char *out) {
    char path[4200];
    snprintf(path, sizeof path, "%s/last.safetensors", out);
    MilesModel *m = NULL;
    OK(miles_checkpoint_load_model(&m, path));
    return m;
}

/* max |a - b| over all parameters; *n_same = bitwise-equal count */
static double max_param_diff(const MilesModel *a, const MilesModel *b, size_t *n_same, size_t *n) {
    float *pa, *pb;
    size_t na, nb;
    OK(miles_dist_model_block(a, 0, &pa, &na));
    OK(miles_dist_model_block(b, 0, &pb, &nb));
    assert_int_equal(na, nb);
    double mx = 0;
    size_t same = 0;
    for (size_t i = 0; i < na; i++) {
        double d = fabs((double)pa[i] - pb[i]);
        if (d > mx || isnan(d)) mx = isnan(d) ? INFINITY : d;
        same += memcmp(&pa[i], &pb[i], sizeof(float)) == 0;
    }
    *n_same = same;
    *n = na;
    return mx;
}

static size_t count_param_diff_over(const MilesModel *a, const MilesModel *b, double tol) {
    float *pa, *pb;
    size_t na, nb, over = 0;
    OK(miles_dist_model_block(a, 0, &pa, &na));
    OK(miles_dist_model_block(b, 0, &pb, &nb));
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) over += !(fabs((double)pa[i] - pb[i]) <= tol);
    return over;
}

static int64_t ckpt_step(const char *out) {
    char path[4200];
    snprintf(path, sizeof path, "%s/last.safetensors", out);
    MilesCheckpoint *c = NULL;
    if (miles_checkpoint_open(&c, path) != MILES_OK) return -1;
    MilesTrainState st;
    int s = miles_ckpt_parse_state(miles_checkpoint_meta(c, MILES_META_STATE), &st, NULL);
    miles_checkpoint_close(c);
    return s == MILES_OK ? st.step : -1;
}

#define NEED_MPI() do { \
        if (!g_have_mpi) { printf("SKIPPED: %s\n", HAVE_MPI_BUILD ? "mpirun not found (apt-get install openmpi-bin)" \
                                                     : "this build has no MPI (install libopenmpi-dev and rebuild)"); skip(); } \
    } while (0)

/* ------------------------------------------------------------ setup */

/* The synthetic data set of every test: 8000 rows, seed 7, max_len 32. */
static int prepare_data(const char *dir, const char *prepared, MilesPrepareReport *rep) {
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/synth.csv", dir);
    if (miles_synth_write_csv(csv, 8000, 7) != MILES_OK) { fprintf(stderr, "%s\n", miles_last_error()); return -1; }
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = VOCAB_PATH;
    po.max_len = 32;
    if (miles_data_prepare(csv, prepared, &po, rep) != MILES_OK) { fprintf(stderr, "%s\n", miles_last_error()); return -1; }
    return 0;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/miles_dist_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_prepared, sizeof g_prepared, "%s/data.milesdat", g_dir);
    MilesPrepareReport rep;
    if (prepare_data(g_dir, g_prepared, &rep)) return -1;
    const char *e = getenv("MILES_MPIRUN");
    if (e && *e) snprintf(g_mpirun, sizeof g_mpirun, "%s", e);
    else
        /* LeakSanitizer (SAN=1 builds) reports OpenMPI's own allocations, some in
         * unloaded plugins that no suppression can name: no leak check in workers */
        snprintf(g_mpirun, sizeof g_mpirun,
                 "mpirun %s--oversubscribe --mca btl_vader_single_copy_mechanism none -x ASAN_OPTIONS=detect_leaks=0",
                 getuid() == 0 ? "--allow-run-as-root " : "");
    g_have_mpi = HAVE_MPI_BUILD && have_mpirun();
    printf("synthetic: train %lld, val %lld rows; MPI %s; launcher: %s\n", (long long)rep.n[0], (long long)rep.n[1],
           g_have_mpi ? "available" : "not available", g_mpirun);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ tests */

static void test_single_rank_api(void **state) {
    (void)state;
    MilesDist *d = NULL;
    OK(miles_dist_init(&d, NULL, NULL));
    assert_int_equal(miles_dist_size(d), 1);
    assert_int_equal(miles_dist_rank(d), 0);
    assert_int_equal(miles_dist_local_size(d), 1);
    float x[3] = {1, 2, 3};
    OK(miles_dist_allreduce_f32(d, x, 3));
    assert_true(x[0] == 1 && x[1] == 2 && x[2] == 3);
    OK(miles_dist_bcast(d, x, sizeof x, 0));
    OK(miles_dist_barrier(d));
    /* agreement passes a local error through with its message */
    miles_error(MILES_EIO, "local failure");
    assert_int_equal(miles_dist_agree(d, MILES_EIO), MILES_EIO);
    assert_string_equal(miles_last_error(), "local failure");
    assert_int_equal(miles_dist_agree(d, MILES_OK), MILES_OK);
    miles_dist_finalize(d);
    miles_dist_finalize(NULL);
    assert_int_equal(miles_dist_size(NULL), 1);
    /* a 1-rank handle in the trainer is the one-process path, bit for bit */
    MilesDist *d1 = NULL;
    OK(miles_dist_init(&d1, NULL, NULL));
    RunCfg r;
    run_cfg_default(&r);
    r.steps = 6;
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/one_null", g_dir);
    snprintf(b, sizeof b, "%s/one_handle", g_dir);
    MilesTrainResult res;
    MilesModel *ma = NULL, *mb = NULL;
    OK(train_once(g_prepared, a, &r, NULL, &res, &ma));
    OK(train_once(g_prepared, b, &r, d1, &res, &mb));
    size_t same, n;
    double mx = max_param_diff(ma, mb, &same, &n);
    printf("1-rank handle vs no handle: %zu of %zu parameters bitwise equal (max diff %.3g)\n", same, n, mx);
    assert_int_equal(same, n);
    miles_model_free(ma);
    miles_model_free(mb);
    miles_dist_finalize(d1);
}

/* the weights of the 2-rank runs below, FNV-1a 64 of their bytes (ZeRO-1's
 * sharded AdamW gives the same bits); a deliberate change of the reduction
 * (bucket size, order) updates it */
#define PIN_NP2 0x39c9860a23eb211eULL

static void pin_params(const char *what, MilesModel *m, uint64_t pin) {
    uint64_t h = test_hash_params(TEST_FNV_BASIS, m);
    printf("%s: pin 0x%016llx (pinned 0x%016llx)\n", what, (unsigned long long)h, (unsigned long long)pin);
    if (h != pin) fail_msg("%s: weights hash 0x%016llx, pinned 0x%016llx", what, (unsigned long long)h,
                           (unsigned long long)pin);
}

static void test_two_ranks_match_one_process(void **state) {
    (void)state;
    NEED_MPI();
    RunCfg r;
    run_cfg_default(&r);
    char one[256], two[256], z1[256];
    snprintf(one, sizeof one, "%s/eq_one", g_dir);
    snprintf(two, sizeof two, "%s/eq_two", g_dir);
    snprintf(z1, sizeof z1, "%s/eq_zero1", g_dir);
    MilesTrainResult res1;
    MilesModel *m1 = NULL;
    OK(train_once(g_prepared, one, &r, NULL, &res1, &m1));
    char args[256];
    snprintf(args, sizeof args, "steps=%lld", (long long)r.steps);
    int rc = mpirun_worker(2, two, args);
    char log[300];
    snprintf(log, sizeof log, "%s.log", two);
    if (rc != 0) { print_file(log, "  mpirun| "); fail_msg("mpirun -np 2 exited with %d", rc); }
    print_file(log, "  np2| ");
    /* the reported losses and gradient norms are the global batch's */
    const StepSums one_sums = g_sums;
    StepSums two_sums = {0, 0, 0};
    FILE *lf = fopen(log, "r");
    char line[1024];
    while (lf && fgets(line, sizeof line, lf)) {
        const char *q = strstr(line, "step sums: ");
        if (q) assert_int_equal(sscanf(q, "step sums: %d steps, loss %lf, grad norm %lf", &two_sums.steps,
                                       &two_sums.loss, &two_sums.gnorm), 3);
    }
    if (lf) fclose(lf);
    printf("step sums over %d steps: loss %.9e (1 process) vs %.9e (2 ranks), grad norm %.9e vs %.9e\n",
           one_sums.steps, one_sums.loss, two_sums.loss, one_sums.gnorm, two_sums.gnorm);
    assert_int_equal(one_sums.steps, r.steps);
    assert_int_equal(two_sums.steps, r.steps);
    assert_true(fabs(one_sums.loss - two_sums.loss) <= 1e-5 * fabs(one_sums.loss));
    assert_true(fabs(one_sums.gnorm - two_sums.gnorm) <= 1e-5 * fabs(one_sums.gnorm));
    MilesModel *m2 = load_last(two);
    /* N ranks are bit-reproducible for a fixed N (docs/distributed.md): the
     * 2-rank weights are pinned, on every machine and build */
    pin_params("mpirun -np 2", m2, PIN_NP2);
    size_t same, n;
    double mx = max_param_diff(m1, m2, &same, &n);
    printf("%lld steps, global batch %d, accum %d, class weights %.1f/%.1f: 1 process vs mpirun -np 2: "
           "max |diff| %.3g (%zu of %zu parameters bitwise equal); tolerance %g\n",
           (long long)r.steps, r.batch, r.accum, r.cw0, r.cw1, mx, same, n, TOL);
    assert_true(mx <= TOL);
    /* the comparison means something only if training moved the weights well beyond TOL */
    MilesModel *m0 = NULL;
    OK(build_model(&m0, 11));
    double moved = max_param_diff(m0, m1, &same, &n);
    printf("training moved the weights by up to %.3g (%.0fx the tolerance)\n", moved, moved / TOL);
    assert_true(moved > 100 * TOL);
    miles_model_free(m0);

    /* ZeRO-1: moments sharded over 2 ranks, same trajectory */
    snprintf(args, sizeof args, "steps=%lld zero1=1", (long long)r.steps);
    rc = mpirun_worker(2, z1, args);
    snprintf(log, sizeof log, "%s.log", z1);
    if (rc != 0) { print_file(log, "  mpirun| "); fail_msg("mpirun -np 2 (zero1) exited with %d", rc); }
    MilesModel *mz = load_last(z1);
    pin_params("mpirun -np 2, ZeRO-1", mz, PIN_NP2);
    double mxz = max_param_diff(m1, mz, &same, &n);
    printf("ZeRO-1, 2 ranks vs 1 process: max |diff| %.3g (%zu of %zu bitwise equal)\n", mxz, same, n);
    assert_true(mxz <= TOL);
    /* the gathered moments in the checkpoint match the one-process moments */
    char pa[300], pz[300];
    snprintf(pa, sizeof pa, "%s/last.safetensors", one);
    snprintf(pz, sizeof pz, "%s/last.safetensors", z1);
    MilesSafetensors *sa = NULL, *sz = NULL;
    OK(miles_safetensors_open(&sa, pa));
    OK(miles_safetensors_open(&sz, pz));
    size_t np = miles_model_num_params(m1);
    float *va = malloc(np * sizeof(float)), *vz = malloc(np * sizeof(float));
    OK(miles_safetensors_read_f32(sa, miles_safetensors_find(sa, "optim.v"), va, np));
    OK(miles_safetensors_read_f32(sz, miles_safetensors_find(sz, "optim.v"), vz, np));
    double rel = 0;
    for (size_t i = 0; i < np; i++) {
        double d = fabs((double)va[i] - vz[i]) / (fabs(va[i]) + 1e-12);
        if (va[i] > 1e-10 && d > rel) rel = d;
    }
    printf("ZeRO-1 second moments vs 1 process: max relative diff %.3g\n", rel);
    assert_true(rel < 1e-3);
    free(va);
    free(vz);
    miles_safetensors_close(sa);
    miles_safetensors_close(sz);
    miles_model_free(mz);
    /* ZeRO-1 stopped halfway and resumed (rank 0 reads the full moments and
     * scatters the shards, miles_zero1_scatter): the straight run's bits */
    char zr[256];
    snprintf(zr, sizeof zr, "%s/eq_zero1_resumed", g_dir);
    snprintf(args, sizeof args, "steps=%lld zero1=1", (long long)r.steps / 2);
    rc = mpirun_worker(2, zr, args);
    snprintf(args, sizeof args, "steps=%lld zero1=1 resume=1", (long long)r.steps);
    if (rc == 0) rc = mpirun_worker(2, zr, args);
    snprintf(log, sizeof log, "%s.log", zr);
    if (rc != 0) { print_file(log, "  mpirun| "); fail_msg("mpirun -np 2 (zero1, resumed) exited with %d", rc); }
    MilesModel *mr = load_last(zr);
    pin_params("mpirun -np 2, ZeRO-1, stopped at half and resumed", mr, PIN_NP2);
    miles_model_free(mr);
    miles_model_free(m2);
    miles_model_free(m1);
}

/* Start `mpirun -np np <self> --worker ... args` in the background; once OUT/last.safetensors
 * exists, send `sig` to rank `rank`.  Returns mpirun's exit status; *sent = 1 if the signal went out. */
static int run_and_signal(int np, const char *out, const char *args, int sig, int rank, int *sent) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec timeout 600 %s -np %d -x OMP_NUM_THREADS=1 %s --worker %s %s %s > %s.log 2>&1",
             g_mpirun, np, g_self, g_prepared, out, args, out);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char pidf[300], last[300];
    snprintf(pidf, sizeof pidf, "%s.pid.%d", out, rank);
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    *sent = 0;
    int status = 0, reaped = 0;
    for (int i = 0; i < 60000 && !*sent; i++) {
        struct stat sb;
        FILE *f = fopen(pidf, "r");
        if (f && stat(last, &sb) == 0) {
            int p = 0;
            if (fscanf(f, "%d", &p) == 1 && p > 0 && kill(p, sig) == 0) *sent = 1;
        }
        if (f) fclose(f);
        if (waitpid(pid, &status, WNOHANG) == pid) { reaped = 1; break; }
        if (!*sent) usleep(5000);
    }
    if (!reaped) waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_stop_on_one_rank_stops_all(void **state) {
    (void)state;
    NEED_MPI();
    char out[256], log[300];
    snprintf(out, sizeof out, "%s/stop", g_dir);
    snprintf(log, sizeof log, "%s.log", out);
    int sent = 0;
    /* SIGUSR1 (what mpirun forwards; SIGINT behaves the same) to rank 1 only */
    int rc = run_and_signal(2, out, "steps=400 eval=4 accum=1", SIGUSR1, 1, &sent);
    print_file(log, "  stopped-run| ");
    assert_true(sent);
    assert_int_equal(rc, 0);
    int64_t at = ckpt_step(out);
    printf("SIGUSR1 to rank 1: both ranks stopped cleanly at step %lld (of 400), last.safetensors saved\n",
           (long long)at);
    assert_true(at > 0 && at < 400);
    char grep[400];
    snprintf(grep, sizeof grep, "grep -q 'interrupted' %s", log);
    assert_int_equal(system(grep), 0);
}

static void test_killed_rank_then_resume(void **state) {
    (void)state;
    NEED_MPI();
    RunCfg r;
    run_cfg_default(&r);
    r.steps = 60;
    r.eval_every = 4;
    r.accum = 1;
    char out[256], ref[256];
    snprintf(out, sizeof out, "%s/kill", g_dir);
    snprintf(ref, sizeof ref, "%s/kill_ref", g_dir);
    int killed = 0;
    int rc = run_and_signal(2, out, "steps=60 eval=4 accum=1", SIGKILL, 1, &killed);
    char log[300];
    snprintf(log, sizeof log, "%s.log", out);
    print_file(log, "  killed-run| ");
    assert_true(killed);
    printf("mpirun exit status after SIGKILL of rank 1: %d\n", rc);
    assert_int_not_equal(rc, 0);
    char grep[400];
    snprintf(grep, sizeof grep, "grep -q -i -E 'rank 1|signal 9|killed|did another rank die' %s", log);
    assert_int_equal(system(grep), 0); /* the failure names the rank / the signal */
    int64_t at = ckpt_step(out);
    printf("last.safetensors of the killed run is at step %lld of %lld\n", (long long)at, (long long)r.steps);
    assert_true(at > 0 && at < r.steps);

    /* resume with 3 ranks (any N works), to the end */
    rc = mpirun_worker(3, out, "steps=60 eval=4 accum=1 resume=1");
    print_file(log, "  resumed-np3| ");
    assert_int_equal(rc, 0);
    assert_int_equal(ckpt_step(out), r.steps);
    /* the uninterrupted one-process run */
    MilesTrainResult res;
    MilesModel *mref = NULL;
    OK(train_once(g_prepared, ref, &r, NULL, &res, &mref));
    MilesModel *mres = load_last(out);
    size_t same, n;
    double mx = max_param_diff(mref, mres, &same, &n);
    size_t over = count_param_diff_over(mref, mres, TOL);
    printf("killed at <= step %lld, resumed with 3 ranks: vs uninterrupted 1 process max |diff| %.3g (%zu of %zu bitwise, "
           "%zu over %.0e; bounds: max <= %.1e = head_lr / 4, <= 0.1%% over %.0e)\n",
           (long long)at, mx, same, n, over, TOL, KILL_MAX_TOL, TOL);
    /* 60 steps (not 24) of reordered sums: AdamW divides each moment by its
     * own sqrt(v), so a parameter whose gradient is as small as the
     * reordering noise moves by up to its lr per step either way, and that
     * is where the largest differences sit.  A broken resume (optimizer
     * state, schedule, data order, RNG) moves most parameters instead: so
     * the bound is on how many differ by more than TOL, plus a cap. */
    assert_true(mx <= KILL_MAX_TOL);
    assert_true((double)over <= 1e-3 * (double)n);
    miles_model_free(mref);
    miles_model_free(mres);
}

static void test_miles_train_tool(void **state) {
    (void)state;
    NEED_MPI();
    char tool[4096];
    test_tool(tool, sizeof tool, "miles-train");
    char out[256], cmd[8192];
    snprintf(out, sizeof out, "%s/tool", g_dir);
    snprintf(cmd, sizeof cmd,
             "timeout 600 %s -np 2 %s --data %s --init random --size tiny --vocab %s --batch-size 32 --max-len 32 "
             "--epochs 1 --max-steps 12 --eval-every 6 --warmup 2 --lr 1e-3 --out %s --quiet > %s.log 2>&1",
             g_mpirun, tool, g_prepared, VOCAB_PATH, out, out);
    int st = system(cmd);
    char log[300], res[300];
    snprintf(log, sizeof log, "%s.log", out);
    print_file(log, "  miles-train| ");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(res, sizeof res, "%s/train_result.json", out);
    snprintf(cmd, sizeof cmd, "grep -q '\"ranks\":[[:space:]]*2' %s && grep -q '\"steps\":[[:space:]]*12' %s", res, res);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ckpt_step(out), 12);
    printf("mpirun -np 2 miles-train: 12 steps, train_result.json says 2 ranks\n");
}

int main(int argc, char **argv) {
    miles_gemm_use_blas(0); /* the pinned 2-rank weights are the own GEMM's bits, in the workers too */
    if (argc > 1 && !strcmp(argv[1], "--worker")) return worker_main(argc, argv);
    if (argc == 3 && !strcmp(argv[1], "--allreduce-bench")) { /* mpirun -np N test_dist --allreduce-bench FLOATS */
        MilesDist *d = NULL;
        if (JOIN_JOB(&d, &argc, &argv) != MILES_OK) return 1;
        size_t n = (size_t)atoll(argv[2]);
        float *buf = calloc(n ? n : 1, sizeof(float));
        double best = 1e30;
        for (int rep = 0; rep < 6 && buf; rep++) {
            miles_dist_barrier(d);
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            if (miles_dist_allreduce_f32(d, buf, n) != MILES_OK) return 1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double dt = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
            if (rep && dt < best) best = dt; /* the first is warm-up */
        }
        int N = miles_dist_size(d);
        if (miles_dist_rank(d) == 0)
            printf("allreduce of %zu floats (%.1f MB) over %d ranks: %.2f ms, bus bandwidth %.2f GB/s\n", n,
                   n * 4e-6, N, best * 1e3, 2.0 * (N - 1) / N * n * 4 / best / 1e9);
        free(buf);
        miles_dist_finalize(d);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--prepare")) { /* test_dist --prepare DIR FILE: the test data, for experiments */
        MilesPrepareReport rep;
        return prepare_data(argv[2], argv[3], &rep) ? 1 : 0;
    }
    if (!realpath("/proc/self/exe", g_self)) snprintf(g_self, sizeof g_self, "%s", argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_rank_api),
        cmocka_unit_test(test_two_ranks_match_one_process),
        cmocka_unit_test(test_stop_on_one_rank_stops_all),
        cmocka_unit_test(test_killed_rank_then_resume),
        cmocka_unit_test(test_miles_train_tool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
