/*
 * model.c — MilesModel construction: parameter table (checkpoint names,
 * shapes, weight-decay flags), the contiguous params/grads blocks, random
 * initialization, tensor lookup, loss/dropout settings.
 * Forward: model_forward.c.  Backward: model_backward.c.  AdamW: optim.c.
 */

#include "model_internal.h"
#include "model_infer.h"

#include <math.h>

/* ------------------------------------------------------------ tensor table */

typedef struct {
    MilesModel *m;
    float *base;
    size_t off;
    int reg;                      /* 1: append to m->tensors (params pass) */
} Layout;

/* HF convention (run_glue & co.): no weight decay for biases and LayerNorm weights. */
static int decay_for(const char *name) {
    size_t n = strlen(name);
    if (n >= 4 && !strcmp(name + n - 4, "bias")) return 0;
    if (strstr(name, "LayerNorm.weight")) return 0;
    return 1;
}

static float *take(Layout *L, const char *name, int ndim, int64_t d0, int64_t d1) {
    size_t numel = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    float *p = L->base ? L->base + L->off : NULL;
    if (L->reg) {
        MilesTensor *t = &L->m->tensors[L->m->ntensors++];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->ndim = ndim;
        t->shape[0] = d0;
        t->shape[1] = ndim == 2 ? d1 : 0;
        t->shape[2] = t->shape[3] = 0;
        t->numel = numel;
        t->offset = L->off;
        t->decay = decay_for(name);
    }
    L->off += numel;
    return p;
}

static MilesLinP take_lin(Layout *L, const char *prefix, int out, int in) {
    char n[96];
    MilesLinP p;
    snprintf(n, sizeof n, "%.80s.weight", prefix); /* names are < 80 bytes */
    p.w = take(L, n, 2, out, in);
    snprintf(n, sizeof n, "%.80s.bias", prefix);
    p.b = take(L, n, 1, out, 0);
    return p;
}

static MilesLnP take_ln(Layout *L, const char *prefix, int C) {
    char n[96];
    MilesLnP p;
    snprintf(n, sizeof n, "%.80s.weight", prefix); /* names are < 80 bytes */
    p.w = take(L, n, 1, C, 0);
    snprintf(n, sizeof n, "%.80s.bias", prefix);
    p.b = take(L, n, 1, C, 0);
    return p;
}

/* Walk the tensors in checkpoint order.  Run once with reg=1 to fill the table
 * (base may be NULL to count), then once per block (params, grads). */
static size_t layout(MilesModel *m, float *base, MilesParams *P, int reg) {
    const MilesConfig *c = &m->cfg;
    const int H = c->hidden_size, I = c->intermediate_size;
    Layout L = {m, base, 0, reg};
    char n[96];
    P->wte = take(&L, "bert.embeddings.word_embeddings.weight", 2, c->vocab_size, H);
    P->wpe = take(&L, "bert.embeddings.position_embeddings.weight", 2, c->max_position_embeddings, H);
    P->wtt = take(&L, "bert.embeddings.token_type_embeddings.weight", 2, c->type_vocab_size, H);
    P->emb_ln = take_ln(&L, "bert.embeddings.LayerNorm", H);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        MilesLayerP *y = &P->layers[l];
#define LN_(suffix) (snprintf(n, sizeof n, "bert.encoder.layer.%d.%s", l, suffix), n)
        y->q = take_lin(&L, LN_("attention.self.query"), H, H);
        y->k = take_lin(&L, LN_("attention.self.key"), H, H);
        y->v = take_lin(&L, LN_("attention.self.value"), H, H);
        y->attn_out = take_lin(&L, LN_("attention.output.dense"), H, H);
        y->ln1 = take_ln(&L, LN_("attention.output.LayerNorm"), H);
        y->inter = take_lin(&L, LN_("intermediate.dense"), I, H);
        y->out = take_lin(&L, LN_("output.dense"), H, I);
        y->ln2 = take_ln(&L, LN_("output.LayerNorm"), H);
#undef LN_
    }
    if (c->pooling == MILES_POOL_POOLER) P->pooler = take_lin(&L, "bert.pooler.dense", H, H);
    else P->pooler.w = P->pooler.b = NULL;
    int in = c->num_features;
    for (int i = 0; i < c->n_numeric; i++) {
        snprintf(n, sizeof n, "numeric_mlp.%d", i);
        P->numeric[i] = take_lin(&L, n, c->numeric_widths[i], in);
        in = c->numeric_widths[i];
    }
    in = m->cat_w;
    for (int i = 0; i < c->n_fusion; i++) {
        snprintf(n, sizeof n, "fusion.%d", i);
        P->fusion[i] = take_lin(&L, n, c->fusion_widths[i], in);
        in = c->fusion_widths[i];
    }
    P->cls = take_lin(&L, "classifier", 2, m->feat_w);
    P->reg = take_lin(&L, "regressor", 1, m->feat_w);
    return L.off;
}

