/*
 * data_scaler.c — the scaler fitted on the training split: per-feature
 * standardization (scikit-learn StandardScaler semantics), optional log1p on
 * heavy-tailed counts, velocity min-max, the viral threshold; JSON round trip
 * (cJSON) so checkpoints carry it.  miles_scaler_transform() is the single
 * raw -> model-input function used for training and serving.
 */

#include "data_internal.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>

#define SCALER_FORMAT "miles-scaler"
#define SCALER_VERSION 1

struct MilesScaler {
    double mean[MILES_NUM_FEATURES], scale[MILES_NUM_FEATURES];
    uint32_t available;   /* features seen in training (else always 0) */
    uint32_t dropped;     /* --drop-features: forced to 0 */
    int log1p_counts;
    int has_velocity;
    double vmin, vmax;
    double threshold, percentile;
    char scope[16];       /* "train" | "all" | "cohort" */
    int cohort_days;      /* scope "cohort": window length and minimum rows */
    int64_t cohort_min_rows;
    int creator_avg;      /* MILES_CREATOR_AVG_* */
    int64_t n_fit;
};

static double feat_in(const MilesScaler *s, int f, double x) {
    return (s->log1p_counts && (DATA_LOG1P_MASK >> f & 1u)) ? log1p(x) : x;
}

int miles_scaler_fit(MilesScaler **out, const double *raw, const uint32_t *avail, int64_t n, const double *velocity,
                     const MilesScalerOptions *opt) {
    *out = NULL;
    if (!raw || n < 0) return miles_error(MILES_EINVAL, "miles_scaler_fit: bad arguments");
    MilesScaler *s = miles_calloc(1, sizeof *s);
    if (!s) return MILES_ENOMEM;
    s->log1p_counts = opt ? opt->log1p_counts : 0;
    s->dropped = opt ? (opt->drop_mask & DATA_ALL_FEATURES) : 0;
    s->percentile = opt && opt->percentile > 0 ? opt->percentile : 80.0;
    snprintf(s->scope, sizeof s->scope, "train");
    s->n_fit = n;
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        /* two-pass population mean/variance in double over the rows having f */
        double sum = 0;
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) {
            double x = raw[i * MILES_NUM_FEATURES + f];
            if ((avail && !(avail[i] >> f & 1u)) || !isfinite(x)) continue;
            sum += feat_in(s, f, x);
            m++;
        }
        if (m == 0) { s->mean[f] = 0; s->scale[f] = 1; continue; }
        double mean = sum / (double)m, ss = 0;
        for (int64_t i = 0; i < n; i++) {
            double x = raw[i * MILES_NUM_FEATURES + f];
            if ((avail && !(avail[i] >> f & 1u)) || !isfinite(x)) continue;
            double d = feat_in(s, f, x) - mean;
            ss += d * d;
        }
        double var = ss / (double)m;
        /* sklearn _is_constant_feature + _handle_zeros_in_scale: constant -> scale 1 */
        double eps = DBL_EPSILON, nm = (double)m;
        double upper = nm * eps * var + (nm * mean * eps) * (nm * mean * eps);
        s->mean[f] = mean;
        s->scale[f] = var <= upper ? 1.0 : sqrt(var);
        s->available |= 1u << f;
    }
    if (velocity) {
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(velocity[i])) continue;
            if (velocity[i] < lo) lo = velocity[i];
            if (velocity[i] > hi) hi = velocity[i];
        }
        if (lo <= hi) {
            s->has_velocity = 1;
            s->vmin = lo; s->vmax = hi;
            s->threshold = miles_percentile(velocity, n, s->percentile);
        }
    }
    *out = s;
    return MILES_OK;
}

void miles_scaler_free(MilesScaler *s) { free(s); }

int miles_scaler_transform(const MilesScaler *s, const double raw[MILES_NUM_FEATURES], uint32_t avail, float out[MILES_NUM_FEATURES]) {
    if (!s || !raw || !out) return miles_error(MILES_EINVAL, "miles_scaler_transform: NULL argument");
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        double x = raw[f];
        if (!(avail >> f & 1u) || !(s->available >> f & 1u) || (s->dropped >> f & 1u) || !isfinite(x)) {
            out[f] = 0.0f; /* the missing-feature rule: train mean, i.e. 0 after standardization */
            continue;
        }
        double z = (feat_in(s, f, x) - s->mean[f]) / s->scale[f];
        out[f] = (float)z;
    }
    return MILES_OK;
}

