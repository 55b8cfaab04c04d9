/*
 * data_features.c — the 18 numeric features of one record, title helpers
 * (code-point length, emoji test, the original's text cleaning).
 *
 * One function, data_features_known(), computes the features for both the
 * training pipeline (CSV rows) and serving (named values of one request), so
 * the two paths give byte-identical vectors.  Rule per feature: a column that
 * is present and non-empty is used as it is (validated); otherwise the
 * feature is derived from other columns when they are present; otherwise it
 * is missing (raw NaN, availability bit clear).  docs/data.md lists the rules.
 */

#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <strings.h>
#include <utf8proc.h>

const char *const data_known_columns[K_COUNT] = {
    "views", "likes", "comments", "shares", "saves", "engagement_rate", "completion_rate", "like_rate",
    "comment_ratio", "share_rate", "save_rate", "upload_hour", "is_weekend", "duration_sec",
    "title_length", "has_emoji", "creator_avg_views", "publish_dayofweek",
    "title", "avg_watch_time_sec", "publish_date_approx", "engagement_velocity", "trend_duration_days",
    "row_id", "language", "author_handle"};

/* Renames of the original's dataset adapter (COLUMN_MAPPING). */
static const struct { const char *alias; int id; } aliases[] = {
    {"video_id", K_ROW_ID}, {"upload_date", K_PUBLISH_DATE}, {"primary_hashtag", -1}};

int data_column_id(const char *name) {
    if (!name) return -1;
    for (int k = 0; k < K_COUNT; k++)
        if (!strcmp(name, data_known_columns[k])) return k;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(name, aliases[i].alias)) return aliases[i].id;
    return -1;
}

/* ---------------------------------------------------------------- numbers */

static int is_blank(const char *s) {
    if (!s) return 1;
    while (*s == ' ' || *s == '\t') s++;
    return *s == '\0';
}

int data_parse_number(const char *s, const char *col, double *v) {
    if (is_blank(s)) return 1;
    const char *p = s;
    while (*p == ' ' || *p == '\t') p++;
    /* booleans as pandas writes them */
    if (!strcasecmp(p, "true")) { *v = 1; return 0; }
    if (!strcasecmp(p, "false")) { *v = 0; return 0; }
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    if (end == p) return miles_error(MILES_EFORMAT, "column '%s': '%.40s' is not a number", col, s);
    while (*end == ' ' || *end == '\t') end++;
    if (*end) return miles_error(MILES_EFORMAT, "column '%s': '%.40s' is not a number", col, s);
    if (!isfinite(x)) return miles_error(MILES_ENAN, "column '%s': '%.40s' is NaN or infinite", col, s);
    /* finite but absurd (views of 1e160): squares in the scaler overflow and the
     * prepared file's own loader would refuse it; refuse here, naming the field */
    if (fabs(x) > MILES_MAX_INPUT_VALUE)
        return miles_error(MILES_ERANGE, "column '%s': '%.40s' is out of range (|value| <= %g)", col, s,
                           MILES_MAX_INPUT_VALUE);
    *v = x;
    return 0;
}

/* ---------------------------------------------------------------- text */

int64_t miles_utf8_length_n(const char *s, size_t len) {
    if (!s) return -1;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s, *e = p + len;
    int64_t n = 0;
    utf8proc_int32_t cp;
    while (p < e) {
        utf8proc_ssize_t k = utf8proc_iterate(p, e - p, &cp);
        if (k <= 0) return -1;
        p += k; n++;
    }
    return n;
}

int64_t miles_utf8_length(const char *s) { return s ? miles_utf8_length_n(s, strlen(s)) : -1; }

static int cp_is_emoji(utf8proc_int32_t cp) {
    if (cp == 0x20E3) return 1; /* combining keycap */
    const utf8proc_property_t *pr = utf8proc_get_property(cp);
    if (pr->boundclass == UTF8PROC_BOUNDCLASS_REGIONAL_INDICATOR) return 1;
    /* Extended_Pictographic, minus the Latin-1 (c) and (R) signs that are text in titles */
    if ((pr->boundclass == UTF8PROC_BOUNDCLASS_EXTENDED_PICTOGRAPHIC || pr->boundclass == UTF8PROC_BOUNDCLASS_E_ZWG) &&
        cp >= 0x2000)
        return 1;
    return 0;
}

