/*
 * backend_internal.h — the backend interface: a small table of operations on
 * an opaque model/optimizer state (in the spirit of ggml's backends).  The
 * CPU reference (backend_cpu.c) is one implementation; the CUDA backend
 * (kernels/backend_cuda.cpp, built as its own shared object libmiles_cuda.so
 * and loaded by backend.c with dlopen) is the other.  The trainer (through
 * miles_train_ops_backend, train_step.c), the validation and the predictor
 * call these operations; no training loop or activation layout is repeated
 * per backend.
 *
 * The table is plain C over miles.h types only, so that a separately built
 * shared object can provide it: the CUDA object carries its own copy of the
 * libmiles internals it needs (linked from libmiles.a, symbols hidden), hence
 * errors come back through last_error(), which backend.c copies into this
 * library's message (miles_backend_status).
 */
#ifndef MILES_BACKEND_INTERNAL_H
#define MILES_BACKEND_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "miles.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the table, MilesBackendBuild or any miles.h struct that
 * crosses it (MilesModel's layout included: the object is built from the same
 * sources) changes; a backend object of another ABI is refused. */
#define MILES_BACKEND_ABI 5 /* 2: read_scaler / write_scaler; 3: add_loss / read_stats / host_syncs; 4: dist_*;
                             * 5: reserve */

/* What a device backend keeps on the device between log intervals (the
 * trainer reads it only when it logs: no host synchronization in a step). */
typedef struct MilesBackendStats {
    double loss_sum;           /* sum of loss / divisor over the add_loss calls since the last read */
    float grad_norm;           /* the last clip's norm (before clipping); NaN before any */
    float loss_scale;          /* the dynamic loss scale now (1 without loss scaling) */
    int64_t skipped;           /* optimizer steps skipped (fp16 Inf/NaN) since build */
    int64_t steps;             /* AdamW steps taken (the device counter) */
} MilesBackendStats;

typedef struct MilesBackendBuild {
    MilesModel *host;          /* configuration, parameter table and weights (copied by a device backend;
                                * the CPU backend computes in it) */
    MilesPrecision precision;
    int device_index;          /* cuda:N */
    int with_optimizer;        /* build the AdamW state (training) */
    MilesAdamWConfig adamw;
} MilesBackendBuild;

