/*
 * test_predict.c — the serving predictor builds byte-identical model inputs to
 * training for the same record, and scores like the training-side predictor.
 *
 * A synthetic seed-schema CSV is prepared (miles_data_prepare) under two
 * settings (plain; seed text cleaning + log1p counts + a dropped feature); for
 * every prepared row the predictor is given the SAME CSV row as named values,
 * and its standardized float[18] vector and token ids must equal the prepared
 * file's bit for bit.  A tiny model trained for a few steps (miles_train_run)
 * gives a real checkpoint: the predictor's scores must equal
 * miles_predict_data on the prepared split, and bad records must be refused
 * with a message naming the field.  A calibrated copy of the checkpoint
 * answers the Platt map of those very scores.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miles.h"
#include "csv_internal.h"
#include "helpers.h"


static char g_dir[64];
static char g_csv[256];
static const char *g_vocab;
static char g_vocab_hash[17];
static int g_vocab_size;

/* ---- the CSV as records, keyed by row_id ---- */
typedef struct { int n; char **names; char ***rows; int nrows; int id_col; } Table;
static Table g_tab;

static int load_table(const char *path, Table *t) {
    MilesCsv *r = NULL;
    if (miles_csv_open(&r, path) != MILES_OK) return -1;
    int nf;
    const char *const *f;
    if (miles_csv_next(r, &nf, &f) != 1) return -1;
    t->n = nf;
    t->names = calloc(nf, sizeof(char *));
    t->id_col = -1;
    for (int i = 0; i < nf; i++) {
        t->names[i] = strdup(f[i]);
        if (!strcmp(f[i], "row_id")) t->id_col = i;
    }
    int cap = 0;
    int st;
    while ((st = miles_csv_next(r, &nf, &f)) == 1) {
        if (t->nrows == cap) { cap = cap ? cap * 2 : 1024; t->rows = realloc(t->rows, sizeof(char **) * cap); }
        char **row = calloc(nf, sizeof(char *));
        for (int i = 0; i < nf; i++) row[i] = strdup(f[i]);
        t->rows[t->nrows++] = row;
    }
    miles_csv_free(r);
    return st == 0 && t->id_col >= 0 ? 0 : -1;
}

static char **row_by_id(const Table *t, const char *id) {
    /* row ids of the synthetic set are unique; a linear scan per lookup is fine at this size */
    for (int i = 0; i < t->nrows; i++)
        if (!strcmp(t->rows[i][t->id_col], id)) return t->rows[i];
    return NULL;
}

/* ---- checkpoints ---- */

/* A checkpoint the way miles-train writes one, for a model and a prepared file. */
static void write_checkpoint(MilesModel *m, const MilesPrepared *prep, const char *path, const char *vocab_dir,
                             const char *threshold) {
    char *cfg = NULL;
    OK(miles_config_to_json(miles_model_config(m), &cfg));
    const char *clean = miles_prepared_text_clean(prep) == MILES_TEXT_CLEAN_SEED ? "seed" : "none";
    const char *keys[] = {"format", "config", "data", "tokenizer_hash", "text_clean", "vocab_dir", "decision_threshold"};
    const char *vals[] = {"miles-checkpoint-1", cfg, miles_prepared_scaler_json(prep), miles_prepared_vocab_hash(prep),
                          clean, vocab_dir, threshold};
    OK(miles_model_save(m, path, 7, keys, vals));
    free(cfg);
}

static MilesModel *tiny_model(uint64_t seed) {
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "tiny"));
    cfg.vocab_size = g_vocab_size;
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, seed, 0.02f));
    return m;
}

/* Prepared files: [0] defaults; [1] seed cleaning + log1p counts + shares dropped. */
static char g_prep_path[2][256];
static MilesPrepared *g_prep[2];
static char g_trained[300]; /* best.safetensors of a short training run on g_prep[0] */

