/*
 * data_prepare.c — the pipeline behind `miles-data prepare`:
 * seed-schema CSV -> filter (language, missing id/title/views/likes, optional
 * de-dup) -> 18 features + velocity -> label + split -> scaler fitted on
 * train -> standardized features, scaled velocity -> tokens -> one prepared
 * file (data_prepared.c), written atomically.  miles_data_prepare_for does
 * the same with a checkpoint's scaler, label threshold, text cleaning and
 * tokenizer instead of fitting them, every row in the test split: the file
 * evaluates that model on other data.
 */

#include "data_internal.h"
#include "csv_internal.h"
#include "sources_internal.h"

#include <math.h>
#include <strings.h>
#include <sys/stat.h>

#define MILES_NO_DAY INT64_MIN

void miles_prepare_options_default(MilesPrepareOptions *o) {
    memset(o, 0, sizeof *o);
    o->vocab_dir = "models/all-MiniLM-L6-v2";
    o->max_len = 128;
    o->language = "en";
    o->dedup = 0;
    o->text_clean = MILES_TEXT_CLEAN_NONE;
    o->percentile = 80.0;
    o->threshold_all = 0;
    o->seed = 42;
    o->split_by_creator = 0;
    o->split_by_time = 0;
    o->label_cohort_days = 0;
    o->train_frac = 0.7;
    o->log1p_counts = 0;
    o->drop_mask = 0;
    o->leak_bound = 0.5;
}

/* ---------------------------------------------------------------- string set */

typedef struct { char **keys; int32_t *vals; size_t cap, n; } StrMap;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s) { h ^= (unsigned char)*s++; h *= 0x100000001b3ull; }
    return h;
}
static void strmap_free(StrMap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys); free(m->vals);
    memset(m, 0, sizeof *m);
}
static int strmap_grow(StrMap *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    char **k = calloc(cap, sizeof *k);
    int32_t *v = calloc(cap, sizeof *v);
    if (!k || !v) { free(k); free(v); return miles_error(MILES_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = fnv1a(m->keys[i]) & (cap - 1);
        while (k[j]) j = (j + 1) & (cap - 1);
        k[j] = m->keys[i]; v[j] = m->vals[i];
    }
    free(m->keys); free(m->vals);
    m->keys = k; m->vals = v; m->cap = cap;
    return MILES_OK;
}
/* Value of key, inserting it with `val` if absent; *found says which. */
static int strmap_get_or_put(StrMap *m, const char *key, int32_t val, int32_t *out, int *found) {
    if ((m->n + 1) * 2 > m->cap) MILES_TRY(strmap_grow(m));
    size_t j = fnv1a(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], key)) { *out = m->vals[j]; *found = 1; return MILES_OK; }
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = strdup(key);
    if (!m->keys[j]) return miles_error(MILES_ENOMEM, "out of memory");
    m->vals[j] = val; m->n++;
    *out = val; *found = 0;
    return MILES_OK;
}

/* ---------------------------------------------------------------- rows */

typedef struct {
    int64_t n, cap;
    char **title, **row_id;
    int32_t *creator;
    int64_t *day;       /* publish day; MILES_NO_DAY where the row has none */
    double *raw;        /* [n,F] */
    uint32_t *avail;
    double *vel;
} Rows;

static void rows_free(Rows *r) {
    for (int64_t i = 0; i < r->n; i++) { free(r->title[i]); free(r->row_id[i]); }
    free(r->title); free(r->row_id); free(r->creator); free(r->day); free(r->raw); free(r->avail); free(r->vel);
    memset(r, 0, sizeof *r);
}
static int rows_push(Rows *r) {
    if (r->n < r->cap) return MILES_OK;
    int64_t cap = r->cap ? r->cap * 2 : 4096;
#define GROW(f, k) do { void *q = realloc(r->f, (size_t)cap * (k) * sizeof *r->f); if (!q) return miles_error(MILES_ENOMEM, "out of memory"); r->f = q; } while (0)
    GROW(title, 1); GROW(row_id, 1); GROW(creator, 1); GROW(day, 1); GROW(raw, MILES_NUM_FEATURES); GROW(avail, 1); GROW(vel, 1);
#undef GROW
    r->cap = cap;
    return MILES_OK;
}

static int is_empty(const char *s) {
    if (!s) return 1;
    while (*s == ' ' || *s == '\t') s++;
    return !*s;
}

typedef struct { int32_t creator; int64_t day, i; } CreatorDay;

static int creator_day_cmp(const void *a, const void *b) {
    const CreatorDay *x = a, *y = b;
    if (x->creator != y->creator) return x->creator < y->creator ? -1 : 1;
    if (x->day != y->day) return x->day < y->day ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* MILES_CREATOR_AVG_PRIOR: each row's creator_avg_views = the mean views of
 * its creator's rows from earlier publish days (summed in day, then file order:
 * the same bits on every machine), else missing; *none counts the missing. */
