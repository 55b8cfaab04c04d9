/*
 * ops.h — the CPU fp32 reference ops (internal).  This file is the
 * specification: every op is a forward/backward pair in plain C + OpenMP and
 * the CUDA kernels in kernels/ mirror these functions one for one (same names
 * with a _cuda suffix, same argument order).
 *
 * Conventions
 *   - Shapes in comments: B batch, T tokens, C channels (hidden H), NH heads,
 *     hs = C/NH head size, OC output channels, N = B*T rows, V vocab,
 *     P max positions.
 *   - Row-major everywhere.  Linear weights are PyTorch's [OC, C] (out, in):
 *     out = inp @ W^T + b.
 *   - Every *_backward ACCUMULATES (+=) into all of its gradient outputs
 *     (dinp, dweight, dbias): the caller zeroes them.  This makes residual
 *     branches and gradient accumulation free (llm.c's convention).
 *   - Gradient outputs may be NULL when not needed (e.g. dinp of the first op).
 *   - Dropout uses a counter-based RNG: mask bit for element i of tensor
 *     `tensor_id` at optimizer step `step` under `seed` is a pure function of
 *     (seed, step, tensor_id, i), so a GPU reproduces the same masks.
 */
#ifndef MILES_OPS_H
#define MILES_OPS_H

#include <stdint.h>
#include <stddef.h>

/* ---------------------------------------------------------------- GEMM */
/* Row-major SGEMM: C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C.
 * transA: A is stored [K,M] (lda >= M) instead of [M,K] (lda >= K); same for B.
 * The own GEMM (libmiles/gemm.c) by default: its bits depend only on the
 * shape and values (not on threads, batch composition, CPU or build host;
 * libmiles/gemm_internal.h).  CBLAS/OpenBLAS on opt-in (MILES_GEMM=blas or
 * miles_gemm_use_blas(1)), reproducible only for a fixed thread count and
 * shape.  Both are tested to agree.
 * beta == 0 never reads C (NaN garbage is fine); K == 0 only scales C.
 * Safe to call from inside an OpenMP parallel region (it then runs the own
 * GEMM on the calling thread instead of CBLAS's thread pool). */
void miles_gemm(int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta,
                float *C, int ldc);
/* Select the backend (1 = CBLAS if compiled in, 0 = own GEMM, the default);
 * returns the previous setting. Not thread-safe: set once at start-up or in
 * tests.  Selecting CBLAS sets OpenBLAS to one thread (it runs inside the
 * OpenMP threads' static split). */
int miles_gemm_use_blas(int on);
/* 1 if this build has a CBLAS backend. */
int miles_gemm_has_blas(void);

/* ------------------------------------------------------------- dropout */
/* Philox4x32-10 counter-based generator: 4 x uint32 for (key, counter). */
void miles_philox4x32(uint32_t out[4], uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo);
/* Uniform in [0,1) for element `index` of tensor `tensor_id` at (seed, step).
 * The exact bit-level mapping is the "RNG CONTRACT" in dropout.c (the CUDA
 * kernels reproduce it; tests/test_dropout.c pins values). */
float miles_dropout_uniform(uint64_t seed, uint64_t step, uint32_t tensor_id, uint64_t index);
typedef struct MilesDropoutKey {
    float p;            /* drop probability; 0 = identity */
    uint64_t seed;
    uint64_t step;
    uint32_t tensor_id; /* distinct per dropout site in the model */
} MilesDropoutKey;
/* out[i] = keep ? inp[i] * s : 0, keep = uniform(i) >= p, s = 1.0f/(1.0f-p)
 * computed in fp32.  p <= 0: exact identity; p >= 1: all zeros.  In-place OK. */
void dropout_forward(float *out, const float *inp, size_t n, MilesDropoutKey key);
/* dinp[i] += keep ? dout[i] * s : 0 (mask regenerated from the key). */
void dropout_backward(float *dinp, const float *dout, size_t n, MilesDropoutKey key);
/* dinp[i] = 0 + (keep ? dout[i] * s : 0): dropout_backward into a zeroed dinp,
 * bit for bit (a -0 gradient becomes +0 as it does there), without the zeroing. */
void dropout_backward_set(float *dinp, const float *dout, size_t n, MilesDropoutKey key);

/* ---------------------------------------------------------- embeddings */
/* out[B,T,C] = wte[ids] + wpe[t] + wtt[tt]   (tt NULL = all zeros) */
void embedding_forward(float *out, const int32_t *ids, const int32_t *tt,
                       const float *wte, const float *wpe, const float *wtt,
                       int B, int T, int C);
void embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                        const int32_t *ids, const int32_t *tt, int B, int T, int C);

