/*
 * report.h — the evaluation report shared by miles-eval and miles-baseline:
 * one metrics computation, written as JSON (machines), a table (people) and
 * PNG plots (ROC, PR, calibration, velocity).
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
} ToolReport;

/* Compute, print the table to stdout, write JSON and plots; returns a process
 * exit status (0 ok, 1 error, 3 metrics undefined e.g. single-class input). */
int tool_report_run(const ToolReport *r);

#endif
