/*
 * adapters_tiktok.c — TikTok sources -> seed-schema rows:
 *   "tiktok-vn"  (tiktok_vn_ie403: 2025 Vietnam For-You feed + recrawl; panel or raw files)
 *   "tiktok2020" (tiktok-scraper trending.json, December 2020).
 * Rules and their reasons: docs/data_sources.md.
 */
#include "sources_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

/* Vietnam local time (UTC+7, no DST) for upload_hour/weekday of the VN feed. */
#define TIKTOK_VN_UTC_OFFSET_S (7 * 3600)

/* "mm:ss" or "hh:mm:ss" -> seconds; -1 if malformed or absurd (hours are
 * bounded: 99999999:00:00 overflowed int, found by fuzz_adapter_tiktok) */
static int parse_mmss(const char *s) {
    int a, b, c, n = 0;
    if (sscanf(s, "%d:%d:%d%n", &a, &b, &c, &n) == 3 && !s[n] && a >= 0 && a < 10000 && b >= 0 && b < 60 &&
        c >= 0 && c < 60)
        return a * 3600 + b * 60 + c;
    if (sscanf(s, "%d:%d%n", &a, &b, &n) == 2 && !s[n] && a >= 0 && a < 600000 && b >= 0 && b < 60) return a * 60 + b;
    return -1;
}

/* TikTok video id -> Unix creation time (the id's top 32 bits); 0 if not an id */
static int64_t tiktok_id_time(const char *id) {
    if (!*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 20) return 0;
    unsigned long long v = strtoull(id, NULL, 10);
    return (int64_t)(v >> 32);
}

