/*
 * model_infer.c — the inference-only forward (model_infer.h).
 *
 * Why a second forward: the reference forward (model_forward.c) keeps every
 * activation for backward and computes all B*T rows, padding included.  For
 * scoring none of that is needed, so this engine
 *   - packs the real tokens of all sequences back to back (row r of sequence
 *     b at off[b] + t, t < len[b], len[b] = last real token + 1): every GEMM,
 *     LayerNorm and GELU runs on real rows only, attention on len x len;
 *   - runs Q, K and V as one GEMM against a fused [3H,H] weight;
 *   - runs the four big encoder GEMMs on weights packed once at build:
 *     bf16/int8 (gemm_lowp.h); fp32 in the own GEMM's B panels (many rows)
 *     and A panels (few rows), same bits as linear_forward
 *     (gemm_internal.h); pooler, MLPs and heads stay fp32 (tiny);
 *   - keeps one workspace, grown only when a batch needs more.
 * fp32 gives the reference's bits: the own GEMM's result for an element
 * depends only on its K and values (gemm_internal.h), padded keys contribute
 * exact zeros there, and the softmax sum below reproduces the reference's
 * lane order for the batch's padded T.  (With MILES_GEMM=blas the bits are
 * BLAS's, as in the reference.)
 */
#include "model_internal.h"
#include "model_infer.h"
#include "gemm_lowp.h"
#include "ops_internal.h"
#include "gemm_internal.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    float *wqkv, *bqkv;                         /* [3H,H] (fp32 only), [3H]; [2H,..]: K|V only (cls_last) */
    MilesPackedWeights *qkv, *ao, *in, *out;    /* bf16/int8 only */
    MilesGemmF32Packed *fqkv, *fao, *fin, *fout; /* fp32 only: W packed once (gemm_internal.h) */
    MilesPackedWeights *q;                      /* the last layer's Q alone (cls_last): bf16/int8 */
    MilesGemmF32Packed *fq;                     /* and fp32 */
} InferLayer;

struct MilesInfer {
    const MilesModel *m;
    MilesPrecision prec;
    int cls_last;                               /* pooler/cls pooling: the last layer on the [CLS] rows */
    InferLayer *L;
    void *ws;
    size_t ws_cap;
    /* views into ws for the current batch */
    float *x, *qkv, *ctx, *res, *ln1, *inter, *mean, *rstd, *att, *qc;
    float *pooled, *cls, *pool_pre, *concat, *logits, *vel_pre, *vel;
    float *num_lin[MILES_MAX_MLP], *fus_lin[MILES_MAX_MLP];
    void *lowp;                                 /* miles_gemm_packed_ws scratch */
    int32_t *off, *len;
    int att_stride;                             /* floats of attention scratch per thread */
};

static void free_layers(MilesInfer *e) {
    if (!e->L) return;
    for (int l = 0; l < e->m->cfg.num_hidden_layers; l++) {
        InferLayer *y = &e->L[l];
        free(y->wqkv);
        free(y->bqkv);
        miles_gemm_packed_free(y->qkv);
        miles_gemm_packed_free(y->q);
        miles_gemm_f32_packed_free(y->fq);
        miles_gemm_packed_free(y->ao);
        miles_gemm_packed_free(y->in);
        miles_gemm_packed_free(y->out);
        miles_gemm_f32_packed_free(y->fqkv);
        miles_gemm_f32_packed_free(y->fao);
        miles_gemm_f32_packed_free(y->fin);
        miles_gemm_f32_packed_free(y->fout);
    }
    free(e->L);
    e->L = NULL;
}

void miles_infer_free(MilesInfer *e) {
    if (!e) return;
    free_layers(e);
    free(e->ws);
    free(e);
}

MilesPrecision miles_infer_precision(const MilesInfer *e) { return e ? e->prec : MILES_PRECISION_FP32; }

