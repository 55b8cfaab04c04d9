/*
 * miles-train — fine-tune the viral-prediction model.
 *
 *   miles-train --data data.milesdat --model models/all-MiniLM-L6-v2 --out checkpoints/run1
 *   miles-train --csv videos.csv --init random --size tiny --epochs 3
 *   miles-train --recipe original ...        # the original project's choices, bugs included
 *   mpirun -np 4 miles-train --data ... --batch-size 128   # data parallel (docs/distributed.md)
 *
 * A JSON config file (--config) may set the same keys as the long options
 * (e.g. {"epochs": 5, "lr": 3e-5}); options on the command line override it.
 */
#include "miles.h"
#ifdef MILES_HAVE_MPI
#include "miles_mpi.h" /* data parallelism: libmiles-mpi */
#endif
#include "calibrate.h"
#include "tool_common.h"
#include "train_log.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define DEFAULT_VOCAB "models/all-MiniLM-L6-v2"

static volatile int g_stop;
static void on_sigint(int sig) { (void)sig; g_stop = 1; }

/* Data parallelism: every rank runs this program; rank 0 alone prints and writes. */
static MilesDist *g_dist;
static char g_prog[64] = "miles-train";

static void usage(FILE *f) {
    fprintf(f,
"usage: miles-train [options]\n"
"\n"
"Data (one of):\n"
"  --data FILE            prepared data file written by `miles-data prepare`\n"
"  --csv FILE             seed-schema CSV: prepared on the fly into OUT/prepared.milesdat\n"
"                         (its report as JSON: OUT/prepare_report.json)\n"
"    --vocab DIR          tokenizer for --csv (default: the --model dir, else models/all-MiniLM-L6-v2)\n"
"    --language L         keep rows of language L (default en; \"any\" keeps all)\n"
"    --text-clean M       seed|none (default none; original: seed)\n"
"    --threshold-scope S  train|all|cohort: where the viral percentile is computed (default train;\n"
"                         cohort: among videos published in the same --cohort-days N days, default 7)\n"
"    --cohort-days N      the cohort's window (with --threshold-scope cohort)\n"
"    --split-by K         row|creator|time (default row; time: oldest publish days train)\n"
"    --drop-features A,B  mask features (e.g. views; groups counts, rates, engagement) after standardization\n"
"    --creator-avg R      data|prior: creator_avg_views as given (in-sample), or the mean views\n"
"                         of the creator's videos from earlier days (see miles-data prepare)\n"
"\n"
"Model:\n"
"  --model DIR            HF model directory (config.json, vocab.txt, model.safetensors or its shards)\n"
"  --init random          random initialization instead (with --size)\n"
"  --size S               tiny|minilm-l6|bert-base for --init random (default tiny)\n"
"  --preset P             miles|seed-notebook (default miles)\n"
"  --pooling P            pooler|cls|mean (default: the preset's)\n"
"\n"
"Training (defaults follow the original run with its bugs fixed):\n"
"  --recipe R             default|original (original: seed-notebook preset, weight decay on\n"
"                         every tensor, unweighted CE, schedule stepped once per epoch, label\n"
"                         threshold on all rows, seed title cleaning); an option given\n"
"                         with it (--preset, --class-weights, --schedule, --threshold-scope,\n"
"                         --text-clean) wins over the recipe's choice\n"
"  --batch-size N         32            --max-len N        128\n"
"  --epochs N             15            --lr X             2e-5 (the encoder's)\n"
"  --head-lr X            lr of the new layers (numeric MLP, fusion, heads); default 1e-3 with\n"
"                         a pretrained encoder (--model) and the default recipe, else = --lr\n"
"  --layer-decay X        layer-wise lr decay of the encoder in (0,1): layer l of L at\n"
"                         lr*X^(L-l), embeddings lr*X^(L+1) (default off)\n"
"  --velocity-target T    log1p_z|minmax: log1p_z = standardized log1p(views/day) with a linear\n"
"                         head (default for the miles preset), minmax = the seed's min-max\n"
"                         (default for --recipe original and --preset seed-notebook)\n"
"  --weight-decay X       0.01          --warmup N         500 (optimizer steps)\n"
"  --schedule S           cosine|linear|constant (default cosine, stepped every optimizer step)\n"
"  --clip X               1.0 (global grad-norm; 0 = off)\n"
"  --loss-weights C,R     0.5,0.5 with log1p_z (docs/results.md), 0.95,0.05 with minmax\n"
"  --class-weights W      auto (N/(2 N_c) from train) | none | w0,w1   (default auto)\n"
"  --patience N           3             --min-delta X      0.001 (early stopping on val AUROC)\n"
"  --eval-every N         evaluate every N optimizer steps (default: every epoch)\n"
"  --log-every N          a log.jsonl step line per N optimizer steps, loss their mean\n"
"                         (default 1 on the CPU, 10 on CUDA)\n"
"  --grad-accum N         1             --bucket           length bucketing\n"
"  --seed N               42            --threads N        OpenMP/BLAS threads\n"
"  --max-steps N          stop after N optimizer steps (smoke runs)\n"
"\n"
"Distributed (mpirun -np N miles-train ...; srun; see docs/distributed.md):\n"
"  each rank trains on 1/N of every batch; --batch-size is the GLOBAL batch; rank 0\n"
"  logs, evaluates and writes checkpoints; --resume works with any N.\n"
"  --zero1                shard the AdamW moments across ranks (ZeRO stage 1)\n"
"  --device cpu|cuda|cuda:N   where to train (default cpu; CUDA loads libmiles_cuda.so)\n"
"  --precision fp32|tf32|fp16|bf16   CUDA precision (fp16: fp32 master weights + dynamic loss\n"
"                         scaling; bf16/tf32 need sm_80+); the CPU trains in fp32\n"
"\n"
"Output:\n"
"  --out DIR              checkpoint directory (default checkpoints/<run>)\n"
"  --run NAME             run name (default: miles-<preset>-<seed>)\n"
"  --resume               continue bit-identically from OUT/last.safetensors\n"
"  --calibrate            after training, fit Platt scaling of P(viral) on the val split\n"
"                         (the class weights raise the probabilities) and write\n"
"                         OUT/calibrated.safetensors: best.safetensors with the map, which\n"
"                         miles-predict and miles-serve answer with (docs/metrics.md)\n"
"  --config FILE          JSON file of option values (command line overrides)\n"
"  --quiet                no progress output\n"
"  -h, --help             this help\n"
"\n"
"Writes OUT/best.safetensors (best val AUROC), OUT/last.safetensors (with optimizer\n"
"state, for --resume), OUT/log.jsonl, OUT/tb/events.out.tfevents.*, OUT/train_result.json\n"
"(and with --calibrate OUT/calibrated.safetensors).\n"
"SIGINT, SIGTERM or SIGUSR1 saves last.safetensors and exits cleanly (status 130); under\n"
"mpirun send SIGUSR1 to mpirun (it forwards it; Ctrl-C makes mpirun kill the ranks).\n");
}

