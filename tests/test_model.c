/*
 * test_model.c — model construction, input validation, dropout determinism,
 * gradient accumulation, padding invariance, a finite-difference check with
 * dropout on, AdamW / clipping semantics on synthetic gradients, configs, and
 * a pinned training trajectory (the same bits on every machine and build).
 * (Equality with PyTorch/HF is tests/test_golden.c.)
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
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include "miles.h"
#include "helpers.h"
#include "optim_internal.h"
#include "ops_internal.h" /* miles_gemm_force_isa */

/* ------------------------------------------------------------- helpers */

static MilesModel *tiny_model(const char *preset, int pooling, uint64_t seed) {
    MilesConfig c;
    assert_int_equal(miles_config_preset(&c, preset, "tiny"), MILES_OK);
    c.pooling = pooling;
    MilesModel *m = NULL;
    int s = miles_model_build(&m, &c);
    if (s != MILES_OK) fail_msg("build: %s", miles_last_error());
    assert_int_equal(miles_model_init_random(m, seed, 0.02f), MILES_OK);
    /* non-trivial LayerNorm/bias values so every path carries signal */
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        for (size_t i = 0; i < ti.numel; i++) {
            float u = (float)(((i * 2654435761u + (size_t)t * 97u) % 1000) / 1000.0 - 0.5);
            if (strstr(ti.name, "LayerNorm.weight")) ti.data[i] = 1.0f + 0.2f * u;
            else if (strstr(ti.name, "bias")) ti.data[i] = 0.04f * u;
            else if (!strncmp(ti.name, "fusion", 6) || !strncmp(ti.name, "numeric", 7) ||
                     !strncmp(ti.name, "classifier", 10) || !strncmp(ti.name, "regressor", 9))
                ti.data[i] *= 3.0f; /* heads: nearer PyTorch's default Linear scale */
        }
    }
    return m;
}

/* A deterministic batch: B rows of T tokens; row b has length T - (b % 3) * 2 (>= 1). */
typedef struct {
    int B, T;
    int32_t ids[16 * 64], tt[16 * 64], mask[16 * 64], labels[16];
    float feats[16 * MILES_NUM_FEATURES], vel[16];
    MilesBatch b;
} Batch;

static void make_batch(Batch *x, int B, int T, int V) {
    memset(x, 0, sizeof *x);
    x->B = B;
    x->T = T;
    for (int r = 0; r < B; r++) {
        int len = T - (r % 3) * 2;
        if (len < 1) len = 1;
        for (int t = 0; t < T; t++) {
            int i = r * T + t;
            if (t < len) {
                x->ids[i] = t == 0 ? 2 : 5 + (int)((r * 31 + t * 17) % (V - 5));
                x->mask[i] = 1;
                x->tt[i] = (r % 2 && t > len / 2) ? 1 : 0;
            }
        }
        for (int j = 0; j < MILES_NUM_FEATURES; j++)
            x->feats[r * MILES_NUM_FEATURES + j] = (float)sin(1.0 + r * 7.1 + j * 1.3);
        x->labels[r] = (r * 5 + 1) % 3 == 0;
        x->vel[r] = (float)(0.5 + 0.4 * cos(r * 2.3));
    }
    MilesBatch b = {B, T, x->ids, x->tt, x->mask, x->feats, x->labels, x->vel};
    x->b = b;
}

static float *copy_grads(MilesModel *m) {
    size_t n = miles_model_num_params(m);
    float *g = malloc(n * sizeof *g);
    assert_non_null(g);
    MilesTensorInfo ti;
    miles_model_tensor(m, 0, &ti);
    memcpy(g, ti.grad, n * sizeof *g); /* grads are one contiguous block */
    return g;
}

/* ----------------------------------------------------- parameter counts */

static size_t count_for(const char *preset, const char *size, int pooling) {
    MilesConfig c;
    assert_int_equal(miles_config_preset(&c, preset, size), MILES_OK);
    c.pooling = pooling;
    MilesModel *m = NULL;
    int s = miles_model_build(&m, &c);
    if (s != MILES_OK) fail_msg("build %s/%s: %s", preset, size, miles_last_error());
    size_t n = miles_model_num_params(m);
    /* the tensor table adds up to the same number */
    size_t sum = 0;
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        assert_int_equal(miles_model_tensor(m, t, &ti), MILES_OK);
        size_t p = 1;
        for (int d = 0; d < ti.ndim; d++) p *= (size_t)ti.shape[d];
        assert_int_equal(p, ti.numel);
        sum += ti.numel;
    }
    assert_int_equal(sum, n);
    miles_model_free(m);
    return n;
}

static void test_param_counts(void **state) {
    (void)state;
    /* expected values: HF BertModel(BertConfig(...)).parameters() + the heads,
     * counted with transformers 4.40 (see tests/gen_golden.py's stack) */
    size_t seed = count_for("seed-notebook", "bert-base", MILES_POOL_POOLER);
    printf("  seed-notebook / bert-base: %zu parameters (original notebook: 110,551,299)\n", seed);
    assert_int_equal(seed, 110551299);
    size_t miles = count_for("miles", "bert-base", MILES_POOL_POOLER);
    printf("  miles / bert-base: %zu parameters\n", miles);
    assert_int_equal(miles, 110013443);
    size_t miles_cls = count_for("miles", "bert-base", MILES_POOL_CLS);
    printf("  miles / bert-base, cls pooling (no pooler): %zu parameters\n", miles_cls);
    assert_int_equal(miles_cls, 109422851);
    size_t mini = count_for("miles", "minilm-l6", MILES_POOL_POOLER);
    printf("  miles / minilm-l6: %zu parameters\n", mini);
    assert_int_equal(mini, 23047811);
    size_t mini_seed = count_for("seed-notebook", "minilm-l6", MILES_POOL_POOLER);
    printf("  seed-notebook / minilm-l6: %zu parameters\n", mini_seed);
    assert_int_equal(mini_seed, 23389059);
}

static void test_tensor_names_and_decay(void **state) {
    (void)state;
    MilesModel *m = tiny_model("miles", MILES_POOL_POOLER, 1);
    struct { const char *name; int decay; int64_t d0, d1; } want[] = {
        {"bert.embeddings.word_embeddings.weight", 1, 128, 64},
        {"bert.embeddings.position_embeddings.weight", 1, 64, 64},
        {"bert.embeddings.token_type_embeddings.weight", 1, 2, 64},
        {"bert.embeddings.LayerNorm.weight", 0, 64, 0},
        {"bert.embeddings.LayerNorm.bias", 0, 64, 0},
        {"bert.encoder.layer.1.attention.self.query.weight", 1, 64, 64},
        {"bert.encoder.layer.1.attention.self.key.bias", 0, 64, 0},
        {"bert.encoder.layer.0.attention.output.dense.weight", 1, 64, 64},
        {"bert.encoder.layer.0.attention.output.LayerNorm.weight", 0, 64, 0},
        {"bert.encoder.layer.1.intermediate.dense.weight", 1, 128, 64},
        {"bert.encoder.layer.1.output.dense.weight", 1, 64, 128},
        {"bert.encoder.layer.1.output.LayerNorm.bias", 0, 64, 0},
        {"bert.pooler.dense.weight", 1, 64, 64},
        {"numeric_mlp.0.weight", 1, 256, 18},
        {"numeric_mlp.0.bias", 0, 256, 0},
        {"fusion.0.weight", 1, 512, 320},
        {"classifier.weight", 1, 2, 512},
        {"classifier.bias", 0, 2, 0},
        {"regressor.weight", 1, 1, 512},
        {"regressor.bias", 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int t = miles_model_find_tensor(m, want[i].name);
        if (t < 0) fail_msg("tensor %s not found", want[i].name);
        MilesTensorInfo ti;
        assert_int_equal(miles_model_tensor(m, t, &ti), MILES_OK);
        assert_string_equal(ti.name, want[i].name);
        assert_int_equal(ti.decay, want[i].decay);
        assert_int_equal(ti.shape[0], want[i].d0);
        if (want[i].d1) assert_int_equal(ti.shape[1], want[i].d1);
        else assert_int_equal(ti.ndim, 1);
    }
    assert_int_equal(miles_model_find_tensor(m, "bert.encoder.layer.2.output.dense.weight"), -1);
    assert_int_equal(miles_model_find_tensor(m, "fusion.1.weight"), -1);
    MilesTensorInfo ti;
    assert_int_equal(miles_model_tensor(m, -1, &ti), MILES_ERANGE);
    assert_int_equal(miles_model_tensor(m, miles_model_num_tensors(m), &ti), MILES_ERANGE);
    /* tensors tile the parameter block in order, without gaps */
    size_t off = 0;
    MilesTensorInfo t0;
    miles_model_tensor(m, 0, &t0);
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        miles_model_tensor(m, t, &ti);
        assert_ptr_equal(ti.data, t0.data + off);
        assert_ptr_equal(ti.grad, t0.grad + off);
        off += ti.numel;
    }
    assert_int_equal(off, miles_model_num_params(m));
    miles_model_free(m);

    /* cls pooling: no pooler tensors; seed-notebook: no numeric MLP, 2 fusion layers */
    m = tiny_model("seed-notebook", MILES_POOL_CLS, 1);
    assert_int_equal(miles_model_find_tensor(m, "bert.pooler.dense.weight"), -1);
    assert_int_equal(miles_model_find_tensor(m, "numeric_mlp.0.weight"), -1);
    int t = miles_model_find_tensor(m, "fusion.0.weight");
    assert_true(t >= 0);
    miles_model_tensor(m, t, &ti);
    assert_int_equal(ti.shape[0], 1024);
    assert_int_equal(ti.shape[1], 64 + 18);
    assert_true(miles_model_find_tensor(m, "fusion.1.bias") >= 0);
    miles_model_free(m);
}

