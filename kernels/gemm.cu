/*
 * gemm.cu — cuBLAS context (one handle per thread), math modes and the
 * row-major GEMM wrappers mirroring miles_gemm.
 *
 * Row-major trick: a row-major X[r,c] with leading dimension ld is the
 * column-major X^T.  So row-major C = op(A) op(B) is column-major
 * C^T = op(B)^T op(A)^T: call cuBLAS with the operands swapped, M and N
 * swapped, and the same transpose flags.
 */
#include "common.cuh"

/* cuBLAS workspace: set explicitly so cuBLAS never allocates per stream
 * (cublasSetStream resets it, so it is set again after every stream change).
 * 32 MiB is NVIDIA's recommendation for Hopper. */
#define MILES_CUBLAS_WORKSPACE (32u << 20)

static thread_local cublasHandle_t tl_handle = NULL;
static thread_local void *tl_workspace = NULL;
static thread_local cudaStream_t tl_stream = NULL;
static thread_local int tl_stream_set = 0;
static int g_math = MILES_CUDA_MATH_FP32;

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
    cudaError_t e = cudaMalloc(&tl_workspace, MILES_CUBLAS_WORKSPACE);
    if (e != cudaSuccess) {
        cublasDestroy(tl_handle);
        tl_handle = NULL;
        tl_workspace = NULL;
        return miles_cuda_fail(e, __FILE__, __LINE__, "cudaMalloc(cuBLAS workspace)");
    }
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

extern "C" void miles_cuda_shutdown(void) {
    if (tl_handle) cublasDestroy(tl_handle);
    if (tl_workspace) cudaFree(tl_workspace);
    tl_handle = NULL;
    tl_workspace = NULL;
    tl_stream_set = 0;
}

int miles_cuda_cublas(cublasHandle_t *h, cudaStream_t s) {
    MILES_TRY(create_handle());
    if (!tl_stream_set || tl_stream != s) {
        MILES_CUBLAS_TRY(cublasSetStream(tl_handle, s));
        MILES_CUBLAS_TRY(cublasSetWorkspace(tl_handle, tl_workspace, MILES_CUBLAS_WORKSPACE));
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

static int32_t *g_f16_flag = NULL;

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
    return isinf(out) ? 1 : 0;
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
