/*
 * op_test.h — the harness shared by the CUDA op test programs
 * (tests/cuda/test_cuda_ops.cu, test_cuda_fast.cu): check/report with the
 * scaled error, the SIMT emulator's per-kernel records, a deterministic RNG,
 * device buffers, and reference fp16/bf16 conversions (round to nearest
 * even, written from the IEEE formats, independent of CUDA's).  One
 * translation unit per program includes it (static state).
 *
 * Error measure, printed for every check:
 *   max_abs  = max |gpu - cpu|
 *   scaled   = max_abs / max(1, max |cpu|)
 * A check passes when scaled <= tol (exact: max_abs == 0).
 */
#ifndef MILES_OP_TEST_H
#define MILES_OP_TEST_H

#include "common.cuh"

#include <math.h>
#include <string>
#include <vector>

/* ------------------------------------------------------------ harness */

static int g_fail = 0, g_checks = 0, g_quick = 0;

#ifdef SIMT_EMULATOR
/* the emulator's per-kernel table: a check is attributed to the kernels that
 * ran since the previous one */
#define SIM_RECORD(name, err, tol, ok) simt_check_record(name, err, tol, ok)
#else
#define SIM_RECORD(name, err, tol, ok) ((void)0)
#endif

static void report(const char *name, double max_abs, double scaled, double tol, int exact) {
    int ok = exact ? max_abs == 0.0 : scaled <= tol;
    g_checks++;
    if (!ok) g_fail++;
    SIM_RECORD(name, scaled, tol, ok);
    printf("%-4s %-44s max_abs %.3e  scaled %.3e  tol %s%.1e\n", ok ? "ok" : "FAIL", name, max_abs,
           scaled, exact ? "exact " : "", tol);
}

static void check(const char *name, const float *gpu, const float *cpu, size_t n, double tol,
                  int exact = 0) {
    double max_abs = 0.0, max_ref = 0.0;
    size_t worst = 0;
    int nan_mismatch = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(cpu[i]) || isnan(gpu[i])) {
            if (isnan(cpu[i]) != isnan(gpu[i])) nan_mismatch = 1, worst = i;
            continue;
        }
        if (isinf(cpu[i]) || isinf(gpu[i])) {
            if (cpu[i] != gpu[i]) nan_mismatch = 1, worst = i;
            continue;
        }
        double d = fabs((double)gpu[i] - (double)cpu[i]);
        if (d > max_abs) max_abs = d, worst = i;
        if (fabs(cpu[i]) > max_ref) max_ref = fabs(cpu[i]);
    }
    double scaled = max_abs / (max_ref > 1.0 ? max_ref : 1.0);
    if (nan_mismatch) {
        printf("     %s: NaN/Inf mismatch at %zu (gpu %g cpu %g)\n", name, worst, gpu[worst], cpu[worst]);
        max_abs = scaled = INFINITY;
    }
    report(name, max_abs, scaled, tol, exact);
    if (!(exact ? max_abs == 0.0 : scaled <= tol) && n)
        printf("     worst element %zu: gpu %.9g cpu %.9g\n", worst, gpu[worst], cpu[worst]);
}

static void check_true(const char *name, int cond, const char *detail) {
    g_checks++;
    if (!cond) g_fail++;
    SIM_RECORD(name, cond ? 0.0 : INFINITY, 0.0, cond);
    printf("%-4s %-44s %s\n", cond ? "ok" : "FAIL", name, detail);
}

/* deterministic random numbers (splitmix64) */
static uint64_t g_rng = 0x5eed1234abcdULL;
static uint64_t rnd_u64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static float rnd_unif(float lo, float hi) {
    return lo + (hi - lo) * (float)((rnd_u64() >> 40) * (1.0 / 16777216.0));
}
static std::vector<float> rnd_vec(size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(n);
    for (auto &x : v) x = rnd_unif(lo, hi);
    return v;
}

