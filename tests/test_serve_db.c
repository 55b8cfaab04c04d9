/*
 * test_serve_db.c — miles-serve's SQLite store (tools/serve_db.c) without the
 * server: what a stored row reads back as (integers, reals, NULL for what was
 * not given, the filled-feature list as JSON), history newest first, the
 * candidates table keyed by video_id (re-scoring updates the row; ranked by
 * score, then video_id; filtered by platform, 'youtube' when none is given),
 * the request log, and a database locked by another connection: SERVE_DB_BUSY
 * (the server's 503) with nothing half-stored.  Skipped in builds without
 * SQLite.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"
#include "serve_db.h"
#include "helpers.h"

#ifdef MILES_HAVE_SQLITE
#include <sqlite3.h>

static char g_dir[256];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(g_dir, sizeof g_dir, "servedb");
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

static ServeDbRow row(const char *vid, const char *platform, const char *title, double score) {
    ServeDbRow r;
    memset(&r, 0, sizeof r);
    r.video_id = vid;
    r.platform = platform;
    r.title = title;
    r.view_count = r.like_count = r.comment_count = r.duration_seconds = NAN;
    r.score = score;
    r.velocity = 100.5;
    r.confidence = 0.2;
    r.is_viral = score >= 0.5;
    r.model_version = "test-1";
    r.processing_time_ms = 3.25;
    return r;
}

static const cJSON *item(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i); }
static const char *str_of(const cJSON *o, const char *k) { return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k)); }
static double num_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_store_and_read(void **state) {
    (void)state;
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/a.db", g_dir);
    ServeDb *db = NULL;
    assert_int_equal(serve_db_open(&db, path, err, sizeof err), MILES_OK);
    ServeDbRow rows[4] = {row("v1", NULL, "first", 0.4), row(NULL, NULL, "no id", 0.9), row("", NULL, "empty id", 0.1),
                          row("v2", "tiktok", "third", 0.7)};
    rows[3].view_count = 1234;
    rows[3].comment_count = 2.5;     /* not an integer: stored as a real */
    rows[3].duration_seconds = 12.5;
    rows[3].supplied = 1u | 2u;
    rows[3].filled = 1u << 2;
    rows[3].source = "batch";
    assert_int_equal(serve_db_store(db, rows, 4, err, sizeof err), MILES_OK);
    int64_t np = -1, nc = -1, ne = -1;
    assert_int_equal(serve_db_counts(db, &np, &nc, &ne), MILES_OK);
    assert_true(np == 4 && nc == 2 && ne == 0);   /* rows without a video_id (or an empty one) are logged, not candidates */

    cJSON *h = NULL;
    assert_int_equal(serve_db_history(db, 2, &h, err, sizeof err), MILES_OK);
    assert_int_equal(cJSON_GetArraySize(h), 2);   /* the limit; newest first */
    const cJSON *c = item(h, 0);
    assert_string_equal(str_of(c, "title"), "third");
    assert_string_equal(str_of(c, "source"), "batch");
    assert_string_equal(str_of(c, "platform"), "tiktok");
    assert_true(num_of(c, "view_count") == 1234);
    assert_true(num_of(c, "comment_count") == 2.5);
    assert_true(num_of(c, "duration_seconds") == 12.5);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c, "like_count")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "is_viral")));
    assert_true(num_of(c, "viral_score") == 0.7 && num_of(c, "predicted_velocity") == 100.5);
    const cJSON *filled = cJSON_GetObjectItemCaseSensitive(c, "filled");
    assert_true(cJSON_IsArray(filled) && cJSON_GetArraySize(filled) == 1);
    assert_string_equal(cJSON_GetArrayItem(filled, 0)->valuestring, miles_feature_names[2]);
    assert_string_equal(str_of(item(h, 1), "title"), "empty id");
    assert_string_equal(str_of(item(h, 1), "source"), "predict");   /* the default */
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(item(h, 1), "is_viral")));   /* 0.1 */
    cJSON_Delete(h);

    /* candidates: by score; platform defaults to youtube; re-scoring a video updates its row */
    cJSON *a = NULL;
    assert_int_equal(serve_db_candidates(db, 10, NULL, &a, err, sizeof err), MILES_OK);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    assert_string_equal(str_of(item(a, 0), "video_id"), "v2");
    assert_string_equal(str_of(item(a, 1), "video_id"), "v1");
    assert_string_equal(str_of(item(a, 1), "platform"), "youtube");
    cJSON_Delete(a);
    ServeDbRow again = row("v1", NULL, "first, retitled", 0.95);
    ServeDbRow tie = row("v0", "youtube", "tie", 0.95);
    assert_int_equal(serve_db_store(db, &again, 1, err, sizeof err), MILES_OK);
    assert_int_equal(serve_db_store(db, &tie, 1, err, sizeof err), MILES_OK);
    serve_db_counts(db, &np, &nc, &ne);
    assert_true(np == 6 && nc == 3);
    assert_int_equal(serve_db_candidates(db, 10, NULL, &a, err, sizeof err), MILES_OK);
    assert_int_equal(cJSON_GetArraySize(a), 3);
    const char *order[3] = {"v0", "v1", "v2"};   /* equal scores (0.95): by video_id */
    for (int i = 0; i < 3; i++) assert_string_equal(str_of(item(a, i), "video_id"), order[i]);
    cJSON_Delete(a);
    assert_int_equal(serve_db_candidates(db, 10, "youtube", &a, err, sizeof err), MILES_OK);
    assert_int_equal(cJSON_GetArraySize(a), 2);   /* v2 is on tiktok */
    assert_string_equal(str_of(item(a, 0), "video_id"), "v0");   /* equal scores: by video_id */
    assert_string_equal(str_of(item(a, 1), "video_id"), "v1");
    assert_string_equal(str_of(item(a, 1), "title"), "first, retitled");
    assert_true(num_of(item(a, 1), "miles_score") == 0.95);
    cJSON_Delete(a);
    assert_int_equal(serve_db_candidates(db, 1, NULL, &a, err, sizeof err), MILES_OK);
    assert_int_equal(cJSON_GetArraySize(a), 1);
    cJSON_Delete(a);
    assert_int_equal(serve_db_candidates(db, 10, "instagram", &a, err, sizeof err), MILES_OK);
    assert_int_equal(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);

    assert_int_equal(serve_db_event(db, "predict", 1.5, 1, NULL), MILES_OK);
    assert_int_equal(serve_db_event(db, "predict", NAN, 0, "bad body"), MILES_OK);
    serve_db_counts(db, NULL, NULL, &ne);
    assert_int_equal(ne, 2);
    serve_db_close(db);

    /* reopened: everything is still there (the schema is created only if missing) */
    assert_int_equal(serve_db_open(&db, path, err, sizeof err), MILES_OK);
    serve_db_counts(db, &np, &nc, &ne);
    assert_true(np == 6 && nc == 3 && ne == 2);
    serve_db_close(db);
}

