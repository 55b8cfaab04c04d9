/*
 * fuzz_serve_request.c — libFuzzer target for miles-serve's request parsing
 * (tools/serve_request.c, tools/predict_json.c): the bodies of /predict and
 * /predict/batch, the /predict/file upload (CSV, JSON lines, JSON array) and
 * the query values, exactly as the server calls them.  The first byte picks
 * the route, the rest is the body (or the query value).
 *
 *   make fuzz-run FUZZ_ONLY=serve_request FUZZ_TIME=300   (Makefile: build, seeds, dictionary)
 *
 * Checks beyond "no crash, no sanitizer report": an accepted request gives
 * records that each have a non-blank title; a refused one gives a MILES_E*
 * status and a non-empty message; limits and flags stay in their ranges.
 */
#include "serve_request.h"
#include "miles.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_records(PjRecord *recs, int n, int max_items) {
    if (n < 1 || n > max_items) abort();
    for (int i = 0; i < n; i++) {
        const char *t = pj_record_get(&recs[i], "title");
        if (!t) abort();
        MilesRecord v = pj_record_view(&recs[i]);
        if (v.n != recs[i].n) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 5;
    size_t n = size - 1;
    char *body = malloc(n + 1);
    if (!body) return 0;
    memcpy(body, data + 1, n);
    body[n] = 0;
    char err[768];
    err[0] = 0;
    int s;
    const int max_items = 50;
    if (mode == 0) {
        PjRecord r;
        s = sr_predict_body(body, n, &r, err, sizeof err);
        if (s == MILES_OK) { check_records(&r, 1, 1); pj_record_free(&r); }
    } else if (mode == 1 || mode == 2) {
        PjRecord *recs = NULL;
        int k = 0;
        s = mode == 1 ? sr_batch_body(body, n, max_items, &recs, &k, err, sizeof err)
                      : sr_file_body(body, n, max_items, &recs, &k, err, sizeof err);
        if (s == MILES_OK) check_records(recs, k, max_items);
        else if (recs || k) abort(); /* nothing handed out on failure */
        sr_free_records(recs, k);
    } else if (mode == 3) {
        int limit;
        s = sr_query_limit(body, 50, &limit, err, sizeof err);
        if (s == MILES_OK && (limit < 1 || limit > 1000)) abort();
    } else {
        int flag;
        s = sr_query_flag(body, "explain", &flag, err, sizeof err);
        if (s == MILES_OK && flag != 0 && flag != 1) abort();
    }
    if (s > 0) abort();
    if (s != MILES_OK && !err[0]) abort(); /* every refusal says why */
    miles_clear_error();
    free(body);
    return 0;
}
