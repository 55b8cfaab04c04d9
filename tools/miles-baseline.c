/*
 * miles-baseline — the baselines Miles is compared with, on the same splits and
 * with the same report as miles-eval:
 *   text:    TF-IDF over raw titles + L2 logistic regression (the original
 *            project's baseline: max_features 5000, English stop words, min_df 2,
 *            max_df 0.95, unigrams, C 1.0, class_weight balanced, lbfgs);
 *   numeric: L2 logistic regression on the 18 standardized features;
 *   ridge:   ridge regression of the velocity target (log1p_z by default, as
 *            the default recipe; or minmax) on the 18 standardized features.
 *
 *   miles-baseline --data data.milesdat --kind both --out reports/
 */
#include "miles.h"
#include "report.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: miles-baseline --data FILE [options]\n"
"  --data FILE          prepared data file (miles-data prepare)\n"
"  --kind K             text|numeric|ridge|both|all (default both = text + numeric;\n"
"                       all = the three)\n"
"  --split S            evaluation split: test|val (default test); fit on train\n"
"  --eval-data FILE     evaluate on FILE's split instead (fitted on --data's train split):\n"
"                       another source prepared under the same scaler and label threshold,\n"
"                       e.g. miles-data prepare --checkpoint of a model trained on --data\n"
"  --out DIR            reports and fitted models (default reports/baseline)\n"
"TF-IDF (scikit-learn TfidfVectorizer semantics):\n"
"  --max-features N     5000 (0 = no limit)   --min-df N   2   --max-df X   0.95\n"
"  --ngram-max N        1                      --no-stop-words   --no-lowercase\n"
"  --sublinear-tf\n"
"Logistic regression (scikit-learn LogisticRegression, lbfgs):\n"
"  --C X                1.0                    --class-weight balanced|none (default balanced)\n"
"  --tol X              1e-10                  --max-iter N  10000\n"
"Ridge (velocity; scikit-learn Ridge):\n"
"  --alpha X            1.0                    --velocity-target log1p_z|minmax (default log1p_z)\n"
"Report:\n"
"  --bootstrap N        1000                   --seed N 42    --no-plots\n"
"  -h, --help\n");
}

static const char *g_eval_data; /* --eval-data (NULL: the --data file's split), named in the reports */

/* Ridge regression of the velocity target on the 18 standardized features:
 * fitted on train (target transform fitted on train, as the trainer does),
 * evaluated on the split with the velocity report. */
