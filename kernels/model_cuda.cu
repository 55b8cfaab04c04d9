/*
 * model_cuda.cu — the Miles model on one GPU: activation arena, batch
 * packing, forward and backward, mirroring libmiles/model_forward.c and
 * model_backward.c op by op (the CPU fp32 path is the spec).  Build/free,
 * clipping, AdamW, the fp16 loss scaler and weight copies are in
 * model_cuda_state.cu; the struct is in model_cuda_internal.h.
 *
 * The CPU structs are reused with DEVICE pointers: MilesParams (views into
 * the device parameter / gradient blocks at the CPU offsets), MilesActs and
 * MilesLayerActs (the activation arena, laid out like acts_layout) and
 * MilesGradActs (the backward scratch, like grad_layout).  So the code below
 * reads like the CPU files with a _cuda suffix and a stream.
 *
 * Differences from the CPU, all on purpose:
 *   - post-LN residual + LayerNorm uses the fused kernel
 *     (residual_layernorm_forward_cuda, equal to the two CPU ops);
 *   - the CE and MSE values are computed on the device and combined on the
 *     host (w_cls*ce + w_reg*mse in float, as the CPU) only when asked;
 *   - the word / token-type embedding gradients use per-id token lists built
 *     on the host while packing the batch (CSR, token order), so they are
 *     summed in the CPU's order without atomics: bitwise reproducible.
 */
#include "model_cuda_internal.h"

/* ------------------------------------------------------------ helpers */


/* ------------------------------------------------------------ layouts */

static void inputs_layout(const MilesCudaModel *cm, Bump *b, int B, int T, Inputs *in) {
    const size_t N = (size_t)B * T;
    in->step = (StepParams *)bump(b, sizeof(StepParams));
    in->ids = IN(b, N);
    in->tt = IN(b, N);
    in->mask = IN(b, N);
    in->labels = IN(b, B);
    in->features = FL(b, (size_t)B * cm->cfg.num_features);
    in->vel_target = FL(b, B);
    in->uniq = IN(b, N);
    in->offs = IN(b, N + 1);
    in->pos = IN(b, N);
    in->tt_offs = IN(b, (size_t)cm->cfg.type_vocab_size + 1);
    in->tt_pos = IN(b, N);
    in->seg_counts = in->seg_pos = in->seg_row = in->seg_beg = in->seg_multi = NULL;
    in->multi_row = in->multi_beg = in->multi_end = NULL;
    if (cm->fast) {
        const size_t S = MILES_EMB_SEG_MAX(N), M = MILES_EMB_MULTI_MAX(N, (size_t)cm->cfg.type_vocab_size);
        in->seg_counts = IN(b, 2);
        in->seg_pos = IN(b, 2 * N);
        in->seg_row = IN(b, S);
        in->seg_beg = IN(b, S + 1);
        in->seg_multi = IN(b, S);
        in->multi_row = IN(b, M);
        in->multi_beg = IN(b, M);
        in->multi_end = IN(b, M);
    }
}

/* acts_layout of model_forward.c after the inputs block. */
static size_t arena_layout(MilesCudaModel *cm, void *base, int B, int T, int attd) {
    const MilesConfig *c = &cm->cfg;
    const size_t H = c->hidden_size, I = c->intermediate_size, N = (size_t)B * T;
    const size_t att = (size_t)B * c->num_attention_heads * T * T;
    MilesActs *A = &cm->A;
    Bump b = {(char *)base, 0};
    inputs_layout(cm, &b, B, T, &cm->din);
    cm->in_bytes = b.off;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) {
        b.off = fast_arena_layout(cm, base, b.off, B, T);
        A->layers = NULL;
        goto heads;
    }
#endif
    A->emb_sum = FL(&b, N * H);
    A->emb_mean = FL(&b, N);
    A->emb_rstd = FL(&b, N);
    A->emb_out = FL(&b, N * H);
    A->layers = cm->layer_acts;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        MilesLayerActs *y = &cm->layer_acts[l];
        y->q = FL(&b, N * H);
        y->k = FL(&b, N * H);
        y->v = FL(&b, N * H);
        y->att = FL(&b, att);
        y->attd = attd ? FL(&b, att) : NULL;
        y->ctx = FL(&b, N * H);
        y->res1 = FL(&b, N * H);
        y->mean1 = FL(&b, N);
        y->rstd1 = FL(&b, N);
        y->ln1 = FL(&b, N * H);
        y->inter = FL(&b, N * I);
        y->gelu = FL(&b, N * I);
        y->res2 = FL(&b, N * H);
        y->mean2 = FL(&b, N);
        y->rstd2 = FL(&b, N);
        y->ln2 = FL(&b, N * H);
    }
#ifndef MILES_CUDA_HOST_EMULATION
heads:
#endif
    A->cls = FL(&b, (size_t)B * H);
    A->pool_pre = FL(&b, (size_t)B * H);
    A->pooled = FL(&b, (size_t)B * H);
    A->text = FL(&b, (size_t)B * H);
    for (int i = 0; i < c->n_numeric; i++) {
        A->num_lin[i] = FL(&b, (size_t)B * c->numeric_widths[i]);
        A->num_drop[i] = FL(&b, (size_t)B * c->numeric_widths[i]);
    }
    A->concat = FL(&b, (size_t)B * cm->cat_w);
    for (int i = 0; i < c->n_fusion; i++) {
        A->fus_lin[i] = FL(&b, (size_t)B * c->fusion_widths[i]);
        A->fus_drop[i] = FL(&b, (size_t)B * c->fusion_widths[i]);
    }
    A->logits = FL(&b, (size_t)B * 2);
    A->probs = FL(&b, (size_t)B * 2);
    A->vel_pre = FL(&b, B);
    A->vel = FL(&b, B);
    /* the batch copies live in the inputs block */
    A->features = cm->din.features;
    A->vel_target = cm->din.vel_target;
    A->ids = cm->din.ids;
    A->tt = cm->din.tt;
    A->mask = cm->din.mask;
    A->labels = cm->din.labels;
    return b.off;
}

/* grad_layout of model_backward.c. */
static size_t grad_layout(MilesCudaModel *cm, void *base, int B, int T) {
    const MilesConfig *c = &cm->cfg;
    const size_t H = c->hidden_size, I = c->intermediate_size, N = (size_t)B * T;
    MilesGradActs *D = &cm->D;
    Bump b = {(char *)base, 0};
    D->dx = FL(&b, N * H);
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) {
        b.off = fast_grad_layout(cm, base, b.off, B, T);
        goto heads;
    }
#endif
    D->dln1 = FL(&b, N * H);
    D->dres = FL(&b, N * H);
    D->dproj = FL(&b, N * H);
    D->dctx = FL(&b, N * H);
    D->dq = FL(&b, N * H);
    D->dk = FL(&b, N * H);
    D->dv = FL(&b, N * H);
    D->dgelu = FL(&b, N * I);
    D->dinter = FL(&b, N * I);
    D->datt = FL(&b, (size_t)B * c->num_attention_heads * T * T);