static int setup(void **state) {
    (void)state;
    g_vocab = test_find_vocab();
    if (!g_vocab) { fprintf(stderr, "no vocab fixture\n"); return -1; }
    snprintf(g_dir, sizeof g_dir, "/tmp/miles_predict_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_csv, sizeof g_csv, "%s/synth.csv", g_dir);
    if (miles_synth_write_csv(g_csv, 3000, 11) != MILES_OK) { fprintf(stderr, "%s\n", miles_last_error()); return -1; }
    if (load_table(g_csv, &g_tab)) { fprintf(stderr, "cannot read %s\n", g_csv); return -1; }
    MilesTokenizer *tok = NULL;
    if (miles_tokenizer_load(&tok, g_vocab) != MILES_OK) return -1;
    g_vocab_size = miles_tokenizer_vocab_size(tok);
    miles_tokenizer_hash(tok, g_vocab_hash);
    miles_tokenizer_free(tok);
    for (int k = 0; k < 2; k++) {
        MilesPrepareOptions po;
        miles_prepare_options_default(&po);
        po.vocab_dir = g_vocab;
        po.max_len = 32;
        po.language = "any"; /* every row, every script */
        if (k == 1) {
            po.text_clean = MILES_TEXT_CLEAN_SEED;
            po.log1p_counts = 1;
            po.drop_mask = 1u << 3;
            po.seed = 5;
        }
        snprintf(g_prep_path[k], sizeof g_prep_path[k], "%s/data%d.milesdat", g_dir, k);
        MilesPrepareReport rep;
        if (miles_data_prepare(g_csv, g_prep_path[k], &po, &rep) != MILES_OK ||
            miles_prepared_open(&g_prep[k], g_prep_path[k]) != MILES_OK) {
            fprintf(stderr, "prepare: %s\n", miles_last_error());
            return -1;
        }
    }
    /* a short real training run: the checkpoint carries the trainer's contract */
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    char out[256];
    snprintf(out, sizeof out, "%s/run", g_dir);
    tc.batch_size = 32;
    tc.max_len = 32;
    tc.lr = 1e-3f;
    tc.warmup_steps = 5;
    tc.max_steps = 24;
    tc.eval_every = 12;
    tc.patience = 100;
    tc.out_dir = out;
    tc.vocab_dir = g_vocab;
    MilesModel *m = tiny_model(1);
    MilesTrainResult res;
    if (miles_train_run(m, g_prep[0], &tc, &res) != MILES_OK) { fprintf(stderr, "train: %s\n", miles_last_error()); return -1; }
    miles_model_free(m);
    snprintf(g_trained, sizeof g_trained, "%s/best.safetensors", out);
    printf("trained %lld steps, val AUROC %.4f, decision threshold %.4f\n", (long long)res.steps, res.best_val_auroc,
           res.decision_threshold);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) miles_prepared_free(g_prep[k]);
    for (int i = 0; i < g_tab.nrows; i++) {
        for (int j = 0; j < g_tab.n; j++) free(g_tab.rows[i][j]);
        free(g_tab.rows[i]);
    }
    for (int j = 0; j < g_tab.n; j++) free(g_tab.names[j]);
    free(g_tab.rows); free(g_tab.names);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static MilesRecord record_of(char **row) {
    MilesRecord r = {g_tab.n, (const char *const *)g_tab.names, (const char *const *)row};
    return r;
}

/* Serving vs training inputs, bit for bit, on every prepared row of both settings. */
static void test_inputs_byte_identical(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        char ck[300];
        snprintf(ck, sizeof ck, "%s/ident%d.safetensors", g_dir, k);
        MilesModel *m = tiny_model(7);
        write_checkpoint(m, g_prep[k], ck, g_vocab, "0.5");
        miles_model_free(m);
        MilesPredictor *p = NULL;
        MilesPredictorOptions po;
        miles_predictor_options_default(&po);
        po.max_len = 32;
        OK(miles_predictor_open(&p, ck, &po));
        assert_int_equal(miles_predictor_text_clean(p), miles_prepared_text_clean(g_prep[k]));
        int64_t rows = 0, feat_diff = 0, tok_diff = 0, avail_diff = 0, creator_filled = 0;
        for (int sp = 0; sp < 3; sp++) {
            MilesDataset v;
            OK(miles_prepared_split(g_prep[k], sp, &v));
            assert_int_equal(v.max_len, 32);
            for (int64_t i = 0; i < v.n; i++) {
                char **row = row_by_id(&g_tab, miles_prepared_row_id(g_prep[k], sp, i));
                assert_non_null(row);
                MilesRecord r = record_of(row);
                float f[18];
                uint32_t av = 0, sup = 0;
                OK(miles_predictor_features(p, &r, f, &av, &sup));
                /* creator_avg_views absent from the row is filled by prepare from the
                 * data set (the creator's mean views): a server gets it as a field */
                char cav[64];
                const char *xn[1] = {"creator_avg_views"}, *xv[1] = {cav};
                if (!(av >> 16 & 1u) && (v.avail[i] >> 16 & 1u)) {
                    snprintf(cav, sizeof cav, "%.17g", v.features_raw[i * 18 + 16]);
                    int n2 = g_tab.n + 1;
                    const char **nn = malloc(sizeof(char *) * n2), **vv = malloc(sizeof(char *) * n2);
                    for (int j = 0; j < g_tab.n; j++) {
                        /* an empty creator_avg_views cell would hide the added field */
                        int is_cav = !strcmp(g_tab.names[j], "creator_avg_views");
                        nn[j] = is_cav ? "ignored_column" : g_tab.names[j];
                        vv[j] = row[j];
                    }
                    nn[g_tab.n] = xn[0];
                    vv[g_tab.n] = xv[0];
                    MilesRecord r2 = {n2, nn, vv};
                    OK(miles_predictor_features(p, &r2, f, &av, &sup));
                    free(nn); free(vv);
                    creator_filled++;
                }
                rows++;
                feat_diff += memcmp(f, v.features + i * 18, sizeof f) != 0;
                avail_diff += av != v.avail[i];
                int32_t ids[32], mask[32];
                int len = 0;
                OK(miles_predictor_encode(p, &r, ids, mask, &len, NULL));
                tok_diff += memcmp(ids, v.input_ids + i * 32, sizeof ids) != 0 ||
                            memcmp(mask, v.attention_mask + i * 32, sizeof mask) != 0 || len != v.lengths[i];
            }
        }
        printf("setting %d: %lld rows (%lld with creator_avg_views filled by prepare): %lld feature vectors, "
               "%lld availability masks, %lld token rows differ\n",
               k, (long long)rows, (long long)creator_filled, (long long)feat_diff, (long long)avail_diff,
               (long long)tok_diff);
        assert_true(rows > 2500);
        assert_int_equal(feat_diff, 0);
        assert_int_equal(avail_diff, 0);
        assert_int_equal(tok_diff, 0);
        miles_predictor_free(p);
    }
}

