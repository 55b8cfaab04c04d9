/*
 * simt_device.h — device-side half of the SIMT emulator (included by the
 * emulator's cuda_runtime.h): qualifiers, built-in index variables,
 * barriers, warp-synchronous intrinsics, atomics, math intrinsics and the
 * kernel launch.  The scheduler behind them is tests/sim/simt_core.cpp.
 *
 * Execution model.  A launch runs block after block (in a seeded random
 * order: CUDA promises none).  Inside a block every thread is a fiber with
 * its own stack; a thread runs until it reaches a synchronization point
 * (__syncthreads, a warp collective such as __shfl_xor_sync/__any_sync/
 * __syncwarp) or returns, then the scheduler picks the next runnable thread
 * at random.  Plain loads and stores between two synchronization points are
 * therefore atomic with respect to the other threads, and every order the
 * hardware could produce at synchronization granularity is possible: a
 * missing barrier shows up as a read of stale data.
 *
 * Warp collectives follow the CUDA semantics for masks: the calling lane
 * must be in the mask; the call completes when every non-exited lane of the
 * mask has reached a collective; reading a lane that is not taking part
 * (exited, outside the mask, or past the end of a partial warp) is undefined
 * on the GPU, and here returns all-ones bits and reports a diagnostic.
 *
 * __shared__ variables are static storage (one block runs at a time); the
 * dynamic shared memory of a launch is a fresh heap buffer per block, filled
 * with 0xff bytes (NaN), so AddressSanitizer sees out-of-bounds accesses.
 */
#ifndef SIMT_DEVICE_H
#define SIMT_DEVICE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

/* ------------------------------------------------------- qualifiers */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __constant__
#define __managed__
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
/* kernels compiled for the emulator take the device paths of shared headers */
#ifndef __CUDA_ARCH__
#define __CUDA_ARCH__ 900
#endif

#define SIMT_STR2(x) #x
#define SIMT_STR(x) SIMT_STR2(x)
#define SIMT_SITE __FILE__ ":" SIMT_STR(__LINE__)

/* ------------------------------------------------ built-in variables */
extern __thread uint3 threadIdx;
extern __thread uint3 blockIdx;
extern __thread uint3 blockDim;
extern __thread uint3 gridDim;
static constexpr int warpSize = 32;

namespace simt {

/* warp collective kinds */
enum {
    W_SHFL_IDX, W_SHFL_UP, W_SHFL_DOWN, W_SHFL_XOR,
    W_ANY, W_ALL, W_BALLOT, W_SYNCWARP, W_MATCH_ANY, W_MATCH_ALL,
    W_REDUCE_ADD, W_REDUCE_MIN, W_REDUCE_MAX, W_REDUCE_AND, W_REDUCE_OR, W_REDUCE_XOR,
    W_MMA_F16, W_MMA_BF16
};
/* barrier kinds */
enum { B_SYNC, B_COUNT, B_AND, B_OR };

void syncthreads(const char *site);
int syncthreads_op(int kind, int pred, const char *site);
/* One warp collective: `bits` holds the caller's value (size bytes),
 * `arg` the source lane / delta / lane mask, `flags` is_signed for reduce. */
uint64_t warp_op(int kind, unsigned mask, uint64_t bits, int size, int arg, int width, const char *site,
                 int *pred_out = nullptr);
unsigned activemask();
void *dynamic_shared();
/* mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.f32 with c as C and D:
 * one warp collective of all 32 lanes (the fragment layouts of the PTX ISA,
 * kernels/fast.cuh); products and sums in fp32.  Needs an emulated sm_80+. */
void mma16816(float c[4], const uint32_t a[4], const uint32_t b[2], int bf16, const char *site);
void trap(const char *site);
long long clock_tick();
void count_atomic();

template <class T> static inline uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                  "warp intrinsics take values of at most 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T> static inline T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}
} // namespace simt

