/*
 * test_synth.c — the seeded synthetic data generator (libmiles/synth.c).
 *
 * Checks: bit-identical output for a seed (and a pinned digest, so another
 * machine or compiler must produce the very same bytes), the 58-column header,
 * internal consistency of every row (rates, velocity = views/trend_duration_days,
 * title_length = code points, has_emoji, is_weekend vs weekday vs date,
 * creator_avg_views = mean over the creator's rows), marginals, and the
 * planted ground truth of docs/data_sources.md: hook words shift ln velocity
 * by their documented amount, numeric features matter too, and on ~2,000
 * English rows a title-only model beats a numeric-only model (which still
 * adds to it).  The CSV is read back with the data module's reader.
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
#include <unistd.h>
#include <dirent.h>
#include <time.h>

#include "miles.h"
#include "data_internal.h"
#include "csv_internal.h"
#include "helpers.h"

enum { C_PLATFORM = 0, C_LANGUAGE = 3, C_GENRE = 23, C_AUTHOR = 7, C_WEEK = 10, C_DURATION = 11, C_VIEWS = 12,
       C_LIKES, C_COMMENTS, C_SHARES, C_SAVES, C_ER = 17, C_HOUR = 22, C_TREND = 24, C_TREND_TYPE = 25,
       C_VELOCITY = 26, C_DISLIKES = 27, C_COMMENT_RATIO = 28, C_SHARE_RATE = 29, C_SAVE_RATE = 30,
       C_DAY = 32, C_CREATOR_AVG = 37, C_DATE = 40, C_TITLE = 42, C_TITLE_LEN = 43, C_HAS_EMOJI = 44,
       C_WATCH = 45, C_COMPLETION = 46, C_WEEKEND = 49, C_ROW_ID = 50, C_TOTAL = 51, C_LIKE_RATE = 52 };

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "test_synth");
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

static int count_tmp_leftovers(void) { return test_count_entries(tmpdir, ".tmp."); }

/* ---------------------------------------------------------------- determinism */

/* Digest of the 1,000-row seed-42 file.  The synthetic data set is part of the
 * specification: changing the generator must be deliberate (update this and
 * docs/data_sources.md).  It also pins cross-machine bit-identity. */
#define DIGEST_1000_SEED42 0x04cc5f201de17262ULL

static void test_determinism(void **state) {
    (void)state;
    char a[300], b[300], c[300];
    snprintf(a, sizeof a, "%s/a.csv", tmpdir);
    snprintf(b, sizeof b, "%s/b.csv", tmpdir);
    snprintf(c, sizeof c, "%s/c.csv", tmpdir);
    assert_int_equal(miles_synth_write_csv(a, 1000, 42), MILES_OK);
    assert_int_equal(miles_synth_write_csv(b, 1000, 42), MILES_OK);
    assert_int_equal(miles_synth_write_csv(c, 1000, 43), MILES_OK);
    size_t na, nb, nc;
    char *da = test_slurp(a, &na), *db = test_slurp(b, &nb), *dc = test_slurp(c, &nc);
    assert_non_null(da); assert_non_null(db); assert_non_null(dc);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    assert_true(na != nc || memcmp(da, dc, na) != 0);
    uint64_t h = test_fnv1a(TEST_FNV_BASIS, da, na);
    printf("  1000 rows seed 42: %zu bytes, FNV-1a 64 = 0x%016llx\n", na, (unsigned long long)h);
    if (DIGEST_1000_SEED42 != 0x0ULL) assert_true(h == DIGEST_1000_SEED42);
    /* the first 1000 rows of a bigger file differ only through creator_avg_views
     * and creators; but the same (rows, seed) is always the same file */
    free(da); free(db); free(dc);
    /* rows = 0: header only; bad row count: error and no file */
    assert_int_equal(miles_synth_write_csv(a, 0, 1), MILES_OK);
    da = test_slurp(a, &na);
    assert_non_null(da);
    assert_non_null(strchr(da, '\n'));
    assert_true(strchr(da, '\n') == da + na - 1);
    free(da);
    char d[300];
    snprintf(d, sizeof d, "%s/neg.csv", tmpdir);
    assert_int_equal(miles_synth_write_csv(d, -5, 1), MILES_ERANGE);
    assert_int_equal(access(d, F_OK), -1);
    snprintf(d, sizeof d, "%s/no_such_dir/x.csv", tmpdir);
    assert_int_equal(miles_synth_write_csv(d, 10, 1), MILES_EIO);
    printf("  error for a bad path: %s\n", miles_last_error());
    assert_int_equal(count_tmp_leftovers(), 0);
}

