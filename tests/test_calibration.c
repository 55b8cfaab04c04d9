/*
 * test_calibration.c — Platt scaling (libmiles/metrics_calibrate.c) against
 * tests/fixtures/calibration_cases.json (tests/gen_calibration_fixture.py:
 * scikit-learn 1.2.1's _sigmoid_calibration objective, its minimum found again
 * in 50-digit arithmetic with mpmath; the calibrated probabilities with
 * scipy's expit, ECE and Brier score with sklearn's calibration_curve and
 * brier_score_loss).  Tolerances: a and b 1e-12 relative to max(1, |value|),
 * the objective 1e-13 relative, logits and probabilities 1e-14 absolute,
 * ECE / Brier 1e-12; sklearn's own BFGS answer (gradient 1e-5) within 1e-4.
 * Also: the ranking is untouched, calibrating calibrated scores is the
 * identity, the refusals, and miles-eval's section (tools/calibrate.c: a
 * score at the stored threshold, the means, a stored map, its refusals).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"
#include "calibrate.h"   /* miles-eval --calibrate's section (tools/calibrate.c) */
#include "helpers.h"

#define FIX "tests/fixtures/calibration_cases.json"

/* cmocka 1.1 has no assert_double_equal */
#define NEAR(got, want, tol)                                                                                     \
    do {                                                                                                         \
        double g_ = (got), w_ = (want);                                                                          \
        if (!(fabs(g_ - w_) <= (tol))) fail_msg("%s = %.17g, expected %.17g", #got, g_, w_);                      \
    } while (0)

static double g_worst[4];   /* a/b, objective, probabilities, ECE/Brier */

static void close_to(int slot, const char *cname, const char *what, double got, double want, double scale,
                     double tol) {
    test_close_to(&g_worst[slot], cname, what, got, want, scale, tol);
}

static void test_fixture(void **state) {
    (void)state;
    cJSON *fix = test_read_json(FIX);
    assert_non_null(fix);
    const cJSON *cs;
    int ncases = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(fix, "cases")) {
        const char *name = cJSON_GetObjectItem(cs, "name")->valuestring;
        const cJSON *e = cJSON_GetObjectItem(cs, "expected");
        int n, n2, np;
        int32_t *y = test_json_ints(cJSON_GetObjectItem(cs, "labels"), &n);
        double *p = test_json_doubles(cJSON_GetObjectItem(cs, "scores"), &n2);
        assert_int_equal(n2, n);
        double *x = test_json_doubles(cJSON_GetObjectItem(e, "logits"), &n2);
        double *cal = test_json_doubles(cJSON_GetObjectItem(e, "calibrated"), &n2);
        double *probe = test_json_doubles(cJSON_GetObjectItem(e, "probe"), &np);
        double *probe_cal = test_json_doubles(cJSON_GetObjectItem(e, "probe_calibrated"), &n2);
        MilesPlatt c;
        OK(miles_platt_fit(p, y, n, &c));
        assert_int_equal(c.n, n);
        assert_int_equal(c.n_pos, (int64_t)test_json_num(e, "n_pos"));
        assert_true(c.iterations >= 1 && c.iterations < 100);
        double a = test_json_num(e, "a"), b = test_json_num(e, "b");
        close_to(0, name, "a", c.a, a, fmax(1, fabs(a)), 1e-12);
        close_to(0, name, "b", c.b, b, fmax(1, fabs(b)), 1e-12);
        close_to(1, name, "objective", c.objective, test_json_num(e, "objective"), test_json_num(e, "objective"), 1e-13);
        /* scikit-learn's BFGS stops at a gradient of 1e-5: near, not at, the minimum */
        if (fabs(c.a - test_json_num(e, "sklearn_a")) > 1e-4 || fabs(c.b - test_json_num(e, "sklearn_b")) > 1e-4)
            fail_msg("%s: (a, b) = (%g, %g), scikit-learn's (%g, %g)", name, c.a, c.b, test_json_num(e, "sklearn_a"),
                     test_json_num(e, "sklearn_b"));
        NEAR(c.logit_clip, log(1 - 0x1p-24) - log(0x1p-24), 1e-15);
        double *out = malloc(sizeof(double) * n);
        assert_non_null(out);
        for (int i = 0; i < n; i++) close_to(2, name, "logit", miles_platt_logit(p[i]), x[i], fmax(1, fabs(x[i])), 1e-15);
        OK(miles_platt_apply(&c, p, n, out));
        for (int i = 0; i < n; i++) close_to(2, name, "calibrated", out[i], cal[i], 1, 1e-14);
        for (int i = 0; i < np; i++) close_to(2, name, "probe", miles_platt_map(&c, probe[i]), probe_cal[i], 1, 1e-14);
        /* the report's calibration metrics of the calibrated scores */
        MilesMetricsOptions o;
        miles_metrics_options_default(&o);
        o.n_bootstrap = 0;
        MilesMetrics before, after;
        miles_metrics_compute(&before, p, y, n, NULL, NULL, &o);   /* EINVAL with one row per class is fine */
        miles_metrics_compute(&after, out, y, n, NULL, NULL, &o);
        close_to(3, name, "ece_before", before.ece, test_json_num(e, "ece_before"), 1, 1e-12);
        close_to(3, name, "ece_after", after.ece, test_json_num(e, "ece_after"), 1, 1e-12);
        close_to(3, name, "brier_before", before.brier, test_json_num(e, "brier_before"), 1, 1e-12);
        close_to(3, name, "brier_after", after.brier, test_json_num(e, "brier_after"), 1, 1e-12);
        /* a > 0 keeps the ranking; a < 0 reverses it */
        if ((before.valid & MILES_M_AUROC) && (after.valid & MILES_M_AUROC)) {
            if (c.a > 0) NEAR(after.auroc, before.auroc, 1e-15);
            else NEAR(after.auroc, 1 - before.auroc, 1e-15);
        }
        free(y); free(p); free(x); free(cal); free(probe); free(probe_cal); free(out);
        ncases++;
    }
    assert_int_equal(ncases, 8);
    print_message("%d cases; max error: a/b %.3e (relative), objective %.3e (relative), logits/probabilities "
                  "%.3e, ECE/Brier %.3e\n", ncases, g_worst[0], g_worst[1], g_worst[2], g_worst[3]);
    cJSON_Delete(fix);
}