/* --------------------------------------------------------- barriers */
#define __syncthreads() simt::syncthreads(SIMT_SITE)
#define __syncthreads_count(p) simt::syncthreads_op(simt::B_COUNT, (p) != 0, SIMT_SITE)
#define __syncthreads_and(p) simt::syncthreads_op(simt::B_AND, (p) != 0, SIMT_SITE)
#define __syncthreads_or(p) simt::syncthreads_op(simt::B_OR, (p) != 0, SIMT_SITE)
/* one memory order here (blocks run one at a time, threads switch only at
 * synchronization points), so the fences order nothing further */
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}
static inline void __threadfence_system(void) {}
static inline void __nanosleep(unsigned) {}
#define __trap() simt::trap(SIMT_SITE)
static inline long long clock64(void) { return simt::clock_tick(); }

/* ------------------------------------------------ warp intrinsics */
namespace simt {
template <class T> static inline T shfl(int kind, unsigned mask, T v, int arg, int width, const char *site) {
    return from_bits<T>(warp_op(kind, mask, to_bits(v), (int)sizeof(T), arg, width, site));
}
} // namespace simt
#define __shfl_sync(mask, v, src, ...) simt::shfl(simt::W_SHFL_IDX, mask, v, src, simt_width(__VA_ARGS__), SIMT_SITE)
#define __shfl_up_sync(mask, v, d, ...) simt::shfl(simt::W_SHFL_UP, mask, v, (int)(d), simt_width(__VA_ARGS__), SIMT_SITE)
#define __shfl_down_sync(mask, v, d, ...) simt::shfl(simt::W_SHFL_DOWN, mask, v, (int)(d), simt_width(__VA_ARGS__), SIMT_SITE)
#define __shfl_xor_sync(mask, v, m, ...) simt::shfl(simt::W_SHFL_XOR, mask, v, m, simt_width(__VA_ARGS__), SIMT_SITE)
static inline int simt_width(void) { return 32; }
static inline int simt_width(int w) { return w; }
#define __any_sync(mask, p) ((int)simt::warp_op(simt::W_ANY, mask, (p) != 0, 4, 0, 32, SIMT_SITE))
#define __all_sync(mask, p) ((int)simt::warp_op(simt::W_ALL, mask, (p) != 0, 4, 0, 32, SIMT_SITE))
#define __ballot_sync(mask, p) ((unsigned)simt::warp_op(simt::W_BALLOT, mask, (p) != 0, 4, 0, 32, SIMT_SITE))
#define __syncwarp(...) ((void)simt::warp_op(simt::W_SYNCWARP, simt_full_mask(__VA_ARGS__), 0, 4, 0, 32, SIMT_SITE))
static inline unsigned simt_full_mask(void) { return 0xffffffffu; }
static inline unsigned simt_full_mask(unsigned m) { return m; }
static inline unsigned __activemask(void) { return simt::activemask(); }
#define __match_any_sync(mask, v) \
    ((unsigned)simt::warp_op(simt::W_MATCH_ANY, mask, simt::to_bits(v), (int)sizeof(v), 0, 32, SIMT_SITE))
#define __match_all_sync(mask, v, predp) \
    ((unsigned)simt::warp_op(simt::W_MATCH_ALL, mask, simt::to_bits(v), (int)sizeof(v), 0, 32, SIMT_SITE, predp))
/* sm80 warp reductions (unsigned / int) */
namespace simt {
template <class T> static inline T reduce(int kind, unsigned mask, T v, const char *site) {
    static_assert(sizeof(T) == 4 && std::is_integral<T>::value, "__reduce_*_sync takes int or unsigned");
    return (T)warp_op(kind, mask, (uint64_t)(uint32_t)v, 4, std::is_signed<T>::value, 32, site);
}
} // namespace simt
#define __reduce_add_sync(mask, v) simt::reduce(simt::W_REDUCE_ADD, mask, v, SIMT_SITE)
#define __reduce_min_sync(mask, v) simt::reduce(simt::W_REDUCE_MIN, mask, v, SIMT_SITE)
#define __reduce_max_sync(mask, v) simt::reduce(simt::W_REDUCE_MAX, mask, v, SIMT_SITE)
#define __reduce_and_sync(mask, v) simt::reduce(simt::W_REDUCE_AND, mask, v, SIMT_SITE)
#define __reduce_or_sync(mask, v) simt::reduce(simt::W_REDUCE_OR, mask, v, SIMT_SITE)
#define __reduce_xor_sync(mask, v) simt::reduce(simt::W_REDUCE_XOR, mask, v, SIMT_SITE)