static void test_init_random(void **state) {
    (void)state;
    MilesConfig c;
    miles_config_preset(&c, "miles", "tiny");
    MilesModel *a = NULL, *b = NULL;
    assert_int_equal(miles_model_build(&a, &c), MILES_OK);
    assert_int_equal(miles_model_build(&b, &c), MILES_OK);
    miles_model_init_random(a, 7, 0.02f);
    miles_model_init_random(b, 7, 0.02f);
    MilesTensorInfo ta, tb;
    miles_model_tensor(a, 0, &ta);
    miles_model_tensor(b, 0, &tb);
    size_t n = miles_model_num_params(a);
    assert_memory_equal(ta.data, tb.data, n * sizeof(float));
    miles_model_init_random(b, 8, 0.02f);
    assert_true(test_max_abs_diff(ta.data, tb.data, n) > 0.01);
    /* statistics of a large weight: mean ~0, std ~0.02; padding row 0 zero */
    int t = miles_model_find_tensor(a, "bert.embeddings.word_embeddings.weight");
    miles_model_tensor(a, t, &ta);
    double s = 0, s2 = 0;
    for (size_t i = 64; i < ta.numel; i++) {
        s += ta.data[i];
        s2 += (double)ta.data[i] * ta.data[i];
    }
    double mean = s / (ta.numel - 64), sd = sqrt(s2 / (ta.numel - 64) - mean * mean);
    printf("  init: word embeddings mean %.5f std %.5f (want 0, 0.02)\n", mean, sd);
    assert_true(fabs(mean) < 0.002 && fabs(sd - 0.02) < 0.002);
    for (int i = 0; i < 64; i++) assert_true(ta.data[i] == 0.0f);
    t = miles_model_find_tensor(a, "bert.encoder.layer.0.output.LayerNorm.weight");
    miles_model_tensor(a, t, &ta);
    for (size_t i = 0; i < ta.numel; i++) assert_true(ta.data[i] == 1.0f);
    t = miles_model_find_tensor(a, "fusion.0.bias");
    miles_model_tensor(a, t, &ta);
    for (size_t i = 0; i < ta.numel; i++) assert_true(ta.data[i] == 0.0f);
    /* std 0 is valid (every weight 0, LayerNorm weights 1); negative, NaN, Inf are not */
    assert_int_equal(miles_model_init_random(b, 8, 0.0f), MILES_OK);
    t = miles_model_find_tensor(b, "bert.encoder.layer.1.attention.self.query.weight");
    miles_model_tensor(b, t, &tb);
    for (size_t i = 0; i < tb.numel; i++) assert_true(tb.data[i] == 0.0f);
    const float bad_std[] = {-0.02f, NAN, INFINITY};
    for (int i = 0; i < 3; i++) assert_int_equal(miles_model_init_random(b, 8, bad_std[i]), MILES_EINVAL);
    assert_int_equal(miles_model_init_random(NULL, 8, 0.02f), MILES_EINVAL);
    /* NULL arguments: no tensor, no change */
    assert_int_equal(miles_model_find_tensor(NULL, "fusion.0.bias"), -1);
    assert_int_equal(miles_model_find_tensor(a, NULL), -1);
    assert_int_equal(miles_model_find_tensor(a, "no.such.tensor"), -1);
    miles_model_set_loss(a, NULL);
    miles_model_set_loss(NULL, NULL);
    miles_model_free(a);
    miles_model_free(b);
}

/* ------------------------------------------------------------ bad input */

