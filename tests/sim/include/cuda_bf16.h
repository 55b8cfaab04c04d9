/*
 * cuda_bf16.h — bfloat16 for the SIMT emulator (the subset of CUDA's
 * cuda_bf16.h that kernels and tests use).  float -> bf16 rounds to nearest
 * even (overflow to +-Inf) like cvt.rn.bf16.f32; NaN becomes 0x7fff.
 * Arithmetic computes in float and rounds once (float's 24 bits exceed
 * 2*8+2, so + - * / are correctly rounded).
 */
#ifndef SIMT_CUDA_BF16_H
#define SIMT_CUDA_BF16_H

#include "cuda_fp16.h"

namespace simt {
static inline uint16_t f32_to_bf16(float f, int mode) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
    const bool neg = (u >> 31) != 0;
    const uint32_t rem = u & 0xffffu, kept = u >> 16;
    bool up;
    switch (mode) {
    case RZ: up = false; break;
    case RU: up = !neg && rem; break;
    case RD: up = neg && rem; break;
    default: up = rem > 0x8000u || (rem == 0x8000u && (kept & 1));
    }
    if ((u & 0x7fffffffu) == 0x7f800000u) up = false;
    uint32_t r = kept + (up ? 1 : 0);
    /* rounding toward zero (or away from the overflow side) stops at the largest finite */
    if ((r & 0x7f80u) == 0x7f80u && (kept & 0x7f80u) != 0x7f80u &&
        (mode == RZ || (mode == RD && !neg) || (mode == RU && neg)))
        r = kept;
    return (uint16_t)r;
}
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
} // namespace simt

struct __nv_bfloat16_raw {
    unsigned short x;
};
struct __nv_bfloat162_raw {
    unsigned short x, y;
};

struct __align__(2) __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    __nv_bfloat16(const __nv_bfloat16_raw &r) : __x(r.x) {}
    __nv_bfloat16(float f) : __x(simt::f32_to_bf16(f, simt::RN)) {}
    __nv_bfloat16(double d) : __x(simt::f32_to_bf16((float)d, simt::RN)) {}
    __nv_bfloat16 &operator=(const __nv_bfloat16_raw &r) {
        __x = r.x;
        return *this;
    }
    operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
    operator float() const { return simt::bf16_to_f32(__x); }
};
typedef __nv_bfloat16 nv_bfloat16;

struct __align__(4) __nv_bfloat162 {
    __nv_bfloat16 x, y;
    __nv_bfloat162() = default;
    __nv_bfloat162(const __nv_bfloat16 &a, const __nv_bfloat16 &b) : x(a), y(b) {}
    __nv_bfloat162(const __nv_bfloat162_raw &r) {
        x.__x = r.x;
        y.__x = r.y;
    }
    operator __nv_bfloat162_raw() const { return __nv_bfloat162_raw{x.__x, y.__x}; }
};
typedef __nv_bfloat162 nv_bfloat162;

static inline __nv_bfloat16 simt_mkbf(uint16_t b) {
    __nv_bfloat16 h;
    h.__x = b;
    return h;
}
static inline __nv_bfloat16 __float2bfloat16(float a) { return simt_mkbf(simt::f32_to_bf16(a, simt::RN)); }
static inline __nv_bfloat16 __float2bfloat16_rn(float a) { return simt_mkbf(simt::f32_to_bf16(a, simt::RN)); }
static inline __nv_bfloat16 __float2bfloat16_rz(float a) { return simt_mkbf(simt::f32_to_bf16(a, simt::RZ)); }
static inline __nv_bfloat16 __float2bfloat16_rd(float a) { return simt_mkbf(simt::f32_to_bf16(a, simt::RD)); }
static inline __nv_bfloat16 __float2bfloat16_ru(float a) { return simt_mkbf(simt::f32_to_bf16(a, simt::RU)); }
static inline float __bfloat162float(__nv_bfloat16 a) { return simt::bf16_to_f32(a.__x); }
static inline __nv_bfloat16 __double2bfloat16(double a) { return __float2bfloat16_rn((float)a); }
static inline __nv_bfloat162 __float2bfloat162_rn(float a) {
    return __nv_bfloat162(__float2bfloat16_rn(a), __float2bfloat16_rn(a));
}
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
    return __nv_bfloat162(__float2bfloat16_rn(a), __float2bfloat16_rn(b));
}
static inline float2 __bfloat1622float2(__nv_bfloat162 a) {
    return make_float2(__bfloat162float(a.x), __bfloat162float(a.y));
}
static inline __nv_bfloat162 __float22bfloat162_rn(float2 a) { return __floats2bfloat162_rn(a.x, a.y); }
static inline float __low2float(__nv_bfloat162 a) { return __bfloat162float(a.x); }
static inline float __high2float(__nv_bfloat162 a) { return __bfloat162float(a.y); }
static inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 a) { return a.x; }
static inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 a) { return a.y; }
static inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return __nv_bfloat162(a, b); }
static inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 a) { return __nv_bfloat162(a, a); }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return simt_mkbf(u); }

