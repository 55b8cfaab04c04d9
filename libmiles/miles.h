/*
 * miles.h — the one public header of libmiles.
 *
 * libmiles trains and serves a model that predicts whether a short video will go
 * viral: BERT title encoder + MILES_NUM_FEATURES (18) engagement features -> fusion MLP -> viral logits
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
 * This header is only the API: grouped by task, in this order.
 *   errors and files          status codes, messages, atomic output files
 *   model configuration       presets, HF config.json, MILES_NUM_FEATURES
 *   the model                 build, forward/backward, parameters (your own loops)
 *   optimizer and schedules   AdamW, gradient clipping, LR schedules
 *   tokenizer                 BERT WordPiece, HF BertTokenizerFast-exact
 *   weights                   safetensors read/write, HF model directories
 *   data                      records, features, scaler, prepare, prepared files, datasets
 *   data sources              synthetic data, real-source adapters
 *   training                  the trainer (events, no printing) and its checkpoints
 *   metrics and baselines     sklearn-semantics metrics, TF-IDF/numeric baselines
 *   explanations              integrated gradients on a model
 *   prediction                the predictor (serving), record explanations
 *   ideas                     topic patterns, model-scored title suggestions
 *   export                    HF directory, ONNX
 *   distributed training      data parallelism (the MPI transport: miles_mpi.h)
 * Helpers the modules share (CSV reader, statistics, TF-IDF, L-BFGS, CRC, ...)
 * are internal (libmiles/..._internal.h, not installed; the tests include
 * them).  docs/architecture.md shows the layers and where each contract lives.
 */
#ifndef MILES_H
#define MILES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function and object of this header is exported from libmiles.so; the
 * library is built with -fvisibility=hidden, so nothing else is. */
#if defined(MILES_BUILDING_LIBRARY) && defined(__GNUC__)
#define MILES_API __attribute__((visibility("default")))
#else
#define MILES_API
#endif

#define MILES_VERSION_MAJOR 0
#define MILES_VERSION_MINOR 1
#define MILES_VERSION_PATCH 0
#define MILES_VERSION_STRING "0.1.0"

/* ======================================================================== */
/* Section: errors and files (libmiles/error.c)                              */
/* ======================================================================== */

enum {
    MILES_OK = 0,
    MILES_ENOMEM = -1,      /* allocation failed */
    MILES_EIO = -2,         /* open/read/write/rename failed */
    MILES_EFORMAT = -3,     /* malformed file or text (CSV, JSON, safetensors, ...) */
    MILES_ESHAPE = -4,      /* tensor/batch shape mismatch */
    MILES_EINVAL = -5,      /* invalid argument or configuration */
    MILES_ENAN = -6,        /* NaN or Inf where a finite value is required */
    MILES_EMISSING = -7,    /* required tensor/column/field/file absent (an input path that does not exist) */
    MILES_EUNSUPPORTED = -8,/* feature not available in this build / on this device */
    MILES_ERANGE = -9,      /* value out of range (token id, T > max positions, ...) */
    MILES_EINTERNAL = -10   /* a bug: please report */
};

/* Message describing the last error set on this thread ("" if none). */
MILES_API const char *miles_last_error(void);
/* Short constant name of a status code, e.g. "MILES_EFORMAT". */
MILES_API const char *miles_status_name(int status);
/* Clear this thread's error message. */
MILES_API void miles_clear_error(void);
/* Set this thread's message (printf-style) and return `code`: for callbacks
 * that stop the library with an error of their own (MilesTrainCallback). */
MILES_API int miles_set_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "0.1.0" plus build options, e.g. "0.1.0 (openmp, openblas)". */
MILES_API const char *miles_version(void);

/* ---- devices and precisions (docs/architecture.md, "Backends") ----
 * A device is "cpu" (the fp32 reference), "cuda" or "cuda:N".  What each
 * precision means, and where it is accepted:
 *   fp32  everywhere; the exact reference
 *   tf32  cuda, sm80+: TF32 tensor-core GEMMs, fp32 storage
 *   fp16  cuda: fp16 activations, fp32 master weights, dynamic loss scaling
 *   bf16  cuda sm80+ (training and inference); cpu inference with avx512_bf16
 *   int8  cpu inference: per-channel int8 weights, per-row dynamic activations;
 *         x86-64 with AVX2 + FMA (VNNI where present: the same bits)
 * A combination the device or the CPU cannot do is refused with
 * MILES_EUNSUPPORTED and a message naming what is missing. */
typedef enum MilesPrecision {
    MILES_PRECISION_FP32 = 0,
    MILES_PRECISION_TF32 = 1,
    MILES_PRECISION_FP16 = 2,
    MILES_PRECISION_BF16 = 3,
    MILES_PRECISION_INT8 = 4
} MilesPrecision;
/* "fp32" | "tf32" | "fp16" | "bf16" | "int8" -> *out; MILES_EINVAL otherwise. */
MILES_API int miles_precision_parse(const char *name, MilesPrecision *out);
MILES_API const char *miles_precision_name(MilesPrecision p);   /* "?" when out of range */
/* "cpu" | "cuda" | "cuda:N" -> *is_cuda, *index (0 for "cuda"); MILES_EINVAL otherwise. */
MILES_API int miles_device_parse(const char *name, int *is_cuda, int *index);
/* Can this process run `device` at `precision` (training 1: the trainer;
 * 0: evaluation/prediction)?  MILES_OK, or MILES_EUNSUPPORTED with ONE line in
 * miles_last_error() naming which of: CUDA backend not built, backend library
 * (libmiles_cuda.so) not found, not a backend of this version, no CUDA
 * driver, driver too old for the backend's runtime, no (such) device,
 * precision not supported there.  Loads the CUDA backend on first use:
 * $MILES_CUDA_BACKEND (a path), else beside libmiles (and ../lib), else the
 * loader's path (docs/gpu.md). */
MILES_API int miles_device_check(const char *device, MilesPrecision precision, int training);

/* ---- files: what the tools and programs write is written atomically ---- */
/* Read a whole file into a malloc'd NUL-terminated buffer; *n (may be NULL)
 * gets its size. */
MILES_API int miles_read_file(const char *path, char **data, size_t *n);
/* Write a whole file atomically: a temp file beside `path`, fsync, rename,
 * fsync of the directory.  `path` is never left half-written. */
MILES_API int miles_write_file_atomic(const char *path, const void *data, size_t n);
/* Streaming variant: miles_atomic_open creates the temp file (write to af.fp),
 * then miles_atomic_commit (fflush, fsync, rename) or miles_atomic_abort
 * (unlink). */
#include <stdio.h> /* FILE */
typedef struct MilesAtomicFile {
    FILE *fp;
    char path[4096];
    char tmp[4096];
} MilesAtomicFile;
MILES_API int miles_atomic_open(MilesAtomicFile *af, const char *path);
MILES_API int miles_atomic_commit(MilesAtomicFile *af);
MILES_API void miles_atomic_abort(MilesAtomicFile *af);

/* ======================================================================== */
/* Section: model configuration                                             */
/* (libmiles/config.c, train_checkpoint.c)                                  */
/* ======================================================================== */

enum { MILES_POOL_POOLER = 0, MILES_POOL_CLS = 1, MILES_POOL_MEAN = 2 };
enum { MILES_VEL_SIGMOID = 0, MILES_VEL_LINEAR = 1 };
#define MILES_MAX_MLP 8
#define MILES_NUM_FEATURES 18
/* Largest magnitude accepted for any numeric input (CSV cell, adapter field,
 * HTTP value): beyond it (views of 1e160) the scaler's squares overflow, so
 * such a value is refused with MILES_ERANGE naming file:line:field. */
#define MILES_MAX_INPUT_VALUE 1e15

/* Names of the MILES_NUM_FEATURES (18) numeric features, in model input order. */
MILES_API extern const char *const miles_feature_names[MILES_NUM_FEATURES];

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
    int num_features;            /* F = MILES_NUM_FEATURES */
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
MILES_API int miles_config_preset(MilesConfig *cfg, const char *preset, const char *bert_size);
/* Read the BERT fields of an HF config.json into *cfg (other fields untouched).
 * Rejects hidden_act other than "gelu" and unknown model types with a message. */
MILES_API int miles_config_read_hf(MilesConfig *cfg, const char *config_json_path);
/* Check that *cfg is self-consistent (H % NH == 0, widths > 0, ...). */
MILES_API int miles_config_validate(const MilesConfig *cfg);

/* Model config <-> JSON (the checkpoints' MILES_META_CONFIG; malloc'd / parsed into *cfg). */
MILES_API int miles_config_to_json(const MilesConfig *cfg, char **json);
MILES_API int miles_config_from_json(MilesConfig *cfg, const char *json);

/* ======================================================================== */
/* Section: the model                                                       */
/* (libmiles/model.c, model_forward.c, model_backward.c)                    */
/* ======================================================================== */

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
MILES_API int miles_model_build(MilesModel **out, const MilesConfig *cfg);
MILES_API void miles_model_free(MilesModel *m);
/* HF BERT initialization: normal(0, std) for weights and embeddings, zero biases,
 * LayerNorm weight 1 / bias 0; deterministic for a seed. */
MILES_API int miles_model_init_random(MilesModel *m, uint64_t seed, float std);
MILES_API const MilesConfig *miles_model_config(const MilesModel *m);
MILES_API size_t miles_model_num_params(const MilesModel *m);
/* Parameter tensors by index: name (checkpoint name, e.g.
 * "bert.encoder.layer.0.attention.self.query.weight"), shape, data pointers. */
MILES_API int miles_model_num_tensors(const MilesModel *m);
typedef struct MilesTensorInfo {
    const char *name;
    int ndim;
    int64_t shape[4];
    size_t numel;
    float *data;   /* parameters */
    float *grad;   /* gradients */
    int decay;     /* 1 if weight decay applies under the HF convention */
} MilesTensorInfo;
MILES_API int miles_model_tensor(const MilesModel *m, int index, MilesTensorInfo *info);
/* Index of a tensor by checkpoint name, or -1. */
MILES_API int miles_model_find_tensor(const MilesModel *m, const char *name);

MILES_API void miles_model_set_loss(MilesModel *m, const MilesLossConfig *loss);
/* Dropout is keyed by (seed, step, tensor, index): the same key gives the same
 * masks on CPU and GPU. */
MILES_API void miles_model_set_dropout_key(MilesModel *m, uint64_t seed, uint64_t step);

/* Forward pass.  training=1 enables dropout.  Outputs (may be NULL):
 * logits [B,2], velocity [B] (after the head activation), *loss (when labels
 * and/or velocity given; else 0).  Shapes are checked against the config.
 * The batch is validated first, and the error names the row/token/feature:
 * B,T < 1 -> MILES_ESHAPE; T > max positions, ids or type ids out of range ->
 * MILES_ERANGE; mask/labels not 0/1, zero class-weight sum -> MILES_EINVAL;
 * NaN/Inf features or targets -> MILES_ENAN.  The batch is copied, so the
 * caller's buffers may be reused before backward.  Activation memory grows to
 * the largest (B,T) seen and is then reused (no per-step allocation). */
MILES_API int miles_model_forward(MilesModel *m, const MilesBatch *batch, int training,
                        float *logits, float *velocity, float *loss);
/* Zero all gradients. */
MILES_API void miles_model_zero_grad(MilesModel *m);
/* Backward pass of the last forward (which must have had labels/velocity);
 * accumulates into gradients (so gradient accumulation is repeated
 * forward/backward before one optimizer step).  loss_scale multiplies dL:
 * k equal-size micro-batches with loss_scale 1/k equal one batch of k times
 * the rows (exactly so for unweighted CE; weighted CE normalizes per batch). */
MILES_API int miles_model_backward(MilesModel *m, float loss_scale);
/* Pooled text vector [B,H] of the last forward (for embeddings/parity). */
MILES_API const float *miles_model_pooled(const MilesModel *m);
/* Encoder last hidden state [B,T,H] of the last forward; NULL after a
 * forward that computed only the pooled rows (miles_model_set_pooled_only). */
MILES_API const float *miles_model_last_hidden(const MilesModel *m);
/* on = 1: with pooler or cls pooling, the last encoder layer computes only
 * what the pooled vector reads: K and V for every token, the rest (Q,
 * attention, output dense, FFN, LayerNorms) for each sequence's [CLS] row.
 * Logits, velocity and loss keep their bits; parameter and input gradients
 * too (up to the sign of a zero).  The last layer costs 2/12 of its work
 * (bert-base training: 7% less matrix work; MiniLM 14%).  Mean pooling
 * reads every row: no effect.  The trainer (miles_train_run, CPU) sets it
 * while it runs.  0 = every row (the default).  Returns the previous value. */
MILES_API int miles_model_set_pooled_only(MilesModel *m, int on);

/* ---- input gradients (the hooks integrated gradients is built on) ---- */
/* miles_model_forward with the per-token word-embedding vectors given:
 * word_emb [B,T,H] replaces wte[input_ids] (position and token-type embeddings
 * are still added; input_ids are still validated).  word_emb NULL = the
 * ordinary forward; word_emb = the gathered wte rows gives bit-identical
 * outputs.  Non-finite entries -> MILES_ENAN naming row/token/channel.  A
 * backward of such a forward adds no word-embedding (wte) gradient. */
