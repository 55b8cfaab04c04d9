/*
 * helpers.c — helpers shared by the test programs (helpers.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <unistd.h>

/* MILES_TEST_ONLY / MILES_TEST_SKIP (cmocka patterns, '*' and '?'): run some
 * of a program's tests, e.g. MILES_TEST_SKIP='*bits*' for a coverage build,
 * where the every-float tests take an hour.  Read before main: every test
 * program links this file. */
__attribute__((constructor)) static void test_filters_from_env(void) {
    const char *only = getenv("MILES_TEST_ONLY"), *skip = getenv("MILES_TEST_SKIP");
    if (only && *only) cmocka_set_test_filter(only);
    if (skip && *skip) cmocka_set_skip_filter(skip);
}

int test_mkdtemp(char *buf, size_t cap, const char *tag) {
    if (snprintf(buf, cap, "/tmp/miles_%s_XXXXXX", tag) >= (int)cap) return -1;
    return mkdtemp(buf) ? 0 : -1;
}

void test_rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    DIR *d = S_ISDIR(sb.st_mode) ? opendir(path) : NULL;
    if (!d) { unlink(path); return; }
    struct dirent *de;
    char p[4096];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
            snprintf(p, sizeof p, "%s/%s", path, de->d_name) < (int)sizeof p)
            test_rm_rf(p);
    closedir(d);
    rmdir(path);
}

int test_count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && (!part || strstr(de->d_name, part))) n++;
    closedir(d);
    return n;
}

char *test_slurp(const char *path, size_t *n) {
    if (n) *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)len + 1)) && fread(b, 1, (size_t)len, f) == (size_t)len) {
        b[len] = 0;
        if (n) *n = (size_t)len;
    } else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

int test_copy_file(const char *from, const char *to) {
    size_t n;
    char *b = test_slurp(from, &n);
    FILE *f = b ? fopen(to, "wb") : NULL;
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    free(b);
    return ok ? 0 : -1;
}

struct cJSON *test_read_json(const char *path) {
    char *t = test_slurp(path, NULL);
    if (!t) {
        fprintf(stderr, "cannot read %s (tests run from the repository root)\n", path);
        return NULL;
    }
    cJSON *o = cJSON_Parse(t);
    free(t);
    if (!o) fprintf(stderr, "%s: not valid JSON\n", path);
    return o;
}

double *test_json_doubles(const cJSON *a, int *n) {
    if (!cJSON_IsArray(a)) fail_msg("test_json_doubles: not a JSON array");
    *n = cJSON_GetArraySize(a);
    double *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    assert_non_null(v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsNumber(x)) fail_msg("test_json_doubles: element %d is not a number", i);
        v[i++] = x->valuedouble;
    }
    return v;
}

double test_json_num(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x)) fail_msg("JSON: no number \"%s\"", k);
    return x->valuedouble;
}

int32_t *test_json_ints(const cJSON *a, int *n) {
    double *d = test_json_doubles(a, n);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < *n; i++) v[i] = (int32_t)d[i];
    free(d);
    return v;
}

void test_assert_same_file(const char *a, const char *b) {
    size_t na, nb;
    char *da = test_slurp(a, &na), *db = test_slurp(b, &nb);
    if (!da || !db) fail_msg("cannot read %s", da ? b : a);
    if (na != nb || memcmp(da, db, na) != 0) fail_msg("%s (%zu bytes) and %s (%zu bytes) differ", a, na, b, nb);
    free(da);
    free(db);
}

const char *test_shared_dir(void) {
    const char *s = getenv("MILES_SHARED");
    return s && *s ? s : "../shared";
}

const char *test_find_vocab(void) {
    static const char *c[] = {"tests/fixtures/vocab.txt", "tests/fixtures/tokenizer_vocab.txt",
                              "models/all-MiniLM-L6-v2/vocab.txt"};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        if (access(c[i], R_OK) == 0) return c[i];
    return NULL;
}

const char *test_bin_dir(void) {
    const char *b = getenv("MILES_BIN");
    return b && *b ? b : "build/bin";
}

void test_tool(char *buf, size_t cap, const char *tool) {
    if (snprintf(buf, cap, "%s/%s", test_bin_dir(), tool) >= (int)cap) fail_msg("tool path too long: %s", tool);
    if (access(buf, X_OK) == 0) return;
    if (getenv("MILES_BIN") && *getenv("MILES_BIN")) fail_msg("%s is not built (MILES_BIN is set)", buf);
    printf("  skip: %s not built (set MILES_BIN to require it)\n", buf);
    skip();
}

