/*
 * philox.cuh — device Philox4x32-10 and the dropout keep test, bit-identical
 * to libmiles/dropout.c (read its "RNG CONTRACT" comment; this file follows
 * it word for word):
 *   key = seed (k0 = low32, k1 = high32)
 *   counter words c0 = i/4 (mod 2^32), c1 = tensor_id, c2/c3 = low/high32(step)
 *   r = out[i & 3];  u = (float)(r >> 8) * 2^-24;  keep = u >= p (fp32)
 *   s = 1.0f / (1.0f - p) in fp32;  out = keep ? inp * s : 0
 */
#ifndef MILES_PHILOX_CUH
#define MILES_PHILOX_CUH

#include <stdint.h>

/* __host__ too, so the test program checks this exact code against the CPU
 * generator on machines without a GPU. */
__host__ __device__ __forceinline__ void miles_philox4x32_dev(uint32_t c[4], uint32_t k0,
                                                              uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0]; /* mul.hi/mul.lo on the device */
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = lo1;
        c[2] = n2;
        c[3] = lo0;
    }
}

/* Uniforms of elements 4*blk .. 4*blk+3 of (seed, step, tensor_id). */
__host__ __device__ __forceinline__ void miles_dropout_uniform4_dev(float u[4], uint64_t seed, uint64_t step,
                                                           uint32_t tensor_id, uint64_t blk) {
    uint32_t c[4] = {(uint32_t)blk, tensor_id, (uint32_t)step, (uint32_t)(step >> 32)};
    miles_philox4x32_dev(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    for (int l = 0; l < 4; l++) u[l] = (float)(c[l] >> 8) * (1.0f / 16777216.0f);
}

/* Dropout parameters passed by value to kernels. */
struct MilesDropDev {
    uint64_t seed, step;
    uint32_t tensor_id;
    float p;     /* drop probability, 0 < p < 1 when active */
    float scale; /* 1.0f / (1.0f - p), computed on the host in fp32 like the CPU */
};

static inline MilesDropDev miles_drop_dev(MilesDropoutKey k) {
    MilesDropDev d;
    d.seed = k.seed;
    d.step = k.step;
    d.tensor_id = k.tensor_id;
    d.p = k.p;
    d.scale = 1.0f / (1.0f - k.p);
    return d;
}

/* Keep test of element i (one Philox call; use the 4-wide form in loops). */
__host__ __device__ __forceinline__ bool miles_dropout_keep(const MilesDropDev &d, uint64_t i) {
    float u[4];
    miles_dropout_uniform4_dev(u, d.seed, d.step, d.tensor_id, i >> 2);
    return u[i & 3] >= d.p;
}
/* Dropped value as the CPU computes it: keep ? x * s : 0 (a select, never a
 * multiply by 0, so a dropped Inf/NaN gives 0 like the CPU). */
__host__ __device__ __forceinline__ float miles_dropout_apply(const MilesDropDev &d, bool keep, float x) {
#ifdef __CUDA_ARCH__
    /* __fmul_rn is never contracted into an FMA with a following +=, which
     * keeps dropout_backward's accumulation bit-identical to the CPU's */
    return keep ? __fmul_rn(x, d.scale) : 0.0f;
#else
    return keep ? x * d.scale : 0.0f;
#endif
}

#endif