MILES_API int miles_model_forward_embeds(MilesModel *m, const MilesBatch *batch, const float *word_emb,
                               int training, float *logits, float *velocity, float *loss);
/* Backward of the last forward from an arbitrary output gradient instead of
 * the loss: dlogits [B,2] = d target / d logits, dvelocity [B] = d target /
 * d velocity (after the head activation); either may be NULL (= 0).  The
 * forward needs no labels.  param_grads = 1 accumulates parameter gradients
 * like miles_model_backward; 0 leaves them untouched and skips their GEMMs
 * (input gradients only: about half the backward's work). */
MILES_API int miles_model_backward_from_outputs(MilesModel *m, const float *dlogits, const float *dvelocity,
                                      int param_grads);
/* Input gradients of the last backward (either kind): dword [B,T,H] w.r.t.
 * each token's word-embedding vector, dfeatures [B,F] w.r.t. the standardized
 * features; either may be NULL.  MILES_EINVAL if no backward followed the
 * last forward.  (Not accumulated: each backward overwrites them.) */
MILES_API int miles_model_input_grads(const MilesModel *m, float *dword, float *dfeatures);
/* Build the model's inference engine at `precision` (miles_predict_dataset_on
 * and the predictor do it themselves for their precision, and reuse an
 * engine of that precision already attached; miles_predict_dataset is fp32):
 * (docs/performance.md): Q/K/V fused, fp32 or bf16/int8 weights converted
 * once (int8: per-channel weights, activations quantized per row), one
 * workspace, padding after each sequence's last real token skipped.  fp32
 * gives the same bits as miles_model_forward in eval mode.  The engine copies
 * weights: it is dropped (back to the reference forward) when the weights
 * are replaced by miles_model_load_params, miles_model_init_random or an
 * AdamW step; after writing tensors directly, call this again.  bf16/int8
 * where the CPU lacks the instructions: MILES_EUNSUPPORTED naming them.
 * Training always runs the fp32 reference. */
MILES_API int miles_model_set_precision(MilesModel *m, MilesPrecision precision);

/* ======================================================================== */
/* Section: optimizer and schedules                                         */
/* (libmiles/optim.c)                                                       */
/* ======================================================================== */

typedef struct MilesAdamWConfig {
    float lr, beta1, beta2, eps, weight_decay;
    int decay_all;   /* 1: decay every tensor (the original's bug); 0: HF groups */
    /* Parameter groups (torch param_groups): tensor k steps at lr_step * scale_k,
     * lr_step being the step's (scheduled) lr.  head_lr > 0: the new layers
     * (everything outside "bert.": numeric MLP, fusion, heads) get scale
     * head_lr / lr (lr must then be > 0); 0: scale 1.  layer_decay in (0,1):
     * encoder layer l of L gets layer_decay^(L-l), the embeddings
     * layer_decay^(L+1), the pooler 1; 0 or 1: off.  Zero-initialized configs
     * keep the single group. */
    float head_lr, layer_decay;
} MilesAdamWConfig;
typedef struct MilesAdamW MilesAdamW;
MILES_API int miles_adamw_build(MilesAdamW **out, MilesModel *m, const MilesAdamWConfig *cfg);
MILES_API void miles_adamw_free(MilesAdamW *opt);
/* One step at learning rate lr (schedule applied by the caller). */
MILES_API int miles_adamw_step(MilesAdamW *opt, float lr);
MILES_API int64_t miles_adamw_steps(const MilesAdamW *opt);
/* First/second moments, for checkpoints: [num_params] each. */
MILES_API float *miles_adamw_m(MilesAdamW *opt);
MILES_API float *miles_adamw_v(MilesAdamW *opt);
MILES_API void miles_adamw_set_steps(MilesAdamW *opt, int64_t t);

/* torch.nn.utils.clip_grad_norm_ semantics: returns the total L2 norm before
 * clipping; scales grads by max_norm/(norm+1e-6) when norm > max_norm.  The
 * sum of squares is taken in double in a fixed order (4096-element blocks
 * added in order), so the norm does not depend on the thread count. */
MILES_API float miles_clip_grad_norm(MilesModel *m, float max_norm);

enum { MILES_SCHED_CONSTANT = 0, MILES_SCHED_LINEAR = 1, MILES_SCHED_COSINE = 2 };
/* HF get_{linear,cosine}_schedule_with_warmup multiplier at optimizer step
 * `step` (0-based, the value LambdaLR passes).  Multiply by the base lr. */
MILES_API double miles_lr_lambda(int kind, int64_t step, int64_t warmup, int64_t total);

/* ======================================================================== */
/* Section: tokenizer (libmiles/tokenizer.c)                                */
/* ======================================================================== */

typedef struct MilesTokenizer MilesTokenizer;
/* Exact HF BertTokenizerFast (tokenizers 0.19.1) WordPiece tokenizer; the
 * semantics, Unicode notes and known HF fast/slow differences are in
 * docs/tokenizer.md.  A loaded tokenizer is read-only: share it freely
 * between threads. */

/* Load from `path`: a directory holding vocab.txt (+ optional
 * tokenizer_config.json: do_lower_case, strip_accents, tokenize_chinese_chars,
 * special token names; + optional tokenizer.json: clean_text, added tokens,
 * max_input_chars_per_word, checked against vocab.txt), or a vocab.txt file
 * path (then HF's defaults: lowercase, strip accents, split CJK).  Token id =
 * 0-based line number.  Empty vocab, duplicate tokens, invalid UTF-8 or a
 * missing [UNK] are MILES_EFORMAT errors naming the file and line. */
MILES_API int miles_tokenizer_load(MilesTokenizer **out, const char *path);
/* Same, overriding flags: each of lowercase / strip_accents / chinese is 0 or
 * 1, or -1 = from tokenizer_config.json (strip_accents -1 and unset in the
 * config = same as lowercase, as in HF). */
MILES_API int miles_tokenizer_load_opts(MilesTokenizer **out, const char *path, int lowercase, int strip_accents,
                              int chinese);
MILES_API void miles_tokenizer_free(MilesTokenizer *tok);
MILES_API int miles_tokenizer_vocab_size(const MilesTokenizer *tok);
/* Vocab entry of an id (NUL-terminated, owned by tok); NULL if out of range. */
MILES_API const char *miles_tokenizer_id_to_token(const MilesTokenizer *tok, int id);
/* Special ids looked up in the vocab: which = "cls", "sep", "pad", "unk",
 * "mask"; -1 if absent or `which` unknown. */
MILES_API int miles_tokenizer_special_id(const MilesTokenizer *tok, const char *which);
/* The effective normalizer flags (any pointer may be NULL). */
MILES_API void miles_tokenizer_flags(const MilesTokenizer *tok, int *lowercase, int *strip_accents, int *chinese);
/* WordPiece ids of text[0..len) (no [CLS]/[SEP]; special tokens written in
 * the text, e.g. "[MASK]", are kept as their ids like HF).  Writes at most cap
 * ids; *n = total number (may exceed cap).  Invalid UTF-8 never fails: each
 * maximal ill-formed subpart becomes U+FFFD, which cleaning removes. */
MILES_API int miles_tokenizer_tokenize(const MilesTokenizer *tok, const char *text, size_t len, int32_t *ids, int cap,
                             int *n);
/* [CLS] a [SEP] (b [SEP]) truncated like HF (truncation=True: longest-first
 * for pairs) to max_len; a is a[0..a_len), b is b[0..b_len) (b may be NULL).
 * Texts are bytes with a length: U+0000 inside is text like any other
 * character (BertNormalizer drops it, as HF does).  ids/type_ids/mask have
 * max_len entries (type_ids and mask may be NULL); entries past *len are
 * [PAD]/0/0.  pad_to_max is accepted for symmetry with the batch call (a
 * single row is always max_len long).  max_len must be >= 2 (>= 3 with b). */
MILES_API int miles_tokenizer_encode(const MilesTokenizer *tok, const char *a, size_t a_len, const char *b,
                                     size_t b_len, int max_len, int pad_to_max, int32_t *ids, int32_t *type_ids,
                                     int32_t *mask, int *len);
/* Batch of n texts (texts[i] of lens[i] bytes; lens NULL: NUL-terminated),
 * each truncated to max_len, padded to the longest (pad_to_max 0) or to
 * max_len (1).  Outputs are [n, *T_out] row-major; the caller allocates
 * n*max_len entries each (type_ids/mask may be NULL).  Rows are encoded in
 * parallel (OpenMP) for n >= 256. */
MILES_API int miles_tokenizer_encode_batch(const MilesTokenizer *tok, const char *const *texts, const size_t *lens,
                                           int n, int max_len,
                                 int pad_to_max, int32_t *ids, int32_t *type_ids, int32_t *mask, int *T_out);
/* 16 lowercase hex chars of FNV-1a 64 over the vocab (each token + '\n') and
 * the flags string "lowercase=%d strip_accents=%d chinese=%d clean=%d
 * max_chars=%d"; stored in checkpoints to catch a tokenizer mismatch. */
MILES_API int miles_tokenizer_hash(const MilesTokenizer *tok, char out[17]);

/* ======================================================================== */
/* Section: weights — safetensors and HF model directories                  */
/* (libmiles/safetensors.c, libmiles/hf.c)                                  */
/* ======================================================================== */

/* ---- safetensors reader ----
 * Reads the HF safetensors format: 8-byte little-endian header length N, N bytes
 * of JSON header {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
 * "__metadata__": {"key": "value"}}, then the raw little-endian tensor bytes
 * (offsets are relative to the end of the header).  The file is mmap'd; every
 * header field is validated against the file size on open (header past EOF, not
 * a JSON object, missing/ill-typed dtype, shape or data_offsets, unknown dtype,
 * offsets out of range, begin > end, byte length != numel * dtype size,
 * overlapping tensors, duplicate names, negative dims, numel overflow, ndim > 8,
 * bytes after the last tensor, as the Python library; they are what a wrong header
 * length gives) and rejected with MILES_EFORMAT naming the file and the tensor.
 * Gaps between tensors are tolerated.  When the metadata holds MILES_META_CRC32
 * (a JSON object: tensor name -> CRC-32 of its bytes, 8 hex digits, zlib's
 * crc32), every tensor is verified on open and a mismatch is MILES_EFORMAT
 * naming the file and the tensor; when it holds MILES_META_HEADER_CRC32 (8 hex
 * digits: the CRC-32 of a canonical text of the other metadata and of every
 * tensor's name, dtype, shape and offsets, safetensors.c), so is the header.
 * Miles' checkpoints hold both.  Handles are read-only and may be shared by
 * threads. */
typedef struct MilesSafetensors MilesSafetensors;
enum { MILES_DT_F32 = 0, MILES_DT_F16, MILES_DT_BF16, MILES_DT_F64, MILES_DT_I64,
       MILES_DT_I32, MILES_DT_I16, MILES_DT_I8, MILES_DT_U8, MILES_DT_BOOL };
#define MILES_ST_MAX_DIMS 8
/* Open and validate `path`.  On error *out is NULL. */
MILES_API int  miles_safetensors_open(MilesSafetensors **out, const char *path);
/* Same, on a caller-owned buffer that must outlive the handle (not copied);
 * `name` is used in error messages.  Used by the fuzzer and for embedded data. */
MILES_API int  miles_safetensors_open_memory(MilesSafetensors **out, const void *data, size_t size,
                                   const char *name);
MILES_API void miles_safetensors_close(MilesSafetensors *st);
/* Number of tensors; tensors are indexed 0..count-1 in file (data offset) order. */
MILES_API int  miles_safetensors_count(const MilesSafetensors *st);
/* Tensor name (owned by the handle), or NULL if i is out of range. */
MILES_API const char *miles_safetensors_name(const MilesSafetensors *st, int i);
/* Index of the tensor called `name`, or -1. */
MILES_API int  miles_safetensors_find(const MilesSafetensors *st, const char *name);
/* dtype (MILES_DT_*), ndim (0..8; 0 = scalar), shape[0..ndim) and numel of tensor i.
 * Any output pointer may be NULL. */
MILES_API int  miles_safetensors_info(const MilesSafetensors *st, int i, int *dtype, int *ndim,
                            int64_t shape[8], size_t *numel);
/* Convert tensor i to f32 into dst[numel].  F32/F16/BF16 are exact (subnormals,
 * +-inf, NaN kept); F64 is rounded to nearest.  numel must equal the tensor's
 * (MILES_ESHAPE otherwise); integer dtypes are refused (MILES_EINVAL). */
MILES_API int  miles_safetensors_read_f32(const MilesSafetensors *st, int i, float *dst, size_t numel);
/* Convert tensor i (I64/I32/I16/I8/U8/BOOL) to int32 into dst[numel].  I64 values
 * outside int32 and BOOL bytes other than 0/1 give MILES_ERANGE naming the
 * tensor and element; float dtypes are refused (MILES_EINVAL). */
