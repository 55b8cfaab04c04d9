/*
 * predict_json.c — JSON objects to predictor records (see predict_json.h).
 */
#include "predict_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int pj_record_add_n(PjRecord *r, const char *name, const char *value, size_t len) {
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        char **nn = realloc(r->names, sizeof(char *) * cap);
        if (!nn) return MILES_ENOMEM;
        r->names = nn;
        char **vv = realloc(r->values, sizeof(char *) * cap);
        if (!vv) return MILES_ENOMEM;
        r->values = vv;
        size_t *ll = realloc(r->lens, sizeof(size_t) * cap);
        if (!ll) return MILES_ENOMEM;
        r->lens = ll;
        r->cap = cap;
    }
    r->names[r->n] = strdup(name);
    r->values[r->n] = malloc(len + 1);
    if (!r->names[r->n] || !r->values[r->n]) {
        free(r->names[r->n]);
        free(r->values[r->n]);
        return MILES_ENOMEM;
    }
    memcpy(r->values[r->n], value, len);
    r->values[r->n][len] = '\0';
    r->lens[r->n] = len;
    r->n++;
    return MILES_OK;
}

int pj_record_add(PjRecord *r, const char *name, const char *value) {
    return pj_record_add_n(r, name, value, strlen(value));
}

void pj_record_free(PjRecord *r) {
    for (int i = 0; i < r->n; i++) { free(r->names[i]); free(r->values[i]); }
    free(r->names);
    free(r->values);
    free(r->lens);
    memset(r, 0, sizeof *r);
}

size_t pj_json_mark_nul(char *json, size_t n) {
    if (!json || memchr(json, 0xFF, n)) return n;
    size_t w = 0;
    int in_string = 0;
    for (size_t i = 0; i < n;) {
        char c = json[i];
        if (!in_string) {
            in_string = c == '"';
            json[w++] = json[i++];
        } else if (c == '\\' && i + 1 < n) {
            if (json[i + 1] == 'u' && i + 5 < n && !memcmp(json + i + 2, "0000", 4)) {
                json[w++] = (char)0xFF;
                i += 6;
            } else {
                json[w++] = json[i++];
                json[w++] = json[i++];
            }
        } else {
            in_string = c != '"';
            json[w++] = json[i++];
        }
    }
    if (w < n) json[w] = '\0';
    return w;
}

/* A JSON string value: marks (0xFF) back to U+0000 into buf (malloc'd) with
 * *len; 1 if valid UTF-8. */
static int unmark(const char *s, char **buf, size_t *len) {
    size_t n = strlen(s);
    *buf = malloc(n + 1);
    if (!*buf) return -1;
    char *chk = malloc(n + 1);
    if (!chk) { free(*buf); *buf = NULL; return -1; }
    for (size_t i = 0; i <= n; i++) {
        int mark = (unsigned char)s[i] == 0xFF;
        (*buf)[i] = mark ? '\0' : s[i];
        chk[i] = mark ? ' ' : s[i]; /* U+0000 is one valid byte, like a space */
    }
    *len = n;
    int ok = miles_utf8_length(chk) >= 0;
    free(chk);
    return ok;
}

const char *pj_record_get(const PjRecord *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->names[i], name)) return r->values[i];
    return NULL;
}

MilesRecord pj_record_view(const PjRecord *r) {
    MilesRecord v = {r->n, (const char *const *)r->names, (const char *const *)r->values, r->lens};
    return v;
}

cJSON *pj_feature_list(uint32_t mask) {
    cJSON *a = cJSON_CreateArray();
    for (int f = 0; f < MILES_NUM_FEATURES; f++)
        if (mask >> f & 1u) cJSON_AddItemToArray(a, cJSON_CreateString(miles_feature_names[f]));
    return a;
}

/* Fields of the original API that must be non-negative numbers. */
static int is_count_field(const char *k) {
    return !strcmp(k, "view_count") || !strcmp(k, "like_count") || !strcmp(k, "comment_count") ||
           !strcmp(k, "duration_seconds");
}

/* Keys renamed from yt-dlp's info JSON (when the target is not given itself). */
static const char *ytdlp_target(const char *k) {
    if (!strcmp(k, "id")) return "video_id";
    if (!strcmp(k, "duration")) return "duration_sec";
    if (!strcmp(k, "repost_count")) return "shares";
    if (!strcmp(k, "channel") || !strcmp(k, "uploader")) return "channel_name";
    if (!strcmp(k, "extractor_key")) return "platform";
    return NULL;
}