static void expect_err(MilesModel *m, const MilesBatch *b, int code, const char *needle) {
    float logits[64];
    int s = miles_model_forward(m, b, 1, logits, NULL, NULL);
    if (s != code)
        fail_msg("expected %s, got %s (%s)", miles_status_name(code), miles_status_name(s),
                 miles_last_error());
    if (needle && !strstr(miles_last_error(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", miles_last_error(), needle);
    printf("  rejected: %s\n", miles_last_error());
}

static void test_bad_input(void **state) {
    (void)state;
    MilesModel *m = tiny_model("miles", MILES_POOL_POOLER, 3);
    Batch x;
    make_batch(&x, 4, 8, 128);
    /* a good forward first: the refusals below must also invalidate it (a
     * backward after them may not use its activations) */
    assert_int_equal(miles_model_forward(m, &x.b, 1, NULL, NULL, NULL), MILES_OK);
    MilesBatch b = x.b;
    b.B = 0;
    expect_err(m, &b, MILES_ESHAPE, "B = 0");
    assert_int_equal(miles_model_backward(m, 1.0f), MILES_EINVAL);
    b = x.b;
    b.T = 0;
    expect_err(m, &b, MILES_ESHAPE, "T = 0");
    b = x.b;
    b.T = 65;
    expect_err(m, &b, MILES_ERANGE, "max_position_embeddings 64");
    x.ids[9] = 128;
    expect_err(m, &x.b, MILES_ERANGE, "input id 128");
    x.ids[9] = -1;
    expect_err(m, &x.b, MILES_ERANGE, "row 1 token 1");
    x.ids[9] = 7;
    x.tt[3] = 2;
    expect_err(m, &x.b, MILES_ERANGE, "token type id 2");
    x.tt[3] = 0;
    x.mask[5] = 3;
    expect_err(m, &x.b, MILES_EINVAL, "attention mask");
    x.mask[5] = 1;
    x.feats[2 * MILES_NUM_FEATURES + 1] = NAN;
    expect_err(m, &x.b, MILES_ENAN, "row 2 feature 1 (likes) is NaN");
    x.feats[2 * MILES_NUM_FEATURES + 1] = 0.0f;
    x.feats[3 * MILES_NUM_FEATURES + 17] = INFINITY;
    expect_err(m, &x.b, MILES_ENAN, "publish_dayofweek");
    x.feats[3 * MILES_NUM_FEATURES + 17] = 0.0f;
    x.labels[1] = 2;
    expect_err(m, &x.b, MILES_EINVAL, "label 2");
    x.labels[1] = 1;
    x.vel[0] = NAN;
    expect_err(m, &x.b, MILES_ENAN, "velocity");
    x.vel[0] = 0.5f;
    b = x.b;
    b.features = NULL;
    expect_err(m, &b, MILES_EINVAL, "features");
    expect_err(m, NULL, MILES_EINVAL, NULL);
    /* weighted CE with zero total weight is undefined: refused, not NaN */
    MilesLossConfig zero_w = {0.95f, 0.05f, {0.0f, 0.0f}};
    miles_model_set_loss(m, &zero_w);
    expect_err(m, &x.b, MILES_EINVAL, "sum to 0");
    MilesLossConfig nan_w = {0.95f, 0.05f, {NAN, 1.0f}};
    miles_model_set_loss(m, &nan_w);
    expect_err(m, &x.b, MILES_EINVAL, "class weights");
    for (int k = 0; k < 2; k++) {   /* +Inf passes ">= 0": only the finiteness check refuses it */
        MilesLossConfig inf_w = {0.95f, 0.05f, {1.0f, 1.0f}};
        inf_w.class_weight[k] = INFINITY;
        miles_model_set_loss(m, &inf_w);
        expect_err(m, &x.b, MILES_EINVAL, "must be finite");
    }
    MilesLossConfig ok_w = {0.95f, 0.05f, {1.0f, 1.0f}};
    miles_model_set_loss(m, &ok_w);
    /* backward after a failed forward is refused */
    assert_int_equal(miles_model_backward(m, 1.0f), MILES_EINVAL);
    /* the model still works after all that */
    float loss = -1;
    assert_int_equal(miles_model_forward(m, &x.b, 1, NULL, NULL, &loss), MILES_OK);
    assert_true(isfinite(loss) && loss > 0);
    assert_int_equal(miles_model_backward(m, 1.0f), MILES_OK);
    /* word embeddings given (explanations): every element is checked, the first and the last too */
    const int H = miles_model_config(m)->hidden_size;
    float *emb = calloc((size_t)4 * 8 * H, sizeof(float));
    const size_t last = (size_t)4 * 8 * H - 1;
    emb[0] = NAN;
    assert_int_equal(miles_model_forward_embeds(m, &x.b, emb, 1, NULL, NULL, NULL), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "row 0 token 0 channel 0 is NaN"));
    emb[0] = 0.0f;
    emb[last] = -INFINITY;
    assert_int_equal(miles_model_forward_embeds(m, &x.b, emb, 1, NULL, NULL, NULL), MILES_ENAN);
    char want[64];
    snprintf(want, sizeof want, "row 3 token 7 channel %d is Inf", H - 1);
    assert_non_null(strstr(miles_last_error(), want));
    emb[last] = 0.0f;
    assert_int_equal(miles_model_forward_embeds(m, &x.b, emb, 1, NULL, NULL, NULL), MILES_OK);
    free(emb);
    /* token_type_ids NULL means all zeros: the same outputs as explicit zeros */
    float lz[8], ln[8], vz[4], vn[4];
    int32_t zeros[4 * 8] = {0};
    b = x.b;
    b.token_type_ids = zeros;
    assert_int_equal(miles_model_forward(m, &b, 0, lz, vz, NULL), MILES_OK);
    b.token_type_ids = NULL;
    assert_int_equal(miles_model_forward(m, &b, 0, ln, vn, NULL), MILES_OK);
    assert_memory_equal(lz, ln, sizeof lz);
    assert_memory_equal(vz, vn, sizeof vz);
    /* forward without targets: outputs but no backward */
    b = x.b;
    b.labels = NULL;
    b.velocity = NULL;
    assert_int_equal(miles_model_forward(m, &b, 0, NULL, NULL, &loss), MILES_OK);
    assert_true(loss == 0.0f);
    assert_int_equal(miles_model_backward(m, 1.0f), MILES_EINVAL);
    printf("  rejected: %s\n", miles_last_error());
    miles_model_free(m);
}

/* Each check of miles_config_validate, one field broken at a time on the
 * tiny preset: MILES_EINVAL and a message naming the field and its value;
 * the values at each limit pass.  A case is a list of edits, each one int (I)
 * or float (F) field of MilesConfig set to a value. */
typedef struct { size_t off; char kind; double v; } ConfigEdit;
#define I(field, val) {offsetof(MilesConfig, field), 'i', (val)}
#define F(field, val) {offsetof(MilesConfig, field), 'f', (val)}
enum { CONFIG_EDITS = 8 };
typedef struct { const char *label; ConfigEdit e[CONFIG_EDITS]; const char *needle; } ConfigCase;

static void config_apply(MilesConfig *c, const ConfigEdit *e) {
    for (int k = 0; k < CONFIG_EDITS && e[k].kind; k++) {
        if (e[k].kind == 'i') *(int *)((char *)c + e[k].off) = (int)e[k].v;
        else *(float *)((char *)c + e[k].off) = (float)e[k].v;
    }
}

static void test_config_validate_fields(void **state) {
    (void)state;
    const ConfigCase cases[] = {
        {"vocab 0", {I(vocab_size, 0)}, "vocab_size = 0 must be positive"},
        {"hidden -64", {I(hidden_size, -64)}, "hidden_size = -64 must be positive"},
        {"layers 0", {I(num_hidden_layers, 0)}, "num_hidden_layers = 0 must be positive"},
        {"heads 0", {I(num_attention_heads, 0)}, "num_attention_heads = 0 must be positive"},
        {"intermediate 0", {I(intermediate_size, 0)}, "intermediate_size = 0 must be positive"},
        {"positions 0", {I(max_position_embeddings, 0)}, "max_position_embeddings = 0 must be positive"},
        {"types 0", {I(type_vocab_size, 0)}, "type_vocab_size = 0 must be positive"},
        {"features 0", {I(num_features, 0)}, "num_features = 0 must be positive"},
        {"vocab 2^22+1", {I(vocab_size, (1 << 22) + 1)}, "vocab_size = 4194305 exceeds the limit 4194304"},
        {"hidden 16388", {I(hidden_size, 16384 + 4)}, "hidden_size = 16388 exceeds the limit 16384"},
        {"layers 257", {I(num_hidden_layers, 257)}, "num_hidden_layers = 257 exceeds the limit 256"},
        {"heads 1025", {I(num_attention_heads, 1025)}, "num_attention_heads = 1025 exceeds the limit 1024"},
        {"intermediate 65537", {I(intermediate_size, 65537)}, "intermediate_size = 65537 exceeds the limit 65536"},
        {"positions 65537", {I(max_position_embeddings, 65537)}, "max_position_embeddings = 65537 exceeds the limit 65536"},
        {"types 1025", {I(type_vocab_size, 1025)}, "type_vocab_size = 1025 exceeds the limit 1024"},
        {"features 65537", {I(num_features, 65537)}, "num_features = 65537 exceeds the limit 65536"},
        {"heads 5", {I(num_attention_heads, 5)}, "hidden_size 64 is not a multiple of num_attention_heads 5"},
        {"eps 0", {F(layer_norm_eps, 0)}, "layer_norm_eps = 0 must be positive"},
        {"eps inf", {F(layer_norm_eps, INFINITY)}, "layer_norm_eps = inf must be positive"},
        {"eps nan", {F(layer_norm_eps, NAN)}, "layer_norm_eps = nan must be positive"},
        {"hidden dropout 1", {F(hidden_dropout_prob, 1)}, "hidden_dropout_prob[0] = 1 must be in [0, 1)"},
        {"attention dropout -0.1", {F(attention_probs_dropout_prob, -0.1)},
         "attention_probs_dropout_prob[0] = -0.1 must be in [0, 1)"},
        {"text dropout nan", {F(text_dropout, NAN)}, "text_dropout[0] = nan must be in [0, 1)"},
        {"pooling 7", {I(pooling, 7)}, "pooling = 7 is not a MILES_POOL_* value"},
        {"velocity activation 5", {I(velocity_activation, 5)}, "velocity_activation = 5 is not a MILES_VEL_* value"},
        {"n_numeric -1", {I(n_numeric, -1)}, "n_numeric = -1 must be in [0, "},
        {"n_numeric max+1", {I(n_numeric, MILES_MAX_MLP + 1)}, "n_numeric = "},
        {"n_fusion -1", {I(n_fusion, -1)}, "n_fusion = -1 must be in [0, "},
        {"n_fusion max+1", {I(n_fusion, MILES_MAX_MLP + 1)}, "n_fusion = "},
        /* the MLPs' last layer (base has two each): the loops go past [0] */
        {"numeric width 0", {I(numeric_widths[1], 0)}, "numeric_widths[1] = 0 must be positive"},
        {"numeric dropout 1", {F(numeric_dropouts[1], 1)}, "numeric_dropouts[1] = 1 must be in [0, 1)"},
        {"fusion width 0", {I(fusion_widths[1], 0)}, "fusion_widths[1] = 0 must be positive"},
        {"fusion dropout 1.5", {F(fusion_dropouts[1], 1.5)}, "fusion_dropouts[1] = 1.5 must be in [0, 1)"},
        {"numeric width 65537", {I(numeric_widths[0], 65537)}, "numeric_widths[0] = 65537 exceeds the limit 65536"},
        {"fusion width 65537", {I(fusion_widths[0], 65537)}, "fusion_widths[0] = 65537 exceeds the limit 65536"},
        {"BERT-xxl parameters",
         {I(num_hidden_layers, 256), I(hidden_size, 4096), I(num_attention_heads, 64), I(intermediate_size, 16384)},
         "encoder parameters exceed the limit 2^31 (layers 256, hidden 4096"},
        {"2^31 + 1024 encoder parameters",
         {I(vocab_size, 2084351), I(hidden_size, 1024), I(num_attention_heads, 16), I(num_hidden_layers, 1),
          I(intermediate_size, 4096), I(max_position_embeddings, 512), I(type_vocab_size, 2)},
         "2.15e+09 encoder parameters exceed the limit 2^31 (layers 1, hidden 1024, intermediate 4096, vocab 2084351)"},
        {"embedding of 2^22 x 1024", {I(vocab_size, 1 << 22), I(hidden_size, 1024), I(num_attention_heads, 16)},
         "encoder parameters exceed the limit 2^31 (layers 2, hidden 1024, intermediate 128, vocab 4194304)"},
    };
    /* at the limits: valid */
    const ConfigCase ok[] = {
        {"sizes at their limits",
         {I(vocab_size, 1 << 22), I(max_position_embeddings, 65536), I(type_vocab_size, 1024), I(num_features, 65536),
          I(intermediate_size, 65536), I(numeric_widths[0], 65536), I(fusion_widths[0], 65536),
          F(hidden_dropout_prob, 0)}},
        {"hidden 16384, 1024 heads", {I(hidden_size, 16384), I(num_attention_heads, 1024), I(num_hidden_layers, 1)}},
        {"256 layers", {I(num_hidden_layers, 256)}},
        {"no fusion layer, 8 numeric", {I(n_fusion, 0), I(n_numeric, MILES_MAX_MLP)}},
        /* (V + 512 + 2) * 1024 + 4 * 1024^2 + 2 * 1024 * 4096 = 2^31 exactly */
        {"2^31 encoder parameters",
         {I(vocab_size, 2084350), I(hidden_size, 1024), I(num_attention_heads, 16), I(num_hidden_layers, 1),
          I(intermediate_size, 4096), I(max_position_embeddings, 512), I(type_vocab_size, 2)}},
    };
    MilesConfig base;
    assert_int_equal(miles_config_preset(&base, "miles", "tiny"), MILES_OK);
    assert_true(MILES_MAX_MLP >= 2);
    base.n_numeric = base.n_fusion = 2;
    for (int i = 1; i < MILES_MAX_MLP; i++) base.numeric_widths[i] = 32; /* [2..] for the 8-layer case */
    base.fusion_widths[1] = 48;
    base.numeric_dropouts[1] = base.fusion_dropouts[1] = 0.1f;
    if (miles_config_validate(&base)) fail_msg("base: %s", miles_last_error());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        MilesConfig c = base;
        config_apply(&c, cases[i].e);
        int rc = miles_config_validate(&c);
        const char *msg = miles_last_error();
        printf("  %-24s -> %s: %s\n", cases[i].label, miles_status_name(rc), msg);
        if (rc != MILES_EINVAL) fail_msg("%s: expected MILES_EINVAL, got %s", cases[i].label, miles_status_name(rc));
        if (!strstr(msg, cases[i].needle)) fail_msg("%s: message lacks '%s'", cases[i].label, cases[i].needle);
    }
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        MilesConfig c = base;
        config_apply(&c, ok[i].e);
        if (miles_config_validate(&c)) fail_msg("%s: %s", ok[i].label, miles_last_error());
    }
}
#undef I
#undef F

