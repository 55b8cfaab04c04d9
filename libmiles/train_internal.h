/*
 * train_internal.h — the trainer's pieces (train.c: the loop; train_step.c:
 * batches and the optimizer step; train_eval.c: validation, early stopping,
 * the shared prediction loop; train_checkpoint.c: the checkpoint format) and
 * the data-parallel helpers of dist.c / dist_zero1.c.  Not installed; tests
 * may include it.
 *
 * Layering: the loop knows epochs, evaluations and checkpoints; everything
 * that touches the model or the optimizer goes through MilesTrainOps, a small
 * table of operations on the trainer's model/optimizer state.  The CPU
 * reference (miles_train_ops_cpu) is one implementation; a device backend is
 * another table with the same operations.
 */
#ifndef MILES_TRAIN_INTERNAL_H
#define MILES_TRAIN_INTERNAL_H

#include "internal.h"
#include "backend_internal.h"

/* ---------------------------------------------------------------- batches */

/* Reusable host buffers for one batch (grown, never shrunk). */
typedef struct MilesBatchBuf {
    int32_t *ids, *mask, *tt, *lab;
    float *feat, *vel;
    size_t cap_tok;
    int cap_rows;
} MilesBatchBuf;

/* Copy rows[0..nb) of d into bb as one batch, cut to its longest row (at most
 * max_len; 0 = no limit): the one place rows become a MilesBatch. */
int miles_batchbuf_fill(MilesBatchBuf *bb, const MilesDataset *d, const int64_t *rows, int nb, int max_len,
                        MilesBatch *out);
void miles_batchbuf_free(MilesBatchBuf *bb);

/* An eval-mode forward: logits [B,2] and velocity [B] of one batch. */
typedef int (*MilesForwardFn)(void *ctx, const MilesBatch *b, float *logits, float *velocity);
/* The one prediction loop (miles_predict_dataset, the trainer's validation,
 * the predictor): consecutive batches of batch_size rows through `fwd`;
 * p_viral = softmax P(viral) in fp32 (widened), velocity widened; either may
 * be NULL; progress (may be NULL) is called after each batch. */
int miles_predict_batches(MilesForwardFn fwd, void *ctx, const MilesDataset *d, int batch_size, int max_len,
                          double *p_viral, double *velocity, MilesProgressFn progress, void *user);

/* ---------------------------------------------------------------- state */

/* Everything the loop needs to continue exactly where it stopped. */
typedef struct MilesTrainState {
    int64_t step;        /* optimizer steps done */
    int epoch;           /* current epoch (0-based) */
    int cursor;          /* next micro-batch index within the epoch */
    int n_evals;
    int bad_evals;       /* evaluations since the last min_delta improvement */
    double best_es;      /* early-stopping reference AUROC */
    double best_auroc;   /* best validation AUROC (the "best" checkpoint) */
    int64_t best_step;
    double best_f1;
    double threshold;    /* F1-maximizing decision threshold of the best model */
    /* fp16 dynamic loss scaler (state JSON "loss_scale", "loss_scale_growth_tracker";
     * 0 / absent: none saved, a resume starts at the default 65536) */
    double loss_scale;
    int64_t loss_scale_growth;
} MilesTrainState;

/* What a checkpoint carries besides the model and the training state: the
 * serving contract (MILES_META_* keys; NULL fields are not written). */
typedef struct MilesCkptContract {
    const char *scaler_json;        /* MILES_META_SCALER */
    const char *tokenizer_hash;     /* MILES_META_TOKENIZER_HASH */
    const char *text_clean;         /* MILES_META_TEXT_CLEAN: "none" | "seed" */
    const char *vocab_dir;          /* MILES_META_VOCAB_DIR (absolute path, a hint) */
    const char *recipe;             /* MILES_META_RECIPE */
    const char *data_split;         /* MILES_META_DATA_SPLIT (JSON) */
    const MilesTokFiles *tokenizer; /* embedded as "tokenizer/<file>" tensors */
    /* MILES_META_VELOCITY_TARGET / _MEAN / _STD / _MIN / _MAX (NULL for min-max: key absent) */
    const char *velocity_target, *velocity_mean, *velocity_std, *velocity_min, *velocity_max;
} MilesCkptContract;

