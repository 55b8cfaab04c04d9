/*
 * test_metrics.c — libmiles metrics against scikit-learn 1.2.1 golden values
 * (tests/fixtures/metrics_cases.json, made by tests/gen_metrics_fixture.py).
 *
 * Tolerance: 1e-12 absolute on every real-valued metric and curve point
 * (double precision; the computations are short sums of exact integer ratios);
 * counts must match exactly.  Max errors are printed.
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
#include "metrics_internal.h"
#include "internal.h"
#include "helpers.h"

#define TOL 1e-12

static cJSON *g_fix;
static double g_maxerr[32];
static const char *g_errname[32] = {"auroc", "average_precision", "precision@10%recall",
                                    "threshold metrics", "best-F1", "ECE", "Brier",
                                    "velocity", "ROC curve", "PR curve", "log loss"};

static int load_fixture(void **state) {
    (void)state;
    g_fix = test_read_json("tests/fixtures/metrics_cases.json");
    return g_fix ? 0 : -1;
}

static int free_fixture(void **state) {
    (void)state;
    cJSON_Delete(g_fix);
    return 0;
}

static void close_to(int slot, const char *cname, const char *what, double got, double want) {
    double e = fabs(got - want);
    if (e > g_maxerr[slot]) g_maxerr[slot] = e;
    if (!(e <= TOL)) {
        fprintf(stderr, "%s: %s = %.17g, sklearn %.17g (err %.3g)\n", cname, what, got, want, e);
        fail();
    }
}

static void check_thr(const char *cname, const MilesThresholdMetrics *t, const cJSON *e) {
    close_to(3, cname, "accuracy", t->accuracy, test_json_num(e, "accuracy"));
    close_to(3, cname, "precision", t->precision, test_json_num(e, "precision"));
    close_to(3, cname, "recall", t->recall, test_json_num(e, "recall"));
    close_to(3, cname, "f1", t->f1, test_json_num(e, "f1"));
    assert_int_equal(t->tn, (int64_t)test_json_num(e, "tn"));
    assert_int_equal(t->fp, (int64_t)test_json_num(e, "fp"));
    assert_int_equal(t->fn, (int64_t)test_json_num(e, "fn"));
    assert_int_equal(t->tp, (int64_t)test_json_num(e, "tp"));
}

static void check_curve(int slot, const char *cname, const MilesCurve *c, const cJSON *e,
                        const char *kx, const char *ky, const char *kt, int skip_first_thr) {
    int nx, ny, nt;
    double *x = test_json_doubles(cJSON_GetObjectItem(e, kx), &nx);
    double *y = test_json_doubles(cJSON_GetObjectItem(e, ky), &ny);
    double *t = test_json_doubles(cJSON_GetObjectItem(e, kt), &nt);
    assert_int_equal(c->n, nx);
    assert_int_equal(c->n, ny);
    for (int i = 0; i < nx; i++) {
        close_to(slot, cname, kx, c->x[i], x[i]);
        close_to(slot, cname, ky, c->y[i], y[i]);
    }
    for (int i = skip_first_thr; i < nt; i++) close_to(slot, cname, kt, c->thresholds[i], t[i]);
    free(x); free(y); free(t);
}

static void test_golden(void **state) {
    (void)state;
    double stored = test_json_num(g_fix, "stored_threshold");
    int n_bins = (int)test_json_num(g_fix, "n_bins");
    const cJSON *cs;
    int ncases = 0, n_ll = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(g_fix, "cases")) {
        const char *name = cJSON_GetObjectItem(cs, "name")->valuestring;
        const cJSON *e = cJSON_GetObjectItem(cs, "expected");
        int n, n2;
        double *s = test_json_doubles(cJSON_GetObjectItem(cs, "scores"), &n);
        int32_t *y = test_json_ints(cJSON_GetObjectItem(cs, "labels"), &n2);
        assert_int_equal(n, n2);
        double v, t, f;
        assert_int_equal(miles_metric_auroc(s, y, n, &v), MILES_OK);
        close_to(0, name, "auroc", v, test_json_num(e, "auroc"));
        assert_int_equal(miles_metric_average_precision(s, y, n, &v), MILES_OK);
        close_to(1, name, "average_precision", v, test_json_num(e, "average_precision"));
        assert_int_equal(miles_metric_precision_at_recall(s, y, n, 0.10, &v, &t), MILES_OK);
        close_to(2, name, "precision_at_10pct_recall", v, test_json_num(e, "precision_at_10pct_recall"));
        MilesThresholdMetrics tm;
        assert_int_equal(miles_metric_at_threshold(s, y, n, 0.5, &tm), MILES_OK);
        check_thr(name, &tm, cJSON_GetObjectItem(e, "at_0.5"));
        assert_int_equal(miles_metric_at_threshold(s, y, n, stored, &tm), MILES_OK);
        check_thr(name, &tm, cJSON_GetObjectItem(e, "at_stored"));
        assert_int_equal(miles_metric_best_f1_threshold(s, y, n, &t, &f), MILES_OK);
        close_to(4, name, "best_f1_threshold", t, test_json_num(e, "best_f1_threshold"));
        close_to(4, name, "best_f1", f, test_json_num(e, "best_f1"));
        int64_t cnt[64];
        double ms[64], fp[64];
        assert_int_equal(miles_metric_calibration(s, y, n, n_bins, &v, cnt, ms, fp), MILES_OK);
        close_to(5, name, "ece", v, test_json_num(e, "ece"));
        /* sklearn calibration_curve lists the non-empty bins only */
        int npt, npp, k = 0;
        double *pt = test_json_doubles(cJSON_GetObjectItem(e, "calib_prob_true"), &npt);
        double *pp = test_json_doubles(cJSON_GetObjectItem(e, "calib_prob_pred"), &npp);
        for (int b = 0; b < n_bins; b++) {
            if (!cnt[b]) continue;
            assert_true(k < npt);
            close_to(5, name, "calibration fraction positive", fp[b], pt[k]);
            close_to(5, name, "calibration mean score", ms[b], pp[k]);
            k++;
        }
        assert_int_equal(k, npt);
        free(pt); free(pp);
        int nb;
        double *ec = test_json_doubles(cJSON_GetObjectItem(e, "ece_bin_counts"), &nb);
        assert_int_equal(nb, n_bins);
        for (int b = 0; b < nb; b++) assert_int_equal(cnt[b], (int64_t)ec[b]);
        free(ec);
        assert_int_equal(miles_metric_brier(s, y, n, &v), MILES_OK);
        close_to(6, name, "brier", v, test_json_num(e, "brier"));
        MilesCurve c;
        assert_int_equal(miles_metric_roc_curve(s, y, n, &c), MILES_OK);
        assert_true(isinf(c.thresholds[0]));
        check_curve(8, name, &c, e, "roc_fpr", "roc_tpr", "roc_thresholds", 1);
        miles_curve_free(&c);
        assert_int_equal(miles_metric_pr_curve(s, y, n, &c), MILES_OK);
        check_curve(9, name, &c, e, "pr_recall", "pr_precision", "pr_thresholds", 0);
        miles_curve_free(&c);

        /* the aggregate gives the same numbers */
        MilesMetricsOptions opt;
        miles_metrics_options_default(&opt);
        opt.stored_threshold = stored;
        opt.n_bootstrap = 50;
        double *vp = NULL, *vt = NULL;
        if (cJSON_GetObjectItem(cs, "vel_pred")) {
            vp = test_json_doubles(cJSON_GetObjectItem(cs, "vel_pred"), &n2);
            vt = test_json_doubles(cJSON_GetObjectItem(cs, "vel_true"), &n2);
            MilesRegressionMetrics rm;
            assert_int_equal(miles_metric_regression(vp, vt, n, &rm), MILES_OK);
            close_to(7, name, "mae", rm.mae, test_json_num(e, "mae"));
            close_to(7, name, "mse", rm.mse, test_json_num(e, "mse"));
            close_to(7, name, "rmse", rm.rmse, test_json_num(e, "rmse"));
            close_to(7, name, "r2", rm.r2, test_json_num(e, "r2"));
        }
        MilesMetrics m;
        assert_int_equal(miles_metrics_compute(&m, s, y, n, vp, vt, &opt), MILES_OK);
        assert_int_equal(m.reason[0], 0);
        close_to(0, name, "metrics.auroc", m.auroc, test_json_num(e, "auroc"));
        close_to(1, name, "metrics.ap", m.average_precision, test_json_num(e, "average_precision"));
        close_to(2, name, "metrics.p@r", m.precision_at_recall, test_json_num(e, "precision_at_10pct_recall"));
        close_to(4, name, "metrics.best_f1_threshold", m.best_f1_threshold, test_json_num(e, "best_f1_threshold"));
        close_to(5, name, "metrics.ece", m.ece, test_json_num(e, "ece"));
        close_to(6, name, "metrics.brier", m.brier, test_json_num(e, "brier"));
        check_thr(name, &m.at_half, cJSON_GetObjectItem(e, "at_0.5"));
        check_thr(name, &m.at_stored, cJSON_GetObjectItem(e, "at_stored"));
        if (vp) close_to(7, name, "metrics.r2", m.velocity.r2, test_json_num(e, "r2"));
        /* log loss, plain and class-weighted (the trainer's validation loss);
         * null where sklearn's clip of p decides it (see the generator) */
        const cJSON *ll = cJSON_GetObjectItem(e, "log_loss");
        assert_non_null(ll);
        if (!cJSON_IsNull(ll)) {
            close_to(10, name, "metrics.log_loss", m.log_loss, ll->valuedouble);
            const cJSON *cw = cJSON_GetObjectItem(g_fix, "class_weight");
            opt.class_weight[0] = cJSON_GetArrayItem(cw, 0)->valuedouble;
            opt.class_weight[1] = cJSON_GetArrayItem(cw, 1)->valuedouble;
            MilesMetrics mw;
            assert_int_equal(miles_metrics_compute(&mw, s, y, n, vp, vt, &opt), MILES_OK);
            close_to(10, name, "metrics.log_loss (class-weighted)", mw.log_loss, test_json_num(e, "log_loss_weighted"));
            n_ll++;
        }
        assert_true(m.valid & MILES_M_AUROC);
        assert_int_equal(!!(m.valid & MILES_M_VELOCITY), vp != NULL);
        free(vp); free(vt); free(s); free(y);
        ncases++;
    }
    assert_true(ncases >= 10);
    assert_true(n_ll >= 8);
    printf("golden: %d cases vs scikit-learn %s (log loss: %d), tolerance %.0e; max abs errors:\n", ncases,
           cJSON_GetObjectItem(g_fix, "sklearn_version")->valuestring, n_ll, TOL);
    for (int i = 0; i < 11; i++) printf("  %-22s %.3g\n", g_errname[i], g_maxerr[i]);
}

