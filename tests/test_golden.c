/*
 * test_golden.c — the model against PyTorch / HF transformers.
 *
 * Fixtures tests/fixtures/golden_<preset>_<pooling>.safetensors come from
 * tests/gen_golden.py (BERT with the tiny preset's structure at half width:
 * 2 layers, H 32, 4 heads, I 64, V 100, P 32, sizes read from meta.bert;
 * both presets with reduced head widths, all three poolings; B 4, T 16 with
 * padding and a second segment).  For each fixture:
 *   forward   logits, velocity, loss, pooled vector, last hidden state:
 *             max abs error <= 1e-5, in two modes: training=1 with every
 *             dropout probability 0, and training=0 with the preset dropouts;
 *   backward  every parameter gradient: max abs error / max |reference grad| of
 *             that tensor <= 1e-4 (denominator floored at 1e-6 x the largest
 *             gradient of the model: attention key biases have an exactly zero
 *             gradient, softmax being shift-invariant, so both sides are noise);
 *   AdamW     3 steps (clip 0.5, cosine warmup schedule): per-step loss, grad
 *             norm and lr, then every weight: max abs error <= 1e-6, except
 *             elements whose gradient is nonzero but below 1e-3 x their tensor's max |grad|:
 *             AdamW divides by sqrt(v), so their step is decided by fp32 noise
 *             (PyTorch fp32 vs fp64 differ there too); they are bounded by
 *             3 x sum(lr) instead and counted in the output;
 *   schedule  miles_lr_lambda against the transformers lambdas, |err| <= 1e-6.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "miles.h"
#include "helpers.h"
#include "golden_config.h"

#define TOL_FWD 1e-5
#define TOL_GRAD_REL 1e-4
#define TOL_AFTER3 1e-6
#define TOL_SCHED 1e-6

static const char *const FIXTURES[] = {GOLDEN_FIXTURES};

/* ------------------------------------------------------------ fixture io */

static double max_abs(const float *a, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = test_max_err(m, fabs(a[i]));
    return m;
}

/* ------------------------------------------------------------ the model */

typedef struct {
    MilesSafetensors *st;
    MilesConfig cfg;
    MilesBatch batch;
    int32_t *ids, *tt, *mask, *labels;
    float *feats, *vel;
    MilesLossConfig loss;
} Golden;

static void build_config(Golden *g, int zero_dropout) {
    size_t n;
    int32_t *arch = test_st_i32(g->st, "meta.arch", NULL, NULL, &n);
    assert_int_equal(n, 12);
    /* the BERT sizes of the fixture (the tiny structure at reduced width) */
    int32_t *bert = test_st_i32(g->st, "meta.bert", NULL, NULL, &n);
    assert_int_equal(n, 7);
    MilesConfig c;
    OK(golden_config(&c, arch, bert, zero_dropout));
    free(bert);
    /* the fixture keeps the preset's structure, with smaller widths */
    assert_int_equal(c.n_numeric, arch[2]);
    assert_int_equal(c.n_fusion, arch[3]);
    assert_int_equal(c.velocity_activation, arch[1]);
    g->cfg = c;
    free(arch);
}

static void load_batch(Golden *g) {
    size_t n, nb;
    g->ids = test_st_i32(g->st, "input_ids", NULL, NULL, &n);
    g->tt = test_st_i32(g->st, "token_type_ids", NULL, NULL, NULL);
    g->mask = test_st_i32(g->st, "attention_mask", NULL, NULL, NULL);
    g->labels = test_st_i32(g->st, "labels", NULL, NULL, &nb);
    g->feats = test_st_f32(g->st, "features", NULL, NULL, NULL);
    g->vel = test_st_f32(g->st, "velocity_target", NULL, NULL, NULL);
    memset(&g->batch, 0, sizeof g->batch);
    g->batch.B = (int)nb;
    g->batch.T = (int)(n / nb);
    g->batch.input_ids = g->ids;
    g->batch.token_type_ids = g->tt;
    g->batch.attention_mask = g->mask;
    g->batch.features = g->feats;
    g->batch.labels = g->labels;
    g->batch.velocity = g->vel;
    float *cw = test_st_f32(g->st, "class_weight", NULL, NULL, NULL);
    float *lw = test_st_f32(g->st, "loss_weights", NULL, NULL, NULL);
    g->loss.class_weight[0] = cw[0];
    g->loss.class_weight[1] = cw[1];
    g->loss.w_cls = lw[0];
    g->loss.w_reg = lw[1];
    free(cw);
    free(lw);
}

