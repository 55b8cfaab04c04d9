/*
 * compare.c — miles-eval --compare DIR|CHECKPOINT (compare.h; docs/metrics.md
 * "Comparing two models").
 *
 * Overlapping 95% intervals of two AUROCs measured on the same rows say
 * little: the two scores are correlated through the rows.  The paired test
 * uses that correlation (DeLong), and so does the bootstrap interval of the
 * difference (both models on each resample).
 */
#include "compare.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ridge_fail(const char *path, const char *what) {
    return miles_set_error(MILES_EFORMAT, "%s: not a ridge baseline report (%s)", path, what);
}

/* o[key] (o is the object at `sect`, e.g. "run") as a finite number */
static int number(const cJSON *o, const char *sect, const char *key, const char *path, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
        char what[128];
        snprintf(what, sizeof what, "%s.%s is not a finite number", sect, key);
        return ridge_fail(path, what);
    }
    *v = x->valuedouble;
    return MILES_OK;
}

/* baseline_ridge_<split>.json's "run": coefficients, intercept, target */
static int load_ridge(ToolBaselines *b, const char *path) {
    char *text = NULL;
    TOOL_TRY(tool_read_file(path, &text));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return ridge_fail(path, "not valid JSON");
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(j, "run");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(run, "baseline");
    const cJSON *coef = cJSON_GetObjectItemCaseSensitive(run, "coef");
    const cJSON *tname = cJSON_GetObjectItemCaseSensitive(run, "velocity_target");
    const cJSON *clamp = cJSON_GetObjectItemCaseSensitive(run, "velocity_clamp");
    int s = MILES_OK;
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "ridge")) s = ridge_fail(path, "run.baseline is not \"ridge\"");
    else if (!cJSON_IsArray(coef) || cJSON_GetArraySize(coef) != MILES_NUM_FEATURES)
        s = ridge_fail(path, "run.coef is not an array of 18 numbers");
    for (int k = 0; s == MILES_OK && k < MILES_NUM_FEATURES; k++) {
        const cJSON *x = cJSON_GetArrayItem(coef, k);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) s = ridge_fail(path, "run.coef holds a non-number");
        else b->coef[k] = x->valuedouble;
    }
    MilesVelocityTarget *t = &b->ridge_target;
    memset(t, 0, sizeof *t);
    if (s == MILES_OK) s = number(run, "run", "intercept", path, &b->intercept);
    if (s == MILES_OK) {
        if (cJSON_IsString(tname) && !strcmp(tname->valuestring, miles_velocity_target_name(MILES_VTARGET_LOG1P_Z)))
            t->kind = MILES_VTARGET_LOG1P_Z;
        else if (cJSON_IsString(tname) && !strcmp(tname->valuestring, miles_velocity_target_name(MILES_VTARGET_MINMAX)))
            t->kind = MILES_VTARGET_MINMAX;
        else s = ridge_fail(path, "run.velocity_target is neither log1p_z nor minmax");
    }
    if (s == MILES_OK) s = number(run, "run", "target_mean", path, &t->mean);
    if (s == MILES_OK) s = number(run, "run", "target_std", path, &t->std);
    if (s == MILES_OK && !cJSON_IsObject(clamp)) s = ridge_fail(path, "run.velocity_clamp is missing");
    if (s == MILES_OK && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(clamp, "applied"))) {
        t->has_range = 1;
        s = number(clamp, "run.velocity_clamp", "min", path, &t->lo);
        if (s == MILES_OK) s = number(clamp, "run.velocity_clamp", "max", path, &t->hi);
    }
    cJSON_Delete(j);
    if (s == MILES_OK) b->has_ridge = 1;
    return s;
}