/* device buffers */
template <typename T> struct Dev {
    T *p = NULL;
    size_t n = 0;
    Dev() {}
    explicit Dev(size_t n_) : n(n_) { CUDA_CHECK(cudaMalloc(&p, (n ? n : 1) * sizeof(T))); }
    Dev(const std::vector<T> &h) : Dev(h.size()) { up(h); }
    ~Dev() { if (p) cudaFree(p); }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
    void up(const std::vector<T> &h) {
        CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> down() const {
        std::vector<T> h(n);
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
        return h;
    }
};

/* An op returning non-OK is a failure of that op, with its message. */
#define OPOK(call)                                                                  \
    do {                                                                            \
        int _s = (call);                                                            \
        if (_s != MILES_OK) {                                                       \
            printf("FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,        \
                   miles_status_name(_s), miles_last_error());                     \
            g_fail++;                                                               \
        }                                                                           \
    } while (0)

static cudaStream_t g_stream;
#define STREAM ((miles_cuda_stream)g_stream)

static int g_cc = 0;

/* ---------------------------------------------------- casts + gemm_ex */

/* host reference conversions, round to nearest even */
static uint16_t ref_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float ref_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static float ref_f16_to_f32(uint16_t h) {
    uint32_t s = (h >> 15) & 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 0x400), (int)e - 25);
    return s ? -v : v;
}
/* fp32 -> fp16 RNE via the exact value: pick the nearer of the two
 * neighbouring halfs (ties to even mantissa). */
static uint16_t ref_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    if (isnan(f)) return sign | 0x7e00;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7c00; /* rounds to inf */
    /* enumerate: halfs are monotonic in their bit pattern for magnitudes */
    uint16_t lo = 0, hi = 0x7bff;
    while (lo < hi) { /* largest pattern with value <= a */
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if ((double)ref_f16_to_f32(mid) <= a) lo = mid; else hi = (uint16_t)(mid - 1);
    }
    double vlo = ref_f16_to_f32(lo);
    uint16_t r = lo;
    if (vlo < a) {
        double vhi = ref_f16_to_f32((uint16_t)(lo + 1));
        if (a - vlo > vhi - a || (a - vlo == vhi - a && (lo & 1))) r = (uint16_t)(lo + 1);
    }
    return sign | r;
}

/* The start of an op test program's device part: device 0, g_cc, g_stream,
 * the BLAS CPU reference.  Returns -1 when ready, else the exit status: the
 * "no CUDA device" skip (what names the skipped tests) or a failed init. */
static int op_test_open_device(const char *what) {
    int ndev = 0;
    cudaError_t e = cudaGetDeviceCount(&ndev);
    if (e != cudaSuccess || ndev == 0) {
        printf("no CUDA device (%s): skipping the %s (%d host check(s), %d failed)\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", what, g_checks, g_fail);
        return miles_cuda_no_device_exit(g_fail ? 1 : 0);
    }
    if (miles_cuda_init(0) != MILES_OK) {
        printf("FAIL miles_cuda_init: %s\n", miles_last_error());
        return 1;
    }
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    g_cc = miles_cuda_compute_capability();
    printf("device 0: %s, sm_%d, %.1f GiB%s\n", prop.name, g_cc, prop.totalGlobalMem / 1073741824.0,
           g_quick ? " (quick sizes)" : "");
    miles_gemm_use_blas(1);
    CUDA_CHECK(cudaStreamCreate(&g_stream));
    return -1;
}

/* The end of an op test program: pending CUDA errors, the emulator's
 * diagnostics and leaks, the count; returns the exit status. */
static int op_test_finish(void) {
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        printf("FAIL pending CUDA error: %s\n", cudaGetErrorString(e));
        g_fail++;
    }
    CUDA_CHECK(cudaStreamDestroy(g_stream));
    miles_cuda_shutdown();
#ifdef SIMT_EMULATOR
    char d[64];
    snprintf(d, sizeof d, "%ld", simt_diagnostics());
    check_true("emulator: no undefined behaviour reported", simt_diagnostics() == 0, d);
    snprintf(d, sizeof d, "%ld live", simt_live_allocations());
    check_true("emulator: every device allocation freed", simt_live_allocations() == 0, d);
#endif
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}

#endif
