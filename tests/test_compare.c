/*
 * test_compare.c — miles_compare_scores / miles_compare_mae
 * (libmiles/metrics_compare.c) against tests/fixtures/compare_cases.json
 * (tests/gen_compare_fixture.py: DeLong's test from its pairwise definition
 * with numpy, the AUROCs and APs from scikit-learn 1.2.1, the paired
 * bootstrap replayed on libmiles' resample stream with roc_auc_score,
 * average_precision_score and mean_absolute_error).  Tolerance 1e-12 absolute on AUROCs, (co)variances,
 * intervals and z; 1e-12 relative on p-values.  Also: identical scorers,
 * a perfect scorer against a constant one (se 0), the symmetry of swapping
 * A and B, and the refusals.
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
#include "helpers.h"

#define FIX "tests/fixtures/compare_cases.json"
#define TOL 1e-12

static double g_worst[3]; /* DeLong, p-value (relative), bootstrap */

static void close_to(int slot, const char *cname, const char *what, double got, double want, int relative) {
    test_close_to(&g_worst[slot], cname, what, got, want, relative ? fmax(fabs(want), 1e-300) : 1.0, TOL);
}

static void test_fixture(void **state) {
    (void)state;
    cJSON *fix = test_read_json(FIX);
    assert_non_null(fix);
    const cJSON *cs;
    int ncases = 0, nboot = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(fix, "cases")) {
        const char *name = cJSON_GetObjectItem(cs, "name")->valuestring;
        const cJSON *e = cJSON_GetObjectItem(cs, "expected");
        const cJSON *bt = cJSON_GetObjectItem(e, "bootstrap");
        int n, n2;
        int32_t *y = test_json_ints(cJSON_GetObjectItem(cs, "labels"), &n);
        double *a = test_json_doubles(cJSON_GetObjectItem(cs, "a"), &n2);
        assert_int_equal(n2, n);
        double *b = test_json_doubles(cJSON_GetObjectItem(cs, "b"), &n2);
        double *va = test_json_doubles(cJSON_GetObjectItem(cs, "vel_a"), &n2);
        double *vb = test_json_doubles(cJSON_GetObjectItem(cs, "vel_b"), &n2);
        double *vt = test_json_doubles(cJSON_GetObjectItem(cs, "vel_t"), &n2);
        MilesMetricsOptions o;
        miles_metrics_options_default(&o);
        o.alpha = test_json_num(cs, "alpha");
        o.n_bootstrap = bt ? (int)test_json_num(bt, "n_boot") : 0;
        o.seed = bt ? (uint64_t)test_json_num(bt, "seed") : 42;
        MilesScoreComparison c;
        OK(miles_compare_scores(a, b, y, n, &o, &c));
        assert_int_equal(c.n, n);
        assert_int_equal(c.n_pos, (int64_t)test_json_num(e, "n_pos"));
        assert_int_equal(c.n_neg, (int64_t)test_json_num(e, "n_neg"));
        close_to(0, name, "auroc_a", c.auroc_a, test_json_num(e, "auroc_a"), 0);
        close_to(0, name, "auroc_b", c.auroc_b, test_json_num(e, "auroc_b"), 0);
        close_to(0, name, "diff", c.diff, test_json_num(e, "diff"), 0);
        close_to(0, name, "var_a", c.var_a, test_json_num(e, "var_a"), 0);
        close_to(0, name, "var_b", c.var_b, test_json_num(e, "var_b"), 0);
        close_to(0, name, "cov", c.cov, test_json_num(e, "cov"), 0);
        close_to(0, name, "se", c.se, test_json_num(e, "se"), 0);
        close_to(0, name, "z", c.z, test_json_num(e, "z"), 0);
        close_to(1, name, "p_value", c.p_value, test_json_num(e, "p_value"), 1);
        close_to(0, name, "ap_a", c.ap_a, test_json_num(e, "ap_a"), 0);
        close_to(0, name, "ap_b", c.ap_b, test_json_num(e, "ap_b"), 0);
        close_to(0, name, "ap_diff", c.ap_diff, test_json_num(e, "ap_a") - test_json_num(e, "ap_b"), 0);
        const cJSON *ci = cJSON_GetObjectItem(e, "ci");
        close_to(0, name, "ci_lo", c.ci_lo, cJSON_GetArrayItem(ci, 0)->valuedouble, 0);
        close_to(0, name, "ci_hi", c.ci_hi, cJSON_GetArrayItem(ci, 1)->valuedouble, 0);
        MilesMaeComparison mc;
        OK(miles_compare_mae(va, vb, vt, n, &o, &mc));
        close_to(0, name, "mae_a", mc.mae_a, test_json_num(e, "mae_a"), 0);
        close_to(0, name, "mae_b", mc.mae_b, test_json_num(e, "mae_b"), 0);
        close_to(0, name, "mae diff", mc.diff, test_json_num(e, "mae_a") - test_json_num(e, "mae_b"), 0);
        if (bt) {
            const cJSON *ai = cJSON_GetObjectItem(bt, "auroc_diff_ci"), *mi = cJSON_GetObjectItem(bt, "mae_diff_ci");
            assert_int_equal(c.boot_used, (int)test_json_num(bt, "auroc_used"));
            close_to(2, name, "bootstrap auroc diff lo", c.boot_lo, cJSON_GetArrayItem(ai, 0)->valuedouble, 0);
            close_to(2, name, "bootstrap auroc diff hi", c.boot_hi, cJSON_GetArrayItem(ai, 1)->valuedouble, 0);
            const cJSON *pi = cJSON_GetObjectItem(bt, "ap_diff_ci");
            close_to(2, name, "bootstrap ap diff lo", c.ap_boot_lo, cJSON_GetArrayItem(pi, 0)->valuedouble, 0);
            close_to(2, name, "bootstrap ap diff hi", c.ap_boot_hi, cJSON_GetArrayItem(pi, 1)->valuedouble, 0);
            close_to(2, name, "bootstrap mae diff lo", mc.boot_lo, cJSON_GetArrayItem(mi, 0)->valuedouble, 0);
            close_to(2, name, "bootstrap mae diff hi", mc.boot_hi, cJSON_GetArrayItem(mi, 1)->valuedouble, 0);
            nboot++;
        } else {
            assert_true(isnan(c.boot_lo) && isnan(c.boot_hi) && isnan(mc.boot_lo) && isnan(mc.boot_hi));
            assert_true(isnan(c.ap_boot_lo) && isnan(c.ap_boot_hi));
        }
        printf("  %-16s AUROC %.4f vs %.4f  diff %+.4f  se %.4f  z %+.3f  p %.3g\n", name, c.auroc_a, c.auroc_b,
               c.diff, c.se, c.z, c.p_value);
        free(y); free(a); free(b); free(va); free(vb); free(vt);
        ncases++;
    }
    cJSON_Delete(fix);
    assert_true(ncases >= 5 && nboot >= 2);
    printf("  %d cases (%d with the paired bootstrap); max error: DeLong %.3e, p-value (relative) %.3e, "
           "bootstrap %.3e (tolerance %.0e)\n", ncases, nboot, g_worst[0], g_worst[1], g_worst[2], TOL);
}

