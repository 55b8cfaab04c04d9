/*
 * test_ideas_llm.c — the LLM ideas client (tools/ideas_llm.c) against a mock
 * OpenAI-compatible /v1/chat/completions server started here (a socket
 * thread on 127.0.0.1): a valid answer (and one with prose around the JSON),
 * malformed JSON, malformed content, a refusal, an error object, a timeout,
 * HTTP 500 and a closed port each give ideas or a clear error.  The request
 * must carry the original's prompt shape: topic, vibe, patterns, top
 * candidates, 3 ideas as JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "miles.h"
#include "ideas.h"
#include "helpers.h"

enum { M_VALID, M_PROSE, M_BAD_JSON, M_BAD_CONTENT, M_REFUSAL, M_ERROR, M_SLOW, M_500 };
static struct {
    int fd, port, mode, stop;
    char body[65536];   /* the last request body */
    char path[256];
    pthread_t th;
} g;

static const char *answer_of(int mode, int *status) {
    *status = 200;
    switch (mode) {
    case M_VALID:
    case M_SLOW:
        return "{\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":"
               "\"[{\\\"title\\\":\\\"Ramen in 60 seconds\\\",\\\"reasoning\\\":\\\"short and fast\\\"},"
               "{\\\"title\\\":\\\"POV: ramen at 3am\\\",\\\"reasoning\\\":\\\"POV hooks do well\\\"},"
               "{\\\"title\\\":\\\"Cheap vs expensive ramen\\\",\\\"reasoning\\\":\\\"comparisons\\\"},"
               "{\\\"title\\\":\\\"a fourth one\\\",\\\"reasoning\\\":\\\"ignored\\\"}]\"}}]}";
    case M_PROSE:
        return "{\"choices\":[{\"message\":{\"content\":\"Sure! Here are ideas:\\n```json\\n"
               "[{\\\"title\\\":\\\"Spicy ramen tier list\\\",\\\"reasoning\\\":\\\"lists\\\"}]\\n```\\nEnjoy.\"}}]}";
    case M_BAD_JSON: return "{\"choices\":[{\"message\":{\"content\": [oops";
    case M_BAD_CONTENT:
        return "{\"choices\":[{\"message\":{\"content\":\"I think you should make a video about ramen.\"}}]}";
    case M_REFUSAL:
        return "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't help with that.\"}}]}";
    case M_ERROR: return "{\"error\":{\"message\":\"model not loaded\",\"type\":\"server_error\"}}";
    default: *status = 500; return "{\"error\":\"internal\"}";
    }
}

