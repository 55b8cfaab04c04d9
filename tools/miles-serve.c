/*
 * miles-serve — HTTP prediction server (libmicrohttpd) + SQLite store + web page.
 *
 *   miles-serve --checkpoint checkpoints/run1/best.safetensors --port 8080
 *
 * One checkpoint is loaded once into a MilesPredictor: the features, scaler,
 * tokenizer and threshold are the ones training used (the original service
 * computed other features and applied no scaler).  Connections are served by
 * a bounded pool of worker threads (--workers, libmicrohttpd's thread pool on
 * epoll: an idle or slow connection costs a socket, not a thread) with a total
 * and a per-IP connection cap and an inactivity timeout.  Workers parse and
 * validate requests (serve_request.c) and hand records to ONE inference thread, which owns the model (it keeps its
 * activations) and runs the records of all requests waiting at that moment as
 * one batch (micro-batching), so concurrent single-title requests share a
 * forward pass.  Every prediction is stored in SQLite (serve_db.c).
 * Routes (the table `routes` below), errors and the security model (Host
 * check, CORS, bearer token, limits): docs/serving.md.
 */
#include "miles.h"
#include "explain_json.h"
#include "predict_json.h"
#include "serve_db.h"
#include "serve_request.h"
#include "serve_ideas.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef MILES_HAVE_MHD
int main(void) {
    fprintf(stderr, "miles-serve: built without libmicrohttpd (apt-get install libmicrohttpd-dev, then rebuild)\n");
    return 1;
}
#else
#include <microhttpd.h>

/* ---------------------------------------------------------------- state */

enum { ST_LOADING = 0, ST_READY = 1, ST_FAILED = 2 };

/* One scoring request in the inference queue.  Its HTTP connection is
 * suspended meanwhile (MHD_suspend_connection) and resumed by the inference
 * thread when the job is done, so no worker thread ever waits on the model:
 * MHD binds each connection to one worker for its lifetime, and a worker
 * blocked on a job held up the other connections it served (8 connections
 * landed on 4-5 workers, so batches never grew past 3 and every second
 * request waited for a neighbour's forward pass). */
typedef struct Job {
    const MilesRecord *recs;
    int n;
    MilesPrediction *out;
    int status;
    char err[1024];
    struct MHD_Connection *conn;  /* resumed when the job is done */
    struct Job *next;
    int explain;                  /* /predict?explain=1: explain recs[0] after scoring */
    cJSON *explanation;           /* set by the inference thread (owned by the caller) */
    char explain_err[512];
} Job;

static struct {
    const char *ckpt, *vocab, *host, *db_path, *port_file;
    char web_dir[4096];
    int port, threads, max_batch, max_items, lazy, no_db, quiet;
    size_t max_body;
    /* limits and access (docs/serving.md, security model) */
    int workers, max_conn, max_conn_per_ip, timeout_s, max_explain, db_busy_ms;
    int loopback, bound_port;   /* Host header checked when bound to loopback */
    const char *cors;           /* Access-Control-Allow-Origin value, NULL = no CORS */
    char *token;                /* bearer token (--token-file), NULL = no auth */
    size_t token_len;
    atomic_int explain_inflight;
    MilesPredictor *pred;
    atomic_int state;
    char load_err[2048];
    ServeDb *db;
    char db_file[4096];
    int db_created; /* this run created db_file: a failed start removes it again */
    /* inference queue */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    Job *head, *tail;
    int stop;
    atomic_int inflight, draining;  /* jobs submitted and not yet answered; shutting down */
    atomic_long requests, predictions, batches;
    time_t started;
} S;

static double now_ms(void) { return 1e3 * tool_now(); }

/* ---------------------------------------------------------------- inference */

static const char *g_device;                 /* --device (NULL: cpu) */
static MilesPrecision g_precision;           /* --precision */

static void *load_main(void *arg) {
    (void)arg;
    MilesPredictorOptions po;
    miles_predictor_options_default(&po);
    po.vocab_dir = S.vocab;
    po.device = g_device;
    po.precision = g_precision;
    MilesPredictor *p = NULL;
    int s = miles_predictor_open(&p, S.ckpt, &po);
    if (s != MILES_OK) {
        snprintf(S.load_err, sizeof S.load_err, "%s", miles_last_error());
        atomic_store(&S.state, ST_FAILED);
        fprintf(stderr, "miles-serve: model not loaded: %s\n", S.load_err);
        return NULL;
    }
    S.pred = p;
    atomic_store(&S.state, ST_READY);
    if (!S.quiet) fprintf(stderr, "miles-serve: model %s loaded (%zu parameters, threshold %.4f, max_len %d)\n",
                          miles_predictor_version(p), miles_model_num_params(miles_predictor_model(p)),
                          miles_predictor_threshold(p), miles_predictor_max_len(p));
    return NULL;
}

/* The one thread that runs the model: takes every queued job (up to
 * max_batch records) and scores them in one call. */
static void *infer_main(void *arg) {
    (void)arg;
    tool_set_threads(S.threads); /* OpenMP settings are per thread */
    MilesRecord *recs = NULL;
    MilesPrediction *outs = NULL;
    int cap = 0;
    for (;;) {
        pthread_mutex_lock(&S.qmu);
        while (!S.head && !S.stop) pthread_cond_wait(&S.qcv, &S.qmu);
        if (!S.head && S.stop) { pthread_mutex_unlock(&S.qmu); break; }
        Job *first = S.head, *last = S.head;
        int total = first->n;
        while (last->next && total + last->next->n <= S.max_batch) { last = last->next; total += last->n; }
        S.head = last->next;
        if (!S.head) S.tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&S.qmu);

        int s = MILES_OK;
        if (first == last) {
            s = miles_predictor_predict(S.pred, first->recs, first->n, first->out);
            first->status = s;
            if (s) snprintf(first->err, sizeof first->err, "%s", miles_last_error());
        } else {
            if (total > cap) {
                free(recs); free(outs);
                recs = malloc(sizeof(MilesRecord) * total);
                outs = malloc(sizeof(MilesPrediction) * total);
                cap = recs && outs ? total : 0;
            }
            if (cap) {
                int k = 0;
                for (Job *j = first; j; j = j->next) { memcpy(recs + k, j->recs, sizeof(MilesRecord) * j->n); k += j->n; }
                s = miles_predictor_predict(S.pred, recs, total, outs);
            } else s = MILES_ENOMEM;
            if (s == MILES_OK) {
                int k = 0;
                for (Job *j = first; j; j = j->next) { memcpy(j->out, outs + k, sizeof(MilesPrediction) * j->n); k += j->n; j->status = MILES_OK; }
            } else {
                /* one bad request must not fail the others: score each job alone */
                for (Job *j = first; j; j = j->next) {
                    j->status = miles_predictor_predict(S.pred, j->recs, j->n, j->out);
                    if (j->status) snprintf(j->err, sizeof j->err, "%s", miles_last_error());
                }
            }
        }
        /* explanations run here too (the predictor locks its model for them anyway) */
        for (Job *j = first; j; j = j->next)
            if (j->explain && j->status == MILES_OK && j->n >= 1 &&
                explain_record_json(S.pred, &j->recs[0], NULL, &j->explanation) != MILES_OK)
                snprintf(j->explain_err, sizeof j->explain_err, "%s", miles_last_error());
        atomic_fetch_add(&S.batches, 1);
        /* a resumed connection's worker may answer and free its job at once:
         * read next first */
        for (Job *j = first, *nx; j; j = nx) {
            nx = j->next;
            MHD_resume_connection(j->conn);
        }
    }
    free(recs); free(outs);
    return NULL;
}

