/*
 * cuda_emu_ops.cpp — the *_cuda ops of kernels/cuda_ops.h that the model
 * driver calls, implemented with the CPU reference ops of the same name (the
 * kernels' documented semantics), plus transcriptions of adamw.cu's and
 * model_cuda.cu's own kernels.  Linked only into the host-emulation test
 * programs (see kernels/cuda_emu.h); never into libmiles_cuda.a.
 */
#include "cuda_emu.h"

extern "C" {
#include "miles.h"
}

#include <math.h>

long g_emu_live_allocs = 0;
static int g_math = 0;

/* ------------------------------------------------- emulated cuda_ops.h */
extern "C" {
int miles_cuda_init(int) { return MILES_OK; }
void miles_cuda_shutdown(void) {}
int miles_cuda_device_count(void) { return 1; }
int miles_cuda_compute_capability(void) { return 90; }
int miles_cuda_require_bf16(void) { return MILES_OK; }
int miles_cuda_set_math(int mode) {
    int old = g_math;
    g_math = mode;
    return old;
}
int miles_cuda_get_math(void) { return g_math; }
/* the CPU ops compute in fp32: an fp16 overflow never happens here */
int miles_cuda_f16_overflow_probe(void) { return 1; }
void miles_cuda_set_f16_overflow_flag(int32_t *) {}

#define ST miles_cuda_stream
int dropout_forward_cuda(float *o, const float *i, size_t n, MilesDropoutKey k, ST) { return dropout_forward(o, i, n, k), 0; }
int dropout_backward_cuda(float *d, const float *o, size_t n, MilesDropoutKey k, ST) { return dropout_backward(d, o, n, k), 0; }
int embedding_forward_cuda(float *out, const int32_t *ids, const int32_t *tt, const float *wte, const float *wpe,
                           const float *wtt, int B, int T, int C, ST) {
    embedding_forward(out, ids, tt, wte, wpe, wtt, B, T, C);
    return 0;
}
int layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                           int N, int C, float eps, ST) {
    layernorm_forward(out, mean, rstd, inp, w, b, N, C, eps);
    return 0;
}
int layernorm_backward_cuda(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                            const float *mean, const float *rstd, int N, int C, ST) {
    layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    return 0;
}
int residual_layernorm_forward_cuda(float *res, float *out, float *mean, float *rstd, const float *a,
                                    const float *b, const float *w, const float *bias, int N, int C, float eps,
                                    ST) {
    residual_forward(res, a, b, (size_t)N * C);
    layernorm_forward(out, mean, rstd, res, w, bias, N, C, eps);
    return 0;
}
int linear_forward_cuda(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC, ST) {
    linear_forward(out, inp, w, b, N, C, OC);
    return 0;
}
int linear_backward_cuda(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                         int N, int C, int OC, ST) {
    linear_backward(dinp, dw, db, dout, inp, w, N, C, OC);
    return 0;
}
int attention_forward_cuda(float *out, float *att, float *attd, const float *q, const float *k, const float *v,
                           const int32_t *mask, int B, int T, int C, int NH, MilesDropoutKey key, ST) {
    attention_forward(out, att, attd, q, k, v, mask, B, T, C, NH, key);
    return 0;
}
int attention_backward_cuda(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *att,
                            const float *attd, const float *q, const float *k, const float *v, int B, int T, int C,
                            int NH, MilesDropoutKey key, ST) {
    attention_backward(dq, dk, dv, scratch, dout, att, attd, q, k, v, B, T, C, NH, key);
    return 0;
}
int gelu_forward_cuda(float *o, const float *i, size_t n, ST) { return gelu_forward(o, i, n), 0; }
int gelu_backward_cuda(float *d, const float *i, const float *o, size_t n, ST) { return gelu_backward(d, i, o, n), 0; }
int relu_forward_cuda(float *o, const float *i, size_t n, ST) { return relu_forward(o, i, n), 0; }
int relu_backward_cuda(float *d, const float *o, const float *g, size_t n, ST) { return relu_backward(d, o, g, n), 0; }
int tanh_forward_cuda(float *o, const float *i, size_t n, ST) { return tanh_forward(o, i, n), 0; }
int tanh_backward_cuda(float *d, const float *o, const float *g, size_t n, ST) { return tanh_backward(d, o, g, n), 0; }
int sigmoid_forward_cuda(float *o, const float *i, size_t n, ST) { return sigmoid_forward(o, i, n), 0; }
int sigmoid_backward_cuda(float *d, const float *o, const float *g, size_t n, ST) {
    return sigmoid_backward(d, o, g, n), 0;
}
int cls_pool_forward_cuda(float *o, const float *i, int B, int T, int C, ST) { return cls_pool_forward(o, i, B, T, C), 0; }
int cls_pool_backward_cuda(float *d, const float *g, int B, int T, int C, ST) {
    return cls_pool_backward(d, g, B, T, C), 0;
}
int mean_pool_forward_cuda(float *o, const float *i, const int32_t *m, int B, int T, int C, ST) {
    return mean_pool_forward(o, i, m, B, T, C), 0;
}
int mean_pool_backward_cuda(float *d, const float *g, const int32_t *m, int B, int T, int C, ST) {
    return mean_pool_backward(d, g, m, B, T, C), 0;
}
int concat_forward_cuda(float *o, const float *a, const float *b, int B, int C1, int C2, ST) {
    return concat_forward(o, a, b, B, C1, C2), 0;
}
int concat_backward_cuda(float *da, float *db, const float *g, int B, int C1, int C2, ST) {
    return concat_backward(da, db, g, B, C1, C2), 0;
}
int crossentropy_forward_cuda(float *loss, float *probs, const float *logits, const int32_t *labels,
                              const float *cw, int B, int K, ST) {
    loss[0] = crossentropy_forward(probs, logits, labels, cw, B, K);
    return 0;
}
int crossentropy_backward_cuda(float *dl, const float *probs, const int32_t *labels, const float *cw, int B, int K,
                               float scale, ST) {
    crossentropy_backward(dl, probs, labels, cw, B, K, scale);
    return 0;
}
int mse_forward_cuda(float *loss, const float *pred, const float *target, int B, ST) {
    loss[0] = mse_forward(pred, target, B);
    return 0;
}
int mse_backward_cuda(float *d, const float *pred, const float *target, int B, float scale, ST) {
    mse_backward(d, pred, target, B, scale);
    return 0;
}
/* adamw.cu's kernels, transcribed */
int clip_grad_norm_cuda(float *g, size_t n, float max_norm, float *norm, float *, ST) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * (double)g[i];
    norm[0] = (float)sqrt(ss);
    float coef = max_norm / (norm[0] + 1e-6f);
    if (coef < 1.0f)
        for (size_t i = 0; i < n; i++) g[i] *= coef;
    return 0;
}
int adamw_step_cuda(float *P, const float *G, float *M, float *V, const uint8_t *decay, size_t n,
                    MilesCudaAdamW hp, const float *grad_scale, const int32_t *found_inf, ST) {
    if (found_inf && *found_inf) return 0;
    const double b1 = hp.beta1, b2 = hp.beta2;
    const double bc1 = 1.0 - pow(b1, (double)hp.step), bc2 = 1.0 - pow(b2, (double)hp.step);
    const float fb1 = (float)b1, fb2 = (float)b2, omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
    const float step_size = (float)((double)hp.lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float decay_mul = (float)(1.0 - (double)hp.lr * (double)hp.weight_decay);
    for (size_t i = 0; i < n; i++) {
        float g = grad_scale ? G[i] * *grad_scale : G[i];
        float dm = (!decay || decay[i]) ? decay_mul : 1.0f;
        float p = P[i] * dm;
        float mi = M[i] * fb1 + omb1 * g;
        float vi = V[i] * fb2 + omb2 * (g * g);
        M[i] = mi;
        V[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + hp.eps;
        P[i] = p - step_size * (mi / denom);
    }
    return 0;
}
int adamw_step_dev_cuda(float *P, const float *G, float *M, float *V, const uint8_t *decay, size_t n,
                        MilesCudaAdamW hp, const int64_t *step_dev, const int32_t *found_inf, miles_cuda_stream stream) {
    hp.step = *step_dev + 1; /* the device's counter */
    return adamw_step_cuda(P, G, M, V, decay, n, hp, NULL, found_inf, stream);
}
int scale_device_cuda(float *x, size_t n, const float *s1, const float *s2, miles_cuda_stream stream) {
    const float s = s1[0] * (s2 ? s2[0] : 1.0f);
    for (size_t i = 0; i < n; i++) x[i] *= s;
    return 0;
}
int loss_scaler_init_cuda(MilesLossScalerState *st, float init, ST) {
    st->scale = init;
    st->inv_scale = (float)(1.0 / (double)init);
    st->growth_tracker = 0;
    st->found_inf = 0;
    return 0;
}
int amp_unscale_check_cuda(float *g, size_t n, MilesLossScalerState *st, ST) {
    float inv = st->inv_scale;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(g[i])) st->found_inf = 1;
        g[i] = inv == 1.0f ? g[i] : g[i] * inv;
    }
    return 0;
}
int loss_scaler_update_cuda(MilesLossScalerState *st, float growth, float backoff, int interval, ST) {
    if (st->found_inf) {
        st->scale *= backoff;
        st->growth_tracker = 0;
    } else if (++st->growth_tracker == interval) {
        float ns = st->scale * growth;
        if (isfinite(ns)) st->scale = ns;
        st->growth_tracker = 0;
    }
    st->inv_scale = (float)(1.0 / (double)st->scale);
    st->found_inf = 0;
    return 0;
}
int loss_scaler_update_count_cuda(MilesLossScalerState *st, float growth, float backoff, int interval,
                                  MilesCudaTrainStats *stats, miles_cuda_stream stream) {
    if (st->found_inf) stats->skipped += 1;
    else stats->steps += 1;
    return loss_scaler_update_cuda(st, growth, backoff, interval, stream);
}
int train_stats_add_loss_cuda(MilesCudaTrainStats *st, const float *l, float w_cls, float w_reg, int have_cls,
                              int have_reg, float divisor, ST) {
    volatile float L = 0.0f; /* the kernel's rounding: no FMA */
    if (have_cls) { volatile float p = w_cls * l[0]; L = L + p; }
    if (have_reg) { volatile float p = w_reg * l[1]; L = L + p; }
    st->loss_sum += (double)(L / divisor);
    return 0;
}
int train_stats_count_skip_cuda(MilesCudaTrainStats *st, const MilesCudaOptState *opt, ST) {
    st->skipped += opt->last_skipped != 0;
    return 0;
}
} /* extern "C" */