static void free_golden(Golden *g) {
    free(g->ids);
    free(g->tt);
    free(g->mask);
    free(g->labels);
    free(g->feats);
    free(g->vel);
    miles_safetensors_close(g->st);
}

/* Build the model and copy the fixture's initial weights in by checkpoint name. */
static MilesModel *build_model(Golden *g) {
    MilesModel *m = NULL;
    int s = miles_model_build(&m, &g->cfg);
    if (s != MILES_OK) fail_msg("build: %s", miles_last_error());
    int nt = miles_model_num_tensors(m);
    for (int t = 0; t < nt; t++) {
        MilesTensorInfo ti;
        assert_int_equal(miles_model_tensor(m, t, &ti), MILES_OK);
        int i = miles_safetensors_find(g->st, ti.name);
        if (i < 0) fail_msg("fixture has no weight %s", ti.name);
        int ndim;
        int64_t shape[8];
        size_t numel;
        assert_int_equal(miles_safetensors_info(g->st, i, NULL, &ndim, shape, &numel), MILES_OK);
        assert_int_equal(ndim, ti.ndim);
        for (int d = 0; d < ndim; d++) assert_int_equal(shape[d], ti.shape[d]);
        assert_int_equal(miles_safetensors_read_f32(g->st, i, ti.data, ti.numel), MILES_OK);
        /* and the fixture stores a gradient and an after-3-steps value for it */
        char nm[160];
        snprintf(nm, sizeof nm, "grad.%s", ti.name);
        assert_true(miles_safetensors_find(g->st, nm) >= 0);
        snprintf(nm, sizeof nm, "after3.%s", ti.name);
        assert_true(miles_safetensors_find(g->st, nm) >= 0);
    }
    /* every weight of the reference model exists in ours: count "grad.*" */
    int ngrad = 0;
    for (int i = 0; i < miles_safetensors_count(g->st); i++)
        if (!strncmp(miles_safetensors_name(g->st, i), "grad.", 5)) ngrad++;
    assert_int_equal(ngrad, nt);
    miles_model_set_loss(m, &g->loss);
    miles_model_set_dropout_key(m, 1234, 0);
    return m;
}

static double check_forward(Golden *g, MilesModel *m, int training, const char *label) {
    const MilesBatch *b = &g->batch;
    const int B = b->B, T = b->T, H = g->cfg.hidden_size;
    float logits[64], vel[32], loss = 0.0f;
    int s = miles_model_forward(m, b, training, logits, vel, &loss);
    if (s != MILES_OK) fail_msg("forward: %s", miles_last_error());
    float *rl = test_st_f32(g->st, "out.logits", NULL, NULL, NULL);
    float *rv = test_st_f32(g->st, "out.velocity", NULL, NULL, NULL);
    float *rloss = test_st_f32(g->st, "out.loss", NULL, NULL, NULL);
    float *rp = test_st_f32(g->st, "out.pooled", NULL, NULL, NULL);
    float *rh = test_st_f32(g->st, "out.last_hidden", NULL, NULL, NULL);
    double el = test_max_abs_diff(logits, rl, (size_t)B * 2);
    double ev = test_max_abs_diff(vel, rv, B);
    double eloss = fabs((double)loss - rloss[0]);
    double ep = test_max_abs_diff(miles_model_pooled(m), rp, (size_t)B * H);
    double eh = test_max_abs_diff(miles_model_last_hidden(m), rh, (size_t)B * T * H);
    printf("    forward (%s): max abs err logits %.2e velocity %.2e loss %.2e pooled %.2e hidden %.2e"
           "  (loss %.6f)\n", label, el, ev, eloss, ep, eh, loss);
    double worst = test_max_err(test_max_err(test_max_err(el, ev), test_max_err(eloss, ep)), eh);
    free(rl);
    free(rv);
    free(rloss);
    free(rp);
    free(rh);
    if (!(worst <= TOL_FWD)) fail_msg("forward (%s) error %.3e > %.0e", label, worst, TOL_FWD);
    return worst;
}

