/*
 * simt_blas.cpp — the cuBLAS / cuBLASLt shim of the SIMT emulator.
 *
 * Every GEMM is cuBLAS's column-major D = alpha op(A) op(B) + beta C, done as:
 *   1. gather op(A) [m,k] and op(B) [k,n] into dense fp32 arrays, converting
 *      the storage type (fp16, bf16) and rounding the inputs as the compute
 *      type allows (FAST_TF32: 10 mantissa bits, FAST_16F: fp16, FAST_16BF:
 *      bf16), reading exactly the elements cuBLAS reads (so
 *      AddressSanitizer and the allocation check see a wrong lda or stride);
 *   2. the product with the CPU reference GEMM (libmiles miles_gemm, fp32
 *      accumulation);
 *   3. alpha/beta (beta == 0 never reads C, alpha == 0 or k == 0 never reads
 *      A and B, as the BLAS specification says), the cuBLASLt epilogue, and
 *      the conversion to the output type.
 * The work is enqueued on the handle's stream like any kernel.
 *
 * fp32 -> fp16 input conversion under CUBLAS_COMPUTE_32F_FAST_16F is not
 * documented by NVIDIA.  The shim rounds to nearest with overflow to +-Inf,
 * the behaviour of cvt.rn.f16.f32 and of CUTLASS's default
 * NumericConverter<half_t, float, round_to_nearest>; SIMT_CUBLAS_F16_OVERFLOW=
 * saturate (or simt_cublas_f16_saturate(1)) clamps to +-65504 instead, so
 * callers can be tested against both.
 */
#include "simt_internal.h"

#include "cublasLt.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

#include <math.h>
#include <string.h>

#include <vector>

extern "C" void miles_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc);

namespace simt {

enum Round { R_NONE, R_TF32, R_F16, R_BF16 };

static size_t type_size(cudaDataType t) {
    switch (t) {
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
    case CUDA_R_32F:
    case CUDA_R_32I: return 4;
    case CUDA_R_64F: return 8;
    default: return 1;
    }
}

static inline float load(const void *p, cudaDataType t, size_t i) {
    switch (t) {
    case CUDA_R_16F: return f16_to_f32(((const uint16_t *)p)[i]);
    case CUDA_R_16BF: return bf16_to_f32(((const uint16_t *)p)[i]);
    case CUDA_R_64F: return (float)((const double *)p)[i];
    default: return ((const float *)p)[i];
    }
}

static inline void store(void *p, cudaDataType t, size_t i, float v) {
    switch (t) {
    case CUDA_R_16F: ((uint16_t *)p)[i] = f32_to_f16(v, RN); break;
    case CUDA_R_16BF: ((uint16_t *)p)[i] = f32_to_bf16(v, RN); break;
    case CUDA_R_64F: ((double *)p)[i] = v; break;
    default: ((float *)p)[i] = v;
    }
}

/* TF32: 10 explicit mantissa bits, round to nearest even (NaN/Inf kept) */
static inline float round_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) {
        uint32_t rem = u & 0x1fffu, keep = u & ~0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (u & 0x2000u))) keep += 0x2000u;
        u = keep;
    }
    memcpy(&x, &u, 4);
    return x;
}

static inline float round_in(float x, int r, bool saturate) {
    switch (r) {
    case R_TF32: return round_tf32(x);
    case R_F16:
        if (saturate && fabsf(x) > 65504.0f && x == x) return copysignf(65504.0f, x);
        return f16_to_f32(f32_to_f16(x, RN));
    case R_BF16: return bf16_to_f32(f32_to_bf16(x, RN));
    default: return x;
    }
}

static float gelu_tanh(float x) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}
static float gelu_tanh_grad(float x) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    float u = k0 * (x + k1 * x * x * x), t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k0 * (1.0f + 3.0f * k1 * x * x);
}