/* A probability of exactly 0 for the true class costs -log(1e-30) (miles.h),
 * weighted by its class: the cases the sklearn fixture leaves out. */
static void test_log_loss_clip(void **state) {
    (void)state;
    const double s[3] = {0.0, 0.0, 0.25};
    const int32_t y[3] = {1, 0, 0};
    MilesMetricsOptions opt;
    miles_metrics_options_default(&opt);
    opt.n_bootstrap = 0;
    MilesMetrics m;
    assert_int_equal(miles_metrics_compute(&m, s, y, 3, NULL, NULL, &opt), MILES_OK);
    const double want = (-log(1e-30) - log(0.75)) / 3;
    opt.class_weight[1] = 3;
    MilesMetrics mw;
    assert_int_equal(miles_metrics_compute(&mw, s, y, 3, NULL, NULL, &opt), MILES_OK);
    const double want_w = (3 * -log(1e-30) - log(0.75)) / 5;
    printf("log loss at p = 0: %.15g (want %.15g), class-weighted %.15g (want %.15g)\n", m.log_loss, want,
           mw.log_loss, want_w);
    assert_true(fabs(m.log_loss - want) < 1e-12 && fabs(mw.log_loss - want_w) < 1e-12);
}

/* The original code took the first PR-curve point with recall >= 0.1, which is
 * the recall-1 point, so it returned the prevalence.  Ours must not. */
