/*
 * serve_request.h — miles-serve's request parsing, kept apart from the HTTP
 * layer (libmicrohttpd) so a libFuzzer target (fuzz/fuzz_serve_request.c) can
 * drive it: JSON bodies of /predict and /predict/batch, the /predict/file
 * upload (CSV, JSON lines, a JSON array) and query-string values.
 *
 * Strict by design (issue 18): a JSON body is exactly one value (trailing
 * bytes or a second object -> 400), numeric fields must be JSON numbers or
 * decimal strings ("0x10", "inf", [5], {} -> 400 naming the field).  Every
 * error is a MILES_E* status plus a message that starts with the field
 * ("items[2].view_count: ..."), which the server turns into {"field": ...}.
 * Bodies are modified in place (U+0000 marks, see predict_json.h).
 */
#ifndef MILES_SERVE_REQUEST_H
#define MILES_SERVE_REQUEST_H

#include <stddef.h>
#include "predict_json.h"

/* Parse body[0..len) as exactly one JSON value (whitespace around it only). */
int sr_parse_json(char *body, size_t len, cJSON **out, char *err, size_t errcap);
/* Check the numeric fields of one request object (where = "" or "items[3]"). */
int sr_check_numeric(const cJSON *obj, const char *where, char *err, size_t errcap);
/* POST /predict: one object -> one record. */
int sr_predict_body(char *body, size_t len, PjRecord *rec, char *err, size_t errcap);
/* POST /predict/batch: {"items": [ ... 1..max_items objects ]} -> records (*recs malloc'd, *n of them). */
int sr_batch_body(char *body, size_t len, int max_items, PjRecord **recs, int *n, char *err, size_t errcap);
/* POST /predict/file: CSV with a header, JSON lines, or a JSON array. */
int sr_file_body(char *body, size_t len, int max_items, PjRecord **recs, int *n, char *err, size_t errcap);
void sr_free_records(PjRecord *recs, int n);
/* Query values (NULL = absent).  ?limit=N in [1, 1000]; ?explain=0|1|true|false. */
int sr_query_limit(const char *v, int dflt, int *out, char *err, size_t errcap);
int sr_query_flag(const char *v, const char *name, int *out, char *err, size_t errcap);

#endif
