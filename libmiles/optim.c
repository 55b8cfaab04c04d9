/*
 * optim.c — AdamW (torch.optim.AdamW semantics), gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_) and the HF learning-rate schedules.
 */

#include "optim_internal.h"
#include "model_internal.h"
#include "model_infer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MILES_ADAMW_X86 1
#endif

struct MilesAdamW {
    MilesModel *model;
    MilesAdamWConfig cfg;
    float *m, *v;                 /* [num_params] each, same layout as params */
    double *scale;                /* [ntensors] lr multiplier (parameter groups) */
    MilesAdamWScalars *sc;        /* [ntensors] this step's scalars */
    int64_t t;                    /* steps taken */
};

int miles_adamw_check_groups(const MilesAdamWConfig *cfg) {
    if (!(cfg->head_lr >= 0.0f) || !isfinite(cfg->head_lr) || !(cfg->layer_decay >= 0.0f && cfg->layer_decay <= 1.0f))
        return miles_error(MILES_EINVAL, "adamw: head lr %g must be >= 0 and layer decay %g in [0,1]",
                           (double)cfg->head_lr, (double)cfg->layer_decay);
    if (cfg->head_lr > 0.0f && !(cfg->lr > 0.0f))
        return miles_error(MILES_EINVAL, "adamw: a head lr (%g) needs a positive base lr (got %g): the group's "
                           "multiplier is head_lr / lr", (double)cfg->head_lr, (double)cfg->lr);
    return MILES_OK;
}

/* Encoder tensors are the "bert." ones (HF names); everything else was created
 * fresh for Miles.  Layer-wise decay follows the usual LLRD layering: id 0 =
 * embeddings, 1..L = encoder layers, L+1 = top (pooler and new layers), scale
 * decay^(L+1-id); the new layers then take head_lr instead when it is set. */
double miles_adamw_lr_scale(const MilesAdamWConfig *cfg, const char *name, int num_layers) {
    const int llrd = cfg->layer_decay > 0.0f && cfg->layer_decay < 1.0f;
    if (strncmp(name, "bert.", 5) != 0)
        return cfg->head_lr > 0.0f && cfg->lr > 0.0f ? (double)cfg->head_lr / (double)cfg->lr : 1.0;
    if (!llrd) return 1.0;
    const double d = cfg->layer_decay;
    if (!strncmp(name, "bert.embeddings.", 16)) return pow(d, (double)(num_layers + 1));
    int l = -1;
    if (sscanf(name, "bert.encoder.layer.%d.", &l) == 1 && l >= 0 && l < num_layers)
        return pow(d, (double)(num_layers - l));
    return 1.0; /* pooler */
}

int miles_adamw_build(MilesAdamW **out, MilesModel *model, const MilesAdamWConfig *cfg) {
    if (!out || !model || !cfg) return miles_error(MILES_EINVAL, "miles_adamw_build: NULL argument");
    *out = NULL;
    if (!(cfg->lr >= 0.0f) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) ||
        !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) || !(cfg->eps >= 0.0f) ||
        !(cfg->weight_decay >= 0.0f))
        return miles_error(MILES_EINVAL,
                           "adamw: invalid hyper-parameters (lr %g, betas %g/%g, eps %g, weight decay %g)",
                           (double)cfg->lr, (double)cfg->beta1, (double)cfg->beta2, (double)cfg->eps,
                           (double)cfg->weight_decay);
    MILES_TRY(miles_adamw_check_groups(cfg));
    MilesAdamW *o = miles_calloc(1, sizeof *o);
    if (!o) return MILES_ENOMEM;
    o->model = model;
    o->cfg = *cfg;
    o->m = miles_aligned_alloc(model->nparams * sizeof(float));
    o->v = miles_aligned_alloc(model->nparams * sizeof(float));
    o->scale = miles_calloc((size_t)model->ntensors + 1, sizeof(double));
    o->sc = miles_calloc((size_t)model->ntensors + 1, sizeof(MilesAdamWScalars));
    if (o->scale)
        for (int i = 0; i < model->ntensors; i++)
            o->scale[i] = miles_adamw_lr_scale(cfg, model->tensors[i].name, model->cfg.num_hidden_layers);
    if (!o->m || !o->v || !o->scale || !o->sc) {
        miles_adamw_free(o);
        return miles_error(MILES_ENOMEM, "adamw: cannot allocate moments for %zu parameters",
                           model->nparams);
    }
    *out = o;
    return MILES_OK;
}