static int run_ridge(MilesPrepared *p, MilesPrepared *e, int split, const char *split_name, const char *out_dir,
                     double alpha, int vkind, int boot, uint64_t seed) {
    MilesDataset tr, ev;
    int s = miles_prepared_split(p, MILES_SPLIT_TRAIN, &tr);
    if (s == MILES_OK) s = miles_prepared_split(e, split, &ev);
    if (s != MILES_OK) return tool_fail("miles-baseline", s);
    if (tr.n == 0 || ev.n == 0 || !tr.velocity_raw || !ev.velocity_raw) {
        fprintf(stderr, "miles-baseline: ridge needs non-empty train and %s splits with velocities\n", split_name);
        return 1;
    }
    MilesScaler *sc = NULL;
    s = miles_scaler_from_json(&sc, miles_prepared_scaler_json(p));
    MilesVelocityTarget vt;
    if (s == MILES_OK) s = miles_velocity_target_fit(&vt, vkind, tr.velocity_raw, tr.n);
    if (s != MILES_OK) return tool_fail("miles-baseline: ridge", s);
    const int F = MILES_NUM_FEATURES;
    double *y = malloc(sizeof(double) * tr.n), *yt = malloc(sizeof(double) * ev.n), *pt = malloc(sizeof(double) * ev.n);
    double *pr = malloc(sizeof(double) * ev.n), *ytr = malloc(sizeof(double) * tr.n);
    if (!y || !yt || !pt || !pr || !ytr) { fprintf(stderr, "miles-baseline: out of memory\n"); return 1; }
    for (int64_t i = 0; i < tr.n; i++) y[i] = miles_velocity_target_transform(&vt, sc, tr.velocity_raw[i]);
    for (int64_t i = 0; i < ev.n; i++) yt[i] = miles_velocity_target_transform(&vt, sc, ev.velocity_raw[i]);
    double w[MILES_NUM_FEATURES], b;
    s = miles_ridge_fit(tr.features, (int)tr.n, F, y, alpha, w, &b);
    if (s == MILES_OK) s = miles_ridge_predict(ev.features, (int)ev.n, F, w, b, pt);
    if (s != MILES_OK) return tool_fail("miles-baseline: ridge", s);
    for (int64_t i = 0; i < ev.n; i++) pr[i] = miles_velocity_target_inverse(&vt, sc, pt[i]);
    memcpy(ytr, y, sizeof(double) * tr.n);
    cJSON *j = cJSON_CreateObject();
    cJSON *run = cJSON_AddObjectToObject(j, "run");
    cJSON_AddStringToObject(run, "baseline", "ridge");
    if (g_eval_data) cJSON_AddStringToObject(run, "eval_data", g_eval_data);
    cJSON_AddItemToObject(run, "split_rule", tool_split_json(e));   /* how the scored file's rows were split */
    cJSON_AddStringToObject(run, "creator_avg_views", tool_creator_avg_name(e));
    cJSON_AddNumberToObject(run, "alpha", alpha);
    cJSON_AddStringToObject(run, "velocity_target", miles_velocity_target_name(vt.kind));
    /* exact digits: miles-eval --compare rebuilds the model from these */
    tool_json_exact(run, "target_mean", vt.mean);
    tool_json_exact(run, "target_std", vt.std);
    cJSON *wa = cJSON_AddArrayToObject(run, "coef");
    for (int k = 0; k < F; k++) tool_json_exact(wa, NULL, w[k]);
    tool_json_exact(run, "intercept", b);
    int64_t nclamp = tool_velocity_clamp(&vt, pt, ev.n, run); /* target-space metrics as the views/day */
    if (nclamp) printf("velocity: %lld of %lld outputs clamped to the training target range\n", (long long)nclamp,
                       (long long)ev.n);
    printf("ridge baseline (%s split%s, n=%lld; alpha %g, target %s)\n", split_name, tool_split_words(e),
           (long long)ev.n, alpha, miles_velocity_target_name(vt.kind));
    ToolVelocity tv = {pt, yt, pr, ev.velocity_raw, (int)ev.n, miles_median(ytr, (int)tr.n),
                       miles_median(tr.velocity_raw, (int)tr.n), miles_velocity_target_name(vt.kind), boot, seed};
    s = tool_velocity_section(&tv, j);
    if (s != MILES_OK) { cJSON_Delete(j); return tool_fail("miles-baseline: ridge", s); }
    char path[4300];
    snprintf(path, sizeof path, "%s/baseline_ridge_%s.json", out_dir, split_name);
    tool_json_exact_all(j);
    char *txt = cJSON_Print(j);
    int ws = txt ? tool_write_text_atomic(path, txt) : MILES_ENOMEM;
    free(txt);
    cJSON_Delete(j);
    if (ws != MILES_OK) return tool_fail("miles-baseline: ridge", ws);
    printf("report: %s\n", path);
    free(y); free(yt); free(pt); free(pr); free(ytr);
    miles_scaler_free(sc);
    return 0;
}

