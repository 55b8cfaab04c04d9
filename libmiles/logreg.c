/*
 * logreg.c — L2-regularized binary logistic regression with scikit-learn's
 * objective, solved by our own L-BFGS.
 *
 *   f(w, b) = 0.5 * ||w||^2 + C * sum_i sw_i * (log(1 + exp(z_i)) - y_i z_i),
 *   z_i = x_i . w + b,  sw_i = class weight of y_i,
 *
 * which is sklearn's LogisticRegression(penalty='l2') objective up to a constant
 * factor (sklearn 1.2 divides it by sum(sw)), so the minimizer is the same; the
 * intercept is not penalized.  The problem is strongly convex in w, so we run
 * L-BFGS (two-loop recursion, memory `history`) with a strong-Wolfe line search
 * (Nocedal & Wright alg. 3.5/3.6) to a gradient max-norm of
 * tol * max(1, |grad at 0|).  Near the optimum the decrease of f falls below
 * its rounding error, so the sufficient-decrease test also accepts Hager &
 * Zhang's approximate-Wolfe form (f <= f0 + eps|f0| and phi'(a) <= (2 c1 - 1)
 * phi'(0)), which only needs the gradient to be accurate.
 */
#include "internal.h"

#include <math.h>

#include "baseline_internal.h"

struct MilesLogReg {
    MilesLogRegConfig cfg;
    int d;
    double *coef;      /* [d] */
    double intercept;
    MilesLogRegInfo info;
};

void miles_logreg_config_default(MilesLogRegConfig *c) {
    memset(c, 0, sizeof *c);
    c->C = 1.0;
    c->class_weight_balanced = 1;
    c->class_weight[0] = c->class_weight[1] = 1.0;
    c->fit_intercept = 1;
    c->tol = 1e-10;
    c->max_iter = 10000;
    c->history = 10;
}

static int check_config(const MilesLogRegConfig *c) {
    if (!(c->C > 0) || !isfinite(c->C)) return miles_error(MILES_EINVAL, "logreg: C = %g must be > 0", c->C);
    if (!(c->tol >= 0)) return miles_error(MILES_EINVAL, "logreg: tol = %g", c->tol);
    if (c->max_iter < 1) return miles_error(MILES_EINVAL, "logreg: max_iter = %d", c->max_iter);
    if (c->history < 1 || c->history > 1000) return miles_error(MILES_EINVAL, "logreg: history = %d", c->history);
    if (!c->class_weight_balanced && (!(c->class_weight[0] > 0) || !(c->class_weight[1] > 0)))
        return miles_error(MILES_EINVAL, "logreg: class weights must be > 0");
    return MILES_OK;
}

/* Design matrix: dense (row-major, double) or CSR. */
typedef struct Design {
    int n, d;
    const double *dense;
    const MilesCsr *csr;
} Design;

/* z = X w + b */
static void design_matvec(const Design *X, const double *w, double b, double *z) {
    if (X->dense) {
        #pragma omp parallel for schedule(static) if (X->n * (long)X->d > 100000)
        for (int i = 0; i < X->n; i++) {
            const double *x = X->dense + (size_t)i * X->d;
            double s = 0;
            for (int j = 0; j < X->d; j++) s += x[j] * w[j];
            z[i] = s + b;
        }
    } else {
        const MilesCsr *m = X->csr;
        for (int i = 0; i < X->n; i++) {
            double s = 0;
            for (int64_t k = m->indptr[i]; k < m->indptr[i + 1]; k++) s += m->data[k] * w[m->indices[k]];
            z[i] = s + b;
        }
    }
}

/* g += X^T r */
static void design_rmatvec(const Design *X, const double *r, double *g) {
    if (X->dense) {
        for (int i = 0; i < X->n; i++) {
            const double *x = X->dense + (size_t)i * X->d;
            double ri = r[i];
            if (ri == 0) continue;
            for (int j = 0; j < X->d; j++) g[j] += ri * x[j];
        }
    } else {
        const MilesCsr *m = X->csr;
        for (int i = 0; i < X->n; i++)
            for (int64_t k = m->indptr[i]; k < m->indptr[i + 1]; k++) g[m->indices[k]] += r[i] * m->data[k];
    }
}