MILES_API int  miles_safetensors_read_i32(const MilesSafetensors *st, int i, int32_t *dst, size_t numel);
/* Raw little-endian bytes of tensor i inside the mapping (valid until close);
 * *nbytes gets their count.  Not aligned in general: memcpy before use. */
MILES_API const void *miles_safetensors_data(const MilesSafetensors *st, int i, size_t *nbytes);
/* Value of `key` in the "__metadata__" string map, or NULL. */
MILES_API const char *miles_safetensors_metadata(const MilesSafetensors *st, const char *key);
/* The metadata keys, in file order: key i (owned by the handle; NULL out of range). */
MILES_API int  miles_safetensors_metadata_count(const MilesSafetensors *st);
MILES_API const char *miles_safetensors_metadata_key(const MilesSafetensors *st, int i);
/* Size in bytes of one element of dtype, or 0 if dtype is not a MILES_DT_*. */
MILES_API size_t miles_dtype_size(int dtype);
/* "F32", "BF16", ... or "?" */
MILES_API const char *miles_dtype_name(int dtype);

/* ---- safetensors writer ----
 * Output is byte-compatible with the Python safetensors library (0.4.x): data
 * sorted by dtype (widest first) then name, header JSON compact and padded with
 * spaces to a multiple of 8 bytes.  Written atomically: a temp file beside
 * `path` is created by _open, filled and fsync'd by _finish, then renamed over
 * `path`; _abort (or any _finish failure) removes it, leaving `path` untouched. */
typedef struct MilesSafetensorsWriter MilesSafetensorsWriter;
MILES_API int  miles_safetensors_writer_open(MilesSafetensorsWriter **out, const char *path);
/* Add a tensor.  name and shape are copied; `data` (numel * dtype size bytes,
 * little-endian) is REFERENCED, not copied: it must stay valid and unchanged
 * until _finish or _abort returns (so saving a model needs no second copy).
 * Duplicate names, bad dtype/ndim/negative dims give MILES_EINVAL. */
MILES_API int  miles_safetensors_writer_add(MilesSafetensorsWriter *w, const char *name, int dtype,
                                  int ndim, const int64_t *shape, const void *data);
/* Add a "__metadata__" entry (both strings copied; a repeated key replaces). */
MILES_API int  miles_safetensors_writer_metadata(MilesSafetensorsWriter *w, const char *key,
                                       const char *value);
/* Write, fsync and rename into place; always frees w (even on error). */
MILES_API int  miles_safetensors_writer_finish(MilesSafetensorsWriter *w);
/* Discard: removes the temp file, frees w.  NULL is a no-op. */
MILES_API void miles_safetensors_writer_abort(MilesSafetensorsWriter *w);

/* ---- HF model directories and parameter files (libmiles/hf.c) ---- */
typedef struct MilesLoadReport {
    int n_loaded, n_missing, n_unexpected, n_ignored;
    char message[4096];   /* human-readable: the names of missing/unexpected/ignored tensors */
} MilesLoadReport;
/* Load an HF BERT directory: `dir` holds config.json + model.safetensors (+ vocab.txt).
 * The BERT fields of the config come from config.json (miles_config_read_hf); the
 * pooling and head fields from *head_cfg (e.g. a preset).  Encoder (and pooler, if
 * pooling == MILES_POOL_POOLER) tensors are loaded; all other parameters (heads)
 * get HF init (normal(0, 0.02), deterministic for `seed`).  Accepted names: with or
 * without the "bert." prefix, LayerNorm weight/bias or legacy gamma/beta.
 * position_ids buffers and pretraining heads (cls.*) are ignored, and so are
 * pooler tensors when pooling != pooler.  Missing encoder tensors and shape
 * mismatches are errors (MILES_EMISSING / MILES_ESHAPE) naming every offending
 * tensor; unexpected tensors are reported by name in rep (rep may be NULL).
 * Sharded directories (model.safetensors.index.json + the shards it names, no
 * model.safetensors) load the same way; index and shards must agree (a tensor
 * in a shard the index does not put there: MILES_EFORMAT; a listed tensor or
 * shard that is absent: MILES_EMISSING).  Only pytorch_model.bin present ->
 * MILES_EMISSING pointing to tools/convert_pytorch_bin.py. */
MILES_API int miles_model_load_hf(MilesModel **out, const char *dir, const MilesConfig *head_cfg,
                        uint64_t seed, MilesLoadReport *rep);
/* Save all parameters under their checkpoint names as F32 safetensors, plus string
 * metadata (n_meta key/value pairs, e.g. "config" JSON), atomically. */
MILES_API int miles_model_save(const MilesModel *m, const char *path, int n_meta,
                     const char *const *keys, const char *const *values);
/* Load parameters saved by miles_model_save into a model built with the same config:
 * every model tensor must be present with the same shape (else an error naming
 * it); truncated files, wrong shapes, non-finite values and extra tensors are refused
 * (except a training checkpoint's "optim.*" moments and "tokenizer/..." files,
 * skipped).  A refused file leaves m untouched. */
MILES_API int miles_model_load_params(MilesModel *m, const char *path);

/* ======================================================================== */
/* Section: data: records, features, scaler, prepared files                 */
/* (libmiles/records.c, data*.c; docs/data.md)                              */
/* ======================================================================== */

/* ---- records ----
 * A record is a set of named string values: a CSV row under its header, an
 * HTTP request's fields, a JSON line.  Values are UTF-8 of the given lengths
 * (or NUL-terminated when lengths is NULL). */
typedef struct MilesRecord {
    int n;
    const char *const *names;
    const char *const *values;
    const size_t *lengths;   /* [n] byte lengths of the values, or NULL: NUL-terminated.
                              * With lengths a title may hold U+0000 (which the tokenizer
                              * drops, as HF does); a NUL elsewhere is an error. */
} MilesRecord;
/* Records from a CSV file with a header row (RFC 4180, UTF-8 validated; every
 * row must have the header's number of cells).  An empty file is an error. */
typedef struct MilesRecordReader MilesRecordReader;
MILES_API int miles_records_open_csv(MilesRecordReader **out, const char *path);
/* Same on a caller-owned buffer (must outlive the reader); `name` for messages. */
MILES_API int miles_records_open_csv_memory(MilesRecordReader **out, const char *name, const char *data, size_t n);
MILES_API void miles_records_close(MilesRecordReader *r);
/* The header's field names (owned by r). */
MILES_API const char *const *miles_records_header(const MilesRecordReader *r, int *n);
/* Next row: 1 (rec valid until the next call; names = the header), 0 at the
 * end, or a negative MILES_E* status with a "file:line:column: ..." message. */
MILES_API int miles_records_next(MilesRecordReader *r, MilesRecord *rec);
/* Line (1-based) where the last row began. */
MILES_API int64_t miles_records_line(const MilesRecordReader *r);

/* ---- the MILES_NUM_FEATURES features of one record ----
 * MILES_NUM_FEATURES / miles_feature_names (model configuration) give the order:
 * views likes comments shares saves engagement_rate completion_rate like_rate
 * comment_ratio share_rate save_rate upload_hour is_weekend duration_sec
 * title_length has_emoji creator_avg_views publish_dayofweek.
 * A record is a set of named string values (CSV header + cells, or an HTTP
 * request's fields).  Seed-schema column names are understood, and so are the
 * feature names themselves.  A column present in the record is used; an
 * absent or empty one is derived when possible (docs/data.md), else the
 * feature is missing for that record (bit clear in *avail, raw value NaN).
 * Non-numeric text, NaN/Inf or out-of-range values are errors naming the column. */
MILES_API int miles_features_compute(const MilesRecord *rec, double raw[MILES_NUM_FEATURES], uint32_t *avail);
/* Python len(): Unicode code points of valid UTF-8 (-1 if invalid). */
MILES_API int64_t miles_utf8_length(const char *s);
enum { MILES_TEXT_CLEAN_NONE = 0, MILES_TEXT_CLEAN_SEED = 1 };
/* ---- scaler: standardization, velocity min-max, label threshold ----
 * Serializes to JSON (embedded in checkpoints).  Transform is THE function that
 * turns raw features into model inputs, for training and serving alike. */
typedef struct MilesScaler MilesScaler;
typedef struct MilesScalerOptions {
    int log1p_counts;        /* log1p on views..saves and creator_avg_views before standardizing */
    uint32_t drop_mask;      /* bit f set: feature f forced to 0 after standardization */
    double percentile;       /* viral label percentile, default 80 */
} MilesScalerOptions;
/* Fit on training rows: raw [n,F] (NaN = missing), avail [n] bit masks (NULL:
 * derive from NaN), velocity [n] raw (NULL: no velocity scaling/threshold). */
MILES_API int miles_scaler_fit(MilesScaler **out, const double *raw, const uint32_t *avail, int64_t n,
                     const double *velocity, const MilesScalerOptions *opt);
MILES_API void miles_scaler_free(MilesScaler *s);
/* Standardize one row: raw[F] + avail -> out[F].  Missing or unavailable or
 * dropped features give exactly 0 (= the train mean after standardization). */
MILES_API int miles_scaler_transform(const MilesScaler *s, const double raw[MILES_NUM_FEATURES], uint32_t avail, float out[MILES_NUM_FEATURES]);
/* miles_features_compute + miles_scaler_transform in one call (serving path). */
MILES_API int miles_scaler_transform_record(const MilesScaler *s, const MilesRecord *rec,
                                            float out[MILES_NUM_FEATURES], uint32_t *avail);
/* Velocity: (v - min) / (max - min) with train min/max, and back. */
MILES_API double miles_scaler_velocity_scale(const MilesScaler *s, double v);
MILES_API double miles_scaler_velocity_unscale(const MilesScaler *s, double scaled);
/* Viral threshold (raw velocity units) and the label rule: v >= threshold. */
MILES_API double miles_scaler_threshold(const MilesScaler *s);
MILES_API void miles_scaler_set_threshold(MilesScaler *s, double threshold, double percentile, const char *scope);
/* The cohort label (scope "cohort", --threshold-scope cohort): viral = velocity
 * >= the percentile of its publish cohort's velocities; the threshold above is
 * then the training split's overall one, for reference.  label_cohort: 1 and
 * its window days / minimum rows if the scaler's label is a cohort one, else 0. */
MILES_API void miles_scaler_set_label_cohort(MilesScaler *s, int days, int64_t min_rows);
MILES_API int miles_scaler_label_cohort(const MilesScaler *s, int *days, int64_t *min_rows);
/* creator_avg_views' rule (MILES_CREATOR_AVG_*): as the data gave it (or the mean
 * views of the creator's rows), or from the creator's earlier videos only
 * (prepare's creator_avg); a record scored by such a model should carry the
 * creator's mean views before the video. */
MILES_API void miles_scaler_set_creator_avg(MilesScaler *s, int rule);
MILES_API int miles_scaler_creator_avg(const MilesScaler *s);
/* Per-feature mean/scale (after optional log1p), availability bits, drop bits. */
MILES_API int miles_scaler_stats(const MilesScaler *s, double mean[MILES_NUM_FEATURES], double scale[MILES_NUM_FEATURES],
                       uint32_t *available, uint32_t *dropped, int *log1p_counts);
/* JSON text (malloc'd) and back.  The JSON is self-describing (feature names,
 * order, formulas version); from_json rejects a different feature list. */
MILES_API int miles_scaler_to_json(const MilesScaler *s, char **json);
MILES_API int miles_scaler_from_json(MilesScaler **out, const char *json);

/* ---- velocity target: what the velocity head predicts (velocity_target.c) ----
 * MINMAX: the scaler's (v - min) / (max - min) (seed; sigmoid head).
 * LOG1P_Z: (log1p(v) - mean) / std, mean/std of log1p(v) on the training split
 * (population std; 1 if 0), for a linear head; the default recipe's choice,
 * because views/day are heavy-tailed.  Negative v counts as 0; the inverse is
 * clamped at 0 views/day.
 * Clamp: LOG1P_Z fits also record [lo, hi], the transformed train target's
 * range; the inverse first clamps the output to [lo - m, hi + m], m =
 * MILES_VTARGET_CLAMP_MARGIN * (hi - lo), so an extrapolating linear head
 * cannot overflow views/day (finite output -> finite views/day).  No range
 * (has_range 0: older checkpoints, MINMAX): no clamp. */
enum { MILES_VTARGET_MINMAX = 0, MILES_VTARGET_LOG1P_Z = 1 };
/* 5% of the range each side: the train min/max are sample extremes, so a new
 * row may sit slightly beyond them; at log1p_z scale 5% of a typical range
 * (~5 std) is ~0.25 std of log1p(views/day), a modest extrapolation. */
#define MILES_VTARGET_CLAMP_MARGIN 0.05
typedef struct MilesVelocityTarget {
    int kind;          /* MILES_VTARGET_* */
    double mean, std;  /* LOG1P_Z only */
    int has_range;     /* lo/hi valid: clamp outputs to them (+ margin) */
    double lo, hi;     /* train split's target range, in target space */
} MilesVelocityTarget;
MILES_API int miles_velocity_target_fit(MilesVelocityTarget *t, int kind, const double *velocity, int64_t n);
/* raw views/day -> target space, and back; the scaler is needed for MINMAX only */
MILES_API double miles_velocity_target_transform(const MilesVelocityTarget *t, const MilesScaler *s, double v);
MILES_API double miles_velocity_target_inverse(const MilesVelocityTarget *t, const MilesScaler *s, double y);
/* The output clamped to the range (+ margin); y unchanged without a range or
 * if NaN.  inverse() applies it; tools use it for target-space metrics.
 * clamped(): 1 if the clamp changes y. */
