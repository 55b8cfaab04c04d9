/*
 * report.h — the evaluation report shared by miles-eval and miles-baseline:
 * one metrics computation, written as JSON (machines), a table (people) and
 * PNG plots (ROC, PR, calibration, velocity; the recalibrated scores' reliability).
 */
#ifndef MILES_TOOL_REPORT_H
#define MILES_TOOL_REPORT_H

#include "miles.h"

typedef struct ToolReport {
    const char *out_dir;        /* where <prefix>.json and plots go */
    const char *prefix;         /* e.g. "eval_test" */
    const char *title;          /* table/plot title */
    const double *scores;       /* [n] P(viral) */
    const int32_t *labels;      /* [n] */
    int n;
    const double *vel_pred;     /* [n] scaled prediction, or NULL */
    const double *vel_true;     /* [n] scaled target, or NULL */
    const double *vel_pred_raw; /* [n] original units, or NULL */
    const double *vel_true_raw; /* [n] original units, or NULL */
    double stored_threshold;    /* NaN if none */
    int n_bootstrap;
    uint64_t seed;
    int plots;                  /* 1: write PNGs */
    void *extra_json;           /* cJSON object merged under "run" (or NULL); not freed */
    void *comparisons_json;     /* cJSON object added as "comparisons" (or NULL); not freed */
    const struct ToolVelocity *velocity; /* NULL, or the "velocity_report" section (below) */
    const MilesMetrics *calibrated;   /* the recalibrated scores' metrics (miles-eval --calibrate), or NULL */
    void *calibration_json;     /* cJSON object added as "calibration" (or NULL); not freed */
} ToolReport;

/* The velocity head's section (miles_velocity_report): vel_pred/vel_true in the
 * target space, *_raw in views/day, the training split's medians for the
 * constant reference, the target's name ("log1p_z" | "minmax"). */
typedef struct ToolVelocity {
    const double *pred, *target, *pred_raw, *target_raw;
    int n;
    double median_target, median_raw;
    const char *target_name;
    int n_bootstrap;
    uint64_t seed;
} ToolVelocity;

/* Compute the velocity report, add it to the JSON object j (a cJSON *) as
 * "velocity_report" and print its table to stdout.  MILES_* status. */
int tool_velocity_section(const ToolVelocity *v, void *j);

/* Compute, print the table to stdout, write JSON and plots; returns a process
 * exit status (0 ok, 1 error, 3 metrics undefined e.g. single-class input). */
int tool_report_run(const ToolReport *r);

#endif