typedef struct Problem {
    const Design *X;
    const int32_t *y;
    const double *sw;  /* [n] */
    double C;
    int fit_intercept;
    int p;             /* d + 1 parameters (the last is b, kept 0 without intercept) */
    double *z, *r;     /* [n] scratch */
    long n_eval;
} Problem;

static double log1pexp(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }
static double sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* f and gradient at theta = [w, b] */
static double eval_fg(Problem *P, const double *th, double *g) {
    const Design *X = P->X;
    int d = X->d;
    design_matvec(X, th, th[d], P->z);
    double loss = 0, gb = 0;
    for (int i = 0; i < X->n; i++) {
        double z = P->z[i];
        loss += P->sw[i] * (log1pexp(z) - P->y[i] * z);
        P->r[i] = P->C * P->sw[i] * (sigmoid(z) - P->y[i]);
        gb += P->r[i];
    }
    double ww = 0;
    for (int j = 0; j < d; j++) { ww += th[j] * th[j]; g[j] = th[j]; }
    design_rmatvec(X, P->r, g);
    g[d] = P->fit_intercept ? gb : 0.0;
    P->n_eval++;
    return 0.5 * ww + P->C * loss;
}

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static double maxabs(const double *a, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

/* Line search state: x0, direction, and the trial point/gradient buffers. */
typedef struct LS {
    Problem *P;
    const double *x0, *dir;
    double f0, dphi0;
    double *xt, *gt;   /* trial point and its gradient */
    double ft, dphit;
} LS;

static void ls_eval(LS *L, double a) {
    int p = L->P->p;
    for (int i = 0; i < p; i++) L->xt[i] = L->x0[i] + a * L->dir[i];
    L->ft = eval_fg(L->P, L->xt, L->gt);
    L->dphit = dot(L->gt, L->dir, p);
}

#define C1 1e-4
#define C2 0.9
static int sufficient(const LS *L, double a, double f, double dphi) {
    if (f <= L->f0 + C1 * a * L->dphi0) return 1;
    /* approximate Wolfe (Hager & Zhang 2005) for when f is flat to rounding */
    return f <= L->f0 + 1e-12 * fabs(L->f0) && dphi <= (2 * C1 - 1) * L->dphi0;
}

/* Cubic interpolation minimizer in [lo, hi] from two points; bisection when
 * it falls outside the safeguarded interval. */
static double interp(double a, double fa, double da, double b, double fb, double db) {
    double d1 = da + db - 3 * (fa - fb) / (a - b);
    double disc = d1 * d1 - da * db;
    double lo = fmin(a, b), hi = fmax(a, b), t;
    if (disc >= 0) {
        double d2 = copysign(sqrt(disc), b - a);
        t = b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2);
    } else t = NAN;
    double w = hi - lo;
    if (!(t >= lo + 0.1 * w && t <= hi - 0.1 * w)) t = 0.5 * (lo + hi);
    return t;
}

/* Strong-Wolfe line search; on success the trial buffers hold the accepted
 * point.  Returns 1 on success, 0 on failure. */
static int line_search(LS *L, double a_init) {
    double a_prev = 0, f_prev = L->f0, d_prev = L->dphi0;
    double a = a_init;
    for (int it = 0; it < 60; it++) {
        ls_eval(L, a);
        if (!isfinite(L->ft)) { a *= 0.1; continue; }   /* overflowed: back off */
        double lo, flo, dlo, hi, fhi, dhi;
        if (!sufficient(L, a, L->ft, L->dphit) || (it > 0 && L->ft >= f_prev && L->ft > L->f0 + C1 * a * L->dphi0)) {
            lo = a_prev; flo = f_prev; dlo = d_prev; hi = a; fhi = L->ft; dhi = L->dphit;
        } else if (fabs(L->dphit) <= -C2 * L->dphi0) {
            return 1;
        } else if (L->dphit >= 0) {
            lo = a; flo = L->ft; dlo = L->dphit; hi = a_prev; fhi = f_prev; dhi = d_prev;
        } else {
            a_prev = a; f_prev = L->ft; d_prev = L->dphit;
            a *= 2;
            continue;
        }
        /* zoom */
        for (int z = 0; z < 60; z++) {
            if (fabs(hi - lo) <= 1e-16 * fmax(1.0, fabs(lo))) break;
            double t = interp(lo, flo, dlo, hi, fhi, dhi);
            ls_eval(L, t);
            if (!sufficient(L, t, L->ft, L->dphit) || L->ft > flo) {
                hi = t; fhi = L->ft; dhi = L->dphit;
            } else {
                if (fabs(L->dphit) <= -C2 * L->dphi0) return 1;
                if (L->dphit * (hi - lo) >= 0) { hi = lo; fhi = flo; dhi = dlo; }
                lo = t; flo = L->ft; dlo = L->dphit;
            }
        }
        /* interval collapsed: accept lo if it decreased f */
        if (lo > 0 && flo < L->f0) { ls_eval(L, lo); return 1; }
        return 0;
    }
    return 0;
}

