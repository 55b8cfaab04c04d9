/*
 * tool_common.c — helpers shared by the miles-* tools (argument parsing,
 * threads, directories, atomic text output).
 */
#include "tool_common.h"
#include "miles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one. */
static int utf8_seq(const unsigned char *p) {
    unsigned c = p[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n <= 1 || c == 0xC0 || c == 0xC1 || c > 0xF4) return n == 1;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

void tool_put_escaped(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = *p >= 0x20 && *p != 0x7F ? utf8_seq(p) : 0;
        if (n == 0) {
            fprintf(f, "\\x%02x", *p);   /* a control byte or broken UTF-8 (a binary "path") */
            p++;
        } else {
            fwrite(p, 1, (size_t)n, f);
            p += n;
        }
    }
}

int tool_error_prefix(int status, const char *prefix) {
    char old[2048];
    snprintf(old, sizeof old, "%s", miles_last_error());
    return miles_set_error(status, "%s: %s", prefix, old);
}

void tool_csv_cell(FILE *f, const char *s) {
    if (!s) return;
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* the fewest of 15..17 significant digits that read back as v */
static void shortest_exact(char *b, size_t n, double v) {
    for (int d = 15; d <= 17; d++) {
        snprintf(b, n, "%.*g", d, v);
        if (!isfinite(v) || strtod(b, NULL) == v) break;
    }
}

void tool_put_double(FILE *f, double v) {
    char b[40];
    shortest_exact(b, sizeof b, v);
    fputs(b, f);
}

void tool_json_exact(void *obj, const char *key, double v) {
    char b[40];
    shortest_exact(b, sizeof b, v);
    cJSON *x = isfinite(v) ? cJSON_CreateRaw(b) : cJSON_CreateNull();
    if (key) cJSON_AddItemToObject((cJSON *)obj, key, x);
    else cJSON_AddItemToArray((cJSON *)obj, x);
}

void tool_json_exact_all(void *tree) {
    for (cJSON *x = tree ? ((cJSON *)tree)->child : NULL; x; x = x->next) {
        if (cJSON_IsNumber(x) && isfinite(x->valuedouble)) {
            char b[40];
            shortest_exact(b, sizeof b, x->valuedouble);
            char *t = strdup(b);
            if (t) { x->type = cJSON_Raw; x->valuestring = t; }
        } else {
            tool_json_exact_all(x);
        }
    }
}

int tool_fail(const char *prog, int status) {
    fprintf(stderr, "%s: ", prog);
    tool_put_escaped(stderr, miles_last_error()[0] ? miles_last_error() : "error");
    fprintf(stderr, " (%s)\n", miles_status_name(status));
    return 1;
}

int tool_parse_int(const char *s, const char *opt, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: expected an integer in [%d, %d], got \"%s\"\n", opt, lo, hi, s);
        return 1;
    }
    *out = (int)v;
    return 0;
}

int tool_parse_precision(const char *s, const char *opt, MilesPrecision *out) {
    if (miles_precision_parse(s, out) != MILES_OK) {
        fprintf(stderr, "%s: %s\n", opt, miles_last_error());
        return 1;
    }
    return 0;
}

int tool_parse_device(const char *s, const char *opt, const char **out) {
    if (miles_device_parse(s, NULL, NULL) != MILES_OK) {
        fprintf(stderr, "%s: %s\n", opt, miles_last_error());
        return 1;
    }
    *out = s;
    return 0;
}

const char *tool_explain_refusal(const char *device, MilesPrecision precision) {
    int cuda = 0;
    if (miles_device_parse(device, &cuda, NULL) != MILES_OK || !cuda) return NULL;
    if (precision == MILES_PRECISION_FP32 || precision == MILES_PRECISION_TF32) return NULL;
    return "explanations on CUDA need precision fp32 or tf32: the 16-bit path has no forward from given token "
           "embeddings and no backward to them; use --precision fp32 (or --device cpu) to explain";
}

int tool_parse_double(const char *s, const char *opt, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "%s: expected a number in [%g, %g], got \"%s\"\n", opt, lo, hi, s);
        return 1;
    }
    *out = v;
    return 0;
}

/* OpenBLAS exposes openblas_set_num_threads; weak so other CBLAS builds link too. */
extern void openblas_set_num_threads(int n) __attribute__((weak));

void tool_set_threads(int n) {
    if (n <= 0) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    if (openblas_set_num_threads) openblas_set_num_threads(n);
}

/* The directories tool_mkdirs created (deepest last): at exit the empty ones
 * are removed again, so a tool that fails before writing anything leaves no
 * empty --out directory behind (one with outputs is never empty). */
