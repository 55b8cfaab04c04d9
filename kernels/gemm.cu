/*
 * gemm.cu — cuBLAS context (one handle per thread, one workspace per
 * stream), math modes (per thread) and the row-major GEMM wrappers mirroring
 * miles_gemm.
 *
 * Two models on two streams must not share a cuBLAS workspace (GEMMs on the
 * two streams run concurrently) nor a math mode (an fp16 model would switch
 * an fp32 model's GEMMs to FAST_16F): the workspace belongs to the stream,
 * and the math mode and the fp16 overflow flag to the calling thread, which
 * each model sets around its own calls (MathScope, model_cuda_internal.h).
 *
 * Row-major trick: a row-major X[r,c] with leading dimension ld is the
 * column-major X^T.  So row-major C = op(A) op(B) is column-major
 * C^T = op(B)^T op(A)^T: call cuBLAS with the operands swapped, M and N
 * swapped, and the same transpose flags.
 */
#include "common.cuh"

#include <cublasLt.h>

#include <cmath>

/* cuBLAS workspace: set explicitly so cuBLAS never allocates per stream
 * (cublasSetStream resets it, so it is set again after every stream change).
 * 32 MiB is NVIDIA's recommendation for Hopper. */
#define MILES_CUBLAS_WORKSPACE (32u << 20)

static thread_local cublasHandle_t tl_handle = NULL;
static thread_local cudaStream_t tl_stream = NULL;
static thread_local int tl_stream_set = 0;
static thread_local int g_math = MILES_CUDA_MATH_FP32;

/* The workspaces of this thread, one per stream it has run GEMMs on (a
 * model has one stream).  Past MILES_WS_SLOTS streams the oldest slot is
 * reused: cudaFree waits for the device, so no GEMM still reads it. */
#define MILES_WS_SLOTS 8
typedef struct WsSlot { cudaStream_t stream; void *ws; } WsSlot;
static thread_local WsSlot tl_ws[MILES_WS_SLOTS];
static thread_local int tl_nws = 0, tl_ws_next = 0;

static int workspace_for(cudaStream_t s, void **out) {
    for (int i = 0; i < tl_nws; i++)
        if (tl_ws[i].stream == s) { *out = tl_ws[i].ws; return MILES_OK; }
    WsSlot *slot;
    if (tl_nws < MILES_WS_SLOTS) slot = &tl_ws[tl_nws++];
    else {
        slot = &tl_ws[tl_ws_next];
        tl_ws_next = (tl_ws_next + 1) % MILES_WS_SLOTS;
        cudaFree(slot->ws);
        slot->ws = NULL;
        tl_stream_set = 0; /* the handle may hold the freed pointer */
    }
    void *ws = NULL;
    cudaError_t e = cudaMalloc(&ws, MILES_CUBLAS_WORKSPACE);
    if (e != cudaSuccess) {
        slot->stream = NULL;
        slot->ws = NULL;
        if (slot == &tl_ws[tl_nws - 1]) tl_nws--;
        return miles_cuda_fail(e, __FILE__, __LINE__, "cudaMalloc(cuBLAS workspace)");
    }
    slot->stream = s;
    slot->ws = ws;
    *out = ws;
    return MILES_OK;
}

extern "C" int miles_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky-free error so later calls are clean */
        return 0;
    }
    return n;
}

