/*
 * test_data.c — features, statistics, splits, scaler and the prepared file
 * (and its bytes for the synthetic data set, pinned: test_prepared_pin).
 *
 * Golden values: tests/fixtures/data_golden.json from tests/gen_data_fixture.py
 * (numpy 1.24 / scikit-learn 1.2.1 / scipy / zlib).  Hand-computed values
 * come from the 5 real rows in $MILES_SHARED/data/reference_synthetic_target.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miles.h"
#include "data_internal.h"
#include "csv_internal.h"
#include "internal.h"
#include "helpers.h"

static cJSON *golden;

static int load_golden(void **state) {
    (void)state;
    golden = test_read_json("tests/fixtures/data_golden.json");
    return golden ? 0 : -1;
}
static int free_golden(void **state) { (void)state; cJSON_Delete(golden); return 0; }

static double *json_doubles(const cJSON *a, int *n) {
    int m = cJSON_GetArraySize(a);
    double *v = malloc(sizeof(double) * (m ? m : 1));
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = e->valuedouble;
    *n = m;
    return v;
}

static double relerr(double a, double b) { return fabs(a - b) / fmax(1e-300, fmax(fabs(a), fabs(b))); }

/* ------------------------------------------------------------------ the 5 real rows */

typedef struct { int n; char **names; char **vals[5]; } RefRows;

static int load_ref(RefRows *rr) {
    char path[1024];
    snprintf(path, sizeof path, "%s/data/reference_synthetic_target/youtube_shorts_tiktok_trends_2025_HEAD5_from_author_notebook.csv",
             test_shared_dir());
    MilesCsv *r;
    if (miles_csv_open(&r, path) != MILES_OK) return -1;
    int nf, row = -1;
    const char *const *f;
    memset(rr, 0, sizeof *rr);
    while (miles_csv_next(r, &nf, &f) == 1) {
        char **dst = calloc((size_t)nf, sizeof *dst);
        for (int i = 0; i < nf; i++) dst[i] = strdup(f[i]);
        if (row < 0) { rr->names = dst; rr->n = nf; }
        else rr->vals[row] = dst;
        row++;
    }
    miles_csv_free(r);
    return row == 5 ? 0 : -1;
}
static void free_ref(RefRows *rr) {
    for (int i = 0; i < rr->n; i++) {
        free(rr->names[i]);
        for (int r = 0; r < 5; r++) free(rr->vals[r][i]);
    }
    free(rr->names);
    for (int r = 0; r < 5; r++) free(rr->vals[r]);
}

/* Features of row r with some columns removed (NULL-terminated list). */
static int ref_features(RefRows *rr, int r, const char *const *drop, double raw[18], uint32_t *avail) {
    const char *names[64], *vals[64];
    int m = 0;
    for (int i = 0; i < rr->n; i++) {
        int skipit = 0;
        for (int k = 0; drop && drop[k]; k++) if (!strcmp(drop[k], rr->names[i])) skipit = 1;
        if (skipit) continue;
        names[m] = rr->names[i];
        vals[m] = rr->vals[r][i];
        m++;
    }
    MilesRecord rec = {m, names, vals, NULL};
    return miles_features_compute(&rec, raw, avail);
}

static void test_features_reference_rows(void **state) {
    (void)state;
    RefRows rr;
    if (load_ref(&rr)) { printf("  skip: reference rows not found under %s\n", test_shared_dir()); skip(); }
    double raw[18];
    uint32_t av;
    /* row 1 with every column present: columns used as they are */
    assert_int_equal(ref_features(&rr, 0, NULL, raw, &av), MILES_OK);
    assert_int_equal(av, (1u << 18) - 1);
    const double want[18] = {252497, 21755, 3170, 1977, 3415, 0.120069, 0.645, 0.086159, 0.012555, 0.00783, 0.013525,
                             15, 1, 40, 31, 1, 96474.3, 2 /* Saturday */};
    for (int f = 0; f < 18; f++) {
        if (raw[f] != want[f]) fprintf(stderr, "feature %s: %.17g != %.17g\n", miles_feature_names[f], raw[f], want[f]);
        assert_true(raw[f] == want[f]);
    }
    /* derived: drop every derived column, recompute from the inputs */
    const char *drop[] = {"engagement_rate", "completion_rate", "like_rate", "comment_ratio", "share_rate", "save_rate",
                          "is_weekend", "title_length", "has_emoji", "publish_dayofweek", "engagement_velocity", NULL};
    assert_int_equal(ref_features(&rr, 0, drop, raw, &av), MILES_OK);
    assert_true(raw[5] == (21755.0 + 3170 + 1977 + 3415) / 252497.0);
    assert_true(fabs(raw[5] - 0.120069) < 5e-7);
    assert_true(raw[6] == 25.8 / 40.0);
    assert_true(fabs(raw[6] - 0.645) < 1e-12);
    assert_true(raw[7] == 21755.0 / 252497.0);
    assert_true(raw[8] == 3170.0 / 252497.0);
    assert_true(raw[9] == 1977.0 / 252497.0);
    assert_true(raw[10] == 3415.0 / 252497.0);
    assert_true(raw[12] == 1);   /* 2025-01-04 is a Saturday */
    assert_true(raw[14] == 31);  /* "Night Routine — Productivity 🏖️": 31 code points */
    assert_true(raw[15] == 1);
    assert_true(raw[17] == 2);   /* Saturday from the date */
    /* every row: derived values equal the stored columns (to their 6 decimals) */
    static const double vel[5] = {63124.25, 4831.79, 671.36, 7237.70, 2695.67};
    static const int day[5] = {2, 6, 3, 0, 2};  /* Sat Wed Sun Fri Sat */
    double maxe = 0;
    for (int r = 0; r < 5; r++) {
        double full[18], der[18];
        uint32_t a1, a2;
        assert_int_equal(ref_features(&rr, r, NULL, full, &a1), MILES_OK);
        assert_int_equal(ref_features(&rr, r, drop, der, &a2), MILES_OK);
        assert_int_equal(a1, (1u << 18) - 1);
        assert_int_equal(a2, (1u << 18) - 1);
        for (int f = 0; f < 18; f++) {
            double tol = (f >= 5 && f <= 10) ? 5e-7 + 1e-3 * fabs(full[f]) * (f == 6) : 0;
            double e = fabs(full[f] - der[f]);
            if (f >= 5 && f <= 10 && e > maxe) maxe = e;
            if (e > tol) fprintf(stderr, "row %d feature %s: column %.17g derived %.17g\n", r, miles_feature_names[f], full[f], der[f]);
            assert_true(e <= tol);
        }
        assert_true(full[17] == day[r]);
        /* velocity: the column, and views / trend_duration_days when absent */
        const char *names[64], *vals[64];
        int m = 0;
        for (int i = 0; i < rr.n; i++) {
            if (!strcmp(rr.names[i], "engagement_velocity")) continue;
            names[m] = rr.names[i]; vals[m] = rr.vals[r][i]; m++;
        }
        double v;
        assert_int_equal(miles_velocity_compute(m, names, vals, &v), MILES_OK);
        assert_true(fabs(v - vel[r]) < 0.005 + 1e-12);
        if (r == 0) assert_true(v == 63124.25);
    }
    printf("  derived vs stored rates: max abs diff %.3g (stored values have 6 decimals)\n", maxe);
    free_ref(&rr);
}

static void test_features_named_record(void **state) {
    (void)state;
    double raw[18];
    uint32_t av;
    /* a request with a title and a few columns: the rest is missing (NaN), not 0 */
    const char *n1[] = {"title", "views", "likes", "publish_date_approx", "creator_avg_views"};
    const char *v1[] = {"POV: Budget \xF0\x9F\x98\x82", "16174", "832", "2025-01-04T18:05:00", "87549.4"};
    assert_int_equal(miles_features_compute(&(MilesRecord){5, n1, v1, NULL}, raw, &av), MILES_OK);
    assert_true(raw[0] == 16174 && raw[1] == 832);
    assert_true(raw[7] == 832.0 / 16174.0);
    assert_true(isnan(raw[2]) && !(av & (1u << 2)));
    assert_true(isnan(raw[5]) && !(av & (1u << 5)));   /* needs all four counts */
    assert_true(raw[11] == 18);                          /* hour from the timestamp */
    assert_true(raw[12] == 1 && raw[17] == 2);           /* Saturday */
    assert_true(raw[14] == 13 && raw[15] == 1);
    assert_true(raw[16] == 87549.4);
    /* day given as code; views 0: per-view rates are missing, not infinite */
    const char *n2[] = {"views", "likes", "publish_dayofweek", "is_weekend"};
    const char *v2[] = {"0", "5", "4", "false"};
    assert_int_equal(miles_features_compute(&(MilesRecord){4, n2, v2, NULL}, raw, &av), MILES_OK);
    assert_true(raw[17] == 4 && raw[12] == 0);
    assert_true(isnan(raw[7]) && !(av & (1u << 7)));
    /* errors name the column */
    struct { const char *name, *value; int code; } bad[] = {
        {"views", "12k", MILES_EFORMAT}, {"likes", "nan", MILES_ENAN}, {"views", "inf", MILES_ENAN},
        {"views", "1e999", MILES_ENAN}, {"saves", "-3", MILES_ERANGE}, {"upload_hour", "24", MILES_ERANGE},
        {"has_emoji", "2", MILES_ERANGE}, {"publish_dayofweek", "Funday", MILES_EFORMAT},
        {"publish_date_approx", "04/01/2025", MILES_EFORMAT}, {"publish_date_approx", "2025-02-29", MILES_EFORMAT},
        {"publish_date_approx", "2025-04-01T24:00", MILES_EFORMAT}, {"publish_date_approx", "2025-04-01 12:60", MILES_EFORMAT},
        {"title", "bad \xC3", MILES_EFORMAT},
        {"completion_rate", "0.5x", MILES_EFORMAT}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *nn[] = {bad[i].name}, *vv[] = {bad[i].value};
        int st = miles_features_compute(&(MilesRecord){1, nn, vv, NULL}, raw, &av);
        printf("  %s=%s -> %s: %s\n", bad[i].name, bad[i].value, miles_status_name(st), miles_last_error());
        assert_int_equal(st, bad[i].code);
        if (strcmp(bad[i].name, "title")) assert_non_null(strstr(miles_last_error(), bad[i].name));
    }
    /* the day from the date (Python's datetime.strftime("%A")): around the
     * ends of February, leap days, century years, before 1970 */
    const struct { const char *date; int code; } dates[] = {
        {"2024-02-29", 4}, {"2024-02-01", 4}, {"2023-02-28", 5}, {"2024-03-01", 0}, {"2000-02-29", 5},
        {"2000-03-01", 6}, {"1900-02-28", 6}, {"1900-03-01", 4}, {"1969-12-31", 6}, {"1970-01-01", 4},
        {"2025-12-31", 6}, {"2026-02-14", 2}, {"2100-02-28", 3}, {"1999-01-31", 3}};
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        const char *nn[] = {"publish_date_approx"}, *vv[] = {dates[i].date};
        assert_int_equal(miles_features_compute(&(MilesRecord){1, nn, vv, NULL}, raw, &av), MILES_OK);
        if (raw[17] != dates[i].code) fail_msg("%s: day code %g, want %d", dates[i].date, raw[17], dates[i].code);
        /* is_weekend: Friday, Saturday or Sunday (docs/data.md) */
        assert_true(raw[12] == (dates[i].code == 0 || dates[i].code == 2 || dates[i].code == 3));
    }
    const char *nd[] = {"publish_date_approx"}, *vd1[] = {"1900-02-29"}, *vd2[] = {"2100-02-29"};
    assert_int_equal(miles_features_compute(&(MilesRecord){1, nd, vd1, NULL}, raw, &av), MILES_EFORMAT);
    assert_int_equal(miles_features_compute(&(MilesRecord){1, nd, vd2, NULL}, raw, &av), MILES_EFORMAT);
    /* day code 0 (Friday); views 1 still gives per-view rates; a duration
     * without the average watch time gives no completion rate */
    const char *n4[] = {"publish_dayofweek", "views", "likes", "comments", "shares", "saves", "duration_sec"};
    const char *v4[] = {"0", "1", "2", "3", "4", "5", "30"};
    assert_int_equal(miles_features_compute(&(MilesRecord){7, n4, v4, NULL}, raw, &av), MILES_OK);
    assert_true(raw[17] == 0 && raw[5] == 14 && raw[7] == 2);
    assert_true(isnan(raw[6]) && !(av & (1u << 6)));
    /* conflicting duplicates are refused; the same value twice (or a blank
     * beside a value) is not a conflict */
    const char *n3[] = {"views", "views"}, *v3[] = {"1", "2"};
    assert_int_equal(miles_features_compute(&(MilesRecord){2, n3, v3, NULL}, raw, &av), MILES_EINVAL);
    const char *v3same[] = {"7", "7"}, *v3blank[] = {"", "7"};
    assert_int_equal(miles_features_compute(&(MilesRecord){2, n3, v3same, NULL}, raw, &av), MILES_OK);
    assert_true(raw[0] == 7);
    assert_int_equal(miles_features_compute(&(MilesRecord){2, n3, v3blank, NULL}, raw, &av), MILES_OK);
    assert_true(raw[0] == 7);
    /* day codes */
    const char *days[7] = {"Friday", "Monday", "Saturday", "Sunday", "Thursday", "Tuesday", "Wednesday"};
    for (int i = 0; i < 7; i++) assert_int_equal(miles_dayofweek_code(days[i]), i);
    assert_int_equal(miles_dayofweek_code("sunday"), 3);
    assert_int_equal(miles_dayofweek_code("Sun"), -1);
}

/* libmiles/pystr.c's case properties against CPython's str.lower(), every
 * assigned code point (tests/gen_pystr_fixture.py: A cased, B case-ignorable,
 * C neither); the clean_text and TF-IDF lowercasing both use them. */
static void test_pystr_case_classes(void **state) {
    (void)state;
    cJSON *j = test_read_json("tests/fixtures/pystr_cases.json");
    assert_non_null(j);
    const cJSON *r;
    long compared = 0, bad = 0;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, "ranges")) {
        const int32_t first = (int32_t)cJSON_GetArrayItem(r, 0)->valueint;
        const int32_t count = (int32_t)cJSON_GetArrayItem(r, 1)->valueint;
        const char k = cJSON_GetArrayItem(r, 2)->valuestring[0];
        if (k == 'U') continue;
        for (int32_t c = first; c < first + count; c++) {
            const char got = miles_py_is_case_ignorable(c) ? 'B' : miles_py_is_cased(c) ? 'A' : 'C';
            if (got != k && bad++ < 10) fprintf(stderr, "U+%04X: class %c, Python %c\n", (unsigned)c, got, k);
            compared++;
        }
    }
    printf("  case classes of %ld code points vs Python %s (Unicode %s): %ld differ\n", compared,
           cJSON_GetObjectItem(j, "python")->valuestring, cJSON_GetObjectItem(j, "unicode")->valuestring, bad);
    assert_true(compared > 280000);
    assert_int_equal(bad, 0);
    cJSON_Delete(j);
}

