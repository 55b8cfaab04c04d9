/*
 * fast.cuh — device helpers of the 16-bit ("fast") path: fp16/bf16 storage
 * with fp32 math, 128-bit vector loads, the dropout keep test on a device
 * RNG state, and the m16n8k16 tensor-core MMA.
 *
 * Storage types are passed around as uint16_t bits; DT is MILES_CUDA_F16 or
 * MILES_CUDA_BF16 (cuda_ops.h) as a template argument, so one kernel source
 * serves both.  Conversions round to nearest even (fp32 -> bf16 by bit
 * arithmetic, identical on every architecture and in the emulator: NaN ->
 * 0x7fff, overflow -> Inf; fp32 -> fp16 with __float2half_rn).
 *
 * The MMA (miles_mma16816) is `mma.sync.aligned.m16n8k16.row.col.f32.{bf16,
 * f16}` on sm_80+, two m16n8k8 on sm_75 (fp16), and a portable warp-shuffle
 * version elsewhere (sm_70, and the SIMT emulator when it emulates a device
 * below sm_80).  Fragment layouts (PTX ISA, "Matrix Fragments for
 * mma.m16n8k16 with floating point type"), with g = lane / 4, t = lane % 4,
 * two 16-bit values per 32-bit register, the lower k (or column) in the low
 * half:
 *   A (16 x 16, row):  a0 = A[g][2t..2t+1]    a1 = A[g+8][2t..2t+1]
 *                      a2 = A[g][2t+8..2t+9]  a3 = A[g+8][2t+8..2t+9]
 *   B (16 x 8, col):   b0 = B[2t..2t+1][g]    b1 = B[2t+8..2t+9][g]
 *   C/D (16 x 8, f32): c0, c1 = C[g][2t], C[g][2t+1]; c2, c3 = C[g+8][2t], C[g+8][2t+1]
 * So the C fragments of two neighbouring n-tiles, packed to 16 bits, are the
 * A fragment of the k-block they span (used to feed P into P @ V).
 */
#ifndef MILES_FAST_CUH
#define MILES_FAST_CUH

#include "common.cuh"
#include "philox.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

