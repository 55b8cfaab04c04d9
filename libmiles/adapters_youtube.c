/*
 * adapters_youtube.c — yt-dlp JSON ("ytdlp") and the 2017 US YouTube trending
 * snapshots ("youtube2017") -> seed-schema rows.  Rules: docs/data_sources.md.
 */
#include "sources_internal.h"

#include <ctype.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

/* ================================================================ yt-dlp */

typedef struct {
    char *id, *title, *author, *platform, *lang, *tags, *category, *hashtag;
    char *where;                             /* "file:line" of the record, for messages */
    int64_t views, likes, comments, shares;   /* -1 = unavailable */
    double duration;                         /* < 0 unavailable */
    int64_t publish;                         /* Unix s */
    int has_hour;
    double age_days;
} YtRec;

static void ytrec_free(YtRec *r) {
    free(r->id); free(r->title); free(r->author); free(r->platform); free(r->lang);
    free(r->tags); free(r->category); free(r->hashtag); free(r->where);
}

typedef struct {
    YtRec *v;
    size_t n, cap;
    SrcMap seen;           /* ids already taken */
    int64_t in, drop_noid, drop_notitle, drop_noviews, drop_nodate, drop_noepoch, drop_utf8, drop_dup,
        drop_notobj, no_likes, no_comments, no_duration, no_hour;
} YtState;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* id and title: the caller checks their UTF-8 (and counts the drop) */
static const char *jstr_raw(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) && x->valuestring[0] ? x->valuestring : NULL;
}
/* any other string: invalid UTF-8 counts as absent (it would make the output
 * CSV unreadable by prepare; found by fuzz/fuzz_adapter_ytdlp.c) */
static const char *jstr(const cJSON *o, const char *k) {
    const char *s = jstr_raw(o, k);
    return s && miles_utf8_length(s) >= 0 ? s : NULL;
}
/* non-negative finite number, or -1 */
static double jnum(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0) return -1;
    return x->valuedouble;
}

static void first_hashtag(const char *s, char *out, size_t cap) {
    out[0] = '\0';
    if (!s) return;
    const char *p = strchr(s, '#');
    while (p) {
        size_t k = 1;
        while (p[k] && p[k] != ' ' && p[k] != '#' && p[k] != ',' && p[k] != '\n' && p[k] != '\t' && k < cap - 1) k++;
        /* a tag cut at cap must not end inside a UTF-8 sequence */
        if (k == cap - 1) {
            size_t j = k;
            while (j > 1 && ((unsigned char)p[j] & 0xC0) == 0x80) j--;
            k = j;
        }
        if (k > 1) {
            memcpy(out, p, k);
            out[k] = '\0';
            return;
        }
        p = strchr(p + 1, '#');
    }
}

/* Numbers beyond any real count or time are errors naming where:field (a
 * view_count of 1e308 became a velocity of -9.2e18, a timestamp of 1e300 the
 * year 219250468); negative or absent ones stay "unavailable" as before. */
static int yt_check_ranges(const cJSON *o, const char *where) {
    static const char *const counts[] = {"view_count", "like_count", "comment_count", "repost_count", "duration"};
    static const char *const times[] = {"timestamp", "epoch"};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, counts[i]);
        if (cJSON_IsNumber(x) && !(x->valuedouble <= MILES_MAX_INPUT_VALUE))
            return src_check_range(where, counts[i], x->valuedouble, 0, MILES_MAX_INPUT_VALUE);
    }
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, times[i]);
        if (cJSON_IsNumber(x) && !(x->valuedouble <= SRC_MAX_UNIX_TIME))
            return src_check_range(where, times[i], x->valuedouble, 0, SRC_MAX_UNIX_TIME);
    }
    return MILES_OK;
}

