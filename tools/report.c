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
    cJSON *paths = cJSON_AddObjectToObject(j, "plots");
    if (r->plots) write_plots(r, &m, paths);

    miles_metrics_print(&m, stdout, r->title);
    if (r->vel_pred_raw && r->vel_true_raw) {
        cJSON *o = cJSON_GetObjectItem(j, "velocity_original_units");
        if (o)
            printf("  velocity (original units): MAE %.4g  RMSE %.4g  R2 %.4f\n",
                   cJSON_GetObjectItem(o, "mae")->valuedouble, cJSON_GetObjectItem(o, "rmse")->valuedouble,
                   cJSON_GetObjectItem(o, "r2")->valuedouble);
    }
    char path[4300];
    snprintf(path, sizeof path, "%s/%s.json", r->out_dir, r->prefix);
    char *txt = cJSON_Print(j);
    int ws = txt ? tool_write_text_atomic(path, txt) : MILES_ENOMEM;
    free(txt);
    if (ws != MILES_OK) { cJSON_Delete(j); return tool_fail("evaluation", ws); }
    printf("report: %s\n", path);
    for (cJSON *p = paths->child; p; p = p->next) printf("plot:   %s\n", p->valuestring);
    cJSON_Delete(j);
    return status;
}