static void *serve_main(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept(g.fd, NULL, NULL);
        if (c < 0) break;
        if (g.stop) { close(c); break; }
        static char buf[70000];
        size_t n = 0;
        ssize_t k;
        char *hdr_end = NULL;
        long clen = 0;
        while (n < sizeof buf - 1 && (k = recv(c, buf + n, sizeof buf - 1 - n, 0)) > 0) {
            n += (size_t)k;
            buf[n] = 0;
            if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n"))) {
                char *cl = strcasestr(buf, "Content-Length:");
                clen = cl ? atol(cl + 15) : 0;
            }
            if (hdr_end && (long)(n - (size_t)(hdr_end + 4 - buf)) >= clen) break;
        }
        if (hdr_end) {
            snprintf(g.body, sizeof g.body, "%s", hdr_end + 4);
            sscanf(buf, "%*s %255s", g.path);
        }
        int status;
        const char *a = answer_of(g.mode, &status);
        if (g.mode == M_SLOW) usleep(1500 * 1000);
        char head[256];
        snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n", status, status == 200 ? "OK" : "Internal Server Error", strlen(a));
        if (send(c, head, strlen(head), MSG_NOSIGNAL) > 0) send(c, a, strlen(a), MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

static int setup(void **state) {
    (void)state;
    g.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t L = sizeof a;
    if (g.fd < 0 || bind(g.fd, (struct sockaddr *)&a, sizeof a) || listen(g.fd, 8) ||
        getsockname(g.fd, (struct sockaddr *)&a, &L))
        return -1;
    g.port = ntohs(a.sin_port);
    return pthread_create(&g.th, NULL, serve_main, NULL) ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    g.stop = 1;
    shutdown(g.fd, SHUT_RDWR); /* wakes accept() */
    close(g.fd);
    pthread_join(g.th, NULL);
    return 0;
}

/* A view like ideas_view_json's. */
static cJSON *view(void) {
    return cJSON_Parse("{\"topic\":\"ramen\",\"vibe\":\"funny\",\"records\":15,\"matched\":6,"
                       "\"top_candidates\":[{\"title\":\"Spicy ramen challenge gone wrong\",\"viral_score\":0.74},"
                       "{\"title\":\"The secret to RAMEN at home\",\"viral_score\":0.62}],"
                       "\"patterns\":{\"n\":6,\"avg_title_length\":34.5,\"avg_duration\":41.5,\"avg_score\":0.55,"
                       "\"top_words\":[{\"word\":\"ramen\",\"count\":6},{\"word\":\"cheap\",\"count\":2}]}}");
}

static int ask(int mode, long timeout_ms, cJSON **ideas, char *err, size_t cap) {
    g.mode = mode;
    g.body[0] = 0;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", g.port);
    IdeasLlm llm = {url, "mock-model", NULL, timeout_ms};
    cJSON *v = view();
    int r = ideas_llm_ask(&llm, v, ideas, err, cap);
    cJSON_Delete(v);
    printf("  mode %d -> %s\n", mode, r ? err : "ideas");
    return r;
}

static void test_valid(void **state) {
    (void)state;
    cJSON *ideas = NULL;
    char err[512];
    assert_int_equal(ask(M_VALID, 5000, &ideas, err, sizeof err), 0);
    assert_int_equal(cJSON_GetArraySize(ideas), 3); /* exactly 3, the fourth is dropped */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ideas, 1), "title")->valuestring, "POV: ramen at 3am");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ideas, 0), "reasoning")->valuestring, "short and fast");
    cJSON_Delete(ideas);
    /* the request: path, model, temperature, the prompt's parts */
    assert_string_equal(g.path, "/v1/chat/completions");
    cJSON *b = cJSON_Parse(g.body);
    assert_non_null(b);
    assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "mock-model");
    assert_true(cJSON_GetObjectItem(b, "temperature")->valuedouble == 0.8);
    const char *p = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "messages"), 0), "content")->valuestring;
    assert_non_null(strstr(p, "\"ramen\""));
    assert_non_null(strstr(p, "Desired vibe: funny"));
    assert_non_null(strstr(p, "average title length: 34"));
    assert_non_null(strstr(p, "average duration: 42")); /* 41.5 rounded */
    assert_non_null(strstr(p, "common words: ramen cheap"));
    assert_non_null(strstr(p, "1. \"Spicy ramen challenge gone wrong\" (viral score 0.740)"));
    assert_non_null(strstr(p, "exactly 3"));
    cJSON_Delete(b);
    /* prose and a code fence around the array */
    assert_int_equal(ask(M_PROSE, 5000, &ideas, err, sizeof err), 0);
    assert_int_equal(cJSON_GetArraySize(ideas), 1);
    cJSON_Delete(ideas);
}

static void test_errors(void **state) {
    (void)state;
    cJSON *ideas = NULL;
    char err[512];
    assert_int_equal(ask(M_BAD_JSON, 5000, &ideas, err, sizeof err), -1);
    assert_null(ideas);
    assert_non_null(strstr(err, "malformed JSON"));
    assert_int_equal(ask(M_BAD_CONTENT, 5000, &ideas, err, sizeof err), -1);
    assert_non_null(strstr(err, "no ideas as JSON"));
    assert_int_equal(ask(M_REFUSAL, 5000, &ideas, err, sizeof err), -1);
    assert_non_null(strstr(err, "LLM refused: I can't help with that."));
    assert_int_equal(ask(M_ERROR, 5000, &ideas, err, sizeof err), -1);
    assert_non_null(strstr(err, "model not loaded"));
    assert_int_equal(ask(M_500, 5000, &ideas, err, sizeof err), -1);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_int_equal(ask(M_SLOW, 300, &ideas, err, sizeof err), -1);
    assert_non_null(strstr(err, "timed out after 300 ms"));
    assert_null(ideas);
    /* nothing listening */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t L = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &L);
    close(fd); /* bound, then closed: the port refuses */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", ntohs(a.sin_port));
    IdeasLlm llm = {url, NULL, NULL, 2000};
    cJSON *v = view();
    assert_int_equal(ideas_llm_ask(&llm, v, &ideas, err, sizeof err), -1);
    printf("  closed port -> %s\n", err);
    assert_non_null(strstr(err, url));
    cJSON_Delete(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