/* Queue a job for the inference thread (which resumes j->conn when done). */
static void infer_submit(Job *j) {
    pthread_mutex_lock(&S.qmu);
    j->next = NULL;
    if (S.tail) S.tail->next = j; else S.head = j;
    S.tail = j;
    pthread_cond_signal(&S.qcv);
    pthread_mutex_unlock(&S.qmu);
}

/* ---------------------------------------------------------------- responses */

typedef struct Req {
    char *body;
    size_t len, cap;
    int too_big;
    int explain;        /* ?explain=1, and it holds one of the --max-explain slots */
    double t0;
    /* scoring in flight (score_submit .. score_reply); the connection is
     * suspended while the job is queued or running (job.conn set) */
    Job job;
    PjRecord *recs;
    MilesRecord *rv;
    MilesPrediction *out;
    int nrecs, single;
    const char *source, *item_prefix;
} Req;

/* Free the records and outputs of a scoring request. */
static void req_free_scoring(Req *q) {
    sr_free_records(q->recs, q->nrecs);
    free(q->rv);
    free(q->out);
    cJSON_Delete(q->job.explanation);
    q->recs = NULL, q->rv = NULL, q->out = NULL, q->nrecs = 0, q->job.explanation = NULL;
}

/* Headers every response carries; extra (name, value) pairs may follow. */
static enum MHD_Result send_text_h(struct MHD_Connection *c, unsigned status, char *text, const char *ctype,
                                   const char *h1, const char *v1, const char *h2, const char *v2) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(text); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", ctype);
    /* CORS only when asked for (--cors ORIGIN): with "*" any web page the user
     * opens could read /history and post predictions */
    if (S.cors) MHD_add_response_header(r, "Access-Control-Allow-Origin", S.cors);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (h1 && v1) MHD_add_response_header(r, h1, v1);
    if (h2 && v2) MHD_add_response_header(r, h2, v2);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *text, const char *ctype,
                                 const char *allow) {
    return send_text_h(c, status, text, ctype, "Allow", allow, NULL, NULL);
}

static enum MHD_Result send_json_h(struct MHD_Connection *c, unsigned status, cJSON *j, const char *h1,
                                   const char *v1, const char *h2, const char *v2) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return MHD_NO;
    return send_text_h(c, status, s, "application/json; charset=utf-8", h1, v1, h2, v2);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cJSON *j, const char *allow) {
    return send_json_h(c, status, j, "Allow", allow, NULL, NULL);
}

/* The offending field of a message: "items[2].view_count: ...", "column 'views'", "field 'title'". */
static void field_of(const char *msg, char *field, size_t cap) {
    field[0] = 0;
    /* a leading "path: " (no spaces) names it best: "items[1].view_count: ..." */
    const char *colon = strstr(msg, ": ");
    if (colon && colon > msg && colon - msg < 100 && !memchr(msg, ' ', colon - msg)) {
        snprintf(field, cap, "%.*s", (int)(colon - msg), msg);
        return;
    }
    const char *q;
    if ((q = strstr(msg, "column '")) || (q = strstr(msg, "field '"))) {
        q = strchr(q, '\'') + 1;
        const char *e = strchr(q, '\'');
        if (e) snprintf(field, cap, "%.*s", (int)(e - q), q);
    }
}

/* An error body {"error", "field", "status"} with up to two extra headers. */
static enum MHD_Result send_error_h(struct MHD_Connection *c, unsigned status, const char *msg, const char *h1,
                                    const char *v1, const char *h2, const char *v2) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    char field[128];
    field_of(msg, field, sizeof field);
    if (field[0]) cJSON_AddStringToObject(j, "field", field);
    cJSON_AddNumberToObject(j, "status", status);
    return send_json_h(c, status, j, h1, v1, h2, v2);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg, const char *allow) {
    return send_error_h(c, status, msg, "Allow", allow, NULL, NULL);
}

/* HTTP status of a library status: the client's fault (400) or ours (500). */
static unsigned http_status_of(int s) {
    switch (s) {
    case MILES_EFORMAT: case MILES_EINVAL: case MILES_ENAN: case MILES_EMISSING: case MILES_ERANGE: case MILES_ESHAPE:
        return 400;
    default: return 500;
    }
}

/* ---------------------------------------------------------------- predictions */

static cJSON *prediction_json(const PjRecord *r, const MilesPrediction *o) {
    cJSON *j = cJSON_CreateObject();
    const char *vid = pj_record_get(r, "video_id");
    if (vid) cJSON_AddStringToObject(j, "video_id", vid);
    cJSON_AddStringToObject(j, "title", pj_record_get(r, "title"));
    cJSON_AddNumberToObject(j, "viral_score", o->viral_score);
    if (miles_predictor_calibration(S.pred)) cJSON_AddNumberToObject(j, "viral_score_model", o->viral_score_model);
    cJSON_AddBoolToObject(j, "is_viral", o->is_viral);
    cJSON_AddNumberToObject(j, "predicted_velocity", o->predicted_velocity);
    cJSON_AddNumberToObject(j, "confidence", o->confidence);
    cJSON *f = cJSON_AddObjectToObject(j, "features");
    cJSON_AddItemToObject(f, "supplied", pj_feature_list(o->supplied));
    cJSON_AddItemToObject(f, "derived", pj_feature_list(o->available & ~o->supplied));
    cJSON_AddItemToObject(f, "filled", pj_feature_list(o->filled));
    cJSON_AddBoolToObject(j, "title_truncated", o->truncated);
    return j;
}

static double num_field(const PjRecord *r, const char *a, const char *b) {
    const char *v = pj_record_get(r, a);
    if (!v && b) v = pj_record_get(r, b);
    if (!v) return NAN;
    char *e;
    double x = strtod(v, &e);
    return e != v ? x : NAN;
}

static const char *str_field(const PjRecord *r, const char *a, const char *b) {
    const char *v = pj_record_get(r, a);
    return v ? v : b ? pj_record_get(r, b) : NULL;
}

/* Store predictions: MILES_OK, SERVE_DB_BUSY (locked past --db-busy-ms) or
 * another failure, with the message in err. */
