/*
 * serve_request.c — request parsing of miles-serve (see serve_request.h).
 * No HTTP here: the server and fuzz/fuzz_serve_request.c call the same code.
 */
#include "serve_request.h"
#include "miles.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int sr_parse_json(char *body, size_t len, cJSON **out, char *err, size_t errcap) {
    *out = NULL;
    if (!body) { body = ""; len = 0; }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) { snprintf(err, errcap, "body: malformed JSON"); return MILES_EFORMAT; }
    size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : len;
    while (at < len && is_ws(body[at])) at++;
    if (at < len) {
        cJSON_Delete(j);
        /* cJSON accepts a prefix: "{...} x" and "{...}{...}" must not pass as the first object */
        snprintf(err, errcap, "body: malformed JSON: unexpected %s after the JSON value at byte %zu",
                 body[at] == '{' || body[at] == '[' ? "a second value" : "bytes", at);
        return MILES_EFORMAT;
    }
    *out = j;
    return MILES_OK;
}

/* yt-dlp keys that feed numeric columns (predict_json.c maps them). */
static int is_numeric_key(const char *k) {
    if (!strcmp(k, "duration") || !strcmp(k, "repost_count") || !strcmp(k, "timestamp")) return 1;
    const char *col = miles_predictor_column_of(k);
    for (int f = 0; f < MILES_NUM_FEATURES; f++)
        if (!strcmp(col, miles_feature_names[f])) return 1;
    return 0;
}

/* A decimal number as JSON writes it (optional sign, digits, fraction,
 * exponent), spaces around allowed; no hex, inf, nan, or trailing text. */
static int is_decimal(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '-' || *s == '+') s++;
    int digits = 0;
    while (*s >= '0' && *s <= '9') s++, digits++;
    if (*s == '.') { s++; while (*s >= '0' && *s <= '9') s++, digits++; }
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+') s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    while (*s == ' ' || *s == '\t') s++;
    return *s == 0;
}

static int is_blank(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return !*s;
}

int sr_check_numeric(const cJSON *obj, const char *where, char *err, size_t errcap) {
    if (!cJSON_IsObject(obj)) return MILES_OK; /* pj_record_from_json reports it */
    const char *pre = where && *where ? where : "", *dot = where && *where ? "." : "";
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        if (!k || !is_numeric_key(k) || cJSON_IsNull(it) || cJSON_IsNumber(it) || cJSON_IsBool(it)) continue;
        const char *what = NULL;
        if (cJSON_IsArray(it)) what = "an array";
        else if (cJSON_IsObject(it)) what = "an object";
        else if (cJSON_IsString(it)) {
            const char *v = it->valuestring;
            if (is_blank(v)) continue; /* "" = not given, as an empty CSV cell */
            if (!is_decimal(v)) {
                snprintf(err, errcap, "%s%s%s: field '%s' must be a number, got \"%.40s\"", pre, dot, k, k, v);
                return MILES_EFORMAT;
            }
            double x = strtod(v, NULL);
            if (!isfinite(x)) {
                snprintf(err, errcap, "%s%s%s: field '%s' is not finite (\"%.40s\")", pre, dot, k, k, v);
                return MILES_ENAN;
            }
            continue;
        } else what = "a non-number";
        snprintf(err, errcap, "%s%s%s: field '%s' must be a number, got %s", pre, dot, k, k, what);
        return MILES_EFORMAT;
    }
    return MILES_OK;
}

static int record_of(const cJSON *obj, const char *where, PjRecord *r, char *err, size_t errcap) {
    memset(r, 0, sizeof *r);
    int s = sr_check_numeric(obj, where, err, errcap);
    return s ? s : pj_record_from_json(obj, where, r, err, errcap);
}