static int dir_join(char *out, size_t cap, const char *dir, const char *name) {
    int k = snprintf(out, cap, "%s/%s", dir, name);
    return k > 0 && (size_t)k < cap;
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Creator baseline: mean views of each creator's videos in creator_history_videos.csv
 * (other videos than the feed's; empty view counts ignored). */
static int load_creator_history(const char *path, SrcMap *m, int64_t *rows, int64_t *empty) {
    MilesCsv *c = NULL;
    MILES_TRY(miles_csv_open(&c, path));
    const char *const *f;
    int nf, s = miles_csv_next(c, &nf, &f);
    if (s <= 0) { miles_csv_free(c); return s < 0 ? s : miles_error(MILES_EFORMAT, "%s: empty file", path); }
    int cu = miles_csv_column(f, nf, "user_name"), cv = miles_csv_column(f, nf, "vid_nview");
    if (cu < 0 || cv < 0) {
        miles_csv_free(c);
        return miles_error(MILES_EMISSING, "%s:1: missing column %s", path, cu < 0 ? "user_name" : "vid_nview");
    }
    while ((s = miles_csv_next(c, &nf, &f)) == 1) {
        if (nf <= cu || nf <= cv) { s = miles_error(MILES_EFORMAT, "%s:%ld: %d fields, expected at least %d", path, (long)miles_csv_record_line(c), nf, (cu > cv ? cu : cv) + 1); break; }
        (*rows)++;
        int64_t v;
        int k = src_parse_count(f[cv], &v);
        if (k == 0) { (*empty)++; continue; }
        if (k < 0) { s = miles_error(k == -2 ? MILES_ERANGE : MILES_EFORMAT, "%s:%ld: field vid_nview: %s \"%.40s\"", path, (long)miles_csv_record_line(c), k == -2 ? "count out of range" : "bad count", f[cv]); break; }
        SrcMapEnt *e = src_map_get(m, f[cu], 1);
        if (!e) { s = MILES_ENOMEM; break; }
        e->sum += (double)v;
        e->count++;
    }
    miles_csv_free(c);
    return s < 0 ? s : MILES_OK;
}

/* One TikTok VN video, as the panel or the raw files give it. */
typedef struct {
    const char *id, *user, *caption, *hashtags, *duration, *music, *originality;
    int64_t views1, likes1, comments1, shares1, saves1, views2;
    int64_t scrape1, scrape2;  /* Unix-like seconds (both in the same local clock) */
    int have2;
} VnVideo;

typedef struct {
    int64_t in, out, drop_noviews, drop_norecrawl, drop_badinterval, drop_notext, drop_utf8, drop_badid,
        no_duration, no_creator_hist, negative;
} VnStats;

static int vn_emit(FILE *out, SrcRow *row, const VnVideo *v, const SrcMap *hist, VnStats *st) {
    if (v->views1 < 0) { st->drop_noviews++; return MILES_OK; }
    if (!v->have2 || v->views2 < 0) { st->drop_norecrawl++; return MILES_OK; }
    double days = (double)(v->scrape2 - v->scrape1) / 86400.0;
    if (!(days > 0)) { st->drop_badinterval++; return MILES_OK; }
    int64_t t = tiktok_id_time(v->id);
    if (t <= 0) { st->drop_badid++; return MILES_OK; }
    /* title: the caption; an empty caption falls back to its hashtags ("#a #b") */
    char *title = NULL;
    if (v->caption[0]) {
        title = strdup(v->caption);
    } else if (v->hashtags[0]) {
        size_t n = strlen(v->hashtags);
        title = malloc(2 * n + 2);
        if (title) {
            size_t k = 0;
            int start = 1;
            for (size_t i = 0; i < n; i++) {
                char ch = v->hashtags[i];
                if (ch == ',') { start = 1; continue; }
                if (ch == ' ' && start) continue;
                if (start) { if (k) title[k++] = ' '; title[k++] = '#'; start = 0; }
                title[k++] = ch;
            }
            title[k] = '\0';
        }
    } else {
        st->drop_notext++;
        return MILES_OK;
    }
    if (!title) return miles_error(MILES_ENOMEM, "out of memory");
    if (miles_utf8_length(title) < 0 || miles_utf8_length(v->user) < 0 || miles_utf8_length(v->hashtags) < 0 ||
        miles_utf8_length(v->music) < 0) {
        free(title);
        st->drop_utf8++;
        return MILES_OK;
    }
    src_row_clear(row);
    src_row_str(row, SC_PLATFORM, "TikTok");
    src_row_str(row, SC_COUNTRY, "Vn");
    src_row_str(row, SC_REGION, "Asia");
    src_row_str(row, SC_LANGUAGE, src_guess_language(title));
    if (v->hashtags[0]) {
        size_t k = strcspn(v->hashtags, ",");
        char ht[256];
        if (k > 200) {   /* cut at 200 bytes, never inside a UTF-8 sequence (found by fuzz_adapter_tiktok) */
            k = 200;
            while (k > 0 && ((unsigned char)v->hashtags[k] & 0xC0) == 0x80) k--;
        }
        snprintf(ht, sizeof ht, "#%.*s", (int)k, v->hashtags);
        src_row_str(row, SC_HASHTAG, ht);
        src_row_str(row, SC_TAGS, v->hashtags);
    }
    src_row_str(row, SC_AUTHOR_HANDLE, v->user);
    if (v->originality[0])
        src_row_str(row, SC_SOUND_TYPE, strcmp(v->originality, "True") == 0 ? "original" : "licensed");
    src_row_str(row, SC_MUSIC_TRACK, v->music);
    int dur = parse_mmss(v->duration);
    if (dur > 0) src_row_int(row, SC_DURATION_SEC, dur);
    else st->no_duration++;
    src_row_rates(row, v->views1, v->likes1, v->comments1, v->shares1, v->saves1, -1);
    src_row_str(row, SC_SOURCE_HINT, "TikTok For You feed VN 2025 (IE403), scrape 1 + recrawl");
    src_row_fix(row, SC_TREND_DURATION_DAYS, days, 2);
    double vel = (double)(v->views2 - v->views1) / days;
    if (vel < 0) st->negative++;
    src_row_fix(row, SC_ENGAGEMENT_VELOCITY, vel, 2);
    src_row_time(row, t + TIKTOK_VN_UTC_OFFSET_S, 1);
    SrcMapEnt *e = src_map_get((SrcMap *)hist, v->user, 0);
    if (e && e->count) src_row_fix(row, SC_CREATOR_AVG_VIEWS, e->sum / (double)e->count, 1);
    else st->no_creator_hist++;
    int s = src_row_title(row, title);
    free(title);
    if (s != MILES_OK) return s;
    src_row_str(row, SC_ROW_ID, v->id);
    MILES_TRY(src_csv_write_row(out, row));
    st->out++;
    return MILES_OK;
}

/* count cell: 1 ok, 0 empty (-> -1), error on garbage */
static int cell_count(const char *s, int64_t *v, const char *path, long line, const char *col) {
    int k = src_parse_count(s, v);
    if (k == 0) { *v = -1; return MILES_OK; }
    if (k == -2) return miles_error(MILES_ERANGE, "%s:%ld: field %s: count out of range (at most %g) \"%.40s\"", path, line,
                                    col, MILES_MAX_INPUT_VALUE, s);
    if (k < 0) return miles_error(MILES_EFORMAT, "%s:%ld: field %s: bad count \"%.40s\"", path, line, col, s);
    return MILES_OK;
}

static int cell_time(const char *s, int64_t *t, int *have, const char *path, long line, const char *col) {
    int k = src_parse_datetime(s, t);
    if (k < 0) return miles_error(MILES_EFORMAT, "%s:%ld: field %s: bad date-time \"%.40s\"", path, line, col, s);
    *have = k == 1;
    return MILES_OK;
}

static int vn_panel(const char *path, FILE *out, SrcRow *row, const SrcMap *hist, VnStats *st) {
    MilesCsv *c = NULL;
    MILES_TRY(miles_csv_open(&c, path));
    const char *const *f;
    int nf, s = miles_csv_next(c, &nf, &f);
    if (s <= 0) { miles_csv_free(c); return s < 0 ? s : miles_error(MILES_EFORMAT, "%s: empty file", path); }
    static const char *const need[] = {"vid", "user_name", "caption", "hashtags", "duration", "music_title",
                                       "music_originality", "scrape_time_1", "views_1", "likes_1", "comments_1",
                                       "shares_1", "saves_1", "scrape_time_2", "views_2"};
    enum { NNEED = sizeof need / sizeof need[0] };
    int col[NNEED];
    for (int k = 0; k < NNEED; k++) {
        col[k] = miles_csv_column(f, nf, need[k]);
        if (col[k] < 0) {
            miles_csv_free(c);
            return miles_error(MILES_EMISSING, "%s:1: missing column \"%s\" (panel_scrape1_recrawl_DERIVED.csv layout)",
                               path, need[k]);
        }
    }
    int hdr_n = nf;
    while ((s = miles_csv_next(c, &nf, &f)) == 1) {
        if (nf != hdr_n) { s = miles_error(MILES_EFORMAT, "%s:%ld: %d fields, header has %d", path, (long)miles_csv_record_line(c), nf, hdr_n); break; }
        st->in++;
        VnVideo v;
        memset(&v, 0, sizeof v);
        v.id = f[col[0]]; v.user = f[col[1]]; v.caption = f[col[2]]; v.hashtags = f[col[3]];
        v.duration = f[col[4]]; v.music = f[col[5]]; v.originality = f[col[6]];
        int have1 = 0, have2 = 0;
        int64_t *cnt[5] = {&v.views1, &v.likes1, &v.comments1, &v.shares1, &v.saves1};
        if ((s = cell_time(f[col[7]], &v.scrape1, &have1, path, (long)miles_csv_record_line(c), need[7])) != MILES_OK) break;
        for (int k = 0; k < 5 && s == MILES_OK; k++) s = cell_count(f[col[8 + k]], cnt[k], path, (long)miles_csv_record_line(c), need[8 + k]);
        if (s == MILES_OK) s = cell_time(f[col[13]], &v.scrape2, &have2, path, (long)miles_csv_record_line(c), need[13]);
        if (s == MILES_OK) s = cell_count(f[col[14]], &v.views2, path, (long)miles_csv_record_line(c), need[14]);
        if (s != MILES_OK) break;
        if (!have1) v.views1 = -1;
        v.have2 = have2;
        if ((s = vn_emit(out, row, &v, hist, st)) != MILES_OK) {
            miles_error_prefix(s, "%s:%ld", path, (long)miles_csv_record_line(c));
            break;
        }
    }
    miles_csv_free(c);
    return s < 0 ? s : MILES_OK;
}

/* ---- raw mode: feed_scrape1_raw.csv joined with recrawl_part_*.csv by the id in vid_url ---- */

typedef struct {
    MilesCsv *c;
    int cu, cc, ch, cd, cmt, cmo, cs, cv, cl, ccm, csh, csv, curl;
} RawFile;

static int raw_open(RawFile *r, const char *path) {
    MILES_TRY(miles_csv_open(&r->c, path));
    const char *const *f;
    int nf, s = miles_csv_next(r->c, &nf, &f);
    if (s <= 0) { miles_csv_free(r->c); return s < 0 ? s : miles_error(MILES_EFORMAT, "%s: empty file", path); }
    static const char *const names[13] = {"user_name", "vid_caption", "vid_hashtags", "vid_duration", "music_title",
                                          "music_originality", "vid_scrapeTime", "vid_nview", "vid_nlike",
                                          "vid_ncomment", "vid_nshare", "vid_nsave", "vid_url"};
    int *cols[13] = {&r->cu, &r->cc, &r->ch, &r->cd, &r->cmt, &r->cmo, &r->cs, &r->cv, &r->cl, &r->ccm, &r->csh,
                     &r->csv, &r->curl};
    for (int k = 0; k < 13; k++) {
        *cols[k] = miles_csv_column(f, nf, names[k]);
        if (*cols[k] < 0) {
            miles_csv_free(r->c);
            return miles_error(MILES_EMISSING, "%s:1: missing column \"%s\"", path, names[k]);
        }
    }
    return MILES_OK;
}

/* the real id: digits after "/video/" in vid_url (vid_id itself is float-mangled) */
static int url_id(const char *url, char *out, size_t cap) {
    const char *p = strstr(url, "/video/");
    if (!p) return 0;
    p += 7;
    size_t k = strspn(p, "0123456789");
    if (k == 0 || k >= cap) return 0;
    memcpy(out, p, k);
    out[k] = '\0';
    return 1;
}

typedef struct { int64_t views, scrape; } Recrawl;

static int vn_raw(const char *feed_path, const char *dir, FILE *out, SrcRow *row, const SrcMap *hist, VnStats *st,
                  SrcReport *rp) {
    /* recrawl parts: views and scrape time per id */
    static const char *const parts[2] = {"recrawl_part_tp.csv", "recrawl_part_nmai.csv"};
    SrcMap rec = {0};
    Recrawl *rv = NULL;
    size_t nrv = 0, caprv = 0;
    int s = MILES_OK;
    for (int pi = 0; pi < 2 && s == MILES_OK; pi++) {
        char path[4096];
        if (!dir_join(path, sizeof path, dir, parts[pi]) || !file_exists(path)) {
            src_report(rp, "warning: %s/%s not found: those videos count as not recrawled\n", dir, parts[pi]);
            continue;
        }
        RawFile r;
        if ((s = raw_open(&r, path)) != MILES_OK) break;
        const char *const *f;
        int nf;
        int64_t n = 0;
        while ((s = miles_csv_next(r.c, &nf, &f)) == 1) {
            if (nf <= r.curl || nf <= r.cv || nf <= r.cs) { s = miles_error(MILES_EFORMAT, "%s:%ld: too few fields", path, (long)miles_csv_record_line(r.c)); break; }
            char id[32];
            if (!url_id(f[r.curl], id, sizeof id)) continue;
            int64_t views, t;
            int have = 0;
            if ((s = cell_count(f[r.cv], &views, path, (long)miles_csv_record_line(r.c), "vid_nview")) != MILES_OK) break;
            if ((s = cell_time(f[r.cs], &t, &have, path, (long)miles_csv_record_line(r.c), "vid_scrapeTime")) != MILES_OK) break;
            if (!have || views < 0) continue;
            SrcMapEnt *e = src_map_get(&rec, id, 1);
            if (!e) { s = MILES_ENOMEM; break; }
            if (e->idx >= 0) continue; /* parts are disjoint; keep the first if not */
            if (nrv == caprv) {
                caprv = caprv ? caprv * 2 : 4096;
                Recrawl *nv = realloc(rv, caprv * sizeof *nv);
                if (!nv) { s = miles_error(MILES_ENOMEM, "out of memory"); break; }
                rv = nv;
            }
            rv[nrv].views = views;
            rv[nrv].scrape = t;
            e->idx = (int64_t)nrv++;
            n++;
        }
        if (s > 0) s = MILES_OK;
        miles_csv_free(r.c);
        if (s == MILES_OK) src_report(rp, "recrawl %s: %lld videos with views\n", parts[pi], (long long)n);
    }
    RawFile r;
    if (s == MILES_OK && (s = raw_open(&r, feed_path)) == MILES_OK) {
        const char *const *f;
        int nf;
        while ((s = miles_csv_next(r.c, &nf, &f)) == 1) {
            if (nf <= r.curl) { s = miles_error(MILES_EFORMAT, "%s:%ld: too few fields", feed_path, (long)miles_csv_record_line(r.c)); break; }
            st->in++;
            char id[32];
            if (!url_id(f[r.curl], id, sizeof id)) { st->drop_badid++; continue; }
            VnVideo v;
            memset(&v, 0, sizeof v);
            v.id = id; v.user = f[r.cu]; v.caption = f[r.cc]; v.hashtags = f[r.ch]; v.duration = f[r.cd];
            v.music = f[r.cmt]; v.originality = f[r.cmo];
            int have1 = 0;
            int64_t *cnt[5] = {&v.views1, &v.likes1, &v.comments1, &v.shares1, &v.saves1};
            const int cc[5] = {r.cv, r.cl, r.ccm, r.csh, r.csv};
            static const char *const cn[5] = {"vid_nview", "vid_nlike", "vid_ncomment", "vid_nshare", "vid_nsave"};
            s = cell_time(f[r.cs], &v.scrape1, &have1, feed_path, (long)miles_csv_record_line(r.c), "vid_scrapeTime");
            for (int k = 0; k < 5 && s == MILES_OK; k++) s = cell_count(f[cc[k]], cnt[k], feed_path, (long)miles_csv_record_line(r.c), cn[k]);
            if (s != MILES_OK) break;
            if (!have1) v.views1 = -1;
            SrcMapEnt *e = src_map_get(&rec, id, 0);
            if (e && e->idx >= 0) { v.have2 = 1; v.views2 = rv[e->idx].views; v.scrape2 = rv[e->idx].scrape; }
            if ((s = vn_emit(out, row, &v, hist, st)) != MILES_OK) {
                miles_error_prefix(s, "%s:%ld", feed_path, (long)miles_csv_record_line(r.c));
                break;
            }
        }
        if (s > 0) s = MILES_OK;
        miles_csv_free(r.c);
    }
    free(rv);
    src_map_free(&rec);
    return s;
}

int src_adapter_tiktok_vn(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out) {
    struct stat sb;
    if (stat(input, &sb) != 0)
        return miles_error(errno == ENOENT ? MILES_EMISSING : MILES_EIO, "%s: %s", input, strerror(errno));
    char dir[4096], main_path[4096];
    int raw = 0;
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, sizeof dir, "%s", input);
        if (!dir_join(main_path, sizeof main_path, dir, "panel_scrape1_recrawl_DERIVED.csv"))
            return miles_error(MILES_EINVAL, "%s: path too long", input);
        if (!file_exists(main_path)) {
            if (!dir_join(main_path, sizeof main_path, dir, "feed_scrape1_raw.csv") || !file_exists(main_path))
                return miles_error(MILES_EMISSING, "%s: neither panel_scrape1_recrawl_DERIVED.csv nor feed_scrape1_raw.csv",
                                   input);
            raw = 1;
        }
    } else {
        snprintf(main_path, sizeof main_path, "%s", input);
        snprintf(dir, sizeof dir, "%s", input);
        char *sl = strrchr(dir, '/');
        if (sl) *sl = '\0'; else snprintf(dir, sizeof dir, ".");
        const char *base = strrchr(input, '/') ? strrchr(input, '/') + 1 : input;
        /* the panel file is the derived join ("..._recrawl_DERIVED.csv": note "recrawl" contains
         * "raw"); anything else named like a raw scrape is the raw mode */
        raw = strstr(base, "DERIVED") == NULL && strstr(base, "panel") == NULL &&
              (strstr(base, "scrape1_raw") != NULL || strstr(base, "_raw") != NULL);
    }
    src_report(rp, "mode: %s (%s)\n", raw ? "raw scrape 1 + recrawl parts, joined on the id in vid_url" : "panel",
               main_path);
    SrcMap hist = {0};
    char hpath[4096];
    int64_t hrows = 0, hempty = 0;
    int s = MILES_OK;
    if (dir_join(hpath, sizeof hpath, dir, "creator_history_videos.csv") && file_exists(hpath)) {
        s = load_creator_history(hpath, &hist, &hrows, &hempty);
        if (s == MILES_OK)
            src_report(rp, "creator history: %lld videos (%lld with empty views ignored), %zu creators\n",
                       (long long)hrows, (long long)hempty, hist.n);
    } else {
        src_report(rp, "warning: creator_history_videos.csv not found beside the input: creator_avg_views empty\n");
    }
    SrcRow *row = s == MILES_OK ? miles_malloc(sizeof *row) : NULL;
    if (s == MILES_OK && !row) s = MILES_ENOMEM;
    VnStats st;
    memset(&st, 0, sizeof st);
    if (s == MILES_OK) s = raw ? vn_raw(main_path, dir, out, row, &hist, &st, rp) : vn_panel(main_path, out, row, &hist, &st);
    if (s == MILES_OK) {
        *rows_out = st.out;
        src_report(rp, "videos in: %lld, rows out: %lld, dropped: %lld\n", (long long)st.in, (long long)st.out,
                   (long long)(st.in - st.out));
        src_report(rp, "  dropped: no scrape-1 views %lld, not recrawled (no views_2) %lld, bad scrape interval %lld,"
                       " no caption and no hashtags %lld, invalid UTF-8 %lld, bad video id %lld\n",
                   (long long)st.drop_noviews, (long long)st.drop_norecrawl, (long long)st.drop_badinterval,
                   (long long)st.drop_notext, (long long)st.drop_utf8, (long long)st.drop_badid);
        src_report(rp, "  kept: %lld rows without duration, %lld without creator history, %lld with negative growth\n",
                   (long long)st.no_duration, (long long)st.no_creator_hist, (long long)st.negative);
        src_report(rp, "features unavailable: completion_rate (no watch time); counts are from scrape 1\n");
        src_report(rp, "velocity: (views_2 - views_1) / days between scrape_time_1 and scrape_time_2;"
                       " trend_duration_days = that interval (velocity != views/trend_duration_days here)\n");
        src_report(rp, "post time: top 32 bits of the video id (Unix s); upload_hour/weekday in Vietnam time (UTC+7)\n");
        src_report(rp, "creator_avg_views: mean views of the creator's other videos in creator_history_videos.csv\n");
        src_report(rp, "language: heuristic on the caption (Vietnamese letters -> vi, other scripts, English/Dutch/"
                       "Spanish/Indonesian stop words, else und)\n");
    }
    free(row);
    src_map_free(&hist);
    return s;
}