/* Platt scaling of scores it calibrated itself finds nothing left to do */
static void test_idempotent(void **state) {
    (void)state;
    enum { N = 2000 };
    double *p = malloc(sizeof(double) * N), *q = malloc(sizeof(double) * N);
    int32_t *y = malloc(sizeof(int32_t) * N);
    assert_true(p && q && y);
    uint64_t r = 12345;
    for (int i = 0; i < N; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(r >> 11) / 9007199254740992.0, z = 6 * u - 3;
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        y[i] = (double)(r >> 11) / 9007199254740992.0 < 1 / (1 + exp(-z));
        p[i] = (float)(1 / (1 + exp(-(2.5 * z + 1))));   /* over-confident, shifted, fp32 */
    }
    MilesPlatt c, c2;
    OK(miles_platt_fit(p, y, N, &c));
    assert_true(c.a > 0.2 && c.a < 0.6);   /* about 1/2.5 */
    OK(miles_platt_apply(&c, p, N, q));
    OK(miles_platt_fit(q, y, N, &c2));
    print_message("first fit a = %.6f b = %.6f; refit a = %.12f b = %.3e\n", c.a, c.b, c2.a, c2.b);
    NEAR(c2.a, 1, 1e-9);
    NEAR(c2.b, 0, 1e-9);
    /* the same rows give the same bits */
    MilesPlatt c3;
    OK(miles_platt_fit(p, y, N, &c3));
    assert_memory_equal(&c3.a, &c.a, sizeof c.a);
    assert_memory_equal(&c3.b, &c.b, sizeof c.b);
    free(p); free(q); free(y);
}

