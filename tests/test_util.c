/*
 * test_util.c — the small shared algorithms of libmiles/util.c (internal.h):
 * the calendar's month lengths, the unbiased bounded draw, the seeded
 * shuffle, the stable sort with a context, a shape's text.  Everything that
 * splits, shuffles or sorts data goes through them, so they get their own
 * checks: against a reference (qsort plus index tie-break, the Gregorian
 * rules) and at their edges (0 and 1 elements, a 1-byte buffer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"
#include "internal.h"
#include "helpers.h"

static void test_days_in_month(void **state) {
    (void)state;
    static const int common[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const struct { int64_t y; int leap; } years[] = {
        {2023, 0}, {2024, 1}, {1900, 0}, {2000, 1}, {2100, 0}, {1600, 1}, {1969, 0}, {-4, 1}, {0, 1}};
    for (size_t k = 0; k < sizeof years / sizeof *years; k++)
        for (int m = 1; m <= 12; m++)
            assert_int_equal(miles_days_in_month(years[k].y, m), common[m - 1] + (m == 2 && years[k].leap));
    assert_int_equal(miles_days_in_month(2024, 0), 0);
    assert_int_equal(miles_days_in_month(2024, 13), 0);
    assert_int_equal(miles_days_in_month(2024, -1), 0);
}

static void test_rand_below(void **state) {
    (void)state;
    uint64_t st = 42;
    assert_int_equal(miles_rand_below(&st, 0), 0);
    assert_int_equal(miles_rand_below(&st, 1), 0);
    assert_int_equal(st, 42);   /* n <= 1 draws nothing */
    /* uniform over [0, n): counts of 60000 draws for n = 3, each within 4 sigma */
    int cnt[3] = {0, 0, 0};
    for (int i = 0; i < 60000; i++) {
        uint64_t x = miles_rand_below(&st, 3);
        assert_true(x < 3);
        cnt[x]++;
    }
    printf("  rand_below(3) x 60000: %d %d %d\n", cnt[0], cnt[1], cnt[2]);
    for (int i = 0; i < 3; i++) assert_true(abs(cnt[i] - 20000) < 4 * 116);
    /* a bound near 2^64 (the rejection zone is large): still below n */
    for (int i = 0; i < 1000; i++) assert_true(miles_rand_below(&st, UINT64_MAX - 5) < UINT64_MAX - 5);
}

static void test_shuffle(void **state) {
    (void)state;
    int a[50], seen[50];
    for (int i = 0; i < 50; i++) a[i] = i;
    uint64_t st = 7;
    miles_shuffle(a, 0, sizeof *a, &st);
    miles_shuffle(a, 1, sizeof *a, &st);
    assert_int_equal(a[0], 0);
    miles_shuffle(a, 50, sizeof *a, &st);
    memset(seen, 0, sizeof seen);
    int moved = 0;
    for (int i = 0; i < 50; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);   /* a permutation */
    assert_true(moved > 40);
    /* every position of 3 elements equally likely: each of the 6 orders ~1/6 */
    int orders[6] = {0};
    for (int r = 0; r < 60000; r++) {
        int b[3] = {0, 1, 2};
        miles_shuffle(b, 3, sizeof *b, &st);
        orders[b[0] * 2 + (b[1] > b[2])]++;
    }
    for (int i = 0; i < 6; i++) assert_true(abs(orders[i] - 10000) < 4 * 92);
    /* the same seed, the same order */
    int c[50], d[50];
    for (int i = 0; i < 50; i++) c[i] = d[i] = i;
    uint64_t s1 = 99, s2 = 99;
    miles_shuffle(c, 50, sizeof *c, &s1);
    miles_shuffle(d, 50, sizeof *d, &s2);
    assert_memory_equal(c, d, sizeof c);
}

typedef struct { int key, idx; } Item;
static int cmp_key(const void *x, const void *y, void *ctx) {
    int *calls = ctx;
    (*calls)++;
    const Item *a = x, *b = y;
    return (a->key > b->key) - (a->key < b->key);
}
static int cmp_key_idx(const void *x, const void *y) {
    const Item *a = x, *b = y;
    if (a->key != b->key) return (a->key > b->key) - (a->key < b->key);
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static void test_sort_r(void **state) {
    (void)state;
    int calls = 0;
    assert_int_equal(miles_sort_r(NULL, 0, sizeof(Item), cmp_key, &calls), MILES_OK);
    Item one = {5, 0};
    assert_int_equal(miles_sort_r(&one, 1, sizeof one, cmp_key, &calls), MILES_OK);
    assert_int_equal(calls, 0);
    /* stable: equal keys keep their input order (qsort with the index as a tie-break is the reference) */
    const size_t sizes[] = {2, 3, 7, 64, 1000, 1025};
    uint64_t st = 3;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        Item *a = malloc(n * sizeof *a), *ref = malloc(n * sizeof *ref);
        for (size_t i = 0; i < n; i++) {
            a[i].key = (int)miles_rand_below(&st, n / 3 + 1);   /* many ties */
            a[i].idx = (int)i;
        }
        memcpy(ref, a, n * sizeof *a);
        qsort(ref, n, sizeof *ref, cmp_key_idx);
        calls = 0;
        assert_int_equal(miles_sort_r(a, n, sizeof *a, cmp_key, &calls), MILES_OK);
        assert_memory_equal(a, ref, n * sizeof *a);
        assert_true(calls > 0);   /* the context reaches the comparator */
        free(a);
        free(ref);
    }
}

static void test_shape_str(void **state) {
    (void)state;
    char out[64];
    const int64_t sh[3] = {2, 384, 1536};
    miles_shape_str(out, sizeof out, 3, sh);
    assert_string_equal(out, "[2,384,1536]");
    miles_shape_str(out, sizeof out, 1, sh);
    assert_string_equal(out, "[2]");
    miles_shape_str(out, sizeof out, 0, sh);
    assert_string_equal(out, "[]");
    const int64_t neg[2] = {-1, 9007199254740993LL};
    miles_shape_str(out, sizeof out, 2, neg);
    assert_string_equal(out, "[-1,9007199254740993]");
    /* a short buffer: truncated, always terminated, never overrun */
    char small[8];
    memset(small, 'x', sizeof small);
    miles_shape_str(small, 6, 3, sh);
    assert_string_equal(small, "[2,38");
    assert_int_equal(small[6], 'x');
    miles_shape_str(small, 1, 3, sh);
    assert_string_equal(small, "");
    small[0] = 'x';
    miles_shape_str(small, 0, 3, sh);   /* cap 0: nothing written */
    assert_int_equal(small[0], 'x');
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days_in_month),
        cmocka_unit_test(test_rand_below),
        cmocka_unit_test(test_shuffle),
        cmocka_unit_test(test_sort_r),
        cmocka_unit_test(test_shape_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
