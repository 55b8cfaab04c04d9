/*
 * data_split.c — percentile (numpy/pandas linear), Spearman correlation, and
 * the train/val/test splits (stratified like scikit-learn's two
 * train_test_split calls; by creator group; or in time order).
 */

#include "data_internal.h"

#include <math.h>

/* ---------------------------------------------------------------- RNG */

/* The seeded stream and shuffle are internal.h's splitmix64 (miles_shuffle). */

/* ---------------------------------------------------------------- statistics */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double miles_percentile(const double *x, int64_t n, double p) {
    if (!x || n <= 0 || !(p >= 0 && p <= 100)) return NAN;
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) return NAN;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i])) v[m++] = x[i];
    if (m == 0) { free(v); return NAN; }
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    /* numpy 1.24 'linear': virtual index (n-1)*q, then _lerp with its t >= 0.5 branch */
    double q = p / 100.0;
    double vi = (double)(m - 1) * q;
    double lo = floor(vi);
    int64_t i0 = (int64_t)lo, i1 = i0 + 1 < m ? i0 + 1 : m - 1;
    double g = vi - lo;
    double a = v[i0], b = v[i1], d = b - a;
    double r = g >= 0.5 ? b - d * (1.0 - g) : a + d * g;
    free(v);
    return r;
}

typedef struct { double v; int64_t i; } ValIdx;
static int cmp_validx(const void *a, const void *b) {
    const ValIdx *x = a, *y = b;
    if (x->v != y->v) return (x->v > y->v) - (x->v < y->v);
    return (x->i > y->i) - (x->i < y->i);
}
/* Average ranks (1-based) of v[m] into r. */
static int rank_avg(const double *v, int64_t m, double *r) {
    ValIdx *t = malloc((size_t)m * sizeof *t);
    if (!t) return -1;
    for (int64_t i = 0; i < m; i++) { t[i].v = v[i]; t[i].i = i; }
    qsort(t, (size_t)m, sizeof *t, cmp_validx);
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        while (j + 1 < m && t[j + 1].v == t[i].v) j++;
        double rk = 0.5 * (double)(i + j) + 1.0;
        for (int64_t k = i; k <= j; k++) r[t[k].i] = rk;
        i = j + 1;
    }
    free(t);
    return 0;
}

double miles_spearman(const double *x, const double *y, int64_t n) {
    if (!x || !y || n < 2) return NAN;
    double *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    double *ra = malloc((size_t)n * sizeof *ra), *rb = malloc((size_t)n * sizeof *rb);
    double res = NAN;
    if (!a || !b || !ra || !rb) goto done;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) { a[m] = x[i]; b[m] = y[i]; m++; }
    if (m < 2 || rank_avg(a, m, ra) || rank_avg(b, m, rb)) goto done;
    double ma = 0, mb = 0;
    for (int64_t i = 0; i < m; i++) { ma += ra[i]; mb += rb[i]; }
    ma /= m; mb /= m;
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < m; i++) {
        double da = ra[i] - ma, db = rb[i] - mb;
        sab += da * db; saa += da * da; sbb += db * db;
    }
    if (saa > 0 && sbb > 0) res = sab / sqrt(saa * sbb);
done:
    free(a); free(b); free(ra); free(rb);
    return res;
}

/* ---------------------------------------------------------------- splits */

int64_t miles_split_train_count(int64_t n, double train_frac) {
    /* sklearn _validate_shuffle_split: n_train = floor(train_size * n_samples) */
    return (int64_t)floor(train_frac * (double)n);
}

/* sklearn's _approximate_mode for two classes: per-class draws summing to
 * n_draws; ties in the remainder broken by the RNG. */