static int lbfgs(Problem *P, double *x, const MilesLogRegConfig *cfg, MilesLogRegInfo *info) {
    int p = P->p, m = cfg->history;
    size_t sz = (size_t)p * sizeof(double);
    double *g = miles_calloc(1, sz), *dir = miles_calloc(1, sz), *xt = miles_calloc(1, sz),
           *gt = miles_calloc(1, sz), *S = miles_calloc((size_t)m, sz), *Y = miles_calloc((size_t)m, sz),
           *rho = miles_calloc((size_t)m, sizeof(double)), *al = miles_calloc((size_t)m, sizeof(double));
    if (!g || !dir || !xt || !gt || !S || !Y || !rho || !al) {
        free(g); free(dir); free(xt); free(gt); free(S); free(Y); free(rho); free(al);
        return MILES_ENOMEM;
    }
    double f = eval_fg(P, x, g);
    double g0 = maxabs(g, p), gtol = cfg->tol * fmax(1.0, g0);
    int k = 0, head = 0, iter = 0, converged = 0, fails = 0;
    while (1) {
        double gm = maxabs(g, p);
        if (gm <= gtol) { converged = 1; break; }
        if (iter >= cfg->max_iter) break;
        /* two-loop recursion: dir = -H g */
        for (int i = 0; i < p; i++) dir[i] = -g[i];
        for (int j = 0; j < k; j++) {
            int t = (head - 1 - j + m) % m;
            al[t] = rho[t] * dot(S + (size_t)t * p, dir, p);
            for (int i = 0; i < p; i++) dir[i] -= al[t] * Y[(size_t)t * p + i];
        }
        double gamma = 1.0;
        if (k > 0) {
            int t = (head - 1 + m) % m;
            const double *yv = Y + (size_t)t * p;
            gamma = 1.0 / (rho[t] * dot(yv, yv, p));
        }
        for (int i = 0; i < p; i++) dir[i] *= gamma;
        for (int j = k - 1; j >= 0; j--) {
            int t = (head - 1 - j + m) % m;
            double b = rho[t] * dot(Y + (size_t)t * p, dir, p);
            for (int i = 0; i < p; i++) dir[i] += (al[t] - b) * S[(size_t)t * p + i];
        }
        double dphi0 = dot(g, dir, p);
        if (!(dphi0 < 0)) {   /* not a descent direction: restart from steepest descent */
            for (int i = 0; i < p; i++) dir[i] = -g[i];
            dphi0 = -dot(g, g, p);
            k = 0;
        }
        double a0 = k == 0 ? fmin(1.0, 1.0 / sqrt(-dphi0)) : 1.0;
        LS L = { P, x, dir, f, dphi0, xt, gt, 0, 0 };
        if (!line_search(&L, a0)) {
            if (k > 0 && fails == 0) { k = 0; fails++; continue; }   /* retry as gradient step */
            break;   /* stalled at machine precision */
        }
        fails = 0;
        /* update memory */
        double *s = S + (size_t)head * p, *yv = Y + (size_t)head * p;
        for (int i = 0; i < p; i++) { s[i] = xt[i] - x[i]; yv[i] = gt[i] - g[i]; }
        double sy = dot(s, yv, p);
        memcpy(x, xt, sz);
        memcpy(g, gt, sz);
        f = L.ft;
        if (sy > 1e-300 && sy > 1e-16 * sqrt(dot(s, s, p) * dot(yv, yv, p))) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            if (k < m) k++;
        }
        iter++;
    }
    info->n_iter = iter;
    info->objective = f;
    info->grad_max = maxabs(g, p);
    info->converged = converged;
    free(g); free(dir); free(xt); free(gt); free(S); free(Y); free(rho); free(al);
    return MILES_OK;
}

