/*
 * test_simt.cu — self-test of the SIMT emulator (tests/sim): every device
 * feature the kernels use or will use, against values computed on the host
 * with the CUDA semantics, plus the emulator's own diagnostics (each
 * deliberate misuse below must be reported), the deferred stream semantics,
 * launch-configuration errors and, in an AddressSanitizer build, ASan
 * reports from inside fibers (run in a child process).
 *
 * Built only for the emulator (make sim-test).  Exit 0 when all pass.
 */
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "common.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#ifndef SIMT_EMULATOR
#error "test_simt.cu tests the SIMT emulator; build it with make sim-test"
#endif

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

#define CK(x) CUDA_CHECK(x)

template <class T> struct Buf {
    T *d = nullptr;
    size_t n;
    explicit Buf(size_t n_) : n(n_) { CK(cudaMalloc(&d, n * sizeof(T))); }
    ~Buf() { cudaFree(d); }
    void up(const std::vector<T> &h) { CK(cudaMemcpy(d, h.data(), n * sizeof(T), cudaMemcpyHostToDevice)); }
    std::vector<T> down() {
        std::vector<T> h(n);
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
        return h;
    }
};

/* Launch and expect success (the test's own helper around MILES_LAUNCH). */
#define RUN(kernel, grid, block, smem, ...)                                          \
    do {                                                                            \
        auto _f = [&]() -> int {                                                    \
            MILES_LAUNCH(kernel, grid, block, smem, 0, __VA_ARGS__);                \
            return MILES_OK;                                                        \
        };                                                                          \
        if (_f() != MILES_OK) {                                                     \
            printf("FAIL launch %s: %s\n", #kernel, miles_last_error());           \
            g_fail++;                                                               \
        }                                                                           \
    } while (0)

/* ------------------------------------------------------- index space */
__global__ void k_index(int4 *out) {
    unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[b * blockDim.x * blockDim.y * blockDim.z + t] =
        make_int4((int)(threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16), (int)(blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16),
                  (int)(blockDim.x | blockDim.y << 8 | blockDim.z << 16), (int)(gridDim.x | gridDim.y << 8 | gridDim.z << 16));
}

static void test_index(void) {
    dim3 grid(3, 2, 2), block(5, 4, 3);
    const int nb = 12, nt = 60;
    Buf<int4> out(nb * nt);
    RUN(k_index, grid, block, 0, out.d);
    std::vector<int4> h = out.down();
    int bad = 0;
    for (int bz = 0; bz < 2; bz++)
        for (int by = 0; by < 2; by++)
            for (int bx = 0; bx < 3; bx++)
                for (int tz = 0; tz < 3; tz++)
                    for (int ty = 0; ty < 4; ty++)
                        for (int tx = 0; tx < 5; tx++) {
                            int b = bx + 3 * (by + 2 * bz), t = tx + 5 * (ty + 4 * tz);
                            int4 v = h[b * nt + t];
                            bad += v.x != (tx | ty << 8 | tz << 16) || v.y != (bx | by << 8 | bz << 16) ||
                                   v.z != (5 | 4 << 8 | 3 << 16) || v.w != (3 | 2 << 8 | 2 << 16);
                        }
    check("3-D grid and block: threadIdx/blockIdx/blockDim/gridDim", bad == 0, "%d wrong of %d", bad, nb * nt);
}

/* ------------------------------------------------- barriers, shared */
/* tree sum over a non-power-of-two block (100 threads: a partial warp) */
__global__ void k_block_sum(const float *x, float *out) {
    __shared__ float sh[128];
    int t = threadIdx.x;
    sh[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (int s = 1; s < (int)blockDim.x; s *= 2) {
        float v = (t % (2 * s) == 0 && t + s < (int)blockDim.x) ? sh[t + s] : 0.0f;
        __syncthreads();
        sh[t] += v;
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = sh[0];
}

__global__ void k_sync_ops(int *out) {
    int t = threadIdx.x;
    int c = __syncthreads_count(t % 3 == 0);
    int a = __syncthreads_and(t < 1000);
    int o = __syncthreads_or(t == 77);
    int z = __syncthreads_and(t != 5);
    if (t == 0) {
        out[0] = c;
        out[1] = a;
        out[2] = o;
        out[3] = z;
    }
}

/* 1024 threads (32 warps) with the library's block reduction */
__global__ void k_block1024(const float *x, float *out) {
    __shared__ float sh[32];
    float s = miles_block_sum(x[threadIdx.x], sh);
    if (threadIdx.x == 1023) out[0] = s;
}

static void test_barriers(void) {
    const int nb = 7, nt = 100;
    std::vector<float> x(nb * nt);
    for (int i = 0; i < nb * nt; i++) x[i] = (float)(i % 13 - 6);
    Buf<float> dx(nb * nt), dout(nb);
    dx.up(x);
    RUN(k_block_sum, nb, nt, 0, dx.d, dout.d);
    std::vector<float> o = dout.down();
    int bad = 0;
    for (int b = 0; b < nb; b++) {
        float s = 0;
        for (int t = 0; t < nt; t++) s += x[b * nt + t];
        bad += o[b] != s;
    }
    check("__syncthreads tree sum, 100 threads (partial warp)", bad == 0, "%d of %d blocks wrong", bad, nb);

    Buf<int> r(4);
    RUN(k_sync_ops, 1, 200, 0, r.d);
    std::vector<int> h = r.down();
    check("__syncthreads_count/_and/_or", h[0] == 67 && h[1] == 1 && h[2] == 1 && h[3] == 0,
          "count %d and %d or %d and(t!=5) %d", h[0], h[1], h[2], h[3]);

    std::vector<float> y(1024);
    for (int i = 0; i < 1024; i++) y[i] = (float)(i % 7);
    Buf<float> dy(1024), ds(1);
    dy.up(y);
    RUN(k_block1024, 1, 1024, 0, dy.d, ds.d);
    float want = 0;
    for (float v : y) want += v;
    check("1024-thread block, miles_block_sum", ds.down()[0] == want, "%g (want %g)", ds.down()[0], want);
}

/* ------------------------------------------------------- warp ops */
__global__ void k_shfl(const int *in, int *out, int kind, int arg, int width) {
    int t = threadIdx.x, v = in[t], r = 0;
    switch (kind) {
    case 0: r = __shfl_sync(0xffffffffu, v, arg, width); break;
    case 1: r = __shfl_up_sync(0xffffffffu, v, (unsigned)arg, width); break;
    case 2: r = __shfl_down_sync(0xffffffffu, v, (unsigned)arg, width); break;
    default: r = __shfl_xor_sync(0xffffffffu, v, arg, width); break;
    }
    out[t] = r;
}

/* the CUDA programming guide's rules, lane by lane */
static int shfl_expect(const std::vector<int> &in, int t, int kind, int arg, int width) {
    int lane = t % 32, base = t - lane, seg = lane & ~(width - 1), src = lane;
    switch (kind) {
    case 0: src = seg + (arg & (width - 1)); break;
    case 1: src = (lane - seg) >= arg ? lane - arg : lane; break;
    case 2: src = (lane - seg) + arg < width ? lane + arg : lane; break;
    default: src = (lane ^ arg) < seg + width ? lane ^ arg : lane; break;
    }
    return in[base + src];
}

__global__ void k_vote(const int *pred, unsigned *out) {
    int t = threadIdx.x, lane = t % 32;
    unsigned b = 0, a = 0, l = 0;
    if (lane % 2 == 0) { /* only the even lanes take part: mask 0x55555555 */
        b = __ballot_sync(0x55555555u, pred[t]);
        a = (unsigned)__any_sync(0x55555555u, pred[t]);
        l = (unsigned)__all_sync(0x55555555u, pred[t]);
    } else {
        b = __ballot_sync(0xaaaaaaaau, pred[t]);
        a = 2;
        l = 2;
    }
    unsigned m = __match_any_sync(0xffffffffu, pred[t] * 3 + (lane % 4));
    int all_pred = 0;
    unsigned ma = __match_all_sync(0xffffffffu, 42, &all_pred);
    unsigned red = __reduce_add_sync(0xffffffffu, (unsigned)lane);
    int mx = __reduce_max_sync(0xffffffffu, lane == 9 ? -1 : -lane - 5);
    __syncwarp();
    out[t * 7 + 0] = b;
    out[t * 7 + 1] = a;
    out[t * 7 + 2] = l;
    out[t * 7 + 3] = m;
    out[t * 7 + 4] = ma ^ (unsigned)all_pred;
    out[t * 7 + 5] = red;
    out[t * 7 + 6] = (unsigned)mx;
}

/* neighbour exchange through shared memory inside one warp */
template <bool SYNC> __global__ void k_warp_exchange(int *bad) {
    __shared__ int sh[32];
    int lane = threadIdx.x;
    sh[lane] = lane + 1000 * (int)blockIdx.x;
    if (SYNC) __syncwarp();
    int v = sh[(lane + 1) % 32];
    if (v != (lane + 1) % 32 + 1000 * (int)blockIdx.x) atomicAdd(bad, 1);
}

static void test_warp(void) {
    std::vector<int> in(64);
    for (int i = 0; i < 64; i++) in[i] = 1000 + i * 7;
    Buf<int> din(64), dout(64);
    din.up(in);
    int bad = 0, cases = 0;
    const int args[4][6] = {{0, 1, 3, 7, 17, 31}, {1, 2, 5, 8, 16, 31}, {1, 2, 5, 8, 16, 31}, {1, 2, 4, 8, 16, 31}};
    for (int kind = 0; kind < 4; kind++)
        for (int width = 32; width >= 1; width /= 2)
            for (int a = 0; a < 6; a++) {
                RUN(k_shfl, 1, 64, 0, din.d, dout.d, kind, args[kind][a], width);
                std::vector<int> o = dout.down();
                for (int t = 0; t < 64; t++) bad += o[t] != shfl_expect(in, t, kind, args[kind][a], width);
                cases++;
            }
    check("__shfl/_up/_down/_xor_sync, widths 32..1", bad == 0, "%d wrong lanes in %d cases", bad, cases);

    std::vector<int> pred(64);
    for (int i = 0; i < 64; i++) pred[i] = (i * 7 + 3) % 5 == 0;
    Buf<int> dp(64);
    dp.up(pred);
    Buf<unsigned> dv(64 * 7);
    RUN(k_vote, 1, 64, 0, dp.d, dv.d);
    std::vector<unsigned> o = dv.down();
    int vb = 0;
    for (int t = 0; t < 64; t++) {
        int w = t / 32 * 32, lane = t % 32;
        unsigned eb = 0, ea = 0, el = 1, em = 0;
        for (int l = lane % 2; l < 32; l += 2)
            if (pred[w + l]) eb |= 1u << l;
        if (lane % 2 == 0) {
            ea = eb != 0;
            el = eb == 0x55555555u;
        } else {
            ea = el = 2;
        }
        for (int l = 0; l < 32; l++)
            if (pred[w + l] * 3 + l % 4 == pred[t] * 3 + lane % 4) em |= 1u << l;
        vb += o[t * 7] != eb || o[t * 7 + 1] != ea || o[t * 7 + 2] != el || o[t * 7 + 3] != em ||
              o[t * 7 + 4] != (0xffffffffu ^ 1u) || o[t * 7 + 5] != 496 || (int)o[t * 7 + 6] != -1;
    }
    check("ballot/any/all (partial masks), match, reduce, syncwarp", vb == 0, "%d wrong lanes", vb);

    Buf<int> dbad(1);
    CK(cudaMemset(dbad.d, 0, sizeof(int)));
    RUN(k_warp_exchange<true>, 64, 32, 0, dbad.d);
    int with_sync = dbad.down()[0];
    CK(cudaMemset(dbad.d, 0, sizeof(int)));
    RUN(k_warp_exchange<false>, 64, 32, 0, dbad.d);
    int without = dbad.down()[0];
    check("shared-memory exchange: correct with __syncwarp", with_sync == 0, "%d stale reads", with_sync);
    check("... and the race without it is exposed (random schedule)", without > 0, "%d stale reads in 64 blocks",
          without);
}

/* --------------------------------------------------------- atomics */
__global__ void k_atomics(float *f, int *i, double *d, unsigned long long *u, unsigned *inc, float *fmx, int *cas) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(f, (float)(t % 5));
    atomicAdd(i, t);
    atomicSub(i + 1, 2);
    atomicAdd(d, 0.5 * t);
    atomicAdd(u, (unsigned long long)t << 20);
    atomicInc(inc, 9u);
    atomicMax(i + 2, t);
    atomicMin(i + 3, -t);
    /* float max through atomicCAS, the usual loop */
    float val = (float)((t * 37) % 1001);
    int *addr = (int *)fmx, old = *addr, assumed;
    do {
        assumed = old;
        old = atomicCAS(addr, assumed, __float_as_int(fmaxf(val, __int_as_float(assumed))));
    } while (assumed != old);
    if (atomicExch(cas, t) >= 0) atomicAdd(cas + 1, 1);
}

static void test_atomics(void) {
    const int nb = 13, nt = 96, n = nb * nt;
    Buf<float> f(1), fm(1);
    Buf<int> i(4), cas(2);
    Buf<double> d(1);
    Buf<unsigned long long> u(1);
    Buf<unsigned> inc(1);
    CK(cudaMemset(f.d, 0, 4));
    CK(cudaMemset(fm.d, 0, 4));
    CK(cudaMemset(d.d, 0, 8));
    CK(cudaMemset(u.d, 0, 8));
    CK(cudaMemset(inc.d, 0, 4));
    CK(cudaMemset(cas.d, 0, 8));
    i.up({0, 0, -1, 0});
    RUN(k_atomics, nb, nt, 0, f.d, i.d, d.d, u.d, inc.d, fm.d, cas.d);
    float ef = 0, efm = 0;
    long long ei = 0;
    double ed = 0;
    unsigned long long eu = 0;
    for (int t = 0; t < n; t++) {
        ef += (float)(t % 5);
        ei += t;
        ed += 0.5 * t;
        eu += (unsigned long long)t << 20;
        efm = fmaxf(efm, (float)((t * 37) % 1001));
    }
    std::vector<int> hi = i.down();
    std::vector<int> hc = cas.down();
    check("atomicAdd float/int/double/ull, atomicSub/Max/Min",
          f.down()[0] == ef && hi[0] == (int)ei && hi[1] == -2 * n && hi[2] == n - 1 && hi[3] == -(n - 1) &&
              d.down()[0] == ed && u.down()[0] == eu,
          "f %g i %d d %g", f.down()[0], hi[0], d.down()[0]);
    check("atomicInc wraps, atomicCAS loop (float max), atomicExch", inc.down()[0] == (unsigned)(n % 10) &&
          fm.down()[0] == efm && hc[1] == n, "inc %u fmax %g exch %d", inc.down()[0], fm.down()[0], hc[1]);
}

/* ------------------------------------------ dynamic shared, vectors */
__global__ void k_dyn(float *out) {
    MILES_DYNAMIC_SHARED(float, tile);
    int t = threadIdx.x, n = blockDim.x;
    tile[t] = (float)(t + 1000 * blockIdx.x);
    __syncthreads();
    out[blockIdx.x * n + t] = tile[n - 1 - t];
}
__global__ void k_big_smem(int *out) {
    MILES_DYNAMIC_SHARED(int, s);
    s[threadIdx.x * 4000] = (int)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = s[(11 - threadIdx.x) * 4000];
}

__global__ void k_vec(const float4 *in, float4 *out, const __half2 *h, float2 *hf, const __nv_bfloat162 *b,
                      float2 *bf) {
    int t = threadIdx.x;
    float4 v = __ldg(in + t);
    out[t] = make_float4(v.w, v.z, v.y, v.x);
    hf[t] = __half22float2(h[t]);
    bf[t] = __bfloat1622float2(b[t]);
}

static void test_memory_kinds(void) {
    const int nb = 3, nt = 200;
    Buf<float> o(nb * nt);
    RUN(k_dyn, nb, nt, nt * sizeof(float), o.d);
    std::vector<float> h = o.down();
    int bad = 0;
    for (int b = 0; b < nb; b++)
        for (int t = 0; t < nt; t++) bad += h[b * nt + t] != (float)(nt - 1 - t + 1000 * b);
    check("dynamic shared memory (MILES_DYNAMIC_SHARED), 200 threads", bad == 0, "%d wrong", bad);

    /* 12 threads x 4000 ints = 188 KB of dynamic shared memory: over the 48 KB
     * default, so it needs the attribute, which sm_90 allows and sm_70 not */
    Buf<int> bo(12);
    const int big = 12 * 4000 * (int)sizeof(int);
    auto launch_big = [&]() -> int {
        MILES_LAUNCH(k_big_smem, 1, 12, (size_t)big, 0, bo.d);
        return MILES_OK;
    };
    int st = launch_big();
    check("dynamic smem > 48 KB without the attribute: launch error", st != MILES_OK, "%s", miles_last_error());
    simt_set_compute_capability(70);
    cudaError_t e70 = cudaFuncSetAttribute(k_big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, big);
    cudaGetLastError();
    simt_set_compute_capability(90);
    cudaError_t e = cudaFuncSetAttribute(k_big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, big);
    st = e == cudaSuccess ? launch_big() : MILES_EINTERNAL;
    std::vector<int> hb = bo.down();
    int wrong = 0;
    for (int t = 0; t < 12; t++) wrong += hb[t] != 11 - t;
    check("188 KB smem: refused on sm_70, allowed on sm_90 with the attribute",
          e70 == cudaErrorInvalidValue && e == cudaSuccess && st == MILES_OK && wrong == 0, "%s / %s, %d wrong",
          cudaGetErrorName(e70), cudaGetErrorName(e), wrong);

    std::vector<float4> in(40);
    std::vector<__half2> hv(40);
    std::vector<__nv_bfloat162> bv(40);
    for (int i = 0; i < 40; i++) {
        in[i] = make_float4(i, i + 0.25f, i + 0.5f, i + 0.75f);
        hv[i] = __floats2half2_rn(i * 0.5f, -i * 0.25f);
        bv[i] = __floats2bfloat162_rn(i * 3.0f, -i * 1.5f);
    }
    Buf<float4> din(40), dout(40);
    Buf<__half2> dh(40);
    Buf<__nv_bfloat162> db(40);
    Buf<float2> dhf(40), dbf(40);
    din.up(in);
    dh.up(hv);
    db.up(bv);
    RUN(k_vec, 1, 40, 0, din.d, dout.d, dh.d, dhf.d, db.d, dbf.d);
    std::vector<float4> ov = dout.down();
    std::vector<float2> ohf = dhf.down(), obf = dbf.down();
    int vb = 0;
    for (int i = 0; i < 40; i++)
        vb += ov[i].x != in[i].w || ov[i].w != in[i].x || ohf[i].x != i * 0.5f || ohf[i].y != -i * 0.25f ||
              obf[i].x != i * 3.0f || obf[i].y != -i * 1.5f;
    check("float4 / half2 / bfloat162 loads (__ldg), alignment", vb == 0 && alignof(float4) == 16 &&
          alignof(__half2) == 4, "%d wrong", vb);
}

/* ------------------------------------------------------ numerics */
__global__ void k_math(float *o, int *oi) {
    o[0] = __expf(1.0f);
    o[1] = __fdividef(1.0f, 1.0e38f); /* 2^126 < |y|: 0 on the GPU */
    o[2] = __saturatef(__int_as_float(0x7fc00000));
    o[3] = rsqrtf(4.0f);
    o[4] = __fmul_rn(1.0f + 1.0f / 4096, 1.0f + 1.0f / 4096);
    o[5] = __expf(-100.0f); /* denormal result flushed to zero */
    o[6] = __logf(8.0f);
    oi[0] = __float2int_rn(3e9f);
    oi[1] = __float2int_rn(__int_as_float(0x7fc00000));
    oi[2] = __float2int_rn(2.5f);
    oi[3] = __float2int_rn(-3.5f);
    oi[4] = __float2int_rz(-2.7f);
    oi[5] = __popc(0xf0f0u) + __clz(1) * 100 + __ffs(8) * 10000;
}

static uint16_t ref_f16(double v, int mode) { /* brute force: nearest representable per mode */
    /* enumerate finite halves, pick by mode */
    double best = NAN;
    uint16_t bb = 0;
    for (uint32_t b = 0; b < 0x10000; b++) {
        if ((b & 0x7c00) == 0x7c00) continue;
        double h = simt::f16_to_f32((uint16_t)b);
        bool ok = mode == simt::RD ? h <= v : mode == simt::RU ? h >= v : fabs(h) <= fabs(v) && h * v >= 0;
        if (!ok) continue;
        if (best != best || fabs(h - v) < fabs(best - v) || (h == 0 && best == 0 && (b & 0x8000) == (v < 0 ? 0x8000 : 0))) {
            best = h;
            bb = (uint16_t)b;
        }
    }
    if (best != best) return mode == simt::RD ? 0xfc00 : 0x7c00; /* below / above the finite range */
    return bb;
}

static void test_numerics(void) {
    Buf<float> o(7);
    Buf<int> oi(6);
    RUN(k_math, 1, 1, 0, o.d, oi.d);
    std::vector<float> h = o.down();
    std::vector<int> hi = oi.down();
    float p = (1.0f + 1.0f / 4096) * (1.0f + 1.0f / 4096);
    check("__expf, __fdividef(x, >2^126) = 0, __saturatef(NaN) = 0, rsqrtf, __fmul_rn, FTZ",
          fabsf(h[0] - 2.7182817f) < 3e-7f && h[1] == 0.0f && h[2] == 0.0f && h[3] == 0.5f && h[4] == p &&
              h[5] == 0.0f && fabsf(h[6] - 2.0794415f) < 3e-7f,
          "%.9g %g %g %g %g %.9g", h[0], h[1], h[2], h[3], h[5], h[6]);
    check("__float2int_rn saturates, NaN -> 0, ties to even; _rz; __popc/__clz/__ffs",
          hi[0] == 2147483647 && hi[1] == 0 && hi[2] == 2 && hi[3] == -4 && hi[4] == -2 && hi[5] == 8 + 3100 + 40000,
          "%d %d %d %d %d %d", hi[0], hi[1], hi[2], hi[3], hi[4], hi[5]);
    /* fp16 rounding modes against brute force (rz, rd, ru; rn is checked by test_cuda_ops) */
    int bad = 0, n = 0;
    uint64_t s = 12345;
    for (int i = 0; i < 3000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        float x = (float)((double)(int64_t)s / 9.2e18 * (i % 3 == 0 ? 70000.0 : i % 3 == 1 ? 1.0 : 1e-5));
        n++;
        bad += __float2half_rz(x).__x != ref_f16(x, simt::RZ);
        bad += __float2half_rd(x).__x != ref_f16(x, simt::RD);
        bad += __float2half_ru(x).__x != ref_f16(x, simt::RU);
    }
    bad += __float2half_rn(65520.0f).__x != 0x7c00 || __float2half_rz(1e6f).__x != 0x7bff ||
           __float2bfloat16_rn(3.4e38f).__x != 0x7f80 || __float2bfloat16_rz(3.4e38f).__x != 0x7f7f;
    check("fp16 _rz/_rd/_ru vs brute force, overflow rules (fp16, bf16)", bad == 0, "%d wrong of %d", bad, 3 * n);
}

/* --------------------------------------------------- configuration */
__global__ void k_nop(int *p) {
    if (p) p[0] = 1;
}

static void test_config_errors(void) {
    int old_print = simt_print_diagnostics(0); /* the refusals are expected */
    struct {
        dim3 g, b;
        const char *what;
    } bad[] = {{dim3(1), dim3(1025), "block 1025"}, {dim3(0), dim3(32), "grid 0"},
               {dim3(1), dim3(1, 1, 65), "block.z 65"}, {dim3(1, 65536), dim3(32), "grid.y 65536"},
               {dim3(1), dim3(32, 33), "block 32x33"}};
    for (auto &c : bad) {
        cudaGetLastError();
        cudaError_t e = simt_launch("k_nop", k_nop, c.g, c.b, 0, 0, (int *)nullptr);
        cudaError_t last = cudaGetLastError();
        char name[96];
        snprintf(name, sizeof name, "invalid configuration refused: %s", c.what);
        check(name, e == cudaErrorInvalidConfiguration && last == cudaErrorInvalidConfiguration, "%s",
              cudaGetErrorName(last));
    }
    cudaStream_t bogus = (cudaStream_t)(uintptr_t)0x1234;
    cudaError_t e = simt_launch("k_nop", k_nop, dim3(1), dim3(1), 0, bogus, (int *)nullptr);
    cudaGetLastError();
    check("launch on a stream that does not exist refused", e == cudaErrorInvalidResourceHandle, "%s",
          cudaGetErrorName(e));
    simt_print_diagnostics(old_print);
}

/* ------------------------------------------------ streams, copies */
__global__ void k_set(int *p, int v) { p[threadIdx.x] = v; }

static void test_streams(void) {
    int *pinned = nullptr, *dev = nullptr;
    CK(cudaMallocHost(&pinned, 4 * sizeof(int)));
    CK(cudaMalloc(&dev, 4 * sizeof(int)));
    cudaStream_t s, nb;
    CK(cudaStreamCreate(&s));
    CK(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking));
    pinned[0] = -1;
    CK(simt_launch("k_set", k_set, dim3(1), dim3(1), 0, s, pinned, 7));
    int before = pinned[0];
    CK(cudaStreamSynchronize(s));
    check("kernel work is deferred until a synchronization", before == -1 && pinned[0] == 7,
          "before sync %d, after %d", before, pinned[0]);

    /* a non-blocking stream does not wait for the legacy stream ... */
    CK(cudaMemset(dev, 0, sizeof(int)));
    CK(simt_launch("k_set", k_set, dim3(1), dim3(1), 0, (cudaStream_t)0, dev, 5));
    CK(cudaMemcpyAsync(pinned, dev, sizeof(int), cudaMemcpyDeviceToHost, nb));
    CK(cudaStreamSynchronize(nb));
    int racy = pinned[0];
    /* ... unless told to with an event */
    cudaEvent_t ev;
    CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    CK(simt_launch("k_set", k_set, dim3(1), dim3(1), 0, (cudaStream_t)0, dev, 6));
    CK(cudaEventRecord(ev, 0));
    CK(cudaStreamWaitEvent(nb, ev, 0));
    CK(cudaMemcpyAsync(pinned, dev, sizeof(int), cudaMemcpyDeviceToHost, nb));
    CK(cudaStreamSynchronize(nb));
    check("non-blocking stream: no implicit wait for stream 0; cudaStreamWaitEvent orders",
          racy == 0 && pinned[0] == 6, "without event %d, with event %d", racy, pinned[0]);

    /* host-to-device from pageable memory is staged at the call, from pinned memory read at run time */
    int pageable = 11;
    CK(cudaMemcpyAsync(dev, &pageable, sizeof(int), cudaMemcpyHostToDevice, s));
    pageable = 12;
    pinned[1] = 21;
    CK(cudaMemcpyAsync(dev + 1, pinned + 1, sizeof(int), cudaMemcpyHostToDevice, s));
    pinned[1] = 22;
    int got[2];
    CK(cudaMemcpy(got, dev, 2 * sizeof(int), cudaMemcpyDeviceToHost)); /* syncs stream s (blocking) */
    check("H2D copy: pageable source staged at the call, pinned read when it runs", got[0] == 11 && got[1] == 22,
          "%d %d", got[0], got[1]);

    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    CK(cudaEventRecord(a, s));
    CK(simt_launch("k_set", k_set, dim3(1), dim3(4), 0, s, dev, 1));
    CK(cudaEventRecord(b, s));
    float ms = -1;
    cudaError_t early = cudaEventElapsedTime(&ms, a, b);
    cudaGetLastError();
    CK(cudaEventSynchronize(b));
    CK(cudaEventElapsedTime(&ms, a, b));
    check("cudaEventElapsedTime: not ready before, >= 0 after the sync", early == cudaErrorNotReady && ms >= 0,
          "%s, %g ms", cudaGetErrorName(early), ms);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaEventDestroy(ev);
    cudaStreamDestroy(s);
    cudaStreamDestroy(nb);
    cudaFree(dev);
    cudaFreeHost(pinned);
}

/* -------------------------------------------------- diagnostics */
__global__ void k_ub_exited(int *o) {
    int lane = threadIdx.x;
    if (lane >= 16) return;
    o[lane] = __shfl_xor_sync(0xffffffffu, lane, 16); /* reads lanes that exited */
}
__global__ void k_ub_mask(int *o) { o[threadIdx.x] = __shfl_sync(0x1u, (int)threadIdx.x, 0); }
__global__ void k_ub_divergent(int *o) {
    if (threadIdx.x < 32) __syncthreads();
    else __syncthreads();
    o[threadIdx.x] = 1;
}
__global__ void k_ub_deadlock(int *o) {
    if (threadIdx.x == 0) __syncthreads(); /* lane 0 at the barrier, the rest wait for it in __syncwarp */
    else __syncwarp();
    o[threadIdx.x] = 1;
}
__global__ void k_ub_width(int *o) { o[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0, 12); }
__global__ void k_partial_warp(int *o) { /* 48 threads: full-mask shuffle in the partial second warp */
    o[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 16);
}

/* ------------------------------------------------------------- graphs */
__global__ void k_axpy(float *y, const float *x, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i];
}