static void approximate_mode(const int64_t counts[2], int64_t n_draws, uint64_t *rng, int64_t out[2]) {
    int64_t total = counts[0] + counts[1];
    double cont[2], rem[2];
    int64_t fl[2], sum = 0;
    for (int c = 0; c < 2; c++) {
        cont[c] = total ? (double)counts[c] / (double)total * (double)n_draws : 0;
        fl[c] = (int64_t)floor(cont[c]);
        rem[c] = cont[c] - (double)fl[c];
        sum += fl[c];
    }
    int64_t need = n_draws - sum;
    if (need > 0) {
        /* largest remainder first; equal remainders: RNG picks (sklearn: rng.choice) */
        int first = rem[1] > rem[0] ? 1 : 0;
        if (rem[0] == rem[1]) first = (int)(miles_splitmix64(rng) & 1);
        int order[2] = {first, 1 - first};
        for (int k = 0; k < 2 && need > 0; k++) { fl[order[k]]++; need--; }
    }
    out[0] = fl[0]; out[1] = fl[1];
}

/* One stratified draw of n_first out of idx[n] (by class), rest -> second. */
static int strat_draw(const int64_t *idx, int64_t n, const int32_t *labels, int64_t n_first, uint64_t *rng,
                      uint8_t *split, uint8_t first, uint8_t second) {
    int64_t counts[2] = {0, 0};
    for (int64_t i = 0; i < n; i++) counts[labels[idx[i]] ? 1 : 0]++;
    int64_t take[2];
    approximate_mode(counts, n_first, rng, take);
    for (int c = 0; c < 2; c++) {
        int64_t *cls = malloc((size_t)(counts[c] ? counts[c] : 1) * sizeof *cls);
        if (!cls) return miles_error(MILES_ENOMEM, "out of memory");
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if ((labels[idx[i]] ? 1 : 0) == c) cls[m++] = idx[i];
        miles_shuffle(cls, (size_t)m, sizeof *cls, rng);
        for (int64_t i = 0; i < m; i++) split[cls[i]] = i < take[c] ? first : second;
        free(cls);
    }
    return MILES_OK;
}

int miles_split_stratified(const int32_t *labels, int64_t n, double train_frac, uint64_t seed, uint8_t *split) {
    if (!labels || !split || n < 0) return miles_error(MILES_EINVAL, "miles_split_stratified: bad arguments");
    if (!(train_frac > 0 && train_frac < 1)) return miles_error(MILES_EINVAL, "train fraction %g not in (0,1)", train_frac);
    if (n < 3) return miles_error(MILES_EINVAL, "cannot split %lld examples three ways", (long long)n);
    uint64_t rng = seed ^ 0x6D696C6573ull; /* "miles" */
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return miles_error(MILES_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    int64_t n_train = miles_split_train_count(n, train_frac);
    int s = strat_draw(idx, n, labels, n_train, &rng, split, MILES_SPLIT_TRAIN, MILES_SPLIT_VAL);
    if (s == MILES_OK) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (split[i] != MILES_SPLIT_TRAIN) idx[m++] = i;
        s = strat_draw(idx, m, labels, miles_split_train_count(m, 0.5), &rng, split, MILES_SPLIT_VAL, MILES_SPLIT_TEST);
    }
    free(idx);
    return s;
}

typedef struct { int32_t g; int64_t count; int64_t order; } Group;
static int cmp_group_id(const void *a, const void *b) {
    const Group *x = a, *y = b;
    return (x->g > y->g) - (x->g < y->g);
}
static int cmp_group_order(const void *a, const void *b) {
    const Group *x = a, *y = b;
    return (x->order > y->order) - (x->order < y->order);
}

/* Whole groups, in the order given, fill train, then val, then test: a group
 * goes to the split whose row target (sklearn's sizes for n rows) it best
 * fits.  count[ng] rows per group; out gsplit[ng]. */