enum {
    O_DATA = 256, O_CSV, O_VOCAB, O_LANG, O_CLEAN, O_SCOPE, O_SPLITBY, O_DROP, O_MODEL, O_INIT, O_SIZE,
    O_PRESET, O_POOL, O_RECIPE, O_BATCH, O_MAXLEN, O_EPOCHS, O_LR, O_WD, O_WARMUP, O_SCHED, O_CLIP,
    O_LOSSW, O_CLASSW, O_PATIENCE, O_MINDELTA, O_EVALEVERY, O_ACCUM, O_BUCKET, O_SEED, O_THREADS,
    O_MAXSTEPS, O_OUT, O_RUN, O_RESUME, O_CONFIG, O_QUIET, O_ZERO1, O_DEVICE, O_PRECISION, O_HEADLR, O_LAYERDECAY,
    O_VTARGET, O_LOGEVERY, O_CALIBRATE, O_COHORT, O_CREATORAVG
};

static const struct option long_opts[] = {
    {"data", 1, 0, O_DATA}, {"csv", 1, 0, O_CSV}, {"vocab", 1, 0, O_VOCAB}, {"language", 1, 0, O_LANG},
    {"text-clean", 1, 0, O_CLEAN}, {"threshold-scope", 1, 0, O_SCOPE}, {"split-by", 1, 0, O_SPLITBY},
    {"cohort-days", 1, 0, O_COHORT}, {"creator-avg", 1, 0, O_CREATORAVG},
    {"drop-features", 1, 0, O_DROP}, {"model", 1, 0, O_MODEL}, {"init", 1, 0, O_INIT}, {"size", 1, 0, O_SIZE},
    {"preset", 1, 0, O_PRESET}, {"pooling", 1, 0, O_POOL}, {"recipe", 1, 0, O_RECIPE},
    {"batch-size", 1, 0, O_BATCH}, {"max-len", 1, 0, O_MAXLEN}, {"epochs", 1, 0, O_EPOCHS}, {"lr", 1, 0, O_LR},
    {"weight-decay", 1, 0, O_WD}, {"warmup", 1, 0, O_WARMUP}, {"schedule", 1, 0, O_SCHED}, {"clip", 1, 0, O_CLIP},
    {"loss-weights", 1, 0, O_LOSSW}, {"class-weights", 1, 0, O_CLASSW}, {"patience", 1, 0, O_PATIENCE},
    {"min-delta", 1, 0, O_MINDELTA}, {"eval-every", 1, 0, O_EVALEVERY}, {"log-every", 1, 0, O_LOGEVERY}, {"grad-accum", 1, 0, O_ACCUM},
    {"bucket", 0, 0, O_BUCKET}, {"seed", 1, 0, O_SEED}, {"threads", 1, 0, O_THREADS},
    {"max-steps", 1, 0, O_MAXSTEPS}, {"out", 1, 0, O_OUT}, {"run", 1, 0, O_RUN}, {"resume", 0, 0, O_RESUME},
    {"config", 1, 0, O_CONFIG}, {"quiet", 0, 0, O_QUIET}, {"zero1", 0, 0, O_ZERO1}, {"help", 0, 0, 'h'},
    {"device", 1, 0, O_DEVICE}, {"precision", 1, 0, O_PRECISION}, {"head-lr", 1, 0, O_HEADLR},
    {"layer-decay", 1, 0, O_LAYERDECAY}, {"velocity-target", 1, 0, O_VTARGET}, {"calibrate", 0, 0, O_CALIBRATE},
    {0, 0, 0, 0}};

