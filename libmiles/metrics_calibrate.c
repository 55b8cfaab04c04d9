/*
 * metrics_calibrate.c — Platt scaling of P(viral) (miles.h "Calibration",
 * docs/metrics.md "Recalibrating the probabilities").
 *
 * The model trains with class weights, which shift its probabilities (a prior
 * shift is exactly a bias on the logit), and fine-tuned encoders are often
 * over-confident besides.  Platt's sigmoid p' = sigma(a * x + b) on the
 * score's logit x = log(p / (1 - p)), fitted on held-out rows, corrects both
 * without touching the ranking (a > 0 keeps the order, so AUROC, AP and every
 * decision at a mapped threshold stay the same).
 *
 * The objective is Platt's (2000, section 2.2) as scikit-learn's
 * CalibratedClassifierCV(method="sigmoid") writes it: the cross-entropy of
 * sigma(a x + b) against the smoothed targets t+ = (N+ + 1) / (N+ + 2) for
 * positives and t- = 1 / (N- + 2) for negatives, summed over rows.  The
 * smoothing keeps the minimum finite when the scores separate the classes.
 * scikit-learn stops BFGS at a gradient of 1e-5; we take Newton steps on the
 * 2x2 system (the objective is strictly convex when the logits are not all
 * equal) until they stop changing (a, b), so the result is the minimum to
 * rounding, and deterministic (sequential sums in row order).
 *
 * Scores are fp32 probabilities in practice (the model's precision), which
 * cannot say how close to 1 a confident score was: 1 - 2^-24 is the last
 * float below 1.  The logit is therefore taken of p clipped to [2^-24,
 * 1 - 2^-24], |x| <= 16.64, the same on both sides.
 */
#include "metrics_internal.h"

#include <float.h>
#include <math.h>

#define PLATT_EPS 5.9604644775390625e-08   /* 2^-24 */
#define PLATT_MAX_ITER 100

double miles_platt_logit(double p) {
    if (p < PLATT_EPS) p = PLATT_EPS;
    if (p > 1.0 - PLATT_EPS) p = 1.0 - PLATT_EPS;
    return log(p) - log1p(-p);
}

/* -log sigma(u) and -log(1 - sigma(u)) = -log sigma(-u), without overflow */
static double neg_log_sigmoid(double u) { return u > 0 ? log1p(exp(-u)) : -u + log1p(exp(u)); }
static double sigmoid(double u) {
    if (u >= 0) return 1.0 / (1.0 + exp(-u));
    double e = exp(u);
    return e / (1.0 + e);
}

/* Platt's objective at (a, b) */
static double objective(const double *x, const int32_t *y, int n, double tp, double tn, double a, double b) {
    double f = 0;
    for (int i = 0; i < n; i++) {
        double t = y[i] ? tp : tn, u = a * x[i] + b;
        f += t * neg_log_sigmoid(u) + (1 - t) * neg_log_sigmoid(-u);
    }
    return f;
}

