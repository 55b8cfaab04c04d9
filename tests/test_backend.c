/*
 * test_backend.c — device and precision names (miles.h "devices and
 * precisions"), the refusal of combinations this build cannot run (one
 * line naming why), and checkpoints through the backend interface
 * (backend_internal.h) bit for bit.  Under `make backend-sim-test`
 * MILES_CUDA_BACKEND names the CUDA backend built on the SIMT emulator, and
 * the round trip also goes through it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "gemm_lowp.h"
#include "train_internal.h"
#include "helpers.h"

static void test_precision_names(void **state) {
    (void)state;
    const char *names[] = {"fp32", "tf32", "fp16", "bf16", "int8"};
    for (int i = 0; i < 5; i++) {
        MilesPrecision p = (MilesPrecision)-1;
        OK(miles_precision_parse(names[i], &p));
        assert_int_equal(p, i);
        assert_string_equal(miles_precision_name(p), names[i]);
    }
    MilesPrecision p = MILES_PRECISION_BF16;
    assert_int_equal(miles_precision_parse("FP32", &p), MILES_EINVAL);
    assert_int_equal(miles_precision_parse("", &p), MILES_EINVAL);
    assert_int_equal(miles_precision_parse(NULL, &p), MILES_EINVAL);
    assert_int_equal(p, MILES_PRECISION_BF16); /* untouched on error */
    assert_string_equal(miles_precision_name((MilesPrecision)7), "?");
}

static void test_device_names(void **state) {
    (void)state;
    int cuda = -1, idx = -1;
    OK(miles_device_parse(NULL, &cuda, &idx));
    assert_true(cuda == 0 && idx == 0);
    OK(miles_device_parse("cpu", &cuda, &idx));
    assert_true(cuda == 0);
    OK(miles_device_parse("cuda", &cuda, &idx));
    assert_true(cuda == 1 && idx == 0);
    OK(miles_device_parse("cuda:3", &cuda, &idx));
    assert_true(cuda == 1 && idx == 3);
    const char *bad[] = {"gpu", "cuda:", "cuda:x", "cuda:1x", "cuda:-1", "cuda:99999", "CPU", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(miles_device_parse(bad[i], &cuda, &idx), MILES_EINVAL);
        printf("  rejected '%s': %s\n", bad[i], miles_last_error());
    }
}

/* What the CPU accepts: fp32 everywhere; bf16/int8 for inference only, where
 * the CPU has the instructions (model_infer.c, gemm_lowp.h).  The predictor
 * refuses before it reads the checkpoint. */
static void test_refusals(void **state) {
    (void)state;
    OK(miles_backend_check(NULL, MILES_PRECISION_FP32, 1));
    OK(miles_backend_check("cpu", MILES_PRECISION_FP32, 0));
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_FP16, 1), MILES_EUNSUPPORTED);
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_FP16, 0), MILES_EUNSUPPORTED);
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_BF16, 1), MILES_EUNSUPPORTED);
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_INT8, 1), MILES_EUNSUPPORTED);
    const MilesPrecision lowp[2] = {MILES_PRECISION_BF16, MILES_PRECISION_INT8};
    for (int k = 0; k < 2; k++) {
        int have = miles_gemm_lowp_available(k ? MILES_GEMM_INT8 : MILES_GEMM_BF16, NULL);
        int s = miles_backend_check("cpu", lowp[k], 0);
        printf("  %s inference on this CPU: %s\n", miles_precision_name(lowp[k]), s ? miles_last_error() : "accepted");
        assert_int_equal(s, have ? MILES_OK : MILES_EUNSUPPORTED);
    }
    assert_int_equal(miles_backend_check("cpu", (MilesPrecision)9, 0), MILES_EINVAL);
    MilesPredictorOptions o;
    miles_predictor_options_default(&o);
    assert_null(o.device);
    assert_int_equal(o.precision, MILES_PRECISION_FP32);
    o.device = "cuda:1";
    MilesPredictor *p = (MilesPredictor *)1;
    assert_int_equal(miles_predictor_open(&p, "/nonexistent/best.safetensors", &o), MILES_EUNSUPPORTED);
    assert_null(p);
    printf("  cuda: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "cuda:1"));
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    assert_null(tc.device);
    assert_int_equal(tc.precision, MILES_PRECISION_FP32);
}

