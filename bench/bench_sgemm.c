/*
 * bench_sgemm.c — the machine's fp32 peak and miles_gemm throughput on the
 * shapes the BERT forward and backward use, as a fraction of that peak.
 *
 *   OMP_NUM_THREADS=2 build/bench/bench_sgemm [--backend own|blas|both]
 *       [--isa avx512|avx2|generic] [--set bert|small|attn|lowp|packed|kernel|all] [--only NAME] [--quick]
 *
 * Peak: an FMA-throughput loop (16 independent accumulator chains, more than
 * FMA latency x FMA ports on any x86 core) with the widest vector ISA the CPU
 * has, on 1 thread and on all OpenMP threads: 2 flops x lanes per FMA.
 *
 * GEMM cases (M = tokens = B*T; a linear layer [C -> OC] runs
 *   forward  nt: M=tokens N=OC K=C     (out = x @ W^T)
 *   dinp     nn: M=tokens N=C  K=OC    (dx  = dy @ W)
 *   dweight  tn: M=OC     N=C  K=tokens (dW += dy^T @ x)):
 *   bert  — MiniLM (H 384, I 1536) and bert-base (H 768, I 3072) attention
 *           and FFN projections for B32 x T32 and B32 x T128;
 *   small — batch-1 inference forward, M = 16 and 32 tokens;
 *   attn  — one attention head (hs 64) through miles_gemm_serial, T 32/128;
 *   lowp  — the forward (x @ W^T) shapes of "bert" and "small" in fp32, bf16
 *           and int8 with pre-packed weights (gemm_lowp.h; the conversion of
 *           x is timed, the one-time packing of W is not);
 *   packed — the fp32 inference engine's GEMM (W packed once,
 *           miles_gemm_f32_packed_bias) on MiniLM's four encoder shapes for
 *           a short title (14, 16 tokens), two or three (28, 36: the row
 *           path; 48), and B32 T32 (1024), with
 *           W cycled over copies past the L3 size (a forward streams every
 *           layer's weights once, so W is never in cache for few rows);
 *   kernel — the fp32 micro-kernel alone (one KC slice of full tiles) on
 *           every thread at once, its operands in L1/L2, L3 or a C with
 *           rows 12 KiB apart: the kernel's own rate against the peak.
 * OpenBLAS reads OPENBLAS_CORETYPE when it loads: compare its kernels by
 * running this twice (with the variable set and with `env -u`).
 * One JSON line per (backend, case): best wall-clock GFLOP/s, fraction of
 * the measured peak, and the load average (other jobs lower every number).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops_internal.h"
#include "gemm_lowp.h"
#include "gemm_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* fp32 peak: the FMA loop of bench/peak.h (shared with bench_model) */
#include "peak.h"

/* ------------------------------------------------------------- GEMM */

static float *rand_buf(size_t n, unsigned *s) {
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        p[i] = (float)((*s >> 8) * (1.0 / 16777216.0)) - 0.5f;
    }
    return p;
}

typedef struct {
    const char *set, *name;
    int ta, tb, M, N, K, serial;
} Case;

#define MAXCASES 128
static Case g_cases[MAXCASES];
static int g_ncases;

static void add(const char *set, const char *name, int ta, int tb, int M, int N, int K, int serial) {
    if (g_ncases < MAXCASES) g_cases[g_ncases++] = (Case){set, name, ta, tb, M, N, K, serial};
}

static void add_linear(const char *model, const char *layer, int tok, int C, int OC, int full) {
    char *n = malloc(96);
    snprintf(n, 96, "%s_%s_fwd", model, layer);
    add("bert", n, 0, 1, tok, OC, C, 0);
    if (!full) return;
    n = malloc(96);
    snprintf(n, 96, "%s_%s_dinp", model, layer);
    add("bert", n, 0, 0, tok, C, OC, 0);
    n = malloc(96);
    snprintf(n, 96, "%s_%s_dw", model, layer);
    add("bert", n, 1, 0, OC, C, tok, 0);
}