int miles_platt_fit(const double *scores, const int32_t *labels, int n, MilesPlatt *out) {
    if (!out) return miles_error(MILES_EINVAL, "platt_fit: out is NULL");
    memset(out, 0, sizeof *out);
    int64_t npos = 0;
    MILES_TRY(miles_metric_check_inputs("platt_fit", scores, labels, n, &npos));
    if (npos == 0 || npos == n)
        return miles_error(MILES_EINVAL, "platt_fit: undefined with a single class (%d examples, all %s)", n,
                           npos ? "positive" : "negative");
    for (int i = 0; i < n; i++)
        if (scores[i] < 0 || scores[i] > 1)
            return miles_error(MILES_EINVAL, "platt_fit: score[%d] = %g is not a probability", i, scores[i]);
    double *x = miles_malloc(sizeof(double) * (size_t)n);
    if (!x) return MILES_ENOMEM;
    int distinct = 0;
    double xmax = 0;   /* max |x|: how far a change of a moves a logit */
    for (int i = 0; i < n; i++) {
        x[i] = miles_platt_logit(scores[i]);
        if (x[i] != x[0]) distinct = 1;
        if (fabs(x[i]) > xmax) xmax = fabs(x[i]);
    }
    if (!distinct) {
        double x0 = x[0];
        free(x);
        return miles_error(MILES_EINVAL, "platt_fit: all %d scores have the same logit (%g): nothing to fit a slope to",
                           n, x0);
    }
    const double nneg = (double)(n - npos), tp = ((double)npos + 1) / ((double)npos + 2), tn = 1 / (nneg + 2);
    /* scikit-learn's start: slope 0, the smoothed prior's log-odds */
    double a = 0, b = log(((double)npos + 1) / (nneg + 1));
    double f = objective(x, labels, n, tp, tn, a, b);
    int steps = 0;
    while (steps < PLATT_MAX_ITER) {
        /* gradient and Hessian of the objective */
        double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
        for (int i = 0; i < n; i++) {
            double s = sigmoid(a * x[i] + b), r = s - (labels[i] ? tp : tn), w = s * (1 - s);
            ga += r * x[i];
            gb += r;
            haa += w * x[i] * x[i];
            hab += w * x[i];
            hbb += w;
        }
        double det = haa * hbb - hab * hab;
        if (!(det > 0)) break;   /* sigma saturated on every row: no curvature left to use */
        double da = -(hbb * ga - hab * gb) / det, db = -(haa * gb - hab * ga) / det;
        /* backtracking while far from the minimum (a full Newton step from the
         * start can overshoot: a few positives at saturated scores send it to
         * where sigma is flat and the Hessian singular); close to it, the objective's decrease (the Newton
         * decrement) is below its rounding, so comparing objectives would stop
         * at sqrt(eps) from the minimum: there the full step is taken, which
         * converges quadratically */
        double step = 1, fn = objective(x, labels, n, tp, tn, a + da, b + db);
        const double decrement = -(ga * da + gb * db);
        if (decrement > 1e-9 * (1 + f)) {
            while (fn > f && step > 1e-10) {
                step *= 0.5;
                fn = objective(x, labels, n, tp, tn, a + step * da, b + step * db);
            }
            if (fn > f) break;   /* no step lowers it */
        }
        double na = a + step * da, nb = b + step * db;
        steps++;
        /* done when the step moves no calibrated logit a x + b by more than its rounding */
        int done = fabs(na - a) * xmax + fabs(nb - b) <= 4 * DBL_EPSILON * (1 + fabs(na) * xmax + fabs(nb));
        a = na;
        b = nb;
        f = fn;
        if (done) break;
    }
    free(x);
    out->a = a;
    out->b = b;
    out->n = n;
    out->n_pos = npos;
    out->iterations = steps;
    out->objective = f;
    out->logit_clip = miles_platt_logit(1.0);
    return MILES_OK;
}

double miles_platt_map(const MilesPlatt *c, double score) {
    if (!c || !(score >= 0 && score <= 1)) return NAN;
    return sigmoid(c->a * miles_platt_logit(score) + c->b);
}

int miles_platt_apply(const MilesPlatt *c, const double *scores, int n, double *out) {
    if (!c || n < 0 || (n > 0 && (!scores || !out))) return miles_error(MILES_EINVAL, "platt_apply: bad arguments");
    if (!isfinite(c->a) || !isfinite(c->b)) return miles_error(MILES_EINVAL, "platt_apply: a or b is not finite");
    for (int i = 0; i < n; i++) {
        if (!(scores[i] >= 0 && scores[i] <= 1))
            return miles_error(MILES_EINVAL, "platt_apply: score[%d] = %g is not a probability", i, scores[i]);
        out[i] = miles_platt_map(c, scores[i]);
    }
    return MILES_OK;
}
