/*
 * model_cuda_fast.cu — the 16-bit path of the GPU model (precision fp16 /
 * bf16; docs/gpu.md "The 16-bit path").  model_cuda.cu and
 * model_cuda_state.cu call in here when cm->fast is set; the heads, the
 * losses, the batch checks and the API are theirs.
 *
 * Per encoder layer (x = the layer input, 16 bits):
 *   forward   qkv = x Wqkv^T + bqkv           cuBLASLt, bias epilogue, [N,3H]
 *             ctx = flash attention(qkv)       lse saved, no T x T tensor
 *             proj = ctx Wo^T + bo             cuBLASLt
 *             res1 = x + drop(proj); ln1 = LN  one kernel
 *             inter = ln1 Wi^T + bi; gelu      cuBLASLt + GELU (exact erf)
 *             proj = gelu Wout^T + bout        cuBLASLt
 *             res2 = ln1 + drop(proj); ln2 = LN
 *   backward  from dx (fp32, the gradient of ln2):
 *             LN2 backward + dropout -> dres (fp32), dproj (16), dgamma/dbeta/dbout
 *             dWout += dproj^T gelu; dgelu = dproj Wout; dinter = GELU' (+ dbi)
 *             dWi += dinter^T ln1; dres += dinter Wi   (beta 1: the residual)
 *             LN1 backward + dropout -> dx (the residual gradient), dproj, dbo
 *             dWo += dproj^T ctx; dctx = dproj Wo
 *             flash backward -> dqkv; dWq/k/v += dqkv^T x (one batched GEMM)
 *             dbq/k/v (column sums); dx += dqkv Wqkv
 * Every activation gradient is written, never zeroed and accumulated; after
 * zero_grad the parameter gradients are written too (except the embedding
 * tables and the heads, which are cleared first).
 *
 * Weights: the fp32 master block (CPU layout) and a 16-bit copy of the
 * GEMM weights (QKV packed), refreshed by the fused AdamW.  Optimizer: one
 * pass for norm + Inf/NaN + unscale/clip coefficient, one for AdamW; the
 * step counter and the fp16 skip decision stay on the device.
 */
#include "model_cuda_internal.h"
extern "C" {
#include "optim_internal.h" /* miles_adamw_lr_scale: the one parameter-group rule */
}

#include <cuda_fp16.h>

#define ACTS(cm) ((cm)->fs->acts)

/* ------------------------------------------------------------ layouts */

size_t fast_arena_layout(MilesCudaModel *cm, void *base, size_t off, int B, int T) {
    FastState *fs = cm->fs;
    const MilesConfig *c = &cm->cfg;
    const size_t H = c->hidden_size, I = c->intermediate_size, N = (size_t)B * T;
    const size_t BHT = (size_t)B * c->num_attention_heads * T;
    Bump b = {(char *)base, off};
    fs->emb_out = HF(&b, N * H);
    fs->emb_mean = FL(&b, N);
    fs->emb_rstd = FL(&b, N);
    fs->proj = HF(&b, N * H);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        FastLayerActs *y = &fs->acts[l];
        y->qkv = HF(&b, N * 3 * H);
        y->ctx = HF(&b, N * H);
        y->lse = FL(&b, BHT);
        y->res1 = HF(&b, N * H);
        y->ln1 = HF(&b, N * H);
        y->mean1 = FL(&b, N);
        y->rstd1 = FL(&b, N);
        y->inter = HF(&b, N * I);
        y->gelu = HF(&b, N * I);
        y->res2 = HF(&b, N * H);
        y->ln2 = HF(&b, N * H);
        y->mean2 = FL(&b, N);
        y->rstd2 = FL(&b, N);
    }
    return b.off;
}

size_t fast_grad_layout(MilesCudaModel *cm, void *base, size_t off, int B, int T) {
    FastState *fs = cm->fs;
    const MilesConfig *c = &cm->cfg;
    const int H = c->hidden_size, I = c->intermediate_size, N = B * T;
    Bump b = {(char *)base, off};
    fs->dres = FL(&b, (size_t)N * H);
    fs->dproj = HF(&b, (size_t)N * H);
    fs->dctx = HF(&b, (size_t)N * H);
    fs->dqkv = HF(&b, (size_t)N * 3 * H);
    fs->dinter = HF(&b, (size_t)N * I);
    fs->dsum = FL(&b, (size_t)B * c->num_attention_heads * T);
    fs->ws_ln_n = ln_backward_workspace(N, H);
    fs->ws_ln = FL(&b, fs->ws_ln_n);
    size_t a = colsum_workspace(N, I), q = colsum_workspace(N, 3 * H);
    fs->ws_col_n = a > q ? a : q;
    fs->ws_col = FL(&b, fs->ws_col_n);
    fs->ws_emb = FL(&b, (size_t)MILES_EMB_SLOTS_MAX(N) * H);
    return b.off;
}

/* --------------------------------------------------------------- build */

static size_t up8(size_t n) { return (n + 7) & ~(size_t)7; }

