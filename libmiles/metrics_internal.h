/*
 * metrics_internal.h — the single metrics and the bootstrap behind
 * miles_metrics_compute (metrics.c); the library's modules and the tests use
 * them, programs use miles_metrics_compute.  Not installed.
 */
#ifndef MILES_METRICS_INTERNAL_H
#define MILES_METRICS_INTERNAL_H

#include "internal.h"

/* n > 0 scores, all finite, and labels of 0 or 1 (errors name fn and the
 * row); *n_pos (may be NULL) gets the positives. */
int miles_metric_check_inputs(const char *fn, const double *scores, const int32_t *labels, int n, int64_t *n_pos);
/* AUROC, ties counted half (= sklearn roc_auc_score). */
int miles_metric_auroc(const double *scores, const int32_t *labels, int n, double *auroc);
/* Average precision, step-wise (= sklearn average_precision_score). */
int miles_metric_average_precision(const double *scores, const int32_t *labels, int n,
                                   double *ap);
/* Best precision among thresholds whose recall >= min_recall, i.e. the max of
 * precision over the points of sklearn's precision_recall_curve with recall >=
 * min_recall (0.10 for "precision at 10% recall").  *threshold (may be NULL)
 * gets the largest threshold reaching that precision. */
int miles_metric_precision_at_recall(const double *scores, const int32_t *labels, int n,
                                     double min_recall, double *precision, double *threshold);

/* Confusion matrix and derived metrics at a threshold (zero_division = 0). */
int miles_metric_at_threshold(const double *scores, const int32_t *labels, int n,
                              double threshold, MilesThresholdMetrics *out);
/* Threshold maximizing F1 over the distinct scores (the thresholds of the PR
 * curve); ties go to the largest threshold.  Fit it on validation data. */
int miles_metric_best_f1_threshold(const double *scores, const int32_t *labels, int n,
                                   double *threshold, double *f1);

/* Reliability of the positive-class probability: n_bins uniform bins on [0,1],
 * bin b = (b/n_bins, (b+1)/n_bins] (0 goes to bin 0; = sklearn calibration_curve
 * binning).  ECE = sum_b (count_b/n) * |mean(label in b) - mean(score in b)|.
 * Per-bin arrays (may be NULL) have n_bins entries; empty bins get count 0 and
 * mean_score/frac_pos 0. */
int miles_metric_calibration(const double *scores, const int32_t *labels, int n, int n_bins,
                             double *ece, int64_t *bin_count, double *bin_mean_score,
                             double *bin_frac_pos);
/* mean((label - score)^2) (= sklearn brier_score_loss). */
int miles_metric_brier(const double *scores, const int32_t *labels, int n, double *brier);

/* Percentile bootstrap: n_boot resamples of size n drawn with replacement by a
 * seeded xoshiro256** stream; interval = numpy.percentile (linear) at
 * 100*alpha/2 and 100*(1-alpha/2) of the resampled statistics.  Resamples with
 * one class are skipped for AUROC (*n_used says how many were kept). */
int miles_bootstrap_auroc(const double *scores, const int32_t *labels, int n, int n_boot,
                          uint64_t seed, double alpha, double *lo, double *hi, int *n_used);
/* The same, with the average precision's interval on the same resamples
 * (ap_lo/ap_hi may be NULL). */
int miles_bootstrap_ranking(const double *scores, const int32_t *labels, int n, int n_boot, uint64_t seed,
                            double alpha, double *lo, double *hi, double *ap_lo, double *ap_hi, int *n_used);
int miles_bootstrap_mae(const double *pred, const double *target, int n, int n_boot,
                        uint64_t seed, double alpha, double *lo, double *hi);

/* A statistic of n rows of paired columns (cols[c][i]); NaN = undefined. */
typedef double (*MilesColumnStat)(const double *const *cols, int n);
/* Percentile bootstrap of nstat statistics on the same resamples of the rows
 * of ncols (<= 16) columns, same index stream and percentile rule as
 * miles_bootstrap_mae; lo/hi/n_used [nstat] (NaN when never defined). */
int miles_bootstrap_columns(const double *const *cols, int ncols, int n, int n_boot, uint64_t seed, double alpha,
                            MilesColumnStat const *fns, int nstat, double *lo, double *hi, int *n_used);


#endif
