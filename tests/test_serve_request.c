/*
 * test_serve_request.c — miles-serve's request parsing (tools/serve_request.c)
 * without HTTP: the strict JSON body (one value, nothing after it), numeric
 * fields as JSON numbers or decimal strings, /predict/batch's items,
 * /predict/file's three formats (CSV, JSON lines, a JSON array) and the query
 * values.  test_serve checks the same rules through the server (statuses and
 * {"field": ...} bodies); here every message is checked to the byte and the
 * grammar of a decimal string case by case, which the HTTP test sampled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"
#include "serve_request.h"

/* A writable copy of a literal (the parsers mark U+0000 in place). */
static char *dup_body(const char *s) {
    char *b = strdup(s);
    assert_non_null(b);
    return b;
}

static void test_parse_json(void **state) {
    (void)state;
    const struct { const char *body; int rc; const char *err; } cases[] = {
        {"{\"a\": 1}", MILES_OK, NULL},
        {" \t\r\n{\"a\": 1} \n\t", MILES_OK, NULL},
        {"[1, 2]", MILES_OK, NULL},
        {"{\"a\": 1} x", MILES_EFORMAT, "body: malformed JSON: unexpected bytes after the JSON value at byte 9"},
        {"{\"a\": 1}{\"b\": 2}", MILES_EFORMAT,
         "body: malformed JSON: unexpected a second value after the JSON value at byte 8"},
        {"{\"a\": 1}\n[2]", MILES_EFORMAT,
         "body: malformed JSON: unexpected a second value after the JSON value at byte 9"},
        {"{\"a\": ", MILES_EFORMAT, "body: malformed JSON"},
        {"", MILES_EFORMAT, "body: malformed JSON"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *b = dup_body(cases[i].body);
        cJSON *j = (cJSON *)0x1;
        err[0] = 0;
        int rc = sr_parse_json(b, strlen(b), &j, err, sizeof err);
        if (rc != cases[i].rc) fail_msg("case %zu (%s): %s (%s)", i, cases[i].body, miles_status_name(rc), err);
        if (rc == MILES_OK) {
            assert_non_null(j);
            cJSON_Delete(j);
        } else {
            assert_null(j);
            assert_string_equal(err, cases[i].err);
        }
        free(b);
    }
    /* a NULL body is an empty one; a length shorter than the text ends the value there */
    cJSON *j = NULL;
    assert_int_equal(sr_parse_json(NULL, 0, &j, err, sizeof err), MILES_EFORMAT);
    char *b = dup_body("{\"a\": 1} trailing");
    assert_int_equal(sr_parse_json(b, 8, &j, err, sizeof err), MILES_OK);
    cJSON_Delete(j);
    free(b);
}

/* POST /predict with shares (a feature that may be negative here; the count
 * fields view_count... must be >= 0) given as the string v. */
static int predict_shares(const char *v, char *err, size_t cap) {
    char body[256];
    snprintf(body, sizeof body, "{\"title\": \"ramen at 3am\", \"shares\": \"%s\"}", v);
    PjRecord r;
    err[0] = 0;
    int rc = sr_predict_body(body, strlen(body), &r, err, cap);
    if (rc == MILES_OK) {
        /* passed through as written (a blank one means "not given" to the predictor, as an empty CSV cell) */
        assert_string_equal(pj_record_get(&r, "shares"), v);
        pj_record_free(&r);
    }
    return rc;
}

static void test_decimal_strings(void **state) {
    (void)state;
    char err[256];
    const char *ok[] = {"12", "12.5", "1.5", ".5", "5.", "-3", "+4", "-3e2", "+2E+3", "1e-7", " 7 ", "\t8\t", "0.000",
                        "", " ", "\t \t"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (predict_shares(ok[i], err, sizeof err) != MILES_OK) fail_msg("\"%s\" refused: %s", ok[i], err);
    const char *bad[] = {"0x10", "inf", "nan", "1e", "e5", ".", "-", "+", "1.5.2", "12abc", "1e+", "--1", "1 2",
                         ". 5", "5 .", "1,5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (predict_shares(bad[i], err, sizeof err) != MILES_EFORMAT) fail_msg("\"%s\" accepted", bad[i]);
        char want[128];
        snprintf(want, sizeof want, "shares: field 'shares' must be a number, got \"%s\"", bad[i]);
        assert_string_equal(err, want);
    }
    assert_int_equal(predict_shares("1e999", err, sizeof err), MILES_ENAN);
    assert_string_equal(err, "shares: field 'shares' is not finite (\"1e999\")");
    /* other shapes of a numeric field; numbers, booleans and null pass */
    const struct { const char *val, *what; } shapes[] = {{"[5]", "an array"}, {"{}", "an object"}};
    for (int i = 0; i < 2; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"title\": \"t\", \"like_count\": %s}", shapes[i].val);
        PjRecord r;
        assert_int_equal(sr_predict_body(body, strlen(body), &r, err, sizeof err), MILES_EFORMAT);
        char want[128];
        snprintf(want, sizeof want, "like_count: field 'like_count' must be a number, got %s", shapes[i].what);
        assert_string_equal(err, want);
    }
    const char *fine[] = {"{\"title\": \"t\", \"view_count\": 5}", "{\"title\": \"t\", \"view_count\": null}",
                          "{\"title\": \"t\", \"view_count\": 5, \"tags\": [\"a\"], \"formats\": {}}"};
    for (int i = 0; i < 3; i++) {
        char *b = dup_body(fine[i]);
        PjRecord r;
        if (sr_predict_body(b, strlen(b), &r, err, sizeof err)) fail_msg("%s: %s", fine[i], err);
        pj_record_free(&r);
        free(b);
    }
    /* not an object */
    char *b = dup_body("[{\"title\": \"t\"}]");
    PjRecord r;
    assert_int_equal(sr_predict_body(b, strlen(b), &r, err, sizeof err), MILES_EFORMAT);
    assert_string_equal(err, "body: expected a JSON object");
    free(b);
}