#define SIMT_B2(op, f) static inline __nv_bfloat16 op(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16_rn(f); }
SIMT_B2(__hadd, __bfloat162float(a) + __bfloat162float(b))
SIMT_B2(__hsub, __bfloat162float(a) - __bfloat162float(b))
SIMT_B2(__hmul, __bfloat162float(a) * __bfloat162float(b))
SIMT_B2(__hdiv, __bfloat162float(a) / __bfloat162float(b))
SIMT_B2(__hmax, fmaxf(__bfloat162float(a), __bfloat162float(b)))
SIMT_B2(__hmin, fminf(__bfloat162float(a), __bfloat162float(b)))
#undef SIMT_B2
static inline __nv_bfloat16 __hfma(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) {
    return __float2bfloat16_rn(
        (float)fma((double)__bfloat162float(a), (double)__bfloat162float(b), (double)__bfloat162float(c)));
}
static inline __nv_bfloat16 __hneg(__nv_bfloat16 a) { return simt_mkbf(a.__x ^ 0x8000u); }
static inline __nv_bfloat16 __habs(__nv_bfloat16 a) { return simt_mkbf(a.__x & 0x7fffu); }
static inline bool __hisnan(__nv_bfloat16 a) { return (a.__x & 0x7fffu) > 0x7f80u; }
static inline int __hisinf(__nv_bfloat16 a) { return (a.__x & 0x7fffu) == 0x7f80u ? ((a.__x & 0x8000u) ? -1 : 1) : 0; }
static inline __nv_bfloat162 __hadd2(__nv_bfloat162 a, __nv_bfloat162 b) {
    return __nv_bfloat162(__hadd(a.x, b.x), __hadd(a.y, b.y));
}
static inline __nv_bfloat162 __hmul2(__nv_bfloat162 a, __nv_bfloat162 b) {
    return __nv_bfloat162(__hmul(a.x, b.x), __hmul(a.y, b.y));
}
static inline __nv_bfloat162 __hfma2(__nv_bfloat162 a, __nv_bfloat162 b, __nv_bfloat162 c) {
    return __nv_bfloat162(__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y));
}
static inline __nv_bfloat16 operator+(__nv_bfloat16 a, __nv_bfloat16 b) { return __hadd(a, b); }
static inline __nv_bfloat16 operator-(__nv_bfloat16 a, __nv_bfloat16 b) { return __hsub(a, b); }
static inline __nv_bfloat16 operator*(__nv_bfloat16 a, __nv_bfloat16 b) { return __hmul(a, b); }
static inline __nv_bfloat16 operator/(__nv_bfloat16 a, __nv_bfloat16 b) { return __hdiv(a, b); }
static inline __nv_bfloat16 operator-(__nv_bfloat16 a) { return __hneg(a); }
static inline __nv_bfloat16 &operator+=(__nv_bfloat16 &a, __nv_bfloat16 b) { return a = __hadd(a, b); }
static inline bool operator<(__nv_bfloat16 a, __nv_bfloat16 b) { return __bfloat162float(a) < __bfloat162float(b); }
static inline bool operator>(__nv_bfloat16 a, __nv_bfloat16 b) { return __bfloat162float(a) > __bfloat162float(b); }
static inline bool operator==(__nv_bfloat16 a, __nv_bfloat16 b) { return __bfloat162float(a) == __bfloat162float(b); }
static inline __nv_bfloat162 operator+(__nv_bfloat162 a, __nv_bfloat162 b) { return __hadd2(a, b); }
static inline __nv_bfloat162 operator*(__nv_bfloat162 a, __nv_bfloat162 b) { return __hmul2(a, b); }

static inline __nv_bfloat162 atomicAdd(__nv_bfloat162 *address, __nv_bfloat162 val) {
    simt::count_atomic();
    __nv_bfloat162 old = *address;
    *address = __hadd2(old, val);
    return old;
}
static inline __nv_bfloat16 atomicAdd(__nv_bfloat16 *address, __nv_bfloat16 val) {
    simt::count_atomic();
    __nv_bfloat16 old = *address;
    *address = __hadd(old, val);
    return old;
}

#endif
