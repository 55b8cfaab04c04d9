/*
 * backend_cpu.c — the CPU reference as a backend (backend_internal.h): the
 * model functions of model_forward.c / model_backward.c and the optimizer of
 * optim.c on the host model itself.  The calls and their order are exactly
 * what the trainer made before the backend table existed, so training through
 * this table is bit-identical to the CPU reference (tests/test_backend.c).
 */
#include <math.h>

#include "backend_internal.h"
#include "internal.h"
#include "model_internal.h"
#include "model_infer.h"

typedef struct CpuState {
    MilesModel *m;     /* the host model: the CPU computes in it */
    MilesAdamW *opt;   /* NULL without an optimizer */
    int infer;         /* built for inference (no optimizer): eval forwards run the
                        * inference engine (model_infer.c) at `precision` */
    MilesPrecision precision;
} CpuState;

/* The CPU's precisions are decided in backend.c (miles_backend_check). */
static const char *cpu_probe(int index, MilesPrecision p, int training) { return NULL; }

static int cpu_build(void **state, const MilesBackendBuild *b) {
    *state = NULL;
    if (!b || !b->host) return miles_error(MILES_EINVAL, "cpu backend: no host model");
    CpuState *s = miles_calloc(1, sizeof *s);
    if (!s) return MILES_ENOMEM;
    s->m = b->host;
    if (b->with_optimizer) {
        int rc = miles_adamw_build(&s->opt, s->m, &b->adamw);
        if (rc != MILES_OK) { free(s); return rc; }
    } else {
        /* inference: weights fused/converted once here (fp32 gives the reference's bits) */
        s->infer = 1;
        s->precision = b->precision;
        /* an engine at this precision stays attached to the model until its
         * weights change (load, init, AdamW, write_params drop it): reuse it */
        int rc = s->m->infer && miles_infer_precision(s->m->infer) == b->precision
                     ? MILES_OK : miles_model_set_precision(s->m, b->precision);
        if (rc != MILES_OK) { free(s); return rc; }
    }
    *state = s;
    return MILES_OK;
}

static void cpu_free(void *state) {
    CpuState *s = state;
    if (!s) return;
    miles_adamw_free(s->opt);
    free(s);
}

static int cpu_set_loss(void *state, const MilesLossConfig *loss) {
    miles_model_set_loss(((CpuState *)state)->m, loss);
    return MILES_OK;
}

static void cpu_set_dropout_key(void *state, uint64_t seed, uint64_t step) {
    miles_model_set_dropout_key(((CpuState *)state)->m, seed, step);
}

static int cpu_zero_grad(void *state) {
    miles_model_zero_grad(((CpuState *)state)->m);
    return MILES_OK;
}

static int cpu_forward(void *state, const MilesBatch *b, int training, float *logits, float *velocity, float *loss) {
    CpuState *s = state;
    if (s->infer && !training && !loss) {
        /* the engine is dropped when the weights change: build it again */
        if (!s->m->infer) MILES_TRY(miles_model_set_precision(s->m, s->precision));
        return miles_infer_forward(s->m->infer, b, logits, velocity);
    }
    return miles_model_forward(s->m, b, training, logits, velocity, loss);
}

static int cpu_backward(void *state, float loss_scale) {
    return miles_model_backward(((CpuState *)state)->m, loss_scale);
}

static int cpu_clip(void *state, float max_norm, float *norm) {
    float n = miles_clip_grad_norm(((CpuState *)state)->m, max_norm);
    if (norm) *norm = n;
    return MILES_OK;
}

static int cpu_adamw_step(void *state, float lr, int *skipped) {
    CpuState *s = state;
    if (!s->opt) return miles_error(MILES_EINVAL, "cpu backend: built without an optimizer");
    if (skipped) *skipped = 0;
    return miles_adamw_step(s->opt, lr);
}

static float cpu_loss_scale(void *state) { return 1.0f; }

/* Same configuration: the same parameter count and table (the block layout). */
static int copy_params(const MilesModel *src, MilesModel *dst) {
    if (src == dst) return MILES_OK;
    if (miles_model_num_params(src) != miles_model_num_params(dst) ||
        miles_model_num_tensors(src) != miles_model_num_tensors(dst))
        return miles_error(MILES_ESHAPE, "cpu backend: models of different configurations (%zu vs %zu parameters)",
                           miles_model_num_params(src), miles_model_num_params(dst));
    miles_model_drop_infer(dst); /* its engine holds copies of the old weights */
    memcpy(dst->params, src->params, sizeof(float) * src->nparams);
    return MILES_OK;
}

static int cpu_read_params(void *state, MilesModel *dst) { return copy_params(((CpuState *)state)->m, dst); }
static int cpu_write_params(void *state, const MilesModel *src) { return copy_params(src, ((CpuState *)state)->m); }

static int cpu_read_optim(void *state, float *m, float *v, int64_t *t) {
    CpuState *s = state;
    if (!s->opt) return miles_error(MILES_EINVAL, "cpu backend: built without an optimizer");
    size_t n = miles_model_num_params(s->m);
    if (m && m != miles_adamw_m(s->opt)) memcpy(m, miles_adamw_m(s->opt), sizeof(float) * n);
    if (v && v != miles_adamw_v(s->opt)) memcpy(v, miles_adamw_v(s->opt), sizeof(float) * n);
    if (t) *t = miles_adamw_steps(s->opt);
    return MILES_OK;
}

static int cpu_write_optim(void *state, const float *m, const float *v, int64_t t) {
    CpuState *s = state;
    if (!s->opt) return miles_error(MILES_EINVAL, "cpu backend: built without an optimizer");
    size_t n = miles_model_num_params(s->m);
    if (m && m != miles_adamw_m(s->opt)) memcpy(miles_adamw_m(s->opt), m, sizeof(float) * n);
    if (v && v != miles_adamw_v(s->opt)) memcpy(miles_adamw_v(s->opt), v, sizeof(float) * n);
    miles_adamw_set_steps(s->opt, t);
    return MILES_OK;
}

static int cpu_forward_embeds(void *state, const MilesBatch *b, const float *word_emb, float *logits,
                              float *velocity) {
    return miles_model_forward_embeds(((CpuState *)state)->m, b, word_emb, 0, logits, velocity, NULL);
}

static int cpu_backward_inputs(void *state, const float *dlogits, const float *dvelocity, float *dword,
                               float *dfeatures) {
    MilesModel *m = ((CpuState *)state)->m;
    MILES_TRY(miles_model_backward_from_outputs(m, dlogits, dvelocity, 0));
    return miles_model_input_grads(m, dword, dfeatures);
}

const MilesBackendOps miles_backend_cpu = {
    .abi = MILES_BACKEND_ABI,
    .name = "cpu",
    .probe = cpu_probe,
    .build = cpu_build,
    .free = cpu_free,
    .set_loss = cpu_set_loss,
    .set_dropout_key = cpu_set_dropout_key,
    .zero_grad = cpu_zero_grad,
    .forward = cpu_forward,
    .backward = cpu_backward,
    .clip = cpu_clip,
    .adamw_step = cpu_adamw_step,
    .loss_scale = cpu_loss_scale,
    .read_params = cpu_read_params,
    .write_params = cpu_write_params,
    .read_optim = cpu_read_optim,
    .write_optim = cpu_write_optim,
    .last_error = miles_last_error,
    .forward_embeds = cpu_forward_embeds,
    .backward_inputs = cpu_backward_inputs,
};

MilesAdamW *miles_backend_cpu_adamw(void *state) { return state ? ((CpuState *)state)->opt : NULL; }
