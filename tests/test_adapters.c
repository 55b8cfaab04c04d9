/*
 * test_adapters.c — real data sources -> seed-schema CSV (libmiles/adapters*.c).
 *
 * Each adapter runs on its real file under $MILES_SHARED/data (skipped with a
 * message when absent): rows in/out are printed and asserted, a few values are
 * checked against numbers worked out independently (Python csv/json on the same
 * files, see docs/data_sources.md), and the output is read back with the data
 * module's CSV reader (58 fields per record, header in order).  yt-dlp input is
 * tested on the hand-made tests/fixtures/ytdlp_*.json.  Bad inputs (missing
 * file, malformed JSON, wrong columns, invalid UTF-8) must fail with a clear
 * message and leave no output (an existing output file stays untouched).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miles.h"
#include "sources_internal.h" /* writer and parsing helpers, tested directly */
#include "helpers.h"

static char tmpdir[256];
static char report[16384];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "test_adapters");
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

static int leftovers(void) { return test_count_entries(tmpdir, ".tmp."); }

/* One output file read back: rows as arrays of 58 strings. */
typedef struct {
    int64_t n;
    char *(*cell)[58];
} Out;

static int col(const char *name) {
    for (int i = 0; i < 58; i++)
        if (!strcmp(test_seed_columns[i], name)) return i;
    fail_msg("no column %s", name);
    return -1;
}

static void read_out(const char *path, Out *o) {
    MilesCsv *csv = NULL;
    assert_int_equal(miles_csv_open(&csv, path), MILES_OK);
    int nf;
    const char *const *f;
    assert_int_equal(miles_csv_next(csv, &nf, &f), 1);
    assert_int_equal(nf, 58);
    for (int i = 0; i < 58; i++) assert_string_equal(f[i], test_seed_columns[i]);
    size_t cap = 1024;
    o->n = 0;
    o->cell = malloc(cap * sizeof *o->cell);
    int s;
    while ((s = miles_csv_next(csv, &nf, &f)) == 1) {
        assert_int_equal(nf, 58);
        if ((size_t)o->n == cap) { cap *= 2; o->cell = realloc(o->cell, cap * sizeof *o->cell); }
        for (int i = 0; i < 58; i++) o->cell[o->n][i] = strdup(f[i]);
        /* title_length / has_emoji follow the data module's rules; every row has an id and a velocity */
        if (o->cell[o->n][42][0]) {
            assert_int_equal(atoll(o->cell[o->n][43]), miles_utf8_length(o->cell[o->n][42]));
            assert_int_equal(atoi(o->cell[o->n][44]), miles_has_emoji(o->cell[o->n][42], strlen(o->cell[o->n][42])));
        }
        assert_true(o->cell[o->n][50][0] != 0);
        assert_true(o->cell[o->n][26][0] != 0);
        o->n++;
    }
    assert_int_equal(s, 0);
    miles_csv_free(csv);
}

static void free_out(Out *o) {
    for (int64_t i = 0; i < o->n; i++)
        for (int k = 0; k < 58; k++) free(o->cell[i][k]);
    free(o->cell);
}

static char **find_row(Out *o, const char *id) {
    for (int64_t i = 0; i < o->n; i++)
        if (!strcmp(o->cell[i][50], id)) return o->cell[i];
    fail_msg("row_id %s not in output", id);
    return NULL;
}

static void assert_num(const char *cell, double want, double tol) {
    char *e;
    double v = strtod(cell, &e);
    if (!*cell || *e || !(fabs(v - want) <= tol)) fail_msg("cell \"%s\": expected %.6f +- %g", cell, want, tol);
}

static int convert(const char *kind, const char *in, const char *out) {
    report[0] = 0;
    int s = miles_adapter_convert(kind, in, out, report, sizeof report);
    printf("%s", report);
    if (s != MILES_OK) printf("  -> %s: %s\n", miles_status_name(s), miles_last_error());
    return s;
}

static int have(const char *path) {
    if (access(path, R_OK) == 0) return 1;
    printf("  skip: %s not found (set MILES_SHARED)\n", path);
    return 0;
}

/* ---------------------------------------------------------------- real files */

/* The trending set's other countries: CAvideos.csv -> CA (from the name),
 * "youtube2017:DE" (--country) overrides, unknown codes are refused. */
