/*
 * metrics_compare.c — two scorers on the same rows: DeLong's test of the
 * AUROC difference and paired-bootstrap intervals of the AUROC, average
 * precision and MAE differences (miles.h, docs/metrics.md "Comparing two
 * models").
 *
 * DeLong's structural components, for m positives X and n negatives Y:
 *   V10(X_i) = (#{Y_j < X_i} + #{Y_j = X_i}/2) / n,
 *   V01(Y_j) = (#{X_i > Y_j} + #{X_i = Y_j}/2) / m,
 * AUROC = mean V10 = mean V01 (reported as miles_metric_auroc computes it), and for scorers a, b
 *   S = cov(V10 over positives) / m + cov(V01 over negatives) / n   (2x2).
 * Sun & Xu (2014) get every V10 and V01 from midranks: with T_Z the midrank
 * of a score among all rows, T_X among the positives, T_Y among the
 * negatives, V10(X_i) = (T_Z(X_i) - T_X(X_i)) / n and
 * V01(Y_j) = 1 - (T_Z(Y_j) - T_Y(Y_j)) / m: three sorts instead of m*n
 * comparisons.  tests/gen_compare_fixture.py computes the components by
 * those m*n comparisons.
 */
#include "metrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double v; int i; } Ranked;

static int cmp_ranked(const void *a, const void *b) {
    double x = ((const Ranked *)a)->v, y = ((const Ranked *)b)->v;
    return (x > y) - (x < y);
}

/* midranks (1-based, a tie's ranks averaged) of v[0..n) into r[0..n); w: n scratch */
static void midranks(const double *v, int n, double *r, Ranked *w) {
    for (int i = 0; i < n; i++) w[i] = (Ranked){v[i], i};
    qsort(w, (size_t)n, sizeof *w, cmp_ranked);
    for (int a = 0; a < n;) {
        int b = a + 1;
        while (b < n && w[b].v == w[a].v) b++;
        double mid = 0.5 * ((double)(a + 1) + (double)b);   /* ranks a+1 .. b */
        for (int k = a; k < b; k++) r[w[k].i] = mid;
        a = b;
    }
}

/* V10 [m] and V01 [nn] of one scorer; work: 3n doubles + n Ranked */
static void components(const double *s, const int32_t *y, int n, int m, int nn, double *v10, double *v01,
                         double *work, Ranked *rw) {
    double *tz = work, *xs = work + n, *ys = xs + m, *tx = work + 2 * n, *ty = tx + m;
    for (int i = 0, p = 0, q = 0; i < n; i++) {
        if (y[i]) xs[p++] = s[i];
        else ys[q++] = s[i];
    }
    midranks(s, n, tz, rw);
    midranks(xs, m, tx, rw);
    midranks(ys, nn, ty, rw);
    for (int i = 0, p = 0, q = 0; i < n; i++) {
        if (y[i]) {
            v10[p] = (tz[i] - tx[p]) / nn;
            p++;
        } else {
            v01[q] = 1.0 - (tz[i] - ty[q]) / m;
            q++;
        }
    }
}

/* sample covariance (divisor k - 1) of u and w [k] */
static double cov(const double *u, const double *w, int k) {
    double mu = 0, mw = 0, c = 0;
    for (int i = 0; i < k; i++) { mu += u[i]; mw += w[i]; }
    mu /= k;
    mw /= k;
    for (int i = 0; i < k; i++) c += (u[i] - mu) * (w[i] - mw);
    return c / (k - 1);
}

