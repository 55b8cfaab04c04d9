/*
 * test_explain.c — integrated gradients (libmiles/explain.c) and the model
 * hooks it uses (miles_model_forward_embeds, miles_model_backward_from_outputs,
 * miles_model_input_grads).
 *
 *   hooks         forward_embeds with the gathered wte rows == forward (bitwise);
 *                 backward_from_outputs(loss gradient, params) == backward
 *                 (parameter grads within 1e-6 of the tensor's max); input-only
 *                 mode leaves parameter grads untouched and gives the same input
 *                 grads; input grads against central differences (rel <= 1e-2
 *                 on smooth models, 3e-2 with ReLU kinks nearby);
 *                 padding gets exactly zero gradient;
 *   completeness  |sum of attributions - (f(x) - f(x'))| / max|f(x) - f(x')| for
 *                 2..256 steps, both rules, three targets, on two models:
 *                 smooth (every ReLU provably on along the path): Gauss-Legendre
 *                 reaches the fp32 floor (<= 1e-4) by the default 32 nodes and
 *                 gains 100x from 2 to 8 nodes, the trapezoid falls as 1/n^2;
 *                 with ReLU kinks (the integrand jumps): first-order, <= 2e-2 at
 *                 256 steps and 8x better than 4 steps; f(x) and f(x') match
 *                 independent forwards (<= 1e-6);
 *   reference     the batched result against a one-point-at-a-time IG written
 *                 here with the hooks (rel <= 1e-4), and across chunk sizes;
 *   dummy         a feature whose weight column is zero, a feature at its
 *                 baseline, [CLS]/[SEP]/padding: attribution exactly 0;
 *   determinism   two runs are bit-identical, and hash to the pinned constant;
 *   bad input     every refusal names the problem;
 *   words         WordPiece "##" pieces summed into words.
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

#include "miles.h"
#include "helpers.h"


#define CLS 101
#define SEP 102
#define F MILES_NUM_FEATURES

/* ------------------------------------------------------------- helpers */

/* Tiny model (V 128, H 64, 2 layers): BERT weights normal(0, bert_std), the
 * head weights (pooler, numeric, fusion, classifier, regressor) rescaled to a
 * std of scale/sqrt(fan_in) (PyTorch-like), so the outputs are O(1): not
 * saturated, and nonlinear enough that the path integral is not trivial. */
static MilesModel *make_model(const char *preset, int pooling, uint64_t seed, float bert_std, float scale) {
    MilesConfig c;
    OK(miles_config_preset(&c, preset, "tiny"));
    c.pooling = pooling;
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &c));
    OK(miles_model_init_random(m, seed, bert_std));
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        int head = !strncmp(ti.name, "fusion", 6) || !strncmp(ti.name, "numeric", 7) ||
                   !strncmp(ti.name, "classifier", 10) || !strncmp(ti.name, "regressor", 9) ||
                   !strncmp(ti.name, "bert.pooler", 11);
        for (size_t i = 0; i < ti.numel; i++) {
            float u = (float)(((i * 2654435761u + (size_t)t * 97u) % 1000) / 1000.0 - 0.5);
            if (strstr(ti.name, "LayerNorm.weight")) ti.data[i] = 1.0f + 0.2f * u;
            else if (strstr(ti.name, "bias")) ti.data[i] = 0.1f * u;
            else if (head) ti.data[i] *= scale / (bert_std * sqrtf((float)ti.shape[1]));
        }
    }
    return m;
}

/* Make every ReLU provably active for every input whose features lie in
 * [-fb, fb] (pooler pooling: the text vector is tanh, in [-1, 1]): interval
 * bounds layer by layer, bias_o = 1 + sum_j |W_oj| bound_j, so every
 * pre-activation is >= 1.  The model is then smooth (GELU, tanh, softmax,
 * LayerNorm, sigmoid are analytic) and the IG integrand has no kinks.  The
 * classifier/regressor are scaled so the outputs stay O(1). */
static void make_smooth(MilesModel *m, float fb, const MilesBatch *b) {
    const MilesConfig *c = miles_model_config(m);
    assert_int_equal(c->pooling, MILES_POOL_POOLER);
    double bnd[4096];
    int w = c->num_features;
    for (int j = 0; j < w; j++) bnd[j] = fb;
    char name[64];
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? c->n_fusion : c->n_numeric;
        if (pass) { /* concat(text, numeric) */
            memmove(bnd + c->hidden_size, bnd, (size_t)w * sizeof(double));
            for (int j = 0; j < c->hidden_size; j++) bnd[j] = 1.0;
            w += c->hidden_size;
        }
        for (int i = 0; i < n; i++) {
            MilesTensorInfo W, b;
            snprintf(name, sizeof name, "%s.%d.weight", pass ? "fusion" : "numeric_mlp", i);
            OK(miles_model_tensor(m, miles_model_find_tensor(m, name), &W));
            snprintf(name, sizeof name, "%s.%d.bias", pass ? "fusion" : "numeric_mlp", i);
            OK(miles_model_tensor(m, miles_model_find_tensor(m, name), &b));
            int out = (int)W.shape[0], in = (int)W.shape[1];
            assert_int_equal(in, w);
            double nb[4096];
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int j = 0; j < in; j++) s += fabs(W.data[(size_t)o * in + j]) * bnd[j];
                b.data[o] = (float)(1.0 + s);
                nb[o] = 2.0 * (1.0 + s);
            }
            memcpy(bnd, nb, (size_t)out * sizeof(double));
            w = out;
        }
    }
    double mx = 0;
    for (int j = 0; j < w; j++) mx = test_max_err(mx, bnd[j]);
    const char *heads[2] = {"classifier", "regressor"};
    MilesTensorInfo W[2], Bi[2];
    for (int h = 0; h < 2; h++) {
        snprintf(name, sizeof name, "%s.weight", heads[h]);
        OK(miles_model_tensor(m, miles_model_find_tensor(m, name), &W[h]));
        snprintf(name, sizeof name, "%s.bias", heads[h]);
        OK(miles_model_tensor(m, miles_model_find_tensor(m, name), &Bi[h]));
        for (size_t i = 0; i < W[h].numel; i++) W[h].data[i] = (float)(W[h].data[i] * 100.0 / mx);
    }
    /* centre the heads on this batch so P(viral) and the velocity are not saturated */
    float l[16], v[8];
    assert_true(b->B <= 8);
    for (int it = 0; it < 20; it++) { /* a saturated sigmoid is undone 13.8 at a time */
        OK(miles_model_forward(m, b, 0, l, v, NULL));
        double zc = 0, vc = 0;
        for (int r = 0; r < b->B; r++) {
            zc += ((double)l[2 * r + 1] - l[2 * r]) / b->B;
            double vv = fmin(fmax(v[r], 1e-6), 1 - 1e-6);
            vc += (c->velocity_activation == MILES_VEL_SIGMOID ? log(vv / (1 - vv)) : vv) / b->B;
        }
        Bi[0].data[1] -= (float)zc;
        Bi[1].data[0] -= (float)vc;
    }
}