static void test_graphs(void) {
    const int n = 100;
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    Buf<float> x(n), y(n), z(n), w(1);
    w.up(std::vector<float>(1, 1.0f));
    float *pin = nullptr;
    CK(cudaMallocHost(&pin, n * sizeof(float)));
    std::vector<float> hx(n), hy(n, 1.0f);
    for (int i = 0; i < n; i++) hx[i] = (float)i;
    x.up(hx);
    y.up(hy);
    /* capture: y += 2 x (kernel, arguments by value), a copy to pinned memory, a cuBLAS GEMM z = y * w (w = 1) */
    cudaGraph_t g = nullptr;
    cudaGraphExec_t ex = nullptr;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    cudaStreamCaptureStatus st;
    CK(cudaStreamIsCapturing(s, &st));
    float a = 2.0f;
    CK(simt_launch("k_axpy", k_axpy, dim3(1), dim3(128), 0, s, y.d, (const float *)x.d, a, n));
    a = 100.0f; /* the captured launch keeps 2 */
    CK(cudaMemcpyAsync(pin, y.d, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    cublasHandle_t h;
    CUBLAS_CHECK(cublasCreate(&h));
    CUBLAS_CHECK(cublasSetStream(h, s));
    const float one = 1.0f, zero = 0.0f;
    /* z[i] = y[i] * 1 (a 1 x n times 1 x 1 product) */
    CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, 1, 1, &one, y.d, n, w.d, 1, &zero, z.d, n));
    int before = (int)pin[0];
    CK(cudaStreamEndCapture(s, &g));
    size_t nodes = 0;
    CK(cudaGraphGetNodes(g, nullptr, &nodes));
    CK(cudaStreamSynchronize(s));
    auto y0 = y.down();
    check("capture records instead of running (3 nodes)", st == cudaStreamCaptureStatusActive && nodes == 3 &&
          y0[5] == 1.0f, "status %d, %zu nodes, y[5] %g", (int)st, nodes, y0[5]);
    CK(cudaGraphInstantiate(&ex, g, 0));
    CK(cudaGraphLaunch(ex, s));
    CK(cudaGraphLaunch(ex, s));
    CK(cudaStreamSynchronize(s));
    auto y2 = y.down(), z2 = z.down();
    check("graph replays: kernel twice with its captured arguments, copy and GEMM re-run",
          y2[5] == 21.0f && pin[5] == 21.0f && z2[5] == 21.0f && before != 21,
          "y[5] %g (21), pinned %g, z[5] %g", y2[5], pin[5], z2[5]);
    /* new input data is seen by a replay */
    for (auto &v : hx) v = 1.0f;
    x.up(hx);
    CK(cudaGraphLaunch(ex, s));
    CK(cudaStreamSynchronize(s));
    check("a replay reads the buffers' current contents", y.down()[5] == 23.0f, "y[5] %g (23)", y.down()[5]);
    CK(cudaGraphExecDestroy(ex));
    CK(cudaGraphDestroy(g));

    /* what a GPU refuses during a global-mode capture: the capture is invalidated */
    int old_print = simt_print_diagnostics(0);
    long d0 = simt_diagnostics();
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    void *p = nullptr;
    cudaError_t e1 = cudaMalloc(&p, 64);
    float pageable = 0;
    cudaError_t e2 = cudaMemcpyAsync(&pageable, y.d, sizeof(float), cudaMemcpyDeviceToHost, s);
    cudaError_t e3 = cudaStreamSynchronize(s);
    cudaError_t e4 = cudaStreamEndCapture(s, &g);
    cudaGetLastError();
    simt_print_diagnostics(old_print);
    check("during capture: cudaMalloc, pageable copies, a sync are refused; the capture is invalidated",
          e1 == cudaErrorStreamCaptureUnsupported && e2 == cudaErrorStreamCaptureUnsupported &&
              e3 == cudaErrorStreamCaptureUnsupported && e4 == cudaErrorStreamCaptureInvalidated && g == nullptr &&
              simt_diagnostics() - d0 >= 3,
          "%s %s %s %s", cudaGetErrorName(e1), cudaGetErrorName(e2), cudaGetErrorName(e3), cudaGetErrorName(e4));
    CUBLAS_CHECK(cublasDestroy(h));
    CK(cudaFreeHost(pin));
    CK(cudaStreamDestroy(s));
}

