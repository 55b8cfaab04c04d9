/*
 * calibrate.c — miles-eval --calibrate (calibrate.h).  The model trains with
 * class weights, which raise its probabilities, and a fine-tuned encoder is
 * over-confident; Platt's sigmoid fitted on the validation split says how much
 * and corrects it.  It is monotone (slope > 0), so the ranking metrics and the
 * decisions at the stored threshold (mapped through the same sigmoid) do not
 * change: ECE, Brier score, log loss and the decisions at 0.5 do.
 */
#include "calibrate.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void add_metrics(cJSON *o, const char *key, const MilesMetrics *m, double mean) {
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "mean_score", mean);
    cJSON_AddNumberToObject(x, "ece", m->ece);
    cJSON_AddNumberToObject(x, "brier", m->brier);
    cJSON_AddNumberToObject(x, "log_loss", m->log_loss);
    cJSON_AddNumberToObject(x, "f1_at_half", m->at_half.f1);
}

static double mean(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s / n;
}

/* the evaluated rows through c->platt: metrics before and after, the JSON */
static int apply(ToolCalibration *c, const double *scores, const int32_t *labels, int n, double stored_threshold,
                 double *calibrated) {
    if (!(c->platt.a > 0))
        return miles_set_error(MILES_EINVAL,
                               "the scores rank the %s rows no better than chance (Platt slope a = %.4g): a "
                               "calibration would reverse or erase the ranking",
                               c->fit_split ? c->fit_split : "fitting", c->platt.a);
    TOOL_TRY(miles_platt_apply(&c->platt, scores, n, calibrated));
    MilesMetricsOptions o;
    miles_metrics_options_default(&o);
    o.n_bootstrap = 0;
    /* single-class rows: the calibration metrics are still defined (EINVAL says the rest is not) */
    int s = miles_metrics_compute(&c->before, scores, labels, n, NULL, NULL, &o);
    if (s != MILES_OK && c->before.n == 0) return s;
    s = miles_metrics_compute(&c->after, calibrated, labels, n, NULL, NULL, &o);
    if (s != MILES_OK && c->after.n == 0) return s;
    c->mean_before = mean(scores, n);
    c->mean_after = mean(calibrated, n);
    c->threshold = stored_threshold;
    c->threshold_calibrated = isnan(stored_threshold) ? NAN : miles_platt_map(&c->platt, stored_threshold);
    /* the map is non-decreasing, so score >= t implies p' >= t'; two scores
     * rounding to one p' could still split a decision: count, do not assume */
    for (int i = 0; !isnan(stored_threshold) && i < n; i++)
        c->decisions_changed += (scores[i] >= stored_threshold) != (calibrated[i] >= c->threshold_calibrated);

    cJSON *j = cJSON_CreateObject();
    if (!j) return miles_set_error(MILES_ENOMEM, "out of memory");
    cJSON_AddStringToObject(j, "method", "platt");
    cJSON_AddStringToObject(j, "source", c->fit_split ? "fitted" : "checkpoint");
    cJSON_AddStringToObject(j, "formula", "sigma(a * logit(p) + b), logit of p clipped to [2^-24, 1 - 2^-24]");
    cJSON *f = cJSON_AddObjectToObject(j, "fitted_on");
    if (c->fit_split) cJSON_AddStringToObject(f, "split", c->fit_split);
    cJSON_AddNumberToObject(f, "n", c->platt.n);
    cJSON_AddNumberToObject(f, "n_pos", (double)c->platt.n_pos);
    cJSON_AddNumberToObject(j, "a", c->platt.a);
    cJSON_AddNumberToObject(j, "b", c->platt.b);
    if (c->fit_split) cJSON_AddNumberToObject(j, "newton_steps", c->platt.iterations);
    if (isnan(stored_threshold)) {
        cJSON_AddNullToObject(j, "stored_threshold");
        cJSON_AddNullToObject(j, "stored_threshold_calibrated");
    } else {
        cJSON_AddNumberToObject(j, "stored_threshold", stored_threshold);
        cJSON_AddNumberToObject(j, "stored_threshold_calibrated", c->threshold_calibrated);
        cJSON_AddNumberToObject(j, "decisions_changed", c->decisions_changed);
    }
    cJSON_AddNumberToObject(j, "prevalence", c->before.prevalence);
    add_metrics(j, "uncalibrated", &c->before, c->mean_before);
    add_metrics(j, "calibrated", &c->after, c->mean_after);
    c->json = j;
    return MILES_OK;
}

