/*
 * test_plot.c — the PNG plots (tools/plot.c, compiled in here because tests
 * do not link the tools' objects).  Each plot is rendered into a fresh temp
 * directory from real metric curves (the metrics fixture) and checked: PNG
 * signature and IHDR size, cairo can read it back, and its pixels are not
 * trivial (enough non-white pixels, and the series colour is present).  The
 * directory must hold exactly the PNGs afterwards (no temp files left).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef MILES_HAVE_CAIRO
#include <cairo.h>
#endif
#include "miles.h"
#include "plot.h"
#include "helpers.h"

static char g_dir[256];
static cJSON *g_fix;

static int setup(void **state) {
    (void)state;
    if (test_mkdtemp(g_dir, sizeof g_dir, "test_plot")) return -1;
    g_fix = test_read_json("tests/fixtures/metrics_cases.json");
    return g_fix ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    if (!getenv("MILES_KEEP_PLOTS")) {
        test_rm_rf(g_dir);
    } else printf("plots kept in %s\n", g_dir);
    cJSON_Delete(g_fix);
    return 0;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Validate a PNG: signature, IHDR, readable, non-trivial pixels, and the
 * colour (r,g,b) present (within 12 per channel). */
__attribute__((unused)) static void check_png(const char *path, int w, int h, double rgb[3]) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char hd[33];
    assert_int_equal(fread(hd, 1, 33, f), 33);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_memory_equal(hd, sig, 8);
    assert_memory_equal(hd + 12, "IHDR", 4);
    assert_int_equal(be32(hd + 16), (uint32_t)w);
    assert_int_equal(be32(hd + 20), (uint32_t)h);
    assert_true(size > 10000);
#ifdef MILES_HAVE_CAIRO
    cairo_surface_t *sf = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(sf), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(sf), w);
    int stride = cairo_image_surface_get_stride(sf);
    const unsigned char *px = cairo_image_surface_get_data(sf);
    long nonwhite = 0, series = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v = *(const uint32_t *)(px + (size_t)y * stride + 4 * (size_t)x);
            int r = (v >> 16) & 255, g = (v >> 8) & 255, b = v & 255;
            if (r < 245 || g < 245 || b < 245) nonwhite++;
            if (abs(r - (int)(rgb[0] * 255)) <= 12 && abs(g - (int)(rgb[1] * 255)) <= 12 &&
                abs(b - (int)(rgb[2] * 255)) <= 12)
                series++;
        }
    cairo_surface_destroy(sf);
    double frac = (double)nonwhite / ((double)w * h);
    printf("%s: %dx%d, %ld bytes, %.1f%% non-white, %ld series-colour pixels\n", strrchr(path, '/') + 1,
           w, h, size, 100 * frac, series);
    assert_true(frac > 0.02 && frac < 0.6);
    assert_true(series > 300);
#endif
}

