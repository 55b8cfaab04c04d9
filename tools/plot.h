/*
 * plot.h — PNG plots of evaluation results (cairo), shared by the tools.
 *
 * Every function writes one PNG atomically (temp file + rename: a failed call
 * never leaves a half-written file at png_path) and returns a MILES_* status.
 * Without cairo (built without MILES_HAVE_CAIRO) they return
 * MILES_EUNSUPPORTED.  Titles may be NULL.  Images are 900x720 (calibration
 * 900x900), white background, axes with ticks, labels, a title and a legend.
 */
#ifndef MILES_TOOL_PLOT_H
#define MILES_TOOL_PLOT_H

#include <stdint.h>

#include "miles.h"

/* The series colours (r, g, b in [0,1]): the model's curve, the reference. */
#define PLOT_BLUE_RGB 0.12, 0.37, 0.66
#define PLOT_ORANGE_RGB 0.87, 0.42, 0.05

/* ROC curve fpr[n] -> tpr[n] (e.g. miles_metric_roc_curve), the chance
 * diagonal, and "AUROC = x" in the legend. */
int miles_plot_roc(const char *png_path, const double *fpr, const double *tpr, int n,
                   double auroc, const char *title);

/* Precision-recall curve recall[n] -> precision[n] (miles_metric_pr_curve),
 * drawn as the step function average precision integrates, with the
 * prevalence (no-skill) line; "AP = x" in the legend. */
int miles_plot_pr(const char *png_path, const double *recall, const double *precision, int n,
                  double average_precision, double prevalence, const char *title);

/* Reliability diagram: per bin (n_bins uniform bins on [0,1]) the mean score
 * and the fraction of positives (MilesMetrics calib_* arrays), the diagonal,
 * "ECE = x"; below it the histogram of bin counts.  Empty bins are skipped. */
int miles_plot_calibration(const char *png_path, const double *bin_mean_score,
                           const double *bin_frac_pos, const int64_t *bin_count, int n_bins,
                           double ece, const char *title);

/* Predicted vs true velocity scatter with the y = x line.  original_units = 1:
 * values are views/day (log10 axes when all are > 0); 0: the scaled target. */
int miles_plot_velocity(const char *png_path, const double *pred, const double *target, int n,
                        int original_units, const char *title);

#endif
