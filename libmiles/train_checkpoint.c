/*
 * train_checkpoint.c — Miles checkpoints: one safetensors file holding the
 * parameters (checkpoint names), optionally the AdamW moments ("optim.m",
 * "optim.v", flat [num_params] in parameter order), and string metadata:
 *   format       "miles-checkpoint-1"
 *   config       model configuration JSON (miles_config_to_json)
 *   state        training state JSON (step, epoch, cursor, early stopping, ...)
 *   train_config the trainer settings used
 *   decision_threshold  F1-maximizing threshold on validation
 *   + user entries (e.g. "data": scalers and label threshold, "tokenizer_hash")
 * Written atomically by the safetensors writer (temp + fsync + rename), so a
 * crash mid-write leaves the previous checkpoint intact.
 */
#include "internal.h"
#include "train_internal.h"

#include <cjson/cJSON.h>
#include <math.h>

#define CKPT_FORMAT "miles-checkpoint-1"

/* ------------------------------------------------------------ config JSON */

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}
static cJSON *float_array(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

int miles_config_to_json(const MilesConfig *c, char **json) {
    *json = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return miles_error(MILES_ENOMEM, "out of memory");
    cJSON_AddStringToObject(o, "preset", c->preset);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(o, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(o, "type_vocab_size", c->type_vocab_size);
    cJSON_AddNumberToObject(o, "layer_norm_eps", c->layer_norm_eps);
    cJSON_AddNumberToObject(o, "hidden_dropout_prob", c->hidden_dropout_prob);
    cJSON_AddNumberToObject(o, "attention_probs_dropout_prob", c->attention_probs_dropout_prob);
    cJSON_AddStringToObject(o, "hidden_act", "gelu");
    cJSON_AddStringToObject(o, "pooling", c->pooling == MILES_POOL_POOLER ? "pooler"
                                          : c->pooling == MILES_POOL_CLS ? "cls" : "mean");
    cJSON_AddNumberToObject(o, "text_dropout", c->text_dropout);
    cJSON_AddNumberToObject(o, "num_features", c->num_features);
    cJSON_AddItemToObject(o, "numeric_widths", int_array(c->numeric_widths, c->n_numeric));
    cJSON_AddItemToObject(o, "numeric_dropouts", float_array(c->numeric_dropouts, c->n_numeric));
    cJSON_AddItemToObject(o, "fusion_widths", int_array(c->fusion_widths, c->n_fusion));
    cJSON_AddItemToObject(o, "fusion_dropouts", float_array(c->fusion_dropouts, c->n_fusion));
    cJSON_AddStringToObject(o, "velocity_activation", c->velocity_activation == MILES_VEL_SIGMOID ? "sigmoid" : "linear");
    *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *json ? MILES_OK : miles_error(MILES_ENOMEM, "out of memory");
}

static int get_num(const cJSON *o, const char *k, double *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(it)) return miles_error(MILES_EFORMAT, "model config: \"%s\" missing or not a number", k);
    *v = it->valuedouble;
    return MILES_OK;
}
#define GET_INT(key, dst) do { double _v = 0; MILES_TRY(get_num(o, key, &_v)); dst = (int)_v; } while (0)
#define GET_FLT(key, dst) do { double _v = 0; MILES_TRY(get_num(o, key, &_v)); dst = (float)_v; } while (0)

static int get_arrays(const cJSON *o, const char *kw, const char *kd, int *w, float *d, int *n) {
    const cJSON *aw = cJSON_GetObjectItemCaseSensitive(o, kw), *ad = cJSON_GetObjectItemCaseSensitive(o, kd);
    if (!cJSON_IsArray(aw) || !cJSON_IsArray(ad) || cJSON_GetArraySize(aw) != cJSON_GetArraySize(ad))
        return miles_error(MILES_EFORMAT, "model config: \"%s\"/\"%s\" missing or of different lengths", kw, kd);
    *n = cJSON_GetArraySize(aw);
    if (*n > MILES_MAX_MLP) return miles_error(MILES_EFORMAT, "model config: more than %d layers in \"%s\"", MILES_MAX_MLP, kw);
    for (int i = 0; i < *n; i++) {
        const cJSON *x = cJSON_GetArrayItem(aw, i), *y = cJSON_GetArrayItem(ad, i);
        if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y)) return miles_error(MILES_EFORMAT, "model config: bad entry in \"%s\"", kw);
        w[i] = x->valueint;
        d[i] = (float)y->valuedouble;
    }
    return MILES_OK;
}