static void test_plots(void **state) {
    (void)state;
#ifndef MILES_HAVE_CAIRO
    double x[2] = {0, 1};
    assert_int_equal(miles_plot_roc("/tmp/x.png", x, x, 2, 0.5, NULL), MILES_EUNSUPPORTED);
    skip();
#else
    const cJSON *cs = cJSON_GetArrayItem(cJSON_GetObjectItem(g_fix, "cases"), 0);
    int n, n2;
    double *s = test_json_doubles(cJSON_GetObjectItem(cs, "scores"), &n);
    int32_t *y = test_json_ints(cJSON_GetObjectItem(cs, "labels"), &n2);
    double *vp = test_json_doubles(cJSON_GetObjectItem(cs, "vel_pred"), &n2);
    double *vt = test_json_doubles(cJSON_GetObjectItem(cs, "vel_true"), &n2);
    MilesMetricsOptions opt;
    miles_metrics_options_default(&opt);
    opt.n_bootstrap = 0;
    MilesMetrics m;
    assert_int_equal(miles_metrics_compute(&m, s, y, n, vp, vt, &opt), MILES_OK);
    char p[600];
    double blue[3] = {PLOT_BLUE_RGB}, orange[3] = {PLOT_ORANGE_RGB};

    MilesCurve roc, pr;
    assert_int_equal(miles_metric_roc_curve(s, y, n, &roc), MILES_OK);
    snprintf(p, sizeof p, "%s/roc.png", g_dir);
    assert_int_equal(miles_plot_roc(p, roc.x, roc.y, roc.n, m.auroc, "Test set ROC (fixture case random_n1000)"), MILES_OK);
    check_png(p, 900, 760, blue);

    assert_int_equal(miles_metric_pr_curve(s, y, n, &pr), MILES_OK);
    snprintf(p, sizeof p, "%s/pr.png", g_dir);
    assert_int_equal(miles_plot_pr(p, pr.x, pr.y, pr.n, m.average_precision, m.prevalence, NULL), MILES_OK);
    check_png(p, 900, 760, orange);

    snprintf(p, sizeof p, "%s/calibration.png", g_dir);
    assert_int_equal(miles_plot_calibration(p, m.calib_mean_score, m.calib_frac_pos, m.calib_count,
                                            MILES_CALIB_BINS, m.ece, "Reliability (15 bins)"), MILES_OK);
    check_png(p, 900, 940, blue);

    snprintf(p, sizeof p, "%s/velocity_scaled.png", g_dir);
    assert_int_equal(miles_plot_velocity(p, vp, vt, n, 0, "Velocity (scaled)"), MILES_OK);
    check_png(p, 900, 800, orange);   /* the y = x line; the dots are translucent */

    /* original units: views/day spanning decades -> log axes */
    for (int i = 0; i < n; i++) {
        vt[i] = pow(10, 2 + 40 * vt[i]);
        vp[i] = vt[i] * pow(10, vp[i] * 3 - 0.15);
    }
    snprintf(p, sizeof p, "%s/velocity_views.png", g_dir);
    assert_int_equal(miles_plot_velocity(p, vp, vt, n, 1, "Velocity (views/day)"), MILES_OK);
    check_png(p, 900, 800, orange);

    /* bad input: error, and no file */
    vp[3] = NAN;
    snprintf(p, sizeof p, "%s/bad.png", g_dir);
    assert_int_equal(miles_plot_velocity(p, vp, vt, n, 1, NULL), MILES_ENAN);
    assert_int_equal(miles_plot_roc(p, roc.x, roc.y, 0, 0.5, NULL), MILES_EINVAL);
    int64_t zero[15] = {0};
    assert_int_equal(miles_plot_calibration(p, m.calib_mean_score, m.calib_frac_pos, zero, 15, 0, NULL), MILES_EINVAL);
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    /* unwritable destination: EIO, nothing left behind */
    assert_int_equal(miles_plot_roc("/nonexistent_dir_miles/roc.png", roc.x, roc.y, roc.n, 0.5, NULL), MILES_EIO);

    /* exactly the five PNGs: no temp files left */
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            files++;
            assert_non_null(strstr(e->d_name, ".png"));
            assert_null(strstr(e->d_name, "tmp"));
        }
    closedir(d);
    assert_int_equal(files, 5);
    miles_curve_free(&roc);
    miles_curve_free(&pr);
    free(s); free(y); free(vp); free(vt);
#endif
}

#ifdef MILES_HAVE_CAIRO
/* Where the pixels of colour rgb lie (rgb NULL: any bluish pixel, b > r + 30,
 * for the translucent dots): their count, centroid and the covariance of x
 * with height (up = positive), in fractions of the image. */
typedef struct { long n; double cx, cy, cov; } Spread;
static Spread spread_in(const char *path, const double *rgb, double min_h) {
    cairo_surface_t *sf = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(sf), CAIRO_STATUS_SUCCESS);
    int w = cairo_image_surface_get_width(sf), h = cairo_image_surface_get_height(sf);
    int stride = cairo_image_surface_get_stride(sf);
    const unsigned char *px = cairo_image_surface_get_data(sf);
    double sx = 0, sy = 0, sxy = 0;
    Spread r = {0, 0, 0, 0};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v = *(const uint32_t *)(px + (size_t)y * stride + 4 * (size_t)x);
            int cr = (v >> 16) & 255, cg = (v >> 8) & 255, cb = v & 255;
            if (!rgb ? !(cb > cr + 30 && cb > cg) :
                (abs(cr - (int)(rgb[0] * 255)) > 12 || abs(cg - (int)(rgb[1] * 255)) > 12 ||
                 abs(cb - (int)(rgb[2] * 255)) > 12))
                continue;
            double fx = (double)x / w, fy = 1.0 - (double)y / h;
            if (fy < min_h) continue;
            r.n++;
            sx += fx;
            sy += fy;
            sxy += fx * fy;
        }
    cairo_surface_destroy(sf);
    assert_true(r.n > 0);
    r.cx = sx / r.n;
    r.cy = sy / r.n;
    r.cov = sxy / r.n - r.cx * r.cy;
    return r;
}
static Spread spread_of(const char *path, const double *rgb) { return spread_in(path, rgb, 0.0); }
#endif