extern "C" int miles_cuda_compute_capability(void) {
    int dev = 0, major = 0, minor = 0;
    MILES_CUDA_TRY(cudaGetDevice(&dev));
    MILES_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    MILES_CUDA_TRY(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    return 10 * major + minor;
}

static int create_handle(void) {
    if (tl_handle) return MILES_OK;
    MILES_CUBLAS_TRY(cublasCreate(&tl_handle));
    tl_stream_set = 0;
    return MILES_OK;
}

extern "C" int miles_cuda_init(int device) {
    int n = miles_cuda_device_count();
    if (n <= 0) return miles_error(MILES_EUNSUPPORTED, "no CUDA device (cudaGetDeviceCount found none)");
    if (device < 0 || device >= n)
        return miles_error(MILES_EINVAL, "CUDA device %d does not exist (%d device(s))", device, n);
    MILES_CUDA_TRY(cudaSetDevice(device));
    return create_handle();
}

static void lt_release(void);

extern "C" void miles_cuda_shutdown(void) {
    lt_release();
    if (tl_handle) cublasDestroy(tl_handle);
    for (int i = 0; i < tl_nws; i++) cudaFree(tl_ws[i].ws);
    memset(tl_ws, 0, sizeof tl_ws);
    tl_nws = tl_ws_next = 0;
    tl_handle = NULL;
    tl_stream_set = 0;
}

int miles_cuda_cublas(cublasHandle_t *h, cudaStream_t s) {
    MILES_TRY(create_handle());
    if (!tl_stream_set || tl_stream != s) {
        void *ws = NULL;
        MILES_TRY(workspace_for(s, &ws));
        MILES_CUBLAS_TRY(cublasSetStream(tl_handle, s));
        MILES_CUBLAS_TRY(cublasSetWorkspace(tl_handle, ws, MILES_CUBLAS_WORKSPACE));
        tl_stream = s;
        tl_stream_set = 1;
    }
    *h = tl_handle;
    return MILES_OK;
}

extern "C" int miles_cuda_set_math(int mode) {
    if (mode < MILES_CUDA_MATH_FP32 || mode > MILES_CUDA_MATH_BF16)
        return miles_error(MILES_EINVAL, "unknown CUDA math mode %d", mode);
    if (mode == MILES_CUDA_MATH_BF16) MILES_TRY(miles_cuda_require_bf16());
    int old = g_math;
    g_math = mode;
    return old;
}

extern "C" int miles_cuda_get_math(void) { return g_math; }

static cublasComputeType_t compute_type(int mode) {
    switch (mode) {
    case MILES_CUDA_MATH_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case MILES_CUDA_MATH_FP16: return CUBLAS_COMPUTE_32F_FAST_16F;
    case MILES_CUDA_MATH_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
    }
}

static int check_dims(const char *fn, int transA, int transB, int M, int N, int K, int lda,
                      int ldb, int ldc) {
    int need_a = transA ? M : K, need_b = transB ? K : N;
    if (M < 0 || N < 0 || K < 0)
        return miles_error(MILES_EINVAL, "%s: negative size M=%d N=%d K=%d", fn, M, N, K);
    if (lda < (need_a > 1 ? need_a : 1) || ldb < (need_b > 1 ? need_b : 1) ||
        ldc < (N > 1 ? N : 1))
        return miles_error(MILES_EINVAL, "%s: leading dimension too small (lda=%d ldb=%d ldc=%d"
                           " for M=%d N=%d K=%d transA=%d transB=%d)",
                           fn, lda, ldb, ldc, M, N, K, transA, transB);
    return MILES_OK;
}

/* ------------------------------------------------- fp16 overflow guard */

static thread_local int32_t *g_f16_flag = NULL;

/* one flag store per warp at most; all writers store the same value */
__global__ void f16_range_check_kernel(int32_t *found, const float *x, size_t n) {
    int bad = 0;
    MILES_GRID_STRIDE(i, n) bad |= !(fabsf(x[i]) < 65520.0f); /* RN overflow threshold; NaN too */
    if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) *found = 1;
}

extern "C" int f16_range_check_cuda(int32_t *found, const float *x, size_t n, miles_cuda_stream stream) {
    if (n == 0) return MILES_OK;
    MILES_LAUNCH(f16_range_check_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), found, x, n);
    return MILES_OK;
}

extern "C" void miles_cuda_set_f16_overflow_flag(int32_t *dev_flag) { g_f16_flag = dev_flag; }

/* Elements spanned by a row-major operand (rows x cols, leading dimension
 * ld) and its batch: a superset of what the GEMM reads, all of one tensor. */
static size_t span(int rows, int cols, int ld, long long stride, int batch) {
    if (rows <= 0 || cols <= 0 || batch <= 0) return 0;
    return (size_t)(rows - 1) * ld + cols + (size_t)(batch - 1) * (size_t)(stride > 0 ? stride : 0);
}