int miles_infer_build(MilesInfer **out, const MilesModel *m, MilesPrecision prec) {
    if (!out || !m) return miles_error(MILES_EINVAL, "miles_infer_build: NULL argument");
    *out = NULL;
    MILES_TRY(miles_backend_check("cpu", prec, 0));
    const MilesConfig *c = &m->cfg;
    const int H = c->hidden_size, I = c->intermediate_size, NL = c->num_hidden_layers;
    MilesInfer *e = miles_calloc(1, sizeof *e);
    if (!e) return MILES_ENOMEM;
    e->m = m;
    e->prec = prec;
    e->cls_last = c->pooling != MILES_POOL_MEAN && NL > 0;
    e->L = miles_calloc((size_t)NL, sizeof *e->L);
    int s = e->L ? MILES_OK : MILES_ENOMEM;
    const int lowp = prec != MILES_PRECISION_FP32;
    const MilesGemmPrecision gp = prec == MILES_PRECISION_INT8 ? MILES_GEMM_INT8 : MILES_GEMM_BF16;
    for (int l = 0; s == MILES_OK && l < NL; l++) {
        const MilesLayerP *w = &m->P.layers[l];
        InferLayer *y = &e->L[l];
        /* the last layer with cls_last: K|V fused for every row, Q apart for the [CLS] rows */
        const int q_apart = e->cls_last && l == NL - 1, j0 = q_apart ? 1 : 0, nf = (3 - j0) * H;
        y->wqkv = miles_aligned_alloc((size_t)nf * H * sizeof(float));
        y->bqkv = miles_aligned_alloc((size_t)nf * sizeof(float));
        if (!y->wqkv || !y->bqkv) { s = miles_error(MILES_ENOMEM, "inference: out of memory for layer %d", l); break; }
        const MilesLinP *src[3] = {&w->q, &w->k, &w->v};
        for (int j = j0; j < 3; j++) {
            memcpy(y->wqkv + (size_t)(j - j0) * H * H, src[j]->w, (size_t)H * H * sizeof(float));
            memcpy(y->bqkv + (size_t)(j - j0) * H, src[j]->b, (size_t)H * sizeof(float));
        }
        if (lowp) {
            s = miles_gemm_pack(&y->qkv, gp, y->wqkv, nf, H, H);
            if (!s && q_apart) s = miles_gemm_pack(&y->q, gp, w->q.w, H, H, H);
            if (!s) s = miles_gemm_pack(&y->ao, gp, w->attn_out.w, H, H, H);
            if (!s) s = miles_gemm_pack(&y->in, gp, w->inter.w, I, H, H);
            if (!s) s = miles_gemm_pack(&y->out, gp, w->out.w, H, I, I);
            free(y->wqkv); /* the packed copy replaces it */
            y->wqkv = NULL;
        } else {
            y->fqkv = miles_gemm_f32_pack(y->wqkv, nf, H, H);
            if (q_apart && !(y->fq = miles_gemm_f32_pack(w->q.w, H, H, H)))
                s = miles_error(MILES_ENOMEM, "inference: out of memory for the packed fp32 weights of layer %d", l);
            y->fao = miles_gemm_f32_pack(w->attn_out.w, H, H, H);
            y->fin = miles_gemm_f32_pack(w->inter.w, I, H, H);
            y->fout = miles_gemm_f32_pack(w->out.w, H, I, I);
            if (!y->fqkv || !y->fao || !y->fin || !y->fout)
                s = miles_error(MILES_ENOMEM, "inference: out of memory for the packed fp32 weights of layer %d", l);
        }
    }
    if (s != MILES_OK) {
        miles_infer_free(e);
        return s;
    }
    *out = e;
    return MILES_OK;
}

/* ------------------------------------------------------------ workspace */