/* Rows: [CLS] w w ... [SEP] [PAD]...; row r has length T - 2*(r % 3) (>= 3);
 * row 1 has a second segment (type 1). */
typedef struct {
    int B, T;
    int32_t ids[8 * 32], tt[8 * 32], mask[8 * 32];
    float feats[8 * F];
    MilesBatch b;
} Batch;

static void make_batch(Batch *x, int B, int T) {
    memset(x, 0, sizeof *x);
    x->B = B;
    x->T = T;
    for (int r = 0; r < B; r++) {
        int len = T - 2 * (r % 3);
        if (len < 3) len = 3;
        for (int t = 0; t < len; t++) {
            int i = r * T + t;
            x->ids[i] = t == 0 ? CLS : t == len - 1 ? SEP : 5 + (int)((r * 31 + t * 17 + 3) % 90);
            x->mask[i] = 1;
            x->tt[i] = (r == 1 && t > len / 2) ? 1 : 0;
        }
        for (int j = 0; j < F; j++) x->feats[r * F + j] = (float)(1.5 * sin(1.0 + r * 7.1 + j * 1.3));
    }
    MilesBatch b = {B, T, x->ids, x->tt, x->mask, x->feats, NULL, NULL};
    x->b = b;
}

static float *gather_wte(MilesModel *m, const Batch *x) {
    const int H = miles_model_config(m)->hidden_size;
    MilesTensorInfo ti;
    OK(miles_model_tensor(m, miles_model_find_tensor(m, "bert.embeddings.word_embeddings.weight"), &ti));
    float *e = malloc((size_t)x->B * x->T * H * sizeof *e);
    assert_non_null(e);
    for (int i = 0; i < x->B * x->T; i++) memcpy(e + (size_t)i * H, ti.data + (size_t)x->ids[i] * H, H * sizeof(float));
    return e;
}

static float *grads_copy(MilesModel *m) {
    size_t n = miles_model_num_params(m);
    MilesTensorInfo ti;
    miles_model_tensor(m, 0, &ti);
    float *g = malloc(n * sizeof *g);
    assert_non_null(g);
    memcpy(g, ti.grad, n * sizeof *g);
    return g;
}

/* Target in double from a forward's outputs (as explain.c defines them). */
static double target_val(int target, const float *l, float v) {
    if (target == MILES_EXPLAIN_VIRAL_PROB) return 1.0 / (1.0 + exp(-((double)l[1] - l[0])));
    if (target == MILES_EXPLAIN_VIRAL_LOGIT) return (double)l[1] - l[0];
    return v;
}

/* ---------------------------------------------------------------- hooks */

static void test_forward_embeds_bitwise(void **state) {
    (void)state;
    MilesModel *m = make_model("miles", MILES_POOL_MEAN, 1, 0.2f, 1.5f);
    Batch x;
    make_batch(&x, 4, 12);
    float l0[8], v0[4], l1[8], v1[4];
    OK(miles_model_forward(m, &x.b, 0, l0, v0, NULL));
    float *e = gather_wte(m, &x);
    OK(miles_model_forward_embeds(m, &x.b, e, 0, l1, v1, NULL));
    assert_memory_equal(l0, l1, sizeof l0);
    assert_memory_equal(v0, v1, sizeof v0);
    /* NULL embeddings = the ordinary forward */
    OK(miles_model_forward_embeds(m, &x.b, NULL, 0, l1, v1, NULL));
    assert_memory_equal(l0, l1, sizeof l0);
    /* a changed vector changes the output */
    e[5 * 64 + 3] += 1.0f;
    OK(miles_model_forward_embeds(m, &x.b, e, 0, l1, v1, NULL));
    assert_true(memcmp(l0, l1, sizeof l0) != 0);
    printf("  forward_embeds(gathered wte rows) == forward: bitwise\n");
    free(e);
    miles_model_free(m);
}

/* backward_from_outputs with the loss's own output gradient reproduces
 * miles_model_backward; input-only mode leaves parameter grads alone. */