/* A refusal is exactly one line that names `want`. */
static void assert_one_line(int s, const char *want) {
    const char *e = miles_last_error();
    printf("  -> %s\n", e);
    assert_int_equal(s, MILES_EUNSUPPORTED);
    assert_non_null(strstr(e, want));
    assert_null(strchr(e, '\n'));
}

/* "library not found" / "not a backend" from the loader, whatever the
 * machine; with the emulated backend (MILES_CUDA_BACKEND set by
 * backend-sim-test): "no CUDA device N" and "no CUDA device" (SIMT_DEVICES=0
 * is the shell test's business). */
static void test_cuda_refusal_lines(void **state) {
    (void)state;
    const char *orig = getenv("MILES_CUDA_BACKEND");
    char keep[4096] = "";
    if (orig) snprintf(keep, sizeof keep, "%s", orig);
    setenv("MILES_CUDA_BACKEND", "/nonexistent/libmiles_cuda.so", 1);
    assert_one_line(miles_device_check("cuda", MILES_PRECISION_FP32, 1), "library not found");
    MilesPredictorOptions o;
    miles_predictor_options_default(&o);
    o.device = "cuda";
    MilesPredictor *p = NULL;
    assert_one_line(miles_predictor_open(&p, "/nonexistent/best.safetensors", &o), "library not found");
    /* a shared object that is not a backend: the C library */
    setenv("MILES_CUDA_BACKEND", "libc.so.6", 1);
    assert_one_line(miles_device_check("cuda:0", MILES_PRECISION_FP16, 0), "not a Miles CUDA backend");
    if (keep[0]) {
        setenv("MILES_CUDA_BACKEND", keep, 1);
        int s = miles_device_check("cuda", MILES_PRECISION_FP32, 1);
        printf("  emulated backend %s: %s\n", keep, s == MILES_OK ? "usable" : miles_last_error());
        if (s == MILES_OK) {
            assert_one_line(miles_device_check("cuda:7", MILES_PRECISION_FP32, 1), "no CUDA device 7");
            assert_one_line(miles_device_check("cuda", MILES_PRECISION_INT8, 0), "CPU inference precision");
        }
    } else unsetenv("MILES_CUDA_BACKEND");
}

static int file_equal(const char *a, const char *b) {
    char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    OK(miles_read_file(a, &da, &na));
    OK(miles_read_file(b, &db, &nb));
    int eq = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return eq;
}

/* A checkpoint (parameters, AdamW moments, state) loaded into a backend and
 * read back into a fresh host model writes the same bytes: on the CPU, and on
 * the CUDA backend when one is usable here. */