static void fill_in_order(const int64_t *count, int64_t ng, int64_t n, double train_frac, uint8_t *gsplit) {
    int64_t n_train = miles_split_train_count(n, train_frac);
    int64_t n_val = miles_split_train_count(n - n_train, 0.5);
    int64_t filled = 0;
    for (int64_t i = 0; i < ng; i++) {
        /* put the group in train while that brings train closer to its target */
        uint8_t s;
        if (filled < n_train && (filled + count[i] <= n_train || (filled + count[i] - n_train) < (n_train - filled)))
            s = MILES_SPLIT_TRAIN;
        else if (filled < n_train + n_val &&
                 (filled + count[i] <= n_train + n_val ||
                  (filled + count[i] - n_train - n_val) < (n_train + n_val - filled)))
            s = MILES_SPLIT_VAL;
        else s = MILES_SPLIT_TEST;
        gsplit[i] = s;
        filled += count[i];
        if (s == MILES_SPLIT_TRAIN && filled > n_train) n_train = filled; /* keep later splits contiguous */
        if (s == MILES_SPLIT_VAL && filled > n_train + n_val) n_val = filled - n_train;
    }
}

int miles_split_groups(const int32_t *groups, int64_t n, double train_frac, uint64_t seed, uint8_t *split) {
    if (!groups || !split || n < 0) return miles_error(MILES_EINVAL, "miles_split_groups: bad arguments");
    if (!(train_frac > 0 && train_frac < 1)) return miles_error(MILES_EINVAL, "train fraction %g not in (0,1)", train_frac);
    uint64_t rng = seed ^ 0x67726F7570ull; /* "group" */
    /* group ids: -1 rows each become their own group (ids beyond the max) */
    int32_t gmax = -1;
    for (int64_t i = 0; i < n; i++) if (groups[i] > gmax) gmax = groups[i];
    int32_t *g = malloc((size_t)(n ? n : 1) * sizeof *g);
    Group *gs = malloc((size_t)(n ? n : 1) * sizeof *gs);
    if (!g || !gs) { free(g); free(gs); return miles_error(MILES_ENOMEM, "out of memory"); }
    int32_t next = gmax + 1;
    for (int64_t i = 0; i < n; i++) g[i] = groups[i] >= 0 ? groups[i] : next++;
    /* count rows per group */
    for (int64_t i = 0; i < n; i++) { gs[i].g = g[i]; gs[i].count = 1; gs[i].order = 0; }
    qsort(gs, (size_t)n, sizeof *gs, cmp_group_id);
    int64_t ng = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ng > 0 && gs[ng - 1].g == gs[i].g) gs[ng - 1].count++;
        else gs[ng++] = gs[i];
    }
    /* random group order; fill train, then val, then test, by row count */
    for (int64_t i = 0; i < ng; i++) gs[i].order = (int64_t)(miles_splitmix64(&rng) >> 1);
    qsort(gs, (size_t)ng, sizeof *gs, cmp_group_order);
    uint8_t *gsplit = malloc((size_t)(ng ? ng : 1));
    int64_t *count = calloc((size_t)(ng ? ng : 1), sizeof *count);
    if (!gsplit || !count) { free(gsplit); free(count); free(g); free(gs); return miles_error(MILES_ENOMEM, "out of memory"); }
    for (int64_t i = 0; i < ng; i++) count[i] = gs[i].count;
    fill_in_order(count, ng, n, train_frac, gsplit);
    free(count);
    /* map back: sort groups by id for a binary search */
    for (int64_t i = 0; i < ng; i++) gs[i].order = gsplit[i];
    qsort(gs, (size_t)ng, sizeof *gs, cmp_group_id);
    for (int64_t i = 0; i < n; i++) {
        int64_t lo = 0, hi = ng - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (gs[mid].g < g[i]) lo = mid + 1; else hi = mid;
        }
        split[i] = (uint8_t)gs[lo].order;
    }
    free(gsplit); free(g); free(gs);
    return MILES_OK;
}

typedef struct { int64_t key, i; } Keyed;
static int cmp_keyed(const void *a, const void *b) {
    const Keyed *x = a, *y = b;
    if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
    return (x->i > y->i) - (x->i < y->i);
}