/* Fitted on p's training split, evaluated on e's `split` (e = p unless --eval-data). */
static int run_one(const char *kind, MilesPrepared *p, MilesPrepared *e, int split, const char *split_name,
                   const char *out_dir, const MilesTfidfConfig *tc, const MilesLogRegConfig *lc, int boot,
                   uint64_t seed, int plots) {
    MilesDataset tr, ev;
    int s = miles_prepared_split(p, MILES_SPLIT_TRAIN, &tr);
    if (s == MILES_OK) s = miles_prepared_split(e, split, &ev);
    if (s != MILES_OK) return tool_fail("miles-baseline", s);
    if (tr.n == 0 || ev.n == 0) { fprintf(stderr, "miles-baseline: empty train or %s split\n", split_name); return 1; }
    int text = !strcmp(kind, "text");
    MilesBaseline *b = NULL;
    const char **tr_titles = NULL, **ev_titles = NULL;
    if (text) {
        tr_titles = malloc(sizeof(char *) * tr.n);
        ev_titles = malloc(sizeof(char *) * ev.n);
        if (!tr_titles || !ev_titles) { fprintf(stderr, "miles-baseline: out of memory\n"); return 1; }
        for (int64_t i = 0; i < tr.n; i++) tr_titles[i] = miles_prepared_title(p, MILES_SPLIT_TRAIN, i);
        for (int64_t i = 0; i < ev.n; i++) ev_titles[i] = miles_prepared_title(e, split, i);
        s = miles_baseline_fit_text(&b, tr_titles, tr.labels, (int)tr.n, tc, lc);
    } else {
        s = miles_baseline_fit_numeric(&b, tr.features, (int)tr.n, MILES_NUM_FEATURES, tr.labels, lc);
    }
    if (s != MILES_OK) return tool_fail("miles-baseline: fit", s);
    double *proba = malloc(sizeof(double) * ev.n);
    if (!proba) return 1;
    s = miles_baseline_predict_proba(b, text ? ev_titles : NULL, text ? NULL : ev.features, (int)ev.n,
                                     MILES_NUM_FEATURES, proba);
    if (s != MILES_OK) return tool_fail("miles-baseline: predict", s);
    char path[4300], prefix[128], title[256];
    snprintf(path, sizeof path, "%s/baseline_%s.json", out_dir, kind);
    if ((s = miles_baseline_save(b, path)) != MILES_OK) return tool_fail("miles-baseline: save", s);
    /* the validation-F1 threshold, as the model gets, so "at stored threshold" compares fairly */
    double thr = NAN;
    MilesDataset va;
    if (miles_prepared_split(p, MILES_SPLIT_VAL, &va) == MILES_OK && va.n > 0 && split != MILES_SPLIT_VAL) {
        double *pv = malloc(sizeof(double) * va.n);
        const char **vt = text ? malloc(sizeof(char *) * va.n) : NULL;
        if (pv && (!text || vt)) {
            for (int64_t i = 0; text && i < va.n; i++) vt[i] = miles_prepared_title(p, MILES_SPLIT_VAL, i);
            MilesMetricsOptions mo;
            miles_metrics_options_default(&mo);
            mo.n_bootstrap = 0;
            MilesMetrics vm;
            if (miles_baseline_predict_proba(b, vt, text ? NULL : va.features, (int)va.n, MILES_NUM_FEATURES, pv) == MILES_OK) {
                miles_metrics_compute(&vm, pv, va.labels, (int)va.n, NULL, NULL, &mo);
                if (vm.valid & MILES_M_BEST_F1) thr = vm.best_f1_threshold;
            }
        }
        free(pv);
        free(vt);
    }
    snprintf(prefix, sizeof prefix, "baseline_%s_%s", kind, split_name);
    snprintf(title, sizeof title, "%s baseline (%s split%s, n=%lld)", text ? "TF-IDF + LR" : "numeric LR",
             split_name, tool_split_words(e), (long long)ev.n);
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "baseline", kind);
    cJSON_AddStringToObject(extra, "model_file", path);
    if (g_eval_data) cJSON_AddStringToObject(extra, "eval_data", g_eval_data);
    cJSON_AddItemToObject(extra, "split_rule", tool_split_json(e));
    cJSON_AddStringToObject(extra, "creator_avg_views", tool_creator_avg_name(e));
    MilesBaselineInfo info;
    miles_baseline_info(b, &info);
    if (text) cJSON_AddNumberToObject(extra, "vocabulary_size", info.vocab_size);
    cJSON_AddNumberToObject(extra, "lbfgs_iterations", info.n_iter);
    cJSON_AddBoolToObject(extra, "converged", info.converged);
    ToolReport r = {out_dir, prefix, title, proba, ev.labels, (int)ev.n, NULL, NULL, NULL, NULL,
                    thr, boot, seed, plots, extra};
    int status = tool_report_run(&r);
    cJSON_Delete(extra);
    free(proba);
    free(tr_titles);
    free(ev_titles);
    miles_baseline_free(b);
    return status;
}

