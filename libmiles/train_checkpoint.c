/*
 * train_checkpoint.c — the checkpoint format, in one place: one safetensors
 * file holding the parameters (checkpoint names), optionally the AdamW
 * moments ("optim.m", "optim.v", flat [num_params] in parameter order), the
 * embedded tokenizer files ("tokenizer/<file>", U8), and string metadata
 * under the MILES_META_* keys of miles.h (format, model config, training
 * state, trainer settings, decision threshold, and the serving contract:
 * scaler, tokenizer hash, text cleaning, vocabulary hint, recipe).  Written
 * atomically by the safetensors writer (temp + fsync + rename), so a crash
 * mid-write leaves the previous checkpoint intact.  Read back through a
 * MilesCheckpoint handle, which also checks prepared data and tokenizers
 * against the contract.
 *
 * Versions: "miles-checkpoint-4" (this writer) adds the header's CRC-32
 * (MILES_META_HEADER_CRC32: the metadata, config and scaler included, and
 * the tensor entries; required from -4 on); "miles-checkpoint-3" a CRC-32
 * per tensor (MILES_META_CRC32, verified by the safetensors reader at open and
 * required from -3 on); "miles-checkpoint-2" adds the embedded tokenizer;
 * "miles-checkpoint-1" files are read the same way (their vocabulary is found
 * through "vocab_dir").  A change of format bumps the number here.
 */
#include "internal.h"
#include "train_internal.h"

#include <cjson/cJSON.h>
#include <math.h>

#define CKPT_FORMAT_V1 "miles-checkpoint-1"
#define CKPT_FORMAT_V2 "miles-checkpoint-2"
#define CKPT_FORMAT_V3 "miles-checkpoint-3"
#define TOK_PREFIX "tokenizer/"
static const char *const tok_names[3] = {"vocab.txt", "tokenizer_config.json", "tokenizer.json"};


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
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return miles_error(MILES_EFORMAT, "model config: \"%s\" missing or not a number", k);
    *v = it->valuedouble;
    return MILES_OK;
}
/* an integer in [0, INT32_MAX] (a cast of 2^62 to int is undefined); the upper
 * bounds proper are miles_config_validate's, checked before any allocation */
static int get_int(const cJSON *o, const char *k, int *dst) {
    double v = 0;
    MILES_TRY(get_num(o, k, &v));
    if (v != floor(v) || v < 0 || v > 2147483647.0)
        return miles_error(MILES_EFORMAT, "model config: \"%s\" = %g is not an integer in [0, 2147483647]", k, v);
    *dst = (int)v;
    return MILES_OK;
}
#define GET_INT(key, dst) MILES_TRY(get_int(o, key, &(dst)))
#define GET_FLT(key, dst) do { double _v = 0; MILES_TRY(get_num(o, key, &_v)); dst = (float)_v; } while (0)

static int get_arrays(const cJSON *o, const char *kw, const char *kd, int *w, float *d, int *n) {
    const cJSON *aw = cJSON_GetObjectItemCaseSensitive(o, kw), *ad = cJSON_GetObjectItemCaseSensitive(o, kd);
    if (!cJSON_IsArray(aw) || !cJSON_IsArray(ad) || cJSON_GetArraySize(aw) != cJSON_GetArraySize(ad))
        return miles_error(MILES_EFORMAT, "model config: \"%s\"/\"%s\" missing or of different lengths", kw, kd);
    *n = cJSON_GetArraySize(aw);
    if (*n > MILES_MAX_MLP) return miles_error(MILES_EFORMAT, "model config: more than %d layers in \"%s\"", MILES_MAX_MLP, kw);
    for (int i = 0; i < *n; i++) {
        const cJSON *x = cJSON_GetArrayItem(aw, i), *y = cJSON_GetArrayItem(ad, i);
        if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y) || !(x->valuedouble >= 1 && x->valuedouble <= 1048576) ||
            x->valuedouble != floor(x->valuedouble) || !isfinite(y->valuedouble))
            return miles_error(MILES_EFORMAT, "model config: bad entry %d in \"%s\"/\"%s\"", i, kw, kd);
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
    /* the only activation implemented; another would silently compute the wrong model */
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "gelu")))
        return miles_error(MILES_EFORMAT, "model config: hidden_act \"%s\" is not supported (only \"gelu\")",
                           cJSON_IsString(act) ? act->valuestring : "(not a string)");
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
    if (st->loss_scale > 0) { /* fp16: the resumed run continues at this scale */
        cJSON_AddNumberToObject(o, "loss_scale", st->loss_scale);
        cJSON_AddNumberToObject(o, "loss_scale_growth_tracker", (double)st->loss_scale_growth);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static double get_d(const cJSON *o, const char *k, double dflt) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : dflt;
}