#define MAX_MADE 16
static char *g_made[MAX_MADE];
static int g_nmade;
static void remove_empty_made(void) {
    for (int i = g_nmade - 1; i >= 0; i--) {
        rmdir(g_made[i]);   /* fails, harmlessly, unless empty */
        free(g_made[i]);
    }
    g_nmade = 0;
}

int tool_mkdirs(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) == 0) {
                if (g_nmade == 0) atexit(remove_empty_made);
                if (g_nmade < MAX_MADE && (g_made[g_nmade] = strdup(buf))) g_nmade++;
            } else if (errno != EEXIST) {
                fprintf(stderr, "%s: cannot create directory: %s\n", buf, strerror(errno));
                return 1;
            }
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

int tool_prepare_words(const char *prog, const char *split_by, const char *scope, const char *cohort_days,
                       const char *clean, const char *creator_avg, MilesPrepareOptions *o) {
    if (split_by) {
        o->split_by_creator = !strcmp(split_by, "creator");
        o->split_by_time = !strcmp(split_by, "time");
        if (!o->split_by_creator && !o->split_by_time && strcmp(split_by, "row")) {
            fprintf(stderr, "%s: --split-by must be row, creator or time (got \"%s\")\n", prog, split_by);
            return 2;
        }
    }
    if (scope) {
        o->threshold_all = !strcmp(scope, "all");
        int cohort = !strcmp(scope, "cohort");
        if (!o->threshold_all && !cohort && strcmp(scope, "train")) {
            fprintf(stderr, "%s: --threshold-scope must be train, all or cohort (got \"%s\")\n", prog, scope);
            return 2;
        }
        o->label_cohort_days = 0;
        if (cohort_days && !cohort) {
            fprintf(stderr, "%s: --cohort-days goes with --threshold-scope cohort\n", prog);
            return 2;
        }
        if (cohort) {
            o->label_cohort_days = 7;
            if (cohort_days && tool_parse_int(cohort_days, "--cohort-days", 1, 3660, &o->label_cohort_days)) return 2;
        }
    }
    if (clean) {
        o->text_clean = !strcmp(clean, "seed") ? MILES_TEXT_CLEAN_SEED : MILES_TEXT_CLEAN_NONE;
        if (o->text_clean == MILES_TEXT_CLEAN_NONE && strcmp(clean, "none")) {
            fprintf(stderr, "%s: --text-clean must be seed or none (got \"%s\")\n", prog, clean);
            return 2;
        }
    }
    if (creator_avg) {
        o->creator_avg = !strcmp(creator_avg, "prior") ? MILES_CREATOR_AVG_PRIOR : MILES_CREATOR_AVG_DATA;
        if (o->creator_avg == MILES_CREATOR_AVG_DATA && strcmp(creator_avg, "data")) {
            fprintf(stderr, "%s: --creator-avg must be data or prior (got \"%s\")\n", prog, creator_avg);
            return 2;
        }
    }
    return 0;
}

/* Names for the sets a study drops together: what is only measured once a video is out. */
static const struct { const char *name, *members; } feature_groups[] = {
    {"counts", "views,likes,comments,shares,saves"},
    {"rates", "engagement_rate,completion_rate,like_rate,comment_ratio,share_rate,save_rate"},
    {"engagement", "counts,rates"},
};

/* The names and groups of list into *mask (ORed); 1 after printing the first unknown name. */
static int feature_names_mask(const char *list, uint32_t *mask) {
    size_t len = strlen(list);
    char *buf = malloc(len + 1);
    if (!buf) { fputs("out of memory\n", stderr); return 1; }
    memcpy(buf, list, len + 1);
    char *save = NULL;
    int bad = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
        size_t g = 0;
        while (g < sizeof feature_groups / sizeof *feature_groups && strcmp(feature_groups[g].name, tok)) g++;
        if (g < sizeof feature_groups / sizeof *feature_groups) { bad = feature_names_mask(feature_groups[g].members, mask); continue; }
        int f = 0;
        while (f < MILES_NUM_FEATURES && strcmp(miles_feature_names[f], tok)) f++;
        if (f < MILES_NUM_FEATURES) { *mask |= 1u << f; continue; }
        fprintf(stderr, "unknown feature \"%s\"; the features are:", tok);
        for (int i = 0; i < MILES_NUM_FEATURES; i++) fprintf(stderr, " %s", miles_feature_names[i]);
        fputs("; the groups: counts (views..saves), rates (engagement_rate..save_rate), engagement (both)\n", stderr);
        bad = 1;
    }
    free(buf);
    return bad;
}

