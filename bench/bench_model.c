/*
 * bench_model.c — model throughput: forward (eval) and train step
 * (zero_grad + forward with dropout + backward + clip + AdamW) in sequences/s,
 * the GEMM work as GFLOP/s and as a fraction of the machine's fp32 peak, and
 * where a train step's CPU time goes (per phase).
 *
 *   bench_model [--preset miles] [--size bert-base] [--B 32] [--T 32,128]
 *               [--iters N] [--train-iters N] [--peak GFLOPS] [--full-last-layer 0|1]
 *
 * One JSON line per (B,T) case on stdout.  Threads: OMP_NUM_THREADS (and
 * OPENBLAS_NUM_THREADS for the BLAS GEMM).  bench/run_model_bench.sh runs this
 * and bench/bench_model_torch.py with the same settings and prints the ratio.
 *
 * FLOPs: the model's matrix products (2 per multiply-add): per layer and token
 * 2(4H^2 + 2HI) for the projections and the FFN plus 4TH for q k^T and P v,
 * and the pooler/MLP heads per sequence; a train step is 3x the forward
 * (each product's input and weight gradient cost one forward product each).
 * Element-wise ops, softmax, LayerNorm, AdamW are not counted: they are the
 * overhead the fraction of peak exposes.  Peak: bench/peak.h's FMA-throughput
 * loop (widest ISA, OMP_NUM_THREADS threads) run here, or --peak.
 * The model runs as miles-train's trainer runs it: the last layer on the
 * [CLS] rows alone (miles_model_set_pooled_only; --full-last-layer 1: every
 * row, as HF).  fwd_gflops/train_gflops count the model's FLOPs (the work
 * both sides deliver); fwd_of_peak/train_of_peak the products executed
 * (fwd_gflop_exec per forward): the hardware's utilization. 
 * Times: wall clock (train_ms) and process CPU time (train_cpu_ms: the figure
 * to compare on a shared machine, with 1 thread), means over the train
 * iterations; phases_wall_cpu_ms gives [wall, CPU] ms per phase of a step.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "miles.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): robust to other jobs on a
 * shared machine, unlike the wall clock, when run with one thread. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* fp32 peak: the FMA loop of bench/peak.h (shared with bench_sgemm) */
#include "peak.h"

/* FLOPs of one eval forward's matrix products (see the header comment).
 * pooled_only: the products Miles runs with miles_model_set_pooled_only
 * (the last layer's K and V for every token, the rest for the [CLS] rows);
 * 0: the model's, as HF computes it (the figure both sides' rates use). */
static double forward_flops(const MilesConfig *c, int B, int T, int pooled_only) {
    const double H = c->hidden_size, I = c->intermediate_size, L = c->num_hidden_layers;
    double per_tok = L * (2.0 * (4.0 * H * H + 2.0 * H * I) + 4.0 * T * H);
    if (pooled_only && c->pooling != MILES_POOL_MEAN && L >= 1) /* last layer: K, V per token + the rest per [CLS] */
        per_tok -= (2.0 * (2.0 * H * H + 2.0 * H * I) + 4.0 * T * H) * (1.0 - 1.0 / T);
    double heads = 0.0, in = c->num_features;
    if (c->pooling == MILES_POOL_POOLER) heads += 2.0 * H * H;
    for (int i = 0; i < c->n_numeric; i++) heads += 2.0 * in * c->numeric_widths[i], in = c->numeric_widths[i];
    in += H;
    for (int i = 0; i < c->n_fusion; i++) heads += 2.0 * in * c->fusion_widths[i], in = c->fusion_widths[i];
    heads += 2.0 * in * 3.0; /* classifier (2) + regressor (1) */
    return (double)B * T * per_tok + (double)B * heads;
}