static void test_batch_body(void **state) {
    (void)state;
    char err[256];
    PjRecord *recs = NULL;
    int n = -1;
    char *b = dup_body("{\"items\": [{\"title\": \"a\"}, {\"title\": \"b\", \"view_count\": \"7\"}]}");
    assert_int_equal(sr_batch_body(b, strlen(b), 3, &recs, &n, err, sizeof err), MILES_OK);
    assert_int_equal(n, 2);
    assert_string_equal(pj_record_get(&recs[1], "title"), "b");
    assert_string_equal(pj_record_get(&recs[1], "view_count"), "7");
    sr_free_records(recs, n);
    free(b);
    const struct { const char *body; int max, rc; const char *err; } cases[] = {
        {"{\"title\": \"a\"}", 3, MILES_EMISSING, "items: field 'items' (an array of objects) is required"},
        {"{\"items\": {}}", 3, MILES_EMISSING, "items: field 'items' (an array of objects) is required"},
        {"[]", 3, MILES_EMISSING, "items: field 'items' (an array of objects) is required"},
        {"{\"items\": []}", 3, MILES_ERANGE, "items: field 'items' must hold 1 to 3 objects, got 0"},
        {"{\"items\": [{\"title\": \"a\"}, {\"title\": \"a\"}, {\"title\": \"a\"}, {\"title\": \"a\"}]}", 3,
         MILES_ERANGE, "items: field 'items' must hold 1 to 3 objects, got 4"},
        {"{\"items\": [{\"title\": \"a\"}, {\"title\": \"b\", \"view_count\": \"0x1\"}]}", 3, MILES_EFORMAT,
         "items[1].view_count: field 'view_count' must be a number, got \"0x1\""},
        {"{\"items\": [{\"title\": \"a\"}]} {}", 3, MILES_EFORMAT,
         "body: malformed JSON: unexpected a second value after the JSON value at byte 28"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        b = dup_body(cases[i].body);
        recs = (PjRecord *)0x1;
        n = -1;
        int rc = sr_batch_body(b, strlen(b), cases[i].max, &recs, &n, err, sizeof err);
        if (rc != cases[i].rc) fail_msg("case %zu: %s (%s)", i, miles_status_name(rc), err);
        assert_null(recs);
        assert_int_equal(n, 0);
        assert_string_equal(err, cases[i].err);
        free(b);
    }
    /* exactly max items pass */
    b = dup_body("{\"items\": [{\"title\": \"a\"}, {\"title\": \"b\"}, {\"title\": \"c\"}]}");
    assert_int_equal(sr_batch_body(b, strlen(b), 3, &recs, &n, err, sizeof err), MILES_OK);
    assert_int_equal(n, 3);
    sr_free_records(recs, n);
    free(b);
}

/* /predict/file: *n records or an error message. */
static int file_body(const char *text, int max, PjRecord **recs, int *n, char *err, size_t cap) {
    char *b = dup_body(text);
    int rc = sr_file_body(b, strlen(b), max, recs, n, err, cap);
    free(b);
    return rc;
}

static void test_file_body(void **state) {
    (void)state;
    char err[256];
    PjRecord *recs;
    int n;
    /* CSV: empty cells are absent values */
    assert_int_equal(file_body("title,view_count,like_count\nramen,5,\n\"a, b\",,3\n", 10, &recs, &n, err, sizeof err),
                     MILES_OK);
    assert_int_equal(n, 2);
    assert_string_equal(pj_record_get(&recs[0], "view_count"), "5");
    assert_null(pj_record_get(&recs[0], "like_count"));
    assert_string_equal(pj_record_get(&recs[1], "title"), "a, b");
    assert_null(pj_record_get(&recs[1], "view_count"));
    sr_free_records(recs, n);
    /* JSON lines: blank lines skipped, lines counted */
    assert_int_equal(file_body("{\"title\": \"a\"}\n\n  \t\n{\"title\": \"b\"}\n", 10, &recs, &n, err, sizeof err),
                     MILES_OK);
    assert_int_equal(n, 2);
    assert_string_equal(pj_record_get(&recs[1], "title"), "b");
    sr_free_records(recs, n);
    /* a JSON array */
    assert_int_equal(file_body("  [{\"title\": \"a\"}, {\"title\": \"b\"}, {\"title\": \"c\"}]", 3, &recs, &n, err,
                               sizeof err), MILES_OK);
    assert_int_equal(n, 3);
    sr_free_records(recs, n);
    const struct { const char *body; int max, rc; const char *err; } cases[] = {
        {"", 10, MILES_EFORMAT, "body: empty file"},
        {" \n\t\r\n", 10, MILES_EFORMAT, "body: empty file"},
        {"[]", 10, MILES_EMISSING, "body: no records"},
        {"views,likes\n5,6\n", 10, MILES_EMISSING, "title: the CSV header has no 'title' column"},
        {"title,views\n,5\n", 10, MILES_EMISSING, "line 2.title: field 'title' is empty"},
        /* the CSV reader refuses invalid UTF-8 anywhere, naming line and column */
        {"title,views\nok,5\n\xff\xfe,6\n", 10, MILES_EFORMAT,
         "upload.csv:3:1: invalid UTF-8: byte 0xFF cannot start a character"},
        {"title\na\nb\nc\n", 2, MILES_ERANGE, "body: more than 2 records"},
        {"{\"title\": \"a\"}\n{\"title\": \"b\"}\n{\"title\": \"c\"}\n", 2, MILES_ERANGE, "body: more than 2 records"},
        {"[{\"title\": \"a\"}, {\"title\": \"b\"}, {\"title\": \"c\"}]", 2, MILES_ERANGE, "body: more than 2 records"},
        {"{\"title\": \"a\"}\n\n{\"title\": \"b\"} x\n", 10, MILES_EFORMAT,
         "line 3: malformed JSON: unexpected bytes after the JSON value at byte 15"},
        {"{\"title\": \"a\"}\n{\"title\": \"b\", \"view_count\": \"inf\"}\n", 10, MILES_EFORMAT,
         "line 2.view_count: field 'view_count' must be a number, got \"inf\""},
        {"[{\"title\": \"a\"}, {\"view_count\": 5}]", 10, MILES_EMISSING, "record 2.title: field 'title' is required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        recs = (PjRecord *)0x1;
        n = -1;
        int rc = file_body(cases[i].body, cases[i].max, &recs, &n, err, sizeof err);
        if (rc != cases[i].rc) fail_msg("case %zu: %s (%s)", i, miles_status_name(rc), err);
        assert_null(recs);
        assert_int_equal(n, 0);
        if (strcmp(err, cases[i].err)) fail_msg("case %zu: \"%s\", want \"%s\"", i, err, cases[i].err);
    }
}

static void test_query_values(void **state) {
    (void)state;
    char err[256];
    int v;
    assert_int_equal(sr_query_limit(NULL, 50, &v, err, sizeof err), MILES_OK);
    assert_int_equal(v, 50);
    const struct { const char *s; int want; } ok[] = {{"1", 1}, {"1000", 1000}, {"42", 42}, {"007", 7}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sr_query_limit(ok[i].s, 50, &v, err, sizeof err), MILES_OK);
        assert_int_equal(v, ok[i].want);
    }
    const char *bad[] = {"0", "1001", "-5", "+5", " 5", "5 ", "abc", "", "5x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(sr_query_limit(bad[i], 50, &v, err, sizeof err), MILES_EINVAL);
        char want[160];
        snprintf(want, sizeof want, "limit: query parameter 'limit' must be an integer in [1, 1000], got \"%s\"", bad[i]);
        assert_string_equal(err, want);
    }
    const struct { const char *s; int want; } flags[] = {{NULL, 0}, {"1", 1}, {"true", 1}, {"0", 0}, {"false", 0}, {"", 0}};
    for (int i = 0; i < 6; i++) {
        v = -1;
        assert_int_equal(sr_query_flag(flags[i].s, "explain", &v, err, sizeof err), MILES_OK);
        assert_int_equal(v, flags[i].want);
    }
    const char *badf[] = {"yes", "2", "TRUE", " 1"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sr_query_flag(badf[i], "explain", &v, err, sizeof err), MILES_EINVAL);
        char want[160];
        snprintf(want, sizeof want, "explain: query parameter 'explain' must be 0, 1, true or false, got \"%s\"", badf[i]);
        assert_string_equal(err, want);
    }
}