static void test_precision_at_recall_not_prevalence(void **state) {
    (void)state;
    const cJSON *cs = cJSON_GetArrayItem(cJSON_GetObjectItem(g_fix, "cases"), 0);
    int n, n2;
    double *s = test_json_doubles(cJSON_GetObjectItem(cs, "scores"), &n);
    int32_t *y = test_json_ints(cJSON_GetObjectItem(cs, "labels"), &n2);
    MilesCurve c;
    assert_int_equal(miles_metric_pr_curve(s, y, n, &c), MILES_OK);
    int first = -1;
    for (int i = 0; i < c.n; i++) if (c.x[i] >= 0.1) { first = i; break; }
    double prev = 0;
    for (int i = 0; i < n; i++) prev += y[i];
    prev /= n;
    assert_true(fabs(c.y[first] - prev) < 1e-15);   /* the bug's value */
    double p;
    assert_int_equal(miles_metric_precision_at_recall(s, y, n, 0.1, &p, NULL), MILES_OK);
    printf("precision@10%%recall %.4f vs the original's (prevalence) %.4f\n", p, prev);
    assert_true(p > prev + 0.1);
    miles_curve_free(&c);
    free(s); free(y);
}

static void test_bad_input(void **state) {
    (void)state;
    double s[4] = {0.1, 0.4, 0.35, 0.8};
    int32_t one[4] = {1, 1, 1, 1}, zero[4] = {0, 0, 0, 0}, bad[4] = {0, 2, 1, 0};
    double v, t;
    assert_int_equal(miles_metric_auroc(s, one, 4, &v), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "single class"));
    printf("single-class message: %s\n", miles_last_error());
    assert_int_equal(miles_metric_average_precision(s, zero, 4, &v), MILES_EINVAL);
    assert_int_equal(miles_metric_precision_at_recall(s, zero, 4, 0.1, &v, &t), MILES_EINVAL);
    assert_int_equal(miles_metric_best_f1_threshold(s, one, 4, &v, &t), MILES_EINVAL);
    MilesCurve c;
    assert_int_equal(miles_metric_roc_curve(s, one, 4, &c), MILES_EINVAL);
    assert_int_equal(miles_metric_auroc(s, one, 0, &v), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "empty"));
    assert_int_equal(miles_metric_auroc(s, bad, 4, &v), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "label[1]"));
    double sn[4] = {0.1, NAN, 0.3, 0.4};
    int32_t y[4] = {0, 1, 0, 1};
    assert_int_equal(miles_metric_auroc(sn, y, 4, &v), MILES_ENAN);
    double so[4] = {0.1, 1.5, 0.3, 0.4};
    assert_int_equal(miles_metric_calibration(so, y, 4, 15, &v, NULL, NULL, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "score[1]"));
    double s0[4] = {-0.25, 0.2, 0.3, 0.4}; /* the first score is checked too */
    assert_int_equal(miles_metric_calibration(s0, y, 4, 15, &v, NULL, NULL, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "score[0]"));
    MilesRegressionMetrics rm;
    double vp[2] = {1, INFINITY}, vt[2] = {1, 2};
    assert_int_equal(miles_metric_regression(vp, vt, 2, &rm), MILES_ENAN);
    assert_int_equal(miles_metric_regression(vp, vt, 0, &rm), MILES_EINVAL);
    /* a constant target: R^2 is 1 for an exact prediction, else 0 (r2_score,
     * force_finite=True) */
    double kt[3] = {2, 2, 2}, kp[3] = {2, 2, 2.5};
    assert_int_equal(miles_metric_regression(kt, kt, 3, &rm), MILES_OK);
    assert_true(rm.r2 == 1.0 && rm.mae == 0.0);
    assert_int_equal(miles_metric_regression(kp, kt, 3, &rm), MILES_OK);
    assert_true(rm.r2 == 0.0);

    /* the aggregate: single class -> EINVAL, defined parts filled, JSON has nulls */
    MilesMetrics m;
    MilesMetricsOptions opt;
    miles_metrics_options_default(&opt);
    opt.n_bootstrap = 20;
    assert_int_equal(miles_metrics_compute(&m, s, zero, 4, NULL, NULL, &opt), MILES_EINVAL);
    assert_false(m.valid & MILES_M_AUROC);
    assert_true(m.valid & MILES_M_THRESHOLD);
    assert_true(m.valid & MILES_M_CALIBRATION);
    assert_int_equal(m.at_half.fp, 1);
    assert_true(strlen(m.reason) > 10);
    char *js = miles_metrics_to_json_string(&m);
    assert_non_null(js);
    cJSON *o = cJSON_Parse(js);
    assert_non_null(o);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "auroc")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "undefined_reason")));
    assert_null(strstr(js, "nan"));
    assert_null(strstr(js, "NaN"));
    cJSON_Delete(o);
    free(js);
    FILE *fp = tmpfile();
    assert_int_equal(miles_metrics_print(&m, fp, "single class"), MILES_OK);
    rewind(fp);
    char buf[4096];
    size_t k = fread(buf, 1, sizeof buf - 1, fp);
    buf[k] = 0;
    fclose(fp);
    assert_non_null(strstr(buf, "n/a"));
    assert_null(strstr(buf, "nan"));
    assert_int_equal(miles_metrics_compute(&m, s, y, 0, NULL, NULL, &opt), MILES_EINVAL);

    /* argument checks, each naming what is wrong */
    assert_int_equal(miles_metrics_compute(&m, so, y, 4, NULL, NULL, &opt), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "score[1] = 1.5 is not a probability"));
    assert_int_equal(miles_metrics_compute(&m, s, y, 4, vp, NULL, &opt), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "give both velocity arrays or neither"));
    MilesMetricsOptions bad_opt = opt;
    bad_opt.class_weight[1] = -1;
    assert_int_equal(miles_metrics_compute(&m, s, y, 4, NULL, NULL, &bad_opt), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "class weights 1, -1 must be finite and >= 0"));
    bad_opt = opt;
    bad_opt.alpha = 1.5;
    assert_int_equal(miles_metrics_compute(&m, s, y, 4, NULL, NULL, &bad_opt), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "alpha = 1.5 not in (0,1)"));
    assert_int_equal(miles_metric_precision_at_recall(s, y, 4, 1.5, &v, &t), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "min_recall 1.5 not in [0,1]"));
    assert_int_equal(miles_metric_calibration(s, y, 4, 0, &v, NULL, NULL, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "calibration: n_bins = 0"));
}