/* Scores equal the trainer's prediction loop (miles_predict_dataset) on the
 * same split, bit for bit: one batching loop serves both. */
/* miles_predict_dataset_progress's calls: how many, the last done/total, and
 * whether done ever failed to grow by at most a batch (7 rows) */
typedef struct { int calls; int64_t last, total; int bad; } ProgressLog;
static void progress_log(void *user, int64_t done, int64_t total) {
    ProgressLog *l = user;
    if (done <= l->last || done - l->last > 7 || done > total) l->bad++;
    l->calls++;
    l->last = done;
    l->total = total;
}

static void test_scores_match_training_predictor(void **state) {
    (void)state;
    MilesPredictor *p = NULL;
    OK(miles_predictor_open(&p, g_trained, NULL));
    assert_int_equal(miles_predictor_max_len(p), 32); /* train_config.max_len */
    MilesCheckpoint *ck = NULL;
    OK(miles_checkpoint_open(&ck, g_trained));
    assert_true(fabs(miles_predictor_threshold(p) - atof(miles_checkpoint_meta(ck, MILES_META_THRESHOLD))) < 1e-15);
    /* the checkpoint's metadata as stored (the first key and the last), and
     * the version "<run directory>/<file>@<tokenizer hash>" */
    assert_string_equal(miles_predictor_metadata(p, MILES_META_CONFIG), miles_checkpoint_meta(ck, MILES_META_CONFIG));
    assert_string_equal(miles_predictor_metadata(p, MILES_META_FORMAT), miles_checkpoint_meta(ck, MILES_META_FORMAT));
    assert_null(miles_predictor_metadata(p, "no such key"));
    {
        const size_t L = strlen(g_trained), S = strlen("/run/best.safetensors");
        assert_true(L > S && !strcmp(g_trained + L - S, "/run/best.safetensors"));
        char want[128];
        snprintf(want, sizeof want, "run/best.safetensors@%s", miles_predictor_tokenizer_hash(p));
        assert_string_equal(miles_predictor_version(p), want);
        printf("predictor version: %s\n", miles_predictor_version(p));
    }
    MilesDataset v;
    OK(miles_prepared_split(g_prep[0], MILES_SPLIT_TEST, &v));
    int n = (int)v.n;
    double *probs = malloc(sizeof(double) * n), *vel = malloc(sizeof(double) * n);
    MilesModel *m = NULL;
    OK(miles_checkpoint_model(ck, &m));
    miles_checkpoint_close(ck);
    OK(miles_predict_dataset(m, &v, 64, 32, probs, vel));
    /* with a progress callback: the same bits, one call per batch of 7 rows,
     * rows done increasing to n */
    {
        double *p2 = malloc(sizeof(double) * n), *v2 = malloc(sizeof(double) * n);
        double *p3 = malloc(sizeof(double) * n), *v3 = malloc(sizeof(double) * n);
        OK(miles_predict_dataset(m, &v, 7, 32, p2, v2));
        ProgressLog pl = {0, 0, 0, 0};
        OK(miles_predict_dataset_progress(m, NULL, MILES_PRECISION_FP32, &v, 7, 32, p3, v3, progress_log, &pl));
        assert_int_equal(pl.calls, (n + 6) / 7);
        assert_int_equal(pl.last, n);
        assert_int_equal(pl.total, n);
        assert_int_equal(pl.bad, 0);
        assert_memory_equal(p2, p3, sizeof(double) * n);
        assert_memory_equal(v2, v3, sizeof(double) * n);
        free(p2); free(v2); free(p3); free(v3);
    }
    MilesRecord *recs = malloc(sizeof(MilesRecord) * n);
    MilesPrediction *out = malloc(sizeof(MilesPrediction) * n);
    for (int i = 0; i < n; i++) {
        char **row = row_by_id(&g_tab, miles_prepared_row_id(g_prep[0], MILES_SPLIT_TEST, i));
        assert_non_null(row);
        recs[i] = record_of(row);
    }
    OK(miles_predictor_predict(p, recs, n, out));
    double max_dp = 0, max_dv = 0;
    int viral = 0;
    const MilesScaler *sc = miles_predictor_scaler(p);
    uint32_t trained = 0, dropped = 0;
    miles_scaler_stats(sc, NULL, NULL, &trained, &dropped, NULL);
    const uint32_t used = trained & ~dropped;
    for (int i = 0; i < n; i++) {
        /* creator_avg_views filled by prepare is absent from the raw row: compare only rows where serving saw
         * the same inputs (the identity test covers the rest) */
        if (out[i].available != v.avail[i]) continue;
        max_dp = test_max_err(max_dp, fabs(out[i].viral_score - probs[i]));
        double vu = miles_scaler_velocity_unscale(sc, vel[i]);
        max_dv = test_max_err(max_dv, fabs(out[i].predicted_velocity - vu) / fmax(1.0, fabs(vu)));
        assert_int_equal(out[i].is_viral, out[i].viral_score >= miles_predictor_threshold(p));
        assert_true(fabs(out[i].confidence - fabs(out[i].viral_score - 0.5) * 2) < 1e-12);
        assert_int_equal(out[i].filled, ((1u << 18) - 1) & ~out[i].available & used);
        assert_int_equal(out[i].n_tokens, v.lengths[i]);
        viral += out[i].is_viral;
    }
    printf("test split n=%d: max |P_serve - P_train| = %.3g, max rel velocity diff = %.3g, %d viral at threshold %.4f\n",
           n, max_dp, max_dv, viral, miles_predictor_threshold(p));
    assert_true(max_dp == 0);
    assert_true(max_dv == 0);
    /* a single title (no counts) works and reports its fills */
    const char *nn[] = {"title"}, *vv[] = {"Top 10 cat fails 😂"};
    MilesRecord one = {1, nn, vv};
    MilesPrediction o1;
    OK(miles_predictor_predict(p, &one, 1, &o1));
    assert_true(o1.viral_score >= 0 && o1.viral_score <= 1);
    assert_true(o1.available & (1u << 14)); /* title_length derived from the title */
    assert_true(o1.available & (1u << 15)); /* has_emoji */
    assert_false(o1.supplied & (1u << 14));
    assert_true(o1.filled & 1u);            /* views missing */
    /* same record as one batch entry among others gives the same score (padding does not leak) */
    MilesRecord mix[3] = {recs[0], one, recs[1]};
    MilesPrediction o3[3];
    OK(miles_predictor_predict(p, mix, 3, o3));
    printf("single vs in-batch score: %.9g vs %.9g\n", o1.viral_score, o3[1].viral_score);
    assert_true(fabs(o1.viral_score - o3[1].viral_score) < 1e-5);
    miles_model_free(m);
    free(probs); free(vel); free(recs); free(out);
    miles_predictor_free(p);
}