/* ================================================================ tiktok2020 */

/* *ok: 1 value, 0 absent/unusable (the record is dropped or the column left
 * empty), -1 a number out of range (an error naming the field: a playCount of
 * 1e308 would otherwise become a velocity of -9.2e18). */
static int64_t jint(const cJSON *o, const char *k, int *ok) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    double max = !strcmp(k, "createTime") ? SRC_MAX_UNIX_TIME : MILES_MAX_INPUT_VALUE;
    if (cJSON_IsNumber(x) && isfinite(x->valuedouble) && x->valuedouble >= 0) {
        if (x->valuedouble > max) {
            miles_error(MILES_ERANGE, "field '%s' = %g is out of range [0, %g]", k, x->valuedouble, max);
            *ok = -1;
            return -1;
        }
        *ok = 1;
        return (int64_t)x->valuedouble;
    }
    if (cJSON_IsString(x)) {
        int64_t v;
        int r = src_parse_count(x->valuestring, &v);
        if (r == 1 && (double)v <= max) { *ok = 1; return v; }
        if (r == -2 || r == 1) {
            miles_error(MILES_ERANGE, "field '%s' = \"%.40s\" is out of range [0, %g]", k, x->valuestring, max);
            *ok = -1;
            return -1;
        }
    }
    *ok = 0;
    return -1;
}

