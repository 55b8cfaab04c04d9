/*
 * test_minilm_parity.c — the real all-MiniLM-L6-v2 in libmiles vs HF
 * transformers on 56 real YouTube titles (tests/fixtures/minilm_golden.safetensors,
 * made by tests/gen_minilm_fixture.py: BertTokenizerFast + AutoModel, fp32).
 *
 * Checks, end to end: the libmiles tokenizer gives the same ids/type ids/mask
 * (padded batch); miles_model_load_hf + miles_model_forward (eval, one padded
 * batch) give last_hidden_state (at real tokens), pooler_output, CLS and
 * masked-mean embeddings within 1e-4 max abs error.  Skipped (with a message)
 * only when models/ has not been fetched (`make weights`).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miles.h"
#include "helpers.h"

#define MINILM_DIR "models/all-MiniLM-L6-v2"
#define FIXTURE "tests/fixtures/minilm_golden.safetensors"
#define TOL 1e-4

typedef struct Golden {
    int N, T, H, ntok;
    char **titles;
    int32_t *ids, *tt, *mask;   /* [N,T] */
    float *hidden;              /* [ntok,H] real tokens, title by title */
    float *pooler, *mean;       /* [N,H] */
} Golden;

static float *read_f32(MilesSafetensors *st, const char *name, int ndim_want, int64_t *shape) {
    int nd;
    float *v = test_st_f32(st, name, &nd, shape, NULL);
    assert_int_equal(nd, ndim_want);
    return v;
}

static int32_t *read_i32(MilesSafetensors *st, const char *name, int64_t *shape) {
    int nd;
    int32_t *v = test_st_i32(st, name, &nd, shape, NULL);
    assert_int_equal(nd, 2);
    return v;
}

static void golden_load(Golden *g) {
    MilesSafetensors *st;
    if (miles_safetensors_open(&st, FIXTURE)) fail_msg("%s", miles_last_error());
    int64_t sh[8];
    g->ids = read_i32(st, "input_ids", sh);
    g->N = (int)sh[0];
    g->T = (int)sh[1];
    g->tt = read_i32(st, "token_type_ids", sh);
    assert_true(sh[0] == g->N && sh[1] == g->T);
    g->mask = read_i32(st, "attention_mask", sh);
    assert_true(sh[0] == g->N && sh[1] == g->T);
    g->hidden = read_f32(st, "last_hidden", 2, sh);
    g->ntok = (int)sh[0];
    g->H = (int)sh[1];
    g->pooler = read_f32(st, "pooler_output", 2, sh);
    assert_true(sh[0] == g->N && sh[1] == g->H);
    g->mean = read_f32(st, "mean_embedding", 2, sh);
    assert_true(sh[0] == g->N && sh[1] == g->H);
    int real = 0;
    for (int k = 0; k < g->N * g->T; k++) real += g->mask[k];
    assert_int_equal(real, g->ntok);
    const char *tj = miles_safetensors_metadata(st, "titles");
    assert_non_null(tj);
    cJSON *arr = cJSON_Parse(tj);
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), g->N);
    g->titles = calloc((size_t)g->N, sizeof(char *));
    for (int i = 0; i < g->N; i++) {
        const cJSON *s = cJSON_GetArrayItem(arr, i);
        assert_true(cJSON_IsString(s));
        g->titles[i] = strdup(s->valuestring);
    }
    cJSON_Delete(arr);
    miles_safetensors_close(st);
}

static void golden_free(Golden *g) {
    for (int i = 0; i < g->N; i++) free(g->titles[i]);
    free(g->titles);
    free(g->ids);
    free(g->tt);
    free(g->mask);
    free(g->hidden);
    free(g->pooler);
    free(g->mean);
}

static int weights_present(void) {
    if (access(MINILM_DIR "/model.safetensors", R_OK) == 0) return 1;
    print_message("SKIP: " MINILM_DIR "/model.safetensors not found; run `make weights`\n");
    return 0;
}

