/*
 * test_simt_blas.cpp — the SIMT emulator's cuBLAS / cuBLASLt shim against an
 * independent reference: a double-precision column-major triple loop written
 * here from the cuBLAS documentation (op(A) is m x k, lda >= rows of the
 * stored A, D = alpha op(A) op(B) + beta C, beta = 0 never reads C, alpha = 0
 * never reads A and B), on the same rounded inputs where the compute type
 * rounds them.  Also: argument errors, pointer modes, batches, the
 * fp16-overflow behaviour of FAST_16F in both modes, and the cuBLASLt
 * epilogues (bias, ReLU, GELU with aux, GELU and bias gradients).
 * Tolerance: 1e-5 relative to max(1, max |reference|) (fp32 accumulation).
 */
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <vector>

static int g_fail = 0, g_checks = 0;
static void check(const char *name, bool ok, const char *fmt = "", ...) __attribute__((format(printf, 3, 4)));
static void check(const char *name, bool ok, const char *fmt, ...) {
    char d[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof d, fmt, ap);
    va_end(ap);
    g_checks++;
    if (!ok) g_fail++;
    printf("%-4s %-58s %s\n", ok ? "ok" : "FAIL", name, d);
}

static uint64_t g_rng = 99;
static float rnd() {
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((g_rng >> 40) * (2.0 / 16777216.0) - 1.0);
}
static std::vector<float> rvec(size_t n) {
    std::vector<float> v(n);
    for (auto &x : v) x = rnd();
    return v;
}

template <class T> static T *dev(const std::vector<T> &h) {
    T *d = nullptr;
    cudaMalloc(&d, h.size() * sizeof(T) + 1);
    cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
    return d;
}
template <class T> static std::vector<T> host(const T *d, size_t n) {
    std::vector<T> h(n);
    cudaDeviceSynchronize();
    cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
}

/* rounding of an input the way a compute type does it */
static float r16(float x) { return __half2float(__float2half_rn(x)); }
static float rbf(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
static float rtf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t rem = u & 0x1fff, keep = u & ~0x1fffu;
    if (rem > 0x1000 || (rem == 0x1000 && (u & 0x2000))) keep += 0x2000;
    memcpy(&x, &keep, 4);
    return x;
}

/* reference: column-major, double accumulation */
static void ref_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const float *A, int lda, const float *B,
                     int ldb, double beta, float *C, int ldc, float (*rin)(float) = nullptr) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            if (alpha != 0)
                for (int p = 0; p < k; p++) {
                    float a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
                    float b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
                    if (rin) a = rin(a), b = rin(b);
                    s += (double)a * b;
                }
            double c = beta != 0 ? beta * C[i + (size_t)j * ldc] : 0.0;
            C[i + (size_t)j * ldc] = (float)(alpha * s + c);
        }
}

static double rel_err(const std::vector<float> &a, const std::vector<float> &b) {
    double m = 0, r = 1;
    for (size_t i = 0; i < a.size(); i++) {
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        if (isnan(a[i])) continue;
        m = fmax(m, fabs((double)a[i] - b[i]));
        r = fmax(r, fabs((double)b[i]));
    }
    return m / r;
}

