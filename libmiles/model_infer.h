/*
 * model_infer.h — the inference-only forward (model_infer.c), internal.
 *
 * A MilesInfer is built once from a model and a precision (miles.h:
 * miles_model_set_precision) and then scores batches with no per-call
 * allocation: fused QKV weights [3H,H], the big encoder weights pre-packed
 * (bf16/int8: gemm_lowp.h; fp32: the own GEMM's panels, gemm_internal.h), a workspace grown only when a batch needs
 * more, and attention over each sequence's real length only (padding after
 * the last real token is never computed).  In fp32 its outputs are
 * bit-identical to miles_model_forward(training = 0) on the same batch with
 * the own GEMM (tests/test_infer.c).  The engine snapshots the QKV weights:
 * the model drops it whenever its weights are replaced (load, init, AdamW).
 */
#ifndef MILES_MODEL_INFER_H
#define MILES_MODEL_INFER_H

#include "internal.h"

typedef struct MilesInfer MilesInfer;

int miles_infer_build(MilesInfer **out, const MilesModel *m, MilesPrecision prec);
void miles_infer_free(MilesInfer *e);
MilesPrecision miles_infer_precision(const MilesInfer *e);
/* Eval-mode outputs of the batch: logits [B,2], velocity [B] (either may be NULL). */
int miles_infer_forward(MilesInfer *e, const MilesBatch *b, float *logits, float *velocity);

/* Forget the engine (the weights changed). */
void miles_model_drop_infer(MilesModel *m);

#endif
