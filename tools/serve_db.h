/*
 * serve_db.h — miles-serve's SQLite store: every prediction (predictions),
 * scored candidates keyed by video_id (candidates), request events (analytics).
 * WAL mode, prepared statements, one connection guarded by a mutex.
 */
#ifndef MILES_SERVE_DB_H
#define MILES_SERVE_DB_H

#include <cjson/cJSON.h>
#include <stdint.h>

typedef struct ServeDb ServeDb;

/* One scored item as stored. Strings may be NULL. */
typedef struct ServeDbRow {
    const char *video_id, *platform, *title, *description, *channel_name, *upload_date, *source;
    double view_count, like_count, comment_count, duration_seconds; /* NaN = not given */
    double score, velocity, confidence;
    int is_viral;
    uint32_t supplied, filled;
    const char *model_version;
    double processing_time_ms;
} ServeDbRow;

/* Returned (> 0) by serve_db_store/_history/_candidates when the database
 * stayed locked by another connection past the busy timeout: the server
 * answers 503 + Retry-After, never 200 with the row lost. */
#define SERVE_DB_BUSY 1

/* Open (create) the database and its tables; MILES_* status, message in err. */
int serve_db_open(ServeDb **out, const char *path, char *err, size_t errcap);
void serve_db_close(ServeDb *db);
/* How long a write waits for a lock held by another connection (default 5000 ms). */
void serve_db_set_busy_ms(ServeDb *db, int ms);
/* Store n rows in one transaction (predictions log + candidates upsert for rows with a video_id). */
int serve_db_store(ServeDb *db, const ServeDbRow *rows, int n, char *err, size_t errcap);
/* Log a request event (success 0/1; error message may be NULL). */
int serve_db_event(ServeDb *db, const char *event_type, double processing_time_ms, int success, const char *error);
/* Recent predictions (newest first) / candidates ranked by score (platform may be NULL); JSON array. */
int serve_db_history(ServeDb *db, int limit, cJSON **out, char *err, size_t errcap);
int serve_db_candidates(ServeDb *db, int limit, const char *platform, cJSON **out, char *err, size_t errcap);
/* Row counts of the tables (for /health and tests). */
int serve_db_counts(ServeDb *db, int64_t *predictions, int64_t *candidates, int64_t *events);

#endif