static void test_locked_and_bad_path(void **state) {
    (void)state;
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/locked.db", g_dir);
    ServeDb *db = NULL;
    assert_int_equal(serve_db_open(&db, path, err, sizeof err), MILES_OK);
    serve_db_set_busy_ms(db, 50);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);   /* holds the write lock */
    ServeDbRow r = row("v9", NULL, "waits", 0.3);
    err[0] = 0;
    assert_int_equal(serve_db_store(db, &r, 1, err, sizeof err), SERVE_DB_BUSY);
    printf("  locked: %s\n", err);
    assert_non_null(strstr(err, "database"));
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    int64_t np = -1, nc = -1;
    serve_db_counts(db, &np, &nc, NULL);
    assert_true(np == 0 && nc == 0);   /* nothing half-stored */
    assert_int_equal(serve_db_store(db, &r, 1, err, sizeof err), MILES_OK);   /* and it works once free */
    serve_db_counts(db, &np, &nc, NULL);
    assert_true(np == 1 && nc == 1);
    sqlite3_close(other);
    serve_db_close(db);

    snprintf(path, sizeof path, "%s/no/such/dir/x.db", g_dir);
    db = (ServeDb *)0x1;
    assert_int_equal(serve_db_open(&db, path, err, sizeof err), MILES_EIO);
    assert_null(db);
    assert_non_null(strstr(err, "cannot open database"));
    assert_non_null(strstr(err, path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_and_read),
        cmocka_unit_test(test_locked_and_bad_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
#else
int main(void) {
    printf("test_serve_db: SKIP (built without SQLite)\n");
    return 0;
}
#endif
