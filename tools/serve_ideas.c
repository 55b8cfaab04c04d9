/*
 * serve_ideas.c — miles-serve's idea routes, GET /topic and POST /ideas
 * (serve_ideas.h).  The candidates are the store's (ranked by their stored
 * score, at most max_items) or the request's "items"; every score shown is
 * computed now by the predictor (thread-safe: it locks its model).
 */
#include "serve_ideas.h"
#include "ideas.h"
#include "predict_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned fail(cJSON **out, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static unsigned fail(cJSON **out, unsigned status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    cJSON_AddNumberToObject(j, "status", status);
    *out = j;
    return status;
}

static unsigned status_of(int s) {
    switch (s) {
    case MILES_EFORMAT: case MILES_EINVAL: case MILES_ENAN: case MILES_EMISSING: case MILES_ERANGE: case MILES_ESHAPE:
        return 400;
    default: return 500;
    }
}

static void free_recs(PjRecord *r, int n) {
    for (int i = 0; i < n; i++) pj_record_free(&r[i]);
    free(r);
}

/* JSON objects -> records ("where" names the array in messages). */
static int recs_of(const cJSON *arr, const char *where, int max, PjRecord **out, int *n, char *err, size_t cap) {
    int m = cJSON_GetArraySize(arr);
    if (m > max) { snprintf(err, cap, "%s: %d items, more than --max-items %d", where, m, max); return MILES_ERANGE; }
    PjRecord *r = calloc(m ? m : 1, sizeof *r);
    if (!r) { snprintf(err, cap, "out of memory"); return MILES_ENOMEM; }
    for (int i = 0; i < m; i++) {
        char w[64];
        snprintf(w, sizeof w, "%s[%d]", where, i);
        int s = pj_record_from_json(cJSON_GetArrayItem(arr, i), w, &r[i], err, cap);
        if (s) { free_recs(r, i); return s; }
    }
    *out = r;
    *n = m;
    return MILES_OK;
}

