/*
 * ops_attention.c — multi-head self-attention core, HF BERT semantics
 * (BertSelfAttention after the q/k/v projections, eager path):
 *
 *   scores = q_h k_h^T / sqrt(hs)            per (batch b, head h), [T,T]
 *   att    = softmax over real keys           masked keys: probability 0
 *   attd   = dropout(att)                     only when key.p > 0
 *   out_h  = attd @ v_h                       written to channels h*hs..h*hs+hs-1
 *
 * HF adds finfo(float32).min to the scores of padded keys, which makes their
 * softmax weight exactly 0 whenever the row has a real key; here they are
 * skipped instead (same result, no reliance on exp underflow).  A row whose
 * batch has no real key at all gets att = 0 and out = 0 (HF would average over
 * all keys there; such a batch row carries no text, and the spec prefers 0).
 *
 * Work is split over the B*NH (batch, head) pairs; each pair runs its
 * products on the calling thread, reading q/k/v/out in place through the
 * leading dimension C (no head transposes).  The products that overwrite
 * their output (q k^T, P v, dout v^T) use miles_gemm_tiny: the bits of the
 * own GEMM without its plan and without the 1-thread OpenMP region that
 * miles_gemm_serial enters on every call (bert-base B32 T32: 3 x 384 x 12 =
 * 13.8k of the 28k such regions per train step).  The accumulating ones
 * (beta 1, and the transposed-A ones) keep miles_gemm_serial.
 *
 * Training keeps no [B,NH,T,T] dropped probabilities (the _ws forms): the
 * forward holds each pair's in a per-thread slot while out_h is computed,
 * the backward draws the mask again, once for both them and dL/dP.  At
 * bert-base B32 T128 that is 25 MB less activation memory per layer, not
 * written and read back each step.
 */
#include "ops_internal.h"
#include "gemm_internal.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Row reductions in LANES independent partial results, combined at the end:
 * the compiler vectorizes these (it may not reorder a single running float
 * sum by itself).  row_dot(x, NULL, n) is the plain sum. */
#define LANES 16
/* always inlined: a separate static function is compiled for the baseline
 * ISA only, not for the caller's AVX-512/AVX2 clone (same bits either way:
 * no FMA contraction, fixed lane order) */