static void test_text(void **state) {
    (void)state;
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(golden, "titles")) {
        const char *t = cJSON_GetObjectItem(e, "title")->valuestring;
        const char *want = cJSON_GetObjectItem(e, "clean")->valuestring;
        char *c = NULL;
        assert_int_equal(miles_text_clean(t, strlen(t), MILES_TEXT_CLEAN_SEED, &c, NULL), MILES_OK);
        if (strcmp(c, want)) fprintf(stderr, "clean('%s') = '%s', Python '%s'\n", t, c, want);
        assert_string_equal(c, want);
        free(c);
        assert_int_equal(miles_utf8_length(t), cJSON_GetObjectItem(e, "len")->valueint);
        assert_int_equal(miles_text_clean(t, strlen(t), MILES_TEXT_CLEAN_NONE, &c, NULL), MILES_OK);
        assert_string_equal(c, t);
        free(c);
        n++;
    }
    printf("  %d titles: clean_text and len() equal Python's\n", n);
    /* str.lower()'s final sigma skips case-ignorable letters (U+02B0, a
     * modifier letter, survives the [^\w\s#@] filter) on both sides; Python
     * 3.11's clean_text (tests/gen_data_fixture.py) gave these */
    const char *sig[][2] = {
        {"\xCE\x91\xCE\xA3\xCA\xB0\xCE\x92", "\xCE\xB1\xCF\x83\xCA\xB0\xCE\xB2"},         /* ΑΣʰΒ -> ασʰβ */
        {"\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3\xCA\xB0", "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82\xCA\xB0"}, /* ΟΔΟΣʰ -> οδοςʰ */
        {"\xCA\xB0\xCE\xA3\xCE\x91", "\xCA\xB0\xCF\x83\xCE\xB1"},                             /* ʰΣΑ -> ʰσα */
        {"\xCE\xA3", "\xCF\x83"},                                                               /* Σ -> σ */
        {"\xCE\x91\xCE\xA3.\xCE\x92", "\xCE\xB1\xCF\x83\xCE\xB2"},                         /* ΑΣ.Β -> ασβ */
        /* Roman numerals and ª are cased (Other_Uppercase / Other_Lowercase) */
        {"\xCE\x91\xCE\xA3\xE2\x85\xA7", "\xCE\xB1\xCF\x83\xE2\x85\xB7"},                 /* ΑΣⅧ -> ασⅷ */
        {"\xE2\x85\xA7\xCE\xA3", "\xE2\x85\xB7\xCF\x82"},                                     /* ⅧΣ -> ⅷς */
        {"\xCE\x91\xCE\xA3\xC2\xAA", "\xCE\xB1\xCF\x83\xC2\xAA"}};                         /* ΑΣª -> ασª */
    for (size_t i = 0; i < sizeof sig / sizeof sig[0]; i++) {
        char *c = NULL;
        assert_int_equal(miles_text_clean(sig[i][0], strlen(sig[i][0]), MILES_TEXT_CLEAN_SEED, &c, NULL), MILES_OK);
        assert_string_equal(c, sig[i][1]);
        free(c);
    }
    assert_int_equal(miles_has_emoji("Night Routine \xE2\x80\x94 Productivity \xF0\x9F\x8F\x96\xEF\xB8\x8F", strlen("Night Routine \xE2\x80\x94 Productivity \xF0\x9F\x8F\x96\xEF\xB8\x8F")), 1);
    assert_int_equal(miles_has_emoji("Football skills in 60s", strlen("Football skills in 60s")), 0);
    assert_int_equal(miles_has_emoji("\xE2\x9D\xA4\xEF\xB8\x8F love", strlen("\xE2\x9D\xA4\xEF\xB8\x8F love")), 1);       /* ❤️ */
    assert_int_equal(miles_has_emoji("flag \xF0\x9F\x87\xBA\xF0\x9F\x87\xB8", strlen("flag \xF0\x9F\x87\xBA\xF0\x9F\x87\xB8")), 1); /* regional indicators */
    assert_int_equal(miles_has_emoji("(c) \xC2\xA9 2025 \xE2\x80\x94 caf\xC3\xA9", strlen("(c) \xC2\xA9 2025 \xE2\x80\x94 caf\xC3\xA9")), 0); /* © and dash are text */
}

/* ------------------------------------------------------------------ statistics */

static void test_percentile(void **state) {
    (void)state;
    const cJSON *e;
    double maxe = 0;
    int n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(golden, "percentile")) {
        int m;
        double *x = json_doubles(cJSON_GetObjectItem(e, "x"), &m);
        double p = cJSON_GetObjectItem(e, "p")->valuedouble, q = cJSON_GetObjectItem(e, "q")->valuedouble;
        double got = miles_percentile(x, m, p);
        double err = relerr(got, q);
        maxe = test_max_err(maxe, err);
        if (err > 1e-14) fprintf(stderr, "p%g of %d values: %.17g numpy %.17g\n", p, m, got, q);
        assert_true(err <= 1e-14);
        free(x);
        n++;
    }
    printf("  %d percentiles vs numpy linear: max rel err %.3g\n", n, maxe);
    /* the 5 real velocities: p80 by hand: sorted 671.36 2695.67 4831.79 7237.7 63124.25, h=3.2 */
    double v[5] = {63124.25, 4831.79, 671.36, 7237.70, 2695.67};
    double want = 7237.70 + 0.2 * (63124.25 - 7237.70);
    assert_true(fabs(miles_percentile(v, 5, 80) - want) < 1e-9);
    double nanv[3] = {NAN, 1, 3};
    assert_true(miles_percentile(nanv, 3, 50) == 2);
    assert_true(isnan(miles_percentile(v, 0, 50)));
    assert_true(miles_percentile(v, 5, 0) == 671.36 && miles_percentile(v, 5, 100) == 63124.25);
    assert_true(isnan(miles_percentile(v, 5, -1)) && isnan(miles_percentile(v, 5, 100.5)) &&
                isnan(miles_percentile(v, 5, NAN)));
}

static void test_spearman(void **state) {
    (void)state;
    const cJSON *e;
    double maxe = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(golden, "spearman")) {
        int m, m2;
        double *x = json_doubles(cJSON_GetObjectItem(e, "x"), &m);
        double *y = json_doubles(cJSON_GetObjectItem(e, "y"), &m2);
        double rho = cJSON_GetObjectItem(e, "rho")->valuedouble;
        double got = miles_spearman(x, y, m);
        double err = fabs(got - rho);
        maxe = test_max_err(maxe, err);
        assert_true(err < 1e-12);
        free(x); free(y);
    }
    printf("  spearman vs scipy: max abs err %.3g\n", maxe);
    /* scipy.stats.spearmanr: two points give +-1; a constant side or fewer
     * than two finite pairs give NaN */
    const double a2[2] = {1, 2}, b2[2] = {3, 5}, c2[2] = {5, 3}, k3[3] = {4, 4, 4}, x3[3] = {1, NAN, 2};
    assert_true(miles_spearman(a2, b2, 2) == 1.0 && miles_spearman(a2, c2, 2) == -1.0);
    assert_true(isnan(miles_spearman(k3, x3, 3)) && isnan(miles_spearman(a2, b2, 1)));
    const double y3[3] = {1, 7, 0}; /* the NaN pair is dropped: (1,1), (2,0) */
    assert_true(miles_spearman(x3, y3, 3) == -1.0);
}

static void test_scaler_golden(void **state) {
    (void)state;
    const cJSON *g = cJSON_GetObjectItem(golden, "scaler");
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(g, "X"));
    double *X = malloc(sizeof(double) * n * 18);
    int i = 0, m;
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(g, "X")) {
        double *r = json_doubles(row, &m);
        memcpy(X + i * 18, r, 18 * sizeof(double));
        free(r);
        i++;
    }
    for (int lg = 0; lg < 2; lg++) {
        MilesScalerOptions so = {lg, 0, 80};
        MilesScaler *s;
        assert_int_equal(miles_scaler_fit(&s, X, NULL, n, NULL, &so), MILES_OK);
        double mean[18], scale[18];
        uint32_t avail;
        miles_scaler_stats(s, mean, scale, &avail, NULL, NULL);
        assert_int_equal(avail, (1u << 18) - 1);
        double *gm = json_doubles(cJSON_GetObjectItem(g, lg ? "log1p_mean" : "mean"), &m);
        double *gs = json_doubles(cJSON_GetObjectItem(g, lg ? "log1p_scale" : "scale"), &m);
        double em = 0, es = 0, ez = 0;
        for (int f = 0; f < 18; f++) {
            em = test_max_err(em, relerr(mean[f], gm[f]));
            es = test_max_err(es, relerr(scale[f], gs[f]));
        }
        assert_true(scale[15] == 1.0); /* constant column: scale 1 as sklearn */
        i = 0;
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(g, lg ? "log1p_Z" : "Z")) {
            double *z = json_doubles(row, &m);
            float out[18];
            miles_scaler_transform(s, X + i * 18, (1u << 18) - 1, out);
            for (int f = 0; f < 18; f++) ez = test_max_err(ez, fabs((double)out[f] - z[f]) / fmax(1.0, fabs(z[f])));
            free(z);
            i++;
        }
        printf("  StandardScaler%s vs sklearn: mean rel %.3g, scale rel %.3g, transformed (float32) %.3g\n",
               lg ? " (log1p counts)" : "", em, es, ez);
        assert_true(em < 1e-12 && es < 1e-12 && ez < 1e-6);
        free(gm); free(gs);
        miles_scaler_free(s);
    }
    free(X);
    /* min-max of velocity and the p80 threshold */
    const cJSON *mm = cJSON_GetObjectItem(golden, "minmax");
    double *v = json_doubles(cJSON_GetObjectItem(mm, "v"), &m);
    double *sc = json_doubles(cJSON_GetObjectItem(mm, "scaled"), &m);
    double raw0[18] = {0};
    MilesScaler *s;
    assert_int_equal(miles_scaler_fit(&s, raw0, NULL, 1, NULL, NULL), MILES_OK);
    miles_scaler_free(s);
    double *rows = calloc((size_t)m * 18, sizeof(double));
    assert_int_equal(miles_scaler_fit(&s, rows, NULL, m, v, NULL), MILES_OK);
    double emm = 0;
    for (int k = 0; k < m; k++) {
        emm = test_max_err(emm, fabs(miles_scaler_velocity_scale(s, v[k]) - sc[k]));
        assert_true(relerr(miles_scaler_velocity_unscale(s, miles_scaler_velocity_scale(s, v[k])), v[k]) < 1e-12);
    }
    assert_true(emm < 1e-15);
    assert_true(relerr(miles_scaler_threshold(s), cJSON_GetObjectItem(mm, "p80")->valuedouble) < 1e-14);
    printf("  velocity min-max max abs err %.3g; p80 %.17g\n", emm, miles_scaler_threshold(s));
    miles_scaler_free(s);
    /* a constant velocity (sklearn MinMaxScaler: a zero range counts as 1):
     * scaled to 0, the threshold that value */
    double cv[4] = {7.5, 7.5, 7.5, 7.5}, rows4[4 * 18] = {0};
    assert_int_equal(miles_scaler_fit(&s, rows4, NULL, 4, cv, NULL), MILES_OK);
    assert_true(miles_scaler_velocity_scale(s, 7.5) == 0 && miles_scaler_velocity_scale(s, 9.5) == 2);
    assert_true(miles_scaler_velocity_unscale(s, 0.25) == 7.75 && miles_scaler_threshold(s) == 7.5);
    miles_scaler_free(s);
    free(rows); free(v); free(sc);
}

static void test_scaler_json_and_missing(void **state) {
    (void)state;
    /* 40 rows, feature 4 (saves) never available, feature 2 partly missing */
    enum { N = 40 };
    double raw[N * 18], vel[N];
    uint32_t av[N];
    for (int i = 0; i < N; i++) {
        for (int f = 0; f < 18; f++) raw[i * 18 + f] = (i * 37 + f * 11) % 23 + 0.25 * f;
        raw[i * 18 + 4] = NAN;
        av[i] = ((1u << 18) - 1) & ~(1u << 4);
        if (i % 3 == 0) { av[i] &= ~(1u << 2); raw[i * 18 + 2] = NAN; }
        vel[i] = 100.0 + i * i;
    }
    MilesScalerOptions so = {1, (1u << 0) | (1u << 13), 80};
    MilesScaler *s, *t;
    assert_int_equal(miles_scaler_fit(&s, raw, av, N, vel, &so), MILES_OK);
    uint32_t avail, dropped;
    double mean[18], scale[18];
    miles_scaler_stats(s, mean, scale, &avail, &dropped, NULL);
    assert_false(avail & (1u << 4));
    assert_true(avail & (1u << 2));
    assert_int_equal(dropped, (1u << 0) | (1u << 13));
    /* mean of feature 2 over available rows only (log1p applied: it is a count) */
    double sum = 0;
    int cnt = 0;
    for (int i = 0; i < N; i++) if (i % 3) { sum += log1p(raw[i * 18 + 2]); cnt++; }
    assert_true(relerr(mean[2], sum / cnt) < 1e-14);
    char *json;
    assert_int_equal(miles_scaler_to_json(s, &json), MILES_OK);
    assert_int_equal(miles_scaler_from_json(&t, json), MILES_OK);
    for (int i = 0; i < N; i++) {
        float a[18], b[18];
        miles_scaler_transform(s, raw + i * 18, av[i], a);
        miles_scaler_transform(t, raw + i * 18, av[i], b);
        assert_memory_equal(a, b, sizeof a);   /* bit-identical after the JSON round trip */
        assert_true(a[0] == 0.0f && a[13] == 0.0f);  /* dropped */
        assert_true(a[4] == 0.0f);                   /* unavailable */
        if (i % 3 == 0) assert_true(a[2] == 0.0f);   /* missing in this row */
    }
    assert_true(miles_scaler_threshold(t) == miles_scaler_threshold(s));
    assert_true(miles_scaler_velocity_unscale(t, 1.0) == vel[N - 1]);
    /* malformed JSON is refused with a message */
    const char *bad[] = {"", "{", "[]", "{\"format\":\"miles-scaler\"}",
                         "{\"format\":\"miles-scaler\",\"version\":2}", "{\"format\":\"other\",\"version\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        MilesScaler *u = NULL;
        assert_int_not_equal(miles_scaler_from_json(&u, bad[i]), MILES_OK);
        assert_null(u);
    }
    /* a renamed feature or a zero scale is refused */
    char *j2 = strdup(json);
    char *p = strstr(j2, "\"likes\"");
    memcpy(p, "\"lik3s\"", 7);
    MilesScaler *u = NULL;
    assert_int_equal(miles_scaler_from_json(&u, j2), MILES_EFORMAT);
    printf("  renamed feature: %s\n", miles_last_error());
    free(j2);
    /* one field at a time made wrong in the valid JSON: each refused naming it */
    const struct { const char *key, *sub, *value, *want; } cases[] = {
        {"features", NULL, "[\"views\"]", "'features' must list the 18 feature names"},
        {"mean", NULL, "[1, 2, 3]", "'mean' must be an array of 18 numbers"},
        {"scale", NULL, "\"wide\"", "'scale' must be an array of 18 numbers"},
        {"mean", "3", "\"x\"", "'mean'[3] is not a finite number"},
        {"available", "5", "2", "'available'[5] must be 0 or 1"},
        {"velocity", "max", "\"big\"", "'max' is not a finite number"},
        {"label", "threshold", "null", "'threshold' is not a finite number"},
        {"label", NULL, NULL, "missing 'label'"},
        {"available", NULL, NULL, "missing 'available'"},
        {"dropped", NULL, NULL, "missing 'dropped'"},
        {"log1p", NULL, NULL, "missing 'log1p'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *o = cJSON_Parse(json);
        assert_non_null(o);
        cJSON *parent = o, *it = cJSON_GetObjectItemCaseSensitive(o, cases[i].key);
        assert_non_null(it);
        if (!cases[i].value) {
            cJSON_DeleteItemFromObjectCaseSensitive(o, cases[i].key);
        } else {
            cJSON *v = cJSON_Parse(cases[i].value);
            assert_non_null(v);
            if (!cases[i].sub) cJSON_ReplaceItemInObjectCaseSensitive(parent, cases[i].key, v);
            else if (cJSON_IsArray(it)) cJSON_ReplaceItemInArray(it, atoi(cases[i].sub), v);
            else cJSON_ReplaceItemInObjectCaseSensitive(it, cases[i].sub, v);
        }
        char *txt = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        u = NULL;
        int rc = miles_scaler_from_json(&u, txt);
        free(txt);
        if (rc == MILES_OK || !strstr(miles_last_error(), cases[i].want))
            fail_msg("%s%s%s: got %s \"%s\", want \"%s\"", cases[i].key, cases[i].sub ? "." : "",
                     cases[i].sub ? cases[i].sub : "", miles_status_name(rc), miles_last_error(), cases[i].want);
        assert_null(u);
    }
    printf("  %zu malformed fields refused, each named\n", sizeof cases / sizeof *cases);
    free(json);
    miles_scaler_free(s);
    miles_scaler_free(t);
}

/* ------------------------------------------------------------------ splits */

/* JSON text with the number after "key": replaced by `val` (malloc'd) */
static char *json_with(const char *js, const char *key, const char *val) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(js, pat);
    assert_non_null(at);
    at += strlen(pat);
    while (*at == ' ' || *at == '\t') at++;
    const char *end = at;
    while (*end && *end != ',' && *end != '\n' && *end != '}') end++;
    size_t cap = strlen(js) + strlen(val) + 1;
    char *o = malloc(cap);
    snprintf(o, cap, "%.*s%s%s", (int)(at - js), js, val, end);
    return o;
}

