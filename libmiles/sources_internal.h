/*
 * sources_internal.h — private helpers of the "data sources" module
 * (synth.c, adapters*.c, csvwrite.c): the 58-column seed-schema row, an
 * RFC-4180 CSV writer (the inputs are read with csv_internal.h), dates,
 * and a language guess.  Not installed.
 */
#ifndef MILES_SOURCES_INTERNAL_H
#define MILES_SOURCES_INTERNAL_H

#include "csv_internal.h"
#include "data_internal.h"
#include <stdint.h>

/* ---- the seed schema: 58 columns in the order of the author's CSV ---- */
enum {
    SC_PLATFORM, SC_COUNTRY, SC_REGION, SC_LANGUAGE, SC_CATEGORY, SC_HASHTAG,
    SC_TITLE_KEYWORDS, SC_AUTHOR_HANDLE, SC_SOUND_TYPE, SC_MUSIC_TRACK, SC_WEEK_OF_YEAR,
    SC_DURATION_SEC, SC_VIEWS, SC_LIKES, SC_COMMENTS, SC_SHARES, SC_SAVES,
    SC_ENGAGEMENT_RATE, SC_TREND_LABEL, SC_SOURCE_HINT, SC_NOTES, SC_DEVICE_TYPE,
    SC_UPLOAD_HOUR, SC_GENRE, SC_TREND_DURATION_DAYS, SC_TREND_TYPE,
    SC_ENGAGEMENT_VELOCITY, SC_DISLIKES, SC_COMMENT_RATIO, SC_SHARE_RATE, SC_SAVE_RATE,
    SC_LIKE_DISLIKE_RATIO, SC_PUBLISH_DAYOFWEEK, SC_PUBLISH_PERIOD, SC_EVENT_SEASON,
    SC_TAGS, SC_SAMPLE_COMMENTS, SC_CREATOR_AVG_VIEWS, SC_CREATOR_TIER, SC_SEASON,
    SC_PUBLISH_DATE_APPROX, SC_YEAR_MONTH, SC_TITLE, SC_TITLE_LENGTH, SC_HAS_EMOJI,
    SC_AVG_WATCH_TIME_SEC, SC_COMPLETION_RATE, SC_DEVICE_BRAND, SC_TRAFFIC_SOURCE,
    SC_IS_WEEKEND, SC_ROW_ID, SC_ENGAGEMENT_TOTAL, SC_LIKE_RATE, SC_DISLIKE_RATE,
    SC_ENGAGEMENT_PER_1K, SC_ENGAGEMENT_LIKE_RATE, SC_ENGAGEMENT_COMMENT_RATE,
    SC_ENGAGEMENT_SHARE_RATE,
    SC_NCOLS
};
extern const char *const miles_src_columns[SC_NCOLS];

/* One output row: every cell is a string ("" = unavailable); cells point into
 * `buf` (or at static strings).  Reset with src_row_clear() before each row. */
typedef struct SrcRow {
    const char *cell[SC_NCOLS];
    size_t used;
    int overflow;           /* a cell did not fit in buf (set, then reported) */
    char buf[65536];
} SrcRow;

void src_row_clear(SrcRow *r);
void src_row_str(SrcRow *r, int col, const char *s);           /* copied */
void src_row_strn(SrcRow *r, int col, const char *s, size_t n);
void src_row_int(SrcRow *r, int col, int64_t v);
void src_row_fix(SrcRow *r, int col, double v, int decimals);  /* "%.*f" */
void src_row_fmt(SrcRow *r, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Write the header line / one row as RFC-4180 (fields with , " CR LF quoted,
 * quotes doubled; lines end in "\n").  Return MILES_OK or MILES_EIO. */
int src_csv_write_header(FILE *fp);
int src_csv_write_row(FILE *fp, const SrcRow *r);
/* One RFC-4180 field (exported for tests of the writer). */
int src_csv_write_field(FILE *fp, const char *s);

/* Fill the derived rate columns (engagement_total, engagement_rate, like_rate,
 * comment_ratio, share_rate, save_rate, engagement_per_1k, engagement_*_rate,
 * dislike_rate, like_dislike_ratio) from the counts; a count < 0 means
 * unavailable, and every column that needs it stays empty. */
void src_row_rates(SrcRow *r, int64_t views, int64_t likes, int64_t comments,
                   int64_t shares, int64_t saves, int64_t dislikes);
/* Title columns: title (control characters -> space, trimmed), title_length
 * (code points), has_emoji.  Returns MILES_EFORMAT for invalid UTF-8. */
int src_row_title(SrcRow *r, const char *title);
/* Date columns from a UTC (or local) Unix time: publish_date_approx, year_month,
 * week_of_year, publish_dayofweek, is_weekend (Fri/Sat/Sun = 1 as in the data
 * dictionary), season, and, when with_hour, upload_hour + publish_period. */
void src_row_time(SrcRow *r, int64_t unix_s, int with_hour);

/* ---- numbers, dates ---- */
/* Parse a whole-string integer count, also "541.2K" / "1.4M" / "1B" / "3.0"
 * (TikTok display strings, float-formatted panel numbers).  Returns 1 and sets
 * *v, 0 for an empty cell, -1 for garbage. */
int src_parse_count(const char *s, int64_t *v);
/* Strict double parse of a whole string (finite).  1 ok, 0 empty, -1 bad. */
int src_parse_double(const char *s, double *v);
int64_t src_days_from_civil(int64_t y, unsigned m, unsigned d);
void src_civil_from_days(int64_t z, int *y, int *m, int *d);
/* "YYYY-MM-DD HH:MM:SS" (optionally 'T', optional trailing zone ignored) ->
 * Unix seconds treating the fields as UTC.  1 ok, 0 empty, -1 bad. */
int src_parse_datetime(const char *s, int64_t *unix_s);
extern const char *const src_day_names[7]; /* 0 = Sunday */

/* ---- text ---- */
/* Code points and emoji: miles_utf8_length() and miles_has_emoji() of the data
 * module, so a has_emoji/title_length cell written here equals what the
 * pipeline derives from the title at serving time. */
/* Heuristic language of a caption/title: "vi", "th", "ja", "ko", "zh", "ru",
 * "ar", "hi", "en", "nl", "es", "id", or "und" (see docs/data_sources.md). */
const char *src_guess_language(const char *s);

/* ---- report builder ---- */
typedef struct SrcReport {
    char *buf;
    size_t cap, len;
} SrcReport;
void src_report(SrcReport *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- string -> value hash map (creator means, per-id aggregation) ---- */
typedef struct SrcMapEnt {
    char *key;
    double sum;
    int64_t count;
    int64_t idx;     /* free use by the caller (e.g. index of a record) */
} SrcMapEnt;
typedef struct SrcMap {
    SrcMapEnt *e;
    size_t cap, n;
} SrcMap;
/* Find or insert `key` (copied); NULL on out-of-memory. */
SrcMapEnt *src_map_get(SrcMap *m, const char *key, int insert);
void src_map_free(SrcMap *m);

/* Adapters (adapters_*.c), dispatched by miles_adapter_convert(). */
int src_adapter_ytdlp(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out);
int src_adapter_youtube2017(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out);
/* country: "CA", "DE", ... (NULL: from a <CC>videos.csv file name, else US) */
int src_adapter_youtube2017_country(const char *input, const char *country, FILE *out, SrcReport *rp,
                                    int64_t *rows_out);
int src_adapter_tiktok_vn(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out);
int src_adapter_tiktok2020(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out);

#endif
