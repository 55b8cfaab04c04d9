/*
 * flash_attn.cu — fused multi-head attention of the 16-bit path, in the
 * style of FlashAttention-2: scores never leave the chip.
 *
 * Semantics are attention_forward / attention_backward of the CPU
 * (libmiles/ops_attention.c): scale = 1/sqrt(head size), softmax over the
 * real keys of the batch row (mask[b, j] != 0), masked keys get probability
 * exactly 0, a batch row without any real key gives an all-zero output,
 * attention dropout with the CPU's Philox mapping (flat index
 * ((b*NH + h)*T + i)*T + j of the [B,NH,T,T] probabilities), so the masks are
 * the CPU's bit for bit.
 *
 * Layout: q, k, v and the output are rows of [B*T, *] with a row stride
 * (elements), head h at column h*hs: q/k/v can sit inside the fused QKV
 * projection [N, 3H].  Head sizes up to 64 (every BERT size: base and large
 * 64, MiniLM 32), padded with zeros to D = 32 or 64 in shared memory.
 *
 * Forward: grid (ceil(T/64), B*NH), 4 warps, each owning 16 query rows; the
 *   key/value tiles of 64 rows stream through shared memory; S = Q K^T and
 *   O += P V on the tensor cores (m16n8k16, fp32 accumulation), the online
 *   softmax in fp32 registers (base-2 exponent); P is rounded to 16 bits for
 *   P V, as every flash kernel does.  Key tiles without a real key are
 *   skipped.  Saves lse = log2-sum-exp of the scaled scores per row (+Inf for
 *   a row without real keys).
 * Backward, deterministic (no atomics): dsum_i = rowsum(dO_i * O_i); then one
 *   kernel per key tile (dK, dV: loops over the query tiles, recomputing
 *   P^T = exp2(S^T - lse) and dP^T = V dO^T) and one per query tile (dQ:
 *   loops over the key tiles), both with dS = P * (dropout'(dP) - dsum).
 */
#include "fast.cuh"

#define FA_TILE 64 /* query rows per block = keys per tile */
#define FA_WARPS 4
#define FA_THREADS (32 * FA_WARPS)
#define FA_LOG2E 1.4426950408889634f

/* [64][D+8] tile of rows row0.. of src (row stride ld, hs valid columns),
 * zero outside the T rows and the hs columns.  vec: 16-byte copies. */
template <int D>
__device__ __forceinline__ void fa_load_tile(uint16_t *dst, const uint16_t *src, int ld, int row0, int T, int hs,
                                             int vec) {
    constexpr int LD = D + 8;
    if (vec) {
        for (int i = threadIdx.x; i < FA_TILE * (D / 8); i += FA_THREADS) {
            const int r = i / (D / 8), c = (i % (D / 8)) * 8;
            uint4 val = make_uint4(0, 0, 0, 0);
            if (row0 + r < T && c < hs) val = *reinterpret_cast<const uint4 *>(src + (size_t)(row0 + r) * ld + c);
            *reinterpret_cast<uint4 *>(dst + r * LD + c) = val;
        }
    } else {
        for (int i = threadIdx.x; i < FA_TILE * D; i += FA_THREADS) {
            const int r = i / D, c = i % D;
            dst[r * LD + c] = (row0 + r < T && c < hs) ? src[(size_t)(row0 + r) * ld + c] : (uint16_t)0;
        }
    }
}