static char *train_cfg_to_json(const MilesTrainConfig *c, const MilesLossConfig *loss) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "batch_size", c->batch_size);
    cJSON_AddNumberToObject(o, "max_len", c->max_len);
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "grad_accum", c->grad_accum);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "head_lr", c->head_lr > 0 ? c->head_lr : c->lr);
    cJSON_AddNumberToObject(o, "layer_decay", c->layer_decay);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddBoolToObject(o, "decay_all", c->decay_all);
    cJSON_AddNumberToObject(o, "warmup_steps", c->warmup_steps);
    cJSON_AddStringToObject(o, "schedule", c->schedule == MILES_SCHED_COSINE ? "cosine"
                                           : c->schedule == MILES_SCHED_LINEAR ? "linear"
                                           : c->schedule == MILES_SCHED_ORIGINAL ? "original" : "constant");
    cJSON_AddBoolToObject(o, "schedule_per_epoch", c->schedule_per_epoch);
    cJSON_AddNumberToObject(o, "clip", c->clip);
    cJSON_AddNumberToObject(o, "w_cls", loss->w_cls);
    cJSON_AddNumberToObject(o, "w_reg", loss->w_reg);
    cJSON_AddItemToObject(o, "class_weight", float_array(loss->class_weight, 2));
    cJSON_AddBoolToObject(o, "auto_class_weight", c->auto_class_weight);
    cJSON_AddNumberToObject(o, "patience", c->patience);
    cJSON_AddNumberToObject(o, "min_delta", c->min_delta);
    cJSON_AddNumberToObject(o, "eval_every", c->eval_every);
    cJSON_AddBoolToObject(o, "bucket", c->bucket);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------ save */