/* One (possibly batched) GEMM as cuBLAS sees it. */
struct Gemm {
    const char *fn;
    cublasOperation_t ta, tb;
    int m, n, k, batch;
    const void *A, *B, *C;
    void *D;
    const void *const *Aarr, *const *Barr, *const *Carr; /* pointer-array batches */
    void *const *Darr;
    cudaDataType at, bt, ct, dt;
    long long lda, ldb, ldc, ldd, sA, sB, sC, sD;
    int round;
    bool compute64;
    bool saturate;
    /* scale factors: host values, or device pointers read when the GEMM runs */
    double alpha, beta;
    const void *alpha_dev, *beta_dev;
    cudaDataType scale_t;
    /* cuBLASLt epilogue */
    int epi;
    void *bias;
    cudaDataType bias_t;
    long long bias_stride;
    void *aux;
    cudaDataType aux_t;
    long long aux_ld, aux_stride;
};

static double load_scale(const void *p, cudaDataType t) {
    switch (t) {
    case CUDA_R_64F: return *(const double *)p;
    case CUDA_R_16F: return f16_to_f32(*(const uint16_t *)p);
    default: return *(const float *)p;
    }
}

static const void *batch_ptr(const void *base, const void *const *arr, int b, long long stride, size_t es) {
    if (arr) return arr[b];
    return (const char *)base + (size_t)((long long)b * stride) * es;
}

/* [p, p + footprint of a rows x cols column-major matrix with leading dimension ld) */
static bool in_device_memory(const char *fn, const char *what, const void *p, long long rows, long long cols,
                             long long ld, size_t es) {
    if (rows <= 0 || cols <= 0) return true;
    size_t bytes = (size_t)((cols - 1) * ld + rows) * es;
    if (find_alloc(p, bytes) != A_NONE) return true;
    diag("%s: matrix %s (%lld x %lld, ld %lld) at %p is not inside one device allocation: the GEMM would read or "
         "write out of bounds on the GPU",
         fn, what, rows, cols, ld, p);
    return false;
}