/* A fragment (16 x 16) of row-major X[m][k] at (m0, k0). */
template <int LD>
__device__ __forceinline__ void fa_frag_a(uint32_t a[4], const uint16_t *X, int m0, int k0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    a[0] = *reinterpret_cast<const uint32_t *>(X + (m0 + g) * LD + k0 + 2 * t);
    a[1] = *reinterpret_cast<const uint32_t *>(X + (m0 + g + 8) * LD + k0 + 2 * t);
    a[2] = *reinterpret_cast<const uint32_t *>(X + (m0 + g) * LD + k0 + 2 * t + 8);
    a[3] = *reinterpret_cast<const uint32_t *>(X + (m0 + g + 8) * LD + k0 + 2 * t + 8);
}
/* B fragment (16 x 8) with B[k][n] = Y[n][k] (Y row-major, rows = n). */
template <int LD>
__device__ __forceinline__ void fa_frag_b_nk(uint32_t b[2], const uint16_t *Y, int n0, int k0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    b[0] = *reinterpret_cast<const uint32_t *>(Y + (n0 + g) * LD + k0 + 2 * t);
    b[1] = *reinterpret_cast<const uint32_t *>(Y + (n0 + g) * LD + k0 + 2 * t + 8);
}
/* B fragment (16 x 8) with B[k][n] = Z[k][n] (Z row-major, rows = k). */
template <int LD>
__device__ __forceinline__ void fa_frag_b_kn(uint32_t b[2], const uint16_t *Z, int k0, int n0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    b[0] = miles_pack2(Z[(k0 + 2 * t) * LD + n0 + g], Z[(k0 + 2 * t + 1) * LD + n0 + g]);
    b[1] = miles_pack2(Z[(k0 + 2 * t + 8) * LD + n0 + g], Z[(k0 + 2 * t + 9) * LD + n0 + g]);
}
/* A fragment of the 16 x 16 block kk of a 16 x 64 C-fragment array: the C
 * fragments of n-tiles 2kk and 2kk+1, rounded to 16 bits. */
template <int DT> __device__ __forceinline__ void fa_c_to_a(uint32_t a[4], const float c[8][4], int kk) {
    a[0] = miles_pack2f<DT>(c[2 * kk][0], c[2 * kk][1]);
    a[1] = miles_pack2f<DT>(c[2 * kk][2], c[2 * kk][3]);
    a[2] = miles_pack2f<DT>(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[3] = miles_pack2f<DT>(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

/* keep bits of two neighbouring elements idx, idx+1 (one Philox call when
 * they share a group of 4) */
__device__ __forceinline__ void fa_keep2(bool k[2], const MilesDropDev &d, uint64_t idx) {
    float u[4];
    miles_dropout_uniform4_dev(u, d.seed, d.step, d.tensor_id, idx >> 2);
    k[0] = u[idx & 3] >= d.p;
    if ((idx & 3) != 3) {
        k[1] = u[(idx & 3) + 1] >= d.p;
    } else {
        miles_dropout_uniform4_dev(u, d.seed, d.step, d.tensor_id, (idx + 1) >> 2);
        k[1] = u[0] >= d.p;
    }
}

/* c[8][4] (16 x 64, fp32) = A (16 x D, fragments af) @ Y^T, Y row-major
 * [64 rows][D] (B[k][n] = Y[n][k]) */
template <int DT, int D>
__device__ __forceinline__ void fa_mma_ay(float c[8][4], const uint32_t af[D / 16][4], const uint16_t *Y) {
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
        c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t bf[2];
            fa_frag_b_nk<D + 8>(bf, Y, nt * 8, kk * 16);
            miles_mma16816<DT>(c[nt], af[kk], bf);
        }
    }
}
/* acc[D/8][4] (16 x D) += C (16 x 64 C fragments, rounded to 16 bits) @ Z,
 * Z row-major [64 rows][D] */
template <int DT, int D>
__device__ __forceinline__ void fa_mma_cz(float acc[D / 8][4], const float c[8][4], const uint16_t *Z) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        uint32_t a[4];
        fa_c_to_a<DT>(a, c, kk);
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            uint32_t bf[2];
            fa_frag_b_kn<D + 8>(bf, Z, kk * 16, n * 8);
            miles_mma16816<DT>(acc[n], a, bf);
        }
    }
}
/* The warp's 16 rows row0.. of acc (x mul[r] for rows g, g+8) into dst (row
 * stride ld, hs columns), rows below T only. */
template <int DT, int D>
__device__ __forceinline__ void fa_store_rows(uint16_t *dst, int ld, int row0, int T, int hs, const float acc[D / 8][4],
                                              const float mul[2]) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = row0 + g + 8 * r;
        if (row >= T) continue;
        uint16_t *o = dst + (size_t)row * ld;
#pragma unroll
        for (int n = 0; n < D / 8; n++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const int c = n * 8 + 2 * t + j;
                if (c < hs) o[c] = miles_f2h<DT>(acc[n][2 * r + j] * mul[r]);
            }
    }
}
/* The key/value tile k0.. and its key mask into shared memory (block-wide);
 * returns whether the tile holds a real key (every thread, after a barrier). */
