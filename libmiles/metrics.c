/*
 * metrics.c — evaluation metrics with scikit-learn semantics.
 *
 * Every ranking metric is computed from one "binary classifier curve" (sklearn
 * _binary_clf_curve): scores sorted descending, and at each distinct score the
 * cumulative true/false positive counts.  Counts are integers, so AUROC is
 * computed exactly from them (trapezoid rule in integer arithmetic, which is
 * what "ties counted half" means) and the other metrics follow sklearn's
 * formulas on the same points.  Definitions: docs/metrics.md.
 */
#include "internal.h"
#include "metrics_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>

/* ---- input checks ------------------------------------------------------ */

static int check_inputs(const char *fn, const double *scores, const int32_t *labels, int n,
                        int64_t *n_pos) {
    if (n <= 0 || !scores || !labels)
        return miles_error(MILES_EINVAL, "%s: empty input (n = %d)", fn, n);
    int64_t p = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(scores[i]))
            return miles_error(MILES_ENAN, "%s: score[%d] is not finite (%g)", fn, i, scores[i]);
        if (labels[i] != 0 && labels[i] != 1)
            return miles_error(MILES_EINVAL, "%s: label[%d] = %d is not 0 or 1", fn, i,
                               (int)labels[i]);
        p += labels[i];
    }
    if (n_pos) *n_pos = p;
    return MILES_OK;
}

int miles_metric_check_inputs(const char *fn, const double *scores, const int32_t *labels, int n, int64_t *n_pos) {
    return check_inputs(fn, scores, labels, n, n_pos);
}

static int need_both_classes(const char *fn, int64_t n_pos, int n) {
    if (n_pos == 0 || n_pos == n)
        return miles_error(MILES_EINVAL,
                           "%s: undefined with a single class (%d examples, all %s)", fn, n,
                           n_pos == 0 ? "negative" : "positive");
    return MILES_OK;
}

/* ---- binary classifier curve ------------------------------------------ */

/* Points at the distinct scores, descending: thr[k], cumulative tps[k], fps[k]
 * of the examples with score >= thr[k].  k = 0..K-1; tps[K-1] = P, fps[K-1] = N. */
typedef struct ClfCurve {
    int K;
    double *thr;
    int64_t *tps, *fps;
} ClfCurve;

