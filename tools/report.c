/*
 * report.c — metrics -> JSON + table + PNG plots, for miles-eval and miles-baseline.
 */
#include "report.h"
#include "plot.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_plots(const ToolReport *r, const MilesMetrics *m, cJSON *paths) {
    char path[4300];
    int bad = 0;
    if (m->valid & MILES_M_AUROC) {
        MilesCurve roc = {0}, pr = {0};
        if (miles_metric_roc_curve(r->scores, r->labels, r->n, &roc) == MILES_OK) {
            snprintf(path, sizeof path, "%s/%s_roc.png", r->out_dir, r->prefix);
            if (miles_plot_roc(path, roc.x, roc.y, roc.n, m->auroc, r->title) == MILES_OK)
                cJSON_AddStringToObject(paths, "roc", path);
            else bad = 1;
        }
        if (miles_metric_pr_curve(r->scores, r->labels, r->n, &pr) == MILES_OK) {
            snprintf(path, sizeof path, "%s/%s_pr.png", r->out_dir, r->prefix);
            if (miles_plot_pr(path, pr.x, pr.y, pr.n, m->average_precision, m->prevalence, r->title) == MILES_OK)
                cJSON_AddStringToObject(paths, "pr", path);
            else bad = 1;
        }
        miles_curve_free(&roc);
        miles_curve_free(&pr);
    }
    if (m->valid & MILES_M_CALIBRATION) {
        snprintf(path, sizeof path, "%s/%s_calibration.png", r->out_dir, r->prefix);
        if (miles_plot_calibration(path, m->calib_mean_score, m->calib_frac_pos, m->calib_count,
                                   MILES_CALIB_BINS, m->ece, r->title) == MILES_OK)
            cJSON_AddStringToObject(paths, "calibration", path);
        else bad = 1;
    }
    if (r->calibrated) {   /* the same diagram after miles-eval --calibrate */
        const MilesMetrics *c = r->calibrated;
        char title[600];
        snprintf(title, sizeof title, "%s, Platt-scaled", r->title ? r->title : "Miles");
        snprintf(path, sizeof path, "%s/%s_calibrated.png", r->out_dir, r->prefix);
        if ((c->valid & MILES_M_CALIBRATION) &&
            miles_plot_calibration(path, c->calib_mean_score, c->calib_frac_pos, c->calib_count, MILES_CALIB_BINS,
                                   c->ece, title) == MILES_OK)
            cJSON_AddStringToObject(paths, "calibrated", path);
        else bad = 1;
    }
    const double *vp = r->vel_pred_raw ? r->vel_pred_raw : r->vel_pred;
    const double *vt = r->vel_true_raw ? r->vel_true_raw : r->vel_true;
    if (vp && vt) {
        snprintf(path, sizeof path, "%s/%s_velocity.png", r->out_dir, r->prefix);
        if (miles_plot_velocity(path, vp, vt, r->n, r->vel_pred_raw ? 1 : 0, r->title) == MILES_OK)
            cJSON_AddStringToObject(paths, "velocity", path);
        else bad = 1;
    }
    if (bad) {
        /* all or none: a half set of plots (from an earlier run's and this run's
         * numbers mixed) is worse than none; the JSON then lists no plots */
        fprintf(stderr, "warning: the plots were not written: ");
        tool_put_escaped(stderr, miles_last_error());
        fputc('\n', stderr);
        const cJSON *it;
        cJSON_ArrayForEach(it, paths) if (cJSON_IsString(it)) unlink(it->valuestring);
        while (cJSON_GetArraySize(paths) > 0) cJSON_DeleteItemFromArray(paths, 0);
    }
    return 0;
}

static void add_reg(cJSON *o, const char *key, const MilesRegressionMetrics *m) {
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "mae", m->mae);
    cJSON_AddNumberToObject(x, "rmse", m->rmse);
    cJSON_AddNumberToObject(x, "r2", m->r2);
}
static void add_ci(cJSON *o, const char *key, const double ci[2]) {
    if (!isfinite(ci[0]) || !isfinite(ci[1])) { cJSON_AddNullToObject(o, key); return; }
    cJSON *a = cJSON_AddArrayToObject(o, key);
    cJSON_AddItemToArray(a, cJSON_CreateNumber(ci[0]));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(ci[1]));
}