static size_t ws_layout(MilesInfer *e, void *base, int B, int rows, int Lmax, int nt) {
    const MilesModel *m = e->m;
    const MilesConfig *c = &m->cfg;
    const size_t H = c->hidden_size, I = c->intermediate_size, R = rows;
    MilesBump b = {base, 0};
    e->x = MILES_BUMP_F32(&b, R * H);
    e->qkv = MILES_BUMP_F32(&b, R * 3 * H);
    e->ctx = MILES_BUMP_F32(&b, R * H);
    e->res = MILES_BUMP_F32(&b, R * H);
    e->ln1 = MILES_BUMP_F32(&b, R * H);
    e->inter = MILES_BUMP_F32(&b, R * I);
    e->mean = MILES_BUMP_F32(&b, R);
    e->rstd = MILES_BUMP_F32(&b, R);
    e->qc = MILES_BUMP_F32(&b, (size_t)B * H);
    e->att_stride = (int)(((size_t)Lmax * Lmax + 15) / 16 * 16);
    e->att = MILES_BUMP_F32(&b, (size_t)nt * e->att_stride);
    e->pooled = MILES_BUMP_F32(&b, (size_t)B * H);
    e->cls = MILES_BUMP_F32(&b, (size_t)B * H);
    e->pool_pre = MILES_BUMP_F32(&b, (size_t)B * H);
    for (int i = 0; i < c->n_numeric; i++) e->num_lin[i] = MILES_BUMP_F32(&b, (size_t)B * c->numeric_widths[i]);
    e->concat = MILES_BUMP_F32(&b, (size_t)B * m->cat_w);
    for (int i = 0; i < c->n_fusion; i++) e->fus_lin[i] = MILES_BUMP_F32(&b, (size_t)B * c->fusion_widths[i]);
    e->logits = MILES_BUMP_F32(&b, (size_t)B * 2);
    e->vel_pre = MILES_BUMP_F32(&b, B);
    e->vel = MILES_BUMP_F32(&b, B);
    e->off = MILES_BUMP_I32(&b, B);
    e->len = MILES_BUMP_I32(&b, B);
    size_t lp = 0;
    if (e->prec != MILES_PRECISION_FP32 && c->num_hidden_layers > 0) {
        const InferLayer *y = &e->L[0];
        const MilesPackedWeights *ws[4] = {y->qkv, y->ao, y->in, y->out};
        for (int i = 0; i < 4; i++) {
            size_t n = miles_gemm_packed_scratch(ws[i], rows);
            if (n > lp) lp = n;
        }
    }
    e->lowp = lp ? miles_bump(&b, lp) : NULL;
    return b.off;
}

/* Grow (never shrink) the workspace: no allocation once the largest batch was seen. */
static int ensure_ws(MilesInfer *e, int B, int rows, int Lmax, int nt) {
    size_t need = ws_layout(e, NULL, B, rows, Lmax, nt);
    if (need > e->ws_cap) {
        free(e->ws);
        e->ws_cap = 0;
        /* headroom so slowly growing batches do not reallocate every call */
        size_t cap = need + need / 4;
        if (!(e->ws = miles_aligned_alloc(cap)))
            return miles_error(MILES_ENOMEM, "inference: cannot allocate %.1f MB of workspace for B=%d rows=%d",
                               cap / 1e6, B, rows);
        e->ws_cap = cap;
    }
    ws_layout(e, e->ws, B, rows, Lmax, nt);
    return MILES_OK;
}

/* ------------------------------------------------------------ layers */

/* res += a, then x = LayerNorm(res) over rows [i0, i1) (residual_forward +
 * layernorm_forward, their bits: both are per row, so any row split gives
 * the same result). */
typedef struct ResLn {
    MilesInfer *e;
    float *x, *res;
    const float *a;
    const MilesLnP *ln;
    int H;
    float eps;
} ResLn;

