/*
 * model_forward.c — batch validation, the activation arena, and the forward
 * pass (HF BertModel, post-LN) + pooling + numeric/fusion MLPs + heads + loss.
 */

#include "model_internal.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* --------------------------------------------------------------- arena */

/* layouts run over internal.h's bump allocator (base NULL only counts) */
#define FL(b, n) MILES_BUMP_F32(b, n)
#define IN(b, n) MILES_BUMP_I32(b, n)

/* attd_slots: the attention dropout's per-thread workspaces (0: none) */
static size_t acts_layout(MilesModel *m, void *base, int B, int T, int attd_slots) {
    const MilesConfig *c = &m->cfg;
    const size_t H = c->hidden_size, I = c->intermediate_size, N = (size_t)B * T;
    const size_t att = (size_t)B * c->num_attention_heads * T * T;
    MilesActs *A = &m->A;
    MilesBump b = {base, 0};
    A->emb_sum = FL(&b, N * H);
    A->emb_mean = FL(&b, N);
    A->emb_rstd = FL(&b, N);
    A->emb_out = FL(&b, N * H);
    A->layers = m->layer_acts;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        MilesLayerActs *y = &m->layer_acts[l];
        y->q = FL(&b, N * H);
        y->k = FL(&b, N * H);
        y->v = FL(&b, N * H);
        y->att = FL(&b, att);
        y->attd = attd_slots ? FL(&b, (size_t)attd_slots * T * T) : NULL;
        y->ctx = FL(&b, N * H);
        y->res1 = FL(&b, N * H);
        y->mean1 = FL(&b, N);
        y->rstd1 = FL(&b, N);
        y->ln1 = FL(&b, N * H);
        y->inter = FL(&b, N * I);
        y->gelu = FL(&b, N * I);
        y->res2 = FL(&b, N * H);
        y->mean2 = FL(&b, N);
        y->rstd2 = FL(&b, N);
        y->ln2 = FL(&b, N * H);
    }
    A->cls = FL(&b, (size_t)B * H);
    A->pool_pre = FL(&b, (size_t)B * H);
    A->pooled = FL(&b, (size_t)B * H);
    A->text = FL(&b, (size_t)B * H);
    A->features = FL(&b, (size_t)B * c->num_features);
    for (int i = 0; i < c->n_numeric; i++) {
        A->num_lin[i] = FL(&b, (size_t)B * c->numeric_widths[i]);
        A->num_drop[i] = FL(&b, (size_t)B * c->numeric_widths[i]);
    }
    A->concat = FL(&b, (size_t)B * m->cat_w);
    for (int i = 0; i < c->n_fusion; i++) {
        A->fus_lin[i] = FL(&b, (size_t)B * c->fusion_widths[i]);
        A->fus_drop[i] = FL(&b, (size_t)B * c->fusion_widths[i]);
    }
    A->logits = FL(&b, (size_t)B * 2);
    A->probs = FL(&b, (size_t)B * 2);
    A->vel_pre = FL(&b, B);
    A->vel = FL(&b, B);
    A->vel_target = FL(&b, B);
    A->ids = IN(&b, N);
    A->tt = IN(&b, N);
    A->mask = IN(&b, N);
    A->labels = IN(&b, B);
    return b.off;
}

/* Grow the arena when (B,T) needs more; never shrink (no per-step allocation). */
static int ensure_arena(MilesModel *m, int B, int T, int attd_slots) {
    size_t need = acts_layout(m, NULL, B, T, attd_slots);
    if (need > m->arena_cap) {
        free(m->arena);
        m->arena = NULL;
        m->arena_cap = 0;
        m->fwd_valid = 0;
        m->arena = miles_aligned_alloc(need);
        if (!m->arena)
            return miles_error(MILES_ENOMEM, "model: cannot allocate %.1f MB of activations for B=%d T=%d",
                               need / 1e6, B, T);
        m->arena_cap = need;
    }
    acts_layout(m, m->arena, B, T, attd_slots);
    return MILES_OK;
}

