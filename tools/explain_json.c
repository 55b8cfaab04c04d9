/*
 * explain_json.c — see explain_json.h.
 */
#include "explain_json.h"

#include <stdlib.h>
#include <string.h>

static const char *target_name(int t) {
    return t == MILES_EXPLAIN_VIRAL_LOGIT ? "viral_logit" : t == MILES_EXPLAIN_VELOCITY ? "velocity" : "p_viral";
}

int explain_target_by_name(const char *name) {
    if (!strcmp(name, "prob")) return MILES_EXPLAIN_VIRAL_PROB;
    if (!strcmp(name, "logit")) return MILES_EXPLAIN_VIRAL_LOGIT;
    if (!strcmp(name, "velocity")) return MILES_EXPLAIN_VELOCITY;
    return -1;
}

int explain_record_json(MilesPredictor *p, const MilesRecord *rec, const MilesExplainConfig *cfg, cJSON **out) {
    *out = NULL;
    MilesRecordExplanation *e = NULL;
    int s = miles_predictor_explain(p, rec, cfg, &e);
    if (s != MILES_OK) return s;
    const MilesExplanation *ex = e->ig;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "target", target_name(ex->target));
    cJSON_AddNumberToObject(j, "steps", ex->steps);
    cJSON_AddNumberToObject(j, "f_input", ex->f_input[0]);
    cJSON_AddNumberToObject(j, "f_baseline", ex->f_baseline[0]);
    cJSON *ta = cJSON_AddArrayToObject(j, "tokens");
    for (int t = 0; t < e->n_tokens; t++) {
        if (!e->pieces[t]) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "token", e->pieces[t]);
        cJSON_AddNumberToObject(o, "attribution", ex->tokens[t]);
        cJSON_AddItemToArray(ta, o);
    }
    cJSON *wa = cJSON_AddArrayToObject(j, "words");
    for (int i = 0; i < e->n_words; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "word", e->words[i].text);
        cJSON_AddNumberToObject(o, "attribution", e->words[i].attribution);
        cJSON_AddItemToArray(wa, o);
    }
    cJSON *fa = cJSON_AddArrayToObject(j, "features");
    uint32_t trained = 0, dropped = 0;   /* "filled" as in the prediction: only features the model reads */
    miles_scaler_stats(miles_predictor_scaler(p), NULL, NULL, &trained, &dropped, NULL);
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", miles_feature_names[f]);
        cJSON_AddNumberToObject(o, "value", e->features[f]);
        cJSON_AddNumberToObject(o, "attribution", ex->features[f]);
        if (!(e->available >> f & 1) && ((trained & ~dropped) >> f & 1)) cJSON_AddBoolToObject(o, "filled", 1);
        cJSON_AddItemToArray(fa, o);
    }
    cJSON_AddNumberToObject(j, "completeness_error", ex->completeness_error[0]);
    miles_record_explanation_free(e);
    *out = j;
    return MILES_OK;
}