static void clf_curve_free(ClfCurve *c) {
    free(c->thr); free(c->tps); free(c->fps);
    memset(c, 0, sizeof *c);
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const double *scores = ctx;
    double x = scores[*(const int *)a], y = scores[*(const int *)b];
    if (x > y) return -1;
    if (x < y) return 1;
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Indices sorted by score descending (ties by index, for determinism). */
static int sort_desc(const double *scores, int n, int **order) {
    int *o = miles_malloc((size_t)n * sizeof *o);
    if (!o) return MILES_ENOMEM;
    for (int i = 0; i < n; i++) o[i] = i;
    if (miles_sort_r(o, (size_t)n, sizeof *o, cmp_desc, (void *)scores) != MILES_OK) { free(o); return MILES_ENOMEM; }
    *order = o;
    return MILES_OK;
}

/* Weighted variant: weight[i] = multiplicity of example i (bootstrap); NULL = 1. */
static int clf_curve_sorted(const double *scores, const int32_t *labels, const int *order, int n,
                            const int32_t *weight, ClfCurve *c) {
    memset(c, 0, sizeof *c);
    c->thr = miles_malloc((size_t)n * sizeof *c->thr);
    c->tps = miles_malloc((size_t)n * sizeof *c->tps);
    c->fps = miles_malloc((size_t)n * sizeof *c->fps);
    if (!c->thr || !c->tps || !c->fps) { clf_curve_free(c); return MILES_ENOMEM; }
    int64_t tp = 0, fp = 0;
    int K = 0;
    for (int j = 0; j < n; j++) {
        int i = order[j];
        int64_t w = weight ? weight[i] : 1;
        if (labels[i]) tp += w; else fp += w;
        /* close a group at the last example of each distinct score */
        if (j == n - 1 || scores[order[j + 1]] != scores[i]) {
            if (weight && K > 0 && c->tps[K - 1] == tp && c->fps[K - 1] == fp) continue;
            if (weight && tp == 0 && fp == 0) continue;
            c->thr[K] = scores[i]; c->tps[K] = tp; c->fps[K] = fp; K++;
        }
    }
    c->K = K;
    return MILES_OK;
}

static int clf_curve(const double *scores, const int32_t *labels, int n, ClfCurve *c) {
    int *order;
    MILES_TRY(sort_desc(scores, n, &order));
    int s = clf_curve_sorted(scores, labels, order, n, NULL, c);
    free(order);
    return s;
}

/* Exact AUROC from the curve: trapezoids between consecutive points, with the
 * doubled area accumulated in integers (tp_prev + tp) * (fp - fp_prev). */
static double curve_auroc(const ClfCurve *c) {
    int64_t P = c->tps[c->K - 1], N = c->fps[c->K - 1];
    /* 2*area <= 2*P*N; P*N < 2^62 for any int-sized n, use long double for the sum */
    long double twice = 0;
    int64_t tp0 = 0, fp0 = 0;
    for (int k = 0; k < c->K; k++) {
        twice += (long double)(c->tps[k] + tp0) * (long double)(c->fps[k] - fp0);
        tp0 = c->tps[k]; fp0 = c->fps[k];
    }
    return (double)(twice / (2.0L * (long double)P * (long double)N));
}

/* sklearn: AP = -sum(diff(recall) * precision[:-1]) over the reversed arrays,
 * i.e. sum over points from the lowest threshold of (r_k - r_{k-1}) * p_k. */
static double curve_ap(const ClfCurve *c) {
    double P = (double)c->tps[c->K - 1];
    double ap = 0;
    for (int k = c->K - 1; k >= 0; k--) {
        double r = c->tps[k] / P;
        double rprev = k > 0 ? c->tps[k - 1] / P : 0.0;
        double p = (double)c->tps[k] / (double)(c->tps[k] + c->fps[k]);
        ap += (r - rprev) * p;
    }
    return ap;
}

int miles_metric_auroc(const double *scores, const int32_t *labels, int n, double *auroc) {
    int64_t P;
    MILES_TRY(check_inputs("auroc", scores, labels, n, &P));
    MILES_TRY(need_both_classes("auroc", P, n));
    ClfCurve c;
    MILES_TRY(clf_curve(scores, labels, n, &c));
    *auroc = curve_auroc(&c);
    clf_curve_free(&c);
    return MILES_OK;
}

int miles_metric_average_precision(const double *scores, const int32_t *labels, int n,
                                   double *ap) {
    int64_t P;
    MILES_TRY(check_inputs("average_precision", scores, labels, n, &P));
    MILES_TRY(need_both_classes("average_precision", P, n));
    ClfCurve c;
    MILES_TRY(clf_curve(scores, labels, n, &c));
    *ap = curve_ap(&c);
    clf_curve_free(&c);
    return MILES_OK;
}

static void curve_p_at_r(const ClfCurve *c, double min_recall, double *prec, double *thr) {
    double P = (double)c->tps[c->K - 1];
    double best = -1, bthr = NAN;
    /* descending thresholds: the first point reaching the best precision has the
     * largest threshold */
    for (int k = 0; k < c->K; k++) {
        double r = c->tps[k] / P;
        if (r < min_recall) continue;
        double p = (double)c->tps[k] / (double)(c->tps[k] + c->fps[k]);
        if (p > best) { best = p; bthr = c->thr[k]; }
    }
    *prec = best; *thr = bthr;
}

int miles_metric_precision_at_recall(const double *scores, const int32_t *labels, int n,
                                     double min_recall, double *precision, double *threshold) {
    int64_t P;
    MILES_TRY(check_inputs("precision_at_recall", scores, labels, n, &P));
    MILES_TRY(need_both_classes("precision_at_recall", P, n));
    if (!(min_recall >= 0 && min_recall <= 1))
        return miles_error(MILES_EINVAL, "precision_at_recall: min_recall %g not in [0,1]",
                           min_recall);
    ClfCurve c;
    MILES_TRY(clf_curve(scores, labels, n, &c));
    double p, t;
    curve_p_at_r(&c, min_recall, &p, &t);
    clf_curve_free(&c);
    *precision = p;
    if (threshold) *threshold = t;
    return MILES_OK;
}

/* sklearn _precision_recall_fscore_support with zero_division=0 */
static void fill_rates(MilesThresholdMetrics *m) {
    int64_t n = m->tn + m->fp + m->fn + m->tp;
    m->accuracy = n ? (double)(m->tp + m->tn) / (double)n : 0.0;
    m->precision = (m->tp + m->fp) ? (double)m->tp / (double)(m->tp + m->fp) : 0.0;
    m->recall = (m->tp + m->fn) ? (double)m->tp / (double)(m->tp + m->fn) : 0.0;
    double d = m->precision + m->recall;
    m->f1 = d > 0 ? 2.0 * m->precision * m->recall / d : 0.0;
}

int miles_metric_at_threshold(const double *scores, const int32_t *labels, int n,
                              double threshold, MilesThresholdMetrics *out) {
    MILES_TRY(check_inputs("at_threshold", scores, labels, n, NULL));
    if (isnan(threshold)) return miles_error(MILES_EINVAL, "at_threshold: threshold is NaN");
    memset(out, 0, sizeof *out);
    out->threshold = threshold;
    for (int i = 0; i < n; i++) {
        int pred = scores[i] >= threshold;
        if (labels[i]) { if (pred) out->tp++; else out->fn++; }
        else { if (pred) out->fp++; else out->tn++; }
    }
    fill_rates(out);
    return MILES_OK;
}

static void curve_best_f1(const ClfCurve *c, double *thr, double *f1) {
    int64_t P = c->tps[c->K - 1], N = c->fps[c->K - 1];
    double best = -1, bt = NAN;
    for (int k = 0; k < c->K; k++) {   /* descending: strict > keeps the largest */
        MilesThresholdMetrics m = { .tp = c->tps[k], .fp = c->fps[k],
                                    .fn = P - c->tps[k], .tn = N - c->fps[k] };
        fill_rates(&m);
        if (m.f1 > best) { best = m.f1; bt = c->thr[k]; }
    }
    *thr = bt; *f1 = best;
}

int miles_metric_best_f1_threshold(const double *scores, const int32_t *labels, int n,
                                   double *threshold, double *f1) {
    int64_t P;
    MILES_TRY(check_inputs("best_f1_threshold", scores, labels, n, &P));
    MILES_TRY(need_both_classes("best_f1_threshold", P, n));
    ClfCurve c;
    MILES_TRY(clf_curve(scores, labels, n, &c));
    double t, f;
    curve_best_f1(&c, &t, &f);
    clf_curve_free(&c);
    *threshold = t;
    if (f1) *f1 = f;
    return MILES_OK;
}

int miles_metric_calibration(const double *scores, const int32_t *labels, int n, int n_bins,
                             double *ece, int64_t *bin_count, double *bin_mean_score,
                             double *bin_frac_pos) {
    MILES_TRY(check_inputs("calibration", scores, labels, n, NULL));
    if (n_bins < 1 || n_bins > 100000)
        return miles_error(MILES_EINVAL, "calibration: n_bins = %d", n_bins);
    for (int i = 0; i < n; i++)
        if (scores[i] < 0 || scores[i] > 1)
            return miles_error(MILES_EINVAL,
                               "calibration: score[%d] = %g is not a probability in [0,1]", i,
                               scores[i]);
    int64_t *cnt = miles_calloc((size_t)n_bins, sizeof *cnt);
    double *ssum = miles_calloc((size_t)n_bins, sizeof *ssum);
    double *ysum = miles_calloc((size_t)n_bins, sizeof *ysum);
    double *edge = miles_malloc((size_t)n_bins * sizeof *edge);
    if (!cnt || !ssum || !ysum || !edge) {
        free(cnt); free(ssum); free(ysum); free(edge);
        return MILES_ENOMEM;
    }
    /* numpy.linspace(0, 1, n_bins+1): edge k = k * (1/n_bins); the inner edges
     * are 1..n_bins-1.  Bin = number of inner edges < score (searchsorted left). */
    double step = 1.0 / n_bins;
    for (int k = 1; k < n_bins; k++) edge[k] = (double)k * step;
    for (int i = 0; i < n; i++) {
        double s = scores[i];
        int lo = 1, hi = n_bins; /* first inner edge index >= s, in [1, n_bins] */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (edge[mid] < s) lo = mid + 1; else hi = mid;
        }
        int b = lo - 1;
        cnt[b]++; ssum[b] += s; ysum[b] += labels[i];
    }
    double e = 0;
    for (int b = 0; b < n_bins; b++) {
        double ms = cnt[b] ? ssum[b] / cnt[b] : 0.0, fp = cnt[b] ? ysum[b] / cnt[b] : 0.0;
        if (cnt[b]) e += (double)cnt[b] / n * fabs(fp - ms);
        if (bin_count) bin_count[b] = cnt[b];
        if (bin_mean_score) bin_mean_score[b] = ms;
        if (bin_frac_pos) bin_frac_pos[b] = fp;
    }
    if (ece) *ece = e;
    free(cnt); free(ssum); free(ysum); free(edge);
    return MILES_OK;
}