/* Before a FAST_16F GEMM while the guard is on: flag inputs beyond fp16. */
static int f16_guard(int transA, int transB, int M, int N, int K, const float *A, int lda, long long sA,
                     const float *B, int ldb, long long sB, int batch, cudaStream_t s) {
    if (!g_f16_flag || g_math != MILES_CUDA_MATH_FP16 || K == 0) return MILES_OK;
    MILES_TRY(f16_range_check_cuda(g_f16_flag, A, span(transA ? K : M, transA ? M : K, lda, sA, batch), s));
    return f16_range_check_cuda(g_f16_flag, B, span(transB ? N : K, transB ? K : N, ldb, sB, batch), s);
}

extern "C" int miles_cuda_f16_overflow_probe(void) {
    const int n = 64;
    float *d = NULL, out = 0.0f;
    cudaStream_t s = NULL;
    float *h = (float *)malloc(2 * n * n * sizeof(float));
    if (!h) return miles_error(MILES_ENOMEM, "miles_cuda_f16_overflow_probe: host buffer");
    for (int i = 0; i < 2 * n * n; i++) h[i] = 1.0f;
    h[0] = 1.0e5f; /* beyond fp16's 65504 */
    cudaError_t e = cudaMalloc(&d, 3 * n * n * sizeof(float));
    if (e == cudaSuccess) e = cudaMemcpy(d, h, 2 * n * n * sizeof(float), cudaMemcpyHostToDevice);
    free(h);
    int st = MILES_OK;
    if (e == cudaSuccess) {
        int old = g_math;
        int32_t *flag = g_f16_flag;
        g_math = MILES_CUDA_MATH_FP16;
        g_f16_flag = NULL;
        st = miles_gemm_cuda(0, 0, n, n, n, 1.0f, d, n, d + n * n, n, 0.0f, d + 2 * n * n, n, s);
        g_math = old;
        g_f16_flag = flag;
        if (st == MILES_OK) e = cudaMemcpy(&out, d + 2 * n * n, sizeof(float), cudaMemcpyDeviceToHost);
    }
    cudaFree(d);
    if (st != MILES_OK) return st;
    if (e != cudaSuccess) return miles_cuda_fail(e, __FILE__, __LINE__, "fp16 overflow probe");
    return std::isinf(out) ? 1 : 0;
}

extern "C" int miles_cuda_f16_output_overflow_probe(void) {
    const int n = 16;
    uint16_t h[2 * 16 * 16];
    for (int i = 0; i < 2 * n * n; i++) h[i] = 0x5c00; /* 256: each output 16 * 65536 */
    void *d = NULL;
    uint16_t out = 0;
    cudaError_t e = cudaMalloc(&d, 3 * n * n * sizeof(uint16_t));
    if (e == cudaSuccess) e = cudaMemcpy(d, h, 2 * n * n * sizeof(uint16_t), cudaMemcpyHostToDevice);
    int st = MILES_OK;
    if (e == cudaSuccess) {
        uint16_t *p = (uint16_t *)d;
        st = miles_gemm_h_cuda(0, 0, n, n, n, 1.0f, p, n, 0, p + n * n, n, 0, 0.0f, p + 2 * n * n, n, 0, 1,
                               MILES_CUDA_F16, MILES_CUDA_F16, NULL);
        if (st == MILES_OK) e = cudaMemcpy(&out, p + 2 * n * n, sizeof out, cudaMemcpyDeviceToHost);
    }
    cudaFree(d);
    if (st != MILES_OK) return st;
    if (e != cudaSuccess) return miles_cuda_fail(e, __FILE__, __LINE__, "fp16 output overflow probe");
    return (out & 0x7fffu) == 0x7c00u ? 1 : 0;
}

extern "C" int miles_gemm_cuda(int transA, int transB, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc, miles_cuda_stream stream) {
    MILES_TRY(check_dims("miles_gemm_cuda", transA, transB, M, N, K, lda, ldb, ldc));
    if (M == 0 || N == 0) return MILES_OK;
    MILES_TRY(f16_guard(transA, transB, M, N, K, A, lda, 0, B, ldb, 0, 1, miles_stream(stream)));
    cublasHandle_t h;
    MILES_TRY(miles_cuda_cublas(&h, miles_stream(stream)));
    MILES_CUBLAS_TRY(cublasGemmEx(h, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                                  CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F,
                                  ldc, compute_type(g_math), CUBLAS_GEMM_DEFAULT));
    return MILES_OK;
}

