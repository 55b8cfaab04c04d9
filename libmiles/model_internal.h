/*
 * model_internal.h — the MilesModel struct shared by model.c (build, tensors,
 * init), model_forward.c, model_backward.c and optim.c.  Not installed.
 *
 * Memory (see docs/architecture.md):
 *   params  one 64-byte aligned float block, [num_params], tensors back to back
 *           in checkpoint order (MilesTensor.offset);
 *   grads   a second block with the same layout;
 *   arena   forward activations for the current (B,T), grown only when a batch
 *           needs more; pointers in MilesActs are re-derived at every forward;
 *   scratch backward-only buffers (MilesGradActs), allocated at the first
 *           backward, grown the same way.
 */
#ifndef MILES_MODEL_INTERNAL_H
#define MILES_MODEL_INTERNAL_H

#include "internal.h"
#include "ops.h"

/* Dropout tensor ids (MilesDropoutKey.tensor_id), one per dropout site.  The
 * CUDA backend must use the same ids to reproduce the CPU masks.
 *   embeddings (after the embedding LayerNorm)         0
 *   layer l attention probabilities [B,NH,T,T]        8 + 8*l + 0
 *   layer l attention output dense (before residual)  8 + 8*l + 1
 *   layer l FFN output dense (before residual)        8 + 8*l + 2
 *   pooled text vector (text_dropout)                 0x10000
 *   numeric MLP layer i (after ReLU)                  0x10100 + i
 *   fusion MLP layer i (after ReLU)                   0x10200 + i
 * Element index = flat row-major index within the site's tensor for the
 * current batch shape. */
#define MILES_DROPID_EMB 0u
#define MILES_DROPID_LAYER(l, site) (8u + 8u * (uint32_t)(l) + (uint32_t)(site))
#define MILES_DROPSITE_ATTN_PROBS 0
#define MILES_DROPSITE_ATTN_OUT 1
#define MILES_DROPSITE_FFN_OUT 2
#define MILES_DROPID_TEXT 0x10000u
#define MILES_DROPID_NUMERIC(i) (0x10100u + (uint32_t)(i))
#define MILES_DROPID_FUSION(i) (0x10200u + (uint32_t)(i))

typedef struct { float *w, *b; } MilesLinP;   /* w [out,in], b [out] */
typedef struct { float *w, *b; } MilesLnP;    /* [C] each */

typedef struct {
    MilesLinP q, k, v, attn_out;
    MilesLnP ln1;
    MilesLinP inter, out;
    MilesLnP ln2;
} MilesLayerP;

/* Typed views into the params block (or, with the same offsets, the grads block). */
typedef struct {
    float *wte, *wpe, *wtt;       /* [V,H] [P,H] [TV,H] */
    MilesLnP emb_ln;
    MilesLayerP *layers;          /* [L] */
    MilesLinP pooler;             /* only when pooling == pooler */
    MilesLinP numeric[MILES_MAX_MLP];
    MilesLinP fusion[MILES_MAX_MLP];
    MilesLinP cls, reg;           /* [2,W] [1,W] */
} MilesParams;

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    size_t numel;
    size_t offset;                /* floats from the start of params/grads */
    int decay;
} MilesTensor;

/* Saved activations of one encoder layer (N = B*T rows). */
typedef struct {
    float *q, *k, *v;             /* [N,H] */
    float *att, *attd;            /* att [B,NH,T,T]; attd: attd_slots [T,T] workspaces, NULL
                                   * unless attention dropout is on */
    float *ctx;                   /* [N,H] attention output (input of attn_out dense) */
    float *res1;                  /* [N,H] x + dropout(attn_out dense): LN1 input */
    float *mean1, *rstd1;         /* [N] */
    float *ln1;                   /* [N,H] */
    float *inter;                 /* [N,I] pre-GELU */
    float *gelu;                  /* [N,I] */
    float *res2;                  /* [N,H] ln1 + dropout(out dense): LN2 input */
    float *mean2, *rstd2;         /* [N] */
    float *ln2;                   /* [N,H] layer output */
} MilesLayerActs;

typedef struct {
    float *emb_sum;               /* [N,H] word + position + type */
    float *emb_mean, *emb_rstd;   /* [N] */
    float *emb_out;               /* [N,H] LN output, then dropout in place */
    MilesLayerActs *layers;       /* [L] (array owned by the model) */
    float *cls;                   /* [B,H] CLS rows (pooler input) */
    float *pool_pre;              /* [B,H] pooler dense output */
    float *pooled;                /* [B,H] pooled text vector (before text dropout) */
    float *text;                  /* [B,H] after text dropout */
    float *features;              /* [B,F] copy of the input features */
    float *num_lin[MILES_MAX_MLP];  /* [B,w] linear then ReLU in place */
    float *num_drop[MILES_MAX_MLP]; /* [B,w] after dropout */
    float *concat;                /* [B,H+Wn] */
    float *fus_lin[MILES_MAX_MLP];
    float *fus_drop[MILES_MAX_MLP];
    float *logits;                /* [B,2] */
    float *probs;                 /* [B,2] */
    float *vel_pre;               /* [B] regressor output */
    float *vel;                   /* [B] after the head activation */
    float *vel_target;            /* [B] copy of the targets */
    int32_t *ids, *tt, *mask, *labels; /* copies of the batch ([B,T],[B,T],[B,T],[B]) */
} MilesActs;