template <int D>
__device__ __forceinline__ int fa_load_kv(uint16_t *Ks, uint16_t *Vs, int *kvalid, const uint16_t *kb,
                                          const uint16_t *vb, int ld, int k0, int T, int hs, int vec,
                                          const int32_t *mrow) {
    fa_load_tile<D>(Ks, kb, ld, k0, T, hs, vec);
    fa_load_tile<D>(Vs, vb, ld, k0, T, hs, vec);
    int mine = 0;
    if (threadIdx.x < FA_TILE) {
        const int j = k0 + threadIdx.x;
        mine = j < T && (!mrow || mrow[j] != 0);
        if (kvalid) kvalid[threadIdx.x] = mine;
    }
    return __syncthreads_or(mine);
}

/* ------------------------------------------------------------ forward */

template <int DT, int D>
__global__ void __launch_bounds__(FA_THREADS)
flash_fwd_kernel(uint16_t *out, int ldo, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                 int ld, const int32_t *mask, int T, int NH, int hs, float scale, MilesDropDev drop,
                 const uint64_t *rng, int vec) {
    constexpr int LD = D + 8;
    MILES_DYNAMIC_SHARED(uint16_t, sm);
    uint16_t *Qs = sm, *Ks = sm + FA_TILE * LD, *Vs = sm + 2 * FA_TILE * LD;
    __shared__ int kvalid[FA_TILE];
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH, q0 = blockIdx.x * FA_TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const size_t rb = (size_t)b * T;
    const uint16_t *qb = q + rb * ld + (size_t)h * hs, *kb = k + rb * ld + (size_t)h * hs,
                   *vb = v + rb * ld + (size_t)h * hs;
    const MilesDropDev d = miles_drop_resolve(drop, rng);
    const bool use_drop = d.p > 0.0f;
    const float sl2 = scale * FA_LOG2E;
    const bool active = q0 + warp * 16 < T;

    fa_load_tile<D>(Qs, qb, ld, q0, T, hs, vec);
    __syncthreads();
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) fa_frag_a<LD>(qf[kk], Qs, warp * 16, kk * 16);
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};

    for (int k0 = 0; k0 < T; k0 += FA_TILE) {
        __syncthreads(); /* the previous tile is consumed */
        if (!fa_load_kv<D>(Ks, Vs, kvalid, kb, vb, ld, k0, T, hs, vec, mask ? mask + rb : NULL))
            continue; /* no real key in this tile */
        if (!active) continue;

        float s[8][4];
        fa_mma_ay<DT, D>(s, qf, Ks);
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int col = nt * 8 + 2 * t + (i & 1);
                s[nt][i] = kvalid[col] ? s[nt][i] * sl2 : -INFINITY;
                mx[i >> 1] = fmaxf(mx[i >> 1], s[nt][i]);
            }
        float corr[2], mnew[2], ps[2] = {0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            mnew[r] = fmaxf(mrow[r], mx[r]);
            corr[r] = mrow[r] == -INFINITY ? 0.0f : exp2f(mrow[r] - mnew[r]);
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = i >> 1;
                const float p = mnew[r] == -INFINITY ? 0.0f : exp2f(s[nt][i] - mnew[r]);
                ps[r] += p;
                s[nt][i] = p;
            }
#pragma unroll
        for (int r = 0; r < 2; r++) {
            ps[r] += __shfl_xor_sync(0xffffffffu, ps[r], 1);
            ps[r] += __shfl_xor_sync(0xffffffffu, ps[r], 2);
            lrow[r] = lrow[r] * corr[r] + ps[r];
            mrow[r] = mnew[r];
        }
