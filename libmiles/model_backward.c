/*
 * model_backward.c — the backward pass: exact mirror of model_forward.c.
 * Every parameter gradient is ACCUMULATED into m->grads (ops convention), so
 * gradient accumulation is repeated forward/backward before one optimizer
 * step; activation gradients live in the scratch block and are zeroed here.
 */

#include "model_internal.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* layouts run over internal.h's bump allocator (base NULL only counts) */
#define FL(b, n) MILES_BUMP_F32(b, n)

static size_t grad_layout(MilesModel *m, void *base, int B, int T, int datt_slots) {
    const MilesConfig *c = &m->cfg;
    const size_t H = c->hidden_size, I = c->intermediate_size, N = (size_t)B * T;
    MilesGradActs *D = &m->D;
    MilesBump b = {base, 0};
    D->dx = FL(&b, N * H);
    D->dln1 = FL(&b, N * H);
    D->dres = FL(&b, N * H);
    D->dproj = FL(&b, N * H);
    D->dctx = FL(&b, N * H);
    D->dq = FL(&b, N * H);
    D->dk = FL(&b, N * H);
    D->dv = FL(&b, N * H);
    D->dgelu = FL(&b, N * I);
    D->dinter = NULL; /* the CPU backward computes d(inter) in dgelu, in place */
    D->datt = FL(&b, (size_t)datt_slots * T * T); /* per-thread slots, not [B,NH,T,T] */
    D->dcls = FL(&b, (size_t)B * H);
    D->dpool_pre = FL(&b, (size_t)B * H);
    D->dpooled = FL(&b, (size_t)B * H);
    D->dtext = FL(&b, (size_t)B * H);
    D->dnum = FL(&b, (size_t)B * m->num_w);
    D->dconcat = FL(&b, (size_t)B * m->cat_w);
    D->dmlp_a = FL(&b, (size_t)B * m->max_w);
    D->dmlp_b = FL(&b, (size_t)B * m->max_w);
    D->dmlp_c = FL(&b, (size_t)B * m->max_w);
    D->dlogits = FL(&b, (size_t)B * 2);
    D->dvel = FL(&b, B);
    D->dvel_pre = FL(&b, B);
    D->dfeat = FL(&b, (size_t)B * c->num_features);
    return b.off;
}

static int ensure_scratch(MilesModel *m) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    /* the attention backward's workspace: two [T,T] slots per thread (its
     * threads are capped to what the layout holds if more come later) */
    const int slots = attention_ws_slots(m->B, m->cfg.num_attention_heads, threads);
    size_t need = grad_layout(m, NULL, m->B, m->T, slots);
    if (need > m->scratch_cap) {
        free(m->scratch);
        m->scratch = miles_aligned_alloc(need);
        m->scratch_cap = m->scratch ? need : 0;
        if (!m->scratch)
            return miles_error(MILES_ENOMEM, "model: cannot allocate %.1f MB of backward buffers",
                               need / 1e6);
    }
    grad_layout(m, m->scratch, m->B, m->T, slots);
    m->datt_slots = slots;
    return MILES_OK;
}

static inline void zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

/* dinp = dropout_backward(dout) into a zeroed dinp (dropout_backward_set: the
 * same bits without the zeroing pass), or dout itself when off. */
static const float *drop_bwd(float *dinp, const float *dout, size_t n, MilesDropoutKey k) {
    if (!(k.p > 0.0f)) return dout;
    dropout_backward_set(dinp, dout, n, k);
    return dinp;
}

/* Backward through (Linear -> ReLU -> Dropout)*.  dout: gradient w.r.t. the
 * last output (may be D->dmlp_a); dinp (may be NULL): accumulates the gradient
 * w.r.t. `inp`.  Buffers: g (incoming) is dmlp_a/dmlp_b or external; dropout
 * writes dmlp_c; the ReLU gradient goes to the dmlp_a/b buffer that is not g;
 * the input gradient to the other one (g is dead by then). */