int src_adapter_tiktok2020(const char *input, FILE *out, SrcReport *rp, int64_t *rows_out) {
    char *data;
    size_t n;
    MILES_TRY(miles_read_file(input, &data, &n));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, n, &end, 0);
    if (!root) {
        int s = miles_error(MILES_EFORMAT, "%s: malformed JSON near byte %ld", input, end ? (long)(end - data) : 0L);
        free(data);
        return s;
    }
    free(data);
    const cJSON *col = cJSON_GetObjectItemCaseSensitive(root, "collector");
    if (!cJSON_IsArray(col)) {
        cJSON_Delete(root);
        return miles_error(MILES_EMISSING, "%s: no \"collector\" array (tiktok-scraper output expected)", input);
    }
    /* scrape time: the newest createTime in the file (a lower bound on the real one) */
    int64_t scrape = 0, in = 0, idx = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, col) {
        int ok, okp;
        int64_t t = jint(it, "createTime", &ok);
        if (ok >= 0) {
            const char *cnt[] = {"playCount", "diggCount", "shareCount", "commentCount"};
            for (int q = 0; q < 4 && ok >= 0; q++) { jint(it, cnt[q], &okp); if (okp < 0) ok = -1; }
            const cJSON *vm = cJSON_GetObjectItemCaseSensitive(it, "videoMeta");
            if (ok >= 0 && vm) { jint(vm, "duration", &okp); if (okp < 0) ok = -1; }
        }
        if (ok < 0) {
            cJSON_Delete(root);
            return miles_error_prefix(MILES_ERANGE, "%s: collector[%lld]", input, (long long)idx);
        }
        if (ok && t > scrape) scrape = t;
        idx++;
    }
    /* creator_avg_views: mean playCount of the author's videos in this file */
    SrcMap auth = {0};
    int s = MILES_OK;
    cJSON_ArrayForEach(it, col) {
        const cJSON *am = cJSON_GetObjectItemCaseSensitive(it, "authorMeta");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(am, "name");
        int ok;
        int64_t plays = jint(it, "playCount", &ok);
        if (!cJSON_IsString(name) || !ok) continue;
        SrcMapEnt *e = src_map_get(&auth, name->valuestring, 1);
        if (!e) { s = MILES_ENOMEM; break; }
        e->sum += (double)plays;
        e->count++;
    }
    SrcRow *row = s == MILES_OK ? miles_malloc(sizeof *row) : NULL;
    if (s == MILES_OK && !row) s = MILES_ENOMEM;
    int64_t drop_noid = 0, drop_notext = 0, drop_nocounts = 0, drop_notime = 0, drop_utf8 = 0, drop_dup = 0, no_dur = 0;
    SrcMap seen = {0};
    cJSON_ArrayForEach(it, col) {
        if (s != MILES_OK) break;
        in++;
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsString(idj) || !idj->valuestring[0]) { drop_noid++; continue; }
        const char *id = idj->valuestring;
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(it, "text");
        if (!cJSON_IsString(tx) || !tx->valuestring[0]) { drop_notext++; continue; }
        int ok1, ok2, ok3, ok4, ok5;
        int64_t plays = jint(it, "playCount", &ok1), likes = jint(it, "diggCount", &ok2),
                shares = jint(it, "shareCount", &ok3), comments = jint(it, "commentCount", &ok4),
                ct = jint(it, "createTime", &ok5);
        if (!ok1) { drop_nocounts++; continue; }
        if (!ok5) { drop_notime++; continue; }
        const cJSON *am = cJSON_GetObjectItemCaseSensitive(it, "authorMeta");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(am, "name");
        const char *author = cJSON_IsString(name) ? name->valuestring : "";
        if (miles_utf8_length(tx->valuestring) < 0 || miles_utf8_length(author) < 0 || miles_utf8_length(id) < 0) { drop_utf8++; continue; }
        SrcMapEnt *d = src_map_get(&seen, id, 1);
        if (!d) { s = MILES_ENOMEM; break; }
        if (d->count++) { drop_dup++; continue; }
        src_row_clear(row);
        src_row_str(row, SC_PLATFORM, "TikTok");
        src_row_str(row, SC_LANGUAGE, src_guess_language(tx->valuestring));
        src_row_str(row, SC_AUTHOR_HANDLE, author);
        const cJSON *mm = cJSON_GetObjectItemCaseSensitive(it, "musicMeta");
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(mm, "musicName");
        const cJSON *mo = cJSON_GetObjectItemCaseSensitive(mm, "musicOriginal");
        if (cJSON_IsString(mn) && miles_utf8_length(mn->valuestring) >= 0) src_row_str(row, SC_MUSIC_TRACK, mn->valuestring);
        if (cJSON_IsBool(mo)) src_row_str(row, SC_SOUND_TYPE, cJSON_IsTrue(mo) ? "original" : "licensed");
        const cJSON *vm = cJSON_GetObjectItemCaseSensitive(it, "videoMeta");
        int okd;
        int64_t dur = jint(vm, "duration", &okd);
        if (okd && dur > 0) src_row_int(row, SC_DURATION_SEC, dur);
        else no_dur++;
        src_row_rates(row, plays, ok2 ? likes : -1, ok4 ? comments : -1, ok3 ? shares : -1, -1, -1);
        src_row_str(row, SC_SOURCE_HINT, "TikTok trending Dec 2020 (tiktok-scraper trending.json)");
        double age = (double)(scrape - ct) / 86400.0;
        if (age < 1) age = 1;
        src_row_fix(row, SC_TREND_DURATION_DAYS, age, 2);
        src_row_fix(row, SC_ENGAGEMENT_VELOCITY, (double)plays / age, 2);
        src_row_time(row, ct, 1);
        /* hashtags: "#a" primary, "a, b, c" tags */
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(it, "hashtags");
        if (cJSON_IsArray(hs)) {
            char tags[2048];
            size_t k = 0;
            tags[0] = '\0';
            const cJSON *h;
            cJSON_ArrayForEach(h, hs) {
                const cJSON *hn = cJSON_GetObjectItemCaseSensitive(h, "name");
                if (!cJSON_IsString(hn) || !hn->valuestring[0] || miles_utf8_length(hn->valuestring) < 0) continue;
                size_t l = strlen(hn->valuestring);
                if (k + l + 3 >= sizeof tags) break;
                if (k == 0) {
                    /* at most 200 bytes, never ending inside a UTF-8 sequence */
                    int hl = l > 200 ? 200 : (int)l;
                    while (hl > 0 && ((unsigned char)hn->valuestring[hl] & 0xC0) == 0x80) hl--;
                    src_row_fmt(row, SC_HASHTAG, "#%.*s", hl, hn->valuestring);
                }
                if (k) { tags[k++] = ','; tags[k++] = ' '; }
                memcpy(tags + k, hn->valuestring, l);
                k += l;
                tags[k] = '\0';
            }
            if (k) src_row_str(row, SC_TAGS, tags);
        }
        SrcMapEnt *e = author[0] ? src_map_get(&auth, author, 0) : NULL;
        if (e && e->count) src_row_fix(row, SC_CREATOR_AVG_VIEWS, e->sum / (double)e->count, 1);
        if ((s = src_row_title(row, tx->valuestring)) != MILES_OK) break;
        src_row_str(row, SC_ROW_ID, id);
        if ((s = src_csv_write_row(out, row)) != MILES_OK) {
            miles_error_prefix(s, "%s: collector[%lld] (id %.40s)", input, (long long)(in - 1), id);
            break;
        }
        (*rows_out)++;
    }
    if (s == MILES_OK) {
        int y, m, d;
        src_civil_from_days(scrape / 86400, &y, &m, &d);
        src_report(rp, "videos in: %lld, rows out: %lld, dropped: %lld\n", (long long)in, (long long)*rows_out,
                   (long long)(in - *rows_out));
        src_report(rp, "  dropped: no id %lld, empty text %lld, no playCount %lld, no createTime %lld, invalid UTF-8 %lld,"
                       " duplicate id %lld; kept without duration %lld\n",
                   (long long)drop_noid, (long long)drop_notext, (long long)drop_nocounts, (long long)drop_notime,
                   (long long)drop_utf8, (long long)drop_dup, (long long)no_dur);
        src_report(rp, "features unavailable: saves, save_rate, engagement_rate (needs saves), completion_rate\n");
        src_report(rp, "velocity: playCount / age_days, age_days = (scrape time - createTime) / 86400, min 1 day;"
                       " scrape time = newest createTime in the file = %lld (%04d-%02d-%02d UTC);"
                       " trend_duration_days = age_days\n", (long long)scrape, y, m, d);
        src_report(rp, "creator_avg_views: mean playCount of the author's videos in this file (in-sample);"
                       " upload_hour/weekday in UTC\n");
    }
    free(row);
    src_map_free(&auth);
    src_map_free(&seen);
    cJSON_Delete(root);
    return s;
}