/* the standard normal quantile: bisection on erfc, to the last bit of double */
static double norm_quantile(double p) {
    double lo = -40, hi = 40;
    for (int k = 0; k < 200; k++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* bootstrap statistics: columns (labels as 0/1 doubles, a, b) / (a, b, target) */
typedef int (*RankMetric)(const double *scores, const int32_t *labels, int n, double *out);

/* metric(a) - metric(b) on a resample; NaN for a one-class resample (skipped,
 * as the AUROC interval skips it) */
static double metric_diff(const double *const *c, int n, RankMetric metric) {
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    if (!y) return NAN;
    int64_t p = 0;
    for (int i = 0; i < n; i++) p += y[i] = c[0][i] != 0;
    double a = NAN, b = NAN;
    if (p > 0 && p < n && metric(c[1], y, n, &a) == MILES_OK && metric(c[2], y, n, &b) == MILES_OK) a -= b;
    else a = NAN;
    free(y);
    return a;
}
static double st_auroc_diff(const double *const *c, int n) { return metric_diff(c, n, miles_metric_auroc); }
static double st_ap_diff(const double *const *c, int n) { return metric_diff(c, n, miles_metric_average_precision); }

static double st_mae_diff(const double *const *c, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d += fabs(c[0][i] - c[2][i]) - fabs(c[1][i] - c[2][i]);
    return d / n;
}

static int get_options(const MilesMetricsOptions *opt, MilesMetricsOptions *d) {
    if (opt) *d = *opt;
    else miles_metrics_options_default(d);
    if (!(d->alpha > 0 && d->alpha < 1)) return miles_error(MILES_EINVAL, "compare: alpha = %g not in (0,1)", d->alpha);
    if (d->n_bootstrap < 0) return miles_error(MILES_EINVAL, "compare: n_bootstrap = %d", d->n_bootstrap);
    return MILES_OK;
}

int miles_compare_scores(const double *scores_a, const double *scores_b, const int32_t *labels, int n,
                        const MilesMetricsOptions *opt, MilesScoreComparison *out) {
    if (!out) return miles_error(MILES_EINVAL, "compare_scores: NULL result");
    memset(out, 0, sizeof *out);
    MilesMetricsOptions o;
    int64_t m;
    MILES_TRY(get_options(opt, &o));
    MILES_TRY(miles_metric_check_inputs("compare_scores: model A", scores_a, labels, n, &m));
    MILES_TRY(miles_metric_check_inputs("compare_scores: model B", scores_b, labels, n, NULL));
    int64_t nn = n - m;
    if (m < 2 || nn < 2)
        return miles_error(MILES_EINVAL, "compare_scores: DeLong's test needs 2 rows of each class (%lld positive, "
                           "%lld negative)", (long long)m, (long long)nn);
    double *v = miles_malloc(sizeof(double) * (size_t)n * 5);
    Ranked *rw = miles_malloc(sizeof(Ranked) * (size_t)n);
    if (!v || !rw) { free(v); free(rw); return MILES_ENOMEM; }
    /* v: V10_a [m] V01_a [nn] | V10_b [m] V01_b [nn] | 3n work */
    double *v10a = v, *v01a = v + m, *v10b = v + n, *v01b = v + n + m, *work = v + 2 * (size_t)n;
    out->n = n;
    out->n_pos = m;
    out->n_neg = nn;
    out->alpha = o.alpha;
    components(scores_a, labels, n, (int)m, (int)nn, v10a, v01a, work, rw);
    components(scores_b, labels, n, (int)m, (int)nn, v10b, v01b, work, rw);
    /* the AUROCs themselves exactly as every report has them (integer
     * trapezoids), not as the mean of V10 (equal up to rounding) */
    int s = miles_metric_auroc(scores_a, labels, n, &out->auroc_a);
    if (s == MILES_OK) s = miles_metric_auroc(scores_b, labels, n, &out->auroc_b);
    if (s == MILES_OK) s = miles_metric_average_precision(scores_a, labels, n, &out->ap_a);
    if (s == MILES_OK) s = miles_metric_average_precision(scores_b, labels, n, &out->ap_b);
    if (s != MILES_OK) { free(v); free(rw); return s; }
    out->diff = out->auroc_a - out->auroc_b;
    out->ap_diff = out->ap_a - out->ap_b;
    out->var_a = cov(v10a, v10a, (int)m) / m + cov(v01a, v01a, (int)nn) / nn;
    out->var_b = cov(v10b, v10b, (int)m) / m + cov(v01b, v01b, (int)nn) / nn;
    out->cov = cov(v10a, v10b, (int)m) / m + cov(v01a, v01b, (int)nn) / nn;
    free(v);
    free(rw);
    double var = out->var_a + out->var_b - 2 * out->cov;
    out->se = var > 0 ? sqrt(var) : 0;   /* rounding can leave -1e-18 for identical scorers */
    if (out->se > 0) out->z = out->diff / out->se;
    else out->z = out->diff == 0 ? 0 : copysign(INFINITY, out->diff);
    out->p_value = erfc(fabs(out->z) / sqrt(2.0));
    double q = norm_quantile(1 - o.alpha / 2);
    out->ci_lo = out->diff - q * out->se;
    out->ci_hi = out->diff + q * out->se;
    out->boot_lo = out->boot_hi = out->ap_boot_lo = out->ap_boot_hi = NAN;
    if (o.n_bootstrap > 0) {
        double *y = miles_malloc(sizeof(double) * (size_t)n);
        if (!y) return MILES_ENOMEM;
        for (int i = 0; i < n; i++) y[i] = labels[i];
        const double *cols[3] = {y, scores_a, scores_b};
        const MilesColumnStat fns[2] = {st_auroc_diff, st_ap_diff};
        double lo[2], hi[2];
        int used[2];
        s = miles_bootstrap_columns(cols, 3, n, o.n_bootstrap, o.seed, o.alpha, fns, 2, lo, hi, used);
        free(y);
        MILES_TRY(s);
        out->boot_lo = lo[0];
        out->boot_hi = hi[0];
        out->boot_used = used[0];
        out->ap_boot_lo = lo[1];
        out->ap_boot_hi = hi[1];
    }
    return MILES_OK;
}

int miles_compare_mae(const double *pred_a, const double *pred_b, const double *target, int n,
                      const MilesMetricsOptions *opt, MilesMaeComparison *out) {
    if (!out) return miles_error(MILES_EINVAL, "compare_mae: NULL result");
    memset(out, 0, sizeof *out);
    MilesMetricsOptions o;
    MILES_TRY(get_options(opt, &o));
    if (!pred_a || !pred_b || !target || n < 1) return miles_error(MILES_EINVAL, "compare_mae: empty input (n = %d)", n);
    for (int i = 0; i < n; i++)
        if (!isfinite(pred_a[i]) || !isfinite(pred_b[i]) || !isfinite(target[i]))
            return miles_error(MILES_ENAN, "compare_mae: row %d is not finite (A %g, B %g, target %g)", i, pred_a[i],
                               pred_b[i], target[i]);
    const double *cols[3] = {pred_a, pred_b, target};
    double a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        a += fabs(pred_a[i] - target[i]);
        b += fabs(pred_b[i] - target[i]);
    }
    out->n = n;
    out->alpha = o.alpha;
    out->mae_a = a / n;
    out->mae_b = b / n;
    out->diff = out->mae_a - out->mae_b;
    out->boot_lo = out->boot_hi = NAN;
    if (o.n_bootstrap > 0) {
        MilesColumnStat fn = st_mae_diff;
        MILES_TRY(miles_bootstrap_columns(cols, 3, n, o.n_bootstrap, o.seed, o.alpha, &fn, 1, &out->boot_lo,
                                          &out->boot_hi, NULL));
    }
    return MILES_OK;
}