/* A checkpoint holding a calibration: viral_score is the Platt map of the
 * model's own score (which viral_score_model keeps, bit for bit the
 * uncalibrated checkpoint's), the decision stays on the model's score. */
static void test_calibrated_checkpoint(void **state) {
    (void)state;
    MilesCheckpoint *ck = NULL;
    OK(miles_checkpoint_open(&ck, g_trained));
    MilesModel *m = NULL;
    OK(miles_checkpoint_model(ck, &m));
    MilesDataset val;
    OK(miles_prepared_split(g_prep[0], MILES_SPLIT_VAL, &val));
    double *vs = malloc(sizeof(double) * val.n);
    OK(miles_predict_dataset(m, &val, 64, 32, vs, NULL));
    MilesPlatt cal;
    OK(miles_platt_fit(vs, val.labels, (int)val.n, &cal));
    printf("Platt on the val split: a = %.6g, b = %.6g\n", cal.a, cal.b);
    assert_true(cal.a > 0);
    char path[400];
    snprintf(path, sizeof path, "%s/calibrated.safetensors", g_dir);
    OK(miles_checkpoint_save_calibrated(ck, path, &cal, "val"));
    miles_checkpoint_close(ck);
    MilesPredictor *p0 = NULL, *p1 = NULL;
    OK(miles_predictor_open(&p0, g_trained, NULL));
    OK(miles_predictor_open(&p1, path, NULL));
    assert_null(miles_predictor_calibration(p0));
    const MilesPlatt *c1 = miles_predictor_calibration(p1);
    assert_non_null(c1);
    assert_memory_equal(&c1->a, &cal.a, sizeof cal.a);
    assert_memory_equal(&c1->b, &cal.b, sizeof cal.b);
    assert_true(miles_predictor_threshold(p1) == miles_predictor_threshold(p0));
    MilesDataset v;
    OK(miles_prepared_split(g_prep[0], MILES_SPLIT_TEST, &v));
    int n = (int)v.n, changed = 0;
    MilesRecord *recs = malloc(sizeof(MilesRecord) * n);
    MilesPrediction *o0 = malloc(sizeof(MilesPrediction) * n), *o1 = malloc(sizeof(MilesPrediction) * n);
    for (int i = 0; i < n; i++) recs[i] = record_of(row_by_id(&g_tab, miles_prepared_row_id(g_prep[0], MILES_SPLIT_TEST, i)));
    OK(miles_predictor_predict(p0, recs, n, o0));
    OK(miles_predictor_predict(p1, recs, n, o1));
    for (int i = 0; i < n; i++) {
        assert_memory_equal(&o0[i].viral_score_model, &o0[i].viral_score, sizeof(double));
        assert_memory_equal(&o1[i].viral_score_model, &o0[i].viral_score, sizeof(double));
        double want = miles_platt_map(&cal, o0[i].viral_score);
        assert_memory_equal(&o1[i].viral_score, &want, sizeof want);
        assert_int_equal(o1[i].is_viral, o0[i].is_viral);
        assert_true(o1[i].confidence == fabs(o1[i].viral_score - 0.5) * 2);
        assert_memory_equal(&o1[i].predicted_velocity, &o0[i].predicted_velocity, sizeof(double));
        changed += o1[i].viral_score != o0[i].viral_score;
    }
    assert_true(changed > n / 2);
    free(vs); free(recs); free(o0); free(o1);
    miles_model_free(m);
    miles_predictor_free(p0);
    miles_predictor_free(p1);
}

