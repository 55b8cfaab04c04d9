/*
 * bench_model.c — model throughput: forward (eval) and train step
 * (zero_grad + forward with dropout + backward + clip + AdamW) in sequences/s.
 *
 *   bench_model [--preset miles] [--size bert-base] [--B 32] [--T 32,128]
 *               [--iters N] [--train-iters N]
 *
 * One JSON line per (B,T) case on stdout.  Threads: OMP_NUM_THREADS (and
 * OPENBLAS_NUM_THREADS for the BLAS GEMM).  bench/run_model_bench.sh runs this
 * and bench/bench_model_torch.py with the same settings and prints the ratio.
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

#include "miles.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int die(const char *what, int s) {
    fprintf(stderr, "bench_model: %s: %s (%s)\n", what, miles_status_name(s), miles_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *preset = "miles", *size = "bert-base", *Ts = "32,128";
    int B = 32, iters = 3, train_iters = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = argv[i + 1];
        else if (!strcmp(argv[i], "--B")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) Ts = argv[i + 1];
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--train-iters")) train_iters = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--preset P] [--size S] [--B n] [--T t1,t2] [--iters n] "
                            "[--train-iters n]\n", argv[0]);
            return 2;
        }
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
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

        t0 = now();
        for (int it = 0; it < train_iters; it++) {
            miles_model_set_dropout_key(m, 7, (uint64_t)it);
            miles_model_zero_grad(m);
            if ((s = miles_model_forward(m, &batch, 1, NULL, NULL, &loss))) return die("forward", s);
            if ((s = miles_model_backward(m, 1.0f))) return die("backward", s);
            miles_clip_grad_norm(m, 1.0f);
            if ((s = miles_adamw_step(opt, 2e-5f))) return die("adamw", s);
        }
        double train = train_iters > 0 ? (now() - t0) / train_iters : 0.0;
        printf("{\"bench\":\"model\",\"impl\":\"miles\",\"preset\":\"%s\",\"size\":\"%s\",\"B\":%d,"
               "\"T\":%d,\"threads\":%d,\"fwd_ms\":%.1f,\"fwd_seq_per_s\":%.2f,\"train_ms\":%.1f,"
               "\"train_seq_per_s\":%.2f,\"iters\":%d,\"train_iters\":%d,\"loss\":%.4f}\n",
               preset, size, B, T, threads, fwd * 1e3, B / fwd, train * 1e3,
               train > 0 ? B / train : 0.0, iters,
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