/* The cohort rule in the scaler: setter bounds, a threshold resetting it, the
 * JSON's bounds (whole numbers, days in [1, 100000], rows in [1, 1e15]). */
static void test_scaler_cohort(void **state) {
    (void)state;
    enum { N = 6 };
    double raw[N * 18], vel[N];
    uint32_t av[N];
    for (int i = 0; i < N * 18; i++) raw[i] = i % 7;
    for (int i = 0; i < N; i++) { av[i] = (1u << 18) - 1; vel[i] = i; }
    MilesScaler *s, *t;
    assert_int_equal(miles_scaler_fit(&s, raw, av, N, vel, NULL), MILES_OK);
    int days = -1;
    int64_t rows = -1;
    assert_int_equal(miles_scaler_label_cohort(s, &days, &rows), 0);
    assert_true(days == -1 && rows == -1); /* untouched without a rule */
    miles_scaler_set_label_cohort(s, 0, 5);
    assert_int_equal(miles_scaler_label_cohort(s, NULL, NULL), 0);
    miles_scaler_set_label_cohort(s, 5, 0);
    assert_int_equal(miles_scaler_label_cohort(s, NULL, NULL), 0);
    miles_scaler_set_label_cohort(s, 1, 1);
    assert_int_equal(miles_scaler_label_cohort(s, &days, &rows), 1);
    assert_true(days == 1 && rows == 1);
    char *js;
    assert_int_equal(miles_scaler_to_json(s, &js), MILES_OK);
    assert_non_null(strstr(js, "\"scope\":\t\"cohort\""));
    assert_int_equal(miles_scaler_from_json(&t, js), MILES_OK);
    days = 0; rows = 0;
    assert_int_equal(miles_scaler_label_cohort(t, &days, &rows), 1);
    assert_true(days == 1 && rows == 1);
    miles_scaler_free(t);
    static const struct { const char *key, *val; int ok; } cases[] = {
        {"cohort_days", "100000", 1}, {"cohort_days", "100001", 0}, {"cohort_days", "0", 0}, {"cohort_days", "1.5", 0},
        {"cohort_min_rows", "1e15", 1}, {"cohort_min_rows", "2e15", 0}, {"cohort_min_rows", "0", 0},
        {"cohort_min_rows", "2.5", 0}, {"cohort_days", "\"7\"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *b = json_with(js, cases[i].key, cases[i].val);
        int st = miles_scaler_from_json(&t, b);
        printf("  %s %s: %s\n", cases[i].key, cases[i].val, st ? miles_last_error() : "ok");
        assert_int_equal(st, cases[i].ok ? MILES_OK : MILES_EFORMAT);
        if (!st) miles_scaler_free(t);
        free(b);
    }
    /* a plain threshold replaces the rule */
    miles_scaler_set_threshold(s, 3, 80, "train");
    assert_int_equal(miles_scaler_label_cohort(s, NULL, NULL), 0);
    free(js);
    assert_int_equal(miles_scaler_to_json(s, &js), MILES_OK);
    assert_null(strstr(js, "cohort"));
    free(js);
    miles_scaler_free(s);
}

static void test_split_sizes(void **state) {
    (void)state;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(golden, "split_sizes")) {
        int n = cJSON_GetObjectItem(e, "n")->valueint, pos = cJSON_GetObjectItem(e, "pos")->valueint;
        int32_t *lab = calloc((size_t)n, sizeof *lab);
        uint8_t *sp = malloc((size_t)n), *sp2 = malloc((size_t)n);
        for (int i = 0; i < pos; i++) lab[(int64_t)i * 7919 % n] = 1; /* scattered positives */
        int64_t np = 0;
        for (int i = 0; i < n; i++) np += lab[i];
        if (np != pos) { for (int i = 0; i < n; i++) lab[i] = i < pos; }
        assert_int_equal(miles_split_stratified(lab, n, 0.7, 42, sp), MILES_OK);
        int64_t cnt[3] = {0}, cp[3] = {0};
        for (int i = 0; i < n; i++) { cnt[sp[i]]++; cp[sp[i]] += lab[i]; }
        printf("  n=%d pos=%d: %lld/%lld/%lld (viral %lld/%lld/%lld) sklearn %d/%d/%d (%d/%d/%d)\n", n, pos,
               (long long)cnt[0], (long long)cnt[1], (long long)cnt[2], (long long)cp[0], (long long)cp[1], (long long)cp[2],
               cJSON_GetObjectItem(e, "train")->valueint, cJSON_GetObjectItem(e, "val")->valueint,
               cJSON_GetObjectItem(e, "test")->valueint, cJSON_GetObjectItem(e, "train_pos")->valueint,
               cJSON_GetObjectItem(e, "val_pos")->valueint, cJSON_GetObjectItem(e, "test_pos")->valueint);
        assert_int_equal(cnt[0], cJSON_GetObjectItem(e, "train")->valueint);
        assert_int_equal(cnt[1], cJSON_GetObjectItem(e, "val")->valueint);
        assert_int_equal(cnt[2], cJSON_GetObjectItem(e, "test")->valueint);
        /* stratification: within 1 of sklearn's per-class counts */
        assert_true(llabs(cp[0] - cJSON_GetObjectItem(e, "train_pos")->valueint) <= 1);
        assert_true(llabs(cp[1] - cJSON_GetObjectItem(e, "val_pos")->valueint) <= 1);
        assert_true(llabs(cp[2] - cJSON_GetObjectItem(e, "test_pos")->valueint) <= 1);
        /* determinism, and a different seed gives a different membership */
        assert_int_equal(miles_split_stratified(lab, n, 0.7, 42, sp2), MILES_OK);
        assert_memory_equal(sp, sp2, (size_t)n);
        assert_int_equal(miles_split_stratified(lab, n, 0.7, 43, sp2), MILES_OK);
        if (n >= 100) assert_true(memcmp(sp, sp2, (size_t)n) != 0);
        free(lab); free(sp); free(sp2);
    }
    assert_int_equal(miles_split_train_count(9542, 0.7), 6679);
    assert_int_equal(miles_split_train_count(2863, 0.5), 1431);
}

#define GROUP_SPLIT_PIN 0xc69cab32cceef40fULL /* FNV-1a 64 of the seed-42 split below */
static void test_split_groups(void **state) {
    (void)state;
    enum { N = 5000 };
    int32_t *g = malloc(N * sizeof *g);
    uint8_t *sp = malloc(N), *sp2 = malloc(N);
    for (int i = 0; i < N; i++) g[i] = (i % 13 == 0) ? -1 : (int32_t)((i * 2654435761u) % 700);
    assert_int_equal(miles_split_groups(g, N, 0.7, 42, sp), MILES_OK);
    uint8_t seen[700];
    memset(seen, 0xFF, sizeof seen);
    int64_t cnt[3] = {0};
    for (int i = 0; i < N; i++) {
        cnt[sp[i]]++;
        if (g[i] < 0) continue;
        if (seen[g[i]] == 0xFF) seen[g[i]] = sp[i];
        assert_int_equal(seen[g[i]], sp[i]); /* no creator in two splits */
    }
    printf("  group split %lld/%lld/%lld (target 3500/750/750)\n", (long long)cnt[0], (long long)cnt[1], (long long)cnt[2]);
    assert_true(llabs(cnt[0] - 3500) <= 30 && llabs(cnt[1] - 750) <= 30 && llabs(cnt[2] - 750) <= 40);
    assert_int_equal(miles_split_groups(g, N, 0.7, 42, sp2), MILES_OK);
    assert_memory_equal(sp, sp2, N);
    /* The split a seed gives is pinned: a changed rule (group order, which
     * split a group best fits, the ids of ungrouped rows) would re-split every
     * grouped data set and change every result trained on one. */
    const uint64_t h = test_fnv1a(TEST_FNV_BASIS, sp, N);
    printf("  group split hash %016llx\n", (unsigned long long)h);
    assert_true(h == GROUP_SPLIT_PIN);
    free(g); free(sp); free(sp2);
}

/* Ordered split: whole runs of equal keys in order; sklearn's sizes when every
 * key differs; the input order does not matter. */
static void test_split_ordered(void **state) {
    (void)state;
    enum { N = 1000 };
    int64_t key[N];
    uint8_t sp[N], sp2[N];
    /* distinct keys, scrambled: exactly 700/150/150, split at the key ranks */
    for (int i = 0; i < N; i++) key[i] = (int64_t)((i * 7919L) % N) - 300;
    assert_int_equal(miles_split_ordered(key, N, 0.7, sp), MILES_OK);
    int64_t cnt[3] = {0};
    for (int i = 0; i < N; i++) {
        cnt[sp[i]]++;
        int want = key[i] + 300 < 700 ? MILES_SPLIT_TRAIN : key[i] + 300 < 850 ? MILES_SPLIT_VAL : MILES_SPLIT_TEST;
        assert_int_equal(sp[i], want);
    }
    assert_true(cnt[0] == 700 && cnt[1] == 150 && cnt[2] == 150);
    /* runs of equal keys (days of 1..37 rows): no key in two splits, splits in key order */
    int64_t day = 0;
    for (int i = 0, left = 0; i < N; i++) {
        if (left == 0) { day += 1 + i % 3; left = 1 + (i * 13) % 37; }
        key[(i * 7919L) % N] = day; /* scattered over the array */
        left--;
    }
    assert_int_equal(miles_split_ordered(key, N, 0.7, sp), MILES_OK);
    int64_t lo[3] = {INT64_MAX, INT64_MAX, INT64_MAX}, hi[3] = {INT64_MIN, INT64_MIN, INT64_MIN};
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < N; i++) {
        cnt[sp[i]]++;
        if (key[i] < lo[sp[i]]) lo[sp[i]] = key[i];
        if (key[i] > hi[sp[i]]) hi[sp[i]] = key[i];
    }
    printf("  ordered split %lld/%lld/%lld; keys %lld..%lld / %lld..%lld / %lld..%lld\n", (long long)cnt[0],
           (long long)cnt[1], (long long)cnt[2], (long long)lo[0], (long long)hi[0], (long long)lo[1], (long long)hi[1],
           (long long)lo[2], (long long)hi[2]);
    assert_true(hi[0] < lo[1] && hi[1] < lo[2]);
    /* each boundary is within half a run (<= 18 rows) of its target */
    assert_true(llabs(cnt[0] - 700) <= 18 && llabs(cnt[0] + cnt[1] - 850) <= 18);
    /* a row's split depends on its key only: reversed input, same answer per row */
    int64_t rkey[N];
    for (int i = 0; i < N; i++) rkey[i] = key[N - 1 - i];
    assert_int_equal(miles_split_ordered(rkey, N, 0.7, sp2), MILES_OK);
    for (int i = 0; i < N; i++) assert_int_equal(sp2[N - 1 - i], sp[i]);
    /* one key: one run, all of it in train */
    for (int i = 0; i < N; i++) key[i] = 5;
    assert_int_equal(miles_split_ordered(key, N, 0.7, sp), MILES_OK);
    for (int i = 0; i < N; i++) assert_int_equal(sp[i], MILES_SPLIT_TRAIN);
    assert_int_equal(miles_split_ordered(key, 0, 0.7, sp), MILES_OK);
    assert_int_equal(miles_split_ordered(NULL, N, 0.7, sp), MILES_EINVAL);
    assert_int_equal(miles_split_ordered(key, N, 1.0, sp), MILES_EINVAL);
}

/* Cohort labels on a hand-worked case: windows of 7 days, at least 5 rows.
 * Week 0 (3 rows) joins week 1 (4): cohort A, velocities 1..7, p80 = 5.8
 * (numpy linear: 6 - 0.2); week 2 (6 rows) would leave week 3's 2 rows
 * alone, so they join it: cohort B, velocities 10..17, p80 = 15.6. */
static void test_label_cohorts(void **state) {
    (void)state;
    enum { N = 15 };
    static const int64_t d[N] = {0, 1, 2, 7, 8, 9, 10, 14, 15, 16, 17, 18, 19, 21, 22};
    static const double v[N] = {7, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17}; /* the first day's is A's largest */
    int64_t day[N];
    double vel[N];
    int32_t lab[N];
    for (int i = 0; i < N; i++) { int j = (i * 7) % N; day[j] = d[i] + 20000; vel[j] = v[i]; } /* scrambled */
    MilesCohorts c;
    assert_int_equal(miles_label_cohorts(day, vel, N, 7, 5, 80, lab, &c), MILES_OK);
    printf("  %lld cohorts, smallest %lld, thresholds %.17g..%.17g\n", (long long)c.n, (long long)c.min_rows, c.thr_min,
           c.thr_max);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.min_rows, 7);
    assert_true(fabs(c.thr_min - 5.8) < 1e-12 && fabs(c.thr_max - 15.6) < 1e-12);
    for (int j = 0; j < N; j++) assert_int_equal(lab[j], vel[j] == 6 || vel[j] == 7 || vel[j] == 16 || vel[j] == 17);
    /* a gap of empty windows: days 0-1 (2 rows) < 3 join the window of day 30 */
    static const int64_t d2[7] = {0, 1, 30, 31, 32, 33, 34};
    static const double v2[7] = {1, 2, 3, 4, 5, 6, 7};
    assert_int_equal(miles_label_cohorts(d2, v2, 7, 7, 3, 80, lab, &c), MILES_OK);
    assert_int_equal(c.n, 1);
    for (int j = 0; j < 7; j++) assert_int_equal(lab[j], j >= 5);
    /* every window full: one cohort per week; fewer rows than min_rows: one cohort */
    assert_int_equal(miles_label_cohorts(d, v, N, 7, 1, 80, lab, &c), MILES_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.min_rows, 2);
    assert_int_equal(miles_label_cohorts(d, v, N, 1, 1, 80, lab, &c), MILES_OK); /* one day a cohort */
    assert_int_equal(c.n, N);
    assert_int_equal(miles_label_cohorts(d, v, N, 7, 100, 80, lab, &c), MILES_OK);
    assert_int_equal(c.n, 1);
    /* one row: its own cohort, at its own percentile; any p in (0, 100) */
    assert_int_equal(miles_label_cohorts(d, v, 1, 7, 5, 0.5, lab, &c), MILES_OK);
    assert_true(c.n == 1 && lab[0] == 1);
    assert_int_equal(miles_label_cohorts(d, v, N, 7, 5, 0, lab, &c), MILES_EINVAL);
    assert_int_equal(miles_label_cohorts(d, NULL, N, 7, 5, 80, lab, &c), MILES_EINVAL);
    assert_int_equal(miles_label_cohorts(NULL, v, N, 7, 5, 80, lab, &c), MILES_EINVAL);
    assert_int_equal(miles_label_cohorts(d, v, N, 7, 5, 80, NULL, &c), MILES_EINVAL);
    assert_int_equal(miles_label_cohorts(d, v, N, 0, 5, 80, lab, &c), MILES_EINVAL);
    assert_int_equal(miles_label_cohorts(d, v, N, 7, 0, 80, lab, &c), MILES_EINVAL);
    assert_int_equal(miles_label_cohorts(d, v, 0, 7, 5, 80, lab, &c), MILES_EINVAL);
    assert_int_equal(miles_label_cohorts(d, v, N, 7, 5, 100, lab, &c), MILES_EINVAL);
}