/* The velocity target's metadata strings (mean/std/range as %.17g), and back
 * (kind NULL = min-max; lo/hi both NULL = no clamp; MILES_EFORMAT for bad values). */
int miles_velocity_target_to_meta(const MilesVelocityTarget *t, char mean[32], char std[32], char lo[32],
                                  char hi[32]);
int miles_velocity_target_from_meta(MilesVelocityTarget *t, const char *kind, const char *mean, const char *std,
                                    const char *lo, const char *hi);

/* ---------------------------------------------------------------- trainer */

typedef struct MilesZero1 MilesZero1;

typedef struct MilesTrainer {
    const MilesTrainConfig *cfg;
    int prev_pooled_only;            /* the model's setting before the CPU trainer set it */
    MilesLossConfig loss;            /* cfg->loss with the class weights resolved */
    const MilesDataset *train, *val; /* val NULL: no validation */
    const MilesCkptContract *contract;
    /* model and optimizer state (the ops' business) */
    MilesModel *m;
    MilesAdamWConfig adamw;
    MilesAdamW *opt;                 /* full moments (one process, plain data parallelism) */
    MilesZero1 *zero;                /* this rank's shard of the moments (ZeRO-1) */
    MilesBackend be;                 /* the backend state (miles_train_ops_backend) */
    int64_t skipped;                 /* optimizer steps skipped (fp16 overflow) in this run */
    int step_cursor0;                /* cursor at the step's zero_grad (device data parallelism:
                                      * which micro-batch is the step's last) */
    /* logging (cfg->log_every): a device backend keeps loss and norm on the
     * device between STEP events (deferred: read_stats at the event) */
    int deferred, log_every;
    double log_loss;                 /* sum of the step losses since the last STEP event */
    int64_t log_steps;               /* steps since the last STEP event */
    float log_norm;                  /* the last step's gradient norm */
    double loss_scale;               /* the backend's loss scale as of the last read */
    /* data parallelism */
    MilesDist *dist;
    int rank, nrank;
    uint64_t drop_seed;              /* rank 0 keeps the single-process dropout masks */
    /* the loop */
    MilesTrainState st;
    int64_t steps_per_epoch, total_steps;
    int nbatch;                      /* micro-batches per epoch */
    int64_t *order;                  /* this epoch's example order */
    MilesBatchBuf bb;
    char last_path[4096], best_path[4096];
    double t0;
    int64_t examples;                /* seen in this run */
} MilesTrainer;

/* The model/optimizer operations of training (issue 14 makes this the
 * backend interface).  All return MILES_* statuses. */
typedef struct MilesTrainOps {
    /* build the optimizer state for t->m (AdamW, or ZeRO-1 shards) */
    int (*init)(MilesTrainer *t);
    void (*free)(MilesTrainer *t);
    /* one optimizer step's gradient: zero, then forward/backward of each
     * micro-batch with its loss weights and dropout key, scaled by loss_scale */
    void (*zero_grad)(MilesTrainer *t);
    int (*forward_backward)(MilesTrainer *t, const MilesBatch *b, const MilesLossConfig *loss, uint64_t drop_step,
                            float loss_scale, float *loss_out);
    /* sum the gradients over the ranks, clip to max_norm (inf: no clipping),
     * AdamW at lr; *grad_norm = the norm before clipping */
    int (*update)(MilesTrainer *t, float lr, float max_norm, float *grad_norm);
    /* eval-mode forward for validation */
    MilesForwardFn forward;
    /* checkpoints: rank 0 writes (collective: ZeRO-1 gathers the moments);
     * load reads on rank 0, then every rank gets rank 0's state (sync) */
    int (*save)(MilesTrainer *t, const char *path, int with_optimizer);
    int (*load)(MilesTrainer *t, const char *path);
    int (*sync)(MilesTrainer *t);
    /* MILES_EINTERNAL if the ranks' parameters differ (checked at checkpoints) */
    int (*check_replicas)(MilesTrainer *t);
    /* optional: bring the trained parameters back into t->m at the end */
    int (*finish)(MilesTrainer *t);
    /* optional, deferred statistics (t->deferred): at a STEP event, the loss
     * sum since the last one into t->log_loss, the last norm into
     * t->log_norm, t->skipped and t->loss_scale (one host sync) */
    int (*read_stats)(MilesTrainer *t);
} MilesTrainOps;
/* Data-parallel CPU training (collectives, ZeRO-1) on the host model. */
extern const MilesTrainOps miles_train_ops_cpu;
/* One process, any backend (backend_internal.h): cfg->device picks the CPU
 * reference or the CUDA backend; the CPU through it is bit-identical to
 * miles_train_ops_cpu. */