int miles_scaler_transform_record(const MilesScaler *s, const MilesRecord *rec, float out[MILES_NUM_FEATURES],
                                  uint32_t *avail) {
    double raw[MILES_NUM_FEATURES];
    uint32_t av = 0;
    MILES_TRY(miles_features_compute(rec, raw, &av));
    if (avail) *avail = av;
    return miles_scaler_transform(s, raw, av, out);
}

double miles_scaler_velocity_scale(const MilesScaler *s, double v) {
    double d = s->vmax - s->vmin;
    return (v - s->vmin) / (d > 0 ? d : 1.0);
}

double miles_scaler_velocity_unscale(const MilesScaler *s, double scaled) {
    double d = s->vmax - s->vmin;
    return scaled * (d > 0 ? d : 1.0) + s->vmin;
}

double miles_scaler_threshold(const MilesScaler *s) { return s ? s->threshold : NAN; }

void miles_scaler_set_threshold(MilesScaler *s, double threshold, double percentile, const char *scope) {
    if (!s) return;
    s->threshold = threshold;
    s->percentile = percentile;
    snprintf(s->scope, sizeof s->scope, "%s", scope ? scope : "train");
    s->cohort_days = 0;
    s->cohort_min_rows = 0;
}

void miles_scaler_set_label_cohort(MilesScaler *s, int days, int64_t min_rows) {
    if (!s || days < 1 || min_rows < 1) return;
    snprintf(s->scope, sizeof s->scope, "cohort");
    s->cohort_days = days;
    s->cohort_min_rows = min_rows;
}

int miles_scaler_label_cohort(const MilesScaler *s, int *days, int64_t *min_rows) {
    if (!s || s->cohort_days < 1) return 0;
    if (days) *days = s->cohort_days;
    if (min_rows) *min_rows = s->cohort_min_rows;
    return 1;
}

int miles_scaler_stats(const MilesScaler *s, double mean[MILES_NUM_FEATURES], double scale[MILES_NUM_FEATURES], uint32_t *available,
                       uint32_t *dropped, int *log1p_counts) {
    if (!s) return miles_error(MILES_EINVAL, "miles_scaler_stats: NULL scaler");
    if (mean) memcpy(mean, s->mean, sizeof s->mean);
    if (scale) memcpy(scale, s->scale, sizeof s->scale);
    if (available) *available = s->available;
    if (dropped) *dropped = s->dropped;
    if (log1p_counts) *log1p_counts = s->log1p_counts;
    return MILES_OK;
}

/* ---------------------------------------------------------------- JSON */

/* cJSON prints with %.15g when that round-trips only approximately; %.17g is
 * exact, so a scaler read back from JSON transforms bit-identically. */
static cJSON *exact_num(double v) {
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    return cJSON_CreateRaw(b);
}
static cJSON *num_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, exact_num(v[i]));
    return a;
}
static cJSON *bit_array(uint32_t bits) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < MILES_NUM_FEATURES; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(bits >> i & 1u));
    return a;
}

int miles_scaler_to_json(const MilesScaler *s, char **json) {
    *json = NULL;
    if (!s) return miles_error(MILES_EINVAL, "miles_scaler_to_json: NULL scaler");
    cJSON *o = cJSON_CreateObject();
    if (!o) return miles_error(MILES_ENOMEM, "out of memory");
    cJSON_AddStringToObject(o, "format", SCALER_FORMAT);
    cJSON_AddNumberToObject(o, "version", SCALER_VERSION);
    cJSON *names = cJSON_CreateStringArray(miles_feature_names, MILES_NUM_FEATURES);
    cJSON_AddItemToObject(o, "features", names);
    cJSON_AddItemToObject(o, "mean", num_array(s->mean, MILES_NUM_FEATURES));
    cJSON_AddItemToObject(o, "scale", num_array(s->scale, MILES_NUM_FEATURES));
    cJSON_AddItemToObject(o, "available", bit_array(s->available));
    cJSON_AddItemToObject(o, "dropped", bit_array(s->dropped));
    cJSON_AddItemToObject(o, "log1p", bit_array(s->log1p_counts ? DATA_LOG1P_MASK : 0));
    cJSON_AddStringToObject(o, "missing_rule", "missing, unavailable or dropped feature -> 0 after standardization (train mean)");
    cJSON_AddNumberToObject(o, "n_fit", (double)s->n_fit);
    /* only when not the data's: a scaler without it keeps its bytes (checkpoints compare them) */
    if (s->creator_avg == MILES_CREATOR_AVG_PRIOR)
        cJSON_AddStringToObject(o, "creator_avg_views", "prior: mean views of the creator's videos published on "
                                "earlier days (none: missing)");
    if (s->has_velocity) {
        cJSON *v = cJSON_AddObjectToObject(o, "velocity");
        cJSON_AddItemToObject(v, "min", exact_num(s->vmin));
        cJSON_AddItemToObject(v, "max", exact_num(s->vmax));
        cJSON_AddStringToObject(v, "rule", "scaled = (v - min) / (max - min)");
        cJSON_AddItemToObject(o, "label", data_label_json(s->threshold, s->percentile, s->scope, s->cohort_days,
                                                          s->cohort_min_rows, exact_num));
    }
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) return miles_error(MILES_ENOMEM, "out of memory printing scaler JSON");
    *json = txt;
    return MILES_OK;
}

