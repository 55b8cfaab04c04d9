/*
 * test_csv.c — the RFC 4180 reader: quoting, embedded newlines, CRLF, BOM,
 * empty fields, blank lines, ragged rows, invalid UTF-8, unterminated quotes,
 * error positions (file:line:column), streaming over chunk boundaries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miles.h"
#include "csv_internal.h"

/* Parse all of `text`; returns records read, or the error status (< 0).
 * got[r][f] collects up to 8 x 8 fields. */
static char got[8][8][64];
static int got_nf[8];
static int parse_all(const char *text, size_t n) {
    MilesCsv *r;
    assert_int_equal(miles_csv_open_mem(&r, "t.csv", text, n), MILES_OK);
    int nf, st, rec = 0;
    const char *const *f;
    memset(got, 0, sizeof got);
    while ((st = miles_csv_next(r, &nf, &f)) == 1) {
        if (rec < 8) {
            got_nf[rec] = nf;
            for (int i = 0; i < nf && i < 8; i++) snprintf(got[rec][i], sizeof got[rec][i], "%s", f[i]);
        }
        rec++;
    }
    miles_csv_free(r);
    return st < 0 ? st : rec;
}
static int parse_str(const char *text) { return parse_all(text, strlen(text)); }

static void test_basic(void **state) {
    (void)state;
    assert_int_equal(parse_str("a,b,c\n1,2,3\n"), 2);
    assert_int_equal(got_nf[0], 3);
    assert_string_equal(got[1][2], "3");
    /* no trailing newline */
    assert_int_equal(parse_str("a,b\n1,2"), 2);
    assert_string_equal(got[1][1], "2");
    /* the smallest and largest code point of each UTF-8 length pass (the
     * overlong and beyond-U+10FFFF checks in test_errors are one value away) */
    assert_int_equal(parse_str("a,b,c,d\n\xC2\x80,\xE0\xA0\x80,\xF0\x90\x80\x80,\xF4\x8F\xBF\xBF\n"), 2);
    assert_string_equal(got[1][2], "\xF0\x90\x80\x80");
    assert_string_equal(got[1][3], "\xF4\x8F\xBF\xBF");
    /* a header's columns by name; the records read so far */
    MilesCsv *r;
    assert_int_equal(miles_csv_open_mem(&r, "t.csv", "id,title,views\n1,x,5\n", 21), MILES_OK);
    int nf;
    const char *const *f;
    assert_int_equal(miles_csv_records(r), 0);
    assert_int_equal(miles_csv_next(r, &nf, &f), 1);
    assert_int_equal(miles_csv_column(f, nf, "id"), 0);
    assert_int_equal(miles_csv_column(f, nf, "views"), 2);
    assert_int_equal(miles_csv_column(f, nf, "View"), -1);
    assert_int_equal(miles_csv_column(f, nf, "title"), 1);
    assert_int_equal(miles_csv_next(r, &nf, &f), 1);
    assert_int_equal(miles_csv_records(r), 2);
    miles_csv_free(r);
}

static void test_quotes(void **state) {
    (void)state;
    assert_int_equal(parse_str("t,u\n\"a,b\",\"say \"\"hi\"\"\"\n"), 2);
    assert_string_equal(got[1][0], "a,b");
    assert_string_equal(got[1][1], "say \"hi\"");
    /* embedded newline (LF and CRLF kept as-is inside quotes) */
    assert_int_equal(parse_str("t,u\r\n\"line1\nline2\",\"x\r\ny\"\r\nlast,row\r\n"), 3);
    assert_string_equal(got[1][0], "line1\nline2");
    assert_string_equal(got[1][1], "x\r\ny");
    assert_string_equal(got[2][1], "row");
    /* empty quoted field */
    assert_int_equal(parse_str("a,b\n\"\",x\n"), 2);
    assert_string_equal(got[1][0], "");
}

