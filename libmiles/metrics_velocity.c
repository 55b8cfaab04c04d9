/*
 * metrics_velocity.c — what miles-eval reports about the velocity head:
 * MAE/RMSE/R^2 in the model's target space and in views/day, Spearman rho,
 * the constant-median reference (a predictor that always says the training
 * median), and percentile-bootstrap intervals on the same resamples
 * (miles_bootstrap_columns: the index stream of the other intervals).
 */
#include "metrics_internal.h"
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double reg_stat(const double *const *c, int n, int which, int off) {
    MilesRegressionMetrics rm;
    if (miles_metric_regression(c[off], c[off + 1], n, &rm) != MILES_OK) return NAN;
    return which == 0 ? rm.mae : which == 1 ? rm.rmse : rm.r2;
}
static double st_mae(const double *const *c, int n) { return reg_stat(c, n, 0, 0); }
static double st_rmse(const double *const *c, int n) { return reg_stat(c, n, 1, 0); }
static double st_r2(const double *const *c, int n) { return reg_stat(c, n, 2, 0); }
static double st_rho(const double *const *c, int n) { return miles_spearman(c[0], c[1], n); }
static double st_raw_mae(const double *const *c, int n) { return reg_stat(c, n, 0, 2); }
static double st_raw_r2(const double *const *c, int n) { return reg_stat(c, n, 2, 2); }

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double miles_median(const double *v, int n) {
    if (!v || n < 1) return NAN;
    double *t = malloc(sizeof(double) * (size_t)n);
    if (!t) return NAN;
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    double m = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]); /* numpy.median */
    free(t);
    return m;
}

static int constant_ref(const double *target, int n, double c, MilesRegressionMetrics *out) {
    double *k = malloc(sizeof(double) * (size_t)n);
    if (!k) return MILES_ENOMEM;
    for (int i = 0; i < n; i++) k[i] = c;
    int s = miles_metric_regression(k, target, n, out);
    free(k);
    return s;
}

int miles_velocity_report(MilesVelocityReport *r, const double *pred, const double *target, const double *pred_raw,
                          const double *target_raw, int n, double median_target, double median_raw,
                          const MilesMetricsOptions *opt) {
    if (!r) return miles_error(MILES_EINVAL, "miles_velocity_report: NULL report");
    memset(r, 0, sizeof *r);
    MilesMetricsOptions d;
    if (!opt) { miles_metrics_options_default(&d); opt = &d; }
    if (!pred || !target || n < 1) return miles_error(MILES_EINVAL, "velocity report: no predictions");
    if (!pred_raw != !target_raw) /* one alone would be dropped without a word */
        return miles_error(MILES_EINVAL,
                           "velocity report: give both views/day arrays (pred_raw, target_raw) or neither");
    r->n = n;
    r->has_raw = pred_raw && target_raw;
    MILES_TRY(miles_metric_regression(pred, target, n, &r->target));
    if (r->has_raw) MILES_TRY(miles_metric_regression(pred_raw, target_raw, n, &r->raw));
    r->spearman = miles_spearman(pred, target, n);
    r->median_target = isfinite(median_target) ? median_target : miles_median(target, n);
    MILES_TRY(constant_ref(target, n, r->median_target, &r->median_ref_target));
    if (r->has_raw) {
        r->median_raw = isfinite(median_raw) ? median_raw : miles_median(target_raw, n);
        MILES_TRY(constant_ref(target_raw, n, r->median_raw, &r->median_ref_raw));
    }
    r->n_bootstrap = opt->n_bootstrap;
    r->alpha = opt->alpha;
    r->seed = opt->seed;
    double *ci[6] = {r->target_mae_ci, r->target_rmse_ci, r->target_r2_ci, r->spearman_ci, r->raw_mae_ci,
                     r->raw_r2_ci};
    for (int k = 0; k < 6; k++) ci[k][0] = ci[k][1] = NAN;
    if (opt->n_bootstrap > 0) {
        const double *cols[4] = {pred, target, pred_raw, target_raw};
        MilesColumnStat fns[6] = {st_mae, st_rmse, st_r2, st_rho, st_raw_mae, st_raw_r2};
        double lo[6], hi[6];
        const int nstat = r->has_raw ? 6 : 4;
        MILES_TRY(miles_bootstrap_columns(cols, r->has_raw ? 4 : 2, n, opt->n_bootstrap, opt->seed, opt->alpha, fns,
                                          nstat, lo, hi, NULL));
        for (int k = 0; k < nstat; k++) { ci[k][0] = lo[k]; ci[k][1] = hi[k]; }
    }
    return MILES_OK;
}