static void test_sgemm(cublasHandle_t h) {
    const int m = 37, n = 29, k = 53;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 5;
            auto A = rvec((size_t)lda * (ta ? m : k)), B = rvec((size_t)ldb * (tb ? k : n)), C = rvec((size_t)ldc * n);
            float *dA = dev(A), *dB = dev(B), *dC = dev(C);
            float alpha = 0.75f, beta = -0.5f;
            cublasStatus_t st = cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                            &alpha, dA, lda, dB, ldb, &beta, dC, ldc);
            ref_gemm(ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
            double e = rel_err(host(dC, C.size()), C);
            char name[80];
            snprintf(name, sizeof name, "cublasSgemm op(A)=%c op(B)=%c, padded ld, alpha/beta", ta ? 'T' : 'N',
                     tb ? 'T' : 'N');
            check(name, st == CUBLAS_STATUS_SUCCESS && e <= 1e-5, "err %.2e", e);
            cudaFree(dA), cudaFree(dB), cudaFree(dC);
        }
    /* beta = 0 never reads C (NaN there), alpha = 0 never reads A and B, k = 0 scales C */
    auto A = rvec(16), B = rvec(16);
    std::vector<float> Cn(16, NAN), C2 = rvec(16), An(16, NAN);
    float *dA = dev(A), *dB = dev(B), *dC = dev(Cn), *dAn = dev(An), *dC2 = dev(C2);
    float one = 1.0f, zero = 0.0f, two = 2.0f;
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, dA, 4, dB, 4, &zero, dC, 4);
    std::vector<float> r(16, 0.0f);
    ref_gemm(0, 0, 4, 4, 4, 1, A.data(), 4, B.data(), 4, 0, r.data(), 4);
    check("beta = 0 ignores NaN in C", rel_err(host(dC, 16), r) <= 1e-6, "");
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &zero, dAn, 4, dAn, 4, &two, dC2, 4);
    std::vector<float> c2 = C2;
    for (auto &x : c2) x *= 2;
    bool ok1 = rel_err(host(dC2, 16), c2) == 0;
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 0, &one, dAn, 4, dAn, 4, &two, dC2, 4);
    for (auto &x : c2) x *= 2;
    check("alpha = 0 and k = 0: C = beta C, A and B not read", ok1 && rel_err(host(dC2, 16), c2) == 0, "");
    check("m = 0 is a no-op", cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 0, 4, 4, &one, dA, 1, dB, 4, &zero, dC, 1) ==
          CUBLAS_STATUS_SUCCESS, "");
    cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dAn), cudaFree(dC2);
}

static void test_batched(cublasHandle_t h) {
    const int m = 19, n = 11, k = 23, batch = 3;
    auto A = rvec((size_t)m * k * batch), B = rvec((size_t)k * n), C = rvec((size_t)m * n * batch);
    float *dA = dev(A), *dB = dev(B), *dC = dev(C);
    float alpha = 1.5f, beta = 0.25f;
    /* stride 0 for B: the same B for every batch */
    cublasStatus_t st = cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, dA, m, (long long)m * k,
                                                  dB, k, 0, &beta, dC, m, (long long)m * n, batch);
    for (int b = 0; b < batch; b++)
        ref_gemm(0, 0, m, n, k, alpha, A.data() + (size_t)b * m * k, m, B.data(), k, beta, C.data() + (size_t)b * m * n, m);
    double e = rel_err(host(dC, C.size()), C);
    check("cublasSgemmStridedBatched, batch 3, broadcast B (stride 0)", st == CUBLAS_STATUS_SUCCESS && e <= 1e-5,
          "err %.2e", e);
    /* pointer arrays in device memory */
    std::vector<const float *> pa, pb;
    std::vector<float *> pc;
    auto C2 = rvec((size_t)m * n * batch);
    float *dC2 = dev(C2);
    for (int b = 0; b < batch; b++) {
        pa.push_back(dA + (size_t)(batch - 1 - b) * m * k);
        pb.push_back(dB);
        pc.push_back(dC2 + (size_t)b * m * n);
    }
    const float **dpa = nullptr, **dpb = nullptr;
    float **dpc = nullptr;
    cudaMalloc(&dpa, batch * sizeof(void *));
    cudaMalloc(&dpb, batch * sizeof(void *));
    cudaMalloc(&dpc, batch * sizeof(void *));
    cudaMemcpy(dpa, pa.data(), batch * sizeof(void *), cudaMemcpyHostToDevice);
    cudaMemcpy(dpb, pb.data(), batch * sizeof(void *), cudaMemcpyHostToDevice);
    cudaMemcpy(dpc, pc.data(), batch * sizeof(void *), cudaMemcpyHostToDevice);
    st = cublasSgemmBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, dpa, m, dpb, k, &beta, dpc, m, batch);
    for (int b = 0; b < batch; b++)
        ref_gemm(0, 0, m, n, k, alpha, A.data() + (size_t)(batch - 1 - b) * m * k, m, B.data(), k, beta,
                 C2.data() + (size_t)b * m * n, m);
    e = rel_err(host(dC2, C2.size()), C2);
    check("cublasSgemmBatched (device pointer arrays)", st == CUBLAS_STATUS_SUCCESS && e <= 1e-5, "err %.2e", e);
    cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dC2), cudaFree(dpa), cudaFree(dpb), cudaFree(dpc);
}