int tool_feature_mask(const char *list, uint32_t *mask) {
    *mask = 0;
    return feature_names_mask(list, mask);
}

int tool_read_file(const char *path, char **text) { return miles_read_file(path, text, NULL); }

int tool_write_text_atomic(const char *path, const char *text) {
    return miles_write_file_atomic(path, text, strlen(text));
}

int tool_isatty_err(void) { return isatty(2); }

double tool_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tool_progress_start(ToolProgress *p, int on, const char *verb, const char *unit, int64_t total, int approx) {
    memset(p, 0, sizeof *p);
    p->on = on;
    p->tty = on && tool_isatty_err();
    p->verb = verb;
    p->unit = unit;
    p->total = total;
    p->approx = approx;
    p->t0 = p->last = tool_now();
}

void tool_progress_update(ToolProgress *p, int64_t done) {
    if (!p->on) return;
    const double t = tool_now();
    if (t - p->last < (p->tty ? 1.0 : 30.0)) return;
    p->last = t;
    const double rate = (double)done / fmax(t - p->t0, 1e-9);
    char line[256];
    if (p->total > 0 && done <= p->total) {
        const double eta = (double)(p->total - done) / fmax(rate, 1e-9);
        snprintf(line, sizeof line, "%s %lld of %s%lld %s (%.0f%%), %.0f %s/s, ETA %.0f s", p->verb, (long long)done,
                 p->approx ? "~" : "", (long long)p->total, p->unit, 100.0 * (double)done / (double)p->total, rate,
                 p->unit, eta);
    } else {
        snprintf(line, sizeof line, "%s %lld %s, %.0f %s/s", p->verb, (long long)done, p->unit, rate, p->unit);
    }
    if (p->tty) fprintf(stderr, "\r%-*s", p->drawn, line); /* padded over a longer line before */
    else fprintf(stderr, "%s\n", line);
    if (p->tty && (int)strlen(line) > p->drawn) p->drawn = (int)strlen(line);
}

void tool_progress_end(ToolProgress *p, int64_t done) {
    if (!p->on) return;
    const double dt = tool_now() - p->t0;
    char line[256];
    snprintf(line, sizeof line, "%s %lld %s in %.1f s (%.0f %s/s)", p->verb, (long long)done, p->unit, dt,
             (double)done / fmax(dt, 1e-9), p->unit);
    if (p->drawn) fprintf(stderr, "\r%-*s\n", p->drawn, line);
    else fprintf(stderr, "%s\n", line);
    p->drawn = 0;
}

void tool_progress_cb(void *progress, int64_t done, int64_t total) {
    ToolProgress *p = progress;
    if (total > 0) p->total = total;
    tool_progress_update(p, done);
}

void tool_init(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("MILES_REEXECED")) return;
    /* Only the opt-in BLAS GEMM needs it: with the own GEMM (the default)
     * no other thread pool competes, and libgomp's default (spin briefly,
     * then sleep) keeps the many short regions of a forward from paying a
     * futex wake-up each (MiniLM batch-1 on 2 threads: 2.4 -> 1.2 ms int8). */
    const char *g = getenv("MILES_GEMM");
    if (!g || strcmp(g, "blas") != 0) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    setenv("MILES_REEXECED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the default policy */
}

int64_t tool_velocity_clamp(const MilesVelocityTarget *t, double *y, int64_t n, void *j) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) {
        c += miles_velocity_target_clamped(t, y[i]);
        y[i] = miles_velocity_target_clamp(t, y[i]);
    }
    if (j) {
        cJSON *o = cJSON_AddObjectToObject((cJSON *)j, "velocity_clamp");
        cJSON_AddBoolToObject(o, "applied", t->has_range);
        if (t->has_range) {   /* exact: --compare rebuilds the clamp from them */
            tool_json_exact(o, "min", t->lo);
            tool_json_exact(o, "max", t->hi);
            cJSON_AddNumberToObject(o, "margin", MILES_VTARGET_CLAMP_MARGIN * (t->hi - t->lo));
        }
        cJSON_AddNumberToObject(o, "n_clamped", (double)c);
    }
    return c;
}

void *tool_split_json(const MilesPrepared *p) {
    char *txt = NULL;
    if (miles_prepared_provenance_json(p, &txt) != MILES_OK) return NULL;
    /* embedded as the library wrote it: parsed, a seed above 2^53 would print rounded */
    cJSON *o = cJSON_CreateRaw(txt);
    free(txt);
    return o;
}