/* ------------------------------------------------------------- mma.sync */
/* the emulated instruction against a product of the matrices its fragments
 * hold (per-lane loads written from the PTX ISA tables); sm_80+ only */
__global__ void k_mma(float *D, const uint16_t *A, const uint16_t *B, int bf16) {
    const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    uint32_t a[4], b[2];
    float c[4] = {0, 0, 0, 0};
    for (int r = 0; r < 4; r++) {
        const int row = g + ((r & 1) ? 8 : 0), col = 2 * t + ((r & 2) ? 8 : 0);
        a[r] = A[row * 16 + col] | (uint32_t)A[row * 16 + col + 1] << 16;
    }
    for (int r = 0; r < 2; r++) b[r] = B[(2 * t + 8 * r) * 8 + g] | (uint32_t)B[(2 * t + 8 * r + 1) * 8 + g] << 16;
    simt::mma16816(c, a, b, bf16, SIMT_SITE);
    for (int i = 0; i < 4; i++) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = c[i];
}

static void test_mma(void) {
    if (simt_compute_capability() < 80) return;
    for (int bf = 0; bf < 2; bf++) {
        std::vector<uint16_t> ha(256), hb(128);
        std::vector<float> fa(256), fb(128);
        for (int i = 0; i < 256; i++) {
            float v = (float)((i * 37) % 23 - 11) / 8.0f; /* exact in both formats */
            fa[i] = v;
            ha[i] = bf ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
        }
        for (int i = 0; i < 128; i++) {
            float v = (float)((i * 11) % 17 - 8) / 4.0f;
            fb[i] = v;
            hb[i] = bf ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
        }
        Buf<uint16_t> A(256), B(128);
        Buf<float> D(128);
        A.up(ha);
        B.up(hb);
        RUN(k_mma, 1, 32, 0, D.d, (const uint16_t *)A.d, (const uint16_t *)B.d, bf);
        auto d = D.down();
        int bad = 0;
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++) {
                float ref = 0;
                for (int k = 0; k < 16; k++) ref += fa[i * 16 + k] * fb[k * 8 + j];
                bad += d[i * 8 + j] != ref; /* small integers / 32: exact */
            }
        check(bf ? "mma.sync m16n8k16 bf16: fragments as the PTX ISA lays them out"
                 : "mma.sync m16n8k16 fp16: fragments as the PTX ISA lays them out",
              bad == 0, "%d of 128 wrong", bad);
    }
}