typedef struct Opts {
    const char *data, *csv, *vocab, *language, *text_clean, *scope, *split_by, *drop, *cohort_days, *creator_avg;
    const char *model, *init, *size, *preset, *pooling, *recipe, *schedule, *loss_w, *class_w;
    const char *out, *run, *device, *vtarget;
    MilesPrecision precision;
    int batch, max_len, epochs, warmup, patience, eval_every, log_every, accum, bucket, threads, resume, quiet, zero1;
    int calibrate;
    double lr, wd, clip, min_delta, head_lr, layer_decay;
    long long seed, max_steps;
    int set_epochs, set_warmup, set_lossw, set_headlr, set_scope, set_preset, set_classw, set_schedule; /* recipe defaults apply only to unset options */
    MilesPrepareOptions prep;   /* --csv: the data words (split, scope, cohort, cleaning), parsed with the options */
    int data_opts;              /* a --csv-only data option was given */
} Opts;

/* The --config file's values: Opts keeps pointers to them for the whole run,
 * so they live in this table to the end (reachable, not leaks to
 * LeakSanitizer; freed by the exit).  NULL when full or out of memory. */
static char *g_cfg_values[512];
static int g_ncfg;
static const char *keep_string(const char *s) {
    if (g_ncfg == (int)(sizeof g_cfg_values / sizeof *g_cfg_values)) return NULL;
    char *d = strdup(s);
    if (d) g_cfg_values[g_ncfg++] = d;
    return d;
}

/* Apply one option (from argv or the JSON config file). */
static int apply_opt(Opts *o, int code, const char *v) {
    switch (code) {
    case O_DATA: o->data = v; break;
    case O_CSV: o->csv = v; break;
    case O_VOCAB: o->vocab = v; break;
    case O_LANG: o->language = v; o->data_opts = 1; break;
    case O_CLEAN: o->text_clean = v; o->data_opts = 1; break;
    case O_SCOPE: o->scope = v; o->data_opts = 1; o->set_scope = 1; break;
    case O_COHORT: o->cohort_days = v; o->data_opts = 1; break;
    case O_CREATORAVG: o->creator_avg = v; o->data_opts = 1; break;
    case O_SPLITBY: o->split_by = v; o->data_opts = 1; break;
    case O_DROP: o->drop = v; o->data_opts = 1; break;
    case O_MODEL: o->model = v; break;
    case O_INIT: o->init = v; break;
    case O_SIZE: o->size = v; break;
    case O_PRESET: o->preset = v; o->set_preset = 1; break;
    case O_POOL: o->pooling = v; break;
    case O_RECIPE: o->recipe = v; break;
    case O_BATCH: return tool_parse_int(v, "--batch-size", 1, 1 << 20, &o->batch);
    case O_MAXLEN: return tool_parse_int(v, "--max-len", 2, 1 << 16, &o->max_len);
    case O_EPOCHS: o->set_epochs = 1; return tool_parse_int(v, "--epochs", 1, 1 << 20, &o->epochs);
    case O_LR: return tool_parse_double(v, "--lr", 0, 10, &o->lr);
    case O_WD: return tool_parse_double(v, "--weight-decay", 0, 10, &o->wd);
    case O_WARMUP: o->set_warmup = 1; return tool_parse_int(v, "--warmup", 0, 1 << 30, &o->warmup);
    case O_SCHED: o->schedule = v; o->set_schedule = 1; break;
    case O_CLIP: return tool_parse_double(v, "--clip", 0, 1e9, &o->clip);
    case O_LOSSW: o->loss_w = v; o->set_lossw = 1; break;
    case O_HEADLR: o->set_headlr = 1; return tool_parse_double(v, "--head-lr", 0, 10, &o->head_lr);
    case O_LAYERDECAY: return tool_parse_double(v, "--layer-decay", 0, 1, &o->layer_decay);
    case O_VTARGET: o->vtarget = v; break;
    case O_CLASSW: o->class_w = v; o->set_classw = 1; break;
    case O_PATIENCE: return tool_parse_int(v, "--patience", 0, 1 << 20, &o->patience);
    case O_MINDELTA: return tool_parse_double(v, "--min-delta", 0, 1, &o->min_delta);
    case O_EVALEVERY: return tool_parse_int(v, "--eval-every", 0, 1 << 30, &o->eval_every);
    case O_LOGEVERY: return tool_parse_int(v, "--log-every", 0, 1 << 30, &o->log_every);
    case O_ACCUM: return tool_parse_int(v, "--grad-accum", 1, 1 << 16, &o->accum);
    case O_BUCKET: o->bucket = 1; break;
    case O_CALIBRATE: o->calibrate = 1; break;
    case O_SEED: { double d; if (tool_parse_double(v, "--seed", 0, 9.007199254740992e15, &d)) return 1; o->seed = (long long)d; break; }
    case O_THREADS: return tool_parse_int(v, "--threads", 1, 4096, &o->threads);
    case O_MAXSTEPS: { double d; if (tool_parse_double(v, "--max-steps", 0, 9e15, &d)) return 1; o->max_steps = (long long)d; break; }
    case O_OUT: o->out = v; break;
    case O_RUN: o->run = v; break;
    case O_RESUME: o->resume = 1; break;
    case O_QUIET: o->quiet = 1; break;
    case O_ZERO1: o->zero1 = 1; break;
    case O_DEVICE: return tool_parse_device(v, "--device", &o->device);
    case O_PRECISION: return tool_parse_precision(v, "--precision", &o->precision);
    default: return 1;
    }
    return 0;
}

