/*
 * peak.h — the machine's measured fp32 peak, shared by bench_sgemm and
 * bench_model (one copy, so both report the same ceiling).
 *
 * An FMA-throughput loop: CHAINS (16; AVX2: 12) independent accumulator
 * chains, more than FMA latency x FMA ports on any x86 core, with the widest vector ISA
 * the CPU has (AVX-512, else AVX2+FMA), on `threads` OpenMP threads, best of
 * 3: 2 flops x lanes per FMA.  acc = acc * 0.5 + 0.5 converges to 1 (no
 * overflow, no subnormals).  Header-only (static functions): the benches are
 * single-file programs.
 */
#ifndef MILES_BENCH_PEAK_H
#define MILES_BENCH_PEAK_H

#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CHAINS 16

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float fma_loop_avx512(long iters) {
    __m512 acc[CHAINS], h = _mm512_set1_ps(0.5f);
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], h, h);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(acc[j]);
    return s;
}
/* AVX2 has 16 ymm registers: 16 chains + h spilled one chain every step (a
 * store-forwarding chain that halved the measured peak on Zen 3), so 12
 * chains, still 1.5 x latency x ports (4 x 2) */
#define CHAINS_AVX2 12
__attribute__((target("avx2,fma"))) static float fma_loop_avx2(long iters) {
    __m256 acc[CHAINS_AVX2], h = _mm256_set1_ps(0.5f);
    for (int j = 0; j < CHAINS_AVX2; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS_AVX2; j++) acc[j] = _mm256_fmadd_ps(acc[j], h, h);
    float s = 0, t[8];
    for (int j = 0; j < CHAINS_AVX2; j++) {
        _mm256_storeu_ps(t, acc[j]);
        for (int l = 0; l < 8; l++) s += t[l];
    }
    return s;
}
#endif

static double peak_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* fp32 GFLOP/s of the widest FMA on `threads` threads (best of 3); *isa
 * names it; 0 (isa "none") where the CPU has neither AVX-512 nor AVX2+FMA. */
static double peak_gflops(int threads, const char **isa) {
    int lanes = 0, chains = CHAINS;
    float (*loop)(long) = NULL;
    *isa = "none";
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) loop = fma_loop_avx512, lanes = 16, *isa = "avx512";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        loop = fma_loop_avx2, lanes = 8, chains = CHAINS_AVX2, *isa = "avx2";
#endif
    if (!loop) return 0;
    const long iters = 20000000;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = peak_now_s();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            float s = loop(iters);
#ifdef _OPENMP
#pragma omp atomic
#endif
            sink += s;
        }
        double g = 2.0 * lanes * chains * iters * threads / (peak_now_s() - t0) * 1e-9;
        if (g > best) best = g;
    }
    (void)sink;
    return best;
}

#endif