static void check_grads(Golden *g, MilesModel *m) {
    miles_model_zero_grad(m);
    int s = miles_model_backward(m, 1.0f);
    if (s != MILES_OK) fail_msg("backward: %s", miles_last_error());
    int nt = miles_model_num_tensors(m);
    double gmax = 0.0;
    for (int t = 0; t < nt; t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        char nm[160];
        snprintf(nm, sizeof nm, "grad.%s", ti.name);
        float *r = test_st_f32(g->st, nm, NULL, NULL, NULL);
        gmax = test_max_err(gmax, max_abs(r, ti.numel));
        free(r);
    }
    double worst = 0.0;
    const char *worst_name = "";
    for (int t = 0; t < nt; t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        char nm[160];
        snprintf(nm, sizeof nm, "grad.%s", ti.name);
        float *r = test_st_f32(g->st, nm, NULL, NULL, NULL);
        double den = fmax(max_abs(r, ti.numel), 1e-6 * gmax);
        double e = test_max_abs_diff(ti.grad, r, ti.numel) / den;
        if (!(e <= worst)) {
            worst = e;
            worst_name = ti.name;
        }
        if (!(e <= TOL_GRAD_REL))
            fail_msg("gradient %s: relative error %.3e > %.0e", ti.name, e, TOL_GRAD_REL);
        free(r);
    }
    printf("    gradients: %d tensors, max relative err %.2e (%s)\n", nt, worst, worst_name);
}