static int fit(MilesLogReg **out, const Design *X, const int32_t *y, const MilesLogRegConfig *cfg) {
    *out = NULL;
    MilesLogRegConfig dflt;
    if (!cfg) { miles_logreg_config_default(&dflt); cfg = &dflt; }
    MILES_TRY(check_config(cfg));
    if (X->n <= 0 || X->d <= 0 || !y)
        return miles_error(MILES_EINVAL, "logreg_fit: empty problem (n = %d, d = %d)", X->n, X->d);
    int64_t cnt[2] = {0, 0};
    for (int i = 0; i < X->n; i++) {
        if (y[i] != 0 && y[i] != 1)
            return miles_error(MILES_EINVAL, "logreg_fit: label[%d] = %d is not 0 or 1", i, (int)y[i]);
        cnt[y[i]]++;
    }
    if (!cnt[0] || !cnt[1])
        return miles_error(MILES_EINVAL, "logreg_fit: labels have a single class (%d examples, "
                           "all %s)", X->n, cnt[1] ? "positive" : "negative");
    double cw[2];
    for (int c = 0; c < 2; c++)   /* sklearn compute_class_weight('balanced') */
        cw[c] = cfg->class_weight_balanced ? (double)X->n / (2.0 * (double)cnt[c]) : cfg->class_weight[c];
    MilesLogReg *m = miles_calloc(1, sizeof *m);
    double *sw = miles_malloc((size_t)X->n * sizeof *sw);
    double *z = miles_malloc((size_t)X->n * sizeof *z), *r = miles_malloc((size_t)X->n * sizeof *r);
    double *th = miles_calloc((size_t)X->d + 1, sizeof *th);
    int s = (m && sw && z && r && th) ? MILES_OK : MILES_ENOMEM;
    if (s == MILES_OK) {
        for (int i = 0; i < X->n; i++) sw[i] = cw[y[i]];
        Problem P = { X, y, sw, cfg->C, cfg->fit_intercept, X->d + 1, z, r, 0 };
        s = lbfgs(&P, th, cfg, &m->info);
    }
    if (s == MILES_OK) {
        m->cfg = *cfg;
        m->d = X->d;
        m->intercept = th[X->d];
        m->coef = th;   /* the trailing intercept slot is harmless */
        th = NULL;
    }
    free(sw); free(z); free(r); free(th);
    if (s != MILES_OK) { miles_logreg_free(m); return s; }
    /* like sklearn's ConvergenceWarning: the model is usable, info.converged says
     * whether max|grad| reached tol */
    *out = m;
    return MILES_OK;
}

int miles_logreg_fit_dense(MilesLogReg **out, const float *X, int n, int d, const int32_t *y,
                           const MilesLogRegConfig *cfg) {
    *out = NULL;
    if (!X || n <= 0 || d <= 0) return miles_error(MILES_EINVAL, "logreg_fit: empty X (n=%d, d=%d)", n, d);
    double *Xd = miles_malloc((size_t)n * d * sizeof *Xd);
    if (!Xd) return MILES_ENOMEM;
    for (size_t i = 0; i < (size_t)n * d; i++) {
        if (!isfinite(X[i])) {
            free(Xd);
            return miles_error(MILES_ENAN, "logreg_fit: X[%zu][%zu] is not finite", i / d, i % d);
        }
        Xd[i] = X[i];
    }
    Design D = { n, d, Xd, NULL };
    int s = fit(out, &D, y, cfg);
    free(Xd);
    return s;
}

