/*
 * predict.c — the serving predictor: one checkpoint in, scores out, built from
 * exactly what training used.
 *
 * A MilesPredictor holds the model (miles_checkpoint_load_model), the
 * tokenizer (checkpoint "vocab_dir", its hash checked against
 * "tokenizer_hash"), the scaler and label threshold (checkpoint "data",
 * miles_scaler_from_json), the text cleaning mode ("text_clean") and the
 * decision threshold ("decision_threshold").  Features go through
 * miles_scaler_transform_record, the data module's one feature path, so a
 * record gives the same standardized vector here as in the prepared training
 * file (tests/test_predict.c checks this byte for byte).
 *
 * The model keeps the activations of its last forward, so the forward pass is
 * serialized by a mutex; feature building and tokenization run outside it.
 */
#include "internal.h"
#include "data_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <strings.h>

struct MilesPredictor {
    MilesModel *model;
    MilesTokenizer *tok;
    MilesScaler *scaler;
    double threshold;          /* decision threshold on P(viral) */
    int text_clean;            /* MILES_TEXT_CLEAN_* */
    int max_len;               /* token length of one title */
    int batch_size;            /* rows per forward */
    char hash[17];
    char version[300];
    char *path;
    /* metadata copies (NULL when absent) */
    char *meta_val[10];
    pthread_mutex_t mu;        /* guards the model and the scratch below */
    int cap_rows, cap_tok;
    int32_t *b_ids, *b_mask, *b_tt;
    float *b_feat, *b_logits, *b_vel;
};

static const char *const meta_keys[10] = {"config", "data", "state", "train_config", "decision_threshold",
                                          "tokenizer_hash", "text_clean", "vocab_dir", "recipe", "format"};

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

/* max_len stored by the trainer (train_config.max_len), else 128. */
static int train_max_len(const char *train_config) {
    int T = 128;
    cJSON *o = train_config ? cJSON_Parse(train_config) : NULL;
    const cJSON *it = o ? cJSON_GetObjectItemCaseSensitive(o, "max_len") : NULL;
    if (cJSON_IsNumber(it) && it->valuedouble >= 2 && it->valuedouble <= 4096) T = (int)it->valuedouble;
    cJSON_Delete(o);
    return T;
}

