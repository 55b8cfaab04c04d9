/*
 * ideas_json.c — the topic view and suggestions as JSON (tools/ideas.h).
 */
#include "ideas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ideas_vibe_ok(const char *vibe) {
    static const char *const v[] = {"funny", "educational", "inspirational", "dramatic"};
    if (!vibe || !*vibe) return 1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(vibe, v[i])) return 1;
    return 0;
}

static const char *rec_get(const MilesRecord *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->names[i], name)) return r->values[i];
    return NULL;
}

static void add_num_or_null(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static cJSON *words_json(const MilesTopicWord *w, int n, const char *vname) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "word", w[i].word);
        if (vname) cJSON_AddNumberToObject(o, vname, w[i].value);
        cJSON_AddNumberToObject(o, "count", w[i].count);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

typedef struct { int f; double a; } FA;
static int cmp_fa(const void *x, const void *y) {
    const FA *a = x, *b = y;
    double u = fabs(a->a), v = fabs(b->a);
    if (u != v) return u > v ? -1 : 1;
    return a->f - b->f;
}

int ideas_view_json(MilesPredictor *p, const MilesRecord *recs, int n, const IdeasQuery *q, cJSON **out) {
    *out = NULL;
    MilesTopic *t = NULL;
    int s = miles_topic_analyze(p, recs, n, q->topic ? q->topic : "", NULL, &t);
    if (s != MILES_OK) return s;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "topic", q->topic ? q->topic : "");
    if (q->vibe && *q->vibe) cJSON_AddStringToObject(j, "vibe", q->vibe);
    else cJSON_AddNullToObject(j, "vibe");
    cJSON_AddNumberToObject(j, "records", t->n_records);
    cJSON_AddNumberToObject(j, "matched", t->n_matched);
    int nc = q->n_candidates > 0 ? q->n_candidates : 10;
    cJSON *tc = cJSON_AddArrayToObject(j, "top_candidates");
    for (int i = 0; i < t->n_matches && i < nc; i++) {
        const MilesRecord *r = &recs[t->matches[i].index];
        cJSON *o = cJSON_CreateObject();
        const char *id = rec_get(r, "video_id");
        if (!id) id = rec_get(r, "row_id");
        if (id) cJSON_AddStringToObject(o, "video_id", id);
        cJSON_AddStringToObject(o, "title", rec_get(r, "title"));
        cJSON_AddNumberToObject(o, "viral_score", t->matches[i].score);
        cJSON_AddNumberToObject(o, "predicted_velocity", t->matches[i].velocity);
        const char *v = rec_get(r, "views");
        if (!v) v = rec_get(r, "view_count");
        if (v) cJSON_AddNumberToObject(o, "view_count", atof(v));
        cJSON_AddItemToArray(tc, o);
    }
    cJSON *pt = cJSON_AddObjectToObject(j, "patterns");
    cJSON_AddNumberToObject(pt, "n", t->n_top);
    add_num_or_null(pt, "avg_title_length", t->n_top ? t->avg_title_length : NAN);
    add_num_or_null(pt, "avg_duration", t->avg_duration);
    add_num_or_null(pt, "avg_score", t->n_top ? t->avg_score : NAN);
    cJSON_AddItemToObject(pt, "top_words", words_json(t->top_words, t->n_top_words, NULL));
    cJSON *at = cJSON_AddObjectToObject(j, "attributions");
    cJSON_AddNumberToObject(at, "explained", t->n_explained);
    cJSON_AddItemToObject(at, "words_up", words_json(t->words_up, t->n_up, "attribution"));
    cJSON_AddItemToObject(at, "words_down", words_json(t->words_down, t->n_down, "attribution"));
    cJSON *fa = cJSON_AddArrayToObject(at, "features");
    if (t->n_explained > 0) {
        FA v[MILES_NUM_FEATURES];
        for (int f = 0; f < MILES_NUM_FEATURES; f++) v[f] = (FA){f, t->feature_attr[f]};
        qsort(v, MILES_NUM_FEATURES, sizeof(FA), cmp_fa);
        for (int f = 0; f < MILES_NUM_FEATURES; f++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", miles_feature_names[v[f].f]);
            cJSON_AddNumberToObject(o, "attribution", v[f].a);
            cJSON_AddItemToArray(fa, o);
        }
    }
    if (q->suggestions) {
        /* the draft: given, else the best match (improve what works), else the topic as a title */
        const char *tn[] = {"title"}, *tv[] = {q->topic && *q->topic ? q->topic : "my next video"};
        MilesRecord topic_rec = {1, tn, tv, NULL};
        const MilesRecord *draft = q->draft;
        const char *src = "given";
        if (!draft && t->n_matches > 0) { draft = &recs[t->matches[0].index]; src = "top candidate"; }
        if (!draft) { draft = &topic_rec; src = "topic"; }
        MilesSuggestOptions so;
        miles_suggest_options_default(&so);
        so.seed = q->seed;
        so.words = t->words_up;
        so.n_words = t->n_up;
        so.topic = q->topic;
        MilesSuggestions *sg = NULL;
        s = miles_suggest_titles(p, draft, &so, &sg);
        if (s == MILES_OK) {
            cJSON *so_j = cJSON_AddObjectToObject(j, "suggestions");
            cJSON_AddStringToObject(so_j, "draft", rec_get(draft, "title"));
            cJSON_AddStringToObject(so_j, "draft_source", src);
            cJSON_AddNumberToObject(so_j, "draft_score", sg->draft_score);
            cJSON_AddNumberToObject(so_j, "scored", sg->n_scored);
            cJSON_AddNumberToObject(so_j, "seed", (double)q->seed);
            cJSON *a = cJSON_AddArrayToObject(so_j, "items");
            for (int i = 0; i < sg->n; i++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "title", sg->items[i].title);
                cJSON_AddNumberToObject(o, "viral_score", sg->items[i].score);
                cJSON_AddNumberToObject(o, "delta", sg->items[i].delta);
                cJSON_AddStringToObject(o, "reason", sg->items[i].reason);
                cJSON_AddItemToArray(a, o);
            }
            miles_suggestions_free(sg);
        }
    }
    miles_topic_free(t);
    if (s != MILES_OK) { cJSON_Delete(j); return s; }
    *out = j;
    return MILES_OK;
}

int ideas_score(MilesPredictor *p, cJSON *ideas) {
    int n = cJSON_GetArraySize(ideas);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_GetArrayItem(ideas, i);
        const cJSON *tt = cJSON_GetObjectItemCaseSensitive(o, "title");
        const char *nm[] = {"title"}, *vv[] = {cJSON_IsString(tt) ? tt->valuestring : ""};
        MilesRecord r = {1, nm, vv, NULL};
        MilesPrediction pr;
        int s = miles_predictor_predict(p, &r, 1, &pr);
        if (s != MILES_OK) {
            char m[512];
            snprintf(m, sizeof m, "%s", miles_last_error());
            return miles_set_error(s, "idea %d: %s", i, m);
        }
        cJSON_AddNumberToObject(o, "viral_score", pr.viral_score);
        cJSON_AddNumberToObject(o, "predicted_velocity", pr.predicted_velocity);
    }
    return MILES_OK;
}