int miles_metric_brier(const double *scores, const int32_t *labels, int n, double *brier) {
    MILES_TRY(check_inputs("brier", scores, labels, n, NULL));
    double s = 0;
    for (int i = 0; i < n; i++) {
        double d = labels[i] - scores[i];
        s += d * d;
    }
    *brier = s / n;
    return MILES_OK;
}

int miles_metric_regression(const double *pred, const double *target, int n,
                            MilesRegressionMetrics *out) {
    if (n <= 0 || !pred || !target)
        return miles_error(MILES_EINVAL, "regression metrics: empty input (n = %d)", n);
    double mean = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(pred[i]) || !isfinite(target[i]))
            return miles_error(MILES_ENAN, "regression metrics: %s[%d] is not finite",
                               isfinite(pred[i]) ? "target" : "pred", i);
        mean += target[i];
    }
    mean /= n;
    double ae = 0, se = 0, st = 0;
    for (int i = 0; i < n; i++) {
        double d = target[i] - pred[i];
        ae += fabs(d); se += d * d;
        st += (target[i] - mean) * (target[i] - mean);
    }
    out->mae = ae / n;
    out->mse = se / n;
    out->rmse = sqrt(out->mse);
    /* sklearn r2_score(force_finite=True) */
    if (st == 0) out->r2 = se == 0 ? 1.0 : 0.0;
    else out->r2 = 1.0 - se / st;
    return MILES_OK;
}

/* ---- curves ------------------------------------------------------------- */

void miles_curve_free(MilesCurve *c) {
    if (!c) return;
    free(c->x); free(c->y); free(c->thresholds);
    memset(c, 0, sizeof *c);
}

