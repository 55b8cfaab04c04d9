/*
 * baseline.c — the two baselines Miles is compared with, and their JSON files.
 *
 *   text:    TF-IDF on titles (tfidf.c) + logistic regression (logreg.c): the
 *            original project's baseline (TfidfVectorizer(max_features=5000,
 *            stop_words='english', min_df=2, max_df=0.95) + LogisticRegression(
 *            class_weight='balanced')), fitted to convergence;
 *   numeric: logistic regression on the 18 standardized engagement features.
 *
 * File format (JSON, written atomically):
 *   {"format": "miles-baseline", "version": 1, "kind": "tfidf_logreg" | "numeric_logreg",
 *    "tfidf": {config fields..., "vocabulary": [...], "idf": [...]},   (text only)
 *    "logreg": {config fields..., "n_features": d, "coef": [...], "intercept": b,
 *               "n_iter": k, "converged": true}}
 * Real numbers are printed with %.17g so that they read back bit-exactly.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>

#include "baseline_internal.h"

struct MilesBaseline {
    int is_text;
    MilesTfidf *tfidf;
    MilesLogReg *lr;
};

void miles_baseline_free(MilesBaseline *b) {
    if (!b) return;
    miles_tfidf_free(b->tfidf);
    miles_logreg_free(b->lr);
    free(b);
}

int miles_baseline_is_text(const MilesBaseline *b) { return b ? b->is_text : 0; }
const MilesTfidf *miles_baseline_tfidf(const MilesBaseline *b) { return b ? b->tfidf : NULL; }
const MilesLogReg *miles_baseline_logreg(const MilesBaseline *b) { return b ? b->lr : NULL; }

void miles_baseline_info(const MilesBaseline *b, MilesBaselineInfo *info) {
    memset(info, 0, sizeof *info);
    if (!b) return;
    info->text = b->is_text;
    info->vocab_size = b->is_text ? miles_tfidf_vocab_size(b->tfidf) : 0;
    info->dim = miles_logreg_dim(b->lr);
    MilesLogRegInfo li;
    miles_logreg_info(b->lr, &li);
    info->n_iter = li.n_iter;
    info->objective = li.objective;
    info->grad_max = li.grad_max;
    info->converged = li.converged;
}

int miles_baseline_fit_text(MilesBaseline **out, const char *const *texts, const int32_t *labels,
                            int n, const MilesTfidfConfig *tcfg, const MilesLogRegConfig *lcfg) {
    *out = NULL;
    MilesBaseline *b = miles_calloc(1, sizeof *b);
    if (!b) return MILES_ENOMEM;
    b->is_text = 1;
    MilesCsr X = {0};
    int s = miles_tfidf_fit(&b->tfidf, texts, n, tcfg);
    if (s == MILES_OK) s = miles_tfidf_transform(b->tfidf, texts, n, &X);
    if (s == MILES_OK) s = miles_logreg_fit_csr(&b->lr, &X, labels, lcfg);
    miles_csr_free(&X);
    if (s != MILES_OK) { miles_baseline_free(b); return miles_error_prefix(s, "text baseline"); }
    *out = b;
    return MILES_OK;
}

int miles_baseline_fit_numeric(MilesBaseline **out, const float *X, int n, int d,
                               const int32_t *labels, const MilesLogRegConfig *lcfg) {
    *out = NULL;
    MilesBaseline *b = miles_calloc(1, sizeof *b);
    if (!b) return MILES_ENOMEM;
    int s = miles_logreg_fit_dense(&b->lr, X, n, d, labels, lcfg);
    if (s != MILES_OK) { miles_baseline_free(b); return miles_error_prefix(s, "numeric baseline"); }
    *out = b;
    return MILES_OK;
}

int miles_baseline_predict_proba(const MilesBaseline *b, const char *const *texts,
                                 const float *X, int n, int d, double *proba) {
    if (!b) return miles_error(MILES_EINVAL, "baseline_predict: NULL baseline");
    if (n < 0 || (n > 0 && !proba)) return miles_error(MILES_EINVAL, "baseline_predict: n = %d", n);
    if (n == 0) return MILES_OK;
    if (b->is_text) {
        if (!texts) return miles_error(MILES_EINVAL, "baseline_predict: text baseline needs texts");
        MilesCsr M;
        MILES_TRY(miles_tfidf_transform(b->tfidf, texts, n, &M));
        int s = miles_logreg_predict_proba_csr(b->lr, &M, proba);
        miles_csr_free(&M);
        return s;
    }
    if (!X) return miles_error(MILES_EINVAL, "baseline_predict: numeric baseline needs X");
    return miles_logreg_predict_proba_dense(b->lr, X, n, d, proba);
}

/* ---- save ----------------------------------------------------------- */