static void test_checkpoint_roundtrip(void **state) {
    (void)state;
    char dir[512], a[600], b[600];
    assert_int_equal(test_mkdtemp(dir, sizeof dir, "backend"), 0);
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "tiny"));
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, 7, 0.02f));
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
    MilesAdamW *opt = NULL;
    OK(miles_adamw_build(&opt, m, &oc));
    size_t n = miles_model_num_params(m);
    uint64_t x = 99;
    for (size_t i = 0; i < n; i++) { /* moments nobody would get by accident */
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        miles_adamw_m(opt)[i] = (float)((int64_t)(x >> 11) % 100000) * 1e-9f;
        miles_adamw_v(opt)[i] = (float)((x >> 40) % 100000) * 1e-12f;
    }
    miles_adamw_set_steps(opt, 17);
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    MilesTrainState st = {0};
    st.step = 17;
    st.threshold = 0.375;
    OK(miles_ckpt_save(a, m, opt, &st, &tc, NULL, NULL));
    const char *devices[2] = {"cpu", getenv("MILES_CUDA_BACKEND") ? "cuda" : NULL};
    for (int d = 0; d < 2 && devices[d]; d++) {
        if (miles_device_check(devices[d], MILES_PRECISION_FP32, 1) != MILES_OK) {
            printf("  %s: %s (round trip not run)\n", devices[d], miles_last_error());
            fail(); /* MILES_CUDA_BACKEND was set to a backend that should work */
        }
        MilesModel *m2 = NULL, *m3 = NULL;
        MilesAdamW *o2 = NULL, *o3 = NULL;
        OK(miles_model_build(&m2, &cfg));
        OK(miles_model_build(&m3, &cfg));
        OK(miles_adamw_build(&o2, m2, &oc));
        OK(miles_adamw_build(&o3, m3, &oc));
        MilesTrainState st2 = {0};
        OK(miles_ckpt_load_state(a, m2, o2, &st2));
        MilesBackend be;
        OK(miles_backend_open(&be, devices[d], MILES_PRECISION_FP32, m2, &oc));
        OK(be.ops->write_params(be.state, m2));
        OK(be.ops->write_optim(be.state, miles_adamw_m(o2), miles_adamw_v(o2), miles_adamw_steps(o2)));
        int64_t t = 0;
        OK(be.ops->read_params(be.state, m3));
        OK(be.ops->read_optim(be.state, miles_adamw_m(o3), miles_adamw_v(o3), &t));
        miles_adamw_set_steps(o3, t);
        miles_backend_close(&be);
        snprintf(b, sizeof b, "%s/b_%s.safetensors", dir, devices[d]);
        OK(miles_ckpt_save(b, m3, o3, &st2, &tc, NULL, NULL));
        int eq = file_equal(a, b);
        printf("  %s: checkpoint through the backend %s (%zu parameters, step %lld)\n", devices[d],
               eq ? "bit-identical" : "DIFFERS", n, (long long)t);
        assert_true(eq);
        assert_int_equal(t, 17);
        miles_adamw_free(o2);
        miles_adamw_free(o3);
        miles_model_free(m2);
        miles_model_free(m3);
    }
    miles_adamw_free(opt);
    miles_model_free(m);
    test_rm_rf(dir);
}

/* ---------------------------------------------------------------- log intervals
 * A fixed-shape synthetic training set (every row T tokens: no arena growth
 * after the first batch, so a host sync in a step cannot hide behind one). */
enum { SYN_N = 192, SYN_T = 12 };
typedef struct SynData {
    int32_t ids[SYN_N * SYN_T], mask[SYN_N * SYN_T], lab[SYN_N];
    float feat[SYN_N * MILES_NUM_FEATURES], vel[SYN_N];
    MilesDataset d;
} SynData;

static void syn_data(SynData *s, int vocab) {
    uint64_t x = 12345;
    for (int i = 0; i < SYN_N * SYN_T; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        s->ids[i] = 1 + (int)((x >> 33) % (uint64_t)(vocab - 1));
        s->mask[i] = 1;
    }
    for (int i = 0; i < SYN_N * MILES_NUM_FEATURES; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        s->feat[i] = (float)((int)((x >> 40) % 2001) - 1000) * 1e-3f;
    }
    for (int i = 0; i < SYN_N; i++) {
        s->lab[i] = (i * 7 + 3) % 5 < 2;
        s->vel[i] = (float)((i * 37) % 100) / 100.0f;
    }
    memset(&s->d, 0, sizeof s->d);
    s->d.n = SYN_N;
    s->d.max_len = SYN_T;
    s->d.input_ids = s->ids;
    s->d.attention_mask = s->mask;
    s->d.features = s->feat;
    s->d.labels = s->lab;
    s->d.velocity = s->vel;
}