static void test_refusals(void **state) {
    (void)state;
    double p[4] = {0.1, 0.4, 0.6, 0.9}, out[4];
    int32_t y[4] = {0, 1, 0, 1}, y0[4] = {0, 0, 0, 0}, y1[4] = {1, 1, 1, 1}, ybad[4] = {0, 2, 0, 1};
    MilesPlatt c;
    assert_int_equal(miles_platt_fit(p, y0, 4, &c), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "single class"));
    assert_non_null(strstr(miles_last_error(), "all negative"));
    assert_int_equal(miles_platt_fit(p, y1, 4, &c), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "all positive"));
    assert_int_equal(miles_platt_fit(p, ybad, 4, &c), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "label[1]"));
    assert_int_equal(miles_platt_fit(p, y, 0, &c), MILES_EINVAL);
    assert_int_equal(miles_platt_fit(NULL, y, 4, &c), MILES_EINVAL);
    assert_int_equal(miles_platt_fit(p, y, 4, NULL), MILES_EINVAL);
    double pn[4] = {0.1, NAN, 0.6, 0.9}, pbig[4] = {0.1, 0.4, 1.5, 0.9}, neg[4] = {0.1, 0.4, -0.1, 0.9};
    assert_int_equal(miles_platt_fit(pn, y, 4, &c), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "score[1]"));
    assert_int_equal(miles_platt_fit(pbig, y, 4, &c), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "score[2] = 1.5 is not a probability"));
    assert_int_equal(miles_platt_fit(neg, y, 4, &c), MILES_EINVAL);
    /* all the same logit: 0.3 four times, and two scores clipped to the same end */
    double same[4] = {0.3, 0.3, 0.3, 0.3}, ends[4] = {1.0, 1 - 0x1p-26, 1.0, 1 - 0x1p-25};
    assert_int_equal(miles_platt_fit(same, y, 4, &c), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "same logit"));
    assert_int_equal(miles_platt_fit(ends, y, 4, &c), MILES_EINVAL);
    /* apply: a probability in, finite parameters */
    OK(miles_platt_fit(p, y, 4, &c));
    assert_int_equal(miles_platt_apply(&c, pbig, 4, out), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "score[2]"));
    assert_int_equal(miles_platt_apply(&c, pn, 4, out), MILES_EINVAL);
    assert_true(isnan(miles_platt_map(&c, NAN)) && isnan(miles_platt_map(&c, 1.01)) && isnan(miles_platt_map(NULL, 0.5)));
    OK(miles_platt_apply(&c, p, 0, NULL));
    assert_int_equal(miles_platt_apply(NULL, p, 4, out), MILES_EINVAL);
    MilesPlatt inf = c;
    inf.a = INFINITY;
    assert_int_equal(miles_platt_apply(&inf, p, 4, out), MILES_EINVAL);
    /* the clip is symmetric and the logit is odd */
    NEAR(miles_platt_logit(0), -miles_platt_logit(1), 0);
    NEAR(miles_platt_logit(0.5), 0, 0);
    NEAR(miles_platt_logit(0x1p-30), miles_platt_logit(0x1p-24), 0);
}

/* miles-eval's section: a score exactly at the stored threshold keeps its
 * decision, the means and metrics are the rows', a model worse than chance
 * on the fitting rows and one class there are refused */