#define FAIL(code, ...) do { \
        int _o = snprintf(err, errcap, "%s%s", where && *where ? where : "", where && *where ? "." : ""); \
        if (_o < 0 || (size_t)_o >= errcap) _o = 0; \
        snprintf(err + _o, errcap - _o, __VA_ARGS__); \
        pj_record_free(r); \
        return code; } while (0)

int pj_record_from_json(const cJSON *obj, const char *where, PjRecord *r, char *err, size_t errcap) {
    memset(r, 0, sizeof *r);
    err[0] = 0;
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errcap, "%s%sexpected a JSON object", where ? where : "", where && *where ? ": " : "");
        return MILES_EFORMAT;
    }
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(obj, "title");
    if (!title || cJSON_IsNull(title)) FAIL(MILES_EMISSING, "title: field 'title' is required");
    if (!cJSON_IsString(title)) FAIL(MILES_EFORMAT, "title: field 'title' must be a string");
    int has_ts = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(obj, "timestamp"));
    const cJSON *it;
    char buf[64];
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        if (!k || cJSON_IsNull(it) || cJSON_IsArray(it) || cJSON_IsObject(it)) continue;
        const char *val;
        size_t vlen = (size_t)-1;
        char *owned = NULL;
        if (cJSON_IsString(it)) {
            int ok = unmark(it->valuestring, &owned, &vlen);
            if (ok < 0) FAIL(MILES_ENOMEM, "out of memory");
            if (!ok) { free(owned); FAIL(MILES_EFORMAT, "%s: field '%s' is not valid UTF-8", k, k); }
            val = owned;
        } else if (cJSON_IsBool(it)) {
            val = cJSON_IsTrue(it) ? "1" : "0";
        } else if (cJSON_IsNumber(it)) {
            if (!isfinite(it->valuedouble)) FAIL(MILES_ENAN, "%s: field '%s' is not finite", k, k);
            snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
            val = buf;
        } else continue;
        if (is_count_field(k)) {
            char *end;
            double v = strtod(val, &end);
            while (*end == ' ') end++;
            if (cJSON_IsBool(it) || end == val || *end || !isfinite(v) || (owned && strlen(val) != vlen)) {
                char shown[48];
                snprintf(shown, sizeof shown, "%.40s", cJSON_IsBool(it) ? (cJSON_IsTrue(it) ? "true" : "false") : val);
                int str = cJSON_IsString(it);
                free(owned);
                FAIL(MILES_EFORMAT, "%s: field '%s' must be a number, got %s%s%s", k, k, str ? "\"" : "", shown,
                     str ? "\"" : "");
            }
            if (v < 0) { free(owned); FAIL(MILES_ERANGE, "%s: field '%s' must be >= 0, got %.17g", k, k, v); }
        }
        const char *name = k;
        char date[32];
        if (!strcmp(k, "timestamp") && cJSON_IsNumber(it)) {
            time_t t = (time_t)it->valuedouble;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(date, sizeof date, "%Y-%m-%dT%H:%M", &tm);
            name = "publish_date_approx";
            val = date;
        } else if (!strcmp(k, "upload_date") && strlen(val) == 8 && strspn(val, "0123456789") == 8) {
            if (has_ts) name = "upload_date_yyyymmdd"; /* the timestamp (with hour) wins, as in the adapter */
            snprintf(date, sizeof date, "%.4s-%.2s-%.2s", val, val + 4, val + 6);
            val = date;
        } else {
            const char *tgt = ytdlp_target(k);
            if (tgt && !cJSON_GetObjectItemCaseSensitive(obj, tgt) && !pj_record_get(r, tgt)) name = tgt;
        }
        int s = pj_record_add_n(r, name, val, vlen != (size_t)-1 && val == owned ? vlen : strlen(val));
        free(owned);
        if (s) FAIL(MILES_ENOMEM, "out of memory");
    }
    const char *t = pj_record_get(r, "title");
    size_t tl = 0;
    for (int i = 0; i < r->n; i++) if (!strcmp(r->names[i], "title")) { tl = r->lens[i]; break; }
    size_t k = 0;
    while (t && k < tl && (t[k] == ' ' || t[k] == '\t' || t[k] == '\n' || t[k] == '\r')) k++;
    if (!t || k == tl) FAIL(MILES_EMISSING, "title: field 'title' is empty");
    return MILES_OK;
}
