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

/* Target by name: "prob" (P(viral)), "logit" (viral log-odds), "velocity"; -1 if unknown. */
int explain_target_by_name(const char *name);

/* miles_predictor_explain of `rec` (cfg NULL = miles_predictor_explain_config)
 * as JSON; safe beside predictions in other threads (the predictor locks).
 * *out = {"target","steps","f_input","f_baseline",
 *         "tokens":[{"token","attribution"}],      (no [CLS]/[SEP]/padding)
 *         "words":[{"word","attribution"}],        ("##" pieces summed)
 *         "features":[{"name","value","attribution"(,"filled":true)}],
 *                                                  (value = standardized input)
 *         "completeness_error"}                    (sum of attributions - (f(x) - f(x')))
 * On error returns MILES_E* (message in miles_last_error()). */
int explain_record_json(MilesPredictor *p, const MilesRecord *rec, const MilesExplainConfig *cfg, cJSON **out);

#endif