int tool_calibrate(ToolCalibration *c, const double *fit_scores, const int32_t *fit_labels, int n_fit,
                   const char *fit_split, const double *scores, const int32_t *labels, int n, double stored_threshold,
                   double *calibrated) {
    memset(c, 0, sizeof *c);
    TOOL_TRY(miles_platt_fit(fit_scores, fit_labels, n_fit, &c->platt));
    c->fit_split = fit_split;
    return apply(c, scores, labels, n, stored_threshold, calibrated);
}

int tool_calibrate_stored(ToolCalibration *c, const MilesPlatt *stored, const double *scores, const int32_t *labels,
                          int n, double stored_threshold, double *calibrated) {
    memset(c, 0, sizeof *c);
    c->platt = *stored;
    return apply(c, scores, labels, n, stored_threshold, calibrated);
}

void tool_calibration_print(const ToolCalibration *c, const char *split_name) {
    if (c->fit_split)
        printf("\nCalibration: Platt scaling fitted on the %s split (n=%d, %lld viral), applied to the %s split\n",
               c->fit_split, c->platt.n, (long long)c->platt.n_pos, split_name);
    else
        printf("\nCalibration: the checkpoint's Platt scaling (fitted on n=%d, %lld viral), applied to the %s split\n",
               c->platt.n, (long long)c->platt.n_pos, split_name);
    printf("  p' = 1 / (1 + exp(-(%.6g * logit(p) %c %.6g)))\n", c->platt.a, c->platt.b < 0 ? '-' : '+',
           fabs(c->platt.b));
    printf("  %-18s %12s %12s\n", "", "uncalibrated", "calibrated");
    printf("  %-18s %12.4f %12.4f  (viral rate %.4f)\n", "mean P(viral)", c->mean_before, c->mean_after,
           c->before.prevalence);
    printf("  %-18s %12.4f %12.4f\n", "ECE (15 bins)", c->before.ece, c->after.ece);
    printf("  %-18s %12.4f %12.4f\n", "Brier score", c->before.brier, c->after.brier);
    printf("  %-18s %12.4f %12.4f\n", "log loss", c->before.log_loss, c->after.log_loss);
    printf("  %-18s %12.4f %12.4f\n", "F1 @ 0.5", c->before.at_half.f1, c->after.at_half.f1);
    if (!isnan(c->threshold)) {
        printf("  %-18s %12.4f %12.4f  ", "stored threshold", c->threshold, c->threshold_calibrated);
        if (c->decisions_changed) printf("(%d decisions differ: scores merged by rounding)\n", c->decisions_changed);
        else printf("(the same decisions)\n");
    }
    if (c->before.auroc == c->after.auroc && c->before.average_precision == c->after.average_precision)
        printf("  AUROC and PR-AUC do not change (the map is increasing)\n");
    else   /* only where rounding merged scores into ties */
        printf("  AUROC %.6f -> %.6f, PR-AUC %.6f -> %.6f (scores merged by rounding)\n", c->before.auroc,
               c->after.auroc, c->before.average_precision, c->after.average_precision);
    if (!c->fit_split && !strcmp(split_name, "val"))   /* miles-eval --save-calibrated fits on val */
        printf("  note: a stored map is fitted on the val split: these are its own rows (in-sample)\n");
}

void tool_calibration_free(ToolCalibration *c) {
    cJSON_Delete(c->json);
    c->json = NULL;
}