static void test_backward_from_outputs(void **state) {
    (void)state;
    const char *presets[2] = {"miles", "seed-notebook"};
    for (int p = 0; p < 2; p++) {
        MilesModel *m = make_model(presets[p], MILES_POOL_POOLER, 2, 0.2f, 1.5f);
        Batch x;
        make_batch(&x, 4, 10);
        int32_t labels[4] = {0, 1, 1, 0};
        float vt[4] = {0.2f, 0.7f, 0.4f, 0.9f};
        MilesBatch b = x.b;
        b.labels = labels;
        b.velocity = vt;
        MilesLossConfig lc = {0.95f, 0.05f, {1.0f, 1.0f}};
        miles_model_set_loss(m, &lc);
        float logits[8], vel[4], loss;
        miles_model_zero_grad(m);
        OK(miles_model_forward(m, &b, 0, logits, vel, &loss));
        OK(miles_model_backward(m, 1.0f));
        float *g_ref = grads_copy(m);
        float *dw_ref = malloc(4 * 10 * 64 * sizeof(float)), *df_ref = malloc(4 * F * sizeof(float));
        OK(miles_model_input_grads(m, dw_ref, df_ref));
        /* d loss / d outputs, by hand: unweighted CE mean + MSE mean */
        float dl[8], dv[4];
        for (int r = 0; r < 4; r++) {
            double z = (double)logits[2 * r + 1] - logits[2 * r];
            double p1 = 1.0 / (1.0 + exp(-z));
            dl[2 * r] = (float)(0.95 * ((1.0 - p1) - (labels[r] == 0)) / 4);
            dl[2 * r + 1] = (float)(0.95 * (p1 - (labels[r] == 1)) / 4);
            dv[r] = (float)(0.05 * 2.0 * ((double)vel[r] - vt[r]) / 4);
        }
        miles_model_zero_grad(m);
        OK(miles_model_forward(m, &x.b, 0, NULL, NULL, NULL)); /* no labels needed */
        OK(miles_model_backward_from_outputs(m, dl, dv, 1));
        float *g = grads_copy(m);
        double worst;
        size_t n = miles_model_num_params(m);
        double gmax = 0.0, e = 0.0;
        for (size_t i = 0; i < n; i++) {
            gmax = test_max_err(gmax, fabs(g_ref[i]));
            e = test_max_err(e, fabs((double)g[i] - g_ref[i]));
        }
        worst = e / gmax;
        float *dw = malloc(4 * 10 * 64 * sizeof(float)), *df = malloc(4 * F * sizeof(float));
        OK(miles_model_input_grads(m, dw, df));
        double ew = 0, ef = 0, mw = 0, mf = 0;
        for (int i = 0; i < 4 * 10 * 64; i++) {
            ew = test_max_err(ew, fabs((double)dw[i] - dw_ref[i]));
            mw = test_max_err(mw, fabs(dw_ref[i]));
        }
        for (int i = 0; i < 4 * F; i++) {
            ef = test_max_err(ef, fabs((double)df[i] - df_ref[i]));
            mf = test_max_err(mf, fabs(df_ref[i]));
        }
        printf("  %s: backward_from_outputs(loss gradient) vs backward: params rel %.2e, "
               "d word-emb rel %.2e, d features rel %.2e\n", presets[p], worst, ew / mw, ef / mf);
        assert_true(gmax > 0 && mw > 0 && mf > 0);
        assert_true(worst <= 1e-5);
        assert_true(ew / mw <= 1e-5 && ef / mf <= 1e-5);
        /* input-only: parameter grads untouched, identical input grads */
        miles_model_zero_grad(m);
        OK(miles_model_forward(m, &x.b, 0, NULL, NULL, NULL));
        OK(miles_model_backward_from_outputs(m, dl, dv, 0));
        float *g0 = grads_copy(m);
        for (size_t i = 0; i < n; i++)
            if (g0[i] != 0.0f) fail_msg("input-only backward wrote parameter gradient %zu", i);
        float *dw2 = malloc(4 * 10 * 64 * sizeof(float)), *df2 = malloc(4 * F * sizeof(float));
        OK(miles_model_input_grads(m, dw2, df2));
        assert_memory_equal(dw, dw2, 4 * 10 * 64 * sizeof(float));
        assert_memory_equal(df, df2, 4 * F * sizeof(float));
        /* padding positions get exactly zero gradient */
        for (int r = 0; r < 4; r++)
            for (int t = 0; t < 10; t++)
                if (!x.mask[r * 10 + t])
                    for (int h = 0; h < 64; h++) assert_true(dw[(r * 10 + t) * 64 + h] == 0.0f);
        /* a forward invalidates the input gradients */
        OK(miles_model_forward(m, &x.b, 0, NULL, NULL, NULL));
        assert_int_equal(miles_model_input_grads(m, dw2, NULL), MILES_EINVAL);
        free(g0);
        free(dw2);
        free(df2);
        free(dw);
        free(df);
        free(g);
        free(g_ref);
        free(dw_ref);
        free(df_ref);
        miles_model_free(m);
    }
}

/* Input gradients vs five-point differences of the target (fp32 forward,
 * differences in double). */