MILES_API double miles_velocity_target_clamp(const MilesVelocityTarget *t, double y);
MILES_API int miles_velocity_target_clamped(const MilesVelocityTarget *t, double y);
/* "minmax" | "log1p_z" (the checkpoint metadata values) and back */
MILES_API const char *miles_velocity_target_name(int kind);
MILES_API int miles_velocity_target_parse(const char *name, int *kind);

/* ---- prepare: seed-schema CSV -> one binary prepared file ---- */
typedef struct MilesPrepareOptions {
    const char *vocab_dir;   /* tokenizer directory (default models/all-MiniLM-L6-v2) */
    int max_len;             /* token length, default 128 */
    const char *language;    /* keep rows with this language; NULL/"" or "any": all */
    int dedup;               /* drop repeated row_id (keep the first) */
    int text_clean;          /* MILES_TEXT_CLEAN_* applied before tokenizing */
    double percentile;       /* default 80 */
    int threshold_all;       /* 1: threshold from all rows before splitting (original) */
    uint64_t seed;           /* default 42 */
    int split_by_creator;    /* group split on author_handle */
    double train_frac;       /* default 0.7 (val/test share the rest equally) */
    int log1p_counts;
    uint32_t drop_mask;      /* features masked to 0 after standardization */
    double leak_bound;       /* |Spearman| warning bound, default 0.5 */
    int split_by_time;       /* chronological split on publish_date_approx's day:
                              * oldest days train, then val, newest test; no day in
                              * two splits; every kept row needs a date */
    int label_cohort_days;   /* > 0: viral = velocity >= the percentile of its publish
                              * cohort (windows of this many days, >= MILES_COHORT_MIN_ROWS
                              * rows each), not of the training split; every kept row
                              * needs a date */
    int creator_avg;         /* MILES_CREATOR_AVG_*: where creator_avg_views comes from */
} MilesPrepareOptions;
/* creator_avg_views as the CSV has it, else the mean views of the creator's kept
 * rows: the data dictionary's "across dataset rows", in-sample (the row's own
 * views and later videos' in it, test rows' in training rows' values). */
#define MILES_CREATOR_AVG_DATA 0
/* The mean views of the creator's kept rows published on earlier days, the
 * column replaced: what is known when a video is published (no row's own, same-day
 * or later views); a creator's first day, or no author_handle: missing.  Every
 * kept row needs a publish date. */
#define MILES_CREATOR_AVG_PRIOR 1
#define MILES_COHORT_MIN_ROWS 50
MILES_API void miles_prepare_options_default(MilesPrepareOptions *opt);
/* How the file's rows were chosen and split, as prepare recorded it (header
 * bytes 128..191): what a report needs to say which test split it scored. */
enum {
    MILES_SPLIT_BY_UNRECORDED = 0,  /* a file written before the header held it */
    MILES_SPLIT_BY_ROW = 1,         /* stratified by label, seeded (the default) */
    MILES_SPLIT_BY_CREATOR = 2,     /* group split on author_handle, seeded */
    MILES_SPLIT_BY_TIME = 3,        /* oldest publish days train, newest test */
    MILES_SPLIT_BY_CHECKPOINT = 4   /* prepare --checkpoint: every row in test */
};
typedef struct MilesPreparedProvenance {
    int split_by;            /* MILES_SPLIT_BY_* */
    uint64_t seed;           /* the split's seed (used by the row and creator splits) */
    double train_frac;       /* the training share asked for; val and test share the rest */
    char language[32];       /* the kept language, "any" for every row */
    int dedup;               /* repeated row ids were dropped */
} MilesPreparedProvenance;
/* A summary of what prepare did (counts, threshold, per-split viral rates,
 * unavailable features, Spearman correlations). */
typedef struct MilesPrepareReport {
    int64_t rows_read, rows_language, rows_missing, rows_dup, rows_no_target, rows_kept;
    int64_t n[3], viral[3];
    double threshold, percentile;
    uint32_t available;              /* features with any training value */
    int64_t n_avail[MILES_NUM_FEATURES];             /* training rows having each feature */
    double spearman[MILES_NUM_FEATURES];             /* feature vs velocity on train (NaN if undefined) */
    uint32_t leak_warn;              /* |spearman| > leak_bound */
    int64_t truncated;               /* titles longer than max_len tokens */
    char vocab_hash[32];
    int applied;                     /* miles_data_prepare_for: a checkpoint's scaler, all rows in test */
    int split_by_time;               /* the split was chronological: */
    int64_t day_first[3], day_last[3]; /* each split's publish days (days since 1970-01-01) */
    int64_t n_dated;                 /* kept rows with a publish date */
    double day_spearman;             /* Spearman(publish day, velocity) over them; NaN if undefined */
    int cohort_days;                 /* the cohort label's window (0: one threshold) */
    int64_t n_cohorts, cohort_min_rows, cohort_smallest;   /* cohorts, their floor, the smallest's rows */
    double cohort_thr_min, cohort_thr_max;                 /* the cohorts' thresholds */
    int creator_avg;                 /* MILES_CREATOR_AVG_* applied */
    int64_t creator_avg_none;        /* PRIOR: kept rows without an earlier video of their creator */
    MilesPreparedProvenance split;   /* the split record the file's header keeps */
    char label_scope[16];            /* the label's threshold: "train" | "all" | "cohort" */
} MilesPrepareReport;
/* |day_spearman| from which the report suggests --split-by time */
#define MILES_DRIFT_NOTE 0.1
MILES_API int miles_data_prepare(const char *csv_path, const char *out_path, const MilesPrepareOptions *opt,
                       MilesPrepareReport *report);
/* Human-readable report (what `miles-data prepare` prints). */
MILES_API int miles_prepare_report_format(const MilesPrepareReport *rep, double leak_bound, char *buf, size_t cap);
/* The same report as JSON for scripts (malloc'd; format "miles-prepare-report"
 * version 1: rows, threshold, cohorts, splits with their publish days, the 18
 * features' Spearman and leak warnings, drift, creator_avg_views' rule (and
 * the rows without history), the split rule as miles_prepared_provenance_json
 * writes it, the label rule as the scaler JSON's "label"); counts as integers,
 * numbers exact, undefined ones null. */
MILES_API int miles_prepare_report_json(const MilesPrepareReport *rep, double leak_bound, char **json);

/* ---- prepared file (read side) ---- */
enum { MILES_SPLIT_TRAIN = 0, MILES_SPLIT_VAL = 1, MILES_SPLIT_TEST = 2 };

typedef struct MilesPrepared MilesPrepared;
/* Loads and verifies magic "MILESDAT", version, sizes and CRC-32. */
MILES_API int miles_prepared_open(MilesPrepared **out, const char *path);
MILES_API void miles_prepared_free(MilesPrepared *p);
/* Examples as row-major arrays: the one dataset type of the library (the
 * prepared file's splits; what training, evaluation and miles_predict_dataset
 * read).  Token rows are max_len entries each, [CLS] ... [SEP] then padding;
 * a batch is cut to its longest row.  The arrays belong to whoever made the
 * view (for a split: the MilesPrepared). */
typedef struct MilesDataset {
    int64_t n;
    int max_len;                     /* T: row stride of the token arrays */
    const int32_t *input_ids;        /* [n,T] */
    const int32_t *token_type_ids;   /* [n,T], or NULL = zeros */
    const int32_t *attention_mask;   /* [n,T] */
    const int32_t *lengths;          /* [n] real tokens incl. [CLS]/[SEP], or NULL = T */
    const float *features;           /* [n,F] standardized (model input) */
    const int32_t *labels;           /* [n] 0/1, or NULL */
    const float *velocity;           /* [n] min-max scaled target, or NULL */
    /* what a prepared file also has (NULL otherwise) */
    const double *features_raw;      /* [n,F] raw units, NaN = missing */
    const uint32_t *avail;           /* [n] feature availability bits */
    const double *velocity_raw;      /* [n] */
    const int32_t *creator;          /* [n] creator index, -1 unknown */
} MilesDataset;
/* The examples of one split (MILES_SPLIT_*), viewing p's memory. */
MILES_API int miles_prepared_split(const MilesPrepared *p, int split, MilesDataset *out);
/* Raw title and row id of example i of a split (NUL-terminated UTF-8). */
MILES_API const char *miles_prepared_title(const MilesPrepared *p, int split, int64_t i);
MILES_API const char *miles_prepared_row_id(const MilesPrepared *p, int split, int64_t i);
/* Scaler/threshold JSON to embed in a checkpoint (owned by p). */
MILES_API const char *miles_prepared_scaler_json(const MilesPrepared *p);
/* Tokenizer vocab hash recorded at prepare time (hex). */
MILES_API const char *miles_prepared_vocab_hash(const MilesPrepared *p);
/* Text cleaning mode used before tokenizing (MILES_TEXT_CLEAN_*). */
MILES_API int miles_prepared_text_clean(const MilesPrepared *p);
/* The CRC-32 of the file's data (header bytes 120..123, verified at open):
 * names the exact examples a report scored; 0 for NULL. */
MILES_API uint32_t miles_prepared_crc32(const MilesPrepared *p);
/* 1 and *out filled when the file records it, 0 (out->split_by UNRECORDED)
 * for an older file, -1 on NULL arguments. */
MILES_API int miles_prepared_provenance(const MilesPrepared *p, MilesPreparedProvenance *out);
/* The same as compact JSON (malloc'd): {"by", "seed" (row and creator splits),
 * "train_frac" (not for a checkpoint's file), "language", "dedup"};
 * {"by":"unrecorded"} for an older file.  What checkpoints keep as
 * MILES_META_DATA_SPLIT. */
MILES_API int miles_prepared_provenance_json(const MilesPrepared *p, char **json);
/* "row", "creator", "time", "checkpoint", "unrecorded" (NULL out of range). */
MILES_API const char *miles_split_by_name(int split_by);

/* ======================================================================== */
/* Section: data sources: synthetic data, adapters                          */
/* (libmiles/synth.c, adapters*.c; docs/data_sources.md)                    */
/* ======================================================================== */

/* Both write the 58-column seed schema (header and column order of the author's
 * youtube_shorts_tiktok_trends_2025 CSV) as RFC-4180 UTF-8; a numeric cell left
 * empty means "unavailable" for that row.  Writes are atomic: on error no output
 * file (and no temp file) is left.  Generative model, planted ground truth and
 * each adapter's label/velocity rule: docs/data_sources.md. */

/* Write `rows` (0..1e8) synthetic rows; deterministic for `seed` (bit-identical
 * file across machines).  engagement_velocity = views / trend_duration_days, as in
 * the original data (so `views` leaks into the label, like the original). */
MILES_API int miles_synth_write_csv(const char *path, int64_t rows, uint64_t seed);
/* Convert a real source into the seed schema.  kind:
 *   "ytdlp"       yt-dlp -j JSON lines, one .info.json, a directory of *.json, or a
 *                 text file listing .json paths (one per line);
 *   "youtube2017" <CC>videos.csv of the YouTube trending data set (daily snapshots;
 *                 one row per video); country/region/language from the file name
 *                 (CAvideos.csv -> CA), else US; "youtube2017:CC" sets the country
 *                 (US CA GB DE FR RU MX IN JP KR);
 *   "tiktok-vn"   the tiktok_vn_ie403 directory, its panel_scrape1_recrawl_DERIVED.csv,
 *                 or its feed_scrape1_raw.csv (joined to recrawl_part_*.csv);
 *   "tiktok2020"  tiktok-scraper trending.json.
 * report (may be NULL): rows in/out, drops by reason, features unavailable, the
 * velocity definition used. */
MILES_API int miles_adapter_convert(const char *kind, const char *input, const char *out_csv, char *report,
                          size_t report_cap);

/* ======================================================================== */
/* Section: training — the trainer and its checkpoints                      */
/* (libmiles/train*.c)                                                      */
/* ======================================================================== */

/* ---- trainer (libmiles/train.c, train_step.c, train_eval.c) ----
 * The library never prints: what happens during training is handed to a
 * callback (the CLI draws its progress bar, log.jsonl and TensorBoard events
 * from it).  The trainer writes only checkpoints (see "checkpoints" below). */

/* Learning-rate schedule family for the trainer: the HF ones (MILES_SCHED_*),
 * or the original project's SequentialLR(LinearLR(0.1->1, warmup),
 * CosineAnnealingLR(T_max = total - warmup, eta_min)). */
enum { MILES_SCHED_ORIGINAL = 3 };