static int config_from_cjson(MilesConfig *c, const cJSON *o) {
    memset(c, 0, sizeof *c);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "preset");
    snprintf(c->preset, sizeof c->preset, "%s", cJSON_IsString(p) ? p->valuestring : "custom");
    GET_INT("vocab_size", c->vocab_size);
    GET_INT("hidden_size", c->hidden_size);
    GET_INT("num_hidden_layers", c->num_hidden_layers);
    GET_INT("num_attention_heads", c->num_attention_heads);
    GET_INT("intermediate_size", c->intermediate_size);
    GET_INT("max_position_embeddings", c->max_position_embeddings);
    GET_INT("type_vocab_size", c->type_vocab_size);
    GET_FLT("layer_norm_eps", c->layer_norm_eps);
    GET_FLT("hidden_dropout_prob", c->hidden_dropout_prob);
    GET_FLT("attention_probs_dropout_prob", c->attention_probs_dropout_prob);
    GET_FLT("text_dropout", c->text_dropout);
    GET_INT("num_features", c->num_features);
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(o, "pooling");
    if (!cJSON_IsString(pool)) return miles_error(MILES_EFORMAT, "model config: \"pooling\" missing");
    if (!strcmp(pool->valuestring, "pooler")) c->pooling = MILES_POOL_POOLER;
    else if (!strcmp(pool->valuestring, "cls")) c->pooling = MILES_POOL_CLS;
    else if (!strcmp(pool->valuestring, "mean")) c->pooling = MILES_POOL_MEAN;
    else return miles_error(MILES_EFORMAT, "model config: unknown pooling \"%s\"", pool->valuestring);
    const cJSON *va = cJSON_GetObjectItemCaseSensitive(o, "velocity_activation");
    if (!cJSON_IsString(va)) return miles_error(MILES_EFORMAT, "model config: \"velocity_activation\" missing");
    if (!strcmp(va->valuestring, "sigmoid")) c->velocity_activation = MILES_VEL_SIGMOID;
    else if (!strcmp(va->valuestring, "linear")) c->velocity_activation = MILES_VEL_LINEAR;
    else return miles_error(MILES_EFORMAT, "model config: unknown velocity_activation \"%s\"", va->valuestring);
    MILES_TRY(get_arrays(o, "numeric_widths", "numeric_dropouts", c->numeric_widths, c->numeric_dropouts, &c->n_numeric));
    MILES_TRY(get_arrays(o, "fusion_widths", "fusion_dropouts", c->fusion_widths, c->fusion_dropouts, &c->n_fusion));
    return miles_config_validate(c);
}

int miles_config_from_json(MilesConfig *cfg, const char *json) {
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return miles_error(MILES_EFORMAT, "model config: not a JSON object");
    }
    int s = config_from_cjson(cfg, o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------ state JSON */

static void add_double(cJSON *o, const char *k, double v) {
    /* JSON has no infinities: "not yet evaluated" is stored as null */
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static char *state_to_json(const MilesTrainState *st, int64_t adam_steps) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)st->step);
    cJSON_AddNumberToObject(o, "epoch", st->epoch);
    cJSON_AddNumberToObject(o, "cursor", st->cursor);
    cJSON_AddNumberToObject(o, "n_evals", st->n_evals);
    cJSON_AddNumberToObject(o, "bad_evals", st->bad_evals);
    add_double(o, "best_es", st->best_es);
    add_double(o, "best_auroc", st->best_auroc);
    cJSON_AddNumberToObject(o, "best_step", (double)st->best_step);
    add_double(o, "best_f1", st->best_f1);
    add_double(o, "threshold", st->threshold);
    cJSON_AddNumberToObject(o, "adam_steps", (double)adam_steps);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static double get_d(const cJSON *o, const char *k, double dflt) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : dflt;
}