static void run_gemm(const Gemm &g) {
    note_kernel_run("(cuBLAS)"); /* for the per-kernel table: a GEMM is work too */
    const int m = g.m, n = g.n, k = g.k;
    double alpha = g.alpha_dev ? load_scale(g.alpha_dev, g.scale_t) : g.alpha;
    double beta = g.beta_dev ? load_scale(g.beta_dev, g.scale_t) : g.beta;
    const size_t ea = type_size(g.at), eb = type_size(g.bt), ec = type_size(g.ct), ed = type_size(g.dt);
    const bool ta = g.ta != CUBLAS_OP_N, tb = g.tb != CUBLAS_OP_N;
    const bool use_ab = alpha != 0.0 && k > 0;
    std::vector<float> Af, Bf, P;
    for (int b = 0; b < g.batch; b++) {
        const void *A = batch_ptr(g.A, g.Aarr, b, g.sA, ea), *B = batch_ptr(g.B, g.Barr, b, g.sB, eb);
        const void *C = batch_ptr(g.C, g.Carr, b, g.sC, ec);
        void *D = (void *)batch_ptr(g.D, (const void *const *)g.Darr, b, g.sD, ed);
        bool ok = in_device_memory(g.fn, "C/D", D, m, n, g.ldd, ed);
        if (use_ab || g.epi == CUBLASLT_EPILOGUE_BGRADA || g.epi == CUBLASLT_EPILOGUE_BGRADB)
            ok = ok && in_device_memory(g.fn, "A", A, ta ? k : m, ta ? m : k, g.lda, ea) &&
                 in_device_memory(g.fn, "B", B, tb ? n : k, tb ? k : n, g.ldb, eb);
        if (beta != 0.0) ok = ok && in_device_memory(g.fn, "C", C, m, n, g.ldc, ec);
        if (!ok) {
            set_sticky_error(cudaErrorIllegalAddress);
            return;
        }
        P.assign((size_t)m * n, 0.0f);
        if (use_ab || g.epi == CUBLASLT_EPILOGUE_BGRADA || g.epi == CUBLASLT_EPILOGUE_BGRADB) {
            /* op(A) row-major [m,k], op(B) row-major [k,n] */
            Af.resize((size_t)m * k);
            Bf.resize((size_t)k * n);
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++)
                    Af[(size_t)i * k + p] = round_in(load(A, g.at, ta ? (size_t)p + (size_t)i * g.lda
                                                                       : (size_t)i + (size_t)p * g.lda),
                                                     g.round, g.saturate);
            for (int p = 0; p < k; p++)
                for (int j = 0; j < n; j++)
                    Bf[(size_t)p * n + j] = round_in(load(B, g.bt, tb ? (size_t)j + (size_t)p * g.ldb
                                                                       : (size_t)p + (size_t)j * g.ldb),
                                                     g.round, g.saturate);
            if (use_ab && m > 0 && n > 0 && !g.compute64)
                miles_gemm(0, 0, m, n, k, 1.0f, Af.data(), k, Bf.data(), n, 0.0f, P.data(), n);
        }
        if (g.compute64) { /* cublasDgemm / COMPUTE_64F: double storage, double accumulation */
            const double *Ad = (const double *)A, *Bd = (const double *)B, *Cd = (const double *)C;
            double *Dd = (double *)D;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) {
                    double s = 0;
                    if (use_ab)
                        for (int p = 0; p < k; p++)
                            s += Ad[ta ? (size_t)p + (size_t)i * g.lda : (size_t)i + (size_t)p * g.lda] *
                                 Bd[tb ? (size_t)j + (size_t)p * g.ldb : (size_t)p + (size_t)j * g.ldb];
                    double v = alpha * s;
                    if (beta != 0.0) v += beta * Cd[(size_t)i + (size_t)j * g.ldc];
                    Dd[(size_t)i + (size_t)j * g.ldd] = v;
                }
            continue;
        }
        /* bias / aux pointers of this batch */
        const size_t ebias = type_size(g.bias_t), eaux = type_size(g.aux_t);
        char *bias = g.bias ? (char *)g.bias + (size_t)((long long)b * g.bias_stride) * ebias : nullptr;
        char *aux = g.aux ? (char *)g.aux + (size_t)((long long)b * g.aux_stride) * eaux : nullptr;
        const int epi = g.epi;
        const bool has_bias = (epi & CUBLASLT_EPILOGUE_BIAS) && !(epi & 64) && !(epi & 8);
        std::vector<double> bgrad;
        if (epi == CUBLASLT_EPILOGUE_DGELU_BGRAD || epi == CUBLASLT_EPILOGUE_BGRADA) bgrad.assign(m, 0.0);
        if (epi == CUBLASLT_EPILOGUE_BGRADB) bgrad.assign(n, 0.0);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double v = alpha * (double)P[(size_t)i * n + j];
                if (beta != 0.0) v += beta * (double)load(C, g.ct, (size_t)i + (size_t)j * g.ldc);
                float x = (float)v;
                if (has_bias) x += load(bias, g.bias_t, i);
                if (epi == CUBLASLT_EPILOGUE_GELU_AUX || epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS)
                    store(aux, g.aux_t, (size_t)i + (size_t)j * g.aux_ld, x);
                if (epi & CUBLASLT_EPILOGUE_GELU) x = gelu_tanh(x);
                else if ((epi & CUBLASLT_EPILOGUE_RELU) && !(epi & 8)) x = x > 0.0f ? x : 0.0f;
                if (epi & 64) { /* DGELU */
                    x *= gelu_tanh_grad(load(aux, g.aux_t, (size_t)i + (size_t)j * g.aux_ld));
                    if (epi == CUBLASLT_EPILOGUE_DGELU_BGRAD) bgrad[i] += x;
                }
                /* the clamping variant clamps fp16 outputs too (SIMT_CUBLAS_F16_OVERFLOW=saturate) */
                if (g.saturate && g.dt == CUDA_R_16F && fabsf(x) > 65504.0f && x == x) x = copysignf(65504.0f, x);
                store(D, g.dt, (size_t)i + (size_t)j * g.ldd, x);
            }
        if (epi == CUBLASLT_EPILOGUE_BGRADA)
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++) bgrad[i] += Af[(size_t)i * k + p];
        if (epi == CUBLASLT_EPILOGUE_BGRADB)
            for (int j = 0; j < n; j++)
                for (int p = 0; p < k; p++) bgrad[j] += Bf[(size_t)p * n + j];
        for (size_t i = 0; i < bgrad.size(); i++) store(bias, g.bias_t, i, (float)bgrad[i]);
    }
}

} // namespace simt