static int curve_alloc(MilesCurve *out, int n) {
    memset(out, 0, sizeof *out);
    out->x = miles_malloc((size_t)n * sizeof(double));
    out->y = miles_malloc((size_t)n * sizeof(double));
    out->thresholds = miles_malloc((size_t)n * sizeof(double));
    if (!out->x || !out->y || !out->thresholds) { miles_curve_free(out); return MILES_ENOMEM; }
    out->n = n;
    return MILES_OK;
}

int miles_metric_roc_curve(const double *scores, const int32_t *labels, int n, MilesCurve *out) {
    int64_t P;
    MILES_TRY(check_inputs("roc_curve", scores, labels, n, &P));
    MILES_TRY(need_both_classes("roc_curve", P, n));
    ClfCurve c;
    MILES_TRY(clf_curve(scores, labels, n, &c));
    int s = curve_alloc(out, c.K + 1);
    if (s == MILES_OK) {
        double Pd = (double)c.tps[c.K - 1], Nd = (double)c.fps[c.K - 1];
        out->x[0] = 0; out->y[0] = 0; out->thresholds[0] = INFINITY;
        for (int k = 0; k < c.K; k++) {
            out->x[k + 1] = c.fps[k] / Nd;
            out->y[k + 1] = c.tps[k] / Pd;
            out->thresholds[k + 1] = c.thr[k];
        }
    }
    clf_curve_free(&c);
    return s;
}

int miles_metric_pr_curve(const double *scores, const int32_t *labels, int n, MilesCurve *out) {
    int64_t P;
    MILES_TRY(check_inputs("pr_curve", scores, labels, n, &P));
    MILES_TRY(need_both_classes("pr_curve", P, n));
    ClfCurve c;
    MILES_TRY(clf_curve(scores, labels, n, &c));
    int s = curve_alloc(out, c.K + 1);
    if (s == MILES_OK) {
        double Pd = (double)c.tps[c.K - 1];
        /* reversed: point j = 0 is the lowest threshold (recall 1) */
        for (int j = 0; j < c.K; j++) {
            int k = c.K - 1 - j;
            out->x[j] = c.tps[k] / Pd;
            out->y[j] = (double)c.tps[k] / (double)(c.tps[k] + c.fps[k]);
            out->thresholds[j] = c.thr[k];
        }
        out->x[c.K] = 0; out->y[c.K] = 1; out->thresholds[c.K] = NAN; /* no threshold */
    }
    clf_curve_free(&c);
    return s;
}

