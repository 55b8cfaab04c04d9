/*
 * ridge.c — ridge regression, scikit-learn Ridge(alpha, fit_intercept=True)
 * semantics: minimize ||y - X w - b||^2 + alpha ||w||^2 (the intercept is not
 * penalized).  Like sklearn's dense "cholesky" solver: X and y are centered
 * (in double), (Xc' Xc + alpha I) w = Xc' yc is solved by Cholesky, and
 * b = mean(y) - mean(X) . w.  The velocity baseline of miles-baseline.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

int miles_ridge_fit(const float *X, int n, int d, const double *y, double alpha, double *w, double *b) {
    if (!X || !y || !w || !b || n < 1 || d < 1)
        return miles_error(MILES_EINVAL, "ridge: need X [n,d], y [n] with n, d >= 1 (got n %d, d %d)", n, d);
    if (!(alpha >= 0.0) || !isfinite(alpha)) return miles_error(MILES_EINVAL, "ridge: alpha %g must be >= 0", alpha);
    double *mx = calloc((size_t)d, sizeof *mx), *A = calloc((size_t)d * d, sizeof *A), *r = calloc((size_t)d, sizeof *r);
    if (!mx || !A || !r) { free(mx); free(A); free(r); return miles_error(MILES_ENOMEM, "ridge: out of memory"); }
    double my = 0.0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) { free(mx); free(A); free(r); return miles_error(MILES_EINVAL, "ridge: y[%d] is %g", i, y[i]); }
        my += y[i];
        for (int j = 0; j < d; j++) mx[j] += X[(size_t)i * d + j];
    }
    my /= n;
    for (int j = 0; j < d; j++) mx[j] /= n;
    /* Gram matrix of the centered features (lower triangle) and X' y */
    double *xc = malloc(sizeof(double) * d);
    if (!xc) { free(mx); free(A); free(r); return miles_error(MILES_ENOMEM, "ridge: out of memory"); }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) xc[j] = (double)X[(size_t)i * d + j] - mx[j];
        const double yc = y[i] - my;
        for (int j = 0; j < d; j++) {
            r[j] += xc[j] * yc;
            for (int k = 0; k <= j; k++) A[(size_t)j * d + k] += xc[j] * xc[k];
        }
    }
    free(xc);
    for (int j = 0; j < d; j++) A[(size_t)j * d + j] += alpha;
    /* Cholesky A = L L' in place (lower), then L z = r, L' w = z */
    int s = MILES_OK;
    for (int j = 0; j < d && s == MILES_OK; j++) {
        double v = A[(size_t)j * d + j];
        for (int k = 0; k < j; k++) v -= A[(size_t)j * d + k] * A[(size_t)j * d + k];
        if (!(v > 0.0)) {
            s = miles_error(MILES_EINVAL, "ridge: the Gram matrix is singular at feature %d (constant feature with "
                            "alpha 0): use alpha > 0", j);
            break;
        }
        const double l = sqrt(v);
        A[(size_t)j * d + j] = l;
        for (int i = j + 1; i < d; i++) {
            double u = A[(size_t)i * d + j];
            for (int k = 0; k < j; k++) u -= A[(size_t)i * d + k] * A[(size_t)j * d + k];
            A[(size_t)i * d + j] = u / l;
        }
    }
    if (s == MILES_OK) {
        for (int i = 0; i < d; i++) {
            double u = r[i];
            for (int k = 0; k < i; k++) u -= A[(size_t)i * d + k] * r[k];
            r[i] = u / A[(size_t)i * d + i];
        }
        for (int i = d - 1; i >= 0; i--) {
            double u = r[i];
            for (int k = i + 1; k < d; k++) u -= A[(size_t)k * d + i] * w[k];
            w[i] = u / A[(size_t)i * d + i];
        }
        double bb = my;
        for (int j = 0; j < d; j++) bb -= mx[j] * w[j];
        *b = bb;
    }
    free(mx);
    free(A);
    free(r);
    return s;
}

int miles_ridge_predict(const float *X, int n, int d, const double *w, double b, double *out) {
    if (!X || !w || !out || n < 0 || d < 1) return miles_error(MILES_EINVAL, "ridge predict: bad arguments");
    for (int i = 0; i < n; i++) {
        double s = b;
        for (int j = 0; j < d; j++) s += (double)X[(size_t)i * d + j] * w[j];
        out[i] = s;
    }
    return MILES_OK;
}