void miles_scaler_set_creator_avg(MilesScaler *s, int rule) {
    if (s) s->creator_avg = rule == MILES_CREATOR_AVG_PRIOR ? MILES_CREATOR_AVG_PRIOR : MILES_CREATOR_AVG_DATA;
}

int miles_scaler_creator_avg(const MilesScaler *s) { return s ? s->creator_avg : MILES_CREATOR_AVG_DATA; }

cJSON *data_label_json(double threshold, double percentile, const char *scope, int cohort_days, int64_t cohort_min_rows,
                       cJSON *(*num)(double)) {
    cJSON *l = cJSON_CreateObject();
    cJSON_AddItemToObject(l, "threshold", num(threshold));
    cJSON_AddItemToObject(l, "percentile", num(percentile));
    cJSON_AddStringToObject(l, "scope", scope);
    if (cohort_days > 0) {
        cJSON_AddNumberToObject(l, "cohort_days", cohort_days);
        cJSON_AddNumberToObject(l, "cohort_min_rows", (double)cohort_min_rows);
        cJSON_AddStringToObject(l, "rule", "viral = engagement_velocity >= the percentile of the velocities of its "
                                "publish cohort (windows of cohort_days days from the first publish day; a window "
                                "under cohort_min_rows rows is joined by the next ones, rows left after the last "
                                "full cohort join it); threshold = the training split's overall percentile, for "
                                "reference");
    } else {
        cJSON_AddStringToObject(l, "rule", "viral = engagement_velocity >= threshold");
    }
    return l;
}

const char *data_scaler_label(const MilesScaler *s, double *percentile) {
    *percentile = s->percentile;
    return s->scope;
}

static int get_nums(const cJSON *o, const char *key, double *v, int n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a) return miles_error(MILES_EMISSING, "scaler JSON: missing '%s'", key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return miles_error(MILES_EFORMAT, "scaler JSON: '%s' must be an array of %d numbers", key, n);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return miles_error(MILES_EFORMAT, "scaler JSON: '%s'[%d] is not a finite number", key, i);
        v[i++] = e->valuedouble;
    }
    return MILES_OK;
}

/* Required, as the writer always writes them: a missing "available" read
 * as none would run the model on all-zero features without a word. */
static int get_bits(const cJSON *o, const char *key, uint32_t *bits) {
    double v[MILES_NUM_FEATURES];
    *bits = 0;
    MILES_TRY(get_nums(o, key, v, MILES_NUM_FEATURES));
    for (int i = 0; i < MILES_NUM_FEATURES; i++) {
        if (v[i] != 0 && v[i] != 1) return miles_error(MILES_EFORMAT, "scaler JSON: '%s'[%d] must be 0 or 1", key, i);
        if (v[i] == 1) *bits |= 1u << i;
    }
    return MILES_OK;
}

static int get_num(const cJSON *o, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x) return miles_error(MILES_EMISSING, "scaler JSON: missing '%s'", key);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
        return miles_error(MILES_EFORMAT, "scaler JSON: '%s' is not a finite number", key);
    *v = x->valuedouble;
    return MILES_OK;
}