/* ---- bootstrap -------------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: deterministic on every platform. */
typedef struct Rng { uint64_t s[4]; } Rng;
static void rng_seed(Rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = miles_splitmix64(&seed);
}
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rng_next(Rng *r) {
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}
/* uniform in [0, n): multiply-shift (bias <= n / 2^64) */
static inline int rng_below(Rng *r, int n) {
    return (int)(((unsigned __int128)rng_next(r) * (unsigned)n) >> 64);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile(v, q) with the default "linear" method (numpy's _lerp). */
static double percentile_sorted(const double *v, int m, double q) {
    double pos = q / 100.0 * (m - 1);
    int lo = (int)floor(pos);
    if (lo >= m - 1) return v[m - 1];
    double t = pos - lo, a = v[lo], b = v[lo + 1], d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

static int check_boot(const char *fn, int n_boot, double alpha) {
    if (n_boot < 1 || n_boot > 10000000)
        return miles_error(MILES_EINVAL, "%s: n_boot = %d", fn, n_boot);
    if (!(alpha > 0 && alpha < 1))
        return miles_error(MILES_EINVAL, "%s: alpha = %g not in (0,1)", fn, alpha);
    return MILES_OK;
}

int miles_bootstrap_auroc(const double *scores, const int32_t *labels, int n, int n_boot,
                          uint64_t seed, double alpha, double *lo, double *hi, int *n_used) {
    return miles_bootstrap_ranking(scores, labels, n, n_boot, seed, alpha, lo, hi, NULL, NULL, n_used);
}

int miles_bootstrap_ranking(const double *scores, const int32_t *labels, int n, int n_boot, uint64_t seed,
                            double alpha, double *lo, double *hi, double *ap_lo, double *ap_hi, int *n_used) {
    int64_t P;
    MILES_TRY(check_inputs("bootstrap_auroc", scores, labels, n, &P));
    MILES_TRY(need_both_classes("bootstrap_auroc", P, n));
    MILES_TRY(check_boot("bootstrap_auroc", n_boot, alpha));
    int *order = NULL;
    MILES_TRY(sort_desc(scores, n, &order));
    int32_t *w = miles_malloc((size_t)n * sizeof *w);
    double *stat = miles_malloc((size_t)n_boot * sizeof *stat), *ap = miles_malloc((size_t)n_boot * sizeof *ap);
    int s = (w && stat && ap) ? MILES_OK : MILES_ENOMEM;
    Rng rng;
    rng_seed(&rng, seed);
    int used = 0;
    /* A resample is a multiplicity per example; walking the presorted order with
     * those weights gives its curve in O(n). */
    for (int b = 0; b < n_boot && s == MILES_OK; b++) {
        memset(w, 0, (size_t)n * sizeof *w);
        for (int i = 0; i < n; i++) w[rng_below(&rng, n)]++;
        ClfCurve c;
        s = clf_curve_sorted(scores, labels, order, n, w, &c);
        if (s != MILES_OK) break;
        if (c.K > 0 && c.tps[c.K - 1] > 0 && c.fps[c.K - 1] > 0) {
            ap[used] = curve_ap(&c);   /* a weighted curve: the AP of the resample's duplicated rows */
            stat[used++] = curve_auroc(&c);
        }
        clf_curve_free(&c);
    }
    if (s == MILES_OK && used == 0)
        s = miles_error(MILES_EINVAL, "bootstrap_auroc: every resample had a single class");
    if (s == MILES_OK) {
        qsort(stat, (size_t)used, sizeof *stat, cmp_double);
        *lo = percentile_sorted(stat, used, 100.0 * alpha / 2);
        *hi = percentile_sorted(stat, used, 100.0 * (1 - alpha / 2));
        if (ap_lo && ap_hi) {
            qsort(ap, (size_t)used, sizeof *ap, cmp_double);
            *ap_lo = percentile_sorted(ap, used, 100.0 * alpha / 2);
            *ap_hi = percentile_sorted(ap, used, 100.0 * (1 - alpha / 2));
        }
        if (n_used) *n_used = used;
    }
    free(order); free(w); free(stat); free(ap);
    return s;
}

int miles_bootstrap_mae(const double *pred, const double *target, int n, int n_boot,
                        uint64_t seed, double alpha, double *lo, double *hi) {
    MilesRegressionMetrics rm;
    MILES_TRY(miles_metric_regression(pred, target, n, &rm));
    MILES_TRY(check_boot("bootstrap_mae", n_boot, alpha));
    double *stat = miles_malloc((size_t)n_boot * sizeof *stat);
    if (!stat) return MILES_ENOMEM;
    Rng rng;
    rng_seed(&rng, seed);
    for (int b = 0; b < n_boot; b++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            int j = rng_below(&rng, n);
            s += fabs(target[j] - pred[j]);
        }
        stat[b] = s / n;
    }
    qsort(stat, (size_t)n_boot, sizeof *stat, cmp_double);
    *lo = percentile_sorted(stat, n_boot, 100.0 * alpha / 2);
    *hi = percentile_sorted(stat, n_boot, 100.0 * (1 - alpha / 2));
    free(stat);
    return MILES_OK;
}

/* Any statistics of paired columns on the same resamples: the index stream
 * of miles_bootstrap_mae (one rng_below(n) per row), each resample's columns
 * gathered, every statistic evaluated on it; NaN statistics are left out of
 * that statistic's interval (n_used[k] counts the kept ones). */
int miles_bootstrap_columns(const double *const *cols, int ncols, int n, int n_boot, uint64_t seed, double alpha,
                            MilesColumnStat const *fns, int nstat, double *lo, double *hi, int *n_used) {
    if (!cols || ncols < 1 || ncols > 16 || n < 1 || !fns || nstat < 1)
        return miles_error(MILES_EINVAL, "bootstrap_columns: bad arguments (%d columns, n %d, %d statistics)", ncols,
                           n, nstat);
    MILES_TRY(check_boot("bootstrap_columns", n_boot, alpha));
    double *buf = miles_malloc(sizeof(double) * (size_t)n * (size_t)ncols);
    double *stat = miles_malloc(sizeof(double) * (size_t)n_boot * (size_t)nstat);
    int *cnt = miles_calloc((size_t)nstat, sizeof(int));
    if (!buf || !stat || !cnt) { free(buf); free(stat); free(cnt); return MILES_ENOMEM; }
    const double *rc[16];
    for (int c = 0; c < ncols; c++) rc[c] = buf + (size_t)c * n;
    Rng rng;
    rng_seed(&rng, seed);
    for (int b = 0; b < n_boot; b++) {
        for (int i = 0; i < n; i++) {
            int j = rng_below(&rng, n);
            for (int c = 0; c < ncols; c++) buf[(size_t)c * n + i] = cols[c][j];
        }
        for (int k = 0; k < nstat; k++) {
            double v = fns[k](rc, n);
            if (!isnan(v)) stat[(size_t)k * n_boot + cnt[k]++] = v;
        }
    }
    for (int k = 0; k < nstat; k++) {
        double *st = stat + (size_t)k * n_boot;
        if (cnt[k] == 0) { lo[k] = hi[k] = NAN; }
        else {
            qsort(st, (size_t)cnt[k], sizeof *st, cmp_double);
            lo[k] = percentile_sorted(st, cnt[k], 100.0 * alpha / 2);
            hi[k] = percentile_sorted(st, cnt[k], 100.0 * (1 - alpha / 2));
        }
        if (n_used) n_used[k] = cnt[k];
    }
    free(buf); free(stat); free(cnt);
    return MILES_OK;
}

/* ---- everything at once ----------------------------------------------- */

void miles_metrics_options_default(MilesMetricsOptions *opt) {
    memset(opt, 0, sizeof *opt);
    opt->stored_threshold = NAN;
    opt->n_bootstrap = 1000;
    opt->seed = 42;
    opt->alpha = 0.05;
    opt->min_recall = 0.10;
    opt->class_weight[0] = opt->class_weight[1] = 1.0;
}

/* Weighted log loss; the trainer's validation loss is w_cls * this + w_reg *
 * velocity MSE.  Sums run in index order. */
static int log_loss(const double *scores, const int32_t *labels, int n, const double w[2], double *out) {
    if (!(w[0] >= 0) || !(w[1] >= 0) || !isfinite(w[0]) || !isfinite(w[1]))
        return miles_error(MILES_EINVAL, "metrics: class weights %g, %g must be finite and >= 0", w[0], w[1]);
    double ll = 0, wsum = 0;
    for (int i = 0; i < n; i++) {
        double p = labels[i] ? scores[i] : 1.0 - scores[i];
        ll += w[labels[i]] * -log(p > 1e-30 ? p : 1e-30);
    }
    for (int i = 0; i < n; i++) wsum += w[labels[i]];
    *out = wsum > 0 ? ll / wsum : 0;
    return MILES_OK;
}

int miles_metrics_compute(MilesMetrics *m, const double *scores, const int32_t *labels, int n,
                          const double *vel_pred, const double *vel_true,
                          const MilesMetricsOptions *opt) {
    MilesMetricsOptions dflt;
    if (!opt) { miles_metrics_options_default(&dflt); opt = &dflt; }
    memset(m, 0, sizeof *m);
    int64_t P;
    MILES_TRY(check_inputs("metrics", scores, labels, n, &P));
    for (int i = 0; i < n; i++)
        if (scores[i] < 0 || scores[i] > 1)
            return miles_error(MILES_EINVAL, "metrics: score[%d] = %g is not a probability", i,
                               scores[i]);
    if ((vel_pred == NULL) != (vel_true == NULL))
        return miles_error(MILES_EINVAL, "metrics: give both velocity arrays or neither");
    m->n = n; m->n_pos = P; m->prevalence = (double)P / n;
    m->min_recall = opt->min_recall;
    m->n_bootstrap = opt->n_bootstrap; m->seed = opt->seed; m->alpha = opt->alpha;

    MILES_TRY(miles_metric_at_threshold(scores, labels, n, 0.5, &m->at_half));
    m->valid |= MILES_M_THRESHOLD;
    if (!isnan(opt->stored_threshold)) {
        MILES_TRY(miles_metric_at_threshold(scores, labels, n, opt->stored_threshold,
                                            &m->at_stored));
        m->valid |= MILES_M_STORED;
    }
    MILES_TRY(miles_metric_calibration(scores, labels, n, MILES_CALIB_BINS, &m->ece,
                                       m->calib_count, m->calib_mean_score, m->calib_frac_pos));
    MILES_TRY(miles_metric_brier(scores, labels, n, &m->brier));
    m->valid |= MILES_M_CALIBRATION;
    MILES_TRY(log_loss(scores, labels, n, opt->class_weight, &m->log_loss));
    m->valid |= MILES_M_LOG_LOSS;
    if (vel_pred) {
        MILES_TRY(miles_metric_regression(vel_pred, vel_true, n, &m->velocity));
        m->valid |= MILES_M_VELOCITY;
        if (opt->n_bootstrap > 0) {
            MILES_TRY(miles_bootstrap_mae(vel_pred, vel_true, n, opt->n_bootstrap, opt->seed,
                                          opt->alpha, &m->mae_lo, &m->mae_hi));
            m->valid |= MILES_M_BOOT_MAE;
        }
    }
    if (P == 0 || P == n) {
        snprintf(m->reason, sizeof m->reason,
                 "AUROC, average precision, precision@recall and the best-F1 threshold are "
                 "undefined: all %d labels are %s", n, P ? "positive" : "negative");
        return miles_error(MILES_EINVAL, "metrics: %s", m->reason);
    }
    ClfCurve c;
    MILES_TRY(clf_curve(scores, labels, n, &c));
    m->auroc = curve_auroc(&c);
    m->average_precision = curve_ap(&c);
    double t;
    curve_p_at_r(&c, opt->min_recall, &m->precision_at_recall, &t);
    curve_best_f1(&c, &m->best_f1_threshold, &m->best_f1);
    clf_curve_free(&c);
    m->valid |= MILES_M_AUROC | MILES_M_AP | MILES_M_P_AT_R10 | MILES_M_BEST_F1;
    if (opt->n_bootstrap > 0) {
        MILES_TRY(miles_bootstrap_ranking(scores, labels, n, opt->n_bootstrap, opt->seed, opt->alpha, &m->auroc_lo,
                                          &m->auroc_hi, &m->ap_lo, &m->ap_hi, &m->auroc_boot_used));
        m->valid |= MILES_M_BOOT_AUROC;
    }
    return MILES_OK;
}

/* ---- JSON and table --------------------------------------------------- */

static void add_num(cJSON *o, const char *k, double v, int ok) {
    if (ok && isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static cJSON *thr_json(const MilesThresholdMetrics *t) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "threshold", t->threshold);
    cJSON_AddNumberToObject(o, "accuracy", t->accuracy);
    cJSON_AddNumberToObject(o, "precision", t->precision);
    cJSON_AddNumberToObject(o, "recall", t->recall);
    cJSON_AddNumberToObject(o, "f1", t->f1);
    cJSON *cm = cJSON_AddObjectToObject(o, "confusion");
    if (cm) {
        cJSON_AddNumberToObject(cm, "tn", (double)t->tn);
        cJSON_AddNumberToObject(cm, "fp", (double)t->fp);
        cJSON_AddNumberToObject(cm, "fn", (double)t->fn);
        cJSON_AddNumberToObject(cm, "tp", (double)t->tp);
    }
    return o;
}

void *miles_metrics_to_json(const MilesMetrics *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) { miles_error(MILES_ENOMEM, "metrics_to_json: out of memory"); return NULL; }
    unsigned v = m->valid;
    cJSON_AddNumberToObject(o, "n", m->n);
    cJSON_AddNumberToObject(o, "n_positive", (double)m->n_pos);
    cJSON_AddNumberToObject(o, "prevalence", m->prevalence);
    add_num(o, "auroc", m->auroc, v & MILES_M_AUROC);
    add_num(o, "average_precision", m->average_precision, v & MILES_M_AP);
    add_num(o, "precision_at_recall", m->precision_at_recall, v & MILES_M_P_AT_R10);
    cJSON_AddNumberToObject(o, "precision_at_recall_min_recall", m->min_recall);
    if (v & MILES_M_THRESHOLD) cJSON_AddItemToObject(o, "at_0.5", thr_json(&m->at_half));
    else cJSON_AddNullToObject(o, "at_0.5");
    if (v & MILES_M_STORED) cJSON_AddItemToObject(o, "at_stored_threshold", thr_json(&m->at_stored));
    else cJSON_AddNullToObject(o, "at_stored_threshold");
    add_num(o, "best_f1_threshold", m->best_f1_threshold, v & MILES_M_BEST_F1);
    add_num(o, "best_f1", m->best_f1, v & MILES_M_BEST_F1);
    add_num(o, "ece", m->ece, v & MILES_M_CALIBRATION);
    cJSON_AddNumberToObject(o, "ece_bins", MILES_CALIB_BINS);
    add_num(o, "brier", m->brier, v & MILES_M_CALIBRATION);
    add_num(o, "log_loss", m->log_loss, v & MILES_M_LOG_LOSS);
    if (v & MILES_M_CALIBRATION) {
        cJSON *rel = cJSON_AddObjectToObject(o, "reliability");
        if (rel) {
            cJSON *c = cJSON_AddArrayToObject(rel, "count");
            cJSON *s = cJSON_AddArrayToObject(rel, "mean_score");
            cJSON *f = cJSON_AddArrayToObject(rel, "fraction_positive");
            for (int b = 0; b < MILES_CALIB_BINS && c && s && f; b++) {
                cJSON_AddItemToArray(c, cJSON_CreateNumber((double)m->calib_count[b]));
                cJSON_AddItemToArray(s, m->calib_count[b] ? cJSON_CreateNumber(m->calib_mean_score[b])
                                                          : cJSON_CreateNull());
                cJSON_AddItemToArray(f, m->calib_count[b] ? cJSON_CreateNumber(m->calib_frac_pos[b])
                                                          : cJSON_CreateNull());
            }
        }
    }
    if (v & MILES_M_VELOCITY) {
        cJSON *vel = cJSON_AddObjectToObject(o, "velocity");
        if (vel) {
            cJSON_AddNumberToObject(vel, "mae", m->velocity.mae);
            cJSON_AddNumberToObject(vel, "mse", m->velocity.mse);
            cJSON_AddNumberToObject(vel, "rmse", m->velocity.rmse);
            cJSON_AddNumberToObject(vel, "r2", m->velocity.r2);
        }
    } else cJSON_AddNullToObject(o, "velocity");
    cJSON *bs = cJSON_AddObjectToObject(o, "bootstrap");
    if (bs) {
        cJSON_AddNumberToObject(bs, "resamples", m->n_bootstrap);
        cJSON_AddNumberToObject(bs, "seed", (double)m->seed);
        cJSON_AddNumberToObject(bs, "confidence", 1 - m->alpha);
        if (v & MILES_M_BOOT_AUROC) {
            cJSON *a = cJSON_AddArrayToObject(bs, "auroc");
            cJSON_AddItemToArray(a, cJSON_CreateNumber(m->auroc_lo));
            cJSON_AddItemToArray(a, cJSON_CreateNumber(m->auroc_hi));
            cJSON_AddNumberToObject(bs, "auroc_resamples_used", m->auroc_boot_used);
            a = cJSON_AddArrayToObject(bs, "average_precision");   /* on the same resamples */
            cJSON_AddItemToArray(a, cJSON_CreateNumber(m->ap_lo));
            cJSON_AddItemToArray(a, cJSON_CreateNumber(m->ap_hi));
        } else {
            cJSON_AddNullToObject(bs, "auroc");
            cJSON_AddNullToObject(bs, "average_precision");
        }
        if (v & MILES_M_BOOT_MAE) {
            cJSON *a = cJSON_AddArrayToObject(bs, "velocity_mae");
            cJSON_AddItemToArray(a, cJSON_CreateNumber(m->mae_lo));
            cJSON_AddItemToArray(a, cJSON_CreateNumber(m->mae_hi));
        } else cJSON_AddNullToObject(bs, "velocity_mae");
    }
    if (m->reason[0]) cJSON_AddStringToObject(o, "undefined_reason", m->reason);
    return o;
}

/* Every number of the tree printed with the fewest of 15..17 digits that read
 * back as it (cJSON prints 15 whenever they read back within an epsilon,
 * losing the last bit): a report's AUROC parses to the computed double. */
static void exact_numbers(cJSON *o) {
    for (cJSON *x = o ? o->child : NULL; x; x = x->next) {
        if (cJSON_IsNumber(x) && isfinite(x->valuedouble)) {
            char b[40];
            for (int d = 15; d <= 17; d++) {
                snprintf(b, sizeof b, "%.*g", d, x->valuedouble);
                if (strtod(b, NULL) == x->valuedouble) break;
            }
            char *t = strdup(b);
            if (t) { x->type = cJSON_Raw; x->valuestring = t; }
        } else {
            exact_numbers(x);
        }
    }
}

char *miles_metrics_to_json_string(const MilesMetrics *m) {
    cJSON *o = miles_metrics_to_json(m);
    if (!o) return NULL;
    exact_numbers(o);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s) miles_error(MILES_ENOMEM, "metrics_to_json: out of memory");
    return s;
}