extern const MilesTrainOps miles_train_ops_backend;
/* Data parallel on a device backend (train_dp_device.c): one device per rank
 * (cuda:local_rank), gradients summed over the ranks in buckets during the
 * backward of each step's last micro-batch, rank 0 writes checkpoints. */
extern const MilesTrainOps miles_train_ops_backend_dp;
/* The device of this rank for cfg->device ("cuda" -> "cuda:<local rank>"),
 * or MILES_EUNSUPPORTED / MILES_EINVAL with one line. */
int miles_train_dp_device(const MilesTrainConfig *cfg, MilesDist *d, char *out, size_t cap);
/* One micro-batch's forward and backward on t->be (train_step.c): loss set,
 * dropout key, forward, the loss summed on the device when deferred, then
 * the backward, or the backend's dist_backward (its gradients reduced over
 * the ranks as they finish) when dist is set.  Both backend ops use it. */
int miles_train_be_forward_backward(MilesTrainer *t, const MilesBatch *b, const MilesLossConfig *loss,
                                    uint64_t drop_step, float loss_scale, float *loss_out, int dist);

/* train_step.c: the deterministic example order of an epoch, the schedule,
 * and one optimizer step (grad_accum micro-batches) through the ops. */
int miles_train_epoch_order(int64_t *order, const MilesDataset *d, uint64_t seed, int epoch, int batch,
                            int bucket);
double miles_train_lr(const MilesTrainConfig *c, int64_t step, int epoch, int64_t total_steps);
/* Micro-batches t->st.cursor.. of the current epoch order; advances the
 * cursor; *loss = the step's loss summed over the ranks' shares and
 * *grad_norm its norm (both NaN with t->deferred: they stay on the device). */
int miles_train_step(MilesTrainer *t, const MilesTrainOps *ops, int epoch, double *loss, double *lr,
                     float *grad_norm, int *stop_any);

/* train_eval.c */
typedef struct MilesEvalResult {
    double auroc, loss, vel_mae, f1, threshold;
} MilesEvalResult;
/* Validation of the current model (rank 0): predictions through ops->forward,
 * every metric from miles_metrics_compute (AUROC, best-F1 threshold, MAE,
 * log loss): loss = w_cls * log loss + w_reg * velocity MSE. */
int miles_train_evaluate(MilesTrainer *t, const MilesTrainOps *ops, MilesEvalResult *r);
/* Evaluate, update the early-stopping state, write best.safetensors on a new
 * best; *stop = patience ran out.  Rank 0 only. */
int miles_train_evaluate_and_save(MilesTrainer *t, const MilesTrainOps *ops, int *stop);
/* The bookkeeping of one evaluation's AUROC, as the original: early stopping
 * (EarlyStopping(patience, min_delta, mode='max'): the first evaluation sets
 * the reference, a later one resets the count only when it beats the
 * reference by more than min_delta; *stop once patience evaluations in a row
 * have not, patience 0 = never) and the best checkpoint (strictly above the
 * best so far, no delta; the return value, st->best_auroc updated).  A NaN
 * AUROC (a single-class split) is never an improvement. */