static int yt_add(YtState *st, const cJSON *o, const char *where) {
    st->in++;
    if (!cJSON_IsObject(o)) { st->drop_notobj++; return MILES_OK; }
    MILES_TRY(yt_check_ranges(o, where));
    char idbuf[64];
    const char *id = jstr_raw(o, "id");
    const cJSON *idn = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!id && cJSON_IsNumber(idn)) { snprintf(idbuf, sizeof idbuf, "%.0f", idn->valuedouble); id = idbuf; }
    if (!id) { st->drop_noid++; return MILES_OK; }
    const char *title = jstr_raw(o, "title");
    if (!title) { st->drop_notitle++; return MILES_OK; }
    if (miles_utf8_length(title) < 0 || miles_utf8_length(id) < 0) { st->drop_utf8++; return MILES_OK; }
    double views = jnum(o, "view_count");
    if (views < 0) { st->drop_noviews++; return MILES_OK; }
    /* publish time: timestamp (exact, UTC) else upload_date YYYYMMDD (00:00 UTC) */
    int64_t publish = 0;
    int has_hour = 0, have_pub = 0;
    double ts = jnum(o, "timestamp");
    const char *ud = jstr(o, "upload_date");
    if (ts >= 0) { publish = (int64_t)ts; has_hour = 1; have_pub = 1; }
    else if (ud && strlen(ud) == 8 && strspn(ud, "0123456789") == 8) {
        int y = (ud[0] - '0') * 1000 + (ud[1] - '0') * 100 + (ud[2] - '0') * 10 + (ud[3] - '0');
        int m = (ud[4] - '0') * 10 + (ud[5] - '0'), d = (ud[6] - '0') * 10 + (ud[7] - '0');
        if (m < 1 || m > 12 || d < 1 || d > miles_days_in_month(y, m))
            return miles_error(MILES_EFORMAT, "%s: field 'upload_date' = \"%s\" is not a valid YYYYMMDD date", where, ud);
        publish = src_days_from_civil(y, m, d) * 86400;
        have_pub = 1;
    }
    if (!have_pub) { st->drop_nodate++; return MILES_OK; }
    double epoch = jnum(o, "epoch");
    if (epoch < 0) { st->drop_noepoch++; return MILES_OK; }
    SrcMapEnt *e = src_map_get(&st->seen, id, 1);
    if (!e) return MILES_ENOMEM;
    if (e->count++) { st->drop_dup++; return MILES_OK; }
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 256;
        YtRec *nv = realloc(st->v, nc * sizeof *nv);
        if (!nv) return miles_error(MILES_ENOMEM, "%s: out of memory", where);
        st->v = nv;
        st->cap = nc;
    }
    YtRec *r = &st->v[st->n++];
    memset(r, 0, sizeof *r);
    r->id = strdup(id);
    r->title = strdup(title);
    r->where = strdup(where);
    const char *author = jstr(o, "channel");
    if (!author) author = jstr(o, "uploader");
    if (!author) author = jstr(o, "uploader_id");
    if (!author) author = jstr(o, "channel_id");
    r->author = dup_or_null(author);
    const char *ek = jstr(o, "extractor_key");
    r->platform = strdup(!ek ? "" : strcmp(ek, "Youtube") == 0 ? "YouTube" : ek);
    const char *lang = jstr(o, "language");
    r->lang = strdup(lang ? lang : src_guess_language(title));
    r->views = (int64_t)views;
    double lk = jnum(o, "like_count"), cm = jnum(o, "comment_count"), rp = jnum(o, "repost_count");
    r->likes = lk >= 0 ? (int64_t)lk : -1;
    r->comments = cm >= 0 ? (int64_t)cm : -1;
    r->shares = rp >= 0 ? (int64_t)rp : -1;
    if (r->likes < 0) st->no_likes++;
    if (r->comments < 0) st->no_comments++;
    r->duration = jnum(o, "duration");
    if (r->duration < 0) st->no_duration++;
    r->publish = publish;
    r->has_hour = has_hour;
    if (!has_hour) st->no_hour++;
    r->age_days = (epoch - (double)publish) / 86400.0;
    if (r->age_days < 1) r->age_days = 1; /* documented floor: 1 day */
    /* tags: list of strings joined ", " */
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags");
    if (cJSON_IsArray(tags)) {
        size_t len = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tags) if (cJSON_IsString(t)) len += strlen(t->valuestring) + 2;
        r->tags = calloc(len + 1, 1);
        if (r->tags) {
            cJSON_ArrayForEach(t, tags) if (cJSON_IsString(t) && miles_utf8_length(t->valuestring) >= 0) {
                if (r->tags[0]) strcat(r->tags, ", ");
                strcat(r->tags, t->valuestring);
            }
        }
    }
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(o, "categories");
    const cJSON *c0 = cJSON_IsArray(cats) ? cJSON_GetArrayItem(cats, 0) : NULL;
    r->category = dup_or_null(cJSON_IsString(c0) && miles_utf8_length(c0->valuestring) >= 0 ? c0->valuestring : NULL);
    char ht[128];
    first_hashtag(title, ht, sizeof ht);
    if (!ht[0]) {
        const char *desc = jstr(o, "description");
        if (desc && miles_utf8_length(desc) >= 0) first_hashtag(desc, ht, sizeof ht);
    }
    r->hashtag = strdup(ht);
    if (!r->id || !r->title || !r->platform || !r->lang || !r->hashtag)
        return miles_error(MILES_ENOMEM, "%s: out of memory", where);
    return MILES_OK;
}

