/*
 * loss.cu — weighted cross-entropy and MSE, separately (mirroring ops.h) and
 * fused into one launch each way for the Miles loss
 * 0.95*CE(class weights) + 0.05*MSE.
 *
 * Batches are small (B rows of K = 2 logits), so each kernel is ONE block:
 * per-row work is spread over its threads, sums go through a fixed-order
 * block reduction in double (the CPU accumulates in double too), and the
 * scalar results land in device memory — no host round trip.
 */
#include "common.cuh"

#include <math.h>

#define LOSS_THREADS 256

/* Softmax of row b into probs (CPU formula: fp32 exp, double sum, fp32
 * reciprocal), returning w[y]*(-log softmax[y]) in *num and w[y] in *den.
 * An out-of-range label gives NaN for both (the loss becomes NaN). */
__device__ void ce_row(double *num, double *den, float *probs, const float *logits,
                       const int32_t *labels, const float *cw, int b, int K) {
    const float *z = logits + (size_t)b * K;
    float *p = probs + (size_t)b * K;
    float mx = z[0];
    for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    double s = 0.0;
    for (int k = 0; k < K; k++) {
        p[k] = expf(z[k] - mx);
        s += p[k];
    }
    float inv = (float)(1.0 / s);
    for (int k = 0; k < K; k++) p[k] *= inv;
    int y = labels[b];
    if (y < 0 || y >= K) {
        *num = (double)NAN; /* nan(""): every CUDA compiler has NAN in device code */
        *den = (double)NAN;
        return;
    }
    double w = cw ? (double)cw[y] : 1.0;
    *num = w * (mx + log(s) - z[y]);
    *den = w;
}

__device__ __forceinline__ float class_w(const float *cw, const int32_t *labels, int b, int K) {
    int y = labels[b];
    if (y < 0 || y >= K) return __int_as_float(0x7fc00000); /* NaN */
    return cw ? cw[y] : 1.0f;
}

/* loss[0] = w_cls*CE + w_reg*MSE, loss[1] = CE, loss[2] = MSE (fused mode);
 * mode 1: CE only into loss[0]; mode 2: MSE only into loss[0]. */
__global__ void loss_forward_kernel(float *loss, float *probs, const float *logits,
                                    const int32_t *labels, const float *cw, const float *pred,
                                    const float *target, int B, int K, float w_cls, float w_reg,
                                    int mode) {
    __shared__ double sh[32];
    double num = 0.0, den = 0.0, sq = 0.0;
    for (int b = threadIdx.x; b < B; b += blockDim.x) {
        if (labels) {
            double n1, d1;
            ce_row(&n1, &d1, probs, logits, labels, cw, b, K);
            num += n1;
            den += d1;
        }
        if (target) {
            double d = (double)pred[b] - target[b];
            sq += d * d;
        }
    }
    num = miles_block_sum_d(num, sh);
    den = miles_block_sum_d(den, sh);
    sq = miles_block_sum_d(sq, sh);
    if (threadIdx.x == 0) {
        float ce = labels ? (float)(num / den) : 0.0f; /* empty batch: 0/0 = NaN, as PyTorch */
        float mse = target ? (float)(sq / B) : 0.0f;
        if (mode == 1) {
            loss[0] = ce;
        } else if (mode == 2) {
            loss[0] = mse;
        } else {
            loss[0] = w_cls * ce + w_reg * mse;
            loss[1] = ce;
            loss[2] = mse;
        }
    }
}

/* dlogits += scale_ce * w[y]/sum(w) * (p - onehot(y));
 * dpred += (2*scale_mse/B) * (pred - target) */
__global__ void loss_backward_kernel(float *dlogits, float *dpred, const float *probs,
                                     const int32_t *labels, const float *cw, const float *pred,
                                     const float *target, int B, int K, float scale_ce,
                                     float scale_mse) {
    __shared__ double sh[32];
    if (labels && dlogits) {
        double den = 0.0;
        for (int b = threadIdx.x; b < B; b += blockDim.x) den += class_w(cw, labels, b, K);
        den = miles_block_sum_d(den, sh);
        for (int b = threadIdx.x; b < B; b += blockDim.x) {
            int y = labels[b];
            float w = class_w(cw, labels, b, K);
            float g = (float)((double)(scale_ce * w) / den);
            const float *p = probs + (size_t)b * K;
            float *d = dlogits + (size_t)b * K;
            for (int k = 0; k < K; k++) d[k] += g * (p[k] - (k == y ? 1.0f : 0.0f));
        }
    }
    if (target && dpred) {
        float g = 2.0f * scale_mse / B;
        for (int b = threadIdx.x; b < B; b += blockDim.x) dpred[b] += g * (pred[b] - target[b]);
    }
}