static void test_bad_config(void **state) {
    (void)state;
    MilesConfig c;
    assert_int_equal(miles_config_preset(&c, "nope", "tiny"), MILES_EINVAL);
    assert_int_equal(miles_config_preset(&c, "miles", "bert-huge"), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "bert-huge"));
    miles_config_preset(&c, "miles", "tiny");
    c.num_attention_heads = 5;
    MilesModel *m = (MilesModel *)0x1;
    assert_int_equal(miles_model_build(&m, &c), MILES_EINVAL);
    assert_null(m);
    assert_non_null(strstr(miles_last_error(), "not a multiple"));
    printf("  rejected: %s\n", miles_last_error());
    miles_config_preset(&c, "miles", "tiny");
    c.fusion_dropouts[0] = 1.0f;
    assert_int_equal(miles_config_validate(&c), MILES_EINVAL);
    miles_config_preset(&c, "miles", "tiny");
    c.n_fusion = MILES_MAX_MLP + 1;
    assert_int_equal(miles_config_validate(&c), MILES_EINVAL);
    miles_config_preset(&c, "miles", "tiny");
    c.pooling = 7;
    assert_int_equal(miles_config_validate(&c), MILES_EINVAL);
    miles_config_preset(&c, "miles", "tiny");
    c.numeric_widths[0] = 0;
    assert_int_equal(miles_config_validate(&c), MILES_EINVAL);
    assert_int_equal(miles_config_validate(NULL), MILES_EINVAL);
    /* presets */
    assert_int_equal(miles_config_preset(&c, "seed-notebook", "bert-base"), MILES_OK);
    assert_string_equal(c.preset, "seed-notebook");
    assert_int_equal(c.n_numeric, 0);
    assert_int_equal(c.fusion_widths[0], 1024);
    assert_int_equal(c.fusion_widths[1], 256);
    assert_int_equal(c.velocity_activation, MILES_VEL_LINEAR);
    assert_int_equal(miles_config_validate(&c), MILES_OK);
    assert_string_equal(miles_feature_names[0], "views");
    assert_string_equal(miles_feature_names[17], "publish_dayofweek");
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_read_hf(void **state) {
    (void)state;
    char dir[] = "/tmp/miles_test_model_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    MilesConfig c;
    miles_config_preset(&c, "miles", "tiny");
    write_text(path, "{\"model_type\": \"bert\", \"hidden_act\": \"gelu\", \"vocab_size\": 1000,"
                     " \"hidden_size\": 96, \"num_hidden_layers\": 3, \"num_attention_heads\": 6,"
                     " \"intermediate_size\": 200, \"max_position_embeddings\": 40,"
                     " \"layer_norm_eps\": 1e-7, \"hidden_dropout_prob\": 0.05}");
    assert_int_equal(miles_config_read_hf(&c, path), MILES_OK);
    assert_int_equal(c.vocab_size, 1000);
    assert_int_equal(c.hidden_size, 96);
    assert_int_equal(c.num_hidden_layers, 3);
    assert_int_equal(c.num_attention_heads, 6);
    assert_int_equal(c.intermediate_size, 200);
    assert_int_equal(c.max_position_embeddings, 40);
    assert_int_equal(c.type_vocab_size, 2); /* HF default */
    assert_true(fabsf(c.layer_norm_eps - 1e-7f) < 1e-12f);
    assert_true(fabsf(c.hidden_dropout_prob - 0.05f) < 1e-7f);
    assert_true(fabsf(c.attention_probs_dropout_prob - 0.1f) < 1e-7f);
    assert_int_equal(c.n_numeric, 1); /* head fields untouched */
    assert_string_equal(c.preset, "miles");

    write_text(path, "{\"hidden_act\": \"gelu_new\", \"vocab_size\": 10, \"hidden_size\": 8,"
                     " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 8}");
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EUNSUPPORTED);
    assert_non_null(strstr(miles_last_error(), "gelu_new"));
    assert_non_null(strstr(miles_last_error(), path));
    printf("  rejected: %s\n", miles_last_error());
    assert_int_equal(c.hidden_size, 96); /* unchanged on error */

    write_text(path, "{\"model_type\": \"roberta\"}");
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EUNSUPPORTED);
    write_text(path, "{\"vocab_size\": 10, \"hidden_size\": 8}");
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "num_hidden_layers"));
    write_text(path, "{\"vocab_size\": 10, \"hidden_size\": 9, \"num_hidden_layers\": 1,"
                     " \"num_attention_heads\": 2, \"intermediate_size\": 8}");
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EINVAL);
    write_text(path, "{\"vocab_size\": \"ten\"}");
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EFORMAT);
    write_text(path, "{\"vocab_size\": 10,");
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EFORMAT);
    printf("  rejected: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "invalid JSON near byte 17"));
    write_text(path, "{\"vocab_size\": 10");   /* cJSON stops at the end: byte 16 */
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EFORMAT);
    printf("  rejected: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "invalid JSON near byte 16"));
    write_text(path, "");   /* an empty file: cJSON's error pointer is the end, byte 0 */
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "invalid JSON near byte 0"));
    /* sizes of 1 are valid (the checks are "positive", not "> 1") */
    write_text(path, "{\"vocab_size\": 1, \"hidden_size\": 2, \"num_hidden_layers\": 1, \"num_attention_heads\": 1,"
                     " \"intermediate_size\": 1, \"max_position_embeddings\": 1, \"type_vocab_size\": 1}");
    if (miles_config_read_hf(&c, path)) fail_msg("%s", miles_last_error());
    assert_int_equal(c.intermediate_size, 1);
    assert_int_equal(c.max_position_embeddings, 1);
    assert_int_equal(c.type_vocab_size, 1);
    unlink(path);
    assert_int_equal(miles_config_read_hf(&c, path), MILES_EMISSING);
    rmdir(dir);

    /* the real all-MiniLM-L6-v2 config, when `make weights` has run */
    if (access("models/all-MiniLM-L6-v2/config.json", R_OK) == 0) {
        miles_config_preset(&c, "miles", "tiny");
        assert_int_equal(miles_config_read_hf(&c, "models/all-MiniLM-L6-v2/config.json"), MILES_OK);
        MilesConfig want;
        miles_config_preset(&want, "miles", "minilm-l6");
        assert_int_equal(c.vocab_size, want.vocab_size);
        assert_int_equal(c.hidden_size, want.hidden_size);
        assert_int_equal(c.num_hidden_layers, want.num_hidden_layers);
        assert_int_equal(c.num_attention_heads, want.num_attention_heads);
        assert_int_equal(c.intermediate_size, want.intermediate_size);
        assert_int_equal(c.max_position_embeddings, want.max_position_embeddings);
        printf("  models/all-MiniLM-L6-v2/config.json matches the minilm-l6 preset\n");
    }
}

/* ------------------------------------------------------------- dropout */

static void test_dropout_determinism(void **state) {
    (void)state;
    MilesModel *m = tiny_model("miles", MILES_POOL_POOLER, 5);
    Batch x;
    make_batch(&x, 6, 12, 128);
    float l1[12], l2[12], l3[12], le[12], le2[12];
    float loss1, loss2;
    miles_model_set_dropout_key(m, 99, 10);
    assert_int_equal(miles_model_forward(m, &x.b, 1, l1, NULL, &loss1), MILES_OK);
    miles_model_set_dropout_key(m, 99, 10);
    assert_int_equal(miles_model_forward(m, &x.b, 1, l2, NULL, &loss2), MILES_OK);
    assert_memory_equal(l1, l2, sizeof l1);
    assert_true(loss1 == loss2);
    miles_model_set_dropout_key(m, 99, 11);
    assert_int_equal(miles_model_forward(m, &x.b, 1, l3, NULL, NULL), MILES_OK);
    double dstep = test_max_abs_diff(l1, l3, 12);
    miles_model_set_dropout_key(m, 100, 10);
    assert_int_equal(miles_model_forward(m, &x.b, 1, l3, NULL, NULL), MILES_OK);
    double dseed = test_max_abs_diff(l1, l3, 12);
    assert_int_equal(miles_model_forward(m, &x.b, 0, le, NULL, NULL), MILES_OK);
    miles_model_set_dropout_key(m, 1, 1);
    assert_int_equal(miles_model_forward(m, &x.b, 0, le2, NULL, NULL), MILES_OK);
    assert_memory_equal(le, le2, sizeof le); /* eval ignores the key */
    double dtrain = test_max_abs_diff(l1, le, 12);
    printf("  dropout: same key identical; logits change %.3e (step) %.3e (seed) %.3e (eval)\n", dstep,
           dseed, dtrain);
    assert_true(dstep > 1e-4 && dseed > 1e-4 && dtrain > 1e-4);
    miles_model_free(m);
}