#pragma unroll
        for (int n = 0; n < D / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) o[n][i] *= corr[i >> 1];
        if (use_drop) {
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    const int row = q0 + warp * 16 + g + 8 * r, col = k0 + nt * 8 + 2 * t;
                    if (row >= T || col >= T) continue;
                    bool kp[2];
                    fa_keep2(kp, d, ((uint64_t)bh * T + row) * T + col);
                    s[nt][2 * r] = miles_dropout_apply(d, kp[0], s[nt][2 * r]);
                    s[nt][2 * r + 1] = miles_dropout_apply(d, kp[1], s[nt][2 * r + 1]);
                }
        }
        fa_mma_cz<DT, D>(o, s, Vs);
    }
    if (!active) return;
    const float inv[2] = {lrow[0] > 0.0f ? 1.0f / lrow[0] : 0.0f, lrow[1] > 0.0f ? 1.0f / lrow[1] : 0.0f};
    fa_store_rows<DT, D>(out + rb * ldo + (size_t)h * hs, ldo, q0 + warp * 16, T, hs, o, inv);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = q0 + warp * 16 + g + 8 * r;
        if (row < T && t == 0) lse[(size_t)bh * T + row] = lrow[r] > 0.0f ? mrow[r] + log2f(lrow[r]) : INFINITY;
    }
}

/* ----------------------------------------------------------- backward */

/* dsum[bh*T + t] = sum_c dout * out over the head's columns; warp per (row,
 * head).  overflow (fp16, when given): set if |dout| >= 65504 or not finite
 * (a GEMM that clamps fp16 overflow would hide it otherwise). */
template <int DT>
__global__ void flash_bwd_dsum_kernel(float *dsum, const uint16_t *dout, int lddo, const uint16_t *out, int ldo,
                                      int N, int T, int NH, int hs, int32_t *overflow) {
    const int lane = threadIdx.x & 31;
    const size_t w = (size_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (w >= (size_t)N * NH) return;
    const size_t row = w / NH;
    const int h = (int)(w % NH);
    float s = 0.0f;
    int bad = 0;
    for (int c = lane; c < hs; c += 32) {
        const float g = miles_h2f<DT>(dout[row * lddo + (size_t)h * hs + c]);
        s += g * miles_h2f<DT>(out[row * ldo + (size_t)h * hs + c]);
        bad |= !(fabsf(g) < 65504.0f);
    }
    s = miles_warp_sum(s);
    if (overflow && __any_sync(0xffffffffu, bad) && lane == 0) *overflow = 1;
    const size_t b = row / T, t = row % T;
    if (lane == 0) dsum[(b * NH + h) * T + t] = s;
}

template <int DT, int D>
__global__ void __launch_bounds__(FA_THREADS)
flash_bwd_dkdv_kernel(uint16_t *dk, uint16_t *dv, int ldd, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                      int ld, const uint16_t *dout, int lddo, const float *lse, const float *dsum,
                      const int32_t *mask, int T, int NH, int hs, float scale, MilesDropDev drop,
                      const uint64_t *rng, int vec, int vec_do) {
    constexpr int LD = D + 8;
    MILES_DYNAMIC_SHARED(uint16_t, sm);
    uint16_t *Ks = sm, *Vs = sm + FA_TILE * LD, *Qs = sm + 2 * FA_TILE * LD, *Os = sm + 3 * FA_TILE * LD;
    __shared__ float lse_s[FA_TILE], dsum_s[FA_TILE];
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH, k0 = blockIdx.x * FA_TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const size_t rb = (size_t)b * T;
    const MilesDropDev d = miles_drop_resolve(drop, rng);
    const bool use_drop = d.p > 0.0f;
    const float sl2 = scale * FA_LOG2E;
    const bool active = k0 + warp * 16 < T;

    const int any = fa_load_kv<D>(Ks, Vs, NULL, k + rb * ld + (size_t)h * hs, v + rb * ld + (size_t)h * hs, ld, k0,
                                  T, hs, vec, mask ? mask + rb : NULL);
    /* key rows of this lane: warp*16 + g (+8) */
    bool kv[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int j = k0 + warp * 16 + g + 8 * r;
        kv[r] = j < T && (!mask || mask[rb + j] != 0);
    }
    uint32_t kf[D / 16][4], vf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        fa_frag_a<LD>(kf[kk], Ks, warp * 16, kk * 16);
        fa_frag_a<LD>(vf[kk], Vs, warp * 16, kk * 16);
    }
    float adk[D / 8][4], adv[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) adk[n][i] = adv[n][i] = 0.0f;

    for (int q0 = 0; any && q0 < T; q0 += FA_TILE) {
        __syncthreads();
        fa_load_tile<D>(Qs, q + rb * ld + (size_t)h * hs, ld, q0, T, hs, vec);
        fa_load_tile<D>(Os, dout + rb * lddo + (size_t)h * hs, lddo, q0, T, hs, vec_do);
        if (threadIdx.x < FA_TILE) {
            const int i = q0 + threadIdx.x;
            lse_s[threadIdx.x] = i < T ? lse[(size_t)bh * T + i] : INFINITY;
            dsum_s[threadIdx.x] = i < T ? dsum[(size_t)bh * T + i] : 0.0f;
        }
        __syncthreads();
        if (!active) continue;
        /* S^T [16 keys x 64 queries] and dP^T = V dO^T */
        float p[8][4], dp[8][4];
        fa_mma_ay<DT, D>(p, kf, Qs);
        fa_mma_ay<DT, D>(dp, vf, Os);
        float pd[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = i >> 1, qc = nt * 8 + 2 * t + (i & 1);
                const float pr = kv[r] ? exp2f(p[nt][i] * sl2 - lse_s[qc]) : 0.0f;
                float pdr = pr, dpr = dp[nt][i];
                if (use_drop && pr != 0.0f) {
                    const int j = k0 + warp * 16 + g + 8 * r, qi = q0 + qc;
                    const bool keep = miles_dropout_keep(d, ((uint64_t)bh * T + qi) * T + j);
                    pdr = miles_dropout_apply(d, keep, pr);
                    dpr = miles_dropout_apply(d, keep, dpr);
                }
                pd[nt][i] = pdr;
                p[nt][i] = pr * (dpr - dsum_s[qc]); /* now dS^T */
            }
        /* dV += Pd^T dO;  dK += dS^T Q */
        fa_mma_cz<DT, D>(adv, pd, Os);
        fa_mma_cz<DT, D>(adk, p, Qs);
    }
    if (!active) return;
    const float ks[2] = {scale, scale}, one[2] = {1.0f, 1.0f};
    fa_store_rows<DT, D>(dk + rb * ldd + (size_t)h * hs, ldd, k0 + warp * 16, T, hs, adk, ks);
    fa_store_rows<DT, D>(dv + rb * ldd + (size_t)h * hs, ldd, k0 + warp * 16, T, hs, adv, one);
}

