/*
 * csvwrite.c — the 58-column seed-schema row and a tiny RFC-4180 CSV writer
 * (plus the small reader the adapters use for their CSV inputs).
 *
 * Writer rules (RFC 4180): a field containing a comma, a double quote, CR or
 * LF is enclosed in double quotes and its quotes are doubled; other fields are
 * written as is; records end in "\n" (like the author's CSV and pandas).
 */
#include "sources_internal.h"

#include <errno.h>
#include <math.h>

/* Header names, in the order of
 * youtube_shorts_tiktok_trends_2025_HEAD5_from_author_notebook.csv. */
const char *const miles_src_columns[SC_NCOLS] = {
    "platform", "country", "region", "language", "category", "hashtag",
    "title_keywords", "author_handle", "sound_type", "music_track", "week_of_year",
    "duration_sec", "views", "likes", "comments", "shares", "saves",
    "engagement_rate", "trend_label", "source_hint", "notes", "device_type",
    "upload_hour", "genre", "trend_duration_days", "trend_type",
    "engagement_velocity", "dislikes", "comment_ratio", "share_rate", "save_rate",
    "like_dislike_ratio", "publish_dayofweek", "publish_period", "event_season",
    "tags", "sample_comments", "creator_avg_views", "creator_tier", "season",
    "publish_date_approx", "year_month", "title", "title_length", "has_emoji",
    "avg_watch_time_sec", "completion_rate", "device_brand", "traffic_source",
    "is_weekend", "row_id", "engagement_total", "like_rate", "dislike_rate",
    "engagement_per_1k", "engagement_like_rate", "engagement_comment_rate",
    "engagement_share_rate",
};

void src_row_clear(SrcRow *r) {
    for (int i = 0; i < SC_NCOLS; i++) r->cell[i] = "";
    r->used = 0;
    r->overflow = 0;
    r->bad_col = -1;
}

void src_row_strn(SrcRow *r, int col, const char *s, size_t n) {
    if (r->used + n + 1 > sizeof r->buf) { r->overflow = 1; r->cell[col] = ""; return; }
    char *d = r->buf + r->used;
    memcpy(d, s, n);
    d[n] = '\0';
    r->used += n + 1;
    r->cell[col] = d;
}

void src_row_str(SrcRow *r, int col, const char *s) { src_row_strn(r, col, s ? s : "", s ? strlen(s) : 0); }

void src_row_fmt(SrcRow *r, int col, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) k = 0;
    if ((size_t)k >= sizeof tmp) k = sizeof tmp - 1;
    src_row_strn(r, col, tmp, (size_t)k);
}

void src_row_int(SrcRow *r, int col, int64_t v) {
    if ((v > 0 ? v : -v) > (int64_t)1e17 && r->bad_col < 0) r->bad_col = col;
    src_row_fmt(r, col, "%lld", (long long)v);
}

/* A derived number beyond any real value (or not finite) is not written as a
 * 300-digit cell: the row is refused when written, naming the column. */
void src_row_fix(SrcRow *r, int col, double v, int decimals) {
    if (!(fabs(v) <= 1e17) && r->bad_col < 0) r->bad_col = col;
    src_row_fmt(r, col, "%.*f", decimals, v);
}

int src_csv_write_field(FILE *fp, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) return fputs(s, fp) < 0 ? MILES_EIO : MILES_OK;
    if (fputc('"', fp) == EOF) return MILES_EIO;
    for (const char *p = s; *p; p++) {
        if (*p == '"' && fputc('"', fp) == EOF) return MILES_EIO;
        if (fputc(*p, fp) == EOF) return MILES_EIO;
    }
    return fputc('"', fp) == EOF ? MILES_EIO : MILES_OK;
}

int src_csv_write_header(FILE *fp) {
    for (int i = 0; i < SC_NCOLS; i++) {
        if (i && fputc(',', fp) == EOF) return miles_error(MILES_EIO, "CSV write failed");
        if (src_csv_write_field(fp, miles_src_columns[i]) != MILES_OK) return miles_error(MILES_EIO, "CSV write failed");
    }
    return fputc('\n', fp) == EOF ? miles_error(MILES_EIO, "CSV write failed") : MILES_OK;
}

int src_csv_write_row(FILE *fp, const SrcRow *r) {
    /* the callers prefix file:line (or the record) */
    if (r->overflow) return miles_error(MILES_ERANGE, "seed-schema row larger than %zu bytes (a field too long?)", sizeof r->buf);
    if (r->bad_col >= 0)
        return miles_error(MILES_ERANGE, "column '%s': value \"%.40s\" out of range", miles_src_columns[r->bad_col],
                           r->cell[r->bad_col] ? r->cell[r->bad_col] : "");
    for (int i = 0; i < SC_NCOLS; i++) {
        if (i && fputc(',', fp) == EOF) return miles_error(MILES_EIO, "CSV write failed");
        if (src_csv_write_field(fp, r->cell[i]) != MILES_OK) return miles_error(MILES_EIO, "CSV write failed");
    }
    return fputc('\n', fp) == EOF ? miles_error(MILES_EIO, "CSV write failed") : MILES_OK;
}

