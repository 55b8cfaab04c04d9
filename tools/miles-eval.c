/*
 * miles-eval — evaluate a checkpoint on a split of a prepared data file.
 *
 *   miles-eval --checkpoint checkpoints/run1/best.safetensors --data data.milesdat
 *   miles-eval --checkpoint ... --data ... --split val --out reports/ --bootstrap 0
 *
 * Reports AUROC, PR-AUC, precision at 10% recall, accuracy/precision/recall/F1
 * and the confusion matrix at 0.5 and at the checkpoint's stored threshold, ECE
 * and Brier, velocity MAE/RMSE/R2 (in the model's target space and in views/day),
 * Spearman rho, the constant-median reference and bootstrap 95% intervals;
 * JSON + table + PNG plots.  --compare DIR|CHECKPOINT (repeatable) pairs the
 * model with the baselines miles-baseline saved in DIR and with other
 * checkpoints, on the same rows (DeLong's test, Holm's adjustment over the
 * run's tests; compare.h).  --calibrate fits Platt scaling on the val split
 * (calibrate.h).
 */
#include "miles.h"
#include "calibrate.h"
#include "compare.h"
#include "report.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: miles-eval --checkpoint FILE --data FILE [options]\n"
"  -c, --checkpoint FILE  best.safetensors / last.safetensors written by miles-train\n"
"  --data FILE         prepared data file (the one the model was trained with, or one\n"
"                      prepared with the same scaler)\n"
"  --split S           test|val|train (default test)\n"
"  --out DIR           where eval_<split>.json and the PNG plots go (default: the\n"
"                      checkpoint's directory)\n"
"  --bootstrap N       bootstrap resamples for 95%% intervals (default 1000; 0 = off)\n"
"  --seed N            bootstrap seed (default 42)\n"
"  --batch-size N      inference batch (default 64)\n"
"  --threads N         OpenMP/BLAS threads\n"
"  --no-plots          skip the PNG plots\n"
"  --predictions FILE  one CSV row per evaluated row (written atomically): row_id, title,\n"
"                      label, viral_score, predicted_viral (at the stored threshold, else\n"
"                      0.5), velocity and predicted_velocity (views/day); with --compare\n"
"                      also the other models' answers\n"
"  --compare DIR|CHECKPOINT\n"
"                      pair the model with the baselines miles-baseline --out DIR saved\n"
"                      (baseline_text.json, baseline_numeric.json, baseline_ridge_<split>.json)\n"
"                      or with another checkpoint for the same data, scored on the same rows:\n"
"                      AUROC difference with DeLong's test and a paired-bootstrap interval,\n"
"                      velocity MAE difference (\"comparisons\" in the report).  Repeatable\n"
"                      (one DIR, up to 8 in all; checkpoints B, C, ...): the p-values then\n"
"                      also get Holm's adjustment over the run's AUROC tests (\"p_holm\")\n"
"  --compare-data FILE after a --compare CHECKPOINT: the file that checkpoint was trained\n"
"                      with, when it is not --data (an ablation prepared with\n"
"                      --drop-features, ...); its split must hold the same rows (ids,\n"
"                      labels, velocities, order)\n"
"  --calibrate         fit Platt scaling (a sigmoid of the score's logit) on the val\n"
"                      split and report the evaluated split's probabilities before\n"
"                      and after: mean, ECE, Brier score, log loss (\"calibration\" in\n"
"                      the report, <prefix>_calibrated.png; a calibrated_score column\n"
"                      in --predictions); the ranking and the stored threshold's\n"
"                      decisions stay (not with --split val: in-sample).  A checkpoint\n"
"                      that holds a calibration gets this section from it without\n"
"                      the option; the report's other numbers are the model's own\n"
"  --save-calibrated FILE  with --calibrate: a copy of the checkpoint holding the fitted\n"
"                      calibration (written atomically; may be the checkpoint itself):\n"
"                      miles-predict and miles-serve then answer recalibrated scores\n"
"  --device cpu|cuda|cuda:N   where to score (default cpu)\n"
"  --precision NAME    fp32 (default), tf32/fp16/bf16 on CUDA; bf16/int8 on the CPU\n"
"                      (bf16: avx512_bf16; int8: AVX2 + FMA, VNNI where present;\n"
"                      refused where missing)\n"
"  -q, --quiet         no progress on stderr (rows scored, rate, ETA)\n"
"  -h, --help\n"
"Exit status: 0 ok, 1 error, 3 some metric undefined (e.g. a single-class split).\n");
}