int sr_predict_body(char *body, size_t len, PjRecord *rec, char *err, size_t errcap) {
    memset(rec, 0, sizeof *rec);
    if (body) len = pj_json_mark_nul(body, len); /* titles may hold U+0000 */
    cJSON *j;
    int s = sr_parse_json(body, len, &j, err, errcap);
    if (s) return s;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(err, errcap, "body: expected a JSON object");
        return MILES_EFORMAT;
    }
    s = record_of(j, "", rec, err, errcap);
    cJSON_Delete(j);
    return s;
}

void sr_free_records(PjRecord *recs, int n) {
    for (int i = 0; recs && i < n; i++) pj_record_free(&recs[i]);
    free(recs);
}

int sr_batch_body(char *body, size_t len, int max_items, PjRecord **recs_out, int *n_out, char *err, size_t errcap) {
    *recs_out = NULL;
    *n_out = 0;
    if (body) len = pj_json_mark_nul(body, len);
    cJSON *j;
    int s = sr_parse_json(body, len, &j, err, errcap);
    if (s) return s;
    const cJSON *items = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "items") : NULL;
    if (!cJSON_IsArray(items)) {
        cJSON_Delete(j);
        snprintf(err, errcap, "items: field 'items' (an array of objects) is required");
        return MILES_EMISSING;
    }
    int n = cJSON_GetArraySize(items);
    if (n < 1 || n > max_items) {
        cJSON_Delete(j);
        snprintf(err, errcap, "items: field 'items' must hold 1 to %d objects, got %d", max_items, n);
        return MILES_ERANGE;
    }
    PjRecord *recs = calloc(n, sizeof *recs);
    if (!recs) { cJSON_Delete(j); snprintf(err, errcap, "out of memory"); return MILES_ENOMEM; }
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        char where[32];
        snprintf(where, sizeof where, "items[%d]", k);
        if ((s = record_of(it, where, &recs[k], err, errcap)) != MILES_OK) break;
        k++;
    }
    cJSON_Delete(j);
    if (s) { sr_free_records(recs, k); return s; }
    *recs_out = recs;
    *n_out = n;
    return MILES_OK;
}

/* Room for one more record; 0 or MILES_ENOMEM. */
static int grow(PjRecord **recs, int n, int *cap) {
    if (n < *cap) return 0;
    int nc = *cap ? *cap * 2 : 64;
    PjRecord *nr = realloc(*recs, sizeof *nr * nc);
    if (!nr) return MILES_ENOMEM;
    *recs = nr;
    *cap = nc;
    return 0;
}

