/*
 * tool_common.h — small helpers shared by the miles-* command-line tools.
 */
#ifndef MILES_TOOL_COMMON_H
#define MILES_TOOL_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "miles.h"

/* Propagate a MILES_* status: TOOL_TRY(x) returns x's status if it is not MILES_OK. */
#define TOOL_TRY(expr) do { int _s = (expr); if (_s != MILES_OK) return _s; } while (0)

/* Print "prog: <miles_last_error()>" to stderr and return the exit status 1. */
int tool_fail(const char *prog, int status);
/* Write s with control bytes and invalid UTF-8 as \xHH (error messages echo
 * user-given paths and values; binary bytes must not reach the terminal raw). */
void tool_put_escaped(FILE *f, const char *s);
/* Prepend "prefix: " to the library's last message; returns status. */
int tool_error_prefix(int status, const char *prefix);
/* Strict number parsing with a range; prints a message naming the option and returns 1 on error. */
int tool_parse_int(const char *s, const char *opt, int lo, int hi, int *out);
int tool_parse_double(const char *s, const char *opt, double lo, double hi, double *out);
/* --precision NAME / --device NAME (miles.h "devices and precisions"): checks the
 * spelling only (whether the device can do it is the library's answer); prints
 * an error naming the option and returns 1 on error. */
int tool_parse_precision(const char *s, const char *opt, MilesPrecision *out);
int tool_parse_device(const char *s, const char *opt, const char **out);
/* Why --explain / ?explain=1 is refused on `device` at `precision` (one line,
 * docs/gpu.md "Explanations": CUDA explains at fp32 / tf32 only); NULL when
 * it can explain. */
const char *tool_explain_refusal(const char *device, MilesPrecision precision);
/* OpenMP and OpenBLAS thread count (n <= 0: leave the defaults). */
void tool_set_threads(int n);
/* The velocity clamp (miles_velocity_target_clamp) applied in place to the
 * target-space outputs y[n], so target-space metrics see what the views/day
 * inverse used; adds "velocity_clamp": {applied, min, max, margin, n_clamped}
 * to the JSON object j (a cJSON *, may be NULL) and returns n_clamped. */
int64_t tool_velocity_clamp(const MilesVelocityTarget *t, double *y, int64_t n, void *j);
/* mkdir -p; prints an error and returns 1 on failure. */
int tool_mkdirs(const char *dir);   /* mkdir -p; what it created and is still empty at exit is removed */
/* "views,likes" -> bit mask over miles_feature_names; the groups "counts" (views, likes,
 * comments, shares, saves), "rates" (the six rates) and "engagement" (both: what is only
 * known after publishing) stand for their members; prints an error and returns 1 on an
 * unknown name. */
int tool_feature_mask(const char *list, uint32_t *mask);
/* The word options prepare shares between miles-data and miles-train:
 * --split-by row|creator|time, --threshold-scope train|all|cohort,
 * --cohort-days N (with cohort only; default 7), --text-clean seed|none,
 * --creator-avg data|prior (NULL: leave o's value).  Prints "PROG: ..." and
 * returns 2 on a value it does not know, else 0. */
int tool_prepare_words(const char *prog, const char *split_by, const char *scope, const char *cohort_days,
                       const char *clean, const char *creator_avg, MilesPrepareOptions *o);
/* How a prepared file's rows were chosen and split as a cJSON object
 * (miles_prepared_provenance_json's).  NULL only out of memory. */
void *tool_split_json(const MilesPrepared *p);
/* The split in a report title's words: " by time", " by row", " by creator",
 * " for a checkpoint" (prepare --checkpoint's file), "" when unrecorded. */
const char *tool_split_words(const MilesPrepared *p);
/* "prior" or "data": which creator_avg_views the file's features hold (its scaler's rule). */
const char *tool_creator_avg_name(const MilesPrepared *p);
/* The same in words for people ("by time (oldest publish days train, newest
 * test), train 0.7; language en"). */