static void prow(FILE *fp, const char *name, double v, int ok) {
    if (ok && isfinite(v)) fprintf(fp, "  %-28s %10.4f\n", name, v);
    else fprintf(fp, "  %-28s %10s\n", name, "n/a");
}

static void pthr(FILE *fp, const char *name, const MilesThresholdMetrics *t) {
    fprintf(fp, "  at %s = %.4f\n", name, t->threshold);
    fprintf(fp, "    accuracy %.4f  precision %.4f  recall %.4f  F1 %.4f\n", t->accuracy,
            t->precision, t->recall, t->f1);
    fprintf(fp, "    confusion [TN FP; FN TP] = [%lld %lld; %lld %lld]\n", (long long)t->tn,
            (long long)t->fp, (long long)t->fn, (long long)t->tp);
}

int miles_metrics_print(const MilesMetrics *m, FILE *fp, const char *title) {
    if (!fp) return miles_error(MILES_EINVAL, "metrics_print: NULL FILE");
    unsigned v = m->valid;
    fprintf(fp, "%s (n = %d, positives = %lld, prevalence %.4f)\n", title ? title : "metrics",
            m->n, (long long)m->n_pos, m->prevalence);
    prow(fp, "AUROC", m->auroc, v & MILES_M_AUROC);
    if (v & MILES_M_BOOT_AUROC)
        fprintf(fp, "  %-28s [%.4f, %.4f] (%d resamples)\n", "  95% bootstrap interval",
                m->auroc_lo, m->auroc_hi, m->auroc_boot_used);
    prow(fp, "PR-AUC (average precision)", m->average_precision, v & MILES_M_AP);
    if (v & MILES_M_BOOT_AUROC)
        fprintf(fp, "  %-28s [%.4f, %.4f]\n", "  95% bootstrap interval", m->ap_lo, m->ap_hi);
    char nm[64];
    snprintf(nm, sizeof nm, "precision @ recall >= %.2f", m->min_recall);
    prow(fp, nm, m->precision_at_recall, v & MILES_M_P_AT_R10);
    prow(fp, "best-F1 threshold", m->best_f1_threshold, v & MILES_M_BEST_F1);
    prow(fp, "best F1", m->best_f1, v & MILES_M_BEST_F1);
    prow(fp, "ECE (15 bins)", m->ece, v & MILES_M_CALIBRATION);
    prow(fp, "Brier score", m->brier, v & MILES_M_CALIBRATION);
    prow(fp, "log loss", m->log_loss, v & MILES_M_LOG_LOSS);
    if (v & MILES_M_THRESHOLD) pthr(fp, "threshold", &m->at_half);
    if (v & MILES_M_STORED) pthr(fp, "stored threshold", &m->at_stored);
    if (v & MILES_M_VELOCITY) {
        fprintf(fp, "  velocity: MAE %.6g  MSE %.6g  RMSE %.6g  R^2 %.4f\n", m->velocity.mae,
                m->velocity.mse, m->velocity.rmse, m->velocity.r2);
        if (v & MILES_M_BOOT_MAE)
            fprintf(fp, "    MAE 95%% bootstrap interval [%.6g, %.6g]\n", m->mae_lo, m->mae_hi);
    }
    if (m->reason[0]) fprintf(fp, "  note: %s\n", m->reason);
    return ferror(fp) ? miles_error(MILES_EIO, "metrics_print: write failed") : MILES_OK;
}