static int count_tensors(const MilesConfig *c) {
    return 5 + 16 * c->num_hidden_layers + (c->pooling == MILES_POOL_POOLER ? 2 : 0) +
           2 * c->n_numeric + 2 * c->n_fusion + 4;
}

int miles_model_build(MilesModel **out, const MilesConfig *cfg) {
    if (!out) return miles_error(MILES_EINVAL, "miles_model_build: out is NULL");
    *out = NULL;
    MILES_TRY(miles_config_validate(cfg));
    MilesModel *m = miles_calloc(1, sizeof *m);
    if (!m) return MILES_ENOMEM;
    m->cfg = *cfg;
    const MilesConfig *c = &m->cfg;
    m->loss.w_cls = 0.95f;
    m->loss.w_reg = 0.05f;
    m->loss.class_weight[0] = m->loss.class_weight[1] = 1.0f;
    m->num_w = c->n_numeric ? c->numeric_widths[c->n_numeric - 1] : c->num_features;
    m->cat_w = c->hidden_size + m->num_w;
    m->feat_w = c->n_fusion ? c->fusion_widths[c->n_fusion - 1] : m->cat_w;
    m->max_w = m->cat_w;
    for (int i = 0; i < c->n_numeric; i++)
        if (c->numeric_widths[i] > m->max_w) m->max_w = c->numeric_widths[i];
    for (int i = 0; i < c->n_fusion; i++)
        if (c->fusion_widths[i] > m->max_w) m->max_w = c->fusion_widths[i];

    int L = c->num_hidden_layers;
    m->tensors = miles_calloc((size_t)count_tensors(c), sizeof *m->tensors);
    m->P.layers = miles_calloc((size_t)L, sizeof(MilesLayerP));
    m->G.layers = miles_calloc((size_t)L, sizeof(MilesLayerP));
    m->G0.layers = miles_calloc((size_t)L, sizeof(MilesLayerP)); /* stays all NULL */
    m->layer_acts = miles_calloc((size_t)L, sizeof(MilesLayerActs));
    if (!m->tensors || !m->P.layers || !m->G.layers || !m->G0.layers || !m->layer_acts) {
        miles_model_free(m);
        return MILES_ENOMEM;
    }
    m->nparams = layout(m, NULL, &m->P, 1);
    if (m->ntensors != count_tensors(c)) {
        miles_model_free(m);
        return miles_error(MILES_EINTERNAL, "model: tensor count mismatch");
    }
    m->params = miles_aligned_alloc(m->nparams * sizeof(float));
    m->grads = miles_aligned_alloc(m->nparams * sizeof(float));
    if (!m->params || !m->grads) {
        size_t np = m->nparams;   /* read before the free (it was read after: use after free) */
        miles_model_free(m);
        return miles_error(MILES_ENOMEM, "model: cannot allocate %zu parameters (%.1f MB x 2)", np, np * 4.0 / 1e6);
    }
    layout(m, m->params, &m->P, 0);
    layout(m, m->grads, &m->G, 0);
    *out = m;
    return MILES_OK;
}

void miles_model_free(MilesModel *m) {
    if (!m) return;
    free(m->tensors);
    free(m->P.layers);
    free(m->G.layers);
    free(m->G0.layers);
    free(m->layer_acts);
    free(m->params);
    free(m->grads);
    free(m->arena);
    free(m->scratch);
    miles_model_drop_infer(m);
    free(m);
}

/* ------------------------------------------------------------------ init */

/* splitmix64's first output for state x: a hash of x */
static inline uint64_t splitmix64(uint64_t x) { return miles_splitmix64(&x); }

/* Standard normal for element i of tensor t: a pure function of (seed, t, i),
 * so the result does not depend on the thread count. */