static void test_tool_section(void **state) {
    (void)state;
    /* fitting rows: 0.2/0.4 mostly negative, 0.6/0.8 mostly positive */
    double fs[8] = {0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8};
    int32_t fy[8] = {0, 0, 0, 1, 0, 1, 1, 1};
    double s[6] = {0.1, 0.4, 0.5, 0.5, 0.7, 0.9}, cal[6];
    int32_t y[6] = {0, 0, 1, 0, 1, 1};
    ToolCalibration c;
    OK(tool_calibrate(&c, fs, fy, 8, "val", s, y, 6, 0.5, cal));
    assert_string_equal(c.fit_split, "val");
    assert_true(c.platt.a > 0 && c.platt.n == 8 && c.platt.n_pos == 4);
    double m0 = 0, m1 = 0, b1 = 0;
    for (int i = 0; i < 6; i++) {
        NEAR(cal[i], miles_platt_map(&c.platt, s[i]), 0);
        m0 += s[i] / 6;
        m1 += cal[i] / 6;
        b1 += (cal[i] - y[i]) * (cal[i] - y[i]) / 6;
    }
    NEAR(c.mean_before, m0, 1e-15);
    NEAR(c.mean_after, m1, 1e-15);
    NEAR(c.after.brier, b1, 1e-15);
    assert_int_equal(c.before.n, 6);
    assert_int_equal(c.after.n_pos, 3);
    NEAR(c.threshold, 0.5, 0);
    NEAR(c.threshold_calibrated, miles_platt_map(&c.platt, 0.5), 0);
    assert_int_equal(c.decisions_changed, 0);   /* the two 0.5s stay positive */
    assert_non_null(c.json);
    tool_calibration_free(&c);
    assert_null(c.json);
    /* no stored threshold: nothing to map or count */
    OK(tool_calibrate(&c, fs, fy, 8, "val", s, y, 6, NAN, cal));
    assert_true(isnan(c.threshold_calibrated) && c.decisions_changed == 0);
    tool_calibration_free(&c);
    /* the stored map: the same numbers, nothing fitted */
    MilesPlatt st = {0};
    st.a = 0.5;
    st.b = -1;
    st.n = 100;
    st.n_pos = 20;
    OK(tool_calibrate_stored(&c, &st, s, y, 6, 0.5, cal));
    assert_null(c.fit_split);
    assert_true(c.platt.a == 0.5 && c.platt.b == -1 && c.platt.n == 100);
    NEAR(cal[5], 1 / (1 + exp(-(0.5 * log(9.0) - 1))), 1e-15);
    tool_calibration_free(&c);
    /* a slope so small that every calibrated score rounds to sigma(b): the
     * decisions of the rows below the threshold (0.1 and 0.4, the first one
     * among them) are counted as changed, not assumed equal */
    st.a = 1e-17;
    OK(tool_calibrate_stored(&c, &st, s, y, 6, 0.5, cal));
    NEAR(cal[0], cal[5], 0);
    assert_int_equal(c.decisions_changed, 2);
    NEAR(c.after.auroc, 0.5, 0);   /* all tied: the table says AUROC moved, not that it did not */
    assert_true(c.before.auroc > 0.5);
    tool_calibration_free(&c);
    st.a = 0;   /* the map must increase */
    assert_int_equal(tool_calibrate_stored(&c, &st, s, y, 6, 0.5, cal), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "rank the fitting rows no better than chance"));
    /* worse than chance on the fitting rows */
    int32_t inv[8] = {1, 1, 1, 0, 1, 0, 0, 0};
    assert_int_equal(tool_calibrate(&c, fs, inv, 8, "val", s, y, 6, 0.5, cal), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "rank the val rows no better than chance"));
    assert_null(c.json);
    int32_t one[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(tool_calibrate(&c, fs, one, 8, "val", s, y, 6, 0.5, cal), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "single class"));
    /* evaluated rows of one class: the calibration metrics are still there */
    int32_t y0[6] = {0, 0, 0, 0, 0, 0};
    OK(tool_calibrate(&c, fs, fy, 8, "val", s, y0, 6, 0.5, cal));
    assert_true(c.after.valid & MILES_M_CALIBRATION);
    NEAR(c.before.prevalence, 0, 0);
    tool_calibration_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_tool_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