static const char *norm_name(int norm) {
    return norm == MILES_NORM_L2 ? "l2" : norm == MILES_NORM_L1 ? "l1" : "none";
}

/* cJSON prints %.15g whenever that reads back within an epsilon, which loses
 * the last bit; "%.17g" through a raw item always round-trips exactly. */
static cJSON *exact_number(double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return cJSON_CreateRaw(buf);
}

static void add_exact(cJSON *o, const char *key, double v) {
    cJSON *x = exact_number(v);
    if (x) cJSON_AddItemToObject(o, key, x);
}

static cJSON *num_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n && a; i++) {
        cJSON *x = exact_number(v[i]);
        if (!x) { cJSON_Delete(a); return NULL; }
        cJSON_AddItemToArray(a, x);
    }
    return a;
}

int miles_baseline_save(const MilesBaseline *b, const char *path) {
    if (!b || !path) return miles_error(MILES_EINVAL, "baseline_save: NULL argument");
    cJSON *o = cJSON_CreateObject();
    if (!o) return MILES_ENOMEM;
    cJSON_AddStringToObject(o, "format", "miles-baseline");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddStringToObject(o, "kind", b->is_text ? "tfidf_logreg" : "numeric_logreg");
    if (b->is_text) {
        const MilesTfidfConfig *c = miles_tfidf_config_of(b->tfidf);
        cJSON *t = cJSON_AddObjectToObject(o, "tfidf");
        if (t) {
            cJSON_AddNumberToObject(t, "max_features", c->max_features);
            cJSON_AddNumberToObject(t, "ngram_min", c->ngram_min);
            cJSON_AddNumberToObject(t, "ngram_max", c->ngram_max);
            cJSON_AddBoolToObject(t, "lowercase", c->lowercase);
            cJSON_AddBoolToObject(t, "stop_words_english", c->stop_words_english);
            add_exact(t, "min_df", c->min_df);
            cJSON_AddBoolToObject(t, "min_df_is_fraction", c->min_df_is_fraction);
            add_exact(t, "max_df", c->max_df);
            cJSON_AddBoolToObject(t, "max_df_is_fraction", c->max_df_is_fraction);
            cJSON_AddBoolToObject(t, "use_idf", c->use_idf);
            cJSON_AddBoolToObject(t, "smooth_idf", c->smooth_idf);
            cJSON_AddBoolToObject(t, "sublinear_tf", c->sublinear_tf);
            cJSON_AddStringToObject(t, "norm", norm_name(c->norm));
            int V = miles_tfidf_vocab_size(b->tfidf);
            cJSON *voc = cJSON_AddArrayToObject(t, "vocabulary");
            double *idf = miles_malloc((size_t)V * sizeof *idf);
            for (int i = 0; i < V && voc && idf; i++) {
                cJSON_AddItemToArray(voc, cJSON_CreateString(miles_tfidf_term(b->tfidf, i)));
                idf[i] = miles_tfidf_idf(b->tfidf, i);
            }
            if (idf) cJSON_AddItemToObject(t, "idf", num_array(idf, V));
            free(idf);
        }
    }
    const MilesLogRegConfig *c = miles_logreg_config_of(b->lr);
    MilesLogRegInfo info;
    miles_logreg_info(b->lr, &info);
    cJSON *l = cJSON_AddObjectToObject(o, "logreg");
    if (l) {
        add_exact(l, "C", c->C);
        cJSON_AddBoolToObject(l, "class_weight_balanced", c->class_weight_balanced);
        cJSON_AddItemToObject(l, "class_weight", num_array(c->class_weight, 2));
        cJSON_AddBoolToObject(l, "fit_intercept", c->fit_intercept);
        add_exact(l, "tol", c->tol);
        cJSON_AddNumberToObject(l, "max_iter", c->max_iter);
        cJSON_AddNumberToObject(l, "history", c->history);
        cJSON_AddNumberToObject(l, "n_features", miles_logreg_dim(b->lr));
        cJSON_AddItemToObject(l, "coef", num_array(miles_logreg_coef(b->lr), miles_logreg_dim(b->lr)));
        add_exact(l, "intercept", miles_logreg_intercept(b->lr));
        cJSON_AddNumberToObject(l, "n_iter", info.n_iter);
        cJSON_AddBoolToObject(l, "converged", info.converged);
    }
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return miles_error(MILES_ENOMEM, "baseline_save: out of memory building JSON");
    int s = miles_write_file_atomic(path, txt, strlen(txt));
    free(txt);
    return s;
}

/* ---- load ----------------------------------------------------------- */