/* --config FILE: {"epochs": 5, "lr": 3e-5, "bucket": true, ...} with long-option names. */
static int load_config_file(Opts *o, const char *path) {
    char *text = NULL;
    if (tool_read_file(path, &text) != MILES_OK) return tool_fail("miles-train", MILES_EIO);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "miles-train: %s: not a JSON object\n", path);
        cJSON_Delete(root);
        return 1;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        const struct option *lo = long_opts;
        while (lo->name && strcmp(lo->name, it->string) != 0) lo++;
        if (!lo->name || lo->val == O_CONFIG) {
            fprintf(stderr, "miles-train: %s: unknown key \"%s\"\n", path, it->string);
            cJSON_Delete(root);
            return 1;
        }
        char buf[64];
        const char *v = NULL;
        if (cJSON_IsString(it)) v = keep_string(it->valuestring);
        else if (cJSON_IsNumber(it)) { snprintf(buf, sizeof buf, "%.17g", it->valuedouble); v = keep_string(buf); }
        else if (cJSON_IsBool(it)) { if (cJSON_IsFalse(it)) continue; v = ""; }
        else {
            fprintf(stderr, "miles-train: %s: key \"%s\" must be a string, number or boolean\n", path, it->string);
            cJSON_Delete(root);
            return 1;
        }
        if (!v) {
            fprintf(stderr, "miles-train: %s: too many keys (or out of memory)\n", path);
            cJSON_Delete(root);
            return 1;
        }
        if (apply_opt(o, lo->val, v)) { cJSON_Delete(root); return 1; }
    }
    cJSON_Delete(root);
    return 0;
}

static int pooling_code(const char *s, int *out) {
    if (!strcmp(s, "pooler")) *out = MILES_POOL_POOLER;
    else if (!strcmp(s, "cls")) *out = MILES_POOL_CLS;
    else if (!strcmp(s, "mean")) *out = MILES_POOL_MEAN;
    else { fprintf(stderr, "miles-train: --pooling must be pooler, cls or mean (got \"%s\")\n", s); return 1; }
    return 0;
}

/* Vocabulary size of a random-init encoder: the tokenizer's, else the data's largest id + 1. */
static int random_vocab_size(const char *vdir, const MilesPrepared *prep, int quiet) {
    MilesTokenizer *tok = NULL;
    if (miles_tokenizer_load(&tok, vdir) == MILES_OK) {
        int v = miles_tokenizer_vocab_size(tok);
        miles_tokenizer_free(tok);
        return v;
    }
    int32_t mx = 0;
    for (int sp = 0; sp < 3; sp++) {
        MilesDataset d;
        if (miles_prepared_split(prep, sp, &d) != MILES_OK) continue;
        for (int64_t i = 0; i < d.n * d.max_len; i++) if (d.input_ids[i] > mx) mx = d.input_ids[i];
    }
    if (!quiet) fprintf(stderr, "note: no tokenizer at %s; vocabulary sized to the data (%d)\n", vdir, mx + 1);
    return mx + 1;
}

/* The default vocabulary, when it is the one the data was prepared with. */
static const char *default_vocab_if_same(const char *vdir, const MilesPrepared *prep) {
    MilesTokenizer *tok = NULL;
    char hash[17] = "";
    if (miles_tokenizer_load(&tok, vdir) == MILES_OK) miles_tokenizer_hash(tok, hash);
    miles_tokenizer_free(tok);
    miles_clear_error();
    return strcmp(hash, miles_prepared_vocab_hash(prep)) == 0 ? vdir : NULL;
}

/* Options: defaults, then --config, then the command line; the recipe's
 * choices.  Returns -1 to go on, else an exit status. */