static void test_tokenizer_ids(void **state) {
    (void)state;
    if (!weights_present()) skip();
    Golden g;
    golden_load(&g);
    MilesTokenizer *tok;
    if (miles_tokenizer_load(&tok, MINILM_DIR)) fail_msg("%s", miles_last_error());
    const int max_len = 128;
    int32_t *ids = calloc((size_t)g.N * max_len, 4), *tt = calloc((size_t)g.N * max_len, 4),
            *mask = calloc((size_t)g.N * max_len, 4);
    int T = 0;
    if (miles_tokenizer_encode_batch(tok, (const char *const *)g.titles, NULL, g.N, max_len, 0, ids, tt, mask, &T))
        fail_msg("%s", miles_last_error());
    print_message("tokenizer: %d titles, T = %d (HF %d)\n", g.N, T, g.T);
    assert_int_equal(T, g.T);
    int bad_rows = 0;
    for (int i = 0; i < g.N; i++) {
        size_t o = (size_t)i * T;
        if (memcmp(ids + o, g.ids + o, T * 4) || memcmp(tt + o, g.tt + o, T * 4) ||
            memcmp(mask + o, g.mask + o, T * 4)) {
            print_error("title %d differs: %s\n", i, g.titles[i]);
            bad_rows++;
        }
    }
    print_message("tokenizer: %d of %d rows differ from BertTokenizerFast\n", bad_rows, g.N);
    assert_int_equal(bad_rows, 0);
    free(ids);
    free(tt);
    free(mask);
    miles_tokenizer_free(tok);
    golden_free(&g);
}

/* Forward the golden batch through MiniLM with the given pooling; returns the model. */
static MilesModel *run_model(const Golden *g, int pooling) {
    MilesConfig head;
    assert_int_equal(miles_config_preset(&head, "miles", "minilm-l6"), MILES_OK);
    head.pooling = pooling;
    MilesModel *m = NULL;
    MilesLoadReport rep;
    if (miles_model_load_hf(&m, MINILM_DIR, &head, 0, &rep)) fail_msg("%s", miles_last_error());
    assert_int_equal(miles_model_config(m)->hidden_size, g->H);
    float *feat = calloc((size_t)g->N * MILES_NUM_FEATURES, sizeof(float));
    float *logits = malloc((size_t)g->N * 2 * sizeof(float));
    MilesBatch b = {.B = g->N, .T = g->T, .input_ids = g->ids, .token_type_ids = g->tt,
                    .attention_mask = g->mask, .features = feat};
    float loss = -1;
    if (miles_model_forward(m, &b, 0, logits, NULL, &loss)) fail_msg("%s", miles_last_error());
    for (int i = 0; i < g->N * 2; i++) assert_true(isfinite(logits[i]));
    free(feat);
    free(logits);
    return m;
}

static double max_err(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t k = 0; k < n; k++) {
        double d = fabs((double)a[k] - (double)b[k]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
    }
    return e;
}

static void test_encoder_parity(void **state) {
    (void)state;
    if (!weights_present()) skip();
    Golden g;
    golden_load(&g);
    const int H = g.H;

    /* pooler pooling: last hidden state at real tokens + pooler output */
    MilesModel *m = run_model(&g, MILES_POOL_POOLER);
    const float *hid = miles_model_last_hidden(m), *pooled = miles_model_pooled(m);
    assert_non_null(hid);
    assert_non_null(pooled);
    double eh = 0, eh_cls = 0;
    int row = 0;
    float *cls_ref = malloc((size_t)g.N * H * sizeof(float));
    for (int i = 0; i < g.N; i++)
        for (int t = 0; t < g.T; t++) {
            if (!g.mask[i * g.T + t]) continue;
            const float *ref = g.hidden + (size_t)row * H, *got = hid + ((size_t)i * g.T + t) * H;
            double e = max_err(got, ref, H);
            eh = test_max_err(eh, e);
            if (t == 0) {
                memcpy(cls_ref + (size_t)i * H, ref, H * sizeof(float));
                eh_cls = test_max_err(eh_cls, e);
            }
            row++;
        }
    assert_int_equal(row, g.ntok);
    double ep = max_err(pooled, g.pooler, (size_t)g.N * H);
    miles_model_free(m);

    /* CLS pooling: the pooled vector is the CLS row of the last hidden state */
    m = run_model(&g, MILES_POOL_CLS);
    double ec = max_err(miles_model_pooled(m), cls_ref, (size_t)g.N * H);
    miles_model_free(m);

    /* mean pooling: masked mean (the sentence-transformers embedding) */
    m = run_model(&g, MILES_POOL_MEAN);
    double em = max_err(miles_model_pooled(m), g.mean, (size_t)g.N * H);
    miles_model_free(m);

    print_message("MiniLM parity vs HF transformers (%d titles, T=%d, %d real tokens, tol %.0e):\n", g.N, g.T,
                  g.ntok, TOL);
    print_message("  last_hidden_state max abs err %.3e (CLS rows %.3e)\n", eh, eh_cls);
    print_message("  pooler_output     max abs err %.3e\n", ep);
    print_message("  CLS pooled        max abs err %.3e\n", ec);
    print_message("  mean embedding    max abs err %.3e\n", em);
    assert_true(eh <= TOL);
    assert_true(ep <= TOL);
    assert_true(ec <= TOL);
    assert_true(em <= TOL);
    free(cls_ref);
    golden_free(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_ids),
        cmocka_unit_test(test_encoder_parity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