static void test_youtube2017_country(void **state) {
    (void)state;
    char in[1024], out[512], p[600];
    snprintf(in, sizeof in, "%s/data/youtube_trending_2017_v1/USvideos.csv", test_shared_dir());
    if (!have(in)) skip();
    /* the first 400 lines of the US file, under other names */
    snprintf(p, sizeof p, "%s/CAvideos.csv", tmpdir);
    FILE *fi = fopen(in, "rb"), *fo = fopen(p, "wb");
    assert_non_null(fi);
    assert_non_null(fo);
    char line[65536];
    for (int i = 0; i < 400 && fgets(line, sizeof line, fi); i++) fputs(line, fo);
    fclose(fi);
    fclose(fo);
    snprintf(out, sizeof out, "%s/ca.csv", tmpdir);
    assert_int_equal(convert("youtube2017", p, out), MILES_OK);
    assert_non_null(strstr(report, "country: CA (from the file name)"));
    Out o;
    read_out(out, &o);
    assert_true(o.n > 10);
    for (int64_t i = 0; i < o.n; i++) {
        assert_string_equal(o.cell[i][col("country")], "Ca");
        assert_string_equal(o.cell[i][col("region")], "North America");
        assert_string_equal(o.cell[i][col("source_hint")], "YouTube trending CA 2017 (CAvideos.csv)");
    }
    printf("  CAvideos.csv: %lld rows, country %s\n", (long long)o.n, o.cell[0][col("country")]);
    free_out(&o);
    assert_int_equal(convert("youtube2017:de", p, out), MILES_OK);
    read_out(out, &o);
    assert_string_equal(o.cell[0][col("country")], "De");
    assert_string_equal(o.cell[0][col("region")], "Europe");
    assert_string_equal(o.cell[0][col("language")], "de");
    assert_string_equal(o.cell[0][col("source_hint")], "YouTube trending DE 2017 (DEvideos.csv)");
    free_out(&o);
    /* no <CC>videos.csv name: US, as before */
    snprintf(p, sizeof p, "%s/trending.csv", tmpdir);
    snprintf(line, sizeof line, "%s/CAvideos.csv", tmpdir);
    assert_int_equal(rename(line, p), 0);
    assert_int_equal(convert("youtube2017", p, out), MILES_OK);
    read_out(out, &o);
    assert_string_equal(o.cell[0][col("country")], "Us");
    free_out(&o);
    assert_int_equal(convert("youtube2017:XX", p, out), MILES_EINVAL);
    printf("  unknown country: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "US CA GB"));
}

static void test_youtube2017(void **state) {
    (void)state;
    char in[1024], out[512];
    snprintf(in, sizeof in, "%s/data/youtube_trending_2017_v1/USvideos.csv", test_shared_dir());
    if (!have(in)) skip();
    snprintf(out, sizeof out, "%s/yt17.csv", tmpdir);
    assert_int_equal(convert("youtube2017", in, out), MILES_OK);
    /* 7,998 CSV lines = 8,000 snapshots (2 glued pairs) of 2,335 videos; 352 trended one day only */
    assert_non_null(strstr(report, "CSV records in: 7998 (snapshots used 8000), videos: 2335, rows out: 1983"));
    assert_non_null(strstr(report, "352 trending on one day only"));
    Out o;
    read_out(out, &o);
    printf("  rows out: %lld\n", (long long)o.n);
    assert_int_equal(o.n, 1983);
    char **r = find_row(&o, "XpVt6Z1Gjjo");
    assert_string_equal(r[col("title")], "1 YEAR OF VLOGGING -- HOW LOGAN PAUL CHANGED YOUTUBE FOREVER!");
    assert_string_equal(r[col("views")], "4394029");
    assert_string_equal(r[col("likes")], "320053");
    assert_string_equal(r[col("comments")], "46245");
    assert_string_equal(r[col("dislikes")], "5931");
    assert_string_equal(r[col("author_handle")], "Logan Paul Vlogs");
    assert_string_equal(r[col("language")], "en");
    assert_string_equal(r[col("platform")], "YouTube");
    assert_string_equal(r[col("trend_duration_days")], "6");
    assert_num(r[col("engagement_velocity")], (6232518.0 - 4394029.0) / 6.0, 0.006);
    /* unavailable: empty cells, not zeros */
    assert_string_equal(r[col("shares")], "");
    assert_string_equal(r[col("saves")], "");
    assert_string_equal(r[col("engagement_rate")], "");
    assert_string_equal(r[col("upload_hour")], "");
    assert_string_equal(r[col("duration_sec")], "");
    /* the video whose first line was glued onto the previous record's date */
    r = find_row(&o, "xcaeyJTx4Co");
    assert_string_equal(r[col("title")], "$139 Plane Seat Vs. $24,000 Plane Seat");
    assert_string_equal(r[col("views")], "3018291");
    assert_num(r[col("engagement_velocity")], 928988.0, 0.006);
    /* the "100"-date lines belong to 09.10 */
    r = find_row(&o, "CwLGro-dFWg");
    assert_num(r[col("engagement_velocity")], 563643.2, 0.006);
    free_out(&o);
}

static void test_tiktok_vn(void **state) {
    (void)state;
    char dir[1024], raw[1100], out[512], out2[512];
    snprintf(dir, sizeof dir, "%s/data/tiktok_vn_ie403", test_shared_dir());
    snprintf(raw, sizeof raw, "%s/feed_scrape1_raw.csv", dir);
    if (!have(raw)) skip();
    snprintf(out, sizeof out, "%s/vn.csv", tmpdir);
    snprintf(out2, sizeof out2, "%s/vn_raw.csv", tmpdir);
    assert_int_equal(convert("tiktok-vn", dir, out), MILES_OK);
    assert_non_null(strstr(report, "videos in: 10102, rows out: 7240, dropped: 2862"));
    assert_non_null(strstr(report, "not recrawled (no views_2) 2410"));
    assert_non_null(strstr(report, "no caption and no hashtags 452"));
    Out o;
    read_out(out, &o);
    assert_int_equal(o.n, 7240);
    char **r = find_row(&o, "7507991840340135186");
    assert_string_equal(r[col("title")], "Đơn giản dễ làm lắm đó quý vị ơi..");
    assert_string_equal(r[col("language")], "vi");
    assert_string_equal(r[col("views")], "1400000");
    assert_string_equal(r[col("shares")], "10200");
    assert_string_equal(r[col("saves")], "5047");
    assert_string_equal(r[col("duration_sec")], "65");
    assert_num(r[col("engagement_velocity")], 74148.16856, 0.006);
    /* id >> 32 = 2025-05-24 12:42:52 UTC = 19:42 in Vietnam, a Saturday */
    assert_string_equal(r[col("upload_hour")], "19");
    assert_string_equal(r[col("publish_dayofweek")], "Saturday");
    assert_string_equal(r[col("is_weekend")], "1");
    assert_string_equal(r[col("completion_rate")], "");
    /* empty caption: the hashtags become the title */
    r = find_row(&o, "7506905625537137938");
    assert_string_equal(r[col("title")], "#nguyenphuonghang #huynhuydung #khudulichdainam #chistina");
    /* creator_avg_views is filled for creators with a history (722 creators) and empty otherwise */
    int64_t with_hist = 0;
    for (int64_t i = 0; i < o.n; i++) with_hist += o.cell[i][col("creator_avg_views")][0] != 0;
    printf("  rows with creator history: %lld of %lld\n", (long long)with_hist, (long long)o.n);
    assert_true(with_hist > 500 && with_hist < o.n);
    free_out(&o);
    /* raw mode (display strings "541.2K", ids from vid_url, recrawl join) gives the same file */
    assert_int_equal(convert("tiktok-vn", raw, out2), MILES_OK);
    FILE *a = fopen(out, "rb"), *b = fopen(out2, "rb");
    assert_non_null(a); assert_non_null(b);
    int ca, cb;
    long pos = 0;
    do { ca = fgetc(a); cb = fgetc(b); pos++; } while (ca == cb && ca != EOF);
    fclose(a); fclose(b);
    if (ca != cb) fail_msg("panel and raw conversions differ at byte %ld", pos);
}

static void test_tiktok2020(void **state) {
    (void)state;
    char in[1024], out[512];
    snprintf(in, sizeof in, "%s/data/tiktok_trending_dec2020/trending.json", test_shared_dir());
    if (!have(in)) skip();
    snprintf(out, sizeof out, "%s/tt20.csv", tmpdir);
    assert_int_equal(convert("tiktok2020", in, out), MILES_OK);
    assert_non_null(strstr(report, "videos in: 1000, rows out: 962, dropped: 38"));
    Out o;
    read_out(out, &o);
    assert_int_equal(o.n, 962);
    char **r = find_row(&o, "6907228749016714497");
    assert_string_equal(r[col("title")], "Confidence went 📈");
    assert_string_equal(r[col("views")], "44800");
    assert_string_equal(r[col("likes")], "3710");
    assert_string_equal(r[col("shares")], "50");
    assert_string_equal(r[col("comments")], "68");
    assert_string_equal(r[col("saves")], "");
    assert_string_equal(r[col("has_emoji")], "1");
    assert_string_equal(r[col("author_handle")], "ninakleij");
    /* scrape time = newest createTime 1608520716; created 1608214517 */
    double age = (1608520716.0 - 1608214517.0) / 86400.0;
    assert_num(r[col("engagement_velocity")], 44800.0 / age, 0.006);
    assert_num(r[col("trend_duration_days")], age, 0.006);
    assert_string_equal(r[col("publish_date_approx")], "2020-12-17");
    assert_string_equal(r[col("upload_hour")], "14");
    r = find_row(&o, "6895497835681287426");
    assert_string_equal(r[col("hashtag")], "#volleyball");
    assert_string_equal(r[col("tags")], "volleyball, volleyballlove, volleyballworld");
    free_out(&o);
}

/* ---------------------------------------------------------------- yt-dlp fixtures */

static void test_ytdlp_lines(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/ytl.csv", tmpdir);
    assert_int_equal(convert("ytdlp", "tests/fixtures/ytdlp_lines.json", out), MILES_OK);
    assert_non_null(strstr(report, "records in: 5, rows out: 3, dropped: 2"));
    assert_non_null(strstr(report, "no epoch 1, duplicate id 1"));
    Out o;
    read_out(out, &o);
    assert_int_equal(o.n, 3);
    char **r = find_row(&o, "aB3dE5fG7hI");
    assert_string_equal(r[col("title")], "POV: you finally fixed your sleep schedule 😴");
    assert_string_equal(r[col("platform")], "YouTube");
    assert_string_equal(r[col("language")], "en");
    assert_string_equal(r[col("views")], "1250000"); /* the first of the duplicate records */
    assert_string_equal(r[col("upload_hour")], "18");
    assert_string_equal(r[col("publish_dayofweek")], "Saturday");
    assert_string_equal(r[col("trend_duration_days")], "10.00");
    assert_string_equal(r[col("engagement_velocity")], "125000.00");
    assert_string_equal(r[col("hashtag")], "#shorts");
    assert_string_equal(r[col("tags")], "sleep, night routine, shorts");
    assert_string_equal(r[col("category")], "People & Blogs");
    assert_string_equal(r[col("creator_avg_views")], "645000.0"); /* (1250000 + 40000) / 2 */
    assert_string_equal(r[col("has_emoji")], "1");
    assert_string_equal(r[col("saves")], "");
    r = find_row(&o, "7480000000000000001"); /* TikTok via yt-dlp: repost_count = shares */
    assert_string_equal(r[col("platform")], "TikTok");
    assert_string_equal(r[col("shares")], "510");
    assert_string_equal(r[col("duration_sec")], "28");
    assert_num(r[col("engagement_velocity")], 98000.0 / 1.0625, 0.006);
    r = find_row(&o, "Zz9Yy8Xx7Ww"); /* upload_date only: no hour; like_count null: unavailable */
    assert_string_equal(r[col("upload_hour")], "");
    assert_string_equal(r[col("likes")], "");
    assert_string_equal(r[col("like_rate")], "");
    assert_string_equal(r[col("comments")], "85");
    assert_num(r[col("engagement_velocity")], 40000.0 / 6.75, 0.006);
    free_out(&o);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* One yt-dlp JSON line converted (the input written to p, the CSV to
 * tmpdir/name): *o holds its single row. */
static void ytdlp_one(const char *p, const char *line, const char *name, Out *o) {
    write_text(p, line);
    char out[600];
    snprintf(out, sizeof out, "%s/%s", tmpdir, name);
    if (convert("ytdlp", p, out) != MILES_OK) fail_msg("%s: %s", line, miles_last_error());
    read_out(out, o);
    assert_int_equal(o->n, 1);
}

/* The 2017 file's dd.mm dates: the 31st of September is skipped with a
 * warning naming the line (its video then trended one day: no row), the end
 * of November to December counts two days. */
static void test_youtube2017_dates(void **state) {
    (void)state;
    char p[600], out[600];
    snprintf(p, sizeof p, "%s/USvideos.csv", tmpdir);
    snprintf(out, sizeof out, "%s/yt17_dates.csv", tmpdir);
    write_text(p, "video_id,title,channel_title,category_id,tags,views,likes,dislikes,comment_total,thumbnail_link,date\n"
                  "aaaaaaaaaaa,Title A,Chan,24,x,100,10,1,5,http://x,13.09\n"
                  "aaaaaaaaaaa,Title A,Chan,24,x,300,12,1,6,http://x,14.09\n"
                  "bbbbbbbbbbb,Title B,Chan,24,x,100,10,1,5,http://x,31.09\n"
                  "bbbbbbbbbbb,Title B,Chan,24,x,150,10,1,5,http://x,01.10\n"
                  "ccccccccccc,Title C,Chan,24,x,100,10,1,5,http://x,30.11\n"
                  "ccccccccccc,Title C,Chan,24,x,500,10,1,5,http://x,02.12\n");
    assert_int_equal(convert("youtube2017", p, out), MILES_OK);
    if (!strstr(report, ":4: unparseable date \"31.09\": line skipped")) fail_msg("report: %s", report);
    Out o;
    read_out(out, &o);
    assert_int_equal(o.n, 2);
    char **r = find_row(&o, "aaaaaaaaaaa");
    assert_num(r[col("engagement_velocity")], 200.0, 0.006);
    r = find_row(&o, "ccccccccccc");
    assert_string_equal(r[col("trend_duration_days")], "2");
    assert_num(r[col("engagement_velocity")], 200.0, 0.006);
    free_out(&o);
}

static void test_ytdlp_single_dir_list(void **state) {
    (void)state;
    char out[512], dir[512], p[700], list[512];
    snprintf(out, sizeof out, "%s/yts.csv", tmpdir);
    assert_int_equal(convert("ytdlp", "tests/fixtures/ytdlp_short.json", out), MILES_OK);
    Out o;
    read_out(out, &o);
    assert_int_equal(o.n, 1);
    char **r = o.cell[0];
    assert_string_equal(r[col("title")], "Cómo hacer café de olla en 30 segundos ☕");
    assert_string_equal(r[col("language")], "es");
    assert_string_equal(r[col("title_length")], "40");
    assert_string_equal(r[col("author_handle")], "Cocina Rápida");
    assert_num(r[col("engagement_velocity")], 310500.0 / 18.8125, 0.006);
    free_out(&o);
    /* a directory of .info.json files */
    snprintf(dir, sizeof dir, "%s/infojson", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(p, sizeof p, "%s/a.info.json", dir);
    assert_int_equal(test_copy_file("tests/fixtures/ytdlp_short.json", p), 0);
    snprintf(p, sizeof p, "%s/b.json", dir);
    assert_int_equal(test_copy_file("tests/fixtures/ytdlp_lines.json", p), 0); /* JSON lines saved as .json: 3 usable records */
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    write_text(p, "not json, not read");
    snprintf(p, sizeof p, "%s/c.info.json", dir);
    assert_int_equal(test_copy_file("tests/fixtures/ytdlp_bad.json", p), 0);
    assert_int_equal(convert("ytdlp", dir, out), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "c.info.json:1: malformed JSON"));
    unlink(p);
    assert_int_equal(convert("ytdlp", dir, out), MILES_OK);
    assert_non_null(strstr(report, "directory with 2 .json files"));
    read_out(out, &o);
    assert_int_equal(o.n, 4);
    free_out(&o);
    /* a list of paths, relative to the list file */
    snprintf(list, sizeof list, "%s/list.txt", tmpdir);
    FILE *f = fopen(list, "w");
    fprintf(f, "infojson/a.info.json\n\n");
    fclose(f);
    assert_int_equal(convert("ytdlp", list, out), MILES_OK);
    assert_non_null(strstr(report, "1 listed .json files"));
}

/* ---------------------------------------------------------------- bad inputs */

static void expect_fail(const char *kind, const char *in, int want) {
    char out[512];
    snprintf(out, sizeof out, "%s/keep.csv", tmpdir);
    FILE *f = fopen(out, "w");
    fputs("old contents\n", f);
    fclose(f);
    int s = convert(kind, in, out);
    printf("  %s %s -> %s: %s\n", kind, in, miles_status_name(s), miles_last_error());
    assert_int_equal(s, want);
    assert_true(strlen(miles_last_error()) > 10);
    /* the existing output is untouched and no temp file is left */
    char buf[64] = {0};
    f = fopen(out, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "old contents\n");
    assert_int_equal(leftovers(), 0);
    unlink(out);
    /* and with no previous output, nothing appears */
    s = miles_adapter_convert(kind, in, out, NULL, 0);
    assert_int_equal(s, want);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(leftovers(), 0);
}

/* The same records as one JSON array (yt-dlp -J of a playlist keeps them in
 * "entries"; a saved list is an array): the same rows, byte for byte; a
 * broken array is refused, not read as lines. */
static void test_ytdlp_array(void **state) {
    (void)state;
    char lines_out[512], arr[512], arr_out[512];
    snprintf(lines_out, sizeof lines_out, "%s/yt_lines.csv", tmpdir);
    snprintf(arr, sizeof arr, "%s/yt_array.json", tmpdir);
    snprintf(arr_out, sizeof arr_out, "%s/yt_array.csv", tmpdir);
    assert_int_equal(convert("ytdlp", "tests/fixtures/ytdlp_lines.json", lines_out), MILES_OK);
    FILE *in = fopen("tests/fixtures/ytdlp_lines.json", "rb"), *out = fopen(arr, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char line[8192];
    int n = 0;
    fputs("[\n", out);
    while (fgets(line, sizeof line, in)) {
        size_t L = strlen(line);
        while (L && (line[L - 1] == '\n' || line[L - 1] == '\r')) line[--L] = 0;
        if (!L) continue;
        fprintf(out, "%s%s\n", n++ ? "," : "", line);
    }
    fputs("]\n", out);
    fclose(in);
    fclose(out);
    assert_int_equal(n, 5);
    assert_int_equal(convert("ytdlp", arr, arr_out), MILES_OK);
    assert_non_null(strstr(report, "records in: 5, rows out: 3, dropped: 2"));
    test_assert_same_file(lines_out, arr_out);
    /* an array cut short */
    write_text(arr, "[{\"id\": \"x1\", \"title\": \"t\"},\n{\"id\": ");
    expect_fail("ytdlp", arr, MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "malformed JSON array"));
}

static void test_bad_inputs(void **state) {
    (void)state;
    char p[512];
    expect_fail("ytdlp", "tests/fixtures/no_such_file.json", MILES_EMISSING);
    expect_fail("youtube2017", "tests/fixtures/no_such_file.csv", MILES_EMISSING);
    expect_fail("tiktok2020", "tests/fixtures/no_such_file.json", MILES_EMISSING);
    expect_fail("tiktok-vn", "tests/fixtures/no_such_dir", MILES_EMISSING);
    expect_fail("ytdlp", "tests/fixtures/ytdlp_bad.json", MILES_EFORMAT);
    expect_fail("tiktok2020", "tests/fixtures/ytdlp_bad.json", MILES_EFORMAT);
    expect_fail("tiktok2020", "tests/fixtures/ytdlp_short.json", MILES_EMISSING); /* no "collector" */
    expect_fail("nonsense", "tests/fixtures/ytdlp_short.json", MILES_EINVAL);
    /* wrong columns */
    snprintf(p, sizeof p, "%s/wrong.csv", tmpdir);
    write_text(p, "video_id,name,views\nabc,hello,12\n");
    expect_fail("youtube2017", p, MILES_EMISSING);
    expect_fail("tiktok-vn", p, MILES_EMISSING);
    /* a quoted field that never ends */
    snprintf(p, sizeof p, "%s/unterminated.csv", tmpdir);
    write_text(p, "video_id,title,channel_title,category_id,tags,views,likes,dislikes,comment_total,thumbnail_link,date\n"
                  "abc,\"never closed,x,1,t,1,1,1,1,u,13.09\n");
    expect_fail("youtube2017", p, MILES_EFORMAT);
    /* a garbage count in the panel */
    snprintf(p, sizeof p, "%s/panel_bad.csv", tmpdir);
    write_text(p, "vid,user_name,caption,hashtags,post_time_utc,duration,music_title,music_originality,music_nused_1,"
                  "followers_1,scrape_time_1,views_1,likes_1,comments_1,shares_1,saves_1,scrape_time_2,followers_2,"
                  "views_2,likes_2,comments_2,shares_2,saves_2\n"
                  "7506832682593094928,u,cap,,2025-05-21 09:44:45,00:31,m,True,3,1,2025-05-29 15:38:41,lots,1,1,1,1,"
                  "2025-06-10 18:57:59,1,2,1,1,1,1\n");
    expect_fail("tiktok-vn", p, MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), ":2: field views_1"));
    /* a directory with neither of the data set's files; a raw feed without a column */
    snprintf(p, sizeof p, "%s/vn_empty", tmpdir);
    assert_int_equal(mkdir(p, 0700), 0);
    expect_fail("tiktok-vn", p, MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "neither panel_scrape1_recrawl_DERIVED.csv nor feed_scrape1_raw.csv"));
    snprintf(p, sizeof p, "%s/vn_empty/feed_scrape1_raw.csv", tmpdir);
    write_text(p, "user_name,vid_nview\nu,5\n");
    expect_fail("tiktok-vn", p, MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "feed_scrape1_raw.csv:1: missing column \"vid_caption\""));
    /* invalid UTF-8 in a title: the record is dropped and counted, not written */
    snprintf(p, sizeof p, "%s/badutf8.json", tmpdir);
    write_text(p, "{\"id\": \"u1\", \"title\": \"bad \xff\xfe title\", \"view_count\": 5, \"upload_date\": \"20250101\","
                  " \"epoch\": 1736000000}\n"
                  "{\"id\": \"u2\", \"title\": \"good title\", \"view_count\": 5, \"upload_date\": \"20250101\","
                  " \"epoch\": 1736000000}\n");
    char out[512];
    snprintf(out, sizeof out, "%s/utf.csv", tmpdir);
    assert_int_equal(convert("ytdlp", p, out), MILES_OK);
    assert_non_null(strstr(report, "invalid UTF-8 1"));
    Out o;
    read_out(out, &o);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.cell[0][50], "u2");
    free_out(&o);
    /* a malformed JSON line in the middle names its line */
    snprintf(p, sizeof p, "%s/midbad.json", tmpdir);
    write_text(p, "{\"id\": \"u2\", \"title\": \"t\", \"view_count\": 5, \"upload_date\": \"20250101\", \"epoch\": 1736000000}\n"
                  "{\"id\": \"u3\", \"title\": \"t\", \"view_count\": }\n");
    expect_fail("ytdlp", p, MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), ":2:"));
}