int miles_ckpt_save(const char *path, MilesModel *m, MilesAdamW *opt, const MilesTrainState *st,
                    const MilesTrainConfig *cfg, const MilesLossConfig *loss, const MilesCkptContract *k) {
    MilesSafetensorsWriter *w = NULL;
    MILES_TRY(miles_safetensors_writer_open(&w, path));
    miles_safetensors_writer_crc(w);
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
    if (s == MILES_OK && k && k->tokenizer) {
        const char *data[3] = {k->tokenizer->vocab, k->tokenizer->config, k->tokenizer->json};
        const size_t n[3] = {k->tokenizer->vocab_n, k->tokenizer->config_n, k->tokenizer->json_n};
        for (int i = 0; s == MILES_OK && i < 3; i++) {
            if (!data[i]) continue;
            char name[64];
            snprintf(name, sizeof name, TOK_PREFIX "%s", tok_names[i]);
            int64_t len = (int64_t)n[i];
            s = miles_safetensors_writer_add(w, name, MILES_DT_U8, 1, &len, data[i]);
        }
    }
    char *cj = NULL, *sj = NULL, *tj = NULL;
    if (s == MILES_OK) s = miles_config_to_json(miles_model_config(m), &cj);
    if (s == MILES_OK) {
        sj = state_to_json(st, opt ? miles_adamw_steps(opt) : 0);
        tj = train_cfg_to_json(cfg, loss ? loss : &cfg->loss);
        if (!sj || !tj) s = miles_error(MILES_ENOMEM, "out of memory");
    }
    char thr[64];
    snprintf(thr, sizeof thr, "%.17g", st->threshold);
    const char *keys[] = {MILES_META_FORMAT, MILES_META_CONFIG, MILES_META_STATE, MILES_META_TRAIN_CONFIG,
                          MILES_META_THRESHOLD, MILES_META_SCALER, MILES_META_TOKENIZER_HASH,
                          MILES_META_TEXT_CLEAN, MILES_META_VOCAB_DIR, MILES_META_RECIPE,
                          MILES_META_VELOCITY_TARGET, MILES_META_VELOCITY_MEAN, MILES_META_VELOCITY_STD,
                          MILES_META_VELOCITY_MIN, MILES_META_VELOCITY_MAX, MILES_META_DATA_SPLIT};
    /* the loader refuses a threshold outside [0, 1]: a degenerate one (NaN when the
     * validation split had one class) is left out and the default 0.5 applies */
    const int thr_ok = isfinite(st->threshold) && st->threshold >= 0 && st->threshold <= 1;
    const char *vals[] = {MILES_CHECKPOINT_FORMAT, cj, sj, tj, thr_ok ? thr : NULL, k ? k->scaler_json : NULL,
                          k ? k->tokenizer_hash : NULL, k ? k->text_clean : NULL, k ? k->vocab_dir : NULL,
                          k ? k->recipe : NULL, k ? k->velocity_target : NULL, k ? k->velocity_mean : NULL,
                          k ? k->velocity_std : NULL, k ? k->velocity_min : NULL, k ? k->velocity_max : NULL,
                          k ? k->data_split : NULL};
    for (size_t i = 0; s == MILES_OK && i < sizeof keys / sizeof *keys; i++)
        if (vals[i]) s = miles_safetensors_writer_metadata(w, keys[i], vals[i]);
    free(cj); free(sj); free(tj);
    if (s != MILES_OK) {
        miles_safetensors_writer_abort(w);
        return miles_error_prefix(s, "%s", path);
    }
    return miles_safetensors_writer_finish(w);
}

/* ------------------------------------------------------------ load */

static int check_format(const MilesSafetensors *st, const char *path) {
    const char *f = miles_safetensors_metadata(st, MILES_META_FORMAT);
    const int v4 = f && !strcmp(f, MILES_CHECKPOINT_FORMAT), v3 = f && !strcmp(f, CKPT_FORMAT_V3);
    if (!f || (!v4 && !v3 && strcmp(f, CKPT_FORMAT_V2) != 0 && strcmp(f, CKPT_FORMAT_V1) != 0))
        return miles_error(MILES_EFORMAT, "%s: not a Miles checkpoint (metadata \"format\" is %s%s%s)", path,
                           f ? "\"" : "", f ? f : "missing", f ? "\"" : "");
    /* the reader verified the CRCs when present; from -3 on the tensors' must
     * be there, from -4 on the header's too */
    if ((v4 || v3) && !miles_safetensors_metadata(st, MILES_META_CRC32))
        return miles_error(MILES_EFORMAT, "%s: metadata \"" MILES_META_CRC32 "\" (tensor checksums) missing in a "
                           "%s file", path, f);
    if (v4 && !miles_safetensors_metadata(st, MILES_META_HEADER_CRC32))
        return miles_error(MILES_EFORMAT, "%s: metadata \"" MILES_META_HEADER_CRC32 "\" (header checksum) missing "
                           "in a %s file", path, f);
    const char *thr = miles_safetensors_metadata(st, MILES_META_THRESHOLD);
    if (thr) {
        char *end;
        double t = strtod(thr, &end);
        if (end == thr || *end || !(t >= 0 && t <= 1))
            return miles_error(MILES_EFORMAT, "%s: metadata \"" MILES_META_THRESHOLD "\" = \"%.40s\" is not a "
                               "number in [0, 1]", path, thr);
    }
    return MILES_OK;
}

/* A NaN or infinite weight makes every prediction NaN (or one constant): refuse
 * it at load, in every tool, rather than print "nan" scores. */