static void test_crc32(void **state) {
    (void)state;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(golden, "crc32")) {
        const char *hex = cJSON_GetObjectItem(e, "hex")->valuestring;
        size_t n = strlen(hex) / 2;
        unsigned char buf[256];
        for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &buf[i]);
        assert_int_equal(miles_crc32(0, buf, n), (uint32_t)cJSON_GetObjectItem(e, "crc")->valuedouble);
        /* incremental */
        if (n > 3) assert_int_equal(miles_crc32(miles_crc32(0, buf, 3), buf + 3, n - 3), miles_crc32(0, buf, n));
    }
}

/* ------------------------------------------------------------------ prepare */

static char vocab[1024];
static const char *find_vocab(void) {
    /* a committed vocab fixture (a .txt under tests/fixtures with "vocab" in its name), else the downloaded model */
    DIR *d = opendir("tests/fixtures");
    struct dirent *de;
    vocab[0] = '\0';
    while (d && (de = readdir(d))) {
        if (strstr(de->d_name, "vocab") && strstr(de->d_name, ".txt")) {
            snprintf(vocab, sizeof vocab, "tests/fixtures/%s", de->d_name);
            break;
        }
    }
    if (d) closedir(d);
    if (!vocab[0] && access("models/all-MiniLM-L6-v2/vocab.txt", R_OK) == 0)
        snprintf(vocab, sizeof vocab, "models/all-MiniLM-L6-v2/vocab.txt");
    return vocab[0] ? vocab : NULL;
}

static char tmpdir[] = "/tmp/miles_test_data_XXXXXX";
static char csv_path[1100], out_path[1100];

/* A 58-column-like CSV (the columns the pipeline reads plus extras).
 * mode: 0 normal; 1 drop the saves column entirely. */
static void write_csv(const char *path, int rows, int mode) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "platform,language,author_handle,duration_sec,views,likes,comments,shares,%s"
               "upload_hour,trend_duration_days,engagement_velocity,publish_dayofweek,creator_avg_views,"
               "publish_date_approx,title,avg_watch_time_sec,row_id,notes\r\n", mode == 1 ? "" : "saves,");
    static const char *titles[] = {"Night Routine \xE2\x80\x94 Productivity \xF0\x9F\x8F\x96\xEF\xB8\x8F",
                                   "Football skills in 60s \xF0\x9F\x93\xB1", "POV: Budget \xF0\x9F\x98\x82",
                                   "Pro Tips for Valorant in 60s \xF0\x9F\x8E\xAE", "Best \"quoted\", title"};
    static const char *days[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
    for (int i = 0; i < rows; i++) {
        long views = 1000 + (i * 7919L) % 300000;
        int tdays = 1 + (i * 31) % 60;
        char title[256];
        snprintf(title, sizeof title, "%s #%d", titles[i % 5], i);
        /* quote the title field, doubling quotes */
        char q[600];
        size_t o = 0;
        q[o++] = '"';
        for (const char *p = title; *p; p++) { if (*p == '"') q[o++] = '"'; q[o++] = *p; }
        q[o++] = '"'; q[o] = '\0';
        char saves[32] = "";
        if (mode != 1) snprintf(saves, sizeof saves, "%ld,", views / 40);
        fprintf(f, "TikTok,%s,creator%d,%d,%ld,%ld,%ld,%ld,%s%d,%d,%.2f,%s,%s,2025-01-%02d,%s,%.1f,id%d,\"multi\nline\"\r\n",
                i % 4 == 3 ? "ko" : "en", i % 37, 5 + i % 80, views, views / 12, views / 90, views / 150, saves, i % 24,
                tdays, (double)views / tdays, days[i % 7], i % 11 == 0 ? "" : "50000.5", 1 + i % 28, q,
                (5 + i % 80) * 0.6, i % 50 == 49 ? 0 : i);
    }
    fclose(f);
}

static int no_leftovers(void) {
    return test_count_entries(tmpdir, ".tmp.") == 0 && test_count_entries(tmpdir, "out.milesdat") == 0;
}

static void test_prepare_roundtrip(void **state) {
    (void)state;
    if (!find_vocab()) { printf("  skip: no vocab (tests/fixtures/vocab*.txt or models/)\n"); skip(); }
    assert_non_null(mkdtemp(tmpdir));
    snprintf(csv_path, sizeof csv_path, "%s/in.csv", tmpdir);
    snprintf(out_path, sizeof out_path, "%s/out.milesdat", tmpdir);
    const int R = 1200;
    write_csv(csv_path, R, 0);
    MilesPrepareOptions o;
    miles_prepare_options_default(&o);
    o.vocab_dir = vocab;
    o.max_len = 16;
    o.dedup = 1;
    MilesPrepareReport rep;
    int st = miles_data_prepare(csv_path, out_path, &o, &rep);
    if (st) fprintf(stderr, "%s\n", miles_last_error());
    assert_int_equal(st, MILES_OK);
    char txt[8192];
    miles_prepare_report_format(&rep, o.leak_bound, txt, sizeof txt);
    printf("%s", txt);
    /* language: every 4th row is "ko"; dedup: rows i%50==49 share id "id0" with row 0 */
    int64_t ko = 0, dup = 0;
    for (int i = 0; i < R; i++) { if (i % 4 == 3) ko++; else if (i % 50 == 49) dup++; }
    assert_int_equal(rep.rows_read, R);
    assert_int_equal(rep.rows_language, ko);
    assert_int_equal(rep.rows_dup, dup);
    assert_int_equal(rep.rows_kept, R - ko - dup);
    int64_t n = rep.rows_kept;
    assert_int_equal(rep.n[0], miles_split_train_count(n, 0.7));
    assert_int_equal(rep.n[1], miles_split_train_count(n - rep.n[0], 0.5));
    assert_true(rep.leak_warn & 1u); /* views vs views/trend_duration_days */

    MilesPrepared *p;
    assert_int_equal(miles_prepared_open(&p, out_path), MILES_OK);
    MilesScaler *sc;
    assert_int_equal(miles_scaler_from_json(&sc, miles_prepared_scaler_json(p)), MILES_OK);
    double thr = miles_scaler_threshold(sc);
    assert_true(thr == rep.threshold);
    /* train-scope threshold: the p80 of the training velocities */
    MilesDataset v;
    miles_prepared_split(p, MILES_SPLIT_TRAIN, &v);
    assert_true(miles_percentile(v.velocity_raw, v.n, 80) == thr);
    int cls = -1;
    char hash[17];
    MilesTokenizer *tok;
    assert_int_equal(miles_tokenizer_load(&tok, vocab), MILES_OK);
    cls = miles_tokenizer_special_id(tok, "cls");
    miles_tokenizer_hash(tok, hash);
    assert_string_equal(miles_prepared_vocab_hash(p), hash);
    int64_t total = 0, truncated = 0;
    for (int s = 0; s < 3; s++) {
        miles_prepared_split(p, s, &v);
        assert_int_equal(v.n, rep.n[s]);
        assert_int_equal(v.max_len, 16);
        total += v.n;
        int64_t viral = 0;
        for (int64_t i = 0; i < v.n; i++) {
            viral += v.labels[i];
            assert_int_equal(v.labels[i], v.velocity_raw[i] >= thr);
            assert_true((float)miles_scaler_velocity_scale(sc, v.velocity_raw[i]) == v.velocity[i]);
            /* the serving path gives the same bytes: rebuild the record from raw values */
            float z[18];
            miles_scaler_transform(sc, v.features_raw + i * 18, v.avail[i], z);
            assert_memory_equal(z, v.features + i * 18, sizeof z);
            assert_int_equal(v.input_ids[i * 16], cls);
            assert_true(v.lengths[i] >= 3 && v.lengths[i] <= 16);
            for (int t = 0; t < 16; t++) assert_int_equal(v.attention_mask[i * 16 + t], t < v.lengths[i]);
            for (int t = 0; t < 16; t++) assert_int_equal(v.token_type_ids[i * 16 + t], 0); /* one segment */
            /* title stored raw; tokens match a fresh encoding */
            const char *title = miles_prepared_title(p, s, i);
            int32_t ids[16];
            int len;
            assert_int_equal(miles_tokenizer_encode(tok, title, strlen(title), NULL, 0, 16, 1, ids, NULL, NULL, &len), MILES_OK);
            assert_int_equal(len, v.lengths[i]);
            assert_memory_equal(ids, v.input_ids + i * 16, sizeof ids);
            int pieces = 0;
            assert_int_equal(miles_tokenizer_tokenize(tok, title, strlen(title), NULL, 0, &pieces), MILES_OK);
            truncated += pieces > 16 - 2; /* [CLS] and [SEP] take two */
            /* creator_avg_views derived for rows that left it empty: never missing here */
            assert_true(v.avail[i] == (1u << 18) - 1);
        }
        assert_int_equal(viral, rep.viral[s]);
    }
    assert_int_equal(total, n);
    assert_int_equal(rep.truncated, truncated); /* 0 at max_len 16 */
    {   /* at max_len 4 (two word pieces) most are cut: the report counts them */
        MilesPrepareOptions o4 = o;
        o4.max_len = 4;
        MilesPrepareReport rep4;
        char out4[600];
        snprintf(out4, sizeof out4, "%s/out4.milesdat", tmpdir);
        assert_int_equal(miles_data_prepare(csv_path, out4, &o4, &rep4), MILES_OK);
        MilesPrepared *p4;
        assert_int_equal(miles_prepared_open(&p4, out4), MILES_OK);
        int64_t cut = 0;
        for (int s = 0; s < 3; s++) {
            MilesDataset d4;
            miles_prepared_split(p4, s, &d4);
            for (int64_t i = 0; i < d4.n; i++) {
                const char *title = miles_prepared_title(p4, s, i);
                int pieces = 0;
                assert_int_equal(miles_tokenizer_tokenize(tok, title, strlen(title), NULL, 0, &pieces), MILES_OK);
                cut += pieces > 4 - 2;
            }
        }
        printf("  max_len 4: %lld of %lld titles truncated, as the report says\n", (long long)cut, (long long)n);
        assert_int_equal(rep4.truncated, cut);
        assert_true(cut > 0);
        miles_prepared_free(p4);
        remove(out4);
    }
    /* one full named record through the public serving call == the stored vector */
    miles_prepared_split(p, MILES_SPLIT_TEST, &v);
    {
        const char *title = miles_prepared_title(p, MILES_SPLIT_TEST, 0);
        char buf[18][64];
        const char *names[19], *vals[19];
        for (int f = 0; f < 18; f++) {
            snprintf(buf[f], sizeof buf[f], "%.17g", v.features_raw[f]);
            names[f] = miles_feature_names[f];
            vals[f] = buf[f];
        }
        names[18] = "title"; vals[18] = title;
        float z[18];
        uint32_t av;
        assert_int_equal(miles_scaler_transform_record(sc, &(MilesRecord){19, names, vals, NULL}, z, &av), MILES_OK);
        assert_memory_equal(z, v.features, sizeof z);
        printf("  serving path reproduces the stored test[0] vector bit for bit\n");
    }
    miles_tokenizer_free(tok);
    miles_scaler_free(sc);
    miles_prepared_free(p);

    /* --threshold-scope all: the original's p80 over all kept rows */
    o.threshold_all = 1;
    MilesPrepareReport rep2;
    assert_int_equal(miles_data_prepare(csv_path, out_path, &o, &rep2), MILES_OK);
    assert_int_equal(miles_prepared_open(&p, out_path), MILES_OK);
    double *allv = malloc(sizeof(double) * n);
    int64_t k = 0;
    for (int s = 0; s < 3; s++) {
        miles_prepared_split(p, s, &v);
        for (int64_t i = 0; i < v.n; i++) allv[k++] = v.velocity_raw[i];
    }
    assert_true(rep2.threshold == miles_percentile(allv, n, 80));
    free(allv);
    miles_prepared_free(p);
    /* determinism: same options, same bytes */
    char *a, *b;
    size_t na, nb;
    FILE *f = fopen(out_path, "rb");
    fseek(f, 0, SEEK_END); na = (size_t)ftell(f); fseek(f, 0, SEEK_SET);
    a = malloc(na); assert_int_equal(fread(a, 1, na, f), na); fclose(f);
    assert_int_equal(miles_data_prepare(csv_path, out_path, &o, &rep2), MILES_OK);
    f = fopen(out_path, "rb");
    fseek(f, 0, SEEK_END); nb = (size_t)ftell(f); fseek(f, 0, SEEK_SET);
    b = malloc(nb); assert_int_equal(fread(b, 1, nb, f), nb); fclose(f);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a); free(b);

    /* --drop-features views,likes: masked to 0, layout stays 18 wide */
    o.threshold_all = 0;
    o.drop_mask = 3;
    assert_int_equal(miles_data_prepare(csv_path, out_path, &o, &rep2), MILES_OK);
    assert_int_equal(miles_prepared_open(&p, out_path), MILES_OK);
    miles_prepared_split(p, MILES_SPLIT_TRAIN, &v);
    int nonzero2 = 0;
    for (int64_t i = 0; i < v.n; i++) {
        assert_true(v.features[i * 18 + 0] == 0.0f && v.features[i * 18 + 1] == 0.0f);
        assert_false(isnan(v.features_raw[i * 18]));
        nonzero2 += v.features[i * 18 + 2] != 0.0f;
    }
    assert_true(nonzero2 > 0);
    miles_prepared_free(p);
    o.drop_mask = 0;

    /* a source without a saves column: saves, engagement_rate and save_rate unavailable */
    write_csv(csv_path, R, 1);
    assert_int_equal(miles_data_prepare(csv_path, out_path, &o, &rep2), MILES_OK);
    uint32_t want_unavail = (1u << 4) | (1u << 5) | (1u << 10);
    assert_int_equal(rep2.available & want_unavail, 0);
    assert_int_equal(rep2.available | want_unavail, (1u << 18) - 1);
    assert_int_equal(miles_prepared_open(&p, out_path), MILES_OK);
    miles_prepared_split(p, MILES_SPLIT_VAL, &v);
    for (int64_t i = 0; i < v.n; i++) {
        assert_true(v.features[i * 18 + 4] == 0.0f && v.features[i * 18 + 10] == 0.0f);
        assert_true(isnan(v.features_raw[i * 18 + 4])); /* never a silent raw 0 */
    }
    assert_int_equal(miles_scaler_from_json(&sc, miles_prepared_scaler_json(p)), MILES_OK);
    uint32_t av2;
    miles_scaler_stats(sc, NULL, NULL, &av2, NULL, NULL);
    assert_int_equal(av2 & want_unavail, 0);
    miles_scaler_free(sc);
    miles_prepared_free(p);

    /* creator split: no creator in two splits */
    write_csv(csv_path, R, 0);
    o.split_by_creator = 1;
    assert_int_equal(miles_data_prepare(csv_path, out_path, &o, &rep2), MILES_OK);
    assert_int_equal(miles_prepared_open(&p, out_path), MILES_OK);
    int where[64];
    for (int c = 0; c < 64; c++) where[c] = -1;
    for (int s = 0; s < 3; s++) {
        miles_prepared_split(p, s, &v);
        for (int64_t i = 0; i < v.n; i++) {
            int c = v.creator[i];
            assert_true(c >= 0 && c < 64);
            if (where[c] < 0) where[c] = s;
            assert_int_equal(where[c], s);
        }
    }
    printf("  creator split: %lld/%lld/%lld\n", (long long)rep2.n[0], (long long)rep2.n[1], (long long)rep2.n[2]);
    miles_prepared_free(p);
    o.split_by_creator = 0;

    /* --text-clean seed: tokens of the cleaned title */
    o.text_clean = MILES_TEXT_CLEAN_SEED;
    assert_int_equal(miles_data_prepare(csv_path, out_path, &o, &rep2), MILES_OK);
    assert_int_equal(miles_prepared_open(&p, out_path), MILES_OK);
    assert_int_equal(miles_prepared_text_clean(p), MILES_TEXT_CLEAN_SEED);
    miles_prepared_free(p);
}