void miles_adamw_free(MilesAdamW *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o->scale);
    free(o->sc);
    free(o);
}

void miles_adamw_scalars(const MilesAdamWConfig *cfg, int64_t t, float lr, MilesAdamWScalars *s) {
    const double b1 = cfg->beta1, b2 = cfg->beta2;
    s->b1 = (float)b1;
    s->b2 = (float)b2;
    s->one_minus_b1 = (float)(1.0 - b1);
    s->one_minus_b2 = (float)(1.0 - b2);
    s->step_size = (float)((double)lr / (1.0 - pow(b1, (double)t)));
    s->bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)t));
    s->eps = cfg->eps;
    s->decay_mul = (float)(1.0 - (double)lr * (double)cfg->weight_decay);
}

/* ------------------------------------------------ the AdamW update, vectorized
 * miles_adamw_update on n consecutive elements.  The vector versions do the
 * same IEEE single-precision operations in the same order per element (mul,
 * add, sqrt, div: each correctly rounded, none fused: the library is built
 * -std=c11, FP contraction off, and the intrinsics below are explicit), so
 * every lane gives miles_adamw_update's bits; only the speed differs.  The
 * scalar loop is not vectorized by the compiler (sqrtf's errno path and
 * possible aliasing): with two divisions per element it was ~10% of a
 * bert-base B32 T32 train step (bench_model phases). */
typedef void (*AdamwRangeFn)(float *P, float *M, float *V, const float *G, size_t n, float dm,
                             const MilesAdamWScalars *s);

static void adamw_range_scalar(float *P, float *M, float *V, const float *G, size_t n, float dm,
                               const MilesAdamWScalars *s) {
    for (size_t i = 0; i < n; i++) miles_adamw_update(&P[i], &M[i], &V[i], G[i], dm, s);
}

#ifdef MILES_ADAMW_X86
/* One body for every vector width: VT is the vector type, PFX the intrinsic
 * prefix (_mm512 / _mm256), W the lanes.  The tail (n % W) runs the scalar
 * update, which gives the same bits. */
#define ADAMW_RANGE_VEC(NAME, TARGET, VT, PFX, W)                                                        \
    __attribute__((target(TARGET))) static void NAME(float *P, float *M, float *V, const float *G,      \
                                                     size_t n, float dm, const MilesAdamWScalars *s) {   \
        const VT vdm = PFX##_set1_ps(dm), b1 = PFX##_set1_ps(s->b1), b2 = PFX##_set1_ps(s->b2);          \
        const VT ob1 = PFX##_set1_ps(s->one_minus_b1), ob2 = PFX##_set1_ps(s->one_minus_b2);             \
        const VT bc2 = PFX##_set1_ps(s->bc2_sqrt), eps = PFX##_set1_ps(s->eps);                          \
        const VT st = PFX##_set1_ps(s->step_size);                                                       \
        size_t i = 0;                                                                                    \
        for (; i + (W) <= n; i += (W)) {                                                                 \
            VT g = PFX##_loadu_ps(G + i);                                                                \
            VT pi = PFX##_mul_ps(PFX##_loadu_ps(P + i), vdm);                                            \
            VT mi = PFX##_add_ps(PFX##_mul_ps(PFX##_loadu_ps(M + i), b1), PFX##_mul_ps(ob1, g));         \
            VT vi = PFX##_add_ps(PFX##_mul_ps(PFX##_loadu_ps(V + i), b2),                                \
                                 PFX##_mul_ps(ob2, PFX##_mul_ps(g, g)));                                 \
            PFX##_storeu_ps(M + i, mi);                                                                  \
            PFX##_storeu_ps(V + i, vi);                                                                  \
            VT denom = PFX##_add_ps(PFX##_div_ps(PFX##_sqrt_ps(vi), bc2), eps);                          \
            PFX##_storeu_ps(P + i, PFX##_sub_ps(pi, PFX##_mul_ps(st, PFX##_div_ps(mi, denom))));         \
        }                                                                                                \
        adamw_range_scalar(P + i, M + i, V + i, G + i, n - i, dm, s);                                    \
    }
