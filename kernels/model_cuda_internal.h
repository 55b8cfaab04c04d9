/*
 * model_cuda_internal.h — the MilesCudaModel struct and small helpers shared by
 * kernels/model_cuda.cu (layouts, batch packing, forward, backward) and
 * kernels/model_cuda_state.cu (build/free, optimizer, loss scaler, weights
 * in/out).  Not installed; the API is kernels/model_cuda.h.
 */
#ifndef MILES_MODEL_CUDA_INTERNAL_H
#define MILES_MODEL_CUDA_INTERNAL_H

#ifdef MILES_CUDA_HOST_EMULATION
/* kernels/cuda_emu.h: the CUDA runtime calls and the *_cuda ops emulated
 * on the host with the CPU ops, to test this driver's logic without a GPU
 * (tests/cuda/test_cuda_model_emu.cpp) */
#include "cuda_emu.h"
#else
#include "common.cuh"
#endif

extern "C" {
#include "model_internal.h"
}
#include "model_cuda.h"

#include <math.h>

/* Per-step scalars on the device (first in the inputs block, so the batch
 * copy brings the dropout step along): kernels read them when they run,
 * which is what lets a captured CUDA graph replay a later step. */
typedef struct {
    uint64_t seed, step;                /* dropout key (the `rng` of the 16-bit ops) */
    float loss_scale, pad;              /* backward's loss_scale */
} StepParams;

/* The batch as copied to the device: the same layout in the pinned staging
 * buffer and at the start of the device arena, so one memcpy moves it. */
typedef struct {
    StepParams *step;
    int32_t *ids, *tt, *mask, *labels;  /* [N] [N] [N] [B] */
    float *features, *vel_target;       /* [B,F] [B] */
    int32_t *uniq, *offs, *pos;         /* word-embedding CSR: [U] ids, [U+1], [N] token indices */
    int32_t *tt_offs, *tt_pos;          /* token-type CSR: [TV+1], [N] */
    /* 16-bit path: embedding backward segments (MilesEmbSegments) instead of the CSR */
    int32_t *seg_counts, *seg_pos, *seg_row, *seg_beg, *seg_multi, *multi_row, *multi_beg, *multi_end;
} Inputs;

/* ---------------------------------------------------- the 16-bit path */
/* 16-bit copies of one layer's GEMM weights (QKV packed as one [3H,H]). */
typedef struct {
    uint16_t *qkv_w, *qkv_b, *o_w, *o_b, *i_w, *i_b, *out_w, *out_b;
} FastLayerW;

/* Saved activations of one layer: 16-bit tensors, fp32 statistics. */
typedef struct {
    uint16_t *qkv;                      /* [N,3H] fused projection (q | k | v per row) */
    uint16_t *ctx;                      /* [N,H] attention output */
    float *lse;                         /* [B,NH,T] attention log-sum-exp (base 2) */
    uint16_t *res1, *ln1;               /* [N,H] x + dropout(attn out), LayerNorm of it */
    float *mean1, *rstd1;
    uint16_t *inter, *gelu;             /* [N,I] */
    uint16_t *res2, *ln2;
    float *mean2, *rstd2;
} FastLayerActs;

typedef struct FastState {
    int dtype;                          /* MILES_CUDA_F16 / MILES_CUDA_BF16 */
    uint16_t *half;                     /* device: the 16-bit weight copies */
    size_t half_n;
    FastLayerW *hw;                     /* [L] views into half */
    MilesCudaChunk *chunks;             /* device chunk table of the fused AdamW */
    int nchunks, chunks_decay_all;      /* -1: not built */
    float chunks_lr, chunks_head_lr, chunks_layer_decay; /* the groups the table holds (0: one group) */
    size_t head_off, emb_ln_off;        /* first float of the heads; of embeddings.LayerNorm */
    long long qkv_w_stride, qkv_b_stride; /* floats between q/k/v weights (biases) in the grads */
    /* arena views (set by the layout) */
    FastLayerActs *acts;                /* [L] */
    uint16_t *emb_out, *proj;           /* [N,H]; proj: a dense output before its residual LN */
    float *emb_mean, *emb_rstd;
    /* backward views */
    float *dres;                        /* [N,H] fp32: LayerNorm input gradient */
    uint16_t *dproj, *dctx, *dqkv, *dinter; /* [N,H] [N,H] [N,3H] [N,I] */
    float *dsum;                        /* [B,NH,T] */
    float *ws_ln, *ws_col, *ws_emb;     /* partial sums */
    size_t ws_ln_n, ws_col_n;
    /* small device state */
    void *small;
    MilesCudaOptState *opt;
    float *lr;                          /* AdamW's learning rate (device) */
    int32_t *ovf;                       /* fp16 output-overflow flag target (the scaler's found_inf) or NULL */
    int zero_pending;                   /* zero_grad happened: the next backward writes */
    int acc;                            /* this backward adds to the parameter gradients (else writes) */
    int prepared;                       /* grad_prepare ran since the last backward */
    int host_stale;                     /* t and the loss scale changed on the device only */
    uint16_t *hhost;                    /* host staging for download_last_hidden */
    size_t hhost_cap;
    /* CUDA graphs: one per step shape, captured at its second use */
    int graphs;                         /* enabled */
    struct GraphEntry *gcache;          /* [FAST_GRAPHS] */
    uint64_t gclock;
    long graph_launches, graph_captures;
} FastState;
#define FAST_GRAPHS 16