#ifndef MILES_CUDA_HOST_EMULATION
heads:
#endif
    D->dcls = FL(&b, (size_t)B * H);
    D->dpool_pre = FL(&b, (size_t)B * H);
    D->dpooled = FL(&b, (size_t)B * H);
    D->dtext = FL(&b, (size_t)B * H);
    D->dnum = FL(&b, (size_t)B * cm->num_w);
    D->dconcat = FL(&b, (size_t)B * cm->cat_w);
    D->dmlp_a = FL(&b, (size_t)B * cm->max_w);
    D->dmlp_b = FL(&b, (size_t)B * cm->max_w);
    D->dmlp_c = FL(&b, (size_t)B * cm->max_w);
    D->dlogits = FL(&b, (size_t)B * 2);
    D->dvel = FL(&b, B);
    D->dvel_pre = FL(&b, B);
    D->dfeat = FL(&b, (size_t)B * c->num_features);
    return b.off;
}

/* Grow the arena and the pinned staging buffer when (B,T) needs more. */
static int ensure_arena(MilesCudaModel *cm, int B, int T, int attd) {
    size_t need = arena_layout(cm, NULL, B, T, attd);
    if (need > cm->arena_cap) {
        MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream)); /* the old arena may be in use */
#ifndef MILES_CUDA_HOST_EMULATION
        if (cm->fast) fast_graphs_reset(cm); /* captured pointers into the old arena */
#endif
        cudaFree(cm->arena);
        cm->arena = NULL;
        cm->arena_cap = 0;
        cm->fwd_valid = 0;
        cudaError_t e = cudaMalloc(&cm->arena, need);
        if (e != cudaSuccess) {
            cm->arena = NULL;
            cudaGetLastError();
            return miles_error(MILES_ENOMEM, "cuda model: cannot allocate %.1f MB of activations for B=%d T=%d (%s)",
                               need / 1e6, B, T, cudaGetErrorString(e));
        }
        cm->arena_cap = need;
    }
    arena_layout(cm, cm->arena, B, T, attd);
    if (cm->in_bytes > cm->pinned_cap) {
        if (cm->staged_pending) MILES_CUDA_TRY(cudaEventSynchronize(cm->staged));
        cm->staged_pending = 0;
        cudaFreeHost(cm->pinned);
        cm->pinned = NULL;
        cm->pinned_cap = 0;
        MILES_CUDA_TRY(cudaMallocHost(&cm->pinned, cm->in_bytes));
        cm->pinned_cap = cm->in_bytes;
    }
    /* host counters: one per distinct id (<= N) or per token type */
    size_t N = (size_t)B * T + (size_t)cm->cfg.type_vocab_size + 1;
    if (N > cm->cursor_cap) {
        free(cm->cursor);
        cm->cursor = (int32_t *)malloc(N * sizeof(int32_t));
        cm->cursor_cap = cm->cursor ? N : 0;
        if (!cm->cursor) return miles_error(MILES_ENOMEM, "cuda model: host CSR buffer");
    }
    if (cm->fast && (size_t)B * T > cm->uniq_cap) {
        free(cm->uniq);
        cm->uniq = (int32_t *)malloc((size_t)B * T * sizeof(int32_t));
        cm->uniq_cap = cm->uniq ? (size_t)B * T : 0;
        if (!cm->uniq) return miles_error(MILES_ENOMEM, "cuda model: host segment buffer");
    }
    Bump hb = {(char *)cm->pinned, 0};
    inputs_layout(cm, &hb, B, T, &cm->hin);
    return MILES_OK;
}

static int ensure_scratch(MilesCudaModel *cm) {
    size_t need = grad_layout(cm, NULL, cm->B, cm->T);
    if (need > cm->scratch_cap) {
        MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
#ifndef MILES_CUDA_HOST_EMULATION
        if (cm->fast) fast_graphs_reset(cm);
#endif
        cudaFree(cm->scratch);
        cm->scratch = NULL;
        cm->scratch_cap = 0;
        cudaError_t e = cudaMalloc(&cm->scratch, need);
        if (e != cudaSuccess) {
            cm->scratch = NULL;
            cudaGetLastError();
            return miles_error(MILES_ENOMEM, "cuda model: cannot allocate %.1f MB of backward buffers (%s)",
                               need / 1e6, cudaGetErrorString(e));
        }
        cm->scratch_cap = need;
    }
    grad_layout(cm, cm->scratch, cm->B, cm->T);
    return MILES_OK;
}

/* Size the activations, the backward buffers and the pinned staging for
 * training micro-batches up to B x T now, so that no later step grows them
 * (a growth synchronizes: cudaStreamSynchronize + cudaFree). */
extern "C" int miles_cuda_model_reserve(MilesCudaModel *cm, int B, int T) {
    if (!cm || B < 1 || T < 1) return miles_error(MILES_EINVAL, "miles_cuda_model_reserve: bad argument");
    const int attd = cm->cfg.attention_probs_dropout_prob > 0.0f && !cm->fast; /* the training layout */
    MILES_TRY(ensure_arena(cm, B, T, attd));
    const int b0 = cm->B, t0 = cm->T;
    cm->B = B;
    cm->T = T;
    int s = ensure_scratch(cm);
    cm->B = b0;
    cm->T = t0;
    cm->fwd_valid = 0; /* the arena was laid out for B x T */
    return s;
}

/* ------------------------------------------------------- batch checks */

/* The CPU forward's own batch check (miles_model_validate_batch reads the
 * configuration and the loss settings): same checks, same messages.  The
 * shadow is a zeroed MilesModel holding only cfg and loss. */
static int validate_batch(const MilesCudaModel *cm, const MilesBatch *b) {
    return miles_model_validate_batch(cm->shadow, b);
}

/* Pack the batch into the pinned buffer, with the per-id token lists the
 * embedding backward sums in token order. */
static void pack_batch(MilesCudaModel *cm, const MilesBatch *b) {
    const int B = b->B, T = b->T, TV = cm->cfg.type_vocab_size;
    const size_t N = (size_t)B * T;
    Inputs *h = &cm->hin;
    memcpy(h->ids, b->input_ids, N * sizeof(int32_t));
    if (b->token_type_ids) memcpy(h->tt, b->token_type_ids, N * sizeof(int32_t));
    else memset(h->tt, 0, N * sizeof(int32_t));
    memcpy(h->mask, b->attention_mask, N * sizeof(int32_t));
    memcpy(h->features, b->features, (size_t)B * cm->cfg.num_features * sizeof(float));
    if (b->labels) memcpy(h->labels, b->labels, (size_t)B * sizeof(int32_t));
    else memset(h->labels, 0, (size_t)B * sizeof(int32_t));
    if (b->velocity) memcpy(h->vel_target, b->velocity, (size_t)B * sizeof(float));
    else memset(h->vel_target, 0, (size_t)B * sizeof(float));
    h->step->seed = cm->drop_seed;
    h->step->step = cm->drop_step;
    h->step->loss_scale = 1.0f;
    h->step->pad = 0.0f;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) { /* the 16-bit path's segmented embedding backward */
        MilesEmbSegments sg = {h->seg_pos, h->seg_row, h->seg_beg, h->seg_multi, h->multi_row, h->multi_beg,
                               h->multi_end, h->seg_counts, 0};
        miles_emb_segments_build(&sg, h->ids, h->tt, (int)N, cm->cfg.vocab_size, TV, cm->slot, cm->uniq, cm->cursor);
        return;
    }