static void test_crlf_bom_empty(void **state) {
    (void)state;
    assert_int_equal(parse_str("\xEF\xBB\xBFid,title\r\n1,hello\r\n"), 2);
    assert_string_equal(got[0][0], "id"); /* BOM is not part of the first name */
    assert_string_equal(got[1][1], "hello");
    /* a first character in U+F000..U+FFFF also starts with EF: data, not a bad BOM */
    assert_int_equal(parse_str("\xEF\x80\x80x,y\n1,2\n"), 2);
    assert_string_equal(got[0][0], "\xEF\x80\x80x");
    assert_int_equal(parse_str("\xEF\xBF\xBD\n"), 1);
    assert_string_equal(got[0][0], "\xEF\xBF\xBD");
    /* the same through a file (the chunked reader) */
    {
        char path[] = "/tmp/miles_csv_bomXXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "\xEF\x9C\x80,b\n", 6), 6);
        close(fd);
        MilesCsv *r = NULL;
        assert_int_equal(miles_csv_open(&r, path), MILES_OK);
        int nf;
        const char *const *f;
        assert_int_equal(miles_csv_next(r, &nf, &f), 1);
        assert_string_equal(f[0], "\xEF\x9C\x80");
        miles_csv_free(r);
        unlink(path);
    }
    /* a truncated BOM is still invalid UTF-8 */
    assert_true(parse_str("\xEF\xBBx,y\n") < 0);
    assert_true(parse_str("\xEF") < 0);
    /* empty fields, trailing empty field */
    assert_int_equal(parse_str("a,b,c\n,,\n1,,\n"), 3);
    assert_int_equal(got_nf[1], 3);
    assert_string_equal(got[1][0], "");
    assert_string_equal(got[2][2], "");
    /* blank lines are skipped; bare CR line ends */
    assert_int_equal(parse_str("a,b\n\n1,2\n\r\n3,4\r5,6"), 4);
    assert_string_equal(got[3][0], "5");
    /* empty input: no records */
    assert_int_equal(parse_str(""), 0);
    assert_int_equal(parse_str("\xEF\xBB\xBF"), 0);
}

static void expect_error(const char *text, size_t n, int code, const char *needle) {
    int st = parse_all(text, n);
    printf("  error: %s\n", miles_last_error());
    assert_int_equal(st, code);
    if (!strstr(miles_last_error(), needle)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", miles_last_error(), needle);
        fail();
    }
}

static void test_errors(void **state) {
    (void)state;
    /* ragged row: names the line */
    expect_error("a,b,c\n1,2,3\n4,5\n", 17, MILES_EFORMAT, "t.csv:3:");
    expect_error("a,b\n1,2,3\n", 10, MILES_EFORMAT, "has 3 fields, expected 2");
    /* unterminated quote: position of the opening quote */
    expect_error("a,b\n1,\"open\n\nmore", 17, MILES_EFORMAT, "t.csv:2:3: unterminated");
    /* garbage after a closing quote */
    expect_error("a,b\n\"x\"y,2\n", 11, MILES_EFORMAT, "t.csv:2:4:");
    /* quote inside an unquoted field */
    expect_error("a,b\nab\"c,2\n", 11, MILES_EFORMAT, "t.csv:2:3:");
    /* invalid UTF-8: lone continuation byte on line 2, byte column 4 */
    expect_error("a,b\n1,2\x80x\n", 10, MILES_EFORMAT, "t.csv:2:4: invalid UTF-8");
    /* overlong encoding of '/' */
    expect_error("a,b\n\xC0\xAF,1\n", 9, MILES_EFORMAT, "t.csv:2:1: invalid UTF-8");
    /* overlong 3- and 4-byte forms of the largest 2- and 3-byte code points:
     * the lead bytes are valid, only the decoded value shows it (one below the
     * length's smallest); the position is the lead byte's */
    expect_error("a,b\n1,x\xE0\x9F\xBF\n", 11, MILES_EFORMAT, "t.csv:2:4: invalid UTF-8: overlong encoding of U+07FF");
    expect_error("a\n\xF0\x8F\xBF\xBF\n", 7, MILES_EFORMAT, "t.csv:2:1: invalid UTF-8: overlong encoding of U+FFFF");
    /* F4 90 80 80 would be U+110000 */
    expect_error("a\n\xF4\x90\x80\x80\n", 7, MILES_EFORMAT, "t.csv:2:1: invalid UTF-8: code point beyond U+10FFFF");
    /* encoded surrogates: both ends of the range; the code points beside it pass */
    expect_error("a\n\xED\xA0\x80\n", 6, MILES_EFORMAT, "surrogate U+D800");
    expect_error("a\n\xED\xBF\xBF\n", 6, MILES_EFORMAT, "surrogate U+DFFF");
    assert_int_equal(parse_str("a,b\n\xED\x9F\xBF,\xEE\x80\x80\n"), 2); /* U+D7FF, U+E000 */
    /* truncated sequence before a comma */
    expect_error("a,b\nx\xE2\x82,1\n", 10, MILES_EFORMAT, "t.csv:2:2: invalid UTF-8");
    /* truncated at end of file */
    expect_error("a\n\xF0\x9F", 4, MILES_EFORMAT, "end of file");
    /* NUL byte */
    expect_error("a,b\n1,\0\n", 8, MILES_EFORMAT, "t.csv:2:3: NUL");
    /* the error is sticky */
    MilesCsv *r;
    assert_int_equal(miles_csv_open_mem(&r, "t.csv", "a\n\"x", 4), MILES_OK);
    int nf;
    const char *const *f;
    assert_int_equal(miles_csv_next(r, &nf, &f), 1);
    assert_int_equal(miles_csv_next(r, &nf, &f), MILES_EFORMAT);
    assert_int_equal(miles_csv_next(r, &nf, &f), MILES_EFORMAT);
    miles_csv_free(r);
}