static void build_cases(int quick) {
    static const struct { const char *name; int H, I; } models[] = {{"minilm", 384, 1536},
                                                                     {"bertbase", 768, 3072}};
    static const int Ts[] = {32, 128};
    for (int mi = 0; mi < 2; mi++)
        for (int ti = 0; ti < 2; ti++) {
            if (quick && (mi != 1 || ti != 1)) continue;
            int tok = 32 * Ts[ti], H = models[mi].H, I = models[mi].I;
            char m[32];
            snprintf(m, sizeof m, "%s_B32T%d", models[mi].name, Ts[ti]);
            char *mm = strdup(m);
            add_linear(mm, "qkv", tok, H, H, 1);
            add_linear(mm, "ffn_up", tok, H, I, 1);
            add_linear(mm, "ffn_down", tok, I, H, 1);
        }
    for (int mi = 0; mi < 2; mi++)
        for (int tok = 16; tok <= 32; tok *= 2) {
            int H = models[mi].H, I = models[mi].I;
            char *n1 = malloc(64), *n2 = malloc(64), *n3 = malloc(64);
            snprintf(n1, 64, "%s_M%d_qkv_fwd", models[mi].name, tok);
            snprintf(n2, 64, "%s_M%d_ffn_up_fwd", models[mi].name, tok);
            snprintf(n3, 64, "%s_M%d_ffn_down_fwd", models[mi].name, tok);
            add("small", n1, 0, 1, tok, H, H, 0);
            add("small", n2, 0, 1, tok, I, H, 0);
            add("small", n3, 0, 1, tok, H, I, 0);
        }
    for (int T = 32; T <= 128; T *= 4) {
        char *n[6];
        for (int i = 0; i < 6; i++) n[i] = malloc(48);
        snprintf(n[0], 48, "head_T%d_qk", T);   /* S = q k^T    */
        snprintf(n[1], 48, "head_T%d_pv", T);   /* out = P v    */
        snprintf(n[2], 48, "head_T%d_dv", T);   /* dv = P^T dO  */
        snprintf(n[3], 48, "head_T%d_dp", T);   /* dP = dO v^T  */
        snprintf(n[4], 48, "head_T%d_dq", T);   /* dq = dS k    */
        snprintf(n[5], 48, "head_T%d_dk", T);   /* dk = dS^T q  */
        add("attn", n[0], 0, 1, T, T, 64, 1);
        add("attn", n[1], 0, 0, T, 64, T, 1);
        add("attn", n[2], 1, 0, T, 64, T, 1);
        add("attn", n[3], 0, 1, T, T, 64, 1);
        add("attn", n[4], 0, 0, T, 64, T, 1);
        add("attn", n[5], 1, 0, T, 64, T, 1);
    }
}

/* Best wall-clock seconds of one call (repeated for ~min_s, at least 3 runs). */
static double time_case(const Case *k, const float *A, const float *B, float *C, double min_s) {
    int lda = k->ta ? k->M : k->K, ldb = k->tb ? k->K : k->N;
    /* tiny cases: time a batch of calls so the clock resolution does not matter */
    double flop = 2.0 * k->M * k->N * k->K;
    int inner = flop < 5e7 ? (int)(5e7 / flop) + 1 : 1;
    double best = 1e30, total = 0;
    for (int rep = 0; rep < 2 + 1000 && (rep < 4 || total < min_s); rep++) {
        double t0 = now_s();
        for (int r = 0; r < inner; r++) {
            if (k->serial)
                miles_gemm_serial(k->ta, k->tb, k->M, k->N, k->K, 1.0f, A, lda, B, ldb, 0.0f, C, k->N);
            else
                miles_gemm(k->ta, k->tb, k->M, k->N, k->K, 1.0f, A, lda, B, ldb, 0.0f, C, k->N);
        }
        double dt = (now_s() - t0) / inner;
        if (rep > 0) { /* the first run is the warm-up */
            total += dt * inner;
            if (dt < best) best = dt;
        }
    }
    return best;
}

/* The ceilings of the lowp kernels' instructions: vdpbf16ps (2 flops x 32
 * per instruction) and vpdpbusd (2 ops x 64), or on AVX2 CPUs without VNNI
 * vpmaddwd + vpaddd (2 ops x 16 per pair), CHAINS independent
 * accumulators, on `threads` threads; 0 where the CPU lacks them. */