static int check_finite(const char *path, const char *name, const float *v, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(v[k]))
            return miles_error(MILES_ENAN, "%s: tensor \"%s\" element %zu is %g: the weights are not finite "
                               "(a diverged or corrupt checkpoint)", path, name, k, (double)v[k]);
    return MILES_OK;
}

/* Read every model tensor from st by name, checking shapes; a tensor of the
 * file that the model lacks is refused too: the "config" metadata is not
 * covered by the tensors' CRCs, and a layer count edited down (or another
 * model's config) would otherwise load a model that silently drops layers. */
static int read_params(const MilesSafetensors *st, MilesModel *m, const char *path, int resume) {
    int nt = miles_model_num_tensors(m), nf = miles_safetensors_count(st);
    const char *whose = resume ? "being resumed" : "of its \"config\" metadata"; /* the messages' model */
    for (int j = 0; j < nf; j++) {
        const char *name = miles_safetensors_name(st, j);
        if (!strcmp(name, "optim.m") || !strcmp(name, "optim.v") || !strncmp(name, TOK_PREFIX, strlen(TOK_PREFIX)))
            continue;
        if (miles_model_find_tensor(m, name) < 0)
            return miles_error(MILES_EFORMAT, "%s: tensor \"%s\" is not a parameter of the model (%s: "
                               "num_hidden_layers %d, hidden_size %d)", path, name, whose,
                               miles_model_config(m)->num_hidden_layers, miles_model_config(m)->hidden_size);
    }
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
        if (!same) {
            char s1[96], s2[96];
            miles_shape_str(s1, sizeof s1, nd, shp);
            miles_shape_str(s2, sizeof s2, ti.ndim, ti.shape);
            return miles_error(MILES_ESHAPE, "%s: tensor \"%s\" has shape %s, the model (%s) expects %s", path,
                               ti.name, s1, whose, s2);
        }
        int s = miles_safetensors_read_f32(st, j, ti.data, ti.numel);
        if (s != MILES_OK) return s;
        MILES_TRY(check_finite(path, ti.name, ti.data, ti.numel));
    }
    return MILES_OK;
}

int miles_ckpt_parse_state(const char *json, MilesTrainState *out, int64_t *adam_steps) {
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!o) return miles_error(MILES_EFORMAT, "metadata \"state\" is not JSON");
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
    out->loss_scale = get_d(o, "loss_scale", 0);
    out->loss_scale_growth = (int64_t)get_d(o, "loss_scale_growth_tracker", 0);
    if (!(out->loss_scale >= 0) || !isfinite(out->loss_scale) || out->loss_scale_growth < 0 ||
        out->loss_scale_growth > INT32_MAX) {
        cJSON_Delete(o);
        return miles_error(MILES_EFORMAT, "state: loss_scale %g / loss_scale_growth_tracker %lld out of range",
                           out->loss_scale, (long long)out->loss_scale_growth);
    }
    if (adam_steps) *adam_steps = (int64_t)get_d(o, "adam_steps", (double)out->step);
    cJSON_Delete(o);
    return MILES_OK;
}

int miles_ckpt_load_state(const char *path, MilesModel *m, MilesAdamW *opt, MilesTrainState *out) {
    MilesSafetensors *st = NULL;
    MILES_TRY(miles_safetensors_open(&st, path));
    int s = check_format(st, path);
    if (s == MILES_OK) s = read_params(st, m, path, 1);
    size_t np = miles_model_num_params(m);
    const char *names[2] = {"optim.m", "optim.v"};
    float *bufs[2] = {miles_adamw_m(opt), miles_adamw_v(opt)};
    for (int k = 0; s == MILES_OK && k < 2; k++) {
        int j = miles_safetensors_find(st, names[k]);
        if (j < 0) s = miles_error(MILES_EMISSING, "%s: no optimizer state (\"%s\"); is it a \"best\" checkpoint? resume from last.safetensors", path, names[k]);
        else s = miles_safetensors_read_f32(st, j, bufs[k], np);
        if (s == MILES_OK) s = check_finite(path, names[k], bufs[k], np);
    }
    const char *sj = s == MILES_OK ? miles_safetensors_metadata(st, MILES_META_STATE) : NULL;
    if (s == MILES_OK && !sj) s = miles_error(MILES_EMISSING, "%s: metadata \"state\" missing", path);
    int64_t adam_steps = 0;
    if (s == MILES_OK && (s = miles_ckpt_parse_state(sj, out, &adam_steps)) != MILES_OK)
        miles_error_prefix(s, "%s", path);
    if (s == MILES_OK) miles_adamw_set_steps(opt, adam_steps);
    miles_safetensors_close(st);
    return s;
}