int sr_file_body(char *body, size_t len, int max_items, PjRecord **recs_out, int *n_out, char *err, size_t errcap) {
    *recs_out = NULL;
    *n_out = 0;
    err[0] = 0;
    const char *b = body ? body : "";
    if (!body) len = 0;
    size_t i0 = 0;
    while (i0 < len && is_ws(b[i0])) i0++;
    if (i0 == len) { snprintf(err, errcap, "body: empty file"); return MILES_EFORMAT; }
    if (b[i0] == '[' || b[i0] == '{') len = pj_json_mark_nul(body, len); /* JSON: U+0000 in titles */
    PjRecord *recs = NULL;
    int n = 0, cap = 0, s = MILES_OK;
#define TOO_MANY() do { s = MILES_ERANGE; snprintf(err, errcap, "body: more than %d records", max_items); } while (0)
#define NOMEM() do { s = MILES_ENOMEM; snprintf(err, errcap, "out of memory"); } while (0)
    if (b[i0] == '[') {
        cJSON *j;
        s = sr_parse_json(body, len, &j, err, errcap);
        const cJSON *it;
        if (!s) cJSON_ArrayForEach(it, j) {
            if (n >= max_items) { TOO_MANY(); break; }
            if (grow(&recs, n, &cap)) { NOMEM(); break; }
            char where[32];
            snprintf(where, sizeof where, "record %d", n + 1);
            if ((s = record_of(it, where, &recs[n], err, errcap))) break;
            n++;
        }
        cJSON_Delete(j);
    } else if (b[i0] == '{') {
        size_t p = 0;
        int line = 0;
        while (p < len && !s) {
            size_t e = p;
            while (e < len && b[e] != '\n') e++;
            line++;
            size_t k = p;
            while (k < e && is_ws(b[k])) k++;
            if (k < e) {
                if (n >= max_items) { TOO_MANY(); break; }
                if (grow(&recs, n, &cap)) { NOMEM(); break; }
                char where[32], lerr[512];
                snprintf(where, sizeof where, "line %d", line);
                cJSON *j;
                if (sr_parse_json(body + p, e - p, &j, lerr, sizeof lerr)) {
                    s = MILES_EFORMAT;
                    snprintf(err, errcap, "line %d: %s", line, lerr + (strncmp(lerr, "body: ", 6) ? 0 : 6));
                } else if ((s = record_of(j, where, &recs[n], err, errcap)) == MILES_OK) n++;
                cJSON_Delete(j);
            }
            p = e + 1;
        }
    } else {
        MilesRecordReader *rd = NULL;
        s = miles_records_open_csv_memory(&rd, "upload.csv", b, len);
        if (!s) {
            int hn = 0, has_title = 0, st = 0;
            const char *const *hdr = miles_records_header(rd, &hn);
            for (int i = 0; i < hn; i++) has_title |= !strcmp(hdr[i], "title");
            if (!has_title) { s = MILES_EMISSING; snprintf(err, errcap, "title: the CSV header has no 'title' column"); }
            MilesRecord rec;
            while (!s && (st = miles_records_next(rd, &rec)) == 1) {
                if (n >= max_items) { TOO_MANY(); break; }
                if (grow(&recs, n, &cap)) { NOMEM(); break; }
                memset(&recs[n], 0, sizeof recs[n]);
                n++;
                for (int i = 0; i < rec.n && !s; i++)
                    if (rec.values[i][0] && pj_record_add(&recs[n - 1], rec.names[i], rec.values[i])) NOMEM();
                if (s) break;
                const char *t = pj_record_get(&recs[n - 1], "title");
                if (!t || miles_utf8_length(t) < 0) {
                    s = t ? MILES_EFORMAT : MILES_EMISSING;
                    snprintf(err, errcap, "line %lld.title: field 'title' is %s", (long long)miles_records_line(rd),
                             t ? "not valid UTF-8" : "empty");
                }
            }
            if (!s && st < 0) { s = st; snprintf(err, errcap, "%s", miles_last_error()); }
        } else {
            snprintf(err, errcap, "%s", miles_last_error()[0] ? miles_last_error() : "body: empty CSV");
        }
        miles_records_close(rd);
        miles_clear_error();
    }
#undef TOO_MANY
#undef NOMEM
    if (!s && n == 0) { s = MILES_EMISSING; snprintf(err, errcap, "body: no records"); }
    if (s) { sr_free_records(recs, n); return s; }
    *recs_out = recs;
    *n_out = n;
    return MILES_OK;
}

int sr_query_limit(const char *v, int dflt, int *out, char *err, size_t errcap) {
    *out = dflt;
    if (!v) return MILES_OK;
    char *e;
    long x = strtol(v, &e, 10);
    if (e == v || *e || x < 1 || x > 1000 || !(*v >= '0' && *v <= '9')) {
        snprintf(err, errcap, "limit: query parameter 'limit' must be an integer in [1, 1000], got \"%.40s\"", v);
        return MILES_EINVAL;
    }
    *out = (int)x;
    return MILES_OK;
}

int sr_query_flag(const char *v, const char *name, int *out, char *err, size_t errcap) {
    *out = 0;
    if (!v) return MILES_OK;
    if (!strcmp(v, "1") || !strcmp(v, "true")) *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !*v) *out = 0;
    else {
        snprintf(err, errcap, "%s: query parameter '%s' must be 0, 1, true or false, got \"%.40s\"", name, name, v);
        return MILES_EINVAL;
    }
    return MILES_OK;
}