static int parse_options(int argc, char **argv, Opts *o) {
    memset(o, 0, sizeof *o);
    o->batch = 32; o->max_len = 128; o->epochs = 15; o->warmup = 500; o->patience = 3; o->accum = 1;
    o->lr = 2e-5; o->wd = 0.01; o->clip = 1.0; o->min_delta = 0.001; o->seed = 42;
    o->preset = "miles"; o->recipe = "default"; o->schedule = "cosine"; o->loss_w = "0.95,0.05"; o->class_w = "auto";
    o->size = "tiny"; o->language = "en"; o->scope = "train"; o->split_by = "row";
    /* pass 1: --config first, so the command line overrides it */
    for (int i = 1; i < argc - 1; i++)
        if (!strcmp(argv[i], "--config") && load_config_file(o, argv[i + 1])) return 2;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == 'h') { usage(stdout); return 0; }
        if (c == O_CONFIG) continue;
        if (c == '?' || apply_opt(o, c, optarg)) { usage(stderr); return 2; }
    }
    if (optind < argc) { fprintf(stderr, "miles-train: unexpected argument \"%s\"\n", argv[optind]); return 2; }
    /* a device that cannot run is refused at once, in one line, before any data is read */
    if (miles_device_check(o->device, o->precision, 1) != MILES_OK) return tool_fail("miles-train", MILES_EUNSUPPORTED);
    if (!!o->data + !!o->csv != 1) { fprintf(stderr, "miles-train: give exactly one of --data or --csv (see --help)\n"); return 2; }
    if (!o->model && !(o->init && !strcmp(o->init, "random"))) {
        fprintf(stderr, "miles-train: give --model DIR (pretrained encoder) or --init random (see --help)\n");
        return 2;
    }
    if (o->data && o->data_opts) {
        fprintf(stderr, "miles-train: --language, --text-clean, --threshold-scope, --cohort-days, --split-by, --creator-avg and --drop-features "
                        "apply when preparing data (--csv); %s is already prepared: re-run miles-data prepare "
                        "with them, or train from --csv\n", o->data);
        return 2;
    }
    if (strcmp(o->recipe, "original") && strcmp(o->recipe, "default")) {
        fprintf(stderr, "miles-train: --recipe must be default or original\n");
        return 2;
    }
    if (!strcmp(o->recipe, "original")) {
        /* the recipe fills in what the command line left unset: an option given
         * with it is the user's (it was overwritten silently before) */
        if (!o->set_preset) o->preset = "seed-notebook";
        if (!o->set_classw) o->class_w = "none";
        o->text_clean = o->text_clean ? o->text_clean : "seed";
        if (!o->set_scope) o->scope = "all";
    }
    /* issue 17's recipe: the new layers learn at their own lr when the encoder is
     * pretrained, and the miles preset predicts standardized log1p(velocity) */
    if (!o->set_headlr) o->head_lr = !strcmp(o->recipe, "default") && o->model ? 1e-3 : 0.0;
    if (!o->vtarget) o->vtarget = !strcmp(o->recipe, "default") && !strcmp(o->preset, "miles") ? "log1p_z" : "minmax";
    int vk;
    if (miles_velocity_target_parse(o->vtarget, &vk) != MILES_OK) {
        fprintf(stderr, "miles-train: --velocity-target must be log1p_z or minmax (got \"%s\")\n", o->vtarget);
        return 2;
    }
    if (!o->set_lossw) o->loss_w = vk == MILES_VTARGET_LOG1P_Z ? "0.5,0.5" : "0.95,0.05";
    /* checked here, before any data is read; open_data starts from them */
    miles_prepare_options_default(&o->prep);
    if (tool_prepare_words("miles-train", o->split_by, o->scope, o->cohort_days, o->text_clean, o->creator_avg, &o->prep)) return 2;
    return -1;
}

/* --data, or --csv prepared into OUT/prepared.milesdat (rank 0 prepares). */
static int open_data(const Opts *o, const char *out_dir, int root, MilesPrepared **prep) {
    char prepared_path[4200];
    if (o->csv) {
        snprintf(prepared_path, sizeof prepared_path, "%s/prepared.milesdat", out_dir);
        if (!o->resume) {
            int s = MILES_OK;
            MilesPrepareOptions po = o->prep;
            po.vocab_dir = o->vocab ? o->vocab : o->model ? o->model : po.vocab_dir;
            po.max_len = o->max_len;
            po.language = strcmp(o->language, "any") ? o->language : NULL;
            po.seed = (uint64_t)o->seed;
            if (o->drop && tool_feature_mask(o->drop, &po.drop_mask)) return 2;
            MilesPrepareReport rep;
            if (root) s = miles_data_prepare(o->csv, prepared_path, &po, &rep);
            s = miles_dist_agree(g_dist, s);
            if (s != MILES_OK) return tool_fail("miles-train: prepare", s);
            if (root && !o->quiet) {
                char buf[8192];
                miles_prepare_report_format(&rep, po.leak_bound, buf, sizeof buf);
                fputs(buf, stderr);
            }
            /* the same report for scripts beside the data it describes */
            char report_path[4200];
            snprintf(report_path, sizeof report_path, "%s/prepare_report.json", out_dir);
            if (root) s = tool_write_prepare_report(g_prog, report_path, o->csv, prepared_path, &rep, po.leak_bound)
                              ? MILES_EIO : MILES_OK;
            if (miles_dist_agree(g_dist, s) != MILES_OK) return 1;
        }
    } else {
        snprintf(prepared_path, sizeof prepared_path, "%s", o->data);
    }
    int s = miles_prepared_open(prep, prepared_path);
    if (s != MILES_OK) return tool_fail(g_prog, s);
    if (!strcmp(o->recipe, "original") && o->data && !o->quiet && miles_prepared_text_clean(*prep) != MILES_TEXT_CLEAN_SEED)
        fprintf(stderr, "note: --recipe original with --data: the data-side choices (label threshold on all rows, "
                        "seed title cleaning) are whatever %s was prepared with; this file was not prepared with "
                        "--text-clean seed. Use --csv (or miles-data prepare --threshold-scope all --text-clean seed) "
                        "to reproduce the original exactly\n", o->data);
    return -1;
}

