/*
 * dropout.c — counter-based dropout (Philox4x32-10), identical on CPU and GPU.
 *
 * ======================= RNG CONTRACT (CPU == CUDA) =======================
 * Philox4x32-10 exactly as Random123 (Salmon et al., SC'11):
 *   multipliers M0 = 0xD2511F53, M1 = 0xCD9E8D57,
 *   Weyl key bumps W0 = 0x9E3779B9, W1 = 0xBB67AE85, 10 rounds;
 *   one round on counter words (c0,c1,c2,c3) with key (k0,k1):
 *     (hi0,lo0) = M0 * c0 (64-bit product), (hi1,lo1) = M1 * c2
 *     (c0,c1,c2,c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
 *   the key is bumped (k0 += W0, k1 += W1) between rounds (9 bumps).
 *   Known answers (tests/test_ops.c): ctr 0,0,0,0 key 0,0 ->
 *   6627e8d5 e169c58d bc57ac4c 9b00dbd8; all-ones -> 408f276d 41c83b0e
 *   a20bc7c6 6d5451fd; ctr 243f6a88 85a308d3 13198a2e 03707344 key a4093822
 *   299f31d0 -> d16cfe09 94fdcceb 5001e420 24126ea1.
 *
 * miles_philox4x32(out, key, ctr_hi, ctr_lo) packs its 64-bit arguments as
 *   k0 = low32(key),    k1 = high32(key),
 *   c0 = low32(ctr_lo), c1 = high32(ctr_lo), c2 = low32(ctr_hi), c3 = high32(ctr_hi).
 *
 * Dropout element `i` (flat index into the tensor, 0-based) of the tensor
 * `tensor_id` at (seed, step):
 *   key = seed
 *   ctr_lo = ((uint64)tensor_id << 32) | (uint32)(i >> 2)   ->  c0 = i/4, c1 = tensor_id
 *   ctr_hi = step                                          ->  c2,c3 = low/high32(step)
 *   r = out[i & 3]        (one Philox call serves 4 consecutive elements)
 *   u = (float)(r >> 8) * 2^-24        (exact in fp32; u in [0, 1 - 2^-24])
 *   keep = (u >= p)                    (compared in fp32)
 *   s = 1.0f / (1.0f - p)              (computed in fp32, once)
 *   out[i] = keep ? inp[i] * s : 0.0f  (multiply by s, never divide)
 *   p <= 0: exact identity (out = inp, no RNG);  p >= 1: all zeros.
 * Limits: i < 2^34 (i/4 is taken mod 2^32), which covers every tensor that
 * fits in memory.  For attention the tensor is att [B,NH,T,T] and i its flat
 * row-major index (b*NH + h)*T*T + query*T + key.
 * ==========================================================================
 */
#include "ops_internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_round(uint32_t c[4], uint32_t k0, uint32_t k1) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void miles_philox4x32(uint32_t out[4], uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo) {
    uint32_t c[4] = {(uint32_t)ctr_lo, (uint32_t)(ctr_lo >> 32),
                     (uint32_t)ctr_hi, (uint32_t)(ctr_hi >> 32)};
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        philox_round(c, k0, k1);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

static inline float u32_to_uniform(uint32_t r) {
    return (float)(r >> 8) * (1.0f / 16777216.0f);
}

/* u32_to_uniform(r) >= p as an integer test, (r >> 8) >= keep_threshold(p),
 * for 0 < p < 1: u = r >> 8 < 2^24, so u * 2^-24 is exact and u * 2^-24 >= p
 * iff u >= p * 2^24 (exact in double) iff u >= ceil(p * 2^24). */
static inline uint32_t keep_threshold(float p) { return (uint32_t)ceil((double)p * 16777216.0); }

/* v where r keeps the element, else +0 (the C select "keep ? v : 0.0f"),
 * with an integer mask: a float compare-and-select did not vectorize on
 * AVX2 and SSE (GCC's if-conversion leaves possibly trapping compares and
 * the multiply behind a branch), the apply loops ran an element at a time */
