/*
 * bench_infer.c — inference throughput and latency of the scoring path
 * (miles_predict_dataset: batching + the inference engine of
 * miles_model_set_precision) per precision, plus the reference forward.
 *
 *   bench_infer [--size minilm-l6] [--B 32] [--T 32] [--iters N]
 *               [--precisions ref,fp32,bf16,int8] [--onnx FILE] [--onnx-pooled-only FILE]
 *
 * The model is the "miles" preset at --size with random weights (seed 42):
 * throughput does not depend on the values.  Every row is T real tokens (no
 * padding), the same inputs bench/bench_infer_peers.py gives ONNX Runtime.
 * --onnx also writes the model as ONNX (miles_export_onnx) for the peers,
 * --onnx-pooled-only the graph with the last layer on the [CLS] rows alone
 * (MilesExportOptions.pooled_only: what Miles' engine computes).
 * One JSON line per case on stdout; threads from OMP_NUM_THREADS.
 * GFLOP/s counts the encoder's GEMM flops (2*N*(4H^2 + 2HI) per layer plus
 * 4*B*T^2*H for attention); the head is negligible.  "gflops" counts the
 * products run: the engine's last layer runs K/V for every token and the
 * rest for the [CLS] rows (pooler pooling); "gflops_model" the model's, as
 * the reference forward and a full ONNX graph compute it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "miles.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the process (all threads): less sensitive than wall time to
 * other jobs on a shared machine */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int die(const char *what, int s) {
    fprintf(stderr, "bench_infer: %s: %s (%s)\n", what, miles_status_name(s), miles_last_error());
    return 1;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *size = "minilm-l6", *precs = "ref,fp32,bf16,int8", *onnx = NULL, *onnx_po = NULL;
    int B = 32, T = 32, iters = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) size = argv[i + 1];
        else if (!strcmp(argv[i], "--B")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--precisions")) precs = argv[i + 1];
        else if (!strcmp(argv[i], "--onnx")) onnx = argv[i + 1];
        else if (!strcmp(argv[i], "--onnx-pooled-only")) onnx_po = argv[i + 1];
        else {
            fprintf(stderr, "usage: %s [--size S] [--B n] [--T t] [--iters n] [--precisions a,b] [--onnx FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (B < 1 || T < 2 || iters < 1) return 2;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    MilesConfig cfg;
    int s = miles_config_preset(&cfg, "miles", size);
    if (s) return die("config", s);
    MilesModel *m = NULL;
    if ((s = miles_model_build(&m, &cfg))) return die("build", s);
    if ((s = miles_model_init_random(m, 42, 0.02f))) return die("init", s);
    for (int po = 0; po < 2; po++) {
        const char *path = po ? onnx_po : onnx;
        if (!path) continue;
        char ck[4200];
        snprintf(ck, sizeof ck, "%s.ckpt.safetensors", path);
        char *cj = NULL;
        if ((s = miles_config_to_json(&cfg, &cj))) return die("config json", s);
        const char *keys[] = {"format", "config"}, *vals[] = {"miles-checkpoint-1", cj};
        if ((s = miles_model_save(m, ck, 2, keys, vals))) return die("save", s);
        free(cj);
        MilesExportOptions eo;
        miles_export_options_default(&eo);
        eo.overwrite = 1;
        eo.pooled_only = po;
        s = miles_export_onnx(ck, path, &eo);
        unlink(ck);
        if (s) return die("export onnx", s);
    }
    const int F = cfg.num_features, N = B * T, H = cfg.hidden_size, I = cfg.intermediate_size;
    int32_t *ids = malloc(sizeof(int32_t) * N), *mask = malloc(sizeof(int32_t) * N);
    int32_t *lens = malloc(sizeof(int32_t) * B);
    float *feat = malloc(sizeof(float) * B * F);
    double *p = malloc(sizeof(double) * B), *v = malloc(sizeof(double) * B);
    double *times = malloc(sizeof(double) * iters), *cpu = malloc(sizeof(double) * iters);
    for (int b = 0; b < B; b++) {
        lens[b] = T;
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = (t == 0 ? 101 : t == T - 1 ? 102 : 1000 + (b * 31 + t * 17) % 20000) % cfg.vocab_size;
            mask[b * T + t] = 1;
        }
        for (int j = 0; j < F; j++) feat[b * F + j] = (float)sin(1.0 + b * 7.1 + j * 1.3);
    }
    MilesDataset d;
    memset(&d, 0, sizeof d);
    d.n = B;
    d.max_len = T;
    d.input_ids = ids;
    d.attention_mask = mask;
    d.lengths = lens;
    d.features = feat;
    const double flop = 2.0 * N * cfg.num_hidden_layers * (4.0 * H * H + 2.0 * H * I) +
                        4.0 * B * (double)T * T * H * cfg.num_hidden_layers;
    /* the engine's last layer with pooler/cls pooling: Q, dense, FFN and
     * attention for one row per sequence instead of T */
    const double flop_engine = flop - (cfg.pooling != MILES_POOL_MEAN && cfg.num_hidden_layers > 0
                                           ? (2.0 * (2.0 * H * H + 2.0 * H * I) + 4.0 * T * H) * B * (T - 1.0)
                                           : 0.0);
    double la[1] = {0};
    char list[256];
    snprintf(list, sizeof list, "%s", precs);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int ref = !strcmp(tok, "ref");
        MilesPrecision pr = MILES_PRECISION_FP32;
        if (!ref && (s = miles_precision_parse(tok, &pr))) return die("precision", s);
        if (!ref && (s = miles_device_check(NULL, pr, 0))) {
            fprintf(stderr, "bench_infer: %s skipped: %s\n", tok, miles_last_error());
            continue;
        }
        /* ref: the training forward in eval mode on the same batch; else the
         * scoring path (the CPU backend builds the engine at `pr`, timed: it is
         * what one miles-eval call pays; the per-batch cost dominates at iters) */
        MilesBatch bt = {B, T, ids, NULL, mask, feat, NULL, NULL};
        float *lg = malloc(sizeof(float) * 2 * B), *vl = malloc(sizeof(float) * B);
        for (int w = 0; w < 2; w++) {
            s = ref ? miles_model_forward(m, &bt, 0, lg, vl, NULL) : miles_predict_dataset_on(m, NULL, pr, &d, B, T, p, v);
            if (s) return die("predict", s);
        }
        for (int it = 0; it < iters; it++) {
            double t0 = now(), c0 = cpu_now();
            s = ref ? miles_model_forward(m, &bt, 0, lg, vl, NULL) : miles_predict_dataset_on(m, NULL, pr, &d, B, T, p, v);
            if (s) return die("predict", s);
            times[it] = now() - t0;
            cpu[it] = cpu_now() - c0;
        }
        free(lg);
        free(vl);
        qsort(times, iters, sizeof(double), cmp_d);
        qsort(cpu, iters, sizeof(double), cmp_d);
        double med = times[iters / 2], best = times[0];
        if (getloadavg(la, 1) < 1) la[0] = -1;
        printf("{\"impl\":\"miles\",\"precision\":\"%s\",\"size\":\"%s\",\"B\":%d,\"T\":%d,\"threads\":%d,"
               "\"iters\":%d,\"ms_median\":%.3f,\"ms_best\":%.3f,\"cpu_ms_median\":%.3f,\"seq_per_s\":%.2f,\"gflops\":%.1f,"
               "\"gflops_model\":%.1f,\"loadavg_1m\":%.2f}\n",
               ref ? "fp32-reference" : tok, size, B, T, threads, iters, med * 1e3, best * 1e3, cpu[iters / 2] * 1e3, B / med,
               (ref ? flop : flop_engine) / med * 1e-9, flop / med * 1e-9, la[0]);
        fflush(stdout);
    }
    free(ids); free(mask); free(lens); free(feat); free(p); free(v); free(times); free(cpu);
    miles_model_free(m);
    return 0;
}