static int die(const char *what, int s) {
    fprintf(stderr, "bench_model: %s: %s (%s)\n", what, miles_status_name(s), miles_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *preset = "miles", *size = "bert-base", *Ts = "32,128";
    int B = 32, iters = 3, train_iters = 2;
    double peak_arg = 0.0;
    int pooled_only = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = argv[i + 1];
        else if (!strcmp(argv[i], "--B")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) Ts = argv[i + 1];
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--train-iters")) train_iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--peak")) peak_arg = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--full-last-layer")) pooled_only = !atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--preset P] [--size S] [--B n] [--T t1,t2] [--iters n] "
                            "[--train-iters n] [--peak GFLOPS] [--full-last-layer 0|1]\n", argv[0]);
            return 2;
        }
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    const char *peak_isa = "given";
    double peak = peak_arg > 0 ? peak_arg : peak_gflops(threads, &peak_isa);
    printf("{\"bench\":\"fp32_peak\",\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", peak_isa,
           threads, peak);
    MilesConfig cfg;
    int s = miles_config_preset(&cfg, preset, size);
    if (s) return die("config", s);
    MilesModel *m = NULL;
    if ((s = miles_model_build(&m, &cfg))) return die("build", s);
    if ((s = miles_model_init_random(m, 42, 0.02f))) return die("init", s);
    MilesAdamWConfig oc = {.lr = 2e-5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                           .weight_decay = 0.01f};
    MilesAdamW *opt = NULL;
    if ((s = miles_adamw_build(&opt, m, &oc))) return die("adamw", s);
    MilesLossConfig lc = {0.95f, 0.05f, {0.625f, 2.5f}};
    miles_model_set_loss(m, &lc);
    /* as miles-train's trainer runs it: the last layer's [CLS] rows alone */
    miles_model_set_pooled_only(m, pooled_only);

    char tlist[256];
    snprintf(tlist, sizeof tlist, "%s", Ts);
    for (char *tok = strtok(tlist, ","); tok; tok = strtok(NULL, ",")) {
        int T = atoi(tok);
        size_t N = (size_t)B * T;
        int32_t *ids = malloc(N * sizeof *ids), *tt = calloc(N, sizeof *tt);
        int32_t *mask = malloc(N * sizeof *mask), *labels = malloc(B * sizeof *labels);
        float *feats = malloc((size_t)B * cfg.num_features * sizeof *feats);
        float *vel = malloc(B * sizeof *vel);
        uint64_t r = 12345;
        for (size_t i = 0; i < N; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            int lo = cfg.vocab_size > 2000 ? 1000 : 1;
            ids[i] = lo + (int32_t)((r >> 33) % (uint64_t)(cfg.vocab_size - lo));
            mask[i] = 1; /* full length: the padded worst case */
        }
        for (int b = 0; b < B; b++) {
            ids[(size_t)b * T] = cfg.vocab_size > 101 ? 101 : 0;
            labels[b] = b % 5 == 0;
            vel[b] = 0.1f * (b % 10);
            for (int j = 0; j < cfg.num_features; j++)
                feats[b * cfg.num_features + j] = sinf((float)(b * 31 + j));
        }
        MilesBatch batch = {B, T, ids, tt, mask, feats, labels, vel};

        /* warm-up: arena/scratch allocation, page faults, BLAS threads */
        float loss;
        miles_model_zero_grad(m);
        if ((s = miles_model_forward(m, &batch, train_iters > 0, NULL, NULL, &loss)))
            return die("forward", s);
        if (train_iters > 0 && (s = miles_model_backward(m, 1.0f))) return die("backward", s);

        double t0 = now();
        for (int it = 0; it < iters; it++)
            if ((s = miles_model_forward(m, &batch, 0, NULL, NULL, &loss))) return die("forward", s);
        double fwd = (now() - t0) / iters;

        /* train step, timed per phase (wall and process CPU) */
        enum { PH_ZERO, PH_FWD, PH_BWD, PH_CLIP, PH_ADAMW, NPH };
        static const char *ph_name[NPH] = {"zero_grad", "forward", "backward", "clip", "adamw"};
        double ph_wall[NPH] = {0}, ph_cpu[NPH] = {0};
        double tw = now(), tc = cpu_now();
#define PHASE(k)                                  \
    do {                                          \
        double w_ = now(), c_ = cpu_now();        \
        ph_wall[k] += w_ - tw, ph_cpu[k] += c_ - tc; \
        tw = w_, tc = c_;                         \
    } while (0)
        t0 = now();
        double c0 = cpu_now();
        for (int it = 0; it < train_iters; it++) {
            miles_model_set_dropout_key(m, 7, (uint64_t)it);
            tw = now(), tc = cpu_now();
            miles_model_zero_grad(m);
            PHASE(PH_ZERO);
            if ((s = miles_model_forward(m, &batch, 1, NULL, NULL, &loss))) return die("forward", s);
            PHASE(PH_FWD);
            if ((s = miles_model_backward(m, 1.0f))) return die("backward", s);
            PHASE(PH_BWD);
            miles_clip_grad_norm(m, 1.0f);
            PHASE(PH_CLIP);
            if ((s = miles_adamw_step(opt, 2e-5f))) return die("adamw", s);
            PHASE(PH_ADAMW);
        }
#undef PHASE
        double train = train_iters > 0 ? (now() - t0) / train_iters : 0.0;
        double train_cpu = train_iters > 0 ? (cpu_now() - c0) / train_iters : 0.0;
        /* rates: the model's FLOPs per second (both sides the same work
         * done); of peak: the products Miles executed per second */
        double ff = forward_flops(&cfg, B, T, 0), fx = forward_flops(&cfg, B, T, pooled_only);
        double fwd_gf = ff / fwd * 1e-9, train_gf = train > 0 ? 3.0 * ff / train * 1e-9 : 0.0;
        double fwd_xgf = fx / fwd * 1e-9, train_xgf = train > 0 ? 3.0 * fx / train * 1e-9 : 0.0;
        char phases[512];
        int pn = 0;
        for (int k = 0; k < NPH; k++)
            pn += snprintf(phases + pn, sizeof phases - pn, "%s\"%s\":[%.1f,%.1f]", k ? "," : "", ph_name[k],
                           train_iters ? ph_wall[k] / train_iters * 1e3 : 0.0,
                           train_iters ? ph_cpu[k] / train_iters * 1e3 : 0.0);
        printf("{\"bench\":\"model\",\"impl\":\"miles\",\"preset\":\"%s\",\"size\":\"%s\",\"B\":%d,"
               "\"T\":%d,\"threads\":%d,\"fwd_ms\":%.1f,\"fwd_seq_per_s\":%.2f,\"train_ms\":%.1f,"
               "\"train_seq_per_s\":%.2f,\"train_cpu_ms\":%.1f,\"fwd_gflop\":%.2f,\"fwd_gflops\":%.1f,"
               "\"train_gflops\":%.1f,\"pooled_only\":%d,\"fwd_gflop_exec\":%.2f,\"peak_gflops\":%.1f,"
               "\"fwd_of_peak\":%.3f,\"train_of_peak\":%.3f,"
               "\"phases_wall_cpu_ms\":{%s},\"iters\":%d,\"train_iters\":%d,\"loss\":%.4f}\n",
               preset, size, B, T, threads, fwd * 1e3, B / fwd, train * 1e3,
               train > 0 ? B / train : 0.0, train_cpu * 1e3, ff * 1e-9, fwd_gf, train_gf, pooled_only,
               fx * 1e-9, peak, peak > 0 ? fwd_xgf / peak : 0.0, peak > 0 ? train_xgf / peak : 0.0, phases, iters,
               train_iters, loss);
        fflush(stdout);
        free(ids);
        free(tt);
        free(mask);
        free(labels);
        free(feats);
        free(vel);
    }
    miles_adamw_free(opt);
    miles_model_free(m);
    return 0;
}