static int loss_check(const char *fn, int B, int K) {
    if (B < 0 || K < 1) return miles_error(MILES_EINVAL, "%s: bad shape B=%d K=%d", fn, B, K);
    return MILES_OK;
}

extern "C" int crossentropy_forward_cuda(float *loss, float *probs, const float *logits,
                                         const int32_t *labels, const float *class_weight, int B,
                                         int K, miles_cuda_stream stream) {
    MILES_TRY(loss_check("crossentropy_forward_cuda", B, K));
    MILES_LAUNCH(loss_forward_kernel, 1, LOSS_THREADS, 0, miles_stream(stream),
                 loss, probs, logits, labels, class_weight, NULL, NULL, B, K, 1.0f, 0.0f, 1);
    return MILES_OK;
}

extern "C" int crossentropy_backward_cuda(float *dlogits, const float *probs,
                                          const int32_t *labels, const float *class_weight, int B,
                                          int K, float scale, miles_cuda_stream stream) {
    MILES_TRY(loss_check("crossentropy_backward_cuda", B, K));
    if (!dlogits || B == 0) return MILES_OK;
    MILES_LAUNCH(loss_backward_kernel, 1, LOSS_THREADS, 0, miles_stream(stream),
                 dlogits, NULL, probs, labels, class_weight, NULL, NULL, B, K, scale, 0.0f);
    return MILES_OK;
}

extern "C" int mse_forward_cuda(float *loss, const float *pred, const float *target, int B,
                                miles_cuda_stream stream) {
    MILES_TRY(loss_check("mse_forward_cuda", B, 1));
    MILES_LAUNCH(loss_forward_kernel, 1, LOSS_THREADS, 0, miles_stream(stream),
                 loss, NULL, NULL, NULL, NULL, pred, target, B, 1, 0.0f, 1.0f, 2);
    return MILES_OK;
}

extern "C" int mse_backward_cuda(float *dpred, const float *pred, const float *target, int B,
                                 float scale, miles_cuda_stream stream) {
    MILES_TRY(loss_check("mse_backward_cuda", B, 1));
    if (!dpred || B == 0) return MILES_OK;
    MILES_LAUNCH(loss_backward_kernel, 1, LOSS_THREADS, 0, miles_stream(stream),
                 NULL, dpred, NULL, NULL, NULL, pred, target, B, 1, 0.0f, scale);
    return MILES_OK;
}

extern "C" int miles_loss_forward_cuda(float *loss, float *probs, const float *logits,
                                       const int32_t *labels, const float *class_weight,
                                       const float *pred, const float *target, int B, int K,
                                       float w_cls, float w_reg, miles_cuda_stream stream) {
    MILES_TRY(loss_check("miles_loss_forward_cuda", B, K));
    MILES_LAUNCH(loss_forward_kernel, 1, LOSS_THREADS, 0, miles_stream(stream),
                 loss, probs, logits, labels, class_weight, pred, target, B, K, w_cls, w_reg, 0);
    return MILES_OK;
}

extern "C" int miles_loss_backward_cuda(float *dlogits, float *dpred, const float *probs,
                                        const int32_t *labels, const float *class_weight,
                                        const float *pred, const float *target, int B, int K,
                                        float w_cls, float w_reg, float scale,
                                        miles_cuda_stream stream) {
    MILES_TRY(loss_check("miles_loss_backward_cuda", B, K));
    if (B == 0) return MILES_OK;
    /* the same fp32 products the CPU composition passes as `scale` */
    float s_ce = scale * w_cls, s_mse = scale * w_reg;
    MILES_LAUNCH(loss_backward_kernel, 1, LOSS_THREADS, 0, miles_stream(stream),
                 dlogits, dpred, probs, labels, class_weight, pred, target, B, K, s_ce, s_mse);
    return MILES_OK;
}
