/*
 * miles.h — the one public header of libmiles.
 *
 * libmiles trains and serves a model that predicts whether a short video will go
 * viral: BERT title encoder + 18 engagement features -> fusion MLP -> viral logits
 * and a velocity regression head.  The CPU fp32 path is the specification; the
 * CUDA path mirrors it op by op.
 *
 * API conventions (SQLite/zlib style):
 *   - objects are opaque handles built by miles_X_build()/miles_X_open() and
 *     released by miles_X_free(); free(NULL) is always a no-op;
 *   - every fallible call returns an int status: MILES_OK (0) or a negative
 *     MILES_E* code; miles_last_error() then names what went wrong (file, line,
 *     field, tensor...).  The message is thread-local;
 *   - the library never calls exit() and never prints unless asked to.
 *
 * Sections below are owned by modules (core, tokenizer, weights, data,
 * metrics, ...).  Keep each section self-contained.
 */
#ifndef MILES_H
#define MILES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MILES_VERSION_MAJOR 0
#define MILES_VERSION_MINOR 1
#define MILES_VERSION_PATCH 0
#define MILES_VERSION_STRING "0.1.0"

/* ======================================================================== */
/* Section: status codes and errors (libmiles/error.c)                      */
/* ======================================================================== */

enum {
    MILES_OK = 0,
    MILES_ENOMEM = -1,      /* allocation failed */
    MILES_EIO = -2,         /* open/read/write/rename failed */
    MILES_EFORMAT = -3,     /* malformed file or text (CSV, JSON, safetensors, ...) */
    MILES_ESHAPE = -4,      /* tensor/batch shape mismatch */
    MILES_EINVAL = -5,      /* invalid argument or configuration */
    MILES_ENAN = -6,        /* NaN or Inf where a finite value is required */
    MILES_EMISSING = -7,    /* required tensor/column/field/file absent */
    MILES_EUNSUPPORTED = -8,/* feature not available in this build / on this device */
    MILES_ERANGE = -9,      /* value out of range (token id, T > max positions, ...) */
    MILES_EINTERNAL = -10   /* a bug: please report */
};

/* Message describing the last error set on this thread ("" if none). */
const char *miles_last_error(void);
/* Short constant name of a status code, e.g. "MILES_EFORMAT". */
const char *miles_status_name(int status);
/* Clear this thread's error message. */
void miles_clear_error(void);
/* "0.1.0" plus build options, e.g. "0.1.0 (openmp, openblas)". */
const char *miles_version(void);

/* ======================================================================== */
/* Section: core — model configuration, model, loss, optimizer              */
/* (libmiles/config.c, model.c, optim.c)                                    */
/* ======================================================================== */

enum { MILES_POOL_POOLER = 0, MILES_POOL_CLS = 1, MILES_POOL_MEAN = 2 };
enum { MILES_VEL_SIGMOID = 0, MILES_VEL_LINEAR = 1 };
#define MILES_MAX_MLP 8
#define MILES_NUM_FEATURES 18

/* Names of the 18 numeric features, in model input order. */
extern const char *const miles_feature_names[MILES_NUM_FEATURES];

/* Model configuration.  The BERT part mirrors an HF config.json; the rest is the
 * Miles fusion architecture.  A plain struct on purpose: researchers set fields. */
typedef struct MilesConfig {
    /* BERT encoder (HF config.json names) */
    int vocab_size;
    int hidden_size;             /* H */
    int num_hidden_layers;       /* L */
    int num_attention_heads;     /* NH */
    int intermediate_size;       /* I */
    int max_position_embeddings; /* P */
    int type_vocab_size;
    float layer_norm_eps;
    float hidden_dropout_prob;
    float attention_probs_dropout_prob;
    /* text vector */
    int pooling;                 /* MILES_POOL_* */
    float text_dropout;          /* dropout on the pooled vector */
    /* numeric branch: F -> w0 -> ReLU -> drop -> w1 ...; n_numeric == 0 means the raw
     * standardized features are concatenated directly (seed-notebook) */
    int num_features;            /* F, 18 */
    int n_numeric;
    int numeric_widths[MILES_MAX_MLP];
    float numeric_dropouts[MILES_MAX_MLP];
    /* fusion MLP on concat(text, numeric) */
    int n_fusion;
    int fusion_widths[MILES_MAX_MLP];
    float fusion_dropouts[MILES_MAX_MLP];
    int velocity_activation;     /* MILES_VEL_* */
    char preset[32];             /* "miles" | "seed-notebook" | "custom" */
} MilesConfig;