enum {
    MILES_EVENT_START = 0,    /* before the first step (after a resume: at the resumed state) */
    MILES_EVENT_STEP = 1,     /* after every log_every-th optimizer step (MilesTrainConfig) */
    MILES_EVENT_EVAL = 2,     /* after every validation (best = 1: best.safetensors was written) */
    MILES_EVENT_CHECKPOINT = 3, /* a checkpoint file was written (path) */
    MILES_EVENT_EARLY_STOP = 4, /* patience ran out */
    MILES_EVENT_END = 5       /* training finished, stopped or failed (status) */
};
typedef struct MilesTrainEvent {
    int type;                 /* MILES_EVENT_* */
    int64_t step;             /* optimizer steps done */
    int64_t total_steps;      /* planned: epochs x steps per epoch, capped by max_steps */
    int epoch, epochs;        /* current epoch (0-based), epochs planned */
    int batch, batches;       /* micro-batches done in this epoch, per epoch */
    int64_t examples;         /* training examples seen in this run (all ranks) */
    double elapsed_s;         /* seconds since this run started */
    /* START */
    int resumed;              /* 1: continued from last.safetensors */
    int ranks, zero1;         /* data-parallel ranks; ZeRO-1 sharded moments */
    int64_t start_step;       /* step the run started at (0, or the resumed step) */
    /* STEP */
    double loss;              /* mean loss of this step's micro-batches (all ranks) */
    double lr, grad_norm;     /* learning rate used; gradient norm before clipping */
    /* EVAL */
    double val_auroc, val_loss, val_velocity_mae, val_best_f1, val_f1_threshold;
    int best;                 /* 1: a new best validation AUROC */
    /* EARLY_STOP */
    int patience;
    double min_delta;
    /* CHECKPOINT */
    const char *path;         /* "OUT/last.safetensors" or "OUT/best.safetensors" */
    /* END */
    int status;               /* MILES_OK or the error training returns */
    /* every event: the backend's dynamic loss scale (CUDA fp16; 1 otherwise)
     * and the optimizer steps skipped for Inf/NaN gradients in this run */
    double loss_scale;
    int64_t skipped_steps;
} MilesTrainEvent;
/* Called on rank 0 only, from the training thread.  Return MILES_OK to go on;
 * any other status stops training at once: miles_train_run returns it (set a
 * message with miles_set_error; "last" keeps the previous save). */
typedef int (*MilesTrainCallback)(const MilesTrainEvent *event, void *arg);

typedef struct MilesTrainConfig {
    int batch_size;           /* 32 (the GLOBAL batch with data parallelism) */
    int max_len;              /* 128: truncate rows longer than this */
    int epochs;               /* 15 */
    int grad_accum;           /* 1: micro-batches per optimizer step */
    float lr;                 /* 2e-5: the encoder's base learning rate */
    float head_lr;            /* 0 (= lr): base lr of the new layers (numeric MLP, fusion,
                               * heads); miles-train's default recipe uses 1e-3 with a
                               * pretrained encoder (MilesAdamWConfig.head_lr) */
    float layer_decay;        /* 0 (off): layer-wise lr decay of the encoder, (0,1) */
    float weight_decay;       /* 0.01 */
    int decay_all;            /* 0: HF no-decay groups; 1: the original (decay everything) */
    int warmup_steps;         /* 500 */
    int schedule;             /* MILES_SCHED_COSINE */
    int schedule_per_epoch;   /* 1 reproduces the original bug (stepped once per epoch) */
    float eta_min;            /* MILES_SCHED_ORIGINAL only: 1e-7 */
    float clip;               /* 1.0; <= 0: no clipping */
    MilesLossConfig loss;     /* 0.95 / 0.05, class weights {1,1} */
    int velocity_target;      /* MILES_VTARGET_MINMAX (0); LOG1P_Z needs a linear velocity
                               * head: fitted on the train split, stored in the checkpoints,
                               * the head's bias starts at 0 (the standardized mean) */
    int auto_class_weight;    /* 1: class_weight = n / (2 n_c) of the training labels
                               * (sklearn "balanced"; MilesTrainResult says which) */
    int patience;             /* 3 evaluations without improvement > min_delta */
    float min_delta;          /* 0.001 */
    int eval_every;           /* 0: every epoch; N: every N optimizer steps */
    int bucket;               /* 1: length bucketing (sort by length within chunks) */
    uint64_t seed;            /* 42 */
    int64_t max_steps;        /* > 0: stop after this many optimizer steps (tests, smoke runs) */
    const char *out_dir;      /* checkpoints/<run>: last.safetensors, best.safetensors */
    int resume;               /* 1: continue from out_dir/last.safetensors */
    /* what the checkpoints carry besides the model (the serving contract) */
    const char *vocab_dir;    /* the tokenizer the data was tokenized with (directory or
                               * vocab.txt): its hash must equal the data's, and its files
                               * are embedded so the checkpoint predicts anywhere.  NULL:
                               * nothing embedded (the predictor then needs a vocab_dir) */
    const char *recipe;       /* free label stored in checkpoints ("default") */
    MilesTrainCallback callback; /* progress/events (NULL: none) */
    void *callback_arg;
    volatile int *stop_flag;  /* set to 1 (e.g. from SIGINT): save "last" and return MILES_OK early */
    /* distributed (docs/distributed.md): NULL or a 1-rank handle = one process */
    struct MilesDist *dist;
    int zero1;                /* 1: shard the AdamW moments across ranks (ZeRO stage 1) */
    const char *device;       /* NULL or "cpu" (default), "cuda", "cuda:N" */
    MilesPrecision precision; /* MILES_PRECISION_FP32 (default); see "devices and precisions" */
    int log_every;            /* STEP events every N optimizer steps (and at every epoch end,
                               * evaluation and stop); loss = the mean over those steps,
                               * grad_norm = the last step's.  0 (default): 1 on the CPU,
                               * 10 on CUDA, where loss and norm stay on the device between
                               * events (no host sync in a step; a non-finite loss is then
                               * found at the next event) */
} MilesTrainConfig;

/* Fill *c with the defaults above. */
MILES_API void miles_train_config_default(MilesTrainConfig *c);

typedef struct MilesTrainResult {
    int64_t steps;            /* optimizer steps done (total, across resumes) */
    int epochs_done;
    double best_val_auroc;    /* NaN if never evaluated */
    int64_t best_step;
    double decision_threshold;/* F1-maximizing threshold on validation (best model) */
    float class_weight[2];    /* the CE class weights used */
    int stopped_early;        /* early stopping fired */
    int interrupted;          /* stop_flag was raised */
    double seconds;
} MilesTrainResult;

/* Train `m` on the train split of a prepared file, evaluating on its val
 * split (none if empty), with early stopping on validation AUROC.  Every
 * checkpoint written under cfg->out_dir carries the serving contract: the
 * data's scaler and label threshold, text cleaning, tokenizer hash (and, with
 * cfg->vocab_dir, the tokenizer files), the decision threshold: what
 * miles_predictor_open and the exports need, on any machine.  The model's
 * vocab_size must cover the data's token ids. */
MILES_API int miles_train_run(MilesModel *m, const MilesPrepared *data, const MilesTrainConfig *cfg, MilesTrainResult *res);

/* Score a dataset in eval mode, batch_size rows per forward pass (each batch
 * cut to its longest row; rows longer than max_len truncated keeping [SEP];
 * max_len 0 = no limit).  p_viral[n] = softmax P(viral) as the model computes
 * it (fp32, widened), velocity[n] = the velocity head's output (scaled target
 * units); either may be NULL.  The trainer's validation and the predictor
 * both score through this one batching loop. */
MILES_API int miles_predict_dataset(MilesModel *m, const MilesDataset *d, int batch_size, int max_len, double *p_viral,
                          double *velocity);
/* The same on a device (NULL/"cpu", "cuda", "cuda:N") at an inference
 * precision; miles_predict_dataset is this with the CPU at fp32.  Refusals as
 * miles_device_check. */
MILES_API int miles_predict_dataset_on(MilesModel *m, const char *device, MilesPrecision precision,
                                       const MilesDataset *d, int batch_size, int max_len, double *p_viral,
                                       double *velocity);
/* Called after each batch with the rows scored so far and the total. */
typedef void (*MilesProgressFn)(void *user, int64_t done, int64_t total);
/* miles_predict_dataset_on with a progress callback (NULL: none): the same
 * batches and bits; a long evaluation (bert-base on the CPU scores a few rows
 * a second) can show how far it is. */
MILES_API int miles_predict_dataset_progress(MilesModel *m, const char *device, MilesPrecision precision,
                                             const MilesDataset *d, int batch_size, int max_len, double *p_viral,
                                             double *velocity, MilesProgressFn progress, void *user);

/* ---- checkpoints (train_checkpoint.c): one safetensors file per checkpoint.
 * Tensors: the parameters under their checkpoint names; "optim.m"/"optim.v"
 * (AdamW moments, last.safetensors only); "tokenizer/<file>" (U8: the
 * embedded vocab.txt, tokenizer_config.json, tokenizer.json).  String
 * metadata under the keys below.  This is the contract between training and
 * everything that uses a trained model (predictor, server, exports, eval):
 * read it through a MilesCheckpoint, never by parsing the keys yourself.
 * Format "miles-checkpoint-4": as -3 plus MILES_META_HEADER_CRC32 (a CRC-32 of
 * the metadata and the tensor entries; required from -4 on); -3 added
 * MILES_META_CRC32 (a CRC-32 of every tensor, verified at open; required from
 * -3 on), and -3 files still load.  "miles-checkpoint-2" and
 * "miles-checkpoint-1" files (no CRC; -1 has no embedded tokenizer: the
 * vocabulary is found through "vocab_dir") are still read.  Every parameter must
 * be finite (checked at load, naming the tensor), the config is bounded before
 * any allocation, and "decision_threshold", when present, must be a number in [0, 1]. */
#define MILES_CHECKPOINT_FORMAT "miles-checkpoint-4"
#define MILES_META_FORMAT         "format"             /* MILES_CHECKPOINT_FORMAT */
#define MILES_META_CONFIG         "config"             /* model config JSON (miles_config_to_json) */
#define MILES_META_STATE          "state"              /* training state JSON (step, epoch, early stopping) */
#define MILES_META_TRAIN_CONFIG   "train_config"       /* the trainer settings JSON (max_len, lr, ...) */
#define MILES_META_THRESHOLD      "decision_threshold" /* F1-maximizing P(viral) threshold on validation */
#define MILES_META_SCALER         "data"               /* scaler + label threshold JSON (miles_scaler_to_json) */
#define MILES_META_TOKENIZER_HASH "tokenizer_hash"     /* miles_tokenizer_hash of the training vocabulary */
#define MILES_META_TEXT_CLEAN     "text_clean"         /* "none" | "seed" (MILES_TEXT_CLEAN_*) */
#define MILES_META_VOCAB_DIR      "vocab_dir"          /* where the vocabulary was at training (a hint) */
#define MILES_META_RECIPE         "recipe"             /* MilesTrainConfig.recipe */
#define MILES_META_DATA_SPLIT     "data_split"         /* how the training file's rows were split
                                                        * (miles_prepared_provenance_json; absent
                                                        * in checkpoints written before it) */
#define MILES_META_CRC32          "tensor_crc32"       /* {"tensor": "crc32 hex"} (safetensors.c verifies) */
#define MILES_META_HEADER_CRC32   "header_crc32"       /* CRC-32 of the rest of the header (safetensors.c verifies) */
/* the velocity target (MilesVelocityTarget): "log1p_z" with mean/std (%.17g);
 * absent = "minmax" (checkpoints written before it) */
#define MILES_META_VELOCITY_TARGET "velocity_target"
#define MILES_META_VELOCITY_MEAN   "velocity_target_mean"
#define MILES_META_VELOCITY_STD    "velocity_target_std"
/* the transformed train target's min/max (%.17g): the clamp range; absent = no clamp */
#define MILES_META_VELOCITY_MIN    "velocity_target_min"
#define MILES_META_VELOCITY_MAX    "velocity_target_max"
/* Platt scaling of P(viral) fitted after training (miles_checkpoint_save_calibrated;
 * `miles-eval --calibrate --save-calibrated`): {"method": "platt", "a", "b" (%.17g),
 * "fitted_on": split name, "n", "n_pos"}; absent = the model's own P(viral) */
#define MILES_META_CALIBRATION     "calibration"

typedef struct MilesCheckpoint MilesCheckpoint;
typedef struct MilesPlatt MilesPlatt;   /* Platt scaling of P(viral): the metrics section */
/* Open and validate a checkpoint (format, model config).  Read-only; the
 * handle may be shared between threads. */
MILES_API int miles_checkpoint_open(MilesCheckpoint **out, const char *path);
MILES_API void miles_checkpoint_close(MilesCheckpoint *c);
/* Metadata value (MILES_META_*), or NULL if absent. */
MILES_API const char *miles_checkpoint_meta(const MilesCheckpoint *c, const char *key);
/* Build the model the checkpoint holds (parameters loaded). */
MILES_API int miles_checkpoint_model(const MilesCheckpoint *c, MilesModel **out);
/* miles_checkpoint_open + miles_checkpoint_model + close. */
MILES_API int miles_checkpoint_load_model(MilesModel **out, const char *path);
/* The velocity target the model was trained on (MINMAX when the key is absent). */
MILES_API int miles_checkpoint_velocity_target(const MilesCheckpoint *c, MilesVelocityTarget *out);
/* The training data's scaler (MILES_EMISSING if the checkpoint has none). */
MILES_API int miles_checkpoint_scaler(const MilesCheckpoint *c, MilesScaler **out);
/* The training tokenizer: vocab_dir if given, else the embedded copy, else
 * the "vocab_dir" hint; its hash must equal the checkpoint's (MILES_EINVAL
 * naming both otherwise). */