/* One file: a single JSON document (a .info.json, or an array of records), or
 * JSON lines (yt-dlp -j); with allow_paths, a line that is not JSON names a .json
 * file (relative to this file's directory). */
static int yt_parse_file(YtState *st, const char *input, SrcReport *rp, int allow_paths) {
    char *data;
    size_t n;
    MILES_TRY(miles_read_file(input, &data, &n));
    /* one JSON document (a .info.json or an array)? */
    size_t k = 0;
    while (k < n && (data[k] == ' ' || data[k] == '\n' || data[k] == '\r' || data[k] == '\t')) k++;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, n, &end, 0);
    int s = MILES_OK;
    if (j && end) {
        while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
        if (*end) { cJSON_Delete(j); j = NULL; } /* more than one document: JSON lines */
    }
    if (j) {
        if (cJSON_IsArray(j)) {
            const cJSON *e;
            long idx = 0;
            char where[4200];
            cJSON_ArrayForEach(e, j) {
                snprintf(where, sizeof where, "%s: element %ld", input, idx++);
                if ((s = yt_add(st, e, where)) != MILES_OK) break;
            }
        } else {
            s = yt_add(st, j, input);
        }
        cJSON_Delete(j);
        if (rp) src_report(rp, "input: one JSON document\n");
        free(data);
        return s;
    }
    if (k < n && data[k] == '[') {
        free(data);
        return miles_error(MILES_EFORMAT, "%s: malformed JSON array", input);
    }
    /* JSON lines (yt-dlp -j) and/or a list of .json paths, one per line */
    long line = 0, nlines = 0, npaths = 0;
    char *p = data;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", input);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = '\0'; else dir[0] = '\0';
    while (s == MILES_OK && p < data + n) {
        char *nl = memchr(p, '\n', (size_t)(data + n - p));
        char *e = nl ? nl : data + n;
        *e = '\0';
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\t') q++;
        size_t len = strlen(q);
        while (len && (q[len - 1] == '\r' || q[len - 1] == ' ' || q[len - 1] == '\t')) q[--len] = '\0';
        if (len) {
            if (q[0] == '{') {
                const char *jend = NULL;
                cJSON *o = cJSON_ParseWithLengthOpts(q, len, &jend, 0);
                if (!o) s = miles_error(MILES_EFORMAT, "%s:%ld: malformed JSON line (near column %ld)", input, line,
                                        jend ? (long)(jend - q) + 1 : 0L);
                else {
                    char where[4200];
                    snprintf(where, sizeof where, "%s:%ld", input, line);
                    s = yt_add(st, o, where);
                }
                cJSON_Delete(o);
                nlines++;
            } else if (!allow_paths) {
                s = miles_error(MILES_EFORMAT, "%s:%ld: not a JSON object", input, line);
            } else {
                char path[8192];
                if (q[0] == '/') snprintf(path, sizeof path, "%s", q);
                else snprintf(path, sizeof path, "%s%s", dir, q);
                s = yt_parse_file(st, path, NULL, 0);
                if (s != MILES_OK) miles_error_prefix(s, "%s:%ld", input, line);
                npaths++;
            }
        }
        p = e + 1;
    }
    free(data);
    if (s == MILES_OK && rp) src_report(rp, "input: %ld JSON lines, %ld listed .json files\n", nlines, npaths);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int yt_collect(YtState *st, const char *input, SrcReport *rp) {
    struct stat sb;
    if (stat(input, &sb) != 0)
        return miles_error(errno == ENOENT ? MILES_EMISSING : MILES_EIO, "%s: %s", input, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(input);
        if (!d) return miles_error(MILES_EIO, "%s: cannot open directory: %s", input, strerror(errno));
        char **names = NULL;
        size_t nn = 0, cap = 0;
        struct dirent *de;
        int s = MILES_OK;
        while ((de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l < 5 || strcmp(de->d_name + l - 5, ".json") != 0) continue;
            if (nn == cap) {
                cap = cap ? cap * 2 : 64;
                char **nv = realloc(names, cap * sizeof *nv);
                if (!nv) { s = miles_error(MILES_ENOMEM, "out of memory"); break; }
                names = nv;
            }
            names[nn] = malloc(strlen(input) + l + 2);
            if (!names[nn]) { s = miles_error(MILES_ENOMEM, "out of memory"); break; }
            sprintf(names[nn++], "%s/%s", input, de->d_name);
        }
        closedir(d);
        if (s == MILES_OK) {
            qsort(names, nn, sizeof *names, cmp_str); /* deterministic order */
            for (size_t i = 0; i < nn && s == MILES_OK; i++) s = yt_parse_file(st, names[i], NULL, 0);
            src_report(rp, "input: directory with %zu .json files\n", nn);
        }
        for (size_t i = 0; i < nn; i++) free(names[i]);
        free(names);
        if (s == MILES_OK && nn == 0) return miles_error(MILES_EMISSING, "%s: no .json files in directory", input);
        return s;
    }
    return yt_parse_file(st, input, rp, 1);
}