ADAMW_RANGE_VEC(adamw_range_avx512, "avx512f", __m512, _mm512, 16)
ADAMW_RANGE_VEC(adamw_range_avx2, "avx2", __m256, _mm256, 8)
#undef ADAMW_RANGE_VEC
#endif

static AdamwRangeFn adamw_range_fn(void) {
#ifdef MILES_ADAMW_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return adamw_range_avx512;
    if (__builtin_cpu_supports("avx2")) return adamw_range_avx2;
#endif
    return adamw_range_scalar;
}

static AdamwRangeFn g_adamw_fn; /* idempotent init: a race stores the same pointer twice */

int miles_adamw_force_isa(const char *name) {
    if (!name) {
        g_adamw_fn = adamw_range_fn();
        return 0;
    }
    if (!strcmp(name, "scalar")) {
        g_adamw_fn = adamw_range_scalar;
        return 0;
    }
#ifdef MILES_ADAMW_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f")) {
        g_adamw_fn = adamw_range_avx512;
        return 0;
    }
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2")) {
        g_adamw_fn = adamw_range_avx2;
        return 0;
    }
#endif
    return -1;
}

void miles_adamw_update_range(float *P, float *M, float *V, const float *G, size_t n, float dm,
                              const MilesAdamWScalars *s) {
    if (!g_adamw_fn) g_adamw_fn = adamw_range_fn();
    g_adamw_fn(P, M, V, G, n, dm, s);
}

/* Mirrors torch 1.13 _single_tensor_adamw:
 *   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
 *   denom = sqrt(v)/sqrt(1-b2^t) + eps;  p -= lr/(1-b1^t) * m/denom
 * Scalars are computed in double (Python floats) and rounded to float once. */
int miles_adamw_step(MilesAdamW *o, float lr) {
    if (!o) return miles_error(MILES_EINVAL, "miles_adamw_step: optimizer is NULL");
    if (!(lr >= 0.0f) || !isfinite(lr))
        return miles_error(MILES_EINVAL, "adamw: learning rate %g is invalid", (double)lr);
    MilesModel *mdl = o->model;
    miles_model_drop_infer(mdl); /* its fused weights would be stale */
    ++o->t;
    /* per tensor: its group's lr (torch computes step_size and the decay
     * factor per param group from the group's lr) */
    for (int ti = 0; ti < mdl->ntensors; ti++)
        miles_adamw_scalars(&o->cfg, o->t, miles_adamw_group_lr(lr, o->scale[ti]), &o->sc[ti]);
    const int decay_all = o->cfg.decay_all;
    float *P = mdl->params, *G = mdl->grads, *M = o->m, *V = o->v;
    const MilesAdamWScalars *SC = o->sc;
    /* element-wise: any split over threads gives the same bits; chunks of
     * 4096 keep the vector loop long and the split even */
    const size_t CH = 4096;
#pragma omp parallel
    for (int ti = 0; ti < mdl->ntensors; ti++) {
        const MilesTensor *tn = &mdl->tensors[ti];
        const size_t off = tn->offset, n = tn->numel, nch = (n + CH - 1) / CH;
        const MilesAdamWScalars *sc = &SC[ti];
        const float dm = (decay_all || tn->decay) ? sc->decay_mul : 1.0f;
#pragma omp for schedule(static) nowait
        for (size_t c = 0; c < nch; c++) {
            size_t i0 = off + c * CH, len = n - c * CH < CH ? n - c * CH : CH;
            miles_adamw_update_range(P + i0, M + i0, V + i0, G + i0, len, dm, sc);
        }
    }
    return MILES_OK;
}

int64_t miles_adamw_steps(const MilesAdamW *o) { return o ? o->t : 0; }
float *miles_adamw_m(MilesAdamW *o) { return o ? o->m : NULL; }
float *miles_adamw_v(MilesAdamW *o) { return o ? o->v : NULL; }
void miles_adamw_set_steps(MilesAdamW *o, int64_t t) {
    if (o && t >= 0) o->t = t;
}

