/*
 * train_dp_device.c — data-parallel training on a device backend (issue 14):
 * `mpirun -np N miles-train --device cuda`.
 *
 * One device per rank: "cuda" is cuda:<local rank> (an explicit cuda:N only
 * with one rank per node).  Each rank trains its contiguous share of every
 * global micro-batch with the loss weights scaled to its share (train_step.c,
 * the same arithmetic as the CPU data parallelism), through the one-process
 * backend operations (miles_train_ops_backend).  What differs:
 *   - the backward of a step's LAST micro-batch is the backend's dist_backward:
 *     the gradient block, cut into fixed buckets, is summed over the ranks by
 *     the backend's own collectives (NCCL on a communication stream) as the
 *     backward finishes each bucket, overlapping the rest of the backward;
 *     earlier micro-batches only accumulate (as DDP's no_sync);
 *   - before clipping, dist_finish queues what no backward reduced (a rank
 *     without rows) and takes the max of the fp16 overflow flag over the
 *     ranks, so every rank clips the same summed gradient and skips the same
 *     steps;
 *   - MPI (MilesDist) carries the control: the NCCL id, the start/resume
 *     state broadcast from rank 0 (parameters, moments, loss scale, training
 *     state), agreement on errors, the replica hash at checkpoints;
 *   - rank 0 alone evaluates and writes checkpoints (the one-process format).
 */
#include "internal.h"
#include "train_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int miles_train_dp_device(const MilesTrainConfig *cfg, MilesDist *d, char *out, size_t cap) {
    int is_cuda = 0, idx = 0;
    MILES_TRY(miles_device_parse(cfg->device, &is_cuda, &idx));
    if (!is_cuda) return miles_error(MILES_EINVAL, "device '%s' is not a GPU", cfg->device ? cfg->device : "cpu");
    const int lrank = miles_dist_local_rank(d), lsize = miles_dist_local_size(d);
    const int named = strchr(cfg->device, ':') != NULL;
    if (named && lsize > 1)
        return miles_error(MILES_EINVAL, "--device %s names one GPU, but %d ranks run on this node: use --device cuda "
                                         "(local rank r takes cuda:r)", cfg->device, lsize);
    char last[32];
    const MilesBackendOps *ops = NULL;
    int i = 0, dev = named ? idx : lrank, bound = 0;
    /* A launcher that binds one GPU per task (srun --gpus-per-task=1, or a
     * wrapper setting CUDA_VISIBLE_DEVICES per rank) leaves each rank fewer
     * visible devices than local ranks: then rank r takes visible device
     * r mod count (NCCL itself refuses two ranks on one GPU). */
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (!named && vis && *vis) {
        int nvis = 0;
        while (nvis < lsize) {
            snprintf(last, sizeof last, "cuda:%d", nvis);
            if (miles_backend_find(last, cfg->precision, 1, &ops, &i) != MILES_OK) break;
            nvis++;
        }
        if (nvis > 0 && nvis < lsize) {
            dev = lrank % nvis;
            bound = 1;
        }
    }
    /* otherwise every local rank needs its own device: the highest one must exist */
    snprintf(last, sizeof last, "cuda:%d", named || bound ? dev : lsize - 1);
    if (miles_backend_find(last, cfg->precision, 1, &ops, &i) != MILES_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", miles_last_error());
        return miles_error(MILES_EUNSUPPORTED, "%d rank(s) on this node need %d CUDA device(s), one per rank: %s",
                           lsize, named ? idx + 1 : lsize, why);
    }
    if (!ops->dist_attach || !ops->dist_backward || !ops->dist_finish)
        return miles_error(MILES_EUNSUPPORTED, "the %s backend has no data parallelism", ops->name);
    snprintf(out, cap, "cuda:%d", dev);
    return MILES_OK;
}

static int st_(MilesTrainer *t, int s) { return miles_backend_status(t->be.ops, s); }

static int dp_init(MilesTrainer *t) {
    char dev[32];
    t->step_cursor0 = -1;
    if (t->cfg->zero1)
        return miles_error(MILES_EUNSUPPORTED, "ZeRO-1 (--zero1) shards the CPU optimizer only; on GPUs every rank "
                                               "keeps the whole AdamW state");
    int s = miles_train_dp_device(t->cfg, t->dist, dev, sizeof dev);
    if (s == MILES_OK) s = miles_backend_open(&t->be, dev, t->cfg->precision, t->m, &t->adamw);
    /* agreed before the collective below, so no rank waits in it alone */
    MILES_TRY(miles_dist_agree(t->dist, s));
    MILES_TRY(st_(t, t->be.ops->dist_attach(t->be.state, t->dist, 0)));
    /* the buffers for the largest share of a micro-batch any rank gets, now:
     * a buffer that grew in a step would synchronize that rank's host alone
     * (the SIMT emulator's NCCL, which runs as MPI calls when its stream
     * runs, would then meet the trainer's MPI calls out of order: a
     * deadlock), and a step is meant to make no synchronization at all */
    if (t->be.ops->reserve) {
        int bmax = (t->cfg->batch_size + t->nrank - 1) / t->nrank, tmax = t->train->max_len;
        if (t->cfg->max_len > 0 && t->cfg->max_len < tmax) tmax = t->cfg->max_len;
        s = st_(t, t->be.ops->reserve(t->be.state, bmax, tmax > 0 ? tmax : 1));
        MILES_TRY(miles_dist_agree(t->dist, s));
    }
    /* as one process on the device (be_init): loss, norm, skip count and
     * loss scale stay on the device until a STEP event reads them (log_step
     * then sums the ranks' loss shares); nothing is read back in a step */
    t->deferred = t->be.ops->add_loss && t->be.ops->read_stats;
    t->loss_scale = t->be.ops->loss_scale(t->be.state);
    return MILES_OK;
}

