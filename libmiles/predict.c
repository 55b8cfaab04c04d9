/*
 * predict.c — the serving predictor: one checkpoint in, scores out, built from
 * exactly what training used.
 *
 * A MilesPredictor holds what the checkpoint's contract gives
 * (MilesCheckpoint): the model, the tokenizer (embedded in the checkpoint, or
 * the vocab_dir option; hash-checked), the scaler and label threshold, the
 * text cleaning mode and the decision threshold.  Features go through
 * miles_scaler_transform_record, the data module's one feature path, so a
 * record gives the same standardized vector here as in the prepared training
 * file (tests/test_predict.c checks this byte for byte); the featurized
 * records are scored by the trainer's prediction loop (miles_predict_batches),
 * so the server, miles-predict and the trainer's validation score a row the
 * same way.
 *
 * The model keeps the activations of its last forward, so forward passes
 * (scoring and explanations) are serialized by a mutex; feature building and
 * tokenization run outside it.
 */
#include "internal.h"
#include "data_internal.h"
#include "train_internal.h"

#include <math.h>
#include <pthread.h>
#include <strings.h>

#define N_META 11
struct MilesPredictor {
    MilesModel *model;
    MilesBackend be;           /* where scoring runs (o->device; backend_internal.h) */
    MilesTokenizer *tok;
    MilesScaler *scaler;
    MilesVelocityTarget vtarget; /* what the velocity head predicts (back to views/day) */
    double threshold;          /* decision threshold on the model's own P(viral) */
    MilesPlatt calibration;    /* the checkpoint's (has_calibration) */
    int has_calibration;
    int text_clean;            /* MILES_TEXT_CLEAN_* */
    int max_len;               /* token length of one title */
    int batch_size;            /* rows per forward */
    char hash[17];
    char version[300];
    char *path;
    /* metadata copies (NULL when absent) */
    char *meta_val[N_META];
    pthread_mutex_t mu;        /* guards the model (forward passes, explanations) */
};

static const char *const meta_keys[N_META] = {
    MILES_META_CONFIG, MILES_META_SCALER, MILES_META_STATE, MILES_META_TRAIN_CONFIG, MILES_META_THRESHOLD,
    MILES_META_TOKENIZER_HASH, MILES_META_TEXT_CLEAN, MILES_META_VOCAB_DIR, MILES_META_RECIPE, MILES_META_FORMAT,
    MILES_META_DATA_SPLIT};

/* The original API's request fields and the columns they feed. */
static const struct { const char *field, *column; } request_fields[] = {
    {"view_count", "views"}, {"like_count", "likes"}, {"comment_count", "comments"},
    {"duration_seconds", "duration_sec"}};

const char *miles_predictor_column_of(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof request_fields / sizeof request_fields[0]; i++)
        if (!strcmp(name, request_fields[i].field)) return request_fields[i].column;
    return name;
}

void miles_predictor_options_default(MilesPredictorOptions *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 64;
}

static int is_blank(const char *s) {
    if (!s) return 1;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return !*s;
}

