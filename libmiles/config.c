/*
 * config.c — model configuration: presets, HF config.json reader, validation,
 * and the names of the 18 numeric input features.
 */

#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>

/* Model input order of the numeric features (ORIGINAL_SYSTEM.md section 2). */
const char *const miles_feature_names[MILES_NUM_FEATURES] = {
    "views",           "likes",         "comments",     "shares",
    "saves",           "engagement_rate", "completion_rate", "like_rate",
    "comment_ratio",   "share_rate",    "save_rate",    "upload_hour",
    "is_weekend",      "duration_sec",  "title_length", "has_emoji",
    "creator_avg_views", "publish_dayofweek"};

/* BERT encoder sizes.  Dropouts and eps are the HF BertConfig defaults. */
static int set_bert_size(MilesConfig *c, const char *size) {
    int V, H, L, NH, I, P;
    if (!strcmp(size, "bert-base")) {
        V = 30522; H = 768; L = 12; NH = 12; I = 3072; P = 512;
    } else if (!strcmp(size, "minilm-l6")) {
        V = 30522; H = 384; L = 6; NH = 12; I = 1536; P = 512;
    } else if (!strcmp(size, "tiny")) {
        V = 128; H = 64; L = 2; NH = 4; I = 128; P = 64;
    } else {
        return miles_error(MILES_EINVAL,
                           "unknown BERT size \"%s\" (expected bert-base, minilm-l6 or tiny)", size);
    }
    c->vocab_size = V;
    c->hidden_size = H;
    c->num_hidden_layers = L;
    c->num_attention_heads = NH;
    c->intermediate_size = I;
    c->max_position_embeddings = P;
    c->type_vocab_size = 2;
    c->layer_norm_eps = 1e-12f;
    c->hidden_dropout_prob = 0.1f;
    c->attention_probs_dropout_prob = 0.1f;
    return MILES_OK;
}

int miles_config_preset(MilesConfig *cfg, const char *preset, const char *bert_size) {
    if (!cfg) return miles_error(MILES_EINVAL, "miles_config_preset: cfg is NULL");
    if (!preset) preset = "miles";
    if (!bert_size) bert_size = "bert-base";
    MilesConfig c;
    memset(&c, 0, sizeof c);
    MILES_TRY(set_bert_size(&c, bert_size));
    c.num_features = MILES_NUM_FEATURES;
    c.pooling = MILES_POOL_POOLER;
    c.text_dropout = 0.1f;
    if (!strcmp(preset, "miles")) {
        /* the architecture the original project documented (and fixed):
         * numeric 18->256 ReLU Dropout 0.3; fusion (H+256)->512 ReLU Dropout 0.2;
         * sigmoid velocity head (targets are min-max scaled to [0,1]) */
        c.n_numeric = 1;
        c.numeric_widths[0] = 256;
        c.numeric_dropouts[0] = 0.3f;
        c.n_fusion = 1;
        c.fusion_widths[0] = 512;
        c.fusion_dropouts[0] = 0.2f;
        c.velocity_activation = MILES_VEL_SIGMOID;
    } else if (!strcmp(preset, "seed-notebook")) {
        /* what the original notebook really trained (ORIGINAL_SYSTEM.md section 3):
         * raw 18 features concatenated, fusion 1024 (0.3) -> 256 (0.2), linear head */
        c.n_numeric = 0;
        c.n_fusion = 2;
        c.fusion_widths[0] = 1024;
        c.fusion_dropouts[0] = 0.3f;
        c.fusion_widths[1] = 256;
        c.fusion_dropouts[1] = 0.2f;
        c.velocity_activation = MILES_VEL_LINEAR;
    } else {
        return miles_error(MILES_EINVAL,
                           "unknown model preset \"%s\" (expected miles or seed-notebook)", preset);
    }
    snprintf(c.preset, sizeof c.preset, "%s", preset);
    *cfg = c;
    return MILES_OK;
}

/* ---------------------------------------------------------- HF config.json */

/* Read an integer field; `required` fields missing -> MILES_EMISSING. */
static int json_int(const cJSON *root, const char *path, const char *key, int required,
                    int *dst) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        if (required)
            return miles_error(MILES_EMISSING, "%s: required field \"%s\" is missing", path, key);
        return MILES_OK;
    }
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        it->valuedouble < 0 || it->valuedouble > 2147483647.0)
        return miles_error(MILES_EFORMAT, "%s: field \"%s\" must be a non-negative integer", path,
                           key);
    *dst = (int)it->valuedouble;
    return MILES_OK;
}

static int json_float(const cJSON *root, const char *path, const char *key, float *dst) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) return MILES_OK; /* HF default kept */
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return miles_error(MILES_EFORMAT, "%s: field \"%s\" must be a number", path, key);
    *dst = (float)it->valuedouble;
    return MILES_OK;
}