static void dp_free(MilesTrainer *t) {
    /* a step that ended in an error: queue the buckets this rank still owes,
     * so every rank issued the same collectives before the communicator goes */
    if (t->be.ops && t->step_cursor0 >= 0) t->be.ops->dist_finish(t->be.state);
    t->step_cursor0 = -1;
    miles_train_ops_backend.free(t);
}

static void dp_zero_grad(MilesTrainer *t) {
    t->step_cursor0 = t->st.cursor;
    miles_train_ops_backend.zero_grad(t);
}

static int dp_forward_backward(MilesTrainer *t, const MilesBatch *b, const MilesLossConfig *loss,
                               uint64_t drop_step, float loss_scale, float *loss_out) {
    /* train_step advanced the cursor past this micro-batch already; the
     * loss is this rank's share (deferred: summed on its device) */
    const int last = t->st.cursor - t->step_cursor0 >= t->cfg->grad_accum || t->st.cursor >= t->nbatch;
    return miles_train_be_forward_backward(t, b, loss, drop_step, loss_scale, loss_out, last);
}

static int dp_update(MilesTrainer *t, float lr, float max_norm, float *grad_norm) {
    int s = st_(t, t->be.ops->dist_finish(t->be.state));
    t->step_cursor0 = -1;
    MILES_TRY(s);
    /* clip and AdamW as one process: deferred (grad_norm NULL), the norm,
     * the fp16 skip decision (the overflow flag is already the max over the
     * ranks) and the step counter stay on the device.  Nothing waits for the
     * communication stream here: the STEP event's read_stats drains it on
     * every rank before anything reads the model (evaluation on rank 0,
     * checkpoints), so the emulator's NCCL, which runs there as MPI calls,
     * never interleaves with rank 0's evaluation. */
    return miles_train_ops_backend.update(t, lr, max_norm, grad_norm);
}

static int dp_save(MilesTrainer *t, const char *path, int with_optimizer) {
    return t->rank == 0 ? miles_train_ops_backend.save(t, path, with_optimizer) : MILES_OK;
}

static int dp_load(MilesTrainer *t, const char *path) {
    /* rank 0 reads the file; dp_sync hands its state to the others */
    int s = t->rank == 0 ? miles_train_ops_backend.load(t, path) : MILES_OK;
    return miles_dist_agree(t->dist, s);
}

/* Every rank starts from rank 0's parameters, moments, step count, loss
 * scale and training state (host copies over MPI, once per run). */
static int dp_sync(MilesTrainer *t) {
    const MilesBackendOps *o = t->be.ops;
    void *bs = t->be.state;
    int s = t->opt ? MILES_OK : miles_adamw_build(&t->opt, t->m, &t->adamw);
    if (s == MILES_OK && t->rank == 0) {
        int64_t steps = 0;
        float scale = 0.0f;
        int32_t growth = 0;
        s = st_(t, o->read_params(bs, t->m));
        if (s == MILES_OK) s = st_(t, o->read_optim(bs, miles_adamw_m(t->opt), miles_adamw_v(t->opt), &steps));
        if (s == MILES_OK) miles_adamw_set_steps(t->opt, steps);
        if (s == MILES_OK && o->read_scaler) s = st_(t, o->read_scaler(bs, &scale, &growth));
        t->st.loss_scale = scale;
        t->st.loss_scale_growth = growth;
    }
    s = miles_dist_agree(t->dist, s);
    if (s == MILES_OK) s = miles_dist_sync_train(t->dist, t->m, t->opt, &t->st);
    if (s == MILES_OK && t->rank != 0) {
        s = st_(t, o->write_params(bs, t->m));
        if (s == MILES_OK)
            s = st_(t, o->write_optim(bs, miles_adamw_m(t->opt), miles_adamw_v(t->opt), miles_adamw_steps(t->opt)));
        if (s == MILES_OK && o->write_scaler && t->st.loss_scale > 0)
            s = st_(t, o->write_scaler(bs, (float)t->st.loss_scale, (int32_t)t->st.loss_scale_growth));
    }
    return miles_dist_agree(t->dist, s);
}

static int dp_check_replicas(MilesTrainer *t) {
    int s = st_(t, t->be.ops->read_params(t->be.state, t->m));
    s = miles_dist_agree(t->dist, s);
    return s == MILES_OK ? miles_dist_check_same_params(t->dist, t->m, t->st.step) : s;
}

/* validation on rank 0 and the trained weights at the end: as one process */
static int dp_forward(void *ctx, const MilesBatch *b, float *logits, float *velocity) {
    return miles_train_ops_backend.forward(ctx, b, logits, velocity);
}
static int dp_finish(MilesTrainer *t) { return miles_train_ops_backend.finish(t); }
/* the STEP event's read (one host sync); log_step sums the loss shares */
static int dp_read_stats(MilesTrainer *t) { return miles_train_ops_backend.read_stats(t); }

const MilesTrainOps miles_train_ops_backend_dp = {
    .init = dp_init,
    .free = dp_free,
    .zero_grad = dp_zero_grad,
    .forward_backward = dp_forward_backward,
    .update = dp_update,
    .forward = dp_forward,
    .save = dp_save,
    .load = dp_load,
    .sync = dp_sync,
    .check_replicas = dp_check_replicas,
    .finish = dp_finish,
    .read_stats = dp_read_stats,
};