static char *train_cfg_to_json(const MilesTrainConfig *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "batch_size", c->batch_size);
    cJSON_AddNumberToObject(o, "max_len", c->max_len);
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "grad_accum", c->grad_accum);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddBoolToObject(o, "decay_all", c->decay_all);
    cJSON_AddNumberToObject(o, "warmup_steps", c->warmup_steps);
    cJSON_AddStringToObject(o, "schedule", c->schedule == MILES_SCHED_COSINE ? "cosine"
                                           : c->schedule == MILES_SCHED_LINEAR ? "linear"
                                           : c->schedule == MILES_SCHED_ORIGINAL ? "original" : "constant");
    cJSON_AddBoolToObject(o, "schedule_per_epoch", c->schedule_per_epoch);
    cJSON_AddNumberToObject(o, "clip", c->clip);
    cJSON_AddNumberToObject(o, "w_cls", c->loss.w_cls);
    cJSON_AddNumberToObject(o, "w_reg", c->loss.w_reg);
    cJSON_AddItemToObject(o, "class_weight", float_array(c->loss.class_weight, 2));
    cJSON_AddNumberToObject(o, "patience", c->patience);
    cJSON_AddNumberToObject(o, "min_delta", c->min_delta);
    cJSON_AddNumberToObject(o, "eval_every", c->eval_every);
    cJSON_AddBoolToObject(o, "bucket", c->bucket);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------ save / load */

int miles_ckpt_save(const char *path, MilesModel *m, MilesAdamW *opt, const MilesTrainState *st,
                    const MilesTrainConfig *cfg) {
    MilesSafetensorsWriter *w = NULL;
    MILES_TRY(miles_safetensors_writer_open(&w, path));
    int s = MILES_OK;
    int nt = miles_model_num_tensors(m);
    for (int i = 0; s == MILES_OK && i < nt; i++) {
        MilesTensorInfo ti;
        s = miles_model_tensor(m, i, &ti);
        if (s == MILES_OK)
            s = miles_safetensors_writer_add(w, ti.name, MILES_DT_F32, ti.ndim, ti.shape, ti.data);
    }
    int64_t np = (int64_t)miles_model_num_params(m);
    if (s == MILES_OK && opt) {
        s = miles_safetensors_writer_add(w, "optim.m", MILES_DT_F32, 1, &np, miles_adamw_m(opt));
        if (s == MILES_OK) s = miles_safetensors_writer_add(w, "optim.v", MILES_DT_F32, 1, &np, miles_adamw_v(opt));
    }
    char *cj = NULL, *sj = NULL, *tj = NULL;
    if (s == MILES_OK) s = miles_config_to_json(miles_model_config(m), &cj);
    if (s == MILES_OK) {
        sj = state_to_json(st, opt ? miles_adamw_steps(opt) : 0);
        tj = train_cfg_to_json(cfg);
        if (!sj || !tj) s = miles_error(MILES_ENOMEM, "out of memory");
    }
    char thr[64];
    snprintf(thr, sizeof thr, "%.17g", st->threshold);
    if (s == MILES_OK) s = miles_safetensors_writer_metadata(w, "format", CKPT_FORMAT);
    if (s == MILES_OK) s = miles_safetensors_writer_metadata(w, "config", cj);
    if (s == MILES_OK) s = miles_safetensors_writer_metadata(w, "state", sj);
    if (s == MILES_OK) s = miles_safetensors_writer_metadata(w, "train_config", tj);
    if (s == MILES_OK) s = miles_safetensors_writer_metadata(w, "decision_threshold", thr);
    for (int i = 0; s == MILES_OK && i < cfg->n_extra_meta; i++)
        s = miles_safetensors_writer_metadata(w, cfg->extra_meta_keys[i], cfg->extra_meta_values[i]);
    free(cj); free(sj); free(tj);
    if (s != MILES_OK) {
        miles_safetensors_writer_abort(w);
        return miles_error_prefix(s, "%s", path);
    }
    return miles_safetensors_writer_finish(w);
}

static int check_format(const MilesSafetensors *st, const char *path) {
    const char *f = miles_safetensors_metadata(st, "format");
    if (!f || strcmp(f, CKPT_FORMAT) != 0)
        return miles_error(MILES_EFORMAT, "%s: not a Miles checkpoint (metadata \"format\" is %s%s%s)", path,
                           f ? "\"" : "", f ? f : "missing", f ? "\"" : "");
    return MILES_OK;
}

/* Read every model tensor from st by name, checking shapes. */
static int read_params(const MilesSafetensors *st, MilesModel *m, const char *path) {
    int nt = miles_model_num_tensors(m);
    for (int i = 0; i < nt; i++) {
        MilesTensorInfo ti;
        MILES_TRY(miles_model_tensor(m, i, &ti));
        int j = miles_safetensors_find(st, ti.name);
        if (j < 0) return miles_error(MILES_EMISSING, "%s: tensor \"%s\" missing", path, ti.name);
        int nd;
        int64_t shp[8];
        size_t numel;
        MILES_TRY(miles_safetensors_info(st, j, NULL, &nd, shp, &numel));
        int same = nd == ti.ndim && numel == ti.numel;
        for (int k = 0; same && k < nd; k++) same = shp[k] == ti.shape[k];
        if (!same) return miles_error(MILES_ESHAPE, "%s: tensor \"%s\" has the wrong shape", path, ti.name);
        int s = miles_safetensors_read_f32(st, j, ti.data, ti.numel);
        if (s != MILES_OK) return s;
    }
    return MILES_OK;
}