static void flip_and_expect(const char *path, long off, int mode, int code, const char *needle) {
    /* mode 0: flip a byte; 1: truncate to off; 2: set version field to 99 and fix the header CRC;
     * 3: set the split record's u32 at off to 9 and fix its CRC (bytes 128..187 at 188) */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    char bad[1200];
    snprintf(bad, sizeof bad, "%s.bad", path);
    f = fopen(bad, "wb");
    if (mode == 0) { b[off] ^= 0x40; fwrite(b, 1, (size_t)n, f); }
    else if (mode == 1) fwrite(b, 1, (size_t)off, f);
    else if (mode == 3) {
        b[off] = 9; b[off + 1] = b[off + 2] = b[off + 3] = 0;
        uint32_t c = miles_crc32(0, b + 128, 60);
        for (int i = 0; i < 4; i++) b[188 + i] = (unsigned char)(c >> (8 * i));
        fwrite(b, 1, (size_t)n, f);
    } else {
        b[8] = 99; b[9] = b[10] = b[11] = 0;
        uint32_t c = miles_crc32(0, b, 124);
        for (int i = 0; i < 4; i++) b[124 + i] = (unsigned char)(c >> (8 * i));
        fwrite(b, 1, (size_t)n, f);
    }
    fclose(f);
    free(b);
    MilesPrepared *p = NULL;
    int st = miles_prepared_open(&p, bad);
    printf("  %s -> %s\n", miles_status_name(st), miles_last_error());
    assert_int_equal(st, code);
    assert_null(p);
    assert_non_null(strstr(miles_last_error(), needle));
    unlink(bad);
}

/* A temporary directory with write_csv's file of `rows` rows (csv, out: its
 * paths) and the options the prepare tests start from. */
static void fixture_options(char *dir, char csv[1100], char out[1100], int rows, MilesPrepareOptions *o) {
    assert_non_null(mkdtemp(dir));
    snprintf(csv, 1100, "%s/in.csv", dir);
    snprintf(out, 1100, "%s/out.milesdat", dir);
    write_csv(csv, rows, 0);
    miles_prepare_options_default(o);
    o->vocab_dir = vocab;
    o->max_len = 16;
    o->dedup = 1;
}

/* prepare that must succeed; the report's text (up to the feature table) printed */
static void fixture_prepare(const char *csv, const char *out, const MilesPrepareOptions *o, MilesPrepareReport *rep,
                            char *txt, size_t cap) {
    int st = miles_data_prepare(csv, out, o, rep);
    if (st) fprintf(stderr, "%s\n", miles_last_error());
    assert_int_equal(st, MILES_OK);
    miles_prepare_report_format(rep, o->leak_bound, txt, cap);
    printf("%.*s", (int)(strstr(txt, "feature") - txt), txt);
}

/* prepare of o's file split by row (o otherwise unchanged) must succeed, its
 * report without `needle` */
static void report_by_row_lacks(const char *csv, const char *out, MilesPrepareOptions *o, MilesPrepareReport *rep,
                                const char *needle) {
    char txt[8192];
    int by_time = o->split_by_time;
    o->split_by_time = 0;
    assert_int_equal(miles_data_prepare(csv, out, o, rep), MILES_OK);
    o->split_by_time = by_time;
    miles_prepare_report_format(rep, o->leak_bound, txt, sizeof txt);
    assert_null(strstr(txt, needle));
}

/* --split-by time through prepare: splits in publish-day order, the report's
 * day ranges, and the refusals (no date on a kept row, no date column, too
 * few days, creator and time at once). */
static void test_prepare_by_time(void **state) {
    (void)state;
    if (!find_vocab()) { printf("  skip: no vocab\n"); skip(); }
    char dir[] = "/tmp/miles_test_time_XXXXXX", csv[1100], out[1100];
    MilesPrepareOptions o;
    fixture_options(dir, csv, out, 600, &o); /* row i: id "id<i>" (i % 50 == 49: "id0"), published 2025-01-(1 + i % 28) */
    o.split_by_time = 1;
    MilesPrepareReport rep;
    char txt[8192];
    fixture_prepare(csv, out, &o, &rep, txt, sizeof txt);
    int st;
    MilesPrepared *p;
    assert_int_equal(miles_prepared_open(&p, out), MILES_OK);
    const int64_t jan1 = 20089; /* 2025-01-01, days since 1970-01-01 */
    int lo[3] = {99, 99, 99}, hi[3] = {0, 0, 0};
    for (int s = 0; s < 3; s++) {
        MilesDataset v;
        assert_int_equal(miles_prepared_split(p, s, &v), MILES_OK);
        assert_int_equal(v.n, rep.n[s]);
        for (int64_t i = 0; i < v.n; i++) {
            int row = atoi(miles_prepared_row_id(p, s, i) + 2), d = 1 + row % 28;
            if (d < lo[s]) lo[s] = d;
            if (d > hi[s]) hi[s] = d;
        }
        assert_int_equal(rep.day_first[s], jan1 + lo[s] - 1);
        assert_int_equal(rep.day_last[s], jan1 + hi[s] - 1);
    }
    miles_prepared_free(p);
    printf("  days %d..%d / %d..%d / %d..%d\n", lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]);
    assert_true(hi[0] < lo[1] && hi[1] < lo[2]);
    assert_true(rep.split_by_time == 1);
    int64_t n = rep.n[0] + rep.n[1] + rep.n[2];
    assert_true(llabs(rep.n[0] - miles_split_train_count(n, 0.7)) <= 10); /* a day holds <= 20 kept rows */
    char want[80];
    snprintf(want, sizeof want, "published 2025-01-%02d..2025-01-%02d", lo[1], hi[1]);
    assert_non_null(strstr(txt, want));
    assert_non_null(strstr(txt, "split by time"));
    /* the CSV's creator_avg_views with a time split: the report suggests the prior mean */
    miles_prepare_report_format(&rep, o.leak_bound, txt, sizeof txt);
    assert_non_null(strstr(txt, "creator_avg_views: the data's value is in-sample"));
    /* the same file with another seed: a split by time does not depend on it */
    MilesPrepareReport rep2;
    o.seed = 7;
    assert_int_equal(miles_data_prepare(csv, out, &o, &rep2), MILES_OK);
    assert_memory_equal(rep.n, rep2.n, sizeof rep.n);
    assert_memory_equal(rep.viral, rep2.viral, sizeof rep.viral);
    o.seed = 42;
    /* the row split does not print days */
    report_by_row_lacks(csv, out, &o, &rep2, "published");
    assert_int_equal(rep2.split_by_time, 0);

    /* refusals */
    o.split_by_creator = 1;
    assert_int_equal(miles_data_prepare(csv, out, &o, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "choose one"));
    o.split_by_creator = 0;
    struct { const char *hdr, *body; int code; const char *needle; } cases[] = {
        {"row_id,title,views,likes,language,engagement_velocity,publish_date_approx\n",
         "a,t,10,1,en,5,2025-03-01\nb,t,10,1,en,5,\n", MILES_EMISSING,
         ":3:15 (column 7): row 'b' has no publish_date_approx"},
        {"row_id,title,views,likes,language,engagement_velocity\n", "a,t,10,1,en,5\n", MILES_EMISSING,
         ":1: column 'publish_date_approx' is missing from the header, and a split by time needs it"},
        {"row_id,title,views,likes,language,engagement_velocity,publish_date_approx\n",
         "a,t,10,1,en,5,2025-03-01\n", MILES_EINVAL, "too few publish days"},
    };
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(cases[i].hdr, f);
        fputs(cases[i].body, f);
        for (int k = 0; k < 20; k++)
            fprintf(f, "x%d,t,%d,1,en,%d%s\n", k, 100 + k, k, strstr(cases[i].hdr, "publish") ? ",2025-03-01" : "");
        fclose(f);
        st = miles_data_prepare(path, out, &o, NULL);
        printf("  case %zu: %s: %s\n", i, miles_status_name(st), miles_last_error());
        assert_int_equal(st, cases[i].code);
        assert_non_null(strstr(miles_last_error(), cases[i].needle));
    }
    /* the same day on every row, split by row: no correlation to print */
    report_by_row_lacks(path, out, &o, &rep, "publish day vs velocity");
    assert_int_equal(rep.n_dated, 21);
    /* two days, 14 and 6 rows: the second overshoots val's target (3) and goes to test: val empty */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("row_id,title,views,likes,language,engagement_velocity,publish_date_approx\n", f);
    for (int k = 0; k < 20; k++) fprintf(f, "x%d,t,%d,1,en,%d,2025-03-%02d\n", k, 100 + k, k, k < 14 ? 1 : 2);
    fclose(f);
    assert_int_equal(miles_data_prepare(path, out, &o, NULL), MILES_EINVAL);
    printf("  %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "gives 14/0/6 rows"));
    /* a row the language filter drops may lack a date; three days make three splits (the date
     * column first: column 0 is a column) */
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("publish_date_approx,row_id,title,views,likes,language,engagement_velocity\n", f);
    fputs(",ko1,t,10,1,ko,5\n", f);
    for (int k = 0; k < 20; k++) fprintf(f, "2025-03-%02d,x%d,t,%d,1,en,%d\n", k < 14 ? 1 : k < 17 ? 2 : 3, k, 100 + k, k);
    fclose(f);
    st = miles_data_prepare(path, out, &o, &rep);
    if (st) fprintf(stderr, "%s\n", miles_last_error());
    assert_int_equal(st, MILES_OK);
    assert_int_equal(rep.rows_language, 1);
    assert_true(rep.n[0] == 14 && rep.n[1] == 3 && rep.n[2] == 3);
    /* the drift line: Spearman(day, velocity) over the kept rows with a date,
     * all splits (0.80739067324816... from average ranks in plain Python) */
    printf("  drift: spearman %.17g over %lld rows\n", rep.day_spearman, (long long)rep.n_dated);
    assert_int_equal(rep.n_dated, 20);
    assert_true(fabs(rep.day_spearman - 0.8073906732481619) < 1e-12);
    miles_prepare_report_format(&rep, o.leak_bound, txt, sizeof txt);
    assert_non_null(strstr(txt, "publish day vs velocity: spearman +0.8074 over 20 rows with a date"));
    assert_null(strstr(txt, "drift:")); /* already split by time */
    /* a row split says so; a kept row without a date is left out of the count */
    f = fopen(path, "ab");
    assert_non_null(f);
    fputs(",nodate,t,10,1,en,3\n", f);
    fclose(f);
    o.split_by_time = 0;
    assert_int_equal(miles_data_prepare(path, out, &o, &rep), MILES_OK);
    assert_int_equal(rep.n_dated, 20);
    assert_int_equal(rep.rows_kept, 21);
    miles_prepare_report_format(&rep, o.leak_bound, txt, sizeof txt);
    assert_non_null(strstr(txt, "drift: the target moves with the publish date"));
    MilesPrepareReport applied = rep; /* a checkpoint's split (every row in test): no advice on splitting */
    applied.applied = 1;
    miles_prepare_report_format(&applied, o.leak_bound, txt, sizeof txt);
    assert_non_null(strstr(txt, "publish day vs velocity"));
    assert_null(strstr(txt, "drift:"));
    /* below the note's bound: velocity unrelated to the day (alternating days) */
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("row_id,title,views,likes,language,engagement_velocity,publish_date_approx\n", f);
    for (int k = 0; k < 20; k++) fprintf(f, "x%d,t,%d,1,en,%d,2025-03-%02d\n", k, 100 + k, k, 1 + k % 2);
    fclose(f);
    assert_int_equal(miles_data_prepare(path, out, &o, &rep), MILES_OK);
    printf("  no drift: spearman %.17g\n", rep.day_spearman);
    assert_true(fabs(rep.day_spearman) < MILES_DRIFT_NOTE);
    miles_prepare_report_format(&rep, o.leak_bound, txt, sizeof txt);
    assert_non_null(strstr(txt, "publish day vs velocity"));
    assert_null(strstr(txt, "drift:"));
    unlink(path); unlink(csv); unlink(out);
    assert_int_equal(rmdir(dir), 0);
}

/* write_csv's engagement_velocity of row i, as the file holds it (2 decimals) */
static double csv_velocity(int i) {
    char b[64];
    snprintf(b, sizeof b, "%.2f", (double)(1000 + (i * 7919L) % 300000) / (1 + (i * 31) % 60));
    return strtod(b, NULL);
}

/* creator_avg_views from the creator's earlier days (MILES_CREATOR_AVG_PRIOR):
 * every kept row's value against the CSV's own numbers summed the same way,
 * the rule in the scaler JSON (and only there), the refusals. */