static int creator_avg_prior(Rows *rows, int64_t *none) {
    const int64_t n = rows->n, F = MILES_NUM_FEATURES;
    CreatorDay *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    if (!o) return miles_error(MILES_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) o[i] = (CreatorDay){rows->creator[i], rows->day[i], i};
    qsort(o, (size_t)n, sizeof *o, creator_day_cmp);
    *none = 0;
    double sum = 0;
    int64_t cnt = 0;
    for (int64_t a = 0, b; a < n; a = b) {
        if (a == 0 || o[a].creator != o[a - 1].creator) { sum = 0; cnt = 0; }
        for (b = a; b < n && o[b].creator == o[a].creator && o[b].day == o[a].day; b++) {
            int64_t i = o[b].i;
            if (o[b].creator >= 0 && cnt > 0) {
                rows->raw[i * F + 16] = sum / (double)cnt;
                rows->avail[i] |= 1u << 16;
            } else {   /* the creator's first day, or no creator */
                rows->raw[i * F + 16] = NAN;
                rows->avail[i] &= ~(1u << 16);
                (*none)++;
            }
        }
        for (int64_t k = a; k < b; k++) { sum += rows->raw[o[k].i * F]; cnt++; }   /* views: every kept row has them */
    }
    free(o);
    return MILES_OK;
}

/* --language keeps only that language's rows unless it is empty, "any" or "all". */
static int language_filtered(const MilesPrepareOptions *o) {
    return o->language && *o->language && strcasecmp(o->language, "any") && strcasecmp(o->language, "all");
}

/* Read, validate and filter the CSV into rows.  needs_day: what needs a
 * publish date on every kept row (for the messages), or NULL. */
