/*
 * test_tool_common.c — the helpers every miles-* tool shares
 * (tools/tool_common.c): escaping of echoed text, option numbers and their
 * bounds, feature lists, mkdir -p.  The CLI scripts (tests/test_cli.sh) run
 * them through the tools; here each rule is checked at its edges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miles.h"
#include "tool_common.h"
#include "helpers.h"

/* What tool_put_escaped writes for s. */
static char *escaped(const char *s) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    tool_put_escaped(f, s);
    fclose(f);
    return buf;
}

static void test_put_escaped(void **state) {
    (void)state;
    const struct { const char *in, *out; } cases[] = {
        {"plain text", "plain text"},
        {"", ""},
        {"a\nb\tc\r", "a\\x0ab\\x09c\\x0d"},               /* control bytes */
        {"del\x7f", "del\\x7f"},
        {"caf\xC3\xA9 \xE2\x9C\xA8 \xF0\x9F\x98\x82", "caf\xC3\xA9 \xE2\x9C\xA8 \xF0\x9F\x98\x82"},   /* 2, 3, 4 bytes */
        {"\xC3x", "\\xc3x"},                                  /* a lead byte without its continuation */
        {"\xC3", "\\xc3"},                                    /* ... at the end */
        {"\xE2\x9C", "\\xe2\\x9c"},                           /* a cut 3-byte sequence */
        {"\xC0\xAF", "\\xc0\\xaf"},                           /* overlong '/' */
        {"\xC1\xBF", "\\xc1\\xbf"},
        {"\xF5\x80\x80\x80", "\\xf5\\x80\\x80\\x80"},         /* beyond U+10FFFF */
        {"\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"},             /* U+10FFFF itself */
        {"\x80z", "\\x80z"},                                  /* a lone continuation byte */
        {"\xF8\x88\x80\x80\x80", "\\xf8\\x88\\x80\\x80\\x80"},   /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = escaped(cases[i].in);
        if (strcmp(got, cases[i].out)) fail_msg("case %zu: \"%s\", want \"%s\"", i, got, cases[i].out);
        free(got);
    }
}

static void test_parse_numbers(void **state) {
    (void)state;
    int v = -7;
    const struct { const char *s; int ok, want; } ints[] = {
        {"5", 1, 5}, {"1", 1, 1}, {"10", 1, 10}, {"-0", 0, 0}, {"0", 0, 0}, {"11", 0, 0}, {"5x", 0, 0}, {"", 0, 0},
        {"x", 0, 0}, {"99999999999999999999", 0, 0}, {"5.0", 0, 0}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        v = -7;
        int rc = tool_parse_int(ints[i].s, "--n", 1, 10, &v);
        if (rc != !ints[i].ok) fail_msg("\"%s\": %d", ints[i].s, rc);
        assert_int_equal(v, ints[i].ok ? ints[i].want : -7);   /* untouched when refused */
    }
    assert_int_equal(tool_parse_int("-3", "--n", -5, -1, &v), 0);
    assert_int_equal(v, -3);
    double d;
    const struct { const char *s; int ok; double want; } dbls[] = {
        {"0.5", 1, 0.5}, {"0", 1, 0}, {"1", 1, 1}, {"1e-3", 1, 1e-3}, {"1.0000001", 0, 0}, {"-1e-9", 0, 0},
        {"nan", 0, 0}, {"inf", 0, 0}, {"1e999", 0, 0}, {"0.5x", 0, 0}, {"", 0, 0}};
    for (size_t i = 0; i < sizeof dbls / sizeof *dbls; i++) {
        d = -7;
        int rc = tool_parse_double(dbls[i].s, "--p", 0.0, 1.0, &d);
        if (rc != !dbls[i].ok) fail_msg("\"%s\": %d", dbls[i].s, rc);
        assert_true(d == (dbls[i].ok ? dbls[i].want : -7));
    }
    /* an unbounded range still refuses what is not finite */
    assert_int_equal(tool_parse_double("1e308", "--p", -INFINITY, INFINITY, &d), 0);
    assert_int_equal(tool_parse_double("-inf", "--p", -INFINITY, INFINITY, &d), 1);
}

static void test_feature_mask(void **state) {
    (void)state;
    uint32_t m = 99;
    assert_int_equal(tool_feature_mask("views", &m), 0);
    assert_int_equal(m, 1u);
    assert_int_equal(tool_feature_mask("views,likes,publish_dayofweek", &m), 0);
    assert_int_equal(m, 1u | 2u | (1u << (MILES_NUM_FEATURES - 1)));
    assert_string_equal(miles_feature_names[MILES_NUM_FEATURES - 1], "publish_dayofweek");
    assert_int_equal(tool_feature_mask("likes,,likes", &m), 0);   /* repeats and empty items are harmless */
    assert_int_equal(m, 2u);
    assert_int_equal(tool_feature_mask("", &m), 0);
    assert_int_equal(m, 0u);
    assert_int_equal(tool_feature_mask("views,Likes", &m), 1);    /* names are exact */
    assert_int_equal(tool_feature_mask("view", &m), 1);
    /* the groups: counts = the first five features, rates the next six, engagement both; mixed with names */
    assert_int_equal(tool_feature_mask("counts", &m), 0);
    assert_int_equal(m, 0x1Fu);
    assert_int_equal(tool_feature_mask("rates", &m), 0);
    assert_int_equal(m, 0x7E0u);
    assert_string_equal(miles_feature_names[10], "save_rate");
    assert_int_equal(tool_feature_mask("engagement,creator_avg_views", &m), 0);
    assert_int_equal(m, 0x7FFu | 1u << 16);
    assert_int_equal(tool_feature_mask("counts,rates", &m), 0);
    assert_int_equal(m, 0x7FFu);
    assert_int_equal(tool_feature_mask("Counts", &m), 1);
    /* a long list is read whole (it was cut at 1,023 bytes) */
    char longl[4096] = "";
    for (int k = 0; k < 200; k++) strcat(longl, "likes,");   /* 1,217 bytes */
    strcat(longl, "publish_dayofweek");
    assert_int_equal(tool_feature_mask(longl, &m), 0);
    assert_int_equal(m, 2u | 1u << (MILES_NUM_FEATURES - 1));
}

static void test_mkdirs(void **state) {
    (void)state;
    char root[256], p[512];
    assert_int_equal(test_mkdtemp(root, sizeof root, "toolmk"), 0);
    snprintf(p, sizeof p, "%s/a/b/c", root);
    assert_int_equal(tool_mkdirs(p), 0);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(tool_mkdirs(p), 0);                 /* existing: fine */
    snprintf(p, sizeof p, "%s/a/b/c/", root);            /* a trailing slash */
    assert_int_equal(tool_mkdirs(p), 0);
    snprintf(p, sizeof p, "%s/file", root);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(p, sizeof p, "%s/file/sub", root);          /* a file in the way */
    assert_int_equal(tool_mkdirs(p), 1);
    test_rm_rf(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_escaped),
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_feature_mask),
        cmocka_unit_test(test_mkdirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