/* A pretrained encoder (--model) or a random one (--init random). */
static int build_model(const Opts *o, const MilesPrepared *prep, MilesModel **out) {
    MilesConfig cfg;
    int s = miles_config_preset(&cfg, o->preset, o->model ? "bert-base" : o->size);
    if (s != MILES_OK) return tool_fail(g_prog, s);
    /* a standardized target is unbounded: linear head (min-max keeps the preset's) */
    if (!strcmp(o->vtarget, "log1p_z")) cfg.velocity_activation = MILES_VEL_LINEAR;
    if (o->pooling && pooling_code(o->pooling, &cfg.pooling)) return 2;
    if (o->model) {
        MilesLoadReport lr;
        s = miles_model_load_hf(out, o->model, &cfg, (uint64_t)o->seed, &lr);
        if (s != MILES_OK) return tool_fail(g_prog, s);
        if (!o->quiet) fprintf(stderr, "loaded %s: %d tensors%s%s\n", o->model, lr.n_loaded,
                               lr.message[0] ? "; " : "", lr.message);
        return -1;
    }
    /* a random encoder still reads the prepared ids: size the vocabulary to the tokenizer */
    cfg.vocab_size = random_vocab_size(o->vocab ? o->vocab : DEFAULT_VOCAB, prep, o->quiet);
    s = miles_model_build(out, &cfg);
    if (s == MILES_OK) s = miles_model_init_random(*out, (uint64_t)o->seed, 0.02f);
    return s == MILES_OK ? -1 : tool_fail(g_prog, s);
}

/* The options as a MilesTrainConfig (the recipe's training choices included). */
static int train_config(const Opts *o, const char *out_dir, const MilesPrepared *prep, MilesTrainConfig *tc) {
    miles_train_config_default(tc);
    tc->batch_size = o->batch;
    tc->max_len = o->max_len;
    tc->epochs = o->epochs;
    tc->grad_accum = o->accum;
    tc->lr = (float)o->lr;
    tc->head_lr = (float)o->head_lr;
    tc->layer_decay = (float)o->layer_decay;
    miles_velocity_target_parse(o->vtarget, &tc->velocity_target);
    tc->weight_decay = (float)o->wd;
    tc->warmup_steps = o->warmup;
    tc->clip = (float)o->clip;
    tc->patience = o->patience;
    tc->min_delta = (float)o->min_delta;
    tc->eval_every = o->eval_every;
    tc->log_every = o->log_every;
    tc->bucket = o->bucket;
    tc->seed = (uint64_t)o->seed;
    tc->max_steps = o->max_steps;
    tc->out_dir = out_dir;
    tc->resume = o->resume;
    tc->stop_flag = &g_stop;
    tc->dist = g_dist;
    tc->zero1 = o->zero1;
    tc->device = o->device;
    tc->precision = o->precision;
    tc->recipe = o->recipe;
    if (!strcmp(o->schedule, "cosine")) tc->schedule = MILES_SCHED_COSINE;
    else if (!strcmp(o->schedule, "linear")) tc->schedule = MILES_SCHED_LINEAR;
    else if (!strcmp(o->schedule, "constant")) tc->schedule = MILES_SCHED_CONSTANT;
    else { fprintf(stderr, "miles-train: --schedule must be cosine, linear or constant\n"); return 2; }
    if (!strcmp(o->recipe, "original")) {
        tc->decay_all = 1;
        if (!o->set_schedule) { /* an explicit --schedule is the fixed one: stepped every optimizer step */
            tc->schedule = MILES_SCHED_ORIGINAL;
            tc->schedule_per_epoch = 1;
            tc->eta_min = 1e-7f;
        }
    }
    if (sscanf(o->loss_w, "%f,%f", &tc->loss.w_cls, &tc->loss.w_reg) != 2) {
        fprintf(stderr, "miles-train: --loss-weights wants C,R (e.g. 0.95,0.05), got \"%s\"\n", o->loss_w);
        return 2;
    }
    if (!strcmp(o->class_w, "auto")) {
        tc->auto_class_weight = 1; /* n / (2 n_c) of the training split (the library computes it) */
    } else if (!strcmp(o->class_w, "none")) {
        tc->loss.class_weight[0] = tc->loss.class_weight[1] = 1.0f;
    } else if (sscanf(o->class_w, "%f,%f", &tc->loss.class_weight[0], &tc->loss.class_weight[1]) != 2 ||
               !(tc->loss.class_weight[0] > 0) || !(tc->loss.class_weight[1] > 0)) {
        fprintf(stderr, "miles-train: --class-weights wants auto, none or w0,w1 (positive), got \"%s\"\n", o->class_w);
        return 2;
    }
    /* the vocabulary the checkpoints embed (checked against the data by the library) */
    tc->vocab_dir = o->vocab ? o->vocab : o->model ? o->model : default_vocab_if_same(DEFAULT_VOCAB, prep);
    return -1;
}

/* --calibrate: best.safetensors' P(viral) on the val split, Platt's sigmoid
 * fitted there, OUT/calibrated.safetensors written with it.  A failure to fit
 * (one class in val, a model no better than chance) is said and leaves no
 * file: the training itself succeeded. */