static int store(const PjRecord *recs, const MilesPrediction *o, int n, const char *source, double ms, char *err,
                 size_t errcap) {
    ServeDbRow *rows = calloc(n, sizeof *rows);
    if (!rows) { snprintf(err, errcap, "out of memory"); return MILES_ENOMEM; }
    for (int i = 0; i < n; i++) {
        const PjRecord *r = &recs[i];
        ServeDbRow *d = &rows[i];
        d->video_id = str_field(r, "video_id", "row_id");
        d->platform = str_field(r, "platform", NULL);
        d->title = pj_record_get(r, "title");
        d->description = str_field(r, "description", NULL);
        d->channel_name = str_field(r, "channel_name", "author_handle");
        d->upload_date = str_field(r, "publish_date_approx", "upload_date");
        d->source = source;
        d->view_count = num_field(r, "view_count", "views");
        d->like_count = num_field(r, "like_count", "likes");
        d->comment_count = num_field(r, "comment_count", "comments");
        d->duration_seconds = num_field(r, "duration_seconds", "duration_sec");
        d->score = o[i].viral_score;
        d->velocity = o[i].predicted_velocity;
        d->confidence = o[i].confidence;
        d->is_viral = o[i].is_viral;
        d->supplied = o[i].supplied;
        d->filled = o[i].filled;
        d->model_version = miles_predictor_version(S.pred);
        d->processing_time_ms = ms / n;
    }
    int s = serve_db_store(S.db, rows, n, err, errcap);
    free(rows);
    if (s) fprintf(stderr, "miles-serve: %s\n", err);
    return s;
}

static void log_event(const char *type, double ms, int ok, const char *err) {
    if (S.db) serve_db_event(S.db, type, ms, ok, err);
}

/* Score records (q owns them from here on), store them, answer.  single:
 * the /predict shape; else {"results": [...]}.  Queues the job and suspends
 * the connection; the handler calls score_reply when it is resumed. */
static enum MHD_Result score_reply(struct MHD_Connection *c, Req *q);
static enum MHD_Result score_submit(struct MHD_Connection *c, Req *q, PjRecord *recs, int n, int single,
                                    const char *source, const char *item_prefix) {
    q->recs = recs, q->nrecs = n, q->single = single, q->source = source, q->item_prefix = item_prefix;
    memset(&q->job, 0, sizeof q->job);
    q->rv = malloc(sizeof(MilesRecord) * (n ? n : 1));
    q->out = malloc(sizeof(MilesPrediction) * (n ? n : 1));
    if (!q->rv || !q->out) { req_free_scoring(q); return send_error(c, 500, "out of memory", NULL); }
    for (int i = 0; i < n; i++) q->rv[i] = pj_record_view(&recs[i]);
    if (n == 0) return score_reply(c, q); /* nothing to score */
    /* counted before the check: shutdown sets draining, then waits for 0 */
    atomic_fetch_add(&S.inflight, 1);
    if (atomic_load(&S.draining)) {
        atomic_fetch_sub(&S.inflight, 1);
        req_free_scoring(q);
        return send_error_h(c, 503, "server shutting down", "Retry-After", "5", NULL, NULL);
    }
    q->job.recs = q->rv, q->job.n = n, q->job.out = q->out, q->job.explain = q->explain, q->job.conn = c;
    MHD_suspend_connection(c);
    infer_submit(&q->job);
    return MHD_YES;
}

/* The job is done (or there was none): store the predictions and answer. */
static enum MHD_Result score_reply(struct MHD_Connection *c, Req *q) {
    const int n = q->nrecs, single = q->single, explain = q->explain, s = q->job.status;
    PjRecord *recs = q->recs;
    MilesPrediction *o = q->out;
    const char *source = q->source, *item_prefix = q->item_prefix;
    const char *err = q->job.err, *eerr = q->job.explain_err;
    cJSON *expl = q->job.explanation;
    q->job.explanation = NULL;
    if (s == MILES_OK) atomic_fetch_add(&S.predictions, n);
    enum MHD_Result ret;
    if (s != MILES_OK) {
        /* "record 3: column 'views': ..." -> "items[3].views: ..." naming the item */
        char msg[1200];
        int idx;
        const char *rest = err;
        if (sscanf(err, "record %d: ", &idx) == 1 && (rest = strstr(err, ": "))) rest += 2;
        else { idx = 0; rest = err; }
        char field[128];
        field_of(rest, field, sizeof field);
        if (single || !item_prefix) snprintf(msg, sizeof msg, "%s%s%s", field, field[0] ? ": " : "", rest);
        else snprintf(msg, sizeof msg, "%s[%d]%s%s: %s", item_prefix, idx, field[0] ? "." : "", field, rest);
        log_event(source, now_ms() - q->t0, 0, msg);
        ret = send_error(c, http_status_of(s), msg, NULL);
    } else {
        double ms = now_ms() - q->t0;
        char derr[600] = "";
        int ds = S.db ? store(recs, o, n, source, ms, derr, sizeof derr) : MILES_OK;
        if (ds != MILES_OK) {
            /* never 200 with the row lost: the client learns it was not stored (and may retry) */
            char msg[800];
            snprintf(msg, sizeof msg, "database: %s; the prediction was not stored%s", derr,
                     ds == SERVE_DB_BUSY ? ", retry later" : "");
            ret = ds == SERVE_DB_BUSY ? send_error_h(c, 503, msg, "Retry-After", "1", NULL, NULL)
                                      : send_error(c, 500, msg, NULL);
        } else {
            int stored = S.db != NULL;
            cJSON *j;
            if (single) {
                j = prediction_json(&recs[0], &o[0]);
                if (expl) cJSON_AddItemToObject(j, "explanation", expl);
                else if (explain) cJSON_AddStringToObject(j, "explanation_error", eerr);
                expl = NULL;
            } else {
                j = cJSON_CreateObject();
                cJSON_AddNumberToObject(j, "count", n);
                cJSON *a = cJSON_AddArrayToObject(j, "results");
                for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, prediction_json(&recs[i], &o[i]));
            }
            cJSON_AddNumberToObject(j, "decision_threshold", miles_predictor_threshold(S.pred));
            const MilesPlatt *cal = miles_predictor_calibration(S.pred);
            if (cal)   /* where the threshold lies on viral_score's (recalibrated) scale */
                cJSON_AddNumberToObject(j, "decision_threshold_calibrated",
                                        miles_platt_map(cal, miles_predictor_threshold(S.pred)));
            cJSON_AddNumberToObject(j, "processing_time_ms", now_ms() - q->t0);
            cJSON_AddStringToObject(j, "model_version", miles_predictor_version(S.pred));
            cJSON_AddBoolToObject(j, "stored", stored);
            log_event(source, ms, 1, NULL);
            ret = send_json(c, 200, j, NULL);
        }
    }
    cJSON_Delete(expl);
    req_free_scoring(q);
    if (q->job.conn) { q->job.conn = NULL; atomic_fetch_sub(&S.inflight, 1); } /* answered */
    return ret;
}

static enum MHD_Result bad_request(struct MHD_Connection *c, Req *q, const char *source, int code, const char *msg) {
    log_event(source, now_ms() - q->t0, 0, msg);
    return send_error(c, http_status_of(code) == 500 ? 500 : 400, msg, NULL);
}

static enum MHD_Result h_predict(struct MHD_Connection *c, Req *q) {
    PjRecord r;
    char err[512];
    int s = sr_predict_body(q->body, q->len, &r, err, sizeof err);
    if (s) return bad_request(c, q, "predict", s, err);
    /* ?explain=1: add integrated-gradients attributions (docs/explain.md); the
     * flag was checked and a --max-explain slot taken when the headers came */
    PjRecord *one = malloc(sizeof *one);
    if (!one) { pj_record_free(&r); return send_error(c, 500, "out of memory", NULL); }
    *one = r;
    return score_submit(c, q, one, 1, 1, "predict", NULL);
}