/* The original API's request fields feed the same columns. */
static void test_request_field_mapping(void **state) {
    (void)state;
    MilesPredictor *p = NULL;
    OK(miles_predictor_open(&p, g_trained, NULL));
    const char *n1[] = {"title", "view_count", "like_count", "comment_count", "duration_seconds", "description",
                        "thumbnail_url"};
    const char *v1[] = {"hello world", "12345", "678", "9", "31", "ignored", "http://x/y.jpg"};
    const char *n2[] = {"title", "views", "likes", "comments", "duration_sec"};
    const char *v2[] = {"hello world", "12345", "678", "9", "31"};
    MilesRecord a = {7, n1, v1}, b = {5, n2, v2};
    float fa[18], fb[18];
    uint32_t aa, ab, sa, sb;
    OK(miles_predictor_features(p, &a, fa, &aa, &sa));
    OK(miles_predictor_features(p, &b, fb, &ab, &sb));
    assert_memory_equal(fa, fb, sizeof fa);
    assert_int_equal(aa, ab);
    assert_int_equal(sa, sb);
    assert_int_equal(sa, (1u << 0) | (1u << 1) | (1u << 2) | (1u << 13));
    assert_string_equal(miles_predictor_column_of("view_count"), "views");
    assert_string_equal(miles_predictor_column_of("shares"), "shares");
    miles_predictor_free(p);
}