/* The curves are drawn where their data say: a perfect ROC hugs the top-left
 * corner and a worst one the bottom-right; a calibration of over-confident
 * scores lies below its diagonal; predicted = true velocity rises to the
 * right, the reverse falls.  (test_plots only checks valid, non-trivial PNGs
 * in the series colour; a coordinate transform gone wrong passed it.) */
static void test_plot_geometry(void **state) {
    (void)state;
#ifndef MILES_HAVE_CAIRO
    skip();
#else
    char p[600];
    double blue[3] = {PLOT_BLUE_RGB};
    const double f_best[3] = {0, 0, 1}, t_best[3] = {0, 1, 1}, f_worst[3] = {0, 1, 1}, t_worst[3] = {0, 0, 1};
    snprintf(p, sizeof p, "%s/geo_best.png", g_dir);
    assert_int_equal(miles_plot_roc(p, f_best, t_best, 3, 1.0, NULL), MILES_OK);
    Spread best = spread_of(p, blue);
    snprintf(p, sizeof p, "%s/geo_worst.png", g_dir);
    assert_int_equal(miles_plot_roc(p, f_worst, t_worst, 3, 0.0, NULL), MILES_OK);
    Spread worst = spread_of(p, blue);
    printf("ROC centroids: perfect (%.3f, %.3f), worst (%.3f, %.3f) of the image\n", best.cx, best.cy, worst.cx,
           worst.cy);
    assert_true(worst.cx - best.cx > 0.25 && best.cy - worst.cy > 0.25);

    /* velocity: 200 points on y = x, then on y = 1 - x (blue dots, scaled units) */
    double t[200], up[200], down[200];
    for (int i = 0; i < 200; i++) {
        t[i] = i / 199.0;
        up[i] = t[i];
        down[i] = 1.0 - t[i];
    }
    double orange[3] = {PLOT_ORANGE_RGB};
    snprintf(p, sizeof p, "%s/geo_up.png", g_dir);
    assert_int_equal(miles_plot_velocity(p, up, t, 200, 0, NULL), MILES_OK);
    Spread su = spread_of(p, NULL);
    Spread line = spread_of(p, orange);   /* the y = x reference */
    snprintf(p, sizeof p, "%s/geo_down.png", g_dir);
    assert_int_equal(miles_plot_velocity(p, down, t, 200, 0, NULL), MILES_OK);
    Spread sd = spread_of(p, NULL);
    printf("velocity: covariance of the dots %.4f (pred = true), %.4f (pred = 1 - true); y = x line %.4f\n", su.cov,
           sd.cov, line.cov);
    assert_true(su.cov > 0.005 && sd.cov < -0.005 && line.cov > 0.005);

    /* calibration: every bin's positives at half its mean score: the dots under the diagonal */
    double ms[10], fp[10];
    int64_t cnt[10];
    for (int b = 0; b < 10; b++) {
        ms[b] = (b + 0.5) / 10;
        fp[b] = ms[b] / 2;
        cnt[b] = 100;
    }
    snprintf(p, sizeof p, "%s/geo_calib.png", g_dir);
    assert_int_equal(miles_plot_calibration(p, ms, fp, cnt, 10, 0.25, NULL), MILES_OK);
    Spread sc = spread_in(p, blue, 0.35);   /* the diagram, not the histogram under it */
    for (int b = 0; b < 10; b++) fp[b] = 1.0 - (1.0 - ms[b]) / 2;   /* under-confident: above it */
    snprintf(p, sizeof p, "%s/geo_calib2.png", g_dir);
    assert_int_equal(miles_plot_calibration(p, ms, fp, cnt, 10, 0.25, NULL), MILES_OK);
    Spread sc2 = spread_in(p, blue, 0.35);
    printf("calibration: series centroid height %.3f (over-confident) vs %.3f (under-confident); covariance "
           "%.4f, %.4f\n", sc.cy, sc2.cy, sc.cov, sc2.cov);
    assert_true(sc2.cy - sc.cy > 0.05);
    assert_true(sc.cov > 0.002 && sc2.cov > 0.002);   /* both rise with the score */
    const char *made[] = {"geo_best", "geo_worst", "geo_up", "geo_down", "geo_calib", "geo_calib2"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s.png", g_dir, made[i]);
        unlink(p);
    }
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_plots), cmocka_unit_test(test_plot_geometry) };
    return cmocka_run_group_tests(tests, setup, teardown);
}