/* Fill *cfg with a preset ("miles" or "seed-notebook") on top of a BERT size:
 * "bert-base", "minilm-l6" (all-MiniLM-L6-v2 shape), "tiny" (2 layers, H 64) */
int miles_config_preset(MilesConfig *cfg, const char *preset, const char *bert_size);
/* Read the BERT fields of an HF config.json into *cfg (other fields untouched).
 * Rejects hidden_act other than "gelu" and unknown model types with a message. */
int miles_config_read_hf(MilesConfig *cfg, const char *config_json_path);
/* Check that *cfg is self-consistent (H % NH == 0, widths > 0, ...). */
int miles_config_validate(const MilesConfig *cfg);

/* A batch of examples (row-major, B rows of T tokens).  Pointers stay owned by
 * the caller. */
typedef struct MilesBatch {
    int B, T;
    const int32_t *input_ids;      /* [B,T] */
    const int32_t *token_type_ids; /* [B,T] or NULL = all zeros */
    const int32_t *attention_mask; /* [B,T] 1 = real token, 0 = padding */
    const float *features;         /* [B,F] standardized numeric features */
    const int32_t *labels;         /* [B] 0/1, or NULL: no classification loss */
    const float *velocity;         /* [B] scaled target, or NULL: no regression loss */
} MilesBatch;

/* Loss settings: loss = w_cls * CE(weights) + w_reg * MSE. */
typedef struct MilesLossConfig {
    float w_cls, w_reg;            /* default 0.95 / 0.05 */
    float class_weight[2];         /* {1,1} = unweighted CE */
} MilesLossConfig;

typedef struct MilesModel MilesModel;

/* Build a model with parameters allocated (uninitialized = zero). */
int miles_model_build(MilesModel **out, const MilesConfig *cfg);
void miles_model_free(MilesModel *m);
/* HF BERT initialization: normal(0, std) for weights and embeddings, zero biases,
 * LayerNorm weight 1 / bias 0; deterministic for a seed. */
int miles_model_init_random(MilesModel *m, uint64_t seed, float std);
const MilesConfig *miles_model_config(const MilesModel *m);
size_t miles_model_num_params(const MilesModel *m);
/* Parameter tensors by index: name (checkpoint name, e.g.
 * "bert.encoder.layer.0.attention.self.query.weight"), shape, data pointers. */
int miles_model_num_tensors(const MilesModel *m);
typedef struct MilesTensorInfo {
    const char *name;
    int ndim;
    int64_t shape[4];
    size_t numel;
    float *data;   /* parameters */
    float *grad;   /* gradients */
    int decay;     /* 1 if weight decay applies under the HF convention */
} MilesTensorInfo;
int miles_model_tensor(const MilesModel *m, int index, MilesTensorInfo *info);
/* Index of a tensor by checkpoint name, or -1. */
int miles_model_find_tensor(const MilesModel *m, const char *name);

void miles_model_set_loss(MilesModel *m, const MilesLossConfig *loss);
/* Dropout is keyed by (seed, step, tensor, index): the same key gives the same
 * masks on CPU and GPU. */
void miles_model_set_dropout_key(MilesModel *m, uint64_t seed, uint64_t step);

/* Forward pass.  training=1 enables dropout.  Outputs (may be NULL):
 * logits [B,2], velocity [B] (after the head activation), *loss (when labels
 * and/or velocity given; else 0).  Shapes are checked against the config. */
int miles_model_forward(MilesModel *m, const MilesBatch *batch, int training,
                        float *logits, float *velocity, float *loss);