/* What a run's STEP events (and the backend's host syncs at each) said. */
typedef struct LogRec {
    int n;
    int64_t step[64];
    double loss[64], norm[64], scale[64];
    int64_t skipped[64];
    long syncs[64];                 /* host syncs at the event (-1: not counted) */
    int other_between[64];          /* another event (checkpoint, eval) since the previous STEP */
    int other;
    const MilesBackendOps *cuda;    /* the loaded CUDA table, for host_syncs */
} LogRec;

static int log_cb(const MilesTrainEvent *e, void *arg) {
    LogRec *r = arg;
    if (e->type != MILES_EVENT_STEP) {
        if (e->type != MILES_EVENT_START) r->other = 1;
        return MILES_OK;
    }
    if (r->n >= 64) return MILES_OK;
    int i = r->n++;
    r->step[i] = e->step;
    r->loss[i] = e->loss;
    r->norm[i] = e->grad_norm;
    r->scale[i] = e->loss_scale;
    r->skipped[i] = e->skipped_steps;
    r->syncs[i] = r->cuda && r->cuda->host_syncs ? r->cuda->host_syncs(NULL) : -1;
    r->other_between[i] = r->other;
    r->other = 0;
    return MILES_OK;
}

/* tiny with hidden 60 (not a multiple of 8): the CUDA backend runs such a
 * model on its fp32-activation path, fp16 included (the 16-bit path needs
 * hidden % 8 == 0), whose fp16 step must not sync either */
static int g_odd_hidden;
static void tiny_config(MilesConfig *cfg) {
    OK(miles_config_preset(cfg, "miles", "tiny"));
    if (g_odd_hidden) cfg->hidden_size = 60; /* 4 heads of 15 */
}

/* Train `steps` steps of 2 micro-batches on `device`; the trained parameters
 * into *params (malloc'd). */
static void train_run(const char *device, MilesPrecision prec, int log_every, int steps, LogRec *rec,
                       float **params, size_t *np) {
    MilesConfig cfg;
    tiny_config(&cfg);
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, 11, 0.02f));
    static SynData sd;
    syn_data(&sd, cfg.vocab_size);
    char dir[512];
    assert_int_equal(test_mkdtemp(dir, sizeof dir, "loglvl"), 0);
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    tc.batch_size = 8;
    tc.grad_accum = 2;
    tc.max_len = SYN_T;
    tc.epochs = 1;
    tc.lr = 1e-3f;
    tc.warmup_steps = 2;
    tc.max_steps = steps;
    tc.out_dir = dir;
    tc.device = device;
    tc.precision = prec;
    tc.log_every = log_every;
    tc.callback = log_cb;
    tc.callback_arg = rec;
    MilesTrainResult res;
    int s = miles_train_datasets(m, &sd.d, NULL, NULL, &tc, &res);
    if (s != MILES_OK) printf("  train on %s: %s\n", device, miles_last_error());
    OK(s);
    assert_int_equal(res.steps, steps);
    *np = miles_model_num_params(m);
    *params = malloc(sizeof(float) * *np);
    assert_non_null(*params);
    size_t o = 0;
    for (int i = 0; i < miles_model_num_tensors(m); i++) {
        MilesTensorInfo ti;
        OK(miles_model_tensor(m, i, &ti));
        assert_true(o + ti.numel <= *np);
        memcpy(*params + o, ti.data, sizeof(float) * ti.numel);
        o += ti.numel;
    }
    assert_int_equal(o, *np);
    miles_model_free(m);
    test_rm_rf(dir);
}

/* Events every log_every steps (and at the end) carry the mean loss of their
 * steps and the last step's norm; the training itself is the same bits
 * whatever the interval.  Against the every-step run of the same device. */