/* The fused AdamW's chunk table: every tensor in pieces of at most
 * MILES_CUDA_CHUNK, with its decay flag (or all, for decay_all), the offset
 * of its 16-bit copy and its parameter-group lr multiplier (THE rule,
 * miles_adamw_lr_scale; cfg NULL: one group).  Rewritten in place when the
 * groups change, so captured graphs (which read it at replay) stay valid. */
static int build_chunks(MilesCudaModel *cm, const int64_t *half_off, int decay_all, const MilesAdamWConfig *cfg) {
    FastState *fs = cm->fs;
    size_t n = 0;
    for (int i = 0; i < cm->ntensors; i++) n += (cm->tensors[i].numel + MILES_CUDA_CHUNK - 1) / MILES_CUDA_CHUNK;
    MilesCudaChunk *h = (MilesCudaChunk *)malloc(n * sizeof(MilesCudaChunk));
    if (!h) return miles_error(MILES_ENOMEM, "cuda model: chunk table");
    size_t k = 0;
    for (int i = 0; i < cm->ntensors; i++) {
        const MilesTensor *t = &cm->tensors[i];
        const double scale = cfg ? miles_adamw_lr_scale(cfg, t->name, cm->cfg.num_hidden_layers) : 1.0;
        for (size_t o = 0; o < t->numel; o += MILES_CUDA_CHUNK, k++) {
            h[k].off = (int64_t)(t->offset + o);
            h[k].n = (int32_t)(t->numel - o < MILES_CUDA_CHUNK ? t->numel - o : MILES_CUDA_CHUNK);
            h[k].half = half_off[i] < 0 ? -1 : half_off[i] + (int64_t)o;
            h[k].decay = decay_all ? 1 : t->decay;
            h[k].lr_scale = scale;
        }
    }
    cudaError_t e = cudaSuccess;
    if (!fs->chunks || fs->nchunks != (int)n) {
        cudaFree(fs->chunks);
        fs->chunks = NULL;
        e = cudaMalloc(&fs->chunks, n * sizeof(MilesCudaChunk));
    }
    /* synchronous (pageable source, freed below): only at build or a change of decay_all / the groups */
    if (e == cudaSuccess) e = cudaMemcpyAsync(fs->chunks, h, n * sizeof(MilesCudaChunk), cudaMemcpyHostToDevice, cm->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(cm->stream);
    free(h);
    if (e != cudaSuccess) return miles_cuda_fail(e, __FILE__, __LINE__, "chunk table");
    fs->nchunks = (int)n;
    fs->chunks_decay_all = decay_all;
    fs->chunks_lr = cfg ? cfg->lr : 0.0f;
    fs->chunks_head_lr = cfg ? cfg->head_lr : 0.0f;
    fs->chunks_layer_decay = cfg ? cfg->layer_decay : 0.0f;
    return MILES_OK;
}

/* the per-tensor 16-bit offsets, recomputed from the device views */
static int tensor_half_offsets(MilesCudaModel *cm, int64_t *out) {
    FastState *fs = cm->fs;
    const size_t H = cm->cfg.hidden_size;
    for (int i = 0; i < cm->ntensors; i++) out[i] = -1;
    for (int l = 0; l < cm->cfg.num_hidden_layers; l++) {
        const MilesLayerP *y = &cm->P.layers[l];
        const FastLayerW *w = &fs->hw[l];
        const struct {
            const float *m;
            const uint16_t *h;
        } map[12] = {{y->q.w, w->qkv_w},         {y->k.w, w->qkv_w + H * H},  {y->v.w, w->qkv_w + 2 * H * H},
                     {y->q.b, w->qkv_b},         {y->k.b, w->qkv_b + H},      {y->v.b, w->qkv_b + 2 * H},
                     {y->attn_out.w, w->o_w},    {y->attn_out.b, w->o_b},     {y->inter.w, w->i_w},
                     {y->inter.b, w->i_b},       {y->out.w, w->out_w},        {y->out.b, w->out_b}};
        for (int j = 0; j < 12; j++) {
            const size_t off = (size_t)(map[j].m - cm->params);
            for (int i = 0; i < cm->ntensors; i++)
                if (cm->tensors[i].offset == off) out[i] = (int64_t)(map[j].h - fs->half);
        }
    }
    return MILES_OK;
}

static int rebuild_chunks(MilesCudaModel *cm, int decay_all, const MilesAdamWConfig *cfg) {
    int64_t *ho = (int64_t *)malloc((size_t)cm->ntensors * sizeof(int64_t));
    if (!ho) return miles_error(MILES_ENOMEM, "cuda model: chunk table");
    tensor_half_offsets(cm, ho);
    int s = build_chunks(cm, ho, decay_all, cfg);
    free(ho);
    return s;
}

/* The chunk table for this step's decay_all and parameter groups (host side,
 * before any capture; a no-op unless the configuration changed). */
static int ensure_chunks(MilesCudaModel *cm, const MilesAdamWConfig *cfg) {
    FastState *fs = cm->fs;
    const int decay_all = cfg->decay_all ? 1 : 0;
    if (fs->chunks_decay_all == decay_all && fs->chunks_lr == cfg->lr && fs->chunks_head_lr == cfg->head_lr &&
        fs->chunks_layer_decay == cfg->layer_decay)
        return MILES_OK;
    MILES_TRY(miles_adamw_check_groups(cfg));
    return rebuild_chunks(cm, decay_all, cfg);
}

int fast_build(MilesCudaModel *cm, const MilesModel *cpu) {
    const MilesConfig *c = &cm->cfg;
    const int L = c->num_hidden_layers;
    const size_t H = c->hidden_size, I = c->intermediate_size;
    FastState *fs = (FastState *)calloc(1, sizeof(FastState));
    if (!fs) return miles_error(MILES_ENOMEM, "cuda model: 16-bit path state");
    cm->fs = fs;
    fs->dtype = cm->precision == MILES_CUDA_PREC_BF16 ? MILES_CUDA_BF16 : MILES_CUDA_F16;
    fs->graphs = cm->graphs_opt != 0;
    fs->chunks_decay_all = -1;
    fs->hw = (FastLayerW *)calloc((size_t)L, sizeof(FastLayerW));
    fs->acts = (FastLayerActs *)calloc((size_t)L, sizeof(FastLayerActs));
    if (!fs->hw || !fs->acts) return miles_error(MILES_ENOMEM, "cuda model: 16-bit path tables");

    /* the table order of model.c: wte, wpe, wtt, embeddings.LayerNorm, 16 per layer, heads */
    if (cm->ntensors < 5 + 16 * L || strcmp(cm->tensors[3].name, "bert.embeddings.LayerNorm.weight"))
        return miles_error(MILES_EINTERNAL, "cuda model: unexpected tensor table (%s)", cm->tensors[3].name);
    fs->emb_ln_off = cm->tensors[3].offset;
    fs->head_off = cm->ntensors > 5 + 16 * L ? cm->tensors[5 + 16 * L].offset : cm->nparams;
    const MilesLayerP *y0 = &cm->G.layers[0];
    fs->qkv_w_stride = (long long)(y0->k.w - y0->q.w);
    fs->qkv_b_stride = (long long)(y0->k.b - y0->q.b);
    if (y0->v.w - y0->k.w != fs->qkv_w_stride || y0->v.b - y0->k.b != fs->qkv_b_stride)
        return miles_error(MILES_EINTERNAL, "cuda model: q/k/v tensors are not evenly spaced");

    /* 16-bit weight copies, 16-byte aligned pieces */
    size_t n = 0;
    const size_t sizes[8] = {3 * H * H, 3 * H, H * H, H, I * H, I, H * I, H};
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 8; j++) n += up8(sizes[j]);
    fs->half_n = n;
    MILES_CUDA_TRY(cudaMalloc(&fs->half, n * sizeof(uint16_t)));
    n = 0;
    for (int l = 0; l < L; l++) {
        uint16_t **dst[8] = {&fs->hw[l].qkv_w, &fs->hw[l].qkv_b, &fs->hw[l].o_w, &fs->hw[l].o_b,
                             &fs->hw[l].i_w,   &fs->hw[l].i_b,   &fs->hw[l].out_w, &fs->hw[l].out_b};
        for (int j = 0; j < 8; j++) {
            *dst[j] = fs->half + n;
            n += up8(sizes[j]);
        }
    }
    /* small device state: optimizer state, learning rate */
    MILES_CUDA_TRY(cudaMalloc(&fs->small, 256));
    MILES_CUDA_TRY(cudaMemsetAsync(fs->small, 0, 256, cm->stream));
    fs->opt = (MilesCudaOptState *)fs->small;
    fs->lr = (float *)((char *)fs->small + 128);
    MILES_TRY(rebuild_chunks(cm, 0, NULL));
    MILES_TRY(fast_refresh_half(cm));
    /* fp16: if cuBLAS clamps an fp16 output beyond 65504 instead of making it
     * Inf, the backward checks the fp16 GEMM outputs it reads */
    if (cm->use_scaler) {
        int inf = miles_cuda_f16_output_overflow_probe();
        if (inf < 0) return inf;
        fs->ovf = inf ? NULL : &cm->dscaler->found_inf;
    }
    (void)cpu;
    return MILES_OK;
}