template <int DT, int D>
__global__ void __launch_bounds__(FA_THREADS)
flash_bwd_dq_kernel(uint16_t *dq, int ldd, const uint16_t *q, const uint16_t *k, const uint16_t *v, int ld,
                    const uint16_t *dout, int lddo, const float *lse, const float *dsum, const int32_t *mask, int T,
                    int NH, int hs, float scale, MilesDropDev drop, const uint64_t *rng, int vec, int vec_do) {
    constexpr int LD = D + 8;
    MILES_DYNAMIC_SHARED(uint16_t, sm);
    uint16_t *Qs = sm, *Os = sm + FA_TILE * LD, *Ks = sm + 2 * FA_TILE * LD, *Vs = sm + 3 * FA_TILE * LD;
    __shared__ int kvalid[FA_TILE];
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH, q0 = blockIdx.x * FA_TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const size_t rb = (size_t)b * T;
    const MilesDropDev d = miles_drop_resolve(drop, rng);
    const bool use_drop = d.p > 0.0f;
    const float sl2 = scale * FA_LOG2E;
    const bool active = q0 + warp * 16 < T;

    fa_load_tile<D>(Qs, q + rb * ld + (size_t)h * hs, ld, q0, T, hs, vec);
    fa_load_tile<D>(Os, dout + rb * lddo + (size_t)h * hs, lddo, q0, T, hs, vec_do);
    __syncthreads();
    uint32_t qf[D / 16][4], of[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        fa_frag_a<LD>(qf[kk], Qs, warp * 16, kk * 16);
        fa_frag_a<LD>(of[kk], Os, warp * 16, kk * 16);
    }
    float lr[2], dr[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = q0 + warp * 16 + g + 8 * r;
        lr[r] = i < T ? lse[(size_t)bh * T + i] : INFINITY;
        dr[r] = i < T ? dsum[(size_t)bh * T + i] : 0.0f;
    }
    float adq[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) adq[n][0] = adq[n][1] = adq[n][2] = adq[n][3] = 0.0f;

    for (int k0 = 0; k0 < T; k0 += FA_TILE) {
        __syncthreads();
        if (!fa_load_kv<D>(Ks, Vs, kvalid, k + rb * ld + (size_t)h * hs, v + rb * ld + (size_t)h * hs, ld, k0, T, hs,
                           vec, mask ? mask + rb : NULL))
            continue;
        if (!active) continue;
        float p[8][4], dp[8][4];
        fa_mma_ay<DT, D>(p, qf, Ks);
        fa_mma_ay<DT, D>(dp, of, Vs);
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int r = 0; r < 2; r++) {
                const int col = nt * 8 + 2 * t;
                bool kp[2] = {true, true};
                const int row = q0 + warp * 16 + g + 8 * r;
                if (use_drop && row < T && k0 + col < T) fa_keep2(kp, d, ((uint64_t)bh * T + row) * T + k0 + col);
#pragma unroll
                for (int jj = 0; jj < 2; jj++) {
                    const int i = 2 * r + jj;
                    const float pr = kvalid[col + jj] ? exp2f(p[nt][i] * sl2 - lr[r]) : 0.0f;
                    const float dpr = use_drop ? miles_dropout_apply(d, kp[jj], dp[nt][i]) : dp[nt][i];
                    p[nt][i] = pr * (dpr - dr[r]); /* dS */
                }
            }
        fa_mma_cz<DT, D>(adq, p, Ks);
    }
    if (!active) return;
    const float qs[2] = {scale, scale};
    fa_store_rows<DT, D>(dq + rb * ldd + (size_t)h * hs, ldd, q0 + warp * 16, T, hs, adq, qs);
}