#endif

    /* word ids: uniq in first-seen order, offs = prefix sums of counts,
     * pos = token indices grouped by id, ascending within each id */
    int U = 0;
    int32_t *cnt = cm->cursor;
    for (size_t n = 0; n < N; n++) {
        int32_t id = h->ids[n];
        int32_t s = cm->slot[id];
        if (s < 0) {
            s = cm->slot[id] = U;
            h->uniq[U] = id;
            cnt[U] = 0;
            U++;
        }
        cnt[s]++;
    }
    h->offs[0] = 0;
    for (int u = 0; u < U; u++) {
        h->offs[u + 1] = h->offs[u] + cnt[u];
        cnt[u] = h->offs[u]; /* now the fill cursor */
    }
    for (size_t n = 0; n < N; n++) h->pos[cnt[cm->slot[h->ids[n]]]++] = (int32_t)n;
    for (int u = 0; u < U; u++) cm->slot[h->uniq[u]] = -1;
    cm->n_uniq = U;

    /* token types: counting sort by type, ascending token index */
    for (int y = 0; y <= TV; y++) h->tt_offs[y] = 0;
    for (size_t n = 0; n < N; n++) h->tt_offs[h->tt[n] + 1]++;
    for (int y = 0; y < TV; y++) h->tt_offs[y + 1] += h->tt_offs[y];
    for (int y = 0; y < TV; y++) cnt[y] = h->tt_offs[y];
    for (size_t n = 0; n < N; n++) h->tt_pos[cnt[h->tt[n]]++] = (int32_t)n;
}

/* --------------------------------------------- embedding backward (CSR) */

#ifndef MILES_CUDA_HOST_EMULATION
#define EMB_THREADS 128

/* dtable[key[u], c] += sum over the token list of u, in token order (the
 * CPU's g[c] += d[c] loop): grid (U, ceil(C/EMB_THREADS)).  keys NULL: row u. */
__global__ void emb_csr_backward_kernel(float *dtable, const float *dout, const int32_t *keys,
                                        const int32_t *offs, const int32_t *pos, int C) {
    int u = blockIdx.x;
    int c = blockIdx.y * EMB_THREADS + threadIdx.x;
    if (c >= C) return;
    size_t row = keys ? (size_t)keys[u] : (size_t)u;
    float g = dtable[row * C + c];
    for (int j = offs[u]; j < offs[u + 1]; j++) g += dout[(size_t)pos[j] * C + c];
    dtable[row * C + c] = g;
}

/* dwpe[t,c] += dout[b,t,c] for b = 0..B-1 in order (the CPU's order). */
__global__ void emb_pos_backward_kernel(float *dwpe, const float *dout, int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)T * C) {
        float g = dwpe[i];
        for (int b = 0; b < B; b++) g += dout[(size_t)b * T * C + i];
        dwpe[i] = g;
    }
}

/* Deterministic embedding backward (replaces embedding_backward_cuda's
 * atomics): U distinct ids with token lists (uniq, offs, pos), TV token types
 * with token lists (tt_offs, tt_pos).  Declared in model_cuda_internal.h (the
 * op test calls it against the CPU's embedding_backward). */
int miles_cuda_embedding_backward_csr(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                             const int32_t *uniq, int U, const int32_t *offs,
                                             const int32_t *pos, const int32_t *tt_offs,
                                             const int32_t *tt_pos, int TV, int B, int T, int C,
                                             cudaStream_t s) {
    dim3 blk(EMB_THREADS);
    unsigned cy = (unsigned)((C + EMB_THREADS - 1) / EMB_THREADS);
    if (U > 0) {
        MILES_LAUNCH(emb_csr_backward_kernel, dim3((unsigned)U, cy), blk, 0, s, dwte, dout, uniq, offs, pos, C);
    }
    MILES_LAUNCH(emb_csr_backward_kernel, dim3((unsigned)TV, cy), blk, 0, s, dwtt, dout, NULL, tt_offs, tt_pos, C);
    MILES_LAUNCH(emb_pos_backward_kernel, miles_grid((size_t)T * C), MILES_CUDA_THREADS, 0, s, dwpe, dout, B, T, C);
    return MILES_OK;
}
#endif

static int embedding_backward_det(MilesCudaModel *cm, float *dwte, float *dwpe, float *dwtt,
                                  const float *dout) {
    return miles_cuda_embedding_backward_csr(dwte, dwpe, dwtt, dout, cm->din.uniq, cm->n_uniq, cm->din.offs,
                                             cm->din.pos, cm->din.tt_offs, cm->din.tt_pos,
                                             cm->cfg.type_vocab_size, cm->B, cm->T, cm->cfg.hidden_size,
                                             cm->stream);
}

/* ------------------------------------------------------------ forward */

/* The device copy of the dropout (seed, step) when the 16-bit path may replay
 * this work in a CUDA graph; NULL: the key's own. */
#ifndef MILES_CUDA_HOST_EMULATION
static const uint64_t *drop_rng(MilesCudaModel *cm) { return cm->fast ? &cm->din.step->seed : NULL; }
#endif

static int drop_fwd(MilesCudaModel *cm, float *out, const float *inp, size_t n, MilesDropoutKey k) {
#ifndef MILES_CUDA_HOST_EMULATION
    if (k.p > 0.0f) return dropout_forward_rng_cuda(out, inp, n, k, drop_rng(cm), S(cm));
#else
    if (k.p > 0.0f) return dropout_forward_cuda(out, inp, n, k, S(cm));
#endif
    if (out != inp) return copy_d2d(cm, out, inp, n);
    return MILES_OK;
}

