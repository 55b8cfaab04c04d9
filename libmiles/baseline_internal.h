/*
 * baseline_internal.h — shared between tfidf.c, logreg.c and baseline.c (the
 * baselines module); not installed.
 */
#ifndef MILES_BASELINE_INTERNAL_H
#define MILES_BASELINE_INTERNAL_H

#include "internal.h"

/* ---- TF-IDF and L-BFGS logistic regression: the baselines' machinery ---- */
/* Sparse rows (CSR): row r has entries indptr[r] .. indptr[r+1]-1, column
 * indices increasing.  Free with miles_csr_free. */
typedef struct MilesCsr {
    int rows, cols;
    int64_t *indptr;   /* [rows+1] */
    int32_t *indices;  /* [nnz] */
    double *data;      /* [nnz] */
} MilesCsr;
void miles_csr_free(MilesCsr *m);
typedef struct MilesTfidf MilesTfidf;
/* Fit the vocabulary and idf on n UTF-8 documents (token pattern
 * (?u)\b\w\w+\b, Python's \w = Unicode letters, numbers and '_'). */
int miles_tfidf_fit(MilesTfidf **out, const char *const *docs, int n, const MilesTfidfConfig *cfg);
int miles_tfidf_transform(const MilesTfidf *t, const char *const *docs, int n, MilesCsr *out);
void miles_tfidf_free(MilesTfidf *t);
int miles_tfidf_vocab_size(const MilesTfidf *t);
const char *miles_tfidf_term(const MilesTfidf *t, int index);   /* sorted by code point */
double miles_tfidf_idf(const MilesTfidf *t, int index);
int miles_tfidf_lookup(const MilesTfidf *t, const char *term);   /* index or -1 */
/* sklearn's ENGLISH_STOP_WORDS as embedded in the library (sorted). */
const char *const *miles_tfidf_stop_words(int *count);

typedef struct MilesLogRegInfo { int n_iter; double objective, grad_max; int converged; } MilesLogRegInfo;
typedef struct MilesLogReg MilesLogReg;
/* Fit.  Single-class labels, non-finite X: errors.  Like sklearn's
 * ConvergenceWarning, a fit that stops before tol (max_iter, or the line search
 * stalls at rounding level) still returns MILES_OK: check info.converged.
 * Dense features X [n,d] row-major (float, widened to double). */
int miles_logreg_fit_dense(MilesLogReg **out, const float *X, int n, int d, const int32_t *y,
                           const MilesLogRegConfig *cfg);
int miles_logreg_fit_csr(MilesLogReg **out, const MilesCsr *X, const int32_t *y,
                         const MilesLogRegConfig *cfg);
/* P(y = 1) for each row. */
int miles_logreg_predict_proba_dense(const MilesLogReg *m, const float *X, int n, int d,
                                     double *proba);
int miles_logreg_predict_proba_csr(const MilesLogReg *m, const MilesCsr *X, double *proba);
int miles_logreg_dim(const MilesLogReg *m);
const double *miles_logreg_coef(const MilesLogReg *m);  /* [d] */
double miles_logreg_intercept(const MilesLogReg *m);
void miles_logreg_info(const MilesLogReg *m, MilesLogRegInfo *info);
void miles_logreg_free(MilesLogReg *m);


/* ---- the baseline's parts (tests) ---- */
int miles_baseline_is_text(const MilesBaseline *b);
const MilesTfidf *miles_baseline_tfidf(const MilesBaseline *b);   /* NULL if numeric */
const MilesLogReg *miles_baseline_logreg(const MilesBaseline *b);

/* Fitted vectorizer from parts (fit and the JSON loader): takes ownership of
 * terms[V] (sorted, unique) and idf[V], also on failure. */
int miles_tfidf_from_parts(MilesTfidf **out, const MilesTfidfConfig *cfg, char **terms,
                           double *idf, int V);
const MilesTfidfConfig *miles_tfidf_config_of(const MilesTfidf *t);
/* Fitted model from parts (the JSON loader): copies coef[d]. */
int miles_logreg_from_parts(MilesLogReg **out, const MilesLogRegConfig *cfg, const double *coef,
                            int d, double intercept);
const MilesLogRegConfig *miles_logreg_config_of(const MilesLogReg *m);

#endif
