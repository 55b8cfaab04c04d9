/*
 * serve_db.c — SQLite store of miles-serve (schema in docs/serving.md).
 *
 * Adapted from the original Supabase migration: candidates (one row per
 * video_id, re-scoring updates it), analytics (request events), plus a
 * predictions log (every scored item; the original had none).  Timestamps are
 * UTC ISO-8601 text.  WAL journal: readers never block the writer, and a commit
 * survives a crash of the process (synchronous=NORMAL; FULL would also
 * survive power loss at one fsync per request).
 */
#include "serve_db.h"
#include "miles.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MILES_HAVE_SQLITE
#include <sqlite3.h>

struct ServeDb {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *ins_pred, *ups_cand, *ins_event, *hist, *cand_all, *cand_plat, *begin, *commit, *rollback;
};

static const char *schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA busy_timeout=5000;"
    "CREATE TABLE IF NOT EXISTS candidates ("
    "  id INTEGER PRIMARY KEY,"
    "  video_id TEXT UNIQUE NOT NULL,"
    "  platform TEXT DEFAULT 'youtube',"
    "  title TEXT NOT NULL,"
    "  description TEXT,"
    "  channel_name TEXT,"
    "  upload_date TEXT,"
    "  view_count INTEGER, like_count INTEGER, comment_count INTEGER, duration_seconds REAL,"
    "  miles_score REAL NOT NULL,"
    "  predicted_velocity REAL,"
    "  is_viral INTEGER NOT NULL,"
    "  model_version TEXT NOT NULL,"
    "  scored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));"
    "CREATE INDEX IF NOT EXISTS candidates_score ON candidates(miles_score DESC);"
    "CREATE INDEX IF NOT EXISTS candidates_platform_score ON candidates(platform, miles_score DESC);"
    "CREATE TABLE IF NOT EXISTS predictions ("
    "  id INTEGER PRIMARY KEY,"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
    "  source TEXT NOT NULL,"
    "  video_id TEXT, platform TEXT, title TEXT NOT NULL, description TEXT, channel_name TEXT, upload_date TEXT,"
    "  view_count INTEGER, like_count INTEGER, comment_count INTEGER, duration_seconds REAL,"
    "  viral_score REAL NOT NULL, is_viral INTEGER NOT NULL, predicted_velocity REAL, confidence REAL,"
    "  supplied TEXT, filled TEXT,"
    "  model_version TEXT NOT NULL, processing_time_ms REAL);"
    "CREATE INDEX IF NOT EXISTS predictions_created ON predictions(created_at DESC);"
    "CREATE TABLE IF NOT EXISTS analytics ("
    "  id INTEGER PRIMARY KEY,"
    "  event_type TEXT NOT NULL,"
    "  processing_time_ms REAL,"
    "  success INTEGER NOT NULL DEFAULT 1,"
    "  error_message TEXT,"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));"
    "CREATE INDEX IF NOT EXISTS analytics_event ON analytics(event_type, created_at DESC);";

static int prep(ServeDb *d, const char *sql, sqlite3_stmt **st, char *err, size_t cap) {
    if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        snprintf(err, cap, "sqlite: %s", sqlite3_errmsg(d->db));
        return MILES_EIO;
    }
    return MILES_OK;
}