static void calibrate_best(const Opts *o, const char *out_dir, const MilesPrepared *prep, cJSON *j) {
    char best[4200], path[4200];
    snprintf(best, sizeof best, "%s/best.safetensors", out_dir);
    snprintf(path, sizeof path, "%s/calibrated.safetensors", out_dir);
    MilesCheckpoint *ck = NULL;
    MilesModel *m = NULL;
    MilesDataset val;
    ToolCalibration cal = {0};
    double *sc = NULL, *mapped = NULL;
    int s = miles_checkpoint_open(&ck, best);
    if (s == MILES_OK) s = miles_checkpoint_model(ck, &m);
    if (s == MILES_OK) s = miles_prepared_split(prep, MILES_SPLIT_VAL, &val);
    const size_t nb = sizeof(double) * (size_t)(val.n > 0 ? val.n : 1);
    if (s == MILES_OK && (!(sc = malloc(nb)) || !(mapped = malloc(nb)))) s = MILES_ENOMEM;
    if (s == MILES_OK)   /* fp32 on the training device: the model's own scores */
        s = miles_predict_dataset_on(m, o->device, MILES_PRECISION_FP32, &val, 64,
                                     miles_model_config(m)->max_position_embeddings, sc, NULL);
    /* miles-eval --calibrate's fit and refusals, here on the val rows themselves (their means below) */
    if (s == MILES_OK) s = tool_calibrate(&cal, sc, val.labels, (int)val.n, "val", sc, val.labels, (int)val.n, NAN, mapped);
    const MilesPlatt *p = &cal.platt;
    if (s == MILES_OK) s = miles_checkpoint_save_calibrated(ck, path, p, "val");
    cJSON *c = cJSON_AddObjectToObject(j, "calibration");
    if (s == MILES_OK) {
        cJSON_AddStringToObject(c, "method", "platt");
        cJSON_AddNumberToObject(c, "a", p->a);
        cJSON_AddNumberToObject(c, "b", p->b);
        cJSON_AddStringToObject(c, "fitted_on", "val");
        cJSON_AddStringToObject(c, "checkpoint", path);
        if (!o->quiet)
            fprintf(stderr, "calibrated: %s (Platt a %.4g, b %.4g on the val split: mean P(viral) %.4f -> %.4f, "
                            "viral rate %.4f)\n", path, p->a, p->b, cal.mean_before, cal.mean_after,
                    (double)p->n_pos / p->n);
    } else {
        cJSON_AddStringToObject(c, "error", miles_last_error());
        fprintf(stderr, "%s: --calibrate: ", g_prog);
        tool_put_escaped(stderr, miles_last_error());
        fputs(" (no calibrated.safetensors written)\n", stderr);
    }
    tool_calibration_free(&cal);
    free(sc);
    free(mapped);
    miles_model_free(m);
    miles_checkpoint_close(ck);
}

/* OUT/train_result.json for machines, lines for people, the checkpoint path on stdout. */
static int write_summary(const Opts *o, const char *run_name, const char *out_dir, const MilesModel *m,
                         const MilesTrainResult *res, const MilesPrepared *prep) {
    char path[4200];
    snprintf(path, sizeof path, "%s/train_result.json", out_dir);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "run", run_name);
    cJSON_AddStringToObject(j, "recipe", o->recipe);
    cJSON_AddStringToObject(j, "preset", miles_model_config(m)->preset);
    cJSON_AddStringToObject(j, "velocity_target", o->vtarget);
    cJSON_AddItemToObject(j, "data_split", tool_split_json(prep)); /* how the data's rows were split */
    cJSON_AddStringToObject(j, "creator_avg_views", tool_creator_avg_name(prep));
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "head_lr", o->head_lr > 0 ? o->head_lr : o->lr);
    cJSON_AddNumberToObject(j, "layer_decay", o->layer_decay);
    cJSON_AddStringToObject(j, "loss_weights", o->loss_w);
    cJSON_AddNumberToObject(j, "parameters", (double)miles_model_num_params(m));
    cJSON_AddNumberToObject(j, "steps", (double)res->steps);
    cJSON_AddNumberToObject(j, "epochs_done", res->epochs_done);
    if (isfinite(res->best_val_auroc)) cJSON_AddNumberToObject(j, "best_val_auroc", res->best_val_auroc);
    else cJSON_AddNullToObject(j, "best_val_auroc");
    cJSON_AddNumberToObject(j, "best_step", (double)res->best_step);
    cJSON_AddNumberToObject(j, "decision_threshold", res->decision_threshold);
    cJSON_AddBoolToObject(j, "stopped_early", res->stopped_early);
    cJSON_AddBoolToObject(j, "interrupted", res->interrupted);
    cJSON_AddNumberToObject(j, "seconds", res->seconds);
    cJSON_AddNumberToObject(j, "class_weight_0", res->class_weight[0]);
    cJSON_AddNumberToObject(j, "class_weight_1", res->class_weight[1]);
    cJSON_AddNumberToObject(j, "ranks", miles_dist_size(g_dist));
    if (o->calibrate && isfinite(res->best_val_auroc) && !res->interrupted) calibrate_best(o, out_dir, prep, j);
    else if (o->calibrate)
        fprintf(stderr, "%s: --calibrate: %s: no calibrated.safetensors written\n", g_prog,
                res->interrupted ? "interrupted" : "no best.safetensors (no evaluation ran)");
    tool_json_exact_all(j);   /* the threshold and AUROC to the last bit, as miles-eval's report has them */
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    int s = tool_write_text_atomic(path, txt);
    free(txt);
    if (s != MILES_OK) return tool_fail(g_prog, s);
    int have_best = isfinite(res->best_val_auroc);
    if (!o->quiet) {
        if (have_best)
            fprintf(stderr, "done: %lld steps in %.1f s; best val AUROC %.4f at step %lld; decision threshold %.4f\n",
                    (long long)res->steps, res->seconds, res->best_val_auroc, (long long)res->best_step,
                    res->decision_threshold);
        else
            fprintf(stderr, "done: %lld steps in %.1f s; no evaluation ran (stopped before the first one), "
                            "so there is no best.safetensors\n", (long long)res->steps, res->seconds);
        fprintf(stderr, "checkpoints: %s%s/last.safetensors; logs: %s/log.jsonl, %s/tb/\n",
                have_best ? "best.safetensors, " : "", out_dir, out_dir, out_dir);
    }
    printf("%s/%s.safetensors\n", out_dir, have_best ? "best" : "last");
    return -1;
}

