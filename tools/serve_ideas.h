/*
 * serve_ideas.h — miles-serve's idea routes (docs/serving.md "Ideas"):
 *   GET  /topic?q=T[&limit=N]   the stored candidates matching T ranked by score,
 *                               the patterns of the top 10, attributions
 *   POST /ideas                 {"topic", "vibe"?, "draft"?, "seed"?, "items"?}: the
 *                               same plus model-scored suggestions and, when the
 *                               server has --llm-endpoint, 3 LLM ideas scored by Miles
 * The routes answer (HTTP status, JSON); miles-serve sends it.
 */
#ifndef MILES_SERVE_IDEAS_H
#define MILES_SERVE_IDEAS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "miles.h"
#include "serve_db.h"

typedef struct ServeIdeasConfig {
    const char *llm_endpoint, *llm_model; /* NULL: no LLM (suggestions only) */
    long llm_timeout_ms;
    int max_items;                        /* uploaded items / stored candidates used at most */
} ServeIdeasConfig;

/* Answer GET /topic (query: the "q", "vibe", "limit" values, NULL if absent)
 * or POST /ideas (body).  Returns the HTTP status; *out is the answer or
 * {"error": ..., "status": ...}. */
unsigned serve_ideas_handle(const ServeIdeasConfig *cfg, MilesPredictor *p, ServeDb *db, const char *url,
                            const char *q_topic, const char *q_limit, const char *body, size_t len, cJSON **out);

#endif