void serve_db_close(ServeDb *d) {
    if (!d) return;
    sqlite3_stmt *all[] = {d->ins_pred, d->ups_cand, d->ins_event, d->hist, d->cand_all, d->cand_plat,
                           d->begin, d->commit, d->rollback};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sqlite3_finalize(all[i]);
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int serve_db_open(ServeDb **out, const char *path, char *err, size_t cap) {
    *out = NULL;
    ServeDb *d = calloc(1, sizeof *d);
    if (!d) { snprintf(err, cap, "out of memory"); return MILES_ENOMEM; }
    pthread_mutex_init(&d->mu, NULL);
    if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, cap, "%s: cannot open database: %s", path, d->db ? sqlite3_errmsg(d->db) : "out of memory");
        serve_db_close(d);
        return MILES_EIO;
    }
    char *msg = NULL;
    if (sqlite3_exec(d->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, cap, "%s: %s", path, msg ? msg : "schema failed");
        sqlite3_free(msg);
        serve_db_close(d);
        return MILES_EIO;
    }
    int s = MILES_OK;
    if (!s) s = prep(d, "INSERT INTO predictions(source, video_id, platform, title, description, channel_name, upload_date,"
                        " view_count, like_count, comment_count, duration_seconds, viral_score, is_viral, predicted_velocity,"
                        " confidence, supplied, filled, model_version, processing_time_ms)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)", &d->ins_pred, err, cap);
    if (!s) s = prep(d, "INSERT INTO candidates(video_id, platform, title, description, channel_name, upload_date,"
                        " view_count, like_count, comment_count, duration_seconds, miles_score, predicted_velocity, is_viral,"
                        " model_version, scored_at)"
                        " VALUES(?1, COALESCE(?2,'youtube'), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                        "  strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
                        " ON CONFLICT(video_id) DO UPDATE SET platform=excluded.platform, title=excluded.title,"
                        "  description=excluded.description, channel_name=excluded.channel_name,"
                        "  upload_date=excluded.upload_date, view_count=excluded.view_count, like_count=excluded.like_count,"
                        "  comment_count=excluded.comment_count, duration_seconds=excluded.duration_seconds,"
                        "  miles_score=excluded.miles_score, predicted_velocity=excluded.predicted_velocity,"
                        "  is_viral=excluded.is_viral, model_version=excluded.model_version, scored_at=excluded.scored_at",
                     &d->ups_cand, err, cap);
    if (!s) s = prep(d, "INSERT INTO analytics(event_type, processing_time_ms, success, error_message) VALUES(?1,?2,?3,?4)",
                     &d->ins_event, err, cap);
    if (!s) s = prep(d, "SELECT id, created_at, source, video_id, platform, title, view_count, like_count, comment_count,"
                        " duration_seconds, viral_score, is_viral, predicted_velocity, confidence, filled, model_version,"
                        " processing_time_ms FROM predictions ORDER BY id DESC LIMIT ?1", &d->hist, err, cap);
    const char *cand_cols = "SELECT video_id, platform, title, channel_name, upload_date, view_count, like_count,"
                            " comment_count, duration_seconds, miles_score, predicted_velocity, is_viral, model_version,"
                            " scored_at FROM candidates ";
    char sql[1024];
    snprintf(sql, sizeof sql, "%s ORDER BY miles_score DESC, video_id LIMIT ?1", cand_cols);
    if (!s) s = prep(d, sql, &d->cand_all, err, cap);
    snprintf(sql, sizeof sql, "%s WHERE platform = ?2 ORDER BY miles_score DESC, video_id LIMIT ?1", cand_cols);
    if (!s) s = prep(d, sql, &d->cand_plat, err, cap);
    if (!s) s = prep(d, "BEGIN IMMEDIATE", &d->begin, err, cap);
    if (!s) s = prep(d, "COMMIT", &d->commit, err, cap);
    if (!s) s = prep(d, "ROLLBACK", &d->rollback, err, cap);
    if (s) { serve_db_close(d); return s; }
    *out = d;
    return MILES_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}
static void bind_num(sqlite3_stmt *st, int i, double v, int as_int) {
    if (!isfinite(v)) sqlite3_bind_null(st, i);
    else if (as_int && v == floor(v) && fabs(v) < 9e18) sqlite3_bind_int64(st, i, (sqlite3_int64)v);
    else sqlite3_bind_double(st, i, v);
}

static char *names_of(uint32_t mask) {
    cJSON *a = cJSON_CreateArray();
    for (int f = 0; f < MILES_NUM_FEATURES; f++)
        if (mask >> f & 1u) cJSON_AddItemToArray(a, cJSON_CreateString(miles_feature_names[f]));
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

static int is_busy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

void serve_db_set_busy_ms(ServeDb *d, int ms) {
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    sqlite3_busy_timeout(d->db, ms);
    pthread_mutex_unlock(&d->mu);
}

static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

int serve_db_store(ServeDb *d, const ServeDbRow *rows, int n, char *err, size_t cap) {
    pthread_mutex_lock(&d->mu);
    int rc = step_done(d->begin);
    for (int i = 0; !rc && i < n; i++) {
        const ServeDbRow *r = &rows[i];
        sqlite3_stmt *st = d->ins_pred;
        char *sup = names_of(r->supplied), *fil = names_of(r->filled);
        bind_text(st, 1, r->source ? r->source : "predict");
        bind_text(st, 2, r->video_id);
        bind_text(st, 3, r->platform);
        bind_text(st, 4, r->title);
        bind_text(st, 5, r->description);
        bind_text(st, 6, r->channel_name);
        bind_text(st, 7, r->upload_date);
        bind_num(st, 8, r->view_count, 1);
        bind_num(st, 9, r->like_count, 1);
        bind_num(st, 10, r->comment_count, 1);
        bind_num(st, 11, r->duration_seconds, 0);
        bind_num(st, 12, r->score, 0);
        sqlite3_bind_int(st, 13, r->is_viral);
        bind_num(st, 14, r->velocity, 0);
        bind_num(st, 15, r->confidence, 0);
        bind_text(st, 16, sup);
        bind_text(st, 17, fil);
        bind_text(st, 18, r->model_version);
        bind_num(st, 19, r->processing_time_ms, 0);
        rc = step_done(st);
        free(sup);
        free(fil);
        if (rc || !r->video_id || !*r->video_id) continue;
        st = d->ups_cand;
        bind_text(st, 1, r->video_id);
        bind_text(st, 2, r->platform);
        bind_text(st, 3, r->title);
        bind_text(st, 4, r->description);
        bind_text(st, 5, r->channel_name);
        bind_text(st, 6, r->upload_date);
        bind_num(st, 7, r->view_count, 1);
        bind_num(st, 8, r->like_count, 1);
        bind_num(st, 9, r->comment_count, 1);
        bind_num(st, 10, r->duration_seconds, 0);
        bind_num(st, 11, r->score, 0);
        bind_num(st, 12, r->velocity, 0);
        sqlite3_bind_int(st, 13, r->is_viral);
        bind_text(st, 14, r->model_version);
        rc = step_done(st);
    }
    if (rc) {
        snprintf(err, cap, "database: %s", sqlite3_errmsg(d->db));
        step_done(d->rollback);
    } else if ((rc = step_done(d->commit)) != 0) {
        snprintf(err, cap, "database commit: %s", sqlite3_errmsg(d->db));
        step_done(d->rollback);
    }
    pthread_mutex_unlock(&d->mu);
    return !rc ? MILES_OK : is_busy(rc) ? SERVE_DB_BUSY : MILES_EIO;
}

int serve_db_event(ServeDb *d, const char *type, double ms, int success, const char *error) {
    pthread_mutex_lock(&d->mu);
    bind_text(d->ins_event, 1, type);
    bind_num(d->ins_event, 2, ms, 0);
    sqlite3_bind_int(d->ins_event, 3, success);
    bind_text(d->ins_event, 4, error);
    int rc = step_done(d->ins_event);
    pthread_mutex_unlock(&d->mu);
    return rc ? MILES_EIO : MILES_OK;
}

/* Row of a statement as a JSON object (column names as keys). */
static cJSON *row_json(sqlite3_stmt *st) {
    cJSON *o = cJSON_CreateObject();
    int nc = sqlite3_column_count(st);
    for (int c = 0; c < nc; c++) {
        const char *name = sqlite3_column_name(st, c);
        switch (sqlite3_column_type(st, c)) {
        case SQLITE_INTEGER:
            if (!strcmp(name, "is_viral")) cJSON_AddBoolToObject(o, name, sqlite3_column_int(st, c));
            else cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, c));
            break;
        case SQLITE_FLOAT: cJSON_AddNumberToObject(o, name, sqlite3_column_double(st, c)); break;
        case SQLITE_NULL: cJSON_AddNullToObject(o, name); break;
        default: {
            const char *t = (const char *)sqlite3_column_text(st, c);
            cJSON *parsed = !strcmp(name, "filled") ? cJSON_Parse(t) : NULL;
            if (parsed) cJSON_AddItemToObject(o, name, parsed);
            else cJSON_AddStringToObject(o, name, t ? t : "");
        }
        }
    }
    return o;
}