double test_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = test_max_err(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

double test_max_err(double m, double d) {
    return isnan(m) || isnan(d) ? NAN : d > m ? d : m;
}

/* find + info + allocate: the shared half of the two readers */
static void *st_alloc(const MilesSafetensors *st, const char *name, size_t elem, int *i, int *ndim, int64_t *shape,
                      size_t *n) {
    int nd = 0;
    int64_t sh[8];
    size_t numel = 0;
    *i = miles_safetensors_find(st, name);
    if (*i < 0) fail_msg("fixture tensor %s missing", name);
    if (miles_safetensors_info(st, *i, NULL, &nd, sh, &numel) != MILES_OK)
        fail_msg("fixture tensor %s: %s", name, miles_last_error());
    if (ndim) *ndim = nd;
    if (shape) memcpy(shape, sh, sizeof sh);
    if (n) *n = numel;
    void *p = malloc((numel + 1) * elem);
    if (!p) fail_msg("fixture tensor %s: out of memory", name);
    return p;
}

float *test_st_f32(const MilesSafetensors *st, const char *name, int *ndim, int64_t *shape, size_t *n) {
    int i;
    size_t numel;
    float *p = st_alloc(st, name, sizeof(float), &i, ndim, shape, &numel);
    if (miles_safetensors_read_f32(st, i, p, numel) != MILES_OK)
        fail_msg("fixture tensor %s: %s", name, miles_last_error());
    if (n) *n = numel;
    return p;
}

int32_t *test_st_i32(const MilesSafetensors *st, const char *name, int *ndim, int64_t *shape, size_t *n) {
    int i;
    size_t numel;
    int32_t *p = st_alloc(st, name, sizeof(int32_t), &i, ndim, shape, &numel);
    if (miles_safetensors_read_i32(st, i, p, numel) != MILES_OK)
        fail_msg("fixture tensor %s: %s", name, miles_last_error());
    if (n) *n = numel;
    return p;
}

const char *const test_seed_columns[58] = {
    "platform", "country", "region", "language", "category", "hashtag", "title_keywords", "author_handle",
    "sound_type", "music_track", "week_of_year", "duration_sec", "views", "likes", "comments", "shares", "saves",
    "engagement_rate", "trend_label", "source_hint", "notes", "device_type", "upload_hour", "genre",
    "trend_duration_days", "trend_type", "engagement_velocity", "dislikes", "comment_ratio", "share_rate",
    "save_rate", "like_dislike_ratio", "publish_dayofweek", "publish_period", "event_season", "tags",
    "sample_comments", "creator_avg_views", "creator_tier", "season", "publish_date_approx", "year_month", "title",
    "title_length", "has_emoji", "avg_watch_time_sec", "completion_rate", "device_brand", "traffic_source",
    "is_weekend", "row_id", "engagement_total", "like_rate", "dislike_rate", "engagement_per_1k",
    "engagement_like_rate", "engagement_comment_rate", "engagement_share_rate"};

uint64_t test_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

uint64_t test_hash_params(uint64_t h, const MilesModel *m) {
    MilesTensorInfo t0;
    assert_int_equal(miles_model_tensor(m, 0, &t0), MILES_OK);
    return test_fnv1a(h, t0.data, miles_model_num_params(m) * sizeof(float));
}

float test_pin_uniform(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float)(int32_t)(uint32_t)(z >> 32) * (1.0f / 2147483648.0f);
}

void test_pin_weights(MilesModel *m, uint64_t seed) {
    uint64_t st = seed;
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        assert_int_equal(miles_model_tensor(m, t, &ti), MILES_OK);
        int ln = strstr(ti.name, "LayerNorm.weight") != NULL;
        for (size_t i = 0; i < ti.numel; i++) ti.data[i] = (ln ? 1.0f : 0.0f) + 0.05f * test_pin_uniform(&st);
    }
}

void test_pin_batch(TestPinBatch *x, int B, int T, int V, uint64_t seed) {
    assert_true(B >= 1 && B <= 16 && T >= 10 && T <= 32 && V > 6);
    memset(x, 0, sizeof *x);
    uint64_t st = seed;
    for (int r = 0; r < B; r++) {
        int len = T - 3 * (r % 4);
        for (int t = 0; t < len; t++) {
            int i = r * T + t;
            x->ids[i] = t == 0 ? 2 : 5 + (int)(((test_pin_uniform(&st) + 1.0f) * 0.5f) * (float)(V - 6));
            x->mask[i] = 1;
            x->tt[i] = r % 2 && t > len / 2;
        }
        for (int j = 0; j < MILES_NUM_FEATURES; j++)
            x->feats[r * MILES_NUM_FEATURES + j] = 1.5f * test_pin_uniform(&st);
        x->labels[r] = r % 3 == 1;
        x->vel[r] = 0.5f + 0.4f * test_pin_uniform(&st);
    }
    MilesBatch b = {B, T, x->ids, x->tt, x->mask, x->feats, x->labels, x->vel};
    x->b = b;
}

void test_close_to(double *worst, const char *cname, const char *what, double got, double want, double scale,
                   double tol) {
    double err = fabs(got - want) / scale;
    if (err > *worst) *worst = err;
    if (!(err <= tol)) fail_msg("%s: %s = %.17g, reference %.17g (error %.3e)", cname, what, got, want, err);
}