static void test_prepare_creator_prior(void **state) {
    (void)state;
    if (!find_vocab()) { printf("  skip: no vocab\n"); skip(); }
    char dir[] = "/tmp/miles_test_cprior_XXXXXX", csv[1100], out[1100];
    const int R = 600;
    MilesPrepareOptions o;
    fixture_options(dir, csv, out, R, &o); /* row i: creator i % 37, views 1000 + 7919 i mod 300000, 2025-01-(1 + i % 28) */
    o.creator_avg = MILES_CREATOR_AVG_PRIOR;
    MilesPrepareReport rep;
    char txt[8192];
    fixture_prepare(csv, out, &o, &rep, txt, sizeof txt);
    /* the kept rows (not "ko", not a repeated id), then each one's expectation: its creator's
     * earlier days' views in day, then file order */
    int kept[R];
    for (int i = 0; i < R; i++) kept[i] = !(i % 4 == 3 || i % 50 == 49);
    double want[R];
    int64_t none = 0;
    for (int i = 0; i < R; i++) {
        if (!kept[i]) continue;
        double sum = 0;
        int cnt = 0;
        for (int d = 1; d < 1 + i % 28; d++)
            for (int j = 0; j < R; j++)
                if (kept[j] && j % 37 == i % 37 && 1 + j % 28 == d) { sum += 1000 + (j * 7919L) % 300000; cnt++; }
        want[i] = cnt ? sum / cnt : NAN;
        none += !cnt;
    }
    printf("  %lld rows without an earlier video of their creator\n", (long long)none);
    assert_int_equal(rep.creator_avg, MILES_CREATOR_AVG_PRIOR);
    assert_int_equal(rep.creator_avg_none, none);
    assert_true(none > 0 && none < rep.rows_kept);
    char line[128];
    snprintf(line, sizeof line, "from earlier publish days; %lld rows have none (missing)", (long long)none);
    miles_prepare_report_format(&rep, o.leak_bound, txt, sizeof txt);
    assert_non_null(strstr(txt, line));
    MilesPrepared *p;
    OK(miles_prepared_open(&p, out));
    int64_t checked = 0;
    for (int sp = 0; sp < 3; sp++) {
        MilesDataset v;
        OK(miles_prepared_split(p, sp, &v));
        for (int64_t k = 0; k < v.n; k++) {
            int i = atoi(miles_prepared_row_id(p, sp, k) + 2);
            int have = v.avail[k] >> 16 & 1u;
            assert_int_equal(have, !isnan(want[i]));
            if (have) assert_true(v.features_raw[k * MILES_NUM_FEATURES + 16] == want[i]);
            checked++;
        }
    }
    assert_int_equal(checked, rep.rows_kept);
    MilesScaler *sc;
    OK(miles_scaler_from_json(&sc, miles_prepared_scaler_json(p)));
    assert_int_equal(miles_scaler_creator_avg(sc), MILES_CREATOR_AVG_PRIOR);
    assert_non_null(strstr(miles_prepared_scaler_json(p), "\"creator_avg_views\":\t\"prior: "));
    char *js = NULL;
    OK(miles_scaler_to_json(sc, &js));
    assert_string_equal(js, miles_prepared_scaler_json(p));   /* round trip */
    miles_scaler_set_creator_avg(sc, MILES_CREATOR_AVG_DATA);
    assert_int_equal(miles_scaler_creator_avg(sc), MILES_CREATOR_AVG_DATA);
    free(js);
    OK(miles_scaler_to_json(sc, &js));
    assert_null(strstr(js, "creator_avg_views\":"));   /* the data's rule: the JSON as before */
    free(js);
    miles_scaler_free(sc);
    /* a rule this build does not know is refused, not read as the data's */
    const char *sj = miles_prepared_scaler_json(p), *at = strstr(sj, "\"prior: ");
    char *bad = malloc(strlen(sj) + 8);
    snprintf(bad, strlen(sj) + 8, "%.*s\"later: x\"%s", (int)(at - sj), sj, strchr(at + 1, '"') + 1);
    assert_int_equal(miles_scaler_from_json(&sc, bad), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "creator_avg_views"));
    free(bad);
    miles_prepared_free(p);
    /* the data's rule: the CSV's column where it has one ("50000.5" but every 11th row) */
    o.creator_avg = MILES_CREATOR_AVG_DATA;
    fixture_prepare(csv, out, &o, &rep, txt, sizeof txt);
    assert_null(strstr(txt, "earlier publish days"));
    OK(miles_prepared_open(&p, out));
    MilesDataset v;
    OK(miles_prepared_split(p, 0, &v));
    for (int64_t k = 0; k < v.n; k++) {
        int i = atoi(miles_prepared_row_id(p, 0, k) + 2);
        if (i % 11) assert_true(v.features_raw[k * MILES_NUM_FEATURES + 16] == 50000.5);
    }
    miles_prepared_free(p);
    /* the edges, by hand: same-day rows count no one; creator B's first day is A's last (never A's
     * mean); the file out of day order; a row without a creator; a creator's second day */
    char path[1200];
    snprintf(path, sizeof path, "%s/edges.csv", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("row_id,title,views,likes,language,engagement_velocity,publish_date_approx,author_handle\n"
          "a1,t,100,1,en,1,2025-03-01,A\na2,t,300,1,en,2,2025-03-01,A\nb2,t,2000,1,en,3,2025-03-05,B\n"
          "a3,t,50,1,en,4,2025-03-03,A\nb1,t,1000,1,en,5,2025-03-03,B\nn1,t,5,1,en,6,2025-03-05,\n"
          "c2,t,9,1,en,7,2025-03-04,C\nc1,t,7,1,en,8,2025-03-02,C\n", f);
    fclose(f);
    o.dedup = 0;
    o.creator_avg = MILES_CREATOR_AVG_PRIOR;
    OK(miles_data_prepare(path, out, &o, &rep));
    assert_int_equal(rep.creator_avg_none, 5);
    static const struct { const char *id; double want; } edge[] = {
        {"a1", NAN}, {"a2", NAN}, {"a3", 200}, {"b1", NAN}, {"b2", 1000}, {"n1", NAN}, {"c1", NAN}, {"c2", 7}};
    OK(miles_prepared_open(&p, out));
    int seen = 0;
    for (int sp = 0; sp < 3; sp++) {
        MilesDataset v;
        OK(miles_prepared_split(p, sp, &v));
        for (int64_t k = 0; k < v.n; k++)
            for (size_t e = 0; e < sizeof edge / sizeof edge[0]; e++) {
                if (strcmp(miles_prepared_row_id(p, sp, k), edge[e].id)) continue;
                printf("  %s: %s %g\n", edge[e].id, v.avail[k] >> 16 & 1u ? "mean" : "none", v.features_raw[k * MILES_NUM_FEATURES + 16]);
                assert_int_equal(v.avail[k] >> 16 & 1u, !isnan(edge[e].want));
                if (!isnan(edge[e].want)) assert_true(v.features_raw[k * MILES_NUM_FEATURES + 16] == edge[e].want);
                seen++;
            }
    }
    assert_int_equal(seen, 8);
    miles_prepared_free(p);
    unlink(path);
    o.dedup = 1;
    o.creator_avg = 2;
    assert_int_equal(miles_data_prepare(csv, out, &o, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "creator_avg_views rule 2"));
    o.creator_avg = MILES_CREATOR_AVG_PRIOR;
    snprintf(path, sizeof path, "%s/nodate.csv", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("row_id,title,views,likes,language,engagement_velocity,publish_date_approx\na,t,10,1,en,5,2025-03-01\nb,t,10,1,en,5,\n", f);
    fclose(f);
    assert_int_equal(miles_data_prepare(path, out, &o, NULL), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "which creator_avg_views from earlier videos needs"));
    unlink(path); unlink(csv); unlink(out);
    assert_int_equal(rmdir(dir), 0);
}

/* --threshold-scope cohort through prepare: the labels are each week's own
 * p80 (weeks counted from the first day; every week of write_csv's file has
 * >= 50 kept rows), the scaler JSON carries the rule, and the refusals. */
static void test_prepare_cohort(void **state) {
    (void)state;
    if (!find_vocab()) { printf("  skip: no vocab\n"); skip(); }
    char dir[] = "/tmp/miles_test_cohort_XXXXXX", csv[1100], out[1100];
    const int R = 800;
    MilesPrepareOptions o;
    fixture_options(dir, csv, out, R, &o); /* row i: views 1000 + 7919 i mod 300000, 1 + 31 i mod 60 days, 2025-01-(1 + i % 28) */
    o.label_cohort_days = 7;
    MilesPrepareReport rep;
    char txt[8192];
    fixture_prepare(csv, out, &o, &rep, txt, sizeof txt);
    assert_non_null(strstr(txt, "viral label: engagement_velocity >= p80 of its publish cohort (7-day windows, >= 50 rows each): 4 cohorts"));
    /* the expected labels, week by week, from the CSV's own numbers */
    double wv[4][R];
    int wn[4] = {0}, want_row[R];
    for (int i = 0; i < R; i++) {
        want_row[i] = -1;
        if (i % 4 == 3 || (i % 50 == 49)) continue; /* language "ko"; a repeated id */
        int w = (i % 28) / 7;
        wv[w][wn[w]++] = csv_velocity(i);
    }
    double thr[4];
    for (int w = 0; w < 4; w++) thr[w] = miles_percentile(wv[w], wn[w], 80);
    {   /* the report's JSON: the four cohorts, their floor, the thresholds' range to the bit */
        char *rj = NULL;
        OK(miles_prepare_report_json(&rep, o.leak_bound, &rj));
        cJSON *jr = cJSON_Parse(rj);
        free(rj);
        const cJSON *co = cJSON_GetObjectItem(jr, "cohorts");
        assert_non_null(co);
        double lo = thr[0], hi = thr[0];
        for (int w = 1; w < 4; w++) { lo = thr[w] < lo ? thr[w] : lo; hi = thr[w] > hi ? thr[w] : hi; }
        assert_true(test_json_num(co, "days") == 7 && test_json_num(co, "n") == 4 && test_json_num(co, "min_rows") == 50);
        assert_true(test_json_num(co, "threshold_min") == lo && test_json_num(co, "threshold_max") == hi);
        const cJSON *lb = cJSON_GetObjectItem(jr, "label");   /* the rule as the scaler JSON states it */
        assert_string_equal(cJSON_GetObjectItem(lb, "scope")->valuestring, "cohort");
        assert_true(test_json_num(lb, "cohort_days") == 7 && test_json_num(lb, "cohort_min_rows") == 50 &&
                    test_json_num(lb, "percentile") == 80 && test_json_num(lb, "threshold") == rep.threshold);
        assert_non_null(strstr(cJSON_GetObjectItem(lb, "rule")->valuestring, "publish cohort"));
        cJSON_Delete(jr);
    }
    for (int i = 0; i < R; i++) {
        if (i % 4 == 3 || (i % 50 == 49)) continue;
        want_row[i] = csv_velocity(i) >= thr[(i % 28) / 7];
    }
    MilesPrepared *p;
    assert_int_equal(miles_prepared_open(&p, out), MILES_OK);
    int64_t checked = 0, viral = 0;
    for (int sp = 0; sp < 3; sp++) {
        MilesDataset v;
        assert_int_equal(miles_prepared_split(p, sp, &v), MILES_OK);
        for (int64_t i = 0; i < v.n; i++) {
            int row = atoi(miles_prepared_row_id(p, sp, i) + 2);
            assert_int_equal(v.labels[i], want_row[row]);
            checked++;
            viral += v.labels[i];
        }
    }
    printf("  %lld labels as each week's p80 (%lld viral)\n", (long long)checked, (long long)viral);
    assert_int_equal(checked, rep.rows_kept);
    /* the rule travels in the scaler JSON */
    MilesScaler *sc;
    assert_int_equal(miles_scaler_from_json(&sc, miles_prepared_scaler_json(p)), MILES_OK);
    int days = 0;
    int64_t min_rows = 0;
    assert_int_equal(miles_scaler_label_cohort(sc, &days, &min_rows), 1);
    assert_true(days == 7 && min_rows == MILES_COHORT_MIN_ROWS);
    char *js = NULL;
    assert_int_equal(miles_scaler_to_json(sc, &js), MILES_OK);
    assert_string_equal(js, miles_prepared_scaler_json(p)); /* round trip */
    miles_scaler_free(sc);
    /* a bad window in the JSON is refused */
    char *bad = malloc(strlen(js) + 8), *at = strstr(js, "\"cohort_days\":");
    assert_non_null(at);
    snprintf(bad, strlen(js) + 8, "%.*s\"cohort_days\":\t0.5%s", (int)(at - js), js, strchr(at, ','));
    assert_int_equal(miles_scaler_from_json(&sc, bad), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "cohort_days"));
    free(bad);
    free(js);
    miles_prepared_free(p);
    /* one-day windows: 28 days of ~21 kept rows, joined in pairs and threes to reach 50 */
    o.label_cohort_days = 1;
    fixture_prepare(csv, out, &o, &rep, txt, sizeof txt);
    assert_non_null(strstr(txt, "(1-day windows, >= 50 rows each)"));
    assert_true(rep.n_cohorts > 4 && rep.cohort_smallest >= 50);
    /* a plain scaler has none */
    o.label_cohort_days = 0;
    assert_int_equal(miles_data_prepare(csv, out, &o, &rep), MILES_OK);
    assert_int_equal(rep.cohort_days, 0);
    assert_int_equal(miles_prepared_open(&p, out), MILES_OK);
    assert_int_equal(miles_scaler_from_json(&sc, miles_prepared_scaler_json(p)), MILES_OK);
    assert_int_equal(miles_scaler_label_cohort(sc, &days, &min_rows), 0);
    miles_scaler_free(sc);
    miles_prepared_free(p);
    /* refusals: with the original's all-rows threshold; a kept row without a date */
    o.label_cohort_days = 1;
    o.threshold_all = 1;
    assert_int_equal(miles_data_prepare(csv, out, &o, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "choose one"));
    o.threshold_all = 0;
    o.label_cohort_days = -1;
    assert_int_equal(miles_data_prepare(csv, out, &o, NULL), MILES_EINVAL);
    o.label_cohort_days = 7;
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("row_id,title,views,likes,language,engagement_velocity,publish_date_approx\na,t,10,1,en,5,2025-03-01\nb,t,10,1,en,5,\n", f);
    fclose(f);
    assert_int_equal(miles_data_prepare(path, out, &o, NULL), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "which a cohort label needs"));
    unlink(path); unlink(csv); unlink(out);
    assert_int_equal(rmdir(dir), 0);
}

/* The report's JSON where numbers are undefined: null, never NaN (which is
 * not JSON); an empty split's rate null; no drift below 3 dated rows; the
 * counts as integers. */