static enum MHD_Result h_batch(struct MHD_Connection *c, Req *q) {
    PjRecord *recs = NULL;
    int n = 0;
    char err[512];
    int s = sr_batch_body(q->body, q->len, S.max_items, &recs, &n, err, sizeof err);
    if (s) return bad_request(c, q, "predict_batch", s, err);
    return score_submit(c, q, recs, n, 0, "predict_batch", "items");
}

/* POST /predict/file: the body is a CSV (header + rows) or JSON lines / a JSON array. */
static enum MHD_Result h_file(struct MHD_Connection *c, Req *q) {
    PjRecord *recs = NULL;
    int n = 0;
    char err[768];
    int s = sr_file_body(q->body, q->len, S.max_items, &recs, &n, err, sizeof err);
    if (s) return bad_request(c, q, "predict_file", s, err);
    return score_submit(c, q, recs, n, 0, "predict_file", "record");
}

/* ---------------------------------------------------------------- info routes */

static cJSON *parse_or_string(const char *s) {
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    return j ? j : s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static enum MHD_Result h_info(struct MHD_Connection *c, Req *q) {
    (void)q;
    const MilesPredictor *p = S.pred;
    const MilesModel *m = miles_predictor_model(p);
    const MilesConfig *cfg = miles_model_config(m);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model_version", miles_predictor_version(p));
    cJSON_AddStringToObject(j, "checkpoint", S.ckpt);
    cJSON_AddStringToObject(j, "model_type", "Miles BERT + numeric fusion");
    cJSON_AddNumberToObject(j, "parameters", (double)miles_model_num_params(m));
    cJSON_AddStringToObject(j, "preset", cfg->preset);
    cJSON *enc = cJSON_AddObjectToObject(j, "encoder");
    cJSON_AddNumberToObject(enc, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(enc, "hidden_size", cfg->hidden_size);
    cJSON_AddNumberToObject(enc, "num_hidden_layers", cfg->num_hidden_layers);
    cJSON_AddNumberToObject(enc, "num_attention_heads", cfg->num_attention_heads);
    cJSON_AddNumberToObject(enc, "intermediate_size", cfg->intermediate_size);
    cJSON_AddNumberToObject(enc, "max_position_embeddings", cfg->max_position_embeddings);
    cJSON_AddStringToObject(enc, "pooling", cfg->pooling == MILES_POOL_POOLER ? "pooler" : cfg->pooling == MILES_POOL_CLS ? "cls" : "mean");
    cJSON_AddItemToObject(j, "config", parse_or_string(miles_predictor_metadata(p, "config")));
    cJSON *tk = cJSON_AddObjectToObject(j, "tokenizer");
    cJSON_AddStringToObject(tk, "hash", miles_predictor_tokenizer_hash(p));
    const char *vd = miles_predictor_metadata(p, "vocab_dir");
    cJSON_AddStringToObject(tk, "vocab_dir", S.vocab ? S.vocab : vd ? vd : "");
    cJSON_AddNumberToObject(tk, "max_len", miles_predictor_max_len(p));
    cJSON_AddStringToObject(tk, "text_clean", miles_predictor_text_clean(p) == MILES_TEXT_CLEAN_SEED ? "seed" : "none");
    cJSON_AddNumberToObject(j, "decision_threshold", miles_predictor_threshold(p));
    const MilesPlatt *cal = miles_predictor_calibration(p);
    if (cal) {   /* viral_score is recalibrated; the threshold applies to viral_score_model */
        cJSON *c = cJSON_AddObjectToObject(j, "calibration");
        cJSON_AddStringToObject(c, "method", "platt");
        cJSON_AddNumberToObject(c, "a", cal->a);
        cJSON_AddNumberToObject(c, "b", cal->b);
        cJSON_AddNumberToObject(c, "n", cal->n);
        cJSON_AddNumberToObject(c, "n_pos", (double)cal->n_pos);
        cJSON_AddNumberToObject(c, "decision_threshold_calibrated", miles_platt_map(cal, miles_predictor_threshold(p)));
    } else {
        cJSON_AddNullToObject(j, "calibration");
    }
    const char *rc = miles_predictor_metadata(p, "recipe");
    cJSON_AddStringToObject(j, "recipe", rc ? rc : "");
    cJSON_AddItemToObject(j, "training", parse_or_string(miles_predictor_metadata(p, "state")));
    cJSON_AddItemToObject(j, "train_config", parse_or_string(miles_predictor_metadata(p, "train_config")));
    /* how the training rows were split (null: a checkpoint written before it was kept) */
    cJSON_AddItemToObject(j, "data_split", parse_or_string(miles_predictor_metadata(p, MILES_META_DATA_SPLIT)));
    /* features: order, scaler statistics */
    double mean[MILES_NUM_FEATURES], scale[MILES_NUM_FEATURES];
    uint32_t avail = 0, dropped = 0;
    int log1p = 0;
    const MilesScaler *sc = miles_predictor_scaler(p);
    miles_scaler_stats(sc, mean, scale, &avail, &dropped, &log1p);
    cJSON *fa = cJSON_AddArrayToObject(j, "features");
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", f);
        cJSON_AddStringToObject(o, "name", miles_feature_names[f]);
        if (isfinite(mean[f])) cJSON_AddNumberToObject(o, "mean", mean[f]); else cJSON_AddNullToObject(o, "mean");
        if (isfinite(scale[f])) cJSON_AddNumberToObject(o, "scale", scale[f]); else cJSON_AddNullToObject(o, "scale");
        cJSON_AddBoolToObject(o, "available_in_training", avail >> f & 1u);
        cJSON_AddBoolToObject(o, "dropped", dropped >> f & 1u);
        cJSON_AddItemToArray(fa, o);
    }
    cJSON_AddBoolToObject(j, "log1p_counts", log1p);
    /* what a request's creator_avg_views should be: "prior" = the creator's mean views before this video */
    cJSON_AddStringToObject(j, "creator_avg_views",
                            miles_scaler_creator_avg(sc) == MILES_CREATOR_AVG_PRIOR ? "prior" : "data");
    int cohort_days = 0;
    if (miles_scaler_label_cohort(sc, &cohort_days, NULL)) {
        /* no one threshold: the label ranked each video among its publish cohort */
        cJSON_AddNullToObject(j, "viral_velocity_threshold");
        cJSON_AddNumberToObject(j, "viral_label_cohort_days", cohort_days);
    } else {
        cJSON_AddNumberToObject(j, "viral_velocity_threshold", miles_scaler_threshold(sc));
    }
    cJSON *rf = cJSON_AddObjectToObject(j, "request_fields");
    static const char *rq[] = {"view_count", "like_count", "comment_count", "duration_seconds"};
    for (int i = 0; i < 4; i++) cJSON_AddStringToObject(rf, rq[i], miles_predictor_column_of(rq[i]));
    return send_json(c, 200, j, NULL);
}

static enum MHD_Result h_health(struct MHD_Connection *c, Req *q) {
    (void)q;
    int st = atomic_load(&S.state);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", st == ST_READY ? "healthy" : st == ST_LOADING ? "loading" : "error");
    cJSON_AddBoolToObject(j, "model_loaded", st == ST_READY);
    if (st == ST_READY) cJSON_AddStringToObject(j, "model_version", miles_predictor_version(S.pred));
    if (st == ST_FAILED) cJSON_AddStringToObject(j, "error", S.load_err);
    cJSON_AddStringToObject(j, "version", miles_version());
    cJSON_AddNumberToObject(j, "uptime_s", (double)(time(NULL) - S.started));
    cJSON_AddNumberToObject(j, "requests", (double)atomic_load(&S.requests));
    cJSON_AddNumberToObject(j, "predictions", (double)atomic_load(&S.predictions));
    cJSON_AddNumberToObject(j, "forward_batches", (double)atomic_load(&S.batches));
    if (S.db) {
        int64_t np = 0, nc = 0, ne = 0;
        serve_db_counts(S.db, &np, &nc, &ne);
        cJSON *d = cJSON_AddObjectToObject(j, "database");
        cJSON_AddStringToObject(d, "path", S.db_file);
        cJSON_AddNumberToObject(d, "predictions", (double)np);
        cJSON_AddNumberToObject(d, "candidates", (double)nc);
        cJSON_AddNumberToObject(d, "events", (double)ne);
    } else cJSON_AddNullToObject(j, "database");
    return send_json(c, 200, j, NULL);
}

static enum MHD_Result h_list(struct MHD_Connection *c, int candidates) {
    if (!S.db) return send_error(c, 503, "no database (server started with --no-db)", NULL);
    int limit;
    char err[512];
    if (sr_query_limit(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"), 50, &limit, err, sizeof err))
        return send_error(c, 400, err, NULL);
    const char *platform = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "platform");
    if (platform && !*platform) platform = NULL;
    cJSON *a = NULL;
    int s = candidates ? serve_db_candidates(S.db, limit, platform, &a, err, sizeof err)
                       : serve_db_history(S.db, limit, &a, err, sizeof err);
    if (s == SERVE_DB_BUSY) return send_error_h(c, 503, err, "Retry-After", "1", NULL, NULL);
    if (s) return send_error(c, 500, err, NULL);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "count", cJSON_GetArraySize(a));
    cJSON_AddItemToObject(j, candidates ? "candidates" : "history", a);
    return send_json(c, 200, j, NULL);
}
static enum MHD_Result h_history(struct MHD_Connection *c, Req *q) { (void)q; return h_list(c, 0); }
static enum MHD_Result h_candidates(struct MHD_Connection *c, Req *q) { (void)q; return h_list(c, 1); }

/* ---------------------------------------------------------------- static files */

static enum MHD_Result h_static(struct MHD_Connection *c, const char *url) {
    const char *name = !strcmp(url, "/") ? "index.html" : url + 1;
    /* flat directory, plain names only: no way out of web_dir */
    if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(name) ||
        name[0] == '.')
        return send_error(c, 404, "not found", NULL);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", S.web_dir, name);
    char *text = NULL;
    if (!S.web_dir[0] || miles_read_file(path, &text, NULL) != MILES_OK) {
        miles_clear_error();
        return send_error(c, 404, "not found", NULL);
    }
    const char *dot = strrchr(name, '.');
    const char *ct = !dot ? "application/octet-stream"
                     : !strcmp(dot, ".html") ? "text/html; charset=utf-8"
                     : !strcmp(dot, ".css") ? "text/css; charset=utf-8"
                     : !strcmp(dot, ".js") ? "text/javascript; charset=utf-8"
                     : !strcmp(dot, ".svg") ? "image/svg+xml" : "text/plain; charset=utf-8";
    return send_text(c, 200, text, ct, NULL);
}

