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

#endif