MILES_API int miles_checkpoint_tokenizer(const MilesCheckpoint *c, const char *vocab_dir, MilesTokenizer **out);
/* 1 if the tokenizer files are embedded. */
MILES_API int miles_checkpoint_has_tokenizer(const MilesCheckpoint *c);
/* Decision threshold (0.5 if absent or invalid), text cleaning
 * (MILES_TEXT_CLEAN_*; MILES_EFORMAT for an unknown mode), the trainer's
 * max_len (0 if not recorded). */
MILES_API double miles_checkpoint_threshold(const MilesCheckpoint *c);
MILES_API int miles_checkpoint_text_clean(const MilesCheckpoint *c, int *mode);
MILES_API int miles_checkpoint_max_len(const MilesCheckpoint *c);
/* The stored calibration (MILES_META_CALIBRATION): *present = 1 and *out
 * filled (n, n_pos, a, b; the rest 0), or *present = 0 when there is none.
 * A malformed one (not JSON, another method, a or b not finite, a <= 0) is
 * MILES_EFORMAT naming the file and the field. */
MILES_API int miles_checkpoint_calibration(const MilesCheckpoint *c, MilesPlatt *out, int *present);
/* Write a copy of checkpoint c to out_path (atomically; out_path may be c's
 * own path) with calibration p (fitted on the rows of split fitted_on; a > 0)
 * in its metadata: every tensor byte for byte, every other metadata entry as
 * it was (a calibration already there is replaced), the CRCs computed anew. */
MILES_API int miles_checkpoint_save_calibrated(const MilesCheckpoint *c, const char *out_path, const MilesPlatt *p,
                                               const char *fitted_on);
/* MILES_OK if prepared data `p` is what the model was trained on: the same
 * scaler and label threshold and the same vocabulary (else MILES_EINVAL
 * saying which differs). */
MILES_API int miles_checkpoint_check_data(const MilesCheckpoint *c, const MilesPrepared *p);
/* Prepare csv_path to evaluate checkpoint c's model on it (another source, a
 * later crawl): miles_data_prepare with the checkpoint's feature scaler and
 * label threshold (metadata "data"), text cleaning and tokenizer (embedded, or
 * vocab_dir) instead of fitting them; every row goes to the test split, so the
 * file passes miles_checkpoint_check_data and `miles-eval --split test` scores
 * it.  Read from opt: language, dedup, leak_bound and max_len (<= 0: the
 * checkpoint's training max_len); the fitting options are the checkpoint's.
 * The label is the training threshold in views/day, not the new data's
 * percentile: the report gives the viral rate it makes. */
MILES_API int miles_data_prepare_for(const char *csv_path, const char *out_path, const MilesCheckpoint *c,
                                     const MilesPrepareOptions *opt, MilesPrepareReport *report);

/* ======================================================================== */
/* Section: metrics and baselines                                           */
/* (libmiles/metrics.c, baseline.c; docs/metrics.md)                        */
/* ======================================================================== */

/* Binary-classification and velocity metrics with scikit-learn semantics
 * (exact definitions and the sklearn function each one equals: docs/metrics.md).
 * Inputs: scores[n] = probability of the positive (viral) class, labels[n] in
 * {0,1}.  A prediction is positive iff score >= threshold.  Metrics that need
 * both classes are undefined for single-class input (MILES_EINVAL with a
 * message); empty input, NaN/Inf scores and labels other than 0/1 are
 * MILES_EINVAL / MILES_ENAN. */
/* Confusion matrix and derived metrics at a threshold (zero_division = 0). */
typedef struct MilesThresholdMetrics {
    double threshold;
    int64_t tn, fp, fn, tp;
    double accuracy, precision, recall, f1;
} MilesThresholdMetrics;
/* Regression metrics on velocity arrays (units are the caller's): MAE, MSE,
 * RMSE, R^2 (= sklearn r2_score: 1 - SS_res/SS_tot; when SS_tot == 0 it is 1 if
 * SS_res == 0 else 0). */
typedef struct MilesRegressionMetrics { double mae, mse, rmse, r2; } MilesRegressionMetrics;
MILES_API int miles_metric_regression(const double *pred, const double *target, int n,
                            MilesRegressionMetrics *out);

/* Curves for plots.  ROC: sklearn roc_curve(drop_intermediate=False), n_points =
 * distinct scores + 1, thresholds[0] = +inf (sklearn >= 1.3).  PR: sklearn
 * precision_recall_curve: n_points = distinct scores + 1, recall decreasing,
 * last point (recall 0, precision 1) has no threshold (thresholds[n-1] = NaN;
 * the others increase).  Arrays are malloc'd; free with miles_curve_free. */
typedef struct MilesCurve {
    int n;            /* points */
    double *x;        /* ROC: fpr;  PR: recall */
    double *y;        /* ROC: tpr;  PR: precision */
    double *thresholds; /* [n]; ROC: thresholds[0] = +inf;  PR: thresholds[n-1] = NaN */
} MilesCurve;
MILES_API int miles_metric_roc_curve(const double *scores, const int32_t *labels, int n, MilesCurve *out);
MILES_API int miles_metric_pr_curve(const double *scores, const int32_t *labels, int n, MilesCurve *out);
MILES_API void miles_curve_free(MilesCurve *c);

/* Everything the evaluator reports, in one struct. */
enum {
    MILES_M_AUROC = 1 << 0, MILES_M_AP = 1 << 1, MILES_M_P_AT_R10 = 1 << 2,
    MILES_M_BEST_F1 = 1 << 3, MILES_M_CALIBRATION = 1 << 4, MILES_M_THRESHOLD = 1 << 5,
    MILES_M_STORED = 1 << 6, MILES_M_VELOCITY = 1 << 7, MILES_M_BOOT_AUROC = 1 << 8,
    MILES_M_BOOT_MAE = 1 << 9, MILES_M_LOG_LOSS = 1 << 10
};
#define MILES_CALIB_BINS 15
typedef struct MilesMetricsOptions {
    double stored_threshold;   /* e.g. best-F1 threshold from validation; NaN = none */
    double class_weight[2];    /* sample weights of the log loss by label ({1,1}) */
    int n_bootstrap;           /* 1000; 0 = no intervals */
    uint64_t seed;             /* bootstrap seed, 42 */
    double alpha;              /* 0.05 -> 95% intervals */
    double min_recall;         /* 0.10 */
} MilesMetricsOptions;
MILES_API void miles_metrics_options_default(MilesMetricsOptions *opt);
typedef struct MilesMetrics {
    int n;
    int64_t n_pos;
    double prevalence;
    unsigned valid;            /* MILES_M_* bits of the fields that are defined */
    char reason[256];          /* why some metric is undefined ("" if none) */
    double auroc, average_precision, precision_at_recall, min_recall;
    MilesThresholdMetrics at_half;    /* threshold 0.5 */
    MilesThresholdMetrics at_stored;  /* options.stored_threshold (MILES_M_STORED) */
    double best_f1_threshold, best_f1;
    double ece, brier;
    double log_loss;           /* sum_i w[y_i] * -log(max(p(y_i), 1e-30)) / sum_i w[y_i], p(1) = score,
                                * w = options.class_weight (= sklearn log_loss with sample_weight,
                                * whose probabilities are clipped at 2.2e-16 instead) */
    int64_t calib_count[MILES_CALIB_BINS];
    double calib_mean_score[MILES_CALIB_BINS], calib_frac_pos[MILES_CALIB_BINS];
    MilesRegressionMetrics velocity;  /* MILES_M_VELOCITY */
    double auroc_lo, auroc_hi; int auroc_boot_used;
    double mae_lo, mae_hi;
    int n_bootstrap; uint64_t seed; double alpha;
    double ap_lo, ap_hi;       /* average precision's interval, on the AUROC's resamples (MILES_M_BOOT_AUROC) */
} MilesMetrics;
/* Compute every metric.  vel_pred/vel_true may be NULL (no velocity metrics).
 * opt NULL = defaults.  Returns MILES_OK when everything is defined; with
 * single-class labels it still fills what is defined (threshold metrics, ECE,
 * Brier, velocity), leaves the rest out of `valid`, sets `reason`, and returns
 * MILES_EINVAL with the same message.  Empty or non-finite input: error, *m
 * zeroed. */
MILES_API int miles_metrics_compute(MilesMetrics *m, const double *scores, const int32_t *labels, int n,
                          const double *vel_pred, const double *vel_true,
                          const MilesMetricsOptions *opt);
/* The velocity head's report (metrics_velocity.c; docs/metrics.md): the model
 * in its target space (pred/target) and in views/day (pred_raw/target_raw:
 * both or neither may be NULL), Spearman rho of pred vs target (rank-based:
 * the same in views/day up to the clamp at 0), the constant-median reference (median_target /
 * median_raw: the training split's medians; NaN = the evaluated targets'
 * median), and percentile-bootstrap intervals (opt->n_bootstrap resamples, the
 * same index stream as the AUROC/MAE intervals; NaN when 0). */
typedef struct MilesVelocityReport {
    int n, has_raw;
    MilesRegressionMetrics target, raw;
    double spearman;
    double median_target, median_raw;
    MilesRegressionMetrics median_ref_target, median_ref_raw;
    double target_mae_ci[2], target_rmse_ci[2], target_r2_ci[2], spearman_ci[2], raw_mae_ci[2], raw_r2_ci[2];
    int n_bootstrap; double alpha; uint64_t seed;
} MilesVelocityReport;
MILES_API int miles_velocity_report(MilesVelocityReport *r, const double *pred, const double *target,
                                    const double *pred_raw, const double *target_raw, int n, double median_target,
                                    double median_raw, const MilesMetricsOptions *opt);
/* Two scorers on the same rows (metrics_compare.c; docs/metrics.md, "Comparing
 * two models"): is model A's AUROC different from model B's?  DeLong's test for
 * two correlated ROC curves (DeLong, DeLong & Clarke-Pearson 1988; the midrank
 * algorithm of Sun & Xu 2014, O(n log n)): the variances and covariance of the
 * two AUROCs from their structural components (sample covariances, divisor
 * m-1 / n-1, as pROC and the reference implementations), z = diff / se, a
 * two-sided normal p-value and the Wald interval diff +- z_{1-alpha/2} se; plus
 * a percentile-bootstrap interval of diff on the same resamples (index stream)
 * as the other intervals (opt->n_bootstrap, NaN when 0).  Needs >= 2 rows of
 * each class.  se = 0 (e.g. both curves perfect): z = 0 and p = 1 when diff =
 * 0, else z = +-inf and p = 0. */
typedef struct MilesScoreComparison {
    int n;
    int64_t n_pos, n_neg;
    double auroc_a, auroc_b, diff;       /* diff = auroc_a - auroc_b */
    double var_a, var_b, cov;            /* DeLong (co)variances of the two AUROCs */
    double se, z, p_value;               /* se = sqrt(var_a + var_b - 2 cov) */
    double ci_lo, ci_hi;                 /* Wald interval of diff at 1 - alpha */
    double boot_lo, boot_hi;             /* percentile-bootstrap interval of diff */
    int boot_used;                       /* resamples with both classes */
    double alpha;
    /* average precision (PR-AUC) on the same rows: no closed-form test, the
     * paired-bootstrap interval of ap_diff on the same resamples as boot_* */
    double ap_a, ap_b, ap_diff, ap_boot_lo, ap_boot_hi;
} MilesScoreComparison;
MILES_API int miles_compare_scores(const double *scores_a, const double *scores_b, const int32_t *labels, int n,
                                  const MilesMetricsOptions *opt, MilesScoreComparison *out);
/* MAE of two predictors of the same targets: mae_a - mae_b and its
 * percentile-bootstrap interval (same resamples as above; NaN when
 * opt->n_bootstrap is 0). */
typedef struct MilesMaeComparison {
    int n;
    double mae_a, mae_b, diff;           /* diff = mae_a - mae_b */
    double boot_lo, boot_hi, alpha;
} MilesMaeComparison;
MILES_API int miles_compare_mae(const double *pred_a, const double *pred_b, const double *target, int n,
                                const MilesMetricsOptions *opt, MilesMaeComparison *out);
/* Recalibrating P(viral): Platt's sigmoid p' = sigma(a * logit(p) + b), fitted
 * on held-out rows (metrics_calibrate.c; docs/metrics.md "Recalibrating the
 * probabilities").  The objective is scikit-learn's
 * CalibratedClassifierCV(method="sigmoid") one (Platt's smoothed targets
 * (N+ + 1)/(N+ + 2) and 1/(N- + 2)), minimized by Newton's method to rounding
 * (sklearn's a and b are -a and -b here: it writes sigma(-(a x + b))).  The
 * logit is of p clipped to [2^-24, 1 - 2^-24] (fp32 scores cannot be closer to
 * 1), so |logit| <= logit_clip = 16.64.  Needs both classes and scores in
 * [0, 1] that are not all equal.  a <= 0 means the scores rank the fitting rows
 * no better than chance: the map would reverse or erase the ranking (callers
 * should refuse it). */