/* Finite differences with dropout ON (fixed key) at every site: checks that
 * the backward regenerates exactly the forward's masks.  In fp32 the loss
 * (~0.7) resolves ~6e-8, so a central difference with eps 1e-3 resolves
 * gradients to ~3e-5: for each tensor the element with the largest |grad| is
 * checked when that is > 1e-3 (embeddings sit upstream of every BERT dropout
 * site, pooler/numeric/fusion upstream of the head sites).  Observed errors are
 * a few % (curvature + rounding); a mask mismatch gives O(1) errors, which the
 * negative control (backward under a different dropout key) demonstrates.
 * Returns the worst relative error. */
static double fd_check(MilesModel *m, const MilesBatch *b, uint64_t bwd_step, int *n_checked,
                       int *emb_checked) {
    const double eps = 1e-3;
    float l0;
    miles_model_set_dropout_key(m, 4242, 3);
    miles_model_zero_grad(m);
    assert_int_equal(miles_model_forward(m, b, 1, NULL, NULL, &l0), MILES_OK);
    miles_model_set_dropout_key(m, 4242, bwd_step); /* == 3 except in the negative control */
    assert_int_equal(miles_model_backward(m, 1.0f), MILES_OK);
    miles_model_set_dropout_key(m, 4242, 3);
    double worst = 0.0;
    *n_checked = 0;
    *emb_checked = 0;
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        size_t best = 0;
        for (size_t i = 1; i < ti.numel; i++)
            if (fabsf(ti.grad[i]) > fabsf(ti.grad[best])) best = i;
        double g = ti.grad[best];
        if (!(fabs(g) > 1e-3)) continue;
        float p0 = ti.data[best], lp, lm;
        ti.data[best] = p0 + (float)eps;
        assert_int_equal(miles_model_forward(m, b, 1, NULL, NULL, &lp), MILES_OK);
        ti.data[best] = p0 - (float)eps;
        assert_int_equal(miles_model_forward(m, b, 1, NULL, NULL, &lm), MILES_OK);
        ti.data[best] = p0;
        double fd = ((double)lp - (double)lm) / (2 * eps);
        double rel = fabs(fd - g) / fabs(g);
        worst = test_max_err(worst, rel);
        (*n_checked)++;
        if (!strcmp(ti.name, "bert.embeddings.word_embeddings.weight")) *emb_checked = 1;
    }
    return worst;
}

static void gradcheck(const char *preset, int pooling) {
    MilesModel *m = tiny_model(preset, pooling, 11);
    Batch x;
    make_batch(&x, 5, 10, 128);
    MilesLossConfig lc = {0.95f, 0.05f, {0.625f, 2.5f}};
    miles_model_set_loss(m, &lc);
    int n, emb;
    double ok = fd_check(m, &x.b, 3, &n, &emb);
    int n2, emb2;
    double bad = fd_check(m, &x.b, 4, &n2, &emb2);
    printf("  finite differences with dropout on, %s/pooling %d: %d tensors, worst rel err %.2e "
           "(backward under another dropout key: %.2e)\n", preset, pooling, n, ok, bad);
    assert_true(emb && n >= 5);
    assert_true(ok < 5e-2);
    assert_true(bad > 0.2);
    /* the eval-mode gradient differs (dropout really was on) */
    float *g = copy_grads(m);
    miles_model_zero_grad(m);
    assert_int_equal(miles_model_forward(m, &x.b, 0, NULL, NULL, NULL), MILES_OK);
    assert_int_equal(miles_model_backward(m, 1.0f), MILES_OK);
    float *ge = copy_grads(m);
    assert_true(test_max_abs_diff(g, ge, miles_model_num_params(m)) > 1e-4);
    free(ge);
    free(g);
    miles_model_free(m);
}

static void test_gradcheck_dropout(void **state) {
    (void)state;
    gradcheck("miles", MILES_POOL_POOLER);
    gradcheck("seed-notebook", MILES_POOL_MEAN);
    gradcheck("miles", MILES_POOL_CLS);
}

/* ------------------------------------------- the pooled rows alone */

/* Equal values (-0 == +0: the pooled-only backward leaves out products with
 * a zero factor, which can flip only the sign of a zero); NaN never equal. */
static size_t count_unequal(const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !(a[i] == b[i]);
    return bad;
}

/* One training forward + backward (dropout on, fixed key): logits,
 * velocity, loss, every parameter gradient and the word-vector gradient. */
typedef struct {
    float logits[32], vel[16], loss;
    float *grads, *dword;
} PassOut;

static void pass(MilesModel *m, const Batch *x, int pooled_only, int training, PassOut *o) {
    const size_t np = miles_model_num_params(m), H = (size_t)miles_model_config(m)->hidden_size;
    miles_model_set_pooled_only(m, pooled_only);
    miles_model_set_dropout_key(m, 77, 5);
    miles_model_zero_grad(m);
    OK(miles_model_forward(m, &x->b, training, o->logits, o->vel, &o->loss));
    assert_true((miles_model_last_hidden(m) == NULL) ==
                (pooled_only && miles_model_config(m)->pooling != MILES_POOL_MEAN));
    OK(miles_model_backward(m, 1.0f));
    o->grads = copy_grads(m);
    o->dword = malloc((size_t)x->B * x->T * H * sizeof(float));
    OK(miles_model_input_grads(m, o->dword, NULL));
    (void)np;
}

/* miles_model_set_pooled_only: the last layer on the [CLS] rows alone gives
 * the full layer's bits.  B 16 x T 40 puts the [CLS] rows of the full
 * product's 640 tokens in three K slices of 256 (7, 6 and 3 rows): a weight
 * gradient summed over the 16 rows at once rounds differently (caught).
 * Padding (rows of 40, 38, 36 tokens) and dropout at every site are on. */
static void test_pooled_only(void **state) {
    (void)state;
    const int pools[3] = {MILES_POOL_POOLER, MILES_POOL_CLS, MILES_POOL_MEAN};
    for (int pi = 0; pi < 3; pi++)
        for (int training = 0; training < 2; training++) {
            MilesModel *m = tiny_model("miles", pools[pi], 21);
            MilesLossConfig lc = {0.95f, 0.05f, {0.625f, 2.5f}};
            miles_model_set_loss(m, &lc);
            Batch x;
            make_batch(&x, 16, 40, 128);
            PassOut full, cls;
            pass(m, &x, 0, training, &full);
            pass(m, &x, 1, training, &cls);
            const size_t np = miles_model_num_params(m);
            const size_t nw = (size_t)16 * 40 * miles_model_config(m)->hidden_size;
            size_t bl = count_unequal(full.logits, cls.logits, 32), bv = count_unequal(full.vel, cls.vel, 16);
            size_t bg = count_unequal(full.grads, cls.grads, np), bw = count_unequal(full.dword, cls.dword, nw);
            printf("  pooled only, pooling %d, %s: unequal logits %zu velocity %zu loss %d grads %zu/%zu "
                   "word grads %zu/%zu (max |diff| %.2e)\n",
                   pools[pi], training ? "dropout on" : "eval", bl, bv, !(full.loss == cls.loss), bg, np, bw,
                   nw, test_max_abs_diff(full.grads, cls.grads, np));
            assert_true(bl == 0 && bv == 0 && full.loss == cls.loss && bg == 0 && bw == 0);
            /* the setting is back off: the last hidden state is there again */
            assert_int_equal(miles_model_set_pooled_only(m, 0), 1);
            OK(miles_model_forward(m, &x.b, 0, NULL, NULL, NULL));
            assert_non_null(miles_model_last_hidden(m));
            free(full.grads), free(full.dword), free(cls.grads), free(cls.dword);
            miles_model_free(m);
        }
}

/* ------------------------------------------------- accumulation, padding */

/* Accumulation semantics: backward() adds d(loss_scale * batch loss)/dθ, and
 * each batch loss is a mean over its rows.  With unweighted CE (class weights
 * 1,1) two micro-batches of 2 rows with loss_scale 0.5 each equal one batch of
 * 4 rows.  (With class weights the CE is normalized by the sum of the weights
 * of each micro-batch, so accumulation is exact only for equal weight sums.) */
static void test_grad_accumulation(void **state) {
    (void)state;
    MilesModel *m = tiny_model("miles", MILES_POOL_MEAN, 13);
    MilesLossConfig lc = {0.95f, 0.05f, {1.0f, 1.0f}};
    miles_model_set_loss(m, &lc);
    Batch x;
    make_batch(&x, 4, 10, 128);
    /* eval mode: dropout masks are keyed by element index, so they differ
     * between a batch of 4 and two batches of 2 */
    miles_model_zero_grad(m);
    assert_int_equal(miles_model_forward(m, &x.b, 0, NULL, NULL, NULL), MILES_OK);
    assert_int_equal(miles_model_backward(m, 1.0f), MILES_OK);
    size_t n = miles_model_num_params(m);
    float *full = copy_grads(m);
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = test_max_err(gmax, fabs(full[i]));

    /* two micro-batches (rows {0,3} and {1,2}: lengths 10,10 and 8,6); the
     * second is re-padded to its own longest row (T 8): dynamic padding */
    miles_model_zero_grad(m);
    for (int half = 0; half < 2; half++) {
        Batch y;
        memset(&y, 0, sizeof y);
        int T = half ? 8 : 10;
        for (int r = 0; r < 2; r++) {
            int src = half ? 1 + r : 3 * r;
            for (int t = 0; t < T; t++) {
                y.ids[r * T + t] = x.ids[src * 10 + t];
                y.tt[r * T + t] = x.tt[src * 10 + t];
                y.mask[r * T + t] = x.mask[src * 10 + t];
            }
            for (int t = T; t < 10; t++) assert_int_equal(x.mask[src * 10 + t], 0);
            memcpy(&y.feats[r * MILES_NUM_FEATURES], &x.feats[src * MILES_NUM_FEATURES],
                   MILES_NUM_FEATURES * sizeof(float));
            y.labels[r] = x.labels[src];
            y.vel[r] = x.vel[src];
        }
        MilesBatch b = {2, T, y.ids, y.tt, y.mask, y.feats, y.labels, y.vel};
        assert_int_equal(miles_model_forward(m, &b, 0, NULL, NULL, NULL), MILES_OK);
        assert_int_equal(miles_model_backward(m, 0.5f), MILES_OK);
    }
    float *acc = copy_grads(m);
    double e = test_max_abs_diff(full, acc, n) / gmax;
    printf("  accumulation: 2 x 2 rows (loss_scale 0.5) vs 4 rows: max err / max|grad| = %.2e\n", e);
    assert_true(e < 1e-5);
    free(full);
    free(acc);
    miles_model_free(m);
}

