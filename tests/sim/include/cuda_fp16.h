/*
 * cuda_fp16.h — IEEE binary16 for the SIMT emulator (the subset of CUDA's
 * cuda_fp16.h that kernels and tests use).  Conversions round as the GPU's
 * cvt instructions do: float -> half round-to-nearest-even (_rn, the
 * default), toward zero (_rz), down (_rd), up (_ru); overflow gives +-Inf
 * under _rn (cvt.rn.f16.f32 without .satfinite); NaN becomes the canonical
 * 0x7fff.  Arithmetic on halves computes in float and rounds once: exact for
 * + - * / because float has more than 2*11+2 significand bits.
 */
#ifndef SIMT_CUDA_FP16_H
#define SIMT_CUDA_FP16_H

#include "cuda_runtime.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

namespace simt {
enum { RN, RZ, RD, RU };

/* float -> binary16 with the given rounding, on the exact value m * 2^(exp-23)
 * (m the 24-bit significand): half keeps 11 significant bits down to 2^-14,
 * below that a fixed quantum of 2^-24 (subnormals). */
static inline uint16_t f32_to_f16(float f, int mode) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return 0x7fffu; /* NaN: canonical, as cvt.rn.f16.f32 */
    if (a == 0x7f800000u) return sign | 0x7c00u;
    if (a == 0) return sign;
    const bool neg = sign != 0;
    int exp;
    uint64_t m;
    if (a >= 0x00800000u) {
        exp = (int)(a >> 23) - 127;
        m = (a & 0x7fffffu) | 0x800000u;
    } else {
        exp = -126;
        m = a;
    }
    const int shift = exp >= -14 ? 13 : -1 - exp; /* low bits of m below the quantum */
    uint64_t kept, rem;
    bool up_rn;
    if (shift >= 40) { /* far below 2^-25: rounds to 0 (or the smallest subnormal upward) */
        kept = 0;
        rem = m;
        up_rn = false;
    } else {
        kept = m >> shift;
        rem = m & ((1ull << shift) - 1);
        const uint64_t half = 1ull << (shift - 1);
        up_rn = rem > half || (rem == half && (kept & 1));
    }
    const bool inexact = rem != 0;
    const bool up = mode == RN ? up_rn : mode == RZ ? false : mode == RU ? (!neg && inexact) : (neg && inexact);
    uint64_t r = kept + (up ? 1 : 0);
    if (exp < -14) return (uint16_t)(sign | r); /* subnormal; 0x400 is the smallest normal */
    int e = exp;
    if (r == 0x800u) { /* carried into the next binade */
        r = 0x400u;
        e++;
    }
    if (e > 15) { /* overflow: Inf, or the largest finite value when rounding toward it */
        if (mode == RZ || (mode == RD && !neg) || (mode == RU && neg)) return sign | 0x7bffu;
        return sign | 0x7c00u;
    }
    return (uint16_t)(sign | ((uint32_t)(e + 15) << 10) | (uint32_t)(r & 0x3ffu));
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, u;
    if (e == 0) {
        if (m == 0) u = s;
        else { /* subnormal: normalize */
            int sh = 0;
            while (!(m & 0x400u)) m <<= 1, sh++;
            u = s | ((uint32_t)(113 - sh) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        u = s | 0x7f800000u | (m << 13);
    } else {
        u = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
} // namespace simt

struct __half_raw {
    unsigned short x;
};
struct __half2_raw {
    unsigned short x, y;
};

struct __align__(2) __half {
    unsigned short __x;
    __half() = default;
    __half(const __half_raw &r) : __x(r.x) {}
    __half(float f) : __x(simt::f32_to_f16(f, simt::RN)) {}
    __half(double d) : __x(simt::f32_to_f16((float)d, simt::RN)) {}
    __half(int i) : __x(simt::f32_to_f16((float)i, simt::RN)) {}
    __half &operator=(const __half_raw &r) {
        __x = r.x;
        return *this;
    }
    operator __half_raw() const { return __half_raw{__x}; }
    operator float() const { return simt::f16_to_f32(__x); }
};
typedef __half half;

struct __align__(4) __half2 {
    __half x, y;
    __half2() = default;
    __half2(const __half &a, const __half &b) : x(a), y(b) {}
    __half2(const __half2_raw &r) {
        x.__x = r.x;
        y.__x = r.y;
    }
    operator __half2_raw() const { return __half2_raw{x.__x, y.__x}; }
};
typedef __half2 half2;

static inline __half simt_mkh(uint16_t b) {
    __half h;
    h.__x = b;
    return h;
}

/* ---------------------------------------------------------- conversions */
static inline __half __float2half(float a) { return simt_mkh(simt::f32_to_f16(a, simt::RN)); }
static inline __half __float2half_rn(float a) { return simt_mkh(simt::f32_to_f16(a, simt::RN)); }
static inline __half __float2half_rz(float a) { return simt_mkh(simt::f32_to_f16(a, simt::RZ)); }
static inline __half __float2half_rd(float a) { return simt_mkh(simt::f32_to_f16(a, simt::RD)); }
static inline __half __float2half_ru(float a) { return simt_mkh(simt::f32_to_f16(a, simt::RU)); }
static inline float __half2float(__half a) { return simt::f16_to_f32(a.__x); }
static inline __half __double2half(double a) { return __float2half_rn((float)a); }
static inline __half __int2half_rn(int i) { return __float2half_rn((float)i); }
static inline int __half2int_rn(__half h) { return __float2int_rn(__half2float(h)); }
static inline int __half2int_rz(__half h) { return __float2int_rz(__half2float(h)); }
static inline __half2 __float2half2_rn(float a) { return __half2(__float2half_rn(a), __float2half_rn(a)); }
static inline __half2 __floats2half2_rn(float a, float b) { return __half2(__float2half_rn(a), __float2half_rn(b)); }
static inline float2 __half22float2(__half2 a) { return make_float2(__half2float(a.x), __half2float(a.y)); }
static inline __half2 __float22half2_rn(float2 a) { return __floats2half2_rn(a.x, a.y); }
static inline float __low2float(__half2 a) { return __half2float(a.x); }
static inline float __high2float(__half2 a) { return __half2float(a.y); }
static inline __half __low2half(__half2 a) { return a.x; }
static inline __half __high2half(__half2 a) { return a.y; }
static inline __half2 __halves2half2(__half a, __half b) { return __half2(a, b); }
static inline __half2 __half2half2(__half a) { return __half2(a, a); }
static inline __half2 __lows2half2(__half2 a, __half2 b) { return __half2(a.x, b.x); }
static inline __half2 __highs2half2(__half2 a, __half2 b) { return __half2(a.y, b.y); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline short __half_as_short(__half h) { return (short)h.__x; }
static inline __half __ushort_as_half(unsigned short u) { return simt_mkh(u); }
static inline __half __short_as_half(short s) { return simt_mkh((uint16_t)s); }

/* ----------------------------------------------------------- arithmetic */
#define SIMT_H2(op, f) static inline __half op(__half a, __half b) { return __float2half_rn(f); }
SIMT_H2(__hadd, __half2float(a) + __half2float(b))
SIMT_H2(__hsub, __half2float(a) - __half2float(b))
SIMT_H2(__hmul, __half2float(a) * __half2float(b))
SIMT_H2(__hdiv, __half2float(a) / __half2float(b))
SIMT_H2(__hmax, fmaxf(__half2float(a), __half2float(b)))
SIMT_H2(__hmin, fminf(__half2float(a), __half2float(b)))
#undef SIMT_H2
static inline __half __hfma(__half a, __half b, __half c) {
    return __float2half_rn((float)fma((double)__half2float(a), (double)__half2float(b), (double)__half2float(c)));
}
static inline __half __hneg(__half a) { return simt_mkh(a.__x ^ 0x8000u); }
static inline __half __habs(__half a) { return simt_mkh(a.__x & 0x7fffu); }
static inline bool __hisnan(__half a) { return (a.__x & 0x7fffu) > 0x7c00u; }
static inline int __hisinf(__half a) { return (a.__x & 0x7fffu) == 0x7c00u ? ((a.__x & 0x8000u) ? -1 : 1) : 0; }
static inline bool __heq(__half a, __half b) { return __half2float(a) == __half2float(b); }
static inline bool __hne(__half a, __half b) { return __half2float(a) != __half2float(b) && !__hisnan(a) && !__hisnan(b); }
static inline bool __hlt(__half a, __half b) { return __half2float(a) < __half2float(b); }
static inline bool __hle(__half a, __half b) { return __half2float(a) <= __half2float(b); }
static inline bool __hgt(__half a, __half b) { return __half2float(a) > __half2float(b); }
static inline bool __hge(__half a, __half b) { return __half2float(a) >= __half2float(b); }
static inline __half2 __hadd2(__half2 a, __half2 b) { return __half2(__hadd(a.x, b.x), __hadd(a.y, b.y)); }
static inline __half2 __hsub2(__half2 a, __half2 b) { return __half2(__hsub(a.x, b.x), __hsub(a.y, b.y)); }
static inline __half2 __hmul2(__half2 a, __half2 b) { return __half2(__hmul(a.x, b.x), __hmul(a.y, b.y)); }
static inline __half2 __h2div(__half2 a, __half2 b) { return __half2(__hdiv(a.x, b.x), __hdiv(a.y, b.y)); }
static inline __half2 __hfma2(__half2 a, __half2 b, __half2 c) {
    return __half2(__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y));
}
static inline __half2 __hmax2(__half2 a, __half2 b) { return __half2(__hmax(a.x, b.x), __hmax(a.y, b.y)); }
static inline __half2 __hmin2(__half2 a, __half2 b) { return __half2(__hmin(a.x, b.x), __hmin(a.y, b.y)); }
static inline __half hsqrt(__half a) { return __float2half_rn(sqrtf(__half2float(a))); }
static inline __half hexp(__half a) { return __float2half_rn(expf(__half2float(a))); }
static inline __half hrsqrt(__half a) { return __float2half_rn(1.0f / sqrtf(__half2float(a))); }

static inline __half operator+(__half a, __half b) { return __hadd(a, b); }
static inline __half operator-(__half a, __half b) { return __hsub(a, b); }
static inline __half operator*(__half a, __half b) { return __hmul(a, b); }
static inline __half operator/(__half a, __half b) { return __hdiv(a, b); }
static inline __half operator-(__half a) { return __hneg(a); }
static inline __half &operator+=(__half &a, __half b) { return a = __hadd(a, b); }
static inline __half &operator-=(__half &a, __half b) { return a = __hsub(a, b); }
static inline __half &operator*=(__half &a, __half b) { return a = __hmul(a, b); }
static inline bool operator==(__half a, __half b) { return __heq(a, b); }
static inline bool operator!=(__half a, __half b) { return !__heq(a, b); }
static inline bool operator<(__half a, __half b) { return __hlt(a, b); }
static inline bool operator>(__half a, __half b) { return __hgt(a, b); }
static inline bool operator<=(__half a, __half b) { return __hle(a, b); }
static inline bool operator>=(__half a, __half b) { return __hge(a, b); }
static inline __half2 operator+(__half2 a, __half2 b) { return __hadd2(a, b); }
static inline __half2 operator-(__half2 a, __half2 b) { return __hsub2(a, b); }
static inline __half2 operator*(__half2 a, __half2 b) { return __hmul2(a, b); }

/* atomics on halves (sm70+) */
static inline __half2 atomicAdd(__half2 *address, __half2 val) {
    simt::count_atomic();
    __half2 old = *address;
    *address = __hadd2(old, val);
    return old;
}
static inline __half atomicAdd(__half *address, __half val) {
    simt::count_atomic();
    __half old = *address;
    *address = __hadd(old, val);
    return old;
}

#define CUDART_INF_FP16 __ushort_as_half((unsigned short)0x7C00U)
#define CUDART_NAN_FP16 __ushort_as_half((unsigned short)0x7FFFU)
#define CUDART_MAX_NORMAL_FP16 __ushort_as_half((unsigned short)0x7BFFU)

#endif