static void expect_error(MilesPredictor *p, int nf, const char **names, const char **vals, int code, const char *needle) {
    MilesRecord r = {nf, names, vals};
    MilesPrediction o;
    int s = miles_predictor_predict(p, &r, 1, &o);
    printf("  -> %s: %s\n", miles_status_name(s), miles_last_error());
    assert_int_equal(s, code);
    assert_non_null(strstr(miles_last_error(), needle));
}

/* Text enters as (pointer, length): a title holding U+0000 tokenizes like HF
 * (the normalizer drops it: "a\0b c" -> [CLS] ab c [SEP]) and counts it in
 * title_length as Python's len() does; a NUL in a number is an error. */
static void test_nul_in_title(void **state) {
    (void)state;
    MilesPredictor *p = NULL;
    OK(miles_predictor_open(&p, g_trained, NULL));
    const char *names[2] = {"title", "views"};
    const char *v_nul[2] = {"a\0b c", "10"}, *v_plain[2] = {"ab c", "10"};
    const size_t l_nul[2] = {5, 2};
    MilesRecord with = {2, names, v_nul, l_nul}, without = {2, names, v_plain, NULL};
    int32_t ids1[32], m1[32], ids2[32], m2[32];
    int len1 = 0, len2 = 0;
    OK(miles_predictor_encode(p, &with, ids1, m1, &len1, NULL));
    OK(miles_predictor_encode(p, &without, ids2, m2, &len2, NULL));
    printf("  \"a\\0b c\": %d tokens; \"ab c\": %d tokens\n", len1, len2);
    assert_int_equal(len1, 4);
    assert_memory_equal(ids1, ids2, sizeof ids1);
    /* without lengths the title ends at the NUL: "a" */
    MilesRecord cut = {2, names, v_nul, NULL};
    int len3 = 0;
    OK(miles_predictor_encode(p, &cut, ids1, m1, &len3, NULL));
    assert_int_equal(len3, 3);
    float f1[MILES_NUM_FEATURES], f2[MILES_NUM_FEATURES];
    OK(miles_predictor_features(p, &with, f1, NULL, NULL));
    OK(miles_predictor_features(p, &without, f2, NULL, NULL));
    assert_true(f1[14] > f2[14]); /* title_length 5 > 4 (standardized) */
    MilesPrediction o;
    OK(miles_predictor_predict(p, &with, 1, &o));
    assert_int_equal(o.n_tokens, 4);
    /* a title that is only U+0000: not blank, [CLS] [SEP] as HF */
    const char *v0[2] = {"\0", "10"};
    const size_t l0[2] = {1, 2};
    MilesRecord only = {2, names, v0, l0};
    OK(miles_predictor_predict(p, &only, 1, &o));
    assert_int_equal(o.n_tokens, 2);
    /* a NUL inside a number */
    const char *vb[2] = {"ok title", "1\0" "2"};
    const size_t lb[2] = {8, 3};
    MilesRecord badnum = {2, names, vb, lb};
    assert_int_equal(miles_predictor_predict(p, &badnum, 1, &o), MILES_EFORMAT);
    printf("  NUL in views: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "NUL"));
    miles_predictor_free(p);
}

static void test_bad_records(void **state) {
    (void)state;
    MilesPredictor *p = NULL;
    OK(miles_predictor_open(&p, g_trained, NULL));
    const char *n0[] = {"description"}, *v0[] = {"no title"};
    expect_error(p, 1, n0, v0, MILES_EMISSING, "title");
    const char *n1[] = {"title"}, *v1[] = {"   "}, *v1b[] = {"\t\r\n \n"};
    expect_error(p, 1, n1, v1, MILES_EMISSING, "title");
    expect_error(p, 1, n1, v1b, MILES_EMISSING, "title"); /* every kind of blank */
    const char *v2[] = {"bad \xff\xfe utf8"};
    expect_error(p, 1, n1, v2, MILES_EFORMAT, "UTF-8");
    const char *n3[] = {"title", "views"}, *v3[] = {"ok", "12abc"};
    expect_error(p, 2, n3, v3, MILES_EFORMAT, "views");
    const char *n4[] = {"title", "like_count"}, *v4[] = {"ok", "-5"};
    expect_error(p, 2, n4, v4, MILES_ERANGE, "likes");
    const char *n5[] = {"title", "views", "view_count"}, *v5[] = {"ok", "10", "11"};
    expect_error(p, 3, n5, v5, MILES_EINVAL, "views");
    const char *n6[] = {"title", "upload_hour"}, *v6[] = {"ok", "nan"};
    expect_error(p, 2, n6, v6, MILES_ENAN, "upload_hour");
    miles_predictor_free(p);
    /* a CSV with two "title" columns is refused as prepare refuses it (which one
     * would be scored was a guess) */
    const char *dup = "title,views,title\nfirst,10,second\n";
    MilesRecordReader *rd = NULL;
    assert_int_equal(miles_records_open_csv_memory(&rd, "dup.csv", dup, strlen(dup)), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "dup.csv:1: column 'title' appears twice in the header (columns 1 and 3)"));
    assert_null(rd);
    const char *dup2 = "notes,upload_date,title,publish_date_approx\n";   /* an alias is the same column */
    assert_int_equal(miles_records_open_csv_memory(&rd, "dup2.csv", dup2, strlen(dup2)), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "(columns 2 and 4)"));
    const char *ok = "title,views,notes,notes\nfirst,10,a,b\n\nsecond,11,c,d\n";   /* unknown columns may repeat */
    OK(miles_records_open_csv_memory(&rd, "ok.csv", ok, strlen(ok)));
    int nh = 0;
    const char *const *h = miles_records_header(rd, &nh);
    assert_true(nh == 4 && !strcmp(h[0], "title") && !strcmp(h[3], "notes"));
    MilesRecord rec;
    assert_int_equal(miles_records_next(rd, &rec), 1);
    assert_true(rec.n == 4 && !strcmp(rec.values[0], "first") && rec.names == h && !rec.lengths);
    assert_int_equal(miles_records_line(rd), 2);
    assert_int_equal(miles_records_next(rd, &rec), 1);
    assert_true(!strcmp(rec.values[1], "11"));
    assert_int_equal(miles_records_line(rd), 4); /* after the blank line */
    assert_int_equal(miles_records_next(rd, &rec), 0);
    miles_records_close(rd);
    assert_int_equal(miles_records_open_csv_memory(&rd, "empty.csv", "", 0), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "empty.csv: empty file (no header)"));
}