static void test_types(cublasHandle_t h) {
    const int m = 24, n = 13, k = 40;
    auto A = rvec((size_t)m * k), B = rvec((size_t)k * n);
    float *dA = dev(A), *dB = dev(B), *dC = nullptr;
    cudaMalloc(&dC, (size_t)m * n * sizeof(float));
    float one = 1, zero = 0;
    struct {
        cublasComputeType_t ct;
        float (*r)(float);
        const char *name;
    } modes[] = {{CUBLAS_COMPUTE_32F, nullptr, "COMPUTE_32F: no rounding"},
                 {CUBLAS_COMPUTE_32F_FAST_TF32, rtf32, "FAST_TF32: inputs to 10 mantissa bits"},
                 {CUBLAS_COMPUTE_32F_FAST_16F, r16, "FAST_16F: inputs to fp16"},
                 {CUBLAS_COMPUTE_32F_FAST_16BF, rbf, "FAST_16BF: inputs to bf16"}};
    for (auto &md : modes) {
        cublasStatus_t st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_32F, m, dB, CUDA_R_32F,
                                         k, &zero, dC, CUDA_R_32F, m, md.ct, CUBLAS_GEMM_DEFAULT);
        std::vector<float> r((size_t)m * n);
        ref_gemm(0, 0, m, n, k, 1, A.data(), m, B.data(), k, 0, r.data(), m, md.r);
        double e = rel_err(host(dC, r.size()), r);
        /* and it must differ from unrounded fp32 when the mode rounds */
        std::vector<float> r32((size_t)m * n);
        ref_gemm(0, 0, m, n, k, 1, A.data(), m, B.data(), k, 0, r32.data(), m);
        double d32 = rel_err(r, r32);
        check(md.name, st == CUBLAS_STATUS_SUCCESS && e <= 1e-6 && (md.r ? d32 > 1e-5 : true),
              "err %.2e (vs unrounded %.1e)", e, d32);
    }
    /* 16-bit storage: fp16 A/B, fp32 or fp16 C */
    std::vector<__half> Ah(A.size()), Bh(B.size());
    for (size_t i = 0; i < A.size(); i++) Ah[i] = __float2half_rn(A[i]);
    for (size_t i = 0; i < B.size(); i++) Bh[i] = __float2half_rn(B[i]);
    __half *dAh = dev(Ah), *dBh = dev(Bh), *dCh = nullptr;
    cudaMalloc(&dCh, (size_t)m * n * sizeof(__half));
    cublasStatus_t s1 = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dAh, CUDA_R_16F, m, dBh, CUDA_R_16F, k,
                                     &zero, dC, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cublasStatus_t s2 = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dAh, CUDA_R_16F, m, dBh, CUDA_R_16F, k,
                                     &zero, dCh, CUDA_R_16F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    std::vector<float> r((size_t)m * n);
    ref_gemm(0, 0, m, n, k, 1, A.data(), m, B.data(), k, 0, r.data(), m, r16);
    double e1 = rel_err(host(dC, r.size()), r);
    std::vector<__half> ch = host(dCh, r.size());
    std::vector<float> cf(r.size()), rr(r.size());
    for (size_t i = 0; i < r.size(); i++) cf[i] = __half2float(ch[i]), rr[i] = r16(r[i]);
    double e2 = rel_err(cf, rr);
    check("GemmEx fp16 storage, fp32 and fp16 output (rounded once)", s1 == 0 && s2 == 0 && e1 <= 1e-6 && e2 <= 1e-3,
          "err %.2e / %.2e", e1, e2);
    /* fp16 overflow of a FAST_16F input: Inf (round to nearest) or clamped */
    A[3] = 1.0e5f;
    cudaMemcpy(dA, A.data(), A.size() * sizeof(float), cudaMemcpyHostToDevice);
    for (int sat = 0; sat < 2; sat++) {
        int old = simt_cublas_f16_saturate(sat);
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_32F, m, dB, CUDA_R_32F, k, &zero, dC,
                     CUDA_R_32F, m, CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_GEMM_DEFAULT);
        simt_cublas_f16_saturate(old);
        std::vector<float> c = host(dC, (size_t)m * n);
        size_t ninf = 0;
        for (int j = 0; j < n; j++) ninf += isinf(c[3 + (size_t)j * m]);
        std::vector<float> Ac = A;
        Ac[3] = 65504.0f;
        std::vector<float> rc((size_t)m * n);
        ref_gemm(0, 0, m, n, k, 1, Ac.data(), m, B.data(), k, 0, rc.data(), m, r16);
        check(sat ? "FAST_16F input 1e5, saturate mode: clamped to 65504" : "FAST_16F input 1e5: +-Inf (round to nearest)",
              sat ? ninf == 0 && rel_err(c, rc) <= 1e-6 : ninf == (size_t)n, "%zu Inf in row 3", ninf);
    }
    /* 64-bit */
    std::vector<double> Ad(12), Bd(12), Cd(9, 1.0);
    for (int i = 0; i < 12; i++) Ad[i] = 1.0 + 1e-12 * i, Bd[i] = 2.0 - 1e-12 * i;
    double *dAd = dev(Ad), *dBd = dev(Bd), *dCd = dev(Cd), d1 = 1.0, d0 = 0.0;
    cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 3, 4, &d1, dAd, 3, dBd, 4, &d0, dCd, 3);
    std::vector<double> cd = host(dCd, 9);
    double want = 0;
    for (int p = 0; p < 4; p++) want += Ad[0 + 3 * p] * Bd[p];
    check("cublasDgemm keeps double precision", cd[0] == want, "%.17g vs %.17g", cd[0], want);
    cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dAh), cudaFree(dBh), cudaFree(dCh);
    cudaFree(dAd), cudaFree(dBd), cudaFree(dCd);
}