int src_adapter_ytdlp(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out) {
    YtState st;
    memset(&st, 0, sizeof st);
    int s = yt_collect(&st, input, rp);
    SrcMap creators = {0};
    SrcRow *row = s == MILES_OK ? miles_malloc(sizeof *row) : NULL;
    if (s == MILES_OK && !row) s = MILES_ENOMEM;
    /* creator_avg_views: mean view_count of the creator's videos in this input */
    for (size_t i = 0; s == MILES_OK && i < st.n; i++) {
        if (!st.v[i].author) continue;
        SrcMapEnt *e = src_map_get(&creators, st.v[i].author, 1);
        if (!e) { s = MILES_ENOMEM; break; }
        e->sum += (double)st.v[i].views;
        e->count++;
    }
    for (size_t i = 0; s == MILES_OK && i < st.n; i++) {
        YtRec *r = &st.v[i];
        src_row_clear(row);
        src_row_str(row, SC_PLATFORM, r->platform);
        src_row_str(row, SC_LANGUAGE, r->lang);
        if (r->category) src_row_str(row, SC_CATEGORY, r->category);
        src_row_str(row, SC_HASHTAG, r->hashtag);
        if (r->author) src_row_str(row, SC_AUTHOR_HANDLE, r->author);
        if (r->duration >= 0) src_row_int(row, SC_DURATION_SEC, (int64_t)floor(r->duration + 0.5));
        /* saves are never in yt-dlp output; shares only for extractors with repost_count */
        src_row_rates(row, r->views, r->likes, r->comments, r->shares, -1, -1);
        src_row_str(row, SC_SOURCE_HINT, "yt-dlp");
        src_row_fix(row, SC_TREND_DURATION_DAYS, r->age_days, 2);
        src_row_fix(row, SC_ENGAGEMENT_VELOCITY, (double)r->views / r->age_days, 2);
        src_row_time(row, r->publish, r->has_hour);
        if (r->tags) src_row_str(row, SC_TAGS, r->tags);
        if (r->author) {
            SrcMapEnt *e = src_map_get(&creators, r->author, 0);
            if (e && e->count) src_row_fix(row, SC_CREATOR_AVG_VIEWS, e->sum / (double)e->count, 1);
        }
        if ((s = src_row_title(row, r->title)) != MILES_OK) break;
        src_row_str(row, SC_ROW_ID, r->id);
        s = src_csv_write_row(out, row);
        if (s == MILES_OK) (*rows_out)++;
        else miles_error_prefix(s, "%s (id %.40s)", r->where ? r->where : input, r->id);
    }
    if (s == MILES_OK) {
        int64_t dropped = st.in - *rows_out;
        src_report(rp, "records in: %lld, rows out: %lld, dropped: %lld\n", (long long)st.in, (long long)*rows_out,
                   (long long)dropped);
        src_report(rp, "  dropped: not an object %lld, no id %lld, no title %lld, invalid UTF-8 %lld, no view_count %lld,"
                       " no upload_date/timestamp %lld, no epoch %lld, duplicate id %lld\n",
                   (long long)st.drop_notobj, (long long)st.drop_noid, (long long)st.drop_notitle,
                   (long long)st.drop_utf8, (long long)st.drop_noviews, (long long)st.drop_nodate,
                   (long long)st.drop_noepoch, (long long)st.drop_dup);
        src_report(rp, "  rows without like_count %lld, comment_count %lld, duration %lld, exact upload hour %lld\n",
                   (long long)st.no_likes, (long long)st.no_comments, (long long)st.no_duration, (long long)st.no_hour);
        src_report(rp, "features unavailable: saves, save_rate, engagement_rate (needs saves), completion_rate"
                       " (shares/share_rate only where repost_count exists; upload_hour only with timestamp)\n");
        src_report(rp, "velocity: view_count / age_days, age_days = (epoch - publish time) / 86400, min 1 day;"
                       " publish time = timestamp, else upload_date 00:00 UTC; trend_duration_days = age_days\n");
        src_report(rp, "creator_avg_views: mean view_count of the channel's videos in this input (in-sample)\n");
        if (st.in == 0) s = miles_error(MILES_EFORMAT, "%s: no yt-dlp records found", input);
    }
    for (size_t i = 0; i < st.n; i++) ytrec_free(&st.v[i]);
    free(st.v);
    src_map_free(&st.seen);
    src_map_free(&creators);
    free(row);
    return s;
}