/* GET /topic, POST /ideas: serve_ideas.c answers, this sends and logs */
static ServeIdeasConfig ideas_cfg = {NULL, NULL, 30000, 1000};
static enum MHD_Result ideas_reply(struct MHD_Connection *c, Req *q, const char *url) {
    cJSON *j = NULL;
    unsigned st = serve_ideas_handle(&ideas_cfg, S.pred, S.db, url, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q"),
                                     MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"), q->body, q->len, &j);
    log_event(url + 1, now_ms() - q->t0, st == 200, st == 200 ? NULL : cJSON_GetObjectItem(j, "error")->valuestring);
    return send_json(c, st, j, NULL);
}
static enum MHD_Result h_topic(struct MHD_Connection *c, Req *q) { return ideas_reply(c, q, "/topic"); }
static enum MHD_Result h_ideas(struct MHD_Connection *c, Req *q) { return ideas_reply(c, q, "/ideas"); }

/* ---------------------------------------------------------------- routing */

/* The API.  To add a route: a handler (called once the whole body is in,
 * q->body / q->len) and a line here.  needs_auth: state-changing routes and
 * those that read the stored history ask for the bearer token when the
 * server has one (--token-file); the web page's static files, /health and
 * /model/info do not. */
typedef enum MHD_Result (*RouteFn)(struct MHD_Connection *c, Req *q);
typedef struct { const char *method, *path; RouteFn fn; int needs_model, needs_auth; } Route;
static const Route routes[] = {
    /* method  path              handler       model auth */
    {"GET",  "/health",        h_health,     0, 0},
    {"GET",  "/model/info",    h_info,       1, 0},
    {"POST", "/predict",       h_predict,    1, 1},
    {"POST", "/predict/batch", h_batch,      1, 1},
    {"POST", "/predict/file",  h_file,       1, 1},
    {"GET",  "/history",       h_history,    0, 1},
    {"GET",  "/candidates",    h_candidates, 0, 1},
    {"GET",  "/topic",         h_topic,      1, 1}, /* idea routes: serve_ideas.c */
    {"POST", "/ideas",         h_ideas,      1, 1},
};

static const Route *find_route(const char *url) {
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].path)) return &routes[i];
    return NULL;
}

/* Bound to loopback, only a Host naming this machine is served: a page on
 * another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends
 * its own name and is refused.  No Host at all (HTTP/1.0) is let through. */
static int host_ok(const char *host) {
    if (!S.loopback || !host) return 1;
    const char *names[] = {"localhost", "127.0.0.1", "[::1]", S.host};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (strncasecmp(host, names[i], n)) continue;
        const char *p = host + n;
        if (!*p) return S.bound_port == 80;
        if (*p != ':') continue;
        char *e;
        long port = strtol(p + 1, &e, 10);
        if (e != p + 1 && !*e && port == S.bound_port) return 1;
    }
    return 0;
}

/* Authorization: Bearer <token>, compared in constant time (no early exit
 * that would let response times reveal a prefix). */
static int auth_ok(struct MHD_Connection *c) {
    if (!S.token) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    const unsigned char *given = (const unsigned char *)h + 7;
    size_t gl = strlen((const char *)given);
    volatile unsigned char diff = gl != S.token_len;
    for (size_t i = 0; i < S.token_len; i++) diff |= (unsigned char)(given[i < gl ? i : 0] ^ (unsigned char)S.token[i]);
    return diff == 0;
}

/* First call of a request (headers in, no body read yet): refuse what must
 * not be read at all — wrong Host, no token, a Content-Length over
 * --max-body, an explanation when --max-explain are running.  Returns 1 with
 * *ret set when a response was queued. */