void tool_split_describe(const MilesPrepared *p, char *buf, size_t cap);
/* The prepare report as JSON at path (miles_prepare_report_json plus the csv
 * and out paths and what the written file out records: its split rule and
 * label rule), atomically.  Prints "PROG: writing the prepare report: why"
 * (the why names the file) and returns 1 on failure, else 0. */
int tool_write_prepare_report(const char *prog, const char *path, const char *csv, const char *out,
                              const MilesPrepareReport *rep, double leak_bound);
/* An output that is one of the run's inputs would destroy it (`--out data.csv`
 * on data.csv): 1, printing "PROG: OPT FILE is the INPUT_WHAT FILE: writing
 * it would destroy it", when out and in name the same existing file (device
 * and inode: links and other spellings too), else 0.  NULLs: 0. */
int tool_refuse_clobber(const char *prog, const char *opt, const char *out, const char *in_what, const char *in);
/* One CSV field as RFC 4180 wants it: quoted (quotes doubled) when it holds a
 * comma, a quote, CR or LF; NULL writes nothing (an empty field). */
void tool_csv_cell(FILE *f, const char *s);
/* v with the fewest of 15, 16 or 17 significant digits that read back as v
 * (1166.4, not 1166.4000000000001): exact and short; NaN/Inf as nan/inf. */
void tool_put_double(FILE *f, double v);
/* A number added to a cJSON object (obj[key]) or array (key NULL) with
 * tool_put_double's digits: cJSON itself prints 15 digits whenever they read
 * back within an epsilon, losing the last bit of numbers something is rebuilt
 * from (the ridge baseline's coefficients); non-finite -> null. */
void tool_json_exact(void *obj, const char *key, double v);
/* Every number in the cJSON tree made exact the same way, in place (before
 * printing a report). */
void tool_json_exact_all(void *tree);
/* Read a whole file (NUL-terminated, malloc'd); MILES_* status. */
int tool_read_file(const char *path, char **text);
/* Write text to path atomically (temp + fsync + rename); MILES_* status. */
int tool_write_text_atomic(const char *path, const char *text);
/* Seconds on the monotonic clock (durations, rates, ETAs). */
double tool_now(void);
/* 1 if stderr is a terminal (progress bars), else 0. */
int tool_isatty_err(void);
/* Progress of long work on stderr.  On a terminal one line redrawn at most
 * once a second: "<verb> D of N <unit> (P%), R <unit>/s, ETA S s" (no
 * percentage or ETA when the total is unknown, "~N" when it is an estimate);
 * elsewhere (a log file) the same as a line of its own every 30 s.
 * tool_progress_end prints "<verb> D <unit> in T s (R <unit>/s)". */
typedef struct ToolProgress {
    int on, tty, approx;
    const char *verb, *unit;
    int64_t total;
    double t0, last;
    int drawn; /* width of the open terminal line (no newline yet), 0: none */
} ToolProgress;
void tool_progress_start(ToolProgress *p, int on, const char *verb, const char *unit, int64_t total, int approx);
void tool_progress_update(ToolProgress *p, int64_t done);
void tool_progress_end(ToolProgress *p, int64_t done);
/* a MilesProgressFn over a ToolProgress (the library's scoring loops) */
void tool_progress_cb(void *progress, int64_t done, int64_t total);



/* Call first in main(): with MILES_GEMM=blas, makes OpenMP workers sleep
 * instead of spin between parallel regions (OMP_WAIT_POLICY=PASSIVE) unless
 * the user chose a policy.  libgomp reads the variable when it loads, so the
 * tool re-executes itself once with it set.  Why: with the pthread OpenBLAS
 * build, spinning OpenMP workers steal the cores from the BLAS threads (2x+
 * slower on 2 cores).  With the own GEMM (default) libgomp's default policy
 * stays: a forward's short regions would each pay a futex wake-up. */
void tool_init(char **argv);
#endif
