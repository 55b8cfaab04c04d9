/*
 * model_cls.c — the last encoder layer on the [CLS] rows alone.
 *
 * With pooler or cls pooling the pooled vector reads only row 0 of each
 * sequence of the last layer's output, and that row depends on the other
 * tokens only through the attention's keys and values.  So the last layer
 * needs K and V for every token but Q, the attention, the output dense,
 * both LayerNorms and the FFN for B rows instead of B*T: 2 of its 12 H^2
 * per token (bert-base, 12 layers: 7% of the encoder's matrix work; MiniLM,
 * 6 layers: 14%).  Training HF's way computes all of it.
 *
 * Same results as the full layer (miles_model_set_pooled_only): every op
 * here is the full forward's op on a subset of rows, and each row's bits
 * do not depend on the rows computed with it (GEMM contract, row-wise
 * LayerNorm/softmax, dropout keyed by the full tensor's element index).
 * Backward: the full layer's other rows carry zero gradient, so they add
 * only zero products; the one sum whose rounding would change, a weight
 * gradient's sum over tokens, runs in the groups the full GEMM's K slices
 * make (linear_backward_rows).  tests/test_model.c (test_pooled_only)
 * holds both paths to the same bits.
 */
#include "model_internal.h"
#include "ops_internal.h"

static inline void zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

/* Dropout on B rows of H that are rows b*T of a [B*T, H] tensor: the masks
 * of those rows there.  acc: miles_dropout_range's (0 write, 2 = 0 + v). */
static void drop_rows(float *out, const float *in, int B, int T, int H, MilesDropoutKey k, int acc) {
    for (int b = 0; b < B; b++)
        miles_dropout_range(out + (size_t)b * H, in + (size_t)b * H, (size_t)H, (uint64_t)b * T * H, &k,
                            acc);
}

static MilesDropoutKey layer_key(const MilesModel *m, int l, int site, float p) {
    return miles_model_dkey(m, p, MILES_DROPID_LAYER(l, site));
}

void miles_model_cls_layer_forward(MilesModel *m, int l, const float *x) {
    const MilesConfig *c = &m->cfg;
    const int B = m->B, T = m->T, H = c->hidden_size, I = c->intermediate_size;
    const int NH = c->num_attention_heads, N = B * T, ldx = T * H; /* x's [CLS] rows: stride T*H */
    const MilesLayerP *w = &m->P.layers[l];
    MilesLayerActs *y = &m->layer_acts[l];
    const float ph = c->hidden_dropout_prob;

    /* q [B,H] for the [CLS] rows; k, v [N,H] for every token */
    linear_forward_rows(y->q, H, x, ldx, w->q.w, w->q.b, B, H, H);
    linear_forward(y->k, x, w->k.w, w->k.b, N, H, H);
    linear_forward(y->v, x, w->v.w, w->v.b, N, H, H);
    MilesDropoutKey ka = layer_key(m, l, MILES_DROPSITE_ATTN_PROBS, c->attention_probs_dropout_prob);
    attention_forward_ws(y->ctx, y->att, y->attd, m->attd_slots, y->q, y->k, y->v, m->A.mask, B, T, H, NH,
                         ka, 1);
    /* res1 = x + dropout(ctx @ Wo^T + bo), ln1 = LN(res1) */
    linear_forward(y->res1, y->ctx, w->attn_out.w, w->attn_out.b, B, H, H);
    MilesDropoutKey k1 = layer_key(m, l, MILES_DROPSITE_ATTN_OUT, ph);
    if (k1.p > 0.0f) drop_rows(y->res1, y->res1, B, T, H, k1, 0);
    for (int b = 0; b < B; b++)
        residual_forward(y->res1 + (size_t)b * H, y->res1 + (size_t)b * H, x + (size_t)b * ldx, (size_t)H);
    layernorm_forward(y->ln1, y->mean1, y->rstd1, y->res1, w->ln1.w, w->ln1.b, B, H, c->layer_norm_eps);
    /* FFN */
    linear_forward(y->inter, y->ln1, w->inter.w, w->inter.b, B, H, I);
    gelu_forward(y->gelu, y->inter, (size_t)B * I);
    linear_forward(y->res2, y->gelu, w->out.w, w->out.b, B, I, H);
    MilesDropoutKey k2 = layer_key(m, l, MILES_DROPSITE_FFN_OUT, ph);
    if (k2.p > 0.0f) drop_rows(y->res2, y->res2, B, T, H, k2, 0);
    residual_forward(y->res2, y->res2, y->ln1, (size_t)B * H);
    layernorm_forward(y->ln2, y->mean2, y->rstd2, y->res2, w->ln2.w, w->ln2.b, B, H, c->layer_norm_eps);
}