/* Out-of-range numbers and impossible dates are errors naming file:line:field
 * (issue 18): they used to become a velocity of -9.2e18 or the year 219250468. */
static void test_strict_numbers(void **state) {
    (void)state;
    char p[512];
    const char *good = "{\"id\": \"u1\", \"title\": \"t\", \"view_count\": 5, \"upload_date\": \"20250101\", \"epoch\": 1736000000}\n";
    struct { const char *line, *needle; int code; } yt[] = {
        {"{\"id\": \"u2\", \"title\": \"t\", \"view_count\": 1e308, \"upload_date\": \"20250101\", \"epoch\": 1736000000}\n",
         ":2: field 'view_count' = 1e+308 is out of range", MILES_ERANGE},
        {"{\"id\": \"u2\", \"title\": \"t\", \"view_count\": 5, \"like_count\": 1e20, \"upload_date\": \"20250101\", \"epoch\": 1736000000}\n",
         ":2: field 'like_count'", MILES_ERANGE},
        {"{\"id\": \"u2\", \"title\": \"t\", \"view_count\": 5, \"timestamp\": 1e300, \"epoch\": 1736000000}\n",
         ":2: field 'timestamp' = 1e+300 is out of range", MILES_ERANGE},
        {"{\"id\": \"u2\", \"title\": \"t\", \"view_count\": 5, \"upload_date\": \"20250101\", \"epoch\": 1e300}\n",
         ":2: field 'epoch'", MILES_ERANGE},
        {"{\"id\": \"u2\", \"title\": \"t\", \"view_count\": 5, \"upload_date\": \"20250230\", \"epoch\": 1736000000}\n",
         ":2: field 'upload_date' = \"20250230\"", MILES_EFORMAT},
    };
    char text[1024];
    snprintf(p, sizeof p, "%s/range.json", tmpdir);
    for (size_t i = 0; i < sizeof yt / sizeof *yt; i++) {
        snprintf(text, sizeof text, "%s%s", good, yt[i].line);
        write_text(p, text);
        expect_fail("ytdlp", p, yt[i].code);
        if (!strstr(miles_last_error(), yt[i].needle)) fail_msg("case %zu: %s", i, miles_last_error());
    }
    /* upload dates at the ends of the year and of February: December and a
     * leap day are read (the day of week from the date), the 29th of a common
     * year's February and a 13th month are not */
    const struct { const char *date; const char *day; } okd[] = {{"20231231", "Sunday"}, {"20240229", "Thursday"}, {"20240101", "Monday"}};
    for (size_t i = 0; i < sizeof okd / sizeof *okd; i++) {
        snprintf(text, sizeof text, "{\"id\": \"d%zu\", \"title\": \"t\", \"view_count\": 500, \"upload_date\": \"%s\", "
                 "\"epoch\": 1736000000}\n", i, okd[i].date);
        Out o;
        ytdlp_one(p, text, "dates.csv", &o);
        assert_string_equal(o.cell[0][col("publish_dayofweek")], okd[i].day);
        free_out(&o);
    }
    /* a video nobody watched yet is data (velocity 0), not a row to drop */
    {
        Out o;
        ytdlp_one(p, "{\"id\": \"z0\", \"title\": \"t\", \"view_count\": 0, \"upload_date\": \"20250101\", "
                     "\"epoch\": 1736000000}\n", "zero.csv", &o);
        assert_num(o.cell[0][col("engagement_velocity")], 0.0, 0.0);
        free_out(&o);
    }
    /* titles are cleaned: control characters (caption newlines) become one space,
     * the ends are trimmed, and length/emoji are of the cleaned title */
    {
        Out o;
        ytdlp_one(p, "{\"id\": \"w1\", \"title\": \"  \\n\\tNight\\n\\nroutine \\u2728 \\r\\n \", "
                     "\"view_count\": 10, \"upload_date\": \"20250101\", \"epoch\": 1736000000}\n", "spaces.csv", &o);
        assert_string_equal(o.cell[0][col("title")], "Night routine \u2728");
        assert_string_equal(o.cell[0][col("title_length")], "15");
        assert_string_equal(o.cell[0][col("has_emoji")], "1");
        free_out(&o);
    }
    const char *badd[] = {"20230229", "20231301", "20231200"};
    for (size_t i = 0; i < sizeof badd / sizeof *badd; i++) {
        snprintf(text, sizeof text, "%s{\"id\": \"u2\", \"title\": \"t\", \"view_count\": 5, \"upload_date\": \"%s\", "
                 "\"epoch\": 1736000000}\n", good, badd[i]);
        write_text(p, text);
        expect_fail("ytdlp", p, MILES_EFORMAT);
        assert_non_null(strstr(miles_last_error(), "field 'upload_date'"));
    }
    /* tiktok-scraper JSON: playCount 1e308, createTime 1e300 */
    snprintf(p, sizeof p, "%s/tt.json", tmpdir);
    const char *tt[] = {"{\"collector\": [{\"id\": \"1\", \"text\": \"hi\", \"playCount\": 10, \"createTime\": 1608214517},"
                        " {\"id\": \"2\", \"text\": \"hi\", \"playCount\": 1e308, \"createTime\": 1608214517}]}",
                        "{\"collector\": [{\"id\": \"1\", \"text\": \"hi\", \"playCount\": 10, \"createTime\": 1e300}]}",
                        "{\"collector\": [{\"id\": \"1\", \"text\": \"hi\", \"playCount\": \"1e300K\", \"createTime\": 5}]}"};
    const char *ttn[] = {"collector[1]: field 'playCount' = 1e+308", "collector[0]: field 'createTime' = 1e+300",
                         "collector[0]: field 'playCount'"};
    for (int i = 0; i < 3; i++) {
        write_text(p, tt[i]);
        expect_fail("tiktok2020", p, MILES_ERANGE);
        if (!strstr(miles_last_error(), ttn[i])) fail_msg("tiktok case %d: %s", i, miles_last_error());
    }
    /* counts written as the site shows them ("541.2K") are read, not refused */
    write_text(p, "{\"collector\": [{\"id\": \"1\", \"text\": \"hi\", \"playCount\": \"541.2K\", \"diggCount\": \"1.4K\", "
                  "\"shareCount\": \"12\", \"commentCount\": 7, \"createTime\": 1608214517, "
                  "\"authorMeta\": {\"name\": \"a\"}}, {\"id\": \"2\", \"text\": \"x\", \"playCount\": 5, "
                  "\"createTime\": 1608300917, \"authorMeta\": {\"name\": \"b\"}}]}");
    {
        char out[600];
        snprintf(out, sizeof out, "%s/tt_str.csv", tmpdir);
        if (convert("tiktok2020", p, out) != MILES_OK) fail_msg("string counts: %s", miles_last_error());
        Out o;
        read_out(out, &o);
        char **r = find_row(&o, "1");
        assert_string_equal(r[col("views")], "541200");
        assert_string_equal(r[col("likes")], "1400");
        assert_string_equal(r[col("shares")], "12");
        free_out(&o);
    }
    /* TikTok panel CSV: a count of 1e308 and a 30th of February */
    const char *hdr = "vid,user_name,caption,hashtags,post_time_utc,duration,music_title,music_originality,music_nused_1,"
                      "followers_1,scrape_time_1,views_1,likes_1,comments_1,shares_1,saves_1,scrape_time_2,followers_2,"
                      "views_2,likes_2,comments_2,shares_2,saves_2\n";
    snprintf(p, sizeof p, "%s/panel_range.csv", tmpdir);
    snprintf(text, sizeof text, "%s7506832682593094928,u,cap,,2025-05-21 09:44:45,00:31,m,True,3,1,2025-05-29 15:38:41,"
             "1e308,1,1,1,1,2025-06-10 18:57:59,1,2,1,1,1,1\n", hdr);
    write_text(p, text);
    expect_fail("tiktok-vn", p, MILES_ERANGE);
    assert_non_null(strstr(miles_last_error(), ":2: field views_1"));
    snprintf(text, sizeof text, "%s7506832682593094928,u,cap,,2025-05-21 09:44:45,00:31,m,True,3,1,2025-02-30 15:38:41,"
             "5,1,1,1,1,2025-06-10 18:57:59,1,2,1,1,1,1\n", hdr);
    write_text(p, text);
    expect_fail("tiktok-vn", p, MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), ":2: field scrape_time_1: bad date-time \"2025-02-30"));
    /* an absurd duration is left empty, not an overflowed number (found by fuzz_adapter_tiktok) */
    {
        char out[512];
        snprintf(text, sizeof text, "%s7506832682593094928,u,cap,,2025-05-21 09:44:45,99999999:00:00,m,True,3,1,"
                 "2025-05-29 15:38:41,5,1,1,1,1,2025-06-10 18:57:59,1,9,1,1,1,1\n", hdr);
        write_text(p, text);
        snprintf(out, sizeof out, "%s/dur.csv", tmpdir);
        assert_int_equal(convert("tiktok-vn", p, out), MILES_OK);
        Out o;
        read_out(out, &o);
        assert_int_equal(o.n, 1);
        assert_string_equal(o.cell[0][col("duration_sec")], "");
        free_out(&o);
        /* a primary hashtag over 200 bytes is cut before a UTF-8 sequence, not inside it */
        char tag[256];
        memset(tag, 'a', 199);
        memcpy(tag + 199, "\xc3\xb4xyz", 6);
        snprintf(text, sizeof text, "%s7506832682593094928,u,cap,%s,2025-05-21 09:44:45,00:31,m,True,3,1,"
                 "2025-05-29 15:38:41,5,1,1,1,1,2025-06-10 18:57:59,1,9,1,1,1,1\n", hdr, tag);
        write_text(p, text);
        assert_int_equal(convert("tiktok-vn", p, out), MILES_OK);
        read_out(out, &o);   /* fails on invalid UTF-8 */
        assert_int_equal(o.n, 1);
        assert_int_equal(strlen(o.cell[0][col("hashtag")]), 200);   /* "#" + 199 bytes */
        free_out(&o);
    }
    /* YouTube trending CSV: a count of 1e308 */
    snprintf(p, sizeof p, "%s/yt17.csv", tmpdir);
    write_text(p, "video_id,title,channel_title,category_id,tags,views,likes,dislikes,comment_total,thumbnail_link,date\n"
                  "abc,t,c,1,x,5,1,1,1,u,13.09\n"
                  "abd,t,c,1,x,1e308,1,1,1,u,13.09\n");
    expect_fail("youtube2017", p, MILES_ERANGE);
    assert_non_null(strstr(miles_last_error(), ":3: field 'views'"));
    /* invalid UTF-8 in an optional string (the channel) leaves it empty instead of
     * writing a CSV that prepare cannot read (found by fuzz_adapter_ytdlp) */
    {
        char out[512];
        snprintf(p, sizeof p, "%s/chan.json", tmpdir);
        snprintf(out, sizeof out, "%s/chan.csv", tmpdir);
        write_text(p, "{\"id\": \"c1\", \"title\": \"ok\", \"channel\": \"S\xff\xff\", \"extractor_key\": \"Y\xfe\","
                      " \"view_count\": 5, \"upload_date\": \"20250101\", \"epoch\": 1736000000,"
                      " \"description\": \"#\xc3\xa9\xc3\xa9\"}\n");
        assert_int_equal(convert("ytdlp", p, out), MILES_OK);
        Out o;
        read_out(out, &o);   /* fails on invalid UTF-8 */
        assert_int_equal(o.n, 1);
        assert_string_equal(o.cell[0][col("author_handle")], "");
        free_out(&o);
    }
    /* a row over 64 KiB names its line instead of failing anonymously */
    snprintf(p, sizeof p, "%s/huge.json", tmpdir);
    size_t big = 70000;
    char *t = malloc(big + 512);
    int k = snprintf(t, 512, "%s{\"id\": \"u9\", \"view_count\": 5, \"upload_date\": \"20250101\", \"epoch\": 1736000000, \"title\": \"",
                     good);
    memset(t + k, 'a', big);
    snprintf(t + k + big, 64, "\"}\n");
    write_text(p, t);
    free(t);
    expect_fail("ytdlp", p, MILES_ERANGE);
    assert_non_null(strstr(miles_last_error(), "huge.json:2"));
    assert_non_null(strstr(miles_last_error(), "larger than"));
}

