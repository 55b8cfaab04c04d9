/*
 * data_internal.h — shared between the data module's sources (csv.c, data_*.c);
 * not installed.
 */
#ifndef MILES_DATA_INTERNAL_H
#define MILES_DATA_INTERNAL_H

#include "internal.h"

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
int data_features_known(const char *const vals[K_COUNT], double raw[18], uint32_t *avail, int *bad_col);

/* Parse a numeric cell: 0 = value, 1 = empty (missing), <0 = error (message
 * names `col`). */
int data_parse_number(const char *s, const char *col, double *v);

/* Raw velocity of a record: the engagement_velocity column, else views /
 * trend_duration_days.  1 = missing, 0 = ok, <0 error. */
int data_velocity_known(const char *const vals[K_COUNT], double *v, int *bad_col);

/* Index of counts that --log1p-counts transforms. */
#define DATA_LOG1P_MASK ((1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 16))
#define DATA_ALL_FEATURES ((1u << 18) - 1)

/* Everything the prepared-file writer needs; examples ordered train, val, test. */
typedef struct DataPreparedOut {
    int64_t n, n_split[3];
    int max_len, text_clean;
    const char *vocab_hash, *json;
    const uint8_t *split;
    const int32_t *labels;
    const double *velocity_raw;
    const float *velocity;
    const double *features_raw;   /* [n,18] */
    const float *features;        /* [n,18] */
    const uint32_t *avail;
    const int32_t *creator, *lengths, *input_ids; /* input_ids [n,max_len] */
    const char *const *titles, *const *row_ids;
} DataPreparedOut;
int data_prepared_write(const char *path, const DataPreparedOut *d);

#endif