#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bf16"))) static float dot_loop_bf16(long iters) {
    __m512 acc[CHAINS];
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3F003F00); /* 0.5, 0.5: sums stay finite */
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_dpbf16_ps(acc[j], a, a);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(acc[j]);
    return s;
}
__attribute__((target("avx512f,avx512vnni"))) static float dot_loop_int8(long iters) {
    __m512i acc[CHAINS], a = _mm512_set1_epi32(0x01010101);
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_epi32(j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_dpbusd_epi32(acc[j], a, a);
    int s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_epi32(acc[j]);
    return (float)s;
}
/* AVX2 without VNNI (the int8 kernel of gemm_lowp_avx2.c): vpmaddwd + vpaddd,
 * 2 ops x 16 per pair; in asm (GCC 12 kept these accumulators in memory),
 * 12 chains acc += madd(acc, a) in ymm0-11 */
#define MADD_(r) "vpmaddwd %%ymm12, %%ymm" #r ", %%ymm13\n\tvpaddd %%ymm13, %%ymm" #r ", %%ymm" #r "\n\t"
__attribute__((target("avx2"))) static float dot_loop_int16(long iters) {
    int v[8], s = 0;
    long k = iters;
    __asm__ volatile("vpcmpeqd %%ymm12, %%ymm12, %%ymm12\n\t"
                     "vpsrlw $15, %%ymm12, %%ymm12\n\t" /* int16 ones */
                     "vmovdqa %%ymm12, %%ymm0\n\tvmovdqa %%ymm12, %%ymm1\n\tvmovdqa %%ymm12, %%ymm2\n\t"
                     "vmovdqa %%ymm12, %%ymm3\n\tvmovdqa %%ymm12, %%ymm4\n\tvmovdqa %%ymm12, %%ymm5\n\t"
                     "vmovdqa %%ymm12, %%ymm6\n\tvmovdqa %%ymm12, %%ymm7\n\tvmovdqa %%ymm12, %%ymm8\n\t"
                     "vmovdqa %%ymm12, %%ymm9\n\tvmovdqa %%ymm12, %%ymm10\n\tvmovdqa %%ymm12, %%ymm11\n\t"
                     "1:\n\t" MADD_(0) MADD_(1) MADD_(2) MADD_(3) MADD_(4) MADD_(5) MADD_(6) MADD_(7)
                     MADD_(8) MADD_(9) MADD_(10) MADD_(11)
                     "dec %[k]\n\tjnz 1b\n\t"
                     "vpaddd %%ymm0, %%ymm11, %%ymm11\n\t"
                     "vmovdqu %%ymm11, (%[v])\n\t"
                     : [k] "+r"(k)
                     : [v] "r"(v)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                       "xmm10", "xmm11", "xmm12", "xmm13", "memory", "cc");
    for (int j = 0; j < 8; j++) s += v[j];
    return (float)s;
}
#endif

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Summed over the threads, each timed on its own CPU time: the rate of the
 * cores while they run this, so other jobs on a shared machine do not lower
 * it (a kernel's best-of-N wall time is compared against it). */
static double lowp_ceiling(int prec, int threads) {
    float (*loop)(long) = NULL;
    double ops = 0;
    int chains = CHAINS;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (prec == 1 && __builtin_cpu_supports("avx512bf16")) loop = dot_loop_bf16, ops = 64;
    if (prec == 2 && __builtin_cpu_supports("avx512vnni")) loop = dot_loop_int8, ops = 128;
    else if (prec == 2 && __builtin_cpu_supports("avx2")) loop = dot_loop_int16, ops = 32, chains = CHAINS_AVX2;
#endif
    if (!loop) return 0;
    const long iters = 2000000;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double g = 0;
#pragma omp parallel num_threads(threads)
        {
            double t0 = thread_cpu_s();
            float s = loop(iters);
            double r = ops * chains * iters / (thread_cpu_s() - t0) * 1e-9;
#pragma omp atomic
            sink += s;
#pragma omp atomic
            g += r;
        }
        if (g > best) best = g;
    }
    (void)sink;
    return best;
}

static const char *lowp_int8_insn(void) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512vnni")) return "vpdpbusd";
    if (__builtin_cpu_supports("avx2")) return "vpmaddwd+vpaddd";
#endif
    return "none";
}

