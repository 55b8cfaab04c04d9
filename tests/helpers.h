/*
 * helpers.h — helpers shared by the cmocka test programs (tests/helpers.c
 * is linked into every test by the Makefile).  Include after <cmocka.h>.
 */
#ifndef MILES_TEST_HELPERS_H
#define MILES_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "miles.h"

/* A library call that must succeed: on failure the test fails with the
 * status name and miles_last_error(). */
#define OK(x)                                                                                             \
    do {                                                                                                  \
        int _s = (x);                                                                                     \
        if (_s != MILES_OK) fail_msg("%s -> %s: %s", #x, miles_status_name(_s), miles_last_error());      \
    } while (0)

/* The seed schema's 58 column names in file order (written out here, apart
 * from libmiles, so the tests check the writers against the schema). */
extern const char *const test_seed_columns[58];

/* FNV-1a 64 of n bytes, continuing from h (start: TEST_FNV_BASIS). */
#define TEST_FNV_BASIS 1469598103934665603ULL
uint64_t test_fnv1a(uint64_t h, const void *p, size_t n);
/* test_fnv1a over all of a model's parameters (one contiguous block) */
uint64_t test_hash_params(uint64_t h, const MilesModel *m);

/* Inputs for pinned results (tests whose hash is a constant in the test, the
 * same on every machine): made with integer arithmetic and exact float
 * scalings only, no libm.  test_pin_uniform: splitmix64 -> [-1, 1).
 * test_pin_weights: every parameter 0.05 u (LayerNorm weights 1 + 0.05 u).
 * test_pin_batch: B <= 16 rows of T <= 32 tokens, row r of length T - 3 (r % 4),
 * token ids in [5, V), features in [-1.5, 1.5), labels r % 3 == 1. */
float test_pin_uniform(uint64_t *state);
void test_pin_weights(MilesModel *m, uint64_t seed);
typedef struct {
    int32_t ids[16 * 32], tt[16 * 32], mask[16 * 32], labels[16];
    float feats[16 * MILES_NUM_FEATURES], vel[16];
    MilesBatch b;
} TestPinBatch;
void test_pin_batch(TestPinBatch *x, int B, int T, int V, uint64_t seed);

/* mkdtemp of "/tmp/miles_<tag>_XXXXXX" into buf; 0 on success, -1 on failure. */
int test_mkdtemp(char *buf, size_t cap, const char *tag);
/* Remove a file or a directory tree (best effort, like rm -rf). */
void test_rm_rf(const char *path);
/* Entries of dir (not "." and ".."), only those whose name contains `part`
 * when part is not NULL; -1 if dir cannot be read. */
int test_count_entries(const char *dir, const char *part);
/* A whole file, NUL-terminated, malloc'd; *n (may be NULL) = its size.  NULL
 * if it cannot be read. */
char *test_slurp(const char *path, size_t *n);
/* Copy a file byte for byte; 0, or -1 if it cannot be read or written. */
int test_copy_file(const char *from, const char *to);
/* A whole file parsed as JSON (cJSON_Delete it); NULL, with the reason on
 * stderr, if it cannot be read or parsed: setups return -1 on it, tests
 * assert_non_null. */
struct cJSON;
struct cJSON *test_read_json(const char *path);
/* A JSON array of numbers as a malloc'd array (free it); *n its length.
 * Fails the test if a is not an array or holds a non-number. */
double *test_json_doubles(const struct cJSON *a, int *n);
int32_t *test_json_ints(const struct cJSON *a, int *n);
/* o[k] as a number; fails the test if it is absent or not a number. */
double test_json_num(const struct cJSON *o, const char *k);
/* A golden comparison: fails (naming case and quantity) unless |got - want| / scale <= tol;
 * *worst keeps the largest such error seen, for the test's report. */
void test_close_to(double *worst, const char *cname, const char *what, double got, double want, double scale,
                   double tol);
/* Fails the test unless files a and b both read and hold the same bytes. */
void test_assert_same_file(const char *a, const char *b);
/* The shared data directory: $MILES_SHARED, else ../shared. */
const char *test_shared_dir(void);
/* A WordPiece vocabulary for the tests: the committed fixtures, else the
 * MiniLM weights' vocab.txt; NULL if none is readable. */
const char *test_find_vocab(void);
/* The tools' directory: $MILES_BIN, else build/bin. */
const char *test_bin_dir(void);
/* buf = <bin dir>/<tool>.  When that is not an executable the test fails if
 * MILES_BIN is set (`make test` sets it: the tools are expected there) and is
 * skipped otherwise (a test program run by hand before the tools are built). */
void test_tool(char *buf, size_t cap, const char *tool);
/* max |a[i] - b[i]| in double; a NaN on either side gives NaN, so a
 * `<= tol` check fails on it. */
double test_max_abs_diff(const float *a, const float *b, size_t n);
/* The larger of an error accumulator m and a new error d, for `m =
 * test_max_err(m, d)` loops: a NaN on either side is kept.  fmax(m, NaN) = m
 * (and `if (d > m) m = d`) would hide a NaN result behind the maximum so far,
 * and the `m < tol` check after the loop would pass on it. */
double test_max_err(double m, double d);
/* A fixture tensor read whole into a malloc'd buffer (one spare element, so
 * an empty tensor still gets a pointer); the test fails, naming the tensor, if
 * it is missing or not readable as that type.  ndim, shape (8 entries) and n
 * may be NULL. */
float *test_st_f32(const MilesSafetensors *st, const char *name, int *ndim, int64_t *shape, size_t *n);
int32_t *test_st_i32(const MilesSafetensors *st, const char *name, int *ndim, int64_t *shape, size_t *n);

#endif