static void fd_case(const char *preset, int pooling, int target, double eps, double tol,
                    double tol_dir) {
    MilesModel *m = make_model(preset, pooling, 3, 0.2f, 1.5f);
    const int H = 64, B = 3, T = 9;
    Batch x;
    make_batch(&x, B, T);
    if (pooling == MILES_POOL_POOLER) make_smooth(m, 1.6f, &x.b); /* no ReLU kink within +-eps */
    float *e = gather_wte(m, &x);
    float l[6], v[3], dl[6], dv[3];
    OK(miles_model_forward_embeds(m, &x.b, e, 0, l, v, NULL));
    for (int r = 0; r < B; r++) {
        double p = 1.0 / (1.0 + exp(-((double)l[2 * r + 1] - l[2 * r])));
        double d = target == MILES_EXPLAIN_VIRAL_PROB ? p * (1 - p) : 1.0;
        dl[2 * r] = target == MILES_EXPLAIN_VELOCITY ? 0.0f : (float)-d;
        dl[2 * r + 1] = target == MILES_EXPLAIN_VELOCITY ? 0.0f : (float)d;
        dv[r] = target == MILES_EXPLAIN_VELOCITY ? 1.0f : 0.0f;
    }
    OK(miles_model_backward_from_outputs(m, dl, dv, 0));
    float *dw = malloc((size_t)B * T * H * sizeof *dw), df[3 * F];
    OK(miles_model_input_grads(m, dw, df));
    /* the 6 largest |grad| word-embedding entries + the 4 largest feature grads */
    double worst = 0.0;
    int checked = 0;
    for (int pass = 0; pass < 2; pass++) {
        int nsel = pass ? 4 : 6, N = pass ? B * F : B * T * H;
        float *g = pass ? df : dw;
        char *used = calloc((size_t)N, 1);
        for (int s = 0; s < nsel; s++) {
            int best = -1;
            for (int i = 0; i < N; i++)
                if (!used[i] && (best < 0 || fabsf(g[i]) > fabsf(g[best]))) best = i;
            used[best] = 1;
            float *xp = pass ? &x.feats[best] : &e[best];
            float x0 = *xp;
            int row = pass ? best / F : best / (T * H);
            /* five-point stencil: truncation O(eps^4), so a wide step keeps the
             * fp32 rounding noise (~1e-7 |f| / eps) low without a bias */
            double f[4];
            const float off[4] = {2.0f, 1.0f, -1.0f, -2.0f};
            for (int k = 0; k < 4; k++) {
                *xp = x0 + off[k] * (float)eps;
                OK(miles_model_forward_embeds(m, &x.b, e, 0, l, v, NULL));
                f[k] = target_val(target, l + 2 * row, v[row]);
            }
            *xp = x0;
            double fd = (-f[0] + 8.0 * f[1] - 8.0 * f[2] + f[3]) / (12.0 * eps);
            double rel = fabs(fd - g[best]) / fmax(fabs(g[best]), 1e-6);
            worst = test_max_err(worst, rel);
            checked++;
        }
        free(used);
    }
    /* The whole gradient at once: the derivative along g/|g| is |g|, a signal
     * far above the rounding noise of single entries (per row, word embeddings
     * and features together). */
    double worst_dir = 0.0;
    for (int row = 0; row < B; row++) {
        double n2 = 0.0;
        for (int i = 0; i < T * H; i++) n2 += (double)dw[row * T * H + i] * dw[row * T * H + i];
        for (int j = 0; j < F; j++) n2 += (double)df[row * F + j] * df[row * F + j];
        double gn = sqrt(n2), f[4];
        float *e0 = malloc((size_t)B * T * H * sizeof *e0), f0[3 * F];
        memcpy(e0, e, (size_t)B * T * H * sizeof *e0);
        memcpy(f0, x.feats, sizeof f0);
        const double off[4] = {2.0, 1.0, -1.0, -2.0};
        for (int k = 0; k < 4; k++) {
            double t = off[k] * eps / gn;
            for (int i = 0; i < T * H; i++)
                e[row * T * H + i] = (float)(e0[row * T * H + i] + t * dw[row * T * H + i]);
            for (int j = 0; j < F; j++) x.feats[row * F + j] = (float)(f0[row * F + j] + t * df[row * F + j]);
            OK(miles_model_forward_embeds(m, &x.b, e, 0, l, v, NULL));
            f[k] = target_val(target, l + 2 * row, v[row]);
        }
        memcpy(e, e0, (size_t)B * T * H * sizeof *e0);
        memcpy(x.feats, f0, sizeof f0);
        free(e0);
        double fd = (-f[0] + 8.0 * f[1] - 8.0 * f[2] + f[3]) / (12.0 * eps);
        worst_dir = test_max_err(worst_dir, fabs(fd - gn) / gn);
    }
    printf("  input grads vs five-point differences (eps %.0e), %s pooling %d target %d: %d entries, "
           "worst rel err %.2e; along g/|g| %.2e\n", eps, preset, pooling, target, checked, worst,
           worst_dir);
    assert_true(worst <= tol);
    assert_true(worst_dir <= tol_dir);
    free(dw);
    free(e);
    miles_model_free(m);
}

static void test_input_grads_fd(void **state) {
    (void)state;
    /* The forward is fp32.  Measured on the smooth seed-notebook case, the worst
     * single-entry error falls as 1/eps (6e-2, 2e-2, 1.4e-2 at eps 1e-2, 3e-2,
     * 1e-1 with a five-point stencil): rounding noise of the forward, not
     * truncation, and its level depends on the GEMM's rounding.  So single
     * entries are held to 3e-2 and the whole gradient, through the derivative
     * along g/|g| (a signal |g| far above that noise), to 5e-3.  Smooth models
     * (ReLUs provably on) take a wide step; ReLU models a narrow one to stay off
     * the kinks, hence their looser directional bound.  A wrong gradient is off
     * by O(1). */
    fd_case("miles", MILES_POOL_POOLER, MILES_EXPLAIN_VIRAL_PROB, 3e-2, 3e-2, 5e-3);
    fd_case("miles", MILES_POOL_POOLER, MILES_EXPLAIN_VELOCITY, 3e-2, 3e-2, 5e-3);
    fd_case("seed-notebook", MILES_POOL_POOLER, MILES_EXPLAIN_VIRAL_LOGIT, 3e-2, 3e-2, 5e-3);
    fd_case("miles", MILES_POOL_MEAN, MILES_EXPLAIN_VELOCITY, 1e-3, 3e-2, 2e-2);
    fd_case("seed-notebook", MILES_POOL_CLS, MILES_EXPLAIN_VIRAL_LOGIT, 1e-3, 3e-2, 2e-2);
    fd_case("seed-notebook", MILES_POOL_MEAN, MILES_EXPLAIN_VIRAL_PROB, 1e-3, 3e-2, 2e-2);
}