/* ----------------------------------------------------------- validation */

int miles_model_validate_batch(const MilesModel *m, const MilesBatch *b) {
    const MilesConfig *c = &m->cfg;
    if (!b) return miles_error(MILES_EINVAL, "batch is NULL");
    if (b->B < 1) return miles_error(MILES_ESHAPE, "batch: B = %d must be >= 1", b->B);
    if (b->T < 1) return miles_error(MILES_ESHAPE, "batch: T = %d must be >= 1", b->T);
    if (b->T > c->max_position_embeddings)
        return miles_error(MILES_ERANGE, "batch: T = %d exceeds max_position_embeddings %d", b->T,
                           c->max_position_embeddings);
    if (!b->input_ids || !b->attention_mask || !b->features)
        return miles_error(MILES_EINVAL, "batch: input_ids, attention_mask and features are required");
    const size_t N = (size_t)b->B * b->T;
    for (size_t i = 0; i < N; i++) {
        int32_t id = b->input_ids[i];
        if (id < 0 || id >= c->vocab_size)
            return miles_error(MILES_ERANGE, "batch: row %zu token %zu: input id %d out of range [0, %d)",
                               i / b->T, i % b->T, id, c->vocab_size);
        if (b->token_type_ids) {
            int32_t tt = b->token_type_ids[i];
            if (tt < 0 || tt >= c->type_vocab_size)
                return miles_error(MILES_ERANGE,
                                   "batch: row %zu token %zu: token type id %d out of range [0, %d)",
                                   i / b->T, i % b->T, tt, c->type_vocab_size);
        }
        int32_t mk = b->attention_mask[i];
        if (mk != 0 && mk != 1)
            return miles_error(MILES_EINVAL, "batch: row %zu token %zu: attention mask %d is not 0/1",
                               i / b->T, i % b->T, mk);
    }
    const int F = c->num_features;
    for (int r = 0; r < b->B; r++)
        for (int j = 0; j < F; j++) {
            float x = b->features[(size_t)r * F + j];
            if (!isfinite(x)) {
                char fname[32];
                if (F == MILES_NUM_FEATURES) snprintf(fname, sizeof fname, "%s", miles_feature_names[j]);
                else snprintf(fname, sizeof fname, "#%d", j);
                return miles_error(MILES_ENAN, "batch: row %d feature %d (%s) is %s", r, j, fname,
                                   isnan(x) ? "NaN" : "Inf");
            }
        }
    if (b->labels)
        for (int r = 0; r < b->B; r++)
            if (b->labels[r] != 0 && b->labels[r] != 1)
                return miles_error(MILES_EINVAL, "batch: row %d label %d is not 0/1", r, b->labels[r]);
    if (b->labels) {
        const float *w = m->loss.class_weight;
        if (!(isfinite(w[0]) && isfinite(w[1]) && w[0] >= 0.0f && w[1] >= 0.0f))
            return miles_error(MILES_EINVAL, "loss: class weights %g, %g must be finite and >= 0",
                               (double)w[0], (double)w[1]);
        double sw = 0.0;
        for (int r = 0; r < b->B; r++) sw += w[b->labels[r]];
        if (!(sw > 0.0))
            return miles_error(MILES_EINVAL,
                               "loss: the class weights of this batch's labels sum to 0 (weighted CE undefined)");
    }
    if (!isfinite(m->loss.w_cls) || !isfinite(m->loss.w_reg))
        return miles_error(MILES_EINVAL, "loss: weights %g, %g must be finite", (double)m->loss.w_cls,
                           (double)m->loss.w_reg);
    if (b->velocity)
        for (int r = 0; r < b->B; r++)
            if (!isfinite(b->velocity[r]))
                return miles_error(MILES_ENAN, "batch: row %d velocity target is %s", r,
                                   isnan(b->velocity[r]) ? "NaN" : "Inf");
    return MILES_OK;
}