int tool_baselines_load(ToolBaselines *b, const char *dir, const char *split_name) {
    memset(b, 0, sizeof *b);
    snprintf(b->text_path, sizeof b->text_path, "%s/baseline_text.json", dir);
    snprintf(b->numeric_path, sizeof b->numeric_path, "%s/baseline_numeric.json", dir);
    snprintf(b->ridge_path, sizeof b->ridge_path, "%s/baseline_ridge_%s.json", dir, split_name);
    int s = MILES_OK;
    if (access(b->text_path, F_OK) == 0) s = miles_baseline_load(&b->text, b->text_path);
    if (s == MILES_OK && access(b->numeric_path, F_OK) == 0) s = miles_baseline_load(&b->numeric, b->numeric_path);
    if (s == MILES_OK && access(b->ridge_path, F_OK) == 0) s = load_ridge(b, b->ridge_path);
    if (s == MILES_OK && !b->text && !b->numeric && !b->has_ridge)
        s = miles_set_error(MILES_EMISSING, "--compare %s: no baseline_text.json, baseline_numeric.json or "
                        "baseline_ridge_%s.json there (miles-baseline --data ... --out %s writes them)", dir,
                        split_name, dir);
    if (s != MILES_OK) tool_baselines_free(b);
    return s;
}

void tool_baselines_free(ToolBaselines *b) {
    miles_baseline_free(b->text);
    miles_baseline_free(b->numeric);
    b->text = b->numeric = NULL;
    b->has_ridge = 0;
}

static cJSON *pair(double lo, double hi) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, isfinite(lo) ? cJSON_CreateNumber(lo) : cJSON_CreateNull());
    cJSON_AddItemToArray(a, isfinite(hi) ? cJSON_CreateNumber(hi) : cJSON_CreateNull());
    return a;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);   /* z = +-inf when se = 0 (then p_value says 0) */
}

/* Miles' P(viral) against another model's p on the rows: out[key] */
static int pair_scores(const char *key, const char *name, const char *path, const double *p, const ToolCompareRows *r,
                       const MilesMetricsOptions *opt, cJSON *out) {
    MilesScoreComparison c;
    int s = miles_compare_scores(r->scores, p, r->rows->labels, (int)r->rows->n, opt, &c);
    if (s != MILES_OK) return tool_error_prefix(s, path);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(out, key);
    if (!o) o = cJSON_AddObjectToObject(out, key);
    cJSON_AddStringToObject(o, "baseline", name);
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddStringToObject(o, "test", "DeLong (two correlated ROC curves), two-sided");
    cJSON_AddNumberToObject(o, "n_pos", (double)c.n_pos);
    cJSON_AddNumberToObject(o, "n_neg", (double)c.n_neg);
    cJSON_AddNumberToObject(o, "auroc_miles", c.auroc_a);
    cJSON_AddNumberToObject(o, "auroc_baseline", c.auroc_b);
    cJSON_AddNumberToObject(o, "diff", c.diff);
    cJSON_AddNumberToObject(o, "var_miles", c.var_a);
    cJSON_AddNumberToObject(o, "var_baseline", c.var_b);
    cJSON_AddNumberToObject(o, "cov", c.cov);
    cJSON_AddNumberToObject(o, "se", c.se);
    add_num(o, "z", c.z);
    cJSON_AddNumberToObject(o, "p_value", c.p_value);
    cJSON_AddItemToObject(o, "ci", pair(c.ci_lo, c.ci_hi));
    cJSON_AddItemToObject(o, "bootstrap_ci", pair(c.boot_lo, c.boot_hi));
    cJSON_AddNumberToObject(o, "bootstrap_used", c.boot_used);
    cJSON_AddNumberToObject(o, "alpha", c.alpha);
    cJSON *ap = cJSON_AddObjectToObject(o, "average_precision");   /* paired bootstrap only */
    cJSON_AddNumberToObject(ap, "ap_miles", c.ap_a);
    cJSON_AddNumberToObject(ap, "ap_baseline", c.ap_b);
    cJSON_AddNumberToObject(ap, "diff", c.ap_diff);
    cJSON_AddItemToObject(ap, "bootstrap_ci", pair(c.ap_boot_lo, c.ap_boot_hi));
    return MILES_OK;
}

static void add_mae(cJSON *o, const char *key, const MilesMaeComparison *m) {
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "mae_miles", m->mae_a);
    cJSON_AddNumberToObject(x, "mae_baseline", m->mae_b);
    cJSON_AddNumberToObject(x, "diff", m->diff);
    cJSON_AddItemToObject(x, "bootstrap_ci", pair(m->boot_lo, m->boot_hi));
}