static int early_refusal(struct MHD_Connection *c, const char *url, const char *method, Req *q, enum MHD_Result *ret) {
    char msg[300];
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!host_ok(host)) {
        snprintf(msg, sizeof msg, "host: Host '%.100s' is not served on a loopback bind (use localhost:%d or "
                 "127.0.0.1:%d)", host, S.bound_port, S.bound_port);
        *ret = send_error(c, 403, msg, NULL);
        return 1;
    }
    const Route *rt = find_route(url);
    if (rt && rt->needs_auth && strcmp(method, "OPTIONS") && !auth_ok(c)) {
        *ret = send_error_h(c, 401, "authorization: a valid 'Authorization: Bearer TOKEN' header is required",
                            "WWW-Authenticate", "Bearer realm=\"miles\"", NULL, NULL);
        return 1;
    }
    /* any path: a body announced over the limit is never read */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *e;
        errno = 0;
        unsigned long long n = strtoull(cl, &e, 10);
        if (errno || e == cl || n > S.max_body) {
            snprintf(msg, sizeof msg, "body: request body larger than %zu bytes (--max-body; Content-Length %.30s)",
                     S.max_body, cl);
            if (rt) log_event(url + 1, 0, 0, msg);
            *ret = send_error(c, 413, msg, NULL);
            return 1;
        }
    }
    if (!rt || !strcmp(method, "OPTIONS")) return 0; /* 404/405/preflight: answered at the end */
    if (rt->fn == h_predict && !strcmp(method, "POST")) {
        int ex;
        if (sr_query_flag(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "explain"), "explain", &ex, msg,
                          sizeof msg)) {
            *ret = send_error(c, 400, msg, NULL);
            return 1;
        }
        if (ex && tool_explain_refusal(g_device, g_precision)) {
            snprintf(msg, sizeof msg, "explain on device %s: %s", g_device, tool_explain_refusal(g_device, g_precision));
            *ret = send_error(c, 400, msg, NULL);
            return 1;
        }
        if (ex) {
            /* an explanation costs ~160 predictions: at most --max-explain at a
             * time, counted from their headers on (released in completed()) */
            if (atomic_fetch_add(&S.explain_inflight, 1) >= S.max_explain) {
                atomic_fetch_sub(&S.explain_inflight, 1);
                snprintf(msg, sizeof msg, "explain: %d explanations are running (--max-explain); retry later",
                         S.max_explain);
                *ret = send_error_h(c, 503, msg, "Retry-After", "1", NULL, NULL);
                return 1;
            }
            q->explain = 1;
        }
    }
    return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)cls; (void)version;
    Req *q = *con_cls;
    if (q && q->job.conn) return score_reply(c, q); /* resumed: the job is done */
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        q->t0 = now_ms();
        *con_cls = q;
        atomic_fetch_add(&S.requests, 1);
        enum MHD_Result ret;
        if (early_refusal(c, url, method, q, &ret)) return ret;
        return MHD_YES;
    }
    if (*upload_size) {
        /* a chunked body has no Content-Length: counted here, dropped past the limit */
        if (!q->too_big && q->len + *upload_size > S.max_body) { q->too_big = 1; free(q->body); q->body = NULL; q->len = 0; }
        if (!q->too_big) {
            if (q->len + *upload_size + 1 > q->cap) {
                size_t nc = (q->len + *upload_size + 1) * 2;
                if (nc > S.max_body + 1) nc = S.max_body + 1;
                char *nb = realloc(q->body, nc);
                if (!nb) return MHD_NO;
                q->body = nb;
                q->cap = nc;
            }
            memcpy(q->body + q->len, upload_data, *upload_size);
            q->len += *upload_size;
            q->body[q->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* the whole request is in: route it */
    const Route *rt = find_route(url);
    if (!strcmp(method, "OPTIONS")) { /* CORS preflight: only with --cors does it allow anything */
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        if (S.cors) {
            MHD_add_response_header(r, "Access-Control-Allow-Origin", S.cors);
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type, Authorization");
            MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
        }
        MHD_add_response_header(r, "Allow", rt ? (!strcmp(rt->method, "GET") ? "GET, HEAD, OPTIONS" : "POST, OPTIONS")
                                                : "GET, HEAD, OPTIONS");
        enum MHD_Result ret = MHD_queue_response(c, 204, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!rt) {
        if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) return h_static(c, url);
        if (!strcmp(url, "/")) return send_error(c, 405, "method not allowed on / (use GET)", "GET, OPTIONS");
        return send_error(c, 404, "no such endpoint", NULL);
    }
    if (strcmp(method, rt->method) && !(strcmp(rt->method, "GET") == 0 && !strcmp(method, "HEAD"))) {
        char msg[128], allow[32];
        snprintf(msg, sizeof msg, "method %s not allowed on %s (use %s)", method, url, rt->method);
        snprintf(allow, sizeof allow, "%s, OPTIONS", rt->method);
        return send_error(c, 405, msg, allow);
    }
    if (q->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "body: request body larger than %zu bytes (--max-body)", S.max_body);
        log_event(url + 1, now_ms() - q->t0, 0, msg);
        return send_error(c, 413, msg, NULL);
    }
    if (rt->needs_model && atomic_load(&S.state) != ST_READY) {
        char msg[2200];
        if (atomic_load(&S.state) == ST_LOADING) snprintf(msg, sizeof msg, "model not loaded yet (loading %s)", S.ckpt);
        else snprintf(msg, sizeof msg, "model not loaded: %s", S.load_err);
        return send_error_h(c, 503, msg, "Retry-After", "5", NULL, NULL);
    }
    return rt->fn(c, q);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls; (void)c; (void)toe;
    Req *q = *con_cls;
    if (q) {
        if (q->explain) atomic_fetch_sub(&S.explain_inflight, 1);
        /* resumed, but the client left before the answer: the inference
         * thread is done with the job (it resumes only finished ones) */
        if (q->job.conn) atomic_fetch_sub(&S.inflight, 1);
        req_free_scoring(q);
        free(q->body);
        free(q);
    }
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- main */

static void find_web_dir(const char *opt) {
    if (opt) { snprintf(S.web_dir, sizeof S.web_dir, "%s", opt); return; }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *cands[4] = {"../../tools/web", "../share/miles/web", "web", NULL};
    if (n > 0) {
        exe[n] = 0;
        char *sl = strrchr(exe, '/');
        if (sl) *sl = 0;
        for (int i = 0; cands[i]; i++) {
            char p[PATH_MAX + 64];
            snprintf(p, sizeof p, "%s/%s/index.html", exe, cands[i]);
            if (access(p, R_OK) == 0 &&
                snprintf(S.web_dir, sizeof S.web_dir, "%s/%s", exe, cands[i]) < (int)sizeof S.web_dir)
                return;
            S.web_dir[0] = '\0';
        }
    }
    if (access("tools/web/index.html", R_OK) == 0) snprintf(S.web_dir, sizeof S.web_dir, "tools/web");
}

static void usage(FILE *f) {
    fprintf(f,
"usage: miles-serve --checkpoint FILE [options]\n"
"  -c, --checkpoint FILE  checkpoint written by miles-train (best.safetensors)\n"
"  --vocab DIR            tokenizer directory (default: the checkpoint's vocab_dir)\n"
"  --host ADDR            IPv4 address to bind (default 127.0.0.1; 0.0.0.0 = all)\n"
"  -p, --port N           TCP port (default 8080; 0 = any free port, see --port-file)\n"
"  --port-file FILE       write the bound port number to FILE once listening\n"
"  --db PATH              SQLite file (default <checkpoint dir>/miles.db)\n"
"  --no-db                keep no store (/history and /candidates answer 503)\n"
"  --web DIR              web page directory (default tools/web found from the binary)\n"
"  --max-body BYTES       request body limit (default 1048576); larger -> 413\n"
"  --max-items N          records per /predict/batch or /predict/file (default 1000)\n"
"  --max-batch N          records per forward pass across requests (default 64)\n"
"  --threads N            OpenMP/BLAS threads of the inference thread (default: every CPU;\n"
"                         1 on a machine shared with other busy jobs)\n"
"  --device cpu|cuda|cuda:N   where to score (default cpu)   --precision NAME  fp32 (default)|tf32|fp16|bf16|int8\n"
"                             (CPU: fp32, bf16 with avx512_bf16, int8 with AVX2 + FMA)\n"
"Limits and access (docs/serving.md, security model):\n"
"  --workers N            HTTP worker threads (default 8); idle connections hold no thread\n"
"  --max-conn N           open connections in all (default 1000)\n"
"  --max-conn-per-ip N    open connections per client address (default 64)\n"
"  --timeout S            close a connection idle for S seconds (default 10)\n"
"  --max-explain N        /predict?explain=1 requests at a time (default 2); more -> 503\n"
"  --db-busy-ms MS        wait for a locked database this long, then 503 (default 2000)\n"
"  --cors ORIGIN          send Access-Control-Allow-Origin: ORIGIN (default: no CORS)\n"
"  --token-file FILE      require 'Authorization: Bearer <first line of FILE>' on /predict*,\n"
"                         /history, /candidates; required when --host is not loopback\n"
"  --lazy                 listen at once and load the model in the background (503 until ready)\n"
"  --llm-endpoint URL     POST /ideas also asks this OpenAI-compatible chat-completions endpoint\n"
"                         for 3 ideas, scored by the model (--llm-model NAME; key: $MILES_LLM_API_KEY)\n"
"  -q, --quiet            no request log on stderr\n"
"  -h, --help\n"
"Routes: GET / (web page), GET /health, GET /model/info, POST /predict, POST /predict/batch,\n"
"POST /predict/file, GET /history?limit=N, GET /candidates?limit=N&platform=P, GET /topic?q=T,\n"
"POST /ideas (docs/serving.md).\n"
"SIGINT/SIGTERM: finish the requests in flight, close the database, exit 0.\n");
}

/* A start that fails after the store was opened (model not loadable, port
 * taken) leaves behind no database that this run created: an empty store
 * beside the checkpoint would look like a server that once ran.  A database
 * that existed before is only closed. */
static void drop_new_db(void) {
    serve_db_close(S.db);
    S.db = NULL;
    if (!S.db_created) return;
    char p[sizeof S.db_file + 8];
    unlink(S.db_file);
    snprintf(p, sizeof p, "%s-wal", S.db_file);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", S.db_file);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", S.db_file);
    unlink(p);
}

int main(int argc, char **argv) {
    tool_init(argv);
    S.host = "127.0.0.1";
    S.port = 8080;
    S.max_body = 1 << 20;
    S.max_items = 1000;
    S.max_batch = 64;
    S.threads = 0; /* OpenMP's default (every CPU, or OMP_NUM_THREADS): on an idle 2-core machine 2 compute
                      threads beat 1 at every precision since scoring suspends its connection (docs/serving.md) */
    S.workers = 8;
    S.max_conn = 1000;
    S.max_conn_per_ip = 64;
    S.timeout_s = 10;
    S.max_explain = 2;
    S.db_busy_ms = 2000;
    const char *web = NULL, *token_file = NULL;
    enum { O_VOCAB = 256, O_HOST, O_PORTFILE, O_DB, O_NODB, O_WEB, O_MAXBODY, O_MAXITEMS, O_MAXBATCH, O_THREADS, O_LAZY,
           O_WORKERS, O_MAXCONN, O_MAXCONNIP, O_TIMEOUT, O_MAXEXPLAIN, O_DBBUSY, O_CORS, O_TOKENFILE, O_DEVICE, O_PREC,
           O_LLM, O_LLM_MODEL };
    static const struct option lo[] = {
        {"checkpoint", 1, 0, 'c'}, {"vocab", 1, 0, O_VOCAB}, {"host", 1, 0, O_HOST}, {"port", 1, 0, 'p'},
        {"port-file", 1, 0, O_PORTFILE}, {"db", 1, 0, O_DB}, {"no-db", 0, 0, O_NODB}, {"web", 1, 0, O_WEB},
        {"max-body", 1, 0, O_MAXBODY}, {"max-items", 1, 0, O_MAXITEMS}, {"max-batch", 1, 0, O_MAXBATCH},
        {"threads", 1, 0, O_THREADS}, {"lazy", 0, 0, O_LAZY}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"workers", 1, 0, O_WORKERS}, {"max-conn", 1, 0, O_MAXCONN}, {"max-conn-per-ip", 1, 0, O_MAXCONNIP},
        {"timeout", 1, 0, O_TIMEOUT}, {"max-explain", 1, 0, O_MAXEXPLAIN}, {"db-busy-ms", 1, 0, O_DBBUSY},
        {"cors", 1, 0, O_CORS}, {"token-file", 1, 0, O_TOKENFILE},
        {"device", 1, 0, O_DEVICE}, {"precision", 1, 0, O_PREC}, {"llm-endpoint", 1, 0, O_LLM},
        {"llm-model", 1, 0, O_LLM_MODEL}, {0, 0, 0, 0}};
    int ch, mb;
    while ((ch = getopt_long(argc, argv, "c:p:qh", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': S.ckpt = optarg; break;
        case O_VOCAB: S.vocab = optarg; break;
        case O_HOST: S.host = optarg; break;
        case 'p': if (tool_parse_int(optarg, "--port", 0, 65535, &S.port)) return 2; break;
        case O_PORTFILE: S.port_file = optarg; break;
        case O_DB: S.db_path = optarg; break;
        case O_NODB: S.no_db = 1; break;
        case O_WEB: web = optarg; break;
        case O_MAXBODY: if (tool_parse_int(optarg, "--max-body", 1024, 1 << 30, &mb)) return 2; S.max_body = (size_t)mb; break;
        case O_MAXITEMS: if (tool_parse_int(optarg, "--max-items", 1, 1000000, &S.max_items)) return 2; break;
        case O_MAXBATCH: if (tool_parse_int(optarg, "--max-batch", 1, 4096, &S.max_batch)) return 2; break;
        case O_THREADS: if (tool_parse_int(optarg, "--threads", 1, 4096, &S.threads)) return 2; break;
        case O_LAZY: S.lazy = 1; break;
        case O_WORKERS: if (tool_parse_int(optarg, "--workers", 1, 256, &S.workers)) return 2; break;
        case O_MAXCONN: if (tool_parse_int(optarg, "--max-conn", 1, 1000000, &S.max_conn)) return 2; break;
        case O_MAXCONNIP: if (tool_parse_int(optarg, "--max-conn-per-ip", 1, 1000000, &S.max_conn_per_ip)) return 2; break;
        case O_TIMEOUT: if (tool_parse_int(optarg, "--timeout", 1, 3600, &S.timeout_s)) return 2; break;
        case O_MAXEXPLAIN: if (tool_parse_int(optarg, "--max-explain", 0, 4096, &S.max_explain)) return 2; break;
        case O_DBBUSY: if (tool_parse_int(optarg, "--db-busy-ms", 0, 600000, &S.db_busy_ms)) return 2; break;
        case O_CORS:
            if (!*optarg || strpbrk(optarg, "\r\n")) { fprintf(stderr, "miles-serve: --cors needs an origin (e.g. https://example.org or *)\n"); return 2; }
            S.cors = optarg;
            break;
        case O_TOKENFILE: token_file = optarg; break;
        case O_DEVICE: if (tool_parse_device(optarg, "--device", &g_device)) return 2; break;
        case O_PREC: if (tool_parse_precision(optarg, "--precision", &g_precision)) return 2; break;
        case O_LLM: ideas_cfg.llm_endpoint = optarg; break;
        case O_LLM_MODEL: ideas_cfg.llm_model = optarg; break;
        case 'q': S.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!S.ckpt || optind != argc) { usage(stderr); return 2; }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)S.port);
    if (inet_pton(AF_INET, S.host, &addr.sin_addr) != 1) { fprintf(stderr, "miles-serve: --host %s is not an IPv4 address\n", S.host); return 2; }
    S.loopback = (ntohl(addr.sin_addr.s_addr) >> 24) == 127;
    if (token_file) {
        char *t = NULL;
        if (miles_read_file(token_file, &t, NULL) != MILES_OK) { fprintf(stderr, "miles-serve: --token-file: %s\n", miles_last_error()); return 2; }
        t[strcspn(t, "\r\n")] = 0; /* the first line */
        S.token_len = strlen(t);
        if (S.token_len < 16 || strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") != S.token_len) {
            fprintf(stderr, "miles-serve: --token-file %s: the token (first line) must be 16 or more characters of "
                            "[A-Za-z0-9-._~+/=] (e.g. openssl rand -hex 32 > %s)\n", token_file, token_file);
            free(t);
            return 2;
        }
        S.token = t;
    }
    if (!S.loopback && !S.token) {
        /* off loopback anyone on the network could write the store and read its history */
        fprintf(stderr, "miles-serve: --host %s is not a loopback address: bearer-token auth is required there; give "
                        "--token-file FILE (e.g. openssl rand -hex 32 > FILE) or bind 127.0.0.1\n", S.host);
        return 2;
    }
    /* a device that cannot run is refused before the port opens (also with --lazy) */
    if (miles_device_check(g_device, g_precision, 0) != MILES_OK) return tool_fail("miles-serve", MILES_EUNSUPPORTED);
    ideas_cfg.max_items = S.max_items;
    find_web_dir(web);
    if (!S.web_dir[0]) fprintf(stderr, "miles-serve: warning: no web page directory found (--web DIR); / answers 404\n");
    S.started = time(NULL);
    tool_set_threads(S.threads);

    /* signals: handled by sigwait in main; every thread inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!S.no_db) {
        if (S.db_path) snprintf(S.db_file, sizeof S.db_file, "%s", S.db_path);
        else {
            const char *sl = strrchr(S.ckpt, '/');
            if (sl) snprintf(S.db_file, sizeof S.db_file, "%.*s/miles.db", (int)(sl - S.ckpt), S.ckpt);
            else snprintf(S.db_file, sizeof S.db_file, "miles.db");
        }
        char err[1024];
        S.db_created = access(S.db_file, F_OK) != 0;
        if (serve_db_open(&S.db, S.db_file, err, sizeof err) != MILES_OK) {
            fprintf(stderr, "miles-serve: %s\n", err);
            drop_new_db();
            return 1;
        }
        serve_db_set_busy_ms(S.db, S.db_busy_ms);
    }
    pthread_mutex_init(&S.qmu, NULL);
    pthread_cond_init(&S.qcv, NULL);
    pthread_t loader, inferer;
    if (S.lazy) pthread_create(&loader, NULL, load_main, NULL);
    else {
        load_main(NULL);
        if (atomic_load(&S.state) != ST_READY) { drop_new_db(); return 1; }
    }
    pthread_create(&inferer, NULL, infer_main, NULL);

    S.bound_port = S.port; /* port 0: set below, before the port file tells clients */
    /* every connection is a descriptor: lift the soft limit to the hard one */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)S.max_conn + 64 > rl.rlim_cur) {
        S.max_conn = rl.rlim_cur > 128 ? (int)(rl.rlim_cur - 64) : 64;
        fprintf(stderr, "miles-serve: warning: open-file limit %llu: --max-conn lowered to %d\n",
                (unsigned long long)rl.rlim_cur, S.max_conn);
    }
    /* a pool of worker threads on epoll (not a thread per connection): slow
     * or idle clients cost a socket each, up to --max-conn in all and
     * --max-conn-per-ip per address, and are dropped after --timeout idle s */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