/* -------------------------------------------------- read-only loads */
template <class T> static inline T __ldg(const T *p) { return *p; }
template <class T> static inline T __ldcg(const T *p) { return *p; }
template <class T> static inline T __ldca(const T *p) { return *p; }
template <class T> static inline T __ldcs(const T *p) { return *p; }
template <class T> static inline T __ldlu(const T *p) { return *p; }
template <class T> static inline void __stcg(T *p, T v) { *p = v; }
template <class T> static inline void __stcs(T *p, T v) { *p = v; }
template <class T> static inline void __stwt(T *p, T v) { *p = v; }

/* ------------------------------------------------------------ atomics */
/* Threads switch only at synchronization points and blocks run one at a
 * time, so a plain read-modify-write is atomic; arithmetic on integers wraps
 * (unsigned) as on the GPU. */
#define SIMT_ATOMIC(name, T, expr)                                                  \
    static inline T name(T *address, T val) {                                      \
        simt::count_atomic();                                                       \
        T old = *address;                                                           \
        *address = (expr);                                                          \
        return old;                                                                 \
    }
SIMT_ATOMIC(atomicAdd, int, (int)((unsigned)old + (unsigned)val))
SIMT_ATOMIC(atomicAdd, unsigned int, old + val)
SIMT_ATOMIC(atomicAdd, unsigned long long, old + val)
SIMT_ATOMIC(atomicAdd, float, old + val)
SIMT_ATOMIC(atomicAdd, double, old + val)
SIMT_ATOMIC(atomicSub, int, (int)((unsigned)old - (unsigned)val))
SIMT_ATOMIC(atomicSub, unsigned int, old - val)
SIMT_ATOMIC(atomicExch, int, val)
SIMT_ATOMIC(atomicExch, unsigned int, val)
SIMT_ATOMIC(atomicExch, unsigned long long, val)
SIMT_ATOMIC(atomicExch, float, val)
SIMT_ATOMIC(atomicMin, int, val < old ? val : old)
SIMT_ATOMIC(atomicMin, unsigned int, val < old ? val : old)
SIMT_ATOMIC(atomicMin, long long, val < old ? val : old)
SIMT_ATOMIC(atomicMin, unsigned long long, val < old ? val : old)
SIMT_ATOMIC(atomicMax, int, val > old ? val : old)
SIMT_ATOMIC(atomicMax, unsigned int, val > old ? val : old)
SIMT_ATOMIC(atomicMax, long long, val > old ? val : old)
SIMT_ATOMIC(atomicMax, unsigned long long, val > old ? val : old)
SIMT_ATOMIC(atomicAnd, int, old & val)
SIMT_ATOMIC(atomicAnd, unsigned int, old & val)
SIMT_ATOMIC(atomicAnd, unsigned long long, old & val)
SIMT_ATOMIC(atomicOr, int, old | val)
SIMT_ATOMIC(atomicOr, unsigned int, old | val)
SIMT_ATOMIC(atomicOr, unsigned long long, old | val)
SIMT_ATOMIC(atomicXor, int, old ^ val)
SIMT_ATOMIC(atomicXor, unsigned int, old ^ val)
SIMT_ATOMIC(atomicXor, unsigned long long, old ^ val)
/* ((old >= val) ? 0 : (old+1)) and ((old == 0) || (old > val)) ? val : (old-1) */
SIMT_ATOMIC(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
SIMT_ATOMIC(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef SIMT_ATOMIC
#define SIMT_CAS(T)                                                                 \
    static inline T atomicCAS(T *address, T compare, T val) {                      \
        simt::count_atomic();                                                       \
        T old = *address;                                                           \
        if (old == compare) *address = val;                                         \
        return old;                                                                 \
    }
SIMT_CAS(int)
SIMT_CAS(unsigned int)
SIMT_CAS(unsigned long long)
SIMT_CAS(unsigned short)
#undef SIMT_CAS
/* scoped variants: one scope here */
#define atomicAdd_block atomicAdd
#define atomicAdd_system atomicAdd
#define atomicCAS_block atomicCAS
#define atomicCAS_system atomicCAS
#define atomicExch_block atomicExch
#define atomicMax_block atomicMax
#define atomicMin_block atomicMin

/* --------------------------------------------------- math intrinsics */
/* Correctly rounded single operations: the result is stored through a
 * volatile so the host compiler cannot fuse it with a neighbouring add into
 * an FMA (the guarantee __fmul_rn/__fadd_rn give in device code). */
namespace simt {
static inline float rn(float v) { volatile float r = v; return r; }
static inline double rnd(double v) { volatile double r = v; return r; }
static inline float ftz(float v) { return fabsf(v) < 1.17549435e-38f ? copysignf(0.0f, v) : v; }
/* float -> int conversions of the GPU: saturate, NaN -> 0 */
template <class I> static inline I f2i(double r) {
    if (r != r) return 0;
    if (r <= (double)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    if (r >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    return (I)r;
}
} // namespace simt
#define __fadd_rn(a, b) simt::rn((float)(a) + (float)(b))
#define __fsub_rn(a, b) simt::rn((float)(a) - (float)(b))
#define __fmul_rn(a, b) simt::rn((float)(a) * (float)(b))
#define __fdiv_rn(a, b) simt::rn((float)(a) / (float)(b))
#define __frcp_rn(a) simt::rn(1.0f / (float)(a))
#define __fsqrt_rn(a) sqrtf((float)(a))
#define __fmaf_rn(a, b, c) fmaf((float)(a), (float)(b), (float)(c))
#define __fma_rn(a, b, c) fma((double)(a), (double)(b), (double)(c))
#define __dadd_rn(a, b) simt::rnd((double)(a) + (double)(b))
#define __dmul_rn(a, b) simt::rnd((double)(a) * (double)(b))
#define __ddiv_rn(a, b) simt::rnd((double)(a) / (double)(b))
#define __frsqrt_rn(a) ((float)(1.0 / sqrt((double)(float)(a))))
/* Fast-math intrinsics: the GPU's algorithm (ex2.approx(x * log2 e), ...),
 * with host exp2f/log2f standing in for the approximate hardware units
 * (whose error of ~2 ulp is not reproduced).  Flush-to-zero as on the GPU. */
#define __expf(x) simt::ftz(exp2f(__fmul_rn((float)(x), 1.44269504088896341f)))
#define __exp10f(x) simt::ftz(exp2f(__fmul_rn((float)(x), 3.32192809488736234f)))
#define __logf(x) __fmul_rn(log2f(simt::ftz((float)(x))), 0.693147180559945309f)
#define __log2f(x) log2f(simt::ftz((float)(x)))
#define __log10f(x) __fmul_rn(log2f(simt::ftz((float)(x))), 0.301029995663981195f)
#define __sinf(x) sinf((float)(x))
#define __cosf(x) cosf((float)(x))
#define __tanf(x) tanf((float)(x))
#define __powf(x, y) simt::ftz(exp2f(__fmul_rn((float)(y), log2f(simt::ftz((float)(x))))))
/* __fdividef: x/y for |y| in [2^-126, 2^126], 0 for 2^126 < |y| < 2^128 */
static inline float simt_fdividef(float x, float y) {
    float ay = fabsf(y);
    if (ay > 8.50705917e37f && ay < INFINITY) return 0.0f;
    return __fmul_rn(x, 1.0f / y);
}
#define __fdividef(x, y) simt_fdividef((float)(x), (float)(y))
#define fdividef(x, y) simt_fdividef((float)(x), (float)(y))
static inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; } /* NaN -> 0 */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
static inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.707106781186547524f); }
static inline double normcdf(double x) { return 0.5 * erfc(-x * 0.707106781186547524); }

#define __float2int_rn(x) simt::f2i<int>(nearbyint((double)(float)(x)))
#define __float2int_rz(x) simt::f2i<int>(trunc((double)(float)(x)))
#define __float2int_rd(x) simt::f2i<int>(floor((double)(float)(x)))
#define __float2int_ru(x) simt::f2i<int>(ceil((double)(float)(x)))
#define __float2uint_rn(x) simt::f2i<unsigned>(nearbyint((double)(float)(x)))
#define __float2uint_rz(x) simt::f2i<unsigned>(trunc((double)(float)(x)))
#define __float2ll_rn(x) simt::f2i<long long>(nearbyint((double)(float)(x)))
#define __double2int_rn(x) simt::f2i<int>(nearbyint((double)(x)))
#define __double2float_rn(x) ((float)(double)(x))
#define __int2float_rn(x) ((float)(int)(x))
#define __uint2float_rn(x) ((float)(unsigned)(x))
static inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
static inline unsigned __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
static inline float __int_as_float(int i) { float x; memcpy(&x, &i, 4); return x; }
static inline float __uint_as_float(unsigned i) { float x; memcpy(&x, &i, 4); return x; }
static inline long long __double_as_longlong(double x) { long long i; memcpy(&i, &x, 8); return i; }
static inline double __longlong_as_double(long long i) { double x; memcpy(&x, &i, 8); return x; }

static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
static inline int __mul24(int a, int b) { return (int)(((long long)(a << 8 >> 8) * (b << 8 >> 8))); }
static inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }
static inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
static inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
    s &= 31;
    return s ? (hi << s) | (lo >> (32 - s)) : hi;
}
static inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
    s &= 31;
    return s ? (lo >> s) | (hi << (32 - s)) : lo;
}
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

