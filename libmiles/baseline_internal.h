/*
 * baseline_internal.h — shared between tfidf.c, logreg.c and baseline.c (the
 * baselines module); not installed.
 */
#ifndef MILES_BASELINE_INTERNAL_H
#define MILES_BASELINE_INTERNAL_H

#include "miles.h"

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