extern "C" int miles_gemm_strided_batched_cuda(int transA, int transB, int M, int N, int K,
                                               float alpha, const float *A, int lda,
                                               long long strideA, const float *B, int ldb,
                                               long long strideB, float beta, float *C,
                                               int ldc, long long strideC, int batch,
                                               miles_cuda_stream stream) {
    MILES_TRY(check_dims("miles_gemm_strided_batched_cuda", transA, transB, M, N, K, lda, ldb,
                         ldc));
    if (batch < 0) return miles_error(MILES_EINVAL, "miles_gemm_strided_batched_cuda: batch %d", batch);
    if (M == 0 || N == 0 || batch == 0) return MILES_OK;
    MILES_TRY(f16_guard(transA, transB, M, N, K, A, lda, strideA, B, ldb, strideB, batch, miles_stream(stream)));
    cublasHandle_t h;
    MILES_TRY(miles_cuda_cublas(&h, miles_stream(stream)));
    MILES_CUBLAS_TRY(cublasGemmStridedBatchedEx(
        h, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
        B, CUDA_R_32F, ldb, strideB, A, CUDA_R_32F, lda, strideA, &beta, C, CUDA_R_32F, ldc,
        strideC, batch, compute_type(g_math), CUBLAS_GEMM_DEFAULT));
    return MILES_OK;
}

static int data_type(int t, cudaDataType_t *out) {
    switch (t) {
    case MILES_CUDA_F32: *out = CUDA_R_32F; return MILES_OK;
    case MILES_CUDA_F16: *out = CUDA_R_16F; return MILES_OK;
    case MILES_CUDA_BF16:
        MILES_TRY(miles_cuda_require_bf16());
        *out = CUDA_R_16BF;
        return MILES_OK;
    default: return miles_error(MILES_EINVAL, "miles_gemm_ex_cuda: unknown storage type %d", t);
    }
}

extern "C" int miles_gemm_ex_cuda(int transA, int transB, int M, int N, int K, float alpha,
                                  const void *A, int a_type, int lda, const void *B, int b_type,
                                  int ldb, float beta, float *C, int ldc,
                                  miles_cuda_stream stream) {
    MILES_TRY(check_dims("miles_gemm_ex_cuda", transA, transB, M, N, K, lda, ldb, ldc));
    if (a_type != b_type)
        return miles_error(MILES_EINVAL, "miles_gemm_ex_cuda: A and B must have the same"
                           " storage type (got %d and %d)", a_type, b_type);
    cudaDataType_t ta = CUDA_R_32F, tb = CUDA_R_32F;
    MILES_TRY(data_type(a_type, &ta));
    MILES_TRY(data_type(b_type, &tb));
    if (M == 0 || N == 0) return MILES_OK;
    cublasHandle_t h;
    MILES_TRY(miles_cuda_cublas(&h, miles_stream(stream)));
    /* fp32 accumulation whatever the input type (AMP semantics); for fp32
     * inputs the current math mode applies. */
    cublasComputeType_t ct = a_type == MILES_CUDA_F32 ? compute_type(g_math) : CUBLAS_COMPUTE_32F;
    if (a_type == MILES_CUDA_F32)
        MILES_TRY(f16_guard(transA, transB, M, N, K, (const float *)A, lda, 0, (const float *)B, ldb, 0, 1,
                            miles_stream(stream)));
    MILES_CUBLAS_TRY(cublasGemmEx(h, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, tb,
                                  ldb, A, ta, lda, &beta, C, CUDA_R_32F, ldc, ct,
                                  CUBLAS_GEMM_DEFAULT));
    return MILES_OK;
}

/* ------------------------------------------------------------- linear */

/* out[n,o] = b[o] (b NULL: 0), then the GEMM accumulates with beta = 1. */
__global__ void bias_broadcast_kernel(float *out, const float *b, size_t N, int OC) {
    MILES_GRID_STRIDE(i, N * (size_t)OC) out[i] = b ? b[i % OC] : 0.0f;
}