/* ----------------------------------------------------------- conversion */
template <int DT> __device__ __forceinline__ uint16_t miles_f2h(float x) {
    if (DT == MILES_CUDA_BF16) {
        uint32_t u = __float_as_uint(x);
        if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu; /* NaN */
        u += 0x7fffu + ((u >> 16) & 1u);                     /* round to nearest even */
        return (uint16_t)(u >> 16);
    } else {
        return __half_as_ushort(__float2half_rn(x));
    }
}
template <int DT> __device__ __forceinline__ float miles_h2f(uint16_t h) {
    if (DT == MILES_CUDA_BF16) return __uint_as_float((uint32_t)h << 16);
    return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ uint32_t miles_pack2(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }
template <int DT> __device__ __forceinline__ uint32_t miles_pack2f(float lo, float hi) {
    return miles_pack2(miles_f2h<DT>(lo), miles_f2h<DT>(hi));
}

/* ------------------------------------------------------- vector access */
/* 8 consecutive elements (VEC == 8: one 16-byte load, p 16-byte aligned). */
template <int DT, int VEC> __device__ __forceinline__ void miles_load_h(float *v, const uint16_t *p) {
    if (VEC == 8) {
        uint4 q = *reinterpret_cast<const uint4 *>(p);
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            v[2 * i] = miles_h2f<DT>((uint16_t)(w[i] & 0xffffu));
            v[2 * i + 1] = miles_h2f<DT>((uint16_t)(w[i] >> 16));
        }
    } else {
#pragma unroll
        for (int i = 0; i < VEC; i++) v[i] = miles_h2f<DT>(p[i]);
    }
}
template <int DT, int VEC> __device__ __forceinline__ void miles_store_h(uint16_t *p, const float *v) {
    if (VEC == 8) {
        uint4 q;
        q.x = miles_pack2f<DT>(v[0], v[1]);
        q.y = miles_pack2f<DT>(v[2], v[3]);
        q.z = miles_pack2f<DT>(v[4], v[5]);
        q.w = miles_pack2f<DT>(v[6], v[7]);
        *reinterpret_cast<uint4 *>(p) = q;
    } else {
#pragma unroll
        for (int i = 0; i < VEC; i++) p[i] = miles_f2h<DT>(v[i]);
    }
}
template <int VEC> __device__ __forceinline__ void miles_load_f(float *v, const float *p) {
    if (VEC == 8) {
        float4 a = *reinterpret_cast<const float4 *>(p), b = *reinterpret_cast<const float4 *>(p + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
#pragma unroll
        for (int i = 0; i < VEC; i++) v[i] = p[i];
    }
}
template <int VEC> __device__ __forceinline__ void miles_store_f(float *p, const float *v) {
    if (VEC == 8) {
        *reinterpret_cast<float4 *>(p) = make_float4(v[0], v[1], v[2], v[3]);
        *reinterpret_cast<float4 *>(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
    } else {
#pragma unroll
        for (int i = 0; i < VEC; i++) p[i] = v[i];
    }
}

/* -------------------------------------------------------------- dropout */
/* The dropout parameters with the (seed, step) taken from device memory
 * when `rng` is given (rng[0] = seed, rng[1] = step: a CUDA graph replays
 * with the step of the replay), else from d itself. */
__device__ __forceinline__ MilesDropDev miles_drop_resolve(MilesDropDev d, const uint64_t *rng) {
    if (rng) {
        d.seed = rng[0];
        d.step = rng[1];
    }
    return d;
}
/* keep[0..VEC) of the elements i0 .. i0+VEC-1 (the CPU's mapping): one
 * Philox call per aligned group of 4. */
template <int VEC> __device__ __forceinline__ void miles_keep_vec(bool *keep, const MilesDropDev &d, uint64_t i0) {
    if (VEC % 4 == 0 && (i0 & 3) == 0) {
#pragma unroll
        for (int g = 0; g < VEC / 4; g++) {
            float u[4];
            miles_dropout_uniform4_dev(u, d.seed, d.step, d.tensor_id, (i0 >> 2) + g);
#pragma unroll
            for (int l = 0; l < 4; l++) keep[4 * g + l] = u[l] >= d.p;
        }
    } else {
#pragma unroll
        for (int i = 0; i < VEC; i++) keep[i] = miles_dropout_keep(d, i0 + i);
    }
}

/* ---------------------------------------------------------------- MMA */
/* Portable m16n8k16 from the layouts above: each lane gathers the two A
 * rows and two B columns it needs with shuffles and accumulates in fp32. */
template <int DT>
__device__ __forceinline__ void miles_mma16816_portable(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    float acc[4] = {c[0], c[1], c[2], c[3]};
    for (int tp = 0; tp < 4; tp++) {
        const int la = g * 4 + tp, lb0 = (2 * t) * 4 + tp, lb1 = (2 * t + 1) * 4 + tp;
        uint32_t r0 = __shfl_sync(0xffffffffu, a[0], la); /* row g,   k = 2tp, 2tp+1 */
        uint32_t r1 = __shfl_sync(0xffffffffu, a[1], la); /* row g+8, k = 2tp, 2tp+1 */
        uint32_t r2 = __shfl_sync(0xffffffffu, a[2], la); /* row g,   k = 2tp+8, +9 */
        uint32_t r3 = __shfl_sync(0xffffffffu, a[3], la); /* row g+8, k = 2tp+8, +9 */
        uint32_t p0 = __shfl_sync(0xffffffffu, b[0], lb0); /* col 2t,   k = 2tp, 2tp+1 */
        uint32_t p1 = __shfl_sync(0xffffffffu, b[1], lb0); /* col 2t,   k = 2tp+8, +9 */
        uint32_t q0 = __shfl_sync(0xffffffffu, b[0], lb1); /* col 2t+1 */
        uint32_t q1 = __shfl_sync(0xffffffffu, b[1], lb1);
        const uint32_t ra[2][2] = {{r0, r2}, {r1, r3}}, rb[2][2] = {{p0, p1}, {q0, q1}};
        for (int i = 0; i < 2; i++)     /* row g, g+8 */
            for (int j = 0; j < 2; j++) /* col 2t, 2t+1 */
                for (int h = 0; h < 2; h++) { /* k block 0..7, 8..15 */
                    uint32_t x = ra[i][h], y = rb[j][h];
                    acc[2 * i + j] = fmaf(miles_h2f<DT>((uint16_t)(x & 0xffffu)), miles_h2f<DT>((uint16_t)(y & 0xffffu)),
                                          acc[2 * i + j]);
                    acc[2 * i + j] = fmaf(miles_h2f<DT>((uint16_t)(x >> 16)), miles_h2f<DT>((uint16_t)(y >> 16)),
                                          acc[2 * i + j]);
                }
    }
    c[0] = acc[0], c[1] = acc[1], c[2] = acc[2], c[3] = acc[3];
}

/* c (16 x 8, fp32) += A (16 x 16) B (16 x 8), all 32 lanes of the warp. */
template <int DT> __device__ __forceinline__ void miles_mma16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(SIMT_EMULATOR)
    /* the emulator executes the instruction itself (one warp collective) on
     * an emulated sm_80+; below that, the path a real sm_70 build takes */
    if (simt_compute_capability() >= 80) {
        simt::mma16816(c, a, b, DT == MILES_CUDA_BF16, SIMT_SITE);
        return;
    }
    miles_mma16816_portable<DT>(c, a, b);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (DT == MILES_CUDA_BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    if (DT == MILES_CUDA_F16) {
        /* m16n8k8: a0 = A[g][2t..], a1 = A[g+8][2t..], b0 = B[2t..][g]: k 0..7, then 8..15 */
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(b[0]));
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[2]), "r"(a[3]), "r"(b[1]));
    } else {
        miles_mma16816_portable<DT>(c, a, b);
    }
#else
    miles_mma16816_portable<DT>(c, a, b);
#endif
}

/* ------------------------------------------------------- launch helper */
/* Multiprocessors of the current device (cached; 0 on error -> 1). */
int miles_cuda_sm_count(void);

#endif