/* ----------------------------------------------------------- layernorm */
/* out[N,C] = (inp - mean) * rstd * w + b; saves mean[N], rstd[N] (biased var,
 * rstd = 1/sqrt(var + eps), as PyTorch). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int N, int C, float eps);
/* dinp += d/dinp; dw, db += their gradients (any may be NULL). */
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int N, int C);
/* The same with dinp = 0 + d/dinp: layernorm_backward into a zeroed dinp,
 * bit for bit, without the zeroing (dinp is not read). */
void layernorm_backward_set(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int N, int C);

/* -------------------------------------------------------------- linear */
/* out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]   (b may be NULL) */
void linear_forward(float *out, const float *inp, const float *w, const float *b,
                    int N, int C, int OC);
/* dinp[N,C] += dout @ w;  dw[OC,C] += dout^T @ inp;  db[OC] += sum_n dout */
void linear_backward(float *dinp, float *dw, float *db, const float *dout,
                     const float *inp, const float *w, int N, int C, int OC);
/* The same, but dinp = dout @ w is written, not accumulated: exactly the bits
 * of linear_backward into a zeroed dinp (the GEMM adds its products to +0
 * there too), without zeroing dinp first or reading it in the GEMM. */
void linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC);

/* Rows taken one in `stride` from larger row-major tensors: inp row n at
 * inp + n*ldi, dinp/out row n at + n*ldo; the rest dense.  linear_forward's
 * bits per row.  linear_backward_rows gives what linear_backward would over
 * all N*stride rows when dout is zero outside the rows n*stride (up to the
 * sign of a zero): dw's sum over the rows runs in the groups the full
 * product's K slices make (gemm.c's contract).  set: dinp written, not
 * accumulated (linear_backward_set). */
void linear_forward_rows(float *out, int ldo, const float *inp, int ldi, const float *w,
                         const float *b, int N, int C, int OC);
void linear_backward_rows(float *dinp, int ldo, float *dw, float *db, const float *dout,
                          const float *inp, int ldi, const float *w, int N, int stride, int C,
                          int OC, int set);

/* ----------------------------------------------------------- attention */
/* Multi-head self-attention core (after the q/k/v projections).
 * q,k,v: [B,T,C] with heads interleaved as HF does (head h uses channels
 * h*hs .. h*hs+hs-1).  mask: [B,T] 1 = real key, 0 = padding (masked keys get
 * probability exactly 0; a row with no real key gets uniform 0 output).
 * att: [B,NH,T,T] softmax probabilities (saved for backward).
 * attd: [B,NH,T,T] probabilities after dropout, or NULL when key.p == 0.
 * out: [B,T,C] = (attd or att) @ v per head.  scale = 1/sqrt(hs).
 * C % NH == 0.  mask NULL = no padding.  attd NULL disables dropout even if
 * key.p > 0.  The dropout element index is the flat row-major index into
 * att [B,NH,T,T]: (b*NH + h)*T*T + query*T + key. */
void attention_forward(float *out, float *att, float *attd, const float *q,
                       const float *k, const float *v, const int32_t *mask,
                       int B, int T, int C, int NH, MilesDropoutKey key);
/* Accumulates into dq, dk, dv [B,T,C] (any may be NULL).  scratch:
 * [B,NH,T,T] workspace, contents on entry ignored.  att/attd/key exactly as
 * returned by / passed to attention_forward. */
void attention_backward(float *dq, float *dk, float *dv, float *scratch,
                        const float *dout, const float *att, const float *attd,
                        const float *q, const float *k, const float *v,
                        int B, int T, int C, int NH, MilesDropoutKey key);

/* Training without keeping the dropped probabilities (B*NH*T*T floats per
 * layer, 25 MB for bert-base B32 T128, written and read back from memory
 * each step): attention_forward with dropout, but each (batch, head)'s
 * dropped probabilities live only in `work` while out is computed: nwork
 * slots of [R,T] floats (R = T, or 1 with cls: the [CLS] query alone as
 * attention_forward_cls), one per thread, and at most nwork threads run.
 * work (nwork >= 1) is required when key.p > 0.  attention_backward_ws draws
 * them again from att and key, and sets dq, dk, dv (not accumulated: any
 * may be NULL); its scratch is nslots [R,T] slots and at most nslots
 * threads run.  With two slots per thread the mask is drawn once for both
 * dL/dP and the probabilities, with one per thread twice (the same bits);
 * attention_ws_slots(B, NH, threads) is the count for two.  Same bits as
 * attention_forward / attention_backward (or their _cls forms) with attd
 * kept and zeroed gradients, for any nslots. */