extern "C" int linear_forward_cuda(float *out, const float *inp, const float *w, const float *b,
                                   int N, int C, int OC, miles_cuda_stream stream) {
    MILES_CUDA_REQUIRE(N >= 0 && C >= 0 && OC > 0, "linear_forward_cuda: bad shape N=%d C=%d OC=%d", N, C, OC);
    if (N == 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    float beta = 0.0f;
    if (b) {
        size_t n = (size_t)N * OC;
        MILES_LAUNCH(bias_broadcast_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, s, out, b, N, OC);
        beta = 1.0f;
    }
    /* out[N,OC] = inp[N,C] @ w[OC,C]^T (+ out) */
    return miles_gemm_cuda(0, 1, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC, stream);
}

extern "C" int linear_backward_cuda(float *dinp, float *dw, float *db, const float *dout,
                                    const float *inp, const float *w, int N, int C, int OC,
                                    miles_cuda_stream stream) {
    MILES_CUDA_REQUIRE(N >= 0 && C >= 0 && OC > 0, "linear_backward_cuda: bad shape N=%d C=%d OC=%d", N, C, OC);
    if (N == 0) return MILES_OK;
    /* dinp[N,C] += dout[N,OC] @ w[OC,C] */
    if (dinp) MILES_TRY(miles_gemm_cuda(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C, stream));
    /* dw[OC,C] += dout^T @ inp */
    if (dw) MILES_TRY(miles_gemm_cuda(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C, stream));
    if (db) MILES_TRY(miles_cuda_colsum_accumulate(db, dout, N, OC, miles_stream(stream)));
    return MILES_OK;
}

/* ============================================ 16-bit GEMMs (fast path) */

int miles_cuda_sm_count(void) {
    static int cached = 0;
    if (cached > 0) return cached;
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) {
        cudaGetLastError();
        return 1;
    }
    cached = n;
    return n;
}

static int half_type(int t, cudaDataType_t *out, const char *fn) {
    switch (t) {
    case MILES_CUDA_F16: *out = CUDA_R_16F; return MILES_OK;
    case MILES_CUDA_BF16: MILES_TRY(miles_cuda_require_bf16()); *out = CUDA_R_16BF; return MILES_OK;
    case MILES_CUDA_F32: *out = CUDA_R_32F; return MILES_OK;
    default: return miles_error(MILES_EINVAL, "%s: unknown storage type %d", fn, t);
    }
}