void fast_graphs_reset(MilesCudaModel *cm);

void fast_free(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    if (!fs) return;
    cudaFree(fs->half);
    cudaFree(fs->chunks);
    cudaFree(fs->small);
    free(fs->hw);
    free(fs->acts);
    free(fs->hhost);
    fast_graphs_reset(cm);
    free(fs->gcache);
    free(fs);
    cm->fs = NULL;
}

size_t fast_device_bytes(const MilesCudaModel *cm) {
    const FastState *fs = cm->fs;
    return fs ? fs->half_n * sizeof(uint16_t) + (size_t)fs->nchunks * sizeof(MilesCudaChunk) + 256 : 0;
}

int fast_refresh_half(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    return params_to_half_cuda(fs->half, cm->params, fs->chunks, fs->nchunks, fs->dtype, S(cm));
}

/* ------------------------------------------------------------ forward */

static const uint64_t *rng_of(MilesCudaModel *cm) { return &cm->din.step->seed; }

int fast_encoder_forward(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    const MilesConfig *c = &cm->cfg;
    const int B = cm->B, T = cm->T, H = c->hidden_size, I = c->intermediate_size, NH = c->num_attention_heads;
    const int N = B * T, dt = fs->dtype;
    const float eps = c->layer_norm_eps;
    const MilesParams *P = &cm->P;
    const uint64_t *rng = rng_of(cm);
    miles_cuda_stream s = S(cm);

    MILES_TRY(emb_ln_forward_cuda(fs->emb_out, fs->emb_mean, fs->emb_rstd, cm->din.ids, cm->din.tt, P->wte, P->wpe,
                                  P->wtt, P->emb_ln.w, P->emb_ln.b, B, T, H, eps,
                                  dkey(cm, c->hidden_dropout_prob, MILES_DROPID_EMB), rng, dt, s));
    const uint16_t *x = fs->emb_out;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const FastLayerW *w = &fs->hw[l];
        const MilesLayerP *p = &P->layers[l];
        FastLayerActs *y = &fs->acts[l];
        MILES_TRY(miles_gemm_lt_cuda(0, 1, N, 3 * H, H, 1.0f, x, H, w->qkv_w, H, 0.0f, NULL, 3 * H, y->qkv, 3 * H, dt,
                                     dt, w->qkv_b, s));
        MILES_TRY(flash_attention_forward_cuda(
            y->ctx, H, y->lse, y->qkv, y->qkv + H, y->qkv + 2 * H, 3 * H, cm->din.mask, B, T, H, NH,
            dkey(cm, c->attention_probs_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_PROBS)), rng, dt, s));
        MILES_TRY(miles_gemm_lt_cuda(0, 1, N, H, H, 1.0f, y->ctx, H, w->o_w, H, 0.0f, NULL, H, fs->proj, H, dt, dt,
                                     w->o_b, s));
        MILES_TRY(residual_ln_forward_cuda(
            y->res1, y->ln1, y->mean1, y->rstd1, x, fs->proj, p->ln1.w, p->ln1.b, N, H, eps,
            dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_OUT)), rng, dt, s));
        MILES_TRY(miles_gemm_lt_cuda(0, 1, N, I, H, 1.0f, y->ln1, H, w->i_w, H, 0.0f, NULL, I, y->inter, I, dt, dt,
                                     w->i_b, s));
        MILES_TRY(gelu_forward_h_cuda(y->gelu, y->inter, (size_t)N * I, dt, s));
        MILES_TRY(miles_gemm_lt_cuda(0, 1, N, H, I, 1.0f, y->gelu, I, w->out_w, I, 0.0f, NULL, H, fs->proj, H, dt, dt,
                                     w->out_b, s));
        MILES_TRY(residual_ln_forward_cuda(
            y->res2, y->ln2, y->mean2, y->rstd2, y->ln1, fs->proj, p->ln2.w, p->ln2.b, N, H, eps,
            dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_FFN_OUT)), rng, dt, s));
        x = y->ln2;
    }
    return MILES_OK;
}

