/*
 * predict_json.c — JSON objects to predictor records (see predict_json.h).
 */
#include "predict_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int pj_record_add(PjRecord *r, const char *name, const char *value) {
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        char **nn = realloc(r->names, sizeof(char *) * cap);
        if (!nn) return MILES_ENOMEM;
        r->names = nn;
        char **vv = realloc(r->values, sizeof(char *) * cap);
        if (!vv) return MILES_ENOMEM;
        r->values = vv;
        r->cap = cap;
    }
    r->names[r->n] = strdup(name);
    r->values[r->n] = strdup(value);
    if (!r->names[r->n] || !r->values[r->n]) {
        free(r->names[r->n]);
        free(r->values[r->n]);
        return MILES_ENOMEM;
    }
    r->n++;
    return MILES_OK;
}

void pj_record_free(PjRecord *r) {
    for (int i = 0; i < r->n; i++) { free(r->names[i]); free(r->values[i]); }
    free(r->names);
    free(r->values);
    memset(r, 0, sizeof *r);
}

const char *pj_record_get(const PjRecord *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->names[i], name)) return r->values[i];
    return NULL;
}

MilesRecord pj_record_view(const PjRecord *r) {
    MilesRecord v = {r->n, (const char *const *)r->names, (const char *const *)r->values};
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
    if (miles_utf8_length(title->valuestring) < 0) FAIL(MILES_EFORMAT, "title: field 'title' is not valid UTF-8");
    const char *p = title->valuestring;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) FAIL(MILES_EMISSING, "title: field 'title' is empty");
    int has_ts = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(obj, "timestamp"));
    const cJSON *it;
    char buf[64];
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        if (!k || cJSON_IsNull(it) || cJSON_IsArray(it) || cJSON_IsObject(it)) continue;
        const char *val;
        if (cJSON_IsString(it)) {
            val = it->valuestring;
            if (miles_utf8_length(val) < 0) FAIL(MILES_EFORMAT, "%s: field '%s' is not valid UTF-8", k, k);
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
            if (cJSON_IsBool(it) || end == val || *end || !isfinite(v))
                FAIL(MILES_EFORMAT, "%s: field '%s' must be a number, got %s%.40s%s", k, k,
                     cJSON_IsString(it) ? "\"" : "", cJSON_IsBool(it) ? (cJSON_IsTrue(it) ? "true" : "false") : val,
                     cJSON_IsString(it) ? "\"" : "");
            if (v < 0) FAIL(MILES_ERANGE, "%s: field '%s' must be >= 0, got %.17g", k, k, v);
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
        if (pj_record_add(r, name, val)) FAIL(MILES_ENOMEM, "out of memory");
    }
    return MILES_OK;
}