static inline float keep_or_zero(float v, uint32_t r, uint32_t thr) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    b &= -(uint32_t)((r >> 8) >= thr);
    memcpy(&v, &b, sizeof v);
    return v;
}

static inline void block_uniform4(float u[4], uint64_t seed, uint64_t step,
                                  uint32_t tensor_id, uint64_t blk) {
    uint32_t r[4];
    miles_philox4x32(r, seed, step, ((uint64_t)tensor_id << 32) | (uint32_t)blk);
    for (int l = 0; l < 4; l++) u[l] = u32_to_uniform(r[l]);
}

/* PB consecutive Philox blocks blk0, blk0+1, ... (counter word c0 wraps mod
 * 2^32 exactly as (uint32_t)(index >> 2) does) for one (seed, step, tensor):
 * r[4*b + lane] is output word `lane` of block blk0+b, i.e. r is in element
 * order starting at element 4*blk0.  Written lane-parallel so the compiler
 * vectorizes the rounds across blocks: ~3 ns/element instead of ~10 for one
 * block at a time (dropout over attention probabilities is a large tensor). */
#define PB 32
/* always inlined: the caller miles_dropout_range has AVX-512/AVX2 clones, and
 * a separate static function would be compiled for the baseline ISA only
 * (SSE: 4 ns/element instead of ~0.5 with AVX-512) */
