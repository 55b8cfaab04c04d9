/*
 * onednn_matmul.c — oneDNN (Debian libdnnl-dev 2.6) f32 matmul on the BERT
 * forward shapes, for comparison with the own GEMM (docs/performance.md):
 * GFLOP/s, and whether its bits change with the thread count or with the rows
 * computed together (the own GEMM's contract).  Not part of `make bench`
 * (oneDNN is not a build dependency):
 *
 *   apt-get install libdnnl-dev
 *   cc -O2 -fopenmp bench/onednn_matmul.c -o build/onednn_matmul -ldnnl
 *   OMP_NUM_THREADS=2 build/onednn_matmul
 */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { \
    fprintf(stderr, "%s failed: %d\n", #x, (int)s_); exit(1); } } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* y[M,N] = x[M,K] @ W[N,K]^T with a fresh primitive (oneDNN picks kernels by shape). */
static double matmul(dnnl_engine_t eng, dnnl_stream_t st, int M, int N, int K, const float *x,
                     const float *W, float *y, int reps) {
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    CHECK(dnnl_memory_desc_init_by_tag(&a_md, 2, ad, dnnl_f32, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 2, bd, dnnl_f32, dnnl_ba)); /* W^T */
    CHECK(dnnl_memory_desc_init_by_tag(&c_md, 2, cd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    CHECK(dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    dnnl_primitive_t p;
    CHECK(dnnl_primitive_create(&p, pd));
    dnnl_memory_t am, bm, cm;
    CHECK(dnnl_memory_create(&am, &a_md, eng, (void *)x));
    CHECK(dnnl_memory_create(&bm, &b_md, eng, (void *)W));
    CHECK(dnnl_memory_create(&cm, &c_md, eng, y));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now_s();
        CHECK(dnnl_primitive_execute(p, st, 3, args));
        CHECK(dnnl_stream_wait(st));
        double dt = now_s() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    dnnl_memory_destroy(am), dnnl_memory_destroy(bm), dnnl_memory_destroy(cm);
    dnnl_primitive_destroy(p), dnnl_primitive_desc_destroy(pd);
    return best;
}

int main(void) {
    static const int shapes[][3] = {{4096, 768, 768}, {4096, 3072, 768}, {4096, 768, 3072},
                                    {1024, 384, 384}, {1024, 1536, 384}, {32, 768, 768},
                                    {16, 3072, 768}, {37, 384, 384}};
    dnnl_engine_t eng;
    dnnl_stream_t st;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    int nt = omp_get_max_threads();
    unsigned seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = malloc((size_t)M * K * 4), *W = malloc((size_t)N * K * 4);
        float *y = malloc((size_t)M * N * 4), *y1 = malloc((size_t)M * N * 4), *ys = malloc((size_t)M * N * 4);
        for (size_t i = 0; i < (size_t)M * K; i++) seed = seed * 1664525u + 1013904223u, x[i] = (seed >> 8) * (1.0f / 16777216) - 0.5f;
        for (size_t i = 0; i < (size_t)N * K; i++) seed = seed * 1664525u + 1013904223u, W[i] = (seed >> 8) * (1.0f / 16777216) - 0.5f;
        int reps = (double)M * N * K > 1e9 ? 5 : 50;
        double t = matmul(eng, st, M, N, K, x, W, y, reps);
        omp_set_num_threads(1);
        matmul(eng, st, M, N, K, x, W, y1, 0);
        omp_set_num_threads(nt);
        /* rows [0, m) and [m, M) as two calls */
        int m = M / 3 + 1;
        matmul(eng, st, m, N, K, x, W, ys, 0);
        matmul(eng, st, M - m, N, K, x + (size_t)m * K, W, ys + (size_t)m * N, 0);
        size_t d1 = 0, ds = 0;
        for (size_t i = 0; i < (size_t)M * N; i++) d1 += memcmp(&y[i], &y1[i], 4) != 0, ds += memcmp(&y[i], &ys[i], 4) != 0;
        printf("{\"bench\":\"onednn_matmul\",\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"gflops\":%.1f,"
               "\"elements_differing_1_thread\":%zu,\"elements_differing_row_split\":%zu,\"of\":%zu}\n",
               M, N, K, nt, 2.0 * M * N * K / t * 1e-9, d1, ds, (size_t)M * N);
        fflush(stdout);
        free(x), free(W), free(y), free(y1), free(ys);
    }
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return 0;
}