static int encoder_forward(MilesCudaModel *cm) {
    const MilesConfig *c = &cm->cfg;
    const int B = cm->B, T = cm->T, H = c->hidden_size, I = c->intermediate_size;
    const int NH = c->num_attention_heads, N = B * T;
    const float eps = c->layer_norm_eps;
    MilesActs *A = &cm->A;
    const MilesParams *P = &cm->P;
    miles_cuda_stream s = S(cm);

    if (cm->use_given) { /* explanations: word vectors given (row i of them for token i) */
        const float *words = (const float *)cm->given;
        const int32_t *rows = (const int32_t *)(words + (size_t)N * H);
        MILES_TRY(embedding_forward_cuda(A->emb_sum, rows, A->tt, words, P->wpe, P->wtt, B, T, H, s));
    } else {
        MILES_TRY(embedding_forward_cuda(A->emb_sum, A->ids, A->tt, P->wte, P->wpe, P->wtt, B, T, H, s));
    }
    MILES_TRY(layernorm_forward_cuda(A->emb_out, A->emb_mean, A->emb_rstd, A->emb_sum, P->emb_ln.w,
                                     P->emb_ln.b, N, H, eps, s));
    MILES_TRY(drop_fwd(cm, A->emb_out, A->emb_out, (size_t)N * H,
                       dkey(cm, c->hidden_dropout_prob, MILES_DROPID_EMB)));
    const float *x = A->emb_out;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const MilesLayerP *w = &P->layers[l];
        MilesLayerActs *y = &cm->layer_acts[l];
        MILES_TRY(linear_forward_cuda(y->q, x, w->q.w, w->q.b, N, H, H, s));
        MILES_TRY(linear_forward_cuda(y->k, x, w->k.w, w->k.b, N, H, H, s));
        MILES_TRY(linear_forward_cuda(y->v, x, w->v.w, w->v.b, N, H, H, s));
        MilesDropoutKey ka = dkey(cm, c->attention_probs_dropout_prob,
                                  MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_PROBS));
        MILES_TRY(attention_forward_cuda(y->ctx, y->att, ka.p > 0.0f ? y->attd : NULL, y->q, y->k, y->v,
                                         A->mask, B, T, H, NH, ka, s));
        /* res1 = x + dropout(ctx @ Wo^T + bo); ln1 = LN(res1) (fused add + LN) */
        MILES_TRY(linear_forward_cuda(y->res1, y->ctx, w->attn_out.w, w->attn_out.b, N, H, H, s));
        MILES_TRY(drop_fwd(cm, y->res1, y->res1, (size_t)N * H,
                           dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_OUT))));
        MILES_TRY(residual_layernorm_forward_cuda(y->res1, y->ln1, y->mean1, y->rstd1, y->res1, x,
                                                  w->ln1.w, w->ln1.b, N, H, eps, s));
        /* FFN */
        MILES_TRY(linear_forward_cuda(y->inter, y->ln1, w->inter.w, w->inter.b, N, H, I, s));
        MILES_TRY(gelu_forward_cuda(y->gelu, y->inter, (size_t)N * I, s));
        MILES_TRY(linear_forward_cuda(y->res2, y->gelu, w->out.w, w->out.b, N, I, H, s));
        MILES_TRY(drop_fwd(cm, y->res2, y->res2, (size_t)N * H,
                           dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_FFN_OUT))));
        MILES_TRY(residual_layernorm_forward_cuda(y->res2, y->ln2, y->mean2, y->rstd2, y->res2, y->ln1,
                                                  w->ln2.w, w->ln2.b, N, H, eps, s));
        x = y->ln2;
    }
    return MILES_OK;
}

static int mlp_forward(MilesCudaModel *cm, const float **io, int in_w, int n, const int *widths,
                       const float *drops, const MilesLinP *W, float **lin, float **drop, uint32_t id0) {
    const int B = cm->B;
    const float *inp = *io;
    for (int i = 0; i < n; i++) {
        size_t sz = (size_t)B * widths[i];
        MILES_TRY(linear_forward_cuda(lin[i], inp, W[i].w, W[i].b, B, in_w, widths[i], S(cm)));
        MILES_TRY(relu_forward_cuda(lin[i], lin[i], sz, S(cm)));
        MILES_TRY(drop_fwd(cm, drop[i], lin[i], sz, dkey(cm, drops[i], id0 + (uint32_t)i)));
        inp = drop[i];
        in_w = widths[i];
    }
    *io = inp;
    return MILES_OK;
}

static int head_forward(MilesCudaModel *cm) {
    const MilesConfig *c = &cm->cfg;
    const int B = cm->B, T = cm->T, H = c->hidden_size;
    MilesActs *A = &cm->A;
    const MilesParams *P = &cm->P;
    miles_cuda_stream s = S(cm);
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) { /* the 16-bit last hidden state, pooled into fp32 */
        if (c->pooling == MILES_POOL_POOLER) {
            MILES_TRY(fast_pool(cm, A->cls, 0));
            MILES_TRY(linear_forward_cuda(A->pool_pre, A->cls, P->pooler.w, P->pooler.b, B, H, H, s));
            MILES_TRY(tanh_forward_cuda(A->pooled, A->pool_pre, (size_t)B * H, s));
        } else {
            MILES_TRY(fast_pool(cm, A->pooled, c->pooling != MILES_POOL_CLS));
        }
        goto pooled;
    }
#endif
    {
    const float *hid = cm->layer_acts[c->num_hidden_layers - 1].ln2;
    switch (c->pooling) {
    case MILES_POOL_POOLER:
        MILES_TRY(cls_pool_forward_cuda(A->cls, hid, B, T, H, s));
        MILES_TRY(linear_forward_cuda(A->pool_pre, A->cls, P->pooler.w, P->pooler.b, B, H, H, s));
        MILES_TRY(tanh_forward_cuda(A->pooled, A->pool_pre, (size_t)B * H, s));
        break;
    case MILES_POOL_CLS:
        MILES_TRY(cls_pool_forward_cuda(A->pooled, hid, B, T, H, s));
        break;
    default:
        MILES_TRY(mean_pool_forward_cuda(A->pooled, hid, A->mask, B, T, H, s));
        break;
    }
    }
#ifndef MILES_CUDA_HOST_EMULATION
pooled:
#endif
    MILES_TRY(drop_fwd(cm, A->text, A->pooled, (size_t)B * H, dkey(cm, c->text_dropout, MILES_DROPID_TEXT)));

    const float *num = A->features;
    MILES_TRY(mlp_forward(cm, &num, c->num_features, c->n_numeric, c->numeric_widths, c->numeric_dropouts,
                          P->numeric, A->num_lin, A->num_drop, MILES_DROPID_NUMERIC(0)));
    MILES_TRY(concat_forward_cuda(A->concat, A->text, num, B, H, cm->num_w, s));
    const float *feat = A->concat;
    MILES_TRY(mlp_forward(cm, &feat, cm->cat_w, c->n_fusion, c->fusion_widths, c->fusion_dropouts, P->fusion,
                          A->fus_lin, A->fus_drop, MILES_DROPID_FUSION(0)));
    MILES_TRY(linear_forward_cuda(A->logits, feat, P->cls.w, P->cls.b, B, cm->feat_w, 2, s));
    MILES_TRY(linear_forward_cuda(A->vel_pre, feat, P->reg.w, P->reg.b, B, cm->feat_w, 1, s));
    if (c->velocity_activation == MILES_VEL_SIGMOID) MILES_TRY(sigmoid_forward_cuda(A->vel, A->vel_pre, B, s));
    else MILES_TRY(copy_d2d(cm, A->vel, A->vel_pre, B));
    return MILES_OK;
}