/* ---- derived columns shared by the generator and the adapters ---- */

void src_row_rates(SrcRow *r, int64_t views, int64_t likes, int64_t comments,
                   int64_t shares, int64_t saves, int64_t dislikes) {
    if (views >= 0) src_row_int(r, SC_VIEWS, views);
    if (likes >= 0) src_row_int(r, SC_LIKES, likes);
    if (comments >= 0) src_row_int(r, SC_COMMENTS, comments);
    if (shares >= 0) src_row_int(r, SC_SHARES, shares);
    if (saves >= 0) src_row_int(r, SC_SAVES, saves);
    if (dislikes >= 0) src_row_int(r, SC_DISLIKES, dislikes);
    if (likes >= 0 && dislikes >= 0) src_row_fix(r, SC_LIKE_DISLIKE_RATIO, (double)likes / (double)(dislikes + 1), 6);
    int all = likes >= 0 && comments >= 0 && shares >= 0 && saves >= 0;
    if (all) src_row_int(r, SC_ENGAGEMENT_TOTAL, likes + comments + shares + saves);
    if (views <= 0) return; /* rates undefined ("NaN when Views <= 0" in the dictionary) */
    double v = (double)views;
    if (likes >= 0) {
        src_row_fix(r, SC_LIKE_RATE, likes / v, 6);
        src_row_fix(r, SC_ENGAGEMENT_LIKE_RATE, likes / v, 6);
    }
    if (comments >= 0) {
        src_row_fix(r, SC_COMMENT_RATIO, comments / v, 6);
        src_row_fix(r, SC_ENGAGEMENT_COMMENT_RATE, comments / v, 6);
    }
    if (shares >= 0) {
        src_row_fix(r, SC_SHARE_RATE, shares / v, 6);
        src_row_fix(r, SC_ENGAGEMENT_SHARE_RATE, shares / v, 6);
    }
    if (saves >= 0) src_row_fix(r, SC_SAVE_RATE, saves / v, 6);
    if (dislikes >= 0) src_row_fix(r, SC_DISLIKE_RATE, dislikes / v, 6);
    if (all) {
        double er = (double)(likes + comments + shares + saves) / v;
        src_row_fix(r, SC_ENGAGEMENT_RATE, er, 6);
        src_row_fix(r, SC_ENGAGEMENT_PER_1K, 1000.0 * er, 3);
    }
}

int src_row_title(SrcRow *r, const char *title) {
    if (miles_utf8_length(title) < 0) return MILES_EFORMAT;
    /* control characters (newlines in captions) -> one space; trim ends */
    size_t n = strlen(title);
    char *tmp = malloc(n + 1);
    if (!tmp) return MILES_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)title[i];
        if (ch < 0x20 || ch == 0x7f) {
            if (k && tmp[k - 1] != ' ') tmp[k++] = ' ';
        } else {
            tmp[k++] = (char)ch;
        }
    }
    while (k && tmp[k - 1] == ' ') k--;
    size_t s = 0;
    while (s < k && tmp[s] == ' ') s++;
    tmp[k] = '\0';
    src_row_strn(r, SC_TITLE, tmp + s, k - s);
    src_row_int(r, SC_TITLE_LENGTH, miles_utf8_length(tmp + s));
    src_row_int(r, SC_HAS_EMOJI, miles_has_emoji(tmp + s, k - s));
    free(tmp);
    return MILES_OK;
}

const char *const src_day_names[7] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                      "Thursday", "Friday", "Saturday"};

void src_row_time(SrcRow *r, int64_t t, int with_hour) {
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sec = t - days * 86400;
    int y, m, d;
    src_civil_from_days(days, &y, &m, &d);
    int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    src_row_fmt(r, SC_PUBLISH_DATE_APPROX, "%04d-%02d-%02d", y, m, d);
    src_row_fmt(r, SC_YEAR_MONTH, "%04d-%02d", y, m);
    /* ISO week: the week with the year's first Thursday is week 1 */
    int iso_wd = wd == 0 ? 7 : wd;
    int64_t thursday = days - iso_wd + 4;
    int ty, tm, td;
    src_civil_from_days(thursday, &ty, &tm, &td);
    int64_t jan1 = src_days_from_civil(ty, 1, 1);
    src_row_int(r, SC_WEEK_OF_YEAR, (thursday - jan1) / 7 + 1);
    src_row_str(r, SC_PUBLISH_DAYOFWEEK, src_day_names[wd]);
    src_row_int(r, SC_IS_WEEKEND, wd == 5 || wd == 6 || wd == 0);
    static const char *const seasons[12] = {"Winter", "Winter", "Spring", "Spring", "Spring", "Summer",
                                            "Summer", "Summer", "Fall", "Fall", "Fall", "Winter"};
    src_row_str(r, SC_SEASON, seasons[m - 1]);
    if (with_hour) {
        int h = (int)(sec / 3600);
        src_row_int(r, SC_UPLOAD_HOUR, h);
        src_row_str(r, SC_PUBLISH_PERIOD, h >= 5 && h < 12 ? "Morning" : h >= 12 && h < 17 ? "Afternoon"
                                          : h >= 17 && h < 21 ? "Evening" : "Night");
    }
}