/* Distinct author_handle values (column 8) of a synthetic file of `rows` rows. */
static int distinct_creators(int64_t rows, uint64_t seed) {
    char p[300];
    snprintf(p, sizeof p, "%s/creators.csv", tmpdir);
    assert_int_equal(miles_synth_write_csv(p, rows, seed), MILES_OK);
    MilesCsv *csv = NULL;
    assert_int_equal(miles_csv_open(&csv, p), MILES_OK);
    int nf;
    const char *const *f;
    assert_int_equal(miles_csv_next(csv, &nf, &f), 1);
    assert_string_equal(f[7], "author_handle");
    char seen[64][96];
    int n = 0;
    while (miles_csv_next(csv, &nf, &f) == 1) {
        int k = 0;
        while (k < n && strcmp(seen[k], f[7])) k++;
        if (k == n) snprintf(seen[n++], sizeof seen[0], "%s", f[7]);
    }
    miles_csv_free(csv);
    return n;
}

/* ceil(rows / 6) creators (about six videos each): a file of up to 6 rows has
 * one, and every row of it is by the same author. */
static void test_creator_count(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        assert_int_equal(distinct_creators(1, seed), 1);
        assert_int_equal(distinct_creators(5, seed), 1);
        assert_int_equal(distinct_creators(6, seed), 1);
    }
    int n = distinct_creators(60, 4);   /* at most 10 creators; u^1.5 favours the first ones */
    printf("  60 rows: %d distinct creators (at most 10)\n", n);
    assert_true(n >= 2 && n <= 10);
}

/* ---------------------------------------------------------------- reading back */

typedef struct {
    int64_t n;
    char **title, **author, **lang, **platform, **genre, **rowid;
    double *views, *likes, *comments, *shares, *saves, *dislikes, *trend, *vel, *er, *completion, *watch, *duration,
        *hour, *weekend, *creator_avg, *title_len, *has_emoji, *share_rate, *save_rate;
} Rows;

static double num(const char *s) {
    char *e;
    double v = strtod(s, &e);
    assert_true(*s && !*e);
    return v;
}