int miles_ckpt_load_state(const char *path, MilesModel *m, MilesAdamW *opt, MilesTrainState *out) {
    MilesSafetensors *st = NULL;
    MILES_TRY(miles_safetensors_open(&st, path));
    int s = check_format(st, path);
    if (s == MILES_OK) s = read_params(st, m, path);
    size_t np = miles_model_num_params(m);
    const char *names[2] = {"optim.m", "optim.v"};
    float *bufs[2] = {miles_adamw_m(opt), miles_adamw_v(opt)};
    for (int k = 0; s == MILES_OK && k < 2; k++) {
        int j = miles_safetensors_find(st, names[k]);
        if (j < 0) s = miles_error(MILES_EMISSING, "%s: no optimizer state (\"%s\"); is it a \"best\" checkpoint? resume from last.safetensors", path, names[k]);
        else s = miles_safetensors_read_f32(st, j, bufs[k], np);
    }
    const char *sj = s == MILES_OK ? miles_safetensors_metadata(st, "state") : NULL;
    if (s == MILES_OK && !sj) s = miles_error(MILES_EMISSING, "%s: metadata \"state\" missing", path);
    if (s == MILES_OK) {
        cJSON *o = cJSON_Parse(sj);
        if (!o) s = miles_error(MILES_EFORMAT, "%s: metadata \"state\" is not JSON", path);
        else {
            memset(out, 0, sizeof *out);
            out->step = (int64_t)get_d(o, "step", 0);
            out->epoch = (int)get_d(o, "epoch", 0);
            out->cursor = (int)get_d(o, "cursor", 0);
            out->n_evals = (int)get_d(o, "n_evals", 0);
            out->bad_evals = (int)get_d(o, "bad_evals", 0);
            out->best_es = get_d(o, "best_es", -INFINITY);
            out->best_auroc = get_d(o, "best_auroc", -INFINITY);
            out->best_step = (int64_t)get_d(o, "best_step", 0);
            out->best_f1 = get_d(o, "best_f1", 0);
            out->threshold = get_d(o, "threshold", 0.5);
            miles_adamw_set_steps(opt, (int64_t)get_d(o, "adam_steps", (double)out->step));
            cJSON_Delete(o);
        }
    }
    miles_safetensors_close(st);
    return s;
}

int miles_checkpoint_metadata(const char *path, const char *key, char **value) {
    *value = NULL;
    MilesSafetensors *st = NULL;
    MILES_TRY(miles_safetensors_open(&st, path));
    int s = check_format(st, path);
    const char *v = s == MILES_OK ? miles_safetensors_metadata(st, key) : NULL;
    if (s == MILES_OK && !v) s = miles_error(MILES_EMISSING, "%s: metadata \"%s\" missing", path, key);
    if (s == MILES_OK) {
        *value = strdup(v);
        if (!*value) s = miles_error(MILES_ENOMEM, "out of memory");
    }
    miles_safetensors_close(st);
    return s;
}

int miles_checkpoint_load_model(MilesModel **out, const char *path) {
    *out = NULL;
    MilesSafetensors *st = NULL;
    MILES_TRY(miles_safetensors_open(&st, path));
    int s = check_format(st, path);
    const char *cj = s == MILES_OK ? miles_safetensors_metadata(st, "config") : NULL;
    if (s == MILES_OK && !cj) s = miles_error(MILES_EMISSING, "%s: metadata \"config\" missing", path);
    MilesConfig cfg;
    if (s == MILES_OK) {
        s = miles_config_from_json(&cfg, cj);
        if (s != MILES_OK) miles_error_prefix(s, "%s", path);
    }
    MilesModel *m = NULL;
    if (s == MILES_OK) s = miles_model_build(&m, &cfg);
    if (s == MILES_OK) s = read_params(st, m, path);
    miles_safetensors_close(st);
    if (s != MILES_OK) { miles_model_free(m); return s; }
    *out = m;
    return MILES_OK;
}