int miles_has_emoji(const char *s, size_t len) {
    if (!s) return 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s, *e = p + len;
    utf8proc_int32_t cp;
    while (p < e) {
        utf8proc_ssize_t k = utf8proc_iterate(p, e - p, &cp);
        if (k <= 0) return 0;
        if (cp_is_emoji(cp)) return 1;
        p += k;
    }
    return 0;
}

/* Decode valid UTF-8 s[0..n) into code points; returns count or -1. */
static int64_t decode(const char *s, size_t n, utf8proc_int32_t **out) {
    utf8proc_int32_t *cps = miles_malloc((n + 1) * sizeof *cps);
    if (!cps) return -2;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s, *e = p + n;
    int64_t m = 0;
    while (p < e) {
        utf8proc_ssize_t k = utf8proc_iterate(p, e - p, &cps[m]);
        if (k <= 0) { free(cps); return -1; }
        p += k; m++;
    }
    *out = cps;
    return m;
}

static size_t put_cp(char *o, utf8proc_int32_t c) { return (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)o); }

int miles_text_clean(const char *in, size_t in_len, int mode, char **out, size_t *out_len) {
    *out = NULL;
    if (!in) in = "", in_len = 0;
    if (mode == MILES_TEXT_CLEAN_NONE) {
        *out = miles_malloc(in_len + 1);
        if (!*out) return MILES_ENOMEM;
        memcpy(*out, in, in_len);
        (*out)[in_len] = '\0';
        if (out_len) *out_len = in_len;
        return MILES_OK;
    }
    if (mode != MILES_TEXT_CLEAN_SEED) return miles_error(MILES_EINVAL, "unknown text cleaning mode %d", mode);
    utf8proc_int32_t *c;
    int64_t n = decode(in, in_len, &c);
    if (n == -2) return MILES_ENOMEM;
    if (n < 0) return miles_error(MILES_EFORMAT, "title is not valid UTF-8");
    /* 1. re.sub(r'http\S+|www.\S+', '', text): leftmost matches, greedy \S+, '.' = any but \n */
    utf8proc_int32_t *a = miles_malloc((n + 1) * sizeof *a);
    if (!a) { free(c); return MILES_ENOMEM; }
    int64_t m = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = -1;
        if (i + 4 < n && c[i] == 'h' && c[i + 1] == 't' && c[i + 2] == 't' && c[i + 3] == 'p' &&
            !miles_py_isspace(c[i + 4]))
            j = i + 4;
        else if (i + 4 < n && c[i] == 'w' && c[i + 1] == 'w' && c[i + 2] == 'w' && c[i + 3] != '\n' &&
                 !miles_py_isspace(c[i + 4]))
            j = i + 4;
        if (j >= 0) {
            while (j < n && !miles_py_isspace(c[j])) j++;
            i = j;
        } else a[m++] = c[i++];
    }
    /* 2. re.sub(r'[^\w\s#@]', '', text) */
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++)
        if (miles_py_isword(a[i]) || miles_py_isspace(a[i]) || a[i] == '#' || a[i] == '@') a[k++] = a[i];
    m = k;
    /* 3. lower(), 4. strip(), 5. re.sub(r'\s+', ' ', text) */
    char *o = miles_malloc((size_t)m * 8 + 1);
    if (!o) { free(c); free(a); return MILES_ENOMEM; }
    size_t on = 0;
    int64_t lo = 0, hi = m;
    while (lo < hi && miles_py_isspace(a[lo])) lo++;
    while (hi > lo && miles_py_isspace(a[hi - 1])) hi--;
    for (int64_t i = lo; i < hi; i++) {
        utf8proc_int32_t ch = a[i];
        if (miles_py_isspace(ch)) {
            while (i + 1 < hi && miles_py_isspace(a[i + 1])) i++;
            o[on++] = ' ';
            continue;
        }
        if (ch == 0x130) { /* full lowercase mapping of dotted capital I, as Python does */
            on += put_cp(o + on, 'i');
            on += put_cp(o + on, 0x307);
            continue;
        }
        if (ch == 0x3A3) { /* Final_Sigma rule of str.lower() */
            on += put_cp(o + on, miles_py_lower_sigma(a, lo, i, hi));
            continue;
        }
        on += put_cp(o + on, utf8proc_tolower(ch));
    }
    o[on] = '\0';
    free(c); free(a);
    *out = o;
    if (out_len) *out_len = on; /* U+0000 is not \w: never in the output */
    return MILES_OK;
}

/* ---------------------------------------------------------------- dates */

static const char *const day_names_alpha[7] = {"Friday", "Monday", "Saturday", "Sunday",
                                               "Thursday", "Tuesday", "Wednesday"};