/* Backward-only buffers. */
typedef struct {
    float *dx, *dln1, *dres, *dproj, *dctx, *dq, *dk, *dv;  /* [N,H] */
    float *dgelu;                 /* [N,I]: d(gelu out); the CPU backward turns it into
                                   * d(inter) in place */
    float *dinter;                /* [N,I] d(inter): the CUDA backward's (model_cuda.cu);
                                   * NULL on the CPU */
    float *datt;                  /* attention_backward_ws workspace: datt_slots [T,T] slots
                                   * on the CPU; [B,NH,T,T] in the CUDA backward */
    float *dcls, *dpool_pre, *dpooled, *dtext; /* [B,H] */
    float *dnum;                  /* [B,Wn] */
    float *dconcat;               /* [B,H+Wn] */
    float *dmlp_a, *dmlp_b, *dmlp_c; /* [B,maxw] MLP ping-pong */
    float *dlogits, *dvel, *dvel_pre; /* [B,2] [B] [B] */
    float *dfeat;                 /* [B,F] d/d(standardized features) (input gradient) */
} MilesGradActs;

struct MilesModel {
    MilesConfig cfg;
    MilesLossConfig loss;
    uint64_t drop_seed, drop_step;

    int ntensors;
    MilesTensor *tensors;
    size_t nparams;
    float *params, *grads;
    MilesParams P, G;
    MilesParams G0;               /* all-NULL gradient views (G0.layers: [L] zeroed): a
                                   * backward through G0 computes input gradients only */

    /* derived widths */
    int num_w;                    /* width of the numeric branch output (F if no MLP) */
    int cat_w;                    /* H + num_w */
    int feat_w;                   /* input width of the heads */
    int max_w;                    /* widest MLP activation (for backward ping-pong) */

    /* forward arena */
    void *arena;
    size_t arena_cap;             /* bytes */
    MilesActs A;
    MilesLayerActs *layer_acts;   /* [L] */

    /* backward scratch */
    void *scratch;
    size_t scratch_cap;
    MilesGradActs D;

    /* state of the last forward */
    int fwd_valid;                /* a forward succeeded and its activations are intact */
    int B, T;
    int training;                 /* dropout was on */
    int attd_slots;               /* [T,T] slots of each layer's attd: one per thread (0: no
                                   * attention dropout; ops.h attention_forward_ws) */
    int datt_slots;               /* [T,T] slots of D.datt (attention_ws_slots) */
    int have_labels, have_vel;
    int emb_given;                /* the word embeddings came from the caller
                                   * (miles_model_forward_embeds): no wte gradient */
    int pooled_only;              /* miles_model_set_pooled_only */
    int cls_last;                 /* the last forward ran the last layer on the [CLS]
                                   * rows only (model_cls.c): its activations are [B,..] */
    int bwd_valid;                /* a backward of this forward ran: the input
                                   * gradients are in D.dres [N,H] and D.dfeat [B,F] */
    float last_loss, last_ce, last_mse;

    /* inference engine (model_infer.c): built by miles_model_set_precision,
     * dropped when the weights are replaced; NULL = the reference forward */
    struct MilesInfer *infer;
};

/* The forward's batch check (model_forward.c): shapes, id/type/mask ranges,
 * finite features and targets; the message names row/token/feature. */
int miles_model_validate_batch(const MilesModel *m, const MilesBatch *b);

/* Dropout key for a site; p = 0 when not training. */
static inline MilesDropoutKey miles_model_dkey(const MilesModel *m, float p, uint32_t id) {
    MilesDropoutKey k;
    k.p = m->training ? p : 0.0f;
    k.seed = m->drop_seed;
    k.step = m->drop_step;
    k.tensor_id = id;
    return k;
}

/* The last encoder layer on the [CLS] rows alone (model_cls.c), when the
 * pooled output reads nothing else: x [N,H] is the layer's input; the
 * layer's activations are written compact ([B,..] rows at the start of its
 * buffers).  The backward takes d(layer output)'s [CLS] rows compact in
 * D->dx [B,H] and leaves d(layer input) [N,H] in D->dx. */
void miles_model_cls_layer_forward(MilesModel *m, int l, const float *x);
void miles_model_cls_layer_backward(MilesModel *m, MilesParams *G, int l, const float *x);

#endif