/* Host half of a forward: the batch check, the arena, the batch (and the
 * step's dropout key and loss_scale) into the pinned buffer, one copy. */
int cuda_forward_stage(MilesCudaModel *cm, const MilesBatch *batch, int training, float loss_scale) {
    MILES_TRY(validate_batch(cm, batch));
    const MilesConfig *c = &cm->cfg;
    const int B = batch->B, T = batch->T;
    cm->fwd_valid = 0;
    cm->training = training ? 1 : 0;
    int attd = cm->training && c->attention_probs_dropout_prob > 0.0f && !cm->fast;
    MILES_TRY(ensure_arena(cm, B, T, attd));
    cm->B = B;
    cm->T = T;
    cm->has_attd = attd;
    cm->have_labels = batch->labels != NULL;
    cm->have_vel = batch->velocity != NULL;

    /* the previous H2D copy must be done before the pinned buffer is rewritten */
    if (cm->staged_pending) MILES_CUDA_TRY(cudaEventSynchronize(cm->staged));
    pack_batch(cm, batch);
    cm->hin.step->loss_scale = loss_scale;
    MILES_CUDA_TRY(cudaMemcpyAsync(cm->arena, cm->pinned, cm->in_bytes, cudaMemcpyHostToDevice, cm->stream));
    MILES_CUDA_TRY(cudaEventRecord(cm->staged, cm->stream));
    cm->staged_pending = 1;
    return MILES_OK;
}

/* Device half: only stream work (a CUDA graph can capture it). */
int cuda_forward_device(MilesCudaModel *cm) {
    const int B = cm->B;
    MathScope ms(cm->math);
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) MILES_TRY(fast_encoder_forward(cm));
    else
#endif
        MILES_TRY(encoder_forward(cm));
    MILES_TRY(head_forward(cm));
    MilesActs *A = &cm->A;
    MILES_TRY(zero(cm, cm->dloss, 2));
    if (cm->have_labels)
        MILES_TRY(crossentropy_forward_cuda(cm->dloss, A->probs, A->logits, A->labels, cm->dcw, B, 2, S(cm)));
    if (cm->have_vel) MILES_TRY(mse_forward_cuda(cm->dloss + 1, A->vel, A->vel_target, B, S(cm)));
    return MILES_OK;
}

static int forward_impl(MilesCudaModel *cm, const MilesBatch *batch, int training) {
    MILES_TRY(cuda_forward_stage(cm, batch, training, 1.0f));
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast && !training) MILES_TRY(fast_forward_graph(cm)); /* inference: a CUDA graph per shape */
    else
#endif
        MILES_TRY(cuda_forward_device(cm));
    cm->fwd_valid = 1;
    return MILES_OK;
}

