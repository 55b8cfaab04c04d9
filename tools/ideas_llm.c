/*
 * ideas_llm.c — optional LLM ideas from an OpenAI-compatible
 * /v1/chat/completions endpoint (a local llama.cpp server, vLLM, ...), asked
 * the way the original asked Claude (ORIGINAL_SYSTEM.md §9 step 7): the topic,
 * the vibe, the patterns of the top candidates and the top candidates
 * themselves, and exactly 3 ideas as JSON [{title, reasoning}].  The caller
 * scores every idea with Miles before showing it (ideas_score).  Without
 * libcurl the client reports that it is not built in.
 */
#include "ideas.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MILES_HAVE_CURL
#include <curl/curl.h>
#include <pthread.h>
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
#endif

static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (*len + (size_t)n + 1 > *cap) {
        size_t nc = (*len + (size_t)n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return;
        *buf = nb;
        *cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

cJSON *ideas_llm_request_body(const IdeasLlm *llm, const cJSON *view) {
    const cJSON *topic = cJSON_GetObjectItemCaseSensitive(view, "topic");
    const cJSON *vibe = cJSON_GetObjectItemCaseSensitive(view, "vibe");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(view, "patterns");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(view, "top_candidates");
    char *u = NULL;
    size_t len = 0, cap = 0;
    put(&u, &len, &cap, "You are a viral short-video strategist. Based on these trending videos about \"%s\", "
        "generate 3 NEW video ideas that are likely to go viral.\n\n",
        cJSON_IsString(topic) ? topic->valuestring : "");
    if (cJSON_IsString(vibe)) put(&u, &len, &cap, "Desired vibe: %s\n\n", vibe->valuestring);
    put(&u, &len, &cap, "Patterns of the top %d videos (scored by the Miles virality model):\n", (int)num(pt, "n"));
    put(&u, &len, &cap, "- average title length: %.0f characters\n", num(pt, "avg_title_length"));
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(pt, "avg_duration");
    if (cJSON_IsNumber(dur)) put(&u, &len, &cap, "- average duration: %.0f seconds\n", dur->valuedouble);
    put(&u, &len, &cap, "- average viral score: %.3f\n- common words:", num(pt, "avg_score"));
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(pt, "top_words")) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(w, "word");
        if (cJSON_IsString(s)) put(&u, &len, &cap, " %s", s->valuestring);
    }
    put(&u, &len, &cap, "\n\nTop videos:\n");
    int k = 0;
    cJSON_ArrayForEach(w, tc) {
        if (k++ >= 5) break;
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(w, "title");
        put(&u, &len, &cap, "%d. \"%s\" (viral score %.3f)\n", k, cJSON_IsString(s) ? s->valuestring : "",
            num(w, "viral_score"));
    }
    put(&u, &len, &cap, "\nReturn ONLY a JSON array of exactly 3 objects with keys \"title\" and \"reasoning\", "
        "for example [{\"title\": \"...\", \"reasoning\": \"...\"}]. No other text.");
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", llm->model ? llm->model : "local");
    cJSON_AddNumberToObject(b, "max_tokens", 1024);
    cJSON_AddNumberToObject(b, "temperature", 0.8);
    cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", u ? u : "");
    cJSON_AddItemToArray(msgs, m);
    free(u);
    return b;
}

/* A JSON array of ideas inside free text: the whole text, a fenced block, or
 * from the first '[' to the last ']' (the original's fallback parsers). */
static cJSON *find_array(const char *s) {
    cJSON *j = cJSON_Parse(s);
    if (j) {
        if (cJSON_IsArray(j)) return j;
        cJSON *in = cJSON_DetachItemFromObjectCaseSensitive(j, "ideas");
        cJSON_Delete(j);
        if (cJSON_IsArray(in)) return in;
        cJSON_Delete(in);
    }
    const char *a = strchr(s, '['), *b = strrchr(s, ']');
    if (!a || !b || b < a) return NULL;
    return cJSON_ParseWithLength(a, (size_t)(b - a + 1));
}