int main(int argc, char **argv) {
    tool_init(argv);
    const char *data = NULL, *kind = "both", *split_name = "test", *out = "reports/baseline";
    MilesTfidfConfig tc;
    MilesLogRegConfig lc;
    miles_tfidf_config_default(&tc);
    miles_logreg_config_default(&lc);
    int boot = 1000, plots = 1, vkind = MILES_VTARGET_LOG1P_Z;
    double seed = 42, d, alpha = 1.0;
    static const struct option lo[] = {
        {"data", 1, 0, 'd'}, {"kind", 1, 0, 'k'}, {"split", 1, 0, 's'}, {"out", 1, 0, 'o'},
        {"max-features", 1, 0, 'F'}, {"min-df", 1, 0, 'm'}, {"max-df", 1, 0, 'M'}, {"ngram-max", 1, 0, 'n'},
        {"no-stop-words", 0, 0, 'W'}, {"no-lowercase", 0, 0, 'L'}, {"sublinear-tf", 0, 0, 'T'},
        {"C", 1, 0, 'C'}, {"class-weight", 1, 0, 'w'}, {"tol", 1, 0, 'x'}, {"max-iter", 1, 0, 'i'},
        {"bootstrap", 1, 0, 'b'}, {"seed", 1, 0, 'S'}, {"alpha", 1, 0, 'A'},
        {"velocity-target", 1, 0, 'V'}, {"no-plots", 0, 0, 'P'}, {"eval-data", 1, 0, 'E'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'E': g_eval_data = optarg; break;
        case 'k': kind = optarg; break;
        case 's': split_name = optarg; break;
        case 'o': out = optarg; break;
        case 'F': if (tool_parse_int(optarg, "--max-features", 0, 1 << 30, &tc.max_features)) return 2; break;
        case 'm': if (tool_parse_double(optarg, "--min-df", 0, 1e9, &tc.min_df)) return 2; tc.min_df_is_fraction = tc.min_df < 1 && tc.min_df > 0; break;
        case 'M': if (tool_parse_double(optarg, "--max-df", 0, 1e9, &tc.max_df)) return 2; tc.max_df_is_fraction = tc.max_df <= 1; break;
        case 'n': if (tool_parse_int(optarg, "--ngram-max", 1, 5, &tc.ngram_max)) return 2; break;
        case 'W': tc.stop_words_english = 0; break;
        case 'L': tc.lowercase = 0; break;
        case 'T': tc.sublinear_tf = 1; break;
        case 'C': if (tool_parse_double(optarg, "--C", 1e-12, 1e12, &lc.C)) return 2; break;
        case 'w':
            if (!strcmp(optarg, "balanced")) lc.class_weight_balanced = 1;
            else if (!strcmp(optarg, "none")) { lc.class_weight_balanced = 0; lc.class_weight[0] = lc.class_weight[1] = 1; }
            else { fprintf(stderr, "--class-weight must be balanced or none\n"); return 2; }
            break;
        case 'x': if (tool_parse_double(optarg, "--tol", 0, 1, &lc.tol)) return 2; break;
        case 'i': if (tool_parse_int(optarg, "--max-iter", 1, 1 << 30, &lc.max_iter)) return 2; break;
        case 'b': if (tool_parse_int(optarg, "--bootstrap", 0, 1000000, &boot)) return 2; break;
        case 'S': if (tool_parse_double(optarg, "--seed", 0, 9e15, &d)) return 2; seed = d; break;
        case 'P': plots = 0; break;
        case 'A': if (tool_parse_double(optarg, "--alpha", 0, 1e12, &alpha)) return 2; break;
        case 'V':
            if (miles_velocity_target_parse(optarg, &vkind) != MILES_OK) {
                fprintf(stderr, "miles-baseline: --velocity-target must be log1p_z or minmax\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!data) { usage(stderr); return 2; }
    int split = !strcmp(split_name, "test") ? MILES_SPLIT_TEST : !strcmp(split_name, "val") ? MILES_SPLIT_VAL : -1;
    if (split < 0) { fprintf(stderr, "miles-baseline: --split must be test or val\n"); return 2; }
    if (strcmp(kind, "text") && strcmp(kind, "numeric") && strcmp(kind, "both") && strcmp(kind, "ridge") &&
        strcmp(kind, "all")) {
        fprintf(stderr, "miles-baseline: --kind must be text, numeric, ridge, both or all\n");
        return 2;
    }
    if (tool_mkdirs(out)) return 1;
    MilesPrepared *p = NULL, *e = NULL;
    int s = miles_prepared_open(&p, data);
    if (s == MILES_OK && g_eval_data) s = miles_prepared_open(&e, g_eval_data);
    if (s != MILES_OK) return tool_fail("miles-baseline", s);
    /* standardized features and labels mean the same only under one scaler and threshold */
    if (e && strcmp(miles_prepared_scaler_json(p), miles_prepared_scaler_json(e)) != 0) {
        fprintf(stderr, "miles-baseline: %s was prepared with another scaler/label threshold than %s; prepare it under "
                "%s's (miles-data prepare --checkpoint with a model trained on it)\n", g_eval_data, data, data);
        miles_prepared_free(p);
        miles_prepared_free(e);
        return 1;
    }
    MilesPrepared *ev = e ? e : p;
    int status = 0;
    const int all = !strcmp(kind, "all"), both = !strcmp(kind, "both");
    if (all || both || !strcmp(kind, "text"))
        status |= run_one("text", p, ev, split, split_name, out, &tc, &lc, boot, (uint64_t)seed, plots);
    if (all || both || !strcmp(kind, "numeric"))
        status |= run_one("numeric", p, ev, split, split_name, out, &tc, &lc, boot, (uint64_t)seed, plots);
    if (all || !strcmp(kind, "ridge"))
        status |= run_ridge(p, ev, split, split_name, out, alpha, vkind, boot, (uint64_t)seed);
    miles_prepared_free(p);
    miles_prepared_free(e);
    return status;
}