struct MilesPlatt {
    double a, b;              /* slope and intercept on the logit */
    int n;                    /* rows fitted on */
    int64_t n_pos;
    int iterations;           /* Newton steps taken */
    double objective;         /* Platt's objective at (a, b): a sum over the rows */
    double logit_clip;
};
MILES_API int miles_platt_fit(const double *scores, const int32_t *labels, int n, MilesPlatt *out);
/* out[i] = sigma(a * logit(scores[i]) + b); scores in [0, 1] (others: MILES_EINVAL). */
MILES_API int miles_platt_apply(const MilesPlatt *c, const double *scores, int n, double *out);
/* one score (NaN when it is not in [0, 1]) */
MILES_API double miles_platt_map(const MilesPlatt *c, double score);
/* log(p / (1 - p)) of p clipped to [2^-24, 1 - 2^-24] */
MILES_API double miles_platt_logit(double p);
/* numpy.median of v[n] (NaN if n < 1) */
MILES_API double miles_median(const double *v, int n);
/* JSON object as a malloc'd string (pretty-printed; free()).  Undefined
 * metrics are null, with "undefined_reason". */
MILES_API char *miles_metrics_to_json_string(const MilesMetrics *m);
/* Readable table to fp (undefined metrics print "n/a"). */
MILES_API int miles_metrics_print(const MilesMetrics *m, FILE *fp, const char *title);

/* ---- baseline settings (sklearn defaults of the original project) ---- */
/* TF-IDF (sklearn TfidfVectorizer) */
enum { MILES_NORM_NONE = 0, MILES_NORM_L1 = 1, MILES_NORM_L2 = 2 };
typedef struct MilesTfidfConfig {
    int max_features;         /* 5000; 0 = no limit */
    int ngram_min, ngram_max; /* 1, 1 */
    int lowercase;            /* 1: Python str.lower() before tokenizing */
    int stop_words_english;   /* 1: drop sklearn ENGLISH_STOP_WORDS (318 words) */
    double min_df;            /* 2 */
    int min_df_is_fraction;   /* 0: min_df is a document count (sklearn int) */
    double max_df;            /* 0.95 */
    int max_df_is_fraction;   /* 1: max_df is a proportion of documents (sklearn float) */
    int use_idf, smooth_idf, sublinear_tf; /* 1, 1, 0 */
    int norm;                 /* MILES_NORM_L2 */
} MilesTfidfConfig;
MILES_API void miles_tfidf_config_default(MilesTfidfConfig *cfg);
/* ---- L2 logistic regression (sklearn LogisticRegression, lbfgs) ----
 * Minimizes 0.5*||w||^2 + C * sum_i sw_i * logloss_i (intercept unpenalized),
 * sw_i = class weight of y_i (balanced: n / (2 n_c)), with an own L-BFGS
 * (two-loop recursion, strong-Wolfe line search). */
typedef struct MilesLogRegConfig {
    double C;                  /* 1.0 */
    int class_weight_balanced; /* 1; 0 = use class_weight[] */
    double class_weight[2];    /* {1,1} */
    int fit_intercept;         /* 1 */
    double tol;                /* 1e-10: stop when max|grad| <= tol * max(1, max|grad0|) */
    int max_iter;              /* 10000 */
    int history;               /* 10 (L-BFGS memory) */
} MilesLogRegConfig;
MILES_API void miles_logreg_config_default(MilesLogRegConfig *cfg);
/* ---- the baselines ----
 * Text: TF-IDF on titles + logistic regression (the original's baseline,
 * sklearn defaults above).  Numeric: logistic regression on the standardized
 * features.  Saved as JSON ({"kind":"tfidf_logreg"|"numeric_logreg", config,
 * vocabulary, idf, coef, intercept}), written atomically. */
typedef struct MilesBaseline MilesBaseline;
MILES_API int miles_baseline_fit_text(MilesBaseline **out, const char *const *texts, const int32_t *labels,
                            int n, const MilesTfidfConfig *tcfg, const MilesLogRegConfig *lcfg);
MILES_API int miles_baseline_fit_numeric(MilesBaseline **out, const float *X, int n, int d,
                               const int32_t *labels, const MilesLogRegConfig *lcfg);
/* Text baseline: texts[n] (X NULL).  Numeric: X [n,d] (texts NULL). */
MILES_API int miles_baseline_predict_proba(const MilesBaseline *b, const char *const *texts,
                                 const float *X, int n, int d, double *proba);
MILES_API int miles_baseline_save(const MilesBaseline *b, const char *path);
/* A saved baseline read back (every field validated; a truncated file, a
 * missing field or a wrong array length named with the file and field path):
 * it predicts bit for bit what the fitted one did. */
MILES_API int miles_baseline_load(MilesBaseline **out, const char *path);
MILES_API void miles_baseline_free(MilesBaseline *b);
/* What was fitted: text or numeric, feature dimension, TF-IDF vocabulary size,
 * L-BFGS iterations, final objective and gradient, convergence. */
typedef struct MilesBaselineInfo {
    int text, dim, vocab_size, n_iter, converged;
    double objective, grad_max;
} MilesBaselineInfo;
MILES_API void miles_baseline_info(const MilesBaseline *b, MilesBaselineInfo *info);

/* Ridge regression with scikit-learn Ridge(alpha, fit_intercept=True)
 * semantics (libmiles/ridge.c): minimizes ||y - X w - b||^2 + alpha ||w||^2,
 * solved in double (centering + Cholesky).  X [n,d] row-major; w [d], *b out.
 * The velocity baseline (miles-baseline --kind ridge, on the 18 standardized
 * features and the velocity target of MilesVelocityTarget). */
MILES_API int miles_ridge_fit(const float *X, int n, int d, const double *y, double alpha, double *w, double *b);
/* out[i] = b + X[i] . w */
MILES_API int miles_ridge_predict(const float *X, int n, int d, const double *w, double b, double *out);

/* ======================================================================== */
/* Section: explanations: integrated gradients                              */
/* (libmiles/explain.c, docs/explain.md)                                    */
/* ======================================================================== */

/* What is explained: P(viral) = softmax(logits)[1] (default), the viral
 * log-odds logit[1] - logit[0], or the velocity output (after its activation). */
enum { MILES_EXPLAIN_VIRAL_PROB = 0, MILES_EXPLAIN_VIRAL_LOGIT = 1, MILES_EXPLAIN_VELOCITY = 2 };
/* Path integral rule: Gauss-Legendre with `steps` nodes on [0,1] (default), or
 * the trapezoid rule with `steps` intervals (steps + 1 evaluations). */
enum { MILES_IG_GAUSS_LEGENDRE = 0, MILES_IG_TRAPEZOID = 1 };
/* Token baseline: the [PAD] word-embedding row, or the zero vector. */
enum { MILES_BASELINE_PAD = 0, MILES_BASELINE_ZERO = 1 };

typedef struct MilesExplainConfig {
    int steps;              /* quadrature nodes / intervals, 1..4096 (32) */
    int rule;               /* MILES_IG_* */
    int target;             /* MILES_EXPLAIN_* */
    int token_baseline;     /* MILES_BASELINE_* */
    int32_t pad_id, cls_id, sep_id; /* 0, 101, 102 (BERT uncased vocab); -1 = none.
                             * [CLS], [SEP] and padding (mask 0) keep their
                             * embedding along the path: attribution exactly 0 */
    const float *feature_baseline; /* [F] standardized; NULL = 0 = the training mean */
    int max_tokens;         /* path rows x T per forward pass (2048); bounds memory */
} MilesExplainConfig;
MILES_API void miles_explain_config_default(MilesExplainConfig *cfg);

/* Result of miles_explain_ig (arrays owned; miles_explanation_free). */
typedef struct MilesExplanation {
    int B, T, F;
    int target, rule, steps;
    int evals;              /* forward+backward rows per example */
    float *tokens;          /* [B,T] per-token attribution: sum over H of (x - x') * avg grad */
    float *features;        /* [B,F] per-feature attribution: (x - x') * avg grad */
    double *f_input;        /* [B] target at the input, f(x) */
    double *f_baseline;     /* [B] target at the baseline, f(x') */
    double *completeness_error; /* [B] sum(tokens) + sum(features) - (f(x) - f(x')) */
} MilesExplanation;
/* Integrated gradients (Sundararajan et al. 2017) of every row of `batch`
 * along the straight path x' + alpha (x - x') in (word embeddings, standardized
 * features), through the model's own backward, in eval mode (no dropout).
 * The path points of all rows are run as batches of up to max_tokens / T rows.
 * labels/velocity of the batch are ignored.  Uses (overwrites) the model's
 * activations; parameter gradients are untouched.  Deterministic. */
MILES_API int miles_explain_ig(MilesModel *m, const MilesBatch *batch, const MilesExplainConfig *cfg,
                     MilesExplanation **out);
MILES_API void miles_explanation_free(MilesExplanation *e);

/* WordPiece pieces -> words: a piece starting with "##" joins the previous
 * word (attributions summed, "##" dropped from the text); a NULL piece (pass
 * NULL for [CLS]/[SEP]/[PAD]) belongs to no word and ends the current one. */
typedef struct MilesExplainWord {
    char *text;             /* owned, NUL-terminated */
    float attribution;
    int first, count;       /* token range [first, first + count) */
} MilesExplainWord;
MILES_API int miles_explain_words(const char *const *pieces, const float *attr, int n, MilesExplainWord **words,
                        int *n_words);
MILES_API void miles_explain_words_free(MilesExplainWord *words, int n_words);

/* ======================================================================== */
/* Section: prediction: the predictor                                       */
/* (libmiles/predict.c; docs/serving.md)                                    */
/* ======================================================================== */

/* A predictor turns records into scores with exactly what training used: the
 * checkpoint's model, tokenizer (hash-checked), text cleaning, feature scaler
 * and decision threshold.  Features go through miles_scaler_transform_record,
 * so a record gives byte-identical inputs here and in the prepared training
 * file (tests/test_predict.c).  docs/serving.md has the details.
 *
 * Thread safety: miles_predictor_predict and miles_predictor_explain may be
 * called from several threads; records are featurized/tokenized in the calling
 * thread and the model's passes (the model holds its activations) are
 * serialized by a mutex inside the predictor.  For parallel forwards open one
 * predictor per thread.  Scores come from the trainer's own prediction loop:
 * the same row scores bit-identically here and in training/evaluation. */
typedef struct MilesPredictor MilesPredictor;
typedef struct MilesPredictorOptions {
    const char *vocab_dir;   /* NULL: the tokenizer embedded in the checkpoint (else its
                              * "vocab_dir" hint); given: must hash like the training one */
    int max_len;             /* 0: the trainer's max_len ("train_config"), else 128;
                              * capped at max_position_embeddings */
    int batch_size;          /* rows per forward pass (64) */
    const char *device;      /* NULL or "cpu" (default), "cuda", "cuda:N" */
    MilesPrecision precision;/* MILES_PRECISION_FP32 (default); see "devices and precisions" */
} MilesPredictorOptions;
MILES_API void miles_predictor_options_default(MilesPredictorOptions *opt);
/* Load a checkpoint written by miles_train_run (MilesCheckpoint contract).
 * Refuses a checkpoint without a scaler and a vocabulary whose hash differs
 * from the checkpoint's. */
MILES_API int miles_predictor_open(MilesPredictor **out, const char *checkpoint, const MilesPredictorOptions *opt);
MILES_API void miles_predictor_free(MilesPredictor *p);

/* Records (the data section's MilesRecord): "title" is required.  Understood
 * names: the seed-schema columns, the feature names, and the original API's
 * request fields view_count -> views, like_count -> likes, comment_count ->
 * comments, duration_seconds -> duration_sec.  Other names (description,
 * thumbnail_url, ...) are ignored. */
/* Column a name feeds (request field mapped; other names unchanged). */
MILES_API const char *miles_predictor_column_of(const char *name);

typedef struct MilesPrediction {
    double viral_score;        /* P(viral): the model's softmax, recalibrated when the checkpoint holds
                                * a calibration (MILES_META_CALIBRATION) */
    int is_viral;              /* viral_score_model >= the stored decision threshold */
    double predicted_velocity; /* views/day (miles_velocity_target_inverse of the output) */
    double velocity_scaled;    /* the model's output in its target space (min-max or log1p_z), clamped
                                * to the checkpoint's range (miles_velocity_target_clamp) if it has one */
    double confidence;         /* |viral_score - 0.5| * 2 */
    uint32_t supplied;         /* bit f: feature f given by a field of its own */
    uint32_t available;        /* bit f: feature f given or derived (miles_features_compute) */
    uint32_t filled;           /* bit f: missing, fed as the training mean (0 standardized); only
                                * features the model reads (available in training, not dropped) */
    int n_tokens;              /* tokens incl. [CLS]/[SEP] */
    int truncated;             /* the title had more word pieces than max_len - 2 */
    double viral_score_model;  /* the model's own softmax P(viral) (= viral_score without a calibration);
                                * last, so that the fields before keep their offsets */
} MilesPrediction;
/* Score n records (batched by batch_size).  A bad record fails the call with
 * a message "record i: ..." naming the field; out[] is then undefined. */