static void check_adamw(Golden *g, MilesModel *m) {
    size_t n;
    float *opt = test_st_f32(g->st, "meta.optim", NULL, NULL, &n);
    assert_int_equal(n, 8);
    float *norms = test_st_f32(g->st, "meta.grad_norms", NULL, NULL, NULL);
    float *lrs = test_st_f32(g->st, "meta.lrs", NULL, NULL, NULL);
    float *losses = test_st_f32(g->st, "meta.losses", NULL, NULL, NULL);
    MilesAdamWConfig oc = {.lr = opt[0], .beta1 = opt[1], .beta2 = opt[2], .eps = opt[3],
                           .weight_decay = opt[4], .decay_all = 0};
    float max_norm = opt[5];
    int warmup = (int)opt[6], total = (int)opt[7];
    MilesAdamW *o = NULL;
    assert_int_equal(miles_adamw_build(&o, m, &oc), MILES_OK);
    double eloss = 0, enorm = 0, elr = 0;
    int clipped = 0;
    for (int step = 0; step < 3; step++) {
        float loss;
        miles_model_zero_grad(m);
        assert_int_equal(miles_model_forward(m, &g->batch, 1, NULL, NULL, &loss), MILES_OK);
        assert_int_equal(miles_model_backward(m, 1.0f), MILES_OK);
        float norm = miles_clip_grad_norm(m, max_norm);
        clipped += norm > max_norm;
        float lr = (float)(oc.lr * miles_lr_lambda(MILES_SCHED_COSINE, step, warmup, total));
        eloss = test_max_err(eloss, fabs(loss - losses[step]));
        enorm = test_max_err(enorm, fabs(norm - norms[step]) / norms[step]);
        elr = test_max_err(elr, fabs(lr - lrs[step]));
        assert_int_equal(miles_adamw_step(o, lr), MILES_OK);
    }
    assert_int_equal(miles_adamw_steps(o), 3);
    assert_true(clipped >= 1); /* the setup makes clipping happen */
    /* Conditioning: AdamW normalizes each element's gradient (m/sqrt(v)), so an
     * element whose gradient is at the fp32 rounding-noise level of its tensor
     * (0 < |g| < 1e-3 x the tensor's max |g|) gets an O(lr) step of noise-decided
     * size and sign, in PyTorch fp32 as here.  Those elements are only checked
     * against the largest possible AdamW move (3 x the sum of lrs); all others
     * must match to TOL_AFTER3.  Semantics (decay groups, bias correction) are
     * checked exactly on synthetic gradients in test_model.c. */
    double lr_sum = 0.0;
    for (int step = 0; step < 3; step++) lr_sum += lrs[step];
    double worst = 0.0, worst_ill = 0.0, moved = 0.0;
    size_t n_ill = 0, n_all = 0;
    const char *worst_name = "";
    int nt = miles_model_num_tensors(m);
    for (int t = 0; t < nt; t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        char nm[160];
        snprintf(nm, sizeof nm, "after3.%s", ti.name);
        float *r = test_st_f32(g->st, nm, NULL, NULL, NULL);
        float *w0 = test_st_f32(g->st, ti.name, NULL, NULL, NULL);
        snprintf(nm, sizeof nm, "grad.%s", ti.name);
        float *g0 = test_st_f32(g->st, nm, NULL, NULL, NULL);
        double gmax = max_abs(g0, ti.numel);
        double e = 0.0;
        for (size_t i = 0; i < ti.numel; i++) {
            double d = fabs((double)ti.data[i] - r[i]);
            if (g0[i] != 0.0f && fabs(g0[i]) < 1e-3 * gmax) {
                n_ill++;
                if (!(d <= worst_ill)) worst_ill = d;
            } else if (!(d <= e)) {
                e = d;
            }
        }
        n_all += ti.numel;
        moved = test_max_err(moved, test_max_abs_diff(r, w0, ti.numel));
        if (!(e <= worst)) {
            worst = e;
            worst_name = ti.name;
        }
        if (!(e <= TOL_AFTER3))
            fail_msg("after 3 AdamW steps %s: max abs error %.3e > %.0e", ti.name, e, TOL_AFTER3);
        free(r);
        free(w0);
        free(g0);
    }
    if (!(worst_ill <= 3.0 * lr_sum))
        fail_msg("after 3 AdamW steps: an ill-conditioned element moved %.3e > 3 x sum(lr)", worst_ill);
    printf("    AdamW x3: loss err %.2e, grad-norm rel err %.2e, lr err %.2e, %d clipped step(s); "
           "weights max abs err %.2e (%s), max change %.2e; %zu of %zu elements with "
           "0 < |grad| < 1e-3 max (err %.2e <= %.1e)\n",
           eloss, enorm, elr, clipped, worst, worst_name, moved, n_ill, n_all, worst_ill, 3.0 * lr_sum);
    assert_true(eloss <= TOL_FWD);
    assert_true(enorm <= 1e-4);
    assert_true(elr <= 1e-9);
    assert_true(moved > 1e-3); /* the steps are visible */
    miles_adamw_free(o);
    free(opt);
    free(norms);
    free(lrs);
    free(losses);
}

static void run_fixture(const char *path) {
    Golden g;
    memset(&g, 0, sizeof g);
    int s = miles_safetensors_open(&g.st, path);
    if (s != MILES_OK) fail_msg("%s: %s (regenerate with tests/gen_golden.py)", path, miles_last_error());
    int32_t *f64;
    printf("  %s\n", path);
    f64 = test_st_i32(g.st, "meta.fp64_forward", NULL, NULL, NULL);
    int32_t *g64 = test_st_i32(g.st, "meta.fp64_grads", NULL, NULL, NULL);
    int32_t *a64 = test_st_i32(g.st, "meta.fp64_after3", NULL, NULL, NULL);
    printf("    reference values from PyTorch %s/%s/%s (forward/grads/after3)\n",
           f64[0] ? "fp64" : "fp32", g64[0] ? "fp64" : "fp32", a64[0] ? "fp64" : "fp32");
    free(f64);
    free(g64);
    free(a64);
    load_batch(&g);

    /* eval mode with the preset's dropout probabilities: dropout must be off */
    build_config(&g, 0);
    MilesModel *m = build_model(&g);
    check_forward(&g, m, 0, "eval, preset dropouts");
    miles_model_free(m);

    /* train mode with p = 0 everywhere: the code path that trains */
    build_config(&g, 1);
    m = build_model(&g);
    check_forward(&g, m, 1, "train, p=0");
    check_grads(&g, m);
    check_adamw(&g, m);
    miles_model_free(m);
    free_golden(&g);
}