/* ------------------------------------------------------------ the handle */

struct MilesCheckpoint {
    char *path;
    MilesSafetensors *st;
    MilesConfig cfg;
};

int miles_checkpoint_open(MilesCheckpoint **out, const char *path) {
    if (!out || !path) return miles_error(MILES_EINVAL, "miles_checkpoint_open: NULL argument");
    *out = NULL;
    MilesCheckpoint *c = miles_calloc(1, sizeof *c);
    if (!c) return MILES_ENOMEM;
    c->path = strdup(path);
    int s = c->path ? miles_safetensors_open(&c->st, path) : miles_error(MILES_ENOMEM, "out of memory");
    if (s == MILES_OK) s = check_format(c->st, path);
    const char *cj = s == MILES_OK ? miles_safetensors_metadata(c->st, MILES_META_CONFIG) : NULL;
    if (s == MILES_OK && !cj) s = miles_error(MILES_EMISSING, "%s: metadata \"config\" missing", path);
    if (s == MILES_OK && (s = miles_config_from_json(&c->cfg, cj)) != MILES_OK) miles_error_prefix(s, "%s", path);
    if (s != MILES_OK) {
        miles_checkpoint_close(c);
        return s;
    }
    *out = c;
    return MILES_OK;
}

void miles_checkpoint_close(MilesCheckpoint *c) {
    if (!c) return;
    miles_safetensors_close(c->st);
    free(c->path);
    free(c);
}

const char *miles_checkpoint_path(const MilesCheckpoint *c) { return c ? c->path : NULL; }

const char *miles_checkpoint_meta(const MilesCheckpoint *c, const char *key) {
    return c && key ? miles_safetensors_metadata(c->st, key) : NULL;
}

int miles_checkpoint_model(const MilesCheckpoint *c, MilesModel **out) {
    if (!c || !out) return miles_error(MILES_EINVAL, "miles_checkpoint_model: NULL argument");
    *out = NULL;
    MilesModel *m = NULL;
    int s = miles_model_build(&m, &c->cfg);
    if (s == MILES_OK) s = read_params(c->st, m, c->path, 0);
    if (s != MILES_OK) { miles_model_free(m); return s; }
    *out = m;
    return MILES_OK;
}

int miles_checkpoint_load_model(MilesModel **out, const char *path) {
    if (out) *out = NULL;
    MilesCheckpoint *c = NULL;
    MILES_TRY(miles_checkpoint_open(&c, path));
    int s = miles_checkpoint_model(c, out);
    miles_checkpoint_close(c);
    return s;
}

int miles_checkpoint_scaler(const MilesCheckpoint *c, MilesScaler **out) {
    if (!c || !out) return miles_error(MILES_EINVAL, "miles_checkpoint_scaler: NULL argument");
    *out = NULL;
    const char *data = miles_checkpoint_meta(c, MILES_META_SCALER);
    if (!data)
        return miles_error(MILES_EMISSING, "%s: metadata \"data\" (feature scalers) missing: not trained by "
                                           "miles_train_run on a prepared file?", c->path);
    int s = miles_scaler_from_json(out, data);
    return s == MILES_OK ? s : miles_error_prefix(s, "%s", c->path);
}

int miles_ckpt_check_scaler(const MilesCheckpoint *c) {
    if (!miles_checkpoint_meta(c, MILES_META_SCALER)) return MILES_OK;
    MilesScaler *sc = NULL;
    int s = miles_checkpoint_scaler(c, &sc);
    miles_scaler_free(sc);
    return s;
}