/* pj_record_from_json on a text (marked for U+0000 first, as the server does). */
static int record_from(const char *text, const char *where, PjRecord *r, char *err, size_t cap) {
    char *b = dup_body(text);
    size_t n = pj_json_mark_nul(b, strlen(b));
    cJSON *j = cJSON_ParseWithLength(b, n);
    assert_non_null(j);
    int rc = pj_record_from_json(j, where, r, err, cap);
    cJSON_Delete(j);
    free(b);
    return rc;
}

static void test_record_from_json(void **state) {
    (void)state;
    char err[256];
    PjRecord r;
    /* yt-dlp's keys mapped; U+0000 kept inside the title; numbers exact; booleans 1/0;
     * arrays, objects and null skipped; the timestamp (with its hour) wins over upload_date */
    assert_int_equal(record_from("{\"title\": \"a\\u0000b\", \"id\": \"x1\", \"duration\": 12.5, \"repost_count\": 3,"
                                 " \"channel\": \"C\", \"uploader\": \"U\", \"extractor_key\": \"Youtube\","
                                 " \"timestamp\": 1736000000, \"upload_date\": \"20250104\", \"is_live\": true,"
                                 " \"like_count\": 0.1, \"tags\": [\"a\"], \"formats\": {}, \"n\": null}",
                                 "", &r, err, sizeof err), MILES_OK);
    const struct { const char *name, *value; } want[] = {
        {"title", "a"}, {"video_id", "x1"}, {"duration_sec", "12.5"}, {"shares", "3"}, {"channel_name", "C"},
        {"uploader", "U"}, {"platform", "Youtube"}, {"publish_date_approx", "2025-01-04T14:13"},
        {"upload_date_yyyymmdd", "2025-01-04"}, {"is_live", "1"}, {"like_count", "0.10000000000000001"}};
    assert_int_equal(r.n, (int)(sizeof want / sizeof *want));
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_string_equal(r.names[i], want[i].name);
        assert_string_equal(r.values[i], want[i].value);
    }
    assert_int_equal(r.lens[0], 3);
    assert_memory_equal(r.values[0], "a\0b", 4);
    pj_record_free(&r);
    /* no timestamp: upload_date becomes the date; a key whose target is given stays itself */
    assert_int_equal(record_from("{\"title\": \"t\", \"upload_date\": \"20241231\", \"id\": \"i\", \"video_id\": \"v\","
                                 " \"view_count\": 0}", "", &r, err, sizeof err), MILES_OK);
    assert_string_equal(pj_record_get(&r, "view_count"), "0");   /* a count of 0 is data */
    assert_string_equal(pj_record_get(&r, "upload_date"), "2024-12-31");
    assert_string_equal(pj_record_get(&r, "id"), "i");
    assert_string_equal(pj_record_get(&r, "video_id"), "v");
    pj_record_free(&r);
    /* refusals, named with the record's place */
    const struct { const char *text, *where; int rc; const char *err; } bad[] = {
        {"{\"view_count\": 5}", "items[2]", MILES_EMISSING, "items[2].title: field 'title' is required"},
        {"{\"title\": null}", "", MILES_EMISSING, "title: field 'title' is required"},
        {"{\"title\": 5}", "", MILES_EFORMAT, "title: field 'title' must be a string"},
        {"{\"title\": \" \\n\\t\\r \"}", "line 4", MILES_EMISSING, "line 4.title: field 'title' is empty"},
        {"{\"title\": \"\\u0000\"}", "", MILES_OK, ""},   /* U+0000 is a character, not blank */
        {"[1]", "items[0]", MILES_EFORMAT, "items[0]: expected a JSON object"},
        {"{\"title\": \"t\", \"view_count\": -1}", "", MILES_ERANGE, "view_count: field 'view_count' must be >= 0, got -1"},
        {"{\"title\": \"t\", \"comment_count\": true}", "", MILES_EFORMAT,
         "comment_count: field 'comment_count' must be a number, got true"},
        {"{\"title\": \"t\", \"like_count\": \"5\\u0000\"}", "", MILES_EFORMAT,
         "like_count: field 'like_count' must be a number, got \"5\""},
        {"{\"title\": \"t\", \"duration_seconds\": \"\"}", "", MILES_EFORMAT,
         "duration_seconds: field 'duration_seconds' must be a number, got \"\""},
        {"{\"title\": \"t\\u00e9\", \"channel\": \"\xc3(\"}", "", MILES_EFORMAT,
         "channel: field 'channel' is not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = record_from(bad[i].text, bad[i].where, &r, err, sizeof err);
        if (rc != bad[i].rc) fail_msg("case %zu: %s (%s)", i, miles_status_name(rc), err);
        if (rc == MILES_OK) { pj_record_free(&r); continue; }
        if (strcmp(err, bad[i].err)) fail_msg("case %zu: \"%s\", want \"%s\"", i, err, bad[i].err);
        assert_int_equal(r.n, 0);
    }
}