int tool_velocity_section(const ToolVelocity *v, void *jv) {
    cJSON *j = jv;
    MilesMetricsOptions mo;
    miles_metrics_options_default(&mo);
    mo.n_bootstrap = v->n_bootstrap;
    mo.seed = v->seed;
    MilesVelocityReport r;
    int s = miles_velocity_report(&r, v->pred, v->target, v->pred_raw, v->target_raw, v->n, v->median_target,
                                  v->median_raw, &mo);
    if (s != MILES_OK) return s;
    cJSON *o = cJSON_AddObjectToObject(j, "velocity_report");
    cJSON_AddStringToObject(o, "target", v->target_name ? v->target_name : "minmax");
    cJSON_AddNumberToObject(o, "n", r.n);
    add_reg(o, "target_space", &r.target);
    if (r.has_raw) add_reg(o, "views_per_day", &r.raw);
    cJSON_AddNumberToObject(o, "spearman", r.spearman);
    cJSON *ref = cJSON_AddObjectToObject(o, "constant_median");
    cJSON_AddNumberToObject(ref, "median_target", r.median_target);
    add_reg(ref, "target_space", &r.median_ref_target);
    if (r.has_raw) {
        cJSON_AddNumberToObject(ref, "median_views_per_day", r.median_raw);
        add_reg(ref, "views_per_day", &r.median_ref_raw);
    }
    cJSON *ci = cJSON_AddObjectToObject(o, "bootstrap");
    cJSON_AddNumberToObject(ci, "resamples", r.n_bootstrap);
    cJSON_AddNumberToObject(ci, "seed", (double)r.seed);
    add_ci(ci, "target_mae", r.target_mae_ci);
    add_ci(ci, "target_rmse", r.target_rmse_ci);
    add_ci(ci, "target_r2", r.target_r2_ci);
    add_ci(ci, "spearman", r.spearman_ci);
    if (r.has_raw) {
        add_ci(ci, "views_per_day_mae", r.raw_mae_ci);
        add_ci(ci, "views_per_day_r2", r.raw_r2_ci);
    }
    /* intervals only where the bootstrap ran (--bootstrap 0: none, as the classification report) */
    char c1[64] = "", c2[64] = "", c3[64] = "";
    if (isfinite(r.target_r2_ci[0]) && isfinite(r.target_r2_ci[1]))
        snprintf(c1, sizeof c1, "  R2 [%.4f, %.4f]", r.target_r2_ci[0], r.target_r2_ci[1]);
    if (isfinite(r.raw_mae_ci[0]) && isfinite(r.raw_mae_ci[1]))
        snprintf(c2, sizeof c2, "  MAE [%.4g, %.4g]", r.raw_mae_ci[0], r.raw_mae_ci[1]);
    if (isfinite(r.spearman_ci[0]) && isfinite(r.spearman_ci[1]))
        snprintf(c3, sizeof c3, " [%.4f, %.4f]", r.spearman_ci[0], r.spearman_ci[1]);
    if (r.n_bootstrap > 0)
        printf("  velocity report (target %s, n = %d; [95%% bootstrap interval, %d resamples])\n",
               v->target_name ? v->target_name : "minmax", r.n, r.n_bootstrap);
    else
        printf("  velocity report (target %s, n = %d)\n", v->target_name ? v->target_name : "minmax", r.n);
    printf("    %-26s %12s %12s %10s\n", "", "MAE", "RMSE", "R2");
    printf("    %-26s %12.4g %12.4g %10.4f%s\n", "model, target space", r.target.mae, r.target.rmse, r.target.r2, c1);
    printf("    %-26s %12.4g %12.4g %10.4f\n", "constant median, target", r.median_ref_target.mae,
           r.median_ref_target.rmse, r.median_ref_target.r2);
    if (r.has_raw) {
        printf("    %-26s %12.4g %12.4g %10.4f%s\n", "model, views/day", r.raw.mae, r.raw.rmse, r.raw.r2, c2);
        printf("    %-26s %12.4g %12.4g %10.4f\n", "constant median, views/day", r.median_ref_raw.mae,
               r.median_ref_raw.rmse, r.median_ref_raw.r2);
    }
    printf("    Spearman rho %.4f%s\n", r.spearman, c3);
    return MILES_OK;
}