struct MilesCudaModel {
    MilesConfig cfg;
    MilesLossConfig loss;
    MilesModel *shadow;                 /* zeroed except cfg and loss: for the batch check */
    uint64_t drop_seed, drop_step;
    int precision, math;
    int ntensors;
    MilesTensor *tensors;               /* copy of the CPU table (host) */
    size_t nparams;
    int num_w, cat_w, feat_w, max_w;

    cudaStream_t stream;
    float *params, *grads, *m, *v;      /* device [nparams] (m, v at the first step) */
    uint8_t *decay_mask;                /* device [nparams], built for decay_mask_all */
    int decay_mask_all;                 /* -1: not built */
    MilesParams P, G;                   /* device views; .layers arrays are host arrays */

    /* arena: inputs block first, then the activations */
    void *arena;
    size_t arena_cap, in_bytes;
    MilesActs A;
    MilesLayerActs *layer_acts;
    Inputs din, hin;                    /* device / pinned views of the inputs block */
    void *pinned;
    size_t pinned_cap;
    cudaEvent_t staged;                 /* the last H2D copy of the pinned buffer */
    int staged_pending;
    int n_uniq;
    int32_t *slot;                      /* host [V], -1 = id not in the batch */
    int32_t *cursor;                    /* host [N] */
    size_t cursor_cap;

    void *scratch;
    size_t scratch_cap;
    MilesGradActs D;

    /* small device block: reduction workspace, loss values, norm, scaler, class weights */
    void *small;
    float *ws, *dloss, *dnorm, *dcw;
    MilesLossScalerState *dscaler;
    MilesCudaTrainStats *dstats;        /* the trainer's loss sum and skipped steps (read at log intervals) */
    /* small pinned block for read-backs */
    void *hsmall;
    float *hloss, *hnorm;
    MilesLossScalerState *hscaler;      /* [2]: before and after the update */
    MilesCudaTrainStats *hstats;
    MilesCudaOptState *hopt;
    int scaler_stale;                   /* fp16 on the fp32 path: scale and t are behind the device's (dscaler,
                                         * dstats->steps): scaler_sync_host refreshes them */
    int loss_set;                       /* set_loss has copied a loss config (later equal ones are no-ops) */

    /* loss scaler (fp16) */
    int use_scaler;
    int f16_guard;                      /* cuBLAS does not turn fp16 overflow into Inf: range-check */
    float scale;                        /* host mirror of dscaler->scale */
    float growth, backoff;
    int interval;
    int grads_unscaled;

    int64_t t;                          /* AdamW steps taken */
    /* miles_cuda_model_backward_hooked: called as gradient suffixes become final */
    MilesCudaGradReady gr_fn;
    void *gr_ctx;

    /* the 16-bit path (precision fp16 / bf16 unless built with fast = 0) */
    int fast, graphs_opt;               /* the build options */
    FastState *fs;
    int32_t *uniq;                      /* host [N] scratch of the segment builder */
    size_t uniq_cap;

    /* explanations: the word vectors of a forward from given embeddings ([N,H]
     * floats, then [N] ids 0..N-1 that gather them row by row) */
    void *given;
    size_t given_cap;
    int use_given;                      /* the next encoder forward reads them */
    int seeded;                         /* head_backward from D->dlogits / D->dvel as set, + D->dfeat */

    /* last forward */
    int fwd_valid, B, T, training, has_attd, have_labels, have_vel;
};

/* Math mode of the model for the duration of a call (the mode is process-wide). */
struct MathScope {
    int old;
    explicit MathScope(int mode) { old = miles_cuda_get_math(); if (old != mode) miles_cuda_set_math(mode); }
    ~MathScope() { if (miles_cuda_get_math() != old) miles_cuda_set_math(old); }
};

/* Bump allocation of the arena layouts: the CPU model's allocator (internal.h;
 * 64-byte aligned pieces, base NULL: just count). */
typedef MilesBump Bump;
#define bump(b, bytes) miles_bump((b), (bytes))
#define FL(b, n) MILES_BUMP_F32(b, n)
#define IN(b, n) MILES_BUMP_I32(b, n)
#define HF(b, n) ((uint16_t *)miles_bump((b), (size_t)(n) * sizeof(uint16_t)))