static void test_prepare_report_json(void **state) {
    (void)state;
    MilesPrepareReport r;
    memset(&r, 0, sizeof r);
    for (int f = 0; f < MILES_NUM_FEATURES; f++) r.spearman[f] = NAN;
    r.spearman[3] = -0.25;
    r.leak_warn = 1u << 3;
    r.available = (1u << 3) | 1u;
    r.threshold = NAN;
    r.percentile = 80;
    r.n[0] = 5; r.viral[0] = 1;
    r.rows_read = 9007199254740993LL;   /* 2^53 + 1: an integer, not a double's neighbour */
    r.day_spearman = 0.5; r.n_dated = 2;
    char *js = NULL;
    OK(miles_prepare_report_json(&r, 0.5, &js));
    printf("%.300s...\n", js);
    assert_non_null(strstr(js, "\"read\":\t9007199254740993,"));
    assert_null(strstr(js, "nan"));
    cJSON *o = cJSON_Parse(js);
    free(js);
    assert_non_null(o);
    const cJSON *f = cJSON_GetObjectItem(o, "features");
    assert_int_equal(cJSON_GetArraySize(f), MILES_NUM_FEATURES);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "spearman_velocity")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "available")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 1), "available")));
    assert_true(test_json_num(cJSON_GetArrayItem(f, 3), "spearman_velocity") == -0.25);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 3), "leak_warning")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "leak_warning")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "threshold"), "velocity")));
    const cJSON *sp = cJSON_GetObjectItem(o, "splits");
    assert_true(test_json_num(cJSON_GetObjectItem(sp, "train"), "viral_rate") == 0.2);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "val"), "viral_rate")));
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "train"), "first_day"));   /* not a time split */
    assert_null(cJSON_GetObjectItem(o, "cohorts"));
    const cJSON *d = cJSON_GetObjectItem(o, "drift");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "day_spearman_velocity")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(d, "suggest_split_by_time")));
    /* no split record, no label rule: "unrecorded", no label */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "split_rule"), "by")->valuestring, "unrecorded");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "split_rule")), 1);
    assert_null(cJSON_GetObjectItem(o, "label"));
    cJSON_Delete(o);
    r.split.split_by = MILES_SPLIT_BY_CHECKPOINT + 1;   /* out of range: left out, not a null name */
    snprintf(r.label_scope, sizeof r.label_scope, "cohort");
    r.cohort_days = 3; r.cohort_min_rows = 7;
    OK(miles_prepare_report_json(&r, 0.5, &js));
    o = cJSON_Parse(js);
    free(js);
    assert_null(cJSON_GetObjectItem(o, "split_rule"));
    const cJSON *lb = cJSON_GetObjectItem(o, "label");
    assert_string_equal(cJSON_GetObjectItem(lb, "scope")->valuestring, "cohort");
    assert_true(test_json_num(lb, "cohort_days") == 3 && test_json_num(lb, "cohort_min_rows") == 7 &&
                test_json_num(lb, "percentile") == 80 && cJSON_IsNull(cJSON_GetObjectItem(lb, "threshold")));
    cJSON_Delete(o);
    r.split.split_by = 0; r.label_scope[0] = 0; r.cohort_days = 0; r.cohort_min_rows = 0;
    /* a time split: days where a split has rows (one is enough); one-day cohorts are cohorts */
    r.split_by_time = 1;
    r.n[1] = 1; r.viral[1] = 0;
    r.day_first[0] = 20089; r.day_last[0] = 20090;   /* 2025-01-01..02 */
    r.day_first[1] = r.day_last[1] = 20091;
    r.cohort_days = 1; r.n_cohorts = 2; r.cohort_min_rows = 50;
    OK(miles_prepare_report_json(&r, 0.5, &js));
    o = cJSON_Parse(js);
    free(js);
    sp = cJSON_GetObjectItem(o, "splits");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "train"), "last_day")->valuestring, "2025-01-02");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "val"), "first_day")->valuestring, "2025-01-03");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "test"), "first_day"));
    assert_true(test_json_num(cJSON_GetObjectItem(o, "cohorts"), "days") == 1);
    cJSON_Delete(o);
    memset(r.n, 0, sizeof r.n);
    r.split_by_time = 0; r.cohort_days = 0;
    /* three dated rows, a row split: the drift is reported and the note suggested */
    r.n_dated = 3;
    OK(miles_prepare_report_json(&r, 0.5, &js));
    o = cJSON_Parse(js);
    free(js);
    d = cJSON_GetObjectItem(o, "drift");
    assert_true(test_json_num(d, "day_spearman_velocity") == 0.5);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "suggest_split_by_time")));
    cJSON_Delete(o);
    /* the --creator-avg prior note: a time split, the data's creator mean available in training, not applied */
    {
        MilesPrepareReport c = r;
        c.split_by_time = 1;
        c.available = 1u << 16;
        for (int k = 0; k < 5; k++) {
            c.split_by_time = k != 1;
            c.available = k == 2 ? 0 : 1u << 16;
            c.applied = k == 3;
            c.creator_avg = k == 4 ? MILES_CREATOR_AVG_PRIOR : MILES_CREATOR_AVG_DATA;
            OK(miles_prepare_report_json(&c, 0.5, &js));
            o = cJSON_Parse(js);
            free(js);
            assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "creator_avg_views"), "suggest_prior")), k == 0);
            cJSON_Delete(o);
            char txt[8192];
            OK(miles_prepare_report_format(&c, 0.5, txt, sizeof txt));
            assert_int_equal(strstr(txt, "--creator-avg prior keeps only earlier days") != NULL, k == 0);
        }
    }
    /* the note's bound is inclusive, either sign; not for a time split */
    for (int k = 0; k < 3; k++) {
        r.day_spearman = k == 1 ? -MILES_DRIFT_NOTE : MILES_DRIFT_NOTE;
        r.split_by_time = k == 2;
        OK(miles_prepare_report_json(&r, 0.5, &js));
        o = cJSON_Parse(js);
        free(js);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "drift"), "suggest_split_by_time")), k < 2);
        cJSON_Delete(o);
    }
    js = (char *)"x";
    assert_int_equal(miles_prepare_report_json(NULL, 0.5, &js), MILES_EINVAL);
    assert_null(js);
    assert_int_equal(miles_prepare_report_json(&r, 0.5, NULL), MILES_EINVAL);
}

/* One prepare's split record (header bytes 128..191) as read back. */
static MilesPreparedProvenance provenance_of(const char *csv, const char *out, const MilesPrepareOptions *o,
                                             const char *want_json) {
    MilesPrepareReport rep;
    OK(miles_data_prepare(csv, out, o, &rep));
    {   /* the report's JSON holds the same record, byte for byte but whitespace (a seed's 64 bits too) */
        char *rj = NULL;
        OK(miles_prepare_report_json(&rep, o->leak_bound, &rj));
        size_t k = 0;
        for (size_t i = 0; rj[i]; i++)
            if (!isspace((unsigned char)rj[i])) rj[k++] = rj[i];
        rj[k] = 0;
        char want[400];
        snprintf(want, sizeof want, "\"split_rule\":%s,", want_json);
        assert_non_null(strstr(rj, want));
        assert_non_null(strstr(rj, o->threshold_all ? "\"scope\":\"all\"" : "\"scope\":\"train\""));
        free(rj);
        assert_string_equal(rep.label_scope, o->threshold_all ? "all" : "train");
    }
    MilesPrepared *p = NULL;
    OK(miles_prepared_open(&p, out));
    MilesPreparedProvenance pv;
    assert_int_equal(miles_prepared_provenance(p, &pv), 1);
    char *js = NULL;
    OK(miles_prepared_provenance_json(p, &js));
    printf("  %s\n", js);
    assert_string_equal(js, want_json);
    free(js);
    miles_prepared_free(p);
    assert_true(rep.split.split_by == pv.split_by && rep.split.seed == pv.seed && rep.split.train_frac == pv.train_frac &&
                !strcmp(rep.split.language, pv.language) && rep.split.dedup == pv.dedup);
    printf("  split by %s, seed %llu, train %g, language %s, dedup %d\n", miles_split_by_name(pv.split_by),
           (unsigned long long)pv.seed, pv.train_frac, pv.language, pv.dedup);
    return pv;
}

/* The split record: each split method, seed, training share, language
 * filter and dedup as the options asked (a checkpoint's file: test_train);
 * a too-long language refused; the names. */
static void test_prepared_provenance(void **state) {
    (void)state;
    if (!find_vocab()) { printf("  skip: no vocab\n"); skip(); }
    char dir[] = "/tmp/miles_test_prov_XXXXXX", csv[1100], out[1100];
    MilesPrepareOptions o;
    fixture_options(dir, csv, out, 600, &o);
    MilesPreparedProvenance pv =
        provenance_of(csv, out, &o, "{\"by\":\"row\",\"seed\":42,\"train_frac\":0.7,\"language\":\"en\",\"dedup\":true}");
    assert_int_equal(pv.split_by, MILES_SPLIT_BY_ROW);
    assert_int_equal(pv.seed, 42);
    assert_true(pv.train_frac == 0.7);
    assert_string_equal(pv.language, "en");
    assert_int_equal(pv.dedup, 1);
    /* a seed above 2^53 keeps every bit in the JSON; a share that needs 17 digits gets them */
    o.split_by_creator = 1; o.seed = 18446744073709551557ULL; o.train_frac = 0.1 + 0.2; o.dedup = 0; o.language = "ALL";
    pv = provenance_of(csv, out, &o, "{\"by\":\"creator\",\"seed\":18446744073709551557,\"train_frac\":0.30000000000000004,"
                                     "\"language\":\"any\",\"dedup\":false}");
    assert_int_equal(pv.split_by, MILES_SPLIT_BY_CREATOR);
    assert_true(pv.seed == 18446744073709551557ULL);
    assert_true(pv.train_frac == 0.1 + 0.2);
    assert_string_equal(pv.language, "any");
    assert_int_equal(pv.dedup, 0);
    o.split_by_creator = 0; o.split_by_time = 1; o.language = ""; o.train_frac = 0.7; o.threshold_all = 1;
    pv = provenance_of(csv, out, &o, "{\"by\":\"time\",\"train_frac\":0.7,\"language\":\"any\",\"dedup\":false}");
    assert_int_equal(pv.split_by, MILES_SPLIT_BY_TIME);
    assert_string_equal(pv.language, "any");
    o.language = "ko"; o.threshold_all = 0;
    assert_string_equal(provenance_of(csv, out, &o, "{\"by\":\"time\",\"train_frac\":0.7,\"language\":\"ko\",\"dedup\":false}").language, "ko");
    /* the output over the input CSV (here through a hard link): refused, the CSV unchanged */
    char lnk[1200];
    snprintf(lnk, sizeof lnk, "%s/same.csv", dir);
    assert_int_equal(link(csv, lnk), 0);
    size_t n0 = 0, n1 = 0;
    char *before = test_slurp(csv, &n0);
    assert_int_equal(miles_data_prepare(csv, lnk, &o, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "is the input CSV"));
    char *after = test_slurp(csv, &n1);
    assert_true(before && after && n0 == n1 && !memcmp(before, after, n0));
    free(before); free(after);
    unlink(lnk);
    o.language = "a-language-name-of-32-bytes-long";   /* 32 bytes: one more than the record holds */
    assert_int_equal(miles_data_prepare(csv, out, &o, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "longer than 31 bytes"));
    const char *names[] = {"unrecorded", "row", "creator", "time", "checkpoint"};
    for (int k = 0; k <= MILES_SPLIT_BY_CHECKPOINT; k++) assert_string_equal(miles_split_by_name(k), names[k]);
    assert_null(miles_split_by_name(-1));
    assert_null(miles_split_by_name(MILES_SPLIT_BY_CHECKPOINT + 1));
    assert_null(miles_split_by_name(1 << 20));
    assert_null(miles_split_by_name(-(1 << 20)));
    assert_int_equal(miles_prepared_provenance(NULL, &pv), -1);
    char *js = (char *)"x";
    assert_int_equal(miles_prepared_provenance_json(NULL, &js), MILES_EINVAL);
    assert_null(js);
    unlink(csv); unlink(out);
    assert_int_equal(rmdir(dir), 0);
}

/* path's whole content: n bytes of b (the test fails if they are not written) */
static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The file with bytes off..off+n of its split record replaced and the
 * record's CRC fixed: refused as a corrupt split record. */
static void patch_record_and_expect(const char *path, long off, const unsigned char *bytes, size_t n) {
    size_t len = 0;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    assert_non_null(b);
    memcpy(b + off, bytes, n);
    uint32_t c = miles_crc32(0, b + 128, 60);
    for (int i = 0; i < 4; i++) b[188 + i] = (unsigned char)(c >> (8 * i));
    char bad[1200];
    snprintf(bad, sizeof bad, "%s.bad", path);
    write_bytes(bad, b, len);
    free(b);
    MilesPrepared *p = NULL;
    int st = miles_prepared_open(&p, bad);
    printf("  record bytes %ld..%ld patched: %s\n", off, off + (long)n - 1, miles_last_error());
    assert_int_equal(st, MILES_EFORMAT);
    assert_null(p);
    assert_non_null(strstr(miles_last_error(), "split record"));
    unlink(bad);
}

static void test_prepared_corrupt(void **state) {
    (void)state;
    if (!vocab[0] || access(out_path, R_OK) != 0) { printf("  skip: no prepared file (needs a vocab)\n"); skip(); }
    MilesPrepared *p;
    assert_int_equal(miles_prepared_open(&p, out_path), MILES_OK);
    miles_prepared_free(p);
    struct stat stt;
    stat(out_path, &stt);
    long n = (long)stt.st_size;
    flip_and_expect(out_path, 0, 0, MILES_EFORMAT, "bad magic");
    flip_and_expect(out_path, 30, 0, MILES_EFORMAT, "header checksum");
    flip_and_expect(out_path, n / 2, 0, MILES_EFORMAT, "data checksum");
    flip_and_expect(out_path, n - 1, 0, MILES_EFORMAT, "checksum");
    flip_and_expect(out_path, n - 100, 1, MILES_EFORMAT, "truncated");
    flip_and_expect(out_path, 100, 1, MILES_EFORMAT, "truncated header");
    flip_and_expect(out_path, 4, 1, MILES_EFORMAT, "bad magic");
    flip_and_expect(out_path, 0, 2, MILES_EUNSUPPORTED, "version 99");
    /* the split record (header bytes 128..191): its own checksum, its values in range */
    flip_and_expect(out_path, 137, 0, MILES_EFORMAT, "split record");
    flip_and_expect(out_path, 190, 0, MILES_EFORMAT, "split record");
    flip_and_expect(out_path, 132, 3, MILES_EFORMAT, "split record");
    flip_and_expect(out_path, 128, 3, MILES_EFORMAT, "split record");
    /* checksummed but out of range: a training share of 0 or 1, a language without its NUL */
    static const unsigned char zero[8] = {0}, one[8] = {0, 0, 0, 0, 0, 0, 0xF0, 0x3F}, full[32] = "abcdefghijklmnopqrstuvwxyz012345";
    patch_record_and_expect(out_path, 144, zero, 8);
    patch_record_and_expect(out_path, 144, one, 8);
    patch_record_and_expect(out_path, 152, full, 32);
    assert_int_equal(miles_prepared_open(&p, "/nonexistent/file"), MILES_EMISSING);
}