static void test_field_positions(void **state) {
    (void)state;
    MilesCsv *r;
    const char *t = "id,title,views\n1,\"multi\nline\",abc\n";
    assert_int_equal(miles_csv_open_mem(&r, "p.csv", t, strlen(t)), MILES_OK);
    int nf;
    const char *const *f;
    assert_int_equal(miles_csv_next(r, &nf, &f), 1);
    assert_int_equal(miles_csv_next(r, &nf, &f), 1);
    int64_t line, col;
    assert_int_equal(miles_csv_record_line(r), 2);
    assert_int_equal(miles_csv_field_pos(r, 1, &line, &col), MILES_OK);
    assert_int_equal(line, 2); assert_int_equal(col, 3);
    assert_int_equal(miles_csv_field_pos(r, 2, &line, &col), MILES_OK);
    assert_int_equal(line, 3); assert_int_equal(col, 7); /* after 'line",' on the third physical line */
    assert_int_not_equal(miles_csv_field_pos(r, 3, &line, &col), MILES_OK);
    miles_csv_free(r);
}

/* Streaming from a file larger than the 64 KiB read chunk, with quoted
 * newlines and multi-byte characters straddling chunk boundaries. */
static void test_file_streaming(void **state) {
    (void)state;
    char path[] = "/tmp/miles_test_csv_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    fputs("\xEF\xBB\xBFid,title,n\r\n", fp);
    const int rows = 20000;
    for (int i = 0; i < rows; i++) fprintf(fp, "%d,\"t\xC3\xA9st \"\"%d\"\"\nnext, \xF0\x9F\x8E\xAE\",%d\r\n", i, i, i * 3);
    fclose(fp);
    MilesCsv *r;
    assert_int_equal(miles_csv_open(&r, path), MILES_OK);
    int nf, st, rec = 0;
    const char *const *f;
    assert_int_equal(miles_csv_next(r, &nf, &f), 1);
    char want[128];
    while ((st = miles_csv_next(r, &nf, &f)) == 1) {
        assert_int_equal(nf, 3);
        snprintf(want, sizeof want, "t\xC3\xA9st \"%d\"\nnext, \xF0\x9F\x8E\xAE", rec);
        assert_string_equal(f[1], want);
        assert_int_equal(atoi(f[2]), rec * 3);
        assert_int_equal(miles_csv_record_line(r), 2 + 2 * rec);
        rec++;
    }
    assert_int_equal(st, 0);
    assert_int_equal(rec, rows);
    assert_int_equal(miles_csv_records(r), rows + 1);
    miles_csv_free(r);
    unlink(path);
    assert_int_equal(miles_csv_open(&r, "/nonexistent/x.csv"), MILES_EMISSING);
    assert_null(r);
}

/* The 5 real rows: 58 columns, UTF-8 titles with emoji. */
static void test_reference_rows(void **state) {
    (void)state;
    const char *sh = getenv("MILES_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/data/reference_synthetic_target/youtube_shorts_tiktok_trends_2025_HEAD5_from_author_notebook.csv",
             sh ? sh : "../shared");
    if (access(path, R_OK) != 0) { printf("  skip: %s not found\n", path); skip(); }
    MilesCsv *r;
    assert_int_equal(miles_csv_open(&r, path), MILES_OK);
    int nf, st, rec = 0;
    const char *const *f;
    while ((st = miles_csv_next(r, &nf, &f)) == 1) {
        assert_int_equal(nf, 58);
        if (rec == 1) assert_string_equal(f[42], "Night Routine \xE2\x80\x94 Productivity \xF0\x9F\x8F\x96\xEF\xB8\x8F");
        if (rec == 1) assert_string_equal(f[35], "daily, lifestyle, motivation");
        rec++;
    }
    assert_int_equal(st, 0);
    assert_int_equal(rec, 6);
    miles_csv_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),          cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_crlf_bom_empty), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_field_positions), cmocka_unit_test(test_file_streaming),
        cmocka_unit_test(test_reference_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
