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

#endif