/* model_cuda.cu's deterministic embedding backward (per-id token lists, CSR):
 * dwte[uniq[u]] += sum of dout rows pos[offs[u]..offs[u+1]) in order; dwtt
 * likewise with the token-type lists; dwpe[t] += sum over b in order. */
int miles_cuda_embedding_backward_csr(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                      const int32_t *uniq, int U, const int32_t *offs, const int32_t *pos,
                                      const int32_t *tt_offs, const int32_t *tt_pos, int TV, int B, int T,
                                      int C, cudaStream_t s);

/* The fp16 overflow flag of the FAST_16F GEMMs for the duration of a call
 * (NULL: no range checks). */
struct F16GuardScope {
    explicit F16GuardScope(int32_t *flag) { miles_cuda_set_f16_overflow_flag(flag); }
    ~F16GuardScope() { miles_cuda_set_f16_overflow_flag(NULL); }
};

/* model_cuda.cu: the two halves of a forward (host staging; device work
 * only, capturable), the 16-bit path's device-only backward */
int cuda_forward_stage(MilesCudaModel *cm, const MilesBatch *batch, int training, float loss_scale);
int cuda_forward_device(MilesCudaModel *cm);
int cuda_backward_device(MilesCudaModel *cm);
/* The backward's "gradients [offset of layer l's first tensor, n) are final"
 * hook (l = num_hidden_layers: the heads; l = -1: everything); no-op unless
 * miles_cuda_model_backward_hooked set one. */
int cuda_grad_ready(MilesCudaModel *cm, int l);
int cuda_ensure_scratch(MilesCudaModel *cm);

/* model_cuda_fast.cu: the 16-bit path (not in the host emulation) */
int fast_forward_graph(MilesCudaModel *cm);
int fast_train_step(MilesCudaModel *cm, const MilesBatch *batch, float loss_scale, float max_norm, float lr,
                    const MilesAdamWConfig *cfg, float *loss, float *norm, int *skipped);
void fast_graphs_reset(MilesCudaModel *cm);
int fast_graph_count(const MilesCudaModel *cm);
size_t fast_arena_layout(MilesCudaModel *cm, void *base, size_t off, int B, int T);
size_t fast_grad_layout(MilesCudaModel *cm, void *base, size_t off, int B, int T);
int fast_build(MilesCudaModel *cm, const MilesModel *cpu);
void fast_free(MilesCudaModel *cm);
int fast_encoder_forward(MilesCudaModel *cm);
int fast_encoder_backward(MilesCudaModel *cm);
int fast_zero_grad(MilesCudaModel *cm);
int fast_begin_backward(MilesCudaModel *cm);
int fast_materialize_zero(MilesCudaModel *cm);
int fast_clip_grad_norm(MilesCudaModel *cm, float max_norm, float *norm);
int fast_adamw_step(MilesCudaModel *cm, float lr, const MilesAdamWConfig *cfg, int *skipped);
int fast_refresh_half(MilesCudaModel *cm);
int fast_sync_host(MilesCudaModel *cm);
int fast_set_step(MilesCudaModel *cm, int64_t t);
int fast_pool(MilesCudaModel *cm, float *out, int mean_pool);
int fast_download_last_hidden(MilesCudaModel *cm, float *out);
int fast_scale_head_grads(MilesCudaModel *cm);
size_t fast_device_bytes(const MilesCudaModel *cm);

/* AdamW hyper-parameters of a step in the kernels' form. */
static inline MilesCudaAdamW adamw_hp(const MilesAdamWConfig *cfg, float lr, int64_t step) {
    MilesCudaAdamW hp;
    hp.lr = lr;
    hp.beta1 = cfg->beta1;
    hp.beta2 = cfg->beta2;
    hp.eps = cfg->eps;
    hp.weight_decay = cfg->weight_decay;
    hp.step = step;
    return hp;
}

static inline MilesDropoutKey dkey(const MilesCudaModel *cm, float p, uint32_t id) {
    MilesDropoutKey k;
    k.p = cm->training ? p : 0.0f;
    k.seed = cm->drop_seed;
    k.step = cm->drop_step;
    k.tensor_id = id;
    return k;
}

#define S(cm) ((miles_cuda_stream)(cm)->stream)

static inline int zero(MilesCudaModel *cm, float *p, size_t n) {
    MILES_CUDA_TRY(cudaMemsetAsync(p, 0, n * sizeof(float), cm->stream));
    return MILES_OK;
}
static inline int copy_d2d(MilesCudaModel *cm, float *dst, const float *src, size_t n) {
    MILES_CUDA_TRY(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, cm->stream));
    return MILES_OK;
}

#endif