typedef struct Ctx { const char *path; } Ctx;

static int get_num(const Ctx *cx, const cJSON *o, const char *sect, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x) return miles_error(MILES_EMISSING, "%s: %s.%s is missing", cx->path, sect, key);
    if (cJSON_IsBool(x)) { *v = cJSON_IsTrue(x); return MILES_OK; }
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
        return miles_error(MILES_EFORMAT, "%s: %s.%s is not a finite number", cx->path, sect, key);
    *v = x->valuedouble;
    return MILES_OK;
}
static int get_int(const Ctx *cx, const cJSON *o, const char *sect, const char *key, int *v) {
    double d = 0;
    MILES_TRY(get_num(cx, o, sect, key, &d));
    if (d != floor(d) || fabs(d) > 2e9)
        return miles_error(MILES_EFORMAT, "%s: %s.%s = %g is not an integer", cx->path, sect, key, d);
    *v = (int)d;
    return MILES_OK;
}
static int get_array(const Ctx *cx, const cJSON *o, const char *sect, const char *key, int want,
                     double **out) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a) return miles_error(MILES_EMISSING, "%s: %s.%s is missing", cx->path, sect, key);
    if (!cJSON_IsArray(a)) return miles_error(MILES_EFORMAT, "%s: %s.%s is not an array", cx->path, sect, key);
    int n = cJSON_GetArraySize(a);
    if (n != want)
        return miles_error(MILES_ESHAPE, "%s: %s.%s has %d entries, expected %d", cx->path, sect, key, n, want);
    double *v = miles_malloc(((size_t)n + 1) * sizeof *v);
    if (!v) return MILES_ENOMEM;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
            free(v);
            return miles_error(MILES_EFORMAT, "%s: %s.%s[%d] is not a finite number", cx->path, sect, key, i);
        }
        v[i++] = x->valuedouble;
    }
    *out = v;
    return MILES_OK;
}

static int load_tfidf(const Ctx *cx, const cJSON *t, MilesTfidf **out) {
    if (!cJSON_IsObject(t)) return miles_error(MILES_EMISSING, "%s: \"tfidf\" object is missing", cx->path);
    MilesTfidfConfig c;
    miles_tfidf_config_default(&c);
    MILES_TRY(get_int(cx, t, "tfidf", "max_features", &c.max_features));
    MILES_TRY(get_int(cx, t, "tfidf", "ngram_min", &c.ngram_min));
    MILES_TRY(get_int(cx, t, "tfidf", "ngram_max", &c.ngram_max));
    MILES_TRY(get_int(cx, t, "tfidf", "lowercase", &c.lowercase));
    MILES_TRY(get_int(cx, t, "tfidf", "stop_words_english", &c.stop_words_english));
    MILES_TRY(get_num(cx, t, "tfidf", "min_df", &c.min_df));
    MILES_TRY(get_int(cx, t, "tfidf", "min_df_is_fraction", &c.min_df_is_fraction));
    MILES_TRY(get_num(cx, t, "tfidf", "max_df", &c.max_df));
    MILES_TRY(get_int(cx, t, "tfidf", "max_df_is_fraction", &c.max_df_is_fraction));
    MILES_TRY(get_int(cx, t, "tfidf", "use_idf", &c.use_idf));
    MILES_TRY(get_int(cx, t, "tfidf", "smooth_idf", &c.smooth_idf));
    MILES_TRY(get_int(cx, t, "tfidf", "sublinear_tf", &c.sublinear_tf));
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "norm");
    const char *ns = cJSON_GetStringValue(nm);
    if (!ns) return miles_error(MILES_EMISSING, "%s: tfidf.norm is missing", cx->path);
    if (!strcmp(ns, "l2")) c.norm = MILES_NORM_L2;
    else if (!strcmp(ns, "l1")) c.norm = MILES_NORM_L1;
    else if (!strcmp(ns, "none")) c.norm = MILES_NORM_NONE;
    else return miles_error(MILES_EFORMAT, "%s: tfidf.norm = \"%s\" (want l2, l1 or none)", cx->path, ns);
    const cJSON *voc = cJSON_GetObjectItemCaseSensitive(t, "vocabulary");
    if (!cJSON_IsArray(voc)) return miles_error(MILES_EMISSING, "%s: tfidf.vocabulary is missing", cx->path);
    int V = cJSON_GetArraySize(voc);
    if (V <= 0) return miles_error(MILES_EFORMAT, "%s: tfidf.vocabulary is empty", cx->path);
    double *idf;
    MILES_TRY(get_array(cx, t, "tfidf", "idf", V, &idf));
    char **terms = miles_calloc((size_t)V, sizeof *terms);
    if (!terms) { free(idf); return MILES_ENOMEM; }
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, voc) {
        const char *sv = cJSON_GetStringValue(x);
        terms[i] = sv ? strdup(sv) : NULL;
        if (!terms[i]) {
            for (int j = 0; j < i; j++) free(terms[j]);
            free(terms); free(idf);
            return sv ? miles_error(MILES_ENOMEM, "%s: out of memory", cx->path)
                      : miles_error(MILES_EFORMAT, "%s: tfidf.vocabulary[%d] is not a string", cx->path, i);
        }
        i++;
    }
    int s = miles_tfidf_from_parts(out, &c, terms, idf, V);
    return s == MILES_OK ? s : miles_error_prefix(s, "%s", cx->path);
}

