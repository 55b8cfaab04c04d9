/*
 * predict_json.h — JSON objects (HTTP requests, JSONL / yt-dlp -j lines) to
 * predictor records, shared by miles-predict and miles-serve.
 */
#ifndef MILES_PREDICT_JSON_H
#define MILES_PREDICT_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "miles.h"

/* Named string values owned by the record (values may hold U+0000: lens). */
typedef struct PjRecord {
    int n, cap;
    char **names;
    char **values;
    size_t *lens;
} PjRecord;

/* JSON strings may hold U+0000 ("\u0000"), which cJSON would cut at.  Before
 * parsing, this rewrites every \u0000 escape inside a string of json[0..n)
 * into one 0xFF byte (a byte valid UTF-8 never has) and returns the new
 * length; pj_record_from_json turns the marks back into U+0000 with the
 * values' lengths.  Text that already holds 0xFF bytes (invalid UTF-8, refused
 * anyway) is left as it is. */
size_t pj_json_mark_nul(char *json, size_t n);

/* Convert one JSON object.  Strings pass through; numbers are written with
 * %.17g (exact); booleans as 1/0; null = absent; arrays/objects are ignored
 * (tags, formats...).  yt-dlp keys are mapped: id -> video_id, duration ->
 * duration_sec, repost_count -> shares, timestamp -> publish_date_approx
 * (UTC, with the hour), upload_date YYYYMMDD -> YYYY-MM-DD, channel/uploader ->
 * channel_name, extractor_key -> platform.  The original API's count fields
 * (view_count, like_count, comment_count, duration_seconds) must be
 * non-negative numbers.  On error returns MILES_E* and writes a message naming
 * the field (prefixed with `where`, e.g. "items[3]") into err. */
int pj_record_from_json(const cJSON *obj, const char *where, PjRecord *r, char *err, size_t errcap);
/* Append a pair (copied): value of len bytes (pj_record_add: NUL-terminated). */
int pj_record_add_n(PjRecord *r, const char *name, const char *value, size_t len);
int pj_record_add(PjRecord *r, const char *name, const char *value);
void pj_record_free(PjRecord *r);
/* Value of the first pair called name, or NULL. */
const char *pj_record_get(const PjRecord *r, const char *name);
/* A MilesRecord view (valid while r lives). */
MilesRecord pj_record_view(const PjRecord *r);
/* Names of the features whose bit is set in mask, as a JSON array. */
cJSON *pj_feature_list(uint32_t mask);

#endif
