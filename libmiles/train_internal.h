/*
 * train_internal.h — trainer pieces shared by train.c, train_checkpoint.c and
 * the tests (not installed).
 */
#ifndef MILES_TRAIN_INTERNAL_H
#define MILES_TRAIN_INTERNAL_H

#include "miles.h"

/* Reusable host buffers for one batch (grown, never shrunk). */
typedef struct MilesBatchBuf {
    int32_t *ids, *mask, *tt, *lab;
    float *feat, *vel;
    size_t cap_tok;
    int cap_rows;
} MilesBatchBuf;

/* Copy rows[0..nb) of d into bb, padded to the longest row (<= max_len). */
int miles_batchbuf_fill(MilesBatchBuf *bb, const MilesTrainData *d, const int *rows, int nb,
                        int max_len, MilesBatch *out);
void miles_batchbuf_free(MilesBatchBuf *bb);

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
} MilesTrainState;

typedef struct MilesEvalResult {
    double auroc, loss, vel_mae, f1, threshold;
} MilesEvalResult;

void miles_train_epoch_order(int *order, const MilesTrainData *d, uint64_t seed, int epoch,
                             int batch, int bucket);
double miles_train_lr(const MilesTrainConfig *c, int64_t step, int epoch, int64_t total_steps);
int miles_train_evaluate(MilesModel *m, const MilesTrainData *val, int max_len,
                         const MilesLossConfig *lc, MilesEvalResult *r);

/* Metric hooks used during training (thin wrappers over the metrics module). */
int miles_train_auroc(const float *probs, const int32_t *labels, int n, double *auroc);
int miles_train_best_f1(const float *probs, const int32_t *labels, int n, double *threshold, double *f1);

/* Checkpoint: parameters (+ AdamW moments when opt != NULL) and metadata. */
int miles_ckpt_save(const char *path, MilesModel *m, MilesAdamW *opt, const MilesTrainState *st,
                    const MilesTrainConfig *cfg);
/* Restore parameters, moments and state from a "last" checkpoint. */
int miles_ckpt_load_state(const char *path, MilesModel *m, MilesAdamW *opt, MilesTrainState *st);

/* dist.c: the trainer's side of data parallelism (one rank: no-ops). */
/* Base and length of the parameter (which 0) or gradient (which 1) block. */
int miles_dist_model_block(const MilesModel *m, int which, float **base, size_t *n);
/* Broadcast parameters, AdamW moments + step count and *st from rank 0 (opt, st may be NULL). */
int miles_dist_sync_train(MilesDist *d, MilesModel *m, MilesAdamW *opt, MilesTrainState *st);
/* Sum the gradients over all ranks, in place. */
int miles_dist_reduce_grads(MilesDist *d, MilesModel *m);
/* MILES_EINTERNAL if any rank's parameters differ (bitwise) from rank 0's. */
int miles_dist_check_same_params(MilesDist *d, const MilesModel *m, int64_t step);
/* The MPI communicator (an MPI_Comm *), or NULL for a 1-rank handle. */
void *miles_dist_comm(MilesDist *d);

/* ZeRO-1 (dist_zero1.c): AdamW whose moments are split across the ranks in
 * contiguous ranges of the parameter block; each rank keeps 2/N of the moment
 * memory.  A step reduce-scatters the gradients, clips with the global norm,
 * updates this rank's parameter range (the same arithmetic as
 * miles_adamw_step) and all-gathers the parameters. */
typedef struct MilesZero1 MilesZero1;
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