int fast_pool(MilesCudaModel *cm, float *out, int mean_pool) {
    const int L = cm->cfg.num_hidden_layers;
    return pool_forward_h_cuda(out, cm->fs->acts[L - 1].ln2, cm->din.mask, cm->B, cm->T, cm->cfg.hidden_size,
                               mean_pool, cm->fs->dtype, S(cm));
}

int fast_download_last_hidden(MilesCudaModel *cm, float *out) {
    FastState *fs = cm->fs;
    const size_t n = (size_t)cm->B * cm->T * cm->cfg.hidden_size;
    if (n > fs->hhost_cap) {
        free(fs->hhost);
        fs->hhost = (uint16_t *)malloc(n * sizeof(uint16_t));
        fs->hhost_cap = fs->hhost ? n : 0;
        if (!fs->hhost) return miles_error(MILES_ENOMEM, "cuda model: host buffer for the last hidden state");
    }
    MILES_CUDA_TRY(cudaMemcpyAsync(fs->hhost, fs->acts[cm->cfg.num_hidden_layers - 1].ln2, n * sizeof(uint16_t),
                                   cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    for (size_t i = 0; i < n; i++) {
        const uint16_t h = fs->hhost[i];
        if (fs->dtype == MILES_CUDA_BF16) {
            uint32_t u = (uint32_t)h << 16;
            memcpy(&out[i], &u, 4);
        } else {
            __half_raw r;
            r.x = h;
            out[i] = __half2float(__half(r));
        }
    }
    return MILES_OK;
}

/* ----------------------------------------------------------- backward */

int fast_zero_grad(MilesCudaModel *cm) {
    cm->fs->zero_pending = 1; /* the next backward writes instead of adding */
    cm->fs->prepared = 0;
    return MILES_OK;
}

/* Gradients that a backward after zero_grad does not write in full: the
 * embedding tables (only the rows and positions of the batch) and the heads
 * (fp32 ops that accumulate).  The layers and the LayerNorms are written. */
int fast_begin_backward(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    fs->prepared = 0;
    if (!fs->zero_pending) {
        fs->acc = 1;
        return MILES_OK;
    }
    MILES_TRY(zero(cm, cm->grads, fs->emb_ln_off));
    MILES_TRY(zero(cm, cm->grads + fs->head_off, cm->nparams - fs->head_off));
    fs->acc = 0;
    fs->zero_pending = 0;
    return MILES_OK;
}

int fast_materialize_zero(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    if (!fs->zero_pending) return MILES_OK;
    fs->zero_pending = 0;
    return zero(cm, cm->grads, cm->nparams);
}

int fast_scale_head_grads(MilesCudaModel *cm) {
    const float *s2 = cm->use_scaler ? &cm->dscaler->scale : NULL;
    MILES_TRY(scale_device_cuda(cm->D.dlogits, (size_t)cm->B * 2, &cm->din.step->loss_scale, s2, S(cm)));
    return scale_device_cuda(cm->D.dvel, (size_t)cm->B, &cm->din.step->loss_scale, s2, S(cm));
}

int fast_encoder_backward(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    const MilesConfig *c = &cm->cfg;
    const int B = cm->B, T = cm->T, H = c->hidden_size, I = c->intermediate_size, NH = c->num_attention_heads;
    const int N = B * T, dt = fs->dtype, acc = fs->acc;
    const float beta = acc ? 1.0f : 0.0f;
    const MilesParams *P = &cm->P;
    MilesParams *G = &cm->G;
    float *dx = cm->D.dx; /* in: the gradient of the last layer's output */
    const uint64_t *rng = rng_of(cm);
    miles_cuda_stream s = S(cm);

    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        const FastLayerW *w = &fs->hw[l];
        const MilesLayerP *p = &P->layers[l];
        MilesLayerP *g = &G->layers[l];
        const FastLayerActs *y = &fs->acts[l];
        const uint16_t *x = l ? fs->acts[l - 1].ln2 : fs->emb_out;
        const MilesDropoutKey kffn = dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_FFN_OUT));
        const MilesDropoutKey kout = dkey(cm, c->hidden_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_OUT));
        const MilesDropoutKey katt =
            dkey(cm, c->attention_probs_dropout_prob, MILES_DROPID_LAYER(l, MILES_DROPSITE_ATTN_PROBS));

        /* LN2 (+ the FFN output dropout): dres = d res2, dproj = d(out dense) */
        MILES_TRY(ln_backward_cuda(fs->dres, fs->dproj, g->ln2.w, g->ln2.b, g->out.b, acc, dx, y->res2, p->ln2.w,
                                   y->mean2, y->rstd2, N, H, kffn, rng, fs->ws_ln, fs->ws_ln_n, dt, s));
        /* out dense [H <- I] */
        MILES_TRY(miles_gemm_h_cuda(1, 0, H, I, N, 1.0f, fs->dproj, H, 0, y->gelu, I, 0, beta, g->out.w, I, 0, 1, dt,
                                    MILES_CUDA_F32, s));
        MILES_TRY(miles_gemm_h_cuda(0, 0, N, I, H, 1.0f, fs->dproj, H, 0, w->out_w, I, 0, 0.0f, fs->dinter, I, 0, 1,
                                    dt, dt, s));
        MILES_TRY(gelu_backward_h_cuda(fs->dinter, g->inter.b, acc, y->inter, N, I, fs->ws_col, fs->ws_col_n, fs->ovf,
                                       dt, s));
        /* intermediate dense [I <- H]; its input gradient adds to the residual's (beta 1) */
        MILES_TRY(miles_gemm_h_cuda(1, 0, I, H, N, 1.0f, fs->dinter, I, 0, y->ln1, H, 0, beta, g->inter.w, H, 0, 1, dt,
                                    MILES_CUDA_F32, s));
        MILES_TRY(miles_gemm_h_cuda(0, 0, N, H, I, 1.0f, fs->dinter, I, 0, w->i_w, H, 0, 1.0f, fs->dres, H, 0, 1, dt,
                                    MILES_CUDA_F32, s));
        /* LN1 (+ the attention output dropout): dx = d res1 = the residual gradient of x */
        MILES_TRY(ln_backward_cuda(dx, fs->dproj, g->ln1.w, g->ln1.b, g->attn_out.b, acc, fs->dres, y->res1, p->ln1.w,
                                   y->mean1, y->rstd1, N, H, kout, rng, fs->ws_ln, fs->ws_ln_n, dt, s));
        /* attention output dense */
        MILES_TRY(miles_gemm_h_cuda(1, 0, H, H, N, 1.0f, fs->dproj, H, 0, y->ctx, H, 0, beta, g->attn_out.w, H, 0, 1,
                                    dt, MILES_CUDA_F32, s));
        MILES_TRY(miles_gemm_h_cuda(0, 0, N, H, H, 1.0f, fs->dproj, H, 0, w->o_w, H, 0, 0.0f, fs->dctx, H, 0, 1, dt, dt,
                                    s));
        /* attention -> dqkv [N,3H] */
        MILES_TRY(flash_attention_backward_cuda(fs->dqkv, fs->dqkv + H, fs->dqkv + 2 * H, 3 * H, fs->dsum, fs->dctx, H,
                                                y->ctx, H, y->lse, y->qkv, y->qkv + H, y->qkv + 2 * H, 3 * H,
                                                cm->din.mask, B, T, H, NH, katt, rng, fs->ovf, dt, s));
        /* q, k, v dense: three weight gradients in one batched GEMM (x shared) */
        MILES_TRY(miles_gemm_h_cuda(1, 0, H, H, N, 1.0f, fs->dqkv, 3 * H, H, x, H, 0, beta, g->q.w, H,
                                    fs->qkv_w_stride, 3, dt, MILES_CUDA_F32, s));
        MILES_TRY(colsum_h_cuda(g->q.b, H, fs->qkv_b_stride, acc, fs->dqkv, N, 3 * H, fs->ws_col, fs->ws_col_n, dt, s));
        MILES_TRY(miles_gemm_h_cuda(0, 0, N, H, 3 * H, 1.0f, fs->dqkv, 3 * H, 0, w->qkv_w, H, 0, 1.0f, dx, H, 0, 1, dt,
                                    MILES_CUDA_F32, s));
        MILES_TRY(cuda_grad_ready(cm, l));
    }
    /* embeddings: demb = LN backward of the dropout backward, then the tables */
    MILES_TRY(emb_ln_backward_cuda(fs->dres, G->emb_ln.w, G->emb_ln.b, acc, dx, cm->din.ids, cm->din.tt, P->wte,
                                   P->wpe, P->wtt, P->emb_ln.w, fs->emb_mean, fs->emb_rstd, B, T, H,
                                   dkey(cm, c->hidden_dropout_prob, MILES_DROPID_EMB), rng, fs->ws_ln, fs->ws_ln_n, s));
    MILES_TRY(embedding_backward_seg_cuda(G->wte, G->wpe, G->wtt, c->vocab_size, fs->dres, cm->din.seg_counts,
                                          cm->din.seg_row, cm->din.seg_beg, cm->din.seg_multi, cm->din.multi_row,
                                          cm->din.multi_beg, cm->din.multi_end, cm->din.seg_pos, MILES_EMB_SEG_MAX(N),
                                          MILES_EMB_MULTI_MAX(N, c->type_vocab_size), B, T, H, fs->ws_emb, s));
    return cuda_grad_ready(cm, -1);
}