static void test_miles_pooler(void **state) { (void)state; run_fixture(FIXTURES[0]); }
static void test_miles_cls(void **state) { (void)state; run_fixture(FIXTURES[1]); }
static void test_miles_mean(void **state) { (void)state; run_fixture(FIXTURES[2]); }
static void test_seed_pooler(void **state) { (void)state; run_fixture(FIXTURES[3]); }
static void test_seed_cls(void **state) { (void)state; run_fixture(FIXTURES[4]); }
static void test_seed_mean(void **state) { (void)state; run_fixture(FIXTURES[5]); }

/* miles_lr_lambda against transformers' get_{constant,linear,cosine}_schedule_with_warmup */
static void test_lr_lambdas(void **state) {
    (void)state;
    MilesSafetensors *st = NULL;
    assert_int_equal(miles_safetensors_open(&st, FIXTURES[0]), MILES_OK);
    size_t n;
    float *c = test_st_f32(st, "sched.cases", NULL, NULL, &n);
    assert_true(n % 5 == 0 && n >= 5 * 30);
    double worst = 0.0;
    for (size_t r = 0; r < n / 5; r++) {
        int kind = (int)c[5 * r];
        int64_t step = (int64_t)c[5 * r + 1], warmup = (int64_t)c[5 * r + 2], total = (int64_t)c[5 * r + 3];
        double want = c[5 * r + 4];
        double got = miles_lr_lambda(kind, step, warmup, total);
        double e = fabs(got - want);
        worst = test_max_err(worst, e);
        if (!(e <= TOL_SCHED))
            fail_msg("lr lambda kind %d step %lld warmup %lld total %lld: %.9f, transformers %.9f", kind,
                     (long long)step, (long long)warmup, (long long)total, got, want);
    }
    /* the edges (tests/gen_sched_edges.py): one or two steps after warmup,
     * warmup 1, a single step, warmup past total */
    cJSON *ej = test_read_json("tests/fixtures/sched_edges.json");
    assert_non_null(ej);
    const cJSON *row;
    int ne = 0;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(ej, "cases")) {
        double v[5];
        for (int k = 0; k < 5; k++) v[k] = cJSON_GetArrayItem(row, k)->valuedouble;
        double got = miles_lr_lambda((int)v[0], (int64_t)v[1], (int64_t)v[2], (int64_t)v[3]);
        worst = test_max_err(worst, fabs(got - v[4]));
        if (!(fabs(got - v[4]) <= TOL_SCHED))
            fail_msg("lr lambda kind %g step %g warmup %g total %g: %.9f, transformers %.9f", v[0], v[1], v[2], v[3],
                     got, v[4]);
        ne++;
    }
    cJSON_Delete(ej);
    assert_true(ne >= 100);
    printf("  lr lambdas: %zu cases + %d edge cases, max abs err %.2e\n", n / 5, ne, worst);
    free(c);
    miles_safetensors_close(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_miles_pooler), cmocka_unit_test(test_miles_cls),
        cmocka_unit_test(test_miles_mean),   cmocka_unit_test(test_seed_pooler),
        cmocka_unit_test(test_seed_cls),     cmocka_unit_test(test_seed_mean),
        cmocka_unit_test(test_lr_lambdas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