/* ---------------------------------------------------------------- helpers */

/* Dropout that skips the RNG when off (p = 0); in place when out == inp. */
static void drop_fwd(float *out, const float *inp, size_t n, MilesDropoutKey k) {
    if (k.p > 0.0f) dropout_forward(out, inp, n, k);
    else if (out != inp) memcpy(out, inp, n * sizeof(float));
}

/* ------------------------------------------------------------- forward */

/* emb_sum = word + wpe[t] + wtt[type] with the word vectors given by the caller
 * ([N,H]); the same sum, in the same order, as embedding_forward, so passing
 * the wte rows reproduces the ordinary forward bit for bit. */
static void embedding_forward_given(float *out, const float *word, const int32_t *tt, const float *wpe,
                                    const float *wtt, int B, int T, int C) {
#pragma omp parallel for schedule(static) if ((double)B * T * C > 65536.0)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        float *o = out + (size_t)bt * C;
        const float *e = word + (size_t)bt * C;
        const float *p = wpe + (size_t)t * C;
        const float *y = wtt + (size_t)tt[bt] * C;
        for (int c = 0; c < C; c++) o[c] = e[c] + p[c] + y[c];
    }
}

static void encoder_forward(MilesModel *m, const float *word_emb) {
    const MilesConfig *c = &m->cfg;
    const int B = m->B, T = m->T, H = c->hidden_size, I = c->intermediate_size;
    const int NH = c->num_attention_heads, N = B * T;
    MilesActs *A = &m->A;
    const MilesParams *P = &m->P;

    if (word_emb) embedding_forward_given(A->emb_sum, word_emb, A->tt, P->wpe, P->wtt, B, T, H);
    else embedding_forward(A->emb_sum, A->ids, A->tt, P->wte, P->wpe, P->wtt, B, T, H);
    layernorm_forward(A->emb_out, A->emb_mean, A->emb_rstd, A->emb_sum, P->emb_ln.w, P->emb_ln.b, N,
                      H, c->layer_norm_eps);
    drop_fwd(A->emb_out, A->emb_out, (size_t)N * H,
             miles_model_dkey(m, c->hidden_dropout_prob, MILES_DROPID_EMB));

    const float *x = A->emb_out;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        if (l == c->num_hidden_layers - 1 && m->cls_last) { /* only the pooled rows */
            miles_model_cls_layer_forward(m, l, x);
            break;
        }
        const MilesLayerP *w = &P->layers[l];
        MilesLayerActs *y = &m->layer_acts[l];
        linear_forward(y->q, x, w->q.w, w->q.b, N, H, H);
        linear_forward(y->k, x, w->k.w, w->k.b, N, H, H);
        linear_forward(y->v, x, w->v.w, w->v.b, N, H, H);
        MilesDropoutKey ka = miles_model_dkey(m, c->attention_probs_dropout_prob,
                                              MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_PROBS));
        attention_forward_ws(y->ctx, y->att, y->attd, m->attd_slots, y->q, y->k, y->v, A->mask, B, T,
                             H, NH, ka, 0);
        /* res1 = x + dropout(ctx @ Wo^T + bo) */
        linear_forward(y->res1, y->ctx, w->attn_out.w, w->attn_out.b, N, H, H);
        drop_fwd(y->res1, y->res1, (size_t)N * H,
                 miles_model_dkey(m, c->hidden_dropout_prob,
                                  MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_OUT)));
        residual_forward(y->res1, y->res1, x, (size_t)N * H);
        layernorm_forward(y->ln1, y->mean1, y->rstd1, y->res1, w->ln1.w, w->ln1.b, N, H,
                          c->layer_norm_eps);
        /* FFN */
        linear_forward(y->inter, y->ln1, w->inter.w, w->inter.b, N, H, I);
        gelu_forward(y->gelu, y->inter, (size_t)N * I);
        linear_forward(y->res2, y->gelu, w->out.w, w->out.b, N, I, H);
        drop_fwd(y->res2, y->res2, (size_t)N * H,
                 miles_model_dkey(m, c->hidden_dropout_prob,
                                  MILES_DROPID_LAYER(l, MILES_DROPSITE_FFN_OUT)));
        residual_forward(y->res2, y->res2, y->ln1, (size_t)N * H);
        layernorm_forward(y->ln2, y->mean2, y->rstd2, y->res2, w->ln2.w, w->ln2.b, N, H,
                          c->layer_norm_eps);
        x = y->ln2;
    }
}

