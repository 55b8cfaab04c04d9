/*
 * data_internal.h — shared between the data module's sources (csv.c, data_*.c);
 * not installed.
 */
#ifndef MILES_DATA_INTERNAL_H
#define MILES_DATA_INTERNAL_H

#include "internal.h"

/* ---- helpers of the data module (and its tests) ---- */
/* Regression target of a record: the engagement_velocity column, else
 * views / trend_duration_days.  MILES_EMISSING when neither is available. */
int miles_velocity_compute(int n, const char *const *names, const char *const *values, double *velocity);
/* Day name ("Friday", case-insensitive) -> alphabetical code (Friday=0 ...
 * Wednesday=6), or -1. */
int miles_dayofweek_code(const char *day);
/* 1 if the text s[0..n) holds an emoji (Extended_Pictographic >= U+2000,
 * regional indicators, keycap), else 0. */
int miles_has_emoji(const char *s, size_t n);
/* Python len() of s[0..n) (U+0000 counts like any code point), -1 if not UTF-8. */
int64_t miles_utf8_length_n(const char *s, size_t n);
/* The original TextPreprocessor.clean_text on in[0..in_len): drop
 * http\S+|www.\S+, keep Python-re [\w\s#@] only, lowercase, strip, collapse
 * whitespace (MILES_TEXT_CLEAN_NONE: a copy).  *out is malloc'd and
 * NUL-terminated; *out_len (may be NULL) = its length (U+0000 survives only
 * MILES_TEXT_CLEAN_NONE). */
int miles_text_clean(const char *in, size_t in_len, int mode, char **out, size_t *out_len);

/* ---- statistics used by the pipeline ---- */
/* pandas/numpy linear-interpolation quantile of x[n] at p in [0,100]; NaNs ignored. */
double miles_percentile(const double *x, int64_t n, double p);
/* Spearman rank correlation (average ranks for ties) over pairs where both are finite. */
double miles_spearman(const double *x, const double *y, int64_t n);
/* sklearn's size rule for train_test_split(train_size=f): floor(f*n). */
int64_t miles_split_train_count(int64_t n, double train_frac);
/* Stratified split like sklearn's two train_test_split calls (train_frac, then
 * 0.5 of the rest), exact sizes and per-class counts; membership by seed.
 * labels [n] in {0,1}; out split[n]. */
int miles_split_stratified(const int32_t *labels, int64_t n, double train_frac, uint64_t seed, uint8_t *split);
/* Group split: no group (creator) in two splits; groups [n] (>= 0; -1 = its own
 * group); sizes as close as whole groups allow. */
int miles_split_groups(const int32_t *groups, int64_t n, double train_frac, uint64_t seed, uint8_t *split);
/* Ordered split: rows sorted by key [n] (e.g. publish day) fill train, then
 * val, then test; rows with equal keys stay in one split, so every val key is
 * later than every train key and every test key later than every val key;
 * sizes as close to sklearn's as the runs of equal keys allow. */
int miles_split_ordered(const int64_t *key, int64_t n, double train_frac, uint8_t *split);
/* Cohort labels: rows ordered by publish day [n] fall into windows of
 * window_days days counted from the first day; a window with fewer than
 * min_rows rows is joined by the next ones until it has them, and rows left
 * after the last full cohort join it.  labels[i] = vel[i] >= the p-th
 * percentile (miles_percentile) of its cohort's velocities. */
typedef struct { int64_t n, min_rows; double thr_min, thr_max; } MilesCohorts;
int miles_label_cohorts(const int64_t *day, const double *vel, int64_t n, int window_days, int64_t min_rows, double p,
                        int32_t *labels, MilesCohorts *info);

/* IEEE CRC-32 (zlib crc32 compatible): crc = miles_crc32(crc, buf, n), start 0. */
uint32_t miles_crc32(uint32_t crc, const void *buf, size_t n);


/* Columns the data module understands (seed-schema names; aliases in
 * data_features.c).  Feature columns first, in feature order. */