static void test_padding_invariance(void **state) {
    (void)state;
    const int pools[3] = {MILES_POOL_POOLER, MILES_POOL_CLS, MILES_POOL_MEAN};
    for (int k = 0; k < 3; k++) {
        MilesModel *m = tiny_model("miles", pools[k], 17);
        Batch x, y;
        make_batch(&x, 3, 9, 128);
        /* same rows with 7 extra padding columns (garbage ids under mask 0) */
        memset(&y, 0, sizeof y);
        for (int r = 0; r < 3; r++)
            for (int t = 0; t < 16; t++) {
                y.ids[r * 16 + t] = t < 9 ? x.ids[r * 9 + t] : 77;
                y.tt[r * 16 + t] = t < 9 ? x.tt[r * 9 + t] : 1;
                y.mask[r * 16 + t] = t < 9 ? x.mask[r * 9 + t] : 0;
            }
        memcpy(y.feats, x.feats, sizeof y.feats);
        memcpy(y.labels, x.labels, sizeof y.labels);
        memcpy(y.vel, x.vel, sizeof y.vel);
        MilesBatch b = {3, 16, y.ids, y.tt, y.mask, y.feats, y.labels, y.vel};
        float la[6], lb[6], va[3], vb[3];
        assert_int_equal(miles_model_forward(m, &x.b, 0, la, va, NULL), MILES_OK);
        assert_int_equal(miles_model_forward(m, &b, 0, lb, vb, NULL), MILES_OK);
        double e = test_max_err(test_max_abs_diff(la, lb, 6), test_max_abs_diff(va, vb, 3));
        printf("  padding T 9 -> 16, pooling %d: max abs diff %.2e\n", pools[k], e);
        assert_true(e < 1e-5);
        miles_model_free(m);
    }
}

/* ------------------------------------------------------- optimizer */

/* AdamW against a double-precision transcription of torch.optim.AdamW on
 * synthetic gradients, with HF decay groups and with decay_all. */