/* Wrong vocabulary and incomplete checkpoints are refused. */
static void test_open_refusals(void **state) {
    (void)state;
    /* a vocab with one token changed has another hash */
    char vocab2[300];
    snprintf(vocab2, sizeof vocab2, "%s/vocab_other.txt", g_dir);
    char *text = NULL;
    FILE *f = fopen(g_vocab, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc(sz + 1);
    assert_int_equal(fread(text, 1, sz, f), (size_t)sz);
    fclose(f);
    char *last = text + sz - 2;
    while (last > text && *last != '\n') last--;
    last[1] = last[1] == 'q' ? 'z' : 'q'; /* first letter of the last token */
    f = fopen(vocab2, "wb");
    fwrite(text, 1, sz, f);
    fclose(f);
    free(text);
    MilesPredictor *p = NULL;
    MilesPredictorOptions po;
    miles_predictor_options_default(&po);
    po.vocab_dir = vocab2;
    int s = miles_predictor_open(&p, g_trained, &po);
    printf("  -> %s: %s\n", miles_status_name(s), miles_last_error());
    assert_int_equal(s, MILES_EINVAL);
    assert_null(p);
    assert_non_null(strstr(miles_last_error(), "tokenizer"));
    /* max_len outside 0 (the checkpoint's) / [2, 4096] */
    const int bad_len[] = {1, -1, 4097};
    for (int i = 0; i < 3; i++) {
        miles_predictor_options_default(&po);
        po.max_len = bad_len[i];
        assert_int_equal(miles_predictor_open(&p, g_trained, &po), MILES_EINVAL);
        assert_null(p);
        assert_non_null(strstr(miles_last_error(), "not 0 (= from the checkpoint) or in [2,4096]"));
    }
    /* no scaler metadata */
    char ck[300];
    snprintf(ck, sizeof ck, "%s/noscaler.safetensors", g_dir);
    MilesModel *m = tiny_model(3);
    char *cfg = NULL;
    OK(miles_config_to_json(miles_model_config(m), &cfg));
    const char *keys[] = {"format", "config"}, *vals[] = {"miles-checkpoint-1", cfg};
    OK(miles_model_save(m, ck, 2, keys, vals));
    free(cfg);
    miles_model_free(m);
    s = miles_predictor_open(&p, ck, NULL);
    printf("  -> %s: %s\n", miles_status_name(s), miles_last_error());
    assert_int_equal(s, MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "data"));
    s = miles_predictor_open(&p, "/nonexistent/best.safetensors", NULL);
    assert_true(s != MILES_OK);
}