const char *miles_ckpt_data_split(const MilesCheckpoint *c) {
    const char *ds = miles_checkpoint_meta(c, MILES_META_DATA_SPLIT);
    cJSON *o = ds ? cJSON_ParseWithOpts(ds, NULL, 1) : NULL;   /* nothing after the object */
    int ok = cJSON_IsObject(o);
    cJSON_Delete(o);
    return ok ? ds : NULL;
}

int miles_checkpoint_has_tokenizer(const MilesCheckpoint *c) {
    return c && miles_safetensors_find(c->st, TOK_PREFIX "vocab.txt") >= 0;
}

/* The embedded files (pointers into the mapping; not to be freed). */
static int embedded_files(const MilesCheckpoint *c, MilesTokFiles *f) {
    memset(f, 0, sizeof *f);
    char **data[3] = {&f->vocab, &f->config, &f->json};
    size_t *n[3] = {&f->vocab_n, &f->config_n, &f->json_n};
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, TOK_PREFIX "%s", tok_names[i]);
        int j = miles_safetensors_find(c->st, name);
        if (j < 0) continue;
        int dt = -1;
        MILES_TRY(miles_safetensors_info(c->st, j, &dt, NULL, NULL, NULL));
        if (dt != MILES_DT_U8) return miles_error(MILES_EFORMAT, "%s: tensor \"%s\" is not U8", c->path, name);
        *data[i] = (char *)miles_safetensors_data(c->st, j, n[i]);
    }
    return f->vocab ? MILES_OK : miles_error(MILES_EMISSING, "%s: no embedded tokenizer", c->path);
}

int miles_checkpoint_tokenizer_files(const MilesCheckpoint *c, MilesTokFiles *f) { return embedded_files(c, f); }

int miles_checkpoint_tokenizer(const MilesCheckpoint *c, const char *vocab_dir, MilesTokenizer **out) {
    if (!c || !out) return miles_error(MILES_EINVAL, "miles_checkpoint_tokenizer: NULL argument");
    *out = NULL;
    const char *hint = miles_checkpoint_meta(c, MILES_META_VOCAB_DIR);
    const char *src = vocab_dir;
    MilesTokenizer *tok = NULL;
    int s;
    char name[4200];
    if (vocab_dir) {
        s = miles_tokenizer_load(&tok, vocab_dir);
        if (s != MILES_OK) miles_error_prefix(s, "tokenizer '%s'", vocab_dir);
    } else if (miles_checkpoint_has_tokenizer(c)) {
        MilesTokFiles f;
        snprintf(name, sizeof name, "%s:tokenizer", c->path);
        src = name;
        s = embedded_files(c, &f);
        if (s == MILES_OK) s = miles_tokenizer_load_files(&tok, &f, name);
    } else if (hint) {
        src = hint;
        s = miles_tokenizer_load(&tok, hint);
        if (s != MILES_OK) miles_error_prefix(s, "tokenizer '%s' (the checkpoint's \"vocab_dir\"; pass the "
                                                 "tokenizer directory explicitly)", hint);
    } else {
        return miles_error(MILES_EMISSING, "%s: no embedded tokenizer and no metadata \"vocab_dir\"; pass the "
                                           "tokenizer directory explicitly", c->path);
    }
    const char *want = miles_checkpoint_meta(c, MILES_META_TOKENIZER_HASH);
    char hash[17];
    if (s == MILES_OK) s = miles_tokenizer_hash(tok, hash);
    if (s == MILES_OK && want && strcmp(want, hash) != 0)
        s = miles_error(MILES_EINVAL, "%s was trained with tokenizer %s but '%s' has tokenizer %s (tokenizer hash "
                        "differs): it would feed the model other token ids; use the training vocabulary",
                        c->path, want, src, hash);
    if (s == MILES_OK && miles_tokenizer_vocab_size(tok) > c->cfg.vocab_size)
        s = miles_error(MILES_ESHAPE, "tokenizer '%s' has %d tokens but the model's vocab_size is %d", src,
                        miles_tokenizer_vocab_size(tok), c->cfg.vocab_size);
    if (s != MILES_OK) { miles_tokenizer_free(tok); return s; }
    *out = tok;
    return MILES_OK;
}