static void mlp_backward(MilesModel *m, float *dinp, const float *dout, const float *inp,
                         int in_w, int n, const int *widths, const float *drops,
                         const MilesLinP *W, MilesLinP *G, float **lin, float **drop, uint32_t id0) {
    const int B = m->B;
    MilesGradActs *D = &m->D;
    const float *g = dout;
    for (int i = n - 1; i >= 0; i--) {
        size_t sz = (size_t)B * widths[i];
        const float *x = i ? drop[i - 1] : inp;
        int xw = i ? widths[i - 1] : in_w;
        const float *gd = drop_bwd(D->dmlp_c, g, sz, miles_model_dkey(m, drops[i], id0 + (uint32_t)i));
        float *glin = (g == D->dmlp_a) ? D->dmlp_b : D->dmlp_a;
        zero(glin, sz);
        relu_backward(glin, lin[i], gd, sz);
        float *gx = dinp;
        if (i) {
            gx = (glin == D->dmlp_a) ? D->dmlp_b : D->dmlp_a;
            zero(gx, (size_t)B * xw);
        }
        linear_backward(gx, G[i].w, G[i].b, glin, x, W[i].w, B, xw, widths[i]);
        g = gx;
    }
}

/* From D->dlogits [B,2] and D->dvel [B] (d/d velocity after the head
 * activation) down to D->dx = d/d(encoder output) [N,H]; also leaves
 * D->dfeat = d/d(features) [B,F].  G: parameter gradient views (m->G, or the
 * all-NULL m->G0 to skip every parameter gradient). */
static void head_backward(MilesModel *m, MilesParams *G) {
    const MilesConfig *c = &m->cfg;
    const int B = m->B, T = m->T, H = c->hidden_size;
    MilesActs *A = &m->A;
    MilesGradActs *D = &m->D;
    const MilesParams *P = &m->P;

    const float *dvp = D->dvel;
    if (c->velocity_activation == MILES_VEL_SIGMOID) {
        zero(D->dvel_pre, B);
        sigmoid_backward(D->dvel_pre, A->vel, D->dvel, B);
        dvp = D->dvel_pre;
    }
    /* heads: gradient w.r.t. the fusion output (or the concat when n_fusion == 0) */
    const float *feat = c->n_fusion ? A->fus_drop[c->n_fusion - 1] : A->concat;
    float *dhead = c->n_fusion ? D->dmlp_a : D->dconcat;
    zero(dhead, (size_t)B * m->feat_w);
    linear_backward(dhead, G->cls.w, G->cls.b, D->dlogits, feat, P->cls.w, B, m->feat_w, 2);
    linear_backward(dhead, G->reg.w, G->reg.b, dvp, feat, P->reg.w, B, m->feat_w, 1);
    if (c->n_fusion) {
        zero(D->dconcat, (size_t)B * m->cat_w);
        mlp_backward(m, D->dconcat, dhead, A->concat, m->cat_w, c->n_fusion, c->fusion_widths,
                     c->fusion_dropouts, P->fusion, G->fusion, A->fus_lin, A->fus_drop,
                     MILES_DROPID_FUSION(0));
    }
    zero(D->dtext, (size_t)B * H);
    zero(D->dnum, (size_t)B * m->num_w);
    concat_backward(D->dtext, D->dnum, D->dconcat, B, H, m->num_w);
    zero(D->dfeat, (size_t)B * c->num_features);
    if (c->n_numeric)
        mlp_backward(m, D->dfeat, D->dnum, A->features, c->num_features, c->n_numeric, c->numeric_widths,
                     c->numeric_dropouts, P->numeric, G->numeric, A->num_lin, A->num_drop,
                     MILES_DROPID_NUMERIC(0));
    else /* the raw features are the numeric branch output */
        memcpy(D->dfeat, D->dnum, (size_t)B * c->num_features * sizeof(float));
    const float *dpooled = drop_bwd(D->dpooled, D->dtext, (size_t)B * H,
                                    miles_model_dkey(m, c->text_dropout, MILES_DROPID_TEXT));
    /* into the encoder output gradient D->dx [N,H]; with a [CLS]-rows-only
     * last layer its rows compact, [B,H] (cls_pool_backward over T = 1) */
    const int Tpool = m->cls_last ? 1 : T;
    zero(D->dx, (size_t)B * Tpool * H);
    switch (c->pooling) {
    case MILES_POOL_POOLER:
        zero(D->dpool_pre, (size_t)B * H);
        tanh_backward(D->dpool_pre, A->pooled, dpooled, (size_t)B * H);
        zero(D->dcls, (size_t)B * H);
        linear_backward(D->dcls, G->pooler.w, G->pooler.b, D->dpool_pre, A->cls, P->pooler.w, B, H, H);
        cls_pool_backward(D->dx, D->dcls, B, Tpool, H);
        break;
    case MILES_POOL_CLS:
        cls_pool_backward(D->dx, dpooled, B, Tpool, H);
        break;
    default:
        mean_pool_backward(D->dx, dpooled, A->mask, B, T, H);
        break;
    }
}