static void check_intervals(const char *device, MilesPrecision prec, const MilesBackendOps *cuda) {
    const int steps = 11, every = 4;
    LogRec a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.cuda = b.cuda = cuda;
    float *pa = NULL, *pb = NULL;
    size_t na = 0, nb = 0;
    train_run(device, prec, 1, steps, &a, &pa, &na);
    train_run(device, prec, every, steps, &b, &pb, &nb);
    assert_int_equal(a.n, steps);
    assert_int_equal(b.n, (steps + every - 1) / every); /* 4, 8, 11 */
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, sizeof(float) * na); /* same trajectory, bit for bit */
    double maxrel = 0;
    for (int i = 0; i < b.n; i++) {
        int64_t hi = b.step[i], lo = i ? b.step[i - 1] + 1 : 1;
        double sum = 0;
        for (int64_t k = lo; k <= hi; k++) sum += a.loss[k - 1];
        double want = sum / (double)(hi - lo + 1);
        double rel = fabs(b.loss[i] - want) / fabs(want);
        maxrel = test_max_err(maxrel, rel);
        assert_true(isfinite(b.loss[i]));
        assert_true(b.norm[i] == a.norm[hi - 1]);   /* the last step's norm, same bits */
        assert_true(b.scale[i] == a.scale[hi - 1]);
        assert_int_equal(b.skipped[i], a.skipped[hi - 1]);
    }
    printf("  %s %s: %d events every %d of %d steps, mean loss max rel error %.2e vs every step "
           "(tolerance 1e-12), parameters bit-identical; loss scale %g, %lld skipped\n",
           device, miles_precision_name(prec), b.n, every, steps, maxrel, b.scale[b.n - 1],
           (long long)b.skipped[b.n - 1]);
    assert_true(maxrel <= 1e-12);
    if (cuda && cuda->host_syncs && cuda->host_syncs(NULL) >= 0) {
        /* between two STEP events with nothing else in between: the one read of
         * the statistics at the event, none in the steps */
        for (int i = 1; i < b.n; i++) {
            if (b.other_between[i]) continue;
            long d = b.syncs[i] - b.syncs[i - 1];
            const char *last = "";
            cuda->host_syncs(&last);
            printf("  %s %s: host syncs from step %lld to step %lld: %ld (%d steps x 2 micro-batches + the read)\n",
                   device, miles_precision_name(prec), (long long)b.step[i - 1], (long long)b.step[i], d,
                   (int)(b.step[i] - b.step[i - 1]));
            assert_int_equal(d, 1);
        }
    }
    free(pa);
    free(pb);
}

static void test_log_intervals_cpu(void **state) {
    (void)state;
    check_intervals("cpu", MILES_PRECISION_FP32, NULL);
}

/* The CUDA backend (the SIMT emulator's under backend-sim-test): a step
 * enqueues only; loss, norm, skip count and scale come back in one sync. */