int miles_dayofweek_code(const char *day) {
    if (!day) return -1;
    while (*day == ' ') day++;
    size_t n = strlen(day);
    while (n && day[n - 1] == ' ') n--;
    for (int i = 0; i < 7; i++)
        if (strlen(day_names_alpha[i]) == n && !strncasecmp(day, day_names_alpha[i], n)) return i;
    return -1;
}

/* Howard Hinnant's days_from_civil: days since 1970-01-01. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD[(T| )HH:MM[...]]" -> alphabetical day code, hour (-1 if no
 * time) and days since 1970-01-01 (NULL: not wanted).  0 ok, <0 error. */
static int parse_date(const char *s, int *day_code, int *hour, int64_t *days_out) {
    int y, mo, d, h = -1, mi;
    char sep;
    int n = 0;
    if (sscanf(s, " %4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || mo < 1 || mo > 12 || d < 1 ||
        d > miles_days_in_month(y, mo))
        return miles_error(MILES_EFORMAT, "column 'publish_date_approx': '%.40s' is not a YYYY-MM-DD date", s);
    const char *t = s + n;
    if ((*t == 'T' || *t == ' ') && sscanf(t, "%c%2d:%2d", &sep, &h, &mi) == 3) {
        if (h < 0 || h > 23 || mi < 0 || mi > 59)
            return miles_error(MILES_EFORMAT, "column 'publish_date_approx': bad time in '%.40s'", s);
    } else h = -1;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int dow_sun0 = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    static const int sun0_to_alpha[7] = {3, 1, 5, 6, 4, 0, 2};
    *day_code = sun0_to_alpha[dow_sun0];
    *hour = h;
    if (days_out) *days_out = days;
    return MILES_OK;
}

int data_publish_day(const char *s, int64_t *days) {
    if (is_blank(s)) return 1;
    int code, hour;
    return parse_date(s, &code, &hour, days);
}

/* ---------------------------------------------------------------- features */

/* Fetch a numeric column: 0 ok, 1 missing (absent/empty), <0 error. */
static int num(const char *const vals[K_COUNT], int k, double *v, int *bad_col) {
    int s = data_parse_number(vals[k], data_known_columns[k], v);
    if (s < 0 && bad_col) *bad_col = k;
    return s;
}

static int check(int ok, int k, int *bad_col, const char *what, double v) {
    if (ok) return MILES_OK;
    if (bad_col) *bad_col = k;
    return miles_error(MILES_ERANGE, "column '%s': %.17g %s", data_known_columns[k], v, what);
}

int data_velocity_known(const char *const vals[K_COUNT], double *v, int *bad_col) {
    double x, views, days;
    int s = num(vals, K_VELOCITY, &x, bad_col);
    if (s < 0) return s;
    if (s == 0) { /* may be negative: a real source's view growth can be (YouTube view corrections) */
        *v = x;
        return 0;
    }
    int a = num(vals, K_VIEWS, &views, bad_col);
    if (a < 0) return a;
    int b = num(vals, K_TREND_DAYS, &days, bad_col);
    if (b < 0) return b;
    if (a == 0 && b == 0 && days > 0 && views >= 0) { *v = views / days; return 0; }
    return 1;
}

int data_features_known(const char *const vals[K_COUNT], size_t title_len, double raw[MILES_NUM_FEATURES],
                        uint32_t *avail, int *bad_col) {
    double v[K_COUNT];
    int have[K_COUNT] = {0};
    uint32_t av = 0;
    if (bad_col) *bad_col = -1;
    for (int f = 0; f < MILES_NUM_FEATURES; f++) raw[f] = NAN;
    /* all numeric columns, validated */
    static const int numeric[] = {K_VIEWS, K_LIKES, K_COMMENTS, K_SHARES, K_SAVES, K_ENG_RATE, K_COMPLETION,
                                  K_LIKE_RATE, K_COMMENT_RATIO, K_SHARE_RATE, K_SAVE_RATE, K_UPLOAD_HOUR,
                                  K_IS_WEEKEND, K_DURATION, K_TITLE_LENGTH, K_HAS_EMOJI, K_CREATOR_AVG,
                                  K_AVG_WATCH};
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++) {
        int k = numeric[i];
        int s = num(vals, k, &v[k], bad_col);
        if (s < 0) return s;
        have[k] = (s == 0);
    }
    for (int k = K_VIEWS; k <= K_SAVES; k++)
        if (have[k]) MILES_TRY(check(v[k] >= 0, k, bad_col, "is a negative count", v[k]));
    static const int nonneg[] = {K_ENG_RATE, K_COMPLETION, K_LIKE_RATE, K_COMMENT_RATIO, K_SHARE_RATE,
                                 K_SAVE_RATE, K_DURATION, K_TITLE_LENGTH, K_CREATOR_AVG, K_AVG_WATCH};
    for (size_t i = 0; i < sizeof nonneg / sizeof nonneg[0]; i++)
        if (have[nonneg[i]]) MILES_TRY(check(v[nonneg[i]] >= 0, nonneg[i], bad_col, "is negative", v[nonneg[i]]));
    if (have[K_UPLOAD_HOUR])
        MILES_TRY(check(v[K_UPLOAD_HOUR] >= 0 && v[K_UPLOAD_HOUR] < 24, K_UPLOAD_HOUR, bad_col,
                        "is not an hour in [0,24)", v[K_UPLOAD_HOUR]));
    if (have[K_IS_WEEKEND])
        MILES_TRY(check(v[K_IS_WEEKEND] == 0 || v[K_IS_WEEKEND] == 1, K_IS_WEEKEND, bad_col, "is not 0/1", v[K_IS_WEEKEND]));
    if (have[K_HAS_EMOJI])
        MILES_TRY(check(v[K_HAS_EMOJI] == 0 || v[K_HAS_EMOJI] == 1, K_HAS_EMOJI, bad_col, "is not 0/1", v[K_HAS_EMOJI]));

    /* day of week: name or code in the column, else from the date */
    int day = -1, hour_from_date = -1;
    if (!is_blank(vals[K_DAYOFWEEK])) {
        day = miles_dayofweek_code(vals[K_DAYOFWEEK]);
        if (day < 0) {
            double x;
            int s = data_parse_number(vals[K_DAYOFWEEK], "publish_dayofweek", &x);
            if (s != 0 || x != floor(x) || x < 0 || x > 6) {
                if (bad_col) *bad_col = K_DAYOFWEEK;
                return miles_error(MILES_EFORMAT,
                                   "column 'publish_dayofweek': '%.40s' is neither a day name nor a code 0-6", vals[K_DAYOFWEEK]);
            }
            day = (int)x;
        }
    }
    if (!is_blank(vals[K_PUBLISH_DATE])) {
        int dd = -1, hh = -1;
        int s = parse_date(vals[K_PUBLISH_DATE], &dd, &hh, NULL);
        if (s) { if (bad_col) *bad_col = K_PUBLISH_DATE; return s; }
        if (day < 0) day = dd;
        hour_from_date = hh;
    }

    /* 0-4 counts */
    for (int k = K_VIEWS; k <= K_SAVES; k++)
        if (have[k]) { raw[k] = v[k]; av |= 1u << k; }
    double views = v[K_VIEWS];
    int views_ok = have[K_VIEWS] && views > 0;
    /* 5 engagement_rate */
    if (have[K_ENG_RATE]) { raw[5] = v[K_ENG_RATE]; av |= 1u << 5; }
    else if (views_ok && have[K_LIKES] && have[K_COMMENTS] && have[K_SHARES] && have[K_SAVES]) {
        raw[5] = (v[K_LIKES] + v[K_COMMENTS] + v[K_SHARES] + v[K_SAVES]) / views;
        av |= 1u << 5;
    }
    /* 6 completion_rate */
    if (have[K_COMPLETION]) { raw[6] = v[K_COMPLETION]; av |= 1u << 6; }
    else if (have[K_AVG_WATCH] && have[K_DURATION] && v[K_DURATION] > 0) {
        raw[6] = v[K_AVG_WATCH] / v[K_DURATION];
        av |= 1u << 6;
    }
    /* 7-10 per-view rates */
    static const int rate_col[4] = {K_LIKE_RATE, K_COMMENT_RATIO, K_SHARE_RATE, K_SAVE_RATE};
    static const int rate_num[4] = {K_LIKES, K_COMMENTS, K_SHARES, K_SAVES};
    for (int i = 0; i < 4; i++) {
        int f = 7 + i;
        if (have[rate_col[i]]) { raw[f] = v[rate_col[i]]; av |= 1u << f; }
        else if (views_ok && have[rate_num[i]]) { raw[f] = v[rate_num[i]] / views; av |= 1u << f; }
    }
    /* 11 upload_hour */
    if (have[K_UPLOAD_HOUR]) { raw[11] = v[K_UPLOAD_HOUR]; av |= 1u << 11; }
    else if (hour_from_date >= 0) { raw[11] = hour_from_date; av |= 1u << 11; }
    /* 12 is_weekend: Friday, Saturday, Sunday (the data dictionary's rule) */
    if (have[K_IS_WEEKEND]) { raw[12] = v[K_IS_WEEKEND]; av |= 1u << 12; }
    else if (day >= 0) { raw[12] = (day == 0 || day == 2 || day == 3); av |= 1u << 12; }
    /* 13 duration_sec */
    if (have[K_DURATION]) { raw[13] = v[K_DURATION]; av |= 1u << 13; }
    /* 14 title_length, 15 has_emoji: column, else from the raw title */
    int title_ok = vals[K_TITLE] != NULL;
    const size_t tlen = !title_ok ? 0 : title_len == DATA_STRLEN ? strlen(vals[K_TITLE]) : title_len;
    if (title_ok && miles_utf8_length_n(vals[K_TITLE], tlen) < 0) {
        if (bad_col) *bad_col = K_TITLE;
        return miles_error(MILES_EFORMAT, "column 'title': not valid UTF-8");
    }
    if (have[K_TITLE_LENGTH]) { raw[14] = v[K_TITLE_LENGTH]; av |= 1u << 14; }
    else if (title_ok) { raw[14] = (double)miles_utf8_length_n(vals[K_TITLE], tlen); av |= 1u << 14; }
    if (have[K_HAS_EMOJI]) { raw[15] = v[K_HAS_EMOJI]; av |= 1u << 15; }
    else if (title_ok) { raw[15] = miles_has_emoji(vals[K_TITLE], tlen); av |= 1u << 15; }
    /* 16 creator_avg_views (the pipeline may fill it from the data set later) */
    if (have[K_CREATOR_AVG]) { raw[16] = v[K_CREATOR_AVG]; av |= 1u << 16; }
    /* 17 publish_dayofweek */
    if (day >= 0) { raw[17] = day; av |= 1u << 17; }
    *avail = av;
    return MILES_OK;
}