static inline __attribute__((always_inline)) void philox_batch(uint32_t r[4 * PB], uint64_t seed, uint64_t step, uint32_t tensor_id,
                         uint32_t blk0) {
    uint32_t c0[PB], c1[PB], c2[PB], c3[PB];
    for (int b = 0; b < PB; b++) {
        c0[b] = blk0 + (uint32_t)b;
        c1[b] = tensor_id;
        c2[b] = (uint32_t)step;
        c3[b] = (uint32_t)(step >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        /* keep this loop rolled: fully unrolled (GCC's default for a
         * constant trip count) it is no longer vectorized */
#pragma GCC unroll 1
        for (int b = 0; b < PB; b++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[b];
            uint64_t p1 = (uint64_t)PHILOX_M1 * c2[b];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[b] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[b] ^ k1;
            c1[b] = (uint32_t)p1;
            c3[b] = (uint32_t)p0;
            c0[b] = n0;
            c2[b] = n2;
        }
    }
    for (int b = 0; b < PB; b++) {
        r[4 * b + 0] = c0[b];
        r[4 * b + 1] = c1[b];
        r[4 * b + 2] = c2[b];
        r[4 * b + 3] = c3[b];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MILES_PHILOX_X86 1
/* The 10 rounds of philox_batch on vectors of blocks, for the two x86
 * widths below: P the intrinsics' prefix (_mm512, _mm256), SI their
 * integer-vector suffix (si512, si256), MUL the width's mul_hilo32; c0 holds
 * the blocks' counter word 0 on entry.  Leaves u0..u3 (declared here) with
 * 128-bit lane L of u_k = the 4 words of block 4L + k, the order the
 * caller's stores put into element order (r[4b + word]). */
#define PHILOX_VEC_ROUNDS(V, P, SI, MUL, c0, tensor_id, step, seed)                                    \
    V c1 = P##_set1_epi32((int)(tensor_id));                                                         \
    V c2 = P##_set1_epi32((int)(uint32_t)(step)), c3 = P##_set1_epi32((int)(uint32_t)((step) >> 32)); \
    uint32_t k0 = (uint32_t)(seed), k1 = (uint32_t)((seed) >> 32);                                   \
    for (int round = 0; round < 10; round++) {                                                       \
        if (round > 0) {                                                                             \
            k0 += PHILOX_W0;                                                                         \
            k1 += PHILOX_W1;                                                                         \
        }                                                                                            \
        V lo0, lo1;                                                                                  \
        V hi0 = MUL(c0, P##_set1_epi32((int)PHILOX_M0), &lo0);                                       \
        V hi1 = MUL(c2, P##_set1_epi32((int)PHILOX_M1), &lo1);                                       \
        V n0 = P##_xor_##SI(P##_xor_##SI(hi1, c1), P##_set1_epi32((int)k0));                         \
        V n2 = P##_xor_##SI(P##_xor_##SI(hi0, c3), P##_set1_epi32((int)k1));                         \
        c1 = lo1;                                                                                    \
        c3 = lo0;                                                                                    \
        c0 = n0;                                                                                     \
        c2 = n2;                                                                                     \
    }                                                                                                \
    V t0 = P##_unpacklo_epi32(c0, c1), t1 = P##_unpackhi_epi32(c0, c1);                              \
    V t2 = P##_unpacklo_epi32(c2, c3), t3 = P##_unpackhi_epi32(c2, c3);                              \
    V u0 = P##_unpacklo_epi64(t0, t2), u1 = P##_unpackhi_epi64(t0, t2);                              \
    V u2 = P##_unpacklo_epi64(t1, t3), u3 = P##_unpackhi_epi64(t1, t3)

/* hi and lo 32 bits of the 32x32-bit products a[i] * m[i] in all 16 lanes
 * (vpmuludq multiplies the even lanes; the odd ones are shifted down first) */
__attribute__((target("avx512f"))) static inline __m512i mul_hilo32(__m512i a, __m512i m, __m512i *lo) {
    __m512i pe = _mm512_mul_epu32(a, m);
    __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
    return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}

/* philox_batch with 16 blocks per zmm register (the same integer arithmetic,
 * so the same words): ~3x fewer instructions than the compiler's
 * vectorization of the portable loop, whose 64-bit products it widens lane
 * by lane. */
__attribute__((target("avx512f"))) static void philox_batch_avx512(uint32_t r[4 * PB], uint64_t seed,
                                                                    uint64_t step, uint32_t tensor_id,
                                                                    uint32_t blk0) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int h = 0; h < PB / 16; h++) {
        __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(blk0 + 16u * (uint32_t)h)), iota);
        PHILOX_VEC_ROUNDS(__m512i, _mm512, si512, mul_hilo32, c0, tensor_id, step, seed);
        /* elements 16L..16L+15 = lane L of u0, u1, u2, u3 */
        __m512i a = _mm512_shuffle_i32x4(u0, u1, 0x44), b = _mm512_shuffle_i32x4(u2, u3, 0x44);
        __m512i c = _mm512_shuffle_i32x4(u0, u1, 0xEE), d = _mm512_shuffle_i32x4(u2, u3, 0xEE);
        uint32_t *o = r + 64 * h;
        _mm512_storeu_si512((void *)(o + 0), _mm512_shuffle_i32x4(a, b, 0x88));
        _mm512_storeu_si512((void *)(o + 16), _mm512_shuffle_i32x4(a, b, 0xDD));
        _mm512_storeu_si512((void *)(o + 32), _mm512_shuffle_i32x4(c, d, 0x88));
        _mm512_storeu_si512((void *)(o + 48), _mm512_shuffle_i32x4(c, d, 0xDD));
    }
}

/* mul_hilo32 in 8 lanes */
__attribute__((target("avx2"))) static inline __m256i mul_hilo32_avx2(__m256i a, __m256i m, __m256i *lo) {
    __m256i pe = _mm256_mul_epu32(a, m);
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    return _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

/* philox_batch with 8 blocks per ymm register, for AVX2 CPUs without
 * AVX-512F: the same words.  GCC's AVX2 vectorization of the portable loop
 * widens each 64-bit product lane by lane (1.2% of a bert-base B32 T32
 * train step on Zen 3; this: 2.1x faster dropout). */
__attribute__((target("avx2"))) static void philox_batch_avx2(uint32_t r[4 * PB], uint64_t seed, uint64_t step,
                                                               uint32_t tensor_id, uint32_t blk0) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int h = 0; h < PB / 8; h++) {
        __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)(blk0 + 8u * (uint32_t)h)), iota);
        PHILOX_VEC_ROUNDS(__m256i, _mm256, si256, mul_hilo32_avx2, c0, tensor_id, step, seed);
        uint32_t *o = r + 32 * h; /* blocks 0-1, 2-3, 4-5, 6-7 */
        _mm256_storeu_si256((__m256i *)(o + 0), _mm256_permute2x128_si256(u0, u1, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 8), _mm256_permute2x128_si256(u2, u3, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 16), _mm256_permute2x128_si256(u0, u1, 0x31));
        _mm256_storeu_si256((__m256i *)(o + 24), _mm256_permute2x128_si256(u2, u3, 0x31));
    }
}