static void test_bootstrap(void **state) {
    (void)state;
    const cJSON *cs = cJSON_GetArrayItem(cJSON_GetObjectItem(g_fix, "cases"), 0);
    int n, n2;
    double *s = test_json_doubles(cJSON_GetObjectItem(cs, "scores"), &n);
    int32_t *y = test_json_ints(cJSON_GetObjectItem(cs, "labels"), &n2);
    double *vp = test_json_doubles(cJSON_GetObjectItem(cs, "vel_pred"), &n2);
    double *vt = test_json_doubles(cJSON_GetObjectItem(cs, "vel_true"), &n2);
    double a, lo1, hi1, lo2, hi2, lo3, hi3;
    int used;
    assert_int_equal(miles_metric_auroc(s, y, n, &a), MILES_OK);
    assert_int_equal(miles_bootstrap_auroc(s, y, n, 1000, 7, 0.05, &lo1, &hi1, &used), MILES_OK);
    assert_int_equal(used, 1000);
    assert_int_equal(miles_bootstrap_auroc(s, y, n, 1000, 7, 0.05, &lo2, &hi2, NULL), MILES_OK);
    assert_true(lo1 == lo2 && hi1 == hi2);  /* same seed, same interval, bit for bit */
    assert_int_equal(miles_bootstrap_auroc(s, y, n, 1000, 8, 0.05, &lo3, &hi3, NULL), MILES_OK);
    assert_true(lo3 != lo1 || hi3 != hi1);
    assert_true(lo1 < a && a < hi1);
    /* a 95% interval of AUROC with n = 1000 (200 positives): width about 4 * sqrt(var);
     * the Hanley-McNeil standard error is ~0.02 here, so the width is in (0.03, 0.15) */
    assert_true(hi1 - lo1 > 0.03 && hi1 - lo1 < 0.15);
    printf("AUROC %.4f, 95%% bootstrap [%.4f, %.4f] (seed 7), [%.4f, %.4f] (seed 8)\n", a, lo1,
           hi1, lo3, hi3);
    /* golden: the fixture script replays the same xoshiro256** index stream and
     * computes sklearn roc_auc_score / mean_absolute_error per resample and
     * numpy.percentile of them */
    const cJSON *bs = cJSON_GetObjectItem(cJSON_GetObjectItem(cs, "expected"), "bootstrap");
    assert_non_null(bs);
    assert_int_equal((int)test_json_num(bs, "seed"), 7);
    int nci;
    double *ci = test_json_doubles(cJSON_GetObjectItem(bs, "auroc_ci"), &nci);
    printf("bootstrap AUROC interval vs sklearn+numpy replay: errors %.3g, %.3g\n", fabs(lo1 - ci[0]),
           fabs(hi1 - ci[1]));
    assert_true(fabs(lo1 - ci[0]) <= TOL && fabs(hi1 - ci[1]) <= TOL);
    assert_int_equal(used, (int)test_json_num(bs, "auroc_used"));
    free(ci);
    /* the average precision's interval, on the same resamples (sklearn average_precision_score per resample) */
    double alo, ahi, ap, rlo, rhi;
    int used2;
    assert_int_equal(miles_metric_average_precision(s, y, n, &ap), MILES_OK);
    assert_int_equal(miles_bootstrap_ranking(s, y, n, 1000, 7, 0.05, &rlo, &rhi, &alo, &ahi, &used2), MILES_OK);
    assert_true(rlo == lo1 && rhi == hi1 && used2 == used);
    ci = test_json_doubles(cJSON_GetObjectItem(bs, "ap_ci"), &nci);
    printf("AP %.4f, bootstrap interval [%.4f, %.4f] vs sklearn+numpy replay: errors %.3g, %.3g\n", ap, alo, ahi,
           fabs(alo - ci[0]), fabs(ahi - ci[1]));
    assert_true(fabs(alo - ci[0]) <= TOL && fabs(ahi - ci[1]) <= TOL);
    assert_true(alo < ap && ap < ahi);
    free(ci);
    MilesRegressionMetrics rm;
    assert_int_equal(miles_metric_regression(vp, vt, n, &rm), MILES_OK);
    assert_int_equal(miles_bootstrap_mae(vp, vt, n, 1000, 7, 0.05, &lo1, &hi1), MILES_OK);
    assert_int_equal(miles_bootstrap_mae(vp, vt, n, 1000, 7, 0.05, &lo2, &hi2), MILES_OK);
    assert_true(lo1 == lo2 && hi1 == hi2);
    assert_true(lo1 < rm.mae && rm.mae < hi1);
    printf("MAE %.5f, 95%% bootstrap [%.5f, %.5f]\n", rm.mae, lo1, hi1);
    ci = test_json_doubles(cJSON_GetObjectItem(bs, "mae_ci"), &nci);
    printf("bootstrap MAE interval vs numpy replay: errors %.3g, %.3g\n", fabs(lo1 - ci[0]),
           fabs(hi1 - ci[1]));
    assert_true(fabs(lo1 - ci[0]) <= TOL && fabs(hi1 - ci[1]) <= TOL);
    free(ci);
    /* a resample that cannot have both classes: n = 2 works, but most resamples
     * are single-class; they are skipped and counted */
    double s2[2] = {0.2, 0.8};
    int32_t y2[2] = {0, 1};
    assert_int_equal(miles_bootstrap_auroc(s2, y2, 2, 1000, 1, 0.05, &lo1, &hi1, &used), MILES_OK);
    assert_true(used > 350 && used < 650);
    assert_true(lo1 == 1.0 && hi1 == 1.0);
    free(s); free(y); free(vp); free(vt);
}