/* model_cuda.cu's CSR kernels, transcribed (thread (u, c) loops its token list) */
int miles_cuda_embedding_backward_csr(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                      const int32_t *uniq, int U, const int32_t *offs, const int32_t *pos,
                                      const int32_t *tt_offs, const int32_t *tt_pos, int TV, int B, int T, int C,
                                      cudaStream_t) {
    for (int u = 0; u < U; u++)
        for (int c = 0; c < C; c++) {
            float g = dwte[(size_t)uniq[u] * C + c];
            for (int j = offs[u]; j < offs[u + 1]; j++) g += dout[(size_t)pos[j] * C + c];
            dwte[(size_t)uniq[u] * C + c] = g;
        }
    for (int y = 0; y < TV; y++)
        for (int c = 0; c < C; c++) {
            float g = dwtt[(size_t)y * C + c];
            for (int j = tt_offs[y]; j < tt_offs[y + 1]; j++) g += dout[(size_t)tt_pos[j] * C + c];
            dwtt[(size_t)y * C + c] = g;
        }
    for (size_t i = 0; i < (size_t)T * C; i++) {
        float g = dwpe[i];
        for (int b = 0; b < B; b++) g += dout[(size_t)b * T * C + i];
        dwpe[i] = g;
    }
    return MILES_OK;
}