/* ----------------------------------------------------------- completeness */

static double max_completeness(MilesModel *m, const MilesBatch *b, int rule, int steps, int target,
                               double *max_delta) {
    MilesExplainConfig cfg;
    miles_explain_config_default(&cfg);
    cfg.rule = rule;
    cfg.steps = steps;
    cfg.target = target;
    MilesExplanation *ex = NULL;
    OK(miles_explain_ig(m, b, &cfg, &ex));
    double e = 0.0, d = 0.0;
    for (int r = 0; r < ex->B; r++) {
        e = test_max_err(e, fabs(ex->completeness_error[r]));
        d = test_max_err(d, fabs(ex->f_input[r] - ex->f_baseline[r]));
    }
    if (max_delta) *max_delta = d;
    miles_explanation_free(ex);
    return e;
}

static void completeness_table(MilesModel *m, const MilesBatch *b, const char *label, int smooth) {
    const int targets[3] = {MILES_EXPLAIN_VIRAL_PROB, MILES_EXPLAIN_VIRAL_LOGIT, MILES_EXPLAIN_VELOCITY};
    const char *tname[3] = {"P(viral)", "logit diff", "velocity"};
    enum { NS = 5 };
    const int smooth_steps[NS] = {2, 8, 16, 32, 128}, relu_steps[NS] = {4, 16, 32, 64, 256};
    const int *steps = smooth ? smooth_steps : relu_steps;
    for (int ti = 0; ti < 3; ti++) {
        for (int rule = 0; rule < 2; rule++) {
            double err[NS], delta = 0;
            printf("  %s %-10s %-5s |completeness err| / max|f(x)-f(x')|:", label, tname[ti],
                   rule == MILES_IG_TRAPEZOID ? "trap" : "GL");
            for (int s = 0; s < NS; s++) {
                err[s] = max_completeness(m, b, rule, steps[s], targets[ti], &delta);
                printf(" %d:%.0e", steps[s], err[s] / delta);
            }
            printf("  (max|f(x)-f(x')| %.3f)\n", delta);
            assert_true(delta > 1e-2); /* the attributions have something to explain */
            for (int s = 0; s < NS; s++) err[s] /= delta;
            if (smooth) {
                /* no kinks: GL converges spectrally down to the fp32 floor (~1e-5
                 * here: the provably-on ReLUs carry large activations), the
                 * trapezoid as 1/n^2 */
                if (rule == MILES_IG_GAUSS_LEGENDRE) {
                    assert_true(err[1] <= err[0] / 100); /* 2 -> 8 nodes */
                    assert_true(err[3] <= 1e-4);         /* the default, 32 nodes */
                } else {
                    /* second order above the fp32 floor (~2e-5 here): 8 -> 32 steps
                     * is 16x in theory; at 128 steps only the floor remains */
                    assert_true(err[3] <= 1e-3);
                    assert_true(err[3] <= err[1] / 8);
                    assert_true(err[4] <= 1e-4);
                }
            } else {
                /* ReLU kinks make the integrand jump: first-order convergence */
                assert_true(err[NS - 1] <= 2e-2);
                assert_true(err[NS - 1] <= err[0] / 8);
            }
        }
    }
}

static void test_completeness_converges(void **state) {
    (void)state;
    Batch x;
    make_batch(&x, 3, 12);
    MilesModel *m = make_model("miles", MILES_POOL_POOLER, 4, 0.2f, 1.5f);
    make_smooth(m, 1.5f, &x.b);
    completeness_table(m, &x.b, "smooth", 1);
    miles_model_free(m);
    m = make_model("miles", MILES_POOL_MEAN, 4, 0.2f, 1.5f);
    completeness_table(m, &x.b, "ReLU  ", 0);
    miles_model_free(m);
}