void attention_forward_ws(float *out, float *att, float *work, int nwork, const float *q,
                          const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                          int NH, MilesDropoutKey key, int cls);
void attention_backward_ws(float *dq, float *dk, float *dv, float *scratch, int nslots,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int B, int T, int C, int NH, MilesDropoutKey key, int cls);
/* The backward's slot count for `threads` threads: two per thread, no
 * more than the B*NH (batch, head) pairs it could use. */
int attention_ws_slots(int B, int NH, int threads);

/* The [CLS] query alone (the last layer when only the pooled output is
 * needed): q, out [B,C] hold each sequence's row 0; att, attd [B,NH,T].
 * Bit for bit row 0 of attention_forward (dropout indices: query 0's). */
void attention_forward_cls(float *out, float *att, float *attd, const float *q,
                           const float *k, const float *v, const int32_t *mask,
                           int B, int T, int C, int NH, MilesDropoutKey key);
/* Its backward: dq, dout [B,C]; dk, dv [B,T,C] accumulated; scratch
 * [B,NH,T].  attention_backward's bits for a dout that is zero outside row
 * 0 (up to the sign of a zero). */
void attention_backward_cls(float *dq, float *dk, float *dv, float *scratch,
                            const float *dout, const float *att, const float *attd,
                            const float *q, const float *k, const float *v,
                            int B, int T, int C, int NH, MilesDropoutKey key);

/* --------------------------------------------------------- activations */
/* exact (erf) GELU: 0.5 x (1 + erf(x/sqrt 2)), erf = miles_erf (ops_internal.h) */
void gelu_forward(float *out, const float *inp, size_t n);
/* dinp += dout * gelu'(inp) */
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* dinp = 0 + dout * gelu'(inp): gelu_backward into a zeroed dinp, bit for
 * bit, without the zeroing; dinp == dout allowed (in place). */
void gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t n);
/* out[i] = miles_erf(inp[i]): the erf the GELU pair uses (tests) */
void erf_forward(float *out, const float *inp, size_t n);
void relu_forward(float *out, const float *inp, size_t n);
/* relu_backward tests out > 0; the pre-activation input works equally. */
void relu_backward(float *dinp, const float *out, const float *dout, size_t n);
void tanh_forward(float *out, const float *inp, size_t n);
void tanh_backward(float *dinp, const float *out, const float *dout, size_t n);
void sigmoid_forward(float *out, const float *inp, size_t n);
void sigmoid_backward(float *dinp, const float *out, const float *dout, size_t n);
/* out = a + b (residual) */
void residual_forward(float *out, const float *a, const float *b, size_t n);
void residual_backward(float *da, float *db, const float *dout, size_t n);

/* ------------------------------------------------------------- pooling */
/* out[B,C] = inp[b,0,:] (the [CLS] row) */
void cls_pool_forward(float *out, const float *inp, int B, int T, int C);
void cls_pool_backward(float *dinp, const float *dout, int B, int T, int C);
/* out[B,C] = sum_t mask*inp / max(sum_t mask, 1e-9)  (sentence-transformers);
 * mask NULL = every token real; a row with no real token gives 0. */
void mean_pool_forward(float *out, const float *inp, const int32_t *mask, int B, int T, int C);
void mean_pool_backward(float *dinp, const float *dout, const int32_t *mask, int B, int T, int C);

/* -------------------------------------------------------------- concat */
/* out[B, C1+C2] = [a[B,C1], b[B,C2]] */
void concat_forward(float *out, const float *a, const float *b, int B, int C1, int C2);
void concat_backward(float *da, float *db, const float *dout, int B, int C1, int C2);

/* -------------------------------------------------------------- losses */
/* Weighted cross-entropy over 2..K classes, PyTorch semantics:
 * loss = sum_b w[y_b] * (-log softmax(logits_b)[y_b]) / sum_b w[y_b].
 * probs[B,K] saved for backward.  Returns the loss.  class_weight NULL =
 * unweighted.  Labels must be in [0,K) (validated by the caller); all-zero
 * weights give NaN (0/0), as in PyTorch. */
float crossentropy_forward(float *probs, const float *logits, const int32_t *labels,
                           const float *class_weight, int B, int K);
/* dlogits[B,K] += scale * d(loss)/d(logits) */
void crossentropy_backward(float *dlogits, const float *probs, const int32_t *labels,
                           const float *class_weight, int B, int K, float scale);
/* mean squared error: sum_b (pred-target)^2 / B */
float mse_forward(const float *pred, const float *target, int B);
void mse_backward(float *dpred, const float *pred, const float *target, int B, float scale);

#endif