static void test_modes_and_errors(cublasHandle_t h) {
    const int m = 8, n = 8, k = 8;
    auto A = rvec(64), B = rvec(64), C = rvec(64);
    float *dA = dev(A), *dB = dev(B), *dC = dev(C);
    /* device pointer mode: alpha, beta read when the GEMM runs */
    std::vector<float> ab = {2.0f, 0.5f};
    float *dab = dev(ab);
    cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE);
    cublasStatus_t st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, dab, dA, m, dB, k, dab + 1, dC, m);
    ab[0] = 3.0f; /* changed before the GEMM runs: the new value counts */
    cudaMemcpy(dab, ab.data(), sizeof(float), cudaMemcpyHostToDevice);
    cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST);
    ref_gemm(0, 0, m, n, k, 3.0, A.data(), m, B.data(), k, 0.5, C.data(), m);
    double e = rel_err(host(dC, 64), C);
    check("CUBLAS_POINTER_MODE_DEVICE reads alpha/beta at run time", st == 0 && e <= 1e-5, "err %.2e", e);
    /* TF32 through the math mode of the legacy API (sm_80+ only) */
    float one = 1, zero = 0;
    cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH);
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m);
    std::vector<float> r(64);
    ref_gemm(0, 0, m, n, k, 1, A.data(), m, B.data(), k, 0, r.data(), m, rtf32);
    double e90 = rel_err(host(dC, 64), r);
    simt_set_compute_capability(70);
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m);
    ref_gemm(0, 0, m, n, k, 1, A.data(), m, B.data(), k, 0, r.data(), m);
    double e70 = rel_err(host(dC, 64), r);
    cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
    check("CUBLAS_TF32_TENSOR_OP_MATH: TF32 on sm_90, fp32 on sm_70", e90 <= 1e-6 && e70 <= 1e-6, "%.1e %.1e", e90, e70);
    cublasStatus_t arch = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_16BF, m, dB, CUDA_R_16BF,
                                       k, &zero, dC, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    simt_set_compute_capability(90);
    /* argument errors, as cuBLAS reports them */
    cublasStatus_t s_lda = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m - 1, dB, k, &zero, dC, m);
    cublasStatus_t s_neg = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, -1, n, k, &one, dA, m, dB, k, &zero, dC, m);
    cublasStatus_t s_type = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_16F, m, dB, CUDA_R_16F,
                                         k, &zero, dC, CUDA_R_32F, m, CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_GEMM_DEFAULT);
    cublasStatus_t s_h = cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m);
    check("errors: lda < m, m < 0, FAST_16F on fp16 data, NULL handle, bf16 on sm_70",
          s_lda == CUBLAS_STATUS_INVALID_VALUE && s_neg == CUBLAS_STATUS_INVALID_VALUE &&
              s_type == CUBLAS_STATUS_NOT_SUPPORTED && s_h == CUBLAS_STATUS_NOT_INITIALIZED &&
              arch == CUBLAS_STATUS_ARCH_MISMATCH,
          "%s %s %s %s %s", cublasGetStatusName(s_lda), cublasGetStatusName(s_neg), cublasGetStatusName(s_type),
          cublasGetStatusName(s_h), cublasGetStatusName(arch));
    /* a leading dimension that walks past the allocation: the GPU would fault */
    long d0 = simt_diagnostics();
    int old_print = simt_print_diagnostics(0); /* provoked on purpose */
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m + 2, dB, k, &zero, dC, m);
    cudaError_t ce = cudaDeviceSynchronize();
    simt_print_diagnostics(old_print);
    check("GEMM reading past its allocation: reported, sticky illegal address",
          simt_diagnostics() > d0 && ce == cudaErrorIllegalAddress, "%s", cudaGetErrorName(ce));
    cudaDeviceReset();
    cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dab);
}