/* f(x) and f(x') against independent forwards of the input and the baseline. */
static void test_endpoints(void **state) {
    (void)state;
    MilesModel *m = make_model("seed-notebook", MILES_POOL_POOLER, 5, 0.2f, 1.5f);
    Batch x;
    make_batch(&x, 3, 10);
    const int H = 64;
    MilesExplainConfig cfg;
    miles_explain_config_default(&cfg);
    float fb[F];
    for (int j = 0; j < F; j++) fb[j] = 0.1f * j - 0.5f;
    cfg.feature_baseline = fb;
    for (int base = 0; base < 2; base++) {
        cfg.token_baseline = base ? MILES_BASELINE_ZERO : MILES_BASELINE_PAD;
        MilesExplanation *ex = NULL;
        OK(miles_explain_ig(m, &x.b, &cfg, &ex));
        float l[6], v[3];
        OK(miles_model_forward(m, &x.b, 0, l, v, NULL));
        float *e = gather_wte(m, &x);
        MilesTensorInfo ti;
        OK(miles_model_tensor(m, 0, &ti));
        for (int i = 0; i < 3 * 10; i++) {
            int keep = !x.mask[i] || x.ids[i] == CLS || x.ids[i] == SEP;
            if (!keep)
                for (int h = 0; h < H; h++) e[i * H + h] = base ? 0.0f : ti.data[h]; /* pad row 0 */
        }
        Batch xb = x;
        for (int r = 0; r < 3; r++) memcpy(xb.feats + r * F, fb, sizeof fb);
        xb.b.features = xb.feats;
        xb.b.input_ids = xb.ids;
        xb.b.token_type_ids = xb.tt;
        xb.b.attention_mask = xb.mask;
        float lb[6], vb[3];
        OK(miles_model_forward_embeds(m, &xb.b, e, 0, lb, vb, NULL));
        double ex_in = 0, ex_base = 0;
        for (int r = 0; r < 3; r++) {
            ex_in = test_max_err(ex_in, fabs(ex->f_input[r] - target_val(0, l + 2 * r, v[r])));
            ex_base = test_max_err(ex_base, fabs(ex->f_baseline[r] - target_val(0, lb + 2 * r, vb[r])));
        }
        printf("  %s token baseline: f(x) err %.2e, f(x') err %.2e (vs independent forwards)\n",
               base ? "zero" : "[PAD]", ex_in, ex_base);
        assert_true(ex_in <= 1e-6 && ex_base <= 1e-6);
        free(e);
        miles_explanation_free(ex);
    }
    miles_model_free(m);
}

/* ------------------------------------------------------------- reference */

/* IG written out with the hooks, one path point at a time (B = 1 forwards),
 * trapezoid rule: an independent check of the batching and bookkeeping. */
static void test_reference_ig(void **state) {
    (void)state;
    MilesModel *m = make_model("miles", MILES_POOL_POOLER, 6, 0.2f, 1.5f);
    const int H = 64, T = 11, n = 16;
    Batch x;
    make_batch(&x, 2, T);
    MilesExplainConfig cfg;
    miles_explain_config_default(&cfg);
    cfg.rule = MILES_IG_TRAPEZOID;
    cfg.steps = n;
    cfg.token_baseline = MILES_BASELINE_ZERO;
    MilesExplanation *ex = NULL;
    OK(miles_explain_ig(m, &x.b, &cfg, &ex));
    MilesTensorInfo wte;
    OK(miles_model_tensor(m, 0, &wte));
    double worst = 0.0, amax = 0.0;
    for (int r = 0; r < 2; r++) {
        double ag[11 * 64] = {0}, af[F] = {0};
        for (int k = 0; k <= n; k++) {
            float a = (float)k / n, w = (k == 0 || k == n) ? 0.5f / n : 1.0f / n;
            float e[11 * 64], f[F];
            for (int t = 0; t < T; t++) {
                int i = r * T + t, id = x.ids[i];
                int keep = !x.mask[i] || id == CLS || id == SEP;
                for (int h = 0; h < H; h++) e[t * H + h] = keep ? wte.data[id * H + h] : a * wte.data[id * H + h];
            }
            for (int j = 0; j < F; j++) f[j] = a * x.feats[r * F + j];
            MilesBatch b1 = {1, T, x.ids + r * T, x.tt + r * T, x.mask + r * T, f, NULL, NULL};
            float l[2], v, dl[2];
            OK(miles_model_forward_embeds(m, &b1, e, 0, l, &v, NULL));
            double p = 1.0 / (1.0 + exp(-((double)l[1] - l[0])));
            dl[0] = (float)(-p * (1 - p));
            dl[1] = (float)(p * (1 - p));
            OK(miles_model_backward_from_outputs(m, dl, NULL, 0));
            float dw[11 * 64], df[F];
            OK(miles_model_input_grads(m, dw, df));
            for (int i = 0; i < T * H; i++) ag[i] += w * dw[i];
            for (int j = 0; j < F; j++) af[j] += w * df[j];
        }
        for (int t = 0; t < T; t++) {
            int i = r * T + t, id = x.ids[i];
            int keep = !x.mask[i] || id == CLS || id == SEP;
            double s = 0;
            for (int h = 0; h < H && !keep; h++) s += wte.data[id * H + h] * ag[t * H + h];
            worst = test_max_err(worst, fabs(s - ex->tokens[i]));
            amax = test_max_err(amax, fabs(s));
        }
        for (int j = 0; j < F; j++) {
            double s = x.feats[r * F + j] * af[j];
            worst = test_max_err(worst, fabs(s - ex->features[r * F + j]));
            amax = test_max_err(amax, fabs(s));
        }
    }
    printf("  batched IG vs one-point-at-a-time reference: max abs diff %.2e (max |attr| %.3f)\n", worst, amax);
    assert_true(amax > 1e-3);
    assert_true(worst <= 1e-4 * amax);
    /* chunk sizes: one row per forward vs everything in one forward */
    double wc = 0.0;
    for (int mt = 0; mt < 2; mt++) {
        cfg.max_tokens = mt ? 1 : 1 << 20;
        MilesExplanation *e2 = NULL;
        OK(miles_explain_ig(m, &x.b, &cfg, &e2));
        for (int i = 0; i < 2 * T; i++) wc = test_max_err(wc, fabs(e2->tokens[i] - ex->tokens[i]));
        for (int i = 0; i < 2 * F; i++) wc = test_max_err(wc, fabs(e2->features[i] - ex->features[i]));
        miles_explanation_free(e2);
    }
    printf("  chunk size 1 row / all rows vs default: max abs diff %.2e\n", wc);
    assert_true(wc <= 1e-5 * amax);
    miles_explanation_free(ex);
    miles_model_free(m);
}