/* From D->dx = d/d(encoder output) down to the embeddings; leaves D->dres =
 * d/d(emb_sum) [N,H], which is also d/d(word embedding vectors). */
static void encoder_backward(MilesModel *m, MilesParams *G) {
    const MilesConfig *c = &m->cfg;
    const int B = m->B, T = m->T, H = c->hidden_size, I = c->intermediate_size;
    const int NH = c->num_attention_heads, N = B * T;
    const size_t NHs = (size_t)N * H, NI = (size_t)N * I;
    MilesActs *A = &m->A;
    MilesGradActs *D = &m->D;
    const MilesParams *P = &m->P;

    /* D->dx holds d(layer output) on entry to each layer and d(layer input) on exit */
    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        const MilesLayerP *w = &P->layers[l];
        MilesLayerP *g = &G->layers[l];
        const MilesLayerActs *y = &m->layer_acts[l];
        const float *x = l ? m->layer_acts[l - 1].ln2 : A->emb_out;
        if (l == c->num_hidden_layers - 1 && m->cls_last) {
            miles_model_cls_layer_backward(m, G, l, x);
            continue;
        }

        /* LN2: ln2 = LN(res2), res2 = ln1 + dropout(out dense).  d(res2) is
         * also the residual branch's d(ln1): written straight into dln1,
         * which the FFN's input gradient then accumulates into (dp, read by
         * the out dense's backward, may be dln1 itself: it is read before
         * dln1 changes).  The *_set ops write what the accumulating ones
         * leave in a zeroed buffer, bit for bit, minus the zeroing. */
        layernorm_backward_set(D->dln1, g->ln2.w, g->ln2.b, D->dx, y->res2, w->ln2.w, y->mean2, y->rstd2,
                               N, H);
        const float *dp = drop_bwd(D->dproj, D->dln1, NHs,
                                   miles_model_dkey(m, c->hidden_dropout_prob,
                                                    MILES_DROPID_LAYER(l, MILES_DROPSITE_FFN_OUT)));
        linear_backward_set(D->dgelu, g->out.w, g->out.b, dp, y->gelu, w->out.w, N, I, H);
        gelu_backward_set(D->dgelu, y->inter, D->dgelu, NI); /* in place: now d(inter) */
        linear_backward(D->dln1, g->inter.w, g->inter.b, D->dgelu, y->ln1, w->inter.w, N, H, I);

        /* LN1: ln1 = LN(res1), res1 = x + dropout(attn_out dense); d(res1)
         * is the residual branch to the layer input: into dx directly (the
         * layer output's gradient there is dead: LN2 consumed it) */
        layernorm_backward_set(D->dx, g->ln1.w, g->ln1.b, D->dln1, y->res1, w->ln1.w, y->mean1, y->rstd1,
                               N, H);
        dp = drop_bwd(D->dproj, D->dx, NHs,
                      miles_model_dkey(m, c->hidden_dropout_prob,
                                       MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_OUT)));
        linear_backward_set(D->dctx, g->attn_out.w, g->attn_out.b, dp, y->ctx, w->attn_out.w, N, H, H);

        /* attention core (sets dq, dk, dv) */
        MilesDropoutKey ka = miles_model_dkey(m, c->attention_probs_dropout_prob,
                                              MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_PROBS));
        attention_backward_ws(D->dq, D->dk, D->dv, D->datt, m->datt_slots, D->dctx, y->att, y->q, y->k,
                              y->v, B, T, H, NH, ka, 0);
        linear_backward(D->dx, g->q.w, g->q.b, D->dq, x, w->q.w, N, H, H);
        linear_backward(D->dx, g->k.w, g->k.b, D->dk, x, w->k.w, N, H, H);
        linear_backward(D->dx, g->v.w, g->v.b, D->dv, x, w->v.w, N, H, H);
    }

    /* embeddings: emb_out = dropout(LN(emb_sum)) */
    const float *dln = drop_bwd(D->dproj, D->dx, NHs,
                                miles_model_dkey(m, c->hidden_dropout_prob, MILES_DROPID_EMB));
    layernorm_backward_set(D->dres, G->emb_ln.w, G->emb_ln.b, dln, A->emb_sum, P->emb_ln.w, A->emb_mean,
                           A->emb_rstd, N, H);
    /* word vectors given by the caller are not rows of wte: no wte gradient */
    embedding_backward(m->emb_given ? NULL : G->wte, G->wpe, G->wtt, D->dres, A->ids, A->tt, B, T, H);
}

