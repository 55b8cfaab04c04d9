/*
 * compare.h — miles-eval --compare DIR|CHECKPOINT: the baselines
 * miles-baseline saved in DIR, or another checkpoint, scored on the rows Miles
 * was evaluated on, and each paired with Miles (miles_compare_scores: DeLong's
 * test and a paired-bootstrap interval of the AUROC difference;
 * miles_compare_mae for the velocity).
 */
#ifndef MILES_TOOL_COMPARE_H
#define MILES_TOOL_COMPARE_H

#include "miles.h"

/* What miles-baseline --out DIR holds: baseline_text.json,
 * baseline_numeric.json (fitted models), baseline_ridge_<split>.json (the
 * ridge report, whose "run" holds its coefficients and target). */
typedef struct ToolBaselines {
    MilesBaseline *text, *numeric;   /* NULL when the file is absent */
    int has_ridge;
    double coef[MILES_NUM_FEATURES], intercept;
    MilesVelocityTarget ridge_target;
    char text_path[4200], numeric_path[4200], ridge_path[4200];
} ToolBaselines;

/* Loads what DIR holds; at least one of the three must be there.  MILES_*
 * status (the message names the file and the field). */
int tool_baselines_load(ToolBaselines *b, const char *dir, const char *split_name);
void tool_baselines_free(ToolBaselines *b);

/* Miles' answers on the evaluated rows. */
typedef struct ToolCompareRows {
    MilesPrepared *prep;
    int split;                       /* MILES_SPLIT_* of prep */
    const MilesDataset *rows;        /* that split */
    const double *scores;            /* [n] Miles' P(viral) */
    const double *vel_pred, *vel_target;         /* [n] Miles' target space (clamped output) */
    const double *vel_pred_raw, *vel_raw;        /* [n] views/day */
    const MilesVelocityTarget *target;           /* Miles' target */
    const MilesScaler *scaler;
    int n_bootstrap;
    uint64_t seed;
    /* [n] each, or NULL: the baselines' answers on the rows (P(viral); ridge:
     * views/day), left as they are when that baseline is not in DIR */
    double *text_scores, *numeric_scores, *ridge_pred_raw;
} ToolCompareRows;

/* Scores each loaded baseline on the rows and compares it with Miles; adds
 * one member per baseline ("text", "numeric", "ridge") to json (a cJSON
 * object: the report's "comparisons").  MILES_* status. */
int tool_compare_run(const ToolBaselines *b, const ToolCompareRows *r, void *json);
/* Another model's answers on the same rows (miles-eval --compare CHECKPOINT:
 * scored there): P(viral) [n], velocity in its own target space (clamped) and
 * in views/day [n], its target; added to json as member `key` ("checkpoint",
 * "checkpoint_2", ...) named `name` ("checkpoint B", ...). */
int tool_compare_model(const char *key, const char *name, const char *path, const double *scores,
                       const double *vel_pred, const double *vel_pred_raw, const MilesVelocityTarget *target,
                       const ToolCompareRows *r, void *json);
/* Holm's step-down adjustment of the AUROC tests' p-values over every member
 * of json that has one: "p_holm" and "holm_m" (the number of tests) added to
 * each.  Returns m. */
int tool_compare_holm(void *json);
/* The comparisons as a table on stdout; split_words says how the rows were split (tool_split_words). */
void tool_compare_print(const void *json, const char *split_name, const char *split_words, int n);

#endif