static void adamw_case(int decay_all) {
    MilesModel *m = tiny_model("seed-notebook", MILES_POOL_POOLER, 19);
    size_t n = miles_model_num_params(m);
    int nt = miles_model_num_tensors(m);
    MilesTensorInfo t0;
    miles_model_tensor(m, 0, &t0);
    double *p = malloc(n * sizeof *p), *mm = calloc(n, sizeof *mm), *vv = calloc(n, sizeof *vv);
    unsigned char *dec = malloc(n);
    for (int t = 0; t < nt; t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        memset(dec + (ti.data - t0.data), decay_all || ti.decay, ti.numel);
    }
    for (size_t i = 0; i < n; i++) p[i] = t0.data[i];
    MilesAdamWConfig oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                           .weight_decay = 0.1f, .decay_all = decay_all};
    MilesAdamW *o = NULL;
    assert_int_equal(miles_adamw_build(&o, m, &oc), MILES_OK);
    const float lrs[4] = {1e-3f, 5e-4f, 2e-3f, 0.0f};
    for (int s = 0; s < 4; s++) {
        for (size_t i = 0; i < n; i++) /* gradients of mixed sign and magnitude */
            t0.grad[i] = (float)(sin(0.37 * i + s) * pow(10.0, -(double)((i * 7 + s) % 5)));
        assert_int_equal(miles_adamw_step(o, lrs[s]), MILES_OK);
        double b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = lrs[s], wd = 0.1f;
        int t = s + 1;
        for (size_t i = 0; i < n; i++) {
            double g = t0.grad[i];
            if (dec[i]) p[i] *= 1.0 - lr * wd;
            mm[i] = b1 * mm[i] + (1 - b1) * g;
            vv[i] = b2 * vv[i] + (1 - b2) * g * g;
            double mh = mm[i] / (1 - pow(b1, t)), vh = vv[i] / (1 - pow(b2, t));
            p[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    double e = 0, em = 0, mmax = 0;
    float *M = miles_adamw_m(o);
    for (size_t i = 0; i < n; i++) {
        e = test_max_err(e, fabs(t0.data[i] - p[i]));
        em = test_max_err(em, fabs(M[i] - mm[i]));
        mmax = test_max_err(mmax, fabs(mm[i]));
    }
    em /= mmax;
    /* a decay-group mistake moves a LayerNorm weight (~1) by lr*wd*sum(lr) ~ 3.5e-4 */
    printf("  AdamW (decay_all=%d) vs double reference, 4 steps: max abs err %.2e, m err/max|m| %.2e\n",
           decay_all, e, em);
    assert_true(e < 2e-6);
    assert_true(em < 1e-5);
    assert_int_equal(miles_adamw_steps(o), 4);
    miles_adamw_set_steps(o, 10);
    assert_int_equal(miles_adamw_steps(o), 10);
    assert_int_equal(miles_adamw_step(o, NAN), MILES_EINVAL);
    miles_adamw_free(o);
    free(p);
    free(mm);
    free(vv);
    free(dec);
    miles_model_free(m);
}

static void test_adamw(void **state) {
    (void)state;
    adamw_case(0);
    adamw_case(1);
    MilesModel *m = tiny_model("miles", MILES_POOL_CLS, 1);
    MilesAdamWConfig bad = {.lr = 1e-3f, .beta1 = 1.0f, .beta2 = 0.999f, .eps = 1e-8f};
    MilesAdamW *o = NULL;
    assert_int_equal(miles_adamw_build(&o, m, &bad), MILES_EINVAL);
    assert_null(o);
    miles_model_free(m);
}

/* ------------------------------------------------- parameter groups */

/* The model of the parameter-group golden fixture (tests/gen_adamw_groups.py):
 * a small "miles" model so the fixture stays small. */
static MilesModel *groups_model(void) {
    MilesConfig c;
    assert_int_equal(miles_config_preset(&c, "miles", "tiny"), MILES_OK);
    c.vocab_size = 24;
    c.hidden_size = 8;
    c.num_attention_heads = 2;
    c.intermediate_size = 16;
    c.max_position_embeddings = 12;
    c.pooling = MILES_POOL_POOLER;
    c.n_numeric = 1;
    c.numeric_widths[0] = 6;
    c.n_fusion = 1;
    c.fusion_widths[0] = 5;
    MilesModel *m = NULL;
    int s = miles_model_build(&m, &c);
    if (s != MILES_OK) fail_msg("build: %s", miles_last_error());
    return m;
}

/* AdamW with parameter groups against torch.optim.AdamW (1.13) with param
 * groups, 3 steps, golden fixture: case 0 = head lr only (two lr groups),
 * case 1 = head lr + layer-wise decay.  Same hyper-parameters as the script. */
static void test_adamw_groups(void **state) {
    (void)state;
    if (getenv("MILES_DUMP_GROUP_TENSORS")) { /* input of tests/gen_adamw_groups.py */
        MilesModel *m = groups_model();
        FILE *f = fopen(getenv("MILES_DUMP_GROUP_TENSORS"), "w");
        assert_non_null(f);
        for (int t = 0; t < miles_model_num_tensors(m); t++) {
            MilesTensorInfo ti;
            miles_model_tensor(m, t, &ti);
            fprintf(f, "%s %zu %d\n", ti.name, ti.numel, ti.decay);
        }
        fclose(f);
        miles_model_free(m);
    }
    const float lr = 2e-3f, head_lr = 1e-2f, wd = 0.05f;
    const float decays[2] = {0.0f, 0.7f};
    MilesSafetensors *st = NULL;
    OK(miles_safetensors_open(&st, "tests/fixtures/adamw_groups.safetensors"));
    for (int cs = 0; cs < 2; cs++) {
        MilesModel *m = groups_model();
        const int nt = miles_model_num_tensors(m);
        char key[160];
        for (int t = 0; t < nt; t++) {
            MilesTensorInfo ti;
            miles_model_tensor(m, t, &ti);
            snprintf(key, sizeof key, "p0/%s", ti.name);
            int k = miles_safetensors_find(st, key);
            if (k < 0) fail_msg("fixture lacks %s (regenerate with tests/gen_adamw_groups.py)", key);
            OK(miles_safetensors_read_f32(st, k, ti.data, ti.numel));
        }
        MilesAdamWConfig oc = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = wd,
                               .head_lr = head_lr, .layer_decay = decays[cs]};
        MilesAdamW *o = NULL;
        OK(miles_adamw_build(&o, m, &oc));
        for (int s = 0; s < 3; s++) {
            for (int t = 0; t < nt; t++) {
                MilesTensorInfo ti;
                miles_model_tensor(m, t, &ti);
                snprintf(key, sizeof key, "g%d/%s", s, ti.name);
                int k = miles_safetensors_find(st, key);
                assert_true(k >= 0);
                OK(miles_safetensors_read_f32(st, k, ti.grad, ti.numel));
            }
            OK(miles_adamw_step(o, lr));
        }
        double err = 0, moved_head = 0, moved_emb = 0;
        for (int t = 0; t < nt; t++) {
            MilesTensorInfo ti;
            miles_model_tensor(m, t, &ti);
            snprintf(key, sizeof key, "out%d/%s", cs, ti.name);
            int k = miles_safetensors_find(st, key);
            assert_true(k >= 0);
            float *want = malloc(ti.numel * sizeof *want), *p0 = malloc(ti.numel * sizeof *p0);
            OK(miles_safetensors_read_f32(st, k, want, ti.numel));
            snprintf(key, sizeof key, "p0/%s", ti.name);
            OK(miles_safetensors_read_f32(st, miles_safetensors_find(st, key), p0, ti.numel));
            for (size_t i = 0; i < ti.numel; i++) {
                err = test_max_err(err, fabs((double)ti.data[i] - want[i]));
                double mv = fabs((double)ti.data[i] - p0[i]);
                if (strncmp(ti.name, "bert.", 5)) moved_head = test_max_err(moved_head, mv);
                else if (!strncmp(ti.name, "bert.embeddings.", 16)) moved_emb = test_max_err(moved_emb, mv);
            }
            free(want);
            free(p0);
        }
        /* 3 Adam steps move a parameter by <= ~3 lr_group: the groups must differ */
        printf("  AdamW groups (head lr %g, layer decay %g) vs torch AdamW param groups, 3 steps: max abs err %.2e "
               "(max move: heads %.2e, embeddings %.2e)\n", (double)head_lr, (double)decays[cs], err, moved_head,
               moved_emb);
        assert_true(err < 1e-6);
        assert_true(moved_head > 2.0 * lr);
        miles_adamw_free(o);
        miles_model_free(m);
    }
    miles_safetensors_close(st);
    /* invalid group options */
    MilesModel *m = groups_model();
    MilesAdamW *o = NULL;
    MilesAdamWConfig bad = {.lr = 0.0f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .head_lr = 1e-3f};
    assert_int_equal(miles_adamw_build(&o, m, &bad), MILES_EINVAL);
    bad.lr = 1e-3f;
    bad.layer_decay = 1.5f;
    assert_int_equal(miles_adamw_build(&o, m, &bad), MILES_EINVAL);
    assert_null(o);
    miles_model_free(m);
}

/* The vectorized AdamW update (miles_adamw_update_range: AVX-512, AVX2) gives
 * exactly the scalar miles_adamw_update's bits (same IEEE operations, none
 * fused), on every length (vector body + scalar tail) and with and without
 * weight decay; ISAs the CPU lacks are skipped (and said so). */
static void test_adamw_vector_bits(void **state) {
    (void)state;
    const size_t n = 4099; /* 256 AVX-512 vectors + a 3-element tail */
    float *P0 = malloc(n * sizeof(float)), *M0 = malloc(n * sizeof(float)), *V0 = malloc(n * sizeof(float));
    float *G = malloc(n * sizeof(float)), *P = malloc(n * sizeof(float)), *M = malloc(n * sizeof(float));
    float *V = malloc(n * sizeof(float)), *Pr = malloc(n * sizeof(float)), *Mr = malloc(n * sizeof(float));
    float *Vr = malloc(n * sizeof(float));
    uint32_t r = 12345;
    for (size_t i = 0; i < n; i++) { /* mixed magnitudes: 1e-12 .. 1, both signs, some zero */
        r = r * 1664525u + 1013904223u;
        double u = (double)(r >> 8) / 16777216.0;
        G[i] = i % 97 == 0 ? 0.0f : (float)((u - 0.5) * pow(10.0, -(double)(i % 13)));
        P0[i] = (float)(sin(0.1 * i) * 0.05);
        M0[i] = G[i] * 0.3f;
        V0[i] = i % 5 == 0 ? 0.0f : G[i] * G[i] * 0.7f;
    }
    MilesAdamWConfig oc = {.lr = 2e-5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    const char *isas[] = {"avx512", "avx2", "scalar"};
    int tested = 0;
    for (int t = 1; t <= 3; t += 2) { /* early step (big bias corrections), later step */
        MilesAdamWScalars sc;
        miles_adamw_scalars(&oc, t, 2e-5f, &sc);
        for (int d = 0; d < 2; d++) {
            float dm = d ? sc.decay_mul : 1.0f;
            memcpy(Pr, P0, n * sizeof(float));
            memcpy(Mr, M0, n * sizeof(float));
            memcpy(Vr, V0, n * sizeof(float));
            for (size_t i = 0; i < n; i++) miles_adamw_update(&Pr[i], &Mr[i], &Vr[i], G[i], dm, &sc);
            for (int k = 0; k < 3; k++) {
                if (miles_adamw_force_isa(isas[k]) != 0) {
                    if (t == 1 && d == 0) printf("  adamw %s: not on this CPU, skipped\n", isas[k]);
                    continue;
                }
                for (size_t len = n - 16; len <= n; len += 5) { /* tails of 3, 8, 13, 2 */
                    memcpy(P, P0, n * sizeof(float));
                    memcpy(M, M0, n * sizeof(float));
                    memcpy(V, V0, n * sizeof(float));
                    miles_adamw_update_range(P, M, V, G, len, dm, &sc);
                    size_t diff = 0;
                    for (size_t i = 0; i < len; i++)
                        diff += memcmp(&P[i], &Pr[i], 4) != 0 || memcmp(&M[i], &Mr[i], 4) != 0 ||
                                memcmp(&V[i], &Vr[i], 4) != 0;
                    for (size_t i = len; i < n; i++) diff += P[i] != P0[i]; /* nothing past n touched */
                    if (diff) fail_msg("adamw %s step %d decay %d len %zu: %zu elements differ from the scalar update",
                                       isas[k], t, d, len, diff);
                    tested++;
                }
            }
        }
    }
    miles_adamw_force_isa(NULL);
    printf("  adamw vector update: %d (isa, step, decay, length) cases bitwise equal to the scalar update\n", tested);
    assert_true(tested >= 16); /* scalar always runs: 2 steps x 2 decays x 4 lengths */
    free(P0), free(M0), free(V0), free(G), free(P), free(M), free(V), free(Pr), free(Mr), free(Vr);
}

/* miles_sum_squares is defined as 4096-element blocks, each one sequential
 * double sum, the block sums added in order; it runs blocks 8 at a time in
 * independent chains.  Bitwise the definition, for lengths with whole
 * groups, a partial group and a partial block, and any thread count. */
static void test_sum_squares_order(void **state) {
    (void)state;
    const size_t sizes[] = {1, 4095, 4096, 8 * 4096, 8 * 4096 + 1, 19 * 4096 + 77, 70 * 4096 + 5};
    const size_t nmax = 70 * 4096 + 5;
    float *x = malloc(nmax * sizeof(float));
    for (size_t i = 0; i < nmax; i++) x[i] = (float)(cos(i * 0.013) * pow(10.0, (double)(i % 7) - 3.0));
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        double ref = 0.0;
        for (size_t b0 = 0; b0 < n; b0 += 4096) {
            double part = 0.0;
            for (size_t i = b0; i < n && i < b0 + 4096; i++) part += (double)x[i] * (double)x[i];
            ref += part;
        }
        for (int nt = 1; nt <= 3; nt++) {
#ifdef _OPENMP
            int t0 = omp_get_max_threads();
            omp_set_num_threads(nt);
#endif
            double got = miles_sum_squares(x, n);
#ifdef _OPENMP
            omp_set_num_threads(t0);
#endif
            if (memcmp(&got, &ref, sizeof got))
                fail_msg("sum of squares n=%zu threads %d: %.17g, the blocked definition gives %.17g", n, nt, got,
                         ref);
        }
    }
    printf("  sum of squares: 7 lengths x 1-3 threads bitwise equal to the sequential blocked sum\n");
    free(x);
}

static void test_clip(void **state) {
    (void)state;
    MilesModel *m = tiny_model("miles", MILES_POOL_CLS, 1);
    size_t n = miles_model_num_params(m);
    MilesTensorInfo t0;
    miles_model_tensor(m, 0, &t0);
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        t0.grad[i] = (float)cos(i * 0.01) * 1e-2f;
        ss += (double)t0.grad[i] * t0.grad[i];
    }
    double norm = sqrt(ss);
    float *before = copy_grads(m);
    float got = miles_clip_grad_norm(m, 1e9f); /* no clipping: unchanged */
    assert_true(fabs(got - norm) / norm < 1e-6);
    assert_memory_equal(before, t0.grad, n * sizeof(float));
    float maxn = (float)(norm / 4);
    got = miles_clip_grad_norm(m, maxn);
    assert_true(fabs(got - norm) / norm < 1e-6);
    double coef = maxn / (norm + 1e-6);
    double e = 0, ss2 = 0;
    for (size_t i = 0; i < n; i++) {
        e = test_max_err(e, fabs(t0.grad[i] - before[i] * coef));
        ss2 += (double)t0.grad[i] * t0.grad[i];
    }
    printf("  clip: norm %.6f -> %.6f (max %.6f), max err %.2e\n", norm, sqrt(ss2), maxn, e);
    assert_true(e < 1e-8);
    assert_true(fabs(sqrt(ss2) - maxn) / maxn < 1e-5);
    /* the norm's reduction order is fixed (4096-element blocks summed in
     * order): exactly the sequential blocked sum, for every thread count */
    memcpy(t0.grad, before, n * sizeof(float));
    double bss = 0;
    for (size_t b0 = 0; b0 < n; b0 += 4096) {
        double part = 0;
        for (size_t i = b0; i < n && i < b0 + 4096; i++) part += (double)t0.grad[i] * (double)t0.grad[i];
        bss += part;
    }
    float ref = (float)sqrt(bss), got1 = miles_clip_grad_norm(m, 1e9f);
    assert_memory_equal(&got1, &ref, sizeof ref);
#ifdef _OPENMP
    int threads0 = omp_get_max_threads();
    for (int nt = 1; nt <= 7; nt += 2) {
        omp_set_num_threads(nt);
        float g = miles_clip_grad_norm(m, 1e9f);
        printf("  clip: norm with %d thread(s) %.9g (sequential blocked sum: %.9g)\n", nt, g, ref);
        assert_memory_equal(&g, &ref, sizeof g);
    }
    omp_set_num_threads(threads0);
#endif
    free(before);
    miles_model_zero_grad(m);
    for (size_t i = 0; i < n; i++) assert_true(t0.grad[i] == 0.0f);
    miles_model_free(m);
}