static void test_no_host_sync_in_step(void **state) {
    (void)state;
    if (!getenv("MILES_CUDA_BACKEND")) {
        printf("  no MILES_CUDA_BACKEND: runs under make backend-sim-test\n");
        return;
    }
    const MilesBackendOps *ops = NULL;
    int idx = 0;
    OK(miles_backend_find("cuda", MILES_PRECISION_FP32, 1, &ops, &idx));
    assert_non_null(ops->host_syncs);
    /* the emulator's backend counts (a real CUDA build: -1, counts not checked) */
    const int counted = ops->host_syncs(NULL) >= 0;
    if (strstr(getenv("MILES_CUDA_BACKEND"), "_sim")) assert_true(counted);
    if (!counted) printf("  real CUDA backend: host syncs are not counted (the SIMT emulator counts them)\n");
    /* the 4th: fp16 on the fp32-activation path (hidden 60): the skip
     * decision and the AdamW step counter live on the device there too */
    const MilesPrecision precs[4] = {MILES_PRECISION_FP32, MILES_PRECISION_FP16, MILES_PRECISION_BF16,
                                     MILES_PRECISION_FP16};
    for (int k = 0; k < 4; k++) {
        g_odd_hidden = k == 3;
        /* the backend's operations as the trainer calls them, step by step */
        MilesConfig cfg;
        tiny_config(&cfg);
        MilesModel *m = NULL;
        OK(miles_model_build(&m, &cfg));
        OK(miles_model_init_random(m, 3, 0.02f));
        static SynData sd;
        syn_data(&sd, cfg.vocab_size);
        MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
        MilesBackend be;
        OK(miles_backend_open(&be, "cuda", precs[k], m, &oc));
        MilesLossConfig lc = {0.95f, 0.05f, {1.0f, 1.5f}};
        /* fp16: a planted scale far too large, so that steps overflow and are
         * skipped on the device (each skip halves the scale) */
        const float planted = 1e30f;
        if (precs[k] == MILES_PRECISION_FP16) OK(be.ops->write_scaler(be.state, planted, 0));
        long before = 0;
        for (int step = 0; step < 6; step++) {
            if (step == 2) before = ops->host_syncs(NULL); /* first steps allocate and build tables */
            OK(be.ops->zero_grad(be.state));
            for (int micro = 0; micro < 2; micro++) {
                MilesBatch b = {8, SYN_T, sd.ids + (size_t)(step * 2 + micro) * 8 * SYN_T, NULL,
                                sd.mask + (size_t)(step * 2 + micro) * 8 * SYN_T,
                                sd.feat + (size_t)(step * 2 + micro) * 8 * MILES_NUM_FEATURES,
                                sd.lab + (step * 2 + micro) * 8, sd.vel + (step * 2 + micro) * 8};
                OK(be.ops->set_loss(be.state, &lc));
                be.ops->set_dropout_key(be.state, 5, (uint64_t)(step * 2 + micro));
                OK(be.ops->forward(be.state, &b, 1, NULL, NULL, NULL));
                OK(be.ops->add_loss(be.state, 2.0f));
                OK(be.ops->backward(be.state, 0.5f));
            }
            OK(be.ops->clip(be.state, 1.0f, NULL));
            OK(be.ops->adamw_step(be.state, 1e-3f, NULL));
        }
        const char *last = "";
        long in_steps = ops->host_syncs(&last) - before;
        MilesBackendStats st;
        OK(be.ops->read_stats(be.state, &st));
        long read = ops->host_syncs(NULL) - before - in_steps;
        printf("  cuda %s%s: %ld host syncs in 4 steps of 2 micro-batches%s%s, %ld to read: loss sum %.6f, "
               "norm %.4g, scale %g, skipped %lld, steps %lld\n",
               miles_precision_name(precs[k]), g_odd_hidden ? " (hidden 60: the fp32-activation path)" : "", in_steps, in_steps ? "; last " : "", in_steps ? last : "", read,
               st.loss_sum, st.grad_norm, st.loss_scale, (long long)st.skipped, (long long)st.steps);
        if (counted) {
            assert_int_equal(in_steps, 0);
            assert_int_equal(read, 1);
        }
        assert_true(isfinite(st.loss_sum) && st.loss_sum > 0);
        assert_int_equal(st.steps + st.skipped, 6);
        if (precs[k] == MILES_PRECISION_FP16) { /* every skip was counted on the device */
            assert_true(st.skipped >= 1);
            assert_true(st.loss_scale == ldexpf(planted, -(int)st.skipped));
        } else {
            assert_true(isfinite(st.grad_norm) && st.grad_norm > 0);
            assert_int_equal(st.skipped, 0);
            assert_true(st.loss_scale == 1.0f);
        }
        /* the sum restarts after a read */
        MilesBackendStats st2;
        OK(be.ops->read_stats(be.state, &st2));
        assert_true(st2.loss_sum == 0.0);
        miles_backend_close(&be);
        miles_model_free(m);
        /* and through the trainer: the same bits whatever the log interval,
         * one sync per STEP event */
        check_intervals("cuda", precs[k], ops);
    }
    g_odd_hidden = 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precision_names),
        cmocka_unit_test(test_device_names),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cuda_refusal_lines),
        cmocka_unit_test(test_checkpoint_roundtrip),
        cmocka_unit_test(test_log_intervals_cpu),
        cmocka_unit_test(test_no_host_sync_in_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