extern "C" int miles_gemm_h_cuda(int transA, int transB, int M, int N, int K, float alpha, const void *A,
                                 int lda, long long strideA, const void *B, int ldb, long long strideB,
                                 float beta, void *C, int ldc, long long strideC, int batch, int ab_type,
                                 int c_type, miles_cuda_stream stream) {
    MILES_TRY(check_dims("miles_gemm_h_cuda", transA, transB, M, N, K, lda, ldb, ldc));
    if (ab_type != MILES_CUDA_F16 && ab_type != MILES_CUDA_BF16)
        return miles_error(MILES_EINVAL, "miles_gemm_h_cuda: A and B must be fp16 or bf16 (got %d)", ab_type);
    if (c_type != MILES_CUDA_F32 && c_type != ab_type)
        return miles_error(MILES_EINVAL, "miles_gemm_h_cuda: C must be fp32 or the type of A and B");
    if (batch < 1) return miles_error(MILES_EINVAL, "miles_gemm_h_cuda: batch %d", batch);
    if (M == 0 || N == 0) return MILES_OK;
    cudaDataType_t tab, tc;
    MILES_TRY(half_type(ab_type, &tab, "miles_gemm_h_cuda"));
    MILES_TRY(half_type(c_type, &tc, "miles_gemm_h_cuda"));
    cublasHandle_t h;
    MILES_TRY(miles_cuda_cublas(&h, miles_stream(stream)));
    if (batch == 1)
        MILES_CUBLAS_TRY(cublasGemmEx(h, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N,
                                      M, K, &alpha, B, tab, ldb, A, tab, lda, &beta, C, tc, ldc, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT));
    else
        MILES_CUBLAS_TRY(cublasGemmStridedBatchedEx(
            h, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, tab, ldb,
            strideB, A, tab, lda, strideA, &beta, C, tc, ldc, strideC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return MILES_OK;
}

/* ---------------------------------------------------------- cuBLASLt */

/* One cached plan per GEMM shape: creating descriptors and asking the
 * heuristic costs tens of microseconds, a step makes a few dozen GEMMs. */
struct LtPlan {
    int transA, transB, M, N, K, lda, ldb, ldc, ldd, ab_type, cd_type, bias;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc, ld;
    cublasLtMatmulAlgo_t algo;
    int epilogue_ok; /* 0: the bias epilogue was refused: bias broadcast into D, then beta = 1 */
};
#define LT_PLANS 96
static thread_local cublasLtHandle_t tl_lt = NULL;
static thread_local LtPlan tl_plans[LT_PLANS];
static thread_local int tl_nplans = 0, tl_next_evict = 0;

static void lt_plan_destroy(LtPlan *p) {
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    if (p->ld) cublasLtMatrixLayoutDestroy(p->ld);
    memset(p, 0, sizeof *p);
}

static void lt_release(void) {
    for (int i = 0; i < tl_nplans; i++) lt_plan_destroy(&tl_plans[i]);
    tl_nplans = tl_next_evict = 0;
    if (tl_lt) cublasLtDestroy(tl_lt);
    tl_lt = NULL;
}

/* Descriptors of row-major D[M,N] = alpha op(A) op(B) + beta C (+ bias[N]),
 * as the column-major D^T = op(B)^T op(A)^T cuBLASLt computes. */
static int lt_plan_build(LtPlan *p, cudaDataType_t tab, cudaDataType_t tcd, const void *bias) {
    cublasOperation_t opA = p->transB ? CUBLAS_OP_T : CUBLAS_OP_N, opB = p->transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    MILES_CUBLAS_TRY(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    MILES_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA));
    MILES_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB));
    /* cuBLASLt's A is our B: [N,K] (transB) or [K,N] row-major = column-major K x N / N x K */
    MILES_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->la, tab, p->transB ? p->K : p->N, p->transB ? p->N : p->K, p->ldb));
    MILES_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->lb, tab, p->transA ? p->M : p->K, p->transA ? p->K : p->M, p->lda));
    MILES_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->lc, tcd, p->N, p->M, p->ldc));
    MILES_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->ld, tcd, p->N, p->M, p->ldd));
    const char *no_epi = getenv("MILES_CUDA_LT_NO_EPILOGUE"); /* read per plan: tests switch it */
    const int refuse = no_epi && *no_epi == '1';
    if (bias) /* some heuristics look at the epilogue's pointers */
        MILES_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    cublasLtMatmulPreference_t pref = NULL;
    MILES_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = MILES_CUBLAS_WORKSPACE;
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t res;
    int n = 0;
    p->epilogue_ok = 0;
    for (int attempt = p->bias && !refuse ? 0 : 1; attempt < 2 && st == CUBLAS_STATUS_SUCCESS; attempt++) {
        cublasLtEpilogue_t epi = attempt == 0 ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        st = cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        if (st != CUBLAS_STATUS_SUCCESS) break;
        n = 0;
        cublasStatus_t h = cublasLtMatmulAlgoGetHeuristic(tl_lt, p->desc, p->la, p->lb, p->lc, p->ld, pref, 1, &res, &n);
        if (h == CUBLAS_STATUS_SUCCESS && n > 0) {
            p->epilogue_ok = attempt == 0;
            break;
        }
        if (attempt == 1) st = h == CUBLAS_STATUS_SUCCESS ? CUBLAS_STATUS_NOT_SUPPORTED : h;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS) return miles_cublas_fail(st, __FILE__, __LINE__, "cuBLASLt heuristic");
    p->algo = res.algo;
    return MILES_OK;
}