/* ================================================================ youtube2017 */

typedef struct {
    char *id, *title, *channel, *tags;
    int cat;
    int64_t views, likes, dislikes, comments; /* at the first snapshot */
    int64_t first_day, last_day, last_views;
    int nsnap;
    long line;   /* the first snapshot's line, for messages */
} YtVideo;

/* "13.09" -> 2017-09-13; "1.1" -> 2017-10-01 (the month "10" lost its 0 when
 * the column went through a float); returns days since 1970 or -1. */
static int64_t yt17_date(const char *s, size_t n) {
    int d = 0, i = 0;
    while (i < (int)n && s[i] >= '0' && s[i] <= '9' && i < 2) d = d * 10 + (s[i++] - '0');
    if (i == 0 || i >= (int)n || s[i] != '.') return -1;
    const char *m = s + i + 1;
    size_t ml = n - (size_t)i - 1;
    int month;
    if (ml == 2 && m[0] == '0' && m[1] >= '1' && m[1] <= '9') month = m[1] - '0';
    else if (ml == 1 && m[0] == '1') month = 10;
    else if (ml == 2 && m[0] == '1' && m[1] >= '0' && m[1] <= '2') month = 10 + (m[1] - '0');
    else return -1;
    if (d < 1 || d > miles_days_in_month(2017, month)) return -1;
    return src_days_from_civil(2017, (unsigned)month, (unsigned)d);
}

static int is_ytid_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static const char *yt_category_name(int id) {
    switch (id) {
    case 1: return "Film & Animation"; case 2: return "Autos & Vehicles"; case 10: return "Music";
    case 15: return "Pets & Animals"; case 17: return "Sports"; case 19: return "Travel & Events";
    case 20: return "Gaming"; case 22: return "People & Blogs"; case 23: return "Comedy";
    case 24: return "Entertainment"; case 25: return "News & Politics"; case 26: return "Howto & Style";
    case 27: return "Education"; case 28: return "Science & Technology"; case 29: return "Nonprofits & Activism";
    case 43: return "Shows"; default: return "";
    }
}

typedef struct {
    YtVideo *v;
    size_t n, cap;
    SrcMap ids;
    int64_t snapshots, bad_count, bad_date, bad_utf8, glued, shifted_date;
} Yt17;