/* Which philox_batch* runs: the widest the CPU has, unless a test forced
 * one (miles_dropout_force_philox) */
typedef enum { PHILOX_PORTABLE, PHILOX_AVX2, PHILOX_AVX512, PHILOX_UNKNOWN } PhiloxIsa;
static PhiloxIsa g_philox_forced = PHILOX_UNKNOWN;

/* the CPU's widest, checked once (a race stores the same value) */
static PhiloxIsa philox_cpu(void) {
    static PhiloxIsa v = PHILOX_UNKNOWN;
    if (v == PHILOX_UNKNOWN) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") ? PHILOX_AVX512
            : __builtin_cpu_supports("avx2")  ? PHILOX_AVX2
                                              : PHILOX_PORTABLE;
    }
    return v;
}

static PhiloxIsa philox_isa(void) { return g_philox_forced != PHILOX_UNKNOWN ? g_philox_forced : philox_cpu(); }
#endif

int miles_dropout_force_philox(int which) {
    if (which < 0) {
#ifdef MILES_PHILOX_X86
        g_philox_forced = PHILOX_UNKNOWN;
#endif
        return 0;
    }
#ifdef MILES_PHILOX_X86
    if (which > (int)philox_cpu()) return -1; /* each level implies the ones below it */
    g_philox_forced = (PhiloxIsa)which;
    return 0;
#else
    return which == 0 ? 0 : -1; /* only the portable loop is built */
#endif
}

float miles_dropout_uniform(uint64_t seed, uint64_t step, uint32_t tensor_id, uint64_t index) {
    float u[4];
    block_uniform4(u, seed, step, tensor_id, index >> 2);
    return u[index & 3];
}

/* The body of miles_dropout_range(2): out (and out2, when not NULL) from in
 * (in2) under one draw of the mask.  Always inlined into the callers'
 * AVX-512/AVX2 clones. */