using namespace simt;

/* ============================================================ cuBLAS */
struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
    cublasPointerMode_t pmode = CUBLAS_POINTER_MODE_HOST;
    void *workspace = nullptr;
    size_t workspace_bytes = 0;
};

#define CHECK_HANDLE(h)                                                             \
    do {                                                                            \
        if (!(h)) return CUBLAS_STATUS_NOT_INITIALIZED;                             \
    } while (0)

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    int n = 0;
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    *h = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    CHECK_HANDLE(h);
    cudaStream_t s = h->stream;
    cudaStreamSynchronize(s); /* cublasDestroy synchronizes */
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetVersion_v2(cublasHandle_t h, int *v) {
    CHECK_HANDLE(h);
    if (v) *v = 130000;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    CHECK_HANDLE(h);
    cudaError_t e;
    Guard g(device_lock());
    if (!resolve_stream(s, &e)) return CUBLAS_STATUS_INVALID_VALUE;
    h->stream = s;
    h->workspace = nullptr; /* cublasSetStream resets the workspace to the default pool */
    h->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream_v2(cublasHandle_t h, cudaStream_t *s) {
    CHECK_HANDLE(h);
    if (s) *s = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *ws, size_t bytes) {
    CHECK_HANDLE(h);
    if (bytes && (!ws || find_alloc(ws, bytes) == A_NONE)) {
        diag("cublasSetWorkspace: %zu bytes at %p are not device memory", bytes, ws);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (((uintptr_t)ws & 255) != 0) return CUBLAS_STATUS_INVALID_VALUE; /* 256-byte alignment */
    h->workspace = ws;
    h->workspace_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    CHECK_HANDLE(h);
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode) {
    CHECK_HANDLE(h);
    if (mode) *mode = h->math;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t h, cublasPointerMode_t mode) {
    CHECK_HANDLE(h);
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    h->pmode = mode;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t h, cublasPointerMode_t *mode) {
    CHECK_HANDLE(h);
    if (mode) *mode = h->pmode;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "the architecture is not supported";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the requested functionality is not supported";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    default: return cublasGetStatusName(s);
    }
}

} /* extern "C" */