const char *tool_split_words(const MilesPrepared *p) {
    MilesPreparedProvenance pv;
    miles_prepared_provenance(p, &pv);
    static const char *const w[] = {"", " by row", " by creator", " by time", " for a checkpoint"};
    return pv.split_by >= 0 && pv.split_by <= MILES_SPLIT_BY_CHECKPOINT ? w[pv.split_by] : "";
}

const char *tool_creator_avg_name(const MilesPrepared *p) {
    MilesScaler *sc = NULL;
    int prior = miles_scaler_from_json(&sc, miles_prepared_scaler_json(p)) == MILES_OK &&
                miles_scaler_creator_avg(sc) == MILES_CREATOR_AVG_PRIOR;
    miles_scaler_free(sc);
    return prior ? "prior" : "data";
}

void tool_split_describe(const MilesPrepared *p, char *buf, size_t cap) {
    MilesPreparedProvenance pv;
    if (miles_prepared_provenance(p, &pv) != 1) {
        snprintf(buf, cap, "not recorded (a file prepared before the split was kept in its header)");
        return;
    }
    char how[96];
    switch (pv.split_by) {
    case MILES_SPLIT_BY_ROW: snprintf(how, sizeof how, "by row, stratified by label, seed %llu, train %g",
                                      (unsigned long long)pv.seed, pv.train_frac); break;
    case MILES_SPLIT_BY_CREATOR: snprintf(how, sizeof how, "by creator (no creator in two splits), seed %llu, train %g",
                                          (unsigned long long)pv.seed, pv.train_frac); break;
    case MILES_SPLIT_BY_TIME: snprintf(how, sizeof how, "by time (oldest publish days train, newest test), train %g",
                                       pv.train_frac); break;
    default: snprintf(how, sizeof how, "none: a checkpoint's scaler applied, every row in test"); break;
    }
    snprintf(buf, cap, "%s; language %s%s", how, pv.language, pv.dedup ? "; repeated row ids dropped" : "");
}

int tool_write_prepare_report(const char *prog, const char *path, const char *csv, const char *out,
                              const MilesPrepareReport *rep, double leak_bound) {
    /* the data file just written, or the CSV, under another name: never over it */
    if (tool_refuse_clobber(prog, "the prepare report", path, "prepared file", out) ||
        tool_refuse_clobber(prog, "the prepare report", path, "input CSV", csv))
        return 1;
    /* the library's JSON as it wrote it (never parsed: its numbers stay exact), the two paths in front */
    char *txt = NULL, *paths = NULL, *all = NULL;
    int st = miles_prepare_report_json(rep, leak_bound, &txt);
    cJSON *j = st == MILES_OK ? cJSON_CreateObject() : NULL;
    if (j) {
        cJSON_AddStringToObject(j, "csv", csv);
        cJSON_AddStringToObject(j, "out", out);
        paths = cJSON_Print(j);
    }
    const char *end = paths ? strrchr(paths, '}') : NULL;
    if (st == MILES_OK && end && txt[0] == '{' && (all = malloc((size_t)(end - paths) + strlen(txt) + 1))) {
        /* "{a}" and "{b}" -> "{a,b}" (both objects have members) */
        size_t k = (size_t)(end - paths);
        while (k > 1 && isspace((unsigned char)paths[k - 1])) k--;
        memcpy(all, paths, k);
        all[k] = ',';
        strcpy(all + k + 1, txt + 1);
        st = tool_write_text_atomic(path, all);
    }
    int oom = st == MILES_OK && !all;
    cJSON_Delete(j);
    free(txt);
    free(paths);
    free(all);
    if (oom) {
        fprintf(stderr, "%s: writing the prepare report: out of memory\n", prog);
        return 1;
    }
    if (st != MILES_OK) {
        fprintf(stderr, "%s: writing the prepare report: ", prog);   /* the library's message names the file */
        tool_put_escaped(stderr, miles_last_error());
        fputc('\n', stderr);
        return 1;
    }
    return 0;
}

int tool_refuse_clobber(const char *prog, const char *opt, const char *out, const char *in_what, const char *in) {
    struct stat a, b;
    if (!out || !in || stat(out, &a) != 0 || stat(in, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return 0;
    fprintf(stderr, "%s: %s ", prog, opt);
    tool_put_escaped(stderr, out);
    fprintf(stderr, " is the %s ", in_what);
    tool_put_escaped(stderr, in);
    fputs(": writing it would destroy it\n", stderr);
    return 1;
}