static void expect_diag(const char *name, long before, bool sticky = false) {
    cudaError_t e = cudaDeviceSynchronize();
    long d = simt_diagnostics() - before;
    check(name, d > 0 && (!sticky || e == cudaErrorLaunchFailure), "%ld diagnostic(s)%s%s", d,
          sticky ? ", sync returns " : "", sticky ? cudaGetErrorName(e) : "");
    if (sticky) cudaDeviceReset(); /* clears the sticky error (emulator) */
}

static void test_diagnostics(void) {
    int old_print = simt_print_diagnostics(0); /* provoked on purpose: counted, not printed */
    Buf<int> o(64);
    long d0 = simt_diagnostics();
    RUN(k_ub_exited, 1, 32, 0, o.d);
    expect_diag("reported: shuffle reading exited lanes", d0);
    d0 = simt_diagnostics();
    RUN(k_ub_mask, 1, 2, 0, o.d);
    expect_diag("reported: calling lane not in its mask", d0);
    d0 = simt_diagnostics();
    RUN(k_ub_divergent, 1, 64, 0, o.d);
    expect_diag("reported: __syncthreads in divergent code", d0);
    d0 = simt_diagnostics();
    RUN(k_ub_width, 1, 32, 0, o.d);
    expect_diag("reported: shuffle width not a power of two", d0);
    d0 = simt_diagnostics();
    RUN(k_partial_warp, 1, 48, 0, o.d);
    expect_diag("reported: full-mask shuffle reading past a partial warp", d0);
    d0 = simt_diagnostics();
    int host_array[4];
    RUN(k_nop, 1, 1, 0, host_array);
    expect_diag("reported: kernel argument in pageable host memory", d0);
    d0 = simt_diagnostics();
    Buf<int> o2(32);
    RUN(k_ub_deadlock, 1, 32, 0, o2.d);
    expect_diag("reported: deadlock (barrier vs __syncwarp), sticky launch failure", d0, true);
    d0 = simt_diagnostics();
    CK(cudaMemset(o.d, 0, 64 * sizeof(int)));
    cudaError_t e = cudaMemcpy(o.d, host_array, 65 * sizeof(int), cudaMemcpyHostToDevice);
    cudaGetLastError();
    check("copy past the end of a device allocation refused", e == cudaErrorInvalidValue &&
          simt_diagnostics() > d0, "%s", cudaGetErrorName(e));
    simt_print_diagnostics(old_print);
}