static int read_rows(const char *path, const MilesPrepareOptions *o, const char *needs_day, Rows *rows,
                     MilesPrepareReport *rep) {
    MilesCsv *csv;
    MILES_TRY(miles_csv_open(&csv, path));
    int nf, st;
    const char *const *f;
    st = miles_csv_next(csv, &nf, &f);
    if (st <= 0) {
        miles_csv_free(csv);
        return st < 0 ? st : miles_error(MILES_EFORMAT, "%s: empty file (no header)", path);
    }
    int col_of[K_COUNT];
    for (int k = 0; k < K_COUNT; k++) col_of[k] = -1;
    for (int i = 0; i < nf; i++) {
        int k = data_column_id(f[i]);
        if (k < 0) continue;
        if (col_of[k] >= 0) {
            miles_csv_free(csv);
            return miles_error(MILES_EFORMAT, "%s:1: column '%s' appears twice in the header (columns %d and %d)", path,
                               data_known_columns[k], col_of[k] + 1, i + 1);
        }
        col_of[k] = i;
    }
    static const int required[] = {K_ROW_ID, K_TITLE, K_VIEWS, K_LIKES};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (col_of[required[i]] < 0) {
            miles_csv_free(csv);
            return miles_error(MILES_EMISSING, "%s:1: required column '%s' is missing from the header", path,
                               data_known_columns[required[i]]);
        }
    if (col_of[K_VELOCITY] < 0 && col_of[K_TREND_DAYS] < 0) {
        miles_csv_free(csv);
        return miles_error(MILES_EMISSING, "%s:1: neither 'engagement_velocity' nor 'trend_duration_days' is in the header: no regression target", path);
    }
    int lang_filter = language_filtered(o);
    if (lang_filter && col_of[K_LANGUAGE] < 0) {
        miles_csv_free(csv);
        return miles_error(MILES_EMISSING, "%s:1: column 'language' is missing but --language %s was asked (use --language any)", path, o->language);
    }
    if (needs_day && col_of[K_PUBLISH_DATE] < 0) {
        miles_csv_free(csv);
        return miles_error(MILES_EMISSING, "%s:1: column 'publish_date_approx' is missing from the header, and %s "
                           "needs it", path, needs_day);
    }
    StrMap ids = {0}, creators = {0};
    int32_t n_creators = 0;
    while ((st = miles_csv_next(csv, &nf, &f)) == 1) {
        rep->rows_read++;
        const char *vals[K_COUNT];
        for (int k = 0; k < K_COUNT; k++) vals[k] = col_of[k] >= 0 ? f[col_of[k]] : NULL;
        double raw[MILES_NUM_FEATURES], vel = NAN;
        uint32_t av = 0;
        int bad = -1;
        /* every row is validated, even one the filters drop: garbage is an error */
        st = data_features_known(vals, DATA_STRLEN, raw, &av, &bad);
        int vs = st ? 0 : data_velocity_known(vals, &vel, &bad);
        if (vs < 0) st = vs;
        if (st) {
            int64_t line = miles_csv_record_line(csv), col = 0;
            if (bad >= 0 && col_of[bad] >= 0) miles_csv_field_pos(csv, col_of[bad], &line, &col);
            miles_error_prefix(st, "%s:%lld:%lld (column %d)", path, (long long)line, (long long)col,
                               bad >= 0 ? col_of[bad] + 1 : 0);
            break;
        }
        if (lang_filter && strcasecmp(vals[K_LANGUAGE], o->language)) { rep->rows_language++; continue; }
        if (is_empty(vals[K_ROW_ID]) || is_empty(vals[K_TITLE]) || !(av & 1u) || !(av & 2u)) { rep->rows_missing++; continue; }
        if (vs == 1) { rep->rows_no_target++; continue; }
        if (o->dedup) {
            int32_t dummy;
            int found;
            if ((st = strmap_get_or_put(&ids, vals[K_ROW_ID], 0, &dummy, &found))) break;
            if (found) { rep->rows_dup++; continue; }
        }
        int64_t day = MILES_NO_DAY;
        if (data_publish_day(vals[K_PUBLISH_DATE], &day)) day = MILES_NO_DAY;
        if (needs_day && day == MILES_NO_DAY) {
            /* a date that does not parse failed validation above: this one is blank */
            int64_t line = miles_csv_record_line(csv), col = 0;
            miles_csv_field_pos(csv, col_of[K_PUBLISH_DATE], &line, &col);
            st = miles_error(MILES_EMISSING, "%s:%lld:%lld (column %d): row '%.40s' has no publish_date_approx, which "
                             "%s needs for every kept row", path, (long long)line, (long long)col,
                             col_of[K_PUBLISH_DATE] + 1, vals[K_ROW_ID], needs_day);
            break;
        }
        if ((st = rows_push(rows))) break;
        int64_t i = rows->n;
        rows->day[i] = day;
        int32_t cid = -1;
        if (!is_empty(vals[K_AUTHOR ]) && col_of[K_AUTHOR] >= 0) {
            int found;
            if ((st = strmap_get_or_put(&creators, vals[K_AUTHOR], n_creators, &cid, &found))) break;
            if (!found) n_creators++;
        }
        rows->title[i] = strdup(vals[K_TITLE]);
        rows->row_id[i] = strdup(vals[K_ROW_ID]);
        if (!rows->title[i] || !rows->row_id[i]) {
            free(rows->title[i]); free(rows->row_id[i]);
            st = miles_error(MILES_ENOMEM, "out of memory");
            break;
        }
        rows->creator[i] = cid;
        memcpy(rows->raw + i * MILES_NUM_FEATURES, raw, sizeof raw);
        rows->avail[i] = av;
        rows->vel[i] = vel;
        rows->n++;
    }
    strmap_free(&ids);
    strmap_free(&creators);
    miles_csv_free(csv);
    if (st < 0) return st;
    rep->rows_kept = rows->n;
    if (o->creator_avg == MILES_CREATOR_AVG_PRIOR) return creator_avg_prior(rows, &rep->creator_avg_none);
    /* creator_avg_views absent: mean views of the creator's kept rows (the data
     * dictionary's definition, "across dataset rows") */
    if (n_creators > 0) {
        double *sum = calloc((size_t)n_creators, sizeof *sum);
        int64_t *cnt = calloc((size_t)n_creators, sizeof *cnt);
        if (!sum || !cnt) { free(sum); free(cnt); return miles_error(MILES_ENOMEM, "out of memory"); }
        for (int64_t i = 0; i < rows->n; i++)
            if (rows->creator[i] >= 0 && (rows->avail[i] & 1u)) { sum[rows->creator[i]] += rows->raw[i * MILES_NUM_FEATURES]; cnt[rows->creator[i]]++; }
        for (int64_t i = 0; i < rows->n; i++) {
            int32_t c = rows->creator[i];
            if (!(rows->avail[i] >> 16 & 1u) && c >= 0 && cnt[c] > 0) {
                rows->raw[i * MILES_NUM_FEATURES + 16] = sum[c] / (double)cnt[c];
                rows->avail[i] |= 1u << 16;
            }
        }
        free(sum); free(cnt);
    }
    return MILES_OK;
}

/* ---------------------------------------------------------------- prepare */

/* scaler_json / given_tok NULL: fit on the training split, load o.vocab_dir;
 * else apply them (miles_data_prepare_for), every row in the test split. */