static void res_ln_rows(void *ctx, int i0, int i1) {
    const ResLn *r = ctx;
    const size_t o = (size_t)i0 * r->H, n = (size_t)(i1 - i0) * r->H;
    residual_forward(r->res + o, r->res + o, r->a + o, n);
    layernorm_forward(r->x + o, r->e->mean + i0, r->e->rstd + i0, r->res + o, r->ln->w, r->ln->b, i1 - i0, r->H,
                      r->eps);
}

/* The same over all rows, in 64-row chunks in one region (each chunk
 * normalized while in cache): for the paths without the GEMM epilogue. */
static void residual_ln(const ResLn *r, int rows) {
    enum { CHUNK = 64 };
    const int nch = (rows + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if ((double)rows * r->H >= MILES_OMP_MIN_WORK && nch > 1)
    for (int c = 0; c < nch; c++) res_ln_rows((void *)r, c * CHUNK, c * CHUNK + CHUNK < rows ? c * CHUNK + CHUNK : rows);
}

/* out[rows, n] = inp @ W^T + b: bf16/int8 through their packed weights;
 * fp32 through the pre-packed W (fw) with linear_forward's arithmetic (bias
 * as C's value before the first K slice, then C = fma(1, acc, C) per K
 * slice: the same bits), or linear_forward itself on BLAS.  rl (attention
 * output and FFN down): then the residual + LayerNorm, on the fp32 path as
 * the GEMM's row epilogue (rows still in L2, no region of its own). */
static int lin(MilesInfer *e, float *out, const float *inp, const float *w, const MilesPackedWeights *pw,
               const MilesGemmF32Packed *fw, const float *bias, int rows, int k, int n, int gelu, const ResLn *rl) {
    if (pw) { /* GELU fused as in the fp32 path */
        MILES_TRY(miles_gemm_packed_ws_gelu(pw, rows, inp, k, bias, out, n, e->lowp, gelu));
    } else if (fw && !miles_gemm_blas_active()) { /* MILES_GEMM=blas: the reference op, BLAS's bits */
        const MilesGemmRowsDone done = {res_ln_rows, (void *)rl};
        miles_gemm_f32_packed_bias_rows(fw, rows, inp, k, bias, out, n, gelu, rl ? &done : NULL);
        return MILES_OK;
    } else {
        linear_forward(out, inp, w, bias, rows, k, n);
        if (gelu) gelu_forward(out, out, (size_t)rows * n); /* fp32 on BLAS */
    }
    if (rl) residual_ln(rl, rows);
    return MILES_OK;
}

/* Row softmax of the L x L scores S in place, masked keys (mk[j] == 0) at
 * -inf when any, with attention_forward's bits: the max is order-free, exp
 * is softmax_exp, and the sum reproduces the reference's lane order for the
 * batch's padded T (16 lanes, j % 16 for j < T16, lane 0 after; the padded
 * keys add exact zeros there).  Written as 16-wide lane blocks and cloned
 * per ISA so that every loop vectorizes (the scalar acc[j % 16] form and
 * the max did not, ~16% of an int8 forward). */
MILES_HOT_CLONES
static void softmax_rows(float *S, int R, int L, const int32_t *mk, int masked, int T16) {
    const int L16 = L < T16 ? L : T16; /* entries summed lane-wise */
    const MilesExpShiftFn exp_vec = miles_softmax_exp_fn(); /* AVX2: the exp loop did not vectorize */
    for (int i = 0; i < R; i++) {
        float *row = S + (size_t)i * L;
        if (masked)
            for (int j = 0; j < L; j++) row[j] = mk[j] ? row[j] : -INFINITY;
        float mx16[16];
        for (int l = 0; l < 16; l++) mx16[l] = -INFINITY;
        int j = 0;
        for (; j + 16 <= L; j += 16)
            for (int l = 0; l < 16; l++) mx16[l] = row[j + l] > mx16[l] ? row[j + l] : mx16[l];
        for (int l = 0; j + l < L; l++) mx16[l] = row[j + l] > mx16[l] ? row[j + l] : mx16[l];
        float mx = -INFINITY;
        for (int l = 0; l < 16; l++) mx = mx16[l] > mx ? mx16[l] : mx;
        softmax_exp_shift(row, L, mx, exp_vec);
        float acc[16] = {0};
        for (j = 0; j + 16 <= L16; j += 16)
            for (int l = 0; l < 16; l++) acc[l] += row[j + l];
        for (int l = 0; j + l < L16; l++) acc[l] += row[j + l];
        for (j = L16; j < L; j++) acc[0] += row[j];
        float sum = 0.0f;
        for (int l = 0; l < 16; l++) sum += acc[l];
        float inv = 1.0f / sum;
        for (j = 0; j < L; j++) row[j] *= inv;
    }
}

/* Self-attention over each sequence's first len[b] rows; q, k, v are the
 * column blocks of the fused qkv rows.  Same arithmetic as attention_forward
 * (ops_attention.c) for the real rows of the padded batch.  cls (the last
 * layer with cls_last): the [CLS] query alone, row 0 of the same per
 * (batch, head) by the same calls on one row (the GEMM's row bits do not
 * depend on the rows computed with it): q from e->qc [B,H], k|v from the
 * qkv rows of 2H, out to e->ctx row b. */
static void attention_rows(MilesInfer *e, const int32_t *mask, int B, int T, int H, int NH, int cls) {
    const int hs = H / NH, ld = (cls ? 2 : 3) * H;
    const float scale = 1.0f / sqrtf((float)hs);
    double work = 0.0;
    for (int b = 0; b < B; b++) work += (double)(cls ? 1 : e->len[b]) * e->len[b] * hs * NH;
#pragma omp parallel for schedule(dynamic, 1) if (work >= MILES_OMP_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH, L = e->len[b], R = cls ? 1 : L;
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *S = e->att + (size_t)tid * e->att_stride;
        const float *k = e->qkv + (size_t)e->off[b] * ld + (size_t)h * hs + (cls ? 0 : H), *v = k + H;
        const float *q = cls ? e->qc + (size_t)b * H + (size_t)h * hs : k - H;
        const int ldq = cls ? H : ld;
        float *o = e->ctx + (size_t)(cls ? b : e->off[b]) * H + (size_t)h * hs;
        const int32_t *mk = mask + (size_t)b * T;
        int nreal = 0;
        for (int j = 0; j < L; j++) nreal += mk[j] != 0;
        if (nreal == 0) { /* no real key: output 0, as the reference */
            for (int i = 0; i < R; i++) memset(o + (size_t)i * H, 0, (size_t)hs * sizeof(float));
            continue;
        }
        miles_gemm_tiny(1, R, L, hs, scale, q, ldq, k, ld, S, L);
        softmax_rows(S, R, L, mk, nreal < L, T / 16 * 16);
        miles_gemm_tiny(0, R, hs, L, 1.0f, S, L, v, ld, o, H);
    }
}