static int query(ServeDb *d, sqlite3_stmt *st, cJSON **out, char *err, size_t cap) {
    cJSON *a = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) cJSON_AddItemToArray(a, row_json(st));
    if (rc != SQLITE_DONE) snprintf(err, cap, "database: %s", sqlite3_errmsg(d->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) { cJSON_Delete(a); return is_busy(rc) ? SERVE_DB_BUSY : MILES_EIO; }
    *out = a;
    return MILES_OK;
}

int serve_db_history(ServeDb *d, int limit, cJSON **out, char *err, size_t cap) {
    pthread_mutex_lock(&d->mu);
    sqlite3_bind_int(d->hist, 1, limit);
    int s = query(d, d->hist, out, err, cap);
    pthread_mutex_unlock(&d->mu);
    return s;
}

int serve_db_candidates(ServeDb *d, int limit, const char *platform, cJSON **out, char *err, size_t cap) {
    pthread_mutex_lock(&d->mu);
    sqlite3_stmt *st = platform ? d->cand_plat : d->cand_all;
    sqlite3_bind_int(st, 1, limit);
    if (platform) bind_text(st, 2, platform);
    int s = query(d, st, out, err, cap);
    pthread_mutex_unlock(&d->mu);
    return s;
}

static int64_t count_of(ServeDb *d, const char *table) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int serve_db_counts(ServeDb *d, int64_t *p, int64_t *c, int64_t *e) {
    pthread_mutex_lock(&d->mu);
    if (p) *p = count_of(d, "predictions");
    if (c) *c = count_of(d, "candidates");
    if (e) *e = count_of(d, "analytics");
    pthread_mutex_unlock(&d->mu);
    return MILES_OK;
}

#else /* no SQLite in this build: the server runs without a store (--no-db) */

int serve_db_open(ServeDb **out, const char *path, char *err, size_t cap) {
    *out = NULL;
    snprintf(err, cap, "built without SQLite (install libsqlite3-dev and rebuild, or run with --no-db)");
    return MILES_EUNSUPPORTED;
}
void serve_db_close(ServeDb *d) { (void)d; }
int serve_db_store(ServeDb *d, const ServeDbRow *r, int n, char *err, size_t cap) { return MILES_EUNSUPPORTED; }
void serve_db_set_busy_ms(ServeDb *d, int ms) { (void)d; (void)ms; }
int serve_db_event(ServeDb *d, const char *t, double ms, int s, const char *e) { return MILES_EUNSUPPORTED; }
int serve_db_history(ServeDb *d, int l, cJSON **o, char *err, size_t cap) { return MILES_EUNSUPPORTED; }
int serve_db_candidates(ServeDb *d, int l, const char *p, cJSON **o, char *err, size_t cap) { return MILES_EUNSUPPORTED; }
int serve_db_counts(ServeDb *d, int64_t *p, int64_t *c, int64_t *e) { return MILES_EUNSUPPORTED; }
#endif