int miles_split_ordered(const int64_t *key, int64_t n, double train_frac, uint8_t *split) {
    if (!key || !split || n < 0) return miles_error(MILES_EINVAL, "miles_split_ordered: bad arguments");
    if (!(train_frac > 0 && train_frac < 1)) return miles_error(MILES_EINVAL, "train fraction %g not in (0,1)", train_frac);
    Keyed *k = malloc((size_t)(n ? n : 1) * sizeof *k);
    int64_t *count = calloc((size_t)(n ? n : 1), sizeof *count);
    uint8_t *gsplit = malloc((size_t)(n ? n : 1));
    if (!k || !count || !gsplit) { free(k); free(count); free(gsplit); return miles_error(MILES_ENOMEM, "out of memory"); }
    for (int64_t i = 0; i < n; i++) { k[i].key = key[i]; k[i].i = i; }
    qsort(k, (size_t)n, sizeof *k, cmp_keyed);
    /* runs of equal keys are the groups, already in order */
    int64_t ng = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i > 0 && k[i].key == k[i - 1].key) count[ng - 1]++;
        else count[ng++] = 1;
    }
    fill_in_order(count, ng, n, train_frac, gsplit);
    for (int64_t i = 0, g = -1; i < n; i++) {
        if (i == 0 || k[i].key != k[i - 1].key) g++;
        split[k[i].i] = gsplit[g];
    }
    free(k); free(count); free(gsplit);
    return MILES_OK;
}

/* ---------------------------------------------------------------- cohort labels */

int miles_label_cohorts(const int64_t *day, const double *vel, int64_t n, int window_days, int64_t min_rows, double p,
                        int32_t *labels, MilesCohorts *info) {
    if (!day || !vel || !labels || n < 1 || window_days < 1 || min_rows < 1 || !(p > 0 && p < 100))
        return miles_error(MILES_EINVAL, "miles_label_cohorts: bad arguments");
    Keyed *k = malloc((size_t)n * sizeof *k);
    double *v = malloc((size_t)n * sizeof *v);
    if (!k || !v) { free(k); free(v); return miles_error(MILES_ENOMEM, "out of memory"); }
    for (int64_t i = 0; i < n; i++) { k[i].key = day[i]; k[i].i = i; }
    qsort(k, (size_t)n, sizeof *k, cmp_keyed);
    /* cohorts: [start, end) ranges of k; a window of window_days days from the
     * first day, extended by whole windows until it holds min_rows rows */
    const int64_t d0 = k[0].key;
    MilesCohorts c = {0};
    c.thr_min = INFINITY;
    c.thr_max = -INFINITY;
    int64_t start = 0;
    while (start < n) {
        int64_t end = start;
        do { /* through the end of the window holding the next row (empty windows skipped) */
            int64_t w = (k[end].key - d0) / window_days + 1;
            while (end < n && k[end].key - d0 < w * window_days) end++;
        } while (end < n && end - start < min_rows);
        /* too few rows left after it: the rest joins this cohort */
        if (n - end < min_rows) end = n;
        int64_t m = end - start;
        for (int64_t j = 0; j < m; j++) v[j] = vel[k[start + j].i];
        double thr = miles_percentile(v, m, p);
        if (isnan(thr)) { free(k); free(v); return miles_error(MILES_ENOMEM, "out of memory"); } /* its only failure */
        for (int64_t j = 0; j < m; j++) labels[k[start + j].i] = vel[k[start + j].i] >= thr;
        if (thr < c.thr_min) c.thr_min = thr;
        if (thr > c.thr_max) c.thr_max = thr;
        if (m < c.min_rows || c.n == 0) c.min_rows = m;
        c.n++;
        start = end;
    }
    free(k); free(v);
    if (info) *info = c;
    return MILES_OK;
}