enum {
    K_VIEWS, K_LIKES, K_COMMENTS, K_SHARES, K_SAVES, K_ENG_RATE, K_COMPLETION, K_LIKE_RATE,
    K_COMMENT_RATIO, K_SHARE_RATE, K_SAVE_RATE, K_UPLOAD_HOUR, K_IS_WEEKEND, K_DURATION,
    K_TITLE_LENGTH, K_HAS_EMOJI, K_CREATOR_AVG, K_DAYOFWEEK,
    /* other inputs */
    K_TITLE, K_AVG_WATCH, K_PUBLISH_DATE, K_VELOCITY, K_TREND_DAYS, K_ROW_ID, K_LANGUAGE, K_AUTHOR,
    K_COUNT
};
extern const char *const data_known_columns[K_COUNT];

/* Known-column id of a header name (aliases included), or -1. */
int data_column_id(const char *name);

/* The one feature computation (training and serving): vals[K_COUNT] are the
 * record's cells by column id (NULL = column absent; "" = empty = missing).
 * On error the message names the column and *bad_col (if not NULL) is its id. */
#define DATA_STRLEN ((size_t)-1) /* title_len: the title is NUL-terminated */
int data_features_known(const char *const vals[K_COUNT], size_t title_len, double raw[MILES_NUM_FEATURES],
                        uint32_t *avail, int *bad_col);

/* Parse a numeric cell: 0 = value, 1 = empty (missing), <0 = error (message
 * names `col`). */
int data_parse_number(const char *s, const char *col, double *v);

/* publish_date_approx's day (days since 1970-01-01, the time of day ignored):
 * 0 ok, 1 blank/absent, <0 not a date. */
int data_publish_day(const char *s, int64_t *days);

/* Raw velocity of a record: the engagement_velocity column, else views /
 * trend_duration_days.  1 = missing, 0 = ok, <0 error. */
int data_velocity_known(const char *const vals[K_COUNT], double *v, int *bad_col);

/* Index of counts that --log1p-counts transforms. */
#define DATA_LOG1P_MASK ((1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 16))
#define DATA_ALL_FEATURES ((1u << MILES_NUM_FEATURES) - 1)

/* Everything the prepared-file writer needs; examples ordered train, val, test. */
typedef struct DataPreparedOut {
    int64_t n, n_split[3];
    int max_len, text_clean;
    const char *vocab_hash, *json;
    const uint8_t *split;
    const int32_t *labels;
    const double *velocity_raw;
    const float *velocity;
    const double *features_raw;   /* [n,F] */
    const float *features;        /* [n,F] */
    const uint32_t *avail;
    const int32_t *creator, *lengths, *input_ids; /* input_ids [n,max_len] */
    const char *const *titles, *const *row_ids;
    MilesPreparedProvenance prov;  /* header bytes 128..191 */
} DataPreparedOut;
int data_prepared_write(const char *path, const DataPreparedOut *d);
/* The report suggests --split-by time: the publish day moves the target
 * (|Spearman| >= MILES_DRIFT_NOTE over >= 3 dated rows) and the split mixes days. */
int data_report_drift_note(const MilesPrepareReport *r);
/* The report suggests --creator-avg prior: a time split with the data's (in-sample)
 * creator_avg_views available in training. */
int data_report_creator_note(const MilesPrepareReport *r);
/* A JSON number with the fewest of 15..17 digits that read back as v (0.7, not
 * cJSON's 15 digits that lose bits nor %.17g's 0.69999999999999996); NaN/Inf ->
 * null (data_report.c). */
struct cJSON;
struct cJSON *data_json_exact(double v);
/* The scaler JSON's "label" object (data_scaler.c); num writes its numbers, so
 * the scaler keeps its %.17g bytes (checkpoints compare them) and the report its
 * shortest exact ones. */
struct cJSON *data_label_json(double threshold, double percentile, const char *scope, int cohort_days,
                              int64_t cohort_min_rows, struct cJSON *(*num)(double));
/* The scaler's label scope ("train" | "all" | "cohort") and its percentile. */
const char *data_scaler_label(const MilesScaler *s, double *percentile);
/* miles_prepared_provenance_json's object (data_prepared.c): {"by":"unrecorded"}
 * for split_by UNRECORDED. */
struct cJSON *data_provenance_json(const MilesPreparedProvenance *pv);

#endif