/* the device's overloaded min/max (host C++ has only std::min/std::max) */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }

/* ---------------------------------------------- dynamic shared memory */
/* `extern __shared__ T name[]` has no host spelling; kernels declare it
 * with MILES_DYNAMIC_SHARED (kernels/common.cuh), which maps to this. */
#define SIMT_DYNAMIC_SHARED(T, name) T *name = reinterpret_cast<T *>(simt::dynamic_shared())

/* ------------------------------------------------------------- launch */
namespace simt {
struct LaunchDesc {
    const char *name;     /* the kernel as written at the launch site */
    const void *func;     /* its address (attributes) */
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    void (*run)(void *);  /* runs the kernel body for the current thread */
    void (*destroy)(void *);
    void *ctx;
};
/* Validates the configuration (the error is returned and becomes the
 * "last error", as a failed <<<>>> launch), then enqueues the grid. */
cudaError_t enqueue_launch(const LaunchDesc &d);
/* Diagnostic when a pointer argument is not device-accessible memory. */
void check_arg_pointer(const char *kernel, int index, const void *p);

template <class F, class Tup> struct KernelCall {
    F f;
    Tup args;
    static void run(void *p) {
        KernelCall *c = (KernelCall *)p;
        std::apply(c->f, c->args); /* parameters are copies per thread, as on the GPU */
    }
    static void destroy(void *p) { delete (KernelCall *)p; }
};

template <class T>
static inline void check_arg([[maybe_unused]] const char *name, [[maybe_unused]] int i, [[maybe_unused]] const T &v) {
    if constexpr (std::is_pointer<T>::value && !std::is_function<std::remove_pointer_t<T>>::value)
        check_arg_pointer(name, i, (const void *)v);
}
template <class Tup, size_t... I>
static inline void check_args([[maybe_unused]] const char *name, [[maybe_unused]] const Tup &t,
                              std::index_sequence<I...>) {
    (check_arg(name, (int)I, std::get<I>(t)), ...);
}
} // namespace simt

/* kernel<<<grid, block, smem, stream>>>(args...) for the emulator: the
 * arguments are converted to the parameter types at the call, as for a real
 * launch (the parameter pack is deduced from the kernel alone; NULL and
 * narrowing conversions behave as in a direct call), and pointer arguments
 * must point to device-accessible memory (or be NULL). */
namespace simt {
template <class T> struct ident {
    typedef T type;
};
} // namespace simt
template <class... P>
static inline cudaError_t simt_launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
                                      cudaStream_t stream, typename simt::ident<P>::type... args) {
    typedef std::tuple<std::decay_t<P>...> Tup;
    typedef simt::KernelCall<void (*)(P...), Tup> Call;
    Call *c = new Call{kernel, Tup(args...)};
    simt::check_args(name, c->args, std::index_sequence_for<P...>{});
    simt::LaunchDesc d;
    d.name = name;
    d.func = (const void *)kernel;
    d.grid = grid;
    d.block = block;
    d.smem = smem;
    d.stream = stream;
    d.run = &Call::run;
    d.destroy = &Call::destroy;
    d.ctx = c;
    return simt::enqueue_launch(d);
}

#endif