static int read_hf_fields(MilesConfig *c, const cJSON *root, const char *path) {
    if (!cJSON_IsObject(root))
        return miles_error(MILES_EFORMAT, "%s: top level is not a JSON object", path);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && !(cJSON_IsString(mt) && !strcmp(mt->valuestring, "bert")))
        return miles_error(MILES_EUNSUPPORTED, "%s: model_type \"%s\" is not supported (only \"bert\")",
                           path, cJSON_IsString(mt) ? mt->valuestring : "(not a string)");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "gelu")))
        return miles_error(MILES_EUNSUPPORTED,
                           "%s: hidden_act \"%s\" is not supported (only \"gelu\", the exact erf form)",
                           path, cJSON_IsString(act) ? act->valuestring : "(not a string)");
    const cJSON *pe = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    if (pe && !(cJSON_IsString(pe) && !strcmp(pe->valuestring, "absolute")))
        return miles_error(MILES_EUNSUPPORTED,
                           "%s: position_embedding_type \"%s\" is not supported (only \"absolute\")",
                           path, cJSON_IsString(pe) ? pe->valuestring : "(not a string)");
    /* HF BertConfig defaults for the optional fields */
    c->max_position_embeddings = 512;
    c->type_vocab_size = 2;
    c->layer_norm_eps = 1e-12f;
    c->hidden_dropout_prob = 0.1f;
    c->attention_probs_dropout_prob = 0.1f;
    MILES_TRY(json_int(root, path, "vocab_size", 1, &c->vocab_size));
    MILES_TRY(json_int(root, path, "hidden_size", 1, &c->hidden_size));
    MILES_TRY(json_int(root, path, "num_hidden_layers", 1, &c->num_hidden_layers));
    MILES_TRY(json_int(root, path, "num_attention_heads", 1, &c->num_attention_heads));
    MILES_TRY(json_int(root, path, "intermediate_size", 1, &c->intermediate_size));
    MILES_TRY(json_int(root, path, "max_position_embeddings", 0, &c->max_position_embeddings));
    MILES_TRY(json_int(root, path, "type_vocab_size", 0, &c->type_vocab_size));
    MILES_TRY(json_float(root, path, "layer_norm_eps", &c->layer_norm_eps));
    MILES_TRY(json_float(root, path, "hidden_dropout_prob", &c->hidden_dropout_prob));
    MILES_TRY(json_float(root, path, "attention_probs_dropout_prob", &c->attention_probs_dropout_prob));
    return MILES_OK;
}

int miles_config_read_hf(MilesConfig *cfg, const char *path) {
    if (!cfg || !path) return miles_error(MILES_EINVAL, "miles_config_read_hf: NULL argument");
    char *text = NULL;
    size_t n = 0;
    int s = miles_read_file(path, &text, &n);
    if (s != MILES_OK) return s;
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        long off = (where && where >= text && where <= text + n) ? (long)(where - text) : -1;
        free(text);
        return miles_error(MILES_EFORMAT, "%s: invalid JSON near byte %ld", path, off);
    }
    MilesConfig c = *cfg;
    s = read_hf_fields(&c, root, path);
    cJSON_Delete(root);
    free(text);
    if (s != MILES_OK) return s;
    /* check the BERT part now so the message names the file */
    if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads)
        return miles_error(MILES_EINVAL,
                           "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                           c.hidden_size, c.num_attention_heads);
    if (c.vocab_size <= 0 || c.num_hidden_layers <= 0 || c.intermediate_size <= 0 ||
        c.max_position_embeddings <= 0 || c.type_vocab_size <= 0 || !(c.layer_norm_eps > 0))
        return miles_error(MILES_EINVAL, "%s: sizes must be positive (vocab %d, layers %d, "
                           "intermediate %d, positions %d, type vocab %d, eps %g)", path,
                           c.vocab_size, c.num_hidden_layers, c.intermediate_size,
                           c.max_position_embeddings, c.type_vocab_size, (double)c.layer_norm_eps);
    *cfg = c;
    return MILES_OK;
}

/* ---------------------------------------------------------------- validate */

static int check_p(const char *what, int i, float p) {
    if (!(p >= 0.0f && p < 1.0f))
        return miles_error(MILES_EINVAL, "config: %s[%d] = %g must be in [0, 1)", what, i, (double)p);
    return MILES_OK;
}