/* --predictions: a CSV row per evaluated row, every number to the last digit
 * (tool_put_double), so the report's metrics can be recomputed from the file. */
static int write_predictions(const char *path, const MilesPrepared *prep, int split, const MilesDataset *v,
                             const double *scores, double thr, const double *vpr, int n_extra,
                             const char *const *extra_names, double *const *extra) {
    MilesAtomicFile af;
    TOOL_TRY(miles_atomic_open(&af, path));
    FILE *f = af.fp;
    fputs("row_id,title,label,viral_score,predicted_viral,velocity,predicted_velocity", f);
    for (int k = 0; k < n_extra; k++) fprintf(f, ",%s", extra_names[k]);
    fputc('\n', f);
    for (int64_t i = 0; i < v->n; i++) {
        tool_csv_cell(f, miles_prepared_row_id(prep, split, i));
        fputc(',', f);
        tool_csv_cell(f, miles_prepared_title(prep, split, i));
        fprintf(f, ",%d,", (int)v->labels[i]);
        tool_put_double(f, scores[i]);
        fprintf(f, ",%d,", scores[i] >= thr);
        if (v->velocity_raw) {
            tool_put_double(f, v->velocity_raw[i]);
            fputc(',', f);
            tool_put_double(f, vpr[i]);
        } else {
            fputc(',', f);
        }
        for (int k = 0; k < n_extra; k++) {
            fputc(',', f);
            tool_put_double(f, extra[k][i]);
        }
        fputc('\n', f);
    }
    if (ferror(f)) {
        miles_atomic_abort(&af);
        return miles_set_error(MILES_EIO, "%s: write failed", path);
    }
    return miles_atomic_commit(&af);
}

#define MAX_COMPARE 8

/* one --compare: a baselines directory, or a checkpoint scored on its data */
typedef struct {
    const char *path, *data;     /* data: --compare-data, or NULL (= --data) */
    int is_dir;
    MilesCheckpoint *ck;
    MilesPrepared *prep;         /* what ck is scored on (the evaluated file's when data is NULL) */
    MilesDataset rows;
    char key[16], name[16];      /* "checkpoint" / "checkpoint_2", "checkpoint B" / "checkpoint C" */
} Compared;

/* miles-eval --compare CHECKPOINT: the other model on the same rows, as the
 * first is scored (its own target space, clamped, and views/day). */
static int score_other(MilesCheckpoint *ck, const char *name, const MilesDataset *v, const char *device,
                       MilesPrecision precision, int batch, int quiet, double *scores, double *vp, double *vpr,
                       MilesVelocityTarget *t) {
    MilesModel *m = NULL;
    MilesScaler *sc = NULL;
    int s = miles_checkpoint_model(ck, &m);
    if (s == MILES_OK) s = miles_checkpoint_scaler(ck, &sc);
    if (s == MILES_OK) s = miles_checkpoint_velocity_target(ck, t);
    if (s == MILES_OK) {
        ToolProgress pg;
        char what[64];
        snprintf(what, sizeof what, "scored (%s)", name);
        tool_progress_start(&pg, !quiet, what, "rows", v->n, 0);
        s = miles_predict_dataset_progress(m, device, precision, v, batch, miles_model_config(m)->max_position_embeddings,
                                           scores, vp, tool_progress_cb, &pg);
        if (s == MILES_OK) tool_progress_end(&pg, v->n);
    }
    if (s == MILES_OK) {
        tool_velocity_clamp(t, vp, v->n, NULL);
        for (int64_t i = 0; i < v->n; i++) vpr[i] = miles_velocity_target_inverse(t, sc, vp[i]);
    }
    miles_scaler_free(sc);
    miles_model_free(m);
    return s;
}