/* dinp = dropout_backward(dout) on the [CLS] rows (drop_bwd's contract). */
static const float *drop_rows_bwd(float *dinp, const float *dout, int B, int T, int H, MilesDropoutKey k) {
    if (!(k.p > 0.0f)) return dout;
    drop_rows(dinp, dout, B, T, H, k, 2);
    return dinp;
}

void miles_model_cls_layer_backward(MilesModel *m, MilesParams *G, int l, const float *x) {
    const MilesConfig *c = &m->cfg;
    const int B = m->B, T = m->T, H = c->hidden_size, I = c->intermediate_size;
    const int NH = c->num_attention_heads, N = B * T, ldx = T * H;
    const size_t NHs = (size_t)N * H;
    const MilesLayerP *w = &m->P.layers[l];
    MilesLayerP *g = &G->layers[l];
    const MilesLayerActs *y = &m->layer_acts[l];
    MilesGradActs *D = &m->D;
    const float ph = c->hidden_dropout_prob;

    /* LN2 and the FFN, as encoder_backward on B rows (D->dx: d(ln2) [B,H]) */
    layernorm_backward_set(D->dln1, g->ln2.w, g->ln2.b, D->dx, y->res2, w->ln2.w, y->mean2, y->rstd2, B, H);
    const float *dp = drop_rows_bwd(D->dproj, D->dln1, B, T, H, layer_key(m, l, MILES_DROPSITE_FFN_OUT, ph));
    linear_backward_rows(D->dgelu, I, g->out.w, g->out.b, dp, y->gelu, I, w->out.w, B, T, I, H, 1);
    gelu_backward_set(D->dgelu, y->inter, D->dgelu, (size_t)B * I); /* in place: now d(inter) */
    linear_backward_rows(D->dln1, H, g->inter.w, g->inter.b, D->dgelu, y->ln1, H, w->inter.w, B, T, H, I, 0);

    /* LN1: d(res1) [B,H] into D->dres (free until the embeddings) */
    layernorm_backward_set(D->dres, g->ln1.w, g->ln1.b, D->dln1, y->res1, w->ln1.w, y->mean1, y->rstd1, B, H);
    dp = drop_rows_bwd(D->dproj, D->dres, B, T, H, layer_key(m, l, MILES_DROPSITE_ATTN_OUT, ph));
    linear_backward_rows(D->dctx, H, g->attn_out.w, g->attn_out.b, dp, y->ctx, H, w->attn_out.w, B, T, H, H,
                         1);

    /* attention: dq [B,H], dk, dv [N,H] (set) */
    MilesDropoutKey ka = layer_key(m, l, MILES_DROPSITE_ATTN_PROBS, c->attention_probs_dropout_prob);
    attention_backward_ws(D->dq, D->dk, D->dv, D->datt, m->datt_slots, D->dctx, y->att, y->q, y->k, y->v, B,
                          T, H, NH, ka, 1);

    /* d(layer input) [N,H] in the full layer's order: the residual branch
     * (D->dres already holds 0 + v, as layernorm_backward into a zeroed dx
     * there), then the q, k, v projections' input gradients */
    zero(D->dx, NHs);
    for (int b = 0; b < B; b++) memcpy(D->dx + (size_t)b * ldx, D->dres + (size_t)b * H, (size_t)H * sizeof(float));
    linear_backward_rows(D->dx, ldx, g->q.w, g->q.b, D->dq, x, ldx, w->q.w, B, T, H, H, 0);
    linear_backward(D->dx, g->k.w, g->k.b, D->dk, x, w->k.w, N, H, H);
    linear_backward(D->dx, g->v.w, g->v.b, D->dv, x, w->v.w, N, H, H);
}