/* ---------------------------------------------------------------- dummy */

static void test_ignored_inputs_get_zero(void **state) {
    (void)state;
    const char *presets[2] = {"miles", "seed-notebook"};
    for (int p = 0; p < 2; p++) {
        MilesModel *m = make_model(presets[p], MILES_POOL_MEAN, 7, 0.2f, 1.5f);
        const int H = miles_model_config(m)->hidden_size;
        /* feature 4 (saves): zero its weight column in the first layer that reads it */
        MilesTensorInfo ti;
        int idx = miles_model_find_tensor(m, p == 0 ? "numeric_mlp.0.weight" : "fusion.0.weight");
        OK(miles_model_tensor(m, idx, &ti));
        int in = (int)ti.shape[1], col = p == 0 ? 4 : H + 4;
        for (int o = 0; o < ti.shape[0]; o++) ti.data[(size_t)o * in + col] = 0.0f;
        Batch x;
        make_batch(&x, 3, 10);
        for (int r = 0; r < 3; r++) x.feats[r * F + 9] = 0.0f; /* feature 9 at its baseline */
        MilesExplainConfig cfg;
        miles_explain_config_default(&cfg);
        MilesExplanation *ex = NULL;
        OK(miles_explain_ig(m, &x.b, &cfg, &ex));
        double other = 0.0, tok = 0.0;
        for (int r = 0; r < 3; r++) {
            assert_true(ex->features[r * F + 4] == 0.0f);
            assert_true(ex->features[r * F + 9] == 0.0f);
            other = test_max_err(other, fabs(ex->features[r * F + 3]));
            for (int t = 0; t < 10; t++) {
                int i = r * 10 + t;
                if (!x.mask[i] || x.ids[i] == CLS || x.ids[i] == SEP) assert_true(ex->tokens[i] == 0.0f);
                else tok = test_max_err(tok, fabs(ex->tokens[i]));
            }
        }
        printf("  %s: zero-weight feature and feature at baseline: attribution exactly 0 "
               "(a live feature: %.3e, largest token: %.3e); [CLS]/[SEP]/padding exactly 0\n",
               presets[p], other, tok);
        assert_true(other > 1e-6 && tok > 1e-6);
        miles_explanation_free(ex);
        miles_model_free(m);
    }
}

#define PIN_EXPLAIN 0xebb0d0dc86f97846ULL

static void test_deterministic(void **state) {
    (void)state;
    MilesModel *m = make_model("miles", MILES_POOL_POOLER, 8, 0.2f, 1.5f);
    Batch x;
    make_batch(&x, 4, 12);
    MilesExplainConfig cfg;
    miles_explain_config_default(&cfg);
    cfg.max_tokens = 100; /* several chunks */
    MilesExplanation *a = NULL, *b = NULL;
    OK(miles_explain_ig(m, &x.b, &cfg, &a));
    OK(miles_explain_ig(m, &x.b, &cfg, &b));
    assert_memory_equal(a->tokens, b->tokens, 4 * 12 * sizeof(float));
    assert_memory_equal(a->features, b->features, 4 * F * sizeof(float));
    assert_memory_equal(a->completeness_error, b->completeness_error, 4 * sizeof(double));
    assert_int_equal(a->evals, 34);
    printf("  two runs: bit-identical (%d path rows per example)\n", a->evals);
    /* and pinned: the same attributions on every machine, thread count and
     * build (a deliberate change of the path or the backward updates this) */
    uint64_t h = test_fnv1a(TEST_FNV_BASIS, a->tokens, 4 * 12 * sizeof(float));
    h = test_fnv1a(h, a->features, 4 * F * sizeof(float));
    h = test_fnv1a(h, a->f_input, 4 * sizeof(double));
    h = test_fnv1a(h, a->f_baseline, 4 * sizeof(double));
    h = test_fnv1a(h, a->completeness_error, 4 * sizeof(double));
    printf("  pin 0x%016llx (pinned 0x%016llx)\n", (unsigned long long)h, (unsigned long long)PIN_EXPLAIN);
    if (h != PIN_EXPLAIN) fail_msg("attributions hash 0x%016llx, pinned 0x%016llx", (unsigned long long)h,
                                   (unsigned long long)PIN_EXPLAIN);
    miles_explanation_free(a);
    miles_explanation_free(b);
    miles_model_free(m);
}

/* ------------------------------------------------------------ bad input */