/* Concurrent callers get the serial results (the forward pass is locked). */
typedef struct { MilesPredictor *p; MilesRecord *recs; int n; MilesPrediction *out; int status; } Job;
static void *job_run(void *arg) {
    Job *j = arg;
    for (int rep = 0; rep < 3 && j->status == MILES_OK; rep++) j->status = miles_predictor_predict(j->p, j->recs, j->n, j->out);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    MilesPredictor *p = NULL;
    MilesPredictorOptions po;
    miles_predictor_options_default(&po);
    po.batch_size = 8;
    OK(miles_predictor_open(&p, g_trained, &po));
    enum { N = 40, TH = 4 };
    MilesRecord recs[N];
    for (int i = 0; i < N; i++) recs[i] = record_of(g_tab.rows[i * 7]);
    MilesPrediction serial[N], par[TH][N];
    OK(miles_predictor_predict(p, recs, N, serial));
    pthread_t th[TH];
    Job jobs[TH];
    for (int t = 0; t < TH; t++) {
        jobs[t] = (Job){p, recs, N, par[t], MILES_OK};
        pthread_create(&th[t], NULL, job_run, &jobs[t]);
    }
    int diff = 0;
    for (int t = 0; t < TH; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].status, MILES_OK);
        for (int i = 0; i < N; i++) diff += par[t][i].viral_score != serial[i].viral_score;
    }
    printf("%d threads x 3 x %d records: %d scores differ from the serial run\n", TH, N, diff);
    assert_int_equal(diff, 0);
    miles_predictor_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inputs_byte_identical),
        cmocka_unit_test(test_scores_match_training_predictor),
        cmocka_unit_test(test_calibrated_checkpoint),
        cmocka_unit_test(test_request_field_mapping),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_nul_in_title),
        cmocka_unit_test(test_open_refusals),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