/* Argument checks shared by every GEMM entry point (column-major rules). */
static cublasStatus_t check_gemm(cublasOperation_t ta, cublasOperation_t tb, long long m, long long n, long long k,
                                 long long lda, long long ldb, long long ldc, long long batch) {
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T && ta != CUBLAS_OP_C) ||
        (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T && tb != CUBLAS_OP_C))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    long long ra = ta == CUBLAS_OP_N ? m : k, rb = tb == CUBLAS_OP_N ? k : n;
    if (lda < (ra > 1 ? ra : 1) || ldb < (rb > 1 ? rb : 1) || ldc < (m > 1 ? m : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

/* Rounding of the inputs allowed by the compute type (and the math mode for
 * the legacy COMPUTE_32F): what the GPU's tensor cores would do. */
static int input_rounding(cublasComputeType_t ct, cublasMath_t math, cudaDataType at) {
    const int cc = config().cc;
    if (at != CUDA_R_32F) return R_NONE; /* 16-bit storage is already rounded */
    switch (ct) {
    case CUBLAS_COMPUTE_32F_FAST_TF32: return cc >= 80 ? R_TF32 : R_NONE;
    case CUBLAS_COMPUTE_32F_FAST_16F: return cc >= 70 ? R_F16 : R_NONE;
    case CUBLAS_COMPUTE_32F_FAST_16BF: return cc >= 80 ? R_BF16 : R_NONE;
    case CUBLAS_COMPUTE_32F: return (math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH && cc >= 80 ? R_TF32 : R_NONE;
    default: return R_NONE;
    }
}

/* Type combinations of cublasGemmEx (cuBLAS documentation table). */
static cublasStatus_t check_types(cublasComputeType_t ct, cudaDataType at, cudaDataType bt, cudaDataType ctp) {
    if (at != bt) return CUBLAS_STATUS_NOT_SUPPORTED;
    bool ok = false;
    switch (ct) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
        ok = (at == CUDA_R_32F && ctp == CUDA_R_32F) || (at == CUDA_R_16F && (ctp == CUDA_R_16F || ctp == CUDA_R_32F)) ||
             (at == CUDA_R_16BF && (ctp == CUDA_R_16BF || ctp == CUDA_R_32F));
        break;
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32: ok = at == CUDA_R_32F && ctp == CUDA_R_32F; break;
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC: ok = at == CUDA_R_16F && ctp == CUDA_R_16F; break;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC: ok = at == CUDA_R_64F && ctp == CUDA_R_64F; break;
    default: ok = false;
    }
    if (!ok) return CUBLAS_STATUS_NOT_SUPPORTED;
    if ((at == CUDA_R_16BF || ctp == CUDA_R_16BF) && config().cc < 80) return CUBLAS_STATUS_ARCH_MISMATCH;
    return CUBLAS_STATUS_SUCCESS;
}

static cudaDataType scale_type_of(cublasComputeType_t ct) {
    switch (ct) {
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC: return CUDA_R_16F;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC: return CUDA_R_64F;
    default: return CUDA_R_32F;
    }
}

static cublasStatus_t submit(cublasHandle_t h, Gemm &g, const void *alpha, const void *beta) {
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    Guard lock(device_lock());
    cudaError_t e;
    Stream *s = resolve_stream(h->stream, &e);
    if (!s) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (sticky_error() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (h->pmode == CUBLAS_POINTER_MODE_DEVICE) {
        g.alpha_dev = alpha;
        g.beta_dev = beta;
    } else { /* host scalars are read at the call */
        g.alpha = load_scale(alpha, g.scale_t);
        g.beta = load_scale(beta, g.scale_t);
    }
    g.saturate = config().f16_saturate != 0;
    if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;
    enqueue(s, [g]() { run_gemm(g); });
    return CUBLAS_STATUS_SUCCESS;
}

static Gemm base_gemm(const char *fn, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k) {
    Gemm g;
    memset((void *)&g, 0, sizeof g);
    g.fn = fn;
    g.ta = ta;
    g.tb = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.batch = 1;
    g.epi = CUBLASLT_EPILOGUE_DEFAULT;
    g.scale_t = CUDA_R_32F;
    return g;
}

extern "C" {

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType at, int lda,
                                          long long sA, const void *B, cudaDataType bt, int ldb, long long sB,
                                          const void *beta, void *C, cudaDataType ct, int ldc, long long sC,
                                          int batch, cublasComputeType_t comp, cublasGemmAlgo_t) {
    CHECK_HANDLE(h);
    cublasStatus_t st = check_gemm(ta, tb, m, n, k, lda, ldb, ldc, batch);
    if (st == CUBLAS_STATUS_SUCCESS) st = check_types(comp, at, bt, ct);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    Gemm g = base_gemm("cublasGemmStridedBatchedEx", ta, tb, m, n, k);
    g.A = A, g.B = B, g.C = C, g.D = C;
    g.at = at, g.bt = bt, g.ct = ct, g.dt = ct;
    g.lda = lda, g.ldb = ldb, g.ldc = ldc, g.ldd = ldc;
    g.sA = sA, g.sB = sB, g.sC = sC, g.sD = sC;
    g.batch = batch;
    g.round = input_rounding(comp, h->math, at);
    g.compute64 = comp == CUBLAS_COMPUTE_64F || comp == CUBLAS_COMPUTE_64F_PEDANTIC;
    g.scale_t = scale_type_of(comp);
    return submit(h, g, alpha, beta);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t algo) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1,
                                      comp, algo);
}

cublasStatus_t cublasGemmBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *const Aarray[], cudaDataType at, int lda,
                                   const void *const Barray[], cudaDataType bt, int ldb, const void *beta,
                                   void *const Carray[], cudaDataType ct, int ldc, int batch,
                                   cublasComputeType_t comp, cublasGemmAlgo_t) {
    CHECK_HANDLE(h);
    cublasStatus_t st = check_gemm(ta, tb, m, n, k, lda, ldb, ldc, batch);
    if (st == CUBLAS_STATUS_SUCCESS) st = check_types(comp, at, bt, ct);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    /* the pointer arrays themselves live in device memory */
    if (batch > 0 && (find_alloc(Aarray, batch * sizeof(void *)) == A_NONE ||
                      find_alloc(Barray, batch * sizeof(void *)) == A_NONE ||
                      find_alloc(Carray, batch * sizeof(void *)) == A_NONE)) {
        diag("cublasGemmBatchedEx: the pointer arrays must be in device memory");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    Gemm g = base_gemm("cublasGemmBatchedEx", ta, tb, m, n, k);
    g.Aarr = Aarray, g.Barr = Barray, g.Carr = (const void *const *)Carray, g.Darr = Carray;
    g.at = at, g.bt = bt, g.ct = ct, g.dt = ct;
    g.lda = lda, g.ldb = ldb, g.ldc = ldc, g.ldd = ldc;
    g.batch = batch;
    g.round = input_rounding(comp, h->math, at);
    g.compute64 = comp == CUBLAS_COMPUTE_64F || comp == CUBLAS_COMPUTE_64F_PEDANTIC;
    g.scale_t = scale_type_of(comp);
    return submit(h, g, alpha, beta);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch) {
    /* the legacy API: COMPUTE_32F, TF32 only when the math mode allows it */
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, sA, B, CUDA_R_32F, ldb, sB,
                                      beta, C, CUDA_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb,
                              const float *beta, float *C, int ldc) {
    return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float *alpha, const float *const Aarray[], int lda,
                                  const float *const Barray[], int ldb, const float *beta, float *const Carray[],
                                  int ldc, int batch) {
    return cublasGemmBatchedEx(h, ta, tb, m, n, k, alpha, (const void *const *)Aarray, CUDA_R_32F, lda,
                               (const void *const *)Barray, CUDA_R_32F, ldb, beta, (void *const *)Carray, CUDA_R_32F,
                               ldc, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t cublasDgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const double *alpha, const double *A, int lda, const double *B, int ldb,
                              const double *beta, double *C, int ldc) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, CUDA_R_64F, lda, 0, B, CUDA_R_64F, ldb, 0, beta,
                                      C, CUDA_R_64F, ldc, 0, 1, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT);
}

} /* extern "C" */