/* Bad CSVs: a clear error naming the place, and no output file left behind. */
static void test_bad_csvs(void **state) {
    (void)state;
    if (!vocab[0]) { printf("  skip: no vocab\n"); skip(); }
    unlink(out_path);
    static const char *hdr = "row_id,title,views,likes,language,engagement_velocity\n";
    struct { const char *body; int code; const char *needle; } cases[] = {
        {"1,a,10,1,en,5\n2,b,12k,1,en,5\n", MILES_EFORMAT, ":3:5 (column 3): column 'views': '12k' is not a number"},
        {"1,a,10,1,en,5\n2,b,NaN,1,en,5\n", MILES_ENAN, ":3:"},
        {"1,a,10,1,en,inf\n", MILES_ENAN, "engagement_velocity"},
        {"1,a,10,1,en,5\n2,b,10,1,en\n", MILES_EFORMAT, ":3: record 3 has 5 fields"},
        {"1,a,10,1,en,5\n2,b\xFF,10,1,en,5\n", MILES_EFORMAT, ":3:4: invalid UTF-8"},
        {"1,\"open,10,1,en,5\n", MILES_EFORMAT, "unterminated"},
        {"1,a,-10,1,en,5\n", MILES_ERANGE, "negative"},
        /* finite but absurd: refused here, not by the prepared file's own loader later */
        {"1,a,10,1,en,5\n2,b,1e160,1,en,5\n", MILES_ERANGE, ":3:5 (column 3): column 'views': '1e160' is out of range"},
        {"1,a,10,1,en,5\n2,b,1e308,1,en,5\n", MILES_ERANGE, ":3:5 (column 3): column 'views'"},
        {"1,a,10,1,en,-1e300\n", MILES_ERANGE, "column 'engagement_velocity'"},
    };
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.csv", tmpdir);
    MilesPrepareOptions o;
    miles_prepare_options_default(&o);
    o.vocab_dir = vocab;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "wb");
        fputs(hdr, f);
        fputs(cases[i].body, f);
        for (int k = 0; k < 20; k++) fprintf(f, "x%d,t,%d,1,en,%d\n", k, 100 + k, k);
        fclose(f);
        int st = miles_data_prepare(path, out_path, &o, NULL);
        printf("  case %zu: %s: %s\n", i, miles_status_name(st), miles_last_error());
        assert_int_equal(st, cases[i].code);
        assert_non_null(strstr(miles_last_error(), cases[i].needle));
        assert_true(no_leftovers());
    }
    /* an impossible calendar date */
    {
        FILE *f = fopen(path, "wb");
        fputs("row_id,title,views,likes,language,engagement_velocity,publish_date_approx\n1,a,10,1,en,5,2025-02-28\n"
              "2,b,10,1,en,5,2025-02-30\n", f);
        fclose(f);
        int st = miles_data_prepare(path, out_path, &o, NULL);
        printf("  date: %s: %s\n", miles_status_name(st), miles_last_error());
        assert_int_equal(st, MILES_EFORMAT);
        assert_non_null(strstr(miles_last_error(), ":3:"));
        assert_non_null(strstr(miles_last_error(), "publish_date_approx"));
        assert_true(no_leftovers());
    }
    /* missing required column, missing language column, no target */
    const char *hdrs[] = {"row_id,title,likes,language,engagement_velocity\n1,a,1,en,5\n",
                          "row_id,title,views,likes,engagement_velocity\n1,a,1,1,5\n",
                          "row_id,title,views,likes,language\n1,a,1,1,en\n",
                          "row_id,title,views,views,likes,language,engagement_velocity\n1,a,1,1,1,en,5\n"};
    const char *needles[] = {"'views' is missing", "'language' is missing", "no regression target", "appears twice"};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(path, "wb");
        fputs(hdrs[i], f);
        fclose(f);
        int st = miles_data_prepare(path, out_path, &o, NULL);
        printf("  header %d: %s: %s\n", i, miles_status_name(st), miles_last_error());
        assert_true(st < 0);
        assert_non_null(strstr(miles_last_error(), needles[i]));
        assert_true(no_leftovers());
    }
    /* rows missing id/title/views/likes are dropped, not errors */
    FILE *f = fopen(path, "wb");
    fputs(hdr, f);
    fputs(",a,1,1,en,5\n2,,1,1,en,5\n3,c,,1,en,5\n4,d,1,,en,5\n5,e,1,1,en,\n", f);
    for (int k = 0; k < 20; k++) fprintf(f, "x%d,t,%d,1,en,%d\n", k, 100 + k, k);
    fclose(f);
    MilesPrepareReport rep;
    assert_int_equal(miles_data_prepare(path, out_path, &o, &rep), MILES_OK);
    assert_int_equal(rep.rows_missing, 4);
    assert_int_equal(rep.rows_no_target, 1);
    assert_int_equal(rep.rows_kept, 20);
    unlink(out_path);
    unlink(path);
    snprintf(path, sizeof path, "%s/in.csv", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

/* The CLI (when $MILES_BIN/miles-data exists): exit codes, no output on error. */
static int run_cmd(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state) {
    (void)state;
    char exe[1024];
    test_tool(exe, sizeof exe, "miles-data");
    if (!vocab[0]) { printf("  skip: no vocabulary found\n"); skip(); }
    char dir[] = "/tmp/miles_test_cli_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char csv[1100], out[1100];
    snprintf(csv, sizeof csv, "%s/in.csv", dir);
    snprintf(out, sizeof out, "%s/out.milesdat", dir);
    assert_int_equal(run_cmd("%s --help > /dev/null", exe), 0);
    assert_int_equal(run_cmd("%s frobnicate 2> /dev/null", exe), 2);
    assert_int_equal(run_cmd("%s prepare %s 2> /dev/null", exe, csv), 2);                 /* no --out */
    assert_int_equal(run_cmd("%s prepare %s --out %s --threshold-scope some 2> /dev/null", exe, csv, out), 2);
    assert_int_equal(run_cmd("%s prepare %s --out %s --split-by day 2> /dev/null", exe, csv, out), 2);
    assert_int_equal(run_cmd("%s prepare %s --out %s --text-clean most 2> /dev/null", exe, csv, out), 2);
    assert_int_equal(run_cmd("%s prepare %s --out %s --drop-features viewz 2> /dev/null", exe, csv, out), 2);
    write_csv(csv, 300, 0);
    assert_int_equal(run_cmd("%s prepare %s --out %s --vocab %s --max-len 24 --dedup -q", exe, csv, out, vocab), 0);
    assert_int_equal(access(out, R_OK), 0);
    assert_int_equal(run_cmd("%s inspect %s > /dev/null", exe, out), 0);
    assert_int_equal(run_cmd("%s features --data %s title=hi views=10 likes=1 > /dev/null", exe, out), 0);
    assert_int_equal(run_cmd("%s features --data %s views=ten 2> /dev/null", exe, out), 1);
    {
        /* a tool that fails leaves no empty --out directory behind */
        char bexe[1100], odir[1200], plot[1400];
        test_tool(bexe, sizeof bexe, "miles-baseline");
        snprintf(odir, sizeof odir, "%s/never/made", dir);
        assert_int_equal(run_cmd("%s --data %s/missing.milesdat --out %s 2> /dev/null", bexe, dir, odir), 1);
        assert_int_not_equal(access(odir, F_OK), 0);
        snprintf(odir, sizeof odir, "%s/never", dir);
        assert_int_not_equal(access(odir, F_OK), 0);
        /* one plot that cannot be written: none of the set is left (all or nothing) */
        snprintf(odir, sizeof odir, "%s/plots", dir);
        mkdir(odir, 0755);
        snprintf(plot, sizeof plot, "%s/baseline_numeric_test_calibration.png", odir);
        mkdir(plot, 0755);   /* a directory where the PNG goes: that write fails */
        assert_int_equal(run_cmd("%s --data %s --kind numeric --bootstrap 0 --out %s > /dev/null 2> /dev/null", bexe,
                                 out, odir), 0);
        snprintf(plot, sizeof plot, "%s/baseline_numeric_test_roc.png", odir);
        int half = access(plot, F_OK) == 0;
        snprintf(plot, sizeof plot, "%s/baseline_numeric_test_pr.png", odir);
        half |= access(plot, F_OK) == 0;
        printf("  plots after one failed: %s\n", half ? "a half set left" : "none left");
        assert_false(half);
        assert_int_equal(run_cmd("rm -rf %s", odir), 0);
        /* the ridge baseline the tool reports is the library's fit on the training split's
         * log1p_z targets, bit for bit (every training row in it) */
        snprintf(odir, sizeof odir, "%s/ridge", dir);
        assert_int_equal(run_cmd("%s --data %s --kind ridge --bootstrap 0 --no-plots --out %s > /dev/null 2> /dev/null",
                                 bexe, out, odir), 0);
        snprintf(plot, sizeof plot, "%s/baseline_ridge_test.json", odir);
        cJSON *rj = test_read_json(plot);
        assert_non_null(rj);
        const cJSON *run = cJSON_GetObjectItem(rj, "run");
        int nc;
        double *coef = test_json_doubles(cJSON_GetObjectItem(run, "coef"), &nc);
        assert_int_equal(nc, MILES_NUM_FEATURES);
        MilesPrepared *pp = NULL;
        MilesScaler *sc = NULL;
        OK(miles_prepared_open(&pp, out));
        OK(miles_scaler_from_json(&sc, miles_prepared_scaler_json(pp)));
        MilesDataset tr;
        OK(miles_prepared_split(pp, MILES_SPLIT_TRAIN, &tr));
        MilesVelocityTarget vt;
        OK(miles_velocity_target_fit(&vt, MILES_VTARGET_LOG1P_Z, tr.velocity_raw, tr.n));
        double *y = malloc(sizeof(double) * (size_t)tr.n), w[MILES_NUM_FEATURES], b;
        assert_non_null(y);
        for (int64_t i = 0; i < tr.n; i++) y[i] = miles_velocity_target_transform(&vt, sc, tr.velocity_raw[i]);
        OK(miles_ridge_fit(tr.features, (int)tr.n, MILES_NUM_FEATURES, y, 1.0, w, &b));
        for (int k = 0; k < MILES_NUM_FEATURES; k++)
            if (w[k] != coef[k]) fail_msg("ridge coef[%d]: tool %.17g, library %.17g", k, coef[k], w[k]);
        assert_true(test_json_num(run, "intercept") == b);
        assert_true(test_json_num(run, "target_mean") == vt.mean && test_json_num(run, "target_std") == vt.std);
        printf("  miles-baseline --kind ridge = miles_ridge_fit on the %lld training rows, bit for bit\n", (long long)tr.n);
        free(y);
        free(coef);
        cJSON_Delete(rj);
        miles_scaler_free(sc);
        miles_prepared_free(pp);
        assert_int_equal(run_cmd("rm -rf %s", odir), 0);
    }
    unlink(out);
    /* a bad cell: exit 1, message with file:line:column, no output file */
    FILE *f = fopen(csv, "ab");
    fputs("TikTok,en,c,5,lots,1,1,1,1,1,1,1.0,Monday,,2025-01-01,t,1.0,zz,x\r\n", f);
    fclose(f);
    assert_int_equal(run_cmd("%s prepare %s --out %s --vocab %s 2> %s/err.txt", exe, csv, out, vocab, dir), 1);
    assert_int_not_equal(access(out, F_OK), 0);
    char errpath[1100], msg[512] = "";
    snprintf(errpath, sizeof errpath, "%s/err.txt", dir);
    f = fopen(errpath, "rb");
    size_t k = fread(msg, 1, sizeof msg - 1, f);
    msg[k] = '\0';
    fclose(f);
    printf("  CLI error: %s", msg);
    assert_non_null(strstr(msg, "'views': 'lots' is not a number"));
    assert_non_null(strstr(msg, ":602:")); /* header + 300 records of 2 lines each, then this one */
    unlink(errpath);
    /* a corrupt scaler file is named, not the data */
    char scal[1100];
    snprintf(scal, sizeof scal, "%s/scaler.json", dir);
    f = fopen(scal, "wb");
    fputs("{\"mean\": [1, 2", f);
    fclose(f);
    assert_int_equal(run_cmd("%s features --scaler %s title=hi 2> %s", exe, scal, errpath), 1);
    f = fopen(errpath, "rb");
    k = fread(msg, 1, sizeof msg - 1, f);
    msg[k] = '\0';
    fclose(f);
    printf("  CLI scaler error: %s", msg);
    assert_non_null(strstr(msg, "scaler.json"));
    unlink(scal);
    /* binary bytes in a path are escaped in the message, never echoed raw */
    assert_int_equal(run_cmd("%s inspect \"$(printf '%s/b\\001\\377in')\" 2> %s", exe, dir, errpath), 1);
    f = fopen(errpath, "rb");
    k = fread(msg, 1, sizeof msg - 1, f);
    msg[k] = '\0';
    fclose(f);
    printf("  CLI binary path: %s", msg);
    assert_non_null(strstr(msg, "b\\x01\\xffin"));
    assert_null(memchr(msg, 0x01, k));
    assert_null(memchr(msg, 0xff, k));
    unlink(errpath);
    unlink(csv);
    rmdir(dir);
}

/* The prepared file of the synthetic data set (1,000 rows, seed 42; the
 * committed test vocabulary), with the default options and with the
 * original's (seed title cleaning, threshold on all rows, group split by
 * creator, log1p counts), hashed: features, scalers, labels, splits and
 * tokens are pinned to the constants here, on every machine.  The prepared
 * file holds no path or time (the same bytes from any directory), and the
 * synthetic CSV is pinned by test_synth.c, so a change of these constants
 * is a change of the data pipeline: deliberate ones update them and say why. */
#define PIN_PREPARED_DEFAULT 0x717dbab25f59e368ULL
#define PIN_PREPARED_ORIGINAL 0x003c8911265d4f16ULL
/* The same files whole: the pins above are of them with the split record
 * (header bytes 128..191, added after them) zeroed, which is also how a file
 * written before the record looks; that file must still load, unrecorded. */
#define PIN_PREPARED_DEFAULT_RECORDED 0xf721e686a47e8158ULL
#define PIN_PREPARED_ORIGINAL_RECORDED 0x39eff408269e755bULL

static void test_prepared_pin(void **state) {
    (void)state;
    char dir[256], csv[300], out[300];
    assert_int_equal(test_mkdtemp(dir, sizeof dir, "data_pin"), 0);
    snprintf(csv, sizeof csv, "%s/synth.csv", dir);
    snprintf(out, sizeof out, "%s/p.milesdat", dir);
    OK(miles_synth_write_csv(csv, 1000, 42));
    const uint64_t pins[2] = {PIN_PREPARED_DEFAULT, PIN_PREPARED_ORIGINAL};
    const uint64_t pins_rec[2] = {PIN_PREPARED_DEFAULT_RECORDED, PIN_PREPARED_ORIGINAL_RECORDED};
    int failed = 0;
    for (int k = 0; k < 2; k++) {
        MilesPrepareOptions o;
        miles_prepare_options_default(&o);
        o.vocab_dir = "tests/fixtures/tokenizer_vocab.txt";
        o.max_len = 32;
        if (k == 1) {
            o.text_clean = MILES_TEXT_CLEAN_SEED;
            o.threshold_all = 1;
            o.split_by_creator = 1;
            o.log1p_counts = 1;
        }
        OK(miles_data_prepare(csv, out, &o, NULL));
        size_t n = 0;
        char *b = test_slurp(out, &n);
        assert_non_null(b);
        uint64_t hr = test_fnv1a(TEST_FNV_BASIS, b, n);
        assert_true(n > 192);
        memset(b + 128, 0, 64);
        uint64_t h = test_fnv1a(TEST_FNV_BASIS, b, n);
        printf("  pin prepared file, %s options: %zu bytes, 0x%016llx (pinned 0x%016llx); without its split record "
               "0x%016llx (pinned 0x%016llx)\n", k ? "the original's" : "default", n, (unsigned long long)hr,
               (unsigned long long)pins_rec[k], (unsigned long long)h, (unsigned long long)pins[k]);
        failed += (h != pins[k]) + (hr != pins_rec[k]);
        /* written back without the record: loads, the split unrecorded, the data the same */
        write_bytes(out, b, n);
        free(b);
        MilesPrepared *p = NULL;
        OK(miles_prepared_open(&p, out));
        MilesPreparedProvenance pv;
        assert_int_equal(miles_prepared_provenance(p, &pv), 0);
        assert_int_equal(pv.split_by, MILES_SPLIT_BY_UNRECORDED);
        char *js = NULL;
        OK(miles_prepared_provenance_json(p, &js));
        assert_string_equal(js, "{\"by\":\"unrecorded\"}");
        free(js);
        miles_prepared_free(p);
    }
    test_rm_rf(dir);
    if (failed) fail_msg("%d prepared file hash(es) differ from the pinned ones (printed above)", failed);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_reference_rows),
        cmocka_unit_test(test_features_named_record),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_pystr_case_classes),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_spearman),
        cmocka_unit_test(test_scaler_golden),
        cmocka_unit_test(test_scaler_json_and_missing),
        cmocka_unit_test(test_scaler_cohort),
        cmocka_unit_test(test_split_sizes),
        cmocka_unit_test(test_split_groups),
        cmocka_unit_test(test_split_ordered),
        cmocka_unit_test(test_label_cohorts),
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_prepare_roundtrip),
        cmocka_unit_test(test_prepare_by_time),
        cmocka_unit_test(test_prepare_cohort),
        cmocka_unit_test(test_prepare_creator_prior),
        cmocka_unit_test(test_prepare_report_json),
        cmocka_unit_test(test_prepared_provenance),
        cmocka_unit_test(test_prepared_corrupt),
        cmocka_unit_test(test_bad_csvs),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_prepared_pin),
    };
    return cmocka_run_group_tests(tests, load_golden, free_golden);
}