int miles_train_es_update(MilesTrainState *st, int patience, double min_delta, double auroc, int *stop);

/* train.c: the loop on datasets (miles_train_run is it on a prepared file's
 * splits, with the contract from the file) */
int miles_train_datasets(MilesModel *m, const MilesDataset *train, const MilesDataset *val,
                         const MilesCkptContract *contract, const MilesTrainConfig *cfg, MilesTrainResult *res);
/* Hand an event to cfg->callback (rank 0 only); its status stops training. */
int miles_train_emit(MilesTrainer *t, MilesTrainEvent *ev);
void miles_train_event_init(const MilesTrainer *t, int type, MilesTrainEvent *ev);

/* train_checkpoint.c: the format.  Parameters (+ AdamW moments when opt) +
 * state + config + contract, written atomically. */
int miles_ckpt_save(const char *path, MilesModel *m, MilesAdamW *opt, const MilesTrainState *st,
                    const MilesTrainConfig *cfg, const MilesLossConfig *loss, const MilesCkptContract *contract);
/* Restore parameters, moments and state from a "last" checkpoint. */
int miles_ckpt_load_state(const char *path, MilesModel *m, MilesAdamW *opt, MilesTrainState *st);
/* The embedded tokenizer files of a checkpoint (pointers into its mapping,
 * valid while c is open; MILES_EMISSING if none): the HF export copies them. */
int miles_checkpoint_tokenizer_files(const MilesCheckpoint *c, MilesTokFiles *f);
/* State JSON of a checkpoint -> *st (tests read "step" from it). */
int miles_ckpt_parse_state(const char *json, MilesTrainState *st, int64_t *adam_steps);
/* The checkpoint's scaler metadata, when present, parses as the predictor
 * parses it (the exports copy it: they must not accept what predict refuses). */
int miles_ckpt_check_scaler(const MilesCheckpoint *c);
/* The checkpoint's MILES_META_DATA_SPLIT when it is a JSON object (the exports
 * copy it raw), else NULL (absent, or not JSON: nothing open validated it). */
const char *miles_ckpt_data_split(const MilesCheckpoint *c);

/* ---------------------------------------------------------------- dist.c */

int miles_dist_barrier(MilesDist *d);
/* Base and length of the parameter (which 0) or gradient (which 1) block. */
int miles_dist_model_block(const MilesModel *m, int which, float **base, size_t *n);
/* Broadcast parameters, AdamW moments + step count and *st from rank 0 (opt, st may be NULL). */
int miles_dist_sync_train(MilesDist *d, MilesModel *m, MilesAdamW *opt, MilesTrainState *st);
/* Sum the gradients over all ranks, in place. */
int miles_dist_reduce_grads(MilesDist *d, MilesModel *m);
/* MILES_EINTERNAL if any rank's parameters differ (bitwise) from rank 0's. */
int miles_dist_check_same_params(MilesDist *d, const MilesModel *m, int64_t step);

/* ZeRO-1 (dist_zero1.c): AdamW whose moments are split across the ranks in
 * contiguous ranges of the parameter block; each rank keeps 2/N of the moment
 * memory.  A step reduce-scatters the gradients, clips with the global norm,
 * updates this rank's parameter range (the same arithmetic as
 * miles_adamw_step) and all-gathers the parameters. */
int miles_zero1_build(MilesZero1 **out, MilesDist *d, MilesModel *m, const MilesAdamWConfig *cfg);
void miles_zero1_free(MilesZero1 *z);
int miles_zero1_step(MilesZero1 *z, float lr, float max_norm, float *grad_norm);
/* Collective.  Rank 0 gets *full = a new MilesAdamW holding all the moments
 * (for a checkpoint; the caller frees it); other ranks' *full is untouched. */
int miles_zero1_gather(MilesZero1 *z, MilesAdamW **full);
/* Collective.  Rank 0 passes a MilesAdamW holding all the moments (read from
 * a checkpoint), the others NULL: each rank keeps its range. */
int miles_zero1_scatter(MilesZero1 *z, MilesAdamW *full);

#endif