static void head(MilesInfer *e, const MilesBatch *bt) {
    const MilesModel *m = e->m;
    const MilesConfig *c = &m->cfg;
    const MilesParams *P = &m->P;
    const int B = bt->B, T = bt->T, H = c->hidden_size;
    /* pooling over the real rows (mean: masked rows skipped, as mean_pool_forward) */
    for (int b = 0; b < B; b++) {
        /* the [CLS] row: compact after a cls_last layer */
        const float *first = e->x + (size_t)(e->cls_last ? b : e->off[b]) * H;
        float *o = e->pooled + (size_t)b * H;
        if (c->pooling == MILES_POOL_POOLER) memcpy(e->cls + (size_t)b * H, first, (size_t)H * sizeof(float));
        else if (c->pooling == MILES_POOL_CLS) memcpy(o, first, (size_t)H * sizeof(float));
        else {
            const int32_t *mk = bt->attention_mask + (size_t)b * T;
            for (int j = 0; j < H; j++) o[j] = 0.0f;
            for (int t = 0; t < e->len[b]; t++) {
                if (!mk[t]) continue;
                const float *xr = first + (size_t)t * H;
                for (int j = 0; j < H; j++) o[j] += xr[j];
            }
            float cnt = 0.0f;
            for (int t = 0; t < T; t++) cnt += (float)(mk[t] != 0);
            float inv = 1.0f / fmaxf(cnt, 1e-9f);
            for (int j = 0; j < H; j++) o[j] *= inv;
        }
    }
    if (c->pooling == MILES_POOL_POOLER) {
        linear_forward(e->pool_pre, e->cls, P->pooler.w, P->pooler.b, B, H, H);
        tanh_forward(e->pooled, e->pool_pre, (size_t)B * H);
    }
    const float *num = bt->features;
    int in_w = c->num_features;
    for (int i = 0; i < c->n_numeric; i++) {
        const int w = c->numeric_widths[i];
        linear_forward(e->num_lin[i], num, P->numeric[i].w, P->numeric[i].b, B, in_w, w);
        relu_forward(e->num_lin[i], e->num_lin[i], (size_t)B * w);
        num = e->num_lin[i];
        in_w = w;
    }
    concat_forward(e->concat, e->pooled, num, B, H, m->num_w);
    const float *feat = e->concat;
    in_w = m->cat_w;
    for (int i = 0; i < c->n_fusion; i++) {
        const int w = c->fusion_widths[i];
        linear_forward(e->fus_lin[i], feat, P->fusion[i].w, P->fusion[i].b, B, in_w, w);
        relu_forward(e->fus_lin[i], e->fus_lin[i], (size_t)B * w);
        feat = e->fus_lin[i];
        in_w = w;
    }
    linear_forward(e->logits, feat, P->cls.w, P->cls.b, B, m->feat_w, 2);
    linear_forward(e->vel_pre, feat, P->reg.w, P->reg.b, B, m->feat_w, 1);
    if (c->velocity_activation == MILES_VEL_SIGMOID) sigmoid_forward(e->vel, e->vel_pre, B);
    else memcpy(e->vel, e->vel_pre, (size_t)B * sizeof(float));
}