/* ----------------------------------------- ASan inside fibers */
__global__ void k_oob_global(float *p, int n) { p[n + threadIdx.x] = 1.0f; }
/* out of line: the object size is unknown here, so ASan (not UBSan) reports it */
__device__ __noinline__ int load_at(volatile int *p, int i) { return p[i]; }
__global__ void k_oob_stack(int *o, int i) {
    volatile int a[8];
    for (int k = 0; k < 8; k++) a[k] = k;
    o[threadIdx.x] = load_at(a, i); /* i = 8: stack-buffer-overflow on the fiber's stack */
}
__global__ void k_oob_shared(int *o) {
    MILES_DYNAMIC_SHARED(int, s);
    s[threadIdx.x] = 1; /* smem of 31 ints: thread 31 writes past it */
    __syncthreads();
    o[threadIdx.x] = s[0];
}

static int child(const char *mode) {
    Buf<float> f(100);
    Buf<int> o(32);
    if (!strcmp(mode, "--oob-global")) RUN(k_oob_global, 1, 32, 0, f.d, 99);
    if (!strcmp(mode, "--oob-stack")) RUN(k_oob_stack, 1, 32, 0, o.d, 8);
    if (!strcmp(mode, "--oob-shared")) RUN(k_oob_shared, 1, 32, 31 * sizeof(int), o.d);
    cudaDeviceSynchronize();
    return 0;
}