static inline float normal_at(uint64_t seed, uint64_t t, uint64_t i) {
    uint64_t h = splitmix64(splitmix64(seed ^ (t * 0xD1B54A32D192ED03ull)) + i);
    uint64_t h2 = splitmix64(h);
    double u1 = ((h >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0,1] */
    double u2 = (h2 >> 11) * (1.0 / 9007199254740992.0);        /* [0,1) */
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

int miles_model_init_random(MilesModel *m, uint64_t seed, float std) {
    if (!m) return miles_error(MILES_EINVAL, "miles_model_init_random: model is NULL");
    if (!(std >= 0.0f) || !isfinite(std))
        return miles_error(MILES_EINVAL, "miles_model_init_random: std = %g", (double)std);
    miles_model_drop_infer(m); /* its fused weights are a copy of the old ones */
    for (int t = 0; t < m->ntensors; t++) {
        const MilesTensor *ti = &m->tensors[t];
        float *p = m->params + ti->offset;
        size_t n = ti->numel;
        size_t len = strlen(ti->name);
        if (len >= 4 && !strcmp(ti->name + len - 4, "bias")) {
            memset(p, 0, n * sizeof(float));
        } else if (strstr(ti->name, "LayerNorm.weight")) {
            for (size_t i = 0; i < n; i++) p[i] = 1.0f;
        } else {
#pragma omp parallel for schedule(static) if (n > 65536)
            for (size_t i = 0; i < n; i++) p[i] = std * normal_at(seed, (uint64_t)t, i);
        }
    }
    /* HF zeroes the padding_idx row (pad_token_id 0) of the word embeddings */
    memset(m->P.wte, 0, (size_t)m->cfg.hidden_size * sizeof(float));
    m->fwd_valid = 0;
    return MILES_OK;
}

/* ---------------------------------------------------------------- queries */

const MilesConfig *miles_model_config(const MilesModel *m) { return m ? &m->cfg : NULL; }
size_t miles_model_num_params(const MilesModel *m) { return m ? m->nparams : 0; }
int miles_model_num_tensors(const MilesModel *m) { return m ? m->ntensors : 0; }

int miles_model_tensor(const MilesModel *m, int index, MilesTensorInfo *info) {
    if (!m || !info) return miles_error(MILES_EINVAL, "miles_model_tensor: NULL argument");
    if (index < 0 || index >= m->ntensors)
        return miles_error(MILES_ERANGE, "miles_model_tensor: index %d out of range [0, %d)", index,
                           m->ntensors);
    const MilesTensor *t = &m->tensors[index];
    info->name = t->name;
    info->ndim = t->ndim;
    for (int i = 0; i < 4; i++) info->shape[i] = t->shape[i];
    info->numel = t->numel;
    info->data = m->params + t->offset;
    info->grad = m->grads + t->offset;
    info->decay = t->decay;
    return MILES_OK;
}

int miles_model_find_tensor(const MilesModel *m, const char *name) {
    if (!m || !name) return -1;
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

void miles_model_set_loss(MilesModel *m, const MilesLossConfig *loss) {
    if (m && loss) m->loss = *loss;
}

void miles_model_set_dropout_key(MilesModel *m, uint64_t seed, uint64_t step) {
    if (!m) return;
    m->drop_seed = seed;
    m->drop_step = step;
}

void miles_model_zero_grad(MilesModel *m) {
    if (!m) return;
    float *g = m->grads;
    size_t n = m->nparams;
#pragma omp parallel for schedule(static) if (n > (1u << 18))
    for (size_t i = 0; i < n; i++) g[i] = 0.0f;
}

const float *miles_model_pooled(const MilesModel *m) {
    return (m && m->fwd_valid) ? m->A.pooled : NULL;
}

int miles_model_set_pooled_only(MilesModel *m, int on) {
    if (!m) return 0;
    int prev = m->pooled_only;
    m->pooled_only = on ? 1 : 0;
    if (prev != m->pooled_only) m->fwd_valid = m->bwd_valid = 0; /* the next forward decides the layout */
    return prev;
}

const float *miles_model_last_hidden(const MilesModel *m) {
    if (!m || !m->fwd_valid || m->cls_last) return NULL;
    return m->layer_acts[m->cfg.num_hidden_layers - 1].ln2;
}