/* --compare-data: a paired comparison needs the same rows in both files'
 * split; a mismatch is named (row, field, both values) and 1 returned. */
static int same_rows(const MilesPrepared *a, const MilesPrepared *b, int split, const MilesDataset *va,
                     const MilesDataset *vb, const char *na, const char *nb) {
    if (!nb) return 0;   /* the same file */
    if (va->n != vb->n) {
        fprintf(stderr, "miles-eval: --compare-data %s: its split holds %lld rows, %s's %lld: not the same rows\n", nb,
                (long long)vb->n, na, (long long)va->n);
        return 1;
    }
    for (int64_t i = 0; i < va->n; i++) {
        const char *ia = miles_prepared_row_id(a, split, i), *ib = miles_prepared_row_id(b, split, i);
        const char *what = strcmp(ia ? ia : "", ib ? ib : "") ? "row_id"
                           : va->labels[i] != vb->labels[i] ? "label"
                           : (va->velocity_raw && vb->velocity_raw && va->velocity_raw[i] != vb->velocity_raw[i])
                               ? "velocity"
                               : NULL;
        if (what) {
            fprintf(stderr, "miles-eval: --compare-data %s: row %lld of the split differs from %s's in its %s "
                    "(%s vs %s): the two files must hold the same rows (same source, seed and split)\n", nb,
                    (long long)i, na, what, ib ? ib : "", ia ? ia : "");
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    tool_init(argv);
    const char *ckpt = NULL, *data = NULL, *split_name = "test", *out = NULL, *pred_path = NULL, *save_cal = NULL;
    Compared cmpv[MAX_COMPARE];
    int ncmp = 0;
    memset(cmpv, 0, sizeof cmpv);
    int boot = 1000, batch = 64, threads = 0, plots = 1, quiet = 0, calibrate = 0;
    const char *device = NULL;
    MilesPrecision precision = MILES_PRECISION_FP32;
    double seed = 42;
    static const struct option lo[] = {
        {"checkpoint", 1, 0, 'c'}, {"data", 1, 0, 'd'}, {"split", 1, 0, 's'}, {"out", 1, 0, 'o'},
        {"bootstrap", 1, 0, 'b'}, {"seed", 1, 0, 'S'}, {"batch-size", 1, 0, 'B'}, {"threads", 1, 0, 't'},
        {"no-plots", 0, 0, 'P'}, {"help", 0, 0, 'h'}, {"device", 1, 0, 'D'}, {"precision", 1, 0, 'R'},
        {"quiet", 0, 0, 'q'}, {"compare", 1, 0, 'C'},
        {"predictions", 1, 0, 'W'}, {"compare-data", 1, 0, 'E'}, {"calibrate", 0, 0, 'K'},
        {"save-calibrated", 1, 0, 'L'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hqc:", lo, NULL)) != -1) {
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 'd': data = optarg; break;
        case 's': split_name = optarg; break;
        case 'o': out = optarg; break;
        case 'b': if (tool_parse_int(optarg, "--bootstrap", 0, 1000000, &boot)) return 2; break;
        case 'S': if (tool_parse_double(optarg, "--seed", 0, 9e15, &seed)) return 2; break;
        case 'B': if (tool_parse_int(optarg, "--batch-size", 1, 1 << 16, &batch)) return 2; break;
        case 't': if (tool_parse_int(optarg, "--threads", 1, 4096, &threads)) return 2; break;
        case 'P': plots = 0; break;
        case 'C':
            if (ncmp == MAX_COMPARE) {
                fprintf(stderr, "miles-eval: --compare given more than %d times\n", MAX_COMPARE);
                return 2;
            }
            for (int k = 0; k < ncmp; k++)
                if (!strcmp(cmpv[k].path, optarg)) {   /* the same test twice would count twice in Holm's m */
                    fprintf(stderr, "miles-eval: --compare %s given twice\n", optarg);
                    return 2;
                }
            cmpv[ncmp++].path = optarg;
            break;
        case 'W': pred_path = optarg; break;
        case 'E':
            if (ncmp == 0 || cmpv[ncmp - 1].data) {
                fprintf(stderr, "miles-eval: --compare-data %s goes after the --compare CHECKPOINT it belongs to\n",
                        optarg);
                return 2;
            }
            cmpv[ncmp - 1].data = optarg;
            break;
        case 'q': quiet = 1; break;
        case 'K': calibrate = 1; break;
        case 'L': save_cal = optarg; break;
        case 'D': if (tool_parse_device(optarg, "--device", &device)) return 2; break;
        case 'R': if (tool_parse_precision(optarg, "--precision", &precision)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!ckpt || !data) { usage(stderr); return 2; }
    int split;
    if (!strcmp(split_name, "test")) split = MILES_SPLIT_TEST;
    else if (!strcmp(split_name, "val")) split = MILES_SPLIT_VAL;
    else if (!strcmp(split_name, "train")) split = MILES_SPLIT_TRAIN;
    else { fprintf(stderr, "miles-eval: --split must be test, val or train\n"); return 2; }
    if (save_cal && !calibrate) {
        fprintf(stderr, "miles-eval: --save-calibrated goes with --calibrate\n");
        return 2;
    }
    /* an output over an input would destroy it (--save-calibrated may be the checkpoint: it rewrites it whole) */
    if (tool_refuse_clobber("miles-eval", "--predictions", pred_path, "--data file", data) ||
        tool_refuse_clobber("miles-eval", "--predictions", pred_path, "checkpoint", ckpt) ||
        tool_refuse_clobber("miles-eval", "--save-calibrated", save_cal, "--data file", data))
        return 2;
    if (calibrate && split == MILES_SPLIT_VAL) {
        fprintf(stderr, "miles-eval: --calibrate fits on the val split: evaluating it too would be in-sample "
                        "(use --split test or train)\n");
        return 2;
    }
    tool_set_threads(threads);
    if (miles_device_check(device, precision, 0) != MILES_OK) return tool_fail("miles-eval", MILES_EUNSUPPORTED);

    char out_dir[4096];
    if (out) snprintf(out_dir, sizeof out_dir, "%s", out);
    else { char tmp[4096]; snprintf(tmp, sizeof tmp, "%s", ckpt); snprintf(out_dir, sizeof out_dir, "%s", dirname(tmp)); }
    if (tool_mkdirs(out_dir)) return 1;

    /* the checkpoint's contract: the data must be what the model was trained on */
    MilesCheckpoint *ck = NULL;
    MilesPrepared *prep = NULL;
    MilesModel *m = NULL;
    MilesScaler *scaler = NULL;
    int s = miles_checkpoint_open(&ck, ckpt);
    if (s == MILES_OK) s = miles_prepared_open(&prep, data);
    if (s == MILES_OK) s = miles_checkpoint_check_data(ck, prep);
    if (s == MILES_OK) s = miles_checkpoint_model(ck, &m);
    if (s == MILES_OK) s = miles_checkpoint_scaler(ck, &scaler);
    MilesVelocityTarget vtg; /* the model's target space (min-max for older checkpoints) */
    if (s == MILES_OK) s = miles_checkpoint_velocity_target(ck, &vtg);
    if (s != MILES_OK) return tool_fail("miles-eval", s);
    double stored_thr = miles_checkpoint_meta(ck, MILES_META_THRESHOLD) ? miles_checkpoint_threshold(ck) : NAN;
    MilesPlatt stored_cal;
    int has_cal = 0;
    if ((s = miles_checkpoint_calibration(ck, &stored_cal, &has_cal)) != MILES_OK) return tool_fail("miles-eval", s);

    /* the other models before the (long) scoring: a wrong path is said at once */
    ToolBaselines bl;
    int have_dir = 0, nck = 0;
    MilesDataset v;
    if ((s = miles_prepared_split(prep, split, &v)) != MILES_OK) return tool_fail("miles-eval", s);
    for (int k = 0; k < ncmp; k++) {
        Compared *c = &cmpv[k];
        struct stat cst;
        if (stat(c->path, &cst) != 0) {
            fprintf(stderr, "miles-eval: --compare %s: %s\n", c->path, strerror(errno));
            return 1;
        }
        c->is_dir = !S_ISREG(cst.st_mode);
        if (c->is_dir) {
            if (c->data) {
                fprintf(stderr, "miles-eval: --compare-data goes with --compare CHECKPOINT (a file), not %s\n", c->path);
                return 2;
            }
            if (have_dir++) {
                fprintf(stderr, "miles-eval: --compare %s: one baselines directory per run\n", c->path);
                return 2;
            }
            if ((s = tool_baselines_load(&bl, c->path, split_name)) != MILES_OK) return tool_fail("miles-eval", s);
            continue;
        }
        /* the messages name the file */
        snprintf(c->key, sizeof c->key, nck ? "checkpoint_%d" : "checkpoint", nck + 1);
        snprintf(c->name, sizeof c->name, "checkpoint %c", 'B' + nck);
        nck++;
        c->prep = prep;
        s = miles_checkpoint_open(&c->ck, c->path);
        if (s == MILES_OK && c->data) s = miles_prepared_open(&c->prep, c->data);
        if (s == MILES_OK) s = miles_checkpoint_check_data(c->ck, c->prep);
        if (s != MILES_OK) return tool_fail("miles-eval: --compare", s);
        if ((s = miles_prepared_split(c->prep, split, &c->rows)) != MILES_OK) return tool_fail("miles-eval", s);
        if (same_rows(prep, c->prep, split, &v, &c->rows, data, c->data)) return 1;
    }
    if (v.n == 0) { fprintf(stderr, "miles-eval: the %s split of %s is empty\n", split_name, data); return 1; }
    double *scores = malloc(sizeof(double) * v.n), *vp = malloc(sizeof(double) * v.n);
    double *vt = malloc(sizeof(double) * v.n), *vpr = malloc(sizeof(double) * v.n);
    if (!scores || !vp || !vt || !vpr) { fprintf(stderr, "miles-eval: out of memory\n"); return 1; }
    const MilesConfig *mc = miles_model_config(m);
    ToolProgress pg;
    tool_progress_start(&pg, !quiet, "scored", "rows", v.n, 0);
    s = miles_predict_dataset_progress(m, device, precision, &v, batch, mc->max_position_embeddings, scores, vp,
                                       tool_progress_cb, &pg);
    if (s != MILES_OK) return tool_fail("miles-eval", s);
    tool_progress_end(&pg, v.n);
    for (int64_t i = 0; i < v.n; i++) {
        vt[i] = vtg.kind == MILES_VTARGET_MINMAX ? v.velocity[i]
                                                 : miles_velocity_target_transform(&vtg, scaler, v.velocity_raw[i]);
        vpr[i] = miles_velocity_target_inverse(&vtg, scaler, vp[i]);
    }
    char title[512], prefix[64], base[4096];
    snprintf(base, sizeof base, "%s", ckpt);
    snprintf(title, sizeof title, "Miles %s (%s split%s, n=%lld)", basename(base), split_name, tool_split_words(prep),
             (long long)v.n);
    snprintf(prefix, sizeof prefix, "eval_%s", split_name);
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "checkpoint", ckpt);
    cJSON_AddStringToObject(extra, "data", data);
    char crc[12];
    snprintf(crc, sizeof crc, "%08x", miles_prepared_crc32(prep));   /* the exact file, whatever its path */
    cJSON_AddStringToObject(extra, "data_crc32", crc);
    cJSON_AddStringToObject(extra, "split", split_name);
    cJSON_AddItemToObject(extra, "split_rule", tool_split_json(prep)); /* how the file's rows were split */
    cJSON_AddStringToObject(extra, "preset", mc->preset);
    cJSON_AddStringToObject(extra, "velocity_target", miles_velocity_target_name(vtg.kind));
    cJSON_AddNumberToObject(extra, "parameters", (double)miles_model_num_params(m));
    {   /* which label the metrics score: the evaluated file's rule (threshold or cohort) */
        cJSON *scj = cJSON_Parse(miles_prepared_scaler_json(prep));
        cJSON *label = scj ? cJSON_DetachItemFromObjectCaseSensitive(scj, "label") : NULL;
        if (label) cJSON_AddItemToObject(extra, "label", label);
        cJSON_Delete(scj);
    }
    cJSON_AddStringToObject(extra, "creator_avg_views", tool_creator_avg_name(prep));   /* which creator mean */
    /* target-space metrics on the clamped output, as the views/day (vpr) are */
    int64_t nclamp = tool_velocity_clamp(&vtg, vp, v.n, extra);
    if (nclamp) printf("velocity: %lld of %lld outputs clamped to the training target range\n", (long long)nclamp,
                       (long long)v.n);
    /* the constant-median reference: the training split's medians */
    double med_t = NAN, med_r = NAN;
    MilesDataset tr;
    if (miles_prepared_split(prep, MILES_SPLIT_TRAIN, &tr) == MILES_OK && tr.n > 0 && tr.velocity_raw) {
        double *a = malloc(sizeof(double) * tr.n);
        if (a) {
            for (int64_t i = 0; i < tr.n; i++)
                a[i] = vtg.kind == MILES_VTARGET_MINMAX ? tr.velocity[i]
                                                       : miles_velocity_target_transform(&vtg, scaler, tr.velocity_raw[i]);
            med_t = miles_median(a, (int)tr.n);
            med_r = miles_median(tr.velocity_raw, (int)tr.n);
        }
        free(a);
    }
    ToolVelocity tv = {vp, vt, vpr, v.velocity_raw, (int)v.n, med_t, med_r, miles_velocity_target_name(vtg.kind),
                       boot, (uint64_t)seed};
    /* --calibrate: the same model on the val split, a sigmoid fitted there
     * (or, without it, the one the checkpoint holds) */
    ToolCalibration cal = {0};
    double *calibrated = NULL;
    if (!calibrate && has_cal) {
        if (!(calibrated = malloc(sizeof(double) * v.n))) return tool_fail("miles-eval", MILES_ENOMEM);
        s = tool_calibrate_stored(&cal, &stored_cal, scores, v.labels, (int)v.n, stored_thr, calibrated);
        if (s != MILES_OK) return tool_fail("miles-eval: the checkpoint's calibration", s);
    }
    if (calibrate) {
        MilesDataset vv;
        double *vs = NULL;
        s = miles_prepared_split(prep, MILES_SPLIT_VAL, &vv);
        if (s == MILES_OK && vv.n == 0)
            s = miles_set_error(MILES_EINVAL, "the val split of %s is empty: nothing to fit on", data);
        if (s == MILES_OK && (!(vs = malloc(sizeof(double) * vv.n)) || !(calibrated = malloc(sizeof(double) * v.n))))
            s = miles_set_error(MILES_ENOMEM, "out of memory");
        if (s == MILES_OK) {
            tool_progress_start(&pg, !quiet, "scored (val, to calibrate)", "rows", vv.n, 0);
            s = miles_predict_dataset_progress(m, device, precision, &vv, batch, mc->max_position_embeddings, vs, NULL,
                                               tool_progress_cb, &pg);
            if (s == MILES_OK) tool_progress_end(&pg, vv.n);
        }
        if (s == MILES_OK)
            s = tool_calibrate(&cal, vs, vv.labels, (int)vv.n, "val", scores, v.labels, (int)v.n, stored_thr,
                               calibrated);
        free(vs);
        if (s != MILES_OK) return tool_fail("miles-eval: --calibrate", s);
        if (save_cal && (s = miles_checkpoint_save_calibrated(ck, save_cal, &cal.platt, "val")) != MILES_OK)
            return tool_fail("miles-eval: --save-calibrated", s);
    }
    /* the compared models in the order given: their members of "comparisons"
     * and their --predictions columns */
    cJSON *cmp = ncmp ? cJSON_CreateObject() : NULL;
    enum { MAX_COLS = 3 + 2 * MAX_COMPARE + 1 };
    const char *col_names[MAX_COLS];
    char name_buf[MAX_COMPARE][2][48];
    double *cols[MAX_COLS];
    int ncols = 0;
    ToolCompareRows cr = {prep, split, &v, scores, vp, vt, vpr, v.velocity_raw, &vtg, scaler, boot, (uint64_t)seed,
                          NULL, NULL, NULL};
    for (int k = 0, ci = 0; k < ncmp; k++) {
        Compared *c = &cmpv[k];
        double *a = malloc(sizeof(double) * v.n), *b = malloc(sizeof(double) * v.n), *d = malloc(sizeof(double) * v.n);
        if (!a || !b || !d) return tool_fail("miles-eval", MILES_ENOMEM);
        if (c->is_dir) {
            static const char *const names[3] = {"baseline_text_score", "baseline_numeric_score",
                                                 "baseline_ridge_velocity"};
            double *arr[3] = {a, b, d};
            const int has[3] = {bl.text != NULL, bl.numeric != NULL, bl.has_ridge};
            cr.text_scores = a;
            cr.numeric_scores = b;
            cr.ridge_pred_raw = d;
            s = tool_compare_run(&bl, &cr, cmp);
            tool_baselines_free(&bl);
            for (int j = 0; j < 3; j++)   /* the columns of the baselines DIR holds, in that order */
                if (has[j]) {
                    col_names[ncols] = names[j];
                    cols[ncols++] = arr[j];
                } else {
                    free(arr[j]);
                }
        } else {
            MilesVelocityTarget tb;
            s = score_other(c->ck, c->name, &c->rows, device, precision, batch, quiet, a, b, d, &tb);
            if (s == MILES_OK) s = tool_compare_model(c->key, c->name, c->path, a, b, d, &tb, &cr, cmp);
            if (s == MILES_OK)   /* the file the checkpoint was scored on */
                cJSON_AddStringToObject(cJSON_GetObjectItem(cmp, c->key), "data", c->data ? c->data : data);
            miles_checkpoint_close(c->ck);
            if (c->prep != prep) miles_prepared_free(c->prep);
            if (ci) {
                snprintf(name_buf[k][0], sizeof name_buf[k][0], "compared_%d_viral_score", ci + 1);
                snprintf(name_buf[k][1], sizeof name_buf[k][1], "compared_%d_predicted_velocity", ci + 1);
            } else {
                snprintf(name_buf[k][0], sizeof name_buf[k][0], "compared_viral_score");
                snprintf(name_buf[k][1], sizeof name_buf[k][1], "compared_predicted_velocity");
            }
            ci++;
            col_names[ncols] = name_buf[k][0];
            cols[ncols++] = a;
            col_names[ncols] = name_buf[k][1];
            cols[ncols++] = d;
            free(b);
        }
        if (s != MILES_OK) return tool_fail("miles-eval: --compare", s);
    }
    if (cmp) tool_compare_holm(cmp);
    const int nowned = ncols;
    if (calibrated) {   /* after the compared models' columns */
        col_names[ncols] = "calibrated_score";
        cols[ncols++] = calibrated;
    }
    if (pred_path) {
        double thr = isnan(stored_thr) ? 0.5 : stored_thr;
        s = write_predictions(pred_path, prep, split, &v, scores, thr, vpr, ncols, col_names, cols);
        if (s != MILES_OK) return tool_fail("miles-eval: --predictions", s);
    }
    for (int k = 0; k < nowned; k++) free(cols[k]);
    ToolReport r = {out_dir, prefix, title, scores, v.labels, (int)v.n, vp, vt, vpr, v.velocity_raw,
                    stored_thr, boot, (uint64_t)seed, plots, extra, cmp, &tv, calibrated ? &cal.after : NULL,
                    cal.json};
    int status = tool_report_run(&r);
    if (cmp) tool_compare_print(cmp, split_name, tool_split_words(prep), (int)v.n);
    if (calibrated) tool_calibration_print(&cal, split_name);
    if (save_cal) printf("calibrated checkpoint: %s\n", save_cal);
    tool_calibration_free(&cal);
    free(calibrated);
    cJSON_Delete(cmp);
    cJSON_Delete(extra);
    free(scores); free(vp); free(vt); free(vpr);
    miles_scaler_free(scaler);
    miles_checkpoint_close(ck);
    miles_prepared_free(prep);
    miles_model_free(m);
    return status;
}