int miles_infer_forward(MilesInfer *e, const MilesBatch *bt, float *logits, float *velocity) {
    if (!e) return miles_error(MILES_EINVAL, "miles_infer_forward: engine is NULL");
    const MilesModel *m = e->m;
    MILES_TRY(miles_model_validate_batch(m, bt));
    const MilesConfig *c = &m->cfg;
    const MilesParams *P = &m->P;
    const int B = bt->B, T = bt->T, H = c->hidden_size, I = c->intermediate_size;
    const int32_t *mask = bt->attention_mask;
    /* real length of each sequence: up to its last real token, at least the
     * first row (CLS pooling reads it) */
    int rows = 0, Lmax = 1;
    for (int b = 0; b < B; b++) {
        int L = T;
        while (L > 1 && !mask[(size_t)b * T + L - 1]) L--;
        rows += L;
        if (L > Lmax) Lmax = L;
    }
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    MILES_TRY(ensure_ws(e, B, rows, Lmax, nt));
    for (int b = 0, r = 0; b < B; b++) {
        int L = T;
        while (L > 1 && !mask[(size_t)b * T + L - 1]) L--;
        e->off[b] = r;
        e->len[b] = L;
        r += L;
    }
    /* embeddings (same sum and order as embedding_forward) -> LayerNorm */
#pragma omp parallel for schedule(static) if ((double)rows * H > 65536.0)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < e->len[b]; t++) {
            const size_t i = (size_t)b * T + t;
            float *o = e->res + (size_t)(e->off[b] + t) * H;
            const float *we = P->wte + (size_t)bt->input_ids[i] * H, *p = P->wpe + (size_t)t * H;
            const float *y = P->wtt + (size_t)(bt->token_type_ids ? bt->token_type_ids[i] : 0) * H;
            for (int j = 0; j < H; j++) o[j] = we[j] + p[j] + y[j];
        }
    layernorm_forward(e->x, e->mean, e->rstd, e->res, P->emb_ln.w, P->emb_ln.b, rows, H, c->layer_norm_eps);

    for (int l = 0; l < c->num_hidden_layers; l++) {
        const MilesLayerP *w = &P->layers[l];
        const InferLayer *y = &e->L[l];
        const float eps = c->layer_norm_eps;
        const ResLn rl1 = {e, e->ln1, e->res, e->x, &w->ln1, H, eps}, rl2 = {e, e->x, e->res, e->ln1, &w->ln2, H, eps};
        if (e->cls_last && l == c->num_hidden_layers - 1) {
            /* only the [CLS] rows reach the pooled vector: K and V for every
             * row, the rest for B rows (2 of the layer's 12 H^2 per token) */
            MILES_TRY(lin(e, e->qkv, e->x, y->wqkv, y->qkv, y->fqkv, y->bqkv, rows, H, 2 * H, 0, NULL));
            /* x's [CLS] rows to the front: row off[b] -> b, in order (off[b] >= b,
             * so no row is overwritten before it is read) */
            for (int b = 0; b < B; b++)
                if (e->off[b] != b) memcpy(e->x + (size_t)b * H, e->x + (size_t)e->off[b] * H, (size_t)H * sizeof(float));
            MILES_TRY(lin(e, e->qc, e->x, w->q.w, y->q, y->fq, w->q.b, B, H, H, 0, NULL));
            attention_rows(e, mask, B, T, H, c->num_attention_heads, 1);
            MILES_TRY(lin(e, e->res, e->ctx, w->attn_out.w, y->ao, y->fao, w->attn_out.b, B, H, H, 0, &rl1));
            MILES_TRY(lin(e, e->inter, e->ln1, w->inter.w, y->in, y->fin, w->inter.b, B, H, I, 1, NULL));
            MILES_TRY(lin(e, e->res, e->inter, w->out.w, y->out, y->fout, w->out.b, B, I, H, 0, &rl2));
            break;
        }
        MILES_TRY(lin(e, e->qkv, e->x, y->wqkv, y->qkv, y->fqkv, y->bqkv, rows, H, 3 * H, 0, NULL));
        attention_rows(e, mask, B, T, H, c->num_attention_heads, 0);
        /* res = attention output; res += x; ln1 = LayerNorm(res) */
        MILES_TRY(lin(e, e->res, e->ctx, w->attn_out.w, y->ao, y->fao, w->attn_out.b, rows, H, H, 0, &rl1));
        MILES_TRY(lin(e, e->inter, e->ln1, w->inter.w, y->in, y->fin, w->inter.b, rows, H, I, 1, NULL));
        /* res = FFN output; res += ln1; x = LayerNorm(res) */
        MILES_TRY(lin(e, e->res, e->inter, w->out.w, y->out, y->fout, w->out.b, rows, I, H, 0, &rl2));
    }
    head(e, bt);
    if (logits) memcpy(logits, e->logits, (size_t)B * 2 * sizeof(float));
    if (velocity) memcpy(velocity, e->vel, (size_t)B * sizeof(float));
    return MILES_OK;
}

/* ------------------------------------------------------------ model hooks */

int miles_model_set_precision(MilesModel *m, MilesPrecision prec) {
    if (!m) return miles_error(MILES_EINVAL, "miles_model_set_precision: model is NULL");
    MilesInfer *e = NULL;
    MILES_TRY(miles_infer_build(&e, m, prec));
    miles_infer_free(m->infer);
    m->infer = e;
    return MILES_OK;
}

void miles_model_drop_infer(MilesModel *m) {
    if (!m) return;
    miles_infer_free(m->infer);
    m->infer = NULL;
}
