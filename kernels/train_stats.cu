/*
 * train_stats.cu — the trainer's statistics kept on the device between log
 * intervals (docs/gpu.md "No host syncs in the step"): the running sum of the
 * step losses and the count of skipped fp16 steps.  One thread each: they
 * run once per micro-batch / step and exist only so that nothing in a step
 * has to read a value back to the host.
 */
#include "common.cuh"

/* sum += (w_cls * l[0] + w_reg * l[1]) / divisor, the terms present only when
 * the batch had them; rounded as the host computes it (float products, float
 * sum, float quotient, widened), no contraction into an FMA. */
__global__ void train_stats_add_loss_kernel(MilesCudaTrainStats *st, const float *l, float w_cls, float w_reg,
                                            int have_cls, int have_reg, float divisor) {
    float L = 0.0f;
    if (have_cls) L = __fadd_rn(L, __fmul_rn(w_cls, l[0]));
    if (have_reg) L = __fadd_rn(L, __fmul_rn(w_reg, l[1]));
    st->loss_sum += (double)__fdiv_rn(L, divisor);
}

extern "C" int train_stats_add_loss_cuda(MilesCudaTrainStats *st, const float *loss2, float w_cls, float w_reg,
                                         int have_cls, int have_reg, float divisor, miles_cuda_stream stream) {
    if (!st || !loss2 || !(divisor > 0.0f))
        return miles_error(MILES_EINVAL, "train_stats_add_loss_cuda: bad argument (divisor %g)", (double)divisor);
    MILES_LAUNCH(train_stats_add_loss_kernel, 1, 1, 0, miles_stream(stream), st, loss2, w_cls, w_reg, have_cls,
                 have_reg, divisor);
    return MILES_OK;
}

/* skipped += the fused optimizer's verdict on the step it just took */
__global__ void train_stats_count_skip_kernel(MilesCudaTrainStats *st, const MilesCudaOptState *opt) {
    st->skipped += opt->last_skipped != 0;
}

extern "C" int train_stats_count_skip_cuda(MilesCudaTrainStats *st, const MilesCudaOptState *opt,
                                           miles_cuda_stream stream) {
    if (!st || !opt) return miles_error(MILES_EINVAL, "train_stats_count_skip_cuda: NULL argument");
    MILES_LAUNCH(train_stats_count_skip_kernel, 1, 1, 0, miles_stream(stream), st, opt);
    return MILES_OK;
}
