/*
 * optim_internal.h — the AdamW arithmetic shared by the plain optimizer
 * (optim.c) and the ZeRO-1 sharded one (dist_zero1.c), so both stay exactly
 * torch 1.13's _single_tensor_adamw and bit-identical to each other.
 */
#ifndef MILES_OPTIM_INTERNAL_H
#define MILES_OPTIM_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include "miles.h"

/* Per-step scalars, computed in double (Python floats) and rounded once. */
typedef struct MilesAdamWScalars {
    float b1, b2, one_minus_b1, one_minus_b2;
    float step_size;   /* lr / (1 - b1^t) */
    float bc2_sqrt;    /* sqrt(1 - b2^t) */
    float eps;
    float decay_mul;   /* 1 - lr * weight_decay (decayed tensors only) */
} MilesAdamWScalars;

void miles_adamw_scalars(const MilesAdamWConfig *cfg, int64_t t, float lr, MilesAdamWScalars *s);

/* THE parameter-group rule (CPU AdamW, ZeRO-1 and the CUDA optimizer all call
 * it): the lr multiplier of the tensor called `name` in a model of
 * `num_layers` encoder layers (MilesAdamWConfig.head_lr / layer_decay).  1.0
 * exactly when no group option is set, so single-group runs are unchanged. */
double miles_adamw_lr_scale(const MilesAdamWConfig *cfg, const char *name, int num_layers);
/* The learning rate tensor `scale` steps at: lr when scale is 1, else
 * (float)(lr * scale) in double (torch's group lr = base_lr_g * lambda). */
static inline float miles_adamw_group_lr(float lr, double scale) {
    return scale == 1.0 ? lr : (float)((double)lr * scale);
}
/* MILES_EINVAL unless the group options are valid (head_lr >= 0 finite, lr > 0
 * when head_lr is set, layer_decay in [0,1]). */
int miles_adamw_check_groups(const MilesAdamWConfig *cfg);

/* The one gradient-norm reduction (miles_clip_grad_norm, data parallel and
 * ZeRO-1): sum of x[i]^2 in double, in a fixed order that does not depend on
 * the thread count (fixed blocks summed in order). */
double miles_sum_squares(const float *x, size_t n);
/* clip_grad_norm_'s scaling given the total norm: g *= max_norm / (total +
 * 1e-6) when that factor is below 1. */
void miles_clip_apply(float *g, size_t n, float total, float max_norm);

/* One element: p *= dm; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= step_size * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
static inline void miles_adamw_update(float *p, float *m, float *v, float g, float dm,
                                      const MilesAdamWScalars *s) {
    float pi = *p * dm;
    float mi = *m * s->b1 + s->one_minus_b1 * g;
    float vi = *v * s->b2 + s->one_minus_b2 * (g * g);
    *m = mi;
    *v = vi;
    float denom = sqrtf(vi) / s->bc2_sqrt + s->eps;
    *p = pi - s->step_size * (mi / denom);
}

/* miles_adamw_update on elements [0,n) of P, M, V, G: the same bits, vectorized
 * (AVX-512 / AVX2 chosen at run time, scalar otherwise). */
void miles_adamw_update_range(float *P, float *M, float *V, const float *G, size_t n, float dm,
                              const MilesAdamWScalars *s);
/* Tests: run miles_adamw_update_range with "avx512", "avx2" or "scalar" (NULL:
 * the best the CPU has, the default).  -1 if the CPU lacks it.  Not
 * thread-safe. */
int miles_adamw_force_isa(const char *name);

#endif