int miles_config_validate(const MilesConfig *c) {
    if (!c) return miles_error(MILES_EINVAL, "config: NULL");
    struct { const char *name; int v; } pos[] = {
        {"vocab_size", c->vocab_size},
        {"hidden_size", c->hidden_size},
        {"num_hidden_layers", c->num_hidden_layers},
        {"num_attention_heads", c->num_attention_heads},
        {"intermediate_size", c->intermediate_size},
        {"max_position_embeddings", c->max_position_embeddings},
        {"type_vocab_size", c->type_vocab_size},
        {"num_features", c->num_features},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return miles_error(MILES_EINVAL, "config: %s = %d must be positive", pos[i].name, pos[i].v);
    /* Upper bounds, checked before anything is allocated: a corrupt or hostile
     * config (num_hidden_layers = 100000) must not make the tools allocate
     * gigabytes first.  Generous: BERT-large is 1024 x 24, multilingual
     * vocabularies are ~250k. */
    struct { const char *name; int v, max; } cap[] = {
        {"vocab_size", c->vocab_size, 1 << 22},
        {"hidden_size", c->hidden_size, 16384},
        {"num_hidden_layers", c->num_hidden_layers, 256},
        {"num_attention_heads", c->num_attention_heads, 1024},
        {"intermediate_size", c->intermediate_size, 65536},
        {"max_position_embeddings", c->max_position_embeddings, 65536},
        {"type_vocab_size", c->type_vocab_size, 1024},
        {"num_features", c->num_features, 65536},
    };
    for (size_t i = 0; i < sizeof cap / sizeof cap[0]; i++)
        if (cap[i].v > cap[i].max)
            return miles_error(MILES_EINVAL, "config: %s = %d exceeds the limit %d", cap[i].name, cap[i].v,
                               cap[i].max);
    if (c->hidden_size % c->num_attention_heads)
        return miles_error(MILES_EINVAL,
                           "config: hidden_size %d is not a multiple of num_attention_heads %d",
                           c->hidden_size, c->num_attention_heads);
    if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps))
        return miles_error(MILES_EINVAL, "config: layer_norm_eps = %g must be positive",
                           (double)c->layer_norm_eps);
    MILES_TRY(check_p("hidden_dropout_prob", 0, c->hidden_dropout_prob));
    MILES_TRY(check_p("attention_probs_dropout_prob", 0, c->attention_probs_dropout_prob));
    MILES_TRY(check_p("text_dropout", 0, c->text_dropout));
    if (c->pooling != MILES_POOL_POOLER && c->pooling != MILES_POOL_CLS && c->pooling != MILES_POOL_MEAN)
        return miles_error(MILES_EINVAL, "config: pooling = %d is not a MILES_POOL_* value", c->pooling);
    if (c->velocity_activation != MILES_VEL_SIGMOID && c->velocity_activation != MILES_VEL_LINEAR)
        return miles_error(MILES_EINVAL, "config: velocity_activation = %d is not a MILES_VEL_* value",
                           c->velocity_activation);
    if (c->n_numeric < 0 || c->n_numeric > MILES_MAX_MLP)
        return miles_error(MILES_EINVAL, "config: n_numeric = %d must be in [0, %d]", c->n_numeric,
                           MILES_MAX_MLP);
    if (c->n_fusion < 0 || c->n_fusion > MILES_MAX_MLP)
        return miles_error(MILES_EINVAL, "config: n_fusion = %d must be in [0, %d]", c->n_fusion,
                           MILES_MAX_MLP);
    for (int i = 0; i < c->n_numeric; i++) {
        if (c->numeric_widths[i] <= 0)
            return miles_error(MILES_EINVAL, "config: numeric_widths[%d] = %d must be positive", i,
                               c->numeric_widths[i]);
        MILES_TRY(check_p("numeric_dropouts", i, c->numeric_dropouts[i]));
    }
    for (int i = 0; i < c->n_fusion; i++) {
        if (c->fusion_widths[i] <= 0)
            return miles_error(MILES_EINVAL, "config: fusion_widths[%d] = %d must be positive", i,
                               c->fusion_widths[i]);
        MILES_TRY(check_p("fusion_dropouts", i, c->fusion_dropouts[i]));
    }
    for (int i = 0; i < c->n_numeric; i++)
        if (c->numeric_widths[i] > 65536)
            return miles_error(MILES_EINVAL, "config: numeric_widths[%d] = %d exceeds the limit 65536", i,
                               c->numeric_widths[i]);
    for (int i = 0; i < c->n_fusion; i++)
        if (c->fusion_widths[i] > 65536)
            return miles_error(MILES_EINVAL, "config: fusion_widths[%d] = %d exceeds the limit 65536", i,
                               c->fusion_widths[i]);
    /* the encoder's parameter count: at most 2^31 floats (8 GB) */
    double h = c->hidden_size, np = ((double)c->vocab_size + c->max_position_embeddings + c->type_vocab_size) * h +
        (double)c->num_hidden_layers * (4.0 * h * h + 2.0 * h * c->intermediate_size);
    if (np > 2147483648.0)
        return miles_error(MILES_EINVAL, "config: %.3g encoder parameters exceed the limit 2^31 (layers %d, hidden %d, "
                           "intermediate %d, vocab %d)", np, c->num_hidden_layers, c->hidden_size,
                           c->intermediate_size, c->vocab_size);
    /* No tensor's element count overflows an int past this point: the word
     * embeddings' vocab x hidden is below np - hidden < 2^31 - 1 (positions
     * >= 1), and intermediate x hidden <= 65536 x 16384 = 2^30 by the caps. */
    return MILES_OK;
}