static int prepare(const char *csv_path, const char *out_path, MilesPrepareOptions o, MilesPrepareReport *report,
                   const char *scaler_json, const MilesTokenizer *given_tok) {
    MilesPrepareReport repl;
    MilesPrepareReport *rep = report ? report : &repl;
    memset(rep, 0, sizeof *rep);
    rep->applied = scaler_json != NULL;
    if (!csv_path || !out_path) return miles_error(MILES_EINVAL, "miles_data_prepare: NULL path");
    struct stat st_in, st_out;   /* the output replacing the input CSV would destroy the user's data */
    if (stat(csv_path, &st_in) == 0 && stat(out_path, &st_out) == 0 && st_in.st_dev == st_out.st_dev &&
        st_in.st_ino == st_out.st_ino)
        return miles_error(MILES_EINVAL, "%s: the output is the input CSV %s: writing it would destroy it", out_path,
                           csv_path);
    if (!(o.percentile > 0 && o.percentile < 100)) return miles_error(MILES_EINVAL, "percentile %g not in (0,100)", o.percentile);
    if (o.max_len < 2 || o.max_len > 4096) return miles_error(MILES_EINVAL, "max_len %d not in [2,4096]", o.max_len);
    if (!(o.train_frac > 0 && o.train_frac < 1)) return miles_error(MILES_EINVAL, "train fraction %g not in (0,1)", o.train_frac);
    if (o.split_by_creator && o.split_by_time)
        return miles_error(MILES_EINVAL, "a split by creator and by time at once: choose one");
    if (o.threshold_all && o.label_cohort_days > 0)
        return miles_error(MILES_EINVAL, "a threshold on all rows and a cohort label at once: choose one");
    if (o.label_cohort_days < 0) return miles_error(MILES_EINVAL, "cohort window %d days: must be >= 1", o.label_cohort_days);
    if (o.creator_avg != MILES_CREATOR_AVG_DATA && o.creator_avg != MILES_CREATOR_AVG_PRIOR)
        return miles_error(MILES_EINVAL, "unknown creator_avg_views rule %d", o.creator_avg);
    if (o.language && strlen(o.language) >= sizeof ((MilesPreparedProvenance *)0)->language)
        return miles_error(MILES_EINVAL, "language '%.40s...' longer than %d bytes", o.language,
                           (int)sizeof ((MilesPreparedProvenance *)0)->language - 1);
    int64_t cohort_min = MILES_COHORT_MIN_ROWS;
    if (scaler_json) {
        o.split_by_time = 0; /* every row goes to the test split */
        /* the checkpoint's label rule: a cohort label is recomputed on this file's cohorts */
        MilesScaler *given;
        MILES_TRY(miles_scaler_from_json(&given, scaler_json));
        int days = 0; /* stays 0 without a cohort rule */
        miles_scaler_label_cohort(given, &days, &cohort_min);
        o.label_cohort_days = days;
        data_scaler_label(given, &o.percentile);   /* the cohorts' percentile too, not this call's */
        o.creator_avg = miles_scaler_creator_avg(given);   /* the feature as the model learned it */
        miles_scaler_free(given);
    }
    if (o.text_clean != MILES_TEXT_CLEAN_NONE && o.text_clean != MILES_TEXT_CLEAN_SEED)
        return miles_error(MILES_EINVAL, "unknown text cleaning mode %d", o.text_clean);
    rep->percentile = o.percentile;

    Rows rows = {0};
    MilesTokenizer *tok = NULL;
    MilesScaler *fit = NULL, *sc = NULL;
    char *json = NULL;
    uint8_t *split = NULL, *split_sorted = NULL;
    int32_t *lab_all = NULL, *lab_cohort = NULL, *labels = NULL, *ids = NULL, *lengths = NULL, *creator = NULL;
    double *vtrain = NULL, *rtrain = NULL, *fraw = NULL, *vraw = NULL;
    uint32_t *atrain = NULL, *avail = NULL;
    float *feat = NULL, *vel = NULL;
    const char **titles = NULL, **rids = NULL;
    int64_t *order = NULL;
    const char *needs_day = o.split_by_time                           ? "a split by time"
                            : o.label_cohort_days > 0 && scaler_json   ? "the checkpoint's cohort label"
                            : o.label_cohort_days > 0                  ? "a cohort label"
                            : o.creator_avg == MILES_CREATOR_AVG_PRIOR ? "creator_avg_views from earlier videos"
                                                                       : NULL;
    rep->creator_avg = o.creator_avg;
    int st = read_rows(csv_path, &o, needs_day, &rows, rep);
    if (st) goto done;
    int64_t n = rows.n;
    const int64_t n_min = scaler_json ? 1 : 3;
    if (n < n_min) {
        st = miles_error(MILES_EINVAL, "%s: only %lld usable rows after filtering; need at least %lld", csv_path,
                         (long long)n, (long long)n_min);
        goto done;
    }

    split = malloc((size_t)n);
    labels = malloc((size_t)n * sizeof *labels);
    if (!split || !labels) { st = miles_error(MILES_ENOMEM, "out of memory"); goto done; }
    if (o.label_cohort_days > 0) {
        MilesCohorts ci;
        lab_cohort = malloc((size_t)n * sizeof *lab_cohort);
        if (!lab_cohort) { st = miles_error(MILES_ENOMEM, "out of memory"); goto done; }
        st = miles_label_cohorts(rows.day, rows.vel, n, o.label_cohort_days, cohort_min, o.percentile, lab_cohort, &ci);
        if (st) goto done;
        rep->cohort_days = o.label_cohort_days;
        rep->n_cohorts = ci.n;
        rep->cohort_min_rows = cohort_min;
        rep->cohort_smallest = ci.min_rows;
        rep->cohort_thr_min = ci.thr_min;
        rep->cohort_thr_max = ci.thr_max;
    }
    double thr_all = NAN;
    if (!scaler_json) {
        /* labels on all rows: the original's threshold, and the stratification key */
        thr_all = miles_percentile(rows.vel, n, o.percentile);
        lab_all = malloc((size_t)n * sizeof *lab_all);
        if (!lab_all) { st = miles_error(MILES_ENOMEM, "out of memory"); goto done; }
        for (int64_t i = 0; i < n; i++) lab_all[i] = lab_cohort ? lab_cohort[i] : rows.vel[i] >= thr_all;
        st = o.split_by_creator ? miles_split_groups(rows.creator, n, o.train_frac, o.seed, split)
           : o.split_by_time    ? miles_split_ordered(rows.day, n, o.train_frac, split)
                                : miles_split_stratified(lab_all, n, o.train_frac, o.seed, split);
        if (st) goto done;
        if (o.split_by_time) {
            rep->split_by_time = 1;
            int64_t cnt[3] = {0};
            for (int k = 0; k < 3; k++) { rep->day_first[k] = INT64_MAX; rep->day_last[k] = INT64_MIN; }
            for (int64_t i = 0; i < n; i++) {
                int k = split[i];
                cnt[k]++;
                if (rows.day[i] < rep->day_first[k]) rep->day_first[k] = rows.day[i];
                if (rows.day[i] > rep->day_last[k]) rep->day_last[k] = rows.day[i];
            }
            if (!cnt[0] || !cnt[1] || !cnt[2]) {
                st = miles_error(MILES_EINVAL, "%s: a split by time gives %lld/%lld/%lld rows (train/val/test): the %lld rows "
                                 "fall on too few publish days for three splits (no day is cut in two)", csv_path,
                                 (long long)cnt[0], (long long)cnt[1], (long long)cnt[2], (long long)n);
                goto done;
            }
        }
    } else {
        memset(split, MILES_SPLIT_TEST, (size_t)n);
    }

    /* the rows the scaler is fitted on (and the leakage report's): the
     * training split, or with a given scaler every row */
    const int fit_split = scaler_json ? MILES_SPLIT_TEST : MILES_SPLIT_TRAIN;
    int64_t ntr = 0;
    for (int64_t i = 0; i < n; i++) ntr += split[i] == fit_split;
    if (ntr < 1) { st = miles_error(MILES_EINVAL, "empty training split"); goto done; }
    vtrain = malloc((size_t)ntr * sizeof *vtrain);
    rtrain = malloc((size_t)ntr * MILES_NUM_FEATURES * sizeof *rtrain);
    atrain = malloc((size_t)ntr * sizeof *atrain);
    if (!vtrain || !rtrain || !atrain) { st = miles_error(MILES_ENOMEM, "out of memory"); goto done; }
    for (int64_t i = 0, j = 0; i < n; i++) {
        if (split[i] != fit_split) continue;
        vtrain[j] = rows.vel[i];
        memcpy(rtrain + j * MILES_NUM_FEATURES, rows.raw + i * MILES_NUM_FEATURES, MILES_NUM_FEATURES * sizeof(double));
        atrain[j] = rows.avail[i];
        j++;
    }
    if (!scaler_json) {
        MilesScalerOptions so = {o.log1p_counts, o.drop_mask & DATA_ALL_FEATURES, o.percentile};
        if ((st = miles_scaler_fit(&fit, rtrain, atrain, ntr, vtrain, &so))) goto done;
        double thr = o.threshold_all ? thr_all : miles_scaler_threshold(fit);
        miles_scaler_set_threshold(fit, thr, o.percentile, o.threshold_all ? "all" : "train");
        if (lab_cohort) miles_scaler_set_label_cohort(fit, o.label_cohort_days, cohort_min);
        miles_scaler_set_creator_avg(fit, o.creator_avg);
        /* serialize, then transform with the scaler read back from that JSON: the
         * exact parameters a checkpoint (and so the server) will carry */
        if ((st = miles_scaler_to_json(fit, &json))) goto done;
    } else if (!(json = strdup(scaler_json))) {
        /* the checkpoint's text itself: miles_checkpoint_check_data compares it byte for byte */
        st = miles_error(MILES_ENOMEM, "out of memory");
        goto done;
    }
    if ((st = miles_scaler_from_json(&sc, json))) goto done;
    const double thr = miles_scaler_threshold(sc);
    rep->threshold = thr;
    snprintf(rep->label_scope, sizeof rep->label_scope, "%s", data_scaler_label(sc, &rep->percentile));
    for (int64_t i = 0; i < n; i++) labels[i] = lab_cohort ? lab_cohort[i] : rows.vel[i] >= thr;
    miles_scaler_stats(sc, NULL, NULL, &rep->available, NULL, NULL);

    /* leakage report: Spearman of each raw feature with velocity on train */
    {
        double *col = malloc((size_t)ntr * sizeof *col);
        if (!col) { st = miles_error(MILES_ENOMEM, "out of memory"); goto done; }
        for (int f = 0; f < MILES_NUM_FEATURES; f++) {
            int64_t cnt = 0;
            for (int64_t j = 0; j < ntr; j++) {
                int ok = (atrain[j] >> f & 1u) && isfinite(rtrain[j * MILES_NUM_FEATURES + f]);
                col[j] = ok ? rtrain[j * MILES_NUM_FEATURES + f] : NAN;
                cnt += ok;
            }
            rep->n_avail[f] = cnt;
            rep->spearman[f] = miles_spearman(col, vtrain, ntr);
            if (isfinite(rep->spearman[f]) && fabs(rep->spearman[f]) > o.leak_bound) rep->leak_warn |= 1u << f;
        }
        free(col);
    }

    /* drift: does the target move with the publish day?  Over every kept row
     * with a date (a property of the data set, not of the fitted split) */
    {
        double *dd = malloc((size_t)n * sizeof *dd);
        if (!dd) { st = miles_error(MILES_ENOMEM, "out of memory"); goto done; }
        for (int64_t i = 0; i < n; i++) {
            dd[i] = rows.day[i] == MILES_NO_DAY ? NAN : (double)rows.day[i];
            rep->n_dated += rows.day[i] != MILES_NO_DAY;
        }
        rep->day_spearman = miles_spearman(dd, rows.vel, n);
        free(dd);
    }

    /* order: train, val, test (CSV order within a split) */
    order = malloc((size_t)n * sizeof *order);
    if (!order) { st = miles_error(MILES_ENOMEM, "out of memory"); goto done; }
    {
        int64_t k = 0;
        for (int s = 0; s < 3; s++)
            for (int64_t i = 0; i < n; i++)
                if (split[i] == s) { order[k++] = i; rep->n[s]++; rep->viral[s] += labels[i]; }
    }

    /* tokenizer */
    const MilesTokenizer *tk = given_tok;
    if (!tk) {
        if ((st = miles_tokenizer_load(&tok, o.vocab_dir))) { miles_error_prefix(st, "tokenizer '%s'", o.vocab_dir); goto done; }
        tk = tok;
    }
    char hash[32] = {0};
    if ((st = miles_tokenizer_hash(tk, hash))) goto done;
    snprintf(rep->vocab_hash, sizeof rep->vocab_hash, "%s", hash);

    int T = o.max_len;
    split_sorted = malloc((size_t)n);
    ids = calloc((size_t)n * T, sizeof *ids);
    lengths = malloc((size_t)n * sizeof *lengths);
    creator = malloc((size_t)n * sizeof *creator);
    fraw = malloc((size_t)n * MILES_NUM_FEATURES * sizeof *fraw);
    feat = malloc((size_t)n * MILES_NUM_FEATURES * sizeof *feat);
    avail = malloc((size_t)n * sizeof *avail);
    vraw = malloc((size_t)n * sizeof *vraw);
    vel = malloc((size_t)n * sizeof *vel);
    titles = malloc((size_t)n * sizeof *titles);
    rids = malloc((size_t)n * sizeof *rids);
    int32_t *labs = malloc((size_t)n * sizeof *labs);
    int32_t *tt = malloc((size_t)T * sizeof *tt), *mk = malloc((size_t)T * sizeof *mk);
    if (!split_sorted || !ids || !lengths || !creator || !fraw || !feat || !avail || !vraw || !vel || !titles || !rids ||
        !labs || !tt || !mk) {
        free(labs); free(tt); free(mk);
        st = miles_error(MILES_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t k = 0; k < n && !st; k++) {
        int64_t i = order[k];
        split_sorted[k] = split[i];
        labs[k] = labels[i];
        creator[k] = rows.creator[i];
        memcpy(fraw + k * MILES_NUM_FEATURES, rows.raw + i * MILES_NUM_FEATURES, MILES_NUM_FEATURES * sizeof(double));
        avail[k] = rows.avail[i];
        st = miles_scaler_transform(sc, fraw + k * MILES_NUM_FEATURES, avail[k], feat + k * MILES_NUM_FEATURES);
        vraw[k] = rows.vel[i];
        vel[k] = (float)miles_scaler_velocity_scale(sc, rows.vel[i]);
        titles[k] = rows.title[i];
        rids[k] = rows.row_id[i];
        char *text = NULL;
        size_t text_len = 0;
        if (!st) st = miles_text_clean(rows.title[i], strlen(rows.title[i]), o.text_clean, &text, &text_len);
        int len = 0, ntok = 0;
        if (!st) st = miles_tokenizer_encode(tk, text, text_len, NULL, 0, T, 1, ids + k * T, tt, mk, &len);
        /* word pieces before truncation: tt is scratch here (T entries) */
        if (!st) st = miles_tokenizer_tokenize(tk, text, text_len, tt, T, &ntok);
        free(text);
        if (st) { miles_error_prefix(st, "%s: row id '%s'", csv_path, rows.row_id[i]); break; }
        lengths[k] = len;
        if (ntok + 2 > T) rep->truncated++;
    }
    free(tt); free(mk);
    if (!st) {
        DataPreparedOut d = {0};
        d.n = n;
        for (int s = 0; s < 3; s++) d.n_split[s] = rep->n[s];
        d.max_len = T;
        d.text_clean = o.text_clean;
        d.vocab_hash = hash;
        d.json = json;
        d.split = split_sorted; d.labels = labs; d.velocity_raw = vraw; d.velocity = vel;
        d.features_raw = fraw; d.features = feat; d.avail = avail; d.creator = creator;
        d.lengths = lengths; d.input_ids = ids; d.titles = titles; d.row_ids = rids;
        /* the split record: what a report names as the rows it scored */
        MilesPreparedProvenance *pv = &rep->split;
        pv->split_by = scaler_json        ? MILES_SPLIT_BY_CHECKPOINT
                       : o.split_by_creator ? MILES_SPLIT_BY_CREATOR
                       : o.split_by_time    ? MILES_SPLIT_BY_TIME
                                            : MILES_SPLIT_BY_ROW;
        pv->seed = o.seed;
        pv->train_frac = o.train_frac;
        pv->dedup = o.dedup != 0;
        snprintf(pv->language, sizeof pv->language, "%s", language_filtered(&o) ? o.language : "any");
        d.prov = *pv;
        st = data_prepared_write(out_path, &d);
    }
    free(labs);
done:
    miles_tokenizer_free(tok);
    miles_scaler_free(fit); miles_scaler_free(sc);
    free(json); free(split); free(split_sorted); free(lab_all); free(lab_cohort); free(labels); free(ids); free(lengths); free(creator);
    free(vtrain); free(rtrain); free(atrain); free(fraw); free(vraw); free(avail); free(feat); free(vel);
    free(titles); free(rids); free(order);
    rows_free(&rows);
    return st;
}

int miles_data_prepare(const char *csv_path, const char *out_path, const MilesPrepareOptions *opt,
                       MilesPrepareReport *report) {
    MilesPrepareOptions o;
    if (opt) o = *opt; else miles_prepare_options_default(&o);
    return prepare(csv_path, out_path, o, report, NULL, NULL);
}

int miles_data_prepare_for(const char *csv_path, const char *out_path, const MilesCheckpoint *c,
                           const MilesPrepareOptions *opt, MilesPrepareReport *report) {
    if (!c) return miles_error(MILES_EINVAL, "miles_data_prepare_for: NULL checkpoint");
    MilesPrepareOptions o;
    if (opt) o = *opt; else miles_prepare_options_default(&o);
    const char *scaler = miles_checkpoint_meta(c, MILES_META_SCALER);
    if (!scaler)
        return miles_error(MILES_EMISSING, "%s: metadata \"data\" (feature scalers) missing: a checkpoint without "
                           "them cannot prepare data", miles_checkpoint_path(c));
    MILES_TRY(miles_checkpoint_text_clean(c, &o.text_clean));
    if (o.max_len <= 0) o.max_len = miles_checkpoint_max_len(c);
    if (o.max_len <= 0) o.max_len = 128;
    MilesTokenizer *tok = NULL;
    MILES_TRY(miles_checkpoint_tokenizer(c, NULL, &tok));
    int s = prepare(csv_path, out_path, o, report, scaler, tok);
    miles_tokenizer_free(tok);
    return s;
}

/* ---------------------------------------------------------------- report */

int data_report_creator_note(const MilesPrepareReport *r) {
    return r->split_by_time && r->creator_avg == MILES_CREATOR_AVG_DATA && (r->available >> 16 & 1u) && !r->applied;
}

int data_report_drift_note(const MilesPrepareReport *r) {
    return r->n_dated >= 3 && isfinite(r->day_spearman) && fabs(r->day_spearman) >= MILES_DRIFT_NOTE &&
           !r->split_by_time && !r->applied;
}

int miles_prepare_report_format(const MilesPrepareReport *r, double leak_bound, char *buf, size_t cap) {
    if (!r || !buf || cap == 0) return miles_error(MILES_EINVAL, "miles_prepare_report_format: bad arguments");
    size_t o = 0;
#define P(...) do { if (o < cap) o += (size_t)snprintf(buf + o, cap - o, __VA_ARGS__); } while (0)
    P("rows read %lld; dropped: language %lld, missing id/title/views/likes %lld, no velocity %lld, duplicate id %lld; kept %lld\n",
      (long long)r->rows_read, (long long)r->rows_language, (long long)r->rows_missing, (long long)r->rows_no_target,
      (long long)r->rows_dup, (long long)r->rows_kept);
    if (r->cohort_days > 0)
        P("viral label: engagement_velocity >= p%g of its publish cohort (%d-day windows, >= %lld rows each%s): %lld "
          "cohorts (the smallest %lld rows), thresholds %.9g..%.9g; the training split's overall p%g, for reference: "
          "%.17g\n", r->percentile, r->cohort_days, (long long)r->cohort_min_rows,
          r->applied ? "; the checkpoint's rule on this file's rows, every row in the test split" : "",
          (long long)r->n_cohorts, (long long)r->cohort_smallest, r->cohort_thr_min, r->cohort_thr_max, r->percentile,
          r->threshold);
    else if (r->applied) P("viral threshold: engagement_velocity >= %.17g (the checkpoint's; every row in the test split)\n",
                      r->threshold);
    else P("viral threshold: engagement_velocity >= %.17g (p%g)\n", r->threshold, r->percentile);
    static const char *names[3] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        P("  %-5s n=%-7lld viral=%-6lld rate=%.4f", names[s], (long long)r->n[s], (long long)r->viral[s],
          r->n[s] ? (double)r->viral[s] / (double)r->n[s] : 0.0);
        if (r->split_by_time && r->n[s] > 0) {
            int y0, m0, d0, y1, m1, d1;
            src_civil_from_days(r->day_first[s], &y0, &m0, &d0);
            src_civil_from_days(r->day_last[s], &y1, &m1, &d1);
            P("  published %04d-%02d-%02d..%04d-%02d-%02d", y0, m0, d0, y1, m1, d1);
        }
        P("\n");
    }
    if (r->split_by_time) P("split by time: oldest publish days train, newest test; no day in two splits\n");
    if (r->truncated) P("titles reaching max_len tokens (truncated): %lld\n", (long long)r->truncated);
    if (r->creator_avg == MILES_CREATOR_AVG_PRIOR)
        P("creator_avg_views: mean views of the creator's videos from earlier publish days%s; %lld rows have none "
          "(missing)\n", r->applied ? " (the checkpoint's rule)" : "", (long long)r->creator_avg_none);
    P("feature                %s  spearman(velocity)\n", r->applied ? "      rows" : "train-rows");
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        P("  %-20s %9lld  ", miles_feature_names[f], (long long)r->n_avail[f]);
        if (!(r->available >> f & 1u)) P("UNAVAILABLE (no training value: input fixed at 0 = mean)\n");
        else if (r->applied && r->n_avail[f] == 0) P("     n/a (none in this data: input fixed at 0 = the training mean)\n");
        else if (isnan(r->spearman[f])) P("     n/a\n");
        else P("%+8.4f%s\n", r->spearman[f], (r->leak_warn >> f & 1u) ? "  WARNING: |rho| above the leakage bound" : "");
    }
    if (r->leak_warn) P("leakage: features with |spearman| > %g track the target the label is cut from (in the seed "
                        "schema velocity = views/trend_duration_days; converted sources define velocity per source, "
                        "docs/data_sources.md); consider --drop-features\n", leak_bound);
    if (r->n_dated >= 3 && isfinite(r->day_spearman)) {
        P("publish day vs velocity: spearman %+.4f over %lld rows with a date\n", r->day_spearman, (long long)r->n_dated);
        if (data_report_drift_note(r))
            P("drift: the target moves with the publish date, and a row split mixes old and new videos in every "
              "split; --split-by time tests on the newest days, as a deployed model meets them (docs/results.md 4g)\n");
    }
    if (data_report_creator_note(r))
        P("creator_avg_views: the data's value is in-sample (each row's own views, and its creator's later videos', "
          "are in it), so training rows see the test days; --creator-avg prior keeps only earlier days\n");
    if (r->vocab_hash[0]) P("vocab hash %s\n", r->vocab_hash);
#undef P
    return MILES_OK;
}