unsigned serve_ideas_handle(const ServeIdeasConfig *cfg, MilesPredictor *p, ServeDb *db, const char *url,
                            const char *q_topic, const char *q_limit, const char *body, size_t len, cJSON **out) {
    *out = NULL;
    int ideas = !strcmp(url, "/ideas");
    const char *topic = q_topic, *vibe = NULL;
    int ncand = 10;
    uint64_t seed = 0;
    cJSON *req = NULL;
    const cJSON *items = NULL, *draft_j = NULL;
    if (!ideas) {
        if (!topic) return fail(out, 400, "q: query parameter 'q' (the topic) is required");
        if (q_limit) {
            char *e;
            long x = strtol(q_limit, &e, 10);
            if (e == q_limit || *e || x < 1 || x > 1000)
                return fail(out, 400, "limit: query parameter 'limit' must be an integer in [1, 1000], got \"%.40s\"", q_limit);
            ncand = (int)x;
        }
    } else {
        req = cJSON_ParseWithLength(body ? body : "", len);
        if (!cJSON_IsObject(req)) { cJSON_Delete(req); return fail(out, 400, "body: malformed JSON (an object is required)"); }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "topic");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "vibe");
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(req, "seed");
        items = cJSON_GetObjectItemCaseSensitive(req, "items");
        draft_j = cJSON_GetObjectItemCaseSensitive(req, "draft");
        unsigned st = 0;
        if (!cJSON_IsString(t)) st = fail(out, 400, "topic: field 'topic' (a string) is required");
        else if (v && !cJSON_IsNull(v) && (!cJSON_IsString(v) || !ideas_vibe_ok(v->valuestring)))
            st = fail(out, 400, "vibe: field 'vibe' must be funny, educational, inspirational, dramatic or null");
        else if (sd && (!cJSON_IsNumber(sd) || sd->valuedouble < 0 || sd->valuedouble > 4294967295.0 ||
                        sd->valuedouble != floor(sd->valuedouble)))
            st = fail(out, 400, "seed: field 'seed' must be an integer in [0, 2^32)");
        else if (items && !cJSON_IsArray(items)) st = fail(out, 400, "items: field 'items' must be an array of objects");
        else if (draft_j && !cJSON_IsNull(draft_j) && !(cJSON_IsString(draft_j) && draft_j->valuestring[0]) &&
                 !cJSON_IsObject(draft_j))
            st = fail(out, 400, "draft: field 'draft' must be a non-empty title or an object with a title and stats");
        if (st) { cJSON_Delete(req); return st; }
        topic = t->valuestring;
        vibe = cJSON_IsString(v) ? v->valuestring : NULL;
        seed = sd ? (uint64_t)sd->valuedouble : 0;
    }

    /* the candidates: the request's items, else the store's */
    char err[1024];
    PjRecord *recs = NULL;
    int n = 0, s;
    const char *source = "items";
    if (items) s = recs_of(items, "items", cfg->max_items, &recs, &n, err, sizeof err);
    else if (!db) {
        cJSON_Delete(req);
        return fail(out, 503, "no database (server started with --no-db): send the candidates as \"items\" to POST /ideas");
    } else {
        cJSON *stored = NULL;
        source = "store";
        s = serve_db_candidates(db, cfg->max_items, NULL, &stored, err, sizeof err);
        if (s == MILES_OK) s = recs_of(stored, "candidates", cfg->max_items, &recs, &n, err, sizeof err);
        cJSON_Delete(stored);
        if (s) { cJSON_Delete(req); free_recs(recs, n); return fail(out, 500, "%s", err); }
    }
    PjRecord draft = {0};
    int has_draft = 0;
    if (s == MILES_OK && cJSON_IsString(draft_j)) {
        has_draft = 1;
        if (pj_record_add(&draft, "title", draft_j->valuestring)) { s = MILES_ENOMEM; snprintf(err, sizeof err, "out of memory"); }
    } else if (s == MILES_OK && cJSON_IsObject(draft_j)) {
        has_draft = 1;
        s = pj_record_from_json(draft_j, "draft", &draft, err, sizeof err);
        if (s == MILES_OK && !pj_record_get(&draft, "title")) { s = MILES_EMISSING; snprintf(err, sizeof err, "draft.title: field 'title' is required"); }
    }
    if (s) {
        cJSON_Delete(req);
        free_recs(recs, n);
        pj_record_free(&draft);
        return fail(out, status_of(s), "%s", err);
    }
    MilesRecord *rv = malloc(sizeof(MilesRecord) * (n ? n : 1));
    for (int i = 0; rv && i < n; i++) rv[i] = pj_record_view(&recs[i]);
    MilesRecord dv = pj_record_view(&draft);
    IdeasQuery q = {topic, vibe, has_draft ? &dv : NULL, seed, ncand, ideas};
    cJSON *view = NULL;
    unsigned st = 200;
    if (!rv) st = fail(out, 500, "out of memory");
    else if ((s = ideas_view_json(p, rv, n, &q, &view)) != MILES_OK) {
        /* "record 3: ..." -> "items[3]..." / "candidates[3]..." */
        int k;
        const char *m = miles_last_error(), *rest = strstr(m, ": ");
        if (sscanf(m, "record %d: ", &k) == 1 && rest) st = fail(out, status_of(s), "%s[%d]: %s", items ? "items" : "candidates", k, rest + 2);
        else st = fail(out, status_of(s), "%s", m);
    } else {
        cJSON_AddStringToObject(view, "candidates_from", source);
        if (ideas && cfg->llm_endpoint) {
            IdeasLlm llm = {cfg->llm_endpoint, cfg->llm_model, getenv("MILES_LLM_API_KEY"), cfg->llm_timeout_ms};
            cJSON *got = NULL;
            /* an LLM failure is shown, not fatal: the model-scored suggestions stand */
            if (ideas_llm_ask(&llm, view, &got, err, sizeof err)) cJSON_AddStringToObject(view, "llm_error", err);
            else if (ideas_score(p, got) != MILES_OK) {
                cJSON_AddStringToObject(view, "llm_error", miles_last_error());
                cJSON_Delete(got);
            } else cJSON_AddItemToObject(view, "ideas", got);
        }
        *out = view;
    }
    free(rv);
    free_recs(recs, n);
    pj_record_free(&draft);
    cJSON_Delete(req);
    return st;
}
