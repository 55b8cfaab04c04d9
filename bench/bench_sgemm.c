/*
 * bench_sgemm.c — fp32 GEMM throughput of the two miles_gemm backends
 * (CBLAS/OpenBLAS and the own OpenMP GEMM) on the current thread count.
 * Prints one JSON line per (backend, shape): best and mean wall-clock
 * GFLOP/s, GFLOP per CPU-second (per-core rate, robust to other load) and the
 * load average.  The best CBLAS number on an idle machine is the measured
 * fp32 peak quoted in docs/performance.md.
 *
 *   OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 build/bench/bench_sgemm [--quick]
 *
 * Shapes: a square 1024^3 and the BERT-base training shapes for 32 x 128
 * tokens (N = 4096 rows): QKV/output projection 4096x768x768 and the FFN
 * 4096x3072x768, forward (nn) and the two backward layouts (nt, tn).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
/* CPU seconds of all threads of this process: flop per CPU-second is the
 * per-core rate, which stays meaningful when other jobs share the cores and
 * the wall-clock rate does not (OpenBLAS's spin-waiting threads count too,
 * so it slightly understates BLAS). */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *rand_buf(size_t n, unsigned *s) {
    float *p = malloc(n * sizeof *p);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        p[i] = (float)((*s >> 8) * (1.0 / 16777216.0)) - 0.5f;
    }
    return p;
}

typedef struct { const char *name; int ta, tb, M, N, K; } Case;

/* 1-minute load average: a busy machine (other jobs on the same cores)
 * lowers every number, so each line records it. */
static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    Case cases[] = {
        {"square_1024", 0, 0, 1024, 1024, 1024},
        {"bert_qkv_fwd_4096x768x768", 0, 1, 4096, 768, 768},
        {"bert_ffn_up_fwd_4096x3072x768", 0, 1, 4096, 3072, 768},
        {"bert_ffn_dinp_4096x768x3072", 0, 0, 4096, 768, 3072},
        {"bert_ffn_dw_3072x768x4096", 1, 0, 3072, 768, 4096},
    };
    int ncases = quick ? 1 : (int)(sizeof cases / sizeof cases[0]);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    unsigned seed = 12345;
    for (int c = 0; c < ncases; c++) {
        Case k = cases[c];
        float *A = rand_buf((size_t)k.M * k.K, &seed);
        float *B = rand_buf((size_t)k.K * k.N, &seed);
        float *C = rand_buf((size_t)k.M * k.N, &seed);
        int lda = k.ta ? k.M : k.K, ldb = k.tb ? k.K : k.N;
        for (int backend = 1; backend >= 0; backend--) {
            if (backend == 1 && !miles_gemm_has_blas()) continue;
            int prev = miles_gemm_use_blas(backend);
            double flop = 2.0 * k.M * k.N * k.K;
            /* warm-up, then repeat until ~1 s (at least 3 runs); report the best */
            miles_gemm(k.ta, k.tb, k.M, k.N, k.K, 1.0f, A, lda, B, ldb, 0.0f, C, k.N);
            double best = 1e30, total = 0, c0 = cpu_s();
            int reps = 0;
            while (reps < 3 || (total < (quick ? 0.3 : 1.0) && reps < 50)) {
                double t0 = now_s();
                miles_gemm(k.ta, k.tb, k.M, k.N, k.K, 1.0f, A, lda, B, ldb, 0.0f, C, k.N);
                double dt = now_s() - t0;
                total += dt;
                reps++;
                if (dt < best) best = dt;
            }
            double cpu = cpu_s() - c0;
            printf("{\"bench\":\"sgemm\",\"backend\":\"%s\",\"case\":\"%s\",\"trans\":\"%c%c\","
                   "\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"reps\":%d,"
                   "\"best_ms\":%.3f,\"mean_ms\":%.3f,\"gflops\":%.1f,\"gflops_mean\":%.1f,"
                   "\"gflops_per_cpu_s\":%.1f,\"loadavg_1m\":%.2f}\n",
                   backend ? "cblas" : "own", k.name, k.ta ? 't' : 'n', k.tb ? 't' : 'n',
                   k.M, k.N, k.K, threads, reps, best * 1e3, total / reps * 1e3,
                   flop / best * 1e-9, flop / (total / reps) * 1e-9, flop * reps / cpu * 1e-9,
                   loadavg());
            fflush(stdout);
            miles_gemm_use_blas(prev);
        }
        free(A);
        free(B);
        free(C);
    }
    return 0;
}