typedef struct MilesBackendOps {
    int abi;                   /* MILES_BACKEND_ABI */
    const char *name;          /* "cpu", "cuda" */
    /* Why this backend cannot run on device_index here (one line), or NULL
     * when it can; precision/training as in miles_device_check. */
    const char *(*probe)(int device_index, MilesPrecision precision, int training);
    int (*build)(void **state, const MilesBackendBuild *b);
    void (*free)(void *state);
    int (*set_loss)(void *state, const MilesLossConfig *loss);
    void (*set_dropout_key)(void *state, uint64_t seed, uint64_t step);
    int (*zero_grad)(void *state);
    /* logits [B,2], velocity [B], loss: host outputs, each may be NULL */
    int (*forward)(void *state, const MilesBatch *b, int training, float *logits, float *velocity, float *loss);
    /* accumulate d(loss_scale * loss)/dtheta (fp16: times the dynamic scale) */
    int (*backward)(void *state, float loss_scale);
    /* clip_grad_norm_ (max_norm = inf: none); *norm = the norm before clipping */
    int (*clip)(void *state, float max_norm, float *norm);
    /* AdamW at lr; fp16: a step with Inf/NaN gradients is skipped (*skipped = 1) */
    int (*adamw_step)(void *state, float lr, int *skipped);
    float (*loss_scale)(void *state);   /* 1 when there is no loss scaling */
    /* parameters device <-> host model (same configuration) */
    int (*read_params)(void *state, MilesModel *dst);
    int (*write_params)(void *state, const MilesModel *src);
    /* AdamW moments [num_params] (either may be NULL) and steps taken */
    int (*read_optim)(void *state, float *m, float *v, int64_t *t);
    int (*write_optim)(void *state, const float *m, const float *v, int64_t t);
    /* The backend's message for its last failed call (this thread). */
    const char *(*last_error)(void);
    /* The dynamic loss scaler (fp16) for checkpoints: *scale = 0 when there is
     * none.  Either may be NULL (the CPU: no loss scaling). */
    int (*read_scaler)(void *state, float *scale, int32_t *growth_tracker);
    int (*write_scaler)(void *state, float scale, int32_t growth_tracker);
    /* Data parallelism, one device per rank (NULL: this backend has none;
     * the CUDA one uses NCCL, kernels/dist_nccl.h).  dist_attach: collective
     * over the ranks of d: the communicator, gradient buckets of bucket_bytes
     * (0: $MILES_NCCL_BUCKET_MB or 25 MB).  dist_backward: backward that sums
     * each bucket over the ranks as soon as the backward has finished it (the
     * step's last micro-batch).  dist_finish (collective, before clip): the
     * buckets no dist_backward reduced this step (a rank without rows), the
     * max of the fp16 overflow flag over the ranks (all skip together). */
    int (*dist_attach)(void *state, MilesDist *d, size_t bucket_bytes);
    int (*dist_backward)(void *state, float loss_scale);
    int (*dist_finish)(void *state);
    /* Deferred statistics (docs/gpu.md "No host syncs in the step"); NULL for
     * the CPU, whose trainer reads every loss at once (reads are free there).
     * add_loss: after a training forward, the device's loss sum +=
     * (that forward's loss) / divisor, with no host round trip; the forward
     * then gets loss = NULL, clip norm = NULL, adamw_step skipped = NULL.
     * read_stats: one synchronization; returns the sum and resets it. */
    int (*add_loss)(void *state, float divisor);
    int (*read_stats)(void *state, MilesBackendStats *st);
    /* Host synchronizations (stream/device/event waits, blocking copies,
     * device-to-host copies) the backend has made so far, or -1 when it
     * cannot count them: the SIMT emulator build counts (tests assert 0
     * between log intervals); a real CUDA build returns -1.  *last (may be
     * NULL) = the API call of the last one.  May be NULL. */
    long (*host_syncs)(const char **last);
    /* Explanations (integrated gradients, explain.c): an eval-mode forward
     * with word_emb [B,T,H] in place of wte[input_ids] (miles.h
     * miles_model_forward_embeds), and its backward from d target / d logits
     * [B,2] and d target / d velocity [B] (either NULL = 0) to dword [B,T,H]
     * and dfeatures [B,F] (either may be NULL; backward_from_outputs +
     * input_grads).  MILES_EUNSUPPORTED with the reason where the backend or
     * its precision cannot. */
    int (*forward_embeds)(void *state, const MilesBatch *b, const float *word_emb, float *logits, float *velocity);
    int (*backward_inputs)(void *state, const float *dlogits, const float *dvelocity, float *dword,
                           float *dfeatures);
    /* Allocate now what training micro-batches of up to max_batch rows x
     * max_len tokens need, so that no later step allocates (on CUDA a
     * growth synchronizes the host: with data parallelism one rank would
     * wait alone).  May be NULL (the CPU: nothing to reserve). */
    int (*reserve)(void *state, int max_batch, int max_len);
} MilesBackendOps;

/* Integrated gradients (miles_explain_ig) with the forward and backward of a
 * backend state (ops NULL: the host model m itself, as miles_explain_ig).
 * m supplies the configuration and the word-embedding table, so it must hold
 * the backend's weights (the predictor's host copy does). */
int miles_explain_ig_on(MilesModel *m, const MilesBackendOps *ops, void *state, const MilesBatch *batch,
                        const MilesExplainConfig *cfg, MilesExplanation **out);

/* The CPU reference (backend_cpu.c). */
extern const MilesBackendOps miles_backend_cpu;
/* The CPU state's own AdamW (host memory; checkpoints use it directly). */
MilesAdamW *miles_backend_cpu_adamw(void *state);

/* The entry point a backend object exports (libmiles_cuda.so):
 * returns its table, or NULL when abi differs from its own. */
typedef const MilesBackendOps *(*MilesBackendEntry)(int abi);
#define MILES_BACKEND_CUDA_ENTRY "miles_backend_cuda_entry"

/* A built backend state. */
typedef struct MilesBackend {
    const MilesBackendOps *ops;
    void *state;
} MilesBackend;

/* The table for a device ("cpu" or NULL: the CPU; "cuda[:N]": the CUDA object,
 * loaded on first use), checked for precision/training (MILES_EUNSUPPORTED
 * with one line naming why otherwise).  *index = N. */
int miles_backend_find(const char *device, MilesPrecision precision, int training, const MilesBackendOps **ops,
                       int *index);
/* find + build; be->ops NULL on failure. */
int miles_backend_open(MilesBackend *be, const char *device, MilesPrecision precision, MilesModel *host,
                       const MilesAdamWConfig *adamw);
void miles_backend_close(MilesBackend *be);
/* s unchanged; when s is an error of a backend object, its message becomes
 * this library's (miles_last_error). */
int miles_backend_status(const MilesBackendOps *ops, int s);

#ifdef __cplusplus
}
#endif
#endif