static inline __attribute__((always_inline)) float row_max(const float *x, int n) {
    float acc[LANES];
    for (int l = 0; l < LANES; l++) acc[l] = -INFINITY;
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
    for (; j < n; j++) acc[0] = x[j] > acc[0] ? x[j] : acc[0];
    float m = acc[0];
    for (int l = 1; l < LANES; l++) m = acc[l] > m ? acc[l] : m;
    return m;
}
static inline __attribute__((always_inline)) float row_dot(const float *x, const float *y, int n) {
    float acc[LANES] = {0};
    int j = 0;
    if (y) {
        for (; j + LANES <= n; j += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += x[j + l] * y[j + l];
        for (; j < n; j++) acc[0] += x[j] * y[j];
    } else {
        for (; j + LANES <= n; j += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += x[j + l];
        for (; j < n; j++) acc[0] += x[j];
    }
    float s = 0.0f;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

/* Softmax of R rows of T scores (one (batch, head): R = T, or R = 1 for the
 * [CLS] query alone) in place, over the real keys (m[j] != 0; m NULL: all
 * real).  Row by row, element-wise and fixed-lane-order arithmetic only, so
 * a row's bits do not depend on R and the AVX-512/AVX2 clones give the
 * baseline's bits (the loop was compiled for SSE only in the portable build:
 * ~2% of a bert-base T128 train step). */
MILES_HOT_CLONES
static void softmax_block(float *A, int R, int T, const int32_t *m, int nreal) {
    const MilesExpShiftFn exp_vec = miles_softmax_exp_fn(); /* AVX2: the exp loop below did not vectorize */
    for (int i = 0; i < R; i++) {
        float *row = A + (size_t)i * T;
        if (nreal == 0) {
            for (int j = 0; j < T; j++) row[j] = 0.0f;
            continue;
        }
        /* padded keys -> -inf: they drop out of the max and exp(-inf)
         * is exactly 0, and the loops below stay branch-free */
        if (nreal < T)
            for (int j = 0; j < T; j++)
                if (!m[j]) row[j] = -INFINITY;
        float mx = row_max(row, T);
        softmax_exp_shift(row, T, mx, exp_vec);
        float sum = row_dot(row, NULL, T);
        float inv = 1.0f / sum; /* sum >= 1: the max term is exp(0) */
        for (int j = 0; j < T; j++) row[j] *= inv;
    }
}

/* The softmax Jacobian on R rows of T: S[i,j] = A[i,j] * (S[i,j] - sum_j
 * A[i,j] S[i,j]).  Row by row; clones as softmax_block. */
MILES_HOT_CLONES
static void softmax_backward_block(float *S, const float *A, int R, int T) {
    for (int i = 0; i < R; i++) {
        const float *a = A + (size_t)i * T;
        float *s = S + (size_t)i * T;
        float dot = row_dot(a, s, T);
        for (int j = 0; j < T; j++) s[j] = a[j] * (s[j] - dot);
    }
}

static int count_real(const int32_t *m, int T) {
    int nreal = 0;
    for (int j = 0; j < T; j++) nreal += m ? (m[j] != 0) : 1;
    return nreal;
}

/* The forward over R query rows per (batch, head): every row (R = T) or
 * each sequence's row 0 alone (R = 1: q and out [B,C], att/attd [B,NH,T]).
 * A row's bits do not depend on R: the GEMM's do not depend on the rows
 * computed together, the softmax runs row by row, and the dropout index is
 * the full tensor's ((b*NH + h)*T + query)*T + key. */
static void attn_forward(float *out, float *att, float *attd, int nwork, const float *q,
                         const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                         int NH, MilesDropoutKey key, int R) {
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int use_drop = attd != NULL && key.p > 0.0f;
    const size_t TT = (size_t)T * T, RT = (size_t)R * T;
    /* nwork > 0: attd is a workspace of nwork [R,T] slots, one per thread
     * (at most nwork threads run); else it is the whole [B,NH,R,T] output */
    int nthr = 1;
#ifdef _OPENMP
    nthr = omp_get_max_threads();
#endif
    if (nwork > 0 && nthr > nwork) nthr = nwork;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr) if ((double)B * NH * RT * hs >= MILES_OMP_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const size_t off = (size_t)b * T * C + (size_t)h * hs, qoff = (size_t)b * R * C + (size_t)h * hs;
        float *A = att + (size_t)bh * RT;
        const int32_t *m = mask ? mask + (size_t)b * T : NULL;

        /* A[R,T] = scale * q_h @ k_h^T */
        miles_gemm_tiny(1, R, T, hs, scale, q + qoff, C, k + off, C, A, T);
        softmax_block(A, R, T, m, count_real(m, T));
        const float *P = A;
        if (use_drop) {
            size_t slot = (size_t)bh;
#ifdef _OPENMP
            if (nwork > 0) slot = (size_t)omp_get_thread_num();
#else
            if (nwork > 0) slot = 0;
#endif
            float *D = attd + slot * RT;
            miles_dropout_range(D, A, RT, (uint64_t)bh * TT, &key, 0);
            P = D;
        }
        /* out_h[R,hs] = P[R,T] @ v_h[T,hs] */
        miles_gemm_tiny(0, R, hs, T, 1.0f, P, T, v + off, C, out + qoff, C);
    }
}

/* Its backward.  R = 1 is the full backward when dout is zero outside row
 * 0: the other query rows add products with a zero factor to dk and dv
 * (and give zero dq rows), so the same calls on row 0 alone give the same
 * bits up to the sign of a zero. */
static void attn_backward(float *dq, float *dk, float *dv, float *scratch, int nslots,
                          const float *dout, const float *att, const float *attd, int recompute, int set,
                          const float *q, const float *k, const float *v, int B, int T, int C,
                          int NH, MilesDropoutKey key, int R) {
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int use_drop = (attd != NULL || recompute) && key.p > 0.0f;
    const size_t TT = (size_t)T * T, RT = (size_t)R * T;
    /* set: each pair's slices of dq, dk, dv are written by one product each,
     * with beta 0 (the bits of beta 1 on zeros: the kernel adds to +0) */
    const float beta = set ? 0.0f : 1.0f;
    const size_t npairs = (size_t)B * NH;
    /* scratch holds `cap` [R,T] slots: nslots (at most that many threads
     * run), or one per pair (nslots 0) */
    const size_t cap = nslots > 0 ? (size_t)nslots : npairs;
    int team = 1;
#ifdef _OPENMP
    team = omp_get_max_threads();
#endif
    if (nslots > 0 && team > nslots) team = nslots;
#pragma omp parallel num_threads(team) if ((double)B * NH * RT * hs >= MILES_OMP_MIN_WORK)
    {
    /* Workspaces: [R,T] slots of scratch per thread (in L2 while used), not
     * one per pair (at T128 the pairs' slots were 25 MB per layer written
     * back to memory, never read): S, and with recompute the redrawn
     * dropped probabilities D next to it when there are slots for both.
     * More threads than slots (nslots 0 only): one slot per pair (S only). */
    size_t nthr = 1, tid = 0;
#ifdef _OPENMP
    nthr = (size_t)omp_get_num_threads();
    tid = (size_t)omp_get_thread_num();
#endif
    const int pair_D = recompute && use_drop && 2 * nthr <= cap;
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const size_t off = (size_t)b * T * C + (size_t)h * hs, qoff = (size_t)b * R * C + (size_t)h * hs;
        const float *A = att + (size_t)bh * RT;
        const float *dO = dout + qoff;
        float *S = scratch + (pair_D ? 2 * tid : nthr <= cap ? tid : (size_t)bh) * RT;
        const float *P = A; /* the probabilities that multiplied v */
        int s_done = 0;     /* S already holds dL/datt */
        if (use_drop && attd) {
            P = attd + (size_t)bh * RT;
        } else if (use_drop && dv && pair_D && (dq || dk)) {
            /* S first, then one draw of the mask for both S and the forward's
             * dropped probabilities (same bits as two draws) */
            float *D = S + RT;
            miles_gemm_tiny(1, R, T, hs, 1.0f, dO, C, v + off, C, S, T);
            miles_dropout_range2(D, A, S, S, RT, (uint64_t)bh * TT, &key);
            P = D;
            s_done = 1;
        } else if (use_drop && dv) { /* the forward's dropped probabilities, again */
            miles_dropout_range(S, A, RT, (uint64_t)bh * TT, &key, 0);
            P = S;
        }

        /* dv_h[T,hs] (+)= P^T @ dout_h  (= with set, += otherwise: beta) */
        if (dv) miles_gemm_serial(1, 0, T, hs, R, 1.0f, P, T, dO, C, beta, dv + off, C);
        if (!dq && !dk) continue;

        if (!s_done) {
            /* S[R,T] = dout_h @ v_h^T = dL/dP (P in S is no longer needed) */
            miles_gemm_tiny(1, R, T, hs, 1.0f, dO, C, v + off, C, S, T);
            /* through the dropout: dL/datt = keep * s * dL/dP (same mask) */
            if (use_drop) miles_dropout_range(S, S, RT, (uint64_t)bh * TT, &key, 0);
        }
        /* softmax Jacobian: dscore = att * (datt - sum_j att*datt); masked
         * keys and empty rows have att = 0 and so get no gradient */
        softmax_backward_block(S, A, R, T);
        /* scores = scale * q k^T:  dq_h (+)= scale * S @ k_h,  dk_h (+)= scale * S^T @ q_h */
        if (dq) miles_gemm_serial(0, 0, R, hs, T, scale, S, T, k + off, C, beta, dq + qoff, C);
        if (dk) miles_gemm_serial(1, 0, T, hs, R, scale, S, T, q + qoff, C, beta, dk + off, C);
    }
    }
}

void attention_forward(float *out, float *att, float *attd, const float *q,
                       const float *k, const float *v, const int32_t *mask,
                       int B, int T, int C, int NH, MilesDropoutKey key) {
    attn_forward(out, att, attd, 0, q, k, v, mask, B, T, C, NH, key, T);
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch,
                        const float *dout, const float *att, const float *attd,
                        const float *q, const float *k, const float *v,
                        int B, int T, int C, int NH, MilesDropoutKey key) {
    attn_backward(dq, dk, dv, scratch, 0, dout, att, attd, 0, 0, q, k, v, B, T, C, NH, key, T);
}

/* The [CLS] query alone: what the last layer's pooled output reads (model_cls.c). */
void attention_forward_cls(float *out, float *att, float *attd, const float *q,
                           const float *k, const float *v, const int32_t *mask,
                           int B, int T, int C, int NH, MilesDropoutKey key) {
    attn_forward(out, att, attd, 0, q, k, v, mask, B, T, C, NH, key, 1);
}

void attention_backward_cls(float *dq, float *dk, float *dv, float *scratch,
                            const float *dout, const float *att, const float *attd,
                            const float *q, const float *k, const float *v,
                            int B, int T, int C, int NH, MilesDropoutKey key) {
    attn_backward(dq, dk, dv, scratch, 0, dout, att, attd, 0, 0, q, k, v, B, T, C, NH, key, 1);
}

/* Training without the [B,NH,R,T] dropped probabilities: the forward keeps
 * them only per thread (work), the backward draws them again from att and
 * the key (ops.h). */
void attention_forward_ws(float *out, float *att, float *work, int nwork, const float *q,
                          const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                          int NH, MilesDropoutKey key, int cls) {
    if (nwork < 1) work = NULL;
    attn_forward(out, att, work, work ? nwork : 0, q, k, v, mask, B, T, C, NH, key, cls ? 1 : T);
}

void attention_backward_ws(float *dq, float *dk, float *dv, float *scratch, int nslots,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int B, int T, int C, int NH, MilesDropoutKey key, int cls) {
    if (nslots < 1) nslots = 1;
    attn_backward(dq, dk, dv, scratch, nslots, dout, att, NULL, 1, 1, q, k, v, B, T, C, NH, key,
                  cls ? 1 : T);
}

int attention_ws_slots(int B, int NH, int threads) {
    const long pairs = (long)B * NH, two = 2L * (threads > 0 ? threads : 1);
    return (int)(pairs < two ? (pairs > 0 ? pairs : 1) : two);
}