/* Miles' velocity against another model's on the rows: MAE in views/day (pr),
 * and in the target space (pt, clamped) when the other model's target t is
 * Miles' own (same kind, and for log1p_z the same mean and std) */
static int pair_velocity(const char *key, const char *name, const char *path, const MilesVelocityTarget *t,
                         const double *pt, const double *pr, const ToolCompareRows *r, const MilesMetricsOptions *opt,
                         cJSON *out) {
    const int n = (int)r->rows->n;
    MilesMaeComparison raw, tgt;
    int s = miles_compare_mae(r->vel_pred_raw, pr, r->vel_raw, n, opt, &raw);
    const MilesVelocityTarget *a = r->target;
    const int same = a->kind == t->kind && (a->kind == MILES_VTARGET_MINMAX || (a->mean == t->mean && a->std == t->std));
    if (s == MILES_OK && same) s = miles_compare_mae(r->vel_pred, pt, r->vel_target, n, opt, &tgt);
    if (s != MILES_OK) return tool_error_prefix(s, path);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(out, key);
    if (!o) {
        o = cJSON_AddObjectToObject(out, key);
        cJSON_AddStringToObject(o, "baseline", name);
        cJSON_AddStringToObject(o, "file", path);
    }
    cJSON_AddStringToObject(o, "velocity_target", miles_velocity_target_name(t->kind));
    add_mae(o, "views_per_day", &raw);
    if (same) add_mae(o, "target_space", &tgt);
    else cJSON_AddStringToObject(o, "target_space", "not compared: the other model's velocity target is not Miles'");
    return MILES_OK;
}

/* one classification baseline scored on the rows and paired with Miles */
static int compare_classifier(const MilesBaseline *bl, const char *path, const char *name, const ToolCompareRows *r,
                              const MilesMetricsOptions *opt, cJSON *out, const char *key, double *answers) {
    const MilesDataset *v = r->rows;
    MilesBaselineInfo info;
    miles_baseline_info(bl, &info);
    double *p = malloc(sizeof(double) * (size_t)v->n);
    const char **titles = info.text ? malloc(sizeof(char *) * (size_t)v->n) : NULL;
    if (!p || (info.text && !titles)) { free(p); free(titles); return MILES_ENOMEM; }
    for (int64_t i = 0; titles && i < v->n; i++) titles[i] = miles_prepared_title(r->prep, r->split, i);
    int s = miles_baseline_predict_proba(bl, titles, titles ? NULL : v->features, (int)v->n, MILES_NUM_FEATURES, p);
    if (s != MILES_OK) s = tool_error_prefix(s, path);
    if (s == MILES_OK) s = pair_scores(key, name, path, p, r, opt, out);
    if (s == MILES_OK && answers) memcpy(answers, p, sizeof(double) * (size_t)v->n);
    free(p);
    free(titles);
    return s;
}

/* the ridge baseline's velocity on the rows, paired with Miles' */
static int compare_ridge(const ToolBaselines *b, const ToolCompareRows *r, const MilesMetricsOptions *opt,
                         cJSON *out) {
    const MilesDataset *v = r->rows;
    const int n = (int)v->n;
    if (!r->vel_raw || !r->vel_pred_raw) return miles_set_error(MILES_EMISSING, "--compare: the rows have no velocities");
    double *pt = malloc(sizeof(double) * (size_t)n), *pr = malloc(sizeof(double) * (size_t)n);
    if (!pt || !pr) { free(pt); free(pr); return MILES_ENOMEM; }
    int s = miles_ridge_predict(v->features, n, MILES_NUM_FEATURES, b->coef, b->intercept, pt);
    if (s != MILES_OK) s = tool_error_prefix(s, b->ridge_path);
    for (int i = 0; s == MILES_OK && i < n; i++) {
        pt[i] = miles_velocity_target_clamp(&b->ridge_target, pt[i]);   /* as miles-baseline reported it */
        pr[i] = miles_velocity_target_inverse(&b->ridge_target, r->scaler, pt[i]);
    }
    if (s == MILES_OK)
        s = pair_velocity("ridge", "ridge (18 features)", b->ridge_path, &b->ridge_target, pt, pr, r, opt, out);
    if (s == MILES_OK && r->ridge_pred_raw) memcpy(r->ridge_pred_raw, pr, sizeof(double) * (size_t)n);
    free(pt);
    free(pr);
    return s;
}