static int from_json(MilesScaler *s, const cJSON *o) {
    if (!cJSON_IsObject(o)) return miles_error(MILES_EFORMAT, "scaler JSON: not an object");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, SCALER_FORMAT))
        return miles_error(MILES_EFORMAT, "scaler JSON: format is not \"%s\"", SCALER_FORMAT);
    double ver = 0;
    MILES_TRY(get_num(o, "version", &ver));
    if (ver != SCALER_VERSION)
        return miles_error(MILES_EUNSUPPORTED, "scaler JSON: version %g, this build reads version %d", ver, SCALER_VERSION);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "features");
    if (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != MILES_NUM_FEATURES)
        return miles_error(MILES_EFORMAT, "scaler JSON: 'features' must list the 18 feature names");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, names) {
        if (!cJSON_IsString(e) || strcmp(e->valuestring, miles_feature_names[i]))
            return miles_error(MILES_EFORMAT, "scaler JSON: feature %d is '%s', this build expects '%s'", i,
                               cJSON_IsString(e) ? e->valuestring : "?", miles_feature_names[i]);
        i++;
    }
    MILES_TRY(get_nums(o, "mean", s->mean, MILES_NUM_FEATURES));
    MILES_TRY(get_nums(o, "scale", s->scale, MILES_NUM_FEATURES));
    for (int f = 0; f < MILES_NUM_FEATURES; f++)
        if (!(s->scale[f] > 0)) return miles_error(MILES_EFORMAT, "scaler JSON: scale[%d] = %g is not positive", f, s->scale[f]);
    MILES_TRY(get_bits(o, "available", &s->available));
    MILES_TRY(get_bits(o, "dropped", &s->dropped));
    uint32_t lg;
    MILES_TRY(get_bits(o, "log1p", &lg));
    if (lg && lg != DATA_LOG1P_MASK) return miles_error(MILES_EFORMAT, "scaler JSON: unsupported log1p feature set");
    s->log1p_counts = lg != 0;
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(o, "creator_avg_views");
    if (ca) {
        if (!cJSON_IsString(ca) || strncmp(ca->valuestring, "prior:", 6))
            return miles_error(MILES_EFORMAT, "scaler JSON: 'creator_avg_views' is not a rule this build knows "
                               "(\"prior: ...\")");
        s->creator_avg = MILES_CREATOR_AVG_PRIOR;
    }
    const cJSON *nf = cJSON_GetObjectItemCaseSensitive(o, "n_fit");
    s->n_fit = cJSON_IsNumber(nf) ? (int64_t)nf->valuedouble : 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "velocity");
    if (v) {
        MILES_TRY(get_num(v, "min", &s->vmin));
        MILES_TRY(get_num(v, "max", &s->vmax));
        if (s->vmax < s->vmin) return miles_error(MILES_EFORMAT, "scaler JSON: velocity max < min");
        s->has_velocity = 1;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "label");
        if (!l) return miles_error(MILES_EMISSING, "scaler JSON: missing 'label'");
        MILES_TRY(get_num(l, "threshold", &s->threshold));
        MILES_TRY(get_num(l, "percentile", &s->percentile));
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(l, "scope");
        snprintf(s->scope, sizeof s->scope, "%s", cJSON_IsString(sc) ? sc->valuestring : "train");
        if (!strcmp(s->scope, "cohort")) {
            double days, min_rows;
            MILES_TRY(get_num(l, "cohort_days", &days));
            MILES_TRY(get_num(l, "cohort_min_rows", &min_rows));
            if (days != floor(days) || days < 1 || days > 100000 || min_rows != floor(min_rows) || min_rows < 1 ||
                min_rows > 1e15)
                return miles_error(MILES_EFORMAT, "scaler JSON: label cohort_days %.17g / cohort_min_rows %.17g "
                                   "must be whole numbers, days in [1, 100000], rows in [1, 1e15]", days, min_rows);
            s->cohort_days = (int)days;
            s->cohort_min_rows = (int64_t)min_rows;
        }
    }
    return MILES_OK;
}

int miles_scaler_from_json(MilesScaler **out, const char *json) {
    *out = NULL;
    if (!json) return miles_error(MILES_EINVAL, "miles_scaler_from_json: NULL text");
    cJSON *o = cJSON_Parse(json);
    if (!o) return miles_error(MILES_EFORMAT, "scaler JSON: parse error near '%.30s'", cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
    MilesScaler *s = miles_calloc(1, sizeof *s);
    if (!s) { cJSON_Delete(o); return MILES_ENOMEM; }
    int st = from_json(s, o);
    cJSON_Delete(o);
    if (st) { free(s); return st; }
    *out = s;
    return MILES_OK;
}