void miles_predictor_free(MilesPredictor *p) {
    if (!p) return;
    miles_backend_close(&p->be);
    miles_model_free(p->model);
    miles_tokenizer_free(p->tok);
    miles_scaler_free(p->scaler);
    for (int i = 0; i < N_META; i++) free(p->meta_val[i]);
    free(p->path);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Everything from the checkpoint's contract. */
static int open_from(MilesPredictor *p, const MilesCheckpoint *ck, const MilesPredictorOptions *o) {
    MILES_TRY(miles_checkpoint_calibration(ck, &p->calibration, &p->has_calibration));
    MILES_TRY(miles_checkpoint_model(ck, &p->model));
    MILES_TRY(miles_backend_open(&p->be, o->device, o->precision, p->model, NULL));
    for (int i = 0; i < N_META; i++) {
        const char *v = miles_checkpoint_meta(ck, meta_keys[i]);
        if (v && !(p->meta_val[i] = strdup(v))) return miles_error(MILES_ENOMEM, "out of memory");
    }
    MILES_TRY(miles_checkpoint_scaler(ck, &p->scaler));
    MILES_TRY(miles_checkpoint_velocity_target(ck, &p->vtarget));
    MILES_TRY(miles_checkpoint_tokenizer(ck, o->vocab_dir, &p->tok));
    MILES_TRY(miles_tokenizer_hash(p->tok, p->hash));
    MILES_TRY(miles_checkpoint_text_clean(ck, &p->text_clean));
    p->threshold = miles_checkpoint_threshold(ck);
    int P = miles_model_config(p->model)->max_position_embeddings, T = miles_checkpoint_max_len(ck);
    p->max_len = o->max_len ? o->max_len : T ? T : 128;
    if (p->max_len > P) p->max_len = P;
    return MILES_OK;
}

int miles_predictor_open(MilesPredictor **out, const char *checkpoint, const MilesPredictorOptions *opt) {
    if (!out || !checkpoint) return miles_error(MILES_EINVAL, "miles_predictor_open: NULL argument");
    *out = NULL;
    MilesPredictorOptions o;
    if (opt) o = *opt; else miles_predictor_options_default(&o);
    if (o.batch_size <= 0) o.batch_size = 64;
    if (o.max_len < 0 || o.max_len == 1 || o.max_len > 4096)
        return miles_error(MILES_EINVAL, "predictor: max_len %d not 0 (= from the checkpoint) or in [2,4096]", o.max_len);
    MILES_TRY(miles_backend_check(o.device, o.precision, 0));
    MilesPredictor *p = miles_calloc(1, sizeof *p);
    if (!p) return MILES_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    p->batch_size = o.batch_size;
    p->path = strdup(checkpoint);
    MilesCheckpoint *ck = NULL;
    int s = p->path ? miles_checkpoint_open(&ck, checkpoint) : miles_error(MILES_ENOMEM, "out of memory");
    if (s == MILES_OK) s = open_from(p, ck, &o);
    miles_checkpoint_close(ck);
    if (s != MILES_OK) { miles_predictor_free(p); return s; }
    /* version: run directory / file name @ tokenizer hash */
    const char *base = strrchr(checkpoint, '/');
    const char *file = base ? base + 1 : checkpoint;
    int dlen = 0;
    if (base) {
        const char *d = base;
        while (d > checkpoint && d[-1] != '/') d--;
        dlen = (int)(base - d);
        snprintf(p->version, sizeof p->version, "%.*s/%.150s@%s", dlen > 100 ? 100 : dlen, d, file, p->hash);
    } else snprintf(p->version, sizeof p->version, "%.250s@%s", file, p->hash);
    *out = p;
    return MILES_OK;
}

/* ------------------------------------------------------------ records */

/* Columns a record feeds, request fields mapped; names[] has n entries. */
static int map_names(const MilesRecord *r, const char **names) {
    if (r->n < 0 || (r->n > 0 && (!r->names || !r->values)))
        return miles_error(MILES_EINVAL, "record: bad arguments");
    for (int i = 0; i < r->n; i++) names[i] = miles_predictor_column_of(r->names[i]);
    return MILES_OK;
}

static size_t value_len(const MilesRecord *r, int i) {
    return r->values[i] && r->lengths ? r->lengths[i] : r->values[i] ? strlen(r->values[i]) : 0;
}

/* The first non-blank "title" and its length (U+0000 is not blank). */
static const char *record_title(const MilesRecord *r, size_t *len) {
    for (int i = 0; i < r->n; i++) {
        if (!r->names[i] || strcmp(r->names[i], "title") != 0 || !r->values[i]) continue;
        size_t n = value_len(r, i), k = 0;
        while (k < n && strchr(" \t\r\n", r->values[i][k]) && r->values[i][k]) k++;
        if (k < n) { *len = n; return r->values[i]; }
    }
    return NULL;
}

int miles_predictor_features(const MilesPredictor *p, const MilesRecord *r, float out[MILES_NUM_FEATURES], uint32_t *available,
                             uint32_t *supplied) {
    const char *stack_names[64];
    const char **names = r->n <= 64 ? stack_names : malloc(sizeof(char *) * (size_t)r->n);
    if (!names) return miles_error(MILES_ENOMEM, "out of memory");
    int s = map_names(r, names);
    uint32_t av = 0, sup = 0;
    MilesRecord mapped = {r->n, names, r->values, r->lengths};
    if (!s) s = miles_scaler_transform_record(p->scaler, &mapped, out, &av);
    if (!s) {
        for (int i = 0; i < r->n; i++) {
            int k = data_column_id(names[i]);
            if (k >= 0 && k < MILES_NUM_FEATURES && !is_blank(r->values[i])) sup |= 1u << k;
        }
    }
    if (names != stack_names) free(names);
    if (s) return s;
    if (available) *available = av;
    if (supplied) *supplied = sup;
    return MILES_OK;
}

int miles_predictor_encode(const MilesPredictor *p, const MilesRecord *r, int32_t *ids, int32_t *mask, int *len,
                           int *n_wordpieces) {
    size_t tlen = 0;
    const char *title = record_title(r, &tlen);
    if (!title) return miles_error(MILES_EMISSING, "field 'title' is required (a non-empty string)");
    if (miles_utf8_length_n(title, tlen) < 0) return miles_error(MILES_EFORMAT, "field 'title': not valid UTF-8");
    char *text = NULL;
    size_t text_len = 0;
    MILES_TRY(miles_text_clean(title, tlen, p->text_clean, &text, &text_len));
    int s = miles_tokenizer_encode(p->tok, text, text_len, NULL, 0, p->max_len, 1, ids, NULL, mask, len);
    if (!s && n_wordpieces) s = miles_tokenizer_tokenize(p->tok, text, text_len, NULL, 0, n_wordpieces);
    free(text);
    return s;
}

static int model_forward(void *ctx, const MilesBatch *b, float *logits, float *velocity) {
    MilesBackend *be = ctx;
    return miles_backend_status(be->ops, be->ops->forward(be->state, b, 0, logits, velocity, NULL));
}

int miles_predictor_predict(MilesPredictor *p, const MilesRecord *recs, int n, MilesPrediction *out) {
    if (!p || n < 0 || (n > 0 && (!recs || !out))) return miles_error(MILES_EINVAL, "miles_predictor_predict: bad arguments");
    if (n == 0) return MILES_OK;
    const int T = p->max_len, F = MILES_NUM_FEATURES;
    /* inputs of all records, built outside the lock: a dataset of n rows */
    int32_t *ids = miles_malloc((size_t)n * T * sizeof(int32_t));
    int32_t *mask = miles_malloc((size_t)n * T * sizeof(int32_t));
    float *feat = miles_malloc((size_t)n * F * sizeof(float));
    int32_t *lens = miles_malloc((size_t)n * sizeof(int32_t));
    double *prob = miles_malloc((size_t)n * sizeof(double)), *vel = miles_malloc((size_t)n * sizeof(double));
    int s = (ids && mask && feat && lens && prob && vel) ? MILES_OK : MILES_ENOMEM;
    /* the features the model reads: a dropped one, or one no training row had, is 0 whatever a record says,
     * so its absence is not a fill worth reporting */
    uint32_t trained = 0, dropped = 0;
    miles_scaler_stats(p->scaler, NULL, NULL, &trained, &dropped, NULL);
    const uint32_t used = trained & ~dropped;
    for (int i = 0; s == MILES_OK && i < n; i++) {
        MilesPrediction *o = &out[i];
        memset(o, 0, sizeof *o);
        int nw = 0, len = 0;
        s = miles_predictor_encode(p, &recs[i], ids + (size_t)i * T, mask + (size_t)i * T, &len, &nw);
        if (!s) s = miles_predictor_features(p, &recs[i], feat + (size_t)i * F, &o->available, &o->supplied);
        if (s) { miles_error_prefix(s, "record %d", i); break; }
        lens[i] = len;
        o->filled = ((1u << F) - 1) & ~o->available & used;
        o->n_tokens = len;
        o->truncated = nw + 2 > T;
    }
    if (s == MILES_OK) {
        MilesDataset d;
        memset(&d, 0, sizeof d);
        d.n = n;
        d.max_len = T;
        d.input_ids = ids;
        d.attention_mask = mask;
        d.lengths = lens;
        d.features = feat;
        pthread_mutex_lock(&p->mu);
        s = miles_predict_batches(model_forward, &p->be, &d, p->batch_size, 0, prob, vel, NULL, NULL);
        pthread_mutex_unlock(&p->mu);
    }
    for (int i = 0; s == MILES_OK && i < n; i++) {
        MilesPrediction *o = &out[i];
        /* a calibration maps the probability, not the decision: the stored
         * threshold was chosen on the model's own scores */
        o->viral_score_model = prob[i];
        o->viral_score = p->has_calibration ? miles_platt_map(&p->calibration, prob[i]) : prob[i];
        o->is_viral = prob[i] >= p->threshold;
        o->confidence = fabs(o->viral_score - 0.5) * 2.0;
        o->velocity_scaled = miles_velocity_target_clamp(&p->vtarget, vel[i]); /* the pair stays consistent */
        o->predicted_velocity = miles_velocity_target_inverse(&p->vtarget, p->scaler, vel[i]);
    }
    free(ids); free(mask); free(feat); free(lens); free(prob); free(vel);
    return s;
}

/* ------------------------------------------------------------ accessors */

const MilesModel *miles_predictor_model(const MilesPredictor *p) { return p ? p->model : NULL; }
const MilesScaler *miles_predictor_scaler(const MilesPredictor *p) { return p ? p->scaler : NULL; }
double miles_predictor_threshold(const MilesPredictor *p) { return p ? p->threshold : NAN; }
const MilesPlatt *miles_predictor_calibration(const MilesPredictor *p) {
    return p && p->has_calibration ? &p->calibration : NULL;
}
int miles_predictor_max_len(const MilesPredictor *p) { return p ? p->max_len : 0; }
int miles_predictor_text_clean(const MilesPredictor *p) { return p ? p->text_clean : 0; }
const char *miles_predictor_version(const MilesPredictor *p) { return p ? p->version : ""; }
const char *miles_predictor_tokenizer_hash(const MilesPredictor *p) { return p ? p->hash : ""; }
const char *miles_predictor_metadata(const MilesPredictor *p, const char *key) {
    if (!p || !key) return NULL;
    for (int i = 0; i < N_META; i++)
        if (!strcmp(key, meta_keys[i])) return p->meta_val[i];
    return NULL;
}

/* ------------------------------------------------------------ explanations */

void miles_predictor_explain_config(const MilesPredictor *p, MilesExplainConfig *cfg) {
    miles_explain_config_default(cfg);
    if (!p) return;
    cfg->pad_id = miles_tokenizer_special_id(p->tok, "pad");
    cfg->cls_id = miles_tokenizer_special_id(p->tok, "cls");
    cfg->sep_id = miles_tokenizer_special_id(p->tok, "sep");
    if (cfg->pad_id < 0) cfg->token_baseline = MILES_BASELINE_ZERO;
}

void miles_record_explanation_free(MilesRecordExplanation *e) {
    if (!e) return;
    miles_explanation_free(e->ig);
    miles_explain_words_free(e->words, e->n_words);
    free(e->pieces);
    free(e->ids);
    free(e);
}

int miles_predictor_explain(MilesPredictor *p, const MilesRecord *rec, const MilesExplainConfig *cfg_in,
                            MilesRecordExplanation **out) {
    if (!p || !rec || !out) return miles_error(MILES_EINVAL, "miles_predictor_explain: NULL argument");
    *out = NULL;
    MilesExplainConfig cfg;
    if (cfg_in) cfg = *cfg_in;
    else miles_predictor_explain_config(p, &cfg);
    const int L = p->max_len;
    MilesRecordExplanation *e = miles_calloc(1, sizeof *e);
    int32_t *mask = miles_calloc((size_t)L, sizeof *mask);
    int s = e && mask ? MILES_OK : MILES_ENOMEM;
    if (s == MILES_OK) {
        e->ids = miles_calloc((size_t)L, sizeof *e->ids);
        e->pieces = miles_calloc((size_t)L, sizeof *e->pieces);
        if (!e->ids || !e->pieces) s = MILES_ENOMEM;
    }
    /* the exact inputs miles_predictor_predict feeds */
    if (s == MILES_OK) s = miles_predictor_encode(p, rec, e->ids, mask, &e->n_tokens, NULL);
    if (s == MILES_OK) s = miles_predictor_features(p, rec, e->features, &e->available, NULL);
    if (s == MILES_OK) {
        /* T = the real length: the padding the predictor adds changes nothing */
        MilesBatch b = {1, e->n_tokens, e->ids, NULL, mask, e->features, NULL, NULL};
        pthread_mutex_lock(&p->mu); /* the model keeps its activations: one pass at a time */
        /* on the predictor's device (the host model holds the same weights) */
        s = miles_explain_ig_on(p->model, p->be.ops == &miles_backend_cpu ? NULL : p->be.ops, p->be.state, &b, &cfg,
                                &e->ig);
        pthread_mutex_unlock(&p->mu);
    }
    for (int t = 0; s == MILES_OK && t < e->n_tokens; t++)
        e->pieces[t] = (e->ids[t] == cfg.cls_id || e->ids[t] == cfg.sep_id || !mask[t])
                           ? NULL
                           : miles_tokenizer_id_to_token(p->tok, e->ids[t]);
    if (s == MILES_OK) s = miles_explain_words(e->pieces, e->ig->tokens, e->n_tokens, &e->words, &e->n_words);
    free(mask);
    if (s != MILES_OK) {
        miles_record_explanation_free(e);
        return s;
    }
    *out = e;
    return MILES_OK;
}