/* day of week (0 = Sunday) of a Gregorian date (Sakamoto) */
static int weekday(int y, int m, int d) {
    static const int t[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3) y -= 1;
    return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

/* Read a synthetic CSV; check the header and per-row consistency on the way. */
static void read_rows(const char *path, Rows *R, int64_t expect) {
    static const char *const DAYS[7] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
    MilesCsv *csv = NULL;
    assert_int_equal(miles_csv_open(&csv, path), MILES_OK);
    int nf;
    const char *const *f;
    assert_int_equal(miles_csv_next(csv, &nf, &f), 1);
    assert_int_equal(nf, 58);
    for (int i = 0; i < 58; i++) assert_string_equal(f[i], test_seed_columns[i]);
    memset(R, 0, sizeof *R);
    size_t cap = (size_t)expect;
#define A(x) R->x = calloc(cap, sizeof *R->x)
    A(title); A(author); A(lang); A(platform); A(genre); A(rowid);
    A(views); A(likes); A(comments); A(shares); A(saves); A(dislikes); A(trend); A(vel); A(er); A(completion);
    A(watch); A(duration); A(hour); A(weekend); A(creator_avg); A(title_len); A(has_emoji); A(share_rate); A(save_rate);
#undef A
    double max_er = 0, max_vel = 0, max_cr = 0;
    int s;
    while ((s = miles_csv_next(csv, &nf, &f)) == 1) {
        assert_int_equal(nf, 58);
        assert_true(R->n < expect);
        int64_t i = R->n++;
        R->title[i] = strdup(f[C_TITLE]);
        R->author[i] = strdup(f[C_AUTHOR]);
        R->lang[i] = strdup(f[C_LANGUAGE]);
        R->platform[i] = strdup(f[C_PLATFORM]);
        R->genre[i] = strdup(f[C_GENRE]);
        R->rowid[i] = strdup(f[C_ROW_ID]);
        double v = R->views[i] = num(f[C_VIEWS]);
        R->likes[i] = num(f[C_LIKES]);
        R->comments[i] = num(f[C_COMMENTS]);
        R->shares[i] = num(f[C_SHARES]);
        R->saves[i] = num(f[C_SAVES]);
        R->dislikes[i] = num(f[C_DISLIKES]);
        R->trend[i] = num(f[C_TREND]);
        R->vel[i] = num(f[C_VELOCITY]);
        R->er[i] = num(f[C_ER]);
        R->completion[i] = num(f[C_COMPLETION]);
        R->watch[i] = num(f[C_WATCH]);
        R->duration[i] = num(f[C_DURATION]);
        R->hour[i] = num(f[C_HOUR]);
        R->weekend[i] = num(f[C_WEEKEND]);
        R->creator_avg[i] = num(f[C_CREATOR_AVG]);
        R->title_len[i] = num(f[C_TITLE_LEN]);
        R->has_emoji[i] = num(f[C_HAS_EMOJI]);
        R->share_rate[i] = num(f[C_SHARE_RATE]);
        R->save_rate[i] = num(f[C_SAVE_RATE]);
        /* counts are whole, positive, ordered sensibly */
        assert_true(v >= 1 && v == floor(v));
        assert_true(R->likes[i] <= v);
        double total = R->likes[i] + R->comments[i] + R->shares[i] + R->saves[i];
        assert_true(num(f[C_TOTAL]) == total);
        /* engagement_rate = (likes+comments+shares+saves)/views, 6 decimals */
        double e1 = fabs(R->er[i] - total / v);
        max_er = test_max_err(max_er, e1);
        assert_true(e1 <= 5e-7 + 1e-12);
        assert_true(fabs(num(f[C_LIKE_RATE]) - R->likes[i] / v) <= 5e-7 + 1e-12);
        assert_true(fabs(num(f[C_COMMENT_RATIO]) - R->comments[i] / v) <= 5e-7 + 1e-12);
        assert_true(fabs(R->share_rate[i] - R->shares[i] / v) <= 5e-7 + 1e-12);
        assert_true(fabs(R->save_rate[i] - R->saves[i] / v) <= 5e-7 + 1e-12);
        /* velocity = views / trend_duration_days (2 decimals), as in the original data */
        assert_true(R->trend[i] >= 1 && R->trend[i] <= 365 && R->trend[i] == floor(R->trend[i]));
        double e2 = fabs(R->vel[i] - v / R->trend[i]);
        max_vel = test_max_err(max_vel, e2);
        assert_true(e2 <= 0.005 + 1e-9 * v);
        const char *tt = f[C_TREND_TYPE];
        assert_string_equal(tt, R->trend[i] <= 7 ? "Short" : R->trend[i] <= 21 ? "Medium" : "Evergreen");
        /* completion_rate = avg_watch_time_sec / duration_sec (3 decimals) */
        double e3 = fabs(R->completion[i] - R->watch[i] / R->duration[i]);
        max_cr = test_max_err(max_cr, e3);
        assert_true(e3 <= 5e-4 + 1e-12);
        assert_true(R->completion[i] > 0 && R->completion[i] <= 1.0);
        /* durations: TikTok 5-75 s, YouTube 5-180 s */
        int tiktok = strcmp(f[C_PLATFORM], "TikTok") == 0;
        assert_true(tiktok || strcmp(f[C_PLATFORM], "YouTube") == 0);
        assert_true(R->duration[i] >= 5 && R->duration[i] <= (tiktok ? 75 : 180));
        assert_true(R->hour[i] >= 0 && R->hour[i] <= 23 && R->hour[i] == floor(R->hour[i]));
        /* title_length = code points (Python len), has_emoji by the data module's rule */
        assert_true(R->title_len[i] == (double)miles_utf8_length(f[C_TITLE]));
        assert_true(R->has_emoji[i] == (double)miles_has_emoji(f[C_TITLE], strlen(f[C_TITLE])));
        /* publish_dayofweek = weekday of publish_date_approx; is_weekend = Fri/Sat/Sun */
        int y, m, d;
        assert_int_equal(sscanf(f[C_DATE], "%d-%d-%d", &y, &m, &d), 3);
        assert_true(y == 2025 && (m < 9 || (m == 9 && d <= 12)));
        int wd = weekday(y, m, d);
        assert_string_equal(f[C_DAY], DAYS[wd]);
        assert_true(R->weekend[i] == (double)(wd == 5 || wd == 6 || wd == 0));
        assert_true(miles_dayofweek_code(f[C_DAY]) >= 0);
        /* row_id: 32 lowercase hex digits */
        assert_int_equal(strlen(f[C_ROW_ID]), 32);
        assert_int_equal(strspn(f[C_ROW_ID], "0123456789abcdef"), 32);
    }
    assert_int_equal(s, 0);
    assert_int_equal(R->n, expect);
    miles_csv_free(csv);
    printf("  %lld rows consistent: max |er - formula| %.2e, max |velocity - views/T| %.2e, max |completion -"
           " watch/duration| %.2e\n", (long long)R->n, max_er, max_vel, max_cr);
}

static void free_rows(Rows *R) {
    for (int64_t i = 0; i < R->n; i++) {
        free(R->title[i]); free(R->author[i]); free(R->lang[i]); free(R->platform[i]); free(R->genre[i]);
        free(R->rowid[i]);
    }
    free(R->title); free(R->author); free(R->lang); free(R->platform); free(R->genre); free(R->rowid);
    free(R->views); free(R->likes); free(R->comments); free(R->shares); free(R->saves); free(R->dislikes);
    free(R->trend); free(R->vel); free(R->er); free(R->completion); free(R->watch); free(R->duration); free(R->hour);
    free(R->weekend); free(R->creator_avg); free(R->title_len); free(R->has_emoji); free(R->share_rate);
    free(R->save_rate);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static const Rows *g_rows;
static int cmp_idx_author(const void *a, const void *b) {
    return strcmp(g_rows->author[*(const int64_t *)a], g_rows->author[*(const int64_t *)b]);
}

static Rows big; /* 50,000 rows, seed 42: read once */
static int big_loaded;

static void load_big(void) {
    if (big_loaded) return;
    char p[300];
    snprintf(p, sizeof p, "%s/big.csv", tmpdir);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_t c0 = clock();
    assert_int_equal(miles_synth_write_csv(p, 50000, 42), MILES_OK);
    clock_t c1 = clock();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  50,000 rows written: %.3f s CPU, %.3f s wall (incl. fsync)\n", (double)(c1 - c0) / CLOCKS_PER_SEC,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    read_rows(p, &big, 50000);
    big_loaded = 1;
}

static void test_consistency_and_marginals(void **state) {
    (void)state;
    load_big();
    Rows *R = &big;
    int64_t n = R->n;
    /* creator_avg_views = mean views over that creator's rows in the file */
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    g_rows = R;
    qsort(idx, (size_t)n, sizeof *idx, cmp_idx_author);
    int64_t creators = 0, max_posts = 0;
    double max_err = 0;
    for (int64_t a = 0; a < n;) {
        int64_t b = a;
        double sum = 0;
        while (b < n && strcmp(R->author[idx[b]], R->author[idx[a]]) == 0) sum += R->views[idx[b++]];
        double mean = sum / (double)(b - a);
        for (int64_t k = a; k < b; k++) {
            double e = fabs(R->creator_avg[idx[k]] - mean);
            max_err = test_max_err(max_err, e);
            assert_true(e <= 0.05 + 1e-9 * mean);
        }
        creators++;
        if (b - a > max_posts) max_posts = b - a;
        a = b;
    }
    free(idx);
    printf("  creators: %lld (max %lld rows each), max |creator_avg_views - mean| %.3f\n", (long long)creators,
           (long long)max_posts, max_err);
    assert_true(creators < n / 3);   /* creators repeat */
    assert_true(creators > n / 20);
    /* row ids unique */
    char **ids = malloc((size_t)n * sizeof *ids);
    memcpy(ids, R->rowid, (size_t)n * sizeof *ids);
    qsort(ids, (size_t)n, sizeof *ids, cmp_str);
    for (int64_t i = 1; i < n; i++) assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    free(ids);
    /* marginals */
    int64_t en = 0, tiktok = 0, emoji = 0;
    char langs[64][8];
    int nlangs = 0;
    for (int64_t i = 0; i < n; i++) {
        en += strcmp(R->lang[i], "en") == 0;
        tiktok += strcmp(R->platform[i], "TikTok") == 0;
        emoji += R->has_emoji[i] != 0;
        int found = 0;
        for (int k = 0; k < nlangs; k++) found |= strcmp(langs[k], R->lang[i]) == 0;
        if (!found && nlangs < 64) snprintf(langs[nlangs++], 8, "%s", R->lang[i]);
    }
    double v_sorted_med, p99, vmax;
    double *v = malloc((size_t)n * sizeof *v);
    memcpy(v, R->views, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    v_sorted_med = v[n / 2];
    p99 = v[(int64_t)(0.99 * n)];
    vmax = v[n - 1];
    free(v);
    printf("  en %.4f, TikTok %.4f, has_emoji %.4f, %d languages; views median %.0f p99 %.0f max %.0f\n",
           (double)en / n, (double)tiktok / n, (double)emoji / n, nlangs, v_sorted_med, p99, vmax);
    assert_true(fabs((double)en / n - 0.20) <= 0.03);
    assert_true(fabs((double)tiktok / n - 0.60) <= 0.03);
    assert_true(fabs((double)emoji / n - 0.50) <= 0.05);
    assert_true(nlangs >= 12);
    assert_true(v_sorted_med > 20000 && v_sorted_med < 100000);
    assert_true(p99 / v_sorted_med > 4);     /* heavy right tail */
    assert_true(vmax / v_sorted_med > 20);   /* a few viral outliers */
}

/* ---------------------------------------------------------------- planted truth */

/* The documented hook table (docs/data_sources.md): phrase found in an English
 * title -> effect on ln velocity. */
typedef struct { const char *needle; double h; int prefix; } HookDoc;
static const HookDoc HOOKS[] = {
    {"You won't believe this ", 2.5, 1}, {"The secret to ", 2.0, 1}, {"POV: ", 1.75, 1}, {"Life hack: ", 1.5, 1},
    {"Wait for it… ", 1.25, 1}, {"Channel update: ", -2.0, 1}, {"My honest review of ", -1.25, 1},
    {" challenge", 1.5, 0}, {" (insane ending)", 1.0, 0}, {" | Part 2", -1.75, 0}, {" (full video)", -1.5, 0},
    {" vlog", -1.0, 0}, {" explained", -0.75, 0},
};
#define NH ((int)(sizeof HOOKS / sizeof HOOKS[0]))

static int hooks_of(const char *title, int *which) {
    int k = 0;
    for (int h = 0; h < NH; h++)
        if (strstr(title, HOOKS[h].needle)) which[k++] = h;
    return k;
}

static void test_planted_hook_effects(void **state) {
    (void)state;
    load_big();
    Rows *R = &big;
    /* mean ln velocity of English rows with exactly one hook vs none (same genre mix) */
    double sum[NH] = {0}, base = 0;
    int64_t cnt[NH] = {0}, nbase = 0;
    for (int64_t i = 0; i < R->n; i++) {
        if (strcmp(R->lang[i], "en") != 0) continue;
        int w[4];
        int k = hooks_of(R->title[i], w);
        double lv = log(R->vel[i]);
        if (k == 0) { base += lv; nbase++; }
        else if (k == 1) { sum[w[0]] += lv; cnt[w[0]]++; }
    }
    base /= (double)nbase;
    double max_dev = 0;
    for (int h = 0; h < NH; h++) {
        assert_true(cnt[h] > 100);
        double shift = sum[h] / (double)cnt[h] - base;
        double dev = shift - HOOKS[h].h;
        printf("  hook %-26s n=%4lld  shift %+.3f  documented %+.2f\n", HOOKS[h].needle, (long long)cnt[h], shift,
               HOOKS[h].h);
        if (fabs(dev) > fabs(max_dev)) max_dev = dev;
        /* right sign and close to the documented size (T >= 1 day and whole days
         * shrink the largest effects a little) */
        assert_true(shift * HOOKS[h].h > 0);
        assert_true(fabs(dev) <= 0.20);
    }
    printf("  max |shift - documented| = %.3f (no-hook rows: %lld)\n", fabs(max_dev), (long long)nbase);
    /* numeric effects: evening uploads and high share rates trend faster */
    double ev = 0, nev = 0, se = 0, sn = 0;
    for (int64_t i = 0; i < R->n; i++) {
        double lv = log(R->vel[i]);
        if (R->hour[i] >= 18 && R->hour[i] <= 22) { ev += lv; se++; } else { nev += lv; sn++; }
    }
    double evening_shift = ev / se - nev / sn;
    printf("  evening (18-22h) shift in ln velocity %+.3f (documented +0.30)\n", evening_shift);
    assert_true(evening_shift > 0.15 && evening_shift < 0.45);
}

/* AUROC by ranks (ties averaged) */
typedef struct { double s; int y; } SY;
static int cmp_sy(const void *a, const void *b) {
    double x = ((const SY *)a)->s, y = ((const SY *)b)->s;
    return x < y ? -1 : x > y;
}
static double auroc(const double *score, const int *y, int64_t n) {
    SY *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) { v[i].s = score[i]; v[i].y = y[i]; }
    qsort(v, (size_t)n, sizeof *v, cmp_sy);
    double rank_sum = 0;
    int64_t npos = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && v[j].s == v[i].s) j++;
        double r = (double)(i + j + 1) / 2.0; /* average 1-based rank */
        for (int64_t k = i; k < j; k++) if (v[k].y) { rank_sum += r; npos++; }
        i = j;
    }
    free(v);
    int64_t nneg = n - npos;
    return (rank_sum - (double)npos * (npos + 1) / 2.0) / ((double)npos * (double)nneg);
}