/* \u0000 inside strings becomes one 0xFF mark; an escaped backslash before
 * "u0000" is text; text already holding 0xFF is left alone. */
static void test_mark_nul(void **state) {
    (void)state;
    char a[] = "{\"t\": \"a\\u0000b\", \"u\": \"\\\\u0000\"}";
    size_t n = pj_json_mark_nul(a, strlen(a));
    assert_int_equal(n, strlen(a));
    assert_string_equal(a, "{\"t\": \"a\xff" "b\", \"u\": \"\\\\u0000\"}");
    char b[] = "\"\xff\\u0000\"";
    size_t nb = strlen(b);
    assert_int_equal(pj_json_mark_nul(b, nb), nb);
    assert_string_equal(b, "\"\xff\\u0000\"");
    char c[] = "{\"k\\\"\\u0000\": 1}";   /* an escaped quote does not end the string */
    pj_json_mark_nul(c, strlen(c));
    assert_string_equal(c, "{\"k\\\"\xff\": 1}");
    assert_int_equal(pj_json_mark_nul(NULL, 5), 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_json),
        cmocka_unit_test(test_decimal_strings),
        cmocka_unit_test(test_batch_body),
        cmocka_unit_test(test_file_body),
        cmocka_unit_test(test_query_values),
        cmocka_unit_test(test_record_from_json),
        cmocka_unit_test(test_mark_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