void miles_predictor_free(MilesPredictor *p) {
    if (!p) return;
    miles_model_free(p->model);
    miles_tokenizer_free(p->tok);
    miles_scaler_free(p->scaler);
    for (int i = 0; i < 10; i++) free(p->meta_val[i]);
    free(p->path);
    free(p->b_ids); free(p->b_mask); free(p->b_tt);
    free(p->b_feat); free(p->b_logits); free(p->b_vel);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int miles_predictor_open(MilesPredictor **out, const char *checkpoint, const MilesPredictorOptions *opt) {
    if (!out || !checkpoint) return miles_error(MILES_EINVAL, "miles_predictor_open: NULL argument");
    *out = NULL;
    MilesPredictorOptions o;
    if (opt) o = *opt; else miles_predictor_options_default(&o);
    if (o.batch_size <= 0) o.batch_size = 64;
    if (o.max_len < 0 || o.max_len == 1 || o.max_len > 4096)
        return miles_error(MILES_EINVAL, "predictor: max_len %d not 0 (= from the checkpoint) or in [2,4096]", o.max_len);
    MilesPredictor *p = miles_calloc(1, sizeof *p);
    if (!p) return MILES_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    p->batch_size = o.batch_size;
    p->path = strdup(checkpoint);
    if (!p->path) { miles_predictor_free(p); return miles_error(MILES_ENOMEM, "out of memory"); }
    int s = miles_checkpoint_load_model(&p->model, checkpoint);
    if (s != MILES_OK) { miles_predictor_free(p); return s; }
    for (int i = 0; i < 10; i++) {
        char *v = NULL;
        if (miles_checkpoint_metadata(checkpoint, meta_keys[i], &v) == MILES_OK) p->meta_val[i] = v;
    }
    miles_clear_error();
    const char *data = p->meta_val[1], *thr = p->meta_val[4], *hash = p->meta_val[5], *clean = p->meta_val[6];
    const char *vocab = o.vocab_dir ? o.vocab_dir : p->meta_val[7];
    if (!data) s = miles_error(MILES_EMISSING, "%s: metadata \"data\" (feature scalers) missing: not trained by miles-train?", checkpoint);
    if (!s) s = miles_scaler_from_json(&p->scaler, data);
    if (!s && !vocab)
        s = miles_error(MILES_EMISSING, "%s: no metadata \"vocab_dir\"; pass the tokenizer directory explicitly", checkpoint);
    if (!s) {
        s = miles_tokenizer_load(&p->tok, vocab);
        if (s) miles_error_prefix(s, "tokenizer '%s'", vocab);
    }
    if (!s) s = miles_tokenizer_hash(p->tok, p->hash);
    if (!s && hash && strcmp(hash, p->hash) != 0)
        s = miles_error(MILES_EINVAL, "%s was trained with tokenizer %s but '%s' has tokenizer %s: serving it would "
                        "feed the model other token ids; pass the training vocabulary", checkpoint, hash, vocab, p->hash);
    if (!s && miles_tokenizer_vocab_size(p->tok) > miles_model_config(p->model)->vocab_size)
        s = miles_error(MILES_ESHAPE, "tokenizer '%s' has %d tokens but the model's vocab_size is %d", vocab,
                        miles_tokenizer_vocab_size(p->tok), miles_model_config(p->model)->vocab_size);
    if (s) { miles_predictor_free(p); return s; }
    p->text_clean = MILES_TEXT_CLEAN_NONE;
    if (clean && !strcmp(clean, "seed")) p->text_clean = MILES_TEXT_CLEAN_SEED;
    else if (clean && strcmp(clean, "none") != 0) {
        miles_predictor_free(p);
        return miles_error(MILES_EFORMAT, "%s: unknown text_clean \"%s\"", checkpoint, clean);
    }
    p->threshold = 0.5;
    if (thr) {
        char *end;
        double t = strtod(thr, &end);
        if (end != thr && isfinite(t) && t >= 0 && t <= 1) p->threshold = t;
    }
    int P = miles_model_config(p->model)->max_position_embeddings;
    p->max_len = o.max_len ? o.max_len : train_max_len(p->meta_val[3]);
    if (p->max_len > P) p->max_len = P;
    /* version: run directory / file name @ tokenizer hash */
    const char *base = strrchr(checkpoint, '/');
    const char *file = base ? base + 1 : checkpoint;
    int dlen = 0;
    if (base) {
        const char *d = base;
        while (d > checkpoint && d[-1] != '/') d--;
        dlen = (int)(base - d);
        snprintf(p->version, sizeof p->version, "%.*s/%s@%s", dlen > 100 ? 100 : dlen, d, file, p->hash);
    } else snprintf(p->version, sizeof p->version, "%s@%s", file, p->hash);
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

static const char *record_title(const MilesRecord *r) {
    const char *t = NULL;
    for (int i = 0; i < r->n; i++)
        if (r->names[i] && !strcmp(r->names[i], "title") && !is_blank(r->values[i])) { t = r->values[i]; break; }
    return t;
}

int miles_predictor_features(const MilesPredictor *p, const MilesRecord *r, float out[18], uint32_t *available,
                             uint32_t *supplied) {
    const char *stack_names[64];
    const char **names = r->n <= 64 ? stack_names : malloc(sizeof(char *) * (size_t)r->n);
    if (!names) return miles_error(MILES_ENOMEM, "out of memory");
    int s = map_names(r, names);
    uint32_t av = 0, sup = 0;
    if (!s) s = miles_scaler_transform_record(p->scaler, r->n, names, r->values, out, &av);
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
    const char *title = record_title(r);
    if (!title) return miles_error(MILES_EMISSING, "field 'title' is required (a non-empty string)");
    if (miles_utf8_length(title) < 0) return miles_error(MILES_EFORMAT, "field 'title': not valid UTF-8");
    char *text = NULL;
    MILES_TRY(miles_text_clean(title, p->text_clean, &text));
    int s = miles_tokenizer_encode(p->tok, text, NULL, p->max_len, 1, ids, NULL, mask, len);
    if (!s && n_wordpieces) s = miles_tokenizer_tokenize(p->tok, text, strlen(text), NULL, 0, n_wordpieces);
    free(text);
    return s;
}

static int ensure_scratch(MilesPredictor *p, int rows) {
    if (rows <= p->cap_rows) return MILES_OK;
    free(p->b_ids); free(p->b_mask); free(p->b_tt); free(p->b_feat); free(p->b_logits); free(p->b_vel);
    size_t nt = (size_t)rows * p->max_len;
    p->b_ids = miles_malloc(nt * sizeof(int32_t));
    p->b_mask = miles_malloc(nt * sizeof(int32_t));
    p->b_tt = miles_calloc(nt, sizeof(int32_t));
    p->b_feat = miles_malloc((size_t)rows * MILES_NUM_FEATURES * sizeof(float));
    p->b_logits = miles_malloc((size_t)rows * 2 * sizeof(float));
    p->b_vel = miles_malloc((size_t)rows * sizeof(float));
    if (!p->b_ids || !p->b_mask || !p->b_tt || !p->b_feat || !p->b_logits || !p->b_vel) {
        p->cap_rows = 0;
        return miles_error(MILES_ENOMEM, "out of memory");
    }
    p->cap_rows = rows;
    return MILES_OK;
}

int miles_predictor_predict(MilesPredictor *p, const MilesRecord *recs, int n, MilesPrediction *out) {
    if (!p || n < 0 || (n > 0 && (!recs || !out))) return miles_error(MILES_EINVAL, "miles_predictor_predict: bad arguments");
    if (n == 0) return MILES_OK;
    const int T = p->max_len, F = MILES_NUM_FEATURES;
    /* inputs of all records, built outside the lock */
    int32_t *ids = miles_malloc((size_t)n * T * sizeof(int32_t));
    int32_t *mask = miles_malloc((size_t)n * T * sizeof(int32_t));
    float *feat = miles_malloc((size_t)n * F * sizeof(float));
    int *lens = miles_malloc((size_t)n * sizeof(int));
    int s = (ids && mask && feat && lens) ? MILES_OK : MILES_ENOMEM;
    for (int i = 0; s == MILES_OK && i < n; i++) {
        MilesPrediction *o = &out[i];
        memset(o, 0, sizeof *o);
        int nw = 0;
        s = miles_predictor_encode(p, &recs[i], ids + (size_t)i * T, mask + (size_t)i * T, &lens[i], &nw);
        if (!s) s = miles_predictor_features(p, &recs[i], feat + (size_t)i * F, &o->available, &o->supplied);
        if (s) { miles_error_prefix(s, "record %d", i); break; }
        o->filled = ((1u << F) - 1) & ~o->available;
        o->n_tokens = lens[i];
        o->truncated = nw + 2 > T;
    }
    if (s == MILES_OK) {
        pthread_mutex_lock(&p->mu);
        for (int b0 = 0; s == MILES_OK && b0 < n; b0 += p->batch_size) {
            int nb = n - b0 < p->batch_size ? n - b0 : p->batch_size;
            int Tb = 1;
            for (int i = 0; i < nb; i++) if (lens[b0 + i] > Tb) Tb = lens[b0 + i];
            s = ensure_scratch(p, nb);
            if (s) break;
            /* [nb, Tb]: rows cut to the longest real length in this chunk */
            for (int i = 0; i < nb; i++) {
                memcpy(p->b_ids + (size_t)i * Tb, ids + (size_t)(b0 + i) * T, sizeof(int32_t) * Tb);
                memcpy(p->b_mask + (size_t)i * Tb, mask + (size_t)(b0 + i) * T, sizeof(int32_t) * Tb);
            }
            memset(p->b_tt, 0, sizeof(int32_t) * (size_t)nb * Tb);
            memcpy(p->b_feat, feat + (size_t)b0 * F, sizeof(float) * (size_t)nb * F);
            MilesBatch batch = {nb, Tb, p->b_ids, p->b_tt, p->b_mask, p->b_feat, NULL, NULL};
            s = miles_model_forward(p->model, &batch, 0, p->b_logits, p->b_vel, NULL);
            for (int i = 0; s == MILES_OK && i < nb; i++) {
                MilesPrediction *o = &out[b0 + i];
                /* softmax over the 2 logits = logistic of their difference (as miles_predict_data) */
                double z = (double)p->b_logits[2 * i + 1] - p->b_logits[2 * i];
                double prob = (double)(float)(1.0 / (1.0 + exp(-z)));
                o->viral_score = prob;
                o->is_viral = prob >= p->threshold;
                o->confidence = fabs(prob - 0.5) * 2.0;
                o->velocity_scaled = p->b_vel[i];
                o->predicted_velocity = miles_scaler_velocity_unscale(p->scaler, p->b_vel[i]);
            }
        }
        pthread_mutex_unlock(&p->mu);
    }
    free(ids); free(mask); free(feat); free(lens);
    return s;
}

/* ------------------------------------------------------------ accessors */

const MilesModel *miles_predictor_model(const MilesPredictor *p) { return p ? p->model : NULL; }
const MilesScaler *miles_predictor_scaler(const MilesPredictor *p) { return p ? p->scaler : NULL; }
const MilesTokenizer *miles_predictor_tokenizer(const MilesPredictor *p) { return p ? p->tok : NULL; }
double miles_predictor_threshold(const MilesPredictor *p) { return p ? p->threshold : NAN; }
int miles_predictor_max_len(const MilesPredictor *p) { return p ? p->max_len : 0; }
int miles_predictor_text_clean(const MilesPredictor *p) { return p ? p->text_clean : 0; }
const char *miles_predictor_version(const MilesPredictor *p) { return p ? p->version : ""; }
const char *miles_predictor_tokenizer_hash(const MilesPredictor *p) { return p ? p->hash : ""; }
const char *miles_predictor_metadata(const MilesPredictor *p, const char *key) {
    if (!p || !key) return NULL;
    for (int i = 0; i < 10; i++)
        if (!strcmp(key, meta_keys[i])) return p->meta_val[i];
    return NULL;
}