static void options(const ToolCompareRows *r, MilesMetricsOptions *opt) {
    miles_metrics_options_default(opt);
    opt->n_bootstrap = r->n_bootstrap;
    opt->seed = r->seed;
}

int tool_compare_model(const char *key, const char *name, const char *path, const double *scores,
                       const double *vel_pred, const double *vel_pred_raw, const MilesVelocityTarget *target,
                       const ToolCompareRows *r, void *json) {
    MilesMetricsOptions opt;
    options(r, &opt);
    int s = pair_scores(key, name, path, scores, r, &opt, json);
    if (s == MILES_OK && r->vel_raw && r->vel_pred_raw)
        s = pair_velocity(key, name, path, target, vel_pred, vel_pred_raw, r, &opt, json);
    return s;
}

int tool_compare_run(const ToolBaselines *b, const ToolCompareRows *r, void *json) {
    MilesMetricsOptions opt;
    options(r, &opt);
    int s = MILES_OK;
    if (b->text) s = compare_classifier(b->text, b->text_path, "TF-IDF + LR", r, &opt, json, "text", r->text_scores);
    if (s == MILES_OK && b->numeric)
        s = compare_classifier(b->numeric, b->numeric_path, "numeric LR", r, &opt, json, "numeric", r->numeric_scores);
    if (s == MILES_OK && b->has_ridge) s = compare_ridge(b, r, &opt, json);
    return s;
}

typedef struct { double p; cJSON *o; } HolmItem;

static int cmp_holm(const void *a, const void *b) {
    double x = ((const HolmItem *)a)->p, y = ((const HolmItem *)b)->p;
    return (x > y) - (x < y);
}

int tool_compare_holm(void *json) {
    HolmItem it[64];
    int m = 0;
    cJSON *o;
    cJSON_ArrayForEach(o, (cJSON *)json) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "p_value");
        if (cJSON_IsNumber(p) && m < 64) it[m++] = (HolmItem){p->valuedouble, o};
    }
    /* ascending p; the i-th smallest (0-based) is multiplied by m - i, and the
     * adjusted values are made non-decreasing (statsmodels' multipletests "holm") */
    qsort(it, (size_t)m, sizeof *it, cmp_holm);
    double run = 0;
    for (int i = 0; i < m; i++) {
        double adj = fmin(1.0, (double)(m - i) * it[i].p);
        if (adj < run) adj = run;
        run = adj;
        cJSON_AddNumberToObject(it[i].o, "p_holm", adj);
        cJSON_AddNumberToObject(it[i].o, "holm_m", m);
    }
    return m;
}

/* a number of the tree, also once the report made it an exact raw item */
static double value(const cJSON *x) {
    if (cJSON_IsNumber(x)) return x->valuedouble;
    if (cJSON_IsRaw(x) && x->valuestring) return strtod(x->valuestring, NULL);
    return NAN;
}

static double item(const cJSON *o, const char *k) { return value(cJSON_GetObjectItemCaseSensitive(o, k)); }

static void interval(char *buf, size_t n, const cJSON *a, const char *fmt) {
    double lo = value(cJSON_GetArrayItem(a, 0)), hi = value(cJSON_GetArrayItem(a, 1));
    if (isnan(lo) || isnan(hi)) { snprintf(buf, n, "-"); return; }
    char l[32], h[32];
    snprintf(l, sizeof l, fmt, lo);
    snprintf(h, sizeof h, fmt, hi);
    snprintf(buf, n, "[%s, %s]", l, h);
}