static int read_loss(MilesCudaModel *cm, float *loss) {
    MILES_CUDA_TRY(cudaMemcpyAsync(cm->hloss, cm->dloss, 2 * sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    float L = 0.0f;
    if (cm->have_labels) L += cm->loss.w_cls * cm->hloss[0];
    if (cm->have_vel) L += cm->loss.w_reg * cm->hloss[1];
    *loss = L;
    return MILES_OK;
}

extern "C" int miles_cuda_model_forward(MilesCudaModel *cm, const MilesBatch *batch, int training,
                                        float *logits, float *velocity, float *loss) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_forward: model is NULL");
    cm->fwd_valid = 0;
    MILES_TRY(forward_impl(cm, batch, training));
    const int B = cm->B;
    if (logits)
        MILES_CUDA_TRY(cudaMemcpyAsync(logits, cm->A.logits, (size_t)B * 2 * sizeof(float),
                                       cudaMemcpyDeviceToHost, cm->stream));
    if (velocity)
        MILES_CUDA_TRY(cudaMemcpyAsync(velocity, cm->A.vel, (size_t)B * sizeof(float), cudaMemcpyDeviceToHost,
                                       cm->stream));
    if (loss) MILES_TRY(read_loss(cm, loss));
    else if (logits || velocity) MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_last_loss(MilesCudaModel *cm, float *loss) {
    if (!cm || !loss) return miles_error(MILES_EINVAL, "miles_cuda_model_last_loss: NULL argument");
    if (!cm->fwd_valid) return miles_error(MILES_EINVAL, "miles_cuda_model_last_loss: no successful forward");
    return read_loss(cm, loss);
}

static int download(MilesCudaModel *cm, float *out, const float *src, size_t n) {
    if (!cm || !out) return miles_error(MILES_EINVAL, "cuda model download: NULL argument");
    if (!cm->fwd_valid) return miles_error(MILES_EINVAL, "cuda model download: no successful forward");
    MILES_CUDA_TRY(cudaMemcpyAsync(out, src, n * sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_download_pooled(MilesCudaModel *cm, float *out) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_download_pooled: model is NULL");
    return download(cm, out, cm->A.pooled, (size_t)cm->B * cm->cfg.hidden_size);
}

extern "C" int miles_cuda_model_download_last_hidden(MilesCudaModel *cm, float *out) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_download_last_hidden: model is NULL");
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) {
        if (!out) return miles_error(MILES_EINVAL, "cuda model download: NULL argument");
        if (!cm->fwd_valid) return miles_error(MILES_EINVAL, "cuda model download: no successful forward");
        return fast_download_last_hidden(cm, out);
    }
#endif
    return download(cm, out, cm->layer_acts[cm->cfg.num_hidden_layers - 1].ln2,
                    (size_t)cm->B * cm->T * cm->cfg.hidden_size);
}

/* ----------------------------------------------------------- backward */

/* dinp = dropout_backward(dout) into a zeroed dinp, or dout itself when off. */
static int drop_bwd(MilesCudaModel *cm, const float **res, float *dinp, const float *dout, size_t n,
                    MilesDropoutKey k) {
    if (!(k.p > 0.0f)) {
        *res = dout;
        return MILES_OK;
    }
    MILES_TRY(zero(cm, dinp, n));
#ifndef MILES_CUDA_HOST_EMULATION
    MILES_TRY(dropout_backward_rng_cuda(dinp, dout, n, k, drop_rng(cm), S(cm)));
#else
    MILES_TRY(dropout_backward_cuda(dinp, dout, n, k, S(cm)));
#endif
    *res = dinp;
    return MILES_OK;
}

/* mlp_backward of model_backward.c (same buffer rotation). */
static int mlp_backward(MilesCudaModel *cm, float *dinp, const float *dout, const float *inp, int in_w, int n,
                        const int *widths, const float *drops, const MilesLinP *W, MilesLinP *G, float **lin,
                        float **drop, uint32_t id0) {
    const int B = cm->B;
    MilesGradActs *D = &cm->D;
    const float *g = dout;
    for (int i = n - 1; i >= 0; i--) {
        size_t sz = (size_t)B * widths[i];
        const float *x = i ? drop[i - 1] : inp;
        int xw = i ? widths[i - 1] : in_w;
        const float *gd;
        MILES_TRY(drop_bwd(cm, &gd, D->dmlp_c, g, sz, dkey(cm, drops[i], id0 + (uint32_t)i)));
        float *glin = (g == D->dmlp_a) ? D->dmlp_b : D->dmlp_a;
        MILES_TRY(zero(cm, glin, sz));
        MILES_TRY(relu_backward_cuda(glin, lin[i], gd, sz, S(cm)));
        float *gx = dinp;
        if (i) {
            gx = (glin == D->dmlp_a) ? D->dmlp_b : D->dmlp_a;
            MILES_TRY(zero(cm, gx, (size_t)B * xw));
        }
        MILES_TRY(linear_backward_cuda(gx, G[i].w, G[i].b, glin, x, W[i].w, B, xw, widths[i], S(cm)));
        g = gx;
    }
    return MILES_OK;
}

static int head_backward(MilesCudaModel *cm, float loss_scale) {
    const MilesConfig *c = &cm->cfg;
    const int B = cm->B, T = cm->T, H = c->hidden_size;
    MilesActs *A = &cm->A;
    MilesGradActs *D = &cm->D;
    const MilesParams *P = &cm->P;
    MilesParams *G = &cm->G;
    miles_cuda_stream s = S(cm);

    if (!cm->seeded) { /* seeded (explanations): D->dlogits, D->dvel hold d target / d outputs */
        MILES_TRY(zero(cm, D->dlogits, (size_t)B * 2));
        MILES_TRY(zero(cm, D->dvel, B));
        if (cm->have_labels)
            MILES_TRY(crossentropy_backward_cuda(D->dlogits, A->probs, A->labels, cm->dcw, B, 2,
                                                 cm->loss.w_cls * loss_scale, s));
        if (cm->have_vel)
            MILES_TRY(mse_backward_cuda(D->dvel, A->vel, A->vel_target, B, cm->loss.w_reg * loss_scale, s));
        /* fp16 on the fp32 path: times the dynamic scale read on the device
         * (it changes there, at skipped steps, without a host round trip) */
        if (!cm->fast && cm->use_scaler) {
            MILES_TRY(scale_device_cuda(D->dlogits, (size_t)B * 2, &cm->dscaler->scale, NULL, s));
            MILES_TRY(scale_device_cuda(D->dvel, (size_t)B, &cm->dscaler->scale, NULL, s));
        }
#ifndef MILES_CUDA_HOST_EMULATION
        /* 16-bit path: backward's loss_scale and the fp16 loss scale live on the device */
        if (cm->fast) MILES_TRY(fast_scale_head_grads(cm));
#endif
    }
    const float *dvp = D->dvel;
    if (c->velocity_activation == MILES_VEL_SIGMOID) {
        MILES_TRY(zero(cm, D->dvel_pre, B));
        MILES_TRY(sigmoid_backward_cuda(D->dvel_pre, A->vel, D->dvel, B, s));
        dvp = D->dvel_pre;
    }
    const float *feat = c->n_fusion ? A->fus_drop[c->n_fusion - 1] : A->concat;
    float *dhead = c->n_fusion ? D->dmlp_a : D->dconcat;
    MILES_TRY(zero(cm, dhead, (size_t)B * cm->feat_w));
    MILES_TRY(linear_backward_cuda(dhead, G->cls.w, G->cls.b, D->dlogits, feat, P->cls.w, B, cm->feat_w, 2, s));
    MILES_TRY(linear_backward_cuda(dhead, G->reg.w, G->reg.b, dvp, feat, P->reg.w, B, cm->feat_w, 1, s));
    if (c->n_fusion) {
        MILES_TRY(zero(cm, D->dconcat, (size_t)B * cm->cat_w));
        MILES_TRY(mlp_backward(cm, D->dconcat, dhead, A->concat, cm->cat_w, c->n_fusion, c->fusion_widths,
                               c->fusion_dropouts, P->fusion, G->fusion, A->fus_lin, A->fus_drop,
                               MILES_DROPID_FUSION(0)));
    }
    MILES_TRY(zero(cm, D->dtext, (size_t)B * H));
    MILES_TRY(zero(cm, D->dnum, (size_t)B * cm->num_w));
    MILES_TRY(concat_backward_cuda(D->dtext, D->dnum, D->dconcat, B, H, cm->num_w, s));
    /* explanations also need d/d(features) (the CPU's D.dfeat) */
    float *dfeat = cm->seeded ? D->dfeat : NULL;
    if (dfeat) MILES_TRY(zero(cm, dfeat, (size_t)B * c->num_features));
    if (c->n_numeric)
        MILES_TRY(mlp_backward(cm, dfeat, D->dnum, A->features, c->num_features, c->n_numeric, c->numeric_widths,
                               c->numeric_dropouts, P->numeric, G->numeric, A->num_lin, A->num_drop,
                               MILES_DROPID_NUMERIC(0)));
    else if (dfeat)
        MILES_TRY(copy_d2d(cm, dfeat, D->dnum, (size_t)B * c->num_features));
    const float *dpooled;
    MILES_TRY(drop_bwd(cm, &dpooled, D->dpooled, D->dtext, (size_t)B * H,
                       dkey(cm, c->text_dropout, MILES_DROPID_TEXT)));
    MILES_TRY(zero(cm, D->dx, (size_t)B * T * H));
    switch (c->pooling) {
    case MILES_POOL_POOLER:
        MILES_TRY(zero(cm, D->dpool_pre, (size_t)B * H));
        MILES_TRY(tanh_backward_cuda(D->dpool_pre, A->pooled, dpooled, (size_t)B * H, s));
        MILES_TRY(zero(cm, D->dcls, (size_t)B * H));
        MILES_TRY(linear_backward_cuda(D->dcls, G->pooler.w, G->pooler.b, D->dpool_pre, A->cls, P->pooler.w, B,
                                       H, H, s));
        MILES_TRY(cls_pool_backward_cuda(D->dx, D->dcls, B, T, H, s));
        break;
    case MILES_POOL_CLS:
        MILES_TRY(cls_pool_backward_cuda(D->dx, dpooled, B, T, H, s));
        break;
    default:
        MILES_TRY(mean_pool_backward_cuda(D->dx, dpooled, A->mask, B, T, H, s));
        break;
    }
    return MILES_OK;
}

static int encoder_backward(MilesCudaModel *cm) {
    const MilesConfig *c = &cm->cfg;
    const int B = cm->B, T = cm->T, H = c->hidden_size, I = c->intermediate_size;
    const int NH = c->num_attention_heads, N = B * T;
    const size_t NHs = (size_t)N * H, NI = (size_t)N * I;
    MilesActs *A = &cm->A;
    MilesGradActs *D = &cm->D;
    const MilesParams *P = &cm->P;
    MilesParams *G = &cm->G;
    miles_cuda_stream s = S(cm);

    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        const MilesLayerP *w = &P->layers[l];
        MilesLayerP *g = &G->layers[l];
        const MilesLayerActs *y = &cm->layer_acts[l];
        const float *x = l ? cm->layer_acts[l - 1].ln2 : A->emb_out;

        /* LN2: ln2 = LN(res2), res2 = ln1 + dropout(out dense) */
        MILES_TRY(zero(cm, D->dres, NHs));
        MILES_TRY(layernorm_backward_cuda(D->dres, g->ln2.w, g->ln2.b, D->dx, y->res2, w->ln2.w, y->mean2,
                                          y->rstd2, N, H, s));
        MILES_TRY(copy_d2d(cm, D->dln1, D->dres, NHs));
        const float *dp;
        MILES_TRY(drop_bwd(cm, &dp, D->dproj, D->dres, NHs,
                           dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_FFN_OUT))));
        MILES_TRY(zero(cm, D->dgelu, NI));
        MILES_TRY(linear_backward_cuda(D->dgelu, g->out.w, g->out.b, dp, y->gelu, w->out.w, N, I, H, s));
        MILES_TRY(zero(cm, D->dinter, NI));
        MILES_TRY(gelu_backward_cuda(D->dinter, y->inter, D->dgelu, NI, s));
        MILES_TRY(linear_backward_cuda(D->dln1, g->inter.w, g->inter.b, D->dinter, y->ln1, w->inter.w, N, H, I, s));

        /* LN1: ln1 = LN(res1), res1 = x + dropout(attn_out dense) */
        MILES_TRY(zero(cm, D->dres, NHs));
        MILES_TRY(layernorm_backward_cuda(D->dres, g->ln1.w, g->ln1.b, D->dln1, y->res1, w->ln1.w, y->mean1,
                                          y->rstd1, N, H, s));
        MILES_TRY(copy_d2d(cm, D->dx, D->dres, NHs));
        MILES_TRY(drop_bwd(cm, &dp, D->dproj, D->dres, NHs,
                           dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_OUT))));
        MILES_TRY(zero(cm, D->dctx, NHs));
        MILES_TRY(linear_backward_cuda(D->dctx, g->attn_out.w, g->attn_out.b, dp, y->ctx, w->attn_out.w, N, H, H,
                                       s));

        /* attention core */
        MILES_TRY(zero(cm, D->dq, NHs));
        MILES_TRY(zero(cm, D->dk, NHs));
        MILES_TRY(zero(cm, D->dv, NHs));
        MilesDropoutKey ka = dkey(cm, c->attention_probs_dropout_prob,
                                  MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_PROBS));
        MILES_TRY(attention_backward_cuda(D->dq, D->dk, D->dv, D->datt, D->dctx, y->att,
                                          ka.p > 0.0f ? y->attd : NULL, y->q, y->k, y->v, B, T, H, NH, ka, s));
        MILES_TRY(linear_backward_cuda(D->dx, g->q.w, g->q.b, D->dq, x, w->q.w, N, H, H, s));
        MILES_TRY(linear_backward_cuda(D->dx, g->k.w, g->k.b, D->dk, x, w->k.w, N, H, H, s));
        MILES_TRY(linear_backward_cuda(D->dx, g->v.w, g->v.b, D->dv, x, w->v.w, N, H, H, s));
        MILES_TRY(cuda_grad_ready(cm, l));
    }

    /* embeddings: emb_out = dropout(LN(emb_sum)) */
    const float *dln;
    MILES_TRY(drop_bwd(cm, &dln, D->dproj, D->dx, NHs, dkey(cm, c->hidden_dropout_prob, MILES_DROPID_EMB)));
    MILES_TRY(zero(cm, D->dres, NHs));
    MILES_TRY(layernorm_backward_cuda(D->dres, G->emb_ln.w, G->emb_ln.b, dln, A->emb_sum, P->emb_ln.w,
                                      A->emb_mean, A->emb_rstd, N, H, s));
    MILES_TRY(embedding_backward_det(cm, G->wte, G->wpe, G->wtt, D->dres));
    return cuda_grad_ready(cm, -1);
}