static int load_logreg(const Ctx *cx, const cJSON *l, MilesLogReg **out) {
    if (!cJSON_IsObject(l)) return miles_error(MILES_EMISSING, "%s: \"logreg\" object is missing", cx->path);
    MilesLogRegConfig c;
    miles_logreg_config_default(&c);
    MILES_TRY(get_num(cx, l, "logreg", "C", &c.C));
    MILES_TRY(get_int(cx, l, "logreg", "class_weight_balanced", &c.class_weight_balanced));
    MILES_TRY(get_int(cx, l, "logreg", "fit_intercept", &c.fit_intercept));
    MILES_TRY(get_num(cx, l, "logreg", "tol", &c.tol));
    MILES_TRY(get_int(cx, l, "logreg", "max_iter", &c.max_iter));
    MILES_TRY(get_int(cx, l, "logreg", "history", &c.history));
    double *cw;
    MILES_TRY(get_array(cx, l, "logreg", "class_weight", 2, &cw));
    c.class_weight[0] = cw[0]; c.class_weight[1] = cw[1];
    free(cw);
    int d;
    double b, *coef;
    MILES_TRY(get_int(cx, l, "logreg", "n_features", &d));
    if (d <= 0) return miles_error(MILES_EFORMAT, "%s: logreg.n_features = %d", cx->path, d);
    MILES_TRY(get_num(cx, l, "logreg", "intercept", &b));
    MILES_TRY(get_array(cx, l, "logreg", "coef", d, &coef));
    int s = miles_logreg_from_parts(out, &c, coef, d, b);
    free(coef);
    return s == MILES_OK ? s : miles_error_prefix(s, "%s", cx->path);
}

int miles_baseline_load(MilesBaseline **out, const char *path) {
    *out = NULL;
    char *txt;
    size_t n;
    MILES_TRY(miles_read_file(path, &txt, &n));
    cJSON *o = cJSON_ParseWithLength(txt, n);
    if (!o) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= txt && at <= txt + n ? (long)(at - txt) : -1;
        free(txt);
        return miles_error(MILES_EFORMAT, "%s: not valid JSON (near byte %ld)", path, off);
    }
    free(txt);
    Ctx cx = { path };
    int s = MILES_OK;
    const char *fmt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "format"));
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind"));
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
    MilesBaseline *b = miles_calloc(1, sizeof *b);
    if (!b) s = MILES_ENOMEM;
    else if (!fmt || strcmp(fmt, "miles-baseline") != 0)
        s = miles_error(MILES_EFORMAT, "%s: \"format\" is not \"miles-baseline\"", path);
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        s = miles_error(MILES_EFORMAT, "%s: unsupported \"version\" (this library reads 1)", path);
    else if (!kind || (strcmp(kind, "tfidf_logreg") && strcmp(kind, "numeric_logreg")))
        s = miles_error(MILES_EFORMAT, "%s: \"kind\" must be \"tfidf_logreg\" or \"numeric_logreg\"", path);
    if (s == MILES_OK) {
        b->is_text = !strcmp(kind, "tfidf_logreg");
        if (b->is_text) s = load_tfidf(&cx, cJSON_GetObjectItemCaseSensitive(o, "tfidf"), &b->tfidf);
        if (s == MILES_OK) s = load_logreg(&cx, cJSON_GetObjectItemCaseSensitive(o, "logreg"), &b->lr);
        if (s == MILES_OK && b->is_text && miles_logreg_dim(b->lr) != miles_tfidf_vocab_size(b->tfidf))
            s = miles_error(MILES_ESHAPE, "%s: logreg has %d features but the vocabulary %d terms", path,
                            miles_logreg_dim(b->lr), miles_tfidf_vocab_size(b->tfidf));
    }
    cJSON_Delete(o);
    if (s != MILES_OK) { miles_baseline_free(b); return s; }
    *out = b;
    return MILES_OK;
}