double miles_checkpoint_threshold(const MilesCheckpoint *c) {
    const char *thr = miles_checkpoint_meta(c, MILES_META_THRESHOLD);
    if (thr) {
        char *end;
        double t = strtod(thr, &end);
        if (end != thr && isfinite(t) && t >= 0 && t <= 1) return t;
    }
    return 0.5;
}

/* ------------------------------------------------------------ calibration */

int miles_checkpoint_calibration(const MilesCheckpoint *c, MilesPlatt *out, int *present) {
    if (!c || !out || !present) return miles_error(MILES_EINVAL, "miles_checkpoint_calibration: NULL argument");
    memset(out, 0, sizeof *out);
    *present = 0;
    const char *js = miles_checkpoint_meta(c, MILES_META_CALIBRATION);
    if (!js) return MILES_OK;
    cJSON *o = cJSON_Parse(js);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "a"), *b = cJSON_GetObjectItemCaseSensitive(o, "b");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "n"), *np = cJSON_GetObjectItemCaseSensitive(o, "n_pos");
    const char *bad = !cJSON_IsObject(o)                                    ? "not a JSON object"
                      : !cJSON_IsString(m) || strcmp(m->valuestring, "platt") ? "\"method\" is not \"platt\""
                      : !cJSON_IsNumber(a) || !isfinite(a->valuedouble) || !(a->valuedouble > 0)
                          ? "\"a\" is not a number > 0"
                      : !cJSON_IsNumber(b) || !isfinite(b->valuedouble) ? "\"b\" is not a finite number"
                      : !cJSON_IsNumber(n) || !(n->valuedouble >= 2 && n->valuedouble <= 2147483647.0)
                          ? "\"n\" is not a row count"
                      : !cJSON_IsNumber(np) || !(np->valuedouble >= 1 && np->valuedouble < n->valuedouble)
                          ? "\"n_pos\" is not between 1 and n - 1"
                          : NULL;
    if (!bad) {
        out->a = a->valuedouble;
        out->b = b->valuedouble;
        out->n = (int)n->valuedouble;
        out->n_pos = (int64_t)np->valuedouble;
        *present = 1;
    }
    cJSON_Delete(o);
    if (bad) return miles_error(MILES_EFORMAT, "%s: metadata \"" MILES_META_CALIBRATION "\": %s", c->path, bad);
    return MILES_OK;
}