/* Zero all gradients. */
void miles_model_zero_grad(MilesModel *m);
/* Backward pass of the last forward (which must have had labels/velocity);
 * accumulates into gradients (so gradient accumulation is repeated
 * forward/backward before one optimizer step).  loss_scale multiplies dL. */
int miles_model_backward(MilesModel *m, float loss_scale);
/* Pooled text vector [B,H] of the last forward (for embeddings/parity). */
const float *miles_model_pooled(const MilesModel *m);
/* Encoder last hidden state [B,T,H] of the last forward. */
const float *miles_model_last_hidden(const MilesModel *m);

/* ---- optimizer and schedules ---- */
typedef struct MilesAdamWConfig {
    float lr, beta1, beta2, eps, weight_decay;
    int decay_all;   /* 1: decay every tensor (the original's bug); 0: HF groups */
} MilesAdamWConfig;
typedef struct MilesAdamW MilesAdamW;
int miles_adamw_build(MilesAdamW **out, MilesModel *m, const MilesAdamWConfig *cfg);
void miles_adamw_free(MilesAdamW *opt);
/* One step at learning rate lr (schedule applied by the caller). */
int miles_adamw_step(MilesAdamW *opt, float lr);
int64_t miles_adamw_steps(const MilesAdamW *opt);
/* First/second moments, for checkpoints: [num_params] each. */
float *miles_adamw_m(MilesAdamW *opt);
float *miles_adamw_v(MilesAdamW *opt);
void miles_adamw_set_steps(MilesAdamW *opt, int64_t t);

/* torch.nn.utils.clip_grad_norm_ semantics: returns the total L2 norm before
 * clipping; scales grads by max_norm/(norm+1e-6) when norm > max_norm. */
float miles_clip_grad_norm(MilesModel *m, float max_norm);

enum { MILES_SCHED_CONSTANT = 0, MILES_SCHED_LINEAR = 1, MILES_SCHED_COSINE = 2 };
/* HF get_{linear,cosine}_schedule_with_warmup multiplier at optimizer step
 * `step` (0-based, the value LambdaLR passes).  Multiply by the base lr. */
double miles_lr_lambda(int kind, int64_t step, int64_t warmup, int64_t total);

/* ======================================================================== */
/* Section: tokenizer (libmiles/tokenizer.c)                                */
/* ======================================================================== */

typedef struct MilesTokenizer MilesTokenizer;
/* Section body is written by the tokenizer module. */

/* ======================================================================== */
/* Section: weights — safetensors and HF model directories                  */
/* (libmiles/safetensors.c, libmiles/hf.c)                                  */
/* ======================================================================== */

/* Section body is written by the weights module. */

/* ======================================================================== */
/* Section: data — CSV/JSON readers, features, labels, splits, scalers      */
/* (libmiles/csv.c, libmiles/data*.c)                                       */
/* ======================================================================== */

/* Section body is written by the data module. */

/* ======================================================================== */
/* Section: metrics and baselines (libmiles/metrics.c, libmiles/baseline.c) */
/* ======================================================================== */

/* Section body is written by the metrics module. */

/* ======================================================================== */
/* Section: training — trainer, logs, TensorBoard events                    */
/* (libmiles/train*.c, libmiles/tbevents.c)                                 */
/* ======================================================================== */

/* TensorBoard event file writer: events.out.tfevents.<time>.<host> in `dir`,
 * TFRecord framing with masked CRC-32C, scalar summaries (simple_value). */
typedef struct MilesTBWriter MilesTBWriter;
int miles_tb_open(MilesTBWriter **out, const char *dir);
int miles_tb_scalar(MilesTBWriter *w, const char *tag, int64_t step, float value);
int miles_tb_flush(MilesTBWriter *w);
void miles_tb_close(MilesTBWriter *w);
const char *miles_tb_path(const MilesTBWriter *w);
/* CRC-32C (Castagnoli) of n bytes, continuing from crc (start with 0). */
uint32_t miles_crc32c(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MILES_H */