int ideas_llm_parse(const char *body, size_t n, cJSON **ideas, char *err, size_t cap) {
    *ideas = NULL;
    cJSON *j = cJSON_ParseWithLength(body, n);
    if (!j) { snprintf(err, cap, "LLM answer is not JSON (malformed JSON: %.80s)", body); return -1; }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e) {
        const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
        snprintf(err, cap, "LLM endpoint error: %.200s", cJSON_IsString(m) ? m->valuestring : "(no message)");
        cJSON_Delete(j);
        return -1;
    }
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const cJSON *refusal = cJSON_GetObjectItemCaseSensitive(msg, "refusal");
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
    if (cJSON_IsString(refusal) && refusal->valuestring[0]) {
        snprintf(err, cap, "LLM refused: %.200s", refusal->valuestring);
        cJSON_Delete(j);
        return -1;
    }
    if (cJSON_IsString(fin) && !strcmp(fin->valuestring, "content_filter")) {
        snprintf(err, cap, "LLM refused (finish_reason content_filter)");
        cJSON_Delete(j);
        return -1;
    }
    if (!cJSON_IsString(content)) {
        snprintf(err, cap, "LLM answer has no choices[0].message.content (malformed answer)");
        cJSON_Delete(j);
        return -1;
    }
    cJSON *arr = find_array(content->valuestring);
    cJSON *out = cJSON_CreateArray();
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "title");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "reasoning");
        if (!cJSON_IsString(t) || !t->valuestring[0]) continue;
        if (cJSON_GetArraySize(out) == 3) break;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "title", t->valuestring);
        cJSON_AddStringToObject(o, "reasoning", cJSON_IsString(r) ? r->valuestring : "");
        cJSON_AddItemToArray(out, o);
    }
    if (cJSON_GetArraySize(out) == 0) {
        /* no ideas in the text: a refusal in words, or not the asked format */
        snprintf(err, cap, "LLM gave no ideas as JSON (refusal or malformed content: \"%.120s\")", content->valuestring);
        cJSON_Delete(arr);
        cJSON_Delete(out);
        cJSON_Delete(j);
        return -1;
    }
    cJSON_Delete(arr);
    cJSON_Delete(j);
    *ideas = out;
    return 0;
}

#ifdef MILES_HAVE_CURL
typedef struct { char *p; size_t n, cap; int over; } Buf;
static size_t on_data(char *d, size_t sz, size_t nm, void *u) {
    Buf *b = u;
    size_t k = sz * nm;
    if (b->n + k + 1 > (1u << 22)) { b->over = 1; return 0; } /* 4 MiB is no chat answer */
    if (b->n + k + 1 > b->cap) {
        size_t nc = (b->n + k + 1) * 2;
        char *np = realloc(b->p, nc);
        if (!np) return 0;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, k);
    b->n += k;
    b->p[b->n] = 0;
    return k;
}

int ideas_llm_ask(const IdeasLlm *llm, const cJSON *view, cJSON **ideas, char *err, size_t cap) {
    *ideas = NULL;
    if (!llm->endpoint || !*llm->endpoint) { snprintf(err, cap, "no LLM endpoint given"); return -1; }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once); /* the server's connection threads may ask at once */
    char url[2048];
    size_t L = strlen(llm->endpoint);
    const char *suffix = "/v1/chat/completions";
    if (L >= strlen("/chat/completions") && !strcmp(llm->endpoint + L - strlen("/chat/completions"), "/chat/completions"))
        snprintf(url, sizeof url, "%s", llm->endpoint);
    else snprintf(url, sizeof url, "%.*s%s", (int)(L && llm->endpoint[L - 1] == '/' ? L - 1 : L), llm->endpoint, suffix);
    cJSON *body = ideas_llm_request_body(llm, view);
    char *bs = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    CURL *c = curl_easy_init();
    if (!c || !bs) { free(bs); if (c) curl_easy_cleanup(c); snprintf(err, cap, "LLM client: out of memory"); return -1; }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[600];
    if (llm->api_key && *llm->api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %.500s", llm->api_key);
        h = curl_slist_append(h, auth);
    }
    Buf b = {0};
    long tmo = llm->timeout_ms > 0 ? llm->timeout_ms : 30000;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, bs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, tmo);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int ret = -1;
    if (rc == CURLE_OPERATION_TIMEDOUT) snprintf(err, cap, "LLM endpoint %s timed out after %ld ms", url, tmo);
    else if (b.over) snprintf(err, cap, "LLM endpoint %s: answer larger than 4 MiB", url);
    else if (rc != CURLE_OK) snprintf(err, cap, "LLM endpoint %s: %s", url, curl_easy_strerror(rc));
    else if (status < 200 || status > 299)
        snprintf(err, cap, "LLM endpoint %s answered HTTP %ld: %.200s", url, status, b.p ? b.p : "");
    else ret = ideas_llm_parse(b.p ? b.p : "", b.n, ideas, err, cap);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(bs);
    free(b.p);
    return ret;
}
#else
int ideas_llm_ask(const IdeasLlm *llm, const cJSON *view, cJSON **ideas, char *err, size_t cap) {
    (void)llm; (void)view;
    *ideas = NULL;
    snprintf(err, cap, "built without libcurl: no LLM client (apt-get install libcurl4-openssl-dev, then rebuild)");
    return -1;
}
#endif