/* ------------------------------------------------------------- host */

static int fa_check(const char *fn, int B, int T, int C, int NH, int dtype) {
    if (B < 0 || T <= 0 || C <= 0 || NH <= 0 || C % NH != 0)
        return miles_error(MILES_EINVAL, "%s: bad shape B=%d T=%d C=%d NH=%d (C %% NH must be 0)", fn, B, T, C, NH);
    if (C / NH > 64)
        return miles_error(MILES_EUNSUPPORTED, "%s: head size %d > 64 is not supported by the fused attention", fn,
                           C / NH);
    if (dtype != MILES_CUDA_F16 && dtype != MILES_CUDA_BF16)
        return miles_error(MILES_EINVAL, "%s: dtype %d is neither fp16 nor bf16", fn, dtype);
    if (dtype == MILES_CUDA_BF16) MILES_TRY(miles_cuda_require_bf16());
    return MILES_OK;
}

static int fa_vec(const void *p, int ld, int hs) { return ((uintptr_t)p & 15) == 0 && ld % 8 == 0 && hs % 8 == 0; }

/* Opt in to more than 48 KB of dynamic shared memory (once per kernel). */
template <class F> static int fa_smem(F *fn, size_t bytes) {
    if (bytes <= (48u << 10)) return MILES_OK;
    MILES_CUDA_TRY(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return MILES_OK;
}

#define FA_DISPATCH(dtype, hs, F)                                                                                 \
    ((dtype) == MILES_CUDA_BF16 ? ((hs) <= 32 ? F(MILES_CUDA_BF16, 32) : F(MILES_CUDA_BF16, 64))                  \
                                : ((hs) <= 32 ? F(MILES_CUDA_F16, 32) : F(MILES_CUDA_F16, 64)))

extern "C" int flash_attention_forward_cuda(void *out_h, int ldo, float *lse, const void *q_h, const void *k_h,
                                            const void *v_h, int ld, const int32_t *mask, int B, int T, int C, int NH,
                                            MilesDropoutKey key, const uint64_t *rng, int dtype,
                                            miles_cuda_stream stream) {
    MILES_TRY(fa_check("flash_attention_forward_cuda", B, T, C, NH, dtype));
    if (B == 0) return MILES_OK;
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int vec = fa_vec(q_h, ld, hs) && fa_vec(k_h, ld, hs) && fa_vec(v_h, ld, hs);
    dim3 grid((unsigned)((T + FA_TILE - 1) / FA_TILE), (unsigned)(B * NH));
    cudaStream_t s = miles_stream(stream);
    MilesDropDev dd = miles_drop_dev(key);
#define L(DT, D)                                                                                                  \
    ([&]() -> int {                                                                                               \
        auto fn = flash_fwd_kernel<DT, D>;                                                                        \
        const size_t smem = 3 * FA_TILE * (D + 8) * sizeof(uint16_t);                                             \
        MILES_TRY(fa_smem(fn, smem));                                                                             \
        MILES_LAUNCH_FN("flash_fwd_kernel<DT,D>", fn, grid, FA_THREADS, smem, s, (uint16_t *)out_h, ldo, lse,     \
                        (const uint16_t *)q_h, (const uint16_t *)k_h, (const uint16_t *)v_h, ld, mask, T, NH, hs, \
                        scale, dd, rng, vec);                                                                     \
        return MILES_OK;                                                                                          \
    }())
    return FA_DISPATCH(dtype, hs, L);
#undef L
}

extern "C" int flash_attention_backward_cuda(void *dq_h, void *dk_h, void *dv_h, int ldd, float *dsum,
                                             const void *dout_h, int lddo, const void *out_h, int ldo,
                                             const float *lse, const void *q_h, const void *k_h, const void *v_h,
                                             int ld, const int32_t *mask, int B, int T, int C, int NH,
                                             MilesDropoutKey key, const uint64_t *rng, int32_t *overflow, int dtype,
                                             miles_cuda_stream stream) {
    MILES_TRY(fa_check("flash_attention_backward_cuda", B, T, C, NH, dtype));
    if (B == 0) return MILES_OK;
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int vec = fa_vec(q_h, ld, hs) && fa_vec(k_h, ld, hs) && fa_vec(v_h, ld, hs);
    const int vec_do = fa_vec(dout_h, lddo, hs);
    const size_t rows = (size_t)B * T * NH;
    dim3 grid((unsigned)((T + FA_TILE - 1) / FA_TILE), (unsigned)(B * NH));
    cudaStream_t s = miles_stream(stream);
    MilesDropDev dd = miles_drop_dev(key);
    if (dtype == MILES_CUDA_BF16)
        MILES_LAUNCH(flash_bwd_dsum_kernel<MILES_CUDA_BF16>, (unsigned)((rows + 7) / 8), 256, 0, s, dsum,
                     (const uint16_t *)dout_h, lddo, (const uint16_t *)out_h, ldo, B * T, T, NH, hs, overflow);
    else
        MILES_LAUNCH(flash_bwd_dsum_kernel<MILES_CUDA_F16>, (unsigned)((rows + 7) / 8), 256, 0, s, dsum,
                     (const uint16_t *)dout_h, lddo, (const uint16_t *)out_h, ldo, B * T, T, NH, hs, overflow);
#define L(DT, D)                                                                                                  \
    ([&]() -> int {                                                                                               \
        const size_t smem = 4 * FA_TILE * (D + 8) * sizeof(uint16_t);                                             \
        auto f1 = flash_bwd_dkdv_kernel<DT, D>;                                                                   \
        MILES_TRY(fa_smem(f1, smem));                                                                             \
        MILES_LAUNCH_FN("flash_bwd_dkdv_kernel<DT,D>", f1, grid, FA_THREADS, smem, s, (uint16_t *)dk_h,           \
                        (uint16_t *)dv_h, ldd, (const uint16_t *)q_h, (const uint16_t *)k_h, (const uint16_t *)v_h, \
                        ld, (const uint16_t *)dout_h, lddo, lse, (const float *)dsum, mask, T, NH, hs, scale, dd,  \
                        rng, vec, vec_do);                                                                        \
        auto f2 = flash_bwd_dq_kernel<DT, D>;                                                                     \
        MILES_TRY(fa_smem(f2, smem));                                                                             \
        MILES_LAUNCH_FN("flash_bwd_dq_kernel<DT,D>", f2, grid, FA_THREADS, smem, s, (uint16_t *)dq_h, ldd,        \
                        (const uint16_t *)q_h, (const uint16_t *)k_h, (const uint16_t *)v_h, ld,                  \
                        (const uint16_t *)dout_h, lddo, lse, (const float *)dsum, mask, T, NH, hs, scale, dd, rng, \
                        vec, vec_do);                                                                             \
        return MILES_OK;                                                                                          \
    }())
    return FA_DISPATCH(dtype, hs, L);
#undef L
}