/* ========================================================== cuBLASLt */
struct SimtLtContext {
    int unused;
};
struct SimtLtMatmulDesc {
    cublasComputeType_t compute;
    cudaDataType scale;
    int pmode;
    cublasOperation_t ta, tb;
    int epi;
    void *bias;
    int bias_type; /* -1: the D type */
    long long bias_stride;
    void *aux;
    long long aux_ld, aux_stride;
    int aux_type; /* -1: the D type */
};
struct SimtLtLayout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
    int order, batch;
    int64_t stride;
};
struct SimtLtPreference {
    size_t max_ws;
};

template <class T> static cublasStatus_t get_attr(T *dst, const void *buf, size_t n) {
    if (!buf || n != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(dst, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    int n = 0;
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    *h = new SimtLtContext{0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    CHECK_HANDLE(h);
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale) {
    if (!d) return CUBLAS_STATUS_INVALID_VALUE;
    *d = new SimtLtMatmulDesc{compute, scale, 0, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, nullptr, -1, 0,
                              nullptr, 0, 0, -1};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a,
                                              const void *buf, size_t n) {
    if (!d) return CUBLAS_STATUS_INVALID_VALUE;
    int32_t i32;
    cublasStatus_t s;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return get_attr(&d->compute, buf, n);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return get_attr(&d->scale, buf, n);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return get_attr(&d->pmode, buf, n);
    case CUBLASLT_MATMUL_DESC_TRANSA: return get_attr(&d->ta, buf, n);
    case CUBLASLT_MATMUL_DESC_TRANSB: return get_attr(&d->tb, buf, n);
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if ((s = get_attr(&i32, buf, n)) != CUBLAS_STATUS_SUCCESS) return s;
        d->epi = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return get_attr(&d->bias, buf, n);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return get_attr(&d->bias_type, buf, n);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return get_attr(&d->bias_stride, buf, n);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return get_attr(&d->aux, buf, n);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return get_attr(&d->aux_ld, buf, n);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: return get_attr(&d->aux_stride, buf, n);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: return get_attr(&d->aux_type, buf, n);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}
cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, void *buf,
                                              size_t n, size_t *written) {
    if (!d || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    const void *src;
    size_t sz;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_EPILOGUE: src = &d->epi, sz = 4; break;
    case CUBLASLT_MATMUL_DESC_TRANSA: src = &d->ta, sz = sizeof d->ta; break;
    case CUBLASLT_MATMUL_DESC_TRANSB: src = &d->tb, sz = sizeof d->tb; break;
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: src = &d->compute, sz = sizeof d->compute; break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (n < sz) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, src, sz);
    if (written) *written = sz;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    if (!l) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new SimtLtLayout{type, rows, cols, ld, CUBLASLT_ORDER_COL, 1, 0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a,
                                                const void *buf, size_t n) {
    if (!l) return CUBLAS_STATUS_INVALID_VALUE;
    switch (a) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: return get_attr(&l->type, buf, n);
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return get_attr(&l->order, buf, n);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return get_attr(&l->rows, buf, n);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return get_attr(&l->cols, buf, n);
    case CUBLASLT_MATRIX_LAYOUT_LD: return get_attr(&l->ld, buf, n);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return get_attr(&l->batch, buf, n);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return get_attr(&l->stride, buf, n);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    if (!p) return CUBLAS_STATUS_INVALID_VALUE;
    *p = new SimtLtPreference{0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *buf,
                                                    size_t n) {
    if (!p) return CUBLAS_STATUS_INVALID_VALUE;
    if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return get_attr(&p->max_ws, buf, n);
    return CUBLAS_STATUS_SUCCESS;
}

} /* extern "C" */

static const int k_epilogues[] = {CUBLASLT_EPILOGUE_DEFAULT,     CUBLASLT_EPILOGUE_RELU,
                                  CUBLASLT_EPILOGUE_BIAS,        CUBLASLT_EPILOGUE_RELU_BIAS,
                                  CUBLASLT_EPILOGUE_GELU,        CUBLASLT_EPILOGUE_GELU_AUX,
                                  CUBLASLT_EPILOGUE_GELU_BIAS,   CUBLASLT_EPILOGUE_GELU_AUX_BIAS,
                                  CUBLASLT_EPILOGUE_DGELU,       CUBLASLT_EPILOGUE_DGELU_BGRAD,
                                  CUBLASLT_EPILOGUE_BGRADA,      CUBLASLT_EPILOGUE_BGRADB};

/* Shapes, types and epilogue of one cublasLtMatmul; fills g. */
static cublasStatus_t lt_plan(cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                              cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D, Gemm *g) {
    if (!d || !A || !B || !C || !D) return CUBLAS_STATUS_INVALID_VALUE;
    bool known = false;
    for (int e : k_epilogues) known |= e == d->epi;
    if (!known) return CUBLAS_STATUS_NOT_SUPPORTED; /* RELU_AUX / DRELU bit masks: not emulated */
    if (A->order || B->order || C->order || D->order) return CUBLAS_STATUS_NOT_SUPPORTED;
    const bool ta = d->ta != CUBLAS_OP_N, tb = d->tb != CUBLAS_OP_N;
    const long long m = (long long)D->rows, n = (long long)D->cols, k = (long long)(ta ? A->rows : A->cols);
    if ((long long)(ta ? A->cols : A->rows) != m || (long long)(tb ? B->rows : B->cols) != n ||
        (long long)(tb ? B->cols : B->rows) != k || C->rows != D->rows || C->cols != D->cols)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (A->batch != D->batch || B->batch != D->batch || C->batch != D->batch || D->batch < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (C->ld != D->ld && C->type != D->type) return CUBLAS_STATUS_NOT_SUPPORTED;
    cublasStatus_t st = check_gemm(d->ta, d->tb, m, n, k, A->ld, B->ld, D->ld, D->batch);
    if (st == CUBLAS_STATUS_SUCCESS) st = C->ld < (m > 1 ? m : 1) ? CUBLAS_STATUS_INVALID_VALUE : st;
    if (st == CUBLAS_STATUS_SUCCESS) st = check_types(d->compute, A->type, B->type, D->type);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    const int epi = d->epi;
    const bool needs_bias = ((epi & CUBLASLT_EPILOGUE_BIAS) && !(epi & 64) && !(epi & 8)) ||
                            epi == CUBLASLT_EPILOGUE_DGELU_BGRAD || epi == CUBLASLT_EPILOGUE_BGRADA ||
                            epi == CUBLASLT_EPILOGUE_BGRADB;
    const bool needs_aux = epi == CUBLASLT_EPILOGUE_GELU_AUX || epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || (epi & 64);
    if (needs_bias && !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
    if (needs_aux && (!d->aux || d->aux_ld < m || d->aux_ld % 8)) return CUBLAS_STATUS_INVALID_VALUE;
    *g = base_gemm("cublasLtMatmul", d->ta, d->tb, (int)m, (int)n, (int)k);
    g->at = A->type, g->bt = B->type, g->ct = C->type, g->dt = D->type;
    g->lda = A->ld, g->ldb = B->ld, g->ldc = C->ld, g->ldd = D->ld;
    g->sA = A->stride, g->sB = B->stride, g->sC = C->stride, g->sD = D->stride;
    g->batch = D->batch;
    g->round = input_rounding(d->compute, CUBLAS_DEFAULT_MATH, A->type);
    g->compute64 = d->compute == CUBLAS_COMPUTE_64F;
    g->scale_t = d->scale;
    g->epi = epi;
    g->bias = d->bias;
    g->bias_t = d->bias_type < 0 ? D->type : (cudaDataType)d->bias_type;
    g->bias_stride = d->bias_stride;
    g->aux = d->aux;
    g->aux_t = d->aux_type < 0 ? D->type : (cudaDataType)d->aux_type;
    g->aux_ld = d->aux_ld;
    g->aux_stride = d->aux_stride;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" {

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A,
                                              cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C,
                                              cublasLtMatrixLayout_t D, cublasLtMatmulPreference_t,
                                              int requested, cublasLtMatmulHeuristicResult_t results[],
                                              int *returned) {
    CHECK_HANDLE(h);
    if (requested < 1 || !results || !returned) return CUBLAS_STATUS_INVALID_VALUE;
    Gemm g;
    cublasStatus_t st = lt_plan(d, A, B, C, D, &g);
    if (st != CUBLAS_STATUS_SUCCESS) {
        *returned = 0;
        return st;
    }
    memset(&results[0], 0, sizeof results[0]);
    results[0].algo.data[0] = 0x5137; /* the one algorithm: the CPU GEMM */
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t Ad, const void *B, cublasLtMatrixLayout_t Bd, const void *beta,
                              const void *C, cublasLtMatrixLayout_t Cd, void *D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t *, void *workspace, size_t ws_bytes, cudaStream_t stream) {
    CHECK_HANDLE(h);
    Gemm g;
    cublasStatus_t st = lt_plan(d, Ad, Bd, Cd, Dd, &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (ws_bytes && find_alloc(workspace, ws_bytes) == A_NONE) {
        diag("cublasLtMatmul: workspace of %zu bytes at %p is not device memory", ws_bytes, workspace);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    g.A = A, g.B = B, g.C = C, g.D = D;
    cublasContext tmp; /* Lt has no handle state: stream and pointer mode per call */
    tmp.stream = stream;
    tmp.pmode = d->pmode ? CUBLAS_POINTER_MODE_DEVICE : CUBLAS_POINTER_MODE_HOST;
    return submit(&tmp, g, alpha, beta);
}

} /* extern "C" */