/* one snapshot record: f[0..9] + its date (days) */
static int yt17_snapshot(Yt17 *y, const char *const *f, int64_t day, const char *path, long line) {
    int64_t views, likes, dislikes, comments;
    static const char *const names[4] = {"views", "likes", "dislikes", "comment_count"};
    int64_t *dst[4] = {&views, &likes, &dislikes, &comments};
    int ok = 1;
    for (int k = 0; k < 4; k++) {
        int r = src_parse_count(f[5 + k], dst[k]);
        if (r == -2)   /* a number, but no count: an error, not a silently skipped line */
            return miles_error(MILES_ERANGE, "%s:%ld: field '%s' = \"%.40s\" is out of range [0, %g]", path, line,
                               names[k], f[5 + k], MILES_MAX_INPUT_VALUE);
        if (r != 1) ok = 0;
    }
    if (!ok) {
        y->bad_count++;
        return MILES_OK;
    }
    if (miles_utf8_length(f[0]) < 0 || miles_utf8_length(f[1]) < 0 || miles_utf8_length(f[2]) < 0 || miles_utf8_length(f[4]) < 0) {
        y->bad_utf8++;
        return MILES_OK;
    }
    y->snapshots++;
    SrcMapEnt *e = src_map_get(&y->ids, f[0], 1);
    if (!e) return MILES_ENOMEM;
    if (e->idx < 0) {
        if (y->n == y->cap) {
            size_t nc = y->cap ? y->cap * 2 : 1024;
            YtVideo *nv = realloc(y->v, nc * sizeof *nv);
            if (!nv) return miles_error(MILES_ENOMEM, "%s:%ld: out of memory", path, line);
            y->v = nv;
            y->cap = nc;
        }
        e->idx = (int64_t)y->n;
        YtVideo *v = &y->v[y->n++];
        memset(v, 0, sizeof *v);
        v->id = strdup(f[0]);
        v->title = strdup(f[1]);
        v->channel = strdup(f[2]);
        v->tags = strdup(f[4]);
        if (!v->id || !v->title || !v->channel || !v->tags) return miles_error(MILES_ENOMEM, "out of memory");
        v->cat = atoi(f[3]);
        v->views = views; v->likes = likes; v->dislikes = dislikes; v->comments = comments;
        v->first_day = v->last_day = day;
        v->last_views = views;
        v->nsnap = 1;
        v->line = line;
        return MILES_OK;
    }
    YtVideo *v = &y->v[e->idx];
    v->nsnap++;
    if (day < v->first_day) { /* earlier snapshot later in the file: it becomes the first */
        v->first_day = day;
        v->views = views; v->likes = likes; v->dislikes = dislikes; v->comments = comments;
    }
    if (day > v->last_day || (day == v->last_day && views > v->last_views)) {
        v->last_day = day;
        v->last_views = views;
    }
    return MILES_OK;
}

/* The trending data set's countries (one <CC>videos.csv per country, same
 * columns): seed-schema country code (title case, as the seed data), region
 * and the language most titles are in. */
static const struct { const char *cc, *code, *region, *lang; } YT_COUNTRIES[] = {
    {"US", "Us", "North America", "en"}, {"CA", "Ca", "North America", "en"}, {"GB", "Gb", "Europe", "en"},
    {"DE", "De", "Europe", "de"},        {"FR", "Fr", "Europe", "fr"},        {"RU", "Ru", "Europe", "ru"},
    {"MX", "Mx", "Latin America", "es"}, {"IN", "In", "Asia", "hi"},          {"JP", "Jp", "Asia", "ja"},
    {"KR", "Kr", "Asia", "ko"},
};
#define N_YT_COUNTRIES ((int)(sizeof YT_COUNTRIES / sizeof YT_COUNTRIES[0]))

static int yt_country_index(const char *cc) {
    for (int i = 0; cc && i < N_YT_COUNTRIES; i++)
        if (strlen(cc) == 2 && toupper((unsigned char)cc[0]) == YT_COUNTRIES[i].cc[0] &&
            toupper((unsigned char)cc[1]) == YT_COUNTRIES[i].cc[1])
            return i;
    return -1;
}

/* "CAvideos.csv" (any directory, "videos" in any case) -> "CA"; NULL otherwise. */
static int yt_country_from_name(const char *path, char cc[3]) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (strlen(b) != 12 || !isalpha((unsigned char)b[0]) || !isalpha((unsigned char)b[1]) ||
        strcasecmp(b + 2, "videos.csv") != 0)
        return 0;
    cc[0] = (char)toupper((unsigned char)b[0]);
    cc[1] = (char)toupper((unsigned char)b[1]);
    cc[2] = '\0';
    return 1;
}

int src_adapter_youtube2017(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out) {
    return src_adapter_youtube2017_country(input, NULL, out, rp, rows_out);
}