/* (Linear -> ReLU -> Dropout)* ; returns the last output (or `inp` when n == 0). */
static const float *mlp_forward(MilesModel *m, const float *inp, int in_w, int n,
                                const int *widths, const float *drops, const MilesLinP *W,
                                float **lin, float **drop, uint32_t id0) {
    const int B = m->B;
    for (int i = 0; i < n; i++) {
        size_t sz = (size_t)B * widths[i];
        linear_forward(lin[i], inp, W[i].w, W[i].b, B, in_w, widths[i]);
        relu_forward(lin[i], lin[i], sz);
        drop_fwd(drop[i], lin[i], sz, miles_model_dkey(m, drops[i], id0 + (uint32_t)i));
        inp = drop[i];
        in_w = widths[i];
    }
    return inp;
}

static void head_forward(MilesModel *m) {
    const MilesConfig *c = &m->cfg;
    const int B = m->B, T = m->T, H = c->hidden_size;
    MilesActs *A = &m->A;
    const MilesParams *P = &m->P;
    const float *hid = m->layer_acts[c->num_hidden_layers - 1].ln2;

    /* a [CLS]-rows-only last layer (m->cls_last) holds them compact: [B,H] */
    const int Tpool = m->cls_last ? 1 : T;
    switch (c->pooling) {
    case MILES_POOL_POOLER:
        cls_pool_forward(A->cls, hid, B, Tpool, H);
        linear_forward(A->pool_pre, A->cls, P->pooler.w, P->pooler.b, B, H, H);
        tanh_forward(A->pooled, A->pool_pre, (size_t)B * H);
        break;
    case MILES_POOL_CLS:
        cls_pool_forward(A->pooled, hid, B, Tpool, H);
        break;
    default:
        mean_pool_forward(A->pooled, hid, A->mask, B, T, H);
        break;
    }
    drop_fwd(A->text, A->pooled, (size_t)B * H, miles_model_dkey(m, c->text_dropout, MILES_DROPID_TEXT));

    const float *num = mlp_forward(m, A->features, c->num_features, c->n_numeric, c->numeric_widths,
                                   c->numeric_dropouts, P->numeric, A->num_lin, A->num_drop,
                                   MILES_DROPID_NUMERIC(0));
    concat_forward(A->concat, A->text, num, B, H, m->num_w);
    const float *feat = mlp_forward(m, A->concat, m->cat_w, c->n_fusion, c->fusion_widths,
                                    c->fusion_dropouts, P->fusion, A->fus_lin, A->fus_drop,
                                    MILES_DROPID_FUSION(0));
    linear_forward(A->logits, feat, P->cls.w, P->cls.b, B, m->feat_w, 2);
    linear_forward(A->vel_pre, feat, P->reg.w, P->reg.b, B, m->feat_w, 1);
    if (c->velocity_activation == MILES_VEL_SIGMOID) sigmoid_forward(A->vel, A->vel_pre, B);
    else memcpy(A->vel, A->vel_pre, (size_t)B * sizeof(float));
}