/* ---------------------------------------------------------------- helpers */

static void test_csv_writer_roundtrip(void **state) {
    (void)state;
    static const char *const cells[5] = {"plain", "a,b", "say \"hi\"", "two\nlines", ""};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int i = 0; i < 5; i++) {
        if (i) fputc(',', f);
        assert_int_equal(src_csv_write_field(f, cells[i]), MILES_OK);
    }
    fputc('\n', f);
    fclose(f);
    assert_string_equal(buf, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\n");
    MilesCsv *csv = NULL;
    assert_int_equal(miles_csv_open_mem(&csv, "mem", buf, len), MILES_OK);
    int nf;
    const char *const *g;
    assert_int_equal(miles_csv_next(csv, &nf, &g), 1);
    assert_int_equal(nf, 5);
    for (int i = 0; i < 5; i++) assert_string_equal(g[i], cells[i]);
    miles_csv_free(csv);
    free(buf);
}

static void test_parse_helpers(void **state) {
    (void)state;
    int64_t v;
    assert_int_equal(src_parse_count("541.2K", &v), 1); assert_int_equal(v, 541200);
    assert_int_equal(src_parse_count("1.4M", &v), 1); assert_int_equal(v, 1400000);
    assert_int_equal(src_parse_count("1B", &v), 1); assert_int_equal(v, 1000000000);
    assert_int_equal(src_parse_count("3.0", &v), 1); assert_int_equal(v, 3);
    assert_int_equal(src_parse_count("1098", &v), 1); assert_int_equal(v, 1098);
    assert_int_equal(src_parse_count("", &v), 0);
    assert_int_equal(src_parse_count("12 videos", &v), -1);
    assert_int_equal(src_parse_count("-5", &v), -1);
    assert_int_equal(src_parse_count("nan", &v), -1);
    assert_int_equal(src_parse_count("1e308", &v), -2);
    assert_int_equal(src_parse_count("1e300K", &v), -2);
    int64_t t;
    assert_int_equal(src_parse_datetime("2025-05-21 09:44:45", &t), 1); assert_int_equal(t, 1747820685);
    assert_int_equal(src_parse_datetime("2025-05-21 23:44:45+07:00", &t), 1);
    assert_int_equal(src_parse_datetime("21/05/2025", &t), -1);
    assert_int_equal(src_parse_datetime("2025-02-30 10:00:00", &t), -1);
    assert_int_equal(src_parse_datetime("2025-04-31", &t), -1);
    assert_int_equal(src_parse_datetime("2024-02-29", &t), 1);
    assert_int_equal(src_parse_datetime("2100-02-29", &t), -1);
    assert_string_equal(src_guess_language("Giấc mơ của chung 🤷🏻🦢"), "vi");
    assert_string_equal(src_guess_language("POV: you finally fixed it"), "en");
    assert_string_equal(src_guess_language("ik ben niet moe"), "nl");
    assert_string_equal(src_guess_language("原版没学会，来整个不一样的吧～"), "zh");
    assert_string_equal(src_guess_language("ずっと見ちゃう😂"), "ja");
    assert_string_equal(src_guess_language("#fyp #xuhuong"), "und");
    assert_string_equal(src_guess_language(""), "und");
    assert_int_equal(miles_utf8_length("Night Routine — Productivity 🏖️"), 31);
    assert_int_equal(miles_utf8_length("bad \xff"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_youtube2017),
        cmocka_unit_test(test_youtube2017_dates),
        cmocka_unit_test(test_youtube2017_country),
        cmocka_unit_test(test_tiktok_vn),
        cmocka_unit_test(test_tiktok2020),
        cmocka_unit_test(test_ytdlp_lines),
        cmocka_unit_test(test_ytdlp_single_dir_list),
        cmocka_unit_test(test_ytdlp_array),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_strict_numbers),
        cmocka_unit_test(test_csv_writer_roundtrip),
        cmocka_unit_test(test_parse_helpers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
