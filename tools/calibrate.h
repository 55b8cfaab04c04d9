/*
 * calibrate.h — miles-eval --calibrate: Platt scaling of the checkpoint's
 * P(viral) fitted on the validation split (miles_platt_fit), applied to the
 * evaluated split, and the calibration metrics before and after.
 */
#ifndef MILES_TOOL_CALIBRATE_H
#define MILES_TOOL_CALIBRATE_H

#include "miles.h"

typedef struct ToolCalibration {
    MilesPlatt platt;
    MilesMetrics before, after;   /* the evaluated rows' metrics (no bootstrap) */
    const char *fit_split;        /* "val"; NULL: the checkpoint's stored calibration */
    double mean_before, mean_after;           /* mean P(viral) of the evaluated rows */
    double threshold, threshold_calibrated;   /* the stored one (NaN: none) and its image */
    int decisions_changed;                    /* rows where score >= t and p' >= t' disagree */
    void *json;                   /* the report's "calibration" object (cJSON *) */
} ToolCalibration;

/* Fit on fit_scores/fit_labels [n_fit] (fit_split names them), map scores [n]
 * into calibrated [n].  A slope <= 0 is refused (the scores rank the fitting
 * rows worse than chance).  MILES_* status with the message set. */
int tool_calibrate(ToolCalibration *c, const double *fit_scores, const int32_t *fit_labels, int n_fit,
                   const char *fit_split, const double *scores, const int32_t *labels, int n, double stored_threshold,
                   double *calibrated);
/* The same with the calibration a checkpoint holds (nothing fitted). */
int tool_calibrate_stored(ToolCalibration *c, const MilesPlatt *stored, const double *scores, const int32_t *labels,
                          int n, double stored_threshold, double *calibrated);
/* The table, from c (after the report's). */
void tool_calibration_print(const ToolCalibration *c, const char *split_name);
void tool_calibration_free(ToolCalibration *c);

#endif