static int check_csr(const MilesCsr *X, const char *fn) {
    if (!X || X->rows <= 0 || X->cols <= 0 || !X->indptr)
        return miles_error(MILES_EINVAL, "%s: empty CSR matrix", fn);
    for (int i = 0; i < X->rows; i++)
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) {
            if (X->indices[k] < 0 || X->indices[k] >= X->cols)
                return miles_error(MILES_ERANGE, "%s: row %d has column %d >= %d", fn, i, X->indices[k], X->cols);
            if (!isfinite(X->data[k]))
                return miles_error(MILES_ENAN, "%s: row %d column %d is not finite", fn, i, X->indices[k]);
        }
    return MILES_OK;
}

int miles_logreg_fit_csr(MilesLogReg **out, const MilesCsr *X, const int32_t *y,
                         const MilesLogRegConfig *cfg) {
    *out = NULL;
    MILES_TRY(check_csr(X, "logreg_fit"));
    Design D = { X->rows, X->cols, NULL, X };
    return fit(out, &D, y, cfg);
}

int miles_logreg_predict_proba_dense(const MilesLogReg *m, const float *X, int n, int d,
                                     double *proba) {
    if (!m) return miles_error(MILES_EINVAL, "logreg_predict: NULL model");
    if (d != m->d) return miles_error(MILES_ESHAPE, "logreg_predict: X has %d features, model %d", d, m->d);
    for (int i = 0; i < n; i++) {
        double s = m->intercept;
        for (int j = 0; j < d; j++) {
            float v = X[(size_t)i * d + j];
            if (!isfinite(v)) return miles_error(MILES_ENAN, "logreg_predict: X[%d][%d] is not finite", i, j);
            s += (double)v * m->coef[j];
        }
        proba[i] = sigmoid(s);
    }
    return MILES_OK;
}

int miles_logreg_predict_proba_csr(const MilesLogReg *m, const MilesCsr *X, double *proba) {
    if (!m) return miles_error(MILES_EINVAL, "logreg_predict: NULL model");
    if (X->cols != m->d) return miles_error(MILES_ESHAPE, "logreg_predict: X has %d columns, model %d", X->cols, m->d);
    for (int i = 0; i < X->rows; i++) {
        double s = m->intercept;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) s += X->data[k] * m->coef[X->indices[k]];
        proba[i] = sigmoid(s);
    }
    return MILES_OK;
}

int miles_logreg_dim(const MilesLogReg *m) { return m ? m->d : 0; }
const double *miles_logreg_coef(const MilesLogReg *m) { return m ? m->coef : NULL; }
double miles_logreg_intercept(const MilesLogReg *m) { return m ? m->intercept : NAN; }
void miles_logreg_info(const MilesLogReg *m, MilesLogRegInfo *info) {
    if (m) *info = m->info; else memset(info, 0, sizeof *info);
}
const MilesLogRegConfig *miles_logreg_config_of(const MilesLogReg *m) { return &m->cfg; }
void miles_logreg_free(MilesLogReg *m) {
    if (!m) return;
    free(m->coef);
    free(m);
}

int miles_logreg_from_parts(MilesLogReg **out, const MilesLogRegConfig *cfg, const double *coef,
                            int d, double intercept) {
    *out = NULL;
    if (d <= 0) return miles_error(MILES_EINVAL, "logreg: %d coefficients", d);
    MilesLogReg *m = miles_calloc(1, sizeof *m);
    if (!m) return MILES_ENOMEM;
    m->coef = miles_malloc(((size_t)d + 1) * sizeof *m->coef);
    if (!m->coef) { free(m); return MILES_ENOMEM; }
    for (int j = 0; j < d; j++) {
        if (!isfinite(coef[j])) { miles_logreg_free(m); return miles_error(MILES_ENAN, "logreg: coef[%d] not finite", j); }
        m->coef[j] = coef[j];
    }
    if (!isfinite(intercept)) { miles_logreg_free(m); return miles_error(MILES_ENAN, "logreg: intercept not finite"); }
    m->coef[d] = intercept;
    m->intercept = intercept;
    m->d = d;
    m->cfg = *cfg;
    m->info.converged = 1;
    *out = m;
    return MILES_OK;
}