static int forward_impl(MilesModel *m, const MilesBatch *batch, const float *word_emb, int training,
                        float *logits, float *velocity, float *loss) {
    m->fwd_valid = 0;
    m->bwd_valid = 0;
    MILES_TRY(miles_model_validate_batch(m, batch));
    const MilesConfig *c = &m->cfg;
    const int B = batch->B, T = batch->T;
    const size_t N = (size_t)B * T;
    m->training = training ? 1 : 0;
    /* the attention dropout keeps its dropped probabilities per thread only
     * (the backward draws them again): one [T,T] slot per thread that can
     * run, not B*NH of them per layer */
    int attd_slots = 0;
    if (m->training && c->attention_probs_dropout_prob > 0.0f) {
        attd_slots = 1;
#ifdef _OPENMP
        attd_slots = omp_get_max_threads();
#endif
        if (attd_slots > B * c->num_attention_heads) attd_slots = B * c->num_attention_heads;
    }
    MILES_TRY(ensure_arena(m, B, T, attd_slots));
    m->B = B;
    m->T = T;
    m->attd_slots = attd_slots;

    /* copy the batch: backward must not depend on caller buffers */
    MilesActs *A = &m->A;
    memcpy(A->ids, batch->input_ids, N * sizeof(int32_t));
    if (batch->token_type_ids) memcpy(A->tt, batch->token_type_ids, N * sizeof(int32_t));
    else memset(A->tt, 0, N * sizeof(int32_t));
    memcpy(A->mask, batch->attention_mask, N * sizeof(int32_t));
    memcpy(A->features, batch->features, (size_t)B * c->num_features * sizeof(float));
    m->have_labels = batch->labels != NULL;
    m->have_vel = batch->velocity != NULL;
    if (m->have_labels) memcpy(A->labels, batch->labels, (size_t)B * sizeof(int32_t));
    if (m->have_vel) memcpy(A->vel_target, batch->velocity, (size_t)B * sizeof(float));

    m->emb_given = word_emb != NULL;
    m->cls_last = m->pooled_only && c->pooling != MILES_POOL_MEAN;
    encoder_forward(m, word_emb);
    head_forward(m);

    float ce = 0.0f, mse = 0.0f, L = 0.0f;
    if (m->have_labels) {
        ce = crossentropy_forward(A->probs, A->logits, A->labels, m->loss.class_weight, B, 2);
        L += m->loss.w_cls * ce;
    }
    if (m->have_vel) {
        mse = mse_forward(A->vel, A->vel_target, B);
        L += m->loss.w_reg * mse;
    }
    m->last_ce = ce;
    m->last_mse = mse;
    m->last_loss = L;
    m->fwd_valid = 1;
    if (logits) memcpy(logits, A->logits, (size_t)B * 2 * sizeof(float));
    if (velocity) memcpy(velocity, A->vel, (size_t)B * sizeof(float));
    if (loss) *loss = L;
    return MILES_OK;
}

int miles_model_forward(MilesModel *m, const MilesBatch *batch, int training, float *logits,
                        float *velocity, float *loss) {
    if (!m) return miles_error(MILES_EINVAL, "miles_model_forward: model is NULL");
    return forward_impl(m, batch, NULL, training, logits, velocity, loss);
}

int miles_model_forward_embeds(MilesModel *m, const MilesBatch *batch, const float *word_emb, int training,
                               float *logits, float *velocity, float *loss) {
    if (!m) return miles_error(MILES_EINVAL, "miles_model_forward_embeds: model is NULL");
    if (!word_emb) return forward_impl(m, batch, NULL, training, logits, velocity, loss);
    m->fwd_valid = 0;
    m->bwd_valid = 0;
    MILES_TRY(miles_model_validate_batch(m, batch));
    const int H = m->cfg.hidden_size;
    const size_t N = (size_t)batch->B * batch->T;
    for (size_t i = 0; i < N * H; i++)
        if (!isfinite(word_emb[i]))
            return miles_error(MILES_ENAN, "word embeddings: row %zu token %zu channel %zu is %s",
                               i / H / batch->T, i / H % batch->T, i % H, isnan(word_emb[i]) ? "NaN" : "Inf");
    return forward_impl(m, batch, word_emb, training, logits, velocity, loss);
}