static void test_json_roundtrip(void **state) {
    (void)state;
    const cJSON *cs = cJSON_GetArrayItem(cJSON_GetObjectItem(g_fix, "cases"), 0);
    int n, n2;
    double *s = test_json_doubles(cJSON_GetObjectItem(cs, "scores"), &n);
    int32_t *y = test_json_ints(cJSON_GetObjectItem(cs, "labels"), &n2);
    double *vp = test_json_doubles(cJSON_GetObjectItem(cs, "vel_pred"), &n2);
    double *vt = test_json_doubles(cJSON_GetObjectItem(cs, "vel_true"), &n2);
    MilesMetrics m;
    assert_int_equal(miles_metrics_compute(&m, s, y, n, vp, vt, NULL), MILES_OK);
    char *js = miles_metrics_to_json_string(&m);
    cJSON *o = cJSON_Parse(js);
    assert_non_null(o);
    /* to the last bit (cJSON alone prints 15 digits where they read back within an epsilon) */
    assert_true(cJSON_GetObjectItem(o, "auroc")->valuedouble == m.auroc);
    assert_true(cJSON_GetObjectItem(o, "prevalence")->valuedouble == m.prevalence);
    assert_true(cJSON_GetObjectItem(o, "ece")->valuedouble == m.ece);
    cJSON *vel = cJSON_GetObjectItem(o, "velocity");
    assert_true(cJSON_GetObjectItem(vel, "r2")->valuedouble == m.velocity.r2);
    cJSON *bs = cJSON_GetObjectItem(o, "bootstrap");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(bs, "auroc")), 2);
    assert_int_equal(cJSON_GetObjectItem(bs, "resamples")->valueint, 1000);
    /* the PR-AUC interval: the one miles_bootstrap_ranking gives on the same stream (seed 42), around the AP */
    double alo, ahi, rlo, rhi;
    assert_int_equal(miles_bootstrap_ranking(s, y, n, 1000, 42, 0.05, &rlo, &rhi, &alo, &ahi, NULL), MILES_OK);
    const cJSON *apj = cJSON_GetObjectItem(bs, "average_precision");
    assert_int_equal(cJSON_GetArraySize(apj), 2);
    assert_true(m.ap_lo == alo && m.ap_hi == ahi && m.auroc_lo == rlo && m.auroc_hi == rhi);
    assert_true(cJSON_GetArrayItem(apj, 0)->valuedouble == alo && cJSON_GetArrayItem(apj, 1)->valuedouble == ahi);
    assert_true(alo < m.average_precision && m.average_precision < ahi);
    assert_null(cJSON_GetObjectItem(o, "undefined_reason"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "at_stored_threshold")));
    cJSON_Delete(o);
    free(js);
    assert_int_equal(miles_metrics_print(&m, stdout, "random_n1000 (fixture case 0)"), MILES_OK);
    free(s); free(y); free(vp); free(vt);
}