int src_adapter_youtube2017_country(const char *input, const char *country, FILE *out, SrcReport *rp,
                                    int64_t *rows_out) {
    /* the country: given, else from the file name, else US (the 2017 v1 set) */
    char cc[3] = "US";
    const char *how = "default: the file name is not <CC>videos.csv";
    if (country) {
        snprintf(cc, sizeof cc, "%s", country);
        how = "given";
    } else if (yt_country_from_name(input, cc)) {
        how = "from the file name";
    }
    const int ci = yt_country_index(country ? country : cc);
    if (ci < 0 || (country && strlen(country) != 2)) {
        char known[64] = "";
        for (int i = 0; i < N_YT_COUNTRIES; i++) {
            strcat(known, YT_COUNTRIES[i].cc);
            if (i + 1 < N_YT_COUNTRIES) strcat(known, " ");
        }
        return miles_error(MILES_EINVAL, "%s: country \"%s\" (%s) is not one of the trending data set's: %s", input,
                           country ? country : cc, how, known);
    }
    const char *CC = YT_COUNTRIES[ci].cc;
    src_report(rp, "country: %s (%s), region %s, language %s\n", CC, how, YT_COUNTRIES[ci].region,
               YT_COUNTRIES[ci].lang);
    char hint[96];
    snprintf(hint, sizeof hint, "YouTube trending %s 2017 (%svideos.csv)", CC, CC);
    MilesCsv *c = NULL;
    MILES_TRY(miles_csv_open(&c, input));
    const char *const *f;
    int nf;
    int s = miles_csv_next(c, &nf, &f);
    if (s <= 0) {
        miles_csv_free(c);
        return s < 0 ? s : miles_error(MILES_EFORMAT, "%s: empty file", input);
    }
    static const char *const need[11] = {"video_id", "title", "channel_title", "category_id", "tags", "views",
                                         "likes", "dislikes", "comment_total", "thumbnail_link", "date"};
    for (int k = 0; k < 11; k++) {
        if (nf <= k || strcmp(f[k], need[k]) != 0) {
            s = miles_error(MILES_EMISSING, "%s:1: expected column %d to be \"%s\" (USvideos.csv layout), found \"%s\"",
                            input, k + 1, need[k], nf > k ? f[k] : "");
            miles_csv_free(c);
            return s;
        }
    }
    Yt17 y;
    memset(&y, 0, sizeof y);
    int64_t records = 0, short_lines = 0;
    while ((s = miles_csv_next(c, &nf, &f)) == 1) {
        records++;
        s = MILES_OK; /* a skipped line must not end the loop below (s was 1, "a record") */
        if (nf < 11) { short_lines++; continue; }
        const char *date = f[10];
        size_t dl = strlen(date);
        int64_t day = yt17_date(date, dl);
        if (day >= 0) {
            s = yt17_snapshot(&y, f, day, input, (long)miles_csv_record_line(c));
        } else if (strcmp(date, "100") == 0 && nf > 11 && (day = yt17_date(f[11], strlen(f[11]))) >= 0) {
            /* 4 lines: "100" in the date column and the real date one column to the right */
            y.shifted_date++;
            s = yt17_snapshot(&y, f, day, input, (long)miles_csv_record_line(c));
        } else {
            /* two records glued together: "24.09xcaeyJTx4Co" = date + next video id,
             * the next record's other 10 fields follow in columns 12..21 */
            size_t dlen = dl > 11 ? dl - 11 : 0;
            if (dlen >= 3 && nf >= 21 && (day = yt17_date(date, dlen)) >= 0) {
                int ok = 1;
                for (size_t q = dlen; q < dl; q++) ok &= is_ytid_char(date[q]);
                int64_t day2 = yt17_date(f[20], strlen(f[20]));
                if (ok && day2 >= 0) {
                    y.glued++;
                    s = yt17_snapshot(&y, f, day, input, (long)miles_csv_record_line(c));
                    const char *g[11];
                    g[0] = date + dlen;
                    for (int q = 1; q < 11; q++) g[q] = f[10 + q];
                    if (s == MILES_OK) s = yt17_snapshot(&y, g, day2, input, (long)miles_csv_record_line(c));
                    if (s != MILES_OK) break;
                    continue;
                }
            }
            y.bad_date++;
            src_report(rp, "warning: %s:%ld: unparseable date \"%.40s\": line skipped\n", input, (long)miles_csv_record_line(c), date);
        }
        if (s != MILES_OK) break;
    }
    if (s > 0) s = MILES_OK;
    /* creator_avg_views: mean first-snapshot views of the channel's videos in the file */
    SrcMap chan = {0};
    for (size_t i = 0; s == MILES_OK && i < y.n; i++) {
        SrcMapEnt *e = src_map_get(&chan, y.v[i].channel, 1);
        if (!e) { s = MILES_ENOMEM; break; }
        e->sum += (double)y.v[i].views;
        e->count++;
    }
    SrcRow *row = s == MILES_OK ? miles_malloc(sizeof *row) : NULL;
    if (s == MILES_OK && !row) s = MILES_ENOMEM;
    int64_t once = 0, negative = 0;
    for (size_t i = 0; s == MILES_OK && i < y.n; i++) {
        YtVideo *v = &y.v[i];
        if (v->last_day == v->first_day) { once++; continue; }
        double span = (double)(v->last_day - v->first_day);
        double vel = (double)(v->last_views - v->views) / span;
        if (vel < 0) negative++;
        src_row_clear(row);
        src_row_str(row, SC_PLATFORM, "YouTube");
        src_row_str(row, SC_COUNTRY, YT_COUNTRIES[ci].code);
        src_row_str(row, SC_REGION, YT_COUNTRIES[ci].region);
        src_row_str(row, SC_LANGUAGE, YT_COUNTRIES[ci].lang);
        src_row_str(row, SC_CATEGORY, yt_category_name(v->cat));
        src_row_str(row, SC_AUTHOR_HANDLE, v->channel);
        src_row_rates(row, v->views, v->likes, v->comments, -1, -1, v->dislikes);
        src_row_str(row, SC_SOURCE_HINT, hint);
        int y1, m1, d1, y2, m2, d2;
        src_civil_from_days(v->first_day, &y1, &m1, &d1);
        src_civil_from_days(v->last_day, &y2, &m2, &d2);
        src_row_fmt(row, SC_NOTES, "trending %04d-%02d-%02d..%04d-%02d-%02d (%d snapshots)", y1, m1, d1, y2, m2, d2,
                    v->nsnap);
        src_row_fix(row, SC_TREND_DURATION_DAYS, span, 0);
        src_row_fix(row, SC_ENGAGEMENT_VELOCITY, vel, 2);
        if (strcmp(v->tags, "[none]") != 0) {
            /* "a|b|c" -> "a, b, c" */
            size_t tl = strlen(v->tags);
            char *t = malloc(tl * 2 + 1);
            if (!t) { s = MILES_ENOMEM; break; }
            size_t k = 0;
            for (size_t q = 0; q < tl; q++) {
                if (v->tags[q] == '|') { t[k++] = ','; t[k++] = ' '; }
                else t[k++] = v->tags[q];
            }
            t[k] = '\0';
            src_row_str(row, SC_TAGS, t);
            free(t);
        }
        SrcMapEnt *e = src_map_get(&chan, v->channel, 0);
        if (e && e->count) src_row_fix(row, SC_CREATOR_AVG_VIEWS, e->sum / (double)e->count, 1);
        if ((s = src_row_title(row, v->title)) != MILES_OK) break;
        src_row_str(row, SC_ROW_ID, v->id);
        s = src_csv_write_row(out, row);
        if (s == MILES_OK) (*rows_out)++;
        else miles_error_prefix(s, "%s:%ld (video %.40s)", input, v->line, v->id);
    }
    if (s == MILES_OK) {
        src_report(rp, "CSV records in: %lld (snapshots used %lld), videos: %zu, rows out: %lld\n",
                   (long long)records, (long long)y.snapshots, y.n, (long long)*rows_out);
        src_report(rp, "  repaired: %lld glued lines split into 2 snapshots each, %lld lines with the date one column"
                       " right (\"100\")\n", (long long)y.glued, (long long)y.shifted_date);
        src_report(rp, "  skipped lines: %lld short, %lld bad date, %lld bad count, %lld invalid UTF-8\n",
                   (long long)short_lines, (long long)y.bad_date, (long long)y.bad_count, (long long)y.bad_utf8);
        src_report(rp, "  videos dropped: %lld trending on one day only (no growth measurable);"
                       " %lld kept with negative growth\n", (long long)once, (long long)negative);
        src_report(rp, "features unavailable: shares, saves, share_rate, save_rate, engagement_rate, completion_rate,"
                       " duration_sec, upload_hour, is_weekend, publish_dayofweek (no publish time in the data)\n");
        src_report(rp, "velocity: (views at last snapshot - views at first snapshot) / days between them;"
                       " trend_duration_days = that span (velocity != views/trend_duration_days here);"
                       " counts are from the first snapshot\n");
        src_report(rp, "creator_avg_views: mean first-snapshot views of the channel's videos in this file (in-sample)\n");
    }
    for (size_t i = 0; i < y.n; i++) { free(y.v[i].id); free(y.v[i].title); free(y.v[i].channel); free(y.v[i].tags); }
    free(y.v);
    free(row);
    src_map_free(&y.ids);
    src_map_free(&chan);
    miles_csv_free(c);
    return s;
}
