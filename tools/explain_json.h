/*
 * explain_json.h — integrated-gradients explanation of one predictor record as
 * a JSON object, shared by miles-predict --explain and miles-serve
 * (/predict?explain=1).  Method and fields: docs/explain.md.
 */
#ifndef MILES_EXPLAIN_JSON_H
#define MILES_EXPLAIN_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "miles.h"

/* The defaults (docs/explain.md) with the special ids of p's tokenizer. */
void explain_config_for(const MilesPredictor *p, MilesExplainConfig *cfg);
/* Target by name: "prob" (P(viral)), "logit" (viral log-odds), "velocity"; -1 if unknown. */
int explain_target_by_name(const char *name);

/* Explain `rec` with the predictor's own model, tokenizer and scaler (the exact
 * inputs miles_predictor_predict feeds).  cfg NULL = explain_config_for(p).  The model's activations
 * are overwritten: call only from the thread that runs the predictor's forward
 * passes (miles-serve's inference thread), never concurrently with it.
 * *out = {"target","steps","f_input","f_baseline",
 *         "tokens":[{"token","attribution"}],      (no [CLS]/[SEP]/padding)
 *         "words":[{"word","attribution"}],        ("##" pieces summed)
 *         "features":[{"name","value","attribution"(,"filled":true)}],
 *                                                  (value = standardized input)
 *         "completeness_error"}                    (sum of attributions - (f(x) - f(x')))
 * On error returns MILES_E* (message in miles_last_error()). */
int explain_record_json(MilesPredictor *p, const MilesRecord *rec, const MilesExplainConfig *cfg, cJSON **out);

#endif