static int train_main(int argc, char **argv) {
    const int root = miles_dist_rank(g_dist) == 0, nrank = miles_dist_size(g_dist);
    Opts o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    if (!root) o.quiet = 1;
    if (nrank > 1 && o.threads <= 0 && !getenv("OMP_NUM_THREADS")) {
        /* ranks on one node share its cores */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = (int)(ncpu / miles_dist_local_size(g_dist));
        if (o.threads < 1) o.threads = 1;
    }
    tool_set_threads(o.threads);

    char run_name[256], out_dir[4096];
    if (o.run) snprintf(run_name, sizeof run_name, "%s", o.run);
    else snprintf(run_name, sizeof run_name, "miles-%s-%lld", o.preset, o.seed);
    snprintf(out_dir, sizeof out_dir, "%s", o.out ? o.out : "");
    if (!o.out) snprintf(out_dir, sizeof out_dir, "checkpoints/%s", run_name);
    if (root && tool_mkdirs(out_dir)) return 1;

    MilesPrepared *prep = NULL;
    MilesModel *m = NULL;
    MilesTrainConfig tc;
    if ((rc = open_data(&o, out_dir, root, &prep)) >= 0) return rc;
    if ((rc = build_model(&o, prep, &m)) >= 0) return rc;
    if ((rc = train_config(&o, out_dir, prep, &tc)) >= 0) return rc;
    if (!o.quiet) {
        const MilesConfig *mc = miles_model_config(m);
        MilesDataset tr, va;
        miles_prepared_split(prep, MILES_SPLIT_TRAIN, &tr);
        miles_prepared_split(prep, MILES_SPLIT_VAL, &va);
        fprintf(stderr, "model: preset %s, H %d, L %d, %zu parameters; train %lld, val %lld examples\n",
                mc->preset, mc->hidden_size, mc->num_hidden_layers, miles_model_num_params(m), (long long)tr.n,
                (long long)va.n);
    }
    /* the training events drawn as progress, log.jsonl and TensorBoard (rank 0) */
    TrainLog tlog;
    int s;
    if (root) {
        if ((s = train_log_open(&tlog, out_dir, o.resume, !o.quiet)) != MILES_OK) return tool_fail(g_prog, s);
        tc.callback = train_log_event;
        tc.callback_arg = &tlog;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    signal(SIGUSR1, on_sigint); /* mpirun forwards SIGUSR1 to every rank */
    MilesTrainResult res;
    s = miles_train_run(m, prep, &tc, &res);
    if (root) train_log_close(&tlog);
    if (s != MILES_OK) return tool_fail(g_prog, s);
    rc = root ? write_summary(&o, run_name, out_dir, m, &res, prep) : -1; /* rank 0 writes the summary */
    miles_model_free(m);
    miles_prepared_free(prep);
    if (rc >= 0) return rc;
    return res.interrupted ? 130 : 0;
}

int main(int argc, char **argv) {
    tool_init(argv);
#ifdef MILES_HAVE_MPI
    int s = miles_mpi_init(&g_dist, &argc, &argv);
#else
    int s = miles_dist_init(&g_dist, &argc, &argv);
#endif
    if (s != MILES_OK) return tool_fail("miles-train", s);
    if (miles_dist_size(g_dist) > 1)
        snprintf(g_prog, sizeof g_prog, "miles-train (rank %d of %d)", miles_dist_rank(g_dist),
                 miles_dist_size(g_dist));
    int rc = train_main(argc, argv);
    if (rc != 0 && rc != 130 && miles_dist_size(g_dist) > 1) {
        /* the other ranks may be waiting in a collective: end the whole job */
        fprintf(stderr, "%s: failed with exit status %d; aborting the job\n", g_prog, rc);
        fflush(stderr);
        miles_dist_abort(g_dist, rc);
    }
    miles_dist_finalize(g_dist);
    return rc;
}