/* least squares (ridge 1e-6) via normal equations and Cholesky: X [n,p] row-major */
static void ols(const double *X, const double *y, int64_t n, int p, double *w) {
    double *A = calloc((size_t)p * p, sizeof *A), *b = calloc((size_t)p, sizeof *b);
    for (int64_t i = 0; i < n; i++)
        for (int a = 0; a < p; a++) {
            b[a] += X[i * p + a] * y[i];
            for (int c = 0; c < p; c++) A[a * p + c] += X[i * p + a] * X[i * p + c];
        }
    for (int a = 0; a < p; a++) A[a * p + a] += 1e-6 * (double)n;
    for (int j = 0; j < p; j++) { /* Cholesky in place (lower) */
        for (int k = 0; k < j; k++) A[j * p + j] -= A[j * p + k] * A[j * p + k];
        A[j * p + j] = sqrt(A[j * p + j]);
        for (int i = j + 1; i < p; i++) {
            for (int k = 0; k < j; k++) A[i * p + j] -= A[i * p + k] * A[j * p + k];
            A[i * p + j] /= A[j * p + j];
        }
    }
    for (int i = 0; i < p; i++) { /* L z = b */
        double s = b[i];
        for (int k = 0; k < i; k++) s -= A[i * p + k] * w[k];
        w[i] = s / A[i * p + i];
    }
    for (int i = p - 1; i >= 0; i--) { /* L^T w = z */
        double s = w[i];
        for (int k = i + 1; k < p; k++) s -= A[k * p + i] * w[k];
        w[i] = s / A[i * p + i];
    }
    free(A); free(b);
}