extern "C" int miles_cuda_lt_uses_epilogue(int M, int N, int K, int ab_type) {
    for (int i = 0; i < tl_nplans; i++)
        if (tl_plans[i].M == M && tl_plans[i].N == N && tl_plans[i].K == K && tl_plans[i].bias &&
            tl_plans[i].ab_type == ab_type)
            return tl_plans[i].epilogue_ok;
    return -1;
}

extern "C" int miles_gemm_lt_cuda(int transA, int transB, int M, int N, int K, float alpha, const void *A,
                                  int lda, const void *B, int ldb, float beta, const void *C, int ldc, void *D,
                                  int ldd, int ab_type, int cd_type, const void *bias, miles_cuda_stream stream) {
    MILES_TRY(check_dims("miles_gemm_lt_cuda", transA, transB, M, N, K, lda, ldb, ldc));
    if (ldd < (N > 1 ? N : 1)) return miles_error(MILES_EINVAL, "miles_gemm_lt_cuda: ldd %d < N %d", ldd, N);
    if (ab_type != MILES_CUDA_F16 && ab_type != MILES_CUDA_BF16)
        return miles_error(MILES_EINVAL, "miles_gemm_lt_cuda: A and B must be fp16 or bf16 (got %d)", ab_type);
    if (cd_type != MILES_CUDA_F32 && cd_type != ab_type)
        return miles_error(MILES_EINVAL, "miles_gemm_lt_cuda: C and D must be fp32 or the type of A and B");
    if (bias && beta != 0.0f) return miles_error(MILES_EINVAL, "miles_gemm_lt_cuda: a bias needs beta = 0");
    if (!C) ldc = ldd; /* C is D */
    if (M == 0 || N == 0) return MILES_OK;
    cudaDataType_t tab, tcd;
    MILES_TRY(half_type(ab_type, &tab, "miles_gemm_lt_cuda"));
    MILES_TRY(half_type(cd_type, &tcd, "miles_gemm_lt_cuda"));
    cudaStream_t s = miles_stream(stream);
    cublasHandle_t h;
    MILES_TRY(miles_cuda_cublas(&h, s));
    void *ws = NULL;
    MILES_TRY(workspace_for(s, &ws)); /* this stream's workspace */
    if (!tl_lt) MILES_CUBLAS_TRY(cublasLtCreate(&tl_lt));
    const int has_bias = bias != NULL;
    LtPlan *p = NULL;
    for (int i = 0; i < tl_nplans && !p; i++) {
        LtPlan *q = &tl_plans[i];
        if (q->transA == transA && q->transB == transB && q->M == M && q->N == N && q->K == K && q->lda == lda &&
            q->ldb == ldb && q->ldc == ldc && q->ldd == ldd && q->ab_type == ab_type && q->cd_type == cd_type &&
            q->bias == has_bias)
            p = q;
    }
    if (!p) {
        if (tl_nplans < LT_PLANS) p = &tl_plans[tl_nplans++];
        else {
            p = &tl_plans[tl_next_evict];
            tl_next_evict = (tl_next_evict + 1) % LT_PLANS;
            lt_plan_destroy(p);
        }
        memset(p, 0, sizeof *p);
        p->transA = transA, p->transB = transB, p->M = M, p->N = N, p->K = K;
        p->lda = lda, p->ldb = ldb, p->ldc = ldc, p->ldd = ldd, p->ab_type = ab_type, p->cd_type = cd_type;
        p->bias = has_bias;
        int st = lt_plan_build(p, tab, tcd, bias);
        if (st != MILES_OK) {
            lt_plan_destroy(p);
            return st;
        }
    }
    if (has_bias && p->epilogue_ok)
        MILES_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    if (has_bias && !p->epilogue_ok) { /* D = bias, then D = A B + 1 * D: still one rounding */
        MILES_TRY(miles_bias_fill_cuda(D, ldd, bias, M, N, cd_type, stream));
        beta = 1.0f;
        C = D;
    }
    MILES_CUBLAS_TRY(cublasLtMatmul(tl_lt, p->desc, &alpha, B, p->la, A, p->lb, &beta, C ? C : D, p->lc, D, p->ld,
                                    &p->algo, ws, MILES_CUBLAS_WORKSPACE, s));
    return MILES_OK;
}