int miles_checkpoint_save_calibrated(const MilesCheckpoint *c, const char *out_path, const MilesPlatt *p,
                                     const char *fitted_on) {
    if (!c || !out_path || !p || !fitted_on)
        return miles_error(MILES_EINVAL, "miles_checkpoint_save_calibrated: NULL argument");
    /* a split's name, written into JSON as it is */
    size_t fl = strlen(fitted_on);
    if (fl == 0 || fl > 64 || strspn(fitted_on, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != fl)
        return miles_error(MILES_EINVAL, "miles_checkpoint_save_calibrated: fitted_on must be 1-64 letters, digits, "
                                         "'_' or '-' (a split's name)");
    if (!isfinite(p->a) || !(p->a > 0) || !isfinite(p->b) || p->n < 2 || p->n_pos < 1 || p->n_pos >= p->n)
        return miles_error(MILES_EINVAL, "miles_checkpoint_save_calibrated: a calibration needs a > 0, a finite b "
                                         "and rows of both classes (a = %g, b = %g, n = %d, n_pos = %lld)",
                           p->a, p->b, p->n, (long long)p->n_pos);
    /* the calibration as miles_checkpoint_calibration reads it; %.17g: the same doubles back */
    char cal[512];
    snprintf(cal, sizeof cal, "{\"method\":\"platt\",\"a\":%.17g,\"b\":%.17g,\"fitted_on\":\"%s\",\"n\":%d,"
             "\"n_pos\":%lld}", p->a, p->b, fitted_on, p->n, (long long)p->n_pos);
    MilesSafetensorsWriter *w = NULL;
    MILES_TRY(miles_safetensors_writer_open(&w, out_path));
    miles_safetensors_writer_crc(w);
    int s = MILES_OK;
    /* the tensors' bytes straight from the mapping (valid while c is open,
     * even when out_path replaces c's own file: rename keeps the old inode) */
    for (int i = 0; s == MILES_OK && i < miles_safetensors_count(c->st); i++) {
        int dt, nd;
        int64_t shape[MILES_ST_MAX_DIMS];
        s = miles_safetensors_info(c->st, i, &dt, &nd, shape, NULL);
        if (s == MILES_OK)
            s = miles_safetensors_writer_add(w, miles_safetensors_name(c->st, i), dt, nd, shape,
                                             miles_safetensors_data(c->st, i, NULL));
    }
    for (int i = 0; s == MILES_OK && i < miles_safetensors_metadata_count(c->st); i++) {
        const char *k = miles_safetensors_metadata_key(c->st, i);
        /* the writer computes the CRCs of what it writes */
        if (!strcmp(k, MILES_META_CRC32) || !strcmp(k, MILES_META_HEADER_CRC32) || !strcmp(k, MILES_META_CALIBRATION))
            continue;
        s = miles_safetensors_writer_metadata(w, k, miles_safetensors_metadata(c->st, k));
    }
    if (s == MILES_OK) s = miles_safetensors_writer_metadata(w, MILES_META_CALIBRATION, cal);
    if (s != MILES_OK) {
        miles_safetensors_writer_abort(w);
        return miles_error_prefix(s, "%s", out_path);
    }
    return miles_safetensors_writer_finish(w);
}

int miles_checkpoint_text_clean(const MilesCheckpoint *c, int *mode) {
    *mode = MILES_TEXT_CLEAN_NONE;
    const char *clean = miles_checkpoint_meta(c, MILES_META_TEXT_CLEAN);
    if (clean && !strcmp(clean, "seed")) *mode = MILES_TEXT_CLEAN_SEED;
    else if (clean && strcmp(clean, "none") != 0)
        return miles_error(MILES_EFORMAT, "%s: unknown text_clean \"%s\"", c->path, clean);
    return MILES_OK;
}

int miles_checkpoint_max_len(const MilesCheckpoint *c) {
    const char *tc = miles_checkpoint_meta(c, MILES_META_TRAIN_CONFIG);
    cJSON *o = tc ? cJSON_Parse(tc) : NULL;
    const cJSON *it = o ? cJSON_GetObjectItemCaseSensitive(o, "max_len") : NULL;
    int T = cJSON_IsNumber(it) && it->valuedouble >= 2 && it->valuedouble <= 65536 ? (int)it->valuedouble : 0;
    cJSON_Delete(o);
    return T;
}

int miles_checkpoint_check_data(const MilesCheckpoint *c, const MilesPrepared *p) {
    if (!c || !p) return miles_error(MILES_EINVAL, "miles_checkpoint_check_data: NULL argument");
    const char *scaler = miles_checkpoint_meta(c, MILES_META_SCALER);
    if (!scaler)
        return miles_error(MILES_EMISSING, "%s: metadata \"data\" (feature scalers) missing: the checkpoint "
                                           "cannot be matched with prepared data", c->path);
    /* features mean something only under the scaler the model was trained with */
    if (strcmp(scaler, miles_prepared_scaler_json(p)) != 0)
        return miles_error(MILES_EINVAL, "the data was prepared with a different scaler/label threshold than %s was "
                                         "trained with; use the training run's prepared file", c->path);
    const char *hash = miles_checkpoint_meta(c, MILES_META_TOKENIZER_HASH);
    if (hash && strcmp(hash, miles_prepared_vocab_hash(p)) != 0)
        return miles_error(MILES_EINVAL, "the data was tokenized with vocabulary %s, %s was trained with %s",
                           miles_prepared_vocab_hash(p), c->path, hash);
    return MILES_OK;
}