/* fp32 / bf16 / int8 on the forward shapes: y[M,N] = x[M,K] @ W[N,K]^T. */
static void bench_lowp(int quick, const char *only, double peak, int threads) {
    unsigned seed = 777;
    double ceil[3] = {peak, lowp_ceiling(1, threads), lowp_ceiling(2, threads)};
    printf("{\"bench\":\"lowp_ceiling\",\"threads\":%d,\"fp32_fma_gflops\":%.1f,"
           "\"bf16_vdpbf16ps_gflops\":%.1f,\"int8_gops\":%.1f,\"int8_insn\":\"%s\",\"loadavg_1m\":%.2f}\n",
           threads, ceil[0], ceil[1], ceil[2], lowp_int8_insn(), loadavg());
    for (int c = 0; c < g_ncases; c++) {
        Case k = g_cases[c];
        if (k.serial || !k.tb || k.ta || strstr(k.name, "_fwd") == NULL) continue;
        if (only && !strstr(k.name, only)) continue;
        float *x = rand_buf((size_t)k.M * k.K, &seed), *W = rand_buf((size_t)k.N * k.K, &seed);
        float *y = rand_buf((size_t)k.M * k.N, &seed);
        double flop = 2.0 * k.M * k.N * k.K, t32 = time_case(&k, x, W, y, quick ? 0.2 : 0.5);
        for (int prec = 0; prec <= 2; prec++) {
            double best = t32;
            const char *isa = miles_gemm_isa_name();
            if (prec) {
                const char *why = NULL;
                MilesPackedWeights *p = NULL;
                if (!miles_gemm_lowp_available((MilesGemmPrecision)prec, &why) ||
                    miles_gemm_pack(&p, (MilesGemmPrecision)prec, W, k.N, k.K, k.K) != 0) {
                    printf("{\"bench\":\"gemm_lowp\",\"precision\":\"%s\",\"skipped\":\"%s\"}\n",
                           prec == 1 ? "bf16" : "int8", why ? why : "pack failed");
                    continue;
                }
                isa = miles_gemm_packed_isa(p);
                int inner = flop < 5e7 ? (int)(5e7 / flop) + 1 : 1;
                double total = 0;
                best = 1e30;
                for (int rep = 0; rep < 1000 && (rep < 4 || total < (quick ? 0.2 : 0.5)); rep++) {
                    double t0 = now_s();
                    for (int r = 0; r < inner; r++) miles_gemm_packed(p, k.M, x, k.K, NULL, y, k.N);
                    double dt = (now_s() - t0) / inner;
                    if (rep > 0) {
                        total += dt * inner;
                        if (dt < best) best = dt;
                    }
                }
                miles_gemm_packed_free(p);
            }
            printf("{\"bench\":\"gemm_lowp\",\"precision\":\"%s\",\"isa\":\"%s\",\"case\":\"%s\","
                   "\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"best_us\":%.1f,\"gflops\":%.1f,\"vs_fp32\":%.2f,"
                   "\"of_fp32_peak\":%.3f,\"of_own_ceiling\":%.3f,\"loadavg_1m\":%.2f}\n",
                   prec == 0 ? "fp32" : prec == 1 ? "bf16" : "int8", isa, k.name, k.M, k.N, k.K,
                   threads, best * 1e6, flop / best * 1e-9, t32 / best, peak > 0 ? flop / best * 1e-9 / peak : 0,
                   ceil[prec] > 0 ? flop / best * 1e-9 / ceil[prec] : 0, loadavg());
            fflush(stdout);
        }
        free(x);
        free(W);
        free(y);
    }
}