static void test_asan(const char *self) {
#if defined(__SANITIZE_ADDRESS__)
    const char *modes[3] = {"--oob-global", "--oob-stack", "--oob-shared"};
    const char *want[3] = {"heap-buffer-overflow", "stack-buffer-overflow", "heap-buffer-overflow"};
    for (int i = 0; i < 3; i++) {
        char cmd[512], line[512];
        snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=0 '%s' %s 2>&1", self, modes[i]);
        FILE *p = popen(cmd, "r");
        int seen = 0;
        while (p && fgets(line, sizeof line, p))
            if (strstr(line, want[i]) && strstr(line, "AddressSanitizer")) seen = 1;
        int rc = p ? pclose(p) : -1;
        char name[96];
        snprintf(name, sizeof name, "ASan in a fiber catches %s", modes[i] + 2);
        check(name, seen && rc != 0, "child exit %d, %s %s", rc, want[i], seen ? "reported" : "NOT reported");
    }
#else
    (void)self;
    printf("--   ASan-in-fiber checks need the sanitizer build (make BUILD=build-asan SAN=1 sim-test)\n");
#endif
}

int main(int argc, char **argv) {
    if (argc > 1 && !strncmp(argv[1], "--oob", 5)) return child(argv[1]);
    printf("SIMT emulator self-test (device sm_%d)\n", simt_compute_capability());
    test_index();
    test_barriers();
    test_warp();
    test_atomics();
    test_memory_kinds();
    test_numerics();
    test_config_errors();
    test_streams();
    test_graphs();
    test_mma();
    test_diagnostics();
    test_asan(argv[0]);
    check("every allocation freed", simt_live_allocations() == 0, "%ld live", simt_live_allocations());
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