void tool_compare_print(const void *json, const char *split_name, const char *split_words, int n) {
    const cJSON *j = json, *o;
    printf("\nPaired with other models on the same rows (%s split%s, n=%d; 95%% intervals)\n", split_name, split_words, n);
    int head = 0, holm = 0;
    cJSON_ArrayForEach(o, j) if (item(o, "holm_m") > 1) holm = (int)item(o, "holm_m");
    cJSON_ArrayForEach(o, j) {
        if (!cJSON_GetObjectItemCaseSensitive(o, "p_value")) continue;
        if (!head++)
            printf("  %-14s %7s %8s %9s  %-20s %-20s %7s %9s%s\n", "other", "AUROC", "this", "diff", "DeLong CI",
                   "bootstrap CI", "z", "p", holm ? "    p Holm" : "");
        char ci[80], bci[80], z[16];
        interval(ci, sizeof ci, cJSON_GetObjectItem(o, "ci"), "%+.4f");
        interval(bci, sizeof bci, cJSON_GetObjectItem(o, "bootstrap_ci"), "%+.4f");
        double zv = item(o, "z");
        if (isnan(zv)) snprintf(z, sizeof z, "%s", item(o, "diff") > 0 ? "inf" : "-inf");
        else snprintf(z, sizeof z, "%.2f", zv);
        printf("  %-14s %7.4f %8.4f %+9.4f  %-20s %-20s %7s %9.3g", cJSON_GetObjectItem(o, "baseline")->valuestring,
               item(o, "auroc_baseline"), item(o, "auroc_miles"), item(o, "diff"), ci, bci, z, item(o, "p_value"));
        if (holm) printf(" %9.3g", item(o, "p_holm"));
        putchar('\n');
    }
    head = 0;
    cJSON_ArrayForEach(o, j) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "average_precision");
        if (!a) continue;
        if (!head++) printf("  %-14s %7s %8s %9s  %s\n", "PR-AUC", "other", "this", "diff", "bootstrap CI");
        char bci[80];
        interval(bci, sizeof bci, cJSON_GetObjectItem(a, "bootstrap_ci"), "%+.4f");
        printf("  %-14s %7.4f %8.4f %+9.4f  %s\n", cJSON_GetObjectItem(o, "baseline")->valuestring,
               item(a, "ap_baseline"), item(a, "ap_miles"), item(a, "diff"), bci);
    }
    head = 0;
    cJSON_ArrayForEach(o, j) {
        if (!cJSON_GetObjectItemCaseSensitive(o, "views_per_day")) continue;
        if (!head++)
            printf("  %-26s %12s %12s %12s  %s\n", "velocity MAE", "other", "this", "diff", "bootstrap CI");
        const char *spaces[2] = {"views_per_day", "target_space"};
        const int ridge = !strcmp(o->string, "ridge");
        for (int k = 0; k < 2; k++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, spaces[k]);
            char label[64], bci[80];
            snprintf(label, sizeof label, "%s, %s", ridge ? "ridge" : cJSON_GetObjectItem(o, "baseline")->valuestring,
                     k ? cJSON_GetObjectItem(o, "velocity_target")->valuestring : "views/day");
            if (!cJSON_IsObject(x)) {
                printf("  %-26s %s\n", label, cJSON_IsString(x) ? x->valuestring : "-");
                continue;
            }
            interval(bci, sizeof bci, cJSON_GetObjectItem(x, "bootstrap_ci"), "%+.4g");
            printf("  %-26s %12.5g %12.5g %+12.4g  %s\n", label, item(x, "mae_baseline"), item(x, "mae_miles"),
                   item(x, "diff"), bci);
        }
    }
    cJSON_ArrayForEach(o, j) if (!strncmp(o->string, "checkpoint", 10))
        printf("  %s: %s\n", cJSON_GetObjectItem(o, "baseline")->valuestring, cJSON_GetObjectItem(o, "file")->valuestring);
    if (holm) printf("  p Holm: Holm's adjustment over the %d AUROC tests of this run\n", holm);
    printf("  diff = this model - the other (AUROC: > 0 favours this model; MAE: < 0 favours it)\n");
}