/* The fp32 engine's packed GEMM (see the header comment, set "packed"). */
static void bench_packed(int quick, const char *only, double peak, int threads) {
    static const int NK[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
    static const int Ms[] = {14, 16, 28, 36, 48, 1024};
    static const char *names[] = {"minilm_qkv", "minilm_ao", "minilm_ffn_in", "minilm_ffn_out"};
    unsigned seed = 4242;
    for (int a = 0; a < 4; a++) {
        const int N = NK[a][0], K = NK[a][1];
        const int ncopy = (int)(96.0 * 1024 * 1024 / (4.0 * N * K)) + 1; /* 96 MiB of weights */
        float *W = rand_buf((size_t)N * K, &seed), *bias = rand_buf((size_t)N, &seed);
        MilesGemmF32Packed **pw = malloc(sizeof *pw * ncopy);
        int ok = pw != NULL;
        for (int i = 0; ok && i < ncopy; i++) ok = (pw[i] = miles_gemm_f32_pack(W, N, K, K)) != NULL;
        for (int b = 0; ok && b < (int)(sizeof Ms / sizeof *Ms); b++) {
            const int M = Ms[b];
            char name[64];
            snprintf(name, sizeof name, "%s_m%d", names[a], M);
            if (only && !strstr(name, only)) continue;
            float *x = rand_buf((size_t)M * K, &seed), *y = rand_buf((size_t)M * N, &seed);
            const double flop = 2.0 * M * N * K;
            double best = 1e30, total = 0;
            for (int rep = 0; rep < 100000 && (rep < 3 || total < (quick ? 0.2 : 0.5)); rep++) {
                const int n = M > 64 ? 2 : ncopy; /* many rows: compute bound, W stays put */
                double t0 = now_s();
                for (int i = 0; i < n; i++) miles_gemm_f32_packed_bias(pw[i], M, x, K, bias, y, N, 0);
                double dt = (now_s() - t0) / n;
                if (rep > 0) total += dt * n, best = dt < best ? dt : best;
            }
            printf("{\"bench\":\"gemm_f32_packed\",\"isa\":\"%s\",\"case\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,"
                   "\"threads\":%d,\"w_from\":\"%s\",\"best_us\":%.1f,\"gflops\":%.1f,\"w_gb_per_s\":%.1f,"
                   "\"of_peak\":%.3f,\"loadavg_1m\":%.2f}\n",
                   pw[0]->isa->name, name, M, N, K, threads, M > 64 ? "cache" : "memory", best * 1e6,
                   flop / best * 1e-9, 4.0 * N * K / best * 1e-9, peak > 0 ? flop / best * 1e-9 / peak : 0,
                   loadavg());
            fflush(stdout);
            free(x);
            free(y);
        }
        for (int i = 0; pw && i < ncopy; i++) miles_gemm_f32_packed_free(pw[i]);
        free(pw);
        free(W);
        free(bias);
    }
}

/* The fp32 micro-kernel alone (set "kernel"): full MR x NR tiles over one
 * KC slice, C read and written (a K slice after the first), called in a loop
 * on every thread at once, each with its own buffers, with the operands in
 * five places.  It separates the kernel's own rate from what the memory
 * around it costs in a whole GEMM (docs/performance.md, "GEMM"). */
static void bench_kernel(const char *only, double peak, int threads) {
    const MilesGemmIsa *isa = miles_gemm_isa_selected();
    const int MR = isa->mr, NR = isa->nr, kc = MILES_GEMM_KC;
    /* name, A micro-panels cycled, B micro-panels cycled, C row stride (floats) */
    static const struct { const char *name; int na, nb, ldc; } cfg[] = {
        {"one_a_one_b", 1, 1, 0},         /* both panels stay in L1/L2 */
        {"a_block_l2_b_l1", 16, 1, 0},    /* the A block (192 rows) streams past one B panel */
        {"b_chunk_l2_a_l1", 1, 8, 0},     /* a 256-column B sub-chunk streams past one A panel */
        {"b_from_l3", 1, 256, 0},         /* a new B panel from L3 on every call */
        {"c_rows_12k", 16, 1, 3072},      /* C rows 12 KiB apart: the tile's rows in one L1 set */
    };
    for (int c = 0; c < (int)(sizeof cfg / sizeof *cfg); c++) {
        if (only && !strstr(cfg[c].name, only)) continue;
        const int na = cfg[c].na, nb = cfg[c].nb, ldc = cfg[c].ldc ? cfg[c].ldc : NR;
        const long calls = 60000;
        double best_sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : best_sum)
        {
            unsigned seed = 777u;
#ifdef _OPENMP
            seed += (unsigned)omp_get_thread_num();
#endif
            float *A = rand_buf((size_t)na * MR * kc, &seed), *B = rand_buf((size_t)nb * kc * NR, &seed);
            float *C = rand_buf((size_t)MR * ldc, &seed);
            double best = 1e30;
            for (int rep = 0; rep < 4; rep++) {
                double t0 = now_s();
                for (long i = 0; i < calls; i++)
                    isa->kernel(kc, A + (size_t)(i / nb % na) * MR * kc, 1, MR,
                                B + (size_t)(i % nb) * kc * NR, NR, C, ldc, 1, MR, NR, 1.0f, 0, NULL);
                double dt = now_s() - t0;
                if (rep > 0 && dt < best) best = dt;
            }
            best_sum += 2.0 * MR * NR * kc * calls / best * 1e-9;
            free(A);
            free(B);
            free(C);
        }
        printf("{\"bench\":\"gemm_kernel\",\"isa\":\"%s\",\"case\":\"%s\",\"mr\":%d,\"nr\":%d,\"kc\":%d,"
               "\"threads\":%d,\"gflops\":%.1f,\"of_peak\":%.3f,\"loadavg_1m\":%.2f}\n",
               isa->name, cfg[c].name, MR, NR, kc, threads, best_sum, peak > 0 ? best_sum / peak : 0,
               loadavg());
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    const char *backend = "both", *set = "all", *isa = NULL, *only = NULL;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) set = argv[++i];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--backend own|blas|both] [--isa NAME] [--set bert|small|attn|lowp|packed|kernel|all] [--only SUBSTRING] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (isa && miles_gemm_force_isa(isa) != 0) {
        fprintf(stderr, "bench_sgemm: ISA %s is not available on this CPU\n", isa);
        return 2;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    const char *peak_isa = "none";
    double peak1 = peak_gflops(1, &peak_isa), peakn = peak_gflops(threads, &peak_isa);
    const char *cpu_env = getenv("OPENBLAS_CORETYPE");
    printf("{\"bench\":\"fp32_peak\",\"isa\":\"%s\",\"threads\":%d,\"gflops_1thread\":%.1f,"
           "\"gflops\":%.1f,\"gemm_isa\":\"%s\",\"openblas_coretype\":\"%s\",\"loadavg_1m\":%.2f}\n",
           peak_isa, threads, peak1, peakn, miles_gemm_isa_name(), cpu_env ? cpu_env : "",
           loadavg());
    fflush(stdout);

    build_cases(quick);
    unsigned seed = 12345;
    for (int c = 0; c < g_ncases; c++) {
        Case k = g_cases[c];
        if (strcmp(set, "all") && strcmp(set, k.set)) continue; /* "lowp": below */
        if (only && !strstr(k.name, only)) continue;
        float *A = rand_buf((size_t)k.M * k.K, &seed);
        float *B = rand_buf((size_t)k.K * k.N, &seed);
        float *C = rand_buf((size_t)k.M * k.N, &seed);
        for (int be = 0; be < 2; be++) { /* 0 own, 1 blas */
            if (be == 0 && !strcmp(backend, "blas")) continue;
            if (be == 1 && (!strcmp(backend, "own") || !miles_gemm_has_blas() || k.serial)) continue;
            int prev = miles_gemm_use_blas(be);
            double best = time_case(&k, A, B, C, quick ? 0.2 : 0.5);
            miles_gemm_use_blas(prev);
            double g = 2.0 * k.M * k.N * k.K / best * 1e-9;
            double peak = k.serial ? peak1 : peakn;
            printf("{\"bench\":\"sgemm\",\"backend\":\"%s\",\"case\":\"%s\",\"trans\":\"%c%c\","
                   "\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"best_us\":%.1f,\"gflops\":%.1f,"
                   "\"of_peak\":%.3f,\"loadavg_1m\":%.2f}\n",
                   be ? "openblas" : k.serial ? "own_serial" : "own", k.name, k.ta ? 't' : 'n',
                   k.tb ? 't' : 'n', k.M, k.N, k.K, k.serial ? 1 : threads, best * 1e6, g,
                   peak > 0 ? g / peak : 0, loadavg());
            fflush(stdout);
        }
        free(A);
        free(B);
        free(C);
    }
    if (!strcmp(set, "all") || !strcmp(set, "lowp")) bench_lowp(quick, only, peakn, threads);
    if (!strcmp(set, "all") || !strcmp(set, "packed")) bench_packed(quick, only, peakn, threads);
    if (!strcmp(set, "all") || !strcmp(set, "kernel")) bench_kernel(only, peakn, threads);
    return 0;
}