/* Swapping A and B negates diff, z and the interval; se and p stay. */
static void test_symmetry_and_edges(void **state) {
    (void)state;
    const int32_t y[8] = {1, 0, 1, 0, 0, 1, 0, 0};
    const double a[8] = {0.9, 0.2, 0.7, 0.4, 0.1, 0.3, 0.5, 0.35};
    const double b[8] = {0.6, 0.5, 0.8, 0.1, 0.3, 0.2, 0.4, 0.7};
    MilesMetricsOptions o;
    miles_metrics_options_default(&o);
    o.n_bootstrap = 50;
    MilesScoreComparison ab, ba;
    OK(miles_compare_scores(a, b, y, 8, &o, &ab));
    OK(miles_compare_scores(b, a, y, 8, &o, &ba));
    assert_true(ab.diff == -ba.diff && ab.z == -ba.z && ab.se == ba.se && ab.p_value == ba.p_value);
    assert_true(ab.ci_lo == -ba.ci_hi && ab.ci_hi == -ba.ci_lo);
    /* the percentiles of the negated statistics: equal up to the interpolation's rounding */
    assert_true(fabs(ab.boot_lo + ba.boot_hi) < 1e-12 && fabs(ab.boot_hi + ba.boot_lo) < 1e-12);
    assert_true(ab.boot_lo < ab.boot_hi && ab.boot_used == ba.boot_used && ab.boot_used > 40);
    assert_true(ab.ap_diff == -ba.ap_diff && fabs(ab.ap_boot_lo + ba.ap_boot_hi) < 1e-12);
    assert_true(ab.ci_lo < ab.diff && ab.diff < ab.ci_hi);
    /* one resample is an interval of one point, for both differences */
    o.n_bootstrap = 1;
    MilesScoreComparison one;
    OK(miles_compare_scores(a, b, y, 8, &o, &one));
    MilesMaeComparison m1;
    OK(miles_compare_mae(a, b, a, 8, &o, &m1));
    assert_true(!isnan(one.boot_lo) && one.boot_lo == one.boot_hi && one.boot_used <= 1);
    assert_true(!isnan(m1.boot_lo) && m1.boot_lo == m1.boot_hi);
    o.n_bootstrap = 50;
    /* a narrower level gives a narrower interval: alpha 0.5 -> z 0.6745 */
    o.alpha = 0.5;
    MilesScoreComparison half;
    OK(miles_compare_scores(a, b, y, 8, &o, &half));
    double q = (half.ci_hi - half.diff) / half.se;
    if (fabs(q - 0.67448975019608171) > 1e-12) fail_msg("quantile at alpha 0.5: %.17g", q);
    /* identical scorers: diff 0, se 0, z 0, p 1 */
    MilesScoreComparison same;
    OK(miles_compare_scores(a, a, y, 8, NULL, &same));
    assert_true(same.diff == 0 && same.se == 0 && same.z == 0 && same.p_value == 1);
    assert_true(same.ci_lo == 0 && same.ci_hi == 0);
    /* a perfect scorer against a constant one: both variances 0, diff 0.5 -> z inf, p 0 */
    const double perfect[8] = {0.9, 0.1, 0.8, 0.2, 0.1, 0.7, 0.3, 0.2}, flat[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    MilesScoreComparison pf;
    OK(miles_compare_scores(perfect, flat, y, 8, NULL, &pf));
    assert_true(pf.auroc_a == 1 && pf.auroc_b == 0.5 && pf.se == 0);
    assert_true(isinf(pf.z) && pf.z > 0 && pf.p_value == 0);
    OK(miles_compare_scores(flat, perfect, y, 8, NULL, &pf));
    assert_true(isinf(pf.z) && pf.z < 0 && pf.p_value == 0);
}

static void test_refusals(void **state) {
    (void)state;
    const int32_t y[5] = {1, 0, 1, 0, 0}, one_pos[5] = {1, 0, 0, 0, 0}, bad[5] = {1, 0, 2, 0, 0};
    const double a[5] = {0.9, 0.2, 0.7, 0.4, 0.1}, b[5] = {0.6, 0.5, 0.8, 0.1, 0.3};
    const double nan_b[5] = {0.6, 0.5, NAN, 0.1, 0.3};
    MilesScoreComparison c;
    assert_int_equal(miles_compare_scores(a, b, one_pos, 5, NULL, &c), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "2 rows of each class"));
    assert_int_equal(miles_compare_scores(a, b, bad, 5, NULL, &c), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "label[2]"));
    assert_int_equal(miles_compare_scores(a, nan_b, y, 5, NULL, &c), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "model B"));
    assert_int_equal(miles_compare_scores(a, b, y, 0, NULL, &c), MILES_EINVAL);
    assert_int_equal(miles_compare_scores(a, b, y, 5, NULL, NULL), MILES_EINVAL);
    MilesMetricsOptions o;
    miles_metrics_options_default(&o);
    o.alpha = 1;
    assert_int_equal(miles_compare_scores(a, b, y, 5, &o, &c), MILES_EINVAL);
    MilesMaeComparison m;
    assert_int_equal(miles_compare_mae(a, nan_b, b, 5, NULL, &m), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "row 2"));
    assert_int_equal(miles_compare_mae(a, b, b, 0, NULL, &m), MILES_EINVAL);
    assert_int_equal(miles_compare_mae(a, b, a, 5, &o, &m), MILES_EINVAL);
    o.alpha = 0.05;
    OK(miles_compare_mae(a, b, a, 5, &o, &m));
    assert_true(m.mae_a == 0 && m.diff < 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_symmetry_and_edges),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