static inline __attribute__((always_inline)) void
dropout_range_body(float *out, const float *in, float *out2, const float *in2, size_t n, uint64_t base,
                   const MilesDropoutKey *key, int accumulate) {
    if (!(key->p > 0.0f) || key->p >= 1.0f) {
        /* identity / all dropped, consistent with dropout_forward */
        int ident = !(key->p > 0.0f);
        for (size_t i = 0; i < n; i++) {
            float v = ident ? in[i] : 0.0f;
            if (accumulate == 1) out[i] += v;
            else if (accumulate == 2) out[i] = 0.0f + v;
            else out[i] = v;
        }
        if (out2)
            for (size_t i = 0; i < n; i++) out2[i] = ident ? in2[i] : 0.0f;
        return;
    }
    const float s = 1.0f / (1.0f - key->p);
    const uint32_t thr = keep_threshold(key->p);
#ifdef MILES_PHILOX_X86
    const PhiloxIsa isa = philox_isa();
#endif
    size_t i = 0;
    while (i < n) {
        /* one batch of PB Philox blocks covers 4*PB elements from here */
        uint64_t idx = base + i;
        uint32_t r[4 * PB];
#ifdef MILES_PHILOX_X86
        if (isa == PHILOX_AVX512) philox_batch_avx512(r, key->seed, key->step, key->tensor_id, (uint32_t)(idx >> 2));
        else if (isa == PHILOX_AVX2) philox_batch_avx2(r, key->seed, key->step, key->tensor_id, (uint32_t)(idx >> 2));
        else
#endif
            philox_batch(r, key->seed, key->step, key->tensor_id, (uint32_t)(idx >> 2));
        size_t e0 = (size_t)(idx & 3), cnt = 4 * PB - e0;
        if (cnt > n - i) cnt = n - i;
        const uint32_t *re = r + e0;
        float *o = out + i;
        const float *x = in + i;
        if (accumulate == 1)
            for (size_t e = 0; e < cnt; e++) o[e] += keep_or_zero(x[e] * s, re[e], thr);
        else if (accumulate == 2) /* into "zero": 0 + v, as += on a zeroed buffer (-0 -> +0) */
            for (size_t e = 0; e < cnt; e++) o[e] = 0.0f + keep_or_zero(x[e] * s, re[e], thr);
        else
            for (size_t e = 0; e < cnt; e++) o[e] = keep_or_zero(x[e] * s, re[e], thr);
        if (out2) {
            float *o2 = out2 + i;
            const float *x2 = in2 + i;
            for (size_t e = 0; e < cnt; e++) o2[e] = keep_or_zero(x2[e] * s, re[e], thr);
        }
        i += cnt;
    }
}

MILES_HOT_CLONES /* Philox vectorizes 5x better with AVX-512 (bench_model) */
void miles_dropout_range(float *out, const float *in, size_t n, uint64_t base,
                         const MilesDropoutKey *key, int accumulate) {
    dropout_range_body(out, in, NULL, NULL, n, base, key, accumulate);
}

MILES_HOT_CLONES
void miles_dropout_range2(float *out, const float *in, float *out2, const float *in2, size_t n,
                          uint64_t base, const MilesDropoutKey *key) {
    dropout_range_body(out, in, out2, in2, n, base, key, 0);
}

/* Whole tensor [0,n) in parallel: chunks start at multiples of 4 so that each
 * Philox call is made once. */
static void dropout_apply(float *out, const float *inp, size_t n, MilesDropoutKey key,
                          int accumulate) {
    const size_t CHUNK = 4096;
    const int64_t nchunks = (int64_t)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (n >= MILES_OMP_MIN_WORK)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        size_t i0 = (size_t)ch * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        miles_dropout_range(out + i0, inp + i0, len, i0, &key, accumulate);
    }
}

void dropout_forward(float *out, const float *inp, size_t n, MilesDropoutKey key) {
    if (!(key.p > 0.0f)) { /* p <= 0 (or NaN): identity */
        if (out != inp)
            for (size_t i = 0; i < n; i++) out[i] = inp[i];
        return;
    }
    if (key.p >= 1.0f) {
        for (size_t i = 0; i < n; i++) out[i] = 0.0f;
        return;
    }
    dropout_apply(out, inp, n, key, 0);
}

void dropout_backward_set(float *dinp, const float *dout, size_t n, MilesDropoutKey key) {
    if (!dinp) return;
    if (!(key.p > 0.0f)) {
        for (size_t i = 0; i < n; i++) dinp[i] = 0.0f + dout[i];
        return;
    }
    if (key.p >= 1.0f) {
        for (size_t i = 0; i < n; i++) dinp[i] = 0.0f;
        return;
    }
    dropout_apply(dinp, dout, n, key, 2);
}

void dropout_backward(float *dinp, const float *dout, size_t n, MilesDropoutKey key) {
    if (!dinp) return;
    if (!(key.p > 0.0f)) {
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    if (key.p >= 1.0f) return; /* every element dropped: zero gradient */
    dropout_apply(dinp, dout, n, key, 1);
}
