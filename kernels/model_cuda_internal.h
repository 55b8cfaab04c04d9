/*
 * model_cuda_internal.h — the MilesCudaModel struct and small helpers shared by
 * kernels/model_cuda.cu (layouts, batch packing, forward, backward) and
 * kernels/model_cuda_state.cu (build/free, optimizer, loss scaler, weights
 * in/out).  Not installed; the API is kernels/model_cuda.h.
 */
#ifndef MILES_MODEL_CUDA_INTERNAL_H
#define MILES_MODEL_CUDA_INTERNAL_H

#ifdef MILES_CUDA_HOST_EMULATION
/* tests/cuda/cuda_emu.h: the CUDA runtime calls and the *_cuda ops emulated
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

/* The batch as copied to the device: the same layout in the pinned staging
 * buffer and at the start of the device arena, so one memcpy moves it. */
typedef struct {
    int32_t *ids, *tt, *mask, *labels;  /* [N] [N] [N] [B] */
    float *features, *vel_target;       /* [B,F] [B] */
    int32_t *uniq, *offs, *pos;         /* word-embedding CSR: [U] ids, [U+1], [N] token indices */
    int32_t *tt_offs, *tt_pos;          /* token-type CSR: [TV+1], [N] */
} Inputs;

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
    /* small pinned block for read-backs */
    void *hsmall;
    float *hloss, *hnorm;
    MilesLossScalerState *hscaler;      /* [2]: before and after the update */

    /* loss scaler (fp16) */
    int use_scaler;
    int f16_guard;                      /* cuBLAS does not turn fp16 overflow into Inf: range-check */
    float scale;                        /* host mirror of dscaler->scale */
    float growth, backoff;
    int interval;
    int grads_unscaled;

    int64_t t;                          /* AdamW steps taken */

    /* last forward */
    int fwd_valid, B, T, training, has_attd, have_labels, have_vel;
};

/* Math mode of the model for the duration of a call (the mode is process-wide). */
struct MathScope {
    int old;
    explicit MathScope(int mode) { old = miles_cuda_get_math(); if (old != mode) miles_cuda_set_math(mode); }
    ~MathScope() { if (miles_cuda_get_math() != old) miles_cuda_set_math(old); }
};

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