#ifdef __linux__
    flags |= MHD_USE_EPOLL;
#else
    flags |= MHD_USE_POLL;
#endif
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)S.port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)S.workers,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)S.max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)S.max_conn_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S.timeout_s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "miles-serve: cannot listen on %s:%d: %s\n", S.host, S.port, strerror(errno));
        drop_new_db(); /* the inference thread only waits on the queue; exit ends it */
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : S.port;
    S.bound_port = port;
    if (S.port_file) {
        char txt[32];
        snprintf(txt, sizeof txt, "%d\n", port);
        if (tool_write_text_atomic(S.port_file, txt) != MILES_OK) fprintf(stderr, "miles-serve: cannot write %s\n", S.port_file);
    }
    fprintf(stderr, "miles-serve: listening on http://%s:%d/ (database %s, web %s; %d workers, auth %s, CORS %s)\n",
            S.host, port, S.db ? S.db_file : "none", S.web_dir[0] ? S.web_dir : "none", S.workers,
            S.token ? "bearer token" : "none", S.cors ? S.cors : "off");

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "miles-serve: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* requests in flight are answered first: MHD must not stop with a
     * connection suspended; new ones get 503 meanwhile */
    atomic_store(&S.draining, 1);
    for (int waited = 0; atomic_load(&S.inflight) > 0; waited += 2) {
        if (waited == 60000) fprintf(stderr, "miles-serve: still %d requests in flight after 60 s\n", atomic_load(&S.inflight));
        usleep(2000);
    }
    MHD_stop_daemon(d); /* joins the connection threads */
    pthread_mutex_lock(&S.qmu);
    S.stop = 1;
    pthread_cond_broadcast(&S.qcv);
    pthread_mutex_unlock(&S.qmu);
    pthread_join(inferer, NULL);
    if (S.lazy) pthread_join(loader, NULL);
    serve_db_close(S.db);
    miles_predictor_free(S.pred);
    free(S.token);
    fprintf(stderr, "miles-serve: %ld requests, %ld predictions; bye\n", (long)atomic_load(&S.requests),
            (long)atomic_load(&S.predictions));
    return 0;
}
#endif