/* miles_velocity_report vs sklearn/scipy/numpy (tests/gen_velocity_metrics_fixture.py):
 * target-space and views/day MAE/RMSE/R^2, Spearman rho (with ties), the
 * constant-median reference and the bootstrap intervals (xoshiro replay). */
static void test_velocity_report(void **state) {
    (void)state;
    cJSON *f = test_read_json("tests/fixtures/velocity_metrics.json");
    assert_non_null(f);
    int n, k;
    double *p = test_json_doubles(cJSON_GetObjectItem(f, "pred"), &n);
    double *t = test_json_doubles(cJSON_GetObjectItem(f, "target"), &k);
    double *pr = test_json_doubles(cJSON_GetObjectItem(f, "pred_raw"), &k);
    double *tr = test_json_doubles(cJSON_GetObjectItem(f, "target_raw"), &k);
#define FX(obj, key) cJSON_GetObjectItem(cJSON_GetObjectItem(f, obj), key)->valuedouble
    MilesMetricsOptions mo;
    miles_metrics_options_default(&mo);
    mo.n_bootstrap = cJSON_GetObjectItem(f, "n_boot")->valueint;
    mo.seed = (uint64_t)cJSON_GetObjectItem(f, "seed")->valuedouble;
    MilesVelocityReport r;
    assert_int_equal(miles_velocity_report(&r, p, t, pr, tr, n, cJSON_GetObjectItem(f, "median_target")->valuedouble,
                                           cJSON_GetObjectItem(f, "median_raw")->valuedouble, &mo), MILES_OK);
    /* relative errors: the views/day values are ~1e3..1e6 */
    double e = 0;
#define REL(a, b) e = test_max_err(e, fabs((a) - (b)) / fmax(1.0, fabs(b)))
    REL(r.target.mae, FX("target_metrics", "mae")); REL(r.target.rmse, FX("target_metrics", "rmse"));
    REL(r.target.r2, FX("target_metrics", "r2")); REL(r.raw.mae, FX("raw_metrics", "mae"));
    REL(r.raw.rmse, FX("raw_metrics", "rmse")); REL(r.raw.r2, FX("raw_metrics", "r2"));
    REL(r.spearman, cJSON_GetObjectItem(f, "spearman")->valuedouble);
    REL(r.median_ref_target.mae, FX("median_ref_target", "mae")); REL(r.median_ref_target.r2, FX("median_ref_target", "r2"));
    REL(r.median_ref_raw.mae, FX("median_ref_raw", "mae")); REL(r.median_ref_raw.r2, FX("median_ref_raw", "r2"));
    double eci = 0;
    const cJSON *ci = cJSON_GetObjectItem(f, "ci");
    const char *names[6] = {"mae", "rmse", "r2", "rho", "raw_mae", "raw_r2"};
    double *mine[6] = {r.target_mae_ci, r.target_rmse_ci, r.target_r2_ci, r.spearman_ci, r.raw_mae_ci, r.raw_r2_ci};
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 2; j++) {
            double want = cJSON_GetArrayItem(cJSON_GetObjectItem(ci, names[i]), j)->valuedouble;
            eci = test_max_err(eci, fabs(mine[i][j] - want) / fmax(1.0, fabs(want)));
        }
    printf("velocity report vs sklearn/scipy: max rel err %.2e (metrics), %.2e (bootstrap intervals); "
           "R2 %.4f [%.4f, %.4f], rho %.4f, median-constant R2 %.4f\n", e, eci, r.target.r2, r.target_r2_ci[0],
           r.target_r2_ci[1], r.spearman, r.median_ref_target.r2);
    assert_true(e < 1e-9);
    assert_true(eci < 1e-9);
    /* NaN medians: the evaluated targets' numpy.median */
    mo.n_bootstrap = 0;
    assert_int_equal(miles_velocity_report(&r, p, t, NULL, NULL, n, NAN, NAN, &mo), MILES_OK);
    assert_true(fabs(r.median_target - cJSON_GetObjectItem(f, "median_of_target")->valuedouble) < 1e-12);
    assert_true(isnan(r.target_r2_ci[0]) && !r.has_raw);
    /* one views/day array alone is refused, not dropped */
    assert_int_equal(miles_velocity_report(&r, p, t, pr, NULL, n, NAN, NAN, &mo), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "give both views/day arrays"));
    assert_int_equal(miles_velocity_report(&r, p, t, NULL, tr, n, NAN, NAN, &mo), MILES_EINVAL);
    /* numpy.median: odd, even, one value, unsorted with ties; NaN when empty */
    const double v5[5] = {3, -1, 7, 3, 2}, v4[4] = {10, -2, 4, 4.5}, v1[1] = {-6.25};
    assert_true(miles_median(v5, 5) == 3.0);
    assert_true(miles_median(v4, 4) == 4.25);
    assert_true(miles_median(v4, 2) == 4.0);
    assert_true(miles_median(v1, 1) == -6.25);
    assert_true(isnan(miles_median(v1, 0)) && isnan(miles_median(NULL, 3)));
#undef FX
#undef REL
    free(p); free(t); free(pr); free(tr);
    cJSON_Delete(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_precision_at_recall_not_prevalence),
        cmocka_unit_test(test_log_loss_clip),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_velocity_report),
        cmocka_unit_test(test_json_roundtrip),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
