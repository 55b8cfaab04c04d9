/*
 * explain_json.c — see explain_json.h.
 */
#include "explain_json.h"

#include <stdlib.h>
#include <string.h>

static const char *target_name(int t) {
    return t == MILES_EXPLAIN_VIRAL_LOGIT ? "viral_logit" : t == MILES_EXPLAIN_VELOCITY ? "velocity" : "p_viral";
}

void explain_config_for(const MilesPredictor *p, MilesExplainConfig *cfg) {
    const MilesTokenizer *tok = miles_predictor_tokenizer(p);
    miles_explain_config_default(cfg);
    cfg->pad_id = miles_tokenizer_special_id(tok, "pad");
    cfg->cls_id = miles_tokenizer_special_id(tok, "cls");
    cfg->sep_id = miles_tokenizer_special_id(tok, "sep");
    if (cfg->pad_id < 0) cfg->token_baseline = MILES_BASELINE_ZERO;
}

int explain_target_by_name(const char *name) {
    if (!strcmp(name, "prob")) return MILES_EXPLAIN_VIRAL_PROB;
    if (!strcmp(name, "logit")) return MILES_EXPLAIN_VIRAL_LOGIT;
    if (!strcmp(name, "velocity")) return MILES_EXPLAIN_VELOCITY;
    return -1;
}

int explain_record_json(MilesPredictor *p, const MilesRecord *rec, const MilesExplainConfig *cfg_in, cJSON **out) {
    *out = NULL;
    const MilesTokenizer *tok = miles_predictor_tokenizer(p);
    MilesExplainConfig cfg;
    if (cfg_in) cfg = *cfg_in;
    else explain_config_for(p, &cfg);
    const int L = miles_predictor_max_len(p);
    int32_t *ids = calloc((size_t)L, sizeof *ids), *mask = calloc((size_t)L, sizeof *mask);
    const char **pieces = calloc((size_t)L, sizeof *pieces);
    float feats[MILES_NUM_FEATURES];
    uint32_t avail = 0;
    int len = 0, s = MILES_OK;
    MilesExplanation *ex = NULL;
    MilesExplainWord *w = NULL;
    int nw = 0;
    cJSON *j = NULL;
    if (!ids || !mask || !pieces) { s = MILES_ENOMEM; goto done; }
    if ((s = miles_predictor_encode(p, rec, ids, mask, &len, NULL)) != MILES_OK) goto done;
    if ((s = miles_predictor_features(p, rec, feats, &avail, NULL)) != MILES_OK) goto done;
    /* T = the real length: the padding the predictor adds changes nothing */
    MilesBatch b = {1, len, ids, NULL, mask, feats, NULL, NULL};
    /* the predictor owns the model; the caller guarantees no concurrent use */
    if ((s = miles_explain_ig((MilesModel *)miles_predictor_model(p), &b, &cfg, &ex)) != MILES_OK) goto done;
    for (int t = 0; t < len; t++)
        pieces[t] = (ids[t] == cfg.cls_id || ids[t] == cfg.sep_id || !mask[t]) ? NULL
                                                                               : miles_tokenizer_id_to_token(tok, ids[t]);
    if ((s = miles_explain_words(pieces, ex->tokens, len, &w, &nw)) != MILES_OK) goto done;

    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "target", target_name(ex->target));
    cJSON_AddNumberToObject(j, "steps", ex->steps);
    cJSON_AddNumberToObject(j, "f_input", ex->f_input[0]);
    cJSON_AddNumberToObject(j, "f_baseline", ex->f_baseline[0]);
    cJSON *ta = cJSON_AddArrayToObject(j, "tokens");
    for (int t = 0; t < len; t++) {
        if (!pieces[t]) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "token", pieces[t]);
        cJSON_AddNumberToObject(o, "attribution", ex->tokens[t]);
        cJSON_AddItemToArray(ta, o);
    }
    cJSON *wa = cJSON_AddArrayToObject(j, "words");
    for (int i = 0; i < nw; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "word", w[i].text);
        cJSON_AddNumberToObject(o, "attribution", w[i].attribution);
        cJSON_AddItemToArray(wa, o);
    }
    cJSON *fa = cJSON_AddArrayToObject(j, "features");
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", miles_feature_names[f]);
        cJSON_AddNumberToObject(o, "value", feats[f]);
        cJSON_AddNumberToObject(o, "attribution", ex->features[f]);
        if (!(avail >> f & 1)) cJSON_AddBoolToObject(o, "filled", 1);
        cJSON_AddItemToArray(fa, o);
    }
    cJSON_AddNumberToObject(j, "completeness_error", ex->completeness_error[0]);
    *out = j;
done:
    miles_explain_words_free(w, nw);
    miles_explanation_free(ex);
    free(ids);
    free(mask);
    free(pieces);
    return s;
}