extern "C" int miles_cuda_model_backward(MilesCudaModel *cm, float loss_scale) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_backward: model is NULL");
    if (!cm->fwd_valid)
        return miles_error(MILES_EINVAL, "miles_cuda_model_backward: no successful forward to differentiate");
    if (!cm->have_labels && !cm->have_vel)
        return miles_error(MILES_EINVAL,
                           "miles_cuda_model_backward: the last forward had neither labels nor velocity targets");
    if (cm->use_scaler && cm->grads_unscaled)
        return miles_error(MILES_EINVAL, "miles_cuda_model_backward: the gradients were already unscaled"
                           " (clip/step) since the last zero_grad; call miles_cuda_model_zero_grad first");
    MILES_TRY(ensure_scratch(cm));
    MathScope ms(cm->math);
    /* an overflow of a scaled gradient inside a GEMM must reach found_inf */
    F16GuardScope gs(cm->use_scaler && cm->f16_guard ? &cm->dscaler->found_inf : NULL);
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) {
        /* loss_scale (and the fp16 scale) reach the heads' gradients on the device */
        MILES_CUDA_TRY(cudaMemcpyAsync(&cm->din.step->loss_scale, &loss_scale, sizeof(float), cudaMemcpyHostToDevice,
                                       cm->stream));
        return cuda_backward_device(cm);
    }
#endif
    MILES_TRY(head_backward(cm, loss_scale)); /* fp16: the device's scale is applied there */
    MILES_TRY(cuda_grad_ready(cm, cm->cfg.num_hidden_layers));
    return encoder_backward(cm);
}

int cuda_grad_ready(MilesCudaModel *cm, int l) {
    if (!cm->gr_fn) return MILES_OK;
    /* the table: 5 embedding tensors, then 16 per layer, then the heads */
    size_t off = 0;
    if (l >= 0) {
        const int i = 5 + 16 * l;
        off = i < cm->ntensors ? cm->tensors[i].offset : cm->nparams;
    }
    return cm->gr_fn(cm->gr_ctx, off);
}

extern "C" int miles_cuda_model_backward_hooked(MilesCudaModel *cm, float loss_scale, MilesCudaGradReady ready,
                                                void *ctx) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_backward_hooked: model is NULL");
    cm->gr_fn = ready;
    cm->gr_ctx = ctx;
    int s = miles_cuda_model_backward(cm, loss_scale);
    cm->gr_fn = NULL; /* CUDA graph captures never call it */
    cm->gr_ctx = NULL;
    return s;
}

extern "C" int32_t *miles_cuda_model_device_found_inf(MilesCudaModel *cm) {
    return cm && cm->use_scaler ? &cm->dscaler->found_inf : NULL;
}

extern "C" int miles_cuda_model_materialize_grads(MilesCudaModel *cm) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_materialize_grads: model is NULL");
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) return fast_materialize_zero(cm);
#endif
    return MILES_OK;
}

#ifndef MILES_CUDA_HOST_EMULATION
/* The 16-bit path's backward: only stream work (capturable); the scratch
 * buffers must exist (cuda_ensure_scratch). */