/* Known-column view of a record (first non-empty value wins; two different
 * non-empty values for one column are an error).  Values carry their length:
 * the title may hold U+0000 (*title_len is its length); in any other known
 * column a NUL byte is an error. */
static int known_from_record(const MilesRecord *r, const char *vals[K_COUNT], size_t *title_len) {
    for (int k = 0; k < K_COUNT; k++) vals[k] = NULL;
    *title_len = 0;
    if (!r || r->n < 0 || (r->n > 0 && (!r->names || !r->values))) return miles_error(MILES_EINVAL, "record: bad arguments");
    for (int i = 0; i < r->n; i++) {
        int k = data_column_id(r->names[i]);
        if (k < 0) continue; /* other columns are ignored */
        const char *v = r->values[i] ? r->values[i] : "";
        size_t len = r->values[i] && r->lengths ? r->lengths[i] : strlen(v);
        if (k != K_TITLE && memchr(v, 0, len))
            return miles_error(MILES_EFORMAT, "column '%s': contains a NUL character", data_known_columns[k]);
        if (vals[k] && !is_blank(vals[k]) && !is_blank(v) && strcmp(vals[k], v))
            return miles_error(MILES_EINVAL, "column '%s' given twice with different values", data_known_columns[k]);
        if (!vals[k] || is_blank(vals[k])) {
            vals[k] = v;
            if (k == K_TITLE) *title_len = len;
        }
    }
    return MILES_OK;
}

int miles_velocity_compute(int n, const char *const *names, const char *const *values, double *velocity) {
    const char *vals[K_COUNT];
    size_t tl;
    MilesRecord r = {n, names, values, NULL};
    MILES_TRY(known_from_record(&r, vals, &tl));
    double v = NAN;
    int s = data_velocity_known(vals, &v, NULL);
    if (s < 0) return s;
    if (s == 1) return miles_error(MILES_EMISSING, "no engagement_velocity, and views / trend_duration_days not available");
    *velocity = v;
    return MILES_OK;
}

int miles_features_compute(const MilesRecord *rec, double raw[MILES_NUM_FEATURES], uint32_t *avail) {
    const char *vals[K_COUNT];
    uint32_t dummy;
    size_t title_len;
    if (!avail) avail = &dummy;
    MILES_TRY(known_from_record(rec, vals, &title_len));
    return data_features_known(vals, title_len, raw, avail, NULL);
}