int tool_report_run(const ToolReport *r) {
    MilesMetricsOptions opt;
    miles_metrics_options_default(&opt);
    opt.stored_threshold = r->stored_threshold;
    opt.n_bootstrap = r->n_bootstrap;
    opt.seed = r->seed;
    MilesMetrics m;
    int s = miles_metrics_compute(&m, r->scores, r->labels, r->n, r->vel_pred, r->vel_true, &opt);
    int status = 0;
    if (s != MILES_OK) {
        if (m.n == 0) return tool_fail("evaluation", s);   /* empty / non-finite input: nothing to report */
        fprintf(stderr, "note: %s\n", m.reason[0] ? m.reason : miles_last_error());
        status = 3;
    }
    char *mj = miles_metrics_to_json_string(&m);
    cJSON *j = mj ? cJSON_Parse(mj) : NULL;
    free(mj);
    if (!j) return tool_fail("evaluation", MILES_ENOMEM);
    /* velocity in original units, next to the scaled-target metrics */
    if (r->vel_pred_raw && r->vel_true_raw) {
        MilesRegressionMetrics rm;
        if (miles_metric_regression(r->vel_pred_raw, r->vel_true_raw, r->n, &rm) == MILES_OK) {
            cJSON *o = cJSON_AddObjectToObject(j, "velocity_original_units");
            cJSON_AddNumberToObject(o, "mae", rm.mae);
            cJSON_AddNumberToObject(o, "rmse", rm.rmse);
            cJSON_AddNumberToObject(o, "r2", rm.r2);
        }
    }
    if (r->extra_json) cJSON_AddItemReferenceToObject(j, "run", r->extra_json);
    if (r->comparisons_json) cJSON_AddItemReferenceToObject(j, "comparisons", r->comparisons_json);
    if (r->calibration_json) cJSON_AddItemReferenceToObject(j, "calibration", r->calibration_json);
    cJSON *paths = cJSON_AddObjectToObject(j, "plots");
    if (r->plots) write_plots(r, &m, paths);

    miles_metrics_print(&m, stdout, r->title);
    if (r->velocity) {
        int vs = tool_velocity_section(r->velocity, j);
        if (vs != MILES_OK) fprintf(stderr, "note: velocity report: %s\n", miles_last_error());
    }
    if (r->vel_pred_raw && r->vel_true_raw) {
        cJSON *o = cJSON_GetObjectItem(j, "velocity_original_units");
        if (o)
            printf("  velocity (original units): MAE %.4g  RMSE %.4g  R2 %.4f\n",
                   cJSON_GetObjectItem(o, "mae")->valuedouble, cJSON_GetObjectItem(o, "rmse")->valuedouble,
                   cJSON_GetObjectItem(o, "r2")->valuedouble);
    }
    char path[4300];
    snprintf(path, sizeof path, "%s/%s.json", r->out_dir, r->prefix);
    tool_json_exact_all(j);   /* the report's numbers to the last bit */
    char *txt = cJSON_Print(j);
    int ws = txt ? tool_write_text_atomic(path, txt) : MILES_ENOMEM;
    free(txt);
    if (ws != MILES_OK) { cJSON_Delete(j); return tool_fail("evaluation", ws); }
    printf("report: %s\n", path);
    for (cJSON *p = paths->child; p; p = p->next) printf("plot:   %s\n", p->valuestring);
    cJSON_Delete(j);
    return status;
}