/* lowercase ASCII word tokens of a title, hashed into buckets */
#define NB 4096
static int title_tokens(const char *t, int *tok, int max) {
    int n = 0;
    uint32_t h = 2166136261u;
    int len = 0;
    for (const char *p = t;; p++) {
        unsigned char c = (unsigned char)*p;
        int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
        if (word) {
            if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
            h = (h ^ c) * 16777619u;
            len++;
        } else {
            if (len && n < max) tok[n++] = (int)(h % NB);
            h = 2166136261u;
            len = 0;
        }
        if (!c) break;
    }
    return n;
}

static void test_text_beats_numeric(void **state) {
    (void)state;
    /* ~2,000 English rows, as the brief says: 10,000 rows in all */
    char p[300];
    snprintf(p, sizeof p, "%s/mid.csv", tmpdir);
    assert_int_equal(miles_synth_write_csv(p, 10000, 7), MILES_OK);
    Rows R;
    read_rows(p, &R, 10000);
    int64_t *en = malloc((size_t)R.n * sizeof *en), m = 0;
    for (int64_t i = 0; i < R.n; i++) if (strcmp(R.lang[i], "en") == 0) en[m++] = i;
    printf("  English rows: %lld\n", (long long)m);
    assert_true(m > 1500);
    /* label: velocity >= 80th percentile of the English rows (the original's rule) */
    double *vs = malloc((size_t)m * sizeof *vs), *lv = malloc((size_t)m * sizeof *lv);
    for (int64_t k = 0; k < m; k++) { vs[k] = R.vel[en[k]]; lv[k] = log(R.vel[en[k]]); }
    qsort(vs, (size_t)m, sizeof *vs, cmp_dbl);
    double pos = 0.8 * (double)(m - 1);
    int64_t lo = (int64_t)floor(pos);
    double thr = vs[lo] + (pos - (double)lo) * (vs[lo + 1 < m ? lo + 1 : lo] - vs[lo]);
    int *y = malloc((size_t)m * sizeof *y);
    for (int64_t k = 0; k < m; k++) y[k] = R.vel[en[k]] >= thr;
    /* split: even positions train, odd test */
    enum { P = 19 };
    double *X = calloc((size_t)m * (P + 1), sizeof *X), *w = calloc(P + 1, sizeof *w);
    for (int64_t k = 0; k < m; k++) {
        int64_t i = en[k];
        double *x = X + k * (P + 1);
        double feats[P] = {1.0, log(R.views[i]), log1p(R.likes[i]), log1p(R.comments[i]), log1p(R.shares[i]),
                           log1p(R.saves[i]), R.er[i], R.completion[i], R.likes[i] / R.views[i], R.comments[i] / R.views[i],
                           R.share_rate[i], R.save_rate[i], R.hour[i], (R.hour[i] >= 18 && R.hour[i] <= 22) ? 1.0 : 0.0,
                           R.weekend[i], R.duration[i], R.title_len[i], R.has_emoji[i], log(R.creator_avg[i])};
        memcpy(x, feats, sizeof feats);
    }
    /* numeric-only: least squares on ln velocity, training half */
    int64_t ntr = (int64_t)(((uint64_t)m + 1) / 2), nte = (int64_t)((uint64_t)m / 2);
    double *Xtr = calloc((uint64_t)m * P, sizeof *Xtr), *ytr = calloc((uint64_t)m, sizeof *ytr);
    for (int64_t k = 0, t = 0; k < m; k += 2, t++) {
        memcpy(Xtr + t * P, X + k * (P + 1), P * sizeof *Xtr);
        ytr[t] = lv[k];
    }
    ols(Xtr, ytr, ntr, P, w);
    double *s_num = malloc((size_t)m * sizeof *s_num), *s_txt = malloc((size_t)m * sizeof *s_txt);
    for (int64_t k = 0; k < m; k++) {
        double s = 0;
        for (int a = 0; a < P; a++) s += w[a] * X[k * (P + 1) + a];
        s_num[k] = s;
    }
    /* title-only: per-token mean ln-velocity residual (shrunk), summed */
    double mean_tr = 0;
    for (int64_t t = 0; t < ntr; t++) mean_tr += ytr[t];
    mean_tr /= (double)ntr;
    double *tsum = calloc(NB, sizeof *tsum), *tcnt = calloc(NB, sizeof *tcnt);
    int tok[64];
    for (int64_t k = 0; k < m; k += 2) {
        int nt = title_tokens(R.title[en[k]], tok, 64);
        for (int q = 0; q < nt; q++) { tsum[tok[q]] += lv[k] - mean_tr; tcnt[tok[q]] += 1; }
    }
    for (int64_t k = 0; k < m; k++) {
        int nt = title_tokens(R.title[en[k]], tok, 64);
        double s = 0;
        for (int q = 0; q < nt; q++) s += tsum[tok[q]] / (tcnt[tok[q]] + 20.0);
        s_txt[k] = s;
    }
    /* both: least squares on the numeric features + the title score */
    double *Xb = calloc((uint64_t)m * (P + 1), sizeof *Xb), *wb = calloc(P + 1, sizeof *wb);
    for (int64_t k = 0, t = 0; k < m; k += 2, t++) {
        memcpy(Xb + t * (P + 1), X + k * (P + 1), P * sizeof *Xb);
        Xb[t * (P + 1) + P] = s_txt[k];
    }
    ols(Xb, ytr, ntr, P + 1, wb);
    double *s_both = malloc((size_t)m * sizeof *s_both);
    for (int64_t k = 0; k < m; k++) {
        double s = wb[P] * s_txt[k];
        for (int a = 0; a < P; a++) s += wb[a] * X[k * (P + 1) + a];
        s_both[k] = s;
    }
    /* test-half AUROCs */
    double *a = malloc((size_t)nte * sizeof *a), *b = malloc((size_t)nte * sizeof *b), *c = malloc((size_t)nte * sizeof *c);
    int *yt = malloc((size_t)nte * sizeof *yt);
    for (int64_t k = 1, t = 0; k < m; k += 2, t++) { a[t] = s_num[k]; b[t] = s_txt[k]; c[t] = s_both[k]; yt[t] = y[k]; }
    double au_num = auroc(a, yt, nte), au_txt = auroc(b, yt, nte), au_both = auroc(c, yt, nte);
    printf("  test AUROC (n=%lld): numeric-only %.4f, title-only %.4f, both %.4f\n", (long long)nte, au_num, au_txt,
           au_both);
    assert_true(au_num > 0.70);               /* numeric features carry signal (and the views leak) */
    assert_true(au_txt > au_num + 0.03);      /* the title carries more */
    assert_true(au_both > au_txt + 0.01);     /* and they add up */
    free(a); free(b); free(c); free(yt); free(Xb); free(wb); free(s_both); free(tsum); free(tcnt); free(s_num);
    free(s_txt); free(Xtr); free(ytr); free(X); free(w); free(y); free(vs); free(lv); free(en);
    free_rows(&R);
}