static void test_lr_lambda_basics(void **state) {
    (void)state;
    /* warmup ramps from 0; linear ends at 0; cosine is 0.5 half-way; constant 1 */
    assert_true(miles_lr_lambda(MILES_SCHED_LINEAR, 0, 10, 100) == 0.0);
    assert_true(fabs(miles_lr_lambda(MILES_SCHED_LINEAR, 5, 10, 100) - 0.5) < 1e-12);
    assert_true(miles_lr_lambda(MILES_SCHED_LINEAR, 10, 10, 100) == 1.0);
    assert_true(miles_lr_lambda(MILES_SCHED_LINEAR, 100, 10, 100) == 0.0);
    assert_true(miles_lr_lambda(MILES_SCHED_LINEAR, 150, 10, 100) == 0.0);
    assert_true(fabs(miles_lr_lambda(MILES_SCHED_COSINE, 55, 10, 100) - 0.5) < 1e-12);
    assert_true(fabs(miles_lr_lambda(MILES_SCHED_COSINE, 100, 10, 100)) < 1e-12);
    assert_true(miles_lr_lambda(MILES_SCHED_CONSTANT, 3, 0, 10) == 1.0);
    assert_true(miles_lr_lambda(MILES_SCHED_CONSTANT, 3, 6, 10) == 0.5);
}

/* ------------------------------------------------- pinned trajectory */

/* A few real training steps (dropout on, weighted CE + MSE, backward, clipping,
 * AdamW with parameter groups, warmup + cosine) from weights and a batch made
 * without libm, hashed (FNV-1a 64 over the parameters' bytes and each step's
 * loss and gradient norm) and compared with the hash pinned here.  The other
 * bit-identity tests compare two runs of the same binary; this one ties every
 * run to these constants: on every machine of our kind (AVX-512, AVX2, each
 * GEMM kernel), thread count, OPENBLAS_CORETYPE setting, the ASan build and
 * the build without OpenMP (`make determinism`, `make asan`, `make variants`).
 * A change that moves one bit of training fails it: when that is deliberate
 * (another summation order, a new kernel contract), print the new hash and
 * update the constant in the same commit, saying why. */
#define PIN_MILES_MINILM 0x39e39b72cb8b7602ULL       /* miles preset, MiniLM-L6 layers, mean pooling */
#define PIN_SEED_NOTEBOOK_TINY 0x80f4f2c2f84d2efeULL /* seed-notebook preset, tiny at H 40 I 104, pooler, decay on all */

static uint64_t pin_trajectory(const MilesConfig *c, const MilesAdamWConfig *ac, int B, int T, int steps) {
    MilesModel *m = NULL;
    OK(miles_model_build(&m, c));
    test_pin_weights(m, 20261207);
    MilesLossConfig loss = {.w_cls = 0.95f, .w_reg = 0.05f, .class_weight = {0.6f, 2.5f}};
    miles_model_set_loss(m, &loss);
    MilesAdamW *opt = NULL;
    OK(miles_adamw_build(&opt, m, ac));
    TestPinBatch *x = malloc(sizeof *x);
    assert_non_null(x);
    uint64_t h = TEST_FNV_BASIS;
    for (int s = 0; s < steps; s++) {
        test_pin_batch(x, B, T - 2 * (s % 2), c->vocab_size, 77 + (uint64_t)s); /* T alternates: buffers reused */
        float l = 0;
        miles_model_zero_grad(m);
        miles_model_set_dropout_key(m, 42, (uint64_t)s);
        OK(miles_model_forward(m, &x->b, 1, NULL, NULL, &l));
        OK(miles_model_backward(m, 1.0f));
        float norm = miles_clip_grad_norm(m, 1.0f);
        float lr = (float)(ac->lr * miles_lr_lambda(MILES_SCHED_COSINE, s, 1, steps));
        OK(miles_adamw_step(opt, lr));
        if (!isfinite(l) || !isfinite(norm) || !(norm > 0)) fail_msg("step %d: loss %g, gradient norm %g", s, l, norm);
        if (s == steps - 1) printf("  step %d: loss %.9g, gradient norm %.9g, lr %.6g\n", s, l, norm, lr);
        h = test_fnv1a(h, &l, sizeof l);
        h = test_fnv1a(h, &norm, sizeof norm);
    }
    h = test_hash_params(h, m);
    free(x);
    miles_adamw_free(opt);
    miles_model_free(m);
    return h;
}

static void pin_check(const char *what, uint64_t got, uint64_t pinned) {
    printf("  pin %-58s 0x%016llx (pinned 0x%016llx) GEMM %s\n", what, (unsigned long long)got,
           (unsigned long long)pinned, miles_gemm_isa_name());
    if (got != pinned) fail_msg("%s: trajectory hash 0x%016llx, pinned 0x%016llx", what, (unsigned long long)got,
                                (unsigned long long)pinned);
}

static void test_trajectory_pin(void **state) {
    (void)state;
    MilesConfig mini, tiny;
    assert_int_equal(miles_config_preset(&mini, "miles", "minilm-l6"), MILES_OK);
    mini.vocab_size = 1000; /* the layers are MiniLM's; a smaller table keeps the set-up short */
    mini.pooling = MILES_POOL_MEAN;
    assert_int_equal(miles_config_preset(&tiny, "seed-notebook", "tiny"), MILES_OK);
    tiny.pooling = MILES_POOL_POOLER;
    /* widths that are not powers of two (v / C and v * (1/C) differ) and not
     * multiples of 16 (vector tails): what the emulated CPUs check */
    tiny.hidden_size = 40;
    tiny.intermediate_size = 104;
    MilesAdamWConfig am = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                           .head_lr = 1e-3f, .layer_decay = 0.8f};
    MilesAdamWConfig at = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                           .decay_all = 1};
    /* every GEMM kernel the CPU has (the generic one on the tiny model only: it
     * is scalar); MILES_PIN_TINY_ONLY=1 (make portability-check, under qemu,
     * where the MiniLM case takes minutes): the tiny model only */
    const int tiny_only = getenv("MILES_PIN_TINY_ONLY") != NULL;
    static const char *const isas[] = {"avx512", "avx2", "generic"};
    const char *orig = miles_gemm_isa_name();
    const int blas0 = miles_gemm_use_blas(0); /* the own GEMM's bits (MILES_GEMM=blas gives others) */
    for (size_t q = 0; q < sizeof isas / sizeof isas[0]; q++) {
        if (!miles_gemm_isa_available(isas[q])) continue;
        assert_int_equal(miles_gemm_force_isa(isas[q]), 0);
        if (strcmp(isas[q], "generic") != 0 && !tiny_only)
            pin_check("miles, MiniLM-L6 layers, mean, B8 T32/30, 3 steps", pin_trajectory(&mini, &am, 8, 32, 3),
                      PIN_MILES_MINILM);
        pin_check("seed-notebook, tiny H40 I104, pooler, B12 T20/18, 4 steps", pin_trajectory(&tiny, &at, 12, 20, 4),
                  PIN_SEED_NOTEBOOK_TINY);
    }
    assert_int_equal(miles_gemm_force_isa(orig), 0);
    miles_gemm_use_blas(blas0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_counts),
        cmocka_unit_test(test_tensor_names_and_decay),
        cmocka_unit_test(test_init_random),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_config_validate_fields),
        cmocka_unit_test(test_read_hf),
        cmocka_unit_test(test_dropout_determinism),
        cmocka_unit_test(test_gradcheck_dropout),
        cmocka_unit_test(test_grad_accumulation),
        cmocka_unit_test(test_pooled_only),
        cmocka_unit_test(test_padding_invariance),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_adamw_groups),
        cmocka_unit_test(test_adamw_vector_bits),
        cmocka_unit_test(test_sum_squares_order),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_lr_lambda_basics),
        cmocka_unit_test(test_trajectory_pin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