static void expect(int got, int want, const char *needle) {
    if (got != want)
        fail_msg("expected %s, got %s (%s)", miles_status_name(want), miles_status_name(got), miles_last_error());
    if (needle && !strstr(miles_last_error(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", miles_last_error(), needle);
    printf("  rejected: %s\n", miles_last_error());
}

static void test_bad_input(void **state) {
    (void)state;
    MilesModel *m = make_model("miles", MILES_POOL_MEAN, 9, 0.2f, 1.5f);
    Batch x;
    make_batch(&x, 2, 8);
    MilesExplainConfig cfg;
    MilesExplanation *ex = (MilesExplanation *)1;
    miles_explain_config_default(&cfg);
    expect(miles_explain_ig(m, &x.b, &cfg, NULL), MILES_EINVAL, "out");
    expect(miles_explain_ig(NULL, &x.b, &cfg, &ex), MILES_EINVAL, "model");
    assert_null(ex);
    expect(miles_explain_ig(m, NULL, &cfg, &ex), MILES_EINVAL, "batch");
    cfg.steps = 0;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_EINVAL, "steps = 0");
    cfg.steps = 5000;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_EINVAL, "steps = 5000");
    miles_explain_config_default(&cfg);
    cfg.rule = 7;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_EINVAL, "rule");
    miles_explain_config_default(&cfg);
    cfg.target = -1;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_EINVAL, "target");
    miles_explain_config_default(&cfg);
    cfg.token_baseline = 3;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_EINVAL, "baseline");
    miles_explain_config_default(&cfg);
    cfg.pad_id = 128;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_ERANGE, "pad_id");
    miles_explain_config_default(&cfg);
    cfg.sep_id = -2;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_ERANGE, "sep_id");
    miles_explain_config_default(&cfg);
    cfg.cls_id = miles_model_config(m)->vocab_size; /* one past the last id */
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_ERANGE, "cls_id");
    miles_explain_config_default(&cfg);
    cfg.max_tokens = 0;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_EINVAL, "max_tokens");
    miles_explain_config_default(&cfg);
    float fb[F] = {0};
    fb[2] = NAN;
    cfg.feature_baseline = fb;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_ENAN, "comments");
    miles_explain_config_default(&cfg);
    x.feats[F + 5] = INFINITY;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_ENAN, "row 1 feature 5 (engagement_rate)");
    x.feats[F + 5] = 0.5f;
    x.ids[3] = 500;
    expect(miles_explain_ig(m, &x.b, &cfg, &ex), MILES_ERANGE, "input id 500");
    x.ids[3] = 7;
    MilesBatch b = x.b;
    b.T = 65;
    expect(miles_explain_ig(m, &b, &cfg, &ex), MILES_ERANGE, "max_position_embeddings");
    assert_null(ex);
    /* the hooks */
    float *e = gather_wte(m, &x);
    e[100] = NAN;
    expect(miles_model_forward_embeds(m, &x.b, e, 0, NULL, NULL, NULL), MILES_ENAN, "row 0 token 1 channel 36");
    e[100] = 0.0f;
    expect(miles_model_backward_from_outputs(m, NULL, NULL, 0), MILES_EINVAL, "no successful forward");
    OK(miles_model_forward_embeds(m, &x.b, e, 0, NULL, NULL, NULL));
    float dl[4] = {0, 1, INFINITY, 0};
    expect(miles_model_backward_from_outputs(m, dl, NULL, 0), MILES_ENAN, "dlogits row 1 class 0");
    expect(miles_model_input_grads(m, NULL, NULL), MILES_EINVAL, "no backward");
    expect(miles_model_input_grads(NULL, NULL, NULL), MILES_EINVAL, NULL);
    /* a model whose output is not finite (a viral-logit bias of NaN): the
     * target is refused, naming the row and the path point, not summed */
    MilesTensorInfo cb;
    OK(miles_model_tensor(m, miles_model_find_tensor(m, "classifier.bias"), &cb));
    const float keep = cb.data[1];
    cb.data[1] = NAN;
    expect(miles_explain_ig(m, &x.b, NULL, &ex), MILES_ENAN, "explain: row 0: the target is not finite at alpha 0.0000");
    assert_null(ex);
    cb.data[1] = keep;
    /* still works */
    OK(miles_explain_ig(m, &x.b, NULL, &ex));
    assert_non_null(ex);
    miles_explanation_free(ex);
    miles_explanation_free(NULL);
    free(e);
    miles_model_free(m);
}

/* ---------------------------------------------------------------- words */

static void test_words(void **state) {
    (void)state;
    const char *pieces[] = {NULL, "pov", ":", "un", "##believ", "##able", "cats", "##", NULL, "##x", "end", NULL};
    const float attr[] = {9, 0.5f, 0.25f, 1, 2, 4, -1, 0.5f, 9, 3, -2, 9};
    MilesExplainWord *w = NULL;
    int n = 0;
    OK(miles_explain_words(pieces, attr, 12, &w, &n));
    assert_int_equal(n, 6);
    const char *want[] = {"pov", ":", "unbelievable", "cats##", "x", "end"};
    const float wa[] = {0.5f, 0.25f, 7.0f, -0.5f, 3.0f, -2.0f};
    const int first[] = {1, 2, 3, 6, 9, 10}, count[] = {1, 1, 3, 2, 1, 1};
    for (int i = 0; i < n; i++) {
        assert_string_equal(w[i].text, want[i]);
        assert_true(w[i].attribution == wa[i]);
        assert_int_equal(w[i].first, first[i]);
        assert_int_equal(w[i].count, count[i]);
    }
    printf("  words: %s(%g) %s(%g) %s(%g) ...\n", w[0].text, w[0].attribution, w[1].text, w[1].attribution,
           w[2].text, w[2].attribution);
    miles_explain_words_free(w, n);
    OK(miles_explain_words(NULL, NULL, 0, &w, &n));
    assert_int_equal(n, 0);
    miles_explain_words_free(w, n);
    float bad[2] = {1, NAN};
    const char *p2[] = {"a", "b"};
    expect(miles_explain_words(p2, bad, 2, &w, &n), MILES_ENAN, "attribution 1");
    expect(miles_explain_words(p2, bad, -1, &w, &n), MILES_EINVAL, NULL);
    expect(miles_explain_words(p2, bad, 2, NULL, &n), MILES_EINVAL, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_embeds_bitwise),
        cmocka_unit_test(test_backward_from_outputs),
        cmocka_unit_test(test_input_grads_fd),
        cmocka_unit_test(test_completeness_converges),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_reference_ig),
        cmocka_unit_test(test_ignored_inputs_get_zero),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