static void test_header_matches_reference(void **state) {
    (void)state;
    const char *shared = getenv("MILES_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/data/reference_synthetic_target/youtube_shorts_tiktok_trends_2025_HEAD5_from_author_notebook.csv",
             shared && *shared ? shared : "../shared");
    MilesCsv *ref = NULL;
    if (miles_csv_open(&ref, path) != MILES_OK) { printf("  skip: %s not found\n", path); skip(); }
    int nf, nf2;
    const char *const *f;
    assert_int_equal(miles_csv_next(ref, &nf, &f), 1);
    char p[300];
    snprintf(p, sizeof p, "%s/h.csv", tmpdir);
    assert_int_equal(miles_synth_write_csv(p, 3, 5), MILES_OK);
    MilesCsv *mine = NULL;
    assert_int_equal(miles_csv_open(&mine, p), MILES_OK);
    const char *const *g;
    assert_int_equal(miles_csv_next(mine, &nf2, &g), 1);
    assert_int_equal(nf, 58);
    assert_int_equal(nf2, 58);
    for (int i = 0; i < 58; i++) assert_string_equal(f[i], g[i]);
    /* a reference row's title and emoji conventions hold for our rules too */
    assert_int_equal(miles_csv_next(ref, &nf, &f), 1);
    assert_int_equal(miles_utf8_length(f[42]), 31); /* "Night Routine — Productivity 🏖️" */
    miles_csv_free(ref);
    miles_csv_free(mine);
}

static int teardown_all(void **state) {
    if (big_loaded) free_rows(&big);
    return teardown(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_creator_count),
        cmocka_unit_test(test_header_matches_reference),
        cmocka_unit_test(test_consistency_and_marginals),
        cmocka_unit_test(test_planted_hook_effects),
        cmocka_unit_test(test_text_beats_numeric),
    };
    return cmocka_run_group_tests(tests, setup, teardown_all);
}