int miles_model_backward(MilesModel *m, float loss_scale) {
    if (!m) return miles_error(MILES_EINVAL, "miles_model_backward: model is NULL");
    if (!m->fwd_valid)
        return miles_error(MILES_EINVAL, "miles_model_backward: no successful forward to differentiate");
    if (!m->have_labels && !m->have_vel)
        return miles_error(MILES_EINVAL,
                           "miles_model_backward: the last forward had neither labels nor velocity targets");
    MILES_TRY(ensure_scratch(m));
    const int B = m->B;
    MilesActs *A = &m->A;
    MilesGradActs *D = &m->D;
    zero(D->dlogits, (size_t)B * 2);
    zero(D->dvel, B);
    if (m->have_labels)
        crossentropy_backward(D->dlogits, A->probs, A->labels, m->loss.class_weight, B, 2,
                              m->loss.w_cls * loss_scale);
    if (m->have_vel) mse_backward(D->dvel, A->vel, A->vel_target, B, m->loss.w_reg * loss_scale);
    head_backward(m, &m->G);
    encoder_backward(m, &m->G);
    m->bwd_valid = 1;
    return MILES_OK;
}

int miles_model_backward_from_outputs(MilesModel *m, const float *dlogits, const float *dvelocity,
                                      int param_grads) {
    if (!m) return miles_error(MILES_EINVAL, "miles_model_backward_from_outputs: model is NULL");
    if (!m->fwd_valid)
        return miles_error(MILES_EINVAL,
                           "miles_model_backward_from_outputs: no successful forward to differentiate");
    const int B = m->B;
    for (int i = 0; dlogits && i < 2 * B; i++)
        if (!isfinite(dlogits[i]))
            return miles_error(MILES_ENAN, "miles_model_backward_from_outputs: dlogits row %d class %d is %s",
                               i / 2, i % 2, isnan(dlogits[i]) ? "NaN" : "Inf");
    for (int i = 0; dvelocity && i < B; i++)
        if (!isfinite(dvelocity[i]))
            return miles_error(MILES_ENAN, "miles_model_backward_from_outputs: dvelocity row %d is %s", i,
                               isnan(dvelocity[i]) ? "NaN" : "Inf");
    MILES_TRY(ensure_scratch(m));
    MilesGradActs *D = &m->D;
    if (dlogits) memcpy(D->dlogits, dlogits, (size_t)B * 2 * sizeof(float));
    else zero(D->dlogits, (size_t)B * 2);
    if (dvelocity) memcpy(D->dvel, dvelocity, (size_t)B * sizeof(float));
    else zero(D->dvel, B);
    MilesParams *G = param_grads ? &m->G : &m->G0;
    head_backward(m, G);
    encoder_backward(m, G);
    m->bwd_valid = 1;
    return MILES_OK;
}

int miles_model_input_grads(const MilesModel *m, float *dword, float *dfeatures) {
    if (!m) return miles_error(MILES_EINVAL, "miles_model_input_grads: model is NULL");
    if (!m->fwd_valid || !m->bwd_valid)
        return miles_error(MILES_EINVAL,
                           "miles_model_input_grads: no backward of the last forward (call a backward first)");
    const size_t N = (size_t)m->B * m->T;
    if (dword) memcpy(dword, m->D.dres, N * m->cfg.hidden_size * sizeof(float));
    if (dfeatures) memcpy(dfeatures, m->D.dfeat, (size_t)m->B * m->cfg.num_features * sizeof(float));
    return MILES_OK;
}
