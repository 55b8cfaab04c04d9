/*
 * ideas.h — the topic view, model-scored suggestions and LLM ideas as JSON,
 * shared by miles-predict --topic and miles-serve (GET /topic, POST /ideas).
 * The library does the work (miles_topic_analyze, miles_suggest_titles);
 * this layer shapes the answer like the original's (ORIGINAL_SYSTEM.md §9)
 * and talks to an optional OpenAI-compatible chat-completions endpoint
 * (ideas_llm.c, libcurl).  docs/serving.md "Ideas" documents the fields.
 */
#ifndef MILES_TOOLS_IDEAS_H
#define MILES_TOOLS_IDEAS_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include "miles.h"

typedef struct IdeasQuery {
    const char *topic;          /* required (may be "": every record) */
    const char *vibe;           /* funny|educational|inspirational|dramatic or NULL */
    const MilesRecord *draft;   /* title (+ stats) to improve; NULL: the best match's record, else the topic */
    uint64_t seed;              /* suggestions' seed */
    int n_candidates;           /* top candidates listed (10) */
    int suggestions;            /* 1: add model-scored suggestions */
} IdeasQuery;

/* 1 if vibe is NULL/"" or one of the original's four (funny, educational,
 * inspirational, dramatic). */
int ideas_vibe_ok(const char *vibe);

/* {"topic","vibe","records","matched","top_candidates":[...],"patterns":{...},
 *  "attributions":{...},"suggestions":{...}}.  recs are the candidates.  On
 * error returns MILES_E* (miles_last_error()). */
int ideas_view_json(MilesPredictor *p, const MilesRecord *recs, int n, const IdeasQuery *q, cJSON **out);

/* ---- LLM ideas (ideas_llm.c) ---- */
typedef struct IdeasLlm {
    const char *endpoint;       /* base URL (".../v1/chat/completions" is appended unless the URL ends with it) */
    const char *model;          /* "model" field of the request (default "local") */
    const char *api_key;        /* Bearer token or NULL */
    long timeout_ms;            /* whole request (default 30000) */
} IdeasLlm;
/* The chat-completions request body for a view (the original's prompt shape:
 * topic, vibe, patterns, top candidates; exactly 3 ideas as JSON). */
cJSON *ideas_llm_request_body(const IdeasLlm *llm, const cJSON *view);
/* Parse an answer body: *ideas = [{"title","reasoning"}] (3 at most).  0 or
 * a message in err (malformed JSON, refusal, no ideas). */
int ideas_llm_parse(const char *body, size_t n, cJSON **ideas, char *err, size_t cap);
/* Ask the endpoint for ideas about `view`; 0 or a message in err (timeout,
 * HTTP status, malformed answer, refusal). */
int ideas_llm_ask(const IdeasLlm *llm, const cJSON *view, cJSON **ideas, char *err, size_t cap);
/* Score every idea's title with the predictor (the view's draft stats are
 * not used: an idea is a new video): adds "viral_score" and "predicted_velocity". */
int ideas_score(MilesPredictor *p, cJSON *ideas);

#endif