/* ---------------------------------------------------------- optimizer */

int fast_clip_grad_norm(MilesCudaModel *cm, float max_norm, float *norm) {
    FastState *fs = cm->fs;
    MILES_TRY(fast_materialize_zero(cm));
    MILES_TRY(grad_prepare_cuda(fs->opt, cm->use_scaler ? cm->dscaler : NULL, cm->grads, cm->nparams, max_norm, cm->ws,
                                S(cm)));
    fs->prepared = 1;
    cm->grads_unscaled = 1;
    if (norm) {
        MILES_CUDA_TRY(cudaMemcpyAsync(cm->hnorm, &fs->opt->norm, sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
        MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
        *norm = cm->hnorm[0];
    }
    return MILES_OK;
}

int fast_sync_host(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    if (!fs->host_stale) return MILES_OK;
    MilesCudaOptState st;
    MILES_CUDA_TRY(cudaMemcpyAsync(&cm->hscaler[1], cm->dscaler, sizeof(MilesLossScalerState), cudaMemcpyDeviceToHost,
                                   cm->stream));
    MILES_CUDA_TRY(cudaMemcpyAsync(&st, fs->opt, sizeof st, cudaMemcpyDeviceToHost, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    cm->t = st.step;
    cm->scale = cm->hscaler[1].scale;
    fs->host_stale = 0;
    return MILES_OK;
}

int fast_set_step(MilesCudaModel *cm, int64_t t) {
    MILES_CUDA_TRY(cudaMemcpyAsync(&cm->fs->opt->step, &t, sizeof t, cudaMemcpyHostToDevice, cm->stream));
    MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    cm->fs->host_stale = 0;
    return MILES_OK;
}

int fast_adamw_step(MilesCudaModel *cm, float lr, const MilesAdamWConfig *cfg, int *skipped) {
    FastState *fs = cm->fs;
    MILES_TRY(fast_materialize_zero(cm));
    MILES_TRY(ensure_chunks(cm, cfg));
    if (!fs->prepared) /* no clipping: the coefficient is the unscale alone */
        MILES_TRY(grad_prepare_cuda(fs->opt, cm->use_scaler ? cm->dscaler : NULL, cm->grads, cm->nparams, 0.0f, cm->ws,
                                    S(cm)));
    MILES_CUDA_TRY(cudaMemcpyAsync(fs->lr, &lr, sizeof lr, cudaMemcpyHostToDevice, cm->stream));
    const MilesCudaAdamW hp = adamw_hp(cfg, lr, 0); /* the step: the device counter */
    MILES_TRY(adamw_fused_cuda(cm->params, cm->grads, cm->m, cm->v, fs->half, fs->dtype, fs->chunks, fs->nchunks, hp,
                               fs->lr, fs->opt, S(cm)));
    fs->prepared = 0;
    cm->grads_unscaled = 1; /* consumed: a further backward needs zero_grad first (fp16) */
    if (!cm->use_scaler) { /* bf16: every step is taken (as PyTorch without a GradScaler) */
        cm->t++;
        return MILES_OK;
    }
    MILES_TRY(train_stats_count_skip_cuda(cm->dstats, fs->opt, S(cm)));
    MILES_TRY(loss_scaler_update_cuda(cm->dscaler, cm->growth, cm->backoff, cm->interval, S(cm)));
    fs->host_stale = 1;
    if (!skipped) return MILES_OK; /* no host round trip */
    MilesCudaOptState st;
    MILES_CUDA_TRY(cudaMemcpyAsync(&st, fs->opt, sizeof st, cudaMemcpyDeviceToHost, cm->stream));
    MILES_TRY(fast_sync_host(cm));
    *skipped = st.last_skipped != 0;
    return MILES_OK;
}

/* --------------------------------------------------------- CUDA graphs */

/* One captured step: everything after the batch copy, for one shape and
 * one set of host-side constants (a replay reads the batch, the dropout
 * step, loss_scale, the learning rate and the optimizer state from the
 * device, so any step of that shape can replay it). */
struct GraphEntry {
    int used, kind; /* kind 0: inference forward, 1: training step */
    int B, T, labels, vel, decay_all;
    float max_norm, beta1, beta2, eps, wd;
    int seen;       /* times run: captured at the second */
    cudaGraphExec_t exec;
    uint64_t last;
};

static int same_key(const GraphEntry *e, const GraphEntry *k) {
    return e->used && e->kind == k->kind && e->B == k->B && e->T == k->T && e->labels == k->labels &&
           e->vel == k->vel && e->decay_all == k->decay_all && e->max_norm == k->max_norm && e->beta1 == k->beta1 &&
           e->beta2 == k->beta2 && e->eps == k->eps && e->wd == k->wd;
}

void fast_graphs_reset(MilesCudaModel *cm) {
    FastState *fs = cm->fs;
    if (!fs || !fs->gcache) return;
    for (int i = 0; i < FAST_GRAPHS; i++) {
        if (fs->gcache[i].exec) cudaGraphExecDestroy(fs->gcache[i].exec);
        memset(&fs->gcache[i], 0, sizeof(GraphEntry));
    }
}

int fast_graph_count(const MilesCudaModel *cm) {
    const FastState *fs = cm->fs;
    int n = 0;
    if (fs && fs->gcache)
        for (int i = 0; i < FAST_GRAPHS; i++) n += fs->gcache[i].exec != NULL;
    return n;
}

typedef int (*DeviceWork)(MilesCudaModel *cm, const void *arg);

/* Run `work` (stream work only) for the shape `key`: directly the first time
 * (allocations, cuBLASLt plans and kernel attributes happen then), captured
 * into a CUDA graph the second time, replayed after that.  A failed capture
 * turns graphs off for the model and runs the work directly. */
static int run_graphed(MilesCudaModel *cm, const GraphEntry *key, DeviceWork work, const void *arg) {
    FastState *fs = cm->fs;
    if (!fs->graphs) return work(cm, arg);
    if (!fs->gcache) {
        fs->gcache = (GraphEntry *)calloc(FAST_GRAPHS, sizeof(GraphEntry));
        if (!fs->gcache) return work(cm, arg);
    }
    GraphEntry *e = NULL, *lru = &fs->gcache[0];
    for (int i = 0; i < FAST_GRAPHS && !e; i++) {
        if (same_key(&fs->gcache[i], key)) e = &fs->gcache[i];
        else if (!fs->gcache[i].used || (lru->used && fs->gcache[i].last < lru->last)) lru = &fs->gcache[i];
    }
    if (!e) { /* a new shape: evict the least recently used */
        if (lru->exec) cudaGraphExecDestroy(lru->exec);
        *lru = *key;
        lru->used = 1;
        lru->seen = 0;
        lru->exec = NULL;
        e = lru;
    }
    e->last = ++fs->gclock;
    if (e->exec) {
        fs->graph_launches++;
        MILES_CUDA_TRY(cudaGraphLaunch(e->exec, cm->stream));
        return MILES_OK;
    }
    if (e->seen++ == 0) return work(cm, arg);
    /* capture (thread-local: other threads' CUDA calls are not restricted meanwhile) */
    MILES_CUDA_TRY(cudaStreamBeginCapture(cm->stream, cudaStreamCaptureModeThreadLocal));
    int st = work(cm, arg);
    cudaGraph_t g = NULL;
    cudaError_t ce = cudaStreamEndCapture(cm->stream, &g);
    cudaGraphExec_t ex = NULL;
    if (st == MILES_OK && ce == cudaSuccess && g) ce = cudaGraphInstantiate(&ex, g, 0);
    if (g) cudaGraphDestroy(g);
    if (st != MILES_OK || ce != cudaSuccess || !ex) {
        cudaGetLastError(); /* not sticky: the capture failed, nothing ran */
        fs->graphs = 0;
        if (st != MILES_OK) return st;
        return work(cm, arg); /* the step still runs, without graphs from now on */
    }
    e->exec = ex;
    fs->graph_captures++;
    fs->graph_launches++;
    MILES_CUDA_TRY(cudaGraphLaunch(ex, cm->stream));
    return MILES_OK;
}

/* The key of the current batch's shape (kind 0: inference, 1: training step). */
static GraphEntry graph_key(const MilesCudaModel *cm, int kind) {
    GraphEntry k;
    memset(&k, 0, sizeof k);
    k.kind = kind;
    k.B = cm->B;
    k.T = cm->T;
    k.labels = cm->have_labels;
    k.vel = cm->have_vel;
    return k;
}

static int fwd_work(MilesCudaModel *cm, const void *) { return cuda_forward_device(cm); }

int fast_forward_graph(MilesCudaModel *cm) {
    GraphEntry k = graph_key(cm, 0);
    return run_graphed(cm, &k, fwd_work, NULL);
}

typedef struct {
    float max_norm;
    MilesCudaAdamW hp;
} StepArgs;

/* zero_grad + forward + backward + clip + AdamW (+ the loss scaler), device work only */
static int step_work(MilesCudaModel *cm, const void *arg) {
    const StepArgs *a = (const StepArgs *)arg;
    FastState *fs = cm->fs;
    fs->zero_pending = 1;
    MILES_TRY(cuda_forward_device(cm));
    MILES_TRY(cuda_backward_device(cm));
    MILES_TRY(grad_prepare_cuda(fs->opt, cm->use_scaler ? cm->dscaler : NULL, cm->grads, cm->nparams, a->max_norm,
                                cm->ws, S(cm)));
    MILES_TRY(adamw_fused_cuda(cm->params, cm->grads, cm->m, cm->v, fs->half, fs->dtype, fs->chunks, fs->nchunks,
                               a->hp, fs->lr, fs->opt, S(cm)));
    if (cm->use_scaler) {
        MILES_TRY(train_stats_count_skip_cuda(cm->dstats, fs->opt, S(cm)));
        MILES_TRY(loss_scaler_update_cuda(cm->dscaler, cm->growth, cm->backoff, cm->interval, S(cm)));
    }
    return MILES_OK;
}

int fast_train_step(MilesCudaModel *cm, const MilesBatch *batch, float loss_scale, float max_norm, float lr,
                    const MilesAdamWConfig *cfg, float *loss, float *norm, int *skipped) {
    FastState *fs = cm->fs;
    if (!batch->labels && !batch->velocity)
        return miles_error(MILES_EINVAL, "miles_cuda_model_train_step: the batch has neither labels nor velocity "
                           "targets");
    /* host side first: nothing below may allocate or synchronize inside a capture */
    MILES_TRY(cuda_forward_stage(cm, batch, 1, loss_scale));
    MILES_TRY(cuda_ensure_scratch(cm));
    MILES_TRY(ensure_chunks(cm, cfg));
    MILES_CUDA_TRY(cudaMemcpyAsync(fs->lr, &lr, sizeof lr, cudaMemcpyHostToDevice, cm->stream));
    StepArgs a;
    a.max_norm = max_norm;
    a.hp = adamw_hp(cfg, lr, 0);
    GraphEntry k = graph_key(cm, 1);
    k.decay_all = cfg->decay_all ? 1 : 0;
    k.max_norm = max_norm;
    k.beta1 = cfg->beta1;
    k.beta2 = cfg->beta2;
    k.eps = cfg->eps;
    k.wd = cfg->weight_decay;
    MILES_TRY(run_graphed(cm, &k, step_work, &a));
    /* the host's view of what the device did */
    cm->fwd_valid = 1;
    fs->zero_pending = 0;
    fs->prepared = 0;
    cm->grads_unscaled = 1;
    if (cm->use_scaler) fs->host_stale = 1;
    else cm->t++;
    if (norm) {
        MILES_CUDA_TRY(cudaMemcpyAsync(cm->hnorm, &fs->opt->norm, sizeof(float), cudaMemcpyDeviceToHost, cm->stream));
    }
    if (skipped) {
        MilesCudaOptState st;
        MILES_CUDA_TRY(cudaMemcpyAsync(&st, fs->opt, sizeof st, cudaMemcpyDeviceToHost, cm->stream));
        *skipped = st.last_skipped != 0;
    }
    if (loss) {
        MILES_TRY(miles_cuda_model_last_loss(cm, loss)); /* synchronizes */
    } else if (norm || skipped) {
        MILES_CUDA_TRY(cudaStreamSynchronize(cm->stream));
    }
    if (norm) *norm = cm->hnorm[0];
    if ((norm || skipped || loss) && cm->use_scaler) MILES_TRY(fast_sync_host(cm));
    return MILES_OK;
}