/* torch.nn.utils.clip_grad_norm_ (norm_type 2): total = ||all grads||_2,
 * coef = min(max_norm / (total + 1e-6), 1); grads *= coef.  Sum in double. */
float miles_clip_grad_norm(MilesModel *mdl, float max_norm) {
    if (!mdl) return 0.0f;
    float total = (float)sqrt(miles_sum_squares(mdl->grads, mdl->nparams));
    miles_clip_apply(mdl->grads, mdl->nparams, total, max_norm);
    return total;
}

/* Blocks of 4096 elements: each block's sum is one sequential loop in double,
 * and the block sums are added in block order.  The threads only decide who
 * computes which block, never the order of any addition, so the result is the
 * same for every thread count (and with or without OpenMP). */
#define SS_BLOCK 4096
/* One block's sum, one sequential loop in double (the order that defines the
 * result). */
static double ss_block(const float *x, size_t n, size_t b) {
    double s = 0.0;
    for (size_t i = b * SS_BLOCK, e = i + SS_BLOCK < n ? i + SS_BLOCK : n; i < e; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}
/* SS_GROUP full blocks b0.. at once: each block keeps its own sequential sum
 * in the same order as ss_block (so the same bits), but the SS_GROUP chains
 * are independent, so the loop runs at the adds' throughput instead of one
 * dependent double add (4 cycles) per element: 3x less time for the norm of
 * a bert-base gradient (bench_model's clip phase). */
#define SS_GROUP 8
static void ss_group(const float *x, size_t b0, double *part) {
    double s[SS_GROUP] = {0};
    const float *xb = x + b0 * SS_BLOCK;
    for (size_t i = 0; i < SS_BLOCK; i++)
        for (int j = 0; j < SS_GROUP; j++) {
            double v = (double)xb[(size_t)j * SS_BLOCK + i];
            s[j] += v * v;
        }
    for (int j = 0; j < SS_GROUP; j++) part[b0 + j] = s[j];
}
double miles_sum_squares(const float *x, size_t n) {
    const size_t nb = (n + SS_BLOCK - 1) / SS_BLOCK;
    double stack[64], *part = nb <= 64 ? stack : malloc(sizeof(double) * nb);
    double ss = 0.0;
    if (!part) { /* no memory for the partials: the same additions, one thread */
        for (size_t b = 0; b < nb; b++) ss += ss_block(x, n, b);
        return ss;
    }
    const size_t ng = (n / SS_BLOCK) / SS_GROUP; /* groups of full blocks */
#pragma omp parallel for schedule(static) if (nb > 16)
    for (size_t g = 0; g < ng; g++) ss_group(x, g * SS_GROUP, part);
    for (size_t b = ng * SS_GROUP; b < nb; b++) part[b] = ss_block(x, n, b);
    for (size_t b = 0; b < nb; b++) ss += part[b];
    if (part != stack) free(part);
    return ss;
}

void miles_clip_apply(float *g, size_t n, float total, float max_norm) {
    float coef = max_norm / (total + 1e-6f);
    if (coef < 1.0f) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) g[i] *= coef;
    }
}

/* HF transformers optimization.py lambdas (LambdaLR passes the 0-based step):
 *   warmup (all kinds): step < warmup -> step / max(1, warmup)
 *   constant: 1
 *   linear:   max(0, (total - step) / max(1, total - warmup))
 *   cosine:   progress = (step - warmup) / max(1, total - warmup);
 *             max(0, 0.5 * (1 + cos(pi * 2 * num_cycles * progress))), num_cycles 0.5 */
double miles_lr_lambda(int kind, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    switch (kind) {
    case MILES_SCHED_LINEAR: {
        double den = (double)(total - warmup > 1 ? total - warmup : 1);
        double r = (double)(total - step) / den;
        return r > 0.0 ? r : 0.0;
    }
    case MILES_SCHED_COSINE: {
        double den = (double)(total - warmup > 1 ? total - warmup : 1);
        double progress = (double)(step - warmup) / den;
        double r = 0.5 * (1.0 + cos(3.14159265358979323846 * 2.0 * 0.5 * progress));
        return r > 0.0 ? r : 0.0;
    }
    default:
        return 1.0;
    }
}