int cuda_backward_device(MilesCudaModel *cm) {
    MathScope ms(cm->math);
    F16GuardScope gs(cm->use_scaler && cm->f16_guard ? &cm->dscaler->found_inf : NULL);
    MILES_TRY(fast_begin_backward(cm));
    MILES_TRY(head_backward(cm, 1.0f));
    MILES_TRY(cuda_grad_ready(cm, cm->cfg.num_hidden_layers));
    return fast_encoder_backward(cm);
}

int cuda_ensure_scratch(MilesCudaModel *cm) { return ensure_scratch(cm); }
#endif

/* ------------------------------------------ input gradients (explanations) */

extern "C" int miles_cuda_model_forward_embeds(MilesCudaModel *cm, const MilesBatch *batch, const float *word_emb,
                                               float *logits, float *velocity) {
    if (!cm || !batch || !word_emb)
        return miles_error(MILES_EINVAL, "miles_cuda_model_forward_embeds: NULL argument");
    if (cm->fast)
        return miles_error(MILES_EUNSUPPORTED, "explanations on CUDA need precision fp32 or tf32 (the %s model runs "
                           "the 16-bit path, which has no forward from given embeddings)",
                           miles_cuda_precision_name(cm->precision));
    cm->fwd_valid = 0;
    const int H = cm->cfg.hidden_size;
    const size_t N = (size_t)batch->B * batch->T;
    for (size_t i = 0; i < N * H; i++) /* the CPU's check and message */
        if (!isfinite(word_emb[i]))
            return miles_error(MILES_ENAN, "word embeddings: row %zu token %zu channel %zu is %s",
                               i / H / batch->T, i / H % batch->T, i % H, isnan(word_emb[i]) ? "NaN" : "Inf");
    MILES_TRY(cuda_forward_stage(cm, batch, 0, 1.0f));
    const size_t need = N * H * sizeof(float) + N * sizeof(int32_t);
    if (need > cm->given_cap) {
        MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
        cudaFree(cm->given);
        cm->given = NULL;
        cm->given_cap = 0;
        cudaError_t e = cudaMalloc(&cm->given, need);
        if (e != cudaSuccess) {
            cm->given = NULL;
            cudaGetLastError();
            return miles_error(MILES_ENOMEM, "cuda model: cannot allocate %.1f MB of word vectors (%s)", need / 1e6,
                               cudaGetErrorString(e));
        }
        cm->given_cap = need;
    }
    int32_t *rows = (int32_t *)malloc(N * sizeof(int32_t));
    if (!rows) return miles_error(MILES_ENOMEM, "cuda model: word vector rows");
    for (size_t i = 0; i < N; i++) rows[i] = (int32_t)i;
    /* pageable sources: staged before the calls return */
    cudaError_t e = cudaMemcpyAsync(cm->given, word_emb, N * H * sizeof(float), cudaMemcpyHostToDevice, cm->stream);
    if (e == cudaSuccess)
        e = cudaMemcpyAsync((float *)cm->given + N * H, rows, N * sizeof(int32_t), cudaMemcpyHostToDevice,
                            cm->stream);
    free(rows);
    if (e != cudaSuccess) return miles_cuda_fail(e, __FILE__, __LINE__, "cudaMemcpyAsync(word vectors)");
    cm->use_given = 1;
    int s = cuda_forward_device(cm);
    cm->use_given = 0;
    MILES_TRY(s);
    cm->fwd_valid = 1;
    if (logits)
        MILES_CUDA_TRY(cudaMemcpyAsync(logits, cm->A.logits, N / batch->T * 2 * sizeof(float),
                                       cudaMemcpyDeviceToHost, cm->stream));
    if (velocity)
        MILES_CUDA_TRY(cudaMemcpyAsync(velocity, cm->A.vel, N / batch->T * sizeof(float), cudaMemcpyDeviceToHost,
                                       cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_backward_inputs(MilesCudaModel *cm, const float *dlogits, const float *dvelocity,
                                                float *dword, float *dfeatures) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_backward_inputs: model is NULL");
    if (!cm->fwd_valid)
        return miles_error(MILES_EINVAL, "miles_cuda_model_backward_inputs: no successful forward to differentiate");
    if (cm->fast)
        return miles_error(MILES_EUNSUPPORTED, "explanations on CUDA need precision fp32 or tf32 (the %s model runs "
                           "the 16-bit path)", miles_cuda_precision_name(cm->precision));
    const int B = cm->B;
    for (int i = 0; dlogits && i < 2 * B; i++)
        if (!isfinite(dlogits[i]))
            return miles_error(MILES_ENAN, "miles_cuda_model_backward_inputs: dlogits row %d class %d is %s", i / 2,
                               i % 2, isnan(dlogits[i]) ? "NaN" : "Inf");
    for (int i = 0; dvelocity && i < B; i++)
        if (!isfinite(dvelocity[i]))
            return miles_error(MILES_ENAN, "miles_cuda_model_backward_inputs: dvelocity row %d is %s", i,
                               isnan(dvelocity[i]) ? "NaN" : "Inf");
    MILES_TRY(ensure_scratch(cm));
    MathScope ms(cm->math);
    MilesGradActs *D = &cm->D;
    if (dlogits)
        MILES_CUDA_TRY(cudaMemcpyAsync(D->dlogits, dlogits, (size_t)B * 2 * sizeof(float), cudaMemcpyHostToDevice,
                                       cm->stream));
    else MILES_TRY(zero(cm, D->dlogits, (size_t)B * 2));
    if (dvelocity)
        MILES_CUDA_TRY(cudaMemcpyAsync(D->dvel, dvelocity, (size_t)B * sizeof(float), cudaMemcpyHostToDevice,
                                       cm->stream));
    else MILES_TRY(zero(cm, D->dvel, B));
    cm->seeded = 1;
    int s = head_backward(cm, 1.0f);
    cm->seeded = 0;
    MILES_TRY(s);
    MILES_TRY(encoder_backward(cm));
    if (dword)
        MILES_CUDA_TRY(cudaMemcpyAsync(dword, D->dres, (size_t)B * cm->T * cm->cfg.hidden_size * sizeof(float),
                                       cudaMemcpyDeviceToHost, cm->stream));
    if (dfeatures)
        MILES_CUDA_TRY(cudaMemcpyAsync(dfeatures, D->dfeat, (size_t)B * cm->cfg.num_features * sizeof(float),
                                       cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    return MILES_OK;
}

extern "C" int miles_cuda_model_zero_grad(MilesCudaModel *cm) {
    if (!cm) return miles_error(MILES_EINVAL, "miles_cuda_model_zero_grad: model is NULL");
    cm->grads_unscaled = 0;
#ifndef MILES_CUDA_HOST_EMULATION
    if (cm->fast) return fast_zero_grad(cm);
#endif
    return zero(cm, cm->grads, cm->nparams);
}