MILES_API int miles_predictor_predict(MilesPredictor *p, const MilesRecord *recs, int n, MilesPrediction *out);
/* The exact standardized model input of a record (what predict feeds). */
MILES_API int miles_predictor_features(const MilesPredictor *p, const MilesRecord *rec, float out[MILES_NUM_FEATURES],
                             uint32_t *available, uint32_t *supplied);
/* The title's token ids and mask, max_len entries each (padded), as predict
 * feeds them; *n_wordpieces (may be NULL) = word pieces before truncation. */
MILES_API int miles_predictor_encode(const MilesPredictor *p, const MilesRecord *rec, int32_t *ids, int32_t *mask,
                           int *len, int *n_wordpieces);
MILES_API const MilesModel *miles_predictor_model(const MilesPredictor *p);
MILES_API const MilesScaler *miles_predictor_scaler(const MilesPredictor *p);
MILES_API double miles_predictor_threshold(const MilesPredictor *p);
/* The checkpoint's calibration of P(viral), or NULL when it has none. */
MILES_API const MilesPlatt *miles_predictor_calibration(const MilesPredictor *p);
MILES_API int miles_predictor_max_len(const MilesPredictor *p);
MILES_API int miles_predictor_text_clean(const MilesPredictor *p);
/* "<run dir>/<file>@<tokenizer hash>", e.g. "run1/best.safetensors@1a2b..." */
MILES_API const char *miles_predictor_version(const MilesPredictor *p);
MILES_API const char *miles_predictor_tokenizer_hash(const MilesPredictor *p);
/* Checkpoint metadata read at open (MILES_META_* keys); NULL if absent. */
MILES_API const char *miles_predictor_metadata(const MilesPredictor *p, const char *key);

/* ---- explanations of records (integrated gradients, docs/explain.md) ---- */
/* The explanation settings for this predictor: the defaults with its
 * tokenizer's [PAD]/[CLS]/[SEP] ids. */
MILES_API void miles_predictor_explain_config(const MilesPredictor *p, MilesExplainConfig *cfg);
typedef struct MilesRecordExplanation {
    MilesExplanation *ig;          /* one row: tokens [T], features [F], f(x), f(x'), completeness */
    int n_tokens;                  /* T: the record's tokens incl. [CLS]/[SEP] */
    int32_t *ids;                  /* [T] token ids */
    const char **pieces;           /* [T] vocabulary entry of each token (owned by the
                                    * predictor); NULL for [CLS], [SEP], padding */
    MilesExplainWord *words;       /* word pieces joined ("##"), attributions summed */
    int n_words;
    float features[MILES_NUM_FEATURES]; /* the standardized input */
    uint32_t available;            /* features given or derived (others = the training mean) */
} MilesRecordExplanation;
/* Explain one record with the predictor's model, tokenizer and scaler (the
 * exact inputs miles_predictor_predict feeds), under the predictor's lock:
 * safe beside predictions from other threads.  cfg NULL =
 * miles_predictor_explain_config. */
MILES_API int miles_predictor_explain(MilesPredictor *p, const MilesRecord *rec, const MilesExplainConfig *cfg,
                            MilesRecordExplanation **out);
MILES_API void miles_record_explanation_free(MilesRecordExplanation *e);

/* ======================================================================== */
/* Section: ideas: topic patterns and model-scored title suggestions        */
/* (libmiles/ideas.c, ideas_suggest.c; docs/serving.md "Ideas")             */
/* ======================================================================== */

/* ---- topic view ----
 * A record matches a topic when every word of the topic occurs as a whole
 * word of its title, case-insensitively (ASCII letters and digits make words;
 * a trailing "s" is ignored, so "recipe" matches "Recipes").  An empty topic
 * matches every record.  1 = match, 0 = no match. */
MILES_API int miles_topic_match(const char *title, const char *topic);

typedef struct MilesTopicOptions {
    int top_n;          /* matches the patterns are computed on (10, as the original) */
    int max_matches;    /* matches kept in the ranking (100) */
    int explain_top;    /* top matches explained with integrated gradients (5; 0 = none) */
    int explain_steps;  /* IG steps for them (16) */
    int n_words;        /* top words / attributed words returned (10) */
} MilesTopicOptions;
MILES_API void miles_topic_options_default(MilesTopicOptions *opt);

typedef struct MilesTopicMatch {
    int index;          /* into the records given */
    double score;       /* P(viral) */
    double velocity;    /* predicted velocity (original units) */
} MilesTopicMatch;
typedef struct MilesTopicWord {
    char *word;         /* owned, lowercase */
    double value;       /* top_words: count; words_up/down: mean attribution */
    int count;          /* titles (top_words) or occurrences (attributions) */
} MilesTopicWord;
/* The topic view (miles_topic_free).  Patterns are the original's (average
 * title length in code points, average duration, average score, top words of
 * length > 3 without stopwords and "shorts") over the n_top best matches.
 * words_up/words_down: words of the explained titles with the largest
 * positive / negative mean attribution to P(viral); feature_attr: the mean
 * attribution of each feature over the explained titles (docs/explain.md). */
typedef struct MilesTopic {
    int n_records, n_matched;
    MilesTopicMatch *matches; int n_matches;  /* best first (ties: record order) */
    int n_top;
    double avg_title_length, avg_score;
    double avg_duration;                      /* over the top ones with a duration_sec (or duration_seconds)
                                               * field; NaN if none */
    MilesTopicWord *top_words; int n_top_words;
    MilesTopicWord *words_up; int n_up;
    MilesTopicWord *words_down; int n_down;
    double feature_attr[MILES_NUM_FEATURES];
    int n_explained;
} MilesTopic;
/* Score records (title required), keep those matching `topic`, rank them and
 * compute the patterns and attributions above.  opt NULL = defaults. */
MILES_API int miles_topic_analyze(MilesPredictor *p, const MilesRecord *recs, int n, const char *topic,
                                  const MilesTopicOptions *opt, MilesTopic **out);
MILES_API void miles_topic_free(MilesTopic *t);

/* ---- model-scored title suggestions ----
 * From a draft (a record: its title plus any stats), variants are made by
 * edits a creator would make: a hook phrase, a word the topic's attributions
 * rank high, shorter / longer, an emoji added or removed, question vs
 * statement, a number; then the best single edits are combined once.  All are
 * scored by the predictor with the draft's other fields (title_length and
 * has_emoji derived from each title).  Returned: the k best variants scoring
 * strictly above the draft, best first, each with its score change and the
 * edit.  The same draft, options and seed give the same answer; at most
 * max_variants records are scored. */
typedef struct MilesSuggestOptions {
    int k;                      /* suggestions returned at most (5) */
    int max_variants;           /* variants scored at most, 1..4096 (48) */
    uint64_t seed;              /* order in which edits are tried (0) */
    const MilesTopicWord *words;/* words to try (e.g. MilesTopic.words_up), may be NULL */
    int n_words;
    const char *topic;          /* if the draft matches it (miles_topic_match), every variant must; may be NULL */
} MilesSuggestOptions;
MILES_API void miles_suggest_options_default(MilesSuggestOptions *opt);
typedef struct MilesSuggestion {
    char *title;                /* owned */
    double score, delta;        /* P(viral), score - draft score (> 0) */
    char *reason;               /* owned: the edit(s), with the word's attribution when one is used */
} MilesSuggestion;
typedef struct MilesSuggestions {
    double draft_score;
    int n_scored;               /* variants scored */
    MilesSuggestion *items; int n;
} MilesSuggestions;
MILES_API int miles_suggest_titles(MilesPredictor *p, const MilesRecord *draft, const MilesSuggestOptions *opt,
                                   MilesSuggestions **out);
MILES_API void miles_suggestions_free(MilesSuggestions *s);

/* ======================================================================== */
/* Section: export — HF directory and ONNX model (libmiles/export_*.c)      */
/* ======================================================================== */

/* Export a Miles checkpoint for other runtimes (docs/export.md):
 *   HF directory: config.json (a BertConfig + a "miles" object: head config,
 *   scaler JSON, decision threshold, tokenizer hash), vocab.txt,
 *   tokenizer_config.json (+ tokenizer.json when the source has one),
 *   model.safetensors (encoder under HF BertModel names, the head under
 *   "miles.*" names) and miles_head.py (a PyTorch module running the whole
 *   model).  Built in a temporary directory beside `out_dir`, then renamed:
 *   on any failure no `out_dir` (and no temporary) is left.
 *   ONNX: one graph (opset 17, IR 8): inputs input_ids/attention_mask/
 *   token_type_ids [B,T] int64 and features [B,F] float; outputs logits [B,2],
 *   viral_prob [B] (softmax), velocity [B] (after the head activation); B and
 *   T dynamic; weights as float initializers named like the checkpoint.
 *   Written atomically (temp file + rename). */
typedef struct MilesExportOptions {
    const char *vocab_dir;  /* tokenizer dir (or vocab.txt); NULL: the one embedded in the checkpoint */
    int overwrite;          /* 1: replace an existing out_dir / file (default 0: refuse) */
    int pooled_only;        /* ONNX, pooler/cls pooling: the last layer computes only the [CLS]
                             * rows (K/V for every token), as Miles' own engine: the same outputs
                             * (to rounding), 2 of its 12 H^2 per token; no last_hidden_state
                             * intermediate then.  0: every row, as an HF BERT export. */
} MilesExportOptions;
MILES_API void miles_export_options_default(MilesExportOptions *opt);
/* Checkpoint -> HF directory.  The vocabulary's hash must equal the
 * checkpoint's "tokenizer_hash" when the checkpoint has one. */
MILES_API int miles_export_hf(const char *checkpoint, const char *out_dir, const MilesExportOptions *opt);
/* Checkpoint -> ONNX file (needs no tokenizer; opt may be NULL). */
MILES_API int miles_export_onnx(const char *checkpoint, const char *out_path, const MilesExportOptions *opt);
/* Export name of a checkpoint tensor: "bert.X" -> "X" (HF BertModel name),
 * anything else -> "miles.<name>" (e.g. "miles.fusion.0.weight"). */
MILES_API int miles_export_hf_name(const char *ckpt_name, char *out, size_t cap);

/* ======================================================================== */
/* Section: distributed training                                            */
/* (libmiles/dist.c, dist_zero1.c; docs/distributed.md)                     */
/* ======================================================================== */

/* ---- data parallelism ----
 * Synchronous data parallelism: `mpirun -np N miles-train ...`.  Each rank
 * takes a contiguous 1/N of every global batch (cfg->batch_size is the GLOBAL
 * batch), gradients are summed over the ranks, every rank takes the same
 * optimizer step; rank 0 alone evaluates, writes checkpoints and gets the
 * training events.  libmiles has no MPI: a handle from miles_dist_init is one
 * process; the MPI transport is the separate libmiles-mpi (miles_mpi.h,
 * pkg-config miles-mpi), whose miles_mpi_init returns a handle every call
 * below works on. */
typedef struct MilesDist MilesDist;
/* World size announced by a launcher in the environment (OMPI_COMM_WORLD_SIZE,
 * PMI_SIZE, MV2_COMM_WORLD_SIZE, SLURM_STEP_NUM_TASKS; 1 for a bare PMIX_RANK),
 * else 0 (started by hand). */
MILES_API int miles_dist_launched_size(void);
/* A one-process handle.  Launched by an MPI launcher with N > 1 ranks:
 * MILES_EUNSUPPORTED (use miles_mpi_init).  argc/argv are unused here. */
MILES_API int miles_dist_init(MilesDist **out, int *argc, char ***argv);
/* Free the handle (and leave MPI if miles_mpi_init joined it). */
MILES_API void miles_dist_finalize(MilesDist *d);
/* Rank / size in the job, and on this node (NULL handle: 0 / 1). */
MILES_API int miles_dist_rank(const MilesDist *d);
MILES_API int miles_dist_size(const MilesDist *d);
MILES_API int miles_dist_local_rank(const MilesDist *d);
MILES_API int miles_dist_local_size(const MilesDist *d);
/* In-place sums over all ranks (any n; split into INT_MAX chunks). */
MILES_API int miles_dist_allreduce_f32(MilesDist *d, float *buf, size_t n);
MILES_API int miles_dist_allreduce_f64(MilesDist *d, double *buf, size_t n);
/* Broadcast `bytes` bytes from rank `root` (used for checkpoints and the NCCL id). */
MILES_API int miles_dist_bcast(MilesDist *d, void *buf, size_t bytes, int root);
/* Every rank agrees on a status: returns the local status if it is an error,
 * else an error naming the failed rank(s) if any other rank failed, else MILES_OK. */
MILES_API int miles_dist_agree(MilesDist *d, int status);
/* End the whole job now (MPI_Abort); a no-op for one process. */
MILES_API void miles_dist_abort(MilesDist *d, int code);

#ifdef __cplusplus
}
#endif
#endif /* MILES_H */