static float gelu_t(float x) { return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))); }
static float gelu_tg(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x), t = tanhf(u);
    return 0.5f * (1 + t) + 0.5f * x * (1 - t * t) * 0.7978845608028654f * (1 + 3 * 0.044715f * x * x);
}

static void test_lt(void) {
    cublasLtHandle_t lt;
    check("cublasLtCreate", cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS, "");
    const int m = 20, n = 12, k = 16, batch = 2;
    auto A = rvec((size_t)k * m * batch), B = rvec((size_t)k * n * batch), C = rvec((size_t)m * n * batch);
    const int ald = 24; /* the GELU aux leading dimension must be a multiple of 8 */
    auto bias = rvec(m), aux_in = rvec((size_t)ald * n * batch);
    float *dA = dev(A), *dB = dev(B), *dC = dev(C), *dbias = dev(bias), *daux = dev(aux_in);
    float *dD = nullptr, *dgrad = nullptr;
    cudaMalloc(&dD, (size_t)m * n * batch * sizeof(float));
    cudaMalloc(&dgrad, (size_t)(m > n ? m : n) * batch * sizeof(float));
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, k, m, k); /* A stored k x m, used transposed */
    cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, k, n, k);
    cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, m);
    int32_t bc = batch;
    int64_t sa = (int64_t)k * m, sb = (int64_t)k * n, sc = (int64_t)m * n;
    for (auto l : {la, lb, lc}) cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
    cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa);
    cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb);
    cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc);
    const struct {
        cublasLtEpilogue_t e;
        const char *name;
    } epis[] = {{CUBLASLT_EPILOGUE_DEFAULT, "DEFAULT"},       {CUBLASLT_EPILOGUE_BIAS, "BIAS"},
                {CUBLASLT_EPILOGUE_RELU_BIAS, "RELU_BIAS"},   {CUBLASLT_EPILOGUE_GELU_AUX_BIAS, "GELU_AUX_BIAS"},
                {CUBLASLT_EPILOGUE_DGELU_BGRAD, "DGELU_BGRAD"}, {CUBLASLT_EPILOGUE_BGRADB, "BGRADB"}};
    for (auto &ep : epis) {
        cublasLtMatmulDesc_t d;
        cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        cublasOperation_t T = CUBLAS_OP_T;
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T);
        int32_t e32 = ep.e;
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE, &e32, sizeof e32);
        bool grad = ep.e == CUBLASLT_EPILOGUE_DGELU_BGRAD || ep.e == CUBLASLT_EPILOGUE_BGRADB;
        void *bp = grad ? (void *)dgrad : (void *)dbias;
        int64_t bstride = grad ? (ep.e == CUBLASLT_EPILOGUE_BGRADB ? n : m) : 0, ald64 = ald, astride = (int64_t)ald * n;
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp);
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bstride, sizeof bstride);
        void *ap = daux;
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &ap, sizeof ap);
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ald64, sizeof ald64);
        cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, &astride, sizeof astride);
        cublasLtMatmulHeuristicResult_t hr;
        int nres = 0;
        cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, d, la, lb, lc, lc, nullptr, 1, &hr, &nres);
        float alpha = 1.25f, beta = ep.e == CUBLASLT_EPILOGUE_DEFAULT ? 0.5f : 0.0f;
        cudaMemcpy(daux, aux_in.data(), aux_in.size() * sizeof(float), cudaMemcpyHostToDevice);
        cublasStatus_t st = cublasLtMatmul(lt, d, &alpha, dA, la, dB, lb, &beta, dC, lc, dD, lc, &hr.algo, nullptr, 0, 0);
        /* reference */
        std::vector<float> D((size_t)m * n * batch), aux = aux_in, g;
        if (grad) g.assign((size_t)(ep.e == CUBLASLT_EPILOGUE_BGRADB ? n : m) * batch, 0.0f);
        for (int b = 0; b < batch; b++) {
            std::vector<float> cc(C.begin() + b * sc, C.begin() + (b + 1) * sc);
            ref_gemm(1, 0, m, n, k, alpha, A.data() + b * sa, k, B.data() + b * sb, k, beta, cc.data(), m);
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) {
                    size_t o = (size_t)i + (size_t)j * m;
                    float x = cc[o];
                    switch (ep.e) {
                    case CUBLASLT_EPILOGUE_BIAS: x += bias[i]; break;
                    case CUBLASLT_EPILOGUE_RELU_BIAS: x = fmaxf(x + bias[i], 0.0f); break;
                    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
                        x += bias[i];
                        aux[b * astride + i + (size_t)j * ald] = x;
                        x = gelu_t(x);
                        break;
                    case CUBLASLT_EPILOGUE_DGELU_BGRAD:
                        x *= gelu_tg(aux_in[b * astride + i + (size_t)j * ald]);
                        g[b * m + i] += x;
                        break;
                    default: break;
                    }
                    D[b * sc + o] = x;
                }
            if (ep.e == CUBLASLT_EPILOGUE_BGRADB)
                for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++) g[b * n + j] += B[b * sb + p + (size_t)j * k];
        }
        double e = rel_err(host(dD, D.size()), D);
        if (ep.e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) e = fmax(e, rel_err(host(daux, aux.size()), aux));
        if (grad) e = fmax(e, rel_err(host(dgrad, g.size()), g));
        char name[96];
        snprintf(name, sizeof name, "cublasLtMatmul batch 2, op(A)=T, epilogue %s", ep.name);
        check(name, hs == 0 && nres == 1 && st == 0 && e <= 1e-5, "err %.2e", e);
        cublasLtMatmulDescDestroy(d);
    }
    /* unsupported epilogue and mismatched shapes */
    cublasLtMatmulDesc_t d;
    cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    int32_t relu_aux = CUBLASLT_EPILOGUE_RELU_AUX;
    cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE, &relu_aux, sizeof relu_aux);
    float one = 1, zero = 0;
    cublasStatus_t s1 = cublasLtMatmul(lt, d, &one, dA, la, dB, lb, &zero, dC, lc, dD, lc, nullptr, nullptr, 0, 0);
    int32_t def = CUBLASLT_EPILOGUE_DEFAULT;
    cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE, &def, sizeof def);
    cublasStatus_t s2 = cublasLtMatmul(lt, d, &one, dA, la, dB, lb, &zero, dC, lc, dD, lc, nullptr, nullptr, 0, 0);
    check("cublasLt: RELU_AUX not emulated, A m x k vs k x m without TRANSA refused",
          s1 == CUBLAS_STATUS_NOT_SUPPORTED && s2 == CUBLAS_STATUS_INVALID_VALUE, "%s %s", cublasGetStatusName(s1),
          cublasGetStatusName(s2));
    cublasLtMatmulDescDestroy(d);
    cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb), cublasLtMatrixLayoutDestroy(lc);
    cublasLtDestroy(lt);
    cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dbias), cudaFree(daux), cudaFree(dD), cudaFree(dgrad);
}

int main(void) {
    printf("cuBLAS / cuBLASLt shim of the SIMT emulator vs a double-precision reference\n");
    cublasHandle_t h;
    check("cublasCreate", cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "");
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cublasSetStream(h, s);
    test_sgemm(h);
    test_batched(h);
    test_types(h);
    test_modes_and_errors(h);
    test_lt();
    cublasDestroy(h);
    cudaStreamDestroy(s);
    check("no unexpected diagnostics, every allocation freed", simt_live_allocations() == 0, "%ld live",
          simt_live_allocations());
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
